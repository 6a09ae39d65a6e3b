//! Evaluation: what a state does with its input. Pure functions of
//! (state, input, context, environment); the engine owns time, history and effects.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value, json};

use crate::choice::parse_timestamp;
use crate::error::{ErrorName, StatesError};
use crate::intrinsic;
use crate::jsonata::Expr;
use crate::model::{
    FailText, IoPaths, JitterStrategy, NumberOrPath, PassState, QueryLanguage, ResultPath, State,
    Transition, WaitFor,
};
use crate::path::Path;
use crate::scope::{MAX_ASSIGNED_BYTES, Scope, Vars, variables_size};
use crate::template::{Template, truncate};

/// Everything non-deterministic that evaluation may need, injected so a transition can
/// be replayed exactly.
pub trait Env {
    /// A fresh UUID (v4 text form) for `States.UUID()`.
    fn uuid(&mut self) -> String;
    /// A random number in `[0, 1)`, for `States.MathRandom` and retry jitter.
    fn random(&mut self) -> f64;
}

/// An [`Env`] that always answers the same: for tests and for evaluation that must not
/// use randomness.
#[derive(Debug, Clone, Default)]
pub struct FixedEnv {
    pub uuid: String,
    pub random: f64,
}

impl Env for FixedEnv {
    fn uuid(&mut self) -> String {
        self.uuid.clone()
    }

    fn random(&mut self) -> f64 {
        self.random
    }
}

/// When a Wait state's timer fires.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitUntil {
    /// This many seconds after the state was entered.
    Seconds(u64),
    /// At this instant.
    Timestamp(DateTime<FixedOffset>),
}

/// What entering a state asks of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Entered {
    /// Go on to `next` with `output` (Pass, Choice), setting the `assigned` variables.
    Next {
        next: String,
        output: Value,
        assigned: Vars,
    },
    /// The machine (or branch, or iteration) ends with `output` (Succeed, terminal Pass).
    End { output: Value, assigned: Vars },
    /// The machine fails (Fail state).
    Fail {
        error: Option<String>,
        cause: Option<String>,
    },
    /// Run a task; then call [`complete`] with its result, or [`on_error`].
    Task {
        resource: String,
        parameters: Value,
        timeout_seconds: Option<u64>,
        heartbeat_seconds: Option<u64>,
        credentials: Option<Value>,
    },
    /// Arm a timer; when it fires call [`complete`] with any result (it is ignored).
    Wait { until: WaitUntil },
    /// Run every branch with `input`; then call [`complete`] with the array of outputs.
    Parallel { input: Value },
    /// Run the item processor once per item (input from [`map_item_input`]); then call
    /// [`complete`] with the array of outputs.
    Map {
        items: Vec<Value>,
        effective_input: Value,
        /// 0 means no limit.
        max_concurrency: u32,
        tolerated_failure_percentage: Option<f64>,
        tolerated_failure_count: Option<u64>,
    },
}

/// Where to go once a state's work is done, and the variables it assigns.
#[derive(Debug, Clone, PartialEq)]
pub enum Completed {
    Next {
        next: String,
        output: Value,
        assigned: Vars,
    },
    End {
        output: Value,
        assigned: Vars,
    },
}

/// What to do about a failed state.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorOutcome {
    /// Run the state again after `delay_ms`, counting one more attempt for `retrier`.
    Retry { retrier: usize, delay_ms: u64 },
    /// Go to `next` with `output` (the error object placed by the catcher's ResultPath,
    /// or its JSONata `Output`), setting the catcher's `assigned` variables.
    Catch {
        next: String,
        output: Value,
        assigned: Vars,
    },
    /// Fail the execution (or branch) with the error.
    Fail,
}

fn with_state(state: &State, e: StatesError) -> StatesError {
    StatesError {
        error: e.error,
        cause: format!(
            "An error occurred while executing the state '{}'. {}",
            state.name(),
            e.cause
        ),
    }
}

/// Applies `InputPath` to the raw state input.
/// Borrows where it can: most states use the default `$`, and cloning the whole input
/// for it would be most of a state's evaluation cost.
fn apply_input_path<'a>(
    io: &IoPaths,
    input: &'a Value,
    scope: &Scope<'a>,
) -> Result<Cow<'a, Value>, StatesError> {
    match &io.input_path {
        None => Ok(Cow::Owned(Value::Object(Map::new()))),
        Some(path) if path.is_root() => Ok(Cow::Borrowed(input)),
        Some(path) => path.select(input, scope).ok_or_else(|| missing_path(path)),
    }
}

/// AWS's cause for a path that selects nothing, e.g.
/// `Invalid path '$.a' : No results for path: $['a']`.
fn missing_path(path: &Path) -> StatesError {
    StatesError::runtime(format!(
        "Invalid path '{path}' : No results for path: {}",
        path.normalized()
    ))
}

/// Applies `OutputPath` to a state's output (consumes it).
fn apply_output_path(io: &IoPaths, output: Value, scope: &Scope<'_>) -> Result<Value, StatesError> {
    match &io.output_path {
        None => Ok(Value::Object(Map::new())),
        Some(path) if path.is_root() => Ok(output),
        Some(path) => select_required(path, &output, scope),
    }
}

fn select_required(path: &Path, input: &Value, scope: &Scope<'_>) -> Result<Value, StatesError> {
    path.select(input, scope)
        .map(|v| v.into_owned())
        .ok_or_else(|| missing_path(path))
}

/// Places `result` into `state_input` at `result_path`. Takes the input as a `Cow` so an
/// owned input is updated in place instead of cloned.
fn apply_result_path(
    result_path: &ResultPath,
    state_input: Cow<'_, Value>,
    result: Value,
) -> Result<Value, StatesError> {
    if let Some(path) = result_path.as_ref().filter(|path| !path.is_root()) {
        check_result_path(path, &state_input)?;
    }
    place_result(result_path, state_input, result)
}

/// [`apply_result_path`] once [`check_result_path`] has passed.
fn place_result(
    result_path: &ResultPath,
    state_input: Cow<'_, Value>,
    result: Value,
) -> Result<Value, StatesError> {
    match result_path {
        None => Ok(state_input.into_owned()),
        Some(path) if path.is_root() => Ok(result),
        Some(path) => {
            let mut target = state_input.into_owned();
            path.assign(&mut target, result)
                .map_err(|why| result_path_failure(path, &target, &why))?;
            Ok(target)
        }
    }
}

/// Fails as `ResultPath` would on `input`, before anything is changed, so that the error
/// quotes the input as the state received it.
fn check_result_path(path: &Path, input: &Value) -> Result<(), StatesError> {
    path.check_assign(input)
        .map_err(|why| result_path_failure(path, input, &why))
}

fn result_path_failure(path: &Path, input: &Value, why: &str) -> StatesError {
    StatesError::new(
        ErrorName::ResultPathMatchFailure,
        format!(
            "Unable to apply ResultPath '{path}' to input '{}': {why}",
            truncate(&input.to_string())
        ),
    )
}

/// A Pass state's input: borrowed, or the caller's own value, which the Pass may move
/// into its output instead of copying it (and leaves as it was when it fails).
enum PassInput<'a> {
    Shared(&'a Value),
    Slot(&'a mut Value),
}

impl PassInput<'_> {
    fn get(&self) -> &Value {
        match self {
            PassInput::Shared(value) => value,
            PassInput::Slot(value) => value,
        }
    }

    fn take(self) -> Value {
        match self {
            PassInput::Shared(value) => value.clone(),
            PassInput::Slot(value) => std::mem::take(value),
        }
    }
}

fn template_or(
    template: &Option<Template>,
    input: Cow<'_, Value>,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Value, StatesError> {
    match template {
        None => Ok(input.into_owned()),
        Some(t) => t.evaluate(&input, scope, env),
    }
}

/// Evaluates an `Assign` block: `input` is what `$` (JSONPath) or `$states.input`
/// (JSONata) stands for. Every value sees the variables from before the state.
fn assign_vars(
    assign: &Option<Template>,
    input: &Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Vars, StatesError> {
    let Some(template) = assign else {
        return Ok(Vars::new());
    };
    let vars = match template.evaluate(input, scope, env)? {
        Value::Object(map) => map,
        other => {
            return Err(StatesError::new(
                ErrorName::QueryEvaluationError,
                format!(
                    "The field 'Assign' must produce an object of variables, but produced {}",
                    truncate(&other.to_string())
                ),
            ));
        }
    };
    let size = variables_size(&vars);
    if size > MAX_ASSIGNED_BYTES {
        return Err(StatesError::runtime(format!(
            "The variables assigned by the state are {size} bytes, more than the {MAX_ASSIGNED_BYTES} bytes (256 KiB) one state may assign"
        )));
    }
    Ok(vars)
}

/// JSONata `Output` and `Assign`, both from the values before the state. The output is
/// `None` when the state has no `Output`: the caller then moves its default (the input,
/// the result or the error output) into place instead of copying it.
fn jsonata_finish(
    output: &Option<Template>,
    assign: &Option<Template>,
    input: &Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<(Option<Value>, Vars), StatesError> {
    let assigned = assign_vars(assign, input, scope, env)?;
    let output = match output {
        Some(t) => Some(t.evaluate(input, scope, env)?),
        None => None,
    };
    Ok((output, assigned))
}

fn finish(transition: &Transition, output: Value, assigned: Vars) -> Completed {
    match transition {
        Transition::Next(next) => Completed::Next {
            next: next.clone(),
            output,
            assigned,
        },
        Transition::End => Completed::End { output, assigned },
    }
}

fn entered(completed: Completed) -> Entered {
    match completed {
        Completed::Next {
            next,
            output,
            assigned,
        } => Entered::Next {
            next,
            output,
            assigned,
        },
        Completed::End { output, assigned } => Entered::End { output, assigned },
    }
}

/// A JSONata expression that must give a whole number (seconds, counts...).
fn expr_u64(
    expr: &Expr,
    input: &Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
    field: &str,
) -> Result<u64, StatesError> {
    let value = expr.evaluate(input, scope, env)?;
    match value.as_ref().and_then(|v| {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
    }) {
        Some(n) => Ok(n),
        None => Err(expr.wrong_result(field, "a non-negative integer", value.as_ref())),
    }
}

fn resolve_u64(
    value: &Option<NumberOrPath<u64>>,
    input: &Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
    field: &str,
) -> Result<Option<u64>, StatesError> {
    match value {
        None => Ok(None),
        Some(NumberOrPath::Value(v)) => Ok(Some(*v)),
        Some(NumberOrPath::Expr(e)) => {
            expr_u64(e, input, scope, env, field.trim_end_matches("Path")).map(Some)
        }
        Some(NumberOrPath::Path(path)) => {
            let v = select_required(path, input, scope)?;
            v.as_u64().map(Some).ok_or_else(|| {
                StatesError::runtime(format!(
                    "The value at {field} '{path}' must be a non-negative integer, got {}",
                    truncate(&v.to_string())
                ))
            })
        }
    }
}

fn resolve_f64(
    value: &Option<NumberOrPath<f64>>,
    input: &Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
    field: &str,
) -> Result<Option<f64>, StatesError> {
    let (v, what) = match value {
        None => return Ok(None),
        Some(NumberOrPath::Value(v)) => return Ok(Some(*v)),
        Some(NumberOrPath::Path(path)) => (
            select_required(path, input, scope)?,
            format!("{field} '{path}'"),
        ),
        Some(NumberOrPath::Expr(e)) => (
            e.evaluate(input, scope, env)?.unwrap_or(Value::Null),
            format!("'{}'", field.trim_end_matches("Path")),
        ),
    };
    match v.as_f64() {
        Some(f) if (0.0..=100.0).contains(&f) => Ok(Some(f)),
        _ => Err(StatesError::runtime(format!(
            "The value at {what} must be a number between 0 and 100, got {}",
            truncate(&v.to_string())
        ))),
    }
}

fn fail_text(
    text: &Option<FailText>,
    input: &Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
    field: &str,
) -> Result<Option<String>, StatesError> {
    let value = match text {
        None => return Ok(None),
        Some(FailText::Literal(s)) => return Ok(Some(s.clone())),
        Some(FailText::Path(path)) => select_required(path, input, scope)?,
        Some(FailText::Call(call)) => intrinsic::evaluate(call, input, scope, env)?,
        Some(FailText::Expr(e)) => match e.evaluate(input, scope, env)? {
            Some(Value::String(s)) => return Ok(Some(s)),
            other => {
                return Err(e.wrong_result(
                    field.trim_end_matches("Path"),
                    "a string",
                    other.as_ref(),
                ));
            }
        },
    };
    match value {
        Value::String(s) => Ok(Some(s)),
        other => Err(StatesError::runtime(format!(
            "The value of {field} must be a string, got {}",
            truncate(&other.to_string())
        ))),
    }
}

/// Enters `state` with its raw `input`. See the crate docs for what each state returns.
pub fn enter(
    state: &State,
    input: &Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Entered, StatesError> {
    match state {
        State::Pass(pass) => enter_pass(pass, PassInput::Shared(input), scope, env),
        other => enter_borrowed(other, input, scope, env),
    }
    .map_err(|e| with_state(state, e))
}

/// [`enter`] for a caller that owns the input and is done with it: a Pass state's
/// `ResultPath` then updates the input in place instead of copying it.
pub fn enter_owned(
    state: &State,
    mut input: Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Entered, StatesError> {
    enter_mut(state, &mut input, scope, env)
}

/// [`enter`] that may move `input` into the result instead of copying it: when a Pass
/// state succeeds, `input` may be left `null`; when it fails, and for every other state,
/// `input` is left as it was (the caller still has it for a retry, a catcher or a redrive).
pub fn enter_mut(
    state: &State,
    input: &mut Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Entered, StatesError> {
    match state {
        State::Pass(pass) => enter_pass(pass, PassInput::Slot(input), scope, env),
        other => enter_borrowed(other, input, scope, env),
    }
    .map_err(|e| with_state(state, e))
}

/// Pass: `InputPath` → `Parameters` (or `Result`) → `Assign` → `ResultPath` →
/// `OutputPath`; in JSONata, `Output` and `Assign`. Every step that can fail runs before
/// the input is moved.
fn enter_pass(
    pass: &PassState,
    input: PassInput<'_>,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Entered, StatesError> {
    if pass.query_language == QueryLanguage::Jsonata {
        let (output, assigned) =
            jsonata_finish(&pass.output, &pass.assign, input.get(), scope, env)?;
        let output = output.unwrap_or_else(|| input.take());
        return Ok(entered(finish(&pass.transition, output, assigned)));
    }
    let result = match &pass.result {
        Some(result) => result.clone(),
        None => {
            let effective = apply_input_path(&pass.io, input.get(), scope)?;
            template_or(&pass.parameters, effective, scope, env)?
        }
    };
    let assigned = assign_vars(&pass.assign, &result, scope, env)?;
    if let Some(path) = pass.result_path.as_ref().filter(|path| !path.is_root()) {
        check_result_path(path, input.get())?;
    }
    // After ResultPath only an OutputPath that selects from the result can fail: the input is
    // moved unless it may still be needed.
    let output_may_fail = pass
        .io
        .output_path
        .as_ref()
        .is_some_and(|path| !path.is_root());
    let state_input = if output_may_fail {
        Cow::Borrowed(input.get())
    } else {
        Cow::Owned(input.take())
    };
    let with_result = place_result(&pass.result_path, state_input, result)?;
    let output = apply_output_path(&pass.io, with_result, scope)?;
    Ok(entered(finish(&pass.transition, output, assigned)))
}

fn enter_borrowed(
    state: &State,
    input: &Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Entered, StatesError> {
    let jsonata = state.query_language() == QueryLanguage::Jsonata;
    match state {
        State::Pass(pass) => enter_pass(pass, PassInput::Shared(input), scope, env),
        State::Task(task) => {
            let effective = apply_input_path(&task.io, input, scope)?;
            let timeout_seconds = resolve_u64(
                &task.timeout_seconds,
                &effective,
                scope,
                env,
                "TimeoutSecondsPath",
            )?;
            let heartbeat_seconds = resolve_u64(
                &task.heartbeat_seconds,
                &effective,
                scope,
                env,
                "HeartbeatSecondsPath",
            )?;
            let credentials = match &task.credentials {
                Some(t) => Some(t.evaluate(&effective, scope, env)?),
                None => None,
            };
            let parameters = template_or(&task.parameters, effective, scope, env)?;
            Ok(Entered::Task {
                resource: task.resource.clone(),
                parameters,
                timeout_seconds,
                heartbeat_seconds,
                credentials,
            })
        }
        State::Choice(choice) => {
            let effective = apply_input_path(&choice.io, input, scope)?;
            let mut taken = None;
            for rule in &choice.choices {
                if rule.condition.evaluate(&effective, scope, env)? {
                    taken = Some(rule);
                    break;
                }
            }
            let next = match (taken, &choice.default) {
                (Some(rule), _) => rule.next.clone(),
                (None, Some(default)) => default.clone(),
                (None, None) => {
                    return Err(StatesError::new(
                        ErrorName::NoChoiceMatched,
                        "No Choice Rules matched and no Default was specified",
                    ));
                }
            };
            let mut assigned = assign_vars(&choice.assign, &effective, scope, env)?;
            if let Some(rule) = taken {
                assigned.extend(assign_vars(&rule.assign, &effective, scope, env)?);
            }
            let output = if jsonata {
                match taken
                    .and_then(|r| r.output.as_ref())
                    .or(choice.output.as_ref())
                {
                    Some(t) => t.evaluate(&effective, scope, env)?,
                    None => effective.into_owned(),
                }
            } else {
                apply_output_path(&choice.io, effective.into_owned(), scope)?
            };
            Ok(Entered::Next {
                next,
                output,
                assigned,
            })
        }
        State::Wait(wait) => {
            let effective = apply_input_path(&wait.io, input, scope)?;
            let until = match &wait.wait {
                WaitFor::Seconds(s) => WaitUntil::Seconds(*s),
                WaitFor::Timestamp(t) => WaitUntil::Timestamp(*t),
                WaitFor::SecondsExpr(e) => {
                    WaitUntil::Seconds(expr_u64(e, &effective, scope, env, "Seconds")?)
                }
                WaitFor::TimestampExpr(e) => {
                    let v = e.evaluate(&effective, scope, env)?;
                    match v.as_ref().and_then(Value::as_str).and_then(parse_timestamp) {
                        Some(t) => WaitUntil::Timestamp(t),
                        None => {
                            return Err(e.wrong_result(
                                "Timestamp",
                                "an ISO-8601 extended offset date-time string",
                                v.as_ref(),
                            ));
                        }
                    }
                }
                WaitFor::SecondsPath(path) => {
                    let v = select_required(path, &effective, scope)?;
                    match v.as_u64() {
                        Some(s) => WaitUntil::Seconds(s),
                        None => {
                            return Err(StatesError::runtime(format!(
                                "The SecondsPath parameter does not reference a valid positive integer: '{path}' is {}",
                                truncate(&v.to_string())
                            )));
                        }
                    }
                }
                WaitFor::TimestampPath(path) => {
                    let v = select_required(path, &effective, scope)?;
                    match v.as_str().and_then(parse_timestamp) {
                        Some(t) => WaitUntil::Timestamp(t),
                        None => {
                            return Err(StatesError::runtime(format!(
                                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: '{path}' is {}",
                                truncate(&v.to_string())
                            )));
                        }
                    }
                }
            };
            Ok(Entered::Wait { until })
        }
        State::Succeed(succeed) => {
            let effective = apply_input_path(&succeed.io, input, scope)?;
            let output = match &succeed.output {
                Some(t) => t.evaluate(&effective, scope, env)?,
                None => apply_output_path(&succeed.io, effective.into_owned(), scope)?,
            };
            Ok(Entered::End {
                output,
                assigned: Vars::new(),
            })
        }
        State::Fail(fail) => {
            let error = fail_text(&fail.error, input, scope, env, "ErrorPath")?;
            let cause = fail_text(&fail.cause, input, scope, env, "CausePath")?;
            Ok(Entered::Fail { error, cause })
        }
        State::Parallel(parallel) => {
            let effective = apply_input_path(&parallel.io, input, scope)?;
            let input = template_or(&parallel.parameters, effective, scope, env)?;
            Ok(Entered::Parallel { input })
        }
        State::Map(map) => {
            let effective = apply_input_path(&map.io, input, scope)?;
            let items = if map.item_reader.is_some() {
                Vec::new()
            } else if jsonata {
                let items = match &map.items {
                    Some(t) => t.evaluate(&effective, scope, env)?,
                    None => effective.as_ref().clone(),
                };
                match items {
                    Value::Array(items) => items,
                    other => {
                        return Err(StatesError::new(
                            ErrorName::QueryEvaluationError,
                            format!(
                                "The field 'Items' must be an array, but it is {}",
                                truncate(&other.to_string())
                            ),
                        ));
                    }
                }
            } else {
                match map.items_path.select(&effective, scope) {
                    Some(v) => match v.into_owned() {
                        Value::Array(items) => items,
                        other => {
                            return Err(StatesError::runtime(format!(
                                "Invalid path '{}' : The value for the field 'ItemsPath' must be an array, got {}",
                                map.items_path,
                                truncate(&other.to_string())
                            )));
                        }
                    },
                    None => {
                        return Err(StatesError::runtime(format!(
                            "Invalid path '{}' : No results for path: ItemsPath '{}'",
                            map.items_path, map.items_path
                        )));
                    }
                }
            };
            let max_concurrency = match &map.max_concurrency {
                None => 0,
                Some(NumberOrPath::Value(v)) => *v,
                Some(NumberOrPath::Expr(e)) => {
                    let n = expr_u64(e, &effective, scope, env, "MaxConcurrency")?;
                    u32::try_from(n).unwrap_or(u32::MAX)
                }
                Some(NumberOrPath::Path(path)) => {
                    let v = select_required(path, &effective, scope)?;
                    v.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| {
                            StatesError::runtime(format!(
                                "The value at MaxConcurrencyPath '{path}' must be a non-negative integer, got {}",
                                truncate(&v.to_string())
                            ))
                        })?
                }
            };
            let tolerated_failure_percentage = resolve_f64(
                &map.tolerated_failure_percentage,
                &effective,
                scope,
                env,
                "ToleratedFailurePercentagePath",
            )?;
            let tolerated_failure_count = resolve_u64(
                &map.tolerated_failure_count,
                &effective,
                scope,
                env,
                "ToleratedFailureCountPath",
            )?;
            Ok(Entered::Map {
                items,
                effective_input: effective.into_owned(),
                max_concurrency,
                tolerated_failure_percentage,
                tolerated_failure_count,
            })
        }
    }
}

/// The input of one Map iteration: `ItemSelector` (or legacy `Parameters`) evaluated over
/// the Map's effective input with `$$.Map.Item.{Index,Value}` set in the context; without
/// a selector, the item itself.
pub fn map_item_input(
    state: &State,
    effective_input: &Value,
    item: &Value,
    index: usize,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Value, StatesError> {
    let State::Map(map) = state else {
        return Err(StatesError::runtime(format!(
            "map_item_input called on the {} state '{}'",
            state.type_name(),
            state.name()
        )));
    };
    let Some(selector) = &map.item_selector else {
        return Ok(item.clone());
    };
    let mut context = scope.context.clone();
    if !context.is_object() {
        context = Value::Object(Map::new());
    }
    if let Value::Object(ctx) = &mut context {
        let map_entry = ctx
            .entry("Map")
            .or_insert_with(|| Value::Object(Map::new()));
        if !map_entry.is_object() {
            *map_entry = Value::Object(Map::new());
        }
        if let Value::Object(m) = map_entry {
            m.insert("Item".into(), json!({"Index": index, "Value": item}));
        }
    }
    selector
        .evaluate(effective_input, &scope.with_context(&context), env)
        .map_err(|e| with_state(state, e))
}

/// A Task/Parallel/Map result is in (or a Wait timer fired): ResultSelector, then
/// ResultPath into the raw `state_input`, then OutputPath; then the transition.
/// (JSONata: `Output`, default the result, and `Assign`, with `$states.result`.)
///
/// For Wait the `result` is ignored: the output is OutputPath(InputPath(state_input)).
pub fn complete(
    state: &State,
    state_input: &Value,
    result: Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Completed, StatesError> {
    complete_inner(state, Cow::Borrowed(state_input), result, scope, env)
        .map_err(|e| with_state(state, e))
}

/// [`complete`] for a caller that owns the state input and is done with it: `ResultPath`
/// then updates it in place instead of copying it.
pub fn complete_owned(
    state: &State,
    state_input: Value,
    result: Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Completed, StatesError> {
    complete_inner(state, Cow::Owned(state_input), result, scope, env)
        .map_err(|e| with_state(state, e))
}

fn complete_inner(
    state: &State,
    state_input: Cow<'_, Value>,
    result: Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Completed, StatesError> {
    let jsonata = state.query_language() == QueryLanguage::Jsonata;
    let (io, selector, result_path, transition, assign, output) = match state {
        State::Task(s) => (
            &s.io,
            &s.result_selector,
            &s.result_path,
            &s.transition,
            &s.assign,
            &s.output,
        ),
        State::Parallel(s) => (
            &s.io,
            &s.result_selector,
            &s.result_path,
            &s.transition,
            &s.assign,
            &s.output,
        ),
        State::Map(s) => (
            &s.io,
            &s.result_selector,
            &s.result_path,
            &s.transition,
            &s.assign,
            &s.output,
        ),
        State::Wait(wait) => {
            if jsonata {
                let (output, assigned) =
                    jsonata_finish(&wait.output, &wait.assign, &state_input, scope, env)?;
                let output = output.unwrap_or_else(|| state_input.into_owned());
                return Ok(finish(&wait.transition, output, assigned));
            }
            let effective = apply_input_path(&wait.io, &state_input, scope)?;
            let assigned = assign_vars(&wait.assign, &effective, scope, env)?;
            let output = apply_output_path(&wait.io, effective.into_owned(), scope)?;
            return Ok(finish(&wait.transition, output, assigned));
        }
        other => {
            return Err(StatesError::runtime(format!(
                "complete called on the {} state '{}', which has no result to complete",
                other.type_name(),
                other.name()
            )));
        }
    };
    if jsonata {
        let with_result = scope.with_result(&result);
        let (output, assigned) = jsonata_finish(output, assign, &state_input, &with_result, env)?;
        return Ok(finish(transition, output.unwrap_or(result), assigned));
    }
    let selected = template_or(selector, Cow::Owned(result), scope, env)?;
    let assigned = assign_vars(assign, &selected, scope, env)?;
    let combined = apply_result_path(result_path, state_input, selected)?;
    let output = apply_output_path(io, combined, scope)?;
    Ok(finish(transition, output, assigned))
}

/// Decides what a failure of `state` leads to. `retry_counts[i]` is how many retries the
/// i-th retrier has already spent (missing entries count as 0).
///
/// The first retrier whose `ErrorEquals` matches decides: if it has attempts left the
/// state is retried after `IntervalSeconds * BackoffRate^count` (capped by
/// `MaxDelaySeconds`, scaled by a random factor with `JitterStrategy: FULL`); if not,
/// the catchers are tried in order. `States.Runtime` is never retried nor caught.
/// A catcher whose `Output`/`Assign`/`ResultPath` cannot be applied fails the state.
pub fn on_error(
    state: &State,
    state_input: &Value,
    error: &StatesError,
    retry_counts: &[u32],
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> ErrorOutcome {
    if let Some((index, retrier)) = state
        .retry()
        .iter()
        .enumerate()
        .find(|(_, r)| r.error_equals.iter().any(|e| e.matches(&error.error)))
    {
        let used = retry_counts.get(index).copied().unwrap_or(0);
        if used < retrier.max_attempts {
            let exponent = i32::try_from(used).unwrap_or(i32::MAX);
            let mut delay = retrier.interval_seconds as f64 * retrier.backoff_rate.powi(exponent);
            if let Some(max) = retrier.max_delay_seconds {
                delay = delay.min(max as f64);
            }
            if retrier.jitter_strategy == JitterStrategy::Full {
                delay *= env.random().clamp(0.0, 1.0);
            }
            let delay_ms = (delay * 1000.0).round();
            let delay_ms = if delay_ms.is_finite() && delay_ms < u64::MAX as f64 {
                delay_ms.max(0.0) as u64
            } else {
                u64::MAX
            };
            return ErrorOutcome::Retry {
                retrier: index,
                delay_ms,
            };
        }
    }
    for catcher in state.catch() {
        if catcher.error_equals.iter().any(|e| e.matches(&error.error)) {
            let error_output = json!({"Error": error.error.as_str(), "Cause": error.cause});
            let caught = if state.query_language() == QueryLanguage::Jsonata {
                let with_error = scope.with_error_output(&error_output);
                jsonata_finish(
                    &catcher.output,
                    &catcher.assign,
                    state_input,
                    &with_error,
                    env,
                )
                .map(|(output, assigned)| (output.unwrap_or(error_output), assigned))
            } else {
                assign_vars(&catcher.assign, &error_output, scope, env).and_then(|assigned| {
                    apply_result_path(
                        &catcher.result_path,
                        Cow::Borrowed(state_input),
                        error_output,
                    )
                    .map(|output| (output, assigned))
                })
            };
            return match caught {
                Ok((output, assigned)) => ErrorOutcome::Catch {
                    next: catcher.next.clone(),
                    output,
                    assigned,
                },
                Err(_) => ErrorOutcome::Fail,
            };
        }
    }
    ErrorOutcome::Fail
}
