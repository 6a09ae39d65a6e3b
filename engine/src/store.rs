//! The store: narrow traits over one sled tree, and the group committer that makes writes durable.
//!
//! # Key layout (format 1)
//!
//! Everything lives in one sled tree, `stepyard`, so that one transition (execution record,
//! history chunk, timers, tokens, dispatches) is one atomic `apply_batch`. Each key starts with a
//! table tag byte; a tag is never reused for another meaning.
//!
//! | tag | key | value |
//! |---|---|---|
//! | `V` | `V format` | `[1]`: the layout version |
//! | `M` | `M name` | [`StateMachineRecord`] |
//! | `D` | `D name 0x00 revision` | [`DefinitionRecord`]: every revision (an execution may still run it; listed as the versions) |
//! | `E` | `E sm:exec` | [`ExecutionRecord`] (summary plus the interpreter's runtime) |
//! | `I` | `I sm 0x00 seq(u64 BE)` | `sm:exec`: executions of a state machine in start order |
//! | `H` | `H sm:exec 0x00 first_id(u64 BE)` | a chunk: the events one commit appended, each `[id, previous id, timestamp ms, type code, details]` |
//! | `T` | `T due_ms(u64 BE) sm:exec 0x00 timer(u64 BE)` | [`TimerRecord`]: time-ordered timers |
//! | `K` | `K token` | [`TokenRecord`]: task tokens of open callback and activity tasks |
//! | `P` | `P sm:exec 0x00 invocation` | [`DispatchRecord`]: worker calls to (re)make on open |
//! | `A` | `A name` | [`ActivityRecord`] |
//! | `Q` | `Q activity 0x00 seq(u64 BE)` | [`ActivityQueueRecord`]: activity tasks not yet handed out |
//!
//! Names never contain `:` or bytes below 0x20, so `sm:exec` and the 0x00 separator are unambiguous.
//!
//! # Record format
//!
//! Every value is one format byte (`1`) followed by the record as JSON. A reader meeting another
//! format byte fails with [`Error::Corrupt`] instead of guessing.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::history::HistoryEvent;
use crate::records::*;

const FORMAT: u8 = 1;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT);
    // Serializing our own records into a Vec cannot fail: no maps with non-string keys.
    serde_json::to_writer(&mut out, value).expect("records serialize");
    out
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => {
            serde_json::from_slice(rest).map_err(|e| Error::Corrupt(e.to_string()))
        }
        Some((v, _)) => Err(Error::Corrupt(format!("unknown record format {v}"))),
        None => Err(Error::Corrupt("empty record".into())),
    }
}

mod keys {
    pub fn sm(name: &str) -> Vec<u8> {
        cat(b'M', &[name.as_bytes()])
    }
    pub fn definition(name: &str, revision: &str) -> Vec<u8> {
        cat(b'D', &[name.as_bytes(), &[0], revision.as_bytes()])
    }
    pub fn execution(exec_key: &str) -> Vec<u8> {
        cat(b'E', &[exec_key.as_bytes()])
    }
    pub fn exec_index(sm: &str, seq: u64) -> Vec<u8> {
        cat(b'I', &[sm.as_bytes(), &[0], &seq.to_be_bytes()])
    }
    pub fn exec_index_prefix(sm: &str) -> Vec<u8> {
        cat(b'I', &[sm.as_bytes(), &[0]])
    }
    pub fn history(exec_key: &str, first_id: u64) -> Vec<u8> {
        cat(b'H', &[exec_key.as_bytes(), &[0], &first_id.to_be_bytes()])
    }
    pub fn history_prefix(exec_key: &str) -> Vec<u8> {
        cat(b'H', &[exec_key.as_bytes(), &[0]])
    }
    pub fn timer(due_ms: u64, exec_key: &str, timer: u64) -> Vec<u8> {
        cat(
            b'T',
            &[
                &due_ms.to_be_bytes(),
                exec_key.as_bytes(),
                &[0],
                &timer.to_be_bytes(),
            ],
        )
    }
    pub fn timer_upto(due_ms: u64) -> Vec<u8> {
        cat(b'T', &[&due_ms.to_be_bytes()])
    }
    pub fn token(token: &str) -> Vec<u8> {
        cat(b'K', &[token.as_bytes()])
    }
    pub fn dispatch(exec_key: &str, invocation: &str) -> Vec<u8> {
        cat(b'P', &[exec_key.as_bytes(), &[0], invocation.as_bytes()])
    }
    pub fn activity(name: &str) -> Vec<u8> {
        cat(b'A', &[name.as_bytes()])
    }
    pub fn activity_queue(name: &str, seq: u64) -> Vec<u8> {
        cat(b'Q', &[name.as_bytes(), &[0], &seq.to_be_bytes()])
    }
    pub fn format() -> Vec<u8> {
        b"Vformat".to_vec()
    }
    fn cat(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.push(tag);
        for part in parts {
            out.extend_from_slice(part);
        }
        out
    }
}

/// The sled database and its one tree. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
}

impl SledStore {
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|err| match err {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    Error::StoreLocked {
                        path: path.to_path_buf(),
                    }
                }
                other => Error::from(other),
            })?;
        let tree = db.open_tree("stepyard")?;
        match tree.get(keys::format())? {
            None => {
                tree.insert(keys::format(), vec![FORMAT])?;
            }
            Some(v) if v.as_ref() == [FORMAT] => {}
            Some(v) => {
                return Err(Error::Corrupt(format!(
                    "data folder has key layout {:?}; this build reads layout {FORMAT}",
                    v.as_ref()
                )));
            }
        }
        Ok(SledStore { db, tree })
    }

    /// Another tree of the same database, for a subsystem with its own key space (the event
    /// bus, topics). It is flushed by the same flushes; a batch is atomic within one tree.
    pub fn sibling(&self, tree: &str) -> Result<SledStore> {
        Ok(SledStore {
            db: self.db.clone(),
            tree: self.db.open_tree(tree)?,
        })
    }

    /// Writes this tree's layout version on first use and refuses a tree of another layout, so a
    /// subsystem never guesses at keys it does not know. `what` names the tree in the error.
    pub fn check_layout(&self, what: &str, format: u8) -> Result<()> {
        match self.tree.get(b"Vformat")? {
            None => {
                self.tree.insert(b"Vformat", vec![format])?;
            }
            Some(v) if v.as_ref() == [format] => {}
            Some(v) => {
                return Err(Error::Corrupt(format!(
                    "the {what} tree has layout {:?}; this build reads layout {format}",
                    v.as_ref()
                )));
            }
        }
        Ok(())
    }

    /// The raw tree, for a sibling subsystem's own typed store module.
    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// A number never handed out before in this data folder (monotonic).
    pub fn next_seq(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    pub async fn flush(&self) -> Result<()> {
        self.db.flush_async().await?;
        Ok(())
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.tree.get(key)? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>> {
        self.tree
            .scan_prefix(prefix)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// State machines and their revisions.
pub(crate) trait StateMachineStore {
    fn state_machines(&self) -> Result<Vec<StateMachineRecord>>;
    fn definition(&self, name: &str, revision: &str) -> Result<Option<DefinitionRecord>>;
    /// Every stored revision of `name`, with its revision id, in key order.
    fn definitions(&self, name: &str) -> Result<Vec<(String, DefinitionRecord)>>;
}

/// Execution records and the per-state-machine index.
pub(crate) trait ExecutionStore {
    fn execution(&self, exec_key: &str) -> Result<Option<ExecutionRecord>>;
    /// Execution keys of a state machine, newest first, with seq below `before`.
    fn executions_of(
        &self,
        sm: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, String)>>;
}

/// History chunks.
pub(crate) trait HistoryStore {
    /// Events with id > `after` (ascending), or with id < `before` (descending when `reverse`).
    fn history(
        &self,
        exec_key: &str,
        cursor: Option<u64>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<HistoryEvent>>;
}

/// The time-ordered timer index.
pub(crate) trait TimerStore {
    /// Timers due at or before `now_ms`, oldest first.
    fn due_timers(&self, now_ms: u64, limit: usize) -> Result<Vec<TimerRecord>>;
    /// When the earliest timer after `now_ms` is due.
    fn next_due_after(&self, now_ms: u64) -> Result<Option<u64>>;
}

/// Task tokens, dispatches to remake, activities and their queues.
pub(crate) trait TaskStore {
    fn token(&self, token: &str) -> Result<Option<TokenRecord>>;
    fn dispatches(&self) -> Result<Vec<DispatchRecord>>;
    fn activities(&self) -> Result<Vec<ActivityRecord>>;
    fn activity_queue(&self) -> Result<Vec<ActivityQueueRecord>>;
}

impl StateMachineStore for SledStore {
    fn state_machines(&self) -> Result<Vec<StateMachineRecord>> {
        self.scan(b"M")
    }
    fn definition(&self, name: &str, revision: &str) -> Result<Option<DefinitionRecord>> {
        self.get(&keys::definition(name, revision))
    }
    fn definitions(&self, name: &str) -> Result<Vec<(String, DefinitionRecord)>> {
        let prefix = keys::definition(name, "");
        self.tree
            .scan_prefix(&prefix)
            .map(|kv| {
                let (key, value) = kv?;
                let revision = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                Ok((revision, decode(&value)?))
            })
            .collect()
    }
}

impl ExecutionStore for SledStore {
    fn execution(&self, exec_key: &str) -> Result<Option<ExecutionRecord>> {
        self.get(&keys::execution(exec_key))
    }
    fn executions_of(
        &self,
        sm: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, String)>> {
        let prefix = keys::exec_index_prefix(sm);
        let end = keys::exec_index(sm, before.unwrap_or(u64::MAX));
        let mut out = Vec::new();
        for kv in self.tree.range(prefix..end).rev() {
            let (k, v) = kv?;
            let seq = u64::from_be_bytes(
                k[k.len() - 8..]
                    .try_into()
                    .map_err(|_| Error::Corrupt("index key".into()))?,
            );
            out.push((seq, decode::<String>(&v)?));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

impl HistoryStore for SledStore {
    fn history(
        &self,
        exec_key: &str,
        cursor: Option<u64>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<HistoryEvent>> {
        let prefix = keys::history_prefix(exec_key);
        let mut out = Vec::new();
        if !reverse {
            let after = cursor.unwrap_or(0);
            // Start at the chunk holding event `after + 1`.
            let start = match self
                .tree
                .range(prefix.clone()..=keys::history(exec_key, after + 1))
                .next_back()
            {
                Some(kv) => kv?.0.to_vec(),
                None => prefix.clone(),
            };
            for kv in self.tree.range(start..) {
                let (k, v) = kv?;
                if !k.starts_with(&prefix) {
                    break;
                }
                for event in decode_chunk(&v)? {
                    if event.id > after {
                        out.push(event);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
            }
        } else {
            let before = cursor.unwrap_or(u64::MAX);
            let end = keys::history(exec_key, before);
            for kv in self.tree.range(prefix..end).rev() {
                let (_, v) = kv?;
                for event in decode_chunk(&v)?.into_iter().rev() {
                    if event.id < before {
                        out.push(event);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

impl TimerStore for SledStore {
    fn due_timers(&self, now_ms: u64, limit: usize) -> Result<Vec<TimerRecord>> {
        let mut out = Vec::new();
        for kv in self
            .tree
            .range(keys::timer_upto(0)..keys::timer_upto(now_ms.saturating_add(1)))
            .take(limit)
        {
            out.push(decode(&kv?.1)?);
        }
        Ok(out)
    }
    fn next_due_after(&self, now_ms: u64) -> Result<Option<u64>> {
        match self
            .tree
            .range(keys::timer_upto(now_ms.saturating_add(1))..b"U".to_vec())
            .next()
        {
            Some(kv) => Ok(Some(decode::<TimerRecord>(&kv?.1)?.due_ms)),
            None => Ok(None),
        }
    }
}

impl TaskStore for SledStore {
    fn token(&self, token: &str) -> Result<Option<TokenRecord>> {
        self.get(&keys::token(token))
    }
    fn dispatches(&self) -> Result<Vec<DispatchRecord>> {
        self.scan(b"P")
    }
    fn activities(&self) -> Result<Vec<ActivityRecord>> {
        self.scan(b"A")
    }
    fn activity_queue(&self) -> Result<Vec<ActivityQueueRecord>> {
        self.scan(b"Q")
    }
}

/// The writes of one transition, applied atomically. Built with typed methods only, so every key
/// follows the layout above.
#[derive(Default)]
pub(crate) struct WriteSet {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// For a sibling subsystem's own typed write methods (its keys, its layout).
    pub(crate) fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        self.ops.push((key, Some(encode(value))));
    }
    pub(crate) fn del(&mut self, key: Vec<u8>) {
        self.ops.push((key, None));
    }
    pub fn put_state_machine(&mut self, r: &StateMachineRecord) {
        self.put(keys::sm(&r.name), r);
    }
    pub fn delete_state_machine(&mut self, name: &str) {
        self.del(keys::sm(name));
    }
    pub fn put_definition(&mut self, name: &str, revision: &str, r: &DefinitionRecord) {
        self.put(keys::definition(name, revision), r);
    }
    pub fn put_execution(&mut self, r: &ExecutionRecord) {
        self.put(keys::execution(&r.key), r);
    }
    pub fn put_execution_index(&mut self, sm: &str, seq: u64, exec_key: &str) {
        self.put(keys::exec_index(sm, seq), &exec_key);
    }
    pub fn append_history(&mut self, exec_key: &str, events: &[HistoryEvent]) {
        if let Some(first) = events.first() {
            let mut previous_io = None;
            let stored: Vec<StoredEvent<'_>> = events
                .iter()
                .map(|event| {
                    let io = io_text(&event.details);
                    let repeated = match (io, previous_io) {
                        // Only a text that is the last member: it goes back in the same place
                        // when read.
                        (Some((field, text)), Some(previous))
                            if text == previous && last_member_is(&event.details, field) =>
                        {
                            Some(field)
                        }
                        _ => None,
                    };
                    previous_io = io.map(|(_, text)| text);
                    StoredEvent { event, repeated }
                })
                .collect();
            self.put(keys::history(exec_key, first.id), &stored);
        }
    }
    pub fn put_timer(&mut self, r: &TimerRecord) {
        self.put(keys::timer(r.due_ms, &r.exec_key, r.timer), r);
    }
    pub fn delete_timer(&mut self, due_ms: u64, exec_key: &str, timer: u64) {
        self.del(keys::timer(due_ms, exec_key, timer));
    }
    pub fn put_token(&mut self, token: &str, r: &TokenRecord) {
        self.put(keys::token(token), r);
    }
    pub fn delete_token(&mut self, token: &str) {
        self.del(keys::token(token));
    }
    pub fn put_dispatch(&mut self, r: &DispatchRecord) {
        self.put(keys::dispatch(&r.exec_key, &r.invocation_id), r);
    }
    pub fn delete_dispatch(&mut self, exec_key: &str, invocation: &str) {
        self.del(keys::dispatch(exec_key, invocation));
    }
    pub fn put_activity(&mut self, r: &ActivityRecord) {
        self.put(keys::activity(&r.name), r);
    }
    pub fn delete_activity(&mut self, name: &str) {
        self.del(keys::activity(name));
    }
    pub fn put_activity_queue(&mut self, r: &ActivityQueueRecord) {
        self.put(keys::activity_queue(&r.activity, r.seq), r);
    }
    pub fn delete_activity_queue(&mut self, activity: &str, seq: u64) {
        self.del(keys::activity_queue(activity, seq));
    }
}

/// The members of an event's details that hold a state's JSON text, by their code in a chunk.
const IO_FIELDS: [&str; 2] = ["input", "output"];

/// An event's input or output text (`details.input` or `details.output`) and its field code.
fn io_text(details: &serde_json::Value) -> Option<(u8, &str)> {
    IO_FIELDS.iter().enumerate().find_map(|(code, field)| {
        details
            .get(field)
            .and_then(serde_json::Value::as_str)
            .map(|text| (code as u8, text))
    })
}

fn last_member_is(details: &serde_json::Value, field: u8) -> bool {
    details
        .as_object()
        .and_then(|details| details.keys().next_back())
        .is_some_and(|last| last == IO_FIELDS[field as usize])
}

/// A history event as stored in a chunk: `[id, previous id, timestamp ms, type code, details]`,
/// or `[id, previous id, timestamp ms, type code, details, field code]` when the event's input
/// or output text is the same as the previous event's in the chunk (a state's input is the
/// previous state's output; an execution's output is its last state's): the text is then left
/// out of `details` and stored once. Chunks written before this form have only the first.
struct StoredEvent<'a> {
    event: &'a HistoryEvent,
    repeated: Option<u8>,
}

impl Serialize for StoredEvent<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let e = self.event;
        let mut tuple = serializer.serialize_tuple(if self.repeated.is_some() { 6 } else { 5 })?;
        tuple.serialize_element(&e.id)?;
        tuple.serialize_element(&e.previous_event_id)?;
        tuple.serialize_element(&e.timestamp_ms)?;
        tuple.serialize_element(&e.kind.code())?;
        match (self.repeated, e.details.as_object()) {
            (Some(code), Some(details)) => {
                tuple.serialize_element(&AllButLast(details))?;
                tuple.serialize_element(&code)?;
            }
            _ => tuple.serialize_element(&e.details)?,
        }
        tuple.end()
    }
}

/// An object's members but the last (a repeated text is only left out when it is last).
struct AllButLast<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl Serialize for AllButLast<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().take(self.0.len().saturating_sub(1)))
    }
}

/// A chunk's event as read: both forms of [`StoredEvent`].
struct ReadEvent {
    id: u64,
    previous_event_id: u64,
    timestamp_ms: u64,
    code: u16,
    details: serde_json::Value,
    repeated: Option<u8>,
}

impl<'de> serde::Deserialize<'de> for ReadEvent {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ReadEvent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a history event of 5 or 6 elements")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<ReadEvent, A::Error> {
                let missing = |i| serde::de::Error::invalid_length(i, &self);
                Ok(ReadEvent {
                    id: seq.next_element()?.ok_or_else(|| missing(0))?,
                    previous_event_id: seq.next_element()?.ok_or_else(|| missing(1))?,
                    timestamp_ms: seq.next_element()?.ok_or_else(|| missing(2))?,
                    code: seq.next_element()?.ok_or_else(|| missing(3))?,
                    details: seq.next_element()?.ok_or_else(|| missing(4))?,
                    repeated: seq.next_element()?,
                })
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

fn decode_chunk(bytes: &[u8]) -> Result<Vec<HistoryEvent>> {
    let stored: Vec<ReadEvent> = decode(bytes)?;
    let mut events: Vec<HistoryEvent> = Vec::with_capacity(stored.len());
    for read in stored {
        let id = read.id;
        let corrupt = || Error::Corrupt(format!("bad history event {id}"));
        let kind = crate::history::HistoryEventType::from_code(read.code)
            .ok_or_else(|| Error::Corrupt(format!("unknown history event type {}", read.code)))?;
        let mut details = read.details;
        if let Some(code) = read.repeated {
            let field = IO_FIELDS.get(code as usize).ok_or_else(corrupt)?;
            let text = events
                .last()
                .and_then(|previous| io_text(&previous.details))
                .map(|(_, text)| text.to_owned())
                .ok_or_else(corrupt)?;
            details
                .as_object_mut()
                .ok_or_else(corrupt)?
                .insert((*field).to_owned(), serde_json::Value::String(text));
        }
        events.push(HistoryEvent {
            id,
            previous_event_id: read.previous_event_id,
            timestamp_ms: read.timestamp_ms,
            kind,
            details,
        });
    }
    Ok(events)
}

struct CommitRequest {
    writes: WriteSet,
    done: oneshot::Sender<Result<(), String>>,
}

/// Hands write sets to the committer task. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::UnboundedSender<CommitRequest>,
}

/// A write set on its way to disk: await it to know it is durable.
pub(crate) struct PendingCommit(Option<oneshot::Receiver<Result<(), String>>>);

impl PendingCommit {
    pub fn done() -> Self {
        PendingCommit(None)
    }
    pub async fn wait(self) -> Result<()> {
        match self.0 {
            None => Ok(()),
            Some(rx) => match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Error::Store(e)),
                Err(_) => Err(Error::ShuttingDown),
            },
        }
    }
}

impl Committer {
    /// Starts the committer task: it gathers every write set queued while the previous group was
    /// being flushed, applies them as one batch, flushes once, then acknowledges them in order.
    pub fn start(store: SledStore) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(run_committer(store, rx));
        (Committer { tx }, handle)
    }

    /// Queues a write set. Queue order is commit order: callers that hold an execution's lock
    /// while submitting get that execution's transitions committed in order.
    pub fn submit(&self, writes: WriteSet) -> PendingCommit {
        if writes.is_empty() {
            return PendingCommit::done();
        }
        let (done, rx) = oneshot::channel();
        if self.tx.send(CommitRequest { writes, done }).is_err() {
            let (done, rx) = oneshot::channel();
            drop(done);
            return PendingCommit(Some(rx));
        }
        PendingCommit(Some(rx))
    }
}

const MAX_GROUP: usize = 8192;

fn acknowledge(group: Vec<CommitRequest>, result: Result<(), String>) {
    if let Err(e) = &result {
        tracing::error!(error = %e, "group commit failed");
    }
    for request in group {
        let _ = request.done.send(result.clone());
    }
}

/// A flush costs about the same CPU whatever it carries (sled wakes its I/O threads, writes and
/// syncs its log), so under load the committer lets the runtime's other ready tasks (requests
/// about to submit) run this many times before it takes its group. When nothing else is ready a
/// yield returns at once: no idle wait, unlike a timed batching window. Measured over HTTP
/// (BENCHMARKS.md): context switches per STANDARD start 2.5 → 1.0, server CPU per start down
/// by a quarter with the server on one core; 1 yield gains less, 16 no more.
const LOAD_YIELDS: usize = 4;
/// A flushed group at least this large means load; smaller ones (a lone client) are flushed at
/// once.
const LOADED_GROUP: usize = 4;

/// Takes every write set queued, applies them as one batch, flushes once, then acknowledges
/// them in order; what arrives meanwhile waits for the next group. Under load the group is
/// taken after [`LOAD_YIELDS`] yields, so that it gathers what the requests running now submit.
async fn run_committer(store: SledStore, mut rx: mpsc::UnboundedReceiver<CommitRequest>) {
    let mut loaded = false;
    loop {
        let mut group: Vec<CommitRequest> = Vec::new();
        if rx.recv_many(&mut group, MAX_GROUP).await == 0 {
            break;
        }
        if loaded {
            for _ in 0..LOAD_YIELDS {
                tokio::task::yield_now().await;
            }
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let mut batch = sled::Batch::default();
        for request in &mut group {
            for (key, value) in request.writes.ops.drain(..) {
                match value {
                    Some(v) => batch.insert(key, v),
                    None => batch.remove(key),
                }
            }
        }
        if let Err(e) = store.tree.apply_batch(batch) {
            acknowledge(group, Err(e.to_string()));
            continue;
        }
        loaded = group.len() >= LOADED_GROUP;
        let started = std::time::Instant::now();
        let flushed = store.flush().await.map_err(|e| match e {
            // `PendingCommit::wait` wraps the text in `Error::Store` again.
            Error::Store(message) => message,
            other => other.to_string(),
        });
        metrics::histogram!("stepyard_store_flush_seconds").record(started.elapsed().as_secs_f64());
        acknowledge(group, flushed);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::history::HistoryEventType;

    fn event(id: u64) -> HistoryEvent {
        HistoryEvent {
            id,
            previous_event_id: id - 1,
            timestamp_ms: id,
            kind: HistoryEventType::PassStateEntered,
            details: Value::Null,
        }
    }

    async fn commit(committer: &Committer, writes: WriteSet) {
        committer.submit(writes).wait().await.expect("commit");
    }

    #[tokio::test]
    async fn history_pages_across_chunks_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (committer, _task) = Committer::start(store.clone());
        // Chunks of 3, 1 and 4 events, and a neighbour execution that must not leak in.
        for chunk in [vec![1, 2, 3], vec![4], vec![5, 6, 7, 8]] {
            let mut w = WriteSet::default();
            w.append_history("sm:a", &chunk.into_iter().map(event).collect::<Vec<_>>());
            commit(&committer, w).await;
        }
        let mut w = WriteSet::default();
        w.append_history("sm:ab", &[event(1)]);
        commit(&committer, w).await;
        let ids = |v: Vec<HistoryEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.history("sm:a", None, false, 100).unwrap()),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(
            ids(store.history("sm:a", Some(2), false, 3).unwrap()),
            [3, 4, 5]
        );
        assert_eq!(
            ids(store.history("sm:a", Some(5), false, 100).unwrap()),
            [6, 7, 8]
        );
        assert_eq!(
            ids(store.history("sm:a", None, true, 3).unwrap()),
            [8, 7, 6]
        );
        assert_eq!(
            ids(store.history("sm:a", Some(5), true, 100).unwrap()),
            [4, 3, 2, 1]
        );
        assert_eq!(ids(store.history("sm:ab", None, false, 100).unwrap()), [1]);
    }

    #[tokio::test]
    async fn repeated_state_texts_are_stored_once_and_read_back_whole() {
        use serde_json::json;
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (committer, _task) = Committer::start(store.clone());
        let at = |id: u64, kind: HistoryEventType, details: Value| HistoryEvent {
            id,
            previous_event_id: id.saturating_sub(1),
            timestamp_ms: 1_000 + id,
            kind,
            details,
        };
        let text = r#"{"quote":"a \"b\"","n":1}"#;
        let events = vec![
            at(
                1,
                HistoryEventType::ExecutionStarted,
                json!({"input": text, "roleArn": "r"}),
            ),
            at(
                2,
                HistoryEventType::PassStateEntered,
                json!({"name": "P", "input": text}),
            ),
            at(
                3,
                HistoryEventType::PassStateExited,
                json!({"name": "P", "output": "{}"}),
            ),
            // Not the previous event's text: stored in full.
            at(
                4,
                HistoryEventType::PassStateEntered,
                json!({"name": "Q", "input": "[1]"}),
            ),
            at(
                5,
                HistoryEventType::PassStateExited,
                json!({"name": "Q", "output": "[1]"}),
            ),
            // The text is not the last member: stored in full, so its place is kept.
            at(
                6,
                HistoryEventType::PassStateEntered,
                json!({"name": "R", "input": "[1]", "x": 1}),
            ),
            at(
                7,
                HistoryEventType::PassStateExited,
                json!({"name": "R", "output": "[1]"}),
            ),
            at(
                8,
                HistoryEventType::ExecutionSucceeded,
                json!({"output": "[1]"}),
            ),
        ];
        let mut w = WriteSet::default();
        w.append_history("sm:a", &events);
        let stored = w.ops[0].1.clone().unwrap();
        commit(&committer, w).await;
        // The texts 2, 5, 7 and 8 repeat are not in the chunk again; 6's is.
        let chunk = String::from_utf8_lossy(&stored[1..]).into_owned();
        assert_eq!(chunk.matches("quote").count(), 1, "{chunk}");
        assert_eq!(chunk.matches("[1]").count(), 2, "{chunk}");
        let read = store.history("sm:a", None, false, 100).unwrap();
        assert_eq!(read, events);
        // Members come back in their order, not only with the same values.
        let texts = |events: &[HistoryEvent]| {
            events
                .iter()
                .map(|e| serde_json::to_string(&e.details).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(texts(&read), texts(&events));
        assert_eq!(
            store.history("sm:a", Some(4), true, 2).unwrap(),
            vec![events[2].clone(), events[1].clone()]
        );
    }

    #[tokio::test]
    async fn chunks_of_the_earlier_form_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let mut bytes = vec![FORMAT];
        bytes.extend_from_slice(
            br#"[[1,0,5,0,{"input":"{}","roleArn":"r"}],[2,1,6,4,{"name":"P","input":"{}"}]]"#,
        );
        store
            .tree()
            .insert(keys::history("sm:a", 1), bytes)
            .unwrap();
        let events = store.history("sm:a", None, false, 100).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, HistoryEventType::from_code(0).unwrap());
        assert_eq!(events[1].details["input"], "{}");
        assert_eq!(events[1].timestamp_ms, 6);
    }

    #[tokio::test]
    async fn timers_come_out_in_due_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (committer, _task) = Committer::start(store.clone());
        let mut w = WriteSet::default();
        for (due, timer) in [(300u64, 1u64), (100, 2), (256, 3), (100, 1)] {
            w.put_timer(&TimerRecord {
                due_ms: due,
                exec_key: format!("sm:e{timer}"),
                timer,
            });
        }
        commit(&committer, w).await;
        let due: Vec<(u64, u64)> = store
            .due_timers(256, 10)
            .unwrap()
            .iter()
            .map(|t| (t.due_ms, t.timer))
            .collect();
        assert_eq!(due, [(100, 1), (100, 2), (256, 3)]);
        assert_eq!(store.next_due_after(256).unwrap(), Some(300));
        let mut w = WriteSet::default();
        w.delete_timer(300, "sm:e1", 1);
        commit(&committer, w).await;
        assert_eq!(store.next_due_after(256).unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_set_of_many_writers_is_acknowledged_once_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (committer, task) = Committer::start(store.clone());
        // 64 writers, each committing its 25 write sets one after another: groups large enough
        // to wait out the flush cycle, and small ones at the end.
        let writers: Vec<_> = (0..64u64)
            .map(|w| {
                let committer = committer.clone();
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..25u64 {
                        let mut writes = WriteSet::default();
                        writes.put_activity_queue(&ActivityQueueRecord {
                            activity: format!("w{w}"),
                            seq: i,
                            token: format!("t{w}-{i}"),
                            input: "{}".into(),
                            exec_key: format!("sm:e{w}"),
                            thread: 0,
                            invocation_id: format!("i{i}"),
                        });
                        committer.submit(writes).wait().await.expect("commit");
                        // Acknowledged means applied: a reader sees it at once.
                        let seen = store.activity_queue().unwrap();
                        assert!(seen.iter().any(|q| q.token == format!("t{w}-{i}")));
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        assert_eq!(store.activity_queue().unwrap().len(), 64 * 25);
        drop(committer);
        task.await.unwrap();
    }

    #[test]
    fn unknown_record_formats_are_refused() {
        assert!(matches!(decode::<u32>(b"\x02{}"), Err(Error::Corrupt(_))));
        assert_eq!(decode::<u32>(&encode(&7u32)).unwrap(), 7);
    }
}
