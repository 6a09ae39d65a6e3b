//! History events as AWS's GetExecutionHistory speaks them.
//!
//! Ids start at 1 and grow by one per event of an execution; `previous_event_id` is the id of the
//! event this one follows in the same thread of control (the previous state of a branch, the
//! `MapIterationStarted` of an iteration, ...), 0 for `ExecutionStarted`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

macro_rules! event_types {
    ($($name:ident => $details:literal),* $(,)?) => {
        /// AWS's `HistoryEventType`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum HistoryEventType { $($name),* }

        impl HistoryEventType {
            /// AWS's spelling, e.g. `TaskStateEntered`.
            pub fn as_str(self) -> &'static str {
                match self { $(HistoryEventType::$name => stringify!($name)),* }
            }
            /// The member of AWS's `HistoryEvent` that carries this type's details, e.g.
            /// `stateEnteredEventDetails`; empty for types without details.
            pub fn details_field(self) -> &'static str {
                match self { $(HistoryEventType::$name => $details),* }
            }
            /// A small number for the stored form (the position in this list; append only).
            pub(crate) fn code(self) -> u16 {
                self as u16
            }
            pub(crate) fn from_code(code: u16) -> Option<Self> {
                const ALL: &[HistoryEventType] = &[$(HistoryEventType::$name),*];
                ALL.get(code as usize).copied()
            }
            /// Parses AWS's spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $(stringify!($name) => Some(HistoryEventType::$name),)* _ => None }
            }
        }
    };
}

// Stored by position (the type code of a history chunk): add new types at the end only.
event_types! {
    ActivityFailed => "activityFailedEventDetails",
    ActivityScheduled => "activityScheduledEventDetails",
    ActivityScheduleFailed => "activityScheduleFailedEventDetails",
    ActivityStarted => "activityStartedEventDetails",
    ActivitySucceeded => "activitySucceededEventDetails",
    ActivityTimedOut => "activityTimedOutEventDetails",
    ChoiceStateEntered => "stateEnteredEventDetails",
    ChoiceStateExited => "stateExitedEventDetails",
    EvaluationFailed => "evaluationFailedEventDetails",
    ExecutionAborted => "executionAbortedEventDetails",
    ExecutionFailed => "executionFailedEventDetails",
    ExecutionStarted => "executionStartedEventDetails",
    ExecutionSucceeded => "executionSucceededEventDetails",
    ExecutionTimedOut => "executionTimedOutEventDetails",
    ExecutionRedriven => "executionRedrivenEventDetails",
    FailStateEntered => "stateEnteredEventDetails",
    LambdaFunctionFailed => "lambdaFunctionFailedEventDetails",
    LambdaFunctionScheduled => "lambdaFunctionScheduledEventDetails",
    LambdaFunctionScheduleFailed => "lambdaFunctionScheduleFailedEventDetails",
    LambdaFunctionStarted => "",
    LambdaFunctionStartFailed => "lambdaFunctionStartFailedEventDetails",
    LambdaFunctionSucceeded => "lambdaFunctionSucceededEventDetails",
    LambdaFunctionTimedOut => "lambdaFunctionTimedOutEventDetails",
    MapIterationAborted => "mapIterationAbortedEventDetails",
    MapIterationFailed => "mapIterationFailedEventDetails",
    MapIterationStarted => "mapIterationStartedEventDetails",
    MapIterationSucceeded => "mapIterationSucceededEventDetails",
    MapStateAborted => "",
    MapStateEntered => "stateEnteredEventDetails",
    MapStateExited => "stateExitedEventDetails",
    MapStateFailed => "",
    MapStateStarted => "mapStateStartedEventDetails",
    MapStateSucceeded => "",
    ParallelStateAborted => "",
    ParallelStateEntered => "stateEnteredEventDetails",
    ParallelStateExited => "stateExitedEventDetails",
    ParallelStateFailed => "",
    ParallelStateStarted => "",
    ParallelStateSucceeded => "",
    PassStateEntered => "stateEnteredEventDetails",
    PassStateExited => "stateExitedEventDetails",
    SucceedStateEntered => "stateEnteredEventDetails",
    SucceedStateExited => "stateExitedEventDetails",
    TaskFailed => "taskFailedEventDetails",
    TaskScheduled => "taskScheduledEventDetails",
    TaskStarted => "taskStartedEventDetails",
    TaskStartFailed => "taskStartFailedEventDetails",
    TaskStateAborted => "",
    TaskStateEntered => "stateEnteredEventDetails",
    TaskStateExited => "stateExitedEventDetails",
    TaskSubmitFailed => "taskSubmitFailedEventDetails",
    TaskSubmitted => "taskSubmittedEventDetails",
    TaskSucceeded => "taskSucceededEventDetails",
    TaskTimedOut => "taskTimedOutEventDetails",
    WaitStateAborted => "",
    WaitStateEntered => "stateEnteredEventDetails",
    WaitStateExited => "stateExitedEventDetails",
}

impl std::fmt::Display for HistoryEventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub kind: HistoryEventType,
    /// Shaped as AWS's `*EventDetails` member for `kind` (`{"name":..,"input":..}` for a
    /// `stateEnteredEventDetails`, ...); `null` for types without details. The
    /// `inputDetails`/`outputDetails` members (`{"truncated": false}`) are added by
    /// [`HistoryEvent::to_aws_json`].
    pub details: Value,
}

impl HistoryEvent {
    /// AWS's JSON for this event, as the JSON protocol answers GetExecutionHistory:
    /// `{"timestamp": 1767225600.123, "type": "...", "id": 1, "previousEventId": 0, "<detailsField>": {...}}`.
    pub fn to_aws_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("timestamp".into(), json!(self.timestamp_ms as f64 / 1000.0));
        out.insert("type".into(), json!(self.kind.as_str()));
        out.insert("id".into(), json!(self.id));
        out.insert("previousEventId".into(), json!(self.previous_event_id));
        let field = self.kind.details_field();
        if !field.is_empty() && !self.details.is_null() {
            let mut details = self.details.clone();
            // Payloads are never truncated (a breach of a limit is an error instead), so the
            // `*Details` members are written here rather than stored with every event.
            if let Value::Object(d) = &mut details {
                if d.contains_key("input") && !d.contains_key("inputDetails") {
                    d.insert("inputDetails".into(), not_truncated());
                }
                if d.contains_key("output") && !d.contains_key("outputDetails") {
                    d.insert("outputDetails".into(), not_truncated());
                }
            }
            out.insert(field.into(), details);
        }
        Value::Object(out)
    }
}

/// `{"truncated": false}`: payloads are never truncated, a breach of a limit is an error instead.
fn not_truncated() -> Value {
    json!({ "truncated": false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aws_json() {
        let event = HistoryEvent {
            id: 2,
            previous_event_id: 1,
            timestamp_ms: 1_500,
            kind: HistoryEventType::PassStateEntered,
            details: json!({"name": "A", "input": "{}"}),
        };
        assert_eq!(
            event.to_aws_json(),
            json!({"timestamp": 1.5, "type": "PassStateEntered", "id": 2, "previousEventId": 1,
                   "stateEnteredEventDetails": {"name": "A", "input": "{}", "inputDetails": {"truncated": false}}})
        );
        assert_eq!(
            HistoryEventType::parse("MapIterationStarted"),
            Some(HistoryEventType::MapIterationStarted)
        );
    }
}
