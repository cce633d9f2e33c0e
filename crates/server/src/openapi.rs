//! `GET /openapi.json`: an OpenAPI 3.1 document of every route, generated from the route table
//! ([`crate::routes::table`]) and the schemas of the types the handlers answer with.

use crate::access::Access;
use crate::routes::{self, Route};
use backspace_types::envelope::Link;
use backspace_types::error::ErrorBody;
use serde_json::{json, Map, Value};

/// The document.
pub fn document() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let link = generator.subschema_for::<Link>();
    let error = generator.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for r in routes::table() {
        let op = operation(&r, &mut generator, &link, &error);
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method.as_str().to_lowercase()] = op;
    }
    for (path, summary, content_type, schema) in [
        ("/healthz", "Liveness: the process answers", "application/json", json!({"type": "object", "properties": {"status": {"const": "ok"}}})),
        (
            "/readyz",
            "Readiness: 200 when the metadata database and the file storage answer, 503 naming the one that does not",
            "application/json",
            json!({"type": "object", "properties": {"status": {"enum": ["ready", "unavailable"]}, "database": {"type": "string"}, "storage": {"type": "string"}}}),
        ),
        (
            "/metrics",
            "Prometheus metrics; needs `Authorization: Bearer <metrics token>` when one is configured, else loopback only",
            "text/plain",
            json!({"type": "string"}),
        ),
        ("/openapi.json", "This document", "application/json", json!({"type": "object"})),
        ("/docs", "A page that renders this document", "text/html", json!({"type": "string"})),
        ("/", "The admin page: data backup settings", "text/html", json!({"type": "string"})),
    ] {
        let id = if path == "/" { "get_index".to_owned() } else { format!("get_{}", path.trim_start_matches('/').replace('.', "_")) };
        paths.insert(
            path.to_owned(),
            json!({"get": {
                "operationId": id,
                "summary": summary,
                "security": [],
                "responses": {"200": {"description": "Success", "content": {content_type: {"schema": schema}}}},
            }}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "backspace",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The ONLYOFFICE DocSpace backup API and the portal it protects, as backspace serves them. \
                Every answer is DocSpace's envelope: `response`, `count`, `links`, `status` (0, or 1 with an error), `statusCode`.",
        },
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (`sk-…`) or a sign-in token"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "asc_auth_key", "description": "The session cookie set by sign-in"},
            },
        },
    })
}

fn operation(
    r: &Route,
    generator: &mut schemars::SchemaGenerator,
    link: &schemars::Schema,
    error: &schemars::Schema,
) -> Value {
    let response = match r.doc {
        Some(doc) => (doc.response)(generator).to_value(),
        None => json!({}),
    };
    let envelope = json!({
        "type": "object",
        "properties": {
            "response": response,
            "count": {"type": "integer"},
            "total": {"type": "integer"},
            "links": {"type": "array", "items": link},
            "status": {"type": "integer", "const": 0},
            "statusCode": {"type": "integer"},
        },
        "required": ["count", "links", "status", "statusCode"],
    });
    let parameters: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let security = match r.rule.access {
        Access::Public | Access::Anonymous => json!([]),
        _ => json!([{"bearer": []}, {"cookie": []}]),
    };
    let mut op = json!({
        "operationId": operation_id(r),
        "security": security,
        "x-access": format!("{:?}", r.rule.access),
        "responses": {
            "200": {"description": "Success", "content": {"application/json": {"schema": envelope}}},
            "default": {"description": "A DocSpace error body", "content": {"application/json": {"schema": error}}},
        },
    });
    if let Some(doc) = r.doc {
        op["summary"] = json!(doc.summary);
    }
    if let Some(success) = unenveloped(r.path) {
        op["responses"]["200"] = success;
    }
    if r.path == "/apisystem/portal/register" {
        // Registration's own failures are `{error, message}`; the layers around it (body limit,
        // rate limit) answer with DocSpace's error body.
        let own = json!({
            "type": "object",
            "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            "required": ["error", "message"],
        });
        op["responses"]["default"]["content"]["application/json"]["schema"] = json!({"anyOf": [own, error]});
    }
    if !parameters.is_empty() {
        op["parameters"] = json!(parameters);
    }
    op
}

/// The success answer of a route that DocSpace serves outside its envelope; `None` for the
/// enveloped rest.
fn unenveloped(path: &str) -> Option<Value> {
    fn json_body(description: &str, schema: Value) -> Value {
        json!({"description": description, "content": {"application/json": {"schema": schema}}})
    }
    let bytes = json!({"type": "string", "format": "binary"});
    Some(match path {
        "/filehandler.ashx" | "/api/2.0/backup/download/{backupid}" => {
            json!({"description": "The raw bytes", "content": {"application/octet-stream": {"schema": bytes}}})
        }
        "/apisystem/portal/register" => json_body(
            "The new portal",
            json!({
                "type": "object",
                "properties": {"reference": {"type": "string"}, "tenant": {"type": "object"}},
                "required": ["reference", "tenant"],
            }),
        ),
        // DocSpace's upload handler answers 200 with its own PascalCase body, failures included.
        "/backupfileupload.ashx" => json_body(
            "The upload's state, or `Success: false` and a `Message`",
            json!({
                "type": "object",
                "properties": {
                    "Success": {"type": "boolean"},
                    "ChunkSize": {"type": "integer"},
                    "EndUpload": {"type": "boolean"},
                    "Message": {"type": "string"},
                },
                "required": ["Success", "ChunkSize", "EndUpload"],
            }),
        ),
        _ => return None,
    })
}

/// `get_api_2_0_backup_verifybackup_backupid`: unique per method and path.
fn operation_id(r: &Route) -> String {
    let path: String = r
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = path.split('_').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("_");
    format!("{}_{path}", r.method.as_str().to_lowercase())
}
