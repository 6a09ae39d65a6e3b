//! The bus's records and keys, in the `bus.v1` tree of the engine's database.
//!
//! # Key layout (format 1; a tag byte first; a tag is never reused)
//!
//! | tag | key | value |
//! |---|---|---|
//! | `V` | `Vformat` | `[1]` |
//! | `B` | `B bus` | [`BusRecord`] |
//! | `R` | `R bus 0x00 rule` | [`RuleRecord`] (with its targets) |
//! | `S` | `S due_ms(BE) bus 0x00 rule` | [`ScheduleRecord`]: a scheduled rule's next firing |
//! | `W` | `W due_ms(BE) delivery id` | [`DeliveryRecord`]: a delivery to attempt at `due` |
//! | `X` | `X seq(BE)` | [`DeadLetterRecord`] |
//! | `C` | `C archive` | [`ArchiveRecord`] |
//! | `Y` | `Y archive 0x00 time_ms(BE) seq(BE)` | the archived event (its envelope) |
//! | `L` | `L replay` | [`ReplayRecord`] |
//! | `O` | `O connection` | [`ConnectionRecord`] |
//! | `U` | `U api destination` | [`ApiDestinationRecord`] |
//!
//! Bus, rule and archive names never contain bytes below 0x20, so the 0x00 separator is
//! unambiguous. Values are the engine's record format: a format byte, then JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{ConnectionAuth, ReplayState, RuleState, Target};
use crate::error::{Error, Result};
use crate::store::{SledStore, WriteSet, decode};

pub(crate) const TREE: &str = "bus.v1";
const FORMAT: u8 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BusRecord {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "crate::model::Tags::is_empty")]
    pub tags: crate::model::Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RuleRecord {
    pub bus: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
    pub state: RuleState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Where a `rate(...)` counts from: creation or the last enable.
    pub anchor_ms: u64,
    /// The armed firing of a scheduled rule (its `S` key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_fire_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "crate::model::Tags::is_empty")]
    pub tags: crate::model::Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScheduleRecord {
    pub due_ms: u64,
    pub bus: String,
    pub rule: String,
}

/// One event on its way to one target. The input is computed when the event is matched, so a
/// later change of the rule does not change what an accepted event delivers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeliveryRecord {
    pub id: String,
    pub due_ms: u64,
    pub event: Value,
    pub rule_arn: String,
    pub target: Target,
    pub input: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the event was accepted (its age counts from here).
    pub ingested_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeadLetterRecord {
    pub seq: u64,
    pub delivery: DeliveryRecord,
    pub error_code: String,
    pub error_message: String,
    pub dead_lettered_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ArchiveRecord {
    pub name: String,
    pub bus: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_pattern: Option<String>,
    pub retention_days: u32,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReplayRecord {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub archive: String,
    pub destination_bus: String,
    pub filter_arns: Vec<String>,
    pub state: ReplayState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    pub event_start_ms: u64,
    pub event_end_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_replayed_ms: Option<u64>,
    /// The archive key after which the replay goes on (resumes here after a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Vec<u8>>,
    pub events_replayed: u64,
    pub replay_start_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_end_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConnectionRecord {
    pub name: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub auth: ConnectionAuth,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApiDestinationRecord {
    pub name: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub connection: String,
    pub endpoint: String,
    pub method: String,
    pub rate_limit_per_second: u32,
    pub created_ms: u64,
}

pub(crate) mod keys {
    fn cat(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![tag];
        for p in parts {
            out.extend_from_slice(p);
        }
        out
    }
    pub fn bus(name: &str) -> Vec<u8> {
        cat(b'B', &[name.as_bytes()])
    }
    pub fn rule(bus: &str, rule: &str) -> Vec<u8> {
        cat(b'R', &[bus.as_bytes(), &[0], rule.as_bytes()])
    }
    pub fn schedule(due_ms: u64, bus: &str, rule: &str) -> Vec<u8> {
        cat(
            b'S',
            &[&due_ms.to_be_bytes(), bus.as_bytes(), &[0], rule.as_bytes()],
        )
    }
    pub fn schedule_upto(due_ms: u64) -> Vec<u8> {
        cat(b'S', &[&due_ms.to_be_bytes()])
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
    pub fn archive(name: &str) -> Vec<u8> {
        cat(b'C', &[name.as_bytes()])
    }
    pub fn archived(archive: &str, time_ms: u64, seq: u64) -> Vec<u8> {
        cat(
            b'Y',
            &[
                archive.as_bytes(),
                &[0],
                &time_ms.to_be_bytes(),
                &seq.to_be_bytes(),
            ],
        )
    }
    pub fn archived_from(archive: &str, time_ms: u64) -> Vec<u8> {
        cat(b'Y', &[archive.as_bytes(), &[0], &time_ms.to_be_bytes()])
    }
    pub fn archived_prefix(archive: &str) -> Vec<u8> {
        cat(b'Y', &[archive.as_bytes(), &[0]])
    }
    pub fn replay(name: &str) -> Vec<u8> {
        cat(b'L', &[name.as_bytes()])
    }
    pub fn connection(name: &str) -> Vec<u8> {
        cat(b'O', &[name.as_bytes()])
    }
    pub fn api_destination(name: &str) -> Vec<u8> {
        cat(b'U', &[name.as_bytes()])
    }
}

/// Reads of the bus tree.
#[derive(Clone)]
pub(crate) struct BusStore {
    pub store: SledStore,
}

impl BusStore {
    pub fn open(store: SledStore) -> Result<BusStore> {
        store.check_layout("bus", FORMAT)?;
        Ok(BusStore { store })
    }

    pub fn buses(&self) -> Result<Vec<BusRecord>> {
        self.store.scan(b"B")
    }
    pub fn rules(&self) -> Result<Vec<RuleRecord>> {
        self.store.scan(b"R")
    }
    pub fn archives(&self) -> Result<Vec<ArchiveRecord>> {
        self.store.scan(b"C")
    }
    pub fn replays(&self) -> Result<Vec<ReplayRecord>> {
        self.store.scan(b"L")
    }
    pub fn replay(&self, name: &str) -> Result<Option<ReplayRecord>> {
        self.store.get(&keys::replay(name))
    }
    pub fn connections(&self) -> Result<Vec<ConnectionRecord>> {
        self.store.scan(b"O")
    }
    pub fn api_destinations(&self) -> Result<Vec<ApiDestinationRecord>> {
        self.store.scan(b"U")
    }

    /// Deliveries due at or before `now_ms`, oldest first.
    pub fn due_deliveries(&self, now_ms: u64, limit: usize) -> Result<Vec<DeliveryRecord>> {
        let tree = self.store.tree();
        let mut out = Vec::new();
        for kv in tree
            .range(keys::delivery_upto(0)..keys::delivery_upto(now_ms.saturating_add(1)))
            .take(limit)
        {
            out.push(decode(&kv?.1)?);
        }
        Ok(out)
    }

    /// The due time of the first delivery whose id `skip` does not name.
    pub fn next_delivery_due(&self, skip: &dyn Fn(&[u8]) -> bool) -> Result<Option<u64>> {
        for kv in self.store.tree().scan_prefix(b"W") {
            let (k, _) = kv?;
            if k.len() < 9 || skip(&k[9..]) {
                continue;
            }
            return Ok(Some(due_of(&k)?));
        }
        Ok(None)
    }

    pub fn pending_deliveries(&self) -> Result<usize> {
        Ok(self.store.tree().scan_prefix(b"W").count())
    }

    pub fn due_schedules(&self, now_ms: u64) -> Result<Vec<ScheduleRecord>> {
        let tree = self.store.tree();
        tree.range(keys::schedule_upto(0)..keys::schedule_upto(now_ms.saturating_add(1)))
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    pub fn next_schedule_due(&self) -> Result<Option<u64>> {
        match self.store.tree().scan_prefix(b"S").next() {
            Some(kv) => Ok(Some(due_of(&kv?.0)?)),
            None => Ok(None),
        }
    }

    /// Dead letters in the order they failed, after `after` (a seq).
    pub fn dead_letters(&self, after: Option<u64>, limit: usize) -> Result<Vec<DeadLetterRecord>> {
        let start = keys::dead_letter(after.map(|a| a + 1).unwrap_or(0));
        let mut out = Vec::new();
        for kv in self.store.tree().range(start..b"Y".to_vec()) {
            let (k, v) = kv?;
            if k.first() != Some(&b'X') {
                break;
            }
            out.push(decode(&v)?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    pub fn dead_letter(&self, seq: u64) -> Result<Option<DeadLetterRecord>> {
        self.store.get(&keys::dead_letter(seq))
    }

    /// Archived events of `archive` from `from` (a key, exclusive) or `start_ms`, up to
    /// `end_ms` (exclusive): `(key, event)`.
    pub fn archived(
        &self,
        archive: &str,
        from: Option<&[u8]>,
        start_ms: u64,
        end_ms: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>> {
        let end = keys::archived_from(archive, end_ms);
        let start = match from {
            Some(k) => {
                let mut k = k.to_vec();
                k.push(0);
                k
            }
            None => keys::archived_from(archive, start_ms),
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for kv in self.store.tree().range(start..end).take(limit) {
            let (k, v) = kv?;
            out.push((k.to_vec(), decode(&v)?));
        }
        Ok(out)
    }

    /// (count, bytes) of an archive's events.
    pub fn archive_size(&self, archive: &str) -> Result<(u64, u64)> {
        let mut count = 0;
        let mut bytes = 0;
        for kv in self
            .store
            .tree()
            .scan_prefix(keys::archived_prefix(archive))
        {
            let (_, v) = kv?;
            count += 1;
            bytes += v.len().saturating_sub(1) as u64;
        }
        Ok((count, bytes))
    }

    /// Keys of an archive's events older than `before_ms`.
    pub fn archived_before(&self, archive: &str, before_ms: u64) -> Result<Vec<Vec<u8>>> {
        self.store
            .tree()
            .range(keys::archived_prefix(archive)..keys::archived_from(archive, before_ms))
            .map(|kv| Ok(kv?.0.to_vec()))
            .collect()
    }

    pub fn archived_keys(&self, archive: &str) -> Result<Vec<Vec<u8>>> {
        self.store
            .tree()
            .scan_prefix(keys::archived_prefix(archive))
            .map(|kv| Ok(kv?.0.to_vec()))
            .collect()
    }

    pub fn next_seq(&self) -> Result<u64> {
        self.store.next_seq()
    }
}

fn due_of(key: &[u8]) -> Result<u64> {
    key.get(1..9)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::Corrupt("bus time key".into()))
}

/// Typed writes of the bus tree.
pub(crate) trait BusWrites {
    fn put_bus(&mut self, r: &BusRecord);
    fn delete_bus(&mut self, name: &str);
    fn put_rule(&mut self, r: &RuleRecord);
    fn delete_rule(&mut self, bus: &str, rule: &str);
    fn put_schedule(&mut self, r: &ScheduleRecord);
    fn delete_schedule(&mut self, due_ms: u64, bus: &str, rule: &str);
    fn put_delivery(&mut self, r: &DeliveryRecord);
    fn delete_delivery(&mut self, due_ms: u64, id: &str);
    fn put_dead_letter(&mut self, r: &DeadLetterRecord);
    fn delete_dead_letter(&mut self, seq: u64);
    fn put_archive(&mut self, r: &ArchiveRecord);
    fn delete_archive(&mut self, name: &str);
    fn put_archived(&mut self, archive: &str, time_ms: u64, seq: u64, event: &Value);
    fn delete_key(&mut self, key: Vec<u8>);
    fn put_replay(&mut self, r: &ReplayRecord);
    fn put_connection(&mut self, r: &ConnectionRecord);
    fn delete_connection(&mut self, name: &str);
    fn put_api_destination(&mut self, r: &ApiDestinationRecord);
    fn delete_api_destination(&mut self, name: &str);
}

impl BusWrites for WriteSet {
    fn put_bus(&mut self, r: &BusRecord) {
        self.put(keys::bus(&r.name), r);
    }
    fn delete_bus(&mut self, name: &str) {
        self.del(keys::bus(name));
    }
    fn put_rule(&mut self, r: &RuleRecord) {
        self.put(keys::rule(&r.bus, &r.name), r);
    }
    fn delete_rule(&mut self, bus: &str, rule: &str) {
        self.del(keys::rule(bus, rule));
    }
    fn put_schedule(&mut self, r: &ScheduleRecord) {
        self.put(keys::schedule(r.due_ms, &r.bus, &r.rule), r);
    }
    fn delete_schedule(&mut self, due_ms: u64, bus: &str, rule: &str) {
        self.del(keys::schedule(due_ms, bus, rule));
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
    fn put_archive(&mut self, r: &ArchiveRecord) {
        self.put(keys::archive(&r.name), r);
    }
    fn delete_archive(&mut self, name: &str) {
        self.del(keys::archive(name));
    }
    fn put_archived(&mut self, archive: &str, time_ms: u64, seq: u64, event: &Value) {
        self.put(keys::archived(archive, time_ms, seq), event);
    }
    fn delete_key(&mut self, key: Vec<u8>) {
        self.del(key);
    }
    fn put_replay(&mut self, r: &ReplayRecord) {
        self.put(keys::replay(&r.name), r);
    }
    fn put_connection(&mut self, r: &ConnectionRecord) {
        self.put(keys::connection(&r.name), r);
    }
    fn delete_connection(&mut self, name: &str) {
        self.del(keys::connection(name));
    }
    fn put_api_destination(&mut self, r: &ApiDestinationRecord) {
        self.put(keys::api_destination(&r.name), r);
    }
    fn delete_api_destination(&mut self, name: &str) {
        self.del(keys::api_destination(name));
    }
}
