//! `.../tags` of state machines, activities, event buses and rules: a resource's tags (AWS's
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
        .routes(routes!(get_bus_tags, tag_bus))
        .routes(routes!(untag_bus))
        .routes(routes!(get_rule_tags, tag_rule))
        .routes(routes!(untag_rule))
}

/// The tagged resource's ARN and who keeps its tags: the engine (state machines, activities)
/// or the event bus (buses, rules).
struct Resource {
    arn: String,
    owner: Owner,
}

enum Owner {
    /// With how to say the resource is missing in the words of its own routes
    /// (`StateMachineDoesNotExist`, `ActivityDoesNotExist`) rather than the generic one.
    Engine {
        missing: fn(String) -> EngineError,
    },
    Bus,
}

impl Resource {
    fn state_machine(state: &AppState, name: &str) -> Self {
        Resource {
            arn: state.engine().arn_of_state_machine(name),
            owner: Owner::Engine {
                missing: EngineError::StateMachineDoesNotExist,
            },
        }
    }

    fn activity(state: &AppState, name: &str) -> Self {
        Resource {
            arn: state.engine().arn_of_activity(name),
            owner: Owner::Engine {
                missing: EngineError::ActivityDoesNotExist,
            },
        }
    }

    fn bus(state: &AppState, name: &str) -> Self {
        Resource {
            arn: state.bus().bus_arn(name),
            owner: Owner::Bus,
        }
    }

    fn rule(state: &AppState, bus: &str, rule: &str) -> Self {
        Resource {
            arn: state.bus().rule_arn(bus, rule),
            owner: Owner::Bus,
        }
    }

    fn error(&self, err: EngineError) -> EngineError {
        match (&self.owner, err) {
            // A name that makes no ARN (it holds a `:`) names nothing that can exist.
            (
                Owner::Engine { missing },
                EngineError::ResourceNotFound(_) | EngineError::InvalidArn(_),
            ) => missing(self.arn.clone()),
            (_, other) => other,
        }
    }

    async fn list(&self, state: &AppState) -> ApiResult<Json<TagSet>> {
        let tags = match self.owner {
            Owner::Engine { .. } => state.engine().list_tags_for_resource(&self.arn).await,
            Owner::Bus => state.bus().list_tags_for_resource(&self.arn),
        };
        Ok(Json(TagSet {
            tags: tags.map_err(|e| self.error(e))?,
        }))
    }

    async fn add(&self, state: &AppState, body: TagSet) -> ApiResult<Json<TagSet>> {
        match self.owner {
            Owner::Engine { .. } => state.engine().tag_resource(&self.arn, body.tags).await,
            Owner::Bus => state.bus().tag_resource(&self.arn, body.tags).await,
        }
        .map_err(|e| self.error(e))?;
        self.list(state).await
    }

    async fn remove(&self, state: &AppState, key: String) -> ApiResult<StatusCode> {
        let keys = [key];
        match self.owner {
            Owner::Engine { .. } => state.engine().untag_resource(&self.arn, &keys).await,
            Owner::Bus => state.bus().untag_resource(&self.arn, &keys).await,
        }
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

/// An event bus's tags.
#[utoipa::path(
    get,
    path = "/v1/event-buses/{bus}/tags",
    tag = "event bus",
    params(("bus" = String, Path, description = "Bus name")),
    responses(
        (status = 200, description = "Its tags", body = TagSet),
        (status = 404, description = "No such bus", body = ErrorBody),
    )
)]
pub async fn get_bus_tags(
    State(state): State<AppState>,
    ApiPath(bus): ApiPath<String>,
) -> ApiResult<Json<TagSet>> {
    Resource::bus(&state, &bus).list(&state).await
}

/// Add tags to an event bus; a key it already has takes the new value. Answers every tag it
/// has afterwards.
#[utoipa::path(
    post,
    path = "/v1/event-buses/{bus}/tags",
    tag = "event bus",
    params(("bus" = String, Path, description = "Bus name")),
    request_body = TagSet,
    responses(
        (status = 200, description = "Every tag it has now", body = TagSet),
        (status = 400, description = "A tag AWS would refuse (`ValidationError`) or more than 50 tags (`LimitExceeded`)", body = ErrorBody),
        (status = 404, description = "No such bus", body = ErrorBody),
        (status = 422, description = "`tags` is not an object of strings", body = ErrorBody),
    )
)]
pub async fn tag_bus(
    State(state): State<AppState>,
    ApiPath(bus): ApiPath<String>,
    ApiJson(body): ApiJson<TagSet>,
) -> ApiResult<Json<TagSet>> {
    Resource::bus(&state, &bus).add(&state, body).await
}

/// Remove a tag from an event bus (a key it does not have is not an error).
#[utoipa::path(
    delete,
    path = "/v1/event-buses/{bus}/tags/{key}",
    tag = "event bus",
    params(
        ("bus" = String, Path, description = "Bus name"),
        ("key" = String, Path, description = "Tag key"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such bus", body = ErrorBody),
    )
)]
pub async fn untag_bus(
    State(state): State<AppState>,
    ApiPath((bus, key)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    Resource::bus(&state, &bus).remove(&state, key).await
}

/// A rule's tags.
#[utoipa::path(
    get,
    path = "/v1/event-buses/{bus}/rules/{rule}/tags",
    tag = "event bus",
    params(
        ("bus" = String, Path, description = "Bus name"),
        ("rule" = String, Path, description = "Rule name"),
    ),
    responses(
        (status = 200, description = "Its tags", body = TagSet),
        (status = 404, description = "No such bus or rule", body = ErrorBody),
    )
)]
pub async fn get_rule_tags(
    State(state): State<AppState>,
    ApiPath((bus, rule)): ApiPath<(String, String)>,
) -> ApiResult<Json<TagSet>> {
    Resource::rule(&state, &bus, &rule).list(&state).await
}

/// Add tags to a rule; a key it already has takes the new value. Answers every tag it has
/// afterwards.
#[utoipa::path(
    post,
    path = "/v1/event-buses/{bus}/rules/{rule}/tags",
    tag = "event bus",
    params(
        ("bus" = String, Path, description = "Bus name"),
        ("rule" = String, Path, description = "Rule name"),
    ),
    request_body = TagSet,
    responses(
        (status = 200, description = "Every tag it has now", body = TagSet),
        (status = 400, description = "A tag AWS would refuse (`ValidationError`) or more than 50 tags (`LimitExceeded`)", body = ErrorBody),
        (status = 404, description = "No such bus or rule", body = ErrorBody),
        (status = 422, description = "`tags` is not an object of strings", body = ErrorBody),
    )
)]
pub async fn tag_rule(
    State(state): State<AppState>,
    ApiPath((bus, rule)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<TagSet>,
) -> ApiResult<Json<TagSet>> {
    Resource::rule(&state, &bus, &rule).add(&state, body).await
}

/// Remove a tag from a rule (a key it does not have is not an error).
#[utoipa::path(
    delete,
    path = "/v1/event-buses/{bus}/rules/{rule}/tags/{key}",
    tag = "event bus",
    params(
        ("bus" = String, Path, description = "Bus name"),
        ("rule" = String, Path, description = "Rule name"),
        ("key" = String, Path, description = "Tag key"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such bus or rule", body = ErrorBody),
    )
)]
pub async fn untag_rule(
    State(state): State<AppState>,
    ApiPath((bus, rule, key)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    Resource::rule(&state, &bus, &rule)
        .remove(&state, key)
        .await
}
