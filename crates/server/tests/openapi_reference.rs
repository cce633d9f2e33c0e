//! backspace's OpenAPI document against DocSpace's own description of the backup API
//! (`shared/reference/docspace-backup-openapi.json`, beside the project, or where
//! `BACKSPACE_SHARED_DIR` points): for every backup path DocSpace documents, the same method
//! exists here, and the schema of its successful `response` agrees. "Agrees" means a client
//! generated from DocSpace's document reads every answer of ours: each property DocSpace lists
//! is there with a type DocSpace allows (ours may be stricter, e.g. never null), enums hold no
//! value DocSpace does not know, formats match, and what DocSpace requires we require.

use serde_json::Value;
use std::collections::BTreeSet;

fn reference() -> Value {
    let shared = std::env::var("BACKSPACE_SHARED_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_owned());
    let path = format!("{shared}/reference/docspace-backup-openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Follows `$ref`s (local ones, `#/components/schemas/X`) until a schema without one.
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            return schema;
        };
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {r}"));
        schema = doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    panic!("a $ref cycle");
}

/// A schema's types as a set (`type` may be a string or a list); `anyOf` branches are merged
/// (schemars writes `Option<T>` of a named `T` as `anyOf: [T, null]`).
fn types(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = resolve(doc, schema);
    let mut out = BTreeSet::new();
    match schema.get("type") {
        Some(Value::String(t)) => {
            out.insert(t.clone());
        }
        Some(Value::Array(ts)) => out.extend(ts.iter().filter_map(Value::as_str).map(str::to_owned)),
        _ => {}
    }
    for key in ["anyOf", "oneOf"] {
        for branch in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.extend(types(doc, branch));
        }
    }
    // `integer` is a `number`: DocSpace saying number allows our integer.
    out
}

/// The non-null branch of an `anyOf: [T, null]`, or the schema itself.
fn non_null<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = resolve(doc, schema);
    if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
        if let Some(b) = branches
            .iter()
            .find(|b| resolve(doc, b).get("type") != Some(&Value::from("null")))
        {
            return resolve(doc, b);
        }
    }
    schema
}

/// Checks that `ours` (in `our_doc`) agrees with `theirs` (in `ref_doc`); problems go to `out`.
fn agree(our_doc: &Value, ours: &Value, ref_doc: &Value, theirs: &Value, at: &str, out: &mut Vec<String>) {
    let (o_types, t_types) = (types(our_doc, ours), types(ref_doc, theirs));
    if !t_types.is_empty() {
        let allowed = |t: &String| t_types.contains(t) || (t == "integer" && t_types.contains("number"));
        let extra: Vec<&String> = o_types.iter().filter(|t| !allowed(t)).collect();
        if o_types.is_empty() || !extra.is_empty() {
            out.push(format!("{at}: we answer {o_types:?}, DocSpace documents {t_types:?}"));
            return;
        }
    }
    let (ours, theirs) = (non_null(our_doc, ours), non_null(ref_doc, theirs));
    if let Some(their_enum) = theirs.get("enum").and_then(Value::as_array) {
        match ours.get("enum").and_then(Value::as_array) {
            Some(our_enum) => {
                for v in our_enum {
                    if !their_enum.contains(v) {
                        out.push(format!("{at}: we may answer {v}, which DocSpace's enum lacks"));
                    }
                }
            }
            None => out.push(format!("{at}: DocSpace documents an enum, we do not")),
        }
    }
    if let (Some(of), Some(tf)) = (ours.get("format"), theirs.get("format")) {
        if of != tf {
            out.push(format!("{at}: format {of}, DocSpace documents {tf}"));
        }
    }
    if let Some(their_items) = theirs.get("items") {
        match ours.get("items") {
            Some(our_items) => agree(our_doc, our_items, ref_doc, their_items, &format!("{at}[]"), out),
            None => out.push(format!("{at}: DocSpace documents items, we do not")),
        }
    }
    let empty = serde_json::Map::new();
    let their_props = theirs.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let our_props = ours.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    for (name, their_prop) in their_props {
        match our_props.get(name) {
            Some(our_prop) => agree(our_doc, our_prop, ref_doc, their_prop, &format!("{at}.{name}"), out),
            None => out.push(format!("{at}.{name}: documented by DocSpace, missing here")),
        }
    }
    let required = |s: &Value| -> BTreeSet<String> {
        s.get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    for name in required(theirs).difference(&required(ours)) {
        out.push(format!("{at}.{name}: DocSpace requires it, we may leave it out"));
    }
}

/// Where we answer differently on purpose, and why. Each entry must still be needed (a fixed
/// difference fails the test, so the list stays honest).
const KNOWN: &[(&str, &str)] = &[
    (
        "GET /api/2.0/backup/getbackupschedule: response",
        "with no schedule DocSpace answers null too; its document omits the case",
    ),
    (
        "GET /api/2.0/backup/getbackupprogress: response",
        "with no backup yet DocSpace answers null too; its document omits the case",
    ),
    (
        "GET /api/2.0/backup/getrestoreprogress: response",
        "with no restore yet DocSpace answers null too; its document omits the case",
    ),
];

#[test]
fn backup_responses_agree_with_docspace() {
    let theirs = reference();
    let ours = backspace_server::openapi::document();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (path, item) in theirs["paths"].as_object().unwrap() {
        if !path.starts_with("/api/2.0/backup/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{} {path}", method.to_uppercase());
            // Path parameters may be named differently (`{id}` there, `{backupid}` here).
            let shape = |p: &str| {
                p.split('/')
                    .map(|s| if s.starts_with('{') { "{}" } else { s })
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let our_op = ours["paths"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(p, _)| shape(p) == shape(path))
                .and_then(|(_, item)| item.get(method.as_str()));
            let Some(our_op) = our_op else {
                problems.push(format!("{at}: not served"));
                continue;
            };
            let their_schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
            let our_schema = &our_op["responses"]["200"]["content"]["application/json"]["schema"];
            let (their_envelope, our_envelope) = (resolve(&theirs, their_schema), resolve(&ours, our_schema));
            let their_response = &their_envelope["properties"]["response"];
            let our_response = &our_envelope["properties"]["response"];
            assert!(!their_response.is_null(), "{at}: the reference has no response schema");
            if our_response.as_object().is_none_or(|o| o.is_empty()) {
                problems.push(format!("{at}: no response schema here"));
                continue;
            }
            agree(
                &ours,
                our_response,
                &theirs,
                their_response,
                &format!("{at}: response"),
                &mut problems,
            );
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} operations compared");
    let mut unexplained = Vec::new();
    let mut used = BTreeSet::new();
    for p in &problems {
        match KNOWN.iter().find(|(prefix, _)| p.starts_with(prefix)) {
            Some((prefix, _)) => {
                used.insert(*prefix);
            }
            None => unexplained.push(p.clone()),
        }
    }
    assert!(unexplained.is_empty(), "disagreements:\n{}", unexplained.join("\n"));
    let stale: Vec<&str> = KNOWN.iter().map(|(p, _)| *p).filter(|p| !used.contains(p)).collect();
    assert!(stale.is_empty(), "known differences that no longer occur: {stale:?}");
}

/// The checker itself finds each kind of disagreement.
#[test]
fn the_checker_finds_disagreements() {
    let theirs = serde_json::json!({"components": {"schemas": {
        "E": {"type": "integer", "enum": [0, 1]},
        "T": {"type": "object", "required": ["a"], "properties": {
            "a": {"type": ["null", "string"], "format": "uuid"},
            "b": {"$ref": "#/components/schemas/E"},
            "c": {"type": "array", "items": {"type": "integer"}},
            "d": {"type": "boolean"},
        }},
    }}});
    let their_t = serde_json::json!({"$ref": "#/components/schemas/T"});
    let check = |ours: Value| {
        let mut out = Vec::new();
        agree(&ours, &ours, &theirs, &their_t, "x", &mut out);
        out
    };
    let good = serde_json::json!({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "string", "format": "uuid"},
        "b": {"type": "integer", "enum": [1]},
        "c": {"type": "array", "items": {"type": "integer"}},
        "d": {"type": "boolean"},
        "extra": {"type": "string"},
    }});
    assert_eq!(check(good.clone()), Vec::<String>::new());
    let mut bad = good.clone();
    bad["required"] = serde_json::json!([]);
    bad["properties"]["a"]["format"] = "date-time".into();
    bad["properties"]["b"]["enum"] = serde_json::json!([1, 2]);
    bad["properties"]["c"]["items"]["type"] = "string".into();
    bad["properties"]["d"]["type"] = serde_json::json!(["boolean", "null"]);
    let problems = check(bad);
    for expected in [
        "x.a: format",
        "x.b: we may answer 2",
        "x.c[]: we answer",
        "x.d: we answer",
        "x.a: DocSpace requires it",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "`{expected}` not found in {problems:?}"
        );
    }
    let mut missing = good;
    missing["properties"].as_object_mut().unwrap().remove("d");
    assert_eq!(
        check(missing),
        vec!["x.d: documented by DocSpace, missing here".to_owned()]
    );
}
