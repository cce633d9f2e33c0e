//! Lenient deserialisers for request DTOs: DocSpace accepts numbers and booleans sent as strings
//! and enums sent as names (any case), integers or numeric strings.

use serde::de::{self, Deserialize, Deserializer};
use serde_json::Value;

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An optional integer, given as a JSON number or a numeric string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("`{n}` is not an integer"))),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("`{s}` is not an integer"))),
        other => Err(de::Error::custom(format!(
            "expected an integer, found {}",
            describe(&other)
        ))),
    }
}

/// An optional boolean, given as a JSON boolean or `"true"`/`"false"` in any case.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        other => Err(de::Error::custom(format!(
            "expected a boolean, found {}",
            describe(&other)
        ))),
    }
}

/// An optional string; numbers and booleans are taken as their text.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(de::Error::custom(format!(
            "expected a string, found {}",
            describe(&other)
        ))),
    }
}

/// Enums that DocSpace binds from a name (any case), an integer or a numeric string.
pub trait LenientEnum: Sized + Copy + 'static {
    /// Every member with its wire name and number.
    const MEMBERS: &'static [(&'static str, i64, Self)];
    /// The enum's name, for messages.
    const NAME: &'static str;

    fn from_number(n: i64) -> Option<Self> {
        Self::MEMBERS.iter().find(|(_, v, _)| *v == n).map(|(_, _, m)| *m)
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::MEMBERS
            .iter()
            .find(|(name, _, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, _, m)| *m)
    }

    fn number(self) -> i64
    where
        Self: PartialEq,
    {
        Self::MEMBERS
            .iter()
            .find(|(_, _, m)| *m == self)
            .map(|(_, n, _)| *n)
            .unwrap_or(0)
    }
}

/// Deserialises an optional [`LenientEnum`].
pub fn opt_enum<'de, D: Deserializer<'de>, E: LenientEnum>(d: D) -> Result<Option<E>, D::Error> {
    let bad = |shown: String| de::Error::custom(format!("`{shown}` is not a valid {}", E::NAME));
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .and_then(E::from_number)
            .map(Some)
            .ok_or_else(|| bad(n.to_string())),
        Value::String(s) => {
            let t = s.trim();
            let found = match t.parse::<i64>() {
                Ok(n) => E::from_number(n),
                Err(_) => E::from_name(t),
            };
            found.map(Some).ok_or_else(|| bad(s))
        }
        other => Err(de::Error::custom(format!(
            "expected a {}, found {}",
            E::NAME,
            describe(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enums::EmployeeType;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "opt_i64")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "opt_bool")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "opt_enum")]
        t: Option<EmployeeType>,
    }

    fn probe(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numbers_booleans_and_enums_bind_leniently() {
        let p = probe(r#"{"n":"5","b":"True","t":"roomadmin"}"#).unwrap();
        assert_eq!((p.n, p.b, p.t), (Some(5), Some(true), Some(EmployeeType::RoomAdmin)));
        let p = probe(r#"{"n":7,"b":false,"t":"4"}"#).unwrap();
        assert_eq!((p.n, p.b, p.t), (Some(7), Some(false), Some(EmployeeType::User)));
        let p = probe(r#"{"t":2}"#).unwrap();
        assert_eq!(p.t, Some(EmployeeType::Guest));
        let p = probe("{}").unwrap();
        assert_eq!((p.n, p.b, p.t), (None, None, None));
    }

    #[test]
    fn wrong_values_name_the_problem() {
        let e = probe(r#"{"n":"five"}"#).err().unwrap().to_string();
        assert!(e.contains("`five` is not an integer"), "{e}");
        let e = probe(r#"{"t":"Emperor"}"#).err().unwrap().to_string();
        assert!(e.contains("`Emperor` is not a valid EmployeeType"), "{e}");
        let e = probe(r#"{"b":[1]}"#).err().unwrap().to_string();
        assert!(e.contains("expected a boolean, found an array"), "{e}");
    }
}
