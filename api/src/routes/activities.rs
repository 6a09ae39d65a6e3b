//! `/v1/activities`: named queues of task inputs that external workers poll.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{Activity, ActivityList, PageParams, json_text};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_activity, list_activities))
        .routes(routes!(get_activity, delete_activity))
        .routes(routes!(poll_activity))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateActivityBody {
    #[schema(example = "approve")]
    pub name: String,
    /// Tags, key to value (see `POST /v1/activities/{name}/tags`); ignored when the activity
    /// already exists.
    #[serde(default)]
    #[schema(example = json!({"team": "platform"}))]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Create an activity (creating an existing one returns it).
#[utoipa::path(
    post,
    path = "/v1/activities",
    tag = "activities",
    request_body = CreateActivityBody,
    responses(
        (status = 201, description = "Created", body = Activity),
        (status = 400, description = "Invalid name, a tag AWS would refuse (`ValidationError`) or more than 50 tags (`LimitExceeded`)", body = ErrorBody),
    )
)]
pub async fn create_activity(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateActivityBody>,
) -> ApiResult<(StatusCode, Json<Activity>)> {
    let info = state
        .engine()
        .create_activity_with_tags(&body.name, body.tags)
        .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// List activities.
#[utoipa::path(
    get,
    path = "/v1/activities",
    tag = "activities",
    params(PageParams),
    responses((status = 200, description = "One page", body = ActivityList))
)]
pub async fn list_activities(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ActivityList>> {
    let page = state.engine().list_activities(params.page()).await?;
    Ok(Json(ActivityList {
        activities: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    }))
}

/// Get an activity.
#[utoipa::path(
    get,
    path = "/v1/activities/{name}",
    tag = "activities",
    params(("name" = String, Path, description = "Activity name")),
    responses(
        (status = 200, description = "The activity", body = Activity),
        (status = 404, description = "No such activity", body = ErrorBody),
    )
)]
pub async fn get_activity(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Activity>> {
    let arn = state.activity_arn(&name);
    Ok(Json(state.engine().describe_activity(&arn).await?.into()))
}

/// Delete an activity.
#[utoipa::path(
    delete,
    path = "/v1/activities/{name}",
    tag = "activities",
    params(("name" = String, Path, description = "Activity name")),
    responses(
        (status = 204, description = "Deleted, or there was no such activity: deleting is idempotent, as in AWS"),
    )
)]
pub async fn delete_activity(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let arn = state.activity_arn(&name);
    state.engine().delete_activity(&arn).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollParams {
    /// Seconds to wait for a task, 0 to 60 (default 60).
    pub wait_seconds: Option<u64>,
    /// A name for the worker, recorded in the history.
    pub worker_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"task_token": "AQB8AAAAKgAAAAMAAAAAAAAAAf3Xv0c2", "input": {"pull_request": 42}}))]
pub struct ActivityTask {
    /// Answer with `/v1/task-tokens/success` or `/failure`.
    #[schema(example = "AQB8AAAAKgAAAAMAAAAAAAAAAf3Xv0c2")]
    pub task_token: String,
    /// Any JSON value: the Task state's effective input.
    #[schema(value_type = serde_json::Value)]
    pub input: Value,
}

/// Take the next task of an activity, waiting up to `wait_seconds` for one (204 when none came).
#[utoipa::path(
    post,
    path = "/v1/activities/{name}/poll",
    tag = "activities",
    params(("name" = String, Path, description = "Activity name"), PollParams),
    responses(
        (status = 200, description = "A task", body = ActivityTask),
        (status = 204, description = "No task within the wait"),
        (status = 400, description = "wait_seconds over 60", body = ErrorBody),
        (status = 404, description = "No such activity", body = ErrorBody),
    )
)]
pub async fn poll_activity(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<PollParams>,
    _body: Option<ApiJson<Value>>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let wait = params.wait_seconds.unwrap_or(60);
    if wait > 60 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "wait_seconds must be between 0 and 60",
        )
        .with_field("wait_seconds"));
    }
    let arn = state.activity_arn(&name);
    let task = state
        .engine()
        .get_activity_task(&arn, params.worker_name, Duration::from_secs(wait))
        .await?;
    Ok(match task {
        Some(task) => Json(ActivityTask {
            input: json_text(&task.input),
            task_token: task.task_token,
        })
        .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}
