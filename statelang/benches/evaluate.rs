//! Evaluation cost of typical states: `cargo bench -p stepyard-statelang`.
//!
//! Each benchmark is one state's whole data flow, as the engine calls it.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use stepyard_statelang::{FixedEnv, StateMachine, enter, enter_owned, parse};

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
        b.iter(|| enter(state, black_box(&input), &ctx, &mut env))
    });
    // The engine owns each state's input and is done with it once the state is entered.
    // The copy made for each iteration is outside the timing; dropping the output is inside.
    c.bench_function("pass_parameters_resultpath_owned", |b| {
        b.iter_batched(
            || input.clone(),
            |owned| drop(black_box(enter_owned(state, owned, &ctx, &mut env))),
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
        b.iter(|| enter(state, black_box(&input), &ctx, &mut env))
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
        b.iter(|| enter(state, black_box(&input), &ctx, &mut env))
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

criterion_group!(
    benches,
    pass_with_parameters,
    choice_twenty_rules,
    states_format,
    parse_definition
);
criterion_main!(benches);
