//! `/v1/tasks`: container jobs run outside any workflow (what ECS calls tasks), their status,
//! stop and logs; and the wiring of the container runtime into the server (open, recover at
//! start, the API address containers call back on, failures of `.waitForTaskToken` containers).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepyard_engine::Engine;
use stepyard_workers::containers::{
    ContainerConfig, ContainerRuntime, ECS_RUN_TASK, Error as ContainerError, JobRecord, Outcome,
    Overrides, RunJob,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::rfc3339;
use crate::config::ServerConfig;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_task, list_tasks))
        .routes(routes!(get_task))
        .routes(routes!(stop_task))
        .routes(routes!(task_logs))
}

impl From<ContainerError> for ApiError {
    fn from(err: ContainerError) -> Self {
        use ContainerError as E;
        let message = err.to_string();
        match &err {
            E::InvalidDefinition { field, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "InvalidTaskDefinition", message)
                    .with_field(format!("/{field}"))
            }
            E::InvalidReference(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidTaskDefinitionReference",
                message,
            ),
            E::DefinitionNotFound(_) => ApiError::not_found("TaskDefinitionDoesNotExist", message),
            E::DefinitionInactive(_) => {
                ApiError::new(StatusCode::CONFLICT, "TaskDefinitionInactive", message)
            }
            E::JobNotFound(_) => ApiError::not_found("ContainerTaskDoesNotExist", message),
            E::Docker(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "DockerUnavailable",
                message,
            ),
            E::Store(_) => ApiError::internal(message),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunTaskBody {
    /// `family`, `family:revision` or the task definition's ARN.
    #[schema(example = "scan:2")]
    pub task_definition: String,
    /// Replaces the definition's command.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Added to (and over) the definition's environment.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// What the container reads from `/stepyard/input.json` and `STEPYARD_INPUT` [default: {}].
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Option<Value>,
    /// Overrides the definition's timeout.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// A container job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContainerTask {
    #[schema(example = "4e4949948a0a466cacc63058222104c2")]
    pub id: String,
    #[schema(
        example = "arn:aws:ecs:us-east-1:123456789012:task/stepyard/4e4949948a0a466cacc63058222104c2"
    )]
    pub task_arn: String,
    #[schema(example = "scan:2")]
    pub task_definition: String,
    pub task_definition_arn: String,
    /// `PENDING` (queued for a running slot), `RUNNING`, `STOPPING` or `STOPPED`.
    #[schema(example = "STOPPED")]
    pub status: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Killed for going over its memory limit.
    pub oom_killed: bool,
    /// ECS's words: `EssentialContainerExited`, `TaskFailedToStart`, `UserInitiated`,
    /// `ServiceSchedulerInitiated` (timed out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// What the container returned, once it ended well.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// The error a workflow would see (`States.TaskFailed`, `States.Timeout`), once it ended badly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The execution and state that ran it, for a workflow's task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContainerTaskList {
    /// Newest first.
    pub tasks: Vec<ContainerTask>,
}

impl ContainerTask {
    fn of(state: &AppState, job: JobRecord) -> Self {
        let (region, account) = (&state.config().region, &state.config().account);
        let (result, error, cause) = match &job.outcome {
            Some(Outcome::Succeeded { result }) => (Some(result.clone()), None, None),
            Some(Outcome::Failed { error, cause }) => {
                (None, Some(error.clone()), Some(cause.clone()))
            }
            None => (None, None, None),
        };
        ContainerTask {
            task_arn: job.task_arn(region, account),
            task_definition_arn: job.task_definition_arn(region, account),
            task_definition: job.spec.definition_name(),
            status: job.status.as_str().into(),
            image: job.spec.image.clone(),
            exit_code: job.exit_code,
            oom_killed: job.oom_killed,
            stop_code: job.stop_code.map(|c| c.as_str().to_string()),
            stopped_reason: job.stopped_reason.clone(),
            created_at: rfc3339(job.created_ms),
            started_at: job.started_ms.map(rfc3339),
            stopped_at: job.stopped_ms.map(rfc3339),
            timeout_seconds: job.timeout_seconds,
            result,
            error,
            cause,
            execution_arn: job.origin.as_ref().map(|o| o.execution_arn.clone()),
            state_name: job.origin.as_ref().map(|o| o.state_name.clone()),
            id: job.id,
        }
    }
}

/// Run a container task outside any workflow. It is queued when the running limit is reached;
/// follow it with `GET /v1/tasks/{id}`.
#[utoipa::path(
    post,
    path = "/v1/tasks",
    tag = "containers",
    request_body = RunTaskBody,
    responses(
        (status = 201, description = "Queued or started", body = ContainerTask),
        (status = 400, description = "Invalid task definition reference", body = ErrorBody),
        (status = 404, description = "No such task definition", body = ErrorBody),
        (status = 409, description = "The task definition is INACTIVE", body = ErrorBody),
    )
)]
pub async fn run_task(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RunTaskBody>,
) -> ApiResult<(StatusCode, Json<ContainerTask>)> {
    if body.timeout_seconds == Some(0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestBody",
            "timeout_seconds must be at least 1",
        )
        .with_field("/timeout_seconds"));
    }
    let job = state
        .containers()
        .run(RunJob {
            definition: body.task_definition,
            overrides: Overrides {
                command: body.command,
                environment: body.environment,
            },
            input: body
                .input
                .unwrap_or_else(|| Value::Object(Default::default())),
            timeout: body.timeout_seconds.map(Duration::from_secs),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(ContainerTask::of(&state, job))))
}

/// List container tasks (from workflows and from `POST /v1/tasks`), newest first.
#[utoipa::path(
    get,
    path = "/v1/tasks",
    tag = "containers",
    responses((status = 200, description = "Every task", body = ContainerTaskList))
)]
pub async fn list_tasks(State(state): State<AppState>) -> ApiResult<Json<ContainerTaskList>> {
    let tasks = state
        .containers()
        .jobs()?
        .into_iter()
        .map(|j| ContainerTask::of(&state, j))
        .collect();
    Ok(Json(ContainerTaskList { tasks }))
}

/// A container task: status, exit code, stop reason, timestamps, result.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}",
    tag = "containers",
    params(("id" = String, Path, description = "The task id (the last part of its ARN)")),
    responses(
        (status = 200, description = "The task", body = ContainerTask),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub async fn get_task(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContainerTask>> {
    let job = state.containers().job(&id)?;
    Ok(Json(ContainerTask::of(&state, job)))
}

/// Stop a container task: SIGTERM, then SIGKILL after the grace. A workflow waiting on it sees
/// `States.TaskFailed`. Stopping a stopped task changes nothing.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/stop",
    tag = "containers",
    params(("id" = String, Path, description = "The task id")),
    responses(
        (status = 202, description = "Stopping (or already stopped)", body = ContainerTask),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub async fn stop_task(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<ContainerTask>)> {
    let job = state.containers().stop(&id)?;
    Ok((StatusCode::ACCEPTED, Json(ContainerTask::of(&state, job))))
}

/// The task's combined stdout and stderr: live while it runs, kept after its container is
/// removed (the last MiB).
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/logs",
    tag = "containers",
    params(("id" = String, Path, description = "The task id")),
    responses(
        (status = 200, description = "The logs", body = String, content_type = "text/plain", example = json!("scanning 3 files\nno findings\n")),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub async fn task_logs(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let logs = state.containers().logs(&id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        String::from_utf8_lossy(&logs).into_owned(),
    ))
}

// ---- wiring ------------------------------------------------------------------------------

/// Opens the container runtime on `<data_dir>/containers` and registers it as the engine's
/// worker for `arn:aws:states:::ecs:runTask` (with `.sync` and `.waitForTaskToken`).
pub fn open_runtime(config: &ServerConfig, engine: &Engine) -> anyhow::Result<ContainerRuntime> {
    let settings = &config.containers;
    let runtime = ContainerRuntime::open(ContainerConfig {
        docker_host: settings.docker_host.clone(),
        region: config.region.clone(),
        account: config.account.clone(),
        max_running: settings.max_running,
        allowed_mount_roots: settings.mount_roots.clone(),
        api_url: settings.api_url.clone(),
        ..ContainerConfig::new(config.data_dir.join("containers"))
    })?;
    engine.register_worker(ECS_RUN_TASK, Arc::new(runtime.clone()));
    Ok(runtime)
}

/// What runs beside the server for containers; [`ContainerServices::stop`] ends it.
pub struct ContainerServices {
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ContainerServices {
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        for task in self.tasks {
            // A Docker call in flight ends within its own timeout; do not wait that long.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// At start: checks Docker (a warning, not a failure, when it is unreachable), adopts the
/// containers of unfinished jobs, serves the API on Docker's bridge gateway so containers can
/// call back (unless a URL is configured), and forwards failures of `.waitForTaskToken`
/// containers to the engine.
pub fn start(state: &AppState, local: SocketAddr) -> ContainerServices {
    let (shutdown, _) = watch::channel(false);
    let runtime = state.containers().clone();
    // In the background: an engine that is slow to answer must not hold up the server's start.
    let setup = {
        let state = state.clone();
        let runtime = runtime.clone();
        let mut stop = shutdown.subscribe();
        tokio::spawn(async move {
            if let Err(e) = runtime.ping().await {
                let host = &state.config().containers.docker_host;
                tracing::warn!(error = %e, "container tasks will fail until Docker answers at {host}");
                return;
            }
            let recovering = runtime.clone();
            tokio::spawn(async move {
                if let Ok(missing) = recovering.missing_images().await {
                    for (definition, image) in missing {
                        tracing::warn!(
                            "task definition {definition}: image '{image}' is not on the Docker engine; its tasks will fail until it is built or loaded"
                        );
                    }
                }
                match recovering.recover().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "container jobs picked up after a restart"),
                    Err(e) => tracing::warn!(error = %e, "cannot recover container jobs"),
                }
            });
            if runtime.api_url().is_some() {
                return;
            }
            let listener = match bridge_listener(&runtime, local).await {
                Ok((listener, url)) => {
                    tracing::info!("containers reach the API at {url}");
                    runtime.set_api_url(url);
                    listener
                }
                Err(e) => {
                    tracing::warn!(error = %e, "containers cannot call back (.waitForTaskToken): set container_api_url");
                    None
                }
            };
            if let Some(listener) = listener {
                let app = crate::app(state).into_make_service_with_connect_info::<SocketAddr>();
                let ended = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(ended)
                    .await
                {
                    tracing::warn!(error = %e, "the bridge listener stopped");
                }
            }
        })
    };
    let mut tasks = vec![setup];
    if let Some(mut failures) = runtime.take_callback_failures() {
        let engine = state.engine().clone();
        let mut stop = shutdown.subscribe();
        tasks.push(tokio::spawn(async move {
            loop {
                let failure = tokio::select! {
                    f = failures.recv() => f,
                    _ = stop.wait_for(|s| *s) => None,
                };
                let Some(f) = failure else { break };
                // The task may have been answered already (the container called back first).
                let _ = engine
                    .send_task_failure(&f.task_token, Some(f.error), Some(f.cause))
                    .await;
            }
        }));
    }
    ContainerServices { shutdown, tasks }
}

/// Where containers reach the API: when the server listens on loopback only, a second listener
/// on Docker's bridge gateway (same port if free); when it listens on every address, the gateway
/// with the server's port.
async fn bridge_listener(
    runtime: &ContainerRuntime,
    local: SocketAddr,
) -> anyhow::Result<(Option<TcpListener>, String)> {
    let gateway = runtime
        .bridge_gateway()
        .await?
        .ok_or_else(|| anyhow::anyhow!("Docker's bridge network has no gateway address"))?;
    if local.ip().is_unspecified() || local.ip() == gateway {
        return Ok((
            None,
            format!("http://{}", SocketAddr::new(gateway, local.port())),
        ));
    }
    let listener = match TcpListener::bind(SocketAddr::new(gateway, local.port())).await {
        Ok(l) => l,
        Err(_) => TcpListener::bind(SocketAddr::new(gateway, 0)).await?,
    };
    let addr = listener.local_addr()?;
    let host = match addr.ip() {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    Ok((Some(listener), format!("http://{host}:{}", addr.port())))
}
