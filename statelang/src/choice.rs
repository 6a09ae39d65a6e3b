//! Choice rules: the boolean expressions of a Choice state and their evaluation.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::error::StatesError;
use crate::eval::Env;
use crate::path::Path;
use crate::scope::Scope;

/// A top-level Choice rule: a condition and where to go when it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
    pub comment: Option<String>,
    /// Assigned when this rule is taken (on top of the state's `Assign`).
    pub assign: Option<crate::template::Template>,
    /// JSONata `Output` when this rule is taken.
    pub output: Option<crate::template::Template>,
}

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    /// `Variable` compared with `Operator` against a literal or a `...Path` operand.
    Compare {
        variable: Path,
        operator: Operator,
        operand: Operand,
    },
    /// JSONata `Condition`: an expression that must evaluate to a boolean.
    Jsonata(crate::jsonata::Expr),
}

/// Every data-test operator, without its `Path` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    BooleanEquals,
    NumericEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    NumericLessThan,
    NumericLessThanEquals,
    StringEquals,
    StringGreaterThan,
    StringGreaterThanEquals,
    StringLessThan,
    StringLessThanEquals,
    StringMatches,
    TimestampEquals,
    TimestampGreaterThan,
    TimestampGreaterThanEquals,
    TimestampLessThan,
    TimestampLessThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

/// What kind of literal an operator compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperandKind {
    Boolean,
    Number,
    String,
    Timestamp,
    /// `StringMatches`: a pattern with `*` wildcards; has no `Path` form.
    Pattern,
}

pub(crate) const OPERATORS: &[(&str, Operator)] = &[
    ("BooleanEquals", Operator::BooleanEquals),
    ("NumericEquals", Operator::NumericEquals),
    ("NumericGreaterThan", Operator::NumericGreaterThan),
    (
        "NumericGreaterThanEquals",
        Operator::NumericGreaterThanEquals,
    ),
    ("NumericLessThan", Operator::NumericLessThan),
    ("NumericLessThanEquals", Operator::NumericLessThanEquals),
    ("StringEquals", Operator::StringEquals),
    ("StringGreaterThan", Operator::StringGreaterThan),
    ("StringGreaterThanEquals", Operator::StringGreaterThanEquals),
    ("StringLessThan", Operator::StringLessThan),
    ("StringLessThanEquals", Operator::StringLessThanEquals),
    ("StringMatches", Operator::StringMatches),
    ("TimestampEquals", Operator::TimestampEquals),
    ("TimestampGreaterThan", Operator::TimestampGreaterThan),
    (
        "TimestampGreaterThanEquals",
        Operator::TimestampGreaterThanEquals,
    ),
    ("TimestampLessThan", Operator::TimestampLessThan),
    ("TimestampLessThanEquals", Operator::TimestampLessThanEquals),
    ("IsNull", Operator::IsNull),
    ("IsPresent", Operator::IsPresent),
    ("IsNumeric", Operator::IsNumeric),
    ("IsString", Operator::IsString),
    ("IsBoolean", Operator::IsBoolean),
    ("IsTimestamp", Operator::IsTimestamp),
];

impl Operator {
    pub fn name(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(n, _)| *n)
            .unwrap_or("StringEquals")
    }

    /// The literal type the operator takes; type tests (`Is*`) take a boolean.
    pub fn operand_kind(self) -> OperandKind {
        use Operator::*;
        match self {
            BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => {
                OperandKind::Boolean
            }
            NumericEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals
            | NumericLessThan
            | NumericLessThanEquals => OperandKind::Number,
            StringEquals
            | StringGreaterThan
            | StringGreaterThanEquals
            | StringLessThan
            | StringLessThanEquals => OperandKind::String,
            StringMatches => OperandKind::Pattern,
            TimestampEquals
            | TimestampGreaterThan
            | TimestampGreaterThanEquals
            | TimestampLessThan
            | TimestampLessThanEquals => OperandKind::Timestamp,
        }
    }

    /// Whether a `...Path` variant exists.
    pub fn has_path_form(self) -> bool {
        !matches!(
            self,
            Operator::StringMatches
                | Operator::IsNull
                | Operator::IsPresent
                | Operator::IsNumeric
                | Operator::IsString
                | Operator::IsBoolean
                | Operator::IsTimestamp
        )
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    /// A timestamp literal, parsed at parse time.
    Timestamp(DateTime<FixedOffset>),
    /// From `...Path`: read at evaluation time.
    Path(Path),
}

impl Condition {
    /// Evaluates against the Choice state's effective input (JSONPath) or its input
    /// (`$states.input`, JSONata).
    pub fn evaluate(
        &self,
        input: &Value,
        scope: &Scope<'_>,
        env: &mut dyn Env,
    ) -> Result<bool, StatesError> {
        match self {
            Condition::And(all) => {
                for c in all {
                    if !c.evaluate(input, scope, env)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(any) => {
                for c in any {
                    if c.evaluate(input, scope, env)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(inner) => Ok(!inner.evaluate(input, scope, env)?),
            Condition::Jsonata(expr) => match expr.evaluate(input, scope, env)? {
                Some(Value::Bool(b)) => Ok(b),
                other => Err(expr.wrong_result("Condition", "a boolean", other.as_ref())),
            },
            Condition::Compare {
                variable,
                operator,
                operand,
            } => {
                let selected = variable.select(input, scope);
                if *operator == Operator::IsPresent {
                    let expected = matches!(operand, Operand::Literal(Value::Bool(true)));
                    return Ok(selected.is_some() == expected);
                }
                let Some(value) = selected else {
                    return Err(invalid_path(variable));
                };
                let value = value.as_ref();
                let operand_value;
                let operand_ref = match operand {
                    Operand::Literal(v) => v,
                    Operand::Timestamp(t) => {
                        return Ok(compare_timestamp(*operator, value, t));
                    }
                    Operand::Path(path) => {
                        operand_value = path
                            .select(input, scope)
                            .ok_or_else(|| invalid_path(path))?;
                        operand_value.as_ref()
                    }
                };
                Ok(compare(*operator, value, operand_ref))
            }
        }
    }
}

fn invalid_path(path: &Path) -> StatesError {
    StatesError::runtime(format!(
        "Invalid path '{path}': The choice state's condition path references an invalid value."
    ))
}

fn compare(op: Operator, value: &Value, operand: &Value) -> bool {
    use Operator::*;
    let expect_bool = operand.as_bool().unwrap_or(false);
    match op {
        IsNull => value.is_null() == expect_bool,
        IsPresent => expect_bool,
        IsNumeric => value.is_number() == expect_bool,
        IsString => value.is_string() == expect_bool,
        IsBoolean => value.is_boolean() == expect_bool,
        IsTimestamp => value.as_str().and_then(parse_timestamp).is_some() == expect_bool,
        BooleanEquals => matches!((value, operand), (Value::Bool(a), Value::Bool(b)) if a == b),
        NumericEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals
        | NumericLessThan
        | NumericLessThanEquals => {
            let (Some(a), Some(b)) = (number(value), number(operand)) else {
                return false;
            };
            match op {
                NumericEquals => a == b,
                NumericGreaterThan => a > b,
                NumericGreaterThanEquals => a >= b,
                NumericLessThan => a < b,
                _ => a <= b,
            }
        }
        StringEquals
        | StringGreaterThan
        | StringGreaterThanEquals
        | StringLessThan
        | StringLessThanEquals => {
            let (Value::String(a), Value::String(b)) = (value, operand) else {
                return false;
            };
            match op {
                StringEquals => a == b,
                StringGreaterThan => a > b,
                StringGreaterThanEquals => a >= b,
                StringLessThan => a < b,
                _ => a <= b,
            }
        }
        StringMatches => match (value, operand) {
            (Value::String(a), Value::String(pattern)) => string_matches(a, pattern),
            _ => false,
        },
        TimestampEquals
        | TimestampGreaterThan
        | TimestampGreaterThanEquals
        | TimestampLessThan
        | TimestampLessThanEquals => match operand.as_str().and_then(parse_timestamp) {
            Some(t) => compare_timestamp(op, value, &t),
            None => false,
        },
    }
}

/// Numbers compare exactly when both are integers, else as f64.
fn number(value: &Value) -> Option<Number> {
    let n = value.as_number()?;
    Some(match n.as_i64() {
        Some(i) => Number::Int(i),
        None => Number::Float(n.as_f64()?),
    })
}

#[derive(Clone, Copy)]
enum Number {
    Int(i64),
    Float(f64),
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.partial_cmp(other) == Some(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a.partial_cmp(b),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

fn compare_timestamp(op: Operator, value: &Value, operand: &DateTime<FixedOffset>) -> bool {
    let Some(a) = value.as_str().and_then(parse_timestamp) else {
        return false;
    };
    match op {
        Operator::TimestampEquals => a == *operand,
        Operator::TimestampGreaterThan => a > *operand,
        Operator::TimestampGreaterThanEquals => a >= *operand,
        Operator::TimestampLessThan => a < *operand,
        Operator::TimestampLessThanEquals => a <= *operand,
        _ => false,
    }
}

/// Parses an RFC 3339 timestamp with AWS's extra rules: an uppercase `T` separates date
/// and time, and an uppercase `Z` marks UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    let bytes = text.as_bytes();
    if bytes.get(10) != Some(&b'T') || text.contains('z') || text.contains('t') {
        return None;
    }
    DateTime::parse_from_rfc3339(text).ok()
}

/// `StringMatches`: `*` matches any run of characters; `\*` is a literal star and `\\` a
/// literal backslash.
pub fn string_matches(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Token {
        Star,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => tokens.push(Token::Char(escaped)),
                None => tokens.push(Token::Char('\\')),
            },
            '*' => tokens.push(Token::Star),
            c => tokens.push(Token::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic greedy wildcard matching with backtracking to the last star: O(n*m) worst case.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Token::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|tok| *tok == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_escapes() {
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(string_matches("a*b", r"a\*b"));
        assert!(!string_matches("axb", r"a\*b"));
        assert!(string_matches("", "*"));
        assert!(!string_matches("abc", "ab"));
        assert!(string_matches("abc", "*c"));
    }

    #[test]
    fn timestamps_need_uppercase_t_and_z() {
        assert!(parse_timestamp("2016-03-14T01:59:00Z").is_some());
        assert!(parse_timestamp("2016-03-14t01:59:00Z").is_none());
        assert!(parse_timestamp("2016-03-14T01:59:00z").is_none());
        assert!(parse_timestamp("2016-03-14 01:59:00Z").is_none());
        assert!(parse_timestamp("2016-03-14T01:59:00+02:00").is_some());
    }
}
