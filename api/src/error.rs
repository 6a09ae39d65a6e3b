//! The one error body of the native API.
//!
//! Every 4xx and 5xx of `/v1`, and every rejection of a malformed request (bad JSON, wrong content type,
//! oversize body, unknown route), answers `{"code", "message", "field"?, "request_id"?}` with a stable
//! `code`. Internal errors are logged with the request id and never leak their details.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The error body of every failed native API request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `StateMachineDoesNotExist`, `MalformedJson`.
    #[schema(example = "MalformedJson")]
    pub code: String,
    /// What went wrong, for a person.
    #[schema(example = "expected `,` or `}` at line 1 column 12")]
    pub message: String,
    /// The request field at fault, when there is one: a JSON Pointer into the body for a body
    /// field (`/definition`, `/entries/0/time`), the name for a query parameter or a header
    /// (`status`, `X-GitHub-Event`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/definition")]
    pub field: Option<String>,
    /// Extra structured detail, e.g. every problem of an invalid definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed so that `Result<T, ApiError>` stays small on the happy path.
    pub body: Box<ErrorBody>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: Box::new(ErrorBody {
                code: code.to_owned(),
                message: message.into(),
                field: None,
                details: None,
            }),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// Names a field of the request body: `path` is a JSON Pointer already (`/entries/0/time`)
    /// or a dotted serde path (`entries[0].time`, `name`), turned into one.
    pub fn with_body_field(self, path: &str) -> Self {
        let pointer = body_pointer(path);
        self.with_field(pointer)
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.body.details = Some(details);
        self
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// A failure that is our fault: logged in full, answered without detail.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "internal error; see the server log for this request id",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(*self.body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "expected a request body with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(err) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "MalformedJson",
                format!("the request body is not valid JSON: {}", source_text(&err)),
            ),
            JsonRejection::JsonDataError(err) => shape_error(source_text(&err)),
            JsonRejection::BytesRejection(err) => {
                let status = err.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        status,
                        "PayloadTooLarge",
                        "the request body is larger than the server accepts",
                    )
                } else {
                    ApiError::new(status, "BadRequestBody", err.body_text())
                }
            }
            other => ApiError::new(other.status(), "BadRequest", other.body_text()),
        }
    }
}

fn source_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text = inner.to_string();
        source = inner.source();
    }
    text
}

/// A JSON body extractor whose rejections answer with [`ErrorBody`].
///
/// Unlike axum's `Json`, a body that is not well-formed JSON is always `400 MalformedJson` (even
/// when the shape is also wrong, e.g. a cut-off body), and well-formed JSON of the wrong shape is
/// always `422 InvalidRequestBody` (even where serde reports it as a syntax error, e.g. a number
/// where an enum's string is expected).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::from(JsonRejection::MissingJsonContentType(
                Default::default(),
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|err| ApiError::from(JsonRejection::from(err)))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body: syntax first (400), then shape (422).
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MalformedJson",
            format!("the request body is not valid JSON: {err}"),
        ));
    }
    match Json::<T>::from_bytes(bytes) {
        Ok(Json(value)) => Ok(value),
        // Well-formed JSON (checked above): what serde calls syntax here is the wrong shape.
        Err(JsonRejection::JsonSyntaxError(err)) => Err(shape_error(source_text(&err))),
        Err(other) => Err(other.into()),
    }
}

/// `entries[0].time` -> `/entries/0/time`; a JSON Pointer is returned as it is.
pub(crate) fn body_pointer(path: &str) -> String {
    if path.is_empty() || path.starts_with('/') {
        return path.to_owned();
    }
    let mut pointer = String::new();
    for part in path.split('.') {
        let (key, indexes) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            pointer = stepyard_statelang::pointer_push(&pointer, key);
        }
        for index in indexes.split('[').map(|i| i.trim_end_matches(']')) {
            if !index.is_empty() {
                pointer = stepyard_statelang::pointer_push(&pointer, index);
            }
        }
    }
    pointer
}

fn shape_error(text: String) -> ApiError {
    let field = text
        .split_once(':')
        .map(|(path, _)| path.trim().to_owned())
        .filter(|path| !path.is_empty() && !path.contains(' '));
    let mut error = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "InvalidRequestBody",
        format!("the request body does not have the expected shape: {text}"),
    );
    if let Some(field) = field {
        error = error.with_body_field(&field);
    }
    error
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<mime_guess_free::Mime>().ok())
        .is_some_and(|mime| mime.is_json())
}

/// An optional JSON body: an empty body is `None`; anything else must be JSON of the right shape.
impl<S, T> axum::extract::OptionalFromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let headers = req.headers().clone();
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|err| ApiError::from(JsonRejection::from(err)))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        if !is_json(&headers) {
            return Err(ApiError::from(JsonRejection::MissingJsonContentType(
                Default::default(),
            )));
        }
        parse_json(&bytes).map(|value| Some(ApiJson(value)))
    }
}

/// A query-string extractor whose rejections answer `400 InvalidParameter` with the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let text = source_text(&rejection);
                let mut error = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    format!("a query parameter is not valid: {text}"),
                );
                if let Some((name, _)) = text.split_once(':').filter(|(n, _)| !n.contains(' ')) {
                    error = error.with_field(name.trim());
                }
                Err(error)
            }
        }
    }
}

/// A path extractor whose rejections answer `400 InvalidParameter` with the error body.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!("a path segment is not valid: {}", err.body_text()),
            )),
            // Routing bugs, not the caller's fault.
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// Just enough media-type parsing to tell JSON (`application/json`, `application/*+json`).
mod mime_guess_free {
    pub struct Mime(String);

    impl std::str::FromStr for Mime {
        type Err = ();
        fn from_str(text: &str) -> Result<Self, ()> {
            let essence = text.split(';').next().unwrap_or_default().trim();
            if essence.contains('/') {
                Ok(Mime(essence.to_ascii_lowercase()))
            } else {
                Err(())
            }
        }
    }

    impl Mime {
        pub fn is_json(&self) -> bool {
            let (kind, subtype) = self.0.split_once('/').unwrap_or_default();
            kind == "application" && (subtype == "json" || subtype.ends_with("+json"))
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::body_pointer;

    #[test]
    fn body_fields_become_json_pointers() {
        for (path, pointer) in [
            ("name", "/name"),
            ("entries[0].time", "/entries/0/time"),
            ("a.b[2][3]", "/a/b/2/3"),
            ("/definition", "/definition"),
            ("we~ird/key", "/we~0ird~1key"),
        ] {
            assert_eq!(body_pointer(path), pointer, "{path}");
        }
    }
}
