//! The records and keys of topics, in the `topics.v1` tree of the engine's database.
//!
//! # Key layout (format 1; a tag byte first; a tag is never reused)
//!
//! | tag | key | value |
//! |---|---|---|
//! | `V` | `Vformat` | `[1]`: the layout version; another value refuses to open |
//! | `T` | `T topic` | [`TopicRecord`] |
//! | `S` | `S subscription id` | [`SubscriptionRecord`] (names its topic) |
//! | `M` | `M message id` | [`MessageRecord`]: kept while a delivery or dead letter needs it |
//! | `W` | `W due_ms(u64 BE) delivery id` | [`DeliveryRecord`]: a delivery to attempt at `due` |
//! | `X` | `X seq(u64 BE)` | [`DeadLetterRecord`], in the order they failed |
//!
//! Topic names are `[A-Za-z0-9_-]{1,256}` and ids are UUIDs, so no separator is needed after a
//! fixed-width due time. Values are the engine's record format: a format byte, then JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{DeliveryPolicy, MessageAttribute, Protocol};
use crate::error::{Error, Result};
use crate::store::{SledStore, WriteSet, decode};

pub(crate) const TREE: &str = "topics.v1";
const FORMAT: u8 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TopicRecord {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SubscriptionRecord {
    pub id: String,
    pub topic: String,
    pub protocol: Protocol,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_policy: Option<Value>,
    pub delivery_policy: DeliveryPolicy,
    #[serde(default)]
    pub raw_message_delivery: bool,
    pub created_ms: u64,
}

/// A published message, written once however many subscriptions it goes to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MessageRecord {
    pub id: String,
    pub topic: String,
    pub topic_arn: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, MessageAttribute>,
    pub published_ms: u64,
}

/// One message on its way to one subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeliveryRecord {
    pub id: String,
    pub due_ms: u64,
    pub message_id: String,
    pub topic: String,
    pub subscription_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeadLetterRecord {
    pub seq: u64,
    pub delivery: DeliveryRecord,
    /// The subscription as it was (it may be deleted since).
    pub protocol: Protocol,
    pub endpoint: String,
    pub reason: String,
    pub dead_lettered_ms: u64,
}

mod keys {
    fn cat(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![tag];
        for p in parts {
            out.extend_from_slice(p);
        }
        out
    }
    pub fn topic(name: &str) -> Vec<u8> {
        cat(b'T', &[name.as_bytes()])
    }
    pub fn subscription(id: &str) -> Vec<u8> {
        cat(b'S', &[id.as_bytes()])
    }
    pub fn message(id: &str) -> Vec<u8> {
        cat(b'M', &[id.as_bytes()])
    }
    pub fn delivery(due_ms: u64, id: &str) -> Vec<u8> {
        cat(b'W', &[&due_ms.to_be_bytes(), id.as_bytes()])
    }
    pub fn delivery_upto(due_ms: u64) -> Vec<u8> {
        cat(b'W', &[&due_ms.to_be_bytes()])
    }
    pub fn dead_letter(seq: u64) -> Vec<u8> {
        cat(b'X', &[&seq.to_be_bytes()])
    }
}

/// Reads of the topics tree.
#[derive(Clone)]
pub(crate) struct TopicStore {
    pub store: SledStore,
}

impl TopicStore {
    pub fn open(store: SledStore) -> Result<TopicStore> {
        store.check_layout("topics", FORMAT)?;
        Ok(TopicStore { store })
    }

    pub fn topics(&self) -> Result<Vec<TopicRecord>> {
        self.store.scan(b"T")
    }
    pub fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>> {
        self.store.scan(b"S")
    }
    pub fn message(&self, id: &str) -> Result<Option<MessageRecord>> {
        self.store.get(&keys::message(id))
    }

    /// Every pending delivery, by due time.
    pub fn deliveries(&self) -> Result<Vec<DeliveryRecord>> {
        self.store.scan(b"W")
    }

    /// Deliveries due at or before `now_ms`, oldest first.
    pub fn due_deliveries(&self, now_ms: u64, limit: usize) -> Result<Vec<DeliveryRecord>> {
        let mut out = Vec::new();
        for kv in self
            .store
            .tree()
            .range(keys::delivery_upto(0)..keys::delivery_upto(now_ms.saturating_add(1)))
            .take(limit)
        {
            out.push(decode(&kv?.1)?);
        }
        Ok(out)
    }

    /// The due time of the first delivery that `skip` (given its id) does not exclude.
    pub fn next_delivery_due(&self, skip: &dyn Fn(&[u8]) -> bool) -> Result<Option<u64>> {
        for kv in self.store.tree().scan_prefix(b"W") {
            let (k, _) = kv?;
            if k.len() < 9 || skip(&k[9..]) {
                continue;
            }
            let due = k[1..9]
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| Error::Corrupt("delivery key".into()))?;
            return Ok(Some(due));
        }
        Ok(None)
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetterRecord>> {
        self.store.scan(b"X")
    }

    pub fn next_seq(&self) -> Result<u64> {
        self.store.next_seq()
    }
}

/// Typed writes of the topics tree.
pub(crate) trait TopicWrites {
    fn put_topic(&mut self, r: &TopicRecord);
    fn delete_topic(&mut self, name: &str);
    fn put_subscription(&mut self, r: &SubscriptionRecord);
    fn delete_subscription(&mut self, id: &str);
    fn put_message(&mut self, r: &MessageRecord);
    fn delete_message(&mut self, id: &str);
    fn put_delivery(&mut self, r: &DeliveryRecord);
    fn delete_delivery(&mut self, due_ms: u64, id: &str);
    fn put_dead_letter(&mut self, r: &DeadLetterRecord);
    fn delete_dead_letter(&mut self, seq: u64);
}

impl TopicWrites for WriteSet {
    fn put_topic(&mut self, r: &TopicRecord) {
        self.put(keys::topic(&r.name), r);
    }
    fn delete_topic(&mut self, name: &str) {
        self.del(keys::topic(name));
    }
    fn put_subscription(&mut self, r: &SubscriptionRecord) {
        self.put(keys::subscription(&r.id), r);
    }
    fn delete_subscription(&mut self, id: &str) {
        self.del(keys::subscription(id));
    }
    fn put_message(&mut self, r: &MessageRecord) {
        self.put(keys::message(&r.id), r);
    }
    fn delete_message(&mut self, id: &str) {
        self.del(keys::message(id));
    }
    fn put_delivery(&mut self, r: &DeliveryRecord) {
        self.put(keys::delivery(r.due_ms, &r.id), r);
    }
    fn delete_delivery(&mut self, due_ms: u64, id: &str) {
        self.del(keys::delivery(due_ms, id));
    }
    fn put_dead_letter(&mut self, r: &DeadLetterRecord) {
        self.put(keys::dead_letter(r.seq), r);
    }
    fn delete_dead_letter(&mut self, seq: u64) {
        self.del(keys::dead_letter(seq));
    }
}
