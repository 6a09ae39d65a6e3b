//! `/v1/task-tokens`: complete or keep alive a task that waits for its token
//! (`.waitForTaskToken`, activities).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(task_success))
        .routes(routes!(task_failure))
        .routes(routes!(task_heartbeat))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"task_token": "AQB8AAAAKgAAAAMAAAAAAAAAAf3Xv0c2", "output": {"approved": true}}))]
pub struct TaskSuccessBody {
    #[schema(example = "AQB8AAAAKgAAAAMAAAAAAAAAAf3Xv0c2")]
    pub task_token: String,
    /// The task's result (any JSON).
    #[schema(value_type = Object)]
    pub output: Value,
}

/// Complete a waiting task with its result.
#[utoipa::path(
    post,
    path = "/v1/task-tokens/success",
    tag = "task tokens",
    request_body = TaskSuccessBody,
    responses(
        (status = 204, description = "Accepted"),
        (status = 400, description = "Malformed token or output", body = ErrorBody),
        (status = 404, description = "The task is not waiting (finished, or unknown token)", body = ErrorBody),
        (status = 409, description = "The task timed out", body = ErrorBody),
    )
)]
pub async fn task_success(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TaskSuccessBody>,
) -> ApiResult<StatusCode> {
    state
        .engine()
        .send_task_success(&body.task_token, &body.output.to_string())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskFailureBody {
    pub task_token: String,
    #[serde(default)]
    #[schema(example = "Rejected")]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// Fail a waiting task (its `error` is matched by the state's Retry and Catch).
#[utoipa::path(
    post,
    path = "/v1/task-tokens/failure",
    tag = "task tokens",
    request_body = TaskFailureBody,
    responses(
        (status = 204, description = "Accepted"),
        (status = 400, description = "Malformed token", body = ErrorBody),
        (status = 404, description = "The task is not waiting", body = ErrorBody),
        (status = 409, description = "The task timed out", body = ErrorBody),
    )
)]
pub async fn task_failure(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TaskFailureBody>,
) -> ApiResult<StatusCode> {
    state
        .engine()
        .send_task_failure(&body.task_token, body.error, body.cause)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskHeartbeatBody {
    #[schema(example = "AQB8AAAAKgAAAAMAAAAAAAAAAf3Xv0c2")]
    pub task_token: String,
}

/// Tell a task with `HeartbeatSeconds` that its worker is alive.
#[utoipa::path(
    post,
    path = "/v1/task-tokens/heartbeat",
    tag = "task tokens",
    request_body = TaskHeartbeatBody,
    responses(
        (status = 204, description = "Accepted"),
        (status = 404, description = "The task is not waiting", body = ErrorBody),
        (status = 409, description = "The task timed out", body = ErrorBody),
    )
)]
pub async fn task_heartbeat(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TaskHeartbeatBody>,
) -> ApiResult<StatusCode> {
    state.engine().send_task_heartbeat(&body.task_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
