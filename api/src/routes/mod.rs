//! The router: one module per resource, each handler annotated with `#[utoipa::path]`.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub mod activities;
pub mod event_buses;
pub mod executions;
pub mod functions;
pub mod health;
pub mod state_machines;
pub mod system;
pub mod tags;
pub mod task_definitions;
pub mod tasks;
pub mod tasks_containers;
pub mod topics;
pub mod wire;

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
        (name = "state machines", description = "ASL definitions and their revisions"),
        (name = "executions", description = "Runs of a state machine and their history"),
        (name = "task tokens", description = "Completing tasks that wait for a token"),
        (name = "activities", description = "Task queues polled by external workers"),
        (name = "containers", description = "Task definitions and container tasks on Docker (ecs:runTask)"),
        (name = "functions", description = "Functions run on demand (the Lambda idea): definitions, invocations, logs"),
        (name = "event bus", description = "Buses, events, rules with patterns or schedules, targets, archives, replays, dead letters, webhooks in (the EventBridge idea)"),
        (name = "topics", description = "Topics, subscriptions (http/https, email, function, event bus) with filter policies, publishing, dead letters (the SNS idea)"),
        (name = "aws", description = "The AWS JSON protocol for AWS SDKs and the AWS CLI"),
        (name = "system", description = "Health, metrics and documentation")
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(system::routes())
        .merge(state_machines::routes())
        .merge(executions::routes())
        .merge(tasks::routes())
        .merge(activities::routes())
        .merge(tags::routes())
        .merge(functions::routes())
        .merge(task_definitions::routes())
        .merge(tasks_containers::routes())
        .merge(topics::routes())
        .merge(event_buses::routes())
}

/// The router and its OpenAPI document.
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut api) = routes().split_for_parts();
    document_body_errors(&mut api);
    (router, api)
}

/// The OpenAPI document of the native API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// Every operation that takes a JSON body can answer the body's errors (`ApiJson`'s rejections),
/// whether or not its handler's annotation lists them.
fn document_body_errors(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    const BODY_ERRORS: [(&str, &str); 4] = [
        (
            "400",
            "Malformed JSON (`MalformedJson`), or an invalid value",
        ),
        (
            "413",
            "The body is larger than the server accepts (`PayloadTooLarge`)",
        ),
        (
            "415",
            "Not `Content-Type: application/json` (`UnsupportedMediaType`)",
        ),
        (
            "422",
            "Well-formed JSON of the wrong shape: a missing, unknown or mistyped field (`InvalidRequestBody`)",
        ),
    ];
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let takes_json = operation
                .request_body
                .as_ref()
                .is_some_and(|body| body.content.contains_key("application/json"));
            if !takes_json {
                continue;
            }
            for (status, description) in BODY_ERRORS {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                                    .build(),
                            )
                            .build()
                            .into()
                    });
            }
        }
    }
}

/// The whole HTTP surface of the server.
pub fn app(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    let (router, api) = parts();
    router
        .route("/", axum::routing::post(crate::aws::handle))
        .merge(functions::lambda_routes())
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .with_state(state)
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

/// What every request goes through, in one middleware (each `from_fn` layer and tower-http
/// layer costs a boxed future and a service clone per request): a request id (the client's
/// `x-request-id`, or a new UUID) on the request, the response and every log line written
/// while handling it; the rate limit and bearer tokens; the request timeout; the error body
/// for answers that have none; the HTTP metrics and one log line per request.
async fn edge(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = match request.headers().get(REQUEST_ID_HEADER) {
        Some(id) => id.clone(),
        None => {
            let id = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .expect("a UUID is a valid header value");
            request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
            id
        }
    };
    let id_text = request_id.to_str().unwrap_or("-");
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request.extensions().get::<MatchedPath>().cloned();
    // Every log line written while handling the request carries its id.
    let span = tracing::info_span!("request", request_id = %id_text);
    tracing::debug!(target: "stepyard::http", %method, %path, request_id = %id_text, "request started");
    let timeout = state.config().request_timeout;
    let response = async move {
        if let Some(refused) = guard(&state, &request) {
            return refused;
        }
        match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => status_error(StatusCode::SERVICE_UNAVAILABLE),
        }
    }
    .instrument(span)
    .await;
    let mut response = fill_empty_errors(response).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let latency_us = elapsed.as_micros() as u64;
    let route = match &route {
        Some(matched) => matched.as_str(),
        None if path == "/" => "/",
        None => "unmatched",
    };
    let http = crate::metrics::http(&method, route, status);
    http.requests.increment(1);
    http.duration.record(elapsed.as_secs_f64());
    tracing::info!(
        target: "stepyard::http",
        %method,
        %path,
        status,
        latency_us,
        request_id = %id_text,
        "request"
    );
    if !response.headers().contains_key(REQUEST_ID_HEADER) {
        response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
    }
    response
}

/// Rate limit for every request, bearer tokens for the native API: the answer when the
/// request is refused.
fn guard(state: &AppState, request: &Request) -> Option<Response> {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let path = request.uri().path();
    if !state.rate_limiter().allow(client, Instant::now()) {
        if path == "/" {
            return Some(crate::aws::throttled());
        }
        return Some(
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!(
                    "more than {} requests per second from this client",
                    state.config().rate_limit_per_second
                ),
            )
            .into_response(),
        );
    }
    let tokens = &state.config().auth_tokens;
    if !tokens.is_empty() && path.starts_with("/v1/") {
        let presented = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !crate::limits::token_allowed(presented.trim(), tokens) {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a valid `Authorization: Bearer <token>` header is needed",
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return Some(response);
        }
    }
    None
}

/// Layers that answer on their own (timeout, method not allowed, ...) give an empty body, and axum's
/// own rejections a plain-text one: give both the error body, keeping axum's text as the message.
async fn fill_empty_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    match content_type {
        None => status_error(status),
        Some(text) if text.starts_with("text/plain") && status.is_client_error() => {
            // Rejection texts are short; anything longer is not one of them.
            match axum::body::to_bytes(response.into_body(), 4096).await {
                Ok(bytes) => {
                    let mut response = status_error(status);
                    let message = String::from_utf8_lossy(&bytes).trim().to_owned();
                    if !message.is_empty() {
                        let code = status_code_name(status);
                        response = ApiError::new(status, code, message).into_response();
                    }
                    response
                }
                Err(_) => status_error(status),
            }
        }
        Some(_) => response,
    }
}

fn status_code_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLarge",
        StatusCode::SERVICE_UNAVAILABLE => "RequestTimeout",
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        StatusCode::NOT_FOUND => "RouteNotFound",
        StatusCode::INTERNAL_SERVER_ERROR => "InternalError",
        _ => "BadRequest",
    }
}

/// Turns a plain-text status into the API's error body, for layers that answer on their own.
pub fn status_error(status: StatusCode) -> Response {
    let code = status_code_name(status);
    let mut response =
        ApiError::new(status, code, status.canonical_reason().unwrap_or("error")).into_response();
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    response
}
