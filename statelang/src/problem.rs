//! Validation problems: where (JSON Pointer), what (stable code) and a message for people.

use std::fmt;

/// One thing wrong with a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON Pointer (RFC 6901) to the offending value, e.g. `/States/Check/Choices/2/Next`.
    /// `""` is the whole document.
    pub pointer: String,
    pub code: ProblemCode,
    pub message: String,
}

impl Problem {
    pub fn new(pointer: impl Into<String>, code: ProblemCode, message: impl Into<String>) -> Self {
        Problem {
            pointer: pointer.into(),
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}: {}", self.code, self.message)
    }
}

impl std::error::Error for Problem {}

macro_rules! problem_codes {
    ($($variant:ident => $text:literal, $doc:literal;)*) => {
        /// Stable problem codes. `Display` gives the SCREAMING_SNAKE spelling, which
        /// never changes once released (tools may match on it).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProblemCode {
            $(#[doc = $doc] $variant,)*
        }

        impl ProblemCode {
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $text,)*
                }
            }
        }
    };
}

problem_codes! {
    InvalidJson => "INVALID_JSON", "The document is not JSON.";
    InvalidType => "INVALID_TYPE", "A field has the wrong JSON type.";
    MissingField => "MISSING_FIELD", "A required field is absent.";
    UnknownField => "UNKNOWN_FIELD", "A field not allowed here (or misspelt).";
    UnsupportedFeature => "UNSUPPORTED_FEATURE", "Valid ASL that Stepyard does not run yet.";
    MutuallyExclusive => "MUTUALLY_EXCLUSIVE", "Two fields that cannot appear together.";
    InvalidValue => "INVALID_VALUE", "A value out of range or not one of the allowed values.";
    InvalidStateType => "INVALID_STATE_TYPE", "`Type` is not one of the eight state types.";
    UnknownStartAt => "UNKNOWN_START_AT", "`StartAt` names no state.";
    UnknownNext => "UNKNOWN_NEXT", "`Next` or `Default` names no state.";
    UnreachableState => "UNREACHABLE_STATE", "No path from `StartAt` leads to the state.";
    MissingTransition => "MISSING_TRANSITION", "A state has neither `Next` nor `End`.";
    ConflictingTransition => "CONFLICTING_TRANSITION", "A state has both `Next` and `End`, or a terminal state has `Next`.";
    NoTerminalState => "NO_TERMINAL_STATE", "No state ends the machine.";
    NameTooLong => "NAME_TOO_LONG", "A state name is longer than 80 characters.";
    DuplicateStateName => "DUPLICATE_STATE_NAME", "Two states share a name (names are unique across the whole machine, branches included).";
    InvalidPath => "INVALID_PATH", "Not a valid JSONPath.";
    InvalidReferencePath => "INVALID_REFERENCE_PATH", "Not a valid reference path (single node, `.` and `[]` only).";
    InvalidIntrinsic => "INVALID_INTRINSIC", "An intrinsic function call that does not parse or has bad arguments.";
    InvalidPayloadTemplate => "INVALID_PAYLOAD_TEMPLATE", "A `.$` field whose value is not a path or intrinsic call, or a duplicate field.";
    InvalidTimestamp => "INVALID_TIMESTAMP", "Not an RFC 3339 timestamp.";
    EmptyErrorEquals => "EMPTY_ERROR_EQUALS", "`ErrorEquals` is empty.";
    StatesAllNotAlone => "STATES_ALL_NOT_ALONE", "`States.ALL` shares its `ErrorEquals` with other names.";
    StatesAllNotLast => "STATES_ALL_NOT_LAST", "A retrier or catcher with `States.ALL` is not the last one.";
    InvalidChoiceRule => "INVALID_CHOICE_RULE", "A Choice rule with no comparison, or with more than one.";
    InvalidJsonata => "INVALID_JSONATA", "A `{% %}` JSONata expression that does not parse.";
    QueryLanguageMismatch => "QUERY_LANGUAGE_MISMATCH", "A JSONPath-only field in a JSONata state, a JSONata-only field in a JSONPath state, or a JSONPath state in a JSONata machine.";
    InvalidVariableName => "INVALID_VARIABLE_NAME", "An `Assign` key that cannot name a variable (letters, digits, `_`; at most 80; not `states`).";
    OuterVariableAssigned => "OUTER_VARIABLE_ASSIGNED", "A Parallel branch or Map iteration assigns a variable of an enclosing scope.";
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Appends one reference token to a JSON Pointer, escaping `~` and `/` (RFC 6901).
pub fn pointer_push(base: &str, token: &str) -> String {
    let mut out = String::with_capacity(base.len() + token.len() + 1);
    out.push_str(base);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_distinct_screaming_snake_case() {
        let mut seen = HashSet::new();
        for code in ProblemCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} is used twice");
            assert!(
                text.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{text}"
            );
        }
    }

    #[test]
    fn pointers_escape_slash_and_tilde() {
        assert_eq!(pointer_push("/States", "a/b~c"), "/States/a~1b~0c");
        let problem = Problem::new("", ProblemCode::InvalidJson, "bad");
        assert_eq!(problem.to_string(), "/: INVALID_JSON: bad");
    }
}
