//! PLACEHOLDER until the pattern branch merges (exact values only).
use serde_json::Value;
#[derive(Debug, Clone)]
pub struct EventPattern {
    v: Value,
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    pub message: String,
}
impl EventPattern {
    pub fn parse(text: &str) -> Result<EventPattern, PatternError> {
        let v: Value = serde_json::from_str(text).map_err(|e| PatternError {
            message: e.to_string(),
        })?;
        Self::from_value(&v)
    }
    pub fn from_value(v: &Value) -> Result<EventPattern, PatternError> {
        if !v.is_object() {
            return Err(PatternError {
                message: "Event pattern is not valid. Reason: not an object".into(),
            });
        }
        Ok(EventPattern { v: v.clone() })
    }
    pub fn matches(&self, event: &Value) -> bool {
        m(&self.v, event)
    }
    pub fn as_value(&self) -> &Value {
        &self.v
    }
}
fn m(p: &Value, e: &Value) -> bool {
    match p {
        Value::Object(o) => o
            .iter()
            .all(|(k, pv)| m(pv, e.get(k).unwrap_or(&Value::Null))),
        Value::Array(a) => match e {
            Value::Array(ea) => ea.iter().any(|x| a.contains(x)),
            x => a.contains(x),
        },
        _ => false,
    }
}
pub struct PatternIndex<K> {
    all: std::collections::BTreeMap<K, EventPattern>,
}
impl<K: Clone + Eq + std::hash::Hash + Ord> Default for PatternIndex<K> {
    fn default() -> Self {
        Self::new()
    }
}
impl<K: Clone + Eq + std::hash::Hash + Ord> PatternIndex<K> {
    pub fn new() -> Self {
        PatternIndex {
            all: Default::default(),
        }
    }
    pub fn insert(&mut self, key: K, p: EventPattern) {
        self.all.insert(key, p);
    }
    pub fn remove(&mut self, key: &K) -> bool {
        self.all.remove(key).is_some()
    }
    pub fn len(&self) -> usize {
        self.all.len()
    }
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
    pub fn matching(&self, e: &Value) -> Vec<K> {
        self.all
            .iter()
            .filter(|(_, p)| p.matches(e))
            .map(|(k, _)| k.clone())
            .collect()
    }
}
