//! `/v1/state-machines`: create, list, get, update, delete, and the versions (revisions).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use stepyard_engine::{CreateStateMachine, StateMachineType};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{
    PageParams, StateMachine, StateMachineList, StateMachineVersion, StateMachineVersionList,
};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_state_machine, list_state_machines))
        .routes(routes!(
            get_state_machine,
            update_state_machine,
            delete_state_machine
        ))
        .routes(routes!(list_state_machine_versions))
        .routes(routes!(get_state_machine_version))
}

/// A definition given as a JSON object, or as a string holding the JSON (as AWS takes it).
pub fn definition_text(definition: &Value, field: &str) -> ApiResult<String> {
    match definition {
        Value::String(text) => Ok(text.clone()),
        Value::Object(_) => Ok(definition.to_string()),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidRequestBody",
            "`definition` must be an ASL object or a string holding one",
        )
        .with_field(field)),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "hello", "definition": {"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "Result": {"greeting": "hi"}, "End": true}}}, "type": "STANDARD"}))]
pub struct CreateStateMachineBody {
    /// 1 to 80 characters: letters, digits, `-` and `_`.
    #[schema(example = "hello")]
    pub name: String,
    /// The ASL definition (an object, or a string holding it).
    #[schema(value_type = Object)]
    pub definition: Value,
    /// `STANDARD` (default) or `EXPRESS`.
    #[serde(rename = "type", default)]
    #[schema(example = "STANDARD")]
    pub kind: Option<String>,
    /// Accepted for compatibility; not used.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Tags, key to value (see `POST /v1/state-machines/{name}/tags`); ignored when the state
    /// machine already exists.
    #[serde(default)]
    #[schema(example = json!({"team": "platform"}))]
    pub tags: std::collections::BTreeMap<String, String>,
}

pub fn parse_type(kind: Option<&str>) -> ApiResult<StateMachineType> {
    match kind {
        None | Some("STANDARD") => Ok(StateMachineType::Standard),
        Some("EXPRESS") => Ok(StateMachineType::Express),
        Some(other) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidRequestBody",
            format!("`type` must be STANDARD or EXPRESS, not {other:?}"),
        )
        .with_field("/type")),
    }
}

/// Create a state machine.
///
/// The definition is validated first: an invalid one is refused with every problem listed in
/// `details.problems`, each with its JSON Pointer.
#[utoipa::path(
    post,
    path = "/v1/state-machines",
    tag = "state machines",
    request_body = CreateStateMachineBody,
    responses(
        (status = 201, description = "Created", body = StateMachine),
        (status = 400, description = "Invalid name, malformed JSON, a tag AWS would refuse (`ValidationError`) or more than 50 tags (`LimitExceeded`)", body = ErrorBody),
        (status = 409, description = "A state machine with this name exists", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid definition (every problem in `details.problems`) or wrong field types", body = ErrorBody),
    )
)]
pub async fn create_state_machine(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateStateMachineBody>,
) -> ApiResult<(StatusCode, Json<StateMachine>)> {
    let definition = definition_text(&body.definition, "/definition")?;
    let info = state
        .engine()
        .create_state_machine(CreateStateMachine {
            name: body.name,
            definition,
            kind: parse_type(body.kind.as_deref())?,
            role_arn: body.role_arn,
            tags: body.tags,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// List state machines.
#[utoipa::path(
    get,
    path = "/v1/state-machines",
    tag = "state machines",
    params(PageParams),
    responses(
        (status = 200, description = "One page", body = StateMachineList),
        (status = 400, description = "Bad paging token", body = ErrorBody),
    )
)]
pub async fn list_state_machines(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<StateMachineList>> {
    let page = state.engine().list_state_machines(params.page()).await?;
    Ok(Json(StateMachineList {
        state_machines: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    }))
}

/// Get a state machine by name.
#[utoipa::path(
    get,
    path = "/v1/state-machines/{name}",
    tag = "state machines",
    params(("name" = String, Path, description = "State machine name")),
    responses(
        (status = 200, description = "The state machine", body = StateMachine),
        (status = 404, description = "No such state machine", body = ErrorBody),
    )
)]
pub async fn get_state_machine(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<StateMachine>> {
    let arn = state.state_machine_arn(&name);
    Ok(Json(
        state.engine().describe_state_machine(&arn).await?.into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"definition": {"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "Result": {"greeting": "hello again"}, "End": true}}}}))]
pub struct UpdateStateMachineBody {
    /// The new ASL definition (an object, or a string holding it). May be left out when
    /// `role_arn` is given.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
    /// The new role ARN (1 to 256 characters). May be left out when `definition` is given.
    #[serde(default)]
    #[schema(example = "arn:aws:iam::123456789012:role/stepyard")]
    pub role_arn: Option<String>,
}

/// Change a state machine's definition, its role, or both.
///
/// A change to either is a new revision, as with AWS's UpdateStateMachine; running executions
/// keep theirs.
#[utoipa::path(
    put,
    path = "/v1/state-machines/{name}",
    tag = "state machines",
    params(("name" = String, Path, description = "State machine name")),
    request_body = UpdateStateMachineBody,
    responses(
        (status = 200, description = "Updated", body = StateMachine),
        (status = 404, description = "No such state machine", body = ErrorBody),
        (status = 422, description = "Invalid definition, neither `definition` nor `role_arn` given, or a `role_arn` not 1 to 256 characters", body = ErrorBody),
    )
)]
pub async fn update_state_machine(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateStateMachineBody>,
) -> ApiResult<Json<StateMachine>> {
    let arn = state.state_machine_arn(&name);
    let definition = body
        .definition
        .as_ref()
        .map(|d| definition_text(d, "/definition"))
        .transpose()?;
    if definition.is_none() && body.role_arn.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidRequestBody",
            "give `definition`, `role_arn` or both",
        )
        .with_field("/definition"));
    }
    if let Some(role) = &body.role_arn
        && !(1..=256).contains(&role.chars().count())
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidRequestBody",
            "`role_arn` must be 1 to 256 characters",
        )
        .with_field("/role_arn"));
    }
    let info = state
        .engine()
        .update_state_machine_with(&arn, definition, body.role_arn)
        .await?;
    Ok(Json(info.into()))
}

/// Delete a state machine (running executions finish on their revision).
#[utoipa::path(
    delete,
    path = "/v1/state-machines/{name}",
    tag = "state machines",
    params(("name" = String, Path, description = "State machine name")),
    responses(
        (status = 204, description = "Deleted, or there was no such state machine: deleting is idempotent, as in AWS"),
    )
)]
pub async fn delete_state_machine(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let arn = state.state_machine_arn(&name);
    state.engine().delete_state_machine(&arn).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List a state machine's versions, newest first.
///
/// Every update that changes the definition or the role makes a new revision; the current one has
/// `current: true`. Executions keep the revision they started on.
#[utoipa::path(
    get,
    path = "/v1/state-machines/{name}/versions",
    tag = "state machines",
    params(("name" = String, Path, description = "State machine name"), PageParams),
    responses(
        (status = 200, description = "One page, newest first", body = StateMachineVersionList),
        (status = 400, description = "Bad paging token", body = ErrorBody),
        (status = 404, description = "No such state machine", body = ErrorBody),
    )
)]
pub async fn list_state_machine_versions(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<StateMachineVersionList>> {
    let arn = state.state_machine_arn(&name);
    let page = state
        .engine()
        .list_state_machine_revisions(&arn, params.page())
        .await?;
    Ok(Json(StateMachineVersionList {
        versions: page.items.into_iter().map(Into::into).collect(),
        next_token: page.next_token,
    }))
}

/// Get one version of a state machine, with its definition.
#[utoipa::path(
    get,
    path = "/v1/state-machines/{name}/versions/{revision_id}",
    tag = "state machines",
    params(
        ("name" = String, Path, description = "State machine name"),
        ("revision_id" = String, Path, description = "A `revision_id` from the versions list or the state machine"),
    ),
    responses(
        (status = 200, description = "The version", body = StateMachineVersion),
        (status = 404, description = "No such state machine or version", body = ErrorBody),
    )
)]
pub async fn get_state_machine_version(
    State(state): State<AppState>,
    ApiPath((name, revision_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<StateMachineVersion>> {
    let arn = state.state_machine_arn(&name);
    let revision = state
        .engine()
        .describe_state_machine_revision(&arn, &revision_id)
        .await?;
    Ok(Json(revision.into()))
}
