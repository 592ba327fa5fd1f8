//! A thin Graph API client: builds versioned URLs, sends the bearer token, and turns Graph's
//! error envelope into [`GraphError`], classified by `error.code` rather than HTTP status.
//!
//! Timeouts are the shared client's (`AdapterServices::http`, set by the gateway).
//! Transport errors are reduced to "was anything sent?" without their text, because reqwest
//! error messages carry the request URL and some Graph URLs carry secrets in the query.

use serde_json::Value;
use url::Url;

/// The Graph error envelope `{"error": {...}}`, or a transport failure.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphError {
    Api(ApiError),
    /// Nothing reached Meta (DNS, connect refused, TLS).
    Connect,
    /// The request left but no answer came in time.
    Timeout,
    /// An answer that is not Graph JSON.
    Malformed {
        status: u16,
    },
}

/// One Graph API error body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiError {
    pub http_status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    pub error_type: Option<String>,
    pub title: Option<String>,
    pub details: Option<String>,
}

impl ApiError {
    fn from_body(status: u16, body: &Value) -> Option<Self> {
        let err = body.get("error")?;
        let text = |k: &str| err.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            http_status: status,
            code: err.get("code").and_then(Value::as_i64).unwrap_or_default(),
            subcode: err.get("error_subcode").and_then(Value::as_i64),
            message: text("message").unwrap_or_default(),
            error_type: text("type"),
            title: text("error_user_title").or_else(|| text("title")),
            details: err
                .pointer("/error_data/details")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| text("error_user_msg")),
        })
    }

    /// A reason safe to show a business owner.
    #[must_use]
    pub fn reason(&self) -> String {
        let mut reason = if self.message.is_empty() {
            format!("Meta error {}", self.code)
        } else {
            self.message.clone()
        };
        if let Some(details) = self.details.as_deref().filter(|d| !reason.contains(d)) {
            reason = format!("{reason}: {details}");
        }
        redact_tokens(&reason)
    }

    /// Graph code 190: the token is invalid, expired or revoked.
    #[must_use]
    pub fn is_token_error(&self) -> bool {
        self.code == 190 || self.code == 102
    }
}

impl GraphError {
    /// A reason safe to show a business owner.
    #[must_use]
    pub fn reason(&self) -> String {
        match self {
            Self::Api(e) => e.reason(),
            Self::Connect => "Meta could not be reached".to_owned(),
            Self::Timeout => "Meta did not answer in time".to_owned(),
            Self::Malformed { status } => {
                format!("Meta answered HTTP {status} with an unreadable body")
            }
        }
    }

    #[must_use]
    pub fn is_token_error(&self) -> bool {
        matches!(self, Self::Api(e) if e.is_token_error())
    }
}

/// Removes anything that looks like a Meta access token (`EAA…`) or an app token (`id|secret`).
#[must_use]
pub fn redact_tokens(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let looks_secret = (word.starts_with("EAA") && word.len() > 20)
                || (word.contains('|') && word.len() > 20);
            if looks_secret { "[redacted]" } else { word }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A client bound to one Graph host and version.
#[derive(Debug, Clone)]
pub struct Graph {
    http: reqwest::Client,
    base: Url,
    version: String,
}

impl Graph {
    #[must_use]
    pub fn new(http: reqwest::Client, base: Url, version: String) -> Self {
        Self {
            http,
            base,
            version,
        }
    }

    /// `{base}/{version}/{path}` with `query`.
    #[must_use]
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!(
            "{prefix}/{}/{}",
            self.version,
            path.trim_start_matches('/')
        ));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `GET`, with an optional bearer token.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        token: Option<&str>,
    ) -> Result<Value, GraphError> {
        let mut req = self.http.get(self.url(path, query));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        Self::run(req).await
    }

    /// `POST` with a JSON body (or none).
    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Value, GraphError> {
        let mut req = self.http.post(self.url(path, &[])).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        Self::run(req).await
    }

    /// `DELETE`.
    pub async fn delete(&self, path: &str, token: &str) -> Result<Value, GraphError> {
        Self::run(self.http.delete(self.url(path, &[])).bearer_auth(token)).await
    }

    async fn run(req: reqwest::RequestBuilder) -> Result<Value, GraphError> {
        let response = req.send().await.map_err(|e| classify_transport(&e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| classify_transport(&e))?;
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|_| GraphError::Malformed { status })?;
        if let Some(api) = ApiError::from_body(status, &body) {
            return Err(GraphError::Api(api));
        }
        if status >= 400 {
            return Err(GraphError::Malformed { status });
        }
        Ok(body)
    }
}

fn classify_transport(err: &reqwest::Error) -> GraphError {
    if err.is_connect() {
        GraphError::Connect
    } else if err.is_timeout() {
        GraphError::Timeout
    } else if err.is_request() && !err.is_body() && !err.is_decode() {
        // Failed while building or writing the request: treat as "maybe sent".
        GraphError::Timeout
    } else {
        GraphError::Malformed {
            status: err.status().map_or(0, |s| s.as_u16()),
        }
    }
}
