//! EventBridge event patterns: parsed once into a typed tree, then matched against events.
//!
//! The language is AWS's (see "Amazon EventBridge event patterns" and "Content filtering in
//! Amazon EventBridge event patterns"): a pattern is a JSON object whose leaves are arrays of
//! values (OR); every field named must match (AND) and fields not named are ignored. A leaf
//! array holds exact values (strings, numbers compared by value, `true`/`false`, `null`) and
//! operator objects: `prefix`, `suffix` (each also `{"equals-ignore-case": ...}`),
//! `equals-ignore-case`, `wildcard`, `anything-but` (a value, a list, or `prefix`, `suffix`,
//! `equals-ignore-case`, `wildcard`), `numeric`, `exists`, `cidr`. `$or` takes an array of at
//! least two sub-patterns, any of which must match. An event array matches a pattern value when
//! any of its elements does; objects inside event arrays are matched element by element, so two
//! fields of one sub-pattern never match across different elements of the same array (AWS's
//! "array-consistent" matching).
//!
//! Invalid patterns are refused with AWS's `InvalidEventPatternException` wording (the reasons
//! are the ones AWS's Event Ruler gives), followed by the dotted path of the offending field.
//!
//! Deliberate choices where AWS is silent or we differ:
//! - Field names are taken literally: `{"a.b": [1]}` does not match `{"a": {"b": 1}}` (AWS's
//!   Ruler joins path steps with dots and says this "should not be relied upon").
//! - `exists: false` inside an array of objects is satisfied by any element that lacks the
//!   field, like every other condition of that sub-pattern (Ruler checks absence across the
//!   whole event).
//! - `anything-but` matches every leaf value that is not of the excluded kind: a string
//!   `anything-but` matches numbers, booleans and `null`, as Ruler's byte-level comparison does.
//!   It never matches an absent field.
//! - Numeric comparisons use `f64`; AWS's limits are enforced on pattern numbers (between
//!   -5e9 and 5e9, at most six decimals) and event numbers outside that range never match a
//!   `numeric` operator. Exact number values compare by value, without the range limit.
//! - An exact string that looks like an IP address is compared as a string (Ruler turns it into
//!   a one-address range).
//! - Ruler's complexity limit on many wildcard rules is not enforced.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

mod cidr;
mod index;
mod wildcard;

pub use index::PatternIndex;

use cidr::Network;
use wildcard::Wildcard;

/// The longest pattern text AWS's PutRule accepts (`EventPattern`, 4096 characters).
pub const MAX_PATTERN_LENGTH: usize = 4096;

/// AWS's limit on numbers in `numeric` and `anything-but` operators.
const NUMERIC_LIMIT: f64 = 5e9;
const MAX_DECIMALS: i64 = 6;

/// Names that may not be field names inside `$or` (Ruler's reserved words).
const RESERVED_IN_OR: &[&str] = &[
    "exact",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// A compiled EventBridge event pattern.
#[derive(Debug, Clone)]
pub struct EventPattern {
    source: Value,
    root: ObjectPattern,
}

/// Why a pattern is invalid; `message` reads like AWS's InvalidEventPatternException message
/// ("Event pattern is not valid. Reason: ..."), naming the offending field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    pub message: String,
}

impl PatternError {
    fn new(reason: &str, path: &[String]) -> PatternError {
        let mut message = format!("Event pattern is not valid. Reason: {reason}");
        if !path.is_empty() {
            let _ = write!(message, " at field \"{}\"", path.join("."));
        }
        PatternError { message }
    }
}

type Parsed<T> = Result<T, PatternError>;

/// An object level of a pattern: named fields (AND) and `$or` groups (each: any alternative).
#[derive(Debug, Clone)]
pub(crate) struct ObjectPattern {
    pub(crate) fields: Vec<(String, FieldPattern)>,
    pub(crate) any_of: Vec<Vec<ObjectPattern>>,
}

#[derive(Debug, Clone)]
pub(crate) enum FieldPattern {
    Nested(ObjectPattern),
    /// A leaf array: matches when any matcher accepts any leaf value of the field.
    Values(Vec<Matcher>),
}

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
    Prefix(String),
    /// Lowercased prefix.
    PrefixIgnoreCase(String),
    Suffix(String),
    /// Lowercased suffix.
    SuffixIgnoreCase(String),
    /// Lowercased value.
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(Range),
    Exists(bool),
    Cidr(Network),
}

#[derive(Debug, Clone)]
pub(crate) enum AnythingBut {
    Strings(Vec<String>),
    Numbers(Vec<Number>),
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    /// Lowercased values.
    IgnoreCase(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

/// A numeric interval; each bound is `(value, open)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    lower: (f64, bool),
    upper: (f64, bool),
}

impl EventPattern {
    /// Parses and validates a pattern's JSON text.
    pub fn parse(text: &str) -> Result<EventPattern, PatternError> {
        if text.chars().count() > MAX_PATTERN_LENGTH {
            return Err(PatternError::new(
                &format!("Event pattern is longer than {MAX_PATTERN_LENGTH} characters"),
                &[],
            ));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| PatternError::new(&format!("Filter is not valid JSON: {e}"), &[]))?;
        EventPattern::from_value(&value)
    }

    /// Validates an already parsed pattern.
    pub fn from_value(value: &Value) -> Result<EventPattern, PatternError> {
        let Value::Object(map) = value else {
            return Err(PatternError::new("Filter is not an object", &[]));
        };
        let mut path = Vec::new();
        let root = parse_object(map, &mut path, false)?;
        Ok(EventPattern {
            source: value.clone(),
            root,
        })
    }

    /// Whether `event` (the full EventBridge envelope) matches.
    pub fn matches(&self, event: &Value) -> bool {
        match event {
            Value::Object(map) => match_object(&self.root, Some(map)),
            _ => match_object(&self.root, None),
        }
    }

    /// The original pattern JSON.
    pub fn as_value(&self) -> &Value {
        &self.source
    }

    pub(crate) fn root(&self) -> &ObjectPattern {
        &self.root
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

fn parse_object(
    map: &Map<String, Value>,
    path: &mut Vec<String>,
    in_or: bool,
) -> Parsed<ObjectPattern> {
    if map.is_empty() {
        return Err(PatternError::new("Empty objects are not allowed", path));
    }
    let mut out = ObjectPattern {
        fields: Vec::new(),
        any_of: Vec::new(),
    };
    for (name, value) in map {
        if name == "$or" {
            out.any_of.push(parse_or(value, path)?);
            continue;
        }
        if in_or && RESERVED_IN_OR.contains(&name.as_str()) {
            return Err(PatternError::new(
                &format!("{name} is Ruler reserved fieldName which cannot be used inside $or."),
                path,
            ));
        }
        path.push(name.clone());
        let field = match value {
            Value::Object(inner) => FieldPattern::Nested(parse_object(inner, path, in_or)?),
            Value::Array(items) => FieldPattern::Values(parse_values(items, path)?),
            _ => {
                path.pop();
                return Err(PatternError::new(
                    &format!("\"{name}\" must be an object or an array"),
                    path,
                ));
            }
        };
        path.pop();
        out.fields.push((name.clone(), field));
    }
    Ok(out)
}

fn parse_or(value: &Value, path: &mut Vec<String>) -> Parsed<Vec<ObjectPattern>> {
    let Value::Array(items) = value else {
        return Err(PatternError::new(
            "It must be an Array followed with $or.",
            path,
        ));
    };
    let mut alternatives = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(map) = item else {
            return Err(PatternError::new(
                "Only JSON object is allowed in array of $or relationship.",
                path,
            ));
        };
        alternatives.push(parse_object(map, path, true)?);
    }
    if alternatives.len() < 2 {
        return Err(PatternError::new(
            "There must have at least 2 Objects in $or relationship.",
            path,
        ));
    }
    Ok(alternatives)
}

fn parse_values(items: &[Value], path: &[String]) -> Parsed<Vec<Matcher>> {
    if items.is_empty() {
        return Err(PatternError::new("Empty arrays are not allowed", path));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(Matcher::String(s.clone())),
            Value::Number(n) => Ok(Matcher::Number(n.clone())),
            Value::Bool(b) => Ok(Matcher::Bool(*b)),
            Value::Null => Ok(Matcher::Null),
            Value::Object(op) => parse_operator(op, path),
            Value::Array(_) => Err(PatternError::new(
                "Match value must be String, number, true, false, or null",
                path,
            )),
        })
        .collect()
}

fn only_one_key(op: &Map<String, Value>, path: &[String]) -> Parsed<()> {
    if op.len() > 1 {
        Err(PatternError::new(
            "Only one key allowed in match expression",
            path,
        ))
    } else {
        Ok(())
    }
}

fn parse_operator(op: &Map<String, Value>, path: &[String]) -> Parsed<Matcher> {
    let Some((name, operand)) = op.iter().next() else {
        return Err(PatternError::new("Match expression name not found", path));
    };
    let err = |reason: &str| Err(PatternError::new(reason, path));
    match name.as_str() {
        "prefix" | "suffix" => {
            let is_prefix = name == "prefix";
            let matcher = match operand {
                Value::String(s) if is_prefix => Matcher::Prefix(s.clone()),
                Value::String(s) => Matcher::Suffix(s.clone()),
                Value::Object(inner) => {
                    let folded = parse_ignore_case_affix(inner, is_prefix, path)?;
                    if is_prefix {
                        Matcher::PrefixIgnoreCase(folded)
                    } else {
                        Matcher::SuffixIgnoreCase(folded)
                    }
                }
                _ => return err(&format!("{name} match pattern must be a string")),
            };
            only_one_key(op, path)?;
            Ok(matcher)
        }
        "equals-ignore-case" => {
            let Value::String(s) = operand else {
                return err("equals-ignore-case match pattern must be a string");
            };
            only_one_key(op, path)?;
            Ok(Matcher::EqualsIgnoreCase(fold(s)))
        }
        "wildcard" => {
            let Value::String(s) = operand else {
                return err("wildcard match pattern must be a string");
            };
            let wildcard = Wildcard::parse(s).map_err(|reason| PatternError::new(&reason, path))?;
            only_one_key(op, path)?;
            Ok(Matcher::Wildcard(wildcard))
        }
        "numeric" => {
            let Value::Array(terms) = operand else {
                return err("Value of numeric must be an array.");
            };
            let range = parse_numeric(terms, path)?;
            if op.len() > 1 {
                return err("Too many elements in numeric expression");
            }
            Ok(Matcher::Numeric(range))
        }
        "anything-but" => {
            let matcher = parse_anything_but(operand, path)?;
            if op.len() > 1 {
                return err("Too many elements in numeric expression");
            }
            Ok(Matcher::AnythingBut(matcher))
        }
        "exists" => {
            let Value::Bool(b) = operand else {
                return err("exists match pattern must be either true or false.");
            };
            only_one_key(op, path)?;
            Ok(Matcher::Exists(*b))
        }
        "cidr" => {
            let Value::String(s) = operand else {
                return err("cidr match pattern must be a string");
            };
            let network = Network::parse(s).map_err(|reason| PatternError::new(&reason, path))?;
            only_one_key(op, path)?;
            Ok(Matcher::Cidr(network))
        }
        other => err(&format!("Unrecognized match type {other}")),
    }
}

/// `{"equals-ignore-case": "..."}` inside `prefix` or `suffix`; returns the lowercased operand.
fn parse_ignore_case_affix(
    inner: &Map<String, Value>,
    is_prefix: bool,
    path: &[String],
) -> Parsed<String> {
    let (kind, upper) = if is_prefix {
        ("prefix", "Prefix")
    } else {
        ("suffix", "Suffix")
    };
    let Some((name, value)) = inner.iter().next() else {
        return Err(PatternError::new(
            &format!("{upper} expression name not found"),
            path,
        ));
    };
    if name != "equals-ignore-case" {
        return Err(PatternError::new(
            &format!("Unsupported {kind} pattern: {name}"),
            path,
        ));
    }
    let Value::String(s) = value else {
        return Err(PatternError::new(
            "equals-ignore-case match pattern must be a string",
            path,
        ));
    };
    only_one_key(inner, path)?;
    Ok(fold(s))
}

fn parse_anything_but(operand: &Value, path: &[String]) -> Parsed<AnythingBut> {
    let err = |reason: &str| Err(PatternError::new(reason, path));
    let (kind, operand) = match operand {
        Value::Object(inner) => {
            let Some((name, value)) = inner.iter().next() else {
                return err("Anything-But expression name not found");
            };
            if !matches!(
                name.as_str(),
                "equals-ignore-case" | "prefix" | "suffix" | "wildcard"
            ) {
                return err(&format!("Unsupported anything-but pattern: {name}"));
            }
            if inner.len() > 1 {
                return err("Too many elements in numeric expression");
            }
            (Some(name.as_str()), value)
        }
        other => (None, other),
    };
    if !matches!(
        operand,
        Value::Array(_) | Value::String(_) | Value::Number(_)
    ) {
        return err("Value of anything-but must be an array or single string/number value.");
    }
    let Some(kind) = kind else {
        return match operand {
            Value::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
            Value::Number(n) => {
                check_number(n, path)?;
                Ok(AnythingBut::Numbers(vec![n.clone()]))
            }
            Value::Array(items) => {
                let (mut strings, mut numbers) = (Vec::new(), Vec::new());
                for item in items {
                    match item {
                        Value::String(s) => strings.push(s.clone()),
                        Value::Number(n) => {
                            check_number(n, path)?;
                            numbers.push(n.clone());
                        }
                        _ => {
                            return err(
                                "Inside anything but list, start|null|boolean is not supported.",
                            );
                        }
                    }
                }
                match (strings.is_empty(), numbers.is_empty()) {
                    (false, true) => Ok(AnythingBut::Strings(strings)),
                    (true, false) => Ok(AnythingBut::Numbers(numbers)),
                    _ => err(
                        "Inside anything but list, either all values are number or string, mixed type is not supported",
                    ),
                }
            }
            _ => err("Value of anything-but must be an array or single string/number value."),
        };
    };
    let single;
    let items: &[Value] = match operand {
        Value::Array(items) => items,
        other => {
            single = [other.clone()];
            &single
        }
    };
    let mut texts = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(s) = item else {
            return err(match kind {
                "equals-ignore-case" => {
                    "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
                }
                "wildcard" => "wildcard match pattern must be a string",
                _ => "prefix/suffix match pattern must be a string",
            });
        };
        if matches!(kind, "prefix" | "suffix") && s.is_empty() {
            return err("Null prefix/suffix not allowed");
        }
        texts.push(s.clone());
    }
    Ok(match kind {
        "prefix" => AnythingBut::Prefixes(texts),
        "suffix" => AnythingBut::Suffixes(texts),
        "equals-ignore-case" => AnythingBut::IgnoreCase(texts.iter().map(|s| fold(s)).collect()),
        _ => AnythingBut::Wildcards(
            texts
                .iter()
                .map(|s| Wildcard::parse(s).map_err(|reason| PatternError::new(&reason, path)))
                .collect::<Parsed<_>>()?,
        ),
    })
}

fn term_text(term: Option<&Value>) -> String {
    match term {
        None => "]".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `["op", n]` or `[">"|">=", n, "<"|"<=", m]`, checked in the order AWS's Ruler checks.
fn parse_numeric(terms: &[Value], path: &[String]) -> Parsed<Range> {
    let err = |reason: &str| Err(PatternError::new(reason, path));
    let mut terms = terms.iter();
    let first = terms.next();
    let Some(Value::String(op)) = first else {
        return err(&format!(
            "Invalid member in numeric match: {}",
            term_text(first)
        ));
    };
    if !matches!(op.as_str(), "=" | ">" | ">=" | "<" | "<=") {
        return err(&format!("Unrecognized numeric range operator: {op}"));
    }
    let Some(Value::Number(value)) = terms.next() else {
        return err(&format!("Value of {op} must be numeric"));
    };
    let v = value.as_f64().unwrap_or(f64::NAN);
    let range = match op.as_str() {
        "=" => {
            if terms.next().is_some() {
                return err("Too many elements in numeric expression");
            }
            check_number(value, path)?;
            return Ok(Range {
                lower: (v, false),
                upper: (v, false),
            });
        }
        "<" | "<=" => {
            if terms.next().is_some() {
                return err("Too many elements in numeric expression");
            }
            Range {
                lower: (-NUMERIC_LIMIT, false),
                upper: (v, op == "<"),
            }
        }
        _ => {
            let lower = (v, op == ">");
            match terms.next() {
                None => Range {
                    lower,
                    upper: (NUMERIC_LIMIT, false),
                },
                Some(Value::String(op2)) => {
                    if !matches!(op2.as_str(), "<" | "<=") {
                        return err(&format!("Bad numeric range operator: {op2}"));
                    }
                    let Some(Value::Number(top)) = terms.next() else {
                        return err(&format!("Value of {op2} must be numeric"));
                    };
                    if terms.next().is_some() {
                        return err("Too many terms in numeric range expression");
                    }
                    check_number(top, path)?;
                    Range {
                        lower,
                        upper: (top.as_f64().unwrap_or(f64::NAN), op2 == "<"),
                    }
                }
                Some(other) => {
                    return err(&format!(
                        "Bad value in numeric range: {}",
                        term_text(Some(other))
                    ));
                }
            }
        }
    };
    // Ruler's order: the bounds' order first, then each bound's range and precision.
    if range.lower.0.is_nan() || range.upper.0.is_nan() || range.lower.0 >= range.upper.0 {
        return err("Bottom must be less than top");
    }
    check_number(value, path)?;
    Ok(range)
}

/// AWS's limits on a number used in `numeric` or `anything-but`.
fn check_number(n: &Number, path: &[String]) -> Parsed<()> {
    let text = n.to_string();
    if decimals(&text) > MAX_DECIMALS {
        return Err(PatternError::new(
            &format!("Only values upto 6 decimals are supported: {text}"),
            path,
        ));
    }
    let v = n.as_f64().unwrap_or(f64::INFINITY);
    if !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&v) {
        return Err(PatternError::new(
            "Value must be between -5000000000 and 5000000000, inclusive",
            path,
        ));
    }
    Ok(())
}

/// Digits after the decimal point of a JSON number's text (`1.25` → 2, `1e-7` → 7, `3.018e2` → 1).
fn decimals(text: &str) -> i64 {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i64>().unwrap_or(0)),
        None => (text, 0),
    };
    let fraction = mantissa
        .split_once('.')
        .map(|(_, f)| f.trim_end_matches('0').len())
        .unwrap_or(0);
    (i64::try_from(fraction).unwrap_or(i64::MAX) - exponent).max(0)
}

/// Case folding for the `equals-ignore-case` family.
fn fold(s: &str) -> String {
    s.to_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Matching

fn match_object(pattern: &ObjectPattern, object: Option<&Map<String, Value>>) -> bool {
    pattern
        .fields
        .iter()
        .all(|(name, field)| match_field(field, object.and_then(|o| o.get(name))))
        && pattern
            .any_of
            .iter()
            .all(|alternatives| alternatives.iter().any(|alt| match_object(alt, object)))
}

fn match_field(field: &FieldPattern, value: Option<&Value>) -> bool {
    match field {
        FieldPattern::Nested(inner) => match value {
            Some(Value::Object(map)) => match_object(inner, Some(map)),
            Some(Value::Array(items)) => {
                let mut saw_object = false;
                let matched = any_object(items, &mut |map| {
                    saw_object = true;
                    match_object(inner, Some(map))
                });
                // An array without objects holds no fields: the sub-pattern sees them absent.
                matched || (!saw_object && match_object(inner, None))
            }
            _ => match_object(inner, None),
        },
        FieldPattern::Values(matchers) => {
            let mut saw_leaf = false;
            let matched = value.is_some_and(|v| {
                any_leaf(v, &mut |leaf| {
                    saw_leaf = true;
                    matchers.iter().any(|m| m.matches_leaf(leaf))
                })
            });
            matched || (!saw_leaf && matchers.iter().any(|m| matches!(m, Matcher::Exists(false))))
        }
    }
}

/// Calls `f` on every object in `items` (nested arrays flattened) until it returns true.
fn any_object(items: &[Value], f: &mut dyn FnMut(&Map<String, Value>) -> bool) -> bool {
    items.iter().any(|item| match item {
        Value::Object(map) => f(map),
        Value::Array(inner) => any_object(inner, f),
        _ => false,
    })
}

/// Calls `f` on every scalar of `value` (arrays flattened, objects skipped) until it returns true.
fn any_leaf(value: &Value, f: &mut dyn FnMut(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|item| any_leaf(item, f)),
        Value::Object(_) => false,
        leaf => f(leaf),
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn ends_with_folded(value: &str, folded_suffix: &str) -> bool {
    fold(value).ends_with(folded_suffix)
}

impl Matcher {
    fn matches_leaf(&self, leaf: &Value) -> bool {
        match (self, leaf) {
            (Matcher::String(s), Value::String(v)) => s == v,
            (Matcher::Number(n), Value::Number(v)) => numbers_equal(n, v),
            (Matcher::Bool(b), Value::Bool(v)) => b == v,
            (Matcher::Null, Value::Null) => true,
            (Matcher::Prefix(p), Value::String(v)) => v.starts_with(p.as_str()),
            (Matcher::PrefixIgnoreCase(p), Value::String(v)) => fold(v).starts_with(p.as_str()),
            (Matcher::Suffix(s), Value::String(v)) => v.ends_with(s.as_str()),
            (Matcher::SuffixIgnoreCase(s), Value::String(v)) => ends_with_folded(v, s),
            (Matcher::EqualsIgnoreCase(s), Value::String(v)) => fold(v) == *s,
            (Matcher::Wildcard(w), Value::String(v)) => w.matches(v),
            (Matcher::AnythingBut(a), _) => a.accepts(leaf),
            (Matcher::Numeric(r), Value::Number(v)) => v.as_f64().is_some_and(|x| r.contains(x)),
            (Matcher::Exists(present), _) => *present,
            (Matcher::Cidr(net), Value::String(v)) => net.contains(v),
            _ => false,
        }
    }
}

impl AnythingBut {
    fn accepts(&self, leaf: &Value) -> bool {
        match (self, leaf) {
            (AnythingBut::Strings(list), Value::String(v)) => !list.iter().any(|s| s == v),
            (AnythingBut::Numbers(list), Value::Number(v)) => {
                !list.iter().any(|n| numbers_equal(n, v))
            }
            (AnythingBut::Prefixes(list), Value::String(v)) => {
                !list.iter().any(|p| v.starts_with(p.as_str()))
            }
            (AnythingBut::Suffixes(list), Value::String(v)) => {
                !list.iter().any(|s| v.ends_with(s.as_str()))
            }
            (AnythingBut::IgnoreCase(list), Value::String(v)) => !list.contains(&fold(v)),
            (AnythingBut::Wildcards(list), Value::String(v)) => !list.iter().any(|w| w.matches(v)),
            // A leaf of another kind is not one of the excluded values.
            _ => true,
        }
    }
}

impl Range {
    fn contains(&self, x: f64) -> bool {
        if !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&x) {
            return false;
        }
        let (lo, lo_open) = self.lower;
        let (hi, hi_open) = self.upper;
        (if lo_open { x > lo } else { x >= lo }) && (if hi_open { x < hi } else { x <= hi })
    }
}
