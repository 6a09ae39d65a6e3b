//! The bus's public types, in AWS EventBridge's terms (times in epoch milliseconds).

use serde_json::Value;

/// An event bus.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBusInfo {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub created_ms: u64,
}

/// One PutEvents entry, as AWS shapes it (`Detail` is JSON text).
#[derive(Debug, Clone, Default)]
pub struct PutEventsEntry {
    pub source: Option<String>,
    pub detail_type: Option<String>,
    pub detail: Option<String>,
    pub resources: Vec<String>,
    /// The event's `time`; now when absent.
    pub time_ms: Option<u64>,
    /// Name or ARN; `default` when absent.
    pub event_bus_name: Option<String>,
}

/// The result for one entry: an event id, or an error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEventsResultEntry {
    pub event_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Whether a rule acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleState {
    Enabled,
    Disabled,
}

impl RuleState {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Enabled => "ENABLED",
            RuleState::Disabled => "DISABLED",
        }
    }
    /// `ENABLED`/`DISABLED` (AWS also knows `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`, read as enabled).
    pub fn parse(text: &str) -> Option<RuleState> {
        match text {
            "ENABLED" | "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" => Some(RuleState::Enabled),
            "DISABLED" => Some(RuleState::Disabled),
            _ => None,
        }
    }
}

/// PutRule: creates or updates a rule (targets are kept on update).
#[derive(Debug, Clone, Default)]
pub struct PutRule {
    pub name: String,
    pub event_bus_name: Option<String>,
    /// JSON text.
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    /// `None` keeps the current state of an existing rule, ENABLED for a new one.
    pub state: Option<RuleState>,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    /// Tags for a new rule; ignored when the rule exists (change those with `tag_resource`), as
    /// EventBridge does.
    pub tags: crate::model::Tags,
}

/// A rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    pub name: String,
    pub arn: String,
    pub event_bus_name: String,
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    pub state: RuleState,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    /// When a scheduled rule fires next.
    pub next_fire_ms: Option<u64>,
}

/// What a target receives: one of these, or the whole event when none is set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputTransformerSpec {
    pub input_paths_map: Vec<(String, String)>,
    pub input_template: String,
}

/// Retries of one target's deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    /// 0..=185; AWS's default 185.
    pub maximum_retry_attempts: u32,
    /// 60..=86400; AWS's default 86400 (24 hours).
    pub maximum_event_age_seconds: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            maximum_retry_attempts: 185,
            maximum_event_age_seconds: 86_400,
        }
    }
}

/// Extra parts of an HTTP request to an API destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpParameters {
    pub path_parameter_values: Vec<String>,
    pub header_parameters: Vec<(String, String)>,
    pub query_string_parameters: Vec<(String, String)>,
}

/// A rule's target.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub id: String,
    pub arn: String,
    pub role_arn: Option<String>,
    /// Constant JSON text.
    pub input: Option<String>,
    pub input_path: Option<String>,
    pub input_transformer: Option<InputTransformerSpec>,
    pub retry_policy: Option<RetryPolicy>,
    /// Accepted as AWS takes it; dead letters are kept in the bus's own dead-letter store.
    pub dead_letter_arn: Option<String>,
    pub http_parameters: Option<HttpParameters>,
}

/// A target PutTargets or RemoveTargets could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFailure {
    pub target_id: String,
    pub error_code: String,
    pub error_message: String,
}

/// An archive of a bus's events.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveInfo {
    pub name: String,
    pub arn: String,
    pub event_source_arn: String,
    pub description: Option<String>,
    pub event_pattern: Option<String>,
    /// 0 keeps events forever.
    pub retention_days: u32,
    pub state: &'static str,
    pub event_count: u64,
    pub size_bytes: u64,
    pub created_ms: u64,
}

/// CreateArchive.
#[derive(Debug, Clone, Default)]
pub struct CreateArchive {
    pub name: String,
    /// The bus's ARN (or name).
    pub event_source_arn: String,
    pub description: Option<String>,
    pub event_pattern: Option<String>,
    pub retention_days: u32,
}

/// A replay's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplayState {
    Starting,
    Running,
    Cancelling,
    Completed,
    Cancelled,
    Failed,
}

impl ReplayState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplayState::Starting => "STARTING",
            ReplayState::Running => "RUNNING",
            ReplayState::Cancelling => "CANCELLING",
            ReplayState::Completed => "COMPLETED",
            ReplayState::Cancelled => "CANCELLED",
            ReplayState::Failed => "FAILED",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ReplayState::Completed | ReplayState::Cancelled | ReplayState::Failed
        )
    }
}

/// StartReplay.
#[derive(Debug, Clone, Default)]
pub struct StartReplay {
    pub name: String,
    pub description: Option<String>,
    /// The archive's ARN.
    pub event_source_arn: String,
    pub event_start_ms: u64,
    pub event_end_ms: u64,
    /// The bus the events go back onto.
    pub destination_arn: String,
    /// Only these rules (ARNs) see the replayed events; all of the bus's rules when empty.
    pub filter_arns: Vec<String>,
}

/// A replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayInfo {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub event_source_arn: String,
    pub destination_arn: String,
    pub filter_arns: Vec<String>,
    pub state: ReplayState,
    pub state_reason: Option<String>,
    pub event_start_ms: u64,
    pub event_end_ms: u64,
    pub event_last_replayed_ms: Option<u64>,
    pub replay_start_ms: u64,
    pub replay_end_ms: Option<u64>,
    pub events_replayed: u64,
}

/// A delivery that failed for good.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: String,
    pub event: Value,
    pub rule_arn: String,
    pub target_id: String,
    pub target_arn: String,
    /// The input the target was to receive.
    pub input: String,
    pub error_code: String,
    pub error_message: String,
    pub attempts: u32,
    pub dead_lettered_ms: u64,
}

/// How a connection authorises calls to an API destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConnectionAuth {
    ApiKey { name: String, value: String },
    Basic { username: String, password: String },
}

impl ConnectionAuth {
    pub fn authorization_type(&self) -> &'static str {
        match self {
            ConnectionAuth::ApiKey { .. } => "API_KEY",
            ConnectionAuth::Basic { .. } => "BASIC",
        }
    }
}

/// A connection (credentials for API destinations).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionInfo {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub authorization_type: &'static str,
    pub state: &'static str,
    pub created_ms: u64,
}

/// CreateApiDestination.
#[derive(Debug, Clone, Default)]
pub struct CreateApiDestination {
    pub name: String,
    pub description: Option<String>,
    pub connection_arn: String,
    pub invocation_endpoint: String,
    pub http_method: String,
    /// Invocations per second; 300 when absent (AWS's default).
    pub invocation_rate_limit_per_second: Option<u32>,
}

/// An API destination: an HTTP endpoint rules can target.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiDestinationInfo {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub connection_arn: String,
    pub invocation_endpoint: String,
    pub http_method: String,
    pub invocation_rate_limit_per_second: u32,
    pub state: &'static str,
    pub created_ms: u64,
}
