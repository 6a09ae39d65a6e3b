//! The commands that talk to a running server over its native REST API (`/v1`): `apply` and
//! `delete` of a folder ([`manifest`], [`deploy`]), `events put`, `executions list / describe /
//! history` ([`commands`]).
//!
//! **Boundary:** these commands know the server only through HTTP, exactly as a user's script
//! would: they never open the store or the engine.

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub mod commands;
pub mod deploy;
pub mod manifest;

/// Where the server is, resolved once by `cli.rs` from `--endpoint` / `STEPYARD_ENDPOINT`
/// and `--token` / `STEPYARD_TOKEN`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://127.0.0.1:8080` (no trailing slash needed).
    pub endpoint: String,
    /// A bearer token for servers started with `--auth-tokens`.
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the server at {endpoint} ({source}); is `stepyard serve` running?")]
    Unreachable {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error body (`{"code", "message", ...}`).
    #[error(transparent)]
    Api(Box<ApiFailure>),
    #[error("{method} {path}: the answer is not JSON: {message}")]
    NotJson {
        method: Method,
        path: String,
        message: String,
    },
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error("{0}")]
    Usage(String),
}

/// A non-2xx answer: the request and the server's error body.
#[derive(Debug, thiserror::Error)]
#[error("{method} {path}: {status} {code}: {message}{}", details_text(.details))]
pub struct ApiFailure {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api(failure) if failure.status == StatusCode::NOT_FOUND)
    }
}

/// An invalid definition's problems (`details.problems`) are worth a line each.
fn details_text(details: &Option<Value>) -> String {
    let Some(problems) = details
        .as_ref()
        .and_then(|d| d.get("problems"))
        .and_then(Value::as_array)
    else {
        return String::new();
    };
    problems
        .iter()
        .map(|p| {
            format!(
                "\n  {} {}: {}",
                p["pointer"].as_str().unwrap_or_default(),
                p["code"].as_str().unwrap_or_default(),
                p["message"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A thin JSON client of the native API.
pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    token: Option<String>,
}

impl Client {
    pub fn new(config: &ClientConfig) -> Client {
        Client {
            http: reqwest::Client::new(),
            endpoint: config.endpoint.trim_end_matches('/').to_string(),
            token: config.token.clone(),
        }
    }

    /// One request; a non-2xx answer is [`Error::Api`]. An empty 2xx body is `null`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.endpoint))
            .query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|source| Error::Unreachable {
            endpoint: self.endpoint.clone(),
            source,
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| Error::Unreachable {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        let value: Option<Value> = if bytes.is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if status.is_success() {
            return value.ok_or_else(|| Error::NotJson {
                method,
                path: path.to_string(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            });
        }
        let value = value.unwrap_or(Value::Null);
        Err(Error::Api(Box::new(ApiFailure {
            method,
            path: path.to_string(),
            status,
            code: value["code"].as_str().unwrap_or("Unknown").to_string(),
            message: value["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            details: value.get("details").cloned(),
        })))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.request(Method::GET, path, &[], None).await
    }

    /// `None` when the server answers 404.
    pub async fn get_optional(&self, path: &str) -> Result<Option<Value>> {
        match self.get(path).await {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.request(Method::POST, path, &[], Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.request(Method::PUT, path, &[], Some(body)).await
    }

    /// `false` when it was already gone (404).
    pub async fn delete(&self, path: &str) -> Result<bool> {
        match self.request(Method::DELETE, path, &[], None).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
