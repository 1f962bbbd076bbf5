//! One HTTP exchange as plain data: the [`Request`] the server read and the [`Response`] a
//! handler returns (with Jira's error collection and the JSON bodies every endpoint writes).

use serde_json::{json, Value};

/// One HTTP request, as the server read it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/rest/...?page=1`).
    pub url: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// A JSON body. Responses are never cached: some carry a new token.
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![
                (
                    "content-type".to_owned(),
                    "application/json;charset=UTF-8".to_owned(),
                ),
                ("cache-control".to_owned(), "no-store".to_owned()),
            ],
            body: body.to_string(),
        }
    }

    pub fn no_content() -> Self {
        Self {
            status: 204,
            headers: vec![("cache-control".to_owned(), "no-store".to_owned())],
            body: String::new(),
        }
    }

    /// Jira's error collection.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &json!({"errorMessages": [message], "errors": {}}))
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body as JSON (tests).
    pub fn json_body(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}
