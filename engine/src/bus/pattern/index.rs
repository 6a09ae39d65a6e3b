//! Many patterns compiled into an index, so an event is tested only against plausible patterns.
//!
//! Each pattern picks up to three *index paths*: fields it constrains, outside any `$or`, to
//! exact strings only (typically `source`, `detail-type` and one `detail` field). Patterns that
//! picked the same paths form a group, keyed by the tuple of their strings (one entry per
//! combination of allowed values). An event looks up, in each group, the tuples its own string
//! values at those paths form; patterns with no such field sit in a residual list tested on
//! every event. Every candidate is then verified with the full matcher.
//!
//! Invariant: a pattern matches an event only if the event holds, at each of the pattern's
//! index paths, one of the pattern's strings for it, so the lookup never misses a match.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use serde_json::Value;

use super::{EventPattern, FieldPattern, Matcher, ObjectPattern};

/// At most this many index paths per pattern, and this many value combinations.
const MAX_INDEX_PATHS: usize = 3;
const MAX_COMBINATIONS: usize = 64;
/// Deepest field path considered for indexing.
const MAX_INDEX_DEPTH: usize = 3;
/// An event with more value combinations than this at a group's paths scans the whole group.
const MAX_EVENT_COMBINATIONS: usize = 256;

type FieldPath = Vec<String>;

/// Many patterns keyed by K, compiled into an index so that matching an event does not test
/// every pattern one by one.
pub struct PatternIndex<K> {
    slots: Vec<Option<Slot<K>>>,
    free: Vec<usize>,
    by_key: HashMap<K, usize>,
    groups: Vec<Group>,
    group_by_paths: HashMap<Vec<FieldPath>, usize>,
    residual: Vec<usize>,
}

struct Slot<K> {
    key: K,
    pattern: EventPattern,
    placement: Placement,
}

enum Placement {
    Residual,
    Indexed { group: usize, tuples: Vec<u64> },
}

struct Group {
    paths: Vec<FieldPath>,
    buckets: Buckets,
    members: usize,
}

impl<K: Clone + Eq + Hash + Ord> Default for PatternIndex<K> {
    fn default() -> Self {
        PatternIndex {
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            groups: Vec::new(),
            group_by_paths: HashMap::new(),
            residual: Vec::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> PatternIndex<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pattern, replacing the one already under `key`.
    pub fn insert(&mut self, key: K, pattern: EventPattern) {
        self.remove(&key);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let placement = match choose_index_paths(pattern.root()) {
            Some((paths, tuples)) => {
                let group = match self.group_by_paths.get(&paths) {
                    Some(&g) => g,
                    None => {
                        self.groups.push(Group {
                            paths: paths.clone(),
                            buckets: Buckets::default(),
                            members: 0,
                        });
                        self.group_by_paths.insert(paths, self.groups.len() - 1);
                        self.groups.len() - 1
                    }
                };
                let g = &mut self.groups[group];
                g.members += 1;
                for tuple in &tuples {
                    g.buckets.entry(*tuple).or_default().push(slot);
                }
                Placement::Indexed { group, tuples }
            }
            None => {
                self.residual.push(slot);
                Placement::Residual
            }
        };
        self.by_key.insert(key.clone(), slot);
        self.slots[slot] = Some(Slot {
            key,
            pattern,
            placement,
        });
    }

    /// Removes the pattern under `key`; false when there was none.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(slot) = self.by_key.remove(key) else {
            return false;
        };
        let Some(entry) = self.slots[slot].take() else {
            return false;
        };
        match entry.placement {
            Placement::Residual => self.residual.retain(|&s| s != slot),
            Placement::Indexed { group, tuples } => {
                let g = &mut self.groups[group];
                g.members -= 1;
                for tuple in tuples {
                    if let Some(bucket) = g.buckets.get_mut(&tuple) {
                        bucket.retain(|&s| s != slot);
                        if bucket.is_empty() {
                            g.buckets.remove(&tuple);
                        }
                    }
                }
            }
        }
        self.free.push(slot);
        true
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Keys of every pattern the event matches, sorted ascending, each once.
    pub fn matching(&self, event: &Value) -> Vec<K> {
        let mut candidates: Vec<usize> = self.residual.clone();
        for group in self.groups.iter().filter(|g| g.members > 0) {
            group.collect_candidates(event, &mut candidates);
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut keys: Vec<K> = candidates
            .into_iter()
            .filter_map(|slot| self.slots[slot].as_ref())
            .filter(|entry| entry.pattern.matches(event))
            .map(|entry| entry.key.clone())
            .collect();
        keys.sort();
        keys
    }
}

impl Group {
    fn collect_candidates(&self, event: &Value, out: &mut Vec<usize>) {
        let mut budget = MAX_EVENT_COMBINATIONS;
        if !self.visit(event, 0, TupleHash::new(), out, &mut budget) {
            // Too many combinations in this event: every member of the group is a candidate.
            for bucket in self.buckets.values() {
                out.extend_from_slice(bucket);
            }
        }
    }

    /// Looks up every combination of the event's strings at the group's paths, hashing as it
    /// goes so nothing is allocated; false when the combinations exceed the budget.
    fn visit(
        &self,
        event: &Value,
        depth: usize,
        hash: TupleHash,
        out: &mut Vec<usize>,
        budget: &mut usize,
    ) -> bool {
        let Some(path) = self.paths.get(depth) else {
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            if let Some(bucket) = self.buckets.get(&hash.finish()) {
                out.extend_from_slice(bucket);
            }
            return true;
        };
        for_each_string(event, path, &mut |s| {
            self.visit(event, depth + 1, hash.push(s), out, budget)
        })
    }
}

/// FNV-1a over length-prefixed strings: a fixed function, so an index built twice is the same.
/// Two tuples with one hash only make extra candidates, which the full matcher then refuses.
#[derive(Clone, Copy)]
struct TupleHash(u64);

impl TupleHash {
    fn new() -> TupleHash {
        TupleHash(0xcbf2_9ce4_8422_2325)
    }

    fn push(self, s: &str) -> TupleHash {
        let mut h = self.0;
        for byte in (s.len() as u64).to_le_bytes().iter().chain(s.as_bytes()) {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        TupleHash(h)
    }

    fn finish(self) -> u64 {
        self.0
    }
}

fn tuple_key(values: &[String]) -> u64 {
    values
        .iter()
        .fold(TupleHash::new(), |h, v| h.push(v))
        .finish()
}

/// The bucket keys are already hashes: use them as they are.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Buckets = HashMap<u64, Vec<usize>, BuildHasherDefault<KeyHasher>>;

/// Calls `f` on every string leaf of `value` at `path` (following objects and every element
/// of arrays) until it returns false; false when `f` did.
fn for_each_string(value: &Value, path: &[String], f: &mut dyn FnMut(&str) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().all(|item| for_each_string(item, path, f)),
        Value::Object(map) => match path.split_first() {
            Some((first, rest)) => map
                .get(first)
                .is_none_or(|child| for_each_string(child, rest, f)),
            None => true,
        },
        Value::String(s) if path.is_empty() => f(s),
        _ => true,
    }
}

/// Exact-string-only fields of the pattern's AND part, with their strings, deepest last.
fn indexable_fields(
    pattern: &ObjectPattern,
    prefix: &mut FieldPath,
    out: &mut Vec<(FieldPath, Vec<String>)>,
) {
    for (name, field) in &pattern.fields {
        prefix.push(name.clone());
        match field {
            FieldPattern::Nested(inner) if prefix.len() < MAX_INDEX_DEPTH => {
                indexable_fields(inner, prefix, out)
            }
            FieldPattern::Nested(_) => {}
            FieldPattern::Values(matchers) => {
                let strings: Option<Vec<String>> = matchers
                    .iter()
                    .map(|m| match m {
                        Matcher::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                if let Some(mut strings) = strings {
                    strings.sort();
                    strings.dedup();
                    out.push((prefix.clone(), strings));
                }
            }
        }
        prefix.pop();
    }
}

/// The paths to index a pattern under and the value tuples it accepts there; `None` when
/// nothing can be indexed (the pattern goes to the residual list).
fn choose_index_paths(root: &ObjectPattern) -> Option<(Vec<FieldPath>, Vec<u64>)> {
    let mut fields = Vec::new();
    indexable_fields(root, &mut Vec::new(), &mut fields);
    // Most selective first: fewest allowed values, then shallowest, then by name.
    fields.sort_by(|a, b| (a.1.len(), a.0.len(), &a.0).cmp(&(b.1.len(), b.0.len(), &b.0)));
    let mut chosen: Vec<(FieldPath, Vec<String>)> = Vec::new();
    let mut combinations = 1usize;
    for field in fields {
        if chosen.len() == MAX_INDEX_PATHS {
            break;
        }
        let next = combinations.saturating_mul(field.1.len());
        if next > MAX_COMBINATIONS {
            continue;
        }
        combinations = next;
        chosen.push(field);
    }
    if chosen.is_empty() {
        return None;
    }
    // A canonical path order, so every pattern indexing the same paths shares one group.
    chosen.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tuples: Vec<Vec<String>> = vec![Vec::new()];
    for (_, values) in &chosen {
        tuples = tuples
            .into_iter()
            .flat_map(|tuple| {
                values.iter().map(move |v| {
                    let mut t = tuple.clone();
                    t.push(v.clone());
                    t
                })
            })
            .collect();
    }
    let paths = chosen.into_iter().map(|(path, _)| path).collect();
    Some((paths, tuples.iter().map(|t| tuple_key(t)).collect()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pattern(v: Value) -> EventPattern {
        EventPattern::from_value(&v).unwrap()
    }

    #[test]
    fn chooses_selective_exact_fields_outside_or() {
        let p = pattern(json!({
            "source": ["a", "b"], "detail-type": ["t"],
            "detail": {"state": ["x"], "n": [1]},
            "$or": [{"region": ["r"]}, {"account": ["1"]}]
        }));
        let (paths, tuples) = choose_index_paths(p.root()).unwrap();
        assert_eq!(
            paths,
            vec![
                vec!["detail".to_owned(), "state".to_owned()],
                vec!["detail-type".to_owned()],
                vec!["source".to_owned()],
            ]
        );
        assert_eq!(tuples.len(), 2);
        let p = pattern(json!({"detail": {"n": [{"numeric": [">", 1]}]}}));
        assert!(choose_index_paths(p.root()).is_none());
    }

    #[test]
    fn insert_replace_remove() {
        let mut index = PatternIndex::new();
        index.insert(2, pattern(json!({"source": ["a"]})));
        index.insert(1, pattern(json!({"source": ["a", "b"]})));
        index.insert(3, pattern(json!({"detail": {"n": [{"exists": true}]}})));
        let event = json!({"source": "a", "detail": {"n": 1}});
        assert_eq!(index.matching(&event), vec![1, 2, 3]);
        index.insert(2, pattern(json!({"source": ["b"]})));
        assert_eq!(index.matching(&event), vec![1, 3]);
        assert!(index.remove(&3));
        assert!(!index.remove(&3));
        assert_eq!(index.len(), 2);
        assert_eq!(index.matching(&event), vec![1]);
        assert_eq!(index.matching(&json!({"source": "b"})), vec![1, 2]);
    }
}
