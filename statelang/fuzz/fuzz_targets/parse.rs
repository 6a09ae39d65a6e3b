//! Any text as a definition: parse/validate must never panic, and a definition that
//! parses must evaluate its start state on a few inputs without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use stepyard_statelang::{FixedEnv, Scope, enter, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(machine) = parse(text) {
        let mut env = FixedEnv::default();
        for input in [
            json!({}),
            json!({"a": [1, "x", null], "b": {"c": true}}),
            json!("s"),
        ] {
            for state in machine.states.values() {
                let context = json!({"State": {"EnteredTime": "2024-01-01T00:00:00Z"}});
                let mut vars = serde_json::Map::new();
                vars.insert("v".into(), json!([1, {"k": "x"}]));
                let _ = enter(state, &input, &Scope::new(&context, &vars), &mut env);
            }
        }
    }
});
