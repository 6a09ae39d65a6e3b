//! Server configuration: defaults, then a TOML file, then `STEPYARD_*` environment variables, then flags.
//!
//! Raw sources are parsed into [`FileConfig`] and [`crate::cli::ServeArgs`], then resolved once into a
//! ready [`ServerConfig`] that is passed explicitly; nothing deeper in the code reads the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::ServeArgs;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./stepyard-data";
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_ACCOUNT: &str = "123456789012";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid listen address {value:?}: expected HOST:PORT, e.g. 127.0.0.1:8080")]
    Listen { value: String },
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// The TOML file's shape. Every field is optional; unknown fields are an error so typos are caught.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub region: Option<String>,
    pub account: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_seconds: Option<u64>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.message().to_owned(),
        })
    }
}

/// The resolved configuration of `stepyard serve`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    pub account: String,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl ServerConfig {
    /// Layers the sources. `args` already holds flags over environment variables (clap does that);
    /// the file sits below both.
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let listen_text = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::Listen { value: listen_text })?;
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let region = args
            .region
            .clone()
            .or(file.region)
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let account = args
            .account
            .clone()
            .or(file.account)
            .unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned());
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid {
                field: "account",
                message: format!("{account:?} is not a 12-digit AWS account id"),
            });
        }
        let max_body_bytes = args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            return Err(ConfigError::Invalid {
                field: "max_body_bytes",
                message: "must be greater than 0".into(),
            });
        }
        let request_timeout = Duration::from_secs(
            args.request_timeout_seconds
                .or(file.request_timeout_seconds)
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECONDS),
        );
        Ok(ServerConfig {
            listen,
            data_dir,
            region,
            account,
            max_body_bytes,
            request_timeout,
        })
    }
}
