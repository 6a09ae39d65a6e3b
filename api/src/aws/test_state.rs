//! TestState: run one state's data flow on an input, without a state machine.
//!
//! Pass, Choice, Wait (not waited), Succeed and Fail are evaluated by statelang directly; a Task
//! state's work goes through the engine's workers.

use serde_json::{Map, Value, json};
use stepyard_engine::Engine;
use stepyard_statelang::{Completed, Entered, Env, ErrorOutcome, Scope, State, StatesError, Vars};

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
    variables: Option<&str>,
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
    let vars: Vars = match variables {
        None => Vars::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(AwsError::validation(
                    "variables must be a JSON object of variable names to values",
                ));
            }
        },
    };
    let context = context(&input);
    let scope = Scope::new(&context, &vars);
    let mut env = RandomEnv;
    let entered = match stepyard_statelang::enter(state, &input, &scope, &mut env) {
        Ok(entered) => entered,
        Err(error) => return Ok(on_error(state, &input, &error, &scope, &mut env)),
    };
    let result = match entered {
        Entered::Next {
            next,
            output,
            assigned,
        } => with_variables(
            json!({"status": "SUCCEEDED", "output": output.to_string(), "nextState": next}),
            &vars,
            &assigned,
        ),
        Entered::End { output, assigned } => with_variables(
            json!({"status": "SUCCEEDED", "output": output.to_string()}),
            &vars,
            &assigned,
        ),
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
        Entered::Wait { .. } => completed(state, &input, Value::Null, &scope, &vars, &mut env),
        Entered::Task {
            resource,
            parameters,
            ..
        } => match invoke_task(engine, &resource, parameters.clone()).await {
            Ok(result) => {
                let mut out = completed(state, &input, result.clone(), &scope, &vars, &mut env);
                let data = out["inspectionData"].as_object_mut().map(std::mem::take);
                let mut data = data.unwrap_or_default();
                data.insert("input".into(), json!(input.to_string()));
                data.insert("afterParameters".into(), json!(parameters.to_string()));
                data.insert("result".into(), json!(result.to_string()));
                out["inspectionData"] = Value::Object(data);
                out
            }
            Err(task_error) => {
                let error = StatesError {
                    error: stepyard_statelang::ErrorName::from(task_error.error.as_str()),
                    cause: task_error.cause,
                };
                on_error(state, &input, &error, &scope, &mut env)
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

/// AWS's `inspectionData.variables`: the variables after the state ran, as JSON text.
fn with_variables(mut out: Value, before: &Vars, assigned: &Vars) -> Value {
    if before.is_empty() && assigned.is_empty() {
        return out;
    }
    let mut after = before.clone();
    after.extend(assigned.iter().map(|(k, v)| (k.clone(), v.clone())));
    out["inspectionData"] = json!({ "variables": Value::Object(after).to_string() });
    out
}

fn completed(
    state: &State,
    input: &Value,
    result: Value,
    scope: &Scope<'_>,
    vars: &Vars,
    env: &mut dyn Env,
) -> Value {
    match stepyard_statelang::complete(state, input, result, scope, env) {
        Ok(Completed::Next {
            next,
            output,
            assigned,
        }) => with_variables(
            json!({"status": "SUCCEEDED", "output": output.to_string(), "nextState": next}),
            vars,
            &assigned,
        ),
        Ok(Completed::End { output, assigned }) => with_variables(
            json!({"status": "SUCCEEDED", "output": output.to_string()}),
            vars,
            &assigned,
        ),
        Err(error) => on_error(state, input, &error, scope, env),
    }
}

fn on_error(
    state: &State,
    input: &Value,
    error: &StatesError,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Value {
    match stepyard_statelang::on_error(state, input, error, &[], scope, env) {
        ErrorOutcome::Retry { .. } => failed(error, "RETRIABLE"),
        ErrorOutcome::Catch {
            next,
            output,
            assigned: _,
        } => json!({
            "status": "CAUGHT_ERROR",
            "error": error.error.to_string(),
            "cause": error.cause,
            "output": output.to_string(),
            "nextState": next,
        }),
        ErrorOutcome::Fail => failed(error, "FAILED"),
    }
}
