//! The typed model of an ASL document. Built only by [`crate::parse`], so every value
//! here has been validated: targets exist, paths are compiled, templates are compiled.

use chrono::{DateTime, FixedOffset};
use indexmap::IndexMap;
use serde_json::Value;

use crate::choice::ChoiceRule;
use crate::error::ErrorName;
use crate::intrinsic::Call;
use crate::jsonata::Expr;
use crate::path::Path;
use crate::template::Template;

/// A whole state machine, or a Parallel branch, or a Map's item processor.
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachine {
    pub comment: Option<String>,
    pub start_at: String,
    pub states: IndexMap<String, State>,
    pub timeout_seconds: Option<u64>,
    pub version: Option<String>,
    pub query_language: QueryLanguage,
}

impl StateMachine {
    /// The state named `StartAt`.
    pub fn start_state(&self) -> Option<&State> {
        self.states.get(&self.start_at)
    }
}

/// `QueryLanguage` of a machine or a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryLanguage {
    #[default]
    JsonPath,
    Jsonata,
}

/// Where a state goes when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Next(String),
    End,
}

/// One state, typed by its `Type`.
// States are built once per definition and read many times; boxing the larger variants
// would only add indirection on every evaluation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Pass(PassState),
    Task(TaskState),
    Choice(ChoiceState),
    Wait(WaitState),
    Succeed(SucceedState),
    Fail(FailState),
    Parallel(ParallelState),
    Map(MapState),
}

impl State {
    pub fn name(&self) -> &str {
        match self {
            State::Pass(s) => &s.name,
            State::Task(s) => &s.name,
            State::Choice(s) => &s.name,
            State::Wait(s) => &s.name,
            State::Succeed(s) => &s.name,
            State::Fail(s) => &s.name,
            State::Parallel(s) => &s.name,
            State::Map(s) => &s.name,
        }
    }

    /// The `Type` string: `"Pass"`, `"Task"`...
    pub fn type_name(&self) -> &'static str {
        match self {
            State::Pass(_) => "Pass",
            State::Task(_) => "Task",
            State::Choice(_) => "Choice",
            State::Wait(_) => "Wait",
            State::Succeed(_) => "Succeed",
            State::Fail(_) => "Fail",
            State::Parallel(_) => "Parallel",
            State::Map(_) => "Map",
        }
    }

    pub fn comment(&self) -> Option<&str> {
        match self {
            State::Pass(s) => s.comment.as_deref(),
            State::Task(s) => s.comment.as_deref(),
            State::Choice(s) => s.comment.as_deref(),
            State::Wait(s) => s.comment.as_deref(),
            State::Succeed(s) => s.comment.as_deref(),
            State::Fail(s) => s.comment.as_deref(),
            State::Parallel(s) => s.comment.as_deref(),
            State::Map(s) => s.comment.as_deref(),
        }
    }

    /// The query language the state's fields are written in.
    pub fn query_language(&self) -> QueryLanguage {
        match self {
            State::Pass(s) => s.query_language,
            State::Task(s) => s.query_language,
            State::Choice(s) => s.query_language,
            State::Wait(s) => s.query_language,
            State::Succeed(s) => s.query_language,
            State::Fail(s) => s.query_language,
            State::Parallel(s) => s.query_language,
            State::Map(s) => s.query_language,
        }
    }

    /// The transition of states that have one (not Choice, Succeed, Fail).
    pub fn transition(&self) -> Option<&Transition> {
        match self {
            State::Pass(s) => Some(&s.transition),
            State::Task(s) => Some(&s.transition),
            State::Wait(s) => Some(&s.transition),
            State::Parallel(s) => Some(&s.transition),
            State::Map(s) => Some(&s.transition),
            State::Choice(_) | State::Succeed(_) | State::Fail(_) => None,
        }
    }

    /// Retriers of Task, Parallel and Map; empty for the others.
    pub fn retry(&self) -> &[Retrier] {
        match self {
            State::Task(s) => &s.retry,
            State::Parallel(s) => &s.retry,
            State::Map(s) => &s.retry,
            _ => &[],
        }
    }

    /// Catchers of Task, Parallel and Map; empty for the others.
    pub fn catch(&self) -> &[Catcher] {
        match self {
            State::Task(s) => &s.catch,
            State::Parallel(s) => &s.catch,
            State::Map(s) => &s.catch,
            _ => &[],
        }
    }
}

/// `InputPath` and `OutputPath`. `None` is an explicit JSON `null` (the state sees or
/// emits `{}`); an absent field is `Some($)`.
#[derive(Debug, Clone, PartialEq)]
pub struct IoPaths {
    pub input_path: Option<Path>,
    pub output_path: Option<Path>,
}

impl Default for IoPaths {
    fn default() -> Self {
        IoPaths {
            input_path: Some(Path::root()),
            output_path: Some(Path::root()),
        }
    }
}

/// `ResultPath`: `None` is an explicit `null` (discard the result, keep the input).
pub type ResultPath = Option<Path>;

/// A number given either literally or by a reference path into the input.
#[derive(Debug, Clone, PartialEq)]
pub enum NumberOrPath<T> {
    Value(T),
    Path(Path),
    /// A JSONata expression (JSONata states).
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PassState {
    pub name: String,
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    pub assign: Option<Template>,
    /// JSONata `Output`.
    pub output: Option<Template>,
    pub io: IoPaths,
    pub parameters: Option<Template>,
    pub result: Option<Value>,
    pub result_path: ResultPath,
    pub transition: Transition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    pub name: String,
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    pub assign: Option<Template>,
    /// JSONata `Output`.
    pub output: Option<Template>,
    pub resource: String,
    pub io: IoPaths,
    /// `Parameters`, or JSONata's `Arguments`.
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    pub timeout_seconds: Option<NumberOrPath<u64>>,
    pub heartbeat_seconds: Option<NumberOrPath<u64>>,
    pub credentials: Option<Template>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    pub transition: Transition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceState {
    pub name: String,
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    /// Assigned whichever way the state goes (a matching rule's own `Assign` on top).
    pub assign: Option<Template>,
    /// JSONata `Output` when the rule taken has none (and for `Default`).
    pub output: Option<Template>,
    pub io: IoPaths,
    pub choices: Vec<ChoiceRule>,
    pub default: Option<String>,
}

/// How long a Wait state waits.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(Path),
    Timestamp(DateTime<FixedOffset>),
    TimestampPath(Path),
    /// JSONata `Seconds` expression.
    SecondsExpr(Expr),
    /// JSONata `Timestamp` expression.
    TimestampExpr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WaitState {
    pub name: String,
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    pub assign: Option<Template>,
    pub output: Option<Template>,
    pub io: IoPaths,
    pub wait: WaitFor,
    pub transition: Transition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SucceedState {
    pub name: String,
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    pub output: Option<Template>,
    pub io: IoPaths,
}

/// `Error`/`Cause` of a Fail state: literal, or from `ErrorPath`/`CausePath` (a reference
/// path or an intrinsic call, read from the state's raw input).
#[derive(Debug, Clone, PartialEq)]
pub enum FailText {
    Literal(String),
    Path(Path),
    Call(Call),
    /// A JSONata expression (JSONata states).
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FailState {
    pub name: String,
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    pub error: Option<FailText>,
    pub cause: Option<FailText>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParallelState {
    pub name: String,
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    pub assign: Option<Template>,
    pub output: Option<Template>,
    pub io: IoPaths,
    pub branches: Vec<StateMachine>,
    /// `Parameters`, or JSONata's `Arguments`.
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    pub transition: Transition,
}

/// `ProcessorConfig.Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessorMode {
    #[default]
    Inline,
    Distributed,
}

/// `ProcessorConfig.ExecutionType` (Distributed mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionType {
    Standard,
    Express,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessorConfig {
    pub mode: ProcessorMode,
    pub execution_type: Option<ExecutionType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapState {
    pub name: String,
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    pub assign: Option<Template>,
    pub output: Option<Template>,
    /// JSONata `Items` (an array or an expression); `None` is the state input.
    pub items: Option<Template>,
    pub io: IoPaths,
    /// `ItemProcessor`, or the legacy `Iterator`.
    pub item_processor: StateMachine,
    pub processor_config: ProcessorConfig,
    /// Defaults to `$`.
    pub items_path: Path,
    /// `ItemSelector`, or the legacy `Parameters`.
    pub item_selector: Option<Template>,
    pub max_concurrency: Option<NumberOrPath<u32>>,
    pub tolerated_failure_percentage: Option<NumberOrPath<f64>>,
    pub tolerated_failure_count: Option<NumberOrPath<u64>>,
    /// `ItemReader`, `ItemBatcher`, `ResultWriter`: kept as compiled templates over
    /// their raw JSON; reading items from elsewhere is the engine's job.
    pub item_reader: Option<Value>,
    pub item_batcher: Option<Value>,
    pub result_writer: Option<Value>,
    pub label: Option<String>,
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    pub transition: Transition,
}

/// `JitterStrategy` of a retrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JitterStrategy {
    #[default]
    None,
    Full,
}

/// One element of `Retry`.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<ErrorName>,
    /// Default 1.
    pub interval_seconds: u64,
    /// Default 3; 0 means never retry.
    pub max_attempts: u32,
    /// Default 2.0; at least 1.0.
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub jitter_strategy: JitterStrategy,
    pub comment: Option<String>,
}

/// One element of `Catch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    pub error_equals: Vec<ErrorName>,
    pub next: String,
    /// Default `$` (the error output replaces the input); `None` for `null`.
    pub result_path: ResultPath,
    pub assign: Option<Template>,
    /// JSONata `Output` (default: the error output).
    pub output: Option<Template>,
    pub comment: Option<String>,
}
