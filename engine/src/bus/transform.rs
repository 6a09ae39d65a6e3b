//! EventBridge's InputTransformer: `InputPathsMap` names values in the event by JSONPath, and
//! `InputTemplate` places them, as `<name>`, in the text delivered to the target.
//!
//! AWS's rules ("Transforming target input"): a template that is JSON gets each placeholder
//! outside a string literal replaced by the value's JSON (strings gain their quotes), and each
//! placeholder inside a string literal replaced by the value's text (a string without its
//! quotes; an object or array as JSON with its inner quotes removed, as AWS does). A template
//! that is not JSON is plain text: every placeholder becomes the value's text. A path that
//! selects nothing gives `null` outside quotes and nothing inside quotes or in plain text.
//! Reserved placeholders: `<aws.events.rule-arn>`, `<aws.events.rule-name>`,
//! `<aws.events.event.ingestion-time>`, `<aws.events.event>` (the event without `detail`) and
//! `<aws.events.event.json>` (the whole event). `<` followed by anything else is literal text.
//!
//! Deliberate difference: text placed inside a string literal is escaped for JSON (AWS inserts
//! it unescaped, which yields invalid JSON when a value holds a quote or a backslash).

use serde_json::Value;
use stepyard_statelang::Path;

/// AWS's limits: at most 100 InputPathsMap entries, keys and paths up to 256 characters, a
/// template of 1 to 8192 characters.
const MAX_PATHS: usize = 100;
const MAX_KEY_LEN: usize = 256;
const MAX_PATH_LEN: usize = 256;
const MAX_TEMPLATE_LEN: usize = 8192;

const RULE_ARN: &str = "aws.events.rule-arn";
const RULE_NAME: &str = "aws.events.rule-name";
const INGESTION_TIME: &str = "aws.events.event.ingestion-time";
const EVENT: &str = "aws.events.event";
const EVENT_JSON: &str = "aws.events.event.json";
const RESERVED: &[&str] = &[RULE_ARN, RULE_NAME, INGESTION_TIME, EVENT, EVENT_JSON];

/// EventBridge's InputTransformer: InputPathsMap + InputTemplate.
#[derive(Debug, Clone)]
pub struct InputTransformer {
    paths: Vec<(String, Path)>,
    pieces: Vec<Piece>,
    json: bool,
}

/// A validation failure, worded like AWS's ValidationException.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransformError {
    pub message: String,
}

fn invalid(message: impl Into<String>) -> TransformError {
    TransformError {
        message: message.into(),
    }
}

/// The values EventBridge provides as reserved placeholders.
pub struct Reserved<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    pub ingestion_time: &'a str,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    /// `slot` indexes `paths`, or is `paths.len() + i` for `RESERVED[i]`.
    Placeholder {
        slot: usize,
        quoted: bool,
    },
}

impl InputTransformer {
    /// Validates as AWS does: at most 100 keys; key names; each value a valid JSONPath; the
    /// reserved `aws.events.*` names not redefinable; a JSON template with no placeholder as
    /// an object key.
    pub fn new(
        input_paths_map: &[(String, String)],
        input_template: &str,
    ) -> Result<Self, TransformError> {
        if input_paths_map.len() > MAX_PATHS {
            return Err(invalid(format!(
                "InputPathsMap has {} entries; at most {MAX_PATHS} are allowed",
                input_paths_map.len()
            )));
        }
        let mut paths: Vec<(String, Path)> = Vec::with_capacity(input_paths_map.len());
        for (key, path) in input_paths_map {
            validate_key(key)?;
            if paths.iter().any(|(k, _)| k == key) {
                return Err(invalid(format!(
                    "InputPathsMap key '{key}' is defined twice"
                )));
            }
            paths.push((key.clone(), parse_path(key, path)?));
        }
        let length = input_template.chars().count();
        if !(1..=MAX_TEMPLATE_LEN).contains(&length) {
            return Err(invalid(format!(
                "InputTemplate must be between 1 and {MAX_TEMPLATE_LEN} characters long"
            )));
        }
        let names: Vec<&str> = paths
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(RESERVED.iter().copied())
            .collect();
        let scan = scan_template(input_template, &names);
        // The template is JSON when it parses with placeholders stood in for.
        let mut probe = String::with_capacity(input_template.len());
        for piece in &scan.pieces {
            match piece {
                Piece::Text(t) => probe.push_str(t),
                Piece::Placeholder { quoted: false, .. } => probe.push_str("null"),
                Piece::Placeholder { quoted: true, .. } => {}
            }
        }
        let json = serde_json::from_str::<Value>(&probe).is_ok();
        let object = input_template.trim_start().starts_with('{');
        if let Some(name) = scan.key_placeholder.filter(|_| json || object) {
            return Err(invalid(format!(
                "InputTemplate uses the placeholder <{name}> as an object key, which is not allowed"
            )));
        }
        if !json && object {
            return Err(invalid(
                "InputTemplate is a JSON object but is not valid JSON",
            ));
        }
        Ok(InputTransformer {
            paths,
            pieces: scan.pieces,
            json,
        })
    }

    /// The text delivered to the target.
    pub fn apply(&self, event: &Value, reserved: &Reserved<'_>) -> Result<String, TransformError> {
        let mut out = String::new();
        for piece in &self.pieces {
            let (slot, quoted) = match piece {
                Piece::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Piece::Placeholder { slot, quoted } => (*slot, *quoted),
            };
            let value = self.value_of(slot, event, reserved);
            match (self.json, quoted, value) {
                (true, false, Some(v)) => out.push_str(&v.to_string()),
                (true, false, None) => out.push_str("null"),
                (true, true, Some(v)) => push_escaped(&mut out, &quoted_text(&v)),
                (false, _, Some(v)) => out.push_str(&plain_text(&v)),
                (_, _, None) => {}
            }
        }
        Ok(out)
    }

    fn value_of(&self, slot: usize, event: &Value, reserved: &Reserved<'_>) -> Option<Value> {
        if let Some((_, path)) = self.paths.get(slot) {
            return path
                .select(
                    event,
                    &stepyard_statelang::Scope::context_only(&Value::Null),
                )
                .map(|v| v.into_owned());
        }
        let name = RESERVED.get(slot - self.paths.len())?;
        Some(match *name {
            RULE_ARN => Value::from(reserved.rule_arn),
            RULE_NAME => Value::from(reserved.rule_name),
            INGESTION_TIME => Value::from(reserved.ingestion_time),
            EVENT => match event {
                Value::Object(map) => {
                    let mut without_detail = map.clone();
                    without_detail.shift_remove("detail");
                    Value::Object(without_detail)
                }
                other => other.clone(),
            },
            _ => event.clone(),
        })
    }
}

fn validate_key(key: &str) -> Result<(), TransformError> {
    if RESERVED.contains(&key) || key.to_ascii_lowercase().starts_with("aws") {
        return Err(invalid(format!(
            "InputPathsMap key '{key}' is reserved: keys cannot start with \"AWS\""
        )));
    }
    let valid_chars = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if key.is_empty() || key.len() > MAX_KEY_LEN || !valid_chars {
        return Err(invalid(format!(
            "InputPathsMap key '{key}' must be 1 to {MAX_KEY_LEN} characters of [A-Za-z0-9_-]"
        )));
    }
    Ok(())
}

/// Checks EventBridge's JSONPath subset (dot notation with letters, digits, `_`, `-`, `/`;
/// array indices; `*` wildcards) and compiles it in bracket form.
fn parse_path(key: &str, text: &str) -> Result<Path, TransformError> {
    let bad = || {
        invalid(format!(
            "InputPathsMap value '{text}' for key '{key}' is not a valid JSON path"
        ))
    };
    if text.len() > MAX_PATH_LEN {
        return Err(bad());
    }
    let rest = text.strip_prefix('$').ok_or_else(bad)?;
    let mut bracketed = String::from("$");
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || matches!(n, '_' | '-' | '/' | '*') {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if name == "*" {
                    bracketed.push_str("[*]");
                } else if !name.is_empty() && !name.contains('*') {
                    bracketed.push_str("['");
                    bracketed.push_str(&name);
                    bracketed.push_str("']");
                } else {
                    return Err(bad());
                }
            }
            '[' => {
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    inner.push(n);
                }
                if inner == "*" || (!inner.is_empty() && inner.chars().all(|d| d.is_ascii_digit()))
                {
                    bracketed.push('[');
                    bracketed.push_str(&inner);
                    bracketed.push(']');
                } else {
                    return Err(bad());
                }
            }
            _ => return Err(bad()),
        }
    }
    match Path::parse(&bracketed) {
        // `$name` would be a workflow variable; an event has none.
        Ok(path) if *path.root_kind() == stepyard_statelang::Root::Input => Ok(path),
        _ => Err(bad()),
    }
}

struct Scan {
    pieces: Vec<Piece>,
    /// A placeholder used where a JSON object key goes, if any.
    key_placeholder: Option<String>,
}

/// Splits the template into text and placeholders, noting which are inside string literals.
fn scan_template(template: &str, names: &[&str]) -> Scan {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut key_placeholder = None;
    let mut in_string = false;
    let mut escaped = false;
    // The placeholder seen in the current string literal, to check if that literal is a key.
    let mut in_this_string: Option<String> = None;
    let mut last_outside: Option<String> = None;
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '<'
            && let Some((slot, len)) = placeholder_at(&chars[i + 1..], names)
        {
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            let name: String = chars[i + 1..i + 1 + len].iter().collect();
            if in_string {
                in_this_string = Some(name);
            } else {
                last_outside = Some(name);
            }
            pieces.push(Piece::Placeholder {
                slot,
                quoted: in_string,
            });
            i += len + 2;
            continue;
        }
        text.push(c);
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                if let Some(name) = in_this_string.take()
                    && next_significant(&chars[i + 1..]) == Some(':')
                {
                    key_placeholder.get_or_insert(name);
                }
            }
        } else if c == '"' {
            in_string = true;
            last_outside = None;
        } else if c == ':' {
            if let Some(name) = last_outside.take() {
                key_placeholder.get_or_insert(name);
            }
        } else if !c.is_whitespace() {
            last_outside = None;
        }
        i += 1;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Scan {
        pieces,
        key_placeholder,
    }
}

fn next_significant(chars: &[char]) -> Option<char> {
    chars.iter().copied().find(|c| !c.is_whitespace())
}

/// `name>` at the start of `chars` for a known name: its slot and the name's length.
fn placeholder_at(chars: &[char], names: &[&str]) -> Option<(usize, usize)> {
    let end = chars
        .iter()
        .take(MAX_KEY_LEN + 40)
        .position(|&c| c == '>')?;
    let name: String = chars[..end].iter().collect();
    let slot = names.iter().position(|n| *n == name)?;
    Some((slot, end))
}

/// A value's text inside a string literal: strings bare, objects and arrays without quotes.
fn quoted_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(_) | Value::Array(_) => value.to_string().replace('"', ""),
        other => other.to_string(),
    }
}

/// A value's text in a plain-text template: strings bare, everything else as JSON.
fn plain_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Appends `text` escaped as the inside of a JSON string literal.
fn push_escaped(out: &mut String, text: &str) {
    let quoted = Value::from(text).to_string();
    out.push_str(&quoted[1..quoted.len() - 1]);
}
