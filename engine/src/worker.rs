//! The worker traits: how Task states reach code. `stepyard-workers` implements them for
//! function runtimes and containers; embedders register closures.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// One invocation of a worker for a Task state.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// The resource the worker was matched on. Both Lambda forms arrive as
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME` (see [`TaskRequest::function_name`]);
    /// `.waitForTaskToken` and `.sync` suffixes are kept.
    pub resource: String,
    /// The function name for Lambda resources.
    pub function_name: Option<String>,
    /// The effective input (after InputPath/Parameters; `Payload` for `lambda:invoke`).
    pub input: Value,
    /// Stable across re-dispatch after a restart: de-duplicate on it.
    pub invocation_id: String,
    /// For `.waitForTaskToken`: the token to answer with SendTaskSuccess/Failure.
    pub task_token: Option<String>,
    pub timeout: Option<Duration>,
    pub heartbeat: Option<Duration>,
    pub execution_arn: String,
    pub state_name: String,
    /// 0 for the first attempt, +1 per retry.
    pub attempt: u32,
}

/// A task's failure: `error` is matched by Retry and Catch `ErrorEquals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Runs Task states. Invocations are at-least-once: the same `invocation_id` may arrive again
/// after a restart.
#[async_trait::async_trait]
pub trait TaskWorker: Send + Sync + 'static {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError>;
}

/// Which resources a worker serves.
#[derive(Clone)]
pub enum WorkerMatch {
    /// Resources starting with this text (`arn:aws:lambda:` serves every function).
    Prefix(String),
    /// Any resource the predicate accepts.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl WorkerMatch {
    pub(crate) fn matches(&self, resource: &str) -> bool {
        match self {
            WorkerMatch::Prefix(prefix) => resource.starts_with(prefix.as_str()),
            WorkerMatch::Predicate(f) => f(resource),
        }
    }
}

impl From<&str> for WorkerMatch {
    fn from(prefix: &str) -> Self {
        WorkerMatch::Prefix(prefix.to_string())
    }
}

impl From<String> for WorkerMatch {
    fn from(prefix: String) -> Self {
        WorkerMatch::Prefix(prefix)
    }
}

/// A closure as a worker: `FnWorker::new(|input| async move { Ok(input) })`.
pub struct FnWorker<F> {
    f: F,
}

impl<F, Fut> FnWorker<F>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    pub fn new(f: F) -> Self {
        FnWorker { f }
    }
}

#[async_trait::async_trait]
impl<F, Fut> TaskWorker for FnWorker<F>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        (self.f)(request.input).await
    }
}
