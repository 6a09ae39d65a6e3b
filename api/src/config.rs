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
pub const DEFAULT_MAX_RUNNING_CONTAINERS: usize = 4;

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
    pub rate_limit_per_second: Option<u32>,
    pub auth_tokens: Option<Vec<String>>,
    pub aws_access_keys: Option<Vec<AccessKey>>,
    pub allow_unauthenticated: Option<bool>,
    pub docker_host: Option<String>,
    pub container_mount_roots: Option<Vec<PathBuf>>,
    pub max_running_containers: Option<usize>,
    pub container_api_url: Option<String>,
    pub github_webhook_secret: Option<String>,
    pub smtp_relay: Option<String>,
    pub smtp_from: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub allowed_http_hosts: Option<Vec<String>>,
    pub allow_any_http_host: Option<bool>,
}

/// An AWS access key pair that SigV4-signed requests may use.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
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
    /// Requests per second per client address; 0 turns the limit off.
    pub rate_limit_per_second: u32,
    /// Bearer tokens accepted by the native API; empty means no token is asked for.
    pub auth_tokens: Vec<String>,
    /// Access keys whose SigV4 signatures the AWS endpoint checks; empty means signatures are not checked.
    pub aws_access_keys: Vec<(String, String)>,
    /// Container tasks (`ecs:runTask`): the Docker endpoint, the host folders task definitions may
    /// bind-mount read-only, the running-job limit, and the API URL containers call back on.
    pub containers: ContainerSettings,
    /// The secret GitHub signs webhooks with (`X-Hub-Signature-256`); without it
    /// `/v1/webhooks/github/{bus}` refuses every delivery.
    pub github_webhook_secret: Option<String>,
    /// Topics: the SMTP relay for email subscriptions and the hosts HTTP/S subscriptions may name.
    pub notifications: NotificationSettings,
}

pub const DEFAULT_SMTP_FROM: &str = "stepyard@localhost";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationSettings {
    /// `None`: email deliveries fail (dead-lettered, redrivable once a relay is set).
    pub smtp: Option<stepyard_workers::notify::SmtpSettings>,
    /// Hosts besides loopback that `http`/`https` subscriptions may name.
    pub allowed_http_hosts: Vec<String>,
    pub allow_any_http_host: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSettings {
    pub docker_host: String,
    pub mount_roots: Vec<PathBuf>,
    pub max_running: usize,
    /// `None`: the server listens on Docker's bridge gateway and gives containers that address.
    pub api_url: Option<String>,
}

impl Default for ContainerSettings {
    fn default() -> Self {
        ContainerSettings {
            docker_host: stepyard_workers::containers::DEFAULT_DOCKER_HOST.into(),
            mount_roots: Vec::new(),
            max_running: DEFAULT_MAX_RUNNING_CONTAINERS,
            api_url: None,
        }
    }
}

impl ServerConfig {
    /// A loopback configuration with defaults, for tests and embedding.
    pub fn local(data_dir: PathBuf) -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| unreachable!()),
            data_dir,
            region: DEFAULT_REGION.into(),
            account: DEFAULT_ACCOUNT.into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECONDS),
            rate_limit_per_second: 0,
            auth_tokens: Vec::new(),
            aws_access_keys: Vec::new(),
            containers: ContainerSettings::default(),
            github_webhook_secret: None,
            notifications: NotificationSettings::default(),
        }
    }

    pub fn aws_access_keys(&self) -> Option<&[(String, String)]> {
        (!self.aws_access_keys.is_empty()).then_some(self.aws_access_keys.as_slice())
    }

    /// Layers the sources. `args` already holds flags over environment variables (clap does that);
    /// the file sits below both.
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let mut file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let file_notifications = FileNotifications {
            smtp_relay: file.smtp_relay.take(),
            smtp_from: file.smtp_from.take(),
            smtp_username: file.smtp_username.take(),
            smtp_password: file.smtp_password.take(),
            allowed_http_hosts: file.allowed_http_hosts.take(),
            allow_any_http_host: file.allow_any_http_host.take(),
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
        let rate_limit_per_second = args
            .rate_limit_per_second
            .or(file.rate_limit_per_second)
            .unwrap_or(0);
        let auth_tokens: Vec<String> = match &args.auth_tokens {
            Some(list) => split_list(list),
            None => file.auth_tokens.unwrap_or_default(),
        };
        let aws_access_keys: Vec<(String, String)> = match &args.aws_access_keys {
            Some(list) => split_list(list)
                .into_iter()
                .map(|pair| match pair.split_once(':') {
                    Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
                        Ok((id.to_owned(), secret.to_owned()))
                    }
                    _ => Err(ConfigError::Invalid {
                        field: "aws_access_keys",
                        message:
                            "expected ACCESS_KEY_ID:SECRET_ACCESS_KEY pairs separated by commas"
                                .into(),
                    }),
                })
                .collect::<Result<_, _>>()?,
            None => file
                .aws_access_keys
                .unwrap_or_default()
                .into_iter()
                .map(|key| (key.access_key_id, key.secret_access_key))
                .collect(),
        };
        let allow_unauthenticated =
            args.allow_unauthenticated || file.allow_unauthenticated.unwrap_or(false);
        if !listen.ip().is_loopback()
            && !allow_unauthenticated
            && (auth_tokens.is_empty() || aws_access_keys.is_empty())
        {
            return Err(ConfigError::Invalid {
                field: "listen",
                message: format!(
                    "{listen} is reachable from other machines, so the server needs auth: set auth_tokens (native API bearer tokens) and aws_access_keys (SigV4 keys), or allow_unauthenticated = true to run open on purpose"
                ),
            });
        }
        let containers = ContainerSettings {
            docker_host: args
                .docker_host
                .clone()
                .or(file.docker_host)
                .unwrap_or_else(|| stepyard_workers::containers::DEFAULT_DOCKER_HOST.into()),
            mount_roots: match &args.container_mount_roots {
                Some(list) => split_list(list).into_iter().map(PathBuf::from).collect(),
                None => file.container_mount_roots.unwrap_or_default(),
            },
            max_running: args
                .max_running_containers
                .or(file.max_running_containers)
                .unwrap_or(DEFAULT_MAX_RUNNING_CONTAINERS),
            api_url: args.container_api_url.clone().or(file.container_api_url),
        };
        if containers.max_running == 0 {
            return Err(ConfigError::Invalid {
                field: "max_running_containers",
                message: "must be greater than 0".into(),
            });
        }
        let github_webhook_secret = args
            .github_webhook_secret
            .clone()
            .or(file.github_webhook_secret)
            .filter(|s| !s.is_empty());
        let notifications = resolve_notifications(args, &file_notifications)?;
        Ok(ServerConfig {
            github_webhook_secret,
            notifications,
            containers,
            listen,
            data_dir,
            region,
            account,
            max_body_bytes,
            request_timeout,
            rate_limit_per_second,
            auth_tokens,
            aws_access_keys,
        })
    }
}

/// The file's notification keys, taken out before the rest of the file is consumed.
struct FileNotifications {
    smtp_relay: Option<String>,
    smtp_from: Option<String>,
    smtp_username: Option<String>,
    smtp_password: Option<String>,
    allowed_http_hosts: Option<Vec<String>>,
    allow_any_http_host: Option<bool>,
}

fn resolve_notifications(
    args: &ServeArgs,
    file: &FileNotifications,
) -> Result<NotificationSettings, ConfigError> {
    let relay = args.smtp_relay.clone().or(file.smtp_relay.clone());
    let smtp = match relay {
        Some(relay) => {
            let (host, port) = relay
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| ConfigError::Invalid {
                    field: "smtp_relay",
                    message: format!("{relay:?} is not HOST:PORT, e.g. 127.0.0.1:25"),
                })?;
            let from = args
                .smtp_from
                .clone()
                .or(file.smtp_from.clone())
                .unwrap_or_else(|| DEFAULT_SMTP_FROM.to_owned());
            if !from.contains('@') {
                return Err(ConfigError::Invalid {
                    field: "smtp_from",
                    message: format!("{from:?} is not a mail address"),
                });
            }
            Some(stepyard_workers::notify::SmtpSettings {
                host: host.to_owned(),
                port,
                from,
                username: args.smtp_username.clone().or(file.smtp_username.clone()),
                password: args.smtp_password.clone().or(file.smtp_password.clone()),
                timeout: stepyard_workers::notify::DEFAULT_SMTP_TIMEOUT,
            })
        }
        None => None,
    };
    let allowed_http_hosts = match &args.allowed_http_hosts {
        Some(list) => split_list(list),
        None => file.allowed_http_hosts.clone().unwrap_or_default(),
    }
    .into_iter()
    .map(|h| h.to_ascii_lowercase())
    .collect();
    Ok(NotificationSettings {
        smtp,
        allowed_http_hosts,
        allow_any_http_host: args.allow_any_http_host || file.allow_any_http_host.unwrap_or(false),
    })
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: ServeArgs) -> Result<ServerConfig, ConfigError> {
        ServerConfig::resolve(&args)
    }

    #[test]
    fn defaults_are_loopback_and_open() {
        let config = resolve(ServeArgs::default()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./stepyard-data"));
        assert!(config.auth_tokens.is_empty());
        assert_eq!(config.max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn non_loopback_without_auth_is_refused() {
        let err = resolve(ServeArgs {
            listen: Some("0.0.0.0:8080".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("auth_tokens"), "{err}");
        let config = resolve(ServeArgs {
            listen: Some("0.0.0.0:8080".into()),
            auth_tokens: Some("t1, t2".into()),
            aws_access_keys: Some("AKID:secret".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(config.auth_tokens, vec!["t1", "t2"]);
        assert_eq!(
            config.aws_access_keys,
            vec![("AKID".into(), "secret".into())]
        );
        assert!(
            resolve(ServeArgs {
                listen: Some("0.0.0.0:8080".into()),
                allow_unauthenticated: true,
                ..ServeArgs::default()
            })
            .is_ok()
        );
    }

    #[test]
    fn notification_settings_layer_and_name_their_field() {
        let config = resolve(ServeArgs::default()).unwrap();
        assert_eq!(config.notifications, NotificationSettings::default());
        let config = resolve(ServeArgs {
            smtp_relay: Some("127.0.0.1:2525".into()),
            allowed_http_hosts: Some("Hooks.Example.com, ci.local".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        let smtp = config.notifications.smtp.unwrap();
        assert_eq!((smtp.host.as_str(), smtp.port), ("127.0.0.1", 2525));
        assert_eq!(smtp.from, DEFAULT_SMTP_FROM);
        assert_eq!(
            config.notifications.allowed_http_hosts,
            vec!["hooks.example.com", "ci.local"]
        );
        let err = resolve(ServeArgs {
            smtp_relay: Some("nohost".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("smtp_relay"), "{err}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = resolve(ServeArgs {
            listen: Some("localhost".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("listen address"), "{err}");
        let err = resolve(ServeArgs {
            aws_access_keys: Some("nocolon".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("aws_access_keys"), "{err}");
        let err = resolve(ServeArgs {
            account: Some("12".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("account"), "{err}");
    }
}
