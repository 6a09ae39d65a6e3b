//! The Lambda Runtime API (version 2018-06-01) that function processes call.
//!
//! `AWS_LAMBDA_RUNTIME_API` is a bare `host:port`, so the address must tell which sandbox is
//! calling: every sandbox gets its own listener on `127.0.0.1:0` (see
//! `stepyard_workers::functions`), serving only these four endpoints for that one sandbox.
//! The listener stops when the sandbox's process ends. These endpoints are not part of the
//! native API (no auth, no `/v1`, not in the OpenAPI document): only the loopback process that
//! was given the address calls them.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use stepyard_workers::functions::{
    RuntimeApiBinding, RuntimeApiError, RuntimeApiServer, SandboxApi, ServeFuture,
};
use tokio::net::TcpListener;

/// Lambda's largest synchronous response (6 MB), with room for the JSON around it.
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 64 * 1024;
const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";

/// Serves each sandbox's Runtime API on its own loopback listener.
pub struct LoopbackRuntimeApi;

impl RuntimeApiServer for LoopbackRuntimeApi {
    fn serve(&self, sandbox: SandboxApi) -> ServeFuture {
        Box::pin(async move {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let address = listener.local_addr()?;
            let task = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router(sandbox)).await {
                    tracing::warn!(error = %e, "a sandbox's Runtime API listener failed");
                }
            });
            Ok(RuntimeApiBinding::new(address, AbortOnDrop(task)))
        })
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The four endpoints for one sandbox.
pub fn router(sandbox: SandboxApi) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/response",
            post(response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/error",
            post(error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .layer(DefaultBodyLimit::max(MAX_RESPONSE_BYTES))
        .with_state(sandbox)
}

async fn next(State(sandbox): State<SandboxApi>) -> Response {
    let invocation = match sandbox.next().await {
        Ok(invocation) => invocation,
        Err(e) => return failure(e),
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set(
        "lambda-runtime-deadline-ms",
        &invocation.deadline_ms.to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        &invocation.invoked_function_arn,
    );
    set("lambda-runtime-trace-id", &invocation.trace_id);
    if let Some(context) = &invocation.client_context {
        set("lambda-runtime-client-context", context);
    }
    if let Some(identity) = &invocation.cognito_identity {
        set("lambda-runtime-cognito-identity", identity);
    }
    set("content-type", "application/json");
    (StatusCode::OK, headers, invocation.payload).into_response()
}

async fn response(
    State(sandbox): State<SandboxApi>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    match sandbox.respond(&request_id, body).await {
        Ok(()) => accepted(),
        Err(e) => failure(e),
    }
}

async fn error(
    State(sandbox): State<SandboxApi>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match sandbox.fail(&request_id, error_type(&headers), body).await {
        Ok(()) => accepted(),
        Err(e) => failure(e),
    }
}

async fn init_error(
    State(sandbox): State<SandboxApi>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match sandbox.init_error(error_type(&headers), body).await {
        Ok(()) => accepted(),
        Err(e) => failure(e),
    }
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(ERROR_TYPE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({ "status": "OK" }))).into_response()
}

/// The Runtime API's error shape: `{"errorMessage", "errorType"}`.
fn failure(e: RuntimeApiError) -> Response {
    let (status, error_type) = match &e {
        RuntimeApiError::InvalidRequestId(_) => (StatusCode::BAD_REQUEST, "InvalidRequestID"),
        RuntimeApiError::InvalidStateTransition => {
            (StatusCode::FORBIDDEN, "InvalidStateTransition")
        }
        RuntimeApiError::Closed => (StatusCode::GONE, "SandboxClosed"),
    };
    (
        status,
        axum::Json(json!({ "errorMessage": e.to_string(), "errorType": error_type })),
    )
        .into_response()
}
