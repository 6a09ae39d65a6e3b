//! Functions (the Lambda idea): a handler run on demand, warm between invocations.
//!
//! Two runtimes:
//!
//! - `process`: a command (`python3 -m awslambdaric app.handler`, a compiled `bootstrap`, ...)
//!   started in the function's code folder with the environment Lambda gives
//!   (`AWS_LAMBDA_RUNTIME_API`, `_HANDLER`, `AWS_LAMBDA_FUNCTION_NAME`, `LAMBDA_TASK_ROOT`, ...),
//!   that fetches events and posts results through the **Lambda Runtime API**. Official runtime
//!   clients run unmodified.
//! - `http`: an endpoint in another service, POSTed the event as JSON.
//!
//! ## The Runtime API: one loopback listener per sandbox
//!
//! `AWS_LAMBDA_RUNTIME_API` is a bare `host:port` and clients call `/2018-06-01/...` on it, so
//! the address itself must say which sandbox (process) is calling. Each sandbox therefore gets
//! its own listener on `127.0.0.1:0`, served by the `api` crate (the only one that knows HTTP)
//! through [`RuntimeApiServer`]; the endpoints call into the pool through [`SandboxApi`]
//! (`next`, `respond`, `fail`, `init_error`). The listener lives exactly as long as its
//! process.
//!
//! ## The warm pool (per function)
//!
//! An invocation goes to a sandbox that waits in `/next`; if none waits and fewer than the
//! concurrency limit (reserved concurrency, else [`FunctionsConfig::default_concurrency`])
//! are alive, a new one is started (a cold start) and the invocation waits in a bounded queue
//! ([`FunctionsConfig::max_queue`]; past it: `Lambda.TooManyRequestsException`). Sandboxes idle
//! for [`FunctionsConfig::idle_timeout`] are stopped. Failures are reported as Lambda reports
//! them, so Retry/Catch behave as on AWS:
//!
//! | what happened | error name | cause |
//! |---|---|---|
//! | the handler raised | its `errorType` (`ValueError`, ...) | the error object the runtime posted |
//! | ran past the function's timeout (process killed, replaced on demand) | `Sandbox.Timedout` | `{"errorType","errorMessage"}` |
//! | the process exited mid-invocation | `Runtime.ExitError` | `{"errorType","errorMessage"}` with the exit status |
//! | init failed (`/runtime/init/error`) | the init error's `errorType` (`Runtime.ImportModuleError`, ...) | its error object |
//! | the command could not be started | `Runtime.InvalidEntrypoint` | the spawn error |
//! | queue full, or reserved concurrency 0 | `Lambda.TooManyRequestsException` | |
//!
//! ## Logs
//!
//! A sandbox's stdout and stderr share one pipe; each line goes to the invocation the sandbox
//! is running (lines printed between invocations go to the next one, as init logs do). When the
//! runtime posts a result, the pipe is drained first, so every line printed before the result
//! belongs to it. Logs are stored per request id with `START`/`END`/`REPORT` lines as in
//! CloudWatch, and indexed by execution for Task states.
//!
//! ## Durability
//!
//! Function definitions and invocation logs live in this runtime's own sled database
//! (`<data_dir>/functions`), beside the engine's store, as the container runtime does. Task
//! invocations are at-least-once: the engine's stable invocation id is the Lambda request id,
//! so a re-dispatch after a restart is recognisable by the handler.

mod http;
mod logs;
mod pool;
mod process;
mod service;
mod spec;
mod store;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use logs::InvocationLog;
pub use pool::{
    NextInvocation, RuntimeApiBinding, RuntimeApiError, RuntimeApiServer, SandboxApi, ServeFuture,
};
pub use service::{FunctionError, Functions, Invoke, InvokeOutput, PoolStats, TaskOrigin};
pub use spec::{
    DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_SECONDS, Function, FunctionRuntime, FunctionSpec,
    MAX_TIMEOUT_SECONDS,
};
pub use worker::{FunctionWorker, LAMBDA_PREFIX};

/// The version every invocation runs (versions and aliases are not published).
pub const LATEST: &str = "$LATEST";

/// How to run functions. `FunctionsConfig::new(state_dir, runtime_api)` gives the defaults.
#[derive(Clone)]
pub struct FunctionsConfig {
    /// Where functions and invocation logs are stored (`<data_dir>/functions`).
    pub state_dir: PathBuf,
    /// For ARNs and `AWS_REGION`.
    pub region: String,
    pub account: String,
    /// Serves the Runtime API for each sandbox (the `api` crate's axum listener).
    pub runtime_api: Arc<dyn RuntimeApiServer>,
    /// Sandboxes (or HTTP calls) at once per function without reserved concurrency.
    pub default_concurrency: u32,
    /// Invocations waiting for a sandbox per function; past it they are throttled.
    pub max_queue: usize,
    /// A sandbox idle this long is stopped.
    pub idle_timeout: Duration,
    /// Invocation logs kept (oldest dropped first).
    pub keep_logs: usize,
}

impl FunctionsConfig {
    pub fn new(state_dir: impl Into<PathBuf>, runtime_api: Arc<dyn RuntimeApiServer>) -> Self {
        FunctionsConfig {
            state_dir: state_dir.into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            runtime_api,
            default_concurrency: 10,
            max_queue: 1000,
            idle_timeout: Duration::from_secs(300),
            keep_logs: 10_000,
        }
    }
}

/// The function runtime's errors (not a handler's failure: that is a [`FunctionError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid function {field}: {message}")]
    InvalidFunction {
        field: &'static str,
        message: String,
    },
    #[error("Function not found: {0}")]
    NotFound(String),
    #[error("function '{0}' already exists")]
    AlreadyExists(String),
    #[error("invocation '{0}' not found")]
    InvocationNotFound(String),
    #[error("Rate Exceeded: {0}")]
    TooManyRequests(String),
    #[error("function store: {0}")]
    Store(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
