//! Workflow errors: the names a state can fail with and how `ErrorEquals` matches them.

use std::fmt;
use std::str::FromStr;

/// An error name as it appears in `ErrorEquals`, in a Fail state or in a task failure.
///
/// The predefined `States.*` names are variants; anything else is `Custom`.
/// `Display`/`FromStr` use the wire spelling (`"States.Runtime"`), and
/// `ErrorName::from_str(x).to_string() == x` for every string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorName {
    /// `States.ALL`: the wildcard.
    All,
    /// `States.Runtime`: never retried or caught; always fails the execution.
    Runtime,
    /// `States.Timeout`: a Task ran past `TimeoutSeconds` (also matches heartbeat timeouts).
    Timeout,
    /// `States.TaskFailed`: as a matcher, every error except timeouts.
    TaskFailed,
    /// `States.Permissions`.
    Permissions,
    /// `States.ResultPathMatchFailure`: the result could not be placed by `ResultPath`.
    ResultPathMatchFailure,
    /// `States.ParameterPathFailure`.
    ParameterPathFailure,
    /// `States.BranchFailed`: a Parallel branch failed.
    BranchFailed,
    /// `States.NoChoiceMatched`: no Choice rule matched and there is no `Default`.
    NoChoiceMatched,
    /// `States.IntrinsicFailure`: an intrinsic function got bad arguments.
    IntrinsicFailure,
    /// `States.HeartbeatTimeout`.
    HeartbeatTimeout,
    /// `States.ExceedToleratedFailureThreshold`: a Map had too many failed items.
    ExceedToleratedFailureThreshold,
    /// `States.ItemReaderFailed`.
    ItemReaderFailed,
    /// `States.ResultWriterFailed`.
    ResultWriterFailed,
    /// `States.DataLimitExceeded`: only caught when named explicitly.
    DataLimitExceeded,
    /// `States.QueryEvaluationError` (JSONata).
    QueryEvaluationError,
    /// `States.Http.Socket`.
    HttpSocket,
    /// Any other name, e.g. `Lambda.ServiceException` or a user's `MyError`.
    Custom(String),
}

const PREDEFINED: &[(&str, ErrorName)] = &[
    ("States.ALL", ErrorName::All),
    ("States.Runtime", ErrorName::Runtime),
    ("States.Timeout", ErrorName::Timeout),
    ("States.TaskFailed", ErrorName::TaskFailed),
    ("States.Permissions", ErrorName::Permissions),
    (
        "States.ResultPathMatchFailure",
        ErrorName::ResultPathMatchFailure,
    ),
    (
        "States.ParameterPathFailure",
        ErrorName::ParameterPathFailure,
    ),
    ("States.BranchFailed", ErrorName::BranchFailed),
    ("States.NoChoiceMatched", ErrorName::NoChoiceMatched),
    ("States.IntrinsicFailure", ErrorName::IntrinsicFailure),
    ("States.HeartbeatTimeout", ErrorName::HeartbeatTimeout),
    (
        "States.ExceedToleratedFailureThreshold",
        ErrorName::ExceedToleratedFailureThreshold,
    ),
    ("States.ItemReaderFailed", ErrorName::ItemReaderFailed),
    ("States.ResultWriterFailed", ErrorName::ResultWriterFailed),
    ("States.DataLimitExceeded", ErrorName::DataLimitExceeded),
    (
        "States.QueryEvaluationError",
        ErrorName::QueryEvaluationError,
    ),
    ("States.Http.Socket", ErrorName::HttpSocket),
];

impl ErrorName {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        if let ErrorName::Custom(name) = self {
            return name;
        }
        PREDEFINED
            .iter()
            .find(|(_, n)| n == self)
            .map(|(s, _)| *s)
            .unwrap_or("States.Runtime")
    }

    /// Whether this name is one of the predefined `States.*` names.
    pub fn is_predefined(&self) -> bool {
        !matches!(self, ErrorName::Custom(_))
    }

    /// Whether a retrier or catcher listing `self` in `ErrorEquals` handles `error`.
    ///
    /// AWS rules: `States.ALL` matches every error except `States.Runtime` and
    /// `States.DataLimitExceeded`; `States.TaskFailed` matches every error except
    /// those two and the timeouts; `States.Timeout` also matches
    /// `States.HeartbeatTimeout`. `States.Runtime` is never matched (it always fails
    /// the execution); every other name matches itself only.
    pub fn matches(&self, error: &ErrorName) -> bool {
        if *error == ErrorName::Runtime {
            return false;
        }
        match self {
            ErrorName::All => *error != ErrorName::DataLimitExceeded,
            ErrorName::TaskFailed => !matches!(
                error,
                ErrorName::DataLimitExceeded | ErrorName::Timeout | ErrorName::HeartbeatTimeout
            ),
            ErrorName::Timeout => {
                matches!(error, ErrorName::Timeout | ErrorName::HeartbeatTimeout)
            }
            other => other == error,
        }
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorName {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ErrorName::from(s))
    }
}

impl From<&str> for ErrorName {
    fn from(s: &str) -> Self {
        PREDEFINED
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| ErrorName::Custom(s.to_owned()))
    }
}

/// A workflow error: what a state fails with. Recorded in history; matched by Retry/Catch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct StatesError {
    pub error: ErrorName,
    pub cause: String,
}

impl StatesError {
    pub fn new(error: ErrorName, cause: impl Into<String>) -> Self {
        StatesError {
            error,
            cause: cause.into(),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        StatesError::new(ErrorName::Runtime, cause)
    }

    pub fn intrinsic(cause: impl Into<String>) -> Self {
        StatesError::new(ErrorName::IntrinsicFailure, cause)
    }
}
