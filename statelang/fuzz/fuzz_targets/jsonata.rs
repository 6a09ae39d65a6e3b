//! Any text as a JSONata expression in a state: compiling must never panic, and an
//! expression that compiles must evaluate (to a value or a `States.QueryEvaluationError`)
//! without panicking, whatever the input and variables.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use stepyard_statelang::jsonata::Expr;
use stepyard_statelang::{FixedEnv, Scope};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expr::compile(&format!("{{% {text} %}}"), "/States/S/Output") else {
        return;
    };
    let context = json!({"State": {"Name": "S", "EnteredTime": "2024-01-01T00:00:00Z"}});
    let mut vars = serde_json::Map::new();
    vars.insert("x".into(), json!({"a": [1, 2, {"b": "c"}], "n": 3.5}));
    vars.insert("s".into(), json!("text"));
    let mut env = FixedEnv::default();
    for input in [json!({}), json!({"items": [{"price": 3}, {"price": 30}], "name": "n"}), json!([1, "x", null])] {
        let _ = expr.evaluate(&input, &Scope::new(&context, &vars), &mut env);
    }
});
