//! Wire types of the native API (snake_case JSON, RFC 3339 times), separate from the engine's types,
//! and the mapping of engine errors onto the error body.

use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepyard_engine::{
    ActivityInfo, Error as EngineError, ExecutionInfo, HistoryEvent, StateMachineInfo,
    StateMachineRevision,
};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

pub fn rfc3339(ms: u64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// JSON text from the engine as a JSON value (it is always valid JSON; a string if not).
pub fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        use EngineError as E;
        let message = err.to_string();
        let (status, code) = match &err {
            E::StateMachineDoesNotExist(_) => (StatusCode::NOT_FOUND, "StateMachineDoesNotExist"),
            E::ExecutionDoesNotExist(_) => (StatusCode::NOT_FOUND, "ExecutionDoesNotExist"),
            E::ActivityDoesNotExist(_) => (StatusCode::NOT_FOUND, "ActivityDoesNotExist"),
            E::TaskDoesNotExist => (StatusCode::NOT_FOUND, "TaskDoesNotExist"),
            E::StateMachineAlreadyExists(_) => (StatusCode::CONFLICT, "StateMachineAlreadyExists"),
            E::ExecutionAlreadyExists(_) => (StatusCode::CONFLICT, "ExecutionAlreadyExists"),
            E::ActivityAlreadyExists(_) => (StatusCode::CONFLICT, "ActivityAlreadyExists"),
            E::ExecutionNotRedrivable(_) => (StatusCode::CONFLICT, "ExecutionNotRedrivable"),
            E::StateMachineDeleting(_) => (StatusCode::CONFLICT, "StateMachineDeleting"),
            E::TaskTimedOut => (StatusCode::CONFLICT, "TaskTimedOut"),
            E::InvalidDefinition(problems) => {
                let details: Vec<Value> = problems
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "pointer": p.pointer, "code": p.code.as_str(), "message": p.message
                        })
                    })
                    .collect();
                return ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "InvalidDefinition",
                    format!("the definition has {} problem(s)", problems.len()),
                )
                .with_field("/definition")
                .with_details(serde_json::json!({ "problems": details }));
            }
            E::InvalidArn(_) => (StatusCode::BAD_REQUEST, "InvalidArn"),
            E::InvalidName(_) => (StatusCode::BAD_REQUEST, "InvalidName"),
            E::InvalidExecutionInput(_) => (StatusCode::BAD_REQUEST, "InvalidExecutionInput"),
            E::InvalidToken(_) => (StatusCode::BAD_REQUEST, "InvalidToken"),
            E::InvalidOutput(_) => (StatusCode::BAD_REQUEST, "InvalidOutput"),
            E::InvalidNextToken(_) => (StatusCode::BAD_REQUEST, "InvalidNextToken"),
            E::ValidationException(_) => (StatusCode::BAD_REQUEST, "ValidationError"),
            E::StateMachineTypeNotSupported(_) => {
                (StatusCode::BAD_REQUEST, "StateMachineTypeNotSupported")
            }
            E::DataLimitExceeded(_) => (StatusCode::PAYLOAD_TOO_LARGE, "DataLimitExceeded"),
            E::ResourceNotFound(_) => (StatusCode::NOT_FOUND, "ResourceNotFound"),
            E::ResourceAlreadyExists(_) => (StatusCode::CONFLICT, "ResourceAlreadyExists"),
            E::InvalidEventPattern(_) => (StatusCode::BAD_REQUEST, "InvalidEventPattern"),
            E::IllegalStatus(_) => (StatusCode::CONFLICT, "IllegalStatus"),
            E::LimitExceeded(_) => (StatusCode::BAD_REQUEST, "LimitExceeded"),
            E::InvalidParameter { field, .. } => {
                return ApiError::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
                    .with_body_field(field);
            }
            E::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "ShuttingDown"),
            // Listed, not matched with `_`, so a new engine error has to be mapped here.
            E::StoreLocked { .. } | E::Store(_) | E::Corrupt(_) => return ApiError::internal(err),
        };
        ApiError::new(status, code, message)
    }
}

/// Paging parameters of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 1000 (default 100).
    pub max_results: Option<u32>,
    /// The `next_token` of the previous page.
    pub next_token: Option<String>,
}

impl PageParams {
    pub fn page(&self) -> stepyard_engine::PageRequest {
        stepyard_engine::PageRequest {
            max_results: self.max_results.unwrap_or(0),
            next_token: self.next_token.clone(),
        }
    }
}

/// A state machine.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateMachine {
    #[schema(example = "arn:aws:states:us-east-1:123456789012:stateMachine:hello")]
    pub arn: String,
    #[schema(example = "hello")]
    pub name: String,
    /// `STANDARD` or `EXPRESS`.
    #[serde(rename = "type")]
    #[schema(example = "STANDARD")]
    pub kind: String,
    /// `ACTIVE` or `DELETING`.
    pub status: String,
    /// The ASL definition.
    #[schema(value_type = Object)]
    pub definition: Value,
    pub role_arn: String,
    pub revision_id: String,
    #[schema(example = "2026-11-22T06:00:00.000Z")]
    pub created_at: String,
    pub updated_at: String,
}

impl From<StateMachineInfo> for StateMachine {
    fn from(info: StateMachineInfo) -> Self {
        StateMachine {
            definition: json_text(&info.definition),
            kind: info.kind.as_str().to_owned(),
            status: match info.status {
                stepyard_engine::StateMachineStatus::Active => "ACTIVE".into(),
                stepyard_engine::StateMachineStatus::Deleting => "DELETING".into(),
            },
            created_at: rfc3339(info.creation_date_ms),
            updated_at: rfc3339(info.update_date_ms),
            arn: info.arn,
            name: info.name,
            role_arn: info.role_arn,
            revision_id: info.revision_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StateMachineList {
    pub state_machines: Vec<StateMachine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One revision (version) of a state machine's definition.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "revision_id": "6f1c2f7e-3b0a-4d0e-9a43-5b7f0c7d9e21",
    "version_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:hello:6f1c2f7e-3b0a-4d0e-9a43-5b7f0c7d9e21",
    "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:hello",
    "type": "STANDARD",
    "definition": {"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "End": true}}},
    "role_arn": "arn:aws:iam::123456789012:role/stepyard",
    "created_at": "2026-11-22T06:00:00.000Z",
    "current": true
}))]
pub struct StateMachineVersion {
    #[schema(example = "6f1c2f7e-3b0a-4d0e-9a43-5b7f0c7d9e21")]
    pub revision_id: String,
    /// The version ARN AWS clients use: `STATE_MACHINE_ARN:REVISION_ID`.
    #[schema(
        example = "arn:aws:states:us-east-1:123456789012:stateMachine:hello:6f1c2f7e-3b0a-4d0e-9a43-5b7f0c7d9e21"
    )]
    pub version_arn: String,
    #[schema(example = "arn:aws:states:us-east-1:123456789012:stateMachine:hello")]
    pub state_machine_arn: String,
    /// `STANDARD` or `EXPRESS`.
    #[serde(rename = "type")]
    #[schema(example = "STANDARD")]
    pub kind: String,
    /// The ASL definition of this revision.
    #[schema(value_type = Object)]
    pub definition: Value,
    #[schema(example = "arn:aws:iam::123456789012:role/stepyard")]
    pub role_arn: String,
    /// When the revision was made.
    #[schema(example = "2026-11-22T06:00:00.000Z")]
    pub created_at: String,
    /// Whether this is the state machine's current definition.
    #[schema(example = true)]
    pub current: bool,
}

impl From<StateMachineRevision> for StateMachineVersion {
    fn from(revision: StateMachineRevision) -> Self {
        StateMachineVersion {
            definition: json_text(&revision.definition),
            kind: revision.kind.as_str().to_owned(),
            created_at: rfc3339(revision.creation_date_ms),
            revision_id: revision.revision_id,
            version_arn: revision.version_arn,
            state_machine_arn: revision.state_machine_arn,
            role_arn: revision.role_arn,
            current: revision.current,
        }
    }
}

/// One page of a state machine's versions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateMachineVersionList {
    pub versions: Vec<StateMachineVersion>,
    /// Pass as `next_token` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "42")]
    pub next_token: Option<String>,
}

/// An execution.
#[derive(Debug, Serialize, ToSchema)]
pub struct Execution {
    #[schema(example = "arn:aws:states:us-east-1:123456789012:execution:hello:run-1")]
    pub arn: String,
    #[schema(example = "run-1")]
    pub name: String,
    pub state_machine_arn: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED` or `PENDING_REDRIVE`.
    #[schema(example = "SUCCEEDED")]
    pub status: String,
    /// Any JSON value, as given at the start.
    #[schema(value_type = serde_json::Value)]
    pub input: Value,
    /// Any JSON value, once SUCCEEDED.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    pub redrive_count: u32,
}

impl From<ExecutionInfo> for Execution {
    fn from(info: ExecutionInfo) -> Self {
        Execution {
            input: json_text(&info.input),
            output: info.output.as_deref().map(json_text),
            status: info.status.as_str().to_owned(),
            started_at: rfc3339(info.start_date_ms),
            stopped_at: info.stop_date_ms.map(rfc3339),
            arn: info.execution_arn,
            name: info.name,
            state_machine_arn: info.state_machine_arn,
            error: info.error,
            cause: info.cause,
            redrive_count: info.redrive_count,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionList {
    pub executions: Vec<Execution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One history event, with AWS's type names and detail fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    pub id: u64,
    pub previous_event_id: u64,
    pub timestamp: String,
    /// AWS's event type, e.g. `TaskStateEntered`.
    #[serde(rename = "type")]
    #[schema(example = "PassStateEntered")]
    pub kind: String,
    /// AWS's `*EventDetails` for this type (`{"name", "input"}` for a state entered, ...).
    /// `null` for types without details (e.g. `WaitStateAborted`).
    #[schema(value_type = serde_json::Value)]
    pub details: Value,
}

impl From<HistoryEvent> for Event {
    fn from(event: HistoryEvent) -> Self {
        Event {
            id: event.id,
            previous_event_id: event.previous_event_id,
            timestamp: rfc3339(event.timestamp_ms),
            kind: event.kind.as_str().to_owned(),
            details: event.details,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub events: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// A resource's tags, key to value: what `POST .../tags` adds and `GET .../tags` answers.
/// At most 50 per resource; keys of 1 to 128 characters, values of up to 256, letters, digits,
/// white space and `_ . : / = + - @`; the `aws:` key prefix is reserved.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tags": {"team": "platform", "cost-center": "1234"}}))]
pub struct TagSet {
    pub tags: std::collections::BTreeMap<String, String>,
}

/// An activity: a queue of task inputs polled by external workers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activity {
    #[schema(example = "arn:aws:states:us-east-1:123456789012:activity:approve")]
    pub arn: String,
    pub name: String,
    pub created_at: String,
}

impl From<ActivityInfo> for Activity {
    fn from(info: ActivityInfo) -> Self {
        Activity {
            created_at: rfc3339(info.creation_date_ms),
            arn: info.arn,
            name: info.name,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityList {
    pub activities: Vec<Activity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
