//! Telegram's wire format: ASCII-only JSON (every non-ASCII character escaped as `\uXXXX`,
//! astral characters as surrogate pairs), the response envelope, and webhook bodies of the form
//! `{"update_id":N,` + newline + `"<kind>":{…}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Serialises `value` the way the Bot API server does: pure ASCII.
#[must_use]
pub fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    let mut units = [0u16; 2];
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// A webhook body: `{"update_id":N,\n"<kind>":<payload>}`.
#[must_use]
pub fn update_body(update_id: i64, kind: &str, payload: &Value) -> String {
    format!(
        "{{\"update_id\":{update_id},\n\"{kind}\":{}}}",
        ascii_json(payload)
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, ascii_json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A Bot API answer: success or Telegram's error envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Ok {
        result: Value,
        description: Option<&'static str>,
    },
    Err {
        code: u16,
        description: String,
        parameters: Option<Value>,
    },
}

impl Answer {
    pub fn ok(result: Value) -> Self {
        Self::Ok {
            result,
            description: None,
        }
    }

    pub fn ok_described(description: &'static str) -> Self {
        Self::Ok {
            result: Value::Bool(true),
            description: Some(description),
        }
    }

    /// An error; `description` is the full text (`"Bad Request: chat not found"`).
    pub fn err(code: u16, description: impl Into<String>) -> Self {
        Self::Err {
            code,
            description: description.into(),
            parameters: None,
        }
    }

    pub fn bad_request(message: &str) -> Self {
        Self::err(400, format!("Bad Request: {message}"))
    }

    pub fn too_many(retry_after: u64) -> Self {
        Self::Err {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            parameters: Some(json!({ "retry_after": retry_after })),
        }
    }

    pub fn unauthorized() -> Self {
        Self::err(401, "Unauthorized")
    }

    pub fn not_found() -> Self {
        Self::err(404, "Not Found")
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Ok {
                result,
                description,
            } => {
                let mut body = json!({"ok": true, "result": result});
                if let Some(text) = description {
                    body["description"] = json!(text);
                }
                json_response(StatusCode::OK, &body)
            }
            Self::Err {
                code,
                description,
                parameters,
            } => {
                let mut body = json!({"ok": false, "error_code": code, "description": description});
                let retry_after = parameters
                    .as_ref()
                    .and_then(|p| p.get("retry_after"))
                    .and_then(Value::as_u64);
                if let Some(parameters) = parameters {
                    body["parameters"] = parameters;
                }
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
                let mut response = json_response(status, &body);
                if let Some(secs) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_is_escaped_as_utf16_units() {
        let text = ascii_json(&json!({"text": "тест 😆"}));
        assert_eq!(text, r#"{"text":"\u0442\u0435\u0441\u0442 \ud83d\ude06"}"#);
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["text"], "тест 😆");
    }

    #[test]
    fn webhook_bodies_have_the_newline_after_the_update_id() {
        let body = update_body(7, "message", &json!({"text": "é"}));
        assert_eq!(
            body,
            "{\"update_id\":7,\n\"message\":{\"text\":\"\\u00e9\"}}"
        );
    }
}
