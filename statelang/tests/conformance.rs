//! The conformance suite: data-driven cases in `tests/conformance/*.json`, each a
//! definition, an input and the outcome AWS documents for them.
//!
//! A case runs the whole machine through a tiny in-memory driver written only against
//! the public API (`enter` / `complete` / `map_item_input` / `on_error`), the same calls
//! the engine makes. Task states are simulated: by default a task returns its effective
//! parameters; a case's `tasks` field scripts outcomes per resource, consumed in order
//! (the last one repeats).
//!
//! Case fields: `name`, `definition` (object), `input` (default `{}`), `tasks`
//! (`{resource: [{"result": v} | {"error": e, "cause": c}]}`), `expect`:
//! `{"output": v}` for success, or `{"error": e, "cause": c?, "cause_contains": s?}` for
//! failure, plus optional `"delays_ms": [...]` (retry delays in order) and `"invalid":
//! true` when the definition must be rejected. `random` sets what the environment's
//! random number generator returns (default 0.5).

use std::collections::HashMap;

use serde_json::{Value, json};
use stepyard_statelang::{
    Completed, Entered, Env, ErrorName, ErrorOutcome, Scope, State, StateMachine, StatesError,
    Variables, Vars, WaitUntil, complete, complete_owned, enter, enter_mut, enter_owned,
    map_item_input, on_error, parse_value,
};

/// The variables a state sees: its own scope's, then the enclosing scopes' (a Parallel
/// branch or Map iteration reads the variables around it).
struct Chain<'a> {
    own: &'a Vars,
    parent: Option<&'a Chain<'a>>,
}

impl Variables for Chain<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.own
            .get(name)
            .or_else(|| self.parent.and_then(|p| p.get(name)))
    }
}

#[derive(Clone)]
struct TestEnv {
    next_uuid: u32,
    random: f64,
}

impl Env for TestEnv {
    fn uuid(&mut self) -> String {
        self.next_uuid += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next_uuid)
    }

    fn random(&mut self) -> f64 {
        self.random
    }
}

struct Driver<'c> {
    env: TestEnv,
    tasks: HashMap<String, Vec<Value>>,
    task_calls: HashMap<String, usize>,
    delays: Vec<u64>,
    execution_input: Value,
    case: &'c str,
    steps: usize,
}

/// How a run ended.
#[derive(Debug)]
enum Outcome {
    Succeeded(Value),
    Failed { error: String, cause: String },
}

impl Driver<'_> {
    fn context(&self, state: &str, retry_count: u32) -> Value {
        json!({
            "Execution": {
                "Id": "arn:aws:states:us-east-1:123456789012:execution:Machine:exec-1",
                "Input": self.execution_input,
                "Name": "exec-1",
                "RoleArn": "arn:aws:iam::123456789012:role/Role",
                "StartTime": "2024-01-01T00:00:00.000Z"
            },
            "State": {"Name": state, "EnteredTime": "2024-01-01T00:00:01.000Z", "RetryCount": retry_count},
            "StateMachine": {"Id": "arn:aws:states:us-east-1:123456789012:stateMachine:Machine", "Name": "Machine"}
        })
    }

    fn run_task(&mut self, resource: &str, parameters: &Value) -> Result<Value, StatesError> {
        let Some(script) = self.tasks.get(resource) else {
            return Ok(parameters.clone());
        };
        let n = self.task_calls.entry(resource.to_owned()).or_insert(0);
        let outcome = script
            .get(*n)
            .or_else(|| script.last())
            .cloned()
            .unwrap_or(Value::Null);
        *n += 1;
        if let Some(error) = outcome.get("error").and_then(Value::as_str) {
            let cause = outcome
                .get("cause")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            return Err(StatesError::new(ErrorName::from(error), cause));
        }
        Ok(outcome.get("result").cloned().unwrap_or(Value::Null))
    }

    fn run(&mut self, machine: &StateMachine, input: Value, parent: Option<&Chain<'_>>) -> Outcome {
        let mut name = machine.start_at.clone();
        let mut input = input;
        let mut retry_counts: HashMap<String, Vec<u32>> = HashMap::new();
        let mut vars = Vars::new();
        loop {
            self.steps += 1;
            assert!(self.steps < 10_000, "{}: the run does not end", self.case);
            let Some(state) = machine.states.get(&name) else {
                panic!("{}: no state {name}", self.case);
            };
            let counts = retry_counts.entry(name.clone()).or_default();
            let retry_count = counts.iter().sum();
            let context = self.context(&name, retry_count);
            let counts = counts.clone();
            let chain = Chain { own: &vars, parent };
            let scope = Scope::new(&context, &chain);
            let step = self.step(state, &input, &scope, &chain);
            let outcome = step;
            let caught = match &outcome {
                Err(Step::Error(error)) => Some(on_error(
                    state,
                    &input,
                    error,
                    &counts,
                    &scope,
                    &mut self.env,
                )),
                _ => None,
            };
            match (outcome, caught) {
                (
                    Ok(Completed::Next {
                        next,
                        output,
                        assigned,
                    }),
                    _,
                ) => {
                    vars.extend(assigned);
                    retry_counts.remove(&name);
                    name = next;
                    input = output;
                }
                (Ok(Completed::End { output, .. }), _) => return Outcome::Succeeded(output),
                (Err(Step::Fail { error, cause }), _) => return Outcome::Failed { error, cause },
                (Err(Step::Error(error)), caught) => match caught.expect("on_error ran") {
                    ErrorOutcome::Retry { retrier, delay_ms } => {
                        self.delays.push(delay_ms);
                        let counts = retry_counts.entry(name.clone()).or_default();
                        if counts.len() <= retrier {
                            counts.resize(retrier + 1, 0);
                        }
                        counts[retrier] += 1;
                    }
                    ErrorOutcome::Catch {
                        next,
                        output,
                        assigned,
                    } => {
                        vars.extend(assigned);
                        retry_counts.remove(&name);
                        name = next;
                        input = output;
                    }
                    ErrorOutcome::Fail => {
                        return Outcome::Failed {
                            error: error.error.to_string(),
                            cause: error.cause,
                        };
                    }
                },
            }
        }
    }

    fn step(
        &mut self,
        state: &State,
        input: &Value,
        scope: &Scope<'_>,
        chain: &Chain<'_>,
    ) -> Result<Completed, Step> {
        // Every case also checks that the owned form gives exactly the borrowed form's answer.
        let owned = enter_owned(state, input.clone(), scope, &mut self.env.clone());
        let mut slot = input.clone();
        let in_place = enter_mut(state, &mut slot, scope, &mut self.env.clone());
        let entered = enter(state, input, scope, &mut self.env);
        assert_eq!(
            owned, entered,
            "{}: enter_owned differs from enter",
            self.case
        );
        assert_eq!(
            in_place, entered,
            "{}: enter_mut differs from enter",
            self.case
        );
        if entered.is_err() {
            // A failed state keeps its input for a retry, a catcher or a redrive.
            assert_eq!(
                &slot, input,
                "{}: enter_mut changed the input of a failed state",
                self.case
            );
        }
        let entered = entered.map_err(Step::Error)?;
        let result = match entered {
            Entered::Next {
                next,
                output,
                assigned,
            } => {
                return Ok(Completed::Next {
                    next,
                    output,
                    assigned,
                });
            }
            Entered::End { output, assigned } => return Ok(Completed::End { output, assigned }),
            Entered::Fail { error, cause } => {
                return Err(Step::Fail {
                    error: error.unwrap_or_default(),
                    cause: cause.unwrap_or_default(),
                });
            }
            Entered::Task {
                resource,
                parameters,
                ..
            } => self.run_task(&resource, &parameters).map_err(Step::Error)?,
            Entered::Wait { until } => {
                match until {
                    WaitUntil::Seconds(_) | WaitUntil::Timestamp(_) => {}
                }
                Value::Null
            }
            Entered::Parallel {
                input: branch_input,
            } => {
                let State::Parallel(parallel) = state else {
                    unreachable!()
                };
                let mut outputs = Vec::new();
                for branch in &parallel.branches {
                    match self.run(branch, branch_input.clone(), Some(chain)) {
                        Outcome::Succeeded(v) => outputs.push(v),
                        Outcome::Failed { error, cause } => {
                            return Err(Step::Error(StatesError::new(
                                ErrorName::from(error.as_str()),
                                cause,
                            )));
                        }
                    }
                }
                Value::Array(outputs)
            }
            Entered::Map {
                items,
                effective_input,
                tolerated_failure_count,
                tolerated_failure_percentage,
                ..
            } => {
                let State::Map(map) = state else {
                    unreachable!()
                };
                let mut outputs = Vec::new();
                let mut failures = 0u64;
                let total = items.len();
                let mut last_error = None;
                for (index, item) in items.iter().enumerate() {
                    let item_input =
                        map_item_input(state, &effective_input, item, index, scope, &mut self.env)
                            .map_err(Step::Error)?;
                    let distributed =
                        map.processor_config.mode == stepyard_statelang::ProcessorMode::Distributed;
                    let outer = if distributed { None } else { Some(chain) };
                    match self.run(&map.item_processor, item_input, outer) {
                        Outcome::Succeeded(v) => outputs.push(v),
                        Outcome::Failed { error, cause } => {
                            failures += 1;
                            outputs.push(Value::Null);
                            last_error =
                                Some(StatesError::new(ErrorName::from(error.as_str()), cause));
                        }
                    }
                }
                if let Some(error) = last_error {
                    let tolerated = tolerated_failure_count.is_some_and(|c| failures <= c)
                        || tolerated_failure_percentage
                            .is_some_and(|p| (failures as f64) * 100.0 / (total as f64) <= p);
                    if !tolerated {
                        if tolerated_failure_count.is_some()
                            || tolerated_failure_percentage.is_some()
                        {
                            return Err(Step::Error(StatesError::new(
                                ErrorName::ExceedToleratedFailureThreshold,
                                "The specified tolerated failure threshold was exceeded",
                            )));
                        }
                        return Err(Step::Error(error));
                    }
                }
                Value::Array(outputs)
            }
        };
        let owned = complete_owned(
            state,
            input.clone(),
            result.clone(),
            scope,
            &mut self.env.clone(),
        );
        let completed = complete(state, input, result, scope, &mut self.env);
        assert_eq!(
            owned, completed,
            "{}: complete_owned differs from complete",
            self.case
        );
        completed.map_err(Step::Error)
    }
}

enum Step {
    Fail { error: String, cause: String },
    Error(StatesError),
}

fn run_case(file: &str, case: &Value) -> Result<(), String> {
    let name = format!(
        "{file}: {}",
        case.get("name").and_then(Value::as_str).unwrap_or("?")
    );
    let definition = case
        .get("definition")
        .ok_or_else(|| format!("{name}: no definition"))?;
    let expect = case
        .get("expect")
        .ok_or_else(|| format!("{name}: no expect"))?;
    let machine = match parse_value(definition) {
        Ok(m) => {
            if expect.get("invalid") == Some(&Value::Bool(true)) {
                return Err(format!("{name}: expected the definition to be rejected"));
            }
            m
        }
        Err(problems) => {
            if expect.get("invalid") == Some(&Value::Bool(true)) {
                if let Some(code) = expect.get("code").and_then(Value::as_str)
                    && !problems.iter().any(|p| p.code.as_str() == code)
                {
                    return Err(format!(
                        "{name}: expected a {code} problem, got {problems:?}"
                    ));
                }
                return Ok(());
            }
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(format!(
                "{name}: invalid definition:\n  {}",
                list.join("\n  ")
            ));
        }
    };
    let input = case.get("input").cloned().unwrap_or_else(|| json!({}));
    let tasks: HashMap<String, Vec<Value>> = case
        .get("tasks")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_array().cloned().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let mut driver = Driver {
        env: TestEnv {
            next_uuid: 0,
            random: case.get("random").and_then(Value::as_f64).unwrap_or(0.5),
        },
        tasks,
        task_calls: HashMap::new(),
        delays: Vec::new(),
        execution_input: input.clone(),
        case: &name,
        steps: 0,
    };
    let outcome = driver.run(&machine, input, None);
    if let Some(delays) = expect.get("delays_ms") {
        let got = json!(driver.delays);
        if &got != delays {
            return Err(format!("{name}: retry delays {got}, expected {delays}"));
        }
    }
    match (outcome, expect.get("output"), expect.get("error")) {
        (Outcome::Succeeded(output), Some(expected), None) => {
            if &output != expected {
                return Err(format!("{name}: output {output}, expected {expected}"));
            }
        }
        (Outcome::Failed { error, cause }, None, Some(expected)) => {
            if expected.as_str() != Some(error.as_str()) {
                return Err(format!(
                    "{name}: failed with {error} ({cause}), expected {expected}"
                ));
            }
            if let Some(c) = expect.get("cause").and_then(Value::as_str)
                && c != cause
            {
                return Err(format!("{name}: cause '{cause}', expected '{c}'"));
            }
            if let Some(c) = expect.get("cause_contains").and_then(Value::as_str)
                && !cause.contains(c)
            {
                return Err(format!("{name}: cause '{cause}' does not contain '{c}'"));
            }
        }
        (outcome, _, _) => return Err(format!("{name}: got {outcome:?}, expected {expect}")),
    }
    Ok(())
}

#[test]
fn conformance_suite() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/conformance exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable case file");
        let cases: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        for case in cases.as_array().expect("a case file holds an array") {
            count += 1;
            if let Err(e) = run_case(file, case) {
                failures.push(e);
            }
        }
    }
    assert!(count > 0, "no conformance cases found");
    println!("{count} conformance cases, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {count} conformance cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
