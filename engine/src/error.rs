//! The engine's error type: one variant per thing a caller can get wrong or run into.
//!
//! Workflow errors (a Task that failed, a Fail state) are not here: they are recorded in the
//! execution's history and surface as the execution's `error`/`cause`.

use std::path::PathBuf;

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an engine call can fail with. The API maps each variant to AWS's `__type` and an HTTP code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("State Machine Does Not Exist: '{0}'")]
    StateMachineDoesNotExist(String),
    #[error("State Machine Already Exists: '{0}'")]
    StateMachineAlreadyExists(String),
    #[error("State machine is being deleted: '{0}'")]
    StateMachineDeleting(String),
    #[error("Invalid State Machine Definition: {}", problems_text(.0))]
    InvalidDefinition(Vec<stepyard_statelang::Problem>),
    #[error("Invalid Arn: '{0}'")]
    InvalidArn(String),
    #[error("Invalid Name: '{0}'")]
    InvalidName(String),
    #[error("Invalid execution input: {0}")]
    InvalidExecutionInput(String),
    #[error("Execution Does Not Exist: '{0}'")]
    ExecutionDoesNotExist(String),
    #[error("Execution Already Exists: '{0}'")]
    ExecutionAlreadyExists(String),
    #[error("Execution cannot be redriven: {0}")]
    ExecutionNotRedrivable(String),
    #[error("Task Does Not Exist")]
    TaskDoesNotExist,
    #[error("Task Timed Out")]
    TaskTimedOut,
    #[error("Invalid Token: {0}")]
    InvalidToken(String),
    #[error("Invalid Output: {0}")]
    InvalidOutput(String),
    #[error("Activity Does Not Exist: '{0}'")]
    ActivityDoesNotExist(String),
    #[error("Activity Already Exists: '{0}'")]
    ActivityAlreadyExists(String),
    #[error("States.DataLimitExceeded: {0}")]
    DataLimitExceeded(String),
    #[error("{0}")]
    ValidationException(String),
    #[error("{0}")]
    StateMachineTypeNotSupported(String),
    #[error("{0}")]
    InvalidNextToken(String),
    /// An event bus, rule, archive, replay, connection or API destination that does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    #[error("{0}")]
    InvalidEventPattern(String),
    /// The resource is not in a state that allows the call (e.g. cancelling a finished replay).
    #[error("{0}")]
    IllegalStatus(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// A request field that is not valid (SNS's `InvalidParameterException`), named by its
    /// parameter name, or by a JSON Pointer when the path runs through a user's key that may
    /// hold dots (`/message_attributes/AWS.x`).
    #[error("Invalid parameter: {field}: {message}")]
    InvalidParameter { field: String, message: String },
    #[error("the data folder {} is in use by another process (its lock is held)", .path.display())]
    StoreLocked { path: PathBuf },
    #[error("store error: {0}")]
    Store(String),
    #[error("stored record is corrupt or of an unknown format: {0}")]
    Corrupt(String),
    #[error("the engine is shutting down")]
    ShuttingDown,
}

fn problems_text(problems: &[stepyard_statelang::Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{} at '{}': {}", p.code, p.pointer, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<sled::Error> for Error {
    fn from(err: sled::Error) -> Self {
        Error::Store(err.to_string())
    }
}
