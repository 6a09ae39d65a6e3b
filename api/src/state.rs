//! What every handler shares: cheap to clone.

use std::path::Path;
use std::sync::Arc;

use crate::config::ServerConfig;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    store: sled::Db,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "data folder {path} is in use by another stepyard process (its lock is held); stop that server or choose another --data-dir"
    )]
    Locked { path: String },
    #[error("cannot open the data folder {path}: {message}")]
    Other { path: String, message: String },
}

impl AppState {
    pub fn open(config: ServerConfig) -> Result<Self, OpenError> {
        let store = open_store(&config.data_dir)?;
        Ok(AppState {
            inner: Arc::new(Inner { config, store }),
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Flushes everything the store holds in memory to disk.
    pub async fn close(&self) -> Result<(), sled::Error> {
        self.inner.store.flush_async().await.map(|_| ())
    }
}

fn open_store(dir: &Path) -> Result<sled::Db, OpenError> {
    let path = dir.display().to_string();
    sled::Config::new()
        .path(dir)
        .open()
        .map_err(|err| match err {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                OpenError::Locked { path: path.clone() }
            }
            sled::Error::Io(io) if io.to_string().contains("lock") => {
                OpenError::Locked { path: path.clone() }
            }
            other => OpenError::Other {
                path: path.clone(),
                message: other.to_string(),
            },
        })
}
