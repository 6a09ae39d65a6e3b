//! What evaluation sees besides the state's data: the context object (`$$`,
//! `$states.context`), the workflow variables (`$name`), and for JSONata's `Output` and
//! `Assign` the state's result (`$states.result`) or error output (`$states.errorOutput`).

use serde_json::{Map, Value};

/// Variables a state assigns, or the variables of one scope: name → value.
pub type Vars = Map<String, Value>;

/// Where `$name` is looked up. The engine implements it over its nested scopes (a Map
/// iteration or Parallel branch sees the variables of the scopes around it).
pub trait Variables: Sync {
    fn get(&self, name: &str) -> Option<&Value>;
}

impl Variables for Map<String, Value> {
    fn get(&self, name: &str) -> Option<&Value> {
        Map::get(self, name)
    }
}

/// No variables at all.
pub struct NoVariables;

impl Variables for NoVariables {
    fn get(&self, _name: &str) -> Option<&Value> {
        None
    }
}

static NO_VARIABLES: NoVariables = NoVariables;

/// Everything an evaluation reads besides the state's own data.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// The context object (`$$` in JSONPath, `$states.context` in JSONata).
    pub context: &'a Value,
    /// The workflow variables visible to the state, with their values from before it ran.
    pub vars: &'a dyn Variables,
    pub(crate) result: Option<&'a Value>,
    pub(crate) error_output: Option<&'a Value>,
}

impl<'a> Scope<'a> {
    pub fn new(context: &'a Value, vars: &'a dyn Variables) -> Scope<'a> {
        Scope {
            context,
            vars,
            result: None,
            error_output: None,
        }
    }

    /// A scope with the context object and no variables.
    pub fn context_only(context: &'a Value) -> Scope<'a> {
        Scope::new(context, &NO_VARIABLES)
    }

    pub(crate) fn with_result(self, result: &'a Value) -> Scope<'a> {
        Scope {
            result: Some(result),
            ..self
        }
    }

    pub(crate) fn with_error_output(self, error_output: &'a Value) -> Scope<'a> {
        Scope {
            error_output: Some(error_output),
            ..self
        }
    }

    pub(crate) fn with_context(self, context: &'a Value) -> Scope<'a> {
        Scope { context, ..self }
    }
}

/// Largest serialized size of the variables one state assigns (AWS: 256 KiB).
pub const MAX_ASSIGNED_BYTES: usize = 256 * 1024;
/// Largest serialized size of all the variables of an execution (AWS: 10 MiB).
pub const MAX_TOTAL_VARIABLE_BYTES: usize = 10 * 1024 * 1024;
/// Longest variable name.
pub const MAX_VARIABLE_NAME_LEN: usize = 80;

pub(crate) fn is_variable_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Whether `name` can name a variable: a letter or `_`, then letters, digits and `_`,
/// at most 80 characters, and not the reserved `states`.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first == '_' || first.is_alphabetic())
        && chars.all(is_variable_char)
        && name.chars().count() <= MAX_VARIABLE_NAME_LEN
        && name != "states"
}

/// The serialized size of a set of variables, as the limits count it.
pub fn variables_size(vars: &Vars) -> usize {
    vars.iter().map(|(k, v)| variable_size(k, v)).sum()
}

/// The size one variable counts for: its name and its value's JSON text.
pub fn variable_size(name: &str, value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing into a counter cannot fail; the text is never built.
    let _ = serde_json::to_writer(&mut count, value);
    name.len() + count.0
}
