//! JSONata for `QueryLanguage: "JSONata"` states, on the `jsonata-core` crate.
//!
//! A field value that is a string of the form `{% expression %}` is an expression; every
//! other JSON value is taken literally, and objects and arrays may hold expressions at
//! any depth ([`JTemplate`]). Expressions see `$states` (`input`, `context`, and where
//! the state has them `result` and `errorOutput`) and the workflow variables as `$name`.
//!
//! AWS's own functions are added: `$partition`, `$range`, `$hash`, `$random`, `$uuid`,
//! `$parse`. `$random` and `$uuid` draw from a generator seeded from the injected
//! [`Env`] (only when the expression uses them), and `$now`/`$millis` answer the time the
//! state was entered (`$states.context.State.EnteredTime`), so an evaluation stays a
//! pure function of its inputs.

use std::cell::Cell;
use std::rc::Rc;

use indexmap::IndexMap;
use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::value::JValue;
use serde_json::{Map, Number, Value};

use crate::error::{ErrorName, StatesError};
use crate::eval::Env;
use crate::problem::{Problem, ProblemCode, pointer_push};
use crate::scope::Scope;
use crate::template::truncate;

/// Deepest evaluation stack an expression may use (jsonata's `stack` option).
const MAX_STACK_DEPTH: usize = 500;
/// Longest sequence an expression may build.
const MAX_SEQUENCE_LENGTH: usize = 1_000_000;
/// `$range` builds at most this many items, like `States.ArrayRange`.
const MAX_RANGE_ITEMS: f64 = 1000.0;

/// A compiled JSONata expression (the text between `{%` and `%}`).
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    /// Where the expression sits in the definition (a JSON Pointer), for error causes.
    location: String,
    ast: AstNode,
    /// Every `$name` the text mentions: the variables to bind before evaluating.
    names: Vec<String>,
    fields: StatesFields,
}

// Definitions are shared across the engine's threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expr>();
};

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.location == other.location
    }
}

/// Whether a JSON string is a JSONata expression: `{%` ... `%}`.
pub fn is_expression(text: &str) -> bool {
    let t = text.trim();
    t.len() >= 4 && t.starts_with("{%") && t.ends_with("%}")
}

impl Expr {
    /// Compiles `text` (with its `{% %}`), found at `pointer`.
    pub fn compile(text: &str, pointer: &str) -> Result<Expr, String> {
        let t = text.trim();
        let inner = t
            .strip_prefix("{%")
            .and_then(|s| s.strip_suffix("%}"))
            .ok_or_else(|| {
                format!("'{text}' is not a JSONata expression: write it as {{% ... %}}")
            })?
            .trim();
        if inner.is_empty() {
            return Err("the JSONata expression is empty".into());
        }
        let parsed = std::panic::catch_unwind(|| jsonata_core::parser::parse(inner))
            .map_err(|_| format!("the JSONata expression '{inner}' could not be parsed"))?;
        let ast =
            parsed.map_err(|e| format!("the JSONata expression '{inner}' is not valid: {e}"))?;
        let names = mentioned_names(inner);
        Ok(Expr {
            source: inner.to_owned(),
            location: pointer.to_owned(),
            ast,
            names,
            fields: StatesFields::of(inner),
        })
    }

    /// The expression's text, without `{% %}`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against `input` (`$states.input`) and `scope`. `None` is JSONata's
    /// "undefined" (no value).
    pub fn evaluate(
        &self,
        input: &Value,
        scope: &Scope<'_>,
        env: &mut dyn Env,
    ) -> Result<Option<Value>, StatesError> {
        let states = states_value(input, scope, self.fields);
        self.evaluate_with(&states, scope, env)
    }

    fn evaluate_with(
        &self,
        states: &JValue,
        scope: &Scope<'_>,
        env: &mut dyn Env,
    ) -> Result<Option<Value>, StatesError> {
        let mut evaluator = evaluator(&self.names, states, scope, env);
        self.run(&mut evaluator)
    }

    fn run(&self, evaluator: &mut Evaluator) -> Result<Option<Value>, StatesError> {
        // A bug in the library (fuzzing found arithmetic overflows in debug builds) must
        // fail the state, not the engine.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            evaluator.evaluate(&self.ast, &JValue::Null)
        }));
        let result = match outcome {
            Ok(result) => result.map_err(|e| self.error(&describe(&e)))?,
            Err(_) => return Err(self.error("could not be evaluated (the JSONata engine failed)")),
        };
        from_jvalue(&result).map_err(|why| self.error(&why))
    }

    /// `States.QueryEvaluationError` for a value of the wrong kind for `field`, e.g.
    /// "must return a boolean, but returned 3".
    pub(crate) fn wrong_result(
        &self,
        field: &str,
        wanted: &str,
        got: Option<&Value>,
    ) -> StatesError {
        StatesError::new(
            ErrorName::QueryEvaluationError,
            format!(
                "The JSONata expression '{}' specified for the field '{field}' must return {wanted}, but returned {}",
                truncate(&self.source),
                got.map_or_else(
                    || "no value (undefined)".to_owned(),
                    |v| truncate(&v.to_string())
                )
            ),
        )
    }

    fn error(&self, why: &str) -> StatesError {
        StatesError::new(
            ErrorName::QueryEvaluationError,
            format!(
                "The JSONata expression '{}' specified for the field '{}' {why}",
                truncate(&self.source),
                field_name(&self.location)
            ),
        )
    }
}

/// An evaluator for expressions that mention `names`: `$states` and the variables among
/// them bound, and only the functions among them installed (installing costs more than
/// evaluating a small expression).
fn evaluator(names: &[String], states: &JValue, scope: &Scope<'_>, env: &mut dyn Env) -> Evaluator {
    let mut bindings = jsonata_core::evaluator::Context::new();
    for name in names {
        if name == "states" {
            continue;
        }
        if let Some(value) = scope.vars.get(name) {
            bindings.bind(name.clone(), to_jvalue(value));
        }
    }
    bindings.bind("states".to_owned(), states.clone());
    let mut evaluator = Evaluator::with_options(
        bindings,
        EvaluatorOptions {
            max_stack_depth: Some(MAX_STACK_DEPTH),
            max_sequence_length: Some(MAX_SEQUENCE_LENGTH),
            ..EvaluatorOptions::default()
        },
    );
    install_functions(&mut evaluator, names, scope, env);
    evaluator
}

fn install_functions(ev: &mut Evaluator, names: &[String], scope: &Scope<'_>, env: &mut dyn Env) {
    let uses = |f: &str| names.iter().any(|n| n == f);
    // Registration only fails for names that clash with built-ins; these do not, and
    // an expression that does not use a function never notices it missing.
    if uses("now") || uses("millis") {
        let entered = scope
            .context
            .pointer("/State/EnteredTime")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if let Some(entered) = entered {
            let text = entered
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            let millis = entered.timestamp_millis() as f64;
            let _ = ev
                .register_fn_override("now", move |_: &[JValue]| Ok(JValue::string(text.as_str())));
            let _ =
                ev.register_fn_override("millis", move |_: &[JValue]| Ok(JValue::from_f64(millis)));
        }
    }
    if uses("random") || uses("uuid") {
        let seed = (env.random() * (u64::MAX as f64)) as u64
            ^ env.uuid().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let state = Rc::new(Cell::new(seed));
        let random_state = state.clone();
        let _ = ev.register_fn_override("random", move |args: &[JValue]| {
            let value = match args.first() {
                Some(JValue::Number(seed)) => {
                    let mut s = *seed as u64;
                    unit_float(splitmix(&mut s))
                }
                Some(JValue::Undefined) | None => {
                    let mut s = random_state.get();
                    let v = unit_float(splitmix(&mut s));
                    random_state.set(s);
                    v
                }
                Some(_) => return Err(arg_error("$random", "the seed must be an integer")),
            };
            Ok(JValue::from_f64(value))
        });
        let _ = ev.register_fn("uuid", move |_: &[JValue]| {
            let mut s = state.get();
            let (a, b) = (splitmix(&mut s), splitmix(&mut s));
            state.set(s);
            Ok(JValue::string(uuid_v4(a, b).as_str()))
        });
    }
    if uses("partition") {
        let _ = ev.register_fn("partition", |args: &[JValue]| {
            let (Some(JValue::Array(items)), Some(JValue::Number(size))) =
                (args.first(), args.get(1))
            else {
                return Err(arg_error(
                    "$partition",
                    "it takes an array and a chunk size",
                ));
            };
            if size.fract() != 0.0 || *size < 1.0 {
                return Err(arg_error(
                    "$partition",
                    "the chunk size must be a positive integer",
                ));
            }
            let chunks: Vec<JValue> = items
                .chunks(*size as usize)
                .map(|c| JValue::from(c.to_vec()))
                .collect();
            Ok(JValue::from(chunks))
        });
    }
    if uses("range") {
        let _ = ev.register_fn("range", |args: &[JValue]| {
            let number = |i: usize| match args.get(i) {
                Some(JValue::Number(n)) if n.fract() == 0.0 => Some(*n),
                _ => None,
            };
            let (Some(start), Some(end), Some(step)) = (number(0), number(1), number(2)) else {
                return Err(arg_error(
                    "$range",
                    "it takes three integers: start, end and step",
                ));
            };
            if step == 0.0 {
                return Err(arg_error("$range", "the step must not be 0"));
            }
            let count = ((end - start) / step).floor() + 1.0;
            if count > MAX_RANGE_ITEMS {
                return Err(arg_error("$range", "the range has more than 1000 items"));
            }
            let items: Vec<JValue> = (0..count.max(0.0) as usize)
                .map(|i| JValue::from_f64(start + step * i as f64))
                .collect();
            Ok(JValue::from(items))
        });
    }
    if uses("hash") {
        let _ = ev.register_fn("hash", |args: &[JValue]| {
            let (Some(data), Some(JValue::String(algorithm))) = (args.first(), args.get(1)) else {
                return Err(arg_error(
                    "$hash",
                    "it takes the data and an algorithm name",
                ));
            };
            let text = match data {
                JValue::String(s) => s.to_string(),
                other => other.to_json_string().unwrap_or_default(),
            };
            crate::intrinsic::hash(algorithm, text.as_bytes())
                .map(|h| JValue::string(h.as_str()))
                .ok_or_else(|| {
                    arg_error(
                        "$hash",
                        "the algorithm must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512",
                    )
                })
        });
    }
    if uses("parse") {
        let _ = ev.register_fn("parse", |args: &[JValue]| {
            let Some(JValue::String(text)) = args.first() else {
                return Err(arg_error("$parse", "it takes a string of JSON"));
            };
            let value: Value = serde_json::from_str(text)
                .map_err(|e| arg_error("$parse", &format!("the string is not JSON: {e}")))?;
            Ok(to_jvalue(&value))
        });
    }
}

fn arg_error(function: &str, why: &str) -> EvaluatorError {
    EvaluatorError::EvaluationError(format!("Invalid arguments in {function}: {why}"))
}

fn describe(e: &EvaluatorError) -> String {
    format!("returned an error: {}", e.message())
}

/// `/States/Check/Arguments/id` → `Arguments.id`: AWS names the field, not the state.
fn field_name(location: &str) -> String {
    let parts: Vec<&str> = location.split('/').filter(|s| !s.is_empty()).collect();
    // Skip the path to the state: `States/<name>` (possibly nested in branches).
    let start = parts
        .iter()
        .rposition(|p| *p == "States")
        .map_or(0, |i| (i + 2).min(parts.len()));
    let field = parts[start..].join(".");
    if field.is_empty() {
        location.to_owned()
    } else {
        field.replace("~1", "/").replace("~0", "~")
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit_float(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn uuid_v4(a: u64, b: u64) -> String {
    let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

/// Every `$name` in the expression text outside string literals.
fn mentioned_names(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == '\\' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '$' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && crate::scope::is_variable_char(chars[end]) {
                    end += 1;
                }
                if end > start {
                    let name: String = chars[start..end].iter().collect();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                i = end.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// The `$states` object: `input`, `context`, and `result` / `errorOutput` when known.
/// The `$states` fields an expression may read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct StatesFields {
    input: bool,
    context: bool,
    result: bool,
    error_output: bool,
}

impl StatesFields {
    const ALL: StatesFields = StatesFields {
        input: true,
        context: true,
        result: true,
        error_output: true,
    };

    /// Read off the text: a field is needed when its name appears; `$states` used other
    /// than as `$states.field` (e.g. `$keys($states)`) needs them all.
    fn of(text: &str) -> StatesFields {
        let whole = text
            .match_indices("$states")
            .any(|(i, m)| !text[i + m.len()..].starts_with('.'));
        if whole {
            return StatesFields::ALL;
        }
        StatesFields {
            input: text.contains("input"),
            context: text.contains("context"),
            result: text.contains("result"),
            error_output: text.contains("errorOutput"),
        }
    }

    fn union(self, other: StatesFields) -> StatesFields {
        StatesFields {
            input: self.input || other.input,
            context: self.context || other.context,
            result: self.result || other.result,
            error_output: self.error_output || other.error_output,
        }
    }
}

/// The `$states` object: `input`, `context`, and `result` / `errorOutput` when known;
/// only the fields the expressions read are converted.
fn states_value(input: &Value, scope: &Scope<'_>, fields: StatesFields) -> JValue {
    let mut map = IndexMap::with_capacity(4);
    if fields.input {
        map.insert("input".to_owned(), to_jvalue(input));
    }
    if fields.context {
        map.insert("context".to_owned(), to_jvalue(scope.context));
    }
    if let Some(result) = scope.result.filter(|_| fields.result) {
        map.insert("result".to_owned(), to_jvalue(result));
    }
    if let Some(error_output) = scope.error_output.filter(|_| fields.error_output) {
        map.insert("errorOutput".to_owned(), to_jvalue(error_output));
    }
    JValue::from(map)
}

pub(crate) fn to_jvalue(value: &Value) -> JValue {
    match value {
        Value::Null => JValue::Null,
        Value::Bool(b) => JValue::Bool(*b),
        Value::Number(n) => JValue::from_f64(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => JValue::string(s.as_str()),
        Value::Array(items) => JValue::from(items.iter().map(to_jvalue).collect::<Vec<_>>()),
        Value::Object(map) => JValue::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_jvalue(v)))
                .collect::<IndexMap<_, _>>(),
        ),
    }
}

/// JSONata's value back to JSON. `None` is undefined; functions and non-finite numbers
/// are not JSON.
pub(crate) fn from_jvalue(value: &JValue) -> Result<Option<Value>, String> {
    Ok(Some(match value {
        JValue::Undefined => return Ok(None),
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => Value::Number(
            number(*n).ok_or_else(|| format!("returned {n}, which is not a JSON number"))?,
        ),
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                if let Some(v) = from_jvalue(item)? {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        JValue::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map.iter() {
                if let Some(v) = from_jvalue(v)? {
                    out.insert(k.clone(), v);
                }
            }
            Value::Object(out)
        }
        _ => return Err("returned a function, which is not JSON".into()),
    }))
}

/// A double as JSON: whole numbers as integers (JSONata numbers are doubles).
fn number(n: f64) -> Option<Number> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        return Some(Number::from(n as i64));
    }
    Number::from_f64(n)
}

/// A JSON value that may hold `{% %}` expressions anywhere inside it, with what its
/// expressions read worked out once at parse time.
#[derive(Debug, Clone, PartialEq)]
pub struct JTemplate {
    root: Node,
    /// Every `$name` its expressions mention, once.
    names: Vec<String>,
    fields: StatesFields,
}

impl JTemplate {
    /// Compiles `value` found at `pointer`, pushing every problem found.
    pub(crate) fn compile(value: &Value, pointer: &str, problems: &mut Vec<Problem>) -> JTemplate {
        let root = Node::compile(value, pointer, problems);
        let mut names = Vec::new();
        let fields = root.names(&mut names);
        JTemplate {
            root,
            names,
            fields,
        }
    }

    /// Evaluates every expression; a field or item whose expression has no value is left
    /// out, and a whole template with no value is an error naming the field.
    pub fn evaluate(
        &self,
        input: &Value,
        scope: &Scope<'_>,
        env: &mut dyn Env,
    ) -> Result<Value, StatesError> {
        if let Node::Literal(v) = &self.root {
            return Ok(v.clone());
        }
        let states = states_value(input, scope, self.fields);
        let mut evaluator = evaluator(&self.names, &states, scope, env);
        match self.root.evaluate_inner(&mut evaluator)? {
            Some(v) => Ok(v),
            None => {
                let Node::Expr(e) = &self.root else {
                    unreachable!("only an expression evaluates to nothing")
                };
                Err(e.error("returned no value (undefined)"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Expr(Expr),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

impl Node {
    /// Compiles `value` found at `pointer`, pushing every problem found.
    fn compile(value: &Value, pointer: &str, problems: &mut Vec<Problem>) -> Node {
        match value {
            Value::String(s) if is_expression(s) => match Expr::compile(s, pointer) {
                Ok(e) => Node::Expr(e),
                Err(message) => {
                    problems.push(Problem::new(pointer, ProblemCode::InvalidJsonata, message));
                    Node::Literal(Value::Null)
                }
            },
            Value::Object(map) if contains_expression(value) => Node::Object(
                map.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            Node::compile(v, &pointer_push(pointer, k), problems),
                        )
                    })
                    .collect(),
            ),
            Value::Array(items) if contains_expression(value) => Node::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        Node::compile(v, &pointer_push(pointer, &i.to_string()), problems)
                    })
                    .collect(),
            ),
            other => Node::Literal(other.clone()),
        }
    }

    /// Every name the expressions inside mention, once, and the `$states` fields they read.
    fn names(&self, out: &mut Vec<String>) -> StatesFields {
        match self {
            Node::Literal(_) => StatesFields::default(),
            Node::Expr(e) => {
                for n in &e.names {
                    if !out.contains(n) {
                        out.push(n.clone());
                    }
                }
                e.fields
            }
            Node::Object(fields) => fields.iter().fold(StatesFields::default(), |acc, (_, t)| {
                acc.union(t.names(out))
            }),
            Node::Array(items) => items
                .iter()
                .fold(StatesFields::default(), |acc, t| acc.union(t.names(out))),
        }
    }

    fn evaluate_inner(&self, evaluator: &mut Evaluator) -> Result<Option<Value>, StatesError> {
        Ok(Some(match self {
            Node::Literal(v) => v.clone(),
            Node::Expr(e) => return e.run(evaluator),
            Node::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    if let Some(v) = t.evaluate_inner(evaluator)? {
                        map.insert(k.clone(), v);
                    }
                }
                Value::Object(map)
            }
            Node::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for t in items {
                    if let Some(v) = t.evaluate_inner(evaluator)? {
                        out.push(v);
                    }
                }
                Value::Array(out)
            }
        }))
    }
}

fn contains_expression(value: &Value) -> bool {
    match value {
        Value::String(s) => is_expression(s),
        Value::Object(map) => map.values().any(contains_expression),
        Value::Array(items) => items.iter().any(contains_expression),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::FixedEnv;
    use serde_json::json;

    fn eval(
        text: &str,
        input: Value,
        vars: &Map<String, Value>,
    ) -> Result<Option<Value>, StatesError> {
        let expr = Expr::compile(text, "/States/S/Output").unwrap();
        let ctx = json!({"State": {"EnteredTime": "2024-01-02T03:04:05.678Z", "Name": "S"}});
        let scope = Scope::new(&ctx, vars);
        expr.evaluate(&input, &scope, &mut FixedEnv::default())
    }

    #[test]
    fn reads_states_and_variables() {
        let mut vars = Map::new();
        vars.insert("limit".into(), json!(10));
        let out = eval(
            "{% $states.input.items[price > $limit].name %}",
            json!({"items": [{"name": "a", "price": 5}, {"name": "b", "price": 50}]}),
            &vars,
        )
        .unwrap();
        assert_eq!(out, Some(json!("b")));
    }

    #[test]
    fn aws_functions() {
        let vars = Map::new();
        let cases = [
            (
                "{% $partition([1,2,3,4,5], 2) %}",
                json!([[1, 2], [3, 4], [5]]),
            ),
            ("{% $range(0, 10, 5) %}", json!([0, 5, 10])),
            (
                "{% $hash('input data', 'SHA-1') %}",
                json!("aaff4a450a104cd177d28d18d74485e8cae074b7"),
            ),
            ("{% $parse('{\"a\": [1]}') %}", json!({"a": [1]})),
            ("{% $now() %}", json!("2024-01-02T03:04:05.678Z")),
            ("{% 3 / 2 %}", json!(1.5)),
            ("{% 4 / 2 %}", json!(2)),
        ];
        for (text, expected) in cases {
            assert_eq!(
                eval(text, json!({}), &vars).unwrap(),
                Some(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn random_and_uuid_come_from_the_env() {
        let vars = Map::new();
        let a = eval("{% [$random(), $uuid()] %}", json!({}), &vars).unwrap();
        let b = eval("{% [$random(), $uuid()] %}", json!({}), &vars).unwrap();
        assert_eq!(a, b);
        let uuid = a.unwrap()[1].as_str().unwrap().to_owned();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }

    #[test]
    fn errors_are_query_evaluation_errors() {
        let vars = Map::new();
        let e = eval("{% $states.input.a + 'x' %}", json!({"a": 1}), &vars).unwrap_err();
        assert_eq!(e.error, ErrorName::QueryEvaluationError);
        assert!(
            e.cause.contains("specified for the field 'Output'"),
            "{}",
            e.cause
        );
        let f = eval("{% function($x) { $x } %}", json!({}), &vars).unwrap_err();
        assert!(f.cause.contains("function"), "{}", f.cause);
        assert_eq!(
            eval("{% $states.input.nothing %}", json!({}), &vars).unwrap(),
            None
        );
    }

    #[test]
    fn a_range_too_large_is_an_error_not_a_crash() {
        // Found by fuzzing: the library's size check overflowed in debug builds.
        let vars = Map::new();
        let e = eval(
            "{% [0..333333333333333333333333333333333333] %}",
            json!({}),
            &vars,
        )
        .unwrap_err();
        assert_eq!(e.error, ErrorName::QueryEvaluationError);
        let e = eval("{% [0..100000000] %}", json!({}), &vars).unwrap_err();
        assert!(e.cause.contains("D2014"), "{}", e.cause);
    }

    #[test]
    fn names_outside_strings() {
        assert_eq!(
            mentioned_names("$a & '$b' & \"$c\" & $d.e & $f($g)"),
            vec!["a", "d", "f", "g"]
        );
    }
}
