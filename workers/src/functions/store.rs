//! The function runtime's durable records, on its own sled database (`<data_dir>/functions`),
//! separate from the engine's store so the two never contend for a lock or a key prefix.
//!
//! Key layout (**Invariant:** never reuse a tree name; a new record format gets a new `v`):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `functions.v1` | function name | JSON `{"v":1, ...Function}` |
//! | `invocation-logs.v1` | request id | JSON `{"v":1, ...InvocationLog}` |
//! | `invocation-log-order.v1` | sequence number, u64 big-endian | request id (oldest first, for pruning) |
//! | `invocations-by-execution.v1` | execution ARN, `0x00`, request id | empty |
//!
//! Function writes are flushed before the call returns. Logs are written without waiting for
//! a flush (they are diagnostics; sled flushes them within its flush interval).

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::functions::logs::InvocationLog;
use crate::functions::spec::Function;
use crate::functions::{Error, Result};

const RECORD_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StoredFunction {
    v: u32,
    #[serde(flatten)]
    function: Function,
}

#[derive(Serialize, Deserialize)]
struct StoredLog {
    v: u32,
    #[serde(flatten)]
    log: InvocationLog,
}

#[derive(Clone)]
pub(crate) struct Store {
    db: sled::Db,
    functions: sled::Tree,
    logs: sled::Tree,
    order: sled::Tree,
    by_execution: sled::Tree,
    keep_logs: usize,
    /// Entries in `order`; serialises pruning.
    log_count: Arc<Mutex<usize>>,
}

fn io(e: sled::Error) -> Error {
    Error::Store(e.to_string())
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Store(format!("corrupt record: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn execution_key(execution_arn: &str, request_id: &str) -> Vec<u8> {
    let mut key = execution_arn.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(request_id.as_bytes());
    key
}

impl Store {
    pub fn open(dir: &Path, keep_logs: usize) -> Result<Store> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            .open()
            .map_err(|e| Error::Store(format!("cannot open {}: {e}", dir.display())))?;
        let order = db.open_tree("invocation-log-order.v1").map_err(io)?;
        let count = order.len();
        Ok(Store {
            functions: db.open_tree("functions.v1").map_err(io)?,
            logs: db.open_tree("invocation-logs.v1").map_err(io)?,
            by_execution: db.open_tree("invocations-by-execution.v1").map_err(io)?,
            order,
            db,
            keep_logs: keep_logs.max(1),
            log_count: Arc::new(Mutex::new(count)),
        })
    }

    // ---- functions -----------------------------------------------------------------------

    pub async fn put_function(&self, function: &Function) -> Result<()> {
        let record = StoredFunction {
            v: RECORD_VERSION,
            function: function.clone(),
        };
        self.functions
            .insert(function.spec.name.as_bytes(), encode(&record))
            .map_err(io)?;
        self.db.flush_async().await.map_err(io)?;
        Ok(())
    }

    /// Every function, by name.
    pub fn functions(&self) -> Result<Vec<Function>> {
        self.functions
            .iter()
            .values()
            .map(|v| decode::<StoredFunction>(&v.map_err(io)?).map(|r| r.function))
            .collect()
    }

    pub async fn delete_function(&self, name: &str) -> Result<bool> {
        let existed = self
            .functions
            .remove(name.as_bytes())
            .map_err(io)?
            .is_some();
        self.db.flush_async().await.map_err(io)?;
        Ok(existed)
    }

    // ---- invocation logs -----------------------------------------------------------------

    /// Stores (or replaces) an invocation's logs; the oldest logs past `keep_logs` are dropped.
    pub fn put_log(&self, log: &InvocationLog) -> Result<()> {
        let record = StoredLog {
            v: RECORD_VERSION,
            log: log.clone(),
        };
        let previous = self
            .logs
            .insert(log.request_id.as_bytes(), encode(&record))
            .map_err(io)?;
        if let Some(execution_arn) = &log.execution_arn {
            self.by_execution
                .insert(execution_key(execution_arn, &log.request_id), &[])
                .map_err(io)?;
        }
        if previous.is_some() {
            return Ok(());
        }
        let mut count = self.log_count.lock().unwrap_or_else(|p| p.into_inner());
        let seq = self.db.generate_id().map_err(io)?;
        self.order
            .insert(seq.to_be_bytes(), log.request_id.as_bytes())
            .map_err(io)?;
        *count += 1;
        while *count > self.keep_logs {
            let Some((key, request_id)) = self.order.pop_min().map_err(io)? else {
                break;
            };
            let _ = key;
            *count -= 1;
            if let Some(old) = self.logs.remove(&request_id).map_err(io)?
                && let Ok(old) = decode::<StoredLog>(&old)
                && let Some(execution_arn) = &old.log.execution_arn
            {
                self.by_execution
                    .remove(execution_key(execution_arn, &old.log.request_id))
                    .map_err(io)?;
            }
        }
        Ok(())
    }

    pub fn log(&self, request_id: &str) -> Result<Option<InvocationLog>> {
        self.logs
            .get(request_id.as_bytes())
            .map_err(io)?
            .map(|bytes| decode::<StoredLog>(&bytes).map(|r| r.log))
            .transpose()
    }

    /// The invocations a Task state of this execution made, oldest first.
    pub fn logs_of_execution(&self, execution_arn: &str) -> Result<Vec<InvocationLog>> {
        let mut prefix = execution_arn.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for key in self.by_execution.scan_prefix(&prefix).keys() {
            let key = key.map_err(io)?;
            let request_id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if let Some(log) = self.log(&request_id)? {
                out.push(log);
            }
        }
        out.sort_by_key(|l| l.started_ms);
        Ok(out)
    }

    pub async fn flush(&self) -> Result<()> {
        self.db.flush_async().await.map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(id: &str, execution: Option<&str>) -> InvocationLog {
        InvocationLog {
            request_id: id.into(),
            function: "f".into(),
            started_ms: 1,
            ended_ms: Some(2),
            error: None,
            execution_arn: execution.map(str::to_string),
            state_name: None,
            attempt: None,
            lines: vec![format!("line of {id}")],
            truncated: false,
        }
    }

    #[test]
    fn logs_are_pruned_oldest_first_and_indexed_by_execution() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 2).unwrap();
        store.put_log(&log("a", Some("arn:x"))).unwrap();
        store.put_log(&log("b", Some("arn:x"))).unwrap();
        store.put_log(&log("b", Some("arn:x"))).unwrap();
        assert_eq!(store.logs_of_execution("arn:x").unwrap().len(), 2);
        store.put_log(&log("c", None)).unwrap();
        assert!(store.log("a").unwrap().is_none(), "the oldest is dropped");
        assert_eq!(store.log("b").unwrap().unwrap().lines, vec!["line of b"]);
        let of_execution = store.logs_of_execution("arn:x").unwrap();
        assert_eq!(of_execution.len(), 1);
        assert_eq!(of_execution[0].request_id, "b");
    }
}
