//! A table of bad inputs: each gets the right 4xx and a DocSpace error body naming the problem.

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    status: u16,
    message: &'static str,
}

fn case(
    what: &'static str,
    method: Method,
    path: impl Into<String>,
    body: Option<&str>,
    status: u16,
    message: &'static str,
) -> Case {
    Case {
        what,
        method,
        path: path.into(),
        body: body.map(|b| b.as_bytes().to_vec()),
        content_type: Some("application/json"),
        status,
        message,
    }
}

#[tokio::test]
async fn bad_inputs_get_clear_4xx_errors() {
    let s = TestServer::spawn_with(&[("BACKSPACE_MAX_UPLOAD_BYTES", "1048576")]).await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Inputs").await;
    let long_name = format!(r#"{{"name":"{}"}}"#, "n".repeat(31));
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(2 << 20));
    use Method as M;
    let mut cases = vec![
        case(
            "malformed JSON",
            M::POST,
            "/api/2.0/keys",
            Some("{\"name\":"),
            400,
            "not valid JSON",
        ),
        case(
            "a JSON array body",
            M::POST,
            "/api/2.0/keys",
            Some("[1,2]"),
            400,
            "must be a JSON object",
        ),
        case(
            "a wrong type",
            M::POST,
            "/api/2.0/keys",
            Some(r#"{"name":"k","expiresInDays":"soon"}"#),
            400,
            "`soon` is not an integer",
        ),
        case(
            "a missing required field",
            M::POST,
            "/api/2.0/keys",
            Some("{}"),
            400,
            "missing required properties including: 'name'",
        ),
        case(
            "a blank name",
            M::POST,
            "/api/2.0/keys",
            Some(r#"{"name":"   "}"#),
            400,
            "The Name field is required.",
        ),
        case(
            "a too long name",
            M::POST,
            "/api/2.0/keys",
            Some(&long_name),
            400,
            "Length must be less than 30",
        ),
        case(
            "days out of range",
            M::POST,
            "/api/2.0/keys",
            Some(r#"{"name":"k","expiresInDays":366}"#),
            400,
            "between 1 and 365",
        ),
        case(
            "an unknown permission",
            M::POST,
            "/api/2.0/keys",
            Some(r#"{"name":"k","permissions":["files:own"]}"#),
            400,
            "Permissions are not valid.",
        ),
        case(
            "an unknown room type",
            M::POST,
            "/api/2.0/files/rooms",
            Some(r#"{"title":"t","roomType":"Palace"}"#),
            400,
            "`Palace` is not a valid RoomType",
        ),
        case(
            "a room without title",
            M::POST,
            "/api/2.0/files/rooms",
            Some(r#"{"roomType":5}"#),
            400,
            "The Title field is required.",
        ),
        case(
            "a folder without title",
            M::POST,
            format!("/api/2.0/files/folder/{room}"),
            Some(r#"{"title":"  "}"#),
            400,
            "The Title field is required.",
        ),
        case(
            "a folder in a missing parent",
            M::POST,
            "/api/2.0/files/folder/999999",
            Some(r#"{"title":"x"}"#),
            403,
            "The required folder was not found",
        ),
        case(
            "a bad e-mail",
            M::POST,
            "/api/2.0/people",
            Some(r#"{"email":"nope","firstName":"A","lastName":"B"}"#),
            400,
            "not a valid e-mail",
        ),
        case(
            "a bad first name",
            M::POST,
            "/api/2.0/people",
            Some(r#"{"email":"a@b.co","firstName":"<b>","lastName":"B"}"#),
            400,
            "Incorrect firstname or lastname",
        ),
        case(
            "a weak password",
            M::POST,
            "/api/2.0/people",
            Some(r#"{"email":"a@b.co","firstName":"A","lastName":"B","password":"x"}"#),
            400,
            "Password is incorrect",
        ),
        case(
            "an unknown employee type",
            M::POST,
            "/api/2.0/people",
            Some(r#"{"email":"a@b.co","firstName":"A","lastName":"B","type":"Emperor"}"#),
            400,
            "not a valid EmployeeType",
        ),
        case(
            "a page size out of range",
            M::GET,
            "/api/2.0/people?count=1000",
            None,
            400,
            "between 1 and 100",
        ),
        case(
            "a non-numeric file id",
            M::GET,
            "/api/2.0/files/file/abc",
            None,
            404,
            "not a valid id",
        ),
        case(
            "an unknown file",
            M::GET,
            "/api/2.0/files/file/999999",
            None,
            404,
            "The required file was not found",
        ),
        case(
            "an unknown folder",
            M::GET,
            "/api/2.0/files/999999",
            None,
            404,
            "The required folder was not found",
        ),
        case(
            "a non-GUID key id",
            M::DELETE,
            "/api/2.0/keys/123",
            None,
            404,
            "not a valid id",
        ),
        case(
            "an unknown person",
            M::GET,
            format!("/api/2.0/people/{}", uuid::Uuid::new_v4()),
            None,
            404,
            "The user could not be found",
        ),
        case(
            "an unknown route",
            M::GET,
            "/api/2.0/nothing/here",
            None,
            404,
            "no such route",
        ),
        case("a wrong method", M::PATCH, "/api/2.0/keys", None, 405, "not allowed"),
        case(
            "an oversized body",
            M::POST,
            "/api/2.0/keys",
            Some(&huge),
            413,
            "larger than the server accepts",
        ),
        case(
            "an unknown download action",
            M::GET,
            "/filehandler.ashx?action=explode&fileid=1",
            None,
            400,
            "unknown action",
        ),
        case(
            "a download without file id",
            M::GET,
            "/filehandler.ashx?action=download",
            None,
            400,
            "fileid",
        ),
        case(
            "an insert without title",
            M::POST,
            format!("/api/2.0/files/{room}/insert"),
            Some("raw"),
            400,
            "The Title field is required",
        ),
        case(
            "sign-in with a wrong password",
            M::POST,
            "/api/2.0/authentication",
            Some(r#"{"userName":"owner@example.com","password":"nope"}"#),
            401,
            "User authentication failed",
        ),
        case(
            "sign-in without user name",
            M::POST,
            "/api/2.0/authentication",
            Some("{}"),
            401,
            "User authentication failed",
        ),
    ];
    cases.push(Case {
        what: "an upload that is not multipart",
        method: M::POST,
        path: format!("/api/2.0/files/{room}/upload"),
        body: Some(b"plain".to_vec()),
        content_type: Some("text/plain"),
        status: 400,
        message: "multipart/form-data",
    });
    cases.push(Case {
        what: "a multipart body without a file part",
        method: M::POST,
        path: format!("/api/2.0/files/{room}/upload"),
        body: Some(b"--XX\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--XX--\r\n".to_vec()),
        content_type: Some("multipart/form-data; boundary=XX"),
        status: 400,
        message: "no file part",
    });
    cases.push(Case {
        what: "a truncated multipart body",
        method: M::POST,
        path: format!("/api/2.0/files/{room}/upload"),
        body: Some(b"--XX\r\nContent-Disposition: form-data; name=\"File\"; filename=\"a.txt\"\r\n\r\nabc".to_vec()),
        content_type: Some("multipart/form-data; boundary=XX"),
        status: 400,
        message: "",
    });

    for c in cases {
        let mut req = s
            .http
            .request(c.method.clone(), s.url(&c.path))
            .headers(owner.headers());
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = c.body {
            req = req.body(b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{}: {e:?}", c.what));
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{}: body is not JSON: {text:?}", c.what));
        assert!(
            ctype.starts_with("application/json"),
            "{}: content type {ctype}",
            c.what
        );
        assert_eq!(status, c.status, "{}: {body}", c.what);
        assert_error(status, &body, c.status, c.message);
    }

    // Validation failures also carry DocSpace's ValidationProblemDetails, keyed by .NET names.
    let (_, v) = s
        .post("/api/2.0/keys", &owner, serde_json::json!({"name": "n".repeat(31)}))
        .await;
    assert_eq!(
        v["response"]["errors"]["Name"][0],
        "Incorrect name. Length must be less than 30"
    );
    assert_eq!(v["response"]["status"], 400);
    let (_, v) = s.post("/api/2.0/keys", &owner, serde_json::json!({})).await;
    assert!(v["response"]["errors"]["$"][0].as_str().unwrap().contains("'name'"));

    // An upload over the limit is a 413 and leaves nothing behind.
    let (status, body) = s.upload(&owner, room, "big.bin", vec![1u8; 1_048_577]).await;
    assert_error(status, &body, 413, "larger than the limit");
    let (_, list) = s.get(&format!("/api/2.0/files/{room}"), &owner).await;
    assert_eq!(list["response"]["total"], 0, "a refused upload left a file: {list}");
    let leftovers = std::fs::read_dir(s.data_dir.join("files/.tmp")).unwrap().count();
    assert_eq!(leftovers, 0, "a refused upload left a temporary file");
}

#[tokio::test]
async fn paths_and_names_are_case_insensitive() {
    let s = TestServer::spawn().await;
    let token = s.owner_token().await;
    let (status, v) = s.get("/API/2.0/People/@Self", &Auth::bearer(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["links"][0]["href"],
        s.url("/API/2.0/People/@Self"),
        "links echo the URL as sent"
    );
    let (status, v) = s
        .post(
            "/api/2.0/KEYS",
            &Auth::bearer(&token),
            serde_json::json!({"NAME": "upper", "ExpiresInDays": "3"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["name"], "upper");
}
