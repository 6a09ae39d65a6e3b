//! Definition text → typed [`StateMachine`], collecting every problem on the way.
//!
//! One pass builds the model and validates it; a definition with any problem yields no
//! model. Every problem carries a JSON Pointer into the definition.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use crate::choice::{
    ChoiceRule, Condition, OPERATORS, Operand, OperandKind, Operator, parse_timestamp,
};
use crate::error::ErrorName;
use crate::intrinsic;
use crate::jsonata::{self, Expr, JTemplate};
use crate::model::*;
use crate::path::Path;
use crate::problem::{Problem, ProblemCode, pointer_push};
use crate::template::Template;

/// The intrinsics AWS allows in a Fail state's `ErrorPath`/`CausePath`.
const FAIL_PATH_FUNCTIONS: &[intrinsic::Function] = &[
    intrinsic::Function::Format,
    intrinsic::Function::JsonToString,
    intrinsic::Function::ArrayGetItem,
    intrinsic::Function::Base64Encode,
    intrinsic::Function::Base64Decode,
    intrinsic::Function::Hash,
    intrinsic::Function::Uuid,
];

/// Longest state name AWS accepts.
pub const MAX_STATE_NAME_LEN: usize = 80;
/// Largest value AWS accepts for `TimeoutSeconds`, `HeartbeatSeconds`, `Seconds`...
pub const MAX_SECONDS: u64 = 99_999_999;
/// Deepest nesting of Parallel/Map machines we accept (keeps recursion bounded).
pub const MAX_NESTING: usize = 32;

/// Parses and validates a definition; every problem at once.
pub fn parse(definition: &str) -> Result<StateMachine, Vec<Problem>> {
    let value: Value = match serde_json::from_str(definition) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![Problem::new(
                "",
                ProblemCode::InvalidJson,
                format!("the definition is not valid JSON: {e}"),
            )]);
        }
    };
    parse_value(&value)
}

/// Like [`parse`], for a definition already parsed as JSON.
pub fn parse_value(definition: &Value) -> Result<StateMachine, Vec<Problem>> {
    let mut parser = Parser {
        problems: Vec::new(),
        names: HashMap::new(),
        language: QueryLanguage::JsonPath,
        current: QueryLanguage::JsonPath,
    };
    let machine = parser.machine(definition, "", 0);
    parser.variable_scopes(definition, "", &HashSet::new());
    match machine {
        Some(m) if parser.problems.is_empty() => Ok(m),
        _ => {
            let mut problems = parser.problems;
            if problems.is_empty() {
                problems.push(Problem::new(
                    "",
                    ProblemCode::InvalidType,
                    "the definition is not a valid state machine",
                ));
            }
            Err(problems)
        }
    }
}

/// Every problem in a definition; empty when it is valid.
pub fn validate(definition: &str) -> Vec<Problem> {
    match parse(definition) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

struct Parser {
    problems: Vec<Problem>,
    /// State name → pointer of its first definition, across all nested machines.
    names: HashMap<String, String>,
    /// The top-level `QueryLanguage`: the default of every state, nested ones included.
    language: QueryLanguage,
    /// The language of the state being parsed.
    current: QueryLanguage,
}

/// A `...Path` field as written: absent, `null`, or a (valid or invalid) path.
enum PathField {
    Absent,
    Null,
    Path(Path),
    Invalid,
}

const TOP_FIELDS: &[&str] = &[
    "Comment",
    "StartAt",
    "States",
    "TimeoutSeconds",
    "Version",
    "QueryLanguage",
];
const NESTED_FIELDS: &[&str] = &["Comment", "StartAt", "States"];
const PROCESSOR_FIELDS: &[&str] = &["Comment", "StartAt", "States", "ProcessorConfig"];

/// Fields only JSONPath states have.
const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "Result",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "MaxConcurrencyPath",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCountPath",
    "ErrorPath",
    "CausePath",
    "Variable",
];
/// Fields only JSONata states have.
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items", "Condition"];

/// The `Assign` keys of a raw state: its own, its Choice rules' and its catchers'.
fn raw_assigned(state: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |assign: Option<&Value>, pointer: String| {
        if let Some(Value::Object(map)) = assign {
            for key in map.keys() {
                let name = key.strip_suffix(".$").unwrap_or(key);
                out.push((name.to_owned(), pointer_push(&pointer, key)));
            }
        }
    };
    add(state.get("Assign"), "/Assign".to_owned());
    for list in ["Choices", "Catch"] {
        if let Some(Value::Array(items)) = state.get(list) {
            for (i, item) in items.iter().enumerate() {
                add(item.get("Assign"), format!("/{list}/{i}/Assign"));
            }
        }
    }
    out
}

/// Every state name a raw state object can transition to: `Next`, `Default`, the
/// `Next` of each Choice rule and of each catcher.
fn raw_transitions(state: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(Value::String(s)) = state.get(key) {
            out.push(s.as_str());
        }
    }
    for list in ["Choices", "Catch"] {
        if let Some(Value::Array(items)) = state.get(list) {
            out.extend(
                items
                    .iter()
                    .filter_map(|item| item.get("Next").and_then(Value::as_str)),
            );
        }
    }
    out
}

/// Whether a raw state object ends its machine.
fn is_terminal(state: &Value) -> bool {
    matches!(
        state.get("Type").and_then(Value::as_str),
        Some("Succeed" | "Fail")
    ) || state.get("End") == Some(&Value::Bool(true))
}

fn type_name(v: &Value) -> &'static str {
    crate::json_type_name(v)
}

impl Parser {
    fn problem(
        &mut self,
        pointer: impl Into<String>,
        code: ProblemCode,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem::new(pointer, code, message));
    }

    fn object<'v>(
        &mut self,
        value: &'v Value,
        pointer: &str,
        what: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.problem(
                    pointer,
                    ProblemCode::InvalidType,
                    format!("{what} must be a JSON object, not {}", type_name(other)),
                );
                None
            }
        }
    }

    fn check_fields(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        allowed: &[&str],
        what: &str,
    ) {
        for key in map.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let ptr = pointer_push(pointer, key);
            let jsonata = self.current == QueryLanguage::Jsonata;
            if !jsonata && JSONATA_ONLY.contains(&key.as_str()) {
                self.problem(
                    ptr,
                    ProblemCode::QueryLanguageMismatch,
                    format!("the field '{key}' is only for JSONata; set \"QueryLanguage\": \"JSONata\" on the state or the machine to use it"),
                );
            } else if jsonata && JSONPATH_ONLY.contains(&key.as_str()) {
                self.problem(
                    ptr,
                    ProblemCode::QueryLanguageMismatch,
                    format!("the field '{key}' is JSONPath; a JSONata state uses 'Arguments', 'Output' and '{{% %}}' expressions instead"),
                );
            } else {
                self.problem(
                    ptr,
                    ProblemCode::UnknownField,
                    format!("the field '{key}' is not allowed in {what}"),
                );
            }
        }
    }

    fn string(&mut self, map: &Map<String, Value>, pointer: &str, key: &str) -> Option<String> {
        match map.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(
                    pointer_push(pointer, key),
                    ProblemCode::InvalidType,
                    format!("'{key}' must be a string, not {}", type_name(other)),
                );
                None
            }
        }
    }

    fn required_string(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
        what: &str,
    ) -> Option<String> {
        if !map.contains_key(key) {
            self.problem(
                pointer,
                ProblemCode::MissingField,
                format!("{what} must have the field '{key}'"),
            );
            return None;
        }
        self.string(map, pointer, key)
    }

    /// An integer field in `min..=max`.
    fn integer(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let value = map.get(key)?;
        let ptr = pointer_push(pointer, key);
        let Some(n) = value.as_u64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }) else {
            let msg = if value.is_number() {
                format!("'{key}' must be a whole number between {min} and {max}, not {value}")
            } else {
                format!("'{key}' must be an integer, not {}", type_name(value))
            };
            let code = if value.is_number() {
                ProblemCode::InvalidValue
            } else {
                ProblemCode::InvalidType
            };
            self.problem(ptr, code, msg);
            return None;
        };
        if n < min || n > max {
            self.problem(
                ptr,
                ProblemCode::InvalidValue,
                format!("'{key}' must be between {min} and {max}, not {n}"),
            );
            return None;
        }
        Some(n)
    }

    fn path_field(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
        reference: bool,
        allow_context: bool,
    ) -> PathField {
        let Some(value) = map.get(key) else {
            return PathField::Absent;
        };
        let ptr = pointer_push(pointer, key);
        let text = match value {
            Value::Null => return PathField::Null,
            Value::String(s) => s,
            other => {
                self.problem(
                    ptr,
                    ProblemCode::InvalidType,
                    format!(
                        "'{key}' must be a path string or null, not {}",
                        type_name(other)
                    ),
                );
                return PathField::Invalid;
            }
        };
        let parsed = if reference {
            Path::parse_reference(text)
        } else {
            Path::parse(text)
        };
        match parsed {
            Ok(path) if path.is_context() && !allow_context => {
                self.problem(
                    ptr,
                    ProblemCode::InvalidReferencePath,
                    format!("'{key}' cannot refer to the context object ('$$')"),
                );
                PathField::Invalid
            }
            Ok(path) => PathField::Path(path),
            Err(e) => {
                let code = if reference {
                    ProblemCode::InvalidReferencePath
                } else {
                    ProblemCode::InvalidPath
                };
                self.problem(ptr, code, format!("'{key}': {e}"));
                PathField::Invalid
            }
        }
    }

    fn io_paths(&mut self, map: &Map<String, Value>, pointer: &str) -> IoPaths {
        let mut io = IoPaths::default();
        match self.path_field(map, pointer, "InputPath", false, true) {
            PathField::Null => io.input_path = None,
            PathField::Path(p) => io.input_path = Some(p),
            PathField::Absent | PathField::Invalid => {}
        }
        match self.path_field(map, pointer, "OutputPath", false, true) {
            PathField::Null => io.output_path = None,
            PathField::Path(p) => io.output_path = Some(p),
            PathField::Absent | PathField::Invalid => {}
        }
        io
    }

    fn result_path(&mut self, map: &Map<String, Value>, pointer: &str, key: &str) -> ResultPath {
        match self.path_field(map, pointer, key, true, false) {
            PathField::Null => None,
            PathField::Path(p) => Some(p),
            PathField::Absent | PathField::Invalid => Some(Path::root()),
        }
    }

    fn template(&mut self, map: &Map<String, Value>, pointer: &str, key: &str) -> Option<Template> {
        let value = map.get(key)?;
        let ptr = pointer_push(pointer, key);
        if !value.is_object() && key != "Result" {
            self.problem(
                ptr.clone(),
                ProblemCode::InvalidType,
                format!("'{key}' must be a JSON object, not {}", type_name(value)),
            );
            return None;
        }
        Some(Template::compile(value, &ptr, &mut self.problems))
    }

    fn exclusive(&mut self, map: &Map<String, Value>, pointer: &str, a: &str, b: &str) -> bool {
        if map.contains_key(a) && map.contains_key(b) {
            self.problem(
                pointer_push(pointer, b),
                ProblemCode::MutuallyExclusive,
                format!("'{a}' and '{b}' cannot both be present"),
            );
            return true;
        }
        false
    }

    fn number_or_path(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
        min: u64,
        max: u64,
    ) -> Option<NumberOrPath<u64>> {
        if self.current == QueryLanguage::Jsonata
            && let Some(Value::String(text)) = map.get(key)
        {
            let ptr = pointer_push(pointer, key);
            return self
                .jsonata_expr(&Value::String(text.clone()), &ptr, &format!("'{key}'"))
                .map(NumberOrPath::Expr);
        }
        let path_key = format!("{key}Path");
        if self.exclusive(map, pointer, key, &path_key) {
            return None;
        }
        if map.contains_key(key) {
            return self
                .integer(map, pointer, key, min, max)
                .map(NumberOrPath::Value);
        }
        match self.path_field(map, pointer, &path_key, true, true) {
            PathField::Path(p) => Some(NumberOrPath::Path(p)),
            PathField::Null => {
                self.problem(
                    pointer_push(pointer, &path_key),
                    ProblemCode::InvalidType,
                    format!("'{path_key}' must be a reference path, not null"),
                );
                None
            }
            PathField::Absent | PathField::Invalid => None,
        }
    }

    fn transition(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        targets: &mut Vec<(String, String)>,
    ) -> Transition {
        let next = self.string(map, pointer, "Next");
        let end = match map.get("End") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.problem(
                    pointer_push(pointer, "End"),
                    ProblemCode::InvalidType,
                    format!("'End' must be a boolean, not {}", type_name(other)),
                );
                None
            }
        };
        match (next, end) {
            (Some(_), Some(true)) => {
                self.problem(
                    pointer_push(pointer, "End"),
                    ProblemCode::ConflictingTransition,
                    "a state cannot have both 'Next' and 'End'",
                );
                Transition::End
            }
            (Some(next), _) => {
                targets.push((pointer_push(pointer, "Next"), next.clone()));
                Transition::Next(next)
            }
            (None, Some(true)) => Transition::End,
            (None, _) => {
                if !map.contains_key("Next") {
                    self.problem(
                        pointer,
                        ProblemCode::MissingTransition,
                        "the state must have either 'Next' or 'End': true",
                    );
                }
                Transition::End
            }
        }
    }

    fn machine(&mut self, value: &Value, pointer: &str, depth: usize) -> Option<StateMachine> {
        let what = if pointer.is_empty() {
            "the state machine"
        } else {
            "a nested state machine"
        };
        let map = self.object(value, pointer, what)?;
        if depth > MAX_NESTING {
            self.problem(
                pointer,
                ProblemCode::InvalidValue,
                format!("state machines are nested more than {MAX_NESTING} deep"),
            );
            return None;
        }
        let allowed = if depth == 0 {
            TOP_FIELDS
        } else if pointer.ends_with("/ItemProcessor") {
            PROCESSOR_FIELDS
        } else {
            NESTED_FIELDS
        };
        self.check_fields(map, pointer, allowed, what);
        let comment = self.string(map, pointer, "Comment");
        let version = self.string(map, pointer, "Version");
        let timeout_seconds = self.integer(map, pointer, "TimeoutSeconds", 1, MAX_SECONDS);
        let query_language = match self.string(map, pointer, "QueryLanguage").as_deref() {
            None => self.language,
            Some("JSONPath") => QueryLanguage::JsonPath,
            Some("JSONata") => QueryLanguage::Jsonata,
            Some(other) => {
                self.problem(
                    pointer_push(pointer, "QueryLanguage"),
                    ProblemCode::InvalidValue,
                    format!("'QueryLanguage' must be \"JSONPath\" or \"JSONata\", not \"{other}\""),
                );
                QueryLanguage::JsonPath
            }
        };
        if depth == 0 {
            self.language = query_language;
        }
        let start_at = self.required_string(map, pointer, "StartAt", what);
        let states_ptr = pointer_push(pointer, "States");
        let Some(states_value) = map.get("States") else {
            self.problem(
                pointer,
                ProblemCode::MissingField,
                format!("{what} must have the field 'States'"),
            );
            return None;
        };
        let states_map = self.object(states_value, &states_ptr, "'States'")?;
        if states_map.is_empty() {
            self.problem(
                &states_ptr,
                ProblemCode::InvalidValue,
                "'States' must contain at least one state",
            );
        }
        let mut states = indexmap::IndexMap::with_capacity(states_map.len());
        let mut targets: Vec<(String, String)> = Vec::new();
        let mut complete = true;
        for (name, state_value) in states_map {
            let ptr = pointer_push(&states_ptr, name);
            if name.chars().count() > MAX_STATE_NAME_LEN {
                self.problem(
                    &ptr,
                    ProblemCode::NameTooLong,
                    format!(
                        "the state name '{name}' is longer than {MAX_STATE_NAME_LEN} characters"
                    ),
                );
            }
            if name.is_empty() {
                self.problem(
                    &ptr,
                    ProblemCode::InvalidValue,
                    "a state name must not be empty",
                );
            }
            if let Some(first) = self.names.get(name) {
                let first = first.clone();
                self.problem(
                    &ptr,
                    ProblemCode::DuplicateStateName,
                    format!("the state name '{name}' is already used at {first}; names must be unique across the whole machine"),
                );
            } else {
                self.names.insert(name.clone(), ptr.clone());
            }
            match self.state(name, state_value, &ptr, depth, &mut targets) {
                Some(state) => {
                    states.insert(name.clone(), state);
                }
                None => complete = false,
            }
        }
        // Targets: StartAt and every Next/Default/Choice/Catch must name a state here.
        if let Some(start) = &start_at
            && !states_map.contains_key(start)
        {
            self.problem(
                pointer_push(pointer, "StartAt"),
                ProblemCode::UnknownStartAt,
                format!("'StartAt' names the state '{start}', which does not exist"),
            );
        }
        for (ptr, target) in &targets {
            if !states_map.contains_key(target) {
                self.problem(
                    ptr.clone(),
                    ProblemCode::UnknownNext,
                    format!("there is no state named '{target}' to go to"),
                );
            }
        }
        // Reachability and terminal states are read from the raw JSON, so a state whose
        // own fields have problems still counts with the transitions it names.
        if let Some(start) = &start_at
            && states_map.contains_key(start)
        {
            self.reachability(start, states_map, &states_ptr);
        }
        if !states_map.is_empty() && !states_map.values().any(is_terminal) {
            self.problem(
                &states_ptr,
                ProblemCode::NoTerminalState,
                "no state ends the machine: add 'End': true, a Succeed or a Fail state",
            );
        }
        if !complete {
            return None;
        }
        Some(StateMachine {
            comment,
            start_at: start_at?,
            states,
            timeout_seconds,
            version,
            query_language,
        })
    }

    fn reachability(&mut self, start: &str, states: &Map<String, Value>, states_ptr: &str) {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([start]);
        while let Some(name) = queue.pop_front() {
            if !seen.insert(name) {
                continue;
            }
            let Some(state) = states.get(name) else {
                continue;
            };
            for target in raw_transitions(state) {
                if states.contains_key(target) && !seen.contains(target) {
                    queue.push_back(target);
                }
            }
        }
        for name in states.keys() {
            if !seen.contains(name.as_str()) {
                self.problem(
                    pointer_push(states_ptr, name),
                    ProblemCode::UnreachableState,
                    format!("the state '{name}' cannot be reached from 'StartAt'"),
                );
            }
        }
    }

    fn state(
        &mut self,
        name: &str,
        value: &Value,
        pointer: &str,
        depth: usize,
        targets: &mut Vec<(String, String)>,
    ) -> Option<State> {
        let map = self.object(value, pointer, "a state")?;
        let ty = match map.get("Type") {
            None => {
                self.problem(
                    pointer,
                    ProblemCode::MissingField,
                    "a state must have the field 'Type'",
                );
                return None;
            }
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                self.problem(
                    pointer_push(pointer, "Type"),
                    ProblemCode::InvalidType,
                    format!("'Type' must be a string, not {}", type_name(other)),
                );
                return None;
            }
        };
        let language = match self.string(map, pointer, "QueryLanguage").as_deref() {
            None => self.language,
            Some("JSONPath") => {
                if self.language == QueryLanguage::Jsonata {
                    self.problem(
                        pointer_push(pointer, "QueryLanguage"),
                        ProblemCode::QueryLanguageMismatch,
                        "a state cannot use JSONPath when the state machine's 'QueryLanguage' is JSONata",
                    );
                }
                QueryLanguage::JsonPath
            }
            Some("JSONata") => QueryLanguage::Jsonata,
            Some(other) => {
                self.problem(
                    pointer_push(pointer, "QueryLanguage"),
                    ProblemCode::InvalidValue,
                    format!("'QueryLanguage' must be \"JSONPath\" or \"JSONata\", not \"{other}\""),
                );
                self.language
            }
        };
        let jsonata = language == QueryLanguage::Jsonata;
        let mut allowed: Vec<&str> = vec!["Type", "Comment", "QueryLanguage"];
        let specific: &[&str] = match (ty, jsonata) {
            ("Pass", false) => &[
                "InputPath",
                "OutputPath",
                "Parameters",
                "Result",
                "ResultPath",
                "Assign",
                "Next",
                "End",
            ],
            ("Pass", true) => &["Output", "Assign", "Next", "End"],
            ("Task", false) => &[
                "Resource",
                "InputPath",
                "OutputPath",
                "Parameters",
                "ResultSelector",
                "ResultPath",
                "TimeoutSeconds",
                "TimeoutSecondsPath",
                "HeartbeatSeconds",
                "HeartbeatSecondsPath",
                "Credentials",
                "Assign",
                "Retry",
                "Catch",
                "Next",
                "End",
            ],
            ("Task", true) => &[
                "Resource",
                "Arguments",
                "Output",
                "Assign",
                "TimeoutSeconds",
                "HeartbeatSeconds",
                "Credentials",
                "Retry",
                "Catch",
                "Next",
                "End",
            ],
            ("Choice", false) => &["Choices", "Default", "InputPath", "OutputPath", "Assign"],
            ("Choice", true) => &["Choices", "Default", "Output", "Assign"],
            ("Wait", false) => &[
                "Seconds",
                "SecondsPath",
                "Timestamp",
                "TimestampPath",
                "InputPath",
                "OutputPath",
                "Assign",
                "Next",
                "End",
            ],
            ("Wait", true) => &["Seconds", "Timestamp", "Output", "Assign", "Next", "End"],
            ("Succeed", false) => &["InputPath", "OutputPath"],
            ("Succeed", true) => &["Output"],
            ("Fail", false) => &["Error", "ErrorPath", "Cause", "CausePath"],
            ("Fail", true) => &["Error", "Cause"],
            ("Parallel", false) => &[
                "Branches",
                "InputPath",
                "OutputPath",
                "Parameters",
                "ResultSelector",
                "ResultPath",
                "Assign",
                "Retry",
                "Catch",
                "Next",
                "End",
            ],
            ("Parallel", true) => &[
                "Branches",
                "Arguments",
                "Output",
                "Assign",
                "Retry",
                "Catch",
                "Next",
                "End",
            ],
            ("Map", false) => &[
                "ItemProcessor",
                "Iterator",
                "ItemsPath",
                "ItemSelector",
                "Parameters",
                "MaxConcurrency",
                "MaxConcurrencyPath",
                "ToleratedFailurePercentage",
                "ToleratedFailurePercentagePath",
                "ToleratedFailureCount",
                "ToleratedFailureCountPath",
                "ItemReader",
                "ItemBatcher",
                "ResultWriter",
                "Label",
                "InputPath",
                "OutputPath",
                "ResultSelector",
                "ResultPath",
                "Assign",
                "Retry",
                "Catch",
                "Next",
                "End",
            ],
            ("Map", true) => &[
                "ItemProcessor",
                "Iterator",
                "Items",
                "ItemSelector",
                "MaxConcurrency",
                "ToleratedFailurePercentage",
                "ToleratedFailureCount",
                "ItemReader",
                "ItemBatcher",
                "ResultWriter",
                "Label",
                "Output",
                "Assign",
                "Retry",
                "Catch",
                "Next",
                "End",
            ],
            (other, _) => {
                self.problem(
                    pointer_push(pointer, "Type"),
                    ProblemCode::InvalidStateType,
                    format!("'{other}' is not a state type (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)"),
                );
                return None;
            }
        };
        allowed.extend_from_slice(specific);
        let previous = std::mem::replace(&mut self.current, language);
        self.check_fields(map, pointer, &allowed, &format!("a {ty} state"));
        let state = self.state_fields(name, ty, map, pointer, depth, targets, language);
        self.current = previous;
        state
    }

    #[allow(clippy::too_many_arguments)]
    fn state_fields(
        &mut self,
        name: &str,
        ty: &str,
        map: &Map<String, Value>,
        pointer: &str,
        depth: usize,
        targets: &mut Vec<(String, String)>,
        query_language: QueryLanguage,
    ) -> Option<State> {
        let jsonata = query_language == QueryLanguage::Jsonata;
        let name = name.to_owned();
        let comment = self.string(map, pointer, "Comment");
        let assign = self.assign(map, pointer);
        let output = self.jsonata_field(map, pointer, "Output");
        let state = match ty {
            "Pass" => {
                let io = self.io_paths(map, pointer);
                let parameters = self.template(map, pointer, "Parameters");
                let result = map.get("Result").cloned();
                let result_path = self.result_path(map, pointer, "ResultPath");
                let transition = self.transition(map, pointer, targets);
                State::Pass(PassState {
                    name,
                    comment,
                    query_language,
                    assign,
                    output,
                    io,
                    parameters,
                    result,
                    result_path,
                    transition,
                })
            }
            "Task" => {
                let resource = self.required_string(map, pointer, "Resource", "a Task state");
                if let Some(r) = &resource
                    && r.is_empty()
                {
                    self.problem(
                        pointer_push(pointer, "Resource"),
                        ProblemCode::InvalidValue,
                        "'Resource' must not be empty",
                    );
                }
                let io = self.io_paths(map, pointer);
                let parameters = if jsonata {
                    self.jsonata_field(map, pointer, "Arguments")
                } else {
                    self.template(map, pointer, "Parameters")
                };
                let result_selector = self.template(map, pointer, "ResultSelector");
                let result_path = self.result_path(map, pointer, "ResultPath");
                let timeout_seconds =
                    self.number_or_path(map, pointer, "TimeoutSeconds", 1, MAX_SECONDS);
                let heartbeat_seconds =
                    self.number_or_path(map, pointer, "HeartbeatSeconds", 1, MAX_SECONDS);
                if let (Some(NumberOrPath::Value(t)), Some(NumberOrPath::Value(h))) =
                    (&timeout_seconds, &heartbeat_seconds)
                    && h >= t
                {
                    self.problem(
                        pointer_push(pointer, "HeartbeatSeconds"),
                        ProblemCode::InvalidValue,
                        format!(
                            "'HeartbeatSeconds' ({h}) must be smaller than 'TimeoutSeconds' ({t})"
                        ),
                    );
                }
                let credentials = if jsonata {
                    self.jsonata_field(map, pointer, "Credentials")
                } else {
                    self.template(map, pointer, "Credentials")
                };
                let retry = self.retriers(map, pointer);
                let catch = self.catchers(map, pointer, targets);
                let transition = self.transition(map, pointer, targets);
                State::Task(TaskState {
                    name,
                    comment,
                    query_language,
                    assign,
                    output,
                    resource: resource.unwrap_or_default(),
                    io,
                    parameters,
                    result_selector,
                    result_path,
                    timeout_seconds,
                    heartbeat_seconds,
                    credentials,
                    retry,
                    catch,
                    transition,
                })
            }
            "Choice" => {
                let io = self.io_paths(map, pointer);
                let default = self.string(map, pointer, "Default");
                if let Some(d) = &default {
                    targets.push((pointer_push(pointer, "Default"), d.clone()));
                }
                let choices = self.choices(map, pointer, targets);
                State::Choice(ChoiceState {
                    name,
                    comment,
                    query_language,
                    assign,
                    output,
                    io,
                    choices,
                    default,
                })
            }
            "Wait" => {
                let io = self.io_paths(map, pointer);
                let keys = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"];
                let present: Vec<&str> = keys
                    .iter()
                    .copied()
                    .filter(|k| map.contains_key(*k))
                    .collect();
                let wait = match present.as_slice() {
                    [] => {
                        self.problem(
                            pointer,
                            ProblemCode::MissingField,
                            if jsonata {
                                "a Wait state must have exactly one of 'Seconds' or 'Timestamp'"
                            } else {
                                "a Wait state must have exactly one of 'Seconds', 'SecondsPath', 'Timestamp' or 'TimestampPath'"
                            },
                        );
                        None
                    }
                    [one] => self.wait_for(map, pointer, one),
                    [_, rest @ ..] => {
                        for k in rest {
                            self.problem(
                                pointer_push(pointer, k),
                                ProblemCode::MutuallyExclusive,
                                format!("'{k}' cannot be used with '{}'; a Wait state takes exactly one of them", present[0]),
                            );
                        }
                        None
                    }
                };
                let transition = self.transition(map, pointer, targets);
                State::Wait(WaitState {
                    name,
                    comment,
                    query_language,
                    assign,
                    output,
                    io,
                    wait: wait?,
                    transition,
                })
            }
            "Succeed" => State::Succeed(SucceedState {
                name,
                comment,
                query_language,
                output,
                io: self.io_paths(map, pointer),
            }),
            "Fail" => {
                let error = self.fail_text(map, pointer, "Error", "ErrorPath");
                let cause = self.fail_text(map, pointer, "Cause", "CausePath");
                State::Fail(FailState {
                    name,
                    comment,
                    query_language,
                    error,
                    cause,
                })
            }
            "Parallel" => {
                let io = self.io_paths(map, pointer);
                let branches_ptr = pointer_push(pointer, "Branches");
                let mut branches = Vec::new();
                match map.get("Branches") {
                    None => self.problem(
                        pointer,
                        ProblemCode::MissingField,
                        "a Parallel state must have the field 'Branches'",
                    ),
                    Some(Value::Array(items)) => {
                        if items.is_empty() {
                            self.problem(
                                &branches_ptr,
                                ProblemCode::InvalidValue,
                                "'Branches' must contain at least one branch",
                            );
                        }
                        for (i, item) in items.iter().enumerate() {
                            if let Some(m) = self.machine(
                                item,
                                &pointer_push(&branches_ptr, &i.to_string()),
                                depth + 1,
                            ) {
                                branches.push(m);
                            }
                        }
                    }
                    Some(other) => self.problem(
                        &branches_ptr,
                        ProblemCode::InvalidType,
                        format!("'Branches' must be an array, not {}", type_name(other)),
                    ),
                }
                self.current = query_language;
                let parameters = if jsonata {
                    self.jsonata_field(map, pointer, "Arguments")
                } else {
                    self.template(map, pointer, "Parameters")
                };
                let result_selector = self.template(map, pointer, "ResultSelector");
                let result_path = self.result_path(map, pointer, "ResultPath");
                let retry = self.retriers(map, pointer);
                let catch = self.catchers(map, pointer, targets);
                let transition = self.transition(map, pointer, targets);
                State::Parallel(ParallelState {
                    name,
                    comment,
                    query_language,
                    assign,
                    output,
                    io,
                    branches,
                    parameters,
                    result_selector,
                    result_path,
                    retry,
                    catch,
                    transition,
                })
            }
            "Map" => self.map_state(
                name,
                comment,
                map,
                pointer,
                depth,
                targets,
                (query_language, assign, output),
            )?,
            _ => return None,
        };
        Some(state)
    }

    /// `Assign`: an object whose keys name variables; JSONPath values may use `.$`
    /// keys, JSONata values `{% %}` expressions.
    fn assign(&mut self, map: &Map<String, Value>, pointer: &str) -> Option<Template> {
        let value = map.get("Assign")?;
        let ptr = pointer_push(pointer, "Assign");
        let Value::Object(fields) = value else {
            self.problem(
                ptr,
                ProblemCode::InvalidType,
                format!("'Assign' must be a JSON object, not {}", type_name(value)),
            );
            return None;
        };
        for key in fields.keys() {
            let jsonpath_dynamic = self.current == QueryLanguage::JsonPath && key.ends_with(".$");
            let name = if jsonpath_dynamic {
                &key[..key.len() - 2]
            } else {
                key.as_str()
            };
            if key.ends_with(".$") && self.current == QueryLanguage::Jsonata {
                self.problem(
                    pointer_push(&ptr, key),
                    ProblemCode::QueryLanguageMismatch,
                    format!("'{key}': '.$' fields are JSONPath; in a JSONata state write the value as '{{% expression %}}'"),
                );
            } else if !crate::scope::is_variable_name(name) {
                self.problem(
                    pointer_push(&ptr, key),
                    ProblemCode::InvalidVariableName,
                    format!("'{name}' cannot name a variable: use a letter or '_' followed by letters, digits or '_', at most {} characters, and not 'states'", crate::scope::MAX_VARIABLE_NAME_LEN),
                );
            }
        }
        Some(match self.current {
            QueryLanguage::JsonPath => Template::compile(value, &ptr, &mut self.problems),
            QueryLanguage::Jsonata => {
                Template::Jsonata(JTemplate::compile(value, &ptr, &mut self.problems))
            }
        })
    }

    /// A JSONata field holding any JSON, with `{% %}` expressions anywhere inside.
    fn jsonata_field(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Option<Template> {
        let value = map.get(key)?;
        Some(Template::Jsonata(JTemplate::compile(
            value,
            &pointer_push(pointer, key),
            &mut self.problems,
        )))
    }

    /// A JSONata expression field (`{% %}`), or `None` (with a problem) when it is not one.
    fn jsonata_expr(&mut self, value: &Value, pointer: &str, what: &str) -> Option<Expr> {
        match value {
            Value::String(s) if jsonata::is_expression(s) => match Expr::compile(s, pointer) {
                Ok(e) => Some(e),
                Err(message) => {
                    self.problem(pointer, ProblemCode::InvalidJsonata, message);
                    None
                }
            },
            other => {
                self.problem(
                    pointer,
                    ProblemCode::InvalidType,
                    format!(
                        "{what} must be a JSONata expression '{{% ... %}}', not {}",
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// Every `Assign` of a machine checked against the variables of the scopes around it:
    /// a Parallel branch or a Map iteration cannot assign a variable of an outer scope.
    fn variable_scopes(&mut self, machine: &Value, pointer: &str, outer: &HashSet<String>) {
        let Some(Value::Object(states)) = machine.get("States") else {
            return;
        };
        let mut own: HashSet<String> = HashSet::new();
        for (name, state) in states {
            let state_ptr = pointer_push(&pointer_push(pointer, "States"), name);
            for (var, at) in raw_assigned(state) {
                if outer.contains(&var) {
                    self.problem(
                        format!("{state_ptr}{at}"),
                        ProblemCode::OuterVariableAssigned,
                        format!("the variable '{var}' belongs to an outer scope: a Parallel branch or Map iteration can read it but not assign it (pass values out through the output instead)"),
                    );
                }
                own.insert(var);
            }
        }
        let inner: HashSet<String> = outer.union(&own).cloned().collect();
        for (name, state) in states {
            let state_ptr = pointer_push(&pointer_push(pointer, "States"), name);
            if let Some(Value::Array(branches)) = state.get("Branches") {
                for (i, branch) in branches.iter().enumerate() {
                    let ptr = pointer_push(&pointer_push(&state_ptr, "Branches"), &i.to_string());
                    self.variable_scopes(branch, &ptr, &inner);
                }
            }
            for key in ["ItemProcessor", "Iterator"] {
                if let Some(processor) = state.get(key) {
                    let distributed = processor
                        .pointer("/ProcessorConfig/Mode")
                        .and_then(Value::as_str)
                        == Some("DISTRIBUTED");
                    // A distributed Map's iterations are child executions: they see no
                    // outer variables, so they may reuse any name.
                    let seen = if distributed {
                        HashSet::new()
                    } else {
                        inner.clone()
                    };
                    self.variable_scopes(processor, &pointer_push(&state_ptr, key), &seen);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn map_state(
        &mut self,
        name: String,
        comment: Option<String>,
        map: &Map<String, Value>,
        pointer: &str,
        depth: usize,
        targets: &mut Vec<(String, String)>,
        (query_language, assign, output): (QueryLanguage, Option<Template>, Option<Template>),
    ) -> Option<State> {
        let jsonata = query_language == QueryLanguage::Jsonata;
        let io = self.io_paths(map, pointer);
        self.exclusive(map, pointer, "ItemProcessor", "Iterator");
        self.exclusive(map, pointer, "ItemSelector", "Parameters");
        let processor_key = if map.contains_key("ItemProcessor") {
            "ItemProcessor"
        } else {
            "Iterator"
        };
        let processor_ptr = pointer_push(pointer, processor_key);
        let mut processor_config = ProcessorConfig::default();
        let item_processor = match map.get(processor_key) {
            None => {
                self.problem(
                    pointer,
                    ProblemCode::MissingField,
                    "a Map state must have the field 'ItemProcessor' (or the legacy 'Iterator')",
                );
                None
            }
            Some(value) => {
                if processor_key == "ItemProcessor"
                    && let Some(Value::Object(p)) = value.get("ProcessorConfig")
                {
                    processor_config =
                        self.processor_config(p, &pointer_push(&processor_ptr, "ProcessorConfig"));
                } else if let Some(other) = value.get("ProcessorConfig") {
                    self.problem(
                        pointer_push(&processor_ptr, "ProcessorConfig"),
                        ProblemCode::InvalidType,
                        format!(
                            "'ProcessorConfig' must be a JSON object, not {}",
                            type_name(other)
                        ),
                    );
                }
                let machine = self.machine(value, &processor_ptr, depth + 1);
                self.current = query_language;
                machine
            }
        };
        let items = match map.get("Items") {
            Some(v)
                if jsonata && !v.is_array() && !v.as_str().is_some_and(jsonata::is_expression) =>
            {
                self.problem(
                    pointer_push(pointer, "Items"),
                    ProblemCode::InvalidType,
                    format!(
                        "'Items' must be an array or a JSONata expression '{{% ... %}}', not {}",
                        type_name(v)
                    ),
                );
                None
            }
            _ => self.jsonata_field(map, pointer, "Items"),
        };
        let items_path = match self.path_field(map, pointer, "ItemsPath", true, true) {
            PathField::Path(p) => p,
            PathField::Null => {
                self.problem(
                    pointer_push(pointer, "ItemsPath"),
                    ProblemCode::InvalidType,
                    "'ItemsPath' must be a reference path, not null",
                );
                Path::root()
            }
            PathField::Absent | PathField::Invalid => Path::root(),
        };
        let selector_key = if map.contains_key("ItemSelector") {
            "ItemSelector"
        } else {
            "Parameters"
        };
        let item_selector = if jsonata {
            self.jsonata_field(map, pointer, "ItemSelector")
        } else {
            self.template(map, pointer, selector_key)
        };
        let max_concurrency = self
            .number_or_path(map, pointer, "MaxConcurrency", 0, u64::from(u32::MAX))
            .map(|n| match n {
                NumberOrPath::Value(v) => NumberOrPath::Value(u32::try_from(v).unwrap_or(u32::MAX)),
                NumberOrPath::Path(p) => NumberOrPath::Path(p),
                NumberOrPath::Expr(e) => NumberOrPath::Expr(e),
            });
        let tolerated_failure_percentage = if self.exclusive(
            map,
            pointer,
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
        ) {
            None
        } else if let Some(v) = map.get("ToleratedFailurePercentage") {
            match v.as_f64() {
                _ if jsonata && v.as_str().is_some_and(jsonata::is_expression) => self
                    .jsonata_expr(
                        v,
                        &pointer_push(pointer, "ToleratedFailurePercentage"),
                        "'ToleratedFailurePercentage'",
                    )
                    .map(NumberOrPath::Expr),
                Some(f) if (0.0..=100.0).contains(&f) => Some(NumberOrPath::Value(f)),
                _ => {
                    self.problem(
                        pointer_push(pointer, "ToleratedFailurePercentage"),
                        ProblemCode::InvalidValue,
                        format!("'ToleratedFailurePercentage' must be a number between 0 and 100, not {v}"),
                    );
                    None
                }
            }
        } else {
            match self.path_field(map, pointer, "ToleratedFailurePercentagePath", true, true) {
                PathField::Path(p) => Some(NumberOrPath::Path(p)),
                _ => None,
            }
        };
        let tolerated_failure_count =
            self.number_or_path(map, pointer, "ToleratedFailureCount", 0, u64::MAX);
        let objects = |key: &str, this: &mut Self| -> Option<Value> {
            let v = map.get(key)?;
            if !v.is_object() {
                this.problem(
                    pointer_push(pointer, key),
                    ProblemCode::InvalidType,
                    format!("'{key}' must be a JSON object, not {}", type_name(v)),
                );
                return None;
            }
            Some(v.clone())
        };
        let item_reader = objects("ItemReader", self);
        let item_batcher = objects("ItemBatcher", self);
        let result_writer = objects("ResultWriter", self);
        let label = self.string(map, pointer, "Label");
        if let Some(l) = &label
            && l.chars().count() > 40
        {
            self.problem(
                pointer_push(pointer, "Label"),
                ProblemCode::InvalidValue,
                "'Label' must be at most 40 characters",
            );
        }
        let result_selector = self.template(map, pointer, "ResultSelector");
        let result_path = self.result_path(map, pointer, "ResultPath");
        let retry = self.retriers(map, pointer);
        let catch = self.catchers(map, pointer, targets);
        let transition = self.transition(map, pointer, targets);
        Some(State::Map(MapState {
            name,
            comment,
            query_language,
            assign,
            output,
            items,
            io,
            item_processor: item_processor?,
            processor_config,
            items_path,
            item_selector,
            max_concurrency,
            tolerated_failure_percentage,
            tolerated_failure_count,
            item_reader,
            item_batcher,
            result_writer,
            label,
            result_selector,
            result_path,
            retry,
            catch,
            transition,
        }))
    }

    fn processor_config(&mut self, map: &Map<String, Value>, pointer: &str) -> ProcessorConfig {
        self.check_fields(
            map,
            pointer,
            &["Mode", "ExecutionType"],
            "'ProcessorConfig'",
        );
        let mode = match self.string(map, pointer, "Mode").as_deref() {
            None | Some("INLINE") => ProcessorMode::Inline,
            Some("DISTRIBUTED") => ProcessorMode::Distributed,
            Some(other) => {
                self.problem(
                    pointer_push(pointer, "Mode"),
                    ProblemCode::InvalidValue,
                    format!("'Mode' must be \"INLINE\" or \"DISTRIBUTED\", not \"{other}\""),
                );
                ProcessorMode::Inline
            }
        };
        let execution_type = match self.string(map, pointer, "ExecutionType").as_deref() {
            None => None,
            Some("STANDARD") => Some(ExecutionType::Standard),
            Some("EXPRESS") => Some(ExecutionType::Express),
            Some(other) => {
                self.problem(
                    pointer_push(pointer, "ExecutionType"),
                    ProblemCode::InvalidValue,
                    format!("'ExecutionType' must be \"STANDARD\" or \"EXPRESS\", not \"{other}\""),
                );
                None
            }
        };
        ProcessorConfig {
            mode,
            execution_type,
        }
    }

    fn wait_for(&mut self, map: &Map<String, Value>, pointer: &str, key: &str) -> Option<WaitFor> {
        if self.current == QueryLanguage::Jsonata
            && let Some(v @ Value::String(text)) = map.get(key)
            && jsonata::is_expression(text)
        {
            let expr = self.jsonata_expr(v, &pointer_push(pointer, key), &format!("'{key}'"))?;
            return Some(if key == "Seconds" {
                WaitFor::SecondsExpr(expr)
            } else {
                WaitFor::TimestampExpr(expr)
            });
        }
        match key {
            "Seconds" => self
                .integer(map, pointer, "Seconds", 0, MAX_SECONDS)
                .map(WaitFor::Seconds),
            "Timestamp" => {
                let text = self.string(map, pointer, "Timestamp")?;
                match parse_timestamp(&text) {
                    Some(t) => Some(WaitFor::Timestamp(t)),
                    None => {
                        self.problem(
                            pointer_push(pointer, "Timestamp"),
                            ProblemCode::InvalidTimestamp,
                            format!(
                                "'{text}' is not an RFC 3339 timestamp such as 2016-03-14T01:59:00Z"
                            ),
                        );
                        None
                    }
                }
            }
            path_key => match self.path_field(map, pointer, path_key, true, true) {
                PathField::Path(p) if path_key == "SecondsPath" => Some(WaitFor::SecondsPath(p)),
                PathField::Path(p) => Some(WaitFor::TimestampPath(p)),
                PathField::Null => {
                    self.problem(
                        pointer_push(pointer, path_key),
                        ProblemCode::InvalidType,
                        format!("'{path_key}' must be a reference path, not null"),
                    );
                    None
                }
                _ => None,
            },
        }
    }

    fn fail_text(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
        path_key: &str,
    ) -> Option<FailText> {
        if self.exclusive(map, pointer, key, path_key) {
            return None;
        }
        if self.current == QueryLanguage::Jsonata
            && let Some(v @ Value::String(text)) = map.get(key)
            && jsonata::is_expression(text)
        {
            return self
                .jsonata_expr(v, &pointer_push(pointer, key), &format!("'{key}'"))
                .map(FailText::Expr);
        }
        if map.contains_key(key) {
            return self.string(map, pointer, key).map(FailText::Literal);
        }
        let text = self.string(map, pointer, path_key)?;
        let ptr = pointer_push(pointer, path_key);
        if intrinsic::looks_like_call(&text) {
            match intrinsic::parse(&text) {
                Ok(call) if !FAIL_PATH_FUNCTIONS.contains(&call.function) => {
                    self.problem(
                        ptr,
                        ProblemCode::InvalidIntrinsic,
                        format!(
                            "'{path_key}' can only use an intrinsic that returns a string (States.Format, States.JsonToString, States.ArrayGetItem, States.Base64Encode, States.Base64Decode, States.Hash, States.UUID), not {}",
                            call.function.name()
                        ),
                    );
                    None
                }
                Ok(call) => Some(FailText::Call(call)),
                Err(e) => {
                    self.problem(
                        ptr,
                        ProblemCode::InvalidIntrinsic,
                        format!("'{path_key}': {e}"),
                    );
                    None
                }
            }
        } else {
            match Path::parse_reference(&text) {
                Ok(p) => Some(FailText::Path(p)),
                Err(e) => {
                    self.problem(
                        ptr,
                        ProblemCode::InvalidReferencePath,
                        format!("'{path_key}': {e}"),
                    );
                    None
                }
            }
        }
    }

    fn error_equals(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        what: &str,
    ) -> Vec<ErrorName> {
        let ptr = pointer_push(pointer, "ErrorEquals");
        let Some(value) = map.get("ErrorEquals") else {
            self.problem(
                pointer,
                ProblemCode::MissingField,
                format!("{what} must have the field 'ErrorEquals'"),
            );
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.problem(
                ptr,
                ProblemCode::InvalidType,
                format!(
                    "'ErrorEquals' must be an array of strings, not {}",
                    type_name(value)
                ),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.problem(
                &ptr,
                ProblemCode::EmptyErrorEquals,
                "'ErrorEquals' must list at least one error name",
            );
        }
        let mut names = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => names.push(ErrorName::from(s.as_str())),
                other => self.problem(
                    pointer_push(&ptr, &i.to_string()),
                    ProblemCode::InvalidType,
                    format!("an error name must be a string, not {}", type_name(other)),
                ),
            }
        }
        if names.len() > 1
            && let Some(i) = names.iter().position(|n| *n == ErrorName::All)
        {
            self.problem(
                pointer_push(&ptr, &i.to_string()),
                ProblemCode::StatesAllNotAlone,
                "'States.ALL' must appear alone in 'ErrorEquals'",
            );
        }
        names
    }

    fn retriers(&mut self, map: &Map<String, Value>, pointer: &str) -> Vec<Retrier> {
        let ptr = pointer_push(pointer, "Retry");
        let Some(value) = map.get("Retry") else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.problem(
                ptr,
                ProblemCode::InvalidType,
                format!("'Retry' must be an array, not {}", type_name(value)),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let rptr = pointer_push(&ptr, &i.to_string());
            let Some(r) = self.object(item, &rptr, "a retrier") else {
                continue;
            };
            self.check_fields(
                r,
                &rptr,
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ],
                "a retrier",
            );
            let error_equals = self.error_equals(r, &rptr, "a retrier");
            if error_equals.contains(&ErrorName::All) && i + 1 != items.len() {
                self.problem(
                    pointer_push(&rptr, "ErrorEquals"),
                    ProblemCode::StatesAllNotLast,
                    "a retrier with 'States.ALL' must be the last retrier",
                );
            }
            let interval_seconds = self
                .integer(r, &rptr, "IntervalSeconds", 1, MAX_SECONDS)
                .unwrap_or(1);
            let max_attempts = self
                .integer(r, &rptr, "MaxAttempts", 0, MAX_SECONDS)
                .unwrap_or(3);
            let backoff_rate = match r.get("BackoffRate") {
                None => 2.0,
                Some(v) => match v.as_f64() {
                    Some(f) if f >= 1.0 && f.is_finite() => f,
                    _ => {
                        self.problem(
                            pointer_push(&rptr, "BackoffRate"),
                            ProblemCode::InvalidValue,
                            format!("'BackoffRate' must be a number of at least 1.0, not {v}"),
                        );
                        2.0
                    }
                },
            };
            let max_delay_seconds = self.integer(r, &rptr, "MaxDelaySeconds", 1, 31_622_400);
            let jitter_strategy = match self.string(r, &rptr, "JitterStrategy").as_deref() {
                None | Some("NONE") => JitterStrategy::None,
                Some("FULL") => JitterStrategy::Full,
                Some(other) => {
                    self.problem(
                        pointer_push(&rptr, "JitterStrategy"),
                        ProblemCode::InvalidValue,
                        format!("'JitterStrategy' must be \"FULL\" or \"NONE\", not \"{other}\""),
                    );
                    JitterStrategy::None
                }
            };
            let comment = self.string(r, &rptr, "Comment");
            out.push(Retrier {
                error_equals,
                interval_seconds,
                max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
                backoff_rate,
                max_delay_seconds,
                jitter_strategy,
                comment,
            });
        }
        out
    }

    fn catchers(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        targets: &mut Vec<(String, String)>,
    ) -> Vec<Catcher> {
        let ptr = pointer_push(pointer, "Catch");
        let Some(value) = map.get("Catch") else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.problem(
                ptr,
                ProblemCode::InvalidType,
                format!("'Catch' must be an array, not {}", type_name(value)),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let cptr = pointer_push(&ptr, &i.to_string());
            let Some(c) = self.object(item, &cptr, "a catcher") else {
                continue;
            };
            let fields: &[&str] = if self.current == QueryLanguage::Jsonata {
                &["ErrorEquals", "Next", "Output", "Assign", "Comment"]
            } else {
                &["ErrorEquals", "Next", "ResultPath", "Assign", "Comment"]
            };
            self.check_fields(c, &cptr, fields, "a catcher");
            let error_equals = self.error_equals(c, &cptr, "a catcher");
            if error_equals.contains(&ErrorName::All) && i + 1 != items.len() {
                self.problem(
                    pointer_push(&cptr, "ErrorEquals"),
                    ProblemCode::StatesAllNotLast,
                    "a catcher with 'States.ALL' must be the last catcher",
                );
            }
            let next = self.required_string(c, &cptr, "Next", "a catcher");
            if let Some(n) = &next {
                targets.push((pointer_push(&cptr, "Next"), n.clone()));
            }
            let result_path = self.result_path(c, &cptr, "ResultPath");
            let comment = self.string(c, &cptr, "Comment");
            let assign = self.assign(c, &cptr);
            let output = self.jsonata_field(c, &cptr, "Output");
            out.push(Catcher {
                error_equals,
                next: next.unwrap_or_default(),
                result_path,
                assign,
                output,
                comment,
            });
        }
        out
    }

    fn choices(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        targets: &mut Vec<(String, String)>,
    ) -> Vec<ChoiceRule> {
        let ptr = pointer_push(pointer, "Choices");
        let Some(value) = map.get("Choices") else {
            self.problem(
                pointer,
                ProblemCode::MissingField,
                "a Choice state must have the field 'Choices'",
            );
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.problem(
                ptr,
                ProblemCode::InvalidType,
                format!("'Choices' must be an array, not {}", type_name(value)),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.problem(
                &ptr,
                ProblemCode::InvalidValue,
                "'Choices' must contain at least one rule",
            );
        }
        let mut rules = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let rptr = pointer_push(&ptr, &i.to_string());
            let Some(rule) = self.object(item, &rptr, "a Choice rule") else {
                continue;
            };
            let next = match rule.get("Next") {
                None => {
                    self.problem(
                        &rptr,
                        ProblemCode::MissingField,
                        "a top-level Choice rule must have the field 'Next'",
                    );
                    None
                }
                Some(_) => self.string(rule, &rptr, "Next"),
            };
            if let Some(n) = &next {
                targets.push((pointer_push(&rptr, "Next"), n.clone()));
            }
            let comment = self.string(rule, &rptr, "Comment");
            let condition = if self.current == QueryLanguage::Jsonata {
                self.check_fields(
                    rule,
                    &rptr,
                    &["Condition", "Next", "Assign", "Output", "Comment"],
                    "a JSONata Choice rule",
                );
                match rule.get("Condition") {
                    None => {
                        self.problem(
                            &rptr,
                            ProblemCode::MissingField,
                            "a JSONata Choice rule must have the field 'Condition'",
                        );
                        None
                    }
                    Some(Value::Bool(b)) => {
                        Expr::compile(&format!("{{% {b} %}}"), &pointer_push(&rptr, "Condition"))
                            .ok()
                            .map(Condition::Jsonata)
                    }
                    Some(v) => self
                        .jsonata_expr(v, &pointer_push(&rptr, "Condition"), "'Condition'")
                        .map(Condition::Jsonata),
                }
            } else {
                self.condition(rule, &rptr, true, 0)
            };
            let assign = self.assign(rule, &rptr);
            let output = self.jsonata_field(rule, &rptr, "Output");
            if let (Some(condition), Some(next)) = (condition, next) {
                rules.push(ChoiceRule {
                    condition,
                    next,
                    comment,
                    assign,
                    output,
                });
            }
        }
        rules
    }

    fn condition(
        &mut self,
        rule: &Map<String, Value>,
        pointer: &str,
        top: bool,
        depth: usize,
    ) -> Option<Condition> {
        if depth > MAX_NESTING {
            self.problem(
                pointer,
                ProblemCode::InvalidChoiceRule,
                format!("Choice rules are nested more than {MAX_NESTING} deep"),
            );
            return None;
        }
        let mut comparisons: Vec<&str> = Vec::new();
        for key in rule.keys() {
            let k = key.as_str();
            let is_op = matches!(k, "And" | "Or" | "Not")
                || OPERATORS.iter().any(|(n, o)| {
                    *n == k || (o.has_path_form() && k.strip_suffix("Path") == Some(n))
                });
            if is_op {
                comparisons.push(k);
            } else if !(k == "Variable"
                || k == "Comment"
                || (top && (k == "Next" || k == "Assign")))
            {
                let message = if k == "Next" || k == "Assign" {
                    format!("'{k}' is only allowed in a top-level Choice rule")
                } else if k == "Condition" || k == "Output" {
                    format!(
                        "the field '{k}' is only for JSONata Choice rules; set \"QueryLanguage\": \"JSONata\" on the state or the machine to use it"
                    )
                } else {
                    format!("the field '{k}' is not allowed in a Choice rule")
                };
                self.problem(pointer_push(pointer, k), ProblemCode::UnknownField, message);
            }
        }
        let op = match comparisons.as_slice() {
            [] => {
                self.problem(
                    pointer,
                    ProblemCode::InvalidChoiceRule,
                    "the Choice rule has no comparison: add one operator such as 'StringEquals', or 'And'/'Or'/'Not'",
                );
                return None;
            }
            [one] => *one,
            many => {
                self.problem(
                    pointer,
                    ProblemCode::InvalidChoiceRule,
                    format!("the Choice rule has more than one comparison ({}); combine them with 'And' or 'Or'", many.join(", ")),
                );
                return None;
            }
        };
        let op_ptr = pointer_push(pointer, op);
        match op {
            "And" | "Or" => {
                if rule.contains_key("Variable") {
                    self.problem(
                        pointer_push(pointer, "Variable"),
                        ProblemCode::UnknownField,
                        format!("'Variable' is not allowed beside '{op}'"),
                    );
                }
                let Some(Value::Array(items)) = rule.get(op) else {
                    self.problem(
                        op_ptr,
                        ProblemCode::InvalidType,
                        format!("'{op}' must be a non-empty array of Choice rules"),
                    );
                    return None;
                };
                if items.is_empty() {
                    self.problem(
                        &op_ptr,
                        ProblemCode::InvalidChoiceRule,
                        format!("'{op}' must contain at least one rule"),
                    );
                }
                let mut inner = Vec::new();
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    let iptr = pointer_push(&op_ptr, &i.to_string());
                    match self.object(item, &iptr, "a Choice rule") {
                        Some(m) => match self.condition(m, &iptr, false, depth + 1) {
                            Some(c) => inner.push(c),
                            None => ok = false,
                        },
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Some(if op == "And" {
                    Condition::And(inner)
                } else {
                    Condition::Or(inner)
                })
            }
            "Not" => {
                if rule.contains_key("Variable") {
                    self.problem(
                        pointer_push(pointer, "Variable"),
                        ProblemCode::UnknownField,
                        "'Variable' is not allowed beside 'Not'",
                    );
                }
                let inner = rule
                    .get("Not")
                    .and_then(|v| self.object(v, &op_ptr, "'Not'"))?;
                Some(Condition::Not(Box::new(self.condition(
                    inner,
                    &op_ptr,
                    false,
                    depth + 1,
                )?)))
            }
            _ => {
                let (name, is_path) = match OPERATORS.iter().find(|(n, _)| *n == op) {
                    Some(_) => (op, false),
                    None => (op.strip_suffix("Path").unwrap_or(op), true),
                };
                let operator = OPERATORS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, o)| *o)?;
                let variable = match self.path_field(rule, pointer, "Variable", false, true) {
                    PathField::Path(p) => Some(p),
                    PathField::Absent => {
                        self.problem(
                            pointer,
                            ProblemCode::MissingField,
                            format!("a Choice rule with '{op}' must have the field 'Variable'"),
                        );
                        None
                    }
                    PathField::Null => {
                        self.problem(
                            pointer_push(pointer, "Variable"),
                            ProblemCode::InvalidType,
                            "'Variable' must be a path, not null",
                        );
                        None
                    }
                    PathField::Invalid => None,
                };
                let value = rule.get(op)?;
                let operand = if is_path {
                    match self.path_field(rule, pointer, op, false, true) {
                        PathField::Path(p) => Some(Operand::Path(p)),
                        PathField::Null => {
                            self.problem(
                                op_ptr,
                                ProblemCode::InvalidType,
                                format!("'{op}' must be a path, not null"),
                            );
                            None
                        }
                        _ => None,
                    }
                } else {
                    self.literal_operand(operator, value, &op_ptr)
                };
                Some(Condition::Compare {
                    variable: variable?,
                    operator,
                    operand: operand?,
                })
            }
        }
    }

    fn literal_operand(
        &mut self,
        operator: Operator,
        value: &Value,
        pointer: &str,
    ) -> Option<Operand> {
        let name = operator.name();
        match operator.operand_kind() {
            OperandKind::Boolean if value.is_boolean() => Some(Operand::Literal(value.clone())),
            OperandKind::Number if value.is_number() => Some(Operand::Literal(value.clone())),
            OperandKind::String | OperandKind::Pattern if value.is_string() => {
                Some(Operand::Literal(value.clone()))
            }
            OperandKind::Timestamp => match value.as_str() {
                Some(text) => match parse_timestamp(text) {
                    Some(t) => Some(Operand::Timestamp(t)),
                    None => {
                        self.problem(
                            pointer,
                            ProblemCode::InvalidTimestamp,
                            format!("'{name}' must be an RFC 3339 timestamp such as 2016-03-14T01:59:00Z, not '{text}'"),
                        );
                        None
                    }
                },
                None => {
                    self.problem(
                        pointer,
                        ProblemCode::InvalidType,
                        format!(
                            "'{name}' must be a timestamp string, not {}",
                            type_name(value)
                        ),
                    );
                    None
                }
            },
            kind => {
                let expected = match kind {
                    OperandKind::Boolean => "a boolean",
                    OperandKind::Number => "a number",
                    _ => "a string",
                };
                self.problem(
                    pointer,
                    ProblemCode::InvalidType,
                    format!("'{name}' must be {expected}, not {}", type_name(value)),
                );
                None
            }
        }
    }
}
