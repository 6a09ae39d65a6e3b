//! TestState: run one state's data flow on an input, without a state machine.
//!
//! Pass, Choice, Wait (not waited), Succeed and Fail are evaluated by statelang directly; a Task
//! state's work goes through the engine's workers.

use serde_json::{Map, Value, json};
use stepyard_engine::Engine;
use stepyard_statelang::{Completed, Entered, Env, ErrorOutcome, State, StatesError};

use super::AwsError;

struct RandomEnv;

impl Env for RandomEnv {
    fn uuid(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn random(&mut self) -> f64 {
        rand::random::<f64>()
    }
}

const TEST_STATE_NAME: &str = "TestState";

/// Wraps the single state into a machine whose transition targets exist, so statelang can parse it.
fn wrap(state: &Value) -> Value {
    let mut states = Map::new();
    let mut targets = Vec::new();
    collect_targets(state, &mut targets);
    for target in targets {
        if target != TEST_STATE_NAME {
            states.insert(target, json!({"Type": "Succeed"}));
        }
    }
    states.insert(TEST_STATE_NAME.into(), state.clone());
    json!({"StartAt": TEST_STATE_NAME, "States": states})
}

fn collect_targets(state: &Value, out: &mut Vec<String>) {
    for key in ["Next", "Default"] {
        if let Some(name) = state.get(key).and_then(Value::as_str) {
            out.push(name.to_owned());
        }
    }
    for list in ["Choices", "Catch"] {
        if let Some(items) = state.get(list).and_then(Value::as_array) {
            for item in items {
                if let Some(name) = item.get("Next").and_then(Value::as_str) {
                    out.push(name.to_owned());
                }
            }
        }
    }
}

fn context(input: &Value) -> Value {
    json!({
        "Execution": {"Id": "arn:aws:states:us-east-1:123456789012:execution:TestState:test", "Input": input, "Name": "test", "StartTime": chrono::Utc::now().to_rfc3339()},
        "State": {"Name": TEST_STATE_NAME, "EnteredTime": chrono::Utc::now().to_rfc3339(), "RetryCount": 0},
        "StateMachine": {"Id": "arn:aws:states:us-east-1:123456789012:stateMachine:TestState", "Name": "TestState"},
    })
}

fn failed(error: &StatesError, status: &str) -> Value {
    json!({"status": status, "error": error.error.to_string(), "cause": error.cause})
}

pub async fn run(
    engine: &Engine,
    definition: &str,
    input: Option<&str>,
) -> Result<Value, AwsError> {
    let state_json: Value = serde_json::from_str(definition).map_err(|err| {
        AwsError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "InvalidDefinition",
            format!("Invalid State Machine Definition: the state is not JSON: {err}"),
        )
    })?;
    let input: Value = match input {
        None => json!({}),
        Some(text) => serde_json::from_str(text).map_err(|err| {
            AwsError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "InvalidExecutionInput",
                format!("Invalid State Machine Execution Input: {err}"),
            )
        })?,
    };
    let machine = stepyard_statelang::parse_value(&wrap(&state_json)).map_err(|problems| {
        let text = problems
            .iter()
            .map(|p| format!("{}: {}", p.pointer, p.message))
            .collect::<Vec<_>>()
            .join("; ");
        AwsError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "InvalidDefinition",
            format!("Invalid State Machine Definition: {text}"),
        )
    })?;
    let Some(state) = machine.states.get(TEST_STATE_NAME) else {
        return Err(AwsError::validation("the state could not be read"));
    };
    let context = context(&input);
    let mut env = RandomEnv;
    let entered = match stepyard_statelang::enter(state, &input, &context, &mut env) {
        Ok(entered) => entered,
        Err(error) => return Ok(on_error(state, &input, &error, &mut env)),
    };
    let result = match entered {
        Entered::Next { next, output } => {
            json!({"status": "SUCCEEDED", "output": output.to_string(), "nextState": next})
        }
        Entered::End { output } => json!({"status": "SUCCEEDED", "output": output.to_string()}),
        Entered::Fail { error, cause } => {
            let mut out = json!({"status": "FAILED"});
            if let Some(error) = error {
                out["error"] = json!(error);
            }
            if let Some(cause) = cause {
                out["cause"] = json!(cause);
            }
            out
        }
        Entered::Wait { .. } => completed(state, &input, Value::Null, &context, &mut env),
        Entered::Task {
            resource,
            parameters,
            ..
        } => match invoke_task(engine, &resource, parameters.clone()).await {
            Ok(result) => {
                let mut out = completed(state, &input, result.clone(), &context, &mut env);
                out["inspectionData"] = json!({
                    "input": input.to_string(),
                    "afterParameters": parameters.to_string(),
                    "result": result.to_string(),
                });
                out
            }
            Err(task_error) => {
                let error = StatesError {
                    error: stepyard_statelang::ErrorName::from(task_error.error.as_str()),
                    cause: task_error.cause,
                };
                on_error(state, &input, &error, &mut env)
            }
        },
        Entered::Parallel { .. } | Entered::Map { .. } => {
            return Err(AwsError::validation(
                "TestState supports Task, Pass, Wait, Choice, Succeed and Fail states",
            ));
        }
    };
    Ok(result)
}

async fn invoke_task(
    _engine: &Engine,
    resource: &str,
    _input: Value,
) -> Result<Value, stepyard_engine::TaskError> {
    Err(stepyard_engine::TaskError::new(
        "States.TaskFailed",
        format!("TestState cannot run Task states yet (resource {resource})"),
    ))
}

fn completed(
    state: &State,
    input: &Value,
    result: Value,
    context: &Value,
    env: &mut dyn Env,
) -> Value {
    match stepyard_statelang::complete(state, input, result, context, env) {
        Ok(Completed::Next { next, output }) => {
            json!({"status": "SUCCEEDED", "output": output.to_string(), "nextState": next})
        }
        Ok(Completed::End { output }) => {
            json!({"status": "SUCCEEDED", "output": output.to_string()})
        }
        Err(error) => on_error(state, input, &error, env),
    }
}

fn on_error(state: &State, input: &Value, error: &StatesError, env: &mut dyn Env) -> Value {
    match stepyard_statelang::on_error(state, input, error, &[], env) {
        ErrorOutcome::Retry { .. } => failed(error, "RETRIABLE"),
        ErrorOutcome::Catch { next, output } => json!({
            "status": "CAUGHT_ERROR",
            "error": error.error.to_string(),
            "cause": error.cause,
            "output": output.to_string(),
            "nextState": next,
        }),
        ErrorOutcome::Fail => failed(error, "FAILED"),
    }
}
