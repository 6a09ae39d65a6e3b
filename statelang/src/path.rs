//! JSONPath paths and reference paths, compiled once at parse time.
//!
//! Plain reference paths (`$.a.b[0]`, `$['x y']`, `$$.Execution.Id`) are evaluated by a
//! small hand-written walker; anything else (wildcards, filters, slices, deep scan) is
//! handed to `jsonpath-rust`. AWS (Jayway JsonPath) semantics win where they differ:
//! a *definite* path yields the single value it points to (or nothing), an *indefinite*
//! path always yields an array of its matches.

use std::borrow::Cow;
use std::fmt;

use jsonpath_rust::parser::model::JpQuery;
use serde_json::{Map, Value};

use crate::scope::Scope;

/// One step of a plain reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    /// Array index; negative counts from the end (`[-1]` is the last element), as in Jayway.
    Index(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Compiled {
    Simple(Vec<Segment>),
    Query(JpQuery),
}

/// What a path starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the state's data.
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable.
    Variable(String),
}

/// A compiled path. `$...` reads the state's data, `$$...` the context object, `$name...`
/// a workflow variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    source: String,
    root: Root,
    compiled: Compiled,
}

/// Why a string is not a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maximum length we accept for one path; AWS has no documented limit, this one keeps
/// pathological definitions from costing much.
const MAX_PATH_LEN: usize = 10_000;

/// Deepest bracket/parenthesis nesting handed to the query parser, whose recursion
/// would otherwise grow with the input.
const MAX_QUERY_NESTING: usize = 32;

fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

impl Path {
    /// `$`: the whole input.
    pub fn root() -> Path {
        Path {
            source: "$".to_owned(),
            root: Root::Input,
            compiled: Compiled::Simple(Vec::new()),
        }
    }

    /// Parses any JSONPath (definite or not).
    pub fn parse(source: &str) -> Result<Path, PathError> {
        if source.len() > MAX_PATH_LEN {
            return Err(PathError("the path is too long".into()));
        }
        let (root, rest) = split_root(source)?;
        if let Some(segments) = parse_simple(rest) {
            return Ok(Path {
                source: source.to_owned(),
                root,
                compiled: Compiled::Simple(segments),
            });
        }
        if nesting_depth(rest) > MAX_QUERY_NESTING {
            return Err(PathError(format!(
                "'{source}' nests brackets or parentheses more than {MAX_QUERY_NESTING} deep"
            )));
        }
        let query_text = format!("${rest}");
        match jsonpath_rust::parser::parse_json_path(&query_text) {
            Ok(query) => Ok(Path {
                source: source.to_owned(),
                root,
                compiled: Compiled::Query(query),
            }),
            // The parser's own message spans several lines of ASCII art; keep ours to one.
            Err(_) => Err(PathError(format!("'{source}' is not a valid JSONPath"))),
        }
    }

    /// Parses a reference path: a path that can only identify a single node
    /// (`.` and `[]` notation; no `*`, `..`, `@`, `,`, `:`, `?`, no functions).
    pub fn parse_reference(source: &str) -> Result<Path, PathError> {
        if source.len() > MAX_PATH_LEN {
            return Err(PathError("the path is too long".into()));
        }
        let (root, rest) = split_root(source)?;
        match parse_simple(rest) {
            Some(segments) => Ok(Path {
                source: source.to_owned(),
                root,
                compiled: Compiled::Simple(segments),
            }),
            None => Err(PathError(format!(
                "'{source}' is not a valid reference path: only '.' and '[]' notation selecting a single node is allowed"
            ))),
        }
    }

    /// The text this path was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the path reads the context object (`$$`).
    pub fn is_context(&self) -> bool {
        self.root == Root::Context
    }

    /// The variable the path reads (`$name...`), if it reads one.
    pub fn variable(&self) -> Option<&str> {
        match &self.root {
            Root::Variable(name) => Some(name),
            _ => None,
        }
    }

    /// What the path starts from.
    pub fn root_kind(&self) -> &Root {
        &self.root
    }

    /// Whether this is exactly `$`.
    pub fn is_root(&self) -> bool {
        self.root == Root::Input && matches!(&self.compiled, Compiled::Simple(s) if s.is_empty())
    }

    /// The segments of a plain reference path; `None` for query paths.
    pub fn segments(&self) -> Option<&[Segment]> {
        match &self.compiled {
            Compiled::Simple(s) => Some(s),
            Compiled::Query(_) => None,
        }
    }

    /// Selects from `input` (the context object for `$$` paths, a variable for `$name`
    /// paths). `None` when a definite path points at nothing (or the variable is not set);
    /// indefinite paths always select an array (maybe empty).
    pub fn select<'a>(&self, input: &'a Value, scope: &Scope<'a>) -> Option<Cow<'a, Value>> {
        let root = match &self.root {
            Root::Input => input,
            Root::Context => scope.context,
            Root::Variable(name) => scope.vars.get(name)?,
        };
        match &self.compiled {
            Compiled::Simple(segments) => walk(root, segments).map(Cow::Borrowed),
            Compiled::Query(query) => {
                match jsonpath_rust::query::js_path_process(query, root) {
                    Ok(found) => Some(Cow::Owned(Value::Array(
                        found.into_iter().map(|r| r.val().clone()).collect(),
                    ))),
                    // A query that errors at run time selects nothing, like a missing field.
                    Err(_) => None,
                }
            }
        }
    }

    /// The path in Jayway's normalized bracket form (`$['a'][0]`), as AWS prints it in
    /// error causes; query paths are returned as written.
    pub fn normalized(&self) -> String {
        let Compiled::Simple(segments) = &self.compiled else {
            return self.source.clone();
        };
        let mut out = match &self.root {
            Root::Input => "$".to_owned(),
            Root::Context => "$$".to_owned(),
            Root::Variable(name) => format!("${name}"),
        };
        for segment in segments {
            match segment {
                Segment::Field(name) => {
                    out.push_str("['");
                    out.push_str(&name.replace('\\', "\\\\").replace('\'', "\\'"));
                    out.push_str("']");
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    /// Whether [`Path::assign`] would succeed on `target`, with the same reason when it
    /// would not, without changing anything. `assign` can fail after it has created
    /// intermediate objects, so a caller that must keep `target` intact on failure (an
    /// in-place `ResultPath`) asks first.
    pub fn check_assign(&self, target: &Value) -> Result<(), String> {
        /// Where the walk is: an existing value, or an object `assign` would create.
        enum At<'a> {
            Value(&'a Value),
            Created,
        }
        let Compiled::Simple(segments) = &self.compiled else {
            return Err(format!("'{}' is not a reference path", self.source));
        };
        let Some((last, parents)) = segments.split_last() else {
            return Ok(());
        };
        let mut at = At::Value(target);
        for segment in parents {
            let next = match (segment, at) {
                (Segment::Field(_), At::Created) => None,
                (Segment::Field(name), At::Value(Value::Object(map))) => map.get(name.as_str()),
                (Segment::Field(name), At::Value(other)) => return Err(not_object(other, name)),
                (Segment::Index(index), At::Value(Value::Array(items))) => {
                    let slot = resolve_index(*index, items.len())
                        .ok_or_else(|| format!("index {index} is out of bounds"))?;
                    Some(&items[slot])
                }
                (Segment::Index(index), _) => {
                    return Err(format!("cannot index [{index}] into a non-array value"));
                }
            };
            // A missing field or a null in the way becomes an object.
            at = match next {
                None | Some(Value::Null) => At::Created,
                Some(value) => At::Value(value),
            };
        }
        match (last, at) {
            (Segment::Field(_), At::Created | At::Value(Value::Object(_))) => Ok(()),
            (Segment::Field(name), At::Value(other)) => Err(not_object(other, name)),
            (Segment::Index(index), At::Value(Value::Array(items))) => {
                resolve_index(*index, items.len())
                    .map(|_| ())
                    .ok_or_else(|| format!("index {index} is out of bounds"))
            }
            (Segment::Index(index), _) => {
                Err(format!("cannot index [{index}] into a non-array value"))
            }
        }
    }

    /// Places `value` at this reference path inside `target` (ResultPath semantics):
    /// missing intermediate objects are created; an existing non-object in the way,
    /// or an array index out of range, is an error.
    pub fn assign(&self, target: &mut Value, value: Value) -> Result<(), String> {
        let Compiled::Simple(segments) = &self.compiled else {
            return Err(format!("'{}' is not a reference path", self.source));
        };
        let Some((last, parents)) = segments.split_last() else {
            *target = value;
            return Ok(());
        };
        let mut current = target;
        for segment in parents {
            current = match segment {
                Segment::Field(name) => match current {
                    Value::Object(map) => map
                        .entry(name.clone())
                        .or_insert_with(|| Value::Object(Map::new())),
                    other => return Err(not_object(other, name)),
                },
                Segment::Index(index) => match current {
                    Value::Array(items) => {
                        let len = items.len();
                        let slot = resolve_index(*index, len)
                            .ok_or_else(|| format!("index {index} is out of bounds"))?;
                        &mut items[slot]
                    }
                    _ => return Err(format!("cannot index [{index}] into a non-array value")),
                },
            };
            if let Value::Null = current {
                // A null in the way becomes an object, as a missing field would.
                *current = Value::Object(Map::new());
            }
        }
        match last {
            Segment::Field(name) => match current {
                Value::Object(map) => {
                    map.insert(name.clone(), value);
                    Ok(())
                }
                other => Err(not_object(other, name)),
            },
            Segment::Index(index) => match current {
                Value::Array(items) => {
                    let len = items.len();
                    let slot = resolve_index(*index, len)
                        .ok_or_else(|| format!("index {index} is out of bounds"))?;
                    items[slot] = value;
                    Ok(())
                }
                _ => Err(format!("cannot index [{index}] into a non-array value")),
            },
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn not_object(value: &Value, field: &str) -> String {
    format!(
        "cannot set field '{field}' on a {} value",
        crate::json_type_name(value)
    )
}

fn resolve_index(index: i64, len: usize) -> Option<usize> {
    if index >= 0 {
        let i = usize::try_from(index).ok()?;
        (i < len).then_some(i)
    } else {
        let back = usize::try_from(index.unsigned_abs()).ok()?;
        len.checked_sub(back)
    }
}

fn walk<'a>(mut value: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
    for segment in segments {
        value = match (segment, value) {
            (Segment::Field(name), Value::Object(map)) => map.get(name)?,
            (Segment::Index(index), Value::Array(items)) => {
                items.get(resolve_index(*index, items.len())?)?
            }
            _ => return None,
        };
    }
    Some(value)
}

fn split_root(source: &str) -> Result<(Root, &str), PathError> {
    if let Some(rest) = source.strip_prefix("$$") {
        Ok((Root::Context, rest))
    } else if let Some(rest) = source.strip_prefix('$') {
        let name_len = rest
            .char_indices()
            .find(|(_, c)| !crate::scope::is_variable_char(*c))
            .map_or(rest.len(), |(i, _)| i);
        if name_len == 0 {
            return Ok((Root::Input, rest));
        }
        let (name, rest) = rest.split_at(name_len);
        if !crate::scope::is_variable_name(name) {
            return Err(PathError(format!(
                "'{source}' is not a path: '${name}' is not a valid variable name"
            )));
        }
        Ok((Root::Variable(name.to_owned()), rest))
    } else {
        Err(PathError(format!(
            "'{source}' is not a path: it must start with '$'"
        )))
    }
}

/// Characters that make a dot-notation name something other than a plain field.
fn is_special(c: char) -> bool {
    matches!(
        c,
        '.' | '[' | ']' | '*' | '?' | '@' | '(' | ')' | ',' | ':' | '\'' | '"' | '$' | '\\'
    ) || c.is_whitespace()
}

/// Parses `rest` (after the `$`) as plain `.name` / `['name']` / `[n]` steps.
/// `None` when the path uses anything else.
fn parse_simple(rest: &str) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && !is_special(chars[i]) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                segments.push(Segment::Field(chars[start..i].iter().collect()));
            }
            '[' => {
                i += 1;
                match chars.get(i)? {
                    q @ ('\'' | '"') => {
                        let quote = *q;
                        i += 1;
                        let mut name = String::new();
                        loop {
                            let c = *chars.get(i)?;
                            i += 1;
                            if c == '\\' {
                                name.push(*chars.get(i)?);
                                i += 1;
                            } else if c == quote {
                                break;
                            } else {
                                name.push(c);
                            }
                        }
                        if chars.get(i) != Some(&']') {
                            return None;
                        }
                        i += 1;
                        segments.push(Segment::Field(name));
                    }
                    _ => {
                        let start = i;
                        if chars.get(i) == Some(&'-') {
                            i += 1;
                        }
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                        if chars.get(i) != Some(&']') {
                            return None;
                        }
                        let text: String = chars[start..i].iter().collect();
                        let index: i64 = text.parse().ok()?;
                        i += 1;
                        segments.push(Segment::Index(index));
                    }
                }
            }
            _ => return None,
        }
    }
    Some(segments)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn simple_paths_walk_fields_and_indexes() {
        let input = json!({"a": {"b": [10, 20, 30]}, "x y": 1});
        let ctx = json!({"Execution": {"Id": "e1"}});
        let get = |p: &str| {
            Path::parse(p)
                .unwrap()
                .select(&input, &Scope::context_only(&ctx))
                .map(|v| v.into_owned())
        };
        assert_eq!(get("$.a.b[1]"), Some(json!(20)));
        assert_eq!(get("$.a.b[-1]"), Some(json!(30)));
        assert_eq!(get("$['x y']"), Some(json!(1)));
        assert_eq!(get("$.missing"), None);
        assert_eq!(get("$$.Execution.Id"), Some(json!("e1")));
        assert_eq!(get("$.a.b[*]"), Some(json!([10, 20, 30])));
    }

    #[test]
    fn normalized_form_uses_brackets() {
        assert_eq!(
            Path::parse("$.a.b[2]").unwrap().normalized(),
            "$['a']['b'][2]"
        );
        assert_eq!(Path::parse("$").unwrap().normalized(), "$");
        assert_eq!(
            Path::parse(r"$['it\'s']").unwrap().normalized(),
            r"$['it\'s']"
        );
    }

    #[test]
    fn reference_paths_reject_operators() {
        assert!(Path::parse_reference("$.a[*]").is_err());
        assert!(Path::parse_reference("$..a").is_err());
        assert!(Path::parse_reference("a.b").is_err());
        assert!(Path::parse_reference("$.a[0].b").is_ok());
    }

    #[test]
    fn deeply_nested_queries_are_rejected_before_the_query_parser() {
        let deep = format!("$[?{}@.a{}]", "(".repeat(40), ")".repeat(40));
        let error = Path::parse(&deep).unwrap_err();
        assert!(error.0.contains("nests"), "{error}");
        assert!(Path::parse("$.a[?(@.b > 1)]").is_ok());
    }

    #[test]
    fn check_assign_answers_as_assign_would_without_changing_anything() {
        let targets = [
            json!({}),
            json!(null),
            json!(5),
            json!({"a": 1}),
            json!({"a": null}),
            json!({"a": {"b": 1}}),
            json!({"a": [1, {"c": 2}, null]}),
            json!({"a": []}),
            json!([{"x": 1}]),
        ];
        let paths = [
            "$",
            "$.a",
            "$.a.b",
            "$.a.b.c",
            "$.a[0]",
            "$.a[1].c",
            "$.a[2].d",
            "$.a[5]",
            "$.a[-1]",
            "$.a[-1].e",
            "$.z[0]",
            "$.z.y[0]",
            "$[0]",
            "$[0].x",
            "$.a.b[0]",
        ];
        for target in &targets {
            for source in paths {
                let path = Path::parse(source).unwrap();
                let mut assigned = target.clone();
                let expected = path.assign(&mut assigned, json!("v")).map(|_| ());
                assert_eq!(
                    path.check_assign(target),
                    expected,
                    "check_assign({source}) on {target}"
                );
            }
        }
    }

    #[test]
    fn assign_creates_missing_objects() {
        let mut v = json!({"a": 1});
        Path::parse_reference("$.b.c")
            .unwrap()
            .assign(&mut v, json!(2))
            .unwrap();
        assert_eq!(v, json!({"a": 1, "b": {"c": 2}}));
        assert!(
            Path::parse_reference("$.a.c")
                .unwrap()
                .assign(&mut v, json!(2))
                .is_err()
        );
    }
}
