//! DocSpace's success envelope and the validation problem it can carry.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One element of `links`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Link {
    pub href: String,
    pub action: String,
}

/// `{response,count,[total],links,status,statusCode}`. `response` is omitted when there is none.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    pub links: Vec<Link>,
    pub status: i32,
    pub status_code: u16,
}

impl Envelope {
    /// A success envelope. `count` follows DocSpace: list length for arrays, 0 for no response,
    /// 1 for anything else.
    pub fn success(response: Option<Value>, total: Option<u64>, link: Link) -> Self {
        let count = match &response {
            None => 0,
            Some(Value::Array(items)) => items.len() as u64,
            Some(_) => 1,
        };
        Self {
            response,
            count,
            total,
            links: vec![link],
            status: 0,
            status_code: 200,
        }
    }
}

/// ASP.NET's `ValidationProblemDetails`: DocSpace puts it inside `response` with `status:1`.
/// Keys of `errors` are .NET property names (`Name`, `Email`) or JSON paths (`$`, `$.roomType`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub errors: BTreeMap<String, Vec<String>>,
    pub trace_id: String,
}

impl ValidationProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: "https://tools.ietf.org/html/rfc9110#section-15.5.1".to_owned(),
            title: "One or more validation errors occurred.".to_owned(),
            status: 400,
            errors: BTreeMap::from([(field.into(), vec![message.into()])]),
            trace_id: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn link() -> Link {
        Link {
            href: "http://h/api/2.0/x".into(),
            action: "GET".into(),
        }
    }

    #[test]
    fn null_response_is_omitted_with_count_zero() {
        let v = serde_json::to_value(Envelope::success(None, None, link())).unwrap();
        assert_eq!(
            v,
            json!({"count":0,"links":[{"href":"http://h/api/2.0/x","action":"GET"}],"status":0,"statusCode":200})
        );
    }

    #[test]
    fn count_follows_the_response() {
        assert_eq!(Envelope::success(Some(json!([1, 2, 3])), None, link()).count, 3);
        assert_eq!(Envelope::success(Some(json!(true)), None, link()).count, 1);
        assert_eq!(Envelope::success(Some(json!({"a":1})), Some(9), link()).total, Some(9));
    }
}
