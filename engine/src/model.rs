//! The engine's public request and response types, shaped after AWS Step Functions' API.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// STANDARD (durable, exactly-once states, history kept) or EXPRESS (in memory, at-most-once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateMachineType {
    #[default]
    Standard,
    Express,
}

impl StateMachineType {
    pub fn as_str(self) -> &'static str {
        match self {
            StateMachineType::Standard => "STANDARD",
            StateMachineType::Express => "EXPRESS",
        }
    }
}

/// ACTIVE, or DELETING while executions still run on a deleted state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateMachineStatus {
    Active,
    Deleting,
}

/// CreateStateMachine.
#[derive(Debug, Clone, Default)]
pub struct CreateStateMachine {
    pub name: String,
    pub definition: String,
    pub kind: StateMachineType,
    pub role_arn: Option<String>,
    /// Tags for the new state machine; ignored when it already exists (as AWS does).
    pub tags: Tags,
}

/// A state machine's or activity's tags, key to value. AWS's limits apply: at most 50 per
/// resource, keys of 1 to 128 characters, values of up to 256, the `aws:` prefix reserved.
pub type Tags = BTreeMap<String, String>;

/// DescribeStateMachine (and the item of ListStateMachines).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateMachineInfo {
    pub arn: String,
    pub name: String,
    pub definition: String,
    pub kind: StateMachineType,
    pub status: StateMachineStatus,
    pub role_arn: String,
    /// Milliseconds since the Unix epoch.
    pub creation_date_ms: u64,
    /// Changes on every update; executions record the revision they run.
    pub revision_id: String,
    /// When the definition last changed.
    pub update_date_ms: u64,
}

/// One revision of a state machine's definition: a version, in AWS's words. Every update that
/// changes the definition makes one; executions run the revision they started on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateMachineRevision {
    pub revision_id: String,
    /// `STATE_MACHINE_ARN:REVISION_ID`.
    pub version_arn: String,
    pub state_machine_arn: String,
    pub definition: String,
    pub kind: StateMachineType,
    pub role_arn: String,
    /// Milliseconds since the Unix epoch; 0 for revisions stored before revisions were dated.
    pub creation_date_ms: u64,
    /// Whether this is the state machine's current definition.
    pub current: bool,
}

/// One page of a list.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// 1..=1000; 0 means the default (100).
    pub max_results: u32,
    pub next_token: Option<String>,
}

impl PageRequest {
    pub(crate) fn limit(&self) -> usize {
        match self.max_results {
            0 => 100,
            n => n.min(1000) as usize,
        }
    }
}

/// A page of results and the token for the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// StartExecution.
#[derive(Debug, Clone, Default)]
pub struct StartExecution {
    pub state_machine_arn: String,
    pub name: Option<String>,
    /// JSON text; `None` means `{}`.
    pub input: Option<String>,
}

/// StartExecution's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionStarted {
    pub execution_arn: String,
    pub start_date_ms: u64,
}

/// An execution's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
            ExecutionStatus::PendingRedrive => "PENDING_REDRIVE",
        }
    }

    /// Parses AWS's spelling (`RUNNING`, ...).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "RUNNING" => ExecutionStatus::Running,
            "SUCCEEDED" => ExecutionStatus::Succeeded,
            "FAILED" => ExecutionStatus::Failed,
            "TIMED_OUT" => ExecutionStatus::TimedOut,
            "ABORTED" => ExecutionStatus::Aborted,
            "PENDING_REDRIVE" => ExecutionStatus::PendingRedrive,
            _ => return None,
        })
    }

    /// Whether the execution has stopped (until a redrive).
    pub fn is_closed(self) -> bool {
        !matches!(
            self,
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive
        )
    }
}

/// DescribeExecution (and the item of ListExecutions, StartSyncExecution's answer).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionInfo {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    /// JSON text.
    pub input: String,
    /// JSON text, once SUCCEEDED.
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub start_date_ms: u64,
    pub stop_date_ms: Option<u64>,
    pub redrive_count: u32,
    pub redrive_date_ms: Option<u64>,
    /// REDRIVABLE or NOT_REDRIVABLE.
    pub redrive_status: &'static str,
    pub redrive_status_reason: Option<String>,
    /// The state machine revision this execution runs.
    pub revision_id: String,
}

/// ListExecutions' filter.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub state_machine_arn: String,
    pub status: Option<ExecutionStatus>,
}

/// An activity (a Task resource polled by external workers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityInfo {
    pub arn: String,
    pub name: String,
    pub creation_date_ms: u64,
}

/// GetActivityTask's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityTask {
    pub task_token: String,
    /// JSON text.
    pub input: String,
}

/// Limits a user can rely on.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest execution input, state input/output and task result, in bytes. Default 256 KiB.
    pub max_payload_bytes: usize,
    /// Largest definition, in bytes. Default 1 MiB.
    pub max_definition_bytes: usize,
    /// Longest GetActivityTask wait. Default 60 s.
    pub max_activity_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 256 * 1024,
            max_definition_bytes: 1024 * 1024,
            max_activity_wait: Duration::from_secs(60),
        }
    }
}
