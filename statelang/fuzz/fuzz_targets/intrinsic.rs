//! Any text as an intrinsic call: parsing must never panic, and a call that parses
//! must evaluate (against a small fixed input) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use stepyard_statelang::{FixedEnv, Scope};
use stepyard_statelang::intrinsic::{evaluate, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(call) = parse(text) {
        let input = json!({"a": [1, 2, 3], "s": "a,b", "o": {"k": 1}, "n": 5});
        let _ = evaluate(&call, &input, &Scope::context_only(&json!({})), &mut FixedEnv::default());
    }
});
