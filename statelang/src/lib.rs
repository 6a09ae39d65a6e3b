//! The Amazon States Language as data: parse, validate and evaluate, in both query
//! languages (JSONPath and JSONata), with workflow variables.
//!
//! Boundary: this crate is pure. No I/O, no clock, no randomness; everything that varies
//! comes in through arguments ([`Env`] for UUIDs and random numbers, the context object
//! `$$` built by the engine). A transition is a function of
//! (definition, state, input, context, environment), so it can be replayed.
//!
//! # API
//!
//! ```text
//! parse(definition: &str) -> Result<StateMachine, Vec<Problem>>   // parse + validate, every problem
//! parse_value(&Value)     -> Result<StateMachine, Vec<Problem>>
//! validate(definition: &str) -> Vec<Problem>                      // [] when valid (for `stepyard validate`)
//!
//! enter(state, input, scope, env)            -> Result<Entered, StatesError>
//! map_item_input(state, effective_input, item, index, scope, env) -> Result<Value, StatesError>
//! complete(state, state_input, result, scope, env) -> Result<Completed, StatesError>
//! on_error(state, state_input, error, retry_counts, scope, env) -> ErrorOutcome
//!
//! enter_owned(state, input: Value, scope, env)                  // same, input moved in
//! enter_mut(state, input: &mut Value, scope, env)               // same, a Pass may move input out
//! complete_owned(state, state_input: Value, result, scope, env) // same, input moved in
//! ```
//!
//! A [`Scope`] carries the context object (`$$`, `$states.context`) and the workflow
//! variables the state sees ([`Variables`]: the engine looks them up through its nested
//! scopes). Whatever a state assigns comes back as `assigned` in [`Entered::Next`],
//! [`Entered::End`], [`Completed`] and [`ErrorOutcome::Catch`]; every `Assign` value is
//! computed from the variables as they were before the state, and the caller sets them
//! in the state's scope when it commits the transition.
//!
//! # Variables and JSONata
//!
//! - JSONPath states read variables as `$name` in paths (`"x.$": "$name.field"`, Choice
//!   `Variable`, intrinsic arguments). Their `Assign` sees `$` = the state's result after
//!   `ResultSelector` (Task, Parallel, Map), the `Result`/`Parameters` output (Pass), the
//!   effective input (Choice, Wait) or the error output (a catcher's `Assign`).
//! - JSONata states (`"QueryLanguage": "JSONata"` on the machine or the state) use
//!   `{% %}` expressions (see [`jsonata`]) with `$states.input`, `$states.result`,
//!   `$states.errorOutput`, `$states.context` and the variables; `Arguments`, `Output`,
//!   `Items`, `Condition` replace the JSONPath fields, which are refused there (and vice
//!   versa), each with its pointer. A Choice state's `Assign` applies whichever rule is
//!   taken, the taken rule's `Assign` on top.
//! - A Parallel branch or Map iteration reads the variables around it but may not
//!   assign them (a validation problem); its own variables end with it. A distributed
//!   Map's iterations see no outer variables. One state assigns at most 256 KiB
//!   (`States.Runtime`); the engine holds an execution to 10 MiB in all.
//!
//! The `_owned` forms give the same results; a caller that is done with the input
//! saves copying it when `ResultPath` writes into it.
//!
//! How the engine drives one state (its raw input is `input`):
//!
//! - [`enter`] applies `InputPath` and what comes before the work:
//!   - Pass, Choice → [`Entered::Next`] / [`Entered::End`] with the final output (Pass:
//!     `Parameters`/`Result` → `ResultPath` → `OutputPath`; Choice: rules on the effective
//!     input, then `OutputPath`). No match and no `Default` is `States.NoChoiceMatched`.
//!   - Succeed → [`Entered::End`]; Fail → [`Entered::Fail`] (`ErrorPath`/`CausePath` resolved).
//!   - Task → [`Entered::Task`] with the effective parameters (`InputPath` → `Parameters`)
//!     and the resolved timeouts. Parallel → [`Entered::Parallel`] with the branch input.
//!     Map → [`Entered::Map`] with the items (`ItemsPath`), the effective input and the
//!     concurrency/tolerance numbers; each iteration's input comes from [`map_item_input`].
//!     With an `ItemReader` the item list is empty: reading items is the engine's job.
//!   - Wait → [`Entered::Wait`] with when to wake up. **When the timer fires, call
//!     [`complete`] with any result (e.g. `Value::Null`)**: it is ignored, and the output
//!     is `OutputPath(InputPath(input))`.
//! - [`complete`] (Task, Parallel, Map, Wait): `ResultSelector` → `ResultPath` into the
//!   raw input (null discards the result; missing intermediate objects are created) →
//!   `OutputPath`, then [`Completed::Next`] or [`Completed::End`].
//! - [`on_error`] when the work (or any evaluation step above) failed: the first retrier
//!   whose `ErrorEquals` matches decides the retry and its delay; with no attempts left
//!   (or no matching retrier) the first matching catcher wins; otherwise the state fails.
//!
//! Errors from evaluation are [`StatesError`]s with AWS's names: bad paths are
//! `States.Runtime` (never retried, never caught), ResultPath conflicts are
//! `States.ResultPathMatchFailure`, bad intrinsic arguments `States.IntrinsicFailure`.
//!
//! Validation problems carry a JSON Pointer, a stable [`ProblemCode`] and a message;
//! `Display` for [`Problem`] prints `pointer: CODE: message`.
//!
//! Error causes start with `An error occurred while executing the state 'NAME'.`; AWS
//! also names the history event id there, which only the engine knows.
//!
//! # Where this differs from AWS (known, deliberate or not yet done)
//!
//! - JSONata's `$now()`/`$millis()` answer the time the state was entered, not the
//!   moment of evaluation (evaluation must not read a clock). A JSONata expression with
//!   no value in a whole field (`Output`, `Arguments`...) is `States.QueryEvaluationError`;
//!   inside an object or array the field or item is left out.
//! - Paths beyond plain reference paths (filters, slices, `..`, `*`) are evaluated by
//!   `jsonpath-rust` (RFC 9535); Jayway-only extensions such as `length()` do not parse.
//! - A `.$` path that selects nothing is `States.Runtime` (what AWS reports in practice),
//!   not `States.ParameterPathFailure`.
//! - `States.Format` rejects object/array arguments; `States.Hash` hashes the JSON text of
//!   a non-string argument; `States.StringSplit` drops empty pieces; `States.MathRandom`
//!   returns an integer in `[start, end)` (seeded: `java.util.Random(seed).nextInt`).
//! - String comparisons in Choice order by Unicode code point (AWS: UTF-16 units); they
//!   differ only for characters outside the Basic Multilingual Plane.
//! - `ResultPath` through a `null` field replaces the null with an object.
//! - `States.Timeout` also matches `States.HeartbeatTimeout`; `States.TaskFailed` matches
//!   neither; `States.Runtime` is never retried or caught, even by name.
//! - Intrinsic nesting is limited by depth (10), not by the number of calls in a field.

mod choice;
mod error;
mod eval;
pub mod intrinsic;
pub mod jsonata;
mod model;
mod parse;
mod path;
mod problem;
mod scope;
mod template;

pub use choice::{
    ChoiceRule, Condition, Operand, OperandKind, Operator, parse_timestamp, string_matches,
};
pub use error::{ErrorName, StatesError};
pub use eval::{
    Completed, Entered, Env, ErrorOutcome, FixedEnv, WaitUntil, complete, complete_owned, enter,
    enter_mut, enter_owned, map_item_input, on_error,
};
pub use model::{
    Catcher, ChoiceState, ExecutionType, FailState, FailText, IoPaths, JitterStrategy, MapState,
    NumberOrPath, ParallelState, PassState, ProcessorConfig, ProcessorMode, QueryLanguage,
    ResultPath, Retrier, State, StateMachine, SucceedState, TaskState, Transition, WaitFor,
    WaitState,
};
pub use parse::{MAX_SECONDS, MAX_STATE_NAME_LEN, parse, parse_value, validate};
pub use path::{Path, PathError, Root, Segment};
pub use problem::{Problem, ProblemCode, pointer_push};
pub use scope::{
    MAX_ASSIGNED_BYTES, MAX_TOTAL_VARIABLE_BYTES, MAX_VARIABLE_NAME_LEN, NoVariables, Scope,
    Variables, Vars, is_variable_name, variable_size, variables_size,
};
pub use template::Template;

/// The JSON type of a value, as people say it.
pub(crate) fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
