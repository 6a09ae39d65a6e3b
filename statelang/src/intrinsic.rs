//! Intrinsic functions (`States.Format(...)` and the 17 others): a parser for the call
//! syntax and an evaluator with AWS's argument checks and limits.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::error::StatesError;
use crate::eval::Env;
use crate::path::Path;
use crate::scope::Scope;

/// The 18 intrinsic functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

const FUNCTIONS: &[(&str, Function)] = &[
    ("States.Format", Function::Format),
    ("States.StringToJson", Function::StringToJson),
    ("States.JsonToString", Function::JsonToString),
    ("States.Array", Function::Array),
    ("States.ArrayPartition", Function::ArrayPartition),
    ("States.ArrayContains", Function::ArrayContains),
    ("States.ArrayRange", Function::ArrayRange),
    ("States.ArrayGetItem", Function::ArrayGetItem),
    ("States.ArrayLength", Function::ArrayLength),
    ("States.ArrayUnique", Function::ArrayUnique),
    ("States.Base64Encode", Function::Base64Encode),
    ("States.Base64Decode", Function::Base64Decode),
    ("States.Hash", Function::Hash),
    ("States.JsonMerge", Function::JsonMerge),
    ("States.MathRandom", Function::MathRandom),
    ("States.MathAdd", Function::MathAdd),
    ("States.StringSplit", Function::StringSplit),
    ("States.UUID", Function::Uuid),
];

impl Function {
    pub fn name(self) -> &'static str {
        FUNCTIONS
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("States.Format")
    }

    pub fn from_name(name: &str) -> Option<Function> {
        FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// Allowed argument counts (min, max).
    fn arity(self) -> (usize, usize) {
        use Function::*;
        match self {
            Format => (1, usize::MAX),
            Array => (0, usize::MAX),
            StringToJson | JsonToString | ArrayLength | ArrayUnique | Base64Encode
            | Base64Decode => (1, 1),
            ArrayPartition | ArrayContains | ArrayGetItem | Hash | MathAdd | StringSplit => (2, 2),
            ArrayRange | JsonMerge => (3, 3),
            MathRandom => (2, 3),
            Uuid => (0, 0),
        }
    }
}

/// One argument of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A quoted string; `raw` keeps the escapes, which `States.Format` needs to tell
    /// `\{` from a placeholder.
    String {
        value: String,
        raw: String,
    },
    Number(Number),
    Bool(bool),
    Null,
    Path(Path),
    Call(Call),
}

/// A parsed intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub function: Function,
    pub args: Vec<Arg>,
}

/// Deepest nesting of calls inside calls we accept (AWS documents 10).
pub const MAX_NESTING: usize = 10;
/// Longest input string for Base64Encode/Base64Decode/Hash.
pub const MAX_STRING_INPUT: usize = 10_000;
/// Most elements `States.ArrayRange` may produce.
pub const MAX_RANGE_ELEMENTS: usize = 1000;

/// Whether a payload-template value looks like an intrinsic call (rather than a path).
pub fn looks_like_call(text: &str) -> bool {
    text.trim_start().starts_with("States.")
}

/// Parses an intrinsic call such as `States.Format('Hi {}', $.name)`.
pub fn parse(text: &str) -> Result<Call, String> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    parser.skip_ws();
    let call = parser.call(0)?;
    parser.skip_ws();
    if parser.pos != parser.chars.len() {
        return Err(format!(
            "unexpected text after the closing ')' at character {}",
            parser.pos + 1
        ));
    }
    Ok(call)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn call(&mut self, depth: usize) -> Result<Call, String> {
        if depth >= MAX_NESTING {
            return Err(format!(
                "intrinsic functions are nested more than {MAX_NESTING} deep"
            ));
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let function = Function::from_name(&name)
            .ok_or_else(|| format!("'{name}' is not an intrinsic function"))?;
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                args.push(self.arg(depth)?);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) => {
                        return Err(format!(
                            "expected ',' or ')' in {name} at character {}, found '{c}'",
                            self.pos + 1
                        ));
                    }
                    None => return Err(format!("missing ')' to close {name}")),
                }
            }
        }
        let call = Call { function, args };
        check_static(&call)?;
        Ok(call)
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        match self.peek() {
            Some('\'') => self.string(),
            Some('$') => self.path(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let rest: String = self.chars[self.pos..].iter().take(6).collect();
                for (word, arg) in [
                    ("true", Arg::Bool(true)),
                    ("false", Arg::Bool(false)),
                    ("null", Arg::Null),
                ] {
                    if rest.starts_with(word)
                        && !self
                            .chars
                            .get(self.pos + word.len())
                            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.')
                    {
                        self.pos += word.len();
                        return Ok(arg);
                    }
                }
                Ok(Arg::Call(self.call(depth + 1)?))
            }
            Some(c) => Err(format!(
                "unexpected '{c}' at character {} where an argument should be",
                self.pos + 1
            )),
            None => Err("the call ends where an argument should be".into()),
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.pos += 1;
        let mut value = String::new();
        let mut raw = String::new();
        loop {
            let c = self.peek().ok_or("unterminated string literal")?;
            self.pos += 1;
            match c {
                '\\' => {
                    let escaped = self.peek().ok_or("unterminated escape in string literal")?;
                    self.pos += 1;
                    if !matches!(escaped, '\'' | '{' | '}' | '\\') {
                        return Err(format!(
                            "invalid escape '\\{escaped}': only \\', \\{{, \\}} and \\\\ are allowed"
                        ));
                    }
                    raw.push('\\');
                    raw.push(escaped);
                    value.push(escaped);
                }
                '\'' => return Ok(Arg::String { value, raw }),
                c => {
                    raw.push(c);
                    value.push(c);
                }
            }
        }
    }

    fn path(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            if let Some(q) = quote {
                if c == '\\' {
                    self.pos += 1;
                } else if c == q {
                    quote = None;
                }
            } else {
                match c {
                    '\'' | '"' if depth > 0 => quote = Some(c),
                    '[' | '(' => depth += 1,
                    ']' | ')' if depth > 0 => depth -= 1,
                    ',' | ')' if depth == 0 => break,
                    c if c.is_whitespace() && depth == 0 => break,
                    _ => {}
                }
            }
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos.min(self.chars.len())]
            .iter()
            .collect();
        Path::parse(&text).map(Arg::Path).map_err(|e| e.0)
    }

    fn number(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Number(n)) => Ok(Arg::Number(n)),
            _ => Err(format!("'{text}' is not a number")),
        }
    }
}

/// Checks what can be checked before run time: argument counts, and literal arguments
/// of the wrong type.
fn check_static(call: &Call) -> Result<(), String> {
    let (min, max) = call.function.arity();
    let n = call.args.len();
    if n < min || n > max {
        let expected = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(format!(
            "{} takes {expected} argument(s), got {n}",
            call.function.name()
        ));
    }
    if call.function == Function::Format {
        let Some(first) = call.args.first() else {
            return Err("States.Format needs a format string".into());
        };
        // A placeholder count that does not match the arguments is a run-time
        // States.IntrinsicFailure, not a definition error: AWS's own documentation shows
        // such a call, so definitions written for AWS may contain one.
        if !matches!(first, Arg::String { .. } | Arg::Path(_) | Arg::Call(_)) {
            return Err("the first argument of States.Format must be a string".into());
        }
    }
    if call.function == Function::JsonMerge
        && let Some(Arg::Bool(true)) = call.args.get(2)
    {
        return Err(
            "States.JsonMerge only supports a shallow merge: its third argument must be false"
                .into(),
        );
    }
    if call.function == Function::Hash
        && let Some(Arg::String { value, .. }) = call.args.get(1)
        && !HASH_ALGORITHMS.contains(&value.as_str())
    {
        return Err(format!(
            "'{value}' is not a States.Hash algorithm (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"
        ));
    }
    Ok(())
}

const HASH_ALGORITHMS: &[&str] = &["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"];

/// Fills the `{}` placeholders of `template` with `args`, in one pass.
fn render_format(template: &str, escapes: bool, args: &[Cow<'_, Value>]) -> Result<String, String> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(template.len() + 16 * args.len());
    let mut used = 0usize;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if escapes => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                match args.get(used).map(|v| v.as_ref()) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Number(n)) => {
                        let _ = write!(out, "{n}");
                    }
                    Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                    Some(Value::Null) => out.push_str("null"),
                    Some(_) => {
                        return Err(
                            "format arguments must be strings, numbers, booleans or null".into(),
                        );
                    }
                    None => {}
                }
                used += 1;
            }
            c => out.push(c),
        }
    }
    if used != args.len() {
        return Err(format!(
            "the format string has {used} placeholder(s) but {} argument(s) were given",
            args.len()
        ));
    }
    Ok(out)
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.function.name())?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match arg {
                Arg::String { raw, .. } => write!(f, "'{raw}'")?,
                Arg::Number(n) => write!(f, "{n}")?,
                Arg::Bool(b) => write!(f, "{b}")?,
                Arg::Null => f.write_str("null")?,
                Arg::Path(p) => write!(f, "{p}")?,
                Arg::Call(c) => write!(f, "{c}")?,
            }
        }
        f.write_str(")")
    }
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/// Evaluates a call against the state's data and the context object.
pub fn evaluate(
    call: &Call,
    input: &Value,
    scope: &Scope<'_>,
    env: &mut dyn Env,
) -> Result<Value, StatesError> {
    let name = call.function.name();
    // `Call` is public, so a hand-built one may skip the parser's checks: check again
    // rather than index out of bounds below.
    let (min, max) = call.function.arity();
    if call.args.len() < min || call.args.len() > max {
        return Err(StatesError::intrinsic(format!(
            "Invalid arguments in {name}: wrong number of arguments ({})",
            call.args.len()
        )));
    }
    let mut values = Vec::with_capacity(call.args.len());
    for arg in &call.args {
        values.push(match arg {
            Arg::String { value, .. } => Cow::Owned(Value::String(value.clone())),
            Arg::Number(n) => Cow::Owned(Value::Number(n.clone())),
            Arg::Bool(b) => Cow::Owned(Value::Bool(*b)),
            Arg::Null => Cow::Owned(Value::Null),
            Arg::Path(path) => match path.select(input, scope) {
                Some(v) => v,
                None => {
                    return Err(StatesError::runtime(format!(
                        "The JsonPath argument for the field '{path}' in {name} could not be found in the input"
                    )));
                }
            },
            Arg::Call(inner) => Cow::Owned(evaluate(inner, input, scope, env)?),
        });
    }
    let fail = |msg: String| StatesError::intrinsic(format!("Invalid arguments in {name}: {msg}"));
    use Function::*;
    match call.function {
        Format => {
            let (template, escapes) = match (&call.args[0], &*values[0]) {
                (Arg::String { raw, .. }, _) => (raw.as_str(), true),
                (_, Value::String(s)) => (s.as_str(), false),
                _ => return Err(fail("the format string must be a string".into())),
            };
            render_format(template, escapes, &values[1..])
                .map(Value::String)
                .map_err(fail)
        }
        StringToJson => {
            let s = string_arg(&values[0], "the argument", &fail)?;
            serde_json::from_str(s).map_err(|e| fail(format!("the string is not valid JSON: {e}")))
        }
        JsonToString => serde_json::to_string(&*values[0])
            .map(Value::String)
            .map_err(|e| fail(e.to_string())),
        Array => Ok(Value::Array(
            values.into_iter().map(Cow::into_owned).collect(),
        )),
        ArrayPartition => {
            let array = array_arg(&values[0], &fail)?;
            let size = int_arg(&values[1], "the chunk size", &fail)?;
            if size <= 0 {
                return Err(fail("the chunk size must be a positive integer".into()));
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            Ok(Value::Array(
                array
                    .chunks(size)
                    .map(|chunk| Value::Array(chunk.to_vec()))
                    .collect(),
            ))
        }
        ArrayContains => {
            let array = array_arg(&values[0], &fail)?;
            Ok(Value::Bool(array.iter().any(|v| json_equal(v, &values[1]))))
        }
        ArrayRange => {
            let start = int_arg(&values[0], "the start", &fail)?;
            let end = int_arg(&values[1], "the end", &fail)?;
            let step = int_arg(&values[2], "the step", &fail)?;
            if step == 0 {
                return Err(fail("the step must not be 0".into()));
            }
            let count = if (step > 0 && start > end) || (step < 0 && start < end) {
                0
            } else {
                (i128::from(end) - i128::from(start)) / i128::from(step) + 1
            };
            if count > MAX_RANGE_ELEMENTS as i128 {
                return Err(fail(format!(
                    "the range has {count} elements; at most {MAX_RANGE_ELEMENTS} are allowed"
                )));
            }
            let mut out = Vec::new();
            let mut current = i128::from(start);
            for _ in 0..count {
                out.push(Value::from(i64::try_from(current).unwrap_or(i64::MAX)));
                current += i128::from(step);
            }
            Ok(Value::Array(out))
        }
        ArrayGetItem => {
            let array = array_arg(&values[0], &fail)?;
            let index = int_arg(&values[1], "the index", &fail)?;
            usize::try_from(index)
                .ok()
                .and_then(|i| array.get(i))
                .cloned()
                .ok_or_else(|| {
                    fail(format!(
                        "index {index} is out of bounds for an array of length {}",
                        array.len()
                    ))
                })
        }
        ArrayLength => Ok(Value::from(array_arg(&values[0], &fail)?.len())),
        ArrayUnique => {
            let array = array_arg(&values[0], &fail)?;
            let mut out: Vec<Value> = Vec::new();
            for v in array {
                if !out.iter().any(|seen| json_equal(seen, v)) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        Base64Encode => {
            let s = string_arg(&values[0], "the argument", &fail)?;
            check_len(s, &fail)?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
            ))
        }
        Base64Decode => {
            let s = string_arg(&values[0], "the argument", &fail)?;
            check_len(s, &fail)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| fail(format!("the string is not valid base64: {e}")))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| fail("the decoded data is not UTF-8 text".into()))
        }
        Hash => {
            let data = match &*values[0] {
                Value::String(s) => s.clone(),
                Value::Null => return Err(fail("the data to hash must not be null".into())),
                other => other.to_string(),
            };
            check_len(&data, &fail)?;
            let algorithm = string_arg(&values[1], "the algorithm", &fail)?;
            let digest = hash(algorithm, data.as_bytes()).ok_or_else(|| {
                fail(format!(
                    "'{algorithm}' is not a supported algorithm (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"
                ))
            })?;
            Ok(Value::String(digest))
        }
        JsonMerge => {
            let (Value::Object(left), Value::Object(right)) = (&*values[0], &*values[1]) else {
                return Err(fail("both values to merge must be JSON objects".into()));
            };
            match &*values[2] {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err(fail(
                        "deep merge is not supported: the third argument must be false".into(),
                    ));
                }
                _ => return Err(fail("the third argument must be the boolean false".into())),
            }
            let mut merged: Map<String, Value> = left.clone();
            for (k, v) in right {
                merged.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(merged))
        }
        MathRandom => {
            let start = int_arg(&values[0], "the start", &fail)?;
            let end = int_arg(&values[1], "the end", &fail)?;
            if end <= start {
                return Err(fail("the end must be greater than the start".into()));
            }
            let span = i128::from(end) - i128::from(start);
            let offset = match values.get(2) {
                Some(seed) => {
                    let seed = int_arg(seed, "the seed", &fail)?;
                    let bound = i32::try_from(span).map_err(|_| {
                        fail("with a seed, end - start must fit in a 32-bit integer".into())
                    })?;
                    i128::from(JavaRandom::new(seed).next_int(bound))
                }
                None => {
                    let r = env.random().clamp(0.0, 1.0);
                    // span fits in f64 well enough for a random pick; clamp to stay in range.
                    let pick = (r * span as f64).floor() as i128;
                    pick.clamp(0, span - 1)
                }
            };
            Ok(Value::from(
                i64::try_from(i128::from(start) + offset).unwrap_or(start),
            ))
        }
        MathAdd => {
            let a = int_arg(&values[0], "the first operand", &fail)?;
            let b = int_arg(&values[1], "the second operand", &fail)?;
            for v in [a, b] {
                if i32::try_from(v).is_err() {
                    return Err(fail(format!(
                        "{v} is outside the 32-bit integer range States.MathAdd accepts"
                    )));
                }
            }
            Ok(Value::from(a + b))
        }
        StringSplit => {
            let s = string_arg(&values[0], "the string", &fail)?;
            let delimiters = string_arg(&values[1], "the delimiter", &fail)?;
            let parts: Vec<Value> = s
                .split(|c: char| delimiters.contains(c))
                .filter(|part| !part.is_empty())
                .map(|part| Value::String(part.to_owned()))
                .collect();
            Ok(Value::Array(parts))
        }
        Uuid => Ok(Value::String(env.uuid())),
    }
}

fn string_arg<'v>(
    value: &'v Value,
    what: &str,
    fail: &dyn Fn(String) -> StatesError,
) -> Result<&'v str, StatesError> {
    value
        .as_str()
        .ok_or_else(|| fail(format!("{what} must be a string")))
}

fn array_arg<'v>(
    value: &'v Value,
    fail: &dyn Fn(String) -> StatesError,
) -> Result<&'v Vec<Value>, StatesError> {
    value
        .as_array()
        .ok_or_else(|| fail("the first argument must be an array".into()))
}

fn int_arg(
    value: &Value,
    what: &str,
    fail: &dyn Fn(String) -> StatesError,
) -> Result<i64, StatesError> {
    if let Some(i) = value.as_i64() {
        return Ok(i);
    }
    if let Some(f) = value.as_f64()
        && f.fract() == 0.0
        && f.abs() < 9.0e15
    {
        return Ok(f as i64);
    }
    Err(fail(format!("{what} must be an integer")))
}

fn check_len(s: &str, fail: &dyn Fn(String) -> StatesError) -> Result<(), StatesError> {
    let len = s.chars().count();
    if len > MAX_STRING_INPUT {
        return Err(fail(format!(
            "the input has {len} characters; at most {MAX_STRING_INPUT} are allowed"
        )));
    }
    Ok(())
}

/// JSON equality where numbers compare by value (`1` equals `1.0`), as Jackson does.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

pub(crate) fn hash(algorithm: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest as _;
    Some(match algorithm {
        "MD5" => hex::encode(md5::Md5::digest(data)),
        "SHA-1" => hex::encode(sha1::Sha1::digest(data)),
        "SHA-256" => hex::encode(sha2::Sha256::digest(data)),
        "SHA-384" => hex::encode(sha2::Sha384::digest(data)),
        "SHA-512" => hex::encode(sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// `java.util.Random`, so a seeded `States.MathRandom` is reproducible.
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> (48 - bits)) as i32
    }

    /// `nextInt(bound)` for `bound > 0`.
    fn next_int(&mut self, bound: i32) -> i32 {
        if bound <= 0 {
            return 0;
        }
        if bound & bound.wrapping_neg() == bound {
            return ((i64::from(bound) * i64::from(self.next(31))) >> 31) as i32;
        }
        loop {
            let bits = self.next(31);
            let val = bits % bound;
            if bits.wrapping_sub(val).wrapping_add(bound - 1) >= 0 {
                return val;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_random_matches_the_jdk() {
        // The well-known first values of `new java.util.Random(seed).nextInt()`.
        assert_eq!(JavaRandom::new(0).next(32), -1_155_484_576);
        assert_eq!(JavaRandom::new(42).next(32), -1_170_105_035);
    }

    #[test]
    fn parse_nested_calls_and_escapes() {
        let call = parse(r"States.Format('a \{ {} \\', States.Array(1, 'x'))").unwrap();
        assert_eq!(call.function, Function::Format);
        assert!(matches!(call.args[1], Arg::Call(_)));
        assert!(parse("States.Nope()").is_err());
        assert!(parse("States.Format('{}'").is_err());
        assert!(parse("States.UUID(1)").is_err());
    }
}
