//! `/v1/task-definitions`: what container tasks run, in families of numbered revisions as ECS
//! has them (registering a family again makes its next revision).

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stepyard_workers::containers::{
    BindMount, DefinitionStatus, NetworkMode, ResultSource, TaskDefinition, TaskDefinitionSpec,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::rfc3339;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_task_definition, list_task_definitions))
        .routes(routes!(list_revisions))
        .routes(routes!(get_revision, deregister_revision))
}

/// A read-only bind mount of a host folder (inside the server's allowed folders).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MountWire {
    #[schema(example = "/srv/repos")]
    pub source: String,
    #[schema(example = "/src")]
    pub target: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterTaskDefinitionBody {
    /// The family: 1 to 255 letters, digits, hyphens and underscores.
    #[schema(example = "scan")]
    pub family: String,
    /// An image already on the Docker engine (Stepyard never pulls).
    #[schema(example = "scanner:1.4")]
    pub image: String,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    /// CPU units: 1024 is one core.
    #[serde(default)]
    #[schema(example = 1024)]
    pub cpu: Option<u32>,
    /// Memory limit in MiB (at least 6); no swap beyond it.
    #[serde(default)]
    #[schema(example = 512)]
    pub memory_mib: Option<u64>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    /// `none` (default: no network) or `bridge`. `host` is refused.
    #[serde(default)]
    #[schema(example = "none")]
    pub network_mode: Option<String>,
    #[serde(default)]
    pub mounts: Vec<MountWire>,
    /// The timeout when the Task state sets no `TimeoutSeconds`.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Where the result comes from: `auto` (default: `/stepyard/result.json`, else the last JSON
    /// object or array line of stdout), `file`, `stdout` or `none`.
    #[serde(default)]
    #[schema(example = "auto")]
    pub result: Option<String>,
}

/// One revision of a task definition.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDefinitionWire {
    #[schema(example = "scan")]
    pub family: String,
    #[schema(example = 2)]
    pub revision: u32,
    /// `family:revision`, what `TaskDefinition` accepts.
    #[schema(example = "scan:2")]
    pub name: String,
    #[schema(example = "arn:aws:ecs:us-east-1:123456789012:task-definition/scan:2")]
    pub arn: String,
    /// `ACTIVE`, or `INACTIVE` once deregistered (it runs no new tasks).
    #[schema(example = "ACTIVE")]
    pub status: String,
    pub registered_at: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    pub network_mode: String,
    pub mounts: Vec<MountWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    pub result: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDefinitionList {
    pub task_definitions: Vec<TaskDefinitionWire>,
}

fn result_name(r: ResultSource) -> &'static str {
    match r {
        ResultSource::Auto => "auto",
        ResultSource::File => "file",
        ResultSource::Stdout => "stdout",
        ResultSource::None => "none",
    }
}

impl TaskDefinitionWire {
    fn of(state: &AppState, def: TaskDefinition) -> Self {
        let config = state.config();
        let name = def.name();
        let spec = def.spec;
        TaskDefinitionWire {
            arn: format!(
                "arn:aws:ecs:{}:{}:task-definition/{name}",
                config.region, config.account
            ),
            name,
            family: spec.family,
            revision: def.revision,
            status: match def.status {
                DefinitionStatus::Active => "ACTIVE".into(),
                DefinitionStatus::Inactive => "INACTIVE".into(),
            },
            registered_at: rfc3339(def.registered_ms),
            image: spec.image,
            command: spec.command,
            entrypoint: spec.entrypoint,
            environment: spec.environment,
            working_dir: spec.working_dir,
            cpu: spec.cpu,
            memory_mib: spec.memory_mib,
            pids_limit: spec.pids_limit,
            network_mode: spec.network_mode.docker_name().into(),
            mounts: spec
                .mounts
                .into_iter()
                .map(|m| MountWire {
                    source: m.source.display().to_string(),
                    target: m.target,
                })
                .collect(),
            timeout_seconds: spec.timeout_seconds,
            result: result_name(spec.result).into(),
        }
    }
}

fn spec_of(body: RegisterTaskDefinitionBody) -> ApiResult<TaskDefinitionSpec> {
    let invalid = |field: &str, message: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidTaskDefinition", message)
            .with_field(format!("/{field}"))
    };
    let network_mode = match body.network_mode.as_deref() {
        None | Some("none") => NetworkMode::None,
        Some("bridge") => NetworkMode::Bridge,
        Some(other) => {
            return Err(invalid(
                "network_mode",
                format!(
                    "network mode '{other}' is not allowed: use 'none' (the default) or 'bridge'"
                ),
            ));
        }
    };
    let result = match body.result.as_deref() {
        None | Some("auto") => ResultSource::Auto,
        Some("file") => ResultSource::File,
        Some("stdout") => ResultSource::Stdout,
        Some("none") => ResultSource::None,
        Some(other) => {
            return Err(invalid(
                "result",
                format!("result '{other}' is not one of auto, file, stdout, none"),
            ));
        }
    };
    Ok(TaskDefinitionSpec {
        family: body.family,
        image: body.image,
        command: body.command,
        entrypoint: body.entrypoint,
        environment: body.environment,
        working_dir: body.working_dir,
        cpu: body.cpu,
        memory_mib: body.memory_mib,
        pids_limit: body.pids_limit,
        network_mode,
        mounts: body
            .mounts
            .into_iter()
            .map(|m| BindMount {
                source: PathBuf::from(m.source),
                target: m.target,
            })
            .collect(),
        timeout_seconds: body.timeout_seconds,
        result,
    })
}

/// Register a task definition: the family's next revision.
#[utoipa::path(
    post,
    path = "/v1/task-definitions",
    tag = "containers",
    request_body = RegisterTaskDefinitionBody,
    responses(
        (status = 201, description = "Registered", body = TaskDefinitionWire),
        (status = 400, description = "Invalid definition (the field is named)", body = ErrorBody),
        (status = 422, description = "Malformed body", body = ErrorBody),
    )
)]
pub async fn register_task_definition(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterTaskDefinitionBody>,
) -> ApiResult<(StatusCode, Json<TaskDefinitionWire>)> {
    let spec = spec_of(body)?;
    let def = state.containers().register_definition(spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(TaskDefinitionWire::of(&state, def)),
    ))
}

/// List task definition families (the latest revision of each).
#[utoipa::path(
    get,
    path = "/v1/task-definitions",
    tag = "containers",
    responses((status = 200, description = "Every family", body = TaskDefinitionList))
)]
pub async fn list_task_definitions(
    State(state): State<AppState>,
) -> ApiResult<Json<TaskDefinitionList>> {
    let task_definitions = state
        .containers()
        .families()?
        .into_iter()
        .map(|d| TaskDefinitionWire::of(&state, d))
        .collect();
    Ok(Json(TaskDefinitionList { task_definitions }))
}

/// Every revision of a family, oldest first.
#[utoipa::path(
    get,
    path = "/v1/task-definitions/{family}",
    tag = "containers",
    params(("family" = String, Path, description = "The family")),
    responses(
        (status = 200, description = "The revisions", body = TaskDefinitionList),
        (status = 404, description = "No such family", body = ErrorBody),
    )
)]
pub async fn list_revisions(
    State(state): State<AppState>,
    ApiPath(family): ApiPath<String>,
) -> ApiResult<Json<TaskDefinitionList>> {
    let task_definitions = state
        .containers()
        .revisions(&family)?
        .into_iter()
        .map(|d| TaskDefinitionWire::of(&state, d))
        .collect();
    Ok(Json(TaskDefinitionList { task_definitions }))
}

/// One revision.
#[utoipa::path(
    get,
    path = "/v1/task-definitions/{family}/{revision}",
    tag = "containers",
    params(
        ("family" = String, Path, description = "The family"),
        ("revision" = u32, Path, description = "The revision number"),
    ),
    responses(
        (status = 200, description = "The revision", body = TaskDefinitionWire),
        (status = 404, description = "No such revision", body = ErrorBody),
    )
)]
pub async fn get_revision(
    State(state): State<AppState>,
    ApiPath((family, revision)): ApiPath<(String, u32)>,
) -> ApiResult<Json<TaskDefinitionWire>> {
    let def = state
        .containers()
        .definition(&format!("{family}:{revision}"))?;
    Ok(Json(TaskDefinitionWire::of(&state, def)))
}

/// Deregister a revision: it becomes INACTIVE and runs no new tasks (running ones go on).
#[utoipa::path(
    delete,
    path = "/v1/task-definitions/{family}/{revision}",
    tag = "containers",
    params(
        ("family" = String, Path, description = "The family"),
        ("revision" = u32, Path, description = "The revision number"),
    ),
    responses(
        (status = 200, description = "Now INACTIVE", body = TaskDefinitionWire),
        (status = 404, description = "No such revision", body = ErrorBody),
    )
)]
pub async fn deregister_revision(
    State(state): State<AppState>,
    ApiPath((family, revision)): ApiPath<(String, u32)>,
) -> ApiResult<Json<TaskDefinitionWire>> {
    let def = state.containers().deregister(&family, revision).await?;
    Ok(Json(TaskDefinitionWire::of(&state, def)))
}
