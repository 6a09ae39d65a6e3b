//! The router: one module per resource, each handler annotated with `#[utoipa::path]`.

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub mod health;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stepyard",
        description = "Self-hosted AWS Step Functions and EventBridge: the native REST API.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "system", description = "Health and documentation")
    )
)]
struct ApiDoc;

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(health::routes())
}

/// The OpenAPI document of the native API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The whole HTTP surface of the server.
pub fn app(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    let timeout = state.config().request_timeout;
    let (router, api) = routes().split_for_parts();
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(middleware::from_fn(log_request))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(
        "RouteNotFound",
        format!(
            "no route for {} {}; see /docs",
            request.method(),
            request.uri().path()
        ),
    )
}

/// One log line per request: method, path, status, latency, request id.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    tracing::info!(
        target: "stepyard::http",
        %method,
        %path,
        status,
        latency_us,
        request_id = %request_id,
        "request"
    );
    response
}

/// Turns a plain-text status into the API's error body, for layers that answer on their own.
pub fn status_error(status: StatusCode) -> Response {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLarge",
        StatusCode::SERVICE_UNAVAILABLE => "RequestTimeout",
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        _ => "BadRequest",
    };
    let mut response =
        ApiError::new(status, code, status.canonical_reason().unwrap_or("error")).into_response();
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    response
}
