//! Evaluation cost of typical states: `cargo bench -p stepyard-statelang`.
//!
//! Each benchmark is one state's whole data flow, as the engine calls it.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use stepyard_statelang::{FixedEnv, Scope, StateMachine, enter, enter_owned, parse};

fn machine(definition: &Value) -> StateMachine {
    parse(&definition.to_string()).expect("the benchmark definitions are valid")
}

fn context() -> Value {
    json!({
        "Execution": {"Id": "arn:aws:states:us-east-1:123456789012:execution:M:e", "Name": "e",
                      "StartTime": "2024-01-01T00:00:00Z"},
        "State": {"Name": "S", "EnteredTime": "2024-01-01T00:00:01Z", "RetryCount": 0},
        "StateMachine": {"Id": "arn:aws:states:us-east-1:123456789012:stateMachine:M", "Name": "M"}
    })
}

fn pass_with_parameters(c: &mut Criterion) {
    let m = machine(&json!({"StartAt": "S", "States": {"S": {"Type": "Pass",
        "Parameters": {"orderId.$": "$.order.id", "customer.$": "$.order.customer.name",
                       "execution.$": "$$.Execution.Id", "static": "v1", "lines.$": "$.order.lines"},
        "ResultPath": "$.prepared", "Next": "T"}, "T": {"Type": "Succeed"}}}));
    let state = &m.states["S"];
    let input = json!({"order": {"id": "o-123", "customer": {"name": "Ann", "tier": "gold"},
                                 "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]},
                       "meta": {"source": "web"}});
    let ctx = context();
    let mut env = FixedEnv::default();
    c.bench_function("pass_parameters_resultpath", |b| {
        b.iter(|| {
            enter(
                state,
                black_box(&input),
                &Scope::context_only(&ctx),
                &mut env,
            )
        })
    });
    // The engine owns each state's input and is done with it once the state is entered.
    // The copy made for each iteration is outside the timing; dropping the output is inside.
    c.bench_function("pass_parameters_resultpath_owned", |b| {
        b.iter_batched(
            || input.clone(),
            |owned| {
                drop(black_box(enter_owned(
                    state,
                    owned,
                    &Scope::context_only(&ctx),
                    &mut env,
                )))
            },
            BatchSize::SmallInput,
        )
    });
}

fn choice_twenty_rules(c: &mut Criterion) {
    let mut rules = Vec::new();
    for i in 0..19 {
        rules.push(json!({"And": [
            {"Variable": "$.kind", "StringEquals": format!("kind-{i}")},
            {"Variable": "$.amount", "NumericGreaterThan": i * 10}], "Next": "Done"}));
    }
    rules.push(json!({"Variable": "$.kind", "StringEquals": "target", "Next": "Done"}));
    let m = machine(
        &json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": rules,
        "Default": "Done"}, "Done": {"Type": "Succeed"}}}),
    );
    let state = &m.states["C"];
    let input = json!({"kind": "target", "amount": 500, "other": {"x": [1, 2, 3]}});
    let ctx = context();
    let mut env = FixedEnv::default();
    c.bench_function("choice_20_rules_last_matches", |b| {
        b.iter(|| {
            enter(
                state,
                black_box(&input),
                &Scope::context_only(&ctx),
                &mut env,
            )
        })
    });
}

fn states_format(c: &mut Criterion) {
    let m = machine(&json!({"StartAt": "S", "States": {"S": {"Type": "Pass",
        "Parameters": {"message.$": "States.Format('Order {} for {} has {} lines', $.id, $.name, $.count)"},
        "End": true}}}));
    let state = &m.states["S"];
    let input = json!({"id": "o-123", "name": "Ann", "count": 2});
    let ctx = context();
    let mut env = FixedEnv::default();
    c.bench_function("states_format", |b| {
        b.iter(|| {
            enter(
                state,
                black_box(&input),
                &Scope::context_only(&ctx),
                &mut env,
            )
        })
    });
}

fn parse_definition(c: &mut Criterion) {
    let text = json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "Parameters": {"x.$": "$.x"},
              "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}], "Next": "B"},
        "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericGreaterThan": 1, "Next": "C"}], "Default": "D"},
        "C": {"Type": "Pass", "Result": {"ok": true}, "ResultPath": "$.r", "Next": "D"},
        "D": {"Type": "Succeed"}}}).to_string();
    c.bench_function("parse_4_state_definition", |b| {
        b.iter(|| parse(black_box(&text)))
    });
}

/// The same Task work in both query languages: build the task's input from the state input
/// and a variable, then (on completion) assign two variables from the result and shape the
/// output. JSONata's side is `Arguments` + `Assign` + `Output`; JSONPath's is `Parameters` +
/// `ResultSelector` + `Assign` + `ResultPath`.
fn jsonata_next_to_jsonpath(c: &mut Criterion) {
    let jsonpath = machine(
        &json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r",
        "Parameters": {"orderId.$": "$.order.id", "customer.$": "$.order.customer.name", "region.$": "$region"},
        "ResultSelector": {"total.$": "$.total", "status.$": "$.status"},
        "Assign": {"total.$": "$.total", "status.$": "$.status"},
        "ResultPath": "$.result", "End": true}}}),
    );
    let jsonata = machine(
        &json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r",
        "Arguments": {"orderId": "{% $states.input.order.id %}", "customer": "{% $states.input.order.customer.name %}", "region": "{% $region %}"},
        "Assign": {"total": "{% $states.result.total %}", "status": "{% $states.result.status %}"},
        "Output": {"order": "{% $states.input.order %}", "result": {"total": "{% $states.result.total %}", "status": "{% $states.result.status %}"}},
        "End": true}}}),
    );
    let input = json!({"order": {"id": "o-123", "customer": {"name": "Ann", "tier": "gold"},
                                 "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}});
    let result = json!({"total": 42.5, "status": "PAID", "receipt": {"id": "r-1"}});
    let ctx = context();
    let mut vars = serde_json::Map::new();
    vars.insert("region".into(), json!("eu-west-1"));
    let mut env = FixedEnv::default();
    for (name, m) in [("jsonpath", &jsonpath), ("jsonata", &jsonata)] {
        let state = &m.states["T"];
        c.bench_function(&format!("task_arguments_assign_{name}"), |b| {
            b.iter(|| {
                let scope = Scope::new(&ctx, &vars);
                let entered = enter(state, black_box(&input), &scope, &mut env).expect("enters");
                let done = stepyard_statelang::complete(
                    state,
                    &input,
                    black_box(result.clone()),
                    &scope,
                    &mut env,
                )
                .expect("completes");
                (entered, done)
            })
        });
    }
}

criterion_group!(
    benches,
    jsonata_next_to_jsonpath,
    pass_with_parameters,
    choice_twenty_rules,
    states_format,
    parse_definition
);
criterion_main!(benches);
