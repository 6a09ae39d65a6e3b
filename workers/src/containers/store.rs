//! The container runtime's durable records, on its own sled database (`<data_dir>/containers`),
//! separate from the engine's store so the two never contend for a lock or a key prefix.
//!
//! Key layout (**Invariant:** never reuse a tree name; a new record format gets a new `v`):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `task-definitions.v1` | family bytes, `0x00`, revision as u32 big-endian | JSON [`DefinitionRecord`] |
//! | `jobs.v1` | job id (32 lowercase hex digits) | JSON [`JobRecord`] |
//! | `job-logs.v1` | job id | the job's combined stdout and stderr (its last bytes) |
//!
//! Every write is flushed before the call returns: a registered revision or a job's outcome
//! survives kill -9.

use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::containers::Error;
use crate::containers::definitions::{DefinitionStatus, TaskDefinition, TaskDefinitionSpec};
use crate::containers::job::JobRecord;

const RECORD_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct DefinitionRecord {
    v: u32,
    #[serde(flatten)]
    definition: TaskDefinition,
}

#[derive(Serialize, Deserialize)]
struct StoredJob {
    v: u32,
    #[serde(flatten)]
    job: JobRecord,
}

#[derive(Clone)]
pub(crate) struct Store {
    db: sled::Db,
    definitions: sled::Tree,
    jobs: sled::Tree,
    logs: sled::Tree,
}

fn io(e: sled::Error) -> Error {
    Error::Store(e.to_string())
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Store(format!("corrupt record: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn definition_key(family: &str, revision: u32) -> Vec<u8> {
    let mut key = family.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&revision.to_be_bytes());
    key
}

fn family_prefix(family: &str) -> Vec<u8> {
    let mut key = family.as_bytes().to_vec();
    key.push(0);
    key
}

/// Serialises registrations so two of the same family cannot take the same revision number.
static REGISTER: Mutex<()> = Mutex::new(());

impl Store {
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            .open()
            .map_err(|e| Error::Store(format!("cannot open {}: {e}", dir.display())))?;
        Ok(Store {
            definitions: db.open_tree("task-definitions.v1").map_err(io)?,
            jobs: db.open_tree("jobs.v1").map_err(io)?,
            logs: db.open_tree("job-logs.v1").map_err(io)?,
            db,
        })
    }

    async fn flush(&self) -> Result<(), Error> {
        self.db.flush_async().await.map_err(io)?;
        Ok(())
    }

    // ---- task definitions ---------------------------------------------------------------

    /// Stores `spec` as the family's next revision.
    pub async fn register(
        &self,
        spec: TaskDefinitionSpec,
        now_ms: u64,
    ) -> Result<TaskDefinition, Error> {
        let definition = {
            let _guard = REGISTER.lock().unwrap_or_else(|p| p.into_inner());
            let last = self
                .definitions
                .scan_prefix(family_prefix(&spec.family))
                .keys()
                .next_back()
                .transpose()
                .map_err(io)?
                .map(|k| {
                    let mut rev = [0u8; 4];
                    rev.copy_from_slice(&k[k.len() - 4..]);
                    u32::from_be_bytes(rev)
                })
                .unwrap_or(0);
            let definition = TaskDefinition {
                revision: last + 1,
                status: DefinitionStatus::Active,
                registered_ms: now_ms,
                spec,
            };
            self.put_definition(&definition)?;
            definition
        };
        self.flush().await?;
        Ok(definition)
    }

    fn put_definition(&self, definition: &TaskDefinition) -> Result<(), Error> {
        let record = DefinitionRecord {
            v: RECORD_VERSION,
            definition: definition.clone(),
        };
        self.definitions
            .insert(
                definition_key(definition.family(), definition.revision),
                encode(&record),
            )
            .map_err(io)?;
        Ok(())
    }

    pub fn definition(&self, family: &str, revision: u32) -> Result<Option<TaskDefinition>, Error> {
        self.definitions
            .get(definition_key(family, revision))
            .map_err(io)?
            .map(|bytes| decode::<DefinitionRecord>(&bytes).map(|r| r.definition))
            .transpose()
    }

    /// Every revision of a family, oldest first.
    pub fn revisions(&self, family: &str) -> Result<Vec<TaskDefinition>, Error> {
        self.definitions
            .scan_prefix(family_prefix(family))
            .values()
            .map(|v| decode::<DefinitionRecord>(&v.map_err(io)?).map(|r| r.definition))
            .collect()
    }

    /// The latest revision of every family, by family name.
    pub fn families(&self) -> Result<Vec<TaskDefinition>, Error> {
        let mut out: Vec<TaskDefinition> = Vec::new();
        for value in self.definitions.iter().values() {
            let def = decode::<DefinitionRecord>(&value.map_err(io)?)?.definition;
            match out.last_mut() {
                Some(last) if last.family() == def.family() => *last = def,
                _ => out.push(def),
            }
        }
        Ok(out)
    }

    pub async fn set_status(
        &self,
        family: &str,
        revision: u32,
        status: DefinitionStatus,
    ) -> Result<Option<TaskDefinition>, Error> {
        let Some(mut def) = self.definition(family, revision)? else {
            return Ok(None);
        };
        def.status = status;
        self.put_definition(&def)?;
        self.flush().await?;
        Ok(Some(def))
    }

    // ---- jobs ----------------------------------------------------------------------------

    pub async fn put_job(&self, job: &JobRecord) -> Result<(), Error> {
        let record = StoredJob {
            v: RECORD_VERSION,
            job: job.clone(),
        };
        self.jobs
            .insert(job.id.as_bytes(), encode(&record))
            .map_err(io)?;
        self.flush().await
    }

    /// Stores the outcome and the logs together, in one flush.
    pub async fn finish_job(&self, job: &JobRecord, logs: &[u8]) -> Result<(), Error> {
        self.logs.insert(job.id.as_bytes(), logs).map_err(io)?;
        self.put_job(job).await
    }

    pub fn job(&self, id: &str) -> Result<Option<JobRecord>, Error> {
        self.jobs
            .get(id.as_bytes())
            .map_err(io)?
            .map(|bytes| decode::<StoredJob>(&bytes).map(|r| r.job))
            .transpose()
    }

    pub fn jobs(&self) -> Result<Vec<JobRecord>, Error> {
        self.jobs
            .iter()
            .values()
            .map(|v| decode::<StoredJob>(&v.map_err(io)?).map(|r| r.job))
            .collect()
    }

    pub fn logs(&self, id: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .logs
            .get(id.as_bytes())
            .map_err(io)?
            .map(|v| v.to_vec()))
    }
}
