//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`): JSON where fields
//! named `x.$` take their value from a path or an intrinsic call.

use serde_json::{Map, Value};

use crate::error::StatesError;
use crate::eval::Env;
use crate::intrinsic::{self, Call};
use crate::jsonata::JTemplate;
use crate::path::Path;
use crate::problem::{Problem, ProblemCode, pointer_push};
use crate::scope::Scope;

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A JSON value with nothing dynamic inside: copied as is.
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    /// From `"key.$": "$.path"`.
    Path(Path),
    /// From `"key.$": "States.Format(...)"`.
    Call(Call),
    /// A JSONata state's field (`Arguments`, `Output`, `Assign`...): `{% %}` expressions
    /// anywhere inside, evaluated with `$states.input` = the input given.
    Jsonata(JTemplate),
}

impl Template {
    /// Compiles `value` found at `pointer`, pushing every problem found.
    pub(crate) fn compile(value: &Value, pointer: &str, problems: &mut Vec<Problem>) -> Template {
        if !contains_dynamic(value) {
            return Template::Literal(value.clone());
        }
        match value {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, field) in map {
                    let field_ptr = pointer_push(pointer, key);
                    if let Some(name) = key.strip_suffix(".$") {
                        if map.contains_key(name) {
                            problems.push(Problem::new(
                                field_ptr.clone(),
                                ProblemCode::InvalidPayloadTemplate,
                                format!("the fields '{key}' and '{name}' both produce the field '{name}'"),
                            ));
                        }
                        match dynamic(field) {
                            Ok(t) => fields.push((name.to_owned(), t)),
                            Err(message) => problems.push(Problem::new(
                                field_ptr,
                                ProblemCode::InvalidPayloadTemplate,
                                format!("the value of '{key}' {message}"),
                            )),
                        }
                    } else {
                        fields.push((key.clone(), Template::compile(field, &field_ptr, problems)));
                    }
                }
                Template::Object(fields)
            }
            Value::Array(items) => Template::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        Template::compile(item, &pointer_push(pointer, &i.to_string()), problems)
                    })
                    .collect(),
            ),
            other => Template::Literal(other.clone()),
        }
    }

    /// Evaluates the template against `input` (`$`, or `$states.input` in JSONata) and
    /// `scope` (`$$`, variables).
    pub fn evaluate(
        &self,
        input: &Value,
        scope: &Scope<'_>,
        env: &mut dyn Env,
    ) -> Result<Value, StatesError> {
        match self {
            Template::Jsonata(t) => t.evaluate(input, scope, env),
            Template::Literal(v) => Ok(v.clone()),
            Template::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (key, field) in fields {
                    let value = match field {
                        Template::Path(path) => match path.select(input, scope) {
                            Some(v) => v.into_owned(),
                            None => {
                                if let Some(name) = path.variable() {
                                    return Err(StatesError::runtime(format!(
                                        "The JSONPath '{path}' specified for the field '{key}.$' could not be found: {}",
                                        match scope.vars.get(name) {
                                            Some(_) =>
                                                format!("the variable '{name}' has no such field"),
                                            None => format!("there is no variable '{name}'"),
                                        }
                                    )));
                                }
                                let source = if path.is_context() {
                                    scope.context
                                } else {
                                    input
                                };
                                return Err(StatesError::runtime(format!(
                                    "The JSONPath '{path}' specified for the field '{key}.$' could not be found in the input '{}'",
                                    truncate(&source.to_string())
                                )));
                            }
                        },
                        other => other.evaluate(input, scope, env)?,
                    };
                    map.insert(key.clone(), value);
                }
                Ok(Value::Object(map))
            }
            Template::Array(items) => items
                .iter()
                .map(|t| t.evaluate(input, scope, env))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Template::Path(path) => path
                .select(input, scope)
                .map(|v| v.into_owned())
                .ok_or_else(|| {
                    StatesError::runtime(format!("The JSONPath '{path}' could not be found"))
                }),
            Template::Call(call) => intrinsic::evaluate(call, input, scope, env),
        }
    }
}

/// Compiles the value of a `.$` field: a path (`$...`, `$$...`) or an intrinsic call.
fn dynamic(value: &Value) -> Result<Template, String> {
    let Value::String(text) = value else {
        return Err("must be a string holding a path or an intrinsic function call".into());
    };
    if text.starts_with('$') {
        Path::parse(text)
            .map(Template::Path)
            .map_err(|e| format!("is not a valid path: {e}"))
    } else if intrinsic::looks_like_call(text) {
        intrinsic::parse(text)
            .map(Template::Call)
            .map_err(|e| format!("is not a valid intrinsic function call: {e}"))
    } else {
        Err(format!(
            "'{text}' is neither a path (starting with '$') nor an intrinsic function call (States.*)"
        ))
    }
}

fn contains_dynamic(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.ends_with(".$") || contains_dynamic(v)),
        Value::Array(items) => items.iter().any(contains_dynamic),
        _ => false,
    }
}

/// Keeps error causes readable when inputs are large.
pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 1000;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
