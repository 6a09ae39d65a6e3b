//! Persisted records (format 1, see [`crate::store`]). Separate from the public types in
//! [`crate::model`]: these change only with a new format byte or with `#[serde(default)]` fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{ExecutionStatus, StateMachineStatus, StateMachineType, Tags};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StateMachineRecord {
    pub name: String,
    pub kind: StateMachineType,
    pub status: StateMachineStatus,
    pub role_arn: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub revision_id: String,
    pub definition: String,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DefinitionRecord {
    pub definition: String,
    pub kind: StateMachineType,
    pub role_arn: String,
    /// When this revision was made (0 in records written before revisions were listed).
    #[serde(default)]
    pub created_ms: u64,
    /// A store sequence number: orders revisions newest first, also within one millisecond.
    #[serde(default)]
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ExecutionRecord {
    /// `sm:exec`: the store key.
    pub key: String,
    pub arn: String,
    pub sm_name: String,
    pub sm_arn: String,
    pub revision_id: String,
    pub role_arn: String,
    pub name: String,
    /// JSON text as given.
    pub input: String,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub start_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_ms: Option<u64>,
    pub redrive_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_ms: Option<u64>,
    /// Position in the state machine's execution index.
    pub seq: u64,
    pub rt: Runtime,
}

/// The interpreter's state of one execution: every thread of control and what it waits for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Runtime {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub threads: BTreeMap<u32, Thread>,
    pub next_thread: u32,
    /// Id of the last event written (events are numbered from 1).
    pub last_event: u64,
    pub next_timer: u64,
    /// Open timers by id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timers: BTreeMap<u64, TimerInfo>,
    /// Where a redrive restarts: the root thread's state and its input when the execution stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_from: Option<RedrivePoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RedrivePoint {
    pub state: String,
    pub input: Value,
    /// The top-level variables when the execution stopped.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vars: serde_json::Map<String, Value>,
    /// When the state was a Parallel or Map: the outputs of the branches or iterations that
    /// had succeeded, by index. A redrive runs only the others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept: BTreeMap<u32, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TimerKind {
    Wait,
    Retry,
    TaskTimeout,
    Heartbeat,
    ExecutionTimeout,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TimerInfo {
    pub due_ms: u64,
    pub kind: TimerKind,
    /// The thread it belongs to (unused for the execution timeout).
    pub thread: u32,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Parent {
    pub thread: u32,
    /// Branch index (Parallel) or item index (Map).
    pub slot: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Thread {
    pub parent: Option<Parent>,
    /// Where this thread's state machine sits in the definition: `(Parallel or Map state, branch)`
    /// from the root down; empty for the root.
    pub path: Vec<(String, u32)>,
    pub state: String,
    /// The state's raw input.
    pub input: Value,
    pub entered_ms: u64,
    /// Id of this thread's latest event, the next event's `previousEventId`.
    pub last_event: u64,
    pub retry_counts: Vec<u32>,
    pub phase: Phase,
    /// The variables of this thread's scope (workflow variables, `Assign`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vars: serde_json::Map<String, Value>,
    /// A failed Parallel or Map state's succeeded branches or iterations (index → output),
    /// until the state is left; on a redrive, the ones not to run again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept: BTreeMap<u32, Value>,
    /// The serialized size of `vars`, kept as they change (the 10 MiB limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vars_bytes: usize,
    /// A distributed Map's iteration: it does not see the variables around it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Phase {
    /// About to run the state's work (transient: never committed).
    Ready,
    Task(TaskPhase),
    Waiting {
        timer: u64,
    },
    Retrying {
        timer: u64,
    },
    Parallel(ParallelPhase),
    Map(MapPhase),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TaskKind {
    /// A worker call whose answer is the result.
    Call,
    /// `.waitForTaskToken`: a worker call hands out the token; SendTask* gives the result.
    Callback,
    /// An activity polled with GetActivityTask.
    Activity,
}

/// How the history names a task: `Task*` with resourceType/resource, `LambdaFunction*`, `Activity*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TaskFamily {
    Task,
    Lambda,
    Activity,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskPhase {
    pub invocation_id: String,
    pub token: Option<String>,
    pub kind: TaskKind,
    pub family: TaskFamily,
    /// The state's `Resource` as written.
    pub resource: String,
    /// For history: `resourceType` and `resource` of Task* events (`lambda`, `invoke`).
    pub resource_type: String,
    pub resource_name: String,
    pub attempt: u32,
    pub timeout_timer: Option<u64>,
    pub heartbeat_timer: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
    /// Activity queue entry while not yet handed out.
    pub activity: Option<(String, u64)>,
    /// Whether the callback worker call answered (TaskSubmitted written).
    pub submitted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ParallelPhase {
    pub children: Vec<Option<u32>>,
    pub results: Vec<Value>,
    pub remaining: u32,
    /// Id of the latest event of a finished branch.
    pub last_event: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MapPhase {
    pub items: Vec<Value>,
    pub effective_input: Value,
    pub next: u32,
    /// index -> thread
    pub running: BTreeMap<u32, u32>,
    pub results: Vec<Value>,
    pub succeeded: u32,
    pub failed: u32,
    pub max_concurrency: u32,
    pub tolerated_percentage: Option<f64>,
    pub tolerated_count: Option<u64>,
    pub last_event: u64,
    /// Indexes of the iterations that succeeded (or were kept from before a redrive).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub done: std::collections::BTreeSet<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TimerRecord {
    pub due_ms: u64,
    pub exec_key: String,
    pub timer: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TokenRecord {
    pub exec_key: String,
    pub thread: u32,
    pub invocation_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DispatchRecord {
    pub exec_key: String,
    pub exec_arn: String,
    pub thread: u32,
    pub invocation_id: String,
    /// The resource the worker is matched on (`arn:aws:lambda:R:A:function:NAME` for both Lambda forms).
    pub resource: String,
    pub function_name: Option<String>,
    pub input: Value,
    pub token: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
    pub state_name: String,
    pub attempt: u32,
    pub kind: TaskKind,
    /// `lambda:invoke` wraps the function's answer as `{"Payload": ..., "StatusCode": 200}`.
    pub wrap_lambda_invoke: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ActivityRecord {
    pub name: String,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ActivityQueueRecord {
    pub activity: String,
    pub seq: u64,
    pub token: String,
    pub input: String,
    pub exec_key: String,
    pub thread: u32,
    pub invocation_id: String,
}
