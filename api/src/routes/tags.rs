//! `/v1/state-machines/{name}/tags` and `/v1/activities/{name}/tags`: a resource's tags (AWS's
//! TagResource, UntagResource and ListTagsForResource).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stepyard_engine::Error as EngineError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::TagSet;
use crate::error::{ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_state_machine_tags, tag_state_machine))
        .routes(routes!(untag_state_machine))
        .routes(routes!(get_activity_tags, tag_activity))
        .routes(routes!(untag_activity))
}

/// The tagged resource's ARN, and how to say it is missing in the words of its own routes
/// (`StateMachineDoesNotExist`, `ActivityDoesNotExist`) rather than the generic one.
struct Resource {
    arn: String,
    missing: fn(String) -> EngineError,
}

impl Resource {
    fn state_machine(state: &AppState, name: &str) -> Self {
        Resource {
            arn: state.engine().arn_of_state_machine(name),
            missing: EngineError::StateMachineDoesNotExist,
        }
    }

    fn activity(state: &AppState, name: &str) -> Self {
        Resource {
            arn: state.engine().arn_of_activity(name),
            missing: EngineError::ActivityDoesNotExist,
        }
    }

    fn error(&self, err: EngineError) -> EngineError {
        match err {
            EngineError::ResourceNotFound(_) => (self.missing)(self.arn.clone()),
            other => other,
        }
    }

    async fn list(&self, state: &AppState) -> ApiResult<Json<TagSet>> {
        let tags = state
            .engine()
            .list_tags_for_resource(&self.arn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(Json(TagSet { tags }))
    }

    async fn add(&self, state: &AppState, body: TagSet) -> ApiResult<Json<TagSet>> {
        state
            .engine()
            .tag_resource(&self.arn, body.tags)
            .await
            .map_err(|e| self.error(e))?;
        self.list(state).await
    }

    async fn remove(&self, state: &AppState, key: String) -> ApiResult<StatusCode> {
        state
            .engine()
            .untag_resource(&self.arn, &[key])
            .await
            .map_err(|e| self.error(e))?;
        Ok(StatusCode::NO_CONTENT)
    }
}

/// A state machine's tags.
#[utoipa::path(
    get,
    path = "/v1/state-machines/{name}/tags",
    tag = "state machines",
    params(("name" = String, Path, description = "State machine name")),
    responses(
        (status = 200, description = "Its tags", body = TagSet),
        (status = 404, description = "No such state machine", body = ErrorBody),
    )
)]
pub async fn get_state_machine_tags(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<TagSet>> {
    Resource::state_machine(&state, &name).list(&state).await
}

/// Add tags to a state machine; a key it already has takes the new value. Answers every tag
/// it has afterwards.
#[utoipa::path(
    post,
    path = "/v1/state-machines/{name}/tags",
    tag = "state machines",
    params(("name" = String, Path, description = "State machine name")),
    request_body = TagSet,
    responses(
        (status = 200, description = "Every tag it has now", body = TagSet),
        (status = 400, description = "A tag AWS would refuse (`ValidationError`: length, characters, the reserved `aws:` prefix) or more than 50 tags (`LimitExceeded`)", body = ErrorBody),
        (status = 404, description = "No such state machine", body = ErrorBody),
        (status = 422, description = "`tags` is not an object of strings", body = ErrorBody),
    )
)]
pub async fn tag_state_machine(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<TagSet>,
) -> ApiResult<Json<TagSet>> {
    Resource::state_machine(&state, &name)
        .add(&state, body)
        .await
}

/// Remove a tag from a state machine (a key it does not have is not an error).
#[utoipa::path(
    delete,
    path = "/v1/state-machines/{name}/tags/{key}",
    tag = "state machines",
    params(
        ("name" = String, Path, description = "State machine name"),
        ("key" = String, Path, description = "Tag key"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such state machine", body = ErrorBody),
    )
)]
pub async fn untag_state_machine(
    State(state): State<AppState>,
    ApiPath((name, key)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    Resource::state_machine(&state, &name)
        .remove(&state, key)
        .await
}

/// An activity's tags.
#[utoipa::path(
    get,
    path = "/v1/activities/{name}/tags",
    tag = "activities",
    params(("name" = String, Path, description = "Activity name")),
    responses(
        (status = 200, description = "Its tags", body = TagSet),
        (status = 404, description = "No such activity", body = ErrorBody),
    )
)]
pub async fn get_activity_tags(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<TagSet>> {
    Resource::activity(&state, &name).list(&state).await
}

/// Add tags to an activity; a key it already has takes the new value. Answers every tag it
/// has afterwards.
#[utoipa::path(
    post,
    path = "/v1/activities/{name}/tags",
    tag = "activities",
    params(("name" = String, Path, description = "Activity name")),
    request_body = TagSet,
    responses(
        (status = 200, description = "Every tag it has now", body = TagSet),
        (status = 400, description = "A tag AWS would refuse (`ValidationError`) or more than 50 tags (`LimitExceeded`)", body = ErrorBody),
        (status = 404, description = "No such activity", body = ErrorBody),
        (status = 422, description = "`tags` is not an object of strings", body = ErrorBody),
    )
)]
pub async fn tag_activity(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<TagSet>,
) -> ApiResult<Json<TagSet>> {
    Resource::activity(&state, &name).add(&state, body).await
}

/// Remove a tag from an activity (a key it does not have is not an error).
#[utoipa::path(
    delete,
    path = "/v1/activities/{name}/tags/{key}",
    tag = "activities",
    params(
        ("name" = String, Path, description = "Activity name"),
        ("key" = String, Path, description = "Tag key"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such activity", body = ErrorBody),
    )
)]
pub async fn untag_activity(
    State(state): State<AppState>,
    ApiPath((name, key)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    Resource::activity(&state, &name).remove(&state, key).await
}
