//! Container tasks on the Docker engine (the Fargate idea): task definitions, jobs, and the
//! [`TaskWorker`] for `arn:aws:states:::ecs:runTask` (plain, `.sync`, `.waitForTaskToken`).
//!
//! ## What a container sees
//!
//! - Its input as the file `/stepyard/input.json` (always) and the environment variable
//!   `STEPYARD_INPUT` (when the input is at most 64 KiB: larger values do not fit in a
//!   variable). The input is `Parameters.Input` when the Task state gives one, else the whole
//!   effective parameters.
//! - `STEPYARD_TASK_ARN`, and for a Task state `STEPYARD_EXECUTION_ARN` and `STEPYARD_STATE_NAME`.
//! - With `.waitForTaskToken`: `STEPYARD_TASK_TOKEN` and `STEPYARD_API_URL`, the address of
//!   Stepyard's API as a `bridge` container reaches it (a `none` container has no network and
//!   cannot call back). The container answers with `POST $STEPYARD_API_URL/v1/task-tokens/success`
//!   and `{"task_token": ..., "output": ...}`.
//!
//! ## What a container returns
//!
//! Its result is the JSON in `/stepyard/result.json` if it wrote that file, else the last line
//! of its stdout that is a JSON object or array, else `null` (see [`ResultSource`] to pick one).
//! `.sync` returns ECS's task description with that result under `Result`.
//!
//! ## Failures are data
//!
//! A non-zero exit is `States.TaskFailed` with the exit code and the log tail in the cause; a
//! timeout stops the container (SIGTERM, SIGKILL after the grace) and is `States.Timeout`; an
//! out-of-memory kill says so; a missing image or an unreachable Docker engine fail the task at
//! once with a message saying which.
//!
//! ## Across restarts
//!
//! **Invariant:** a job's record is stored before its container is created, and the container's
//! name is derived from the job id, which for a Task state is derived from the engine's stable
//! invocation id. A re-dispatched invocation therefore finds its job (and its container) instead
//! of starting a second one, and [`ContainerRuntime::recover`] collects the containers that
//! ended while the server was down.

mod definitions;
mod docker;
mod job;
mod runtime;
mod store;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stepyard_engine::{Clock, SystemClock};

pub use definitions::{
    BindMount, ContainerSpec, DefinitionRef, DefinitionStatus, NetworkMode, Overrides,
    ResultSource, TaskDefinition, TaskDefinitionSpec,
};
pub use job::{JobMode, JobOrigin, JobRecord, JobStatus, Outcome, StopCode};
pub use runtime::{CallbackFailure, ContainerRuntime, RunJob};
pub use worker::ECS_RUN_TASK;

/// The default Docker endpoint.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How to run containers. `ContainerConfig::new(state_dir)` gives the defaults.
#[derive(Clone)]
pub struct ContainerConfig {
    /// `unix:///var/run/docker.sock` (default), a socket path, or `tcp://HOST:PORT`.
    pub docker_host: String,
    /// Where task definitions, jobs and kept logs are stored (`<data_dir>/containers`).
    pub state_dir: PathBuf,
    /// For the ARNs in ECS-shaped descriptions.
    pub region: String,
    pub account: String,
    /// Jobs running at once on this server; more wait in a queue (status `PENDING`).
    pub max_running: usize,
    /// Host folders that task definitions may bind-mount (read-only) from. Empty: no mounts.
    pub allowed_mount_roots: Vec<PathBuf>,
    /// Between SIGTERM and SIGKILL when a job is stopped or times out.
    pub stop_grace: Duration,
    /// The last bytes of a job's logs that are kept after its container is removed.
    pub log_limit_bytes: usize,
    /// The most of `/stepyard/result.json` that is read.
    pub max_result_bytes: usize,
    /// The URL of Stepyard's API as containers reach it; `None` until the server knows
    /// (see [`ContainerRuntime::set_api_url`]).
    pub api_url: Option<String>,
    pub clock: Arc<dyn Clock>,
}

impl ContainerConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        ContainerConfig {
            docker_host: DEFAULT_DOCKER_HOST.into(),
            state_dir: state_dir.into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            max_running: 4,
            allowed_mount_roots: Vec::new(),
            stop_grace: Duration::from_secs(10),
            log_limit_bytes: 1024 * 1024,
            max_result_bytes: 256 * 1024,
            api_url: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The container runtime's errors, for the REST API and for opening.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid task definition {field}: {message}")]
    InvalidDefinition {
        field: &'static str,
        message: String,
    },
    #[error(
        "invalid task definition reference '{0}': expected FAMILY, FAMILY:REVISION or an ECS task-definition ARN"
    )]
    InvalidReference(String),
    #[error("task definition '{0}' does not exist")]
    DefinitionNotFound(String),
    #[error("task definition '{0}' is INACTIVE and cannot run new tasks")]
    DefinitionInactive(String),
    #[error("task '{0}' does not exist")]
    JobNotFound(String),
    #[error("{0}")]
    Docker(String),
    #[error("container store: {0}")]
    Store(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
