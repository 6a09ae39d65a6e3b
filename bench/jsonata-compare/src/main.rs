//! Compares the Rust JSONata implementations on crates.io (Stepyard issue #11).
//!
//! * conformance: runs `cases.json` (hand-written from the JSONata documentation) and, with
//!   `--suite`, the copy of the jsonata-js test suite that ships inside the `jsonata-rs` crate
//!   source, through every candidate;
//! * speed: parse once, evaluate many times, median ns per evaluation over several runs.
//!
//! Every case runs in a child process (this same binary with `--child`), so that a candidate
//! that overflows its stack or loops forever costs one case, not the whole comparison. Inside
//! the child, panics are caught with `catch_unwind`.
//!
//! Usage: `cargo run --release -- [--verbose] [--suite [DIR]] [--no-bench] [--bench-only]
//!         [--cases FILE] [--only CANDIDATE]`

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// Cases

#[derive(Clone, Debug)]
enum Expect {
    Value(Value),
    /// The result must be an array with these members in any order (suite's "unordered").
    Unordered(Value),
    Error(String),
    Undefined,
}

#[derive(Clone, Debug)]
struct Case {
    group: String,
    expr: String,
    /// `None`: no input (undefined); `Some(v)`: input document.
    input: Option<Value>,
    bindings: Map<String, Value>,
    expect: Expect,
}

fn load_cases(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let all: Vec<Value> = serde_json::from_str(&text).expect("cases.json is a JSON array");
    all.into_iter()
        .map(|c| {
            let expect = if let Some(code) = c.get("error").and_then(Value::as_str) {
                Expect::Error(code.to_string())
            } else if c.get("undefined").and_then(Value::as_bool) == Some(true) {
                Expect::Undefined
            } else {
                Expect::Value(c.get("expected").cloned().expect("expected, error or undefined"))
            };
            Case {
                group: c["group"].as_str().unwrap().to_string(),
                expr: c["expr"].as_str().unwrap().to_string(),
                input: match c.get("input") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.clone()),
                },
                bindings: c.get("bindings").and_then(Value::as_object).cloned().unwrap_or_default(),
                expect,
            }
        })
        .collect()
}

/// The jsonata-js test suite as forked into the jsonata-rs crate (tests/testsuite): one JSON
/// file (a case or an array of cases) per case under groups/ and skip/, datasets/ beside them.
fn load_suite(dir: &Path) -> (Vec<Case>, usize) {
    let mut files = Vec::new();
    for sub in ["groups", "skip"] {
        let Ok(groups) = std::fs::read_dir(dir.join(sub)) else { continue };
        for g in groups.flatten() {
            for f in std::fs::read_dir(g.path()).into_iter().flatten().flatten() {
                if f.path().extension().is_some_and(|e| e == "json") {
                    files.push(f.path());
                }
            }
        }
    }
    files.sort_by_key(|p| (p.parent().unwrap().file_name().unwrap().to_owned(), p.file_name().unwrap().to_owned()));
    let mut datasets: HashMap<String, Value> = HashMap::new();
    let mut cases = Vec::new();
    let mut skipped = 0;
    for f in files {
        let group = f.parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
        // Two files hold a lone surrogate ("\ud800"), which serde_json rejects: not counted.
        let Ok(v) = serde_json::from_str::<Value>(&std::fs::read_to_string(&f).unwrap()) else {
            skipped += 1;
            continue;
        };
        let list = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        for c in list {
            let expr = match (c.get("expr").and_then(Value::as_str), c.get("expr-file").and_then(Value::as_str)) {
                (Some(e), _) => e.to_string(),
                (None, Some(file)) => std::fs::read_to_string(f.parent().unwrap().join(file)).unwrap(),
                _ => {
                    skipped += 1;
                    continue;
                }
            };
            let input = if let Some(d) = c.get("data") {
                Some(d.clone())
            } else if let Some(name) = c.get("dataset").and_then(Value::as_str) {
                let ds = datasets.entry(name.to_string()).or_insert_with(|| {
                    let p = dir.join("datasets").join(format!("{name}.json"));
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
                });
                Some(ds.clone())
            } else {
                None
            };
            let expect = if let Some(r) = c.get("result") {
                if c.get("unordered").and_then(Value::as_bool) == Some(true) {
                    Expect::Unordered(r.clone())
                } else {
                    Expect::Value(r.clone())
                }
            } else if c.get("undefinedResult").and_then(Value::as_bool) == Some(true) {
                Expect::Undefined
            } else if let Some(code) = c.get("code").and_then(Value::as_str) {
                // U1001 here is thrown by the jsonata-js test runner's own depth/time limit
                // ("depth"/"timelimit"), which engines count differently: not counted.
                if code == "U1001" && (c.get("depth").is_some() || c.get("timelimit").is_some()) {
                    skipped += 1;
                    continue;
                }
                Expect::Error(code.to_string())
            } else if let Some(code) = c.get("error").and_then(|e| e.get("code")).and_then(Value::as_str) {
                Expect::Error(code.to_string())
            } else {
                // result_re ($millis, $uuid): needs a regex engine; not counted.
                skipped += 1;
                continue;
            };
            cases.push(Case {
                group: group.clone(),
                expr,
                input,
                bindings: c.get("bindings").and_then(Value::as_object).cloned().unwrap_or_default(),
                expect,
            });
        }
    }
    (cases, skipped)
}

fn default_suite_dir() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    for reg in std::fs::read_dir(home.join("registry/src")).ok()?.flatten() {
        let p = reg.path().join("jsonata-rs-0.3.4/tests/testsuite");
        if p.is_dir() {
            return Some(p);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Outcomes

#[derive(Clone, Debug)]
enum Got {
    Value(Value),
    Undefined,
    Error { code: Option<String>, msg: String },
    Panic(String),
    /// The child process died (stack overflow, abort) on this case.
    Crash(String),
    /// No answer within the per-case time limit.
    Timeout,
}

impl Got {
    fn to_json(&self) -> Value {
        match self {
            Got::Value(v) => json!({"k": "value", "v": v}),
            Got::Undefined => json!({"k": "undefined"}),
            Got::Error { code, msg } => json!({"k": "error", "code": code, "msg": msg}),
            Got::Panic(m) => json!({"k": "panic", "msg": m}),
            Got::Crash(m) => json!({"k": "crash", "msg": m}),
            Got::Timeout => json!({"k": "timeout"}),
        }
    }
    fn from_json(v: &Value) -> Got {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        match v["k"].as_str().unwrap_or_default() {
            "value" => Got::Value(v["v"].clone()),
            "undefined" => Got::Undefined,
            "error" => Got::Error { code: v["code"].as_str().map(String::from), msg: s("msg") },
            "panic" => Got::Panic(s("msg")),
            "crash" => Got::Crash(s("msg")),
            _ => Got::Timeout,
        }
    }
    fn short(&self) -> String {
        let mut s = match self {
            Got::Value(v) => v.to_string(),
            Got::Undefined => "undefined".into(),
            Got::Error { code, msg } => format!("error {} ({msg})", code.as_deref().unwrap_or("<no code>")),
            Got::Panic(m) => format!("PANIC {m}"),
            Got::Crash(m) => format!("CRASH {m}"),
            Got::Timeout => "TIMEOUT".into(),
        };
        if s.len() > 200 {
            let mut end = 200;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push('…');
        }
        s
    }
}

/// The first JSONata-style error code (`S0201`, `T2002`, `D3030`, ...) in a message.
fn scan_code(msg: &str) -> Option<String> {
    let b = msg.as_bytes();
    (0..b.len().saturating_sub(4)).find_map(|i| {
        let ok = matches!(b[i], b'S' | b'T' | b'D' | b'U')
            && b[i + 1..i + 5].iter().all(u8::is_ascii_digit)
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && b.get(i + 5).is_none_or(|c| !c.is_ascii_alphanumeric());
        ok.then(|| msg[i..i + 5].to_string())
    })
}

fn num_eq(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// serde_json equality, except that numbers compare as f64 with a tiny tolerance. Object key
/// order is ignored (serde_json's Map equality), although jsonata-js preserves it.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_eq(x.as_f64().unwrap(), y.as_f64().unwrap()),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn passes(expect: &Expect, got: &Got) -> bool {
    match (expect, got) {
        (Expect::Value(e), Got::Value(g)) => json_eq(e, g),
        (Expect::Unordered(Value::Array(e)), Got::Value(Value::Array(g))) => {
            let mut left: Vec<&Value> = g.iter().collect();
            e.len() == g.len()
                && e.iter().all(|x| match left.iter().position(|y| json_eq(x, y)) {
                    Some(i) => {
                        left.remove(i);
                        true
                    }
                    None => false,
                })
        }
        (Expect::Unordered(e), Got::Value(g)) => json_eq(e, g),
        (Expect::Undefined, Got::Undefined) => true,
        (Expect::Error(code), Got::Error { code: Some(c), .. }) => code == c,
        _ => false,
    }
}

/// An error was expected and the candidate raised one, but with another code (or none).
fn wrong_code(expect: &Expect, got: &Got) -> bool {
    matches!(expect, Expect::Error(_)) && matches!(got, Got::Error { .. }) && !passes(expect, got)
}

// ---------------------------------------------------------------------------------------------
// Candidates

const CANDIDATES: &[(&str, &str)] = &[
    ("jsonata-core", "jsonata-core 2.2.13"),
    ("jsonata-rs", "jsonata-rs 0.3.4"),
    ("jsonata", "jsonata 0.0.0"),
];

mod core_c {
    use super::*;
    use jsonata_core::evaluator::{Context, Evaluator};
    use jsonata_core::value::JValue;

    pub fn to_got(r: Result<JValue, jsonata_core::evaluator::EvaluatorError>) -> Got {
        match r {
            Ok(v) if v.is_undefined() => Got::Undefined,
            Ok(v) => Got::Value(Value::from(&v)),
            Err(e) => {
                let msg = e.to_string();
                Got::Error { code: e.code().map(String::from).or_else(|| scan_code(&msg)), msg }
            }
        }
    }

    pub fn run(expr: &str, input: Option<&Value>, bindings: &Map<String, Value>) -> Got {
        let ast = match jsonata_core::parser::parse(expr) {
            Ok(a) => a,
            Err(e) => {
                let msg = e.to_string();
                return Got::Error { code: scan_code(&msg), msg };
            }
        };
        let mut ctx = Context::new();
        for (k, v) in bindings {
            ctx.bind(k.clone(), JValue::from(v.clone()));
        }
        let mut ev = Evaluator::with_context(ctx);
        let data = input.map(|v| JValue::from(v.clone())).unwrap_or(JValue::Undefined);
        to_got(ev.evaluate(&ast, &data))
    }
}

mod rs_c {
    use super::*;
    use bumpalo::Bump;
    use jsonata_rs::JsonAta;

    pub fn value_to_got<'a>(v: &'a jsonata_rs::Value<'a>) -> Got {
        if v.is_undefined() {
            return Got::Undefined;
        }
        let s = v.serialize(false);
        match serde_json::from_str(&s) {
            Ok(j) => Got::Value(j),
            Err(_) => Got::Error { code: None, msg: format!("unserialisable result: {s}") },
        }
    }

    pub fn run(expr: &str, input: Option<&Value>, bindings: &Map<String, Value>) -> Got {
        let arena = Bump::new();
        let j = match JsonAta::new(expr, &arena) {
            Ok(j) => j,
            Err(e) => return Got::Error { code: Some(e.code().to_string()), msg: e.to_string() },
        };
        let input = input.map(|v| v.to_string());
        let b: HashMap<&str, &Value> = bindings.iter().map(|(k, v)| (k.as_str(), v)).collect();
        match j.evaluate(input.as_deref(), Some(&b)) {
            Ok(v) => value_to_got(v),
            Err(e) => Got::Error { code: Some(e.code().to_string()), msg: e.to_string() },
        }
    }
}

mod old_c {
    use super::*;
    use bumpalo::Bump;
    use jsonata::JsonAta;

    pub fn value_to_got<'a>(v: &'a jsonata::Value<'a>) -> Got {
        if v.is_undefined() {
            return Got::Undefined;
        }
        let s = v.serialize(false);
        match serde_json::from_str(&s) {
            Ok(j) => Got::Value(j),
            Err(_) => Got::Error { code: None, msg: format!("unserialisable result: {s}") },
        }
    }

    pub fn run(expr: &str, input: Option<&Value>, bindings: &Map<String, Value>) -> Got {
        let arena = Bump::new();
        let err = |e: jsonata::Error| Got::Error { code: Some(e.code().to_string()), msg: e.to_string() };
        let j = match JsonAta::new(expr, &arena) {
            Ok(j) => j,
            Err(e) => return err(e),
        };
        // No bindings parameter in this API: build each value by evaluating its JSON text
        // (JSON is a JSONata expression) in the same arena, then bind it.
        for (k, v) in bindings {
            let lit = match JsonAta::new(&v.to_string(), &arena) {
                Ok(l) => l,
                Err(e) => return err(e),
            };
            match lit.evaluate(None) {
                Ok(val) => j.assign_var(k, val),
                Err(e) => return err(e),
            }
        }
        let input = input.map(|v| v.to_string());
        match j.evaluate(input.as_deref()) {
            Ok(v) => value_to_got(v),
            Err(e) => err(e),
        }
    }
}

fn run_candidate(cand: &str, case: &Case) -> Got {
    let r = catch_unwind(AssertUnwindSafe(|| match cand {
        "jsonata-core" => core_c::run(&case.expr, case.input.as_ref(), &case.bindings),
        "jsonata-rs" => rs_c::run(&case.expr, case.input.as_ref(), &case.bindings),
        "jsonata" => old_c::run(&case.expr, case.input.as_ref(), &case.bindings),
        other => panic!("unknown candidate {other}"),
    }));
    r.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into());
        Got::Panic(msg)
    })
}

// ---------------------------------------------------------------------------------------------
// Child process: run cases [from..] of a case set through one candidate, one JSON line each.

/// Prefix of the child's result lines on stdout.
const MARK: &str = "@@jsonata-compare@@ ";

fn child_main(args: &[String]) {
    // --child CAND SOURCE FROM   (SOURCE is "cases:PATH" or "suite:DIR")
    let cand = &args[0];
    let cases = load_source(&args[1]);
    let from: usize = args[2].parse().unwrap();
    std::panic::set_hook(Box::new(|_| {}));
    let stdout = std::io::stdout();
    for (i, case) in cases.iter().enumerate().skip(from) {
        let got = run_candidate(cand, case);
        let mut out = stdout.lock();
        writeln!(out, "{MARK}{}", json!({"i": i, "got": got.to_json()})).unwrap();
        out.flush().unwrap();
    }
}

fn load_source(src: &str) -> Vec<Case> {
    if let Some(p) = src.strip_prefix("cases:") {
        load_cases(Path::new(p))
    } else if let Some(d) = src.strip_prefix("suite:") {
        load_suite(Path::new(d)).0
    } else {
        panic!("bad source {src}")
    }
}

/// Runs all cases of `src` through `cand` in child processes, restarting after a crash or hang.
fn run_isolated(cand: &str, src: &str, n: usize, per_case: Duration) -> Vec<Got> {
    let exe = std::env::current_exe().unwrap();
    let mut results: Vec<Option<Got>> = vec![None; n];
    let mut from = 0;
    while from < n {
        let mut child = Command::new(&exe)
            .args(["--child", cand, src, &from.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
            s
        });
        let mut next = from;
        loop {
            match rx.recv_timeout(per_case) {
                Ok(line) => {
                    // Anything else on stdout was printed by a candidate itself.
                    let Some(v) = line.strip_prefix(MARK).and_then(|l| serde_json::from_str::<Value>(l).ok()) else {
                        continue;
                    };
                    let i = v["i"].as_u64().unwrap() as usize;
                    results[i] = Some(Got::from_json(&v["got"]));
                    next = i + 1;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    results[next] = Some(Got::Timeout);
                    next += 1;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().unwrap();
                    if next < n {
                        let err = err_reader.join().unwrap_or_default();
                        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
                        results[next] = Some(Got::Crash(format!("{status}: {last}")));
                        next += 1;
                    }
                    break;
                }
            }
        }
        from = next;
    }
    results.into_iter().map(|r| r.unwrap_or(Got::Timeout)).collect()
}

// ---------------------------------------------------------------------------------------------
// Conformance report

fn report(title: &str, cases: &[Case], results: &[(&str, Vec<Got>)], verbose: bool) {
    println!("\n## {title}: {} cases\n", cases.len());
    print!("| candidate | pass | fail | of the fails: wrong error code | panic | crash/timeout |\n|---|---|---|---|---|---|\n");
    for (cand, gots) in results {
        let pass = cases.iter().zip(gots).filter(|(c, g)| passes(&c.expect, g)).count();
        let wrong = cases.iter().zip(gots).filter(|(c, g)| wrong_code(&c.expect, g)).count();
        let panics = gots.iter().filter(|g| matches!(g, Got::Panic(_))).count();
        let crashes = gots.iter().filter(|g| matches!(g, Got::Crash(_) | Got::Timeout)).count();
        println!(
            "| {cand} | {pass} ({:.1}%) | {} | {wrong} | {panics} | {crashes} |",
            100.0 * pass as f64 / cases.len() as f64,
            cases.len() - pass
        );
    }
    // Per group
    let mut groups: Vec<&str> = Vec::new();
    for c in cases {
        if !groups.contains(&c.group.as_str()) {
            groups.push(&c.group);
        }
    }
    print!("\n| group | cases |");
    for (cand, _) in results {
        print!(" {cand} |");
    }
    print!("\n|---|---|");
    for _ in results {
        print!("---|");
    }
    println!();
    for g in &groups {
        let idx: Vec<usize> = (0..cases.len()).filter(|&i| cases[i].group == *g).collect();
        print!("| {g} | {} |", idx.len());
        for (_, gots) in results {
            let p = idx.iter().filter(|&&i| passes(&cases[i].expect, &gots[i])).count();
            print!(" {p} |");
        }
        println!();
    }
    if verbose {
        for (cand, gots) in results {
            println!("\n### failures: {cand}\n");
            for (c, g) in cases.iter().zip(gots) {
                if !passes(&c.expect, g) {
                    let want = match &c.expect {
                        Expect::Value(v) | Expect::Unordered(v) => v.to_string(),
                        Expect::Undefined => "undefined".into(),
                        Expect::Error(code) => format!("error {code}"),
                    };
                    let mut want = want;
                    if want.len() > 200 {
                        want = want.chars().take(200).collect::<String>() + "…";
                    }
                    println!("- [{}] `{}`\n    want: {want}\n    got:  {}", c.group, c.expr.replace('\n', " "), g.short());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Speed

const INVOICE: &str = r#"{"Account":{"Account Name":"Firefly","Order":[
 {"OrderID":"order103","Product":[
  {"Product Name":"Bowler Hat","ProductID":858383,"SKU":"0406654608","Description":{"Colour":"Purple","Width":300,"Height":200,"Depth":210,"Weight":0.75},"Price":34.45,"Quantity":2},
  {"Product Name":"Trilby hat","ProductID":858236,"SKU":"0406634348","Description":{"Colour":"Orange","Width":300,"Height":200,"Depth":210,"Weight":0.6},"Price":21.67,"Quantity":1}]},
 {"OrderID":"order104","Product":[
  {"Product Name":"Bowler Hat","ProductID":858383,"SKU":"040657863","Description":{"Colour":"Purple","Width":300,"Height":200,"Depth":210,"Weight":0.75},"Price":34.45,"Quantity":4},
  {"ProductID":345664,"SKU":"0406654603","Product Name":"Cloak","Description":{"Colour":"Black","Width":30,"Height":20,"Depth":210,"Weight":2},"Price":107.99,"Quantity":1}]}]}}"#;

fn large_doc() -> Value {
    let cats = ["a", "b", "c", "d"];
    let items: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"id": i, "name": format!("item-{i}"), "price": ((i * 37) % 100) as f64 + 0.5,
                   "qty": i % 7, "category": cats[i % 4]})
        })
        .collect();
    json!({ "items": items })
}

struct Bench {
    name: &'static str,
    expr: &'static str,
    doc: Value,
    expected: Value,
}

fn benches() -> Vec<Bench> {
    let inv: Value = serde_json::from_str(INVOICE).unwrap();
    let large = large_doc();
    let items = large["items"].as_array().unwrap();
    let sum_gt50: f64 = items.iter().map(|i| i["price"].as_f64().unwrap()).filter(|p| *p > 50.0).sum();
    let max_id = {
        let maxp = items.iter().map(|i| i["price"].as_f64().unwrap()).fold(f64::MIN, f64::max);
        items.iter().find(|i| i["price"].as_f64().unwrap() == maxp).unwrap()["id"].clone()
    };
    vec![
        Bench { name: "input only (invoice)", expr: "$", doc: inv.clone(), expected: inv.clone() },
        Bench { name: "path", expr: "Account.Order[0].Product[0].SKU", doc: inv.clone(), expected: json!("0406654608") },
        Bench {
            name: "predicate",
            expr: "Account.Order.Product[Price > 30].`Product Name`",
            doc: inv.clone(),
            expected: json!(["Bowler Hat", "Bowler Hat", "Cloak"]),
        },
        Bench {
            name: "aggregate",
            expr: "$sum(Account.Order.Product.(Price * Quantity))",
            doc: inv.clone(),
            expected: json!(336.36),
        },
        Bench {
            name: "construct",
            expr: r#"Account.Order.{"id": OrderID, "total": $sum(Product.(Price * Quantity))}"#,
            doc: inv.clone(),
            expected: json!([{"id": "order103", "total": 90.57}, {"id": "order104", "total": 245.79}]),
        },
        Bench {
            name: "strings",
            expr: r#"$join(Account.Order.Product.$uppercase(`Product Name`), ", ")"#,
            doc: inv.clone(),
            expected: json!("BOWLER HAT, TRILBY HAT, BOWLER HAT, CLOAK"),
        },
        Bench {
            name: "lambda/$map",
            expr: "$map(Account.Order.Product, function($p){ $p.Price * 2 })",
            doc: inv.clone(),
            expected: json!([68.9, 43.34, 68.9, 215.98]),
        },
        Bench {
            name: "1000 items: filter+sum",
            expr: "$sum(items[price > 50].price)",
            doc: large.clone(),
            expected: json!(sum_gt50),
        },
        Bench {
            name: "1000 items: group-by",
            expr: "items{category: $count(id)}",
            doc: large.clone(),
            expected: json!({"a": 250, "b": 250, "c": 250, "d": 250}),
        },
        Bench { name: "input only (1000 items)", expr: "$", doc: large.clone(), expected: large.clone() },
        Bench { name: "1000 items: sort", expr: "items^(>price)[0].id", doc: large, expected: max_id },
    ]
}

/// Median over `runs` of the mean time of one call in a batch; the batch size is calibrated
/// so that a batch takes about 20 ms. `setup` builds per-batch state outside the timed part
/// (jsonata-rs needs a fresh arena per batch: its arena only grows).
fn measure<S>(runs: usize, max_batch: usize, mut setup: impl FnMut() -> S, mut op: impl FnMut(&mut S)) -> f64 {
    let mut s = setup();
    let t = Instant::now();
    op(&mut s);
    let one = t.elapsed().as_nanos().max(1) as f64;
    let batch = ((20e6 / one) as usize).clamp(1, max_batch);
    drop(s);
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut s = setup();
        let t = Instant::now();
        for _ in 0..batch {
            op(&mut s);
        }
        samples.push(t.elapsed().as_nanos() as f64 / batch as f64);
        drop(s);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

/// `measure` for the arena-based crates: a fresh `Bump` and parsed expression per batch (set
/// up outside the timed part, the arena dropped after it), batch capped so that the arena
/// stays under ~256 MB (these arenas only grow).
macro_rules! measure_arena {
    ($runs:expr, |$a:ident| $new:expr, |$j:ident| $eval:expr) => {{
        let (one, bytes) = {
            let arena = bumpalo::Bump::new();
            let $a = &arena;
            let $j = $new;
            let before = arena.allocated_bytes();
            let t = Instant::now();
            std::hint::black_box($eval);
            let one = t.elapsed().as_nanos().max(1) as f64;
            (one, (arena.allocated_bytes() - before).max(1))
        };
        let batch = ((20e6 / one) as usize).clamp(1, (256 << 20) / bytes).max(1);
        let mut samples = Vec::new();
        for _ in 0..$runs {
            let arena = bumpalo::Bump::new();
            let $a = &arena;
            let $j = $new;
            let t = Instant::now();
            for _ in 0..batch {
                std::hint::black_box($eval);
            }
            samples.push(t.elapsed().as_nanos() as f64 / batch as f64);
        }
        samples.sort_by(|x, y| x.partial_cmp(y).unwrap());
        samples[samples.len() / 2]
    }};
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn speed(runs: usize) {
    use bumpalo::Bump;
    use jsonata_core::value::JValue;
    println!("\n## Speed (median of {runs} runs; each run a batch calibrated to ~20 ms)\n");
    println!("Columns: `core eval` = jsonata-core tree-walking Evaluator on a pre-converted JValue; `core VM` = jsonata-core `Expression` (bytecode VM where the expression compiles); `core +json` = `JValue::from_json_str` of the input text, then Evaluator (what jsonata-rs's API always does); `rs` = jsonata-rs `evaluate(Some(input_text), None)` (the only way to pass input: it re-parses the text each call); `old` = jsonata 0.0.0, same API. `✗` = the candidate fails this expression (error, panic or wrong result).\n");
    println!("| expression | input | core eval | core VM | core +json | rs | old | core parse | rs parse | old parse |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // The correctness probes below may panic (jsonata 0.0.0): keep their messages quiet.
    std::panic::set_hook(Box::new(|_| {}));
    for b in benches() {
        let text = b.doc.to_string();
        let data = JValue::from(b.doc.clone());
        let ok = |g: Got| passes(&Expect::Value(b.expected.clone()), &g);
        // correctness check of each candidate on this expression first
        let core_ok = ok(run_candidate("jsonata-core", &Case {
            group: String::new(),
            expr: b.expr.into(),
            input: Some(b.doc.clone()),
            bindings: Map::new(),
            expect: Expect::Undefined,
        }));
        let case = Case { group: String::new(), expr: b.expr.into(), input: Some(b.doc.clone()), bindings: Map::new(), expect: Expect::Undefined };
        let rs_ok = ok(run_candidate("jsonata-rs", &case));
        let old_ok = ok(run_candidate("jsonata", &case));

        let cell = |good: bool, f: &mut dyn FnMut() -> f64| if good { fmt_ns(f()) } else { "✗".to_string() };

        let ast = jsonata_core::parser::parse(b.expr).unwrap();
        let core_eval = cell(core_ok, &mut || {
            measure(runs, 1_000_000, jsonata_core::evaluator::Evaluator::new, |ev| {
                std::hint::black_box(ev.evaluate(&ast, &data).unwrap());
            })
        });
        let compiled = jsonata_core::Expression::compile(b.expr).unwrap();
        let vm_ok = core_c::to_got(compiled.evaluate(&data));
        let core_vm = cell(ok(vm_ok), &mut || {
            measure(runs, 1_000_000, || (), |_| {
                std::hint::black_box(compiled.evaluate(&data).unwrap());
            })
        });
        let core_json = cell(core_ok, &mut || {
            measure(runs, 1_000_000, jsonata_core::evaluator::Evaluator::new, |ev| {
                let d = JValue::from_json_str(&text).unwrap();
                std::hint::black_box(ev.evaluate(&ast, &d).unwrap());
            })
        });
        let rs = cell(rs_ok, &mut || {
            measure_arena!(runs, |arena| jsonata_rs::JsonAta::new(b.expr, arena).unwrap(), |j| j
                .evaluate(Some(&text), None)
                .unwrap())
        });
        let old = cell(old_ok, &mut || {
            measure_arena!(runs, |arena| jsonata::JsonAta::new(b.expr, arena).unwrap(), |j| j
                .evaluate(Some(&text))
                .unwrap())
        });
        let core_parse = fmt_ns(measure(runs, 1_000_000, || (), |_| {
            std::hint::black_box(jsonata_core::parser::parse(b.expr).unwrap());
        }));
        let rs_parse = if rs_ok {
            fmt_ns(measure(runs, 100_000, Bump::new, |arena| {
                std::hint::black_box(jsonata_rs::JsonAta::new(b.expr, arena).is_ok());
            }))
        } else {
            "✗".into()
        };
        let old_parse = if old_ok {
            fmt_ns(measure(runs, 100_000, Bump::new, |arena| {
                std::hint::black_box(jsonata::JsonAta::new(b.expr, arena).is_ok());
            }))
        } else {
            "✗".into()
        };
        println!(
            "| {} `{}` | {:.1} KB | {core_eval} | {core_vm} | {core_json} | {rs} | {old} | {core_parse} | {rs_parse} | {old_parse} |",
            b.name,
            b.expr.replace('|', "\\|"),
            text.len() as f64 / 1024.0
        );
    }
    stepyard_shaped(runs);
}

/// The shape Stepyard needs: the state input is a `serde_json::Value`, bound as `$states`
/// (`{"input": ...}`), and the result must come back as a `serde_json::Value`. Each
/// evaluation converts the input in and the result out; the expression is parsed once.
fn stepyard_shaped(runs: usize) {
    use jsonata_core::evaluator::{Context, Evaluator};
    use jsonata_core::value::JValue;
    println!("\n## Speed, Stepyard-shaped: serde_json::Value in (bound as `$states.input`), serde_json::Value out\n");
    println!("Each expression `E` of the table above is run as `$states.input.(E)`. `core` = bind `JValue::from(states.clone())` into a fresh `Context`, `Evaluator::with_context`, evaluate the parsed AST, `serde_json::Value::from(&result)`. `rs` = `evaluate(None, Some(&{{\"states\": &states}}))` (jsonata-rs converts a bound serde_json::Value straight into its arena, no text parse), then the result serialised and read back with serde_json (its only way out); jsonata-rs cannot keep a converted input across evaluations (`evaluate` converts the bindings each call). `core, input converted once` = the same Evaluator and bound `$states` reused across evaluations, only the result converted out. jsonata 0.0.0 has no bindings parameter and is left out.\n");
    println!("| expression | core | core, input converted once | rs | rs / core |");
    println!("|---|---|---|---|---|");
    for b in benches() {
        let expr = format!("$states.input.({})", b.expr);
        let states = json!({ "input": b.doc });
        let ok = |g: Got| passes(&Expect::Value(b.expected.clone()), &g);
        let bindings: Map<String, Value> = states_map(&states);
        let case = Case { group: String::new(), expr: expr.clone(), input: None, bindings, expect: Expect::Undefined };
        let core_ok = ok(run_candidate("jsonata-core", &case));
        let rs_ok = ok(run_candidate("jsonata-rs", &case));
        let ast = jsonata_core::parser::parse(&expr).unwrap();
        let core = if core_ok {
            Some(measure(runs, 1_000_000, || (), |_| {
                let mut ctx = Context::new();
                ctx.bind("states".to_string(), JValue::from(states.clone()));
                let mut ev = Evaluator::with_context(ctx);
                let r = ev.evaluate(&ast, &JValue::Undefined).unwrap();
                std::hint::black_box(Value::from(&r));
            }))
        } else {
            None
        };
        // Input converted once (a JSONata state evaluates every `{% %}` of its Arguments /
        // Output / Assign against the same `$states`): per evaluation only the result goes out.
        let core_once = if core_ok {
            Some(measure(
                runs,
                1_000_000,
                || {
                    let mut ctx = Context::new();
                    ctx.bind("states".to_string(), JValue::from(states.clone()));
                    Evaluator::with_context(ctx)
                },
                |ev| {
                    let r = ev.evaluate(&ast, &JValue::Undefined).unwrap();
                    std::hint::black_box(Value::from(&r));
                },
            ))
        } else {
            None
        };
        let rs = if rs_ok {
            let bind: HashMap<&str, &Value> = HashMap::from([("states", &states)]);
            Some(measure_arena!(runs, |arena| jsonata_rs::JsonAta::new(&expr, arena).unwrap(), |j| {
                let r = j.evaluate(None, Some(&bind)).unwrap();
                serde_json::from_str::<Value>(&r.serialize(false)).unwrap()
            }))
        } else {
            None
        };
        let show = |t: Option<f64>| t.map(fmt_ns).unwrap_or_else(|| "✗".into());
        let ratio = match (core, rs) {
            (Some(c), Some(r)) => format!("{:.1}×", r / c),
            _ => "–".into(),
        };
        println!("| {} | {} | {} | {} | {ratio} |", b.name, show(core), show(core_once), show(rs));
    }
}

fn states_map(states: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("states".into(), states.clone());
    m
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child_main(&args[1..]);
    }
    let verbose = args.iter().any(|a| a == "--verbose" || a == "-v");
    let no_bench = args.iter().any(|a| a == "--no-bench");
    let bench_only = args.iter().any(|a| a == "--bench-only");
    let value_after = |flag: &str| {
        args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).filter(|v| !v.starts_with("--")).cloned()
    };
    let only = value_after("--only");
    let cands: Vec<&str> =
        CANDIDATES.iter().map(|c| c.0).filter(|c| only.as_deref().is_none_or(|o| o == *c)).collect();
    let cases_path = value_after("--cases")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("cases.json"));
    let runs: usize = value_after("--runs").and_then(|r| r.parse().ok()).unwrap_or(11);

    println!("# jsonata-compare\n");
    for (c, full) in CANDIDATES {
        if cands.contains(c) {
            println!("- {full}");
        }
    }

    if !bench_only {
        let cases = load_cases(&cases_path);
        let src = format!("cases:{}", cases_path.display());
        let results: Vec<(&str, Vec<Got>)> =
            cands.iter().map(|c| (*c, run_isolated(c, &src, cases.len(), Duration::from_secs(20)))).collect();
        report("cases.json (from the JSONata documentation)", &cases, &results, verbose);

        if args.iter().any(|a| a == "--suite") {
            match value_after("--suite").map(PathBuf::from).or_else(default_suite_dir) {
                Some(dir) => {
                    let (suite, skipped) = load_suite(&dir);
                    let src = format!("suite:{}", dir.display());
                    let results: Vec<(&str, Vec<Got>)> = cands
                        .iter()
                        .map(|c| (*c, run_isolated(c, &src, suite.len(), Duration::from_secs(30))))
                        .collect();
                    report(
                        &format!(
                            "jsonata-js test suite as forked in jsonata-rs 0.3.4 ({}; {skipped} cases not counted: regex-matched results, unparseable JSON, runner-imposed U1001 limits)",
                            dir.display()
                        ),
                        &suite,
                        &results,
                        verbose,
                    );
                }
                None => eprintln!("--suite: no jsonata-rs-0.3.4/tests/testsuite under the cargo registry; pass a DIR"),
            }
        }
    }
    if !no_bench {
        speed(runs);
    }
}
