//! The few Docker Engine API calls the runtime makes, through bollard, with errors sorted into
//! what a user can act on (engine unreachable, image missing) and the rest.
//!
//! The client speaks API 1.41 (Docker 20.10), which every newer engine still serves, so no
//! version negotiation (and no round trip) is needed before the first call.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, InspectNetworkOptions,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures::StreamExt;

pub(crate) const API_VERSION: &ClientVersion = &ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// How long a short call (create, inspect, stop, ...) may take before the engine counts as
/// unreachable. Waiting for a container's end has no such limit.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The label every Stepyard container carries; the others hang off the same prefix.
pub(crate) const LABEL_MANAGED: &str = "io.stepyard.managed";
pub(crate) const LABEL_JOB: &str = "io.stepyard.job";
pub(crate) const LABEL_EXECUTION: &str = "io.stepyard.execution";
pub(crate) const LABEL_STATE: &str = "io.stepyard.state";
pub(crate) const LABEL_ATTEMPT: &str = "io.stepyard.attempt";
pub(crate) const LABEL_INVOCATION: &str = "io.stepyard.invocation";
pub(crate) const LABEL_DEFINITION: &str = "io.stepyard.task-definition";

#[derive(Debug, thiserror::Error)]
pub(crate) enum DockerError {
    #[error("the Docker engine is unreachable at {host}: {message}")]
    Unreachable { host: String, message: String },
    #[error(
        "image '{0}' is not on the Docker engine (Stepyard does not pull images: build or load it first)"
    )]
    ImageMissing(String),
    #[error("container {0} already exists")]
    Conflict(String),
    #[error("no container {0}")]
    NotFound(String),
    #[error("the Docker engine refused: {0}")]
    Refused(String),
}

/// A container as inspected.
#[derive(Debug, Clone)]
pub(crate) struct Inspected {
    pub id: String,
    pub running: bool,
    /// Created but never started (a crash between the two).
    pub never_started: bool,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
}

/// What a container printed: everything (stdout and stderr as they came, tail kept) and stdout.
pub(crate) struct Logs {
    pub combined: Vec<u8>,
    pub stdout: Vec<u8>,
}

/// The container to create.
pub(crate) struct CreateSpec {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub labels: HashMap<String, String>,
    pub nano_cpus: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub pids_limit: Option<i64>,
    pub network_mode: &'static str,
    /// `source:target:ro` entries.
    pub binds: Vec<String>,
}

#[derive(Clone)]
pub(crate) struct DockerClient {
    docker: Docker,
    host: String,
}

impl DockerClient {
    /// `unix:///var/run/docker.sock`, a bare socket path, or `tcp://HOST:PORT`. Connecting is
    /// lazy: an engine that is down now is only an error when a call is made.
    pub fn new(host: &str) -> Result<DockerClient, DockerError> {
        // Waits can last hours: the client's own timeout is long, short calls get CALL_TIMEOUT.
        let timeout = 7 * 24 * 3600;
        let docker = if let Some(rest) = host.strip_prefix("tcp://") {
            Docker::connect_with_http(&format!("http://{rest}"), timeout, API_VERSION)
        } else if host.starts_with("http://") {
            Docker::connect_with_http(host, timeout, API_VERSION)
        } else {
            let path = host.strip_prefix("unix://").unwrap_or(host);
            Docker::connect_with_unix(path, timeout, API_VERSION)
        }
        .map_err(|e| DockerError::Unreachable {
            host: host.to_string(),
            message: e.to_string(),
        })?;
        Ok(DockerClient {
            docker,
            host: host.to_string(),
        })
    }

    fn classify(&self, e: bollard::errors::Error, what: &str) -> DockerError {
        use bollard::errors::Error as E;
        match e {
            E::DockerResponseServerError {
                status_code: 404,
                message,
            } => DockerError::NotFound(format!("{what}: {message}")),
            E::DockerResponseServerError {
                status_code: 409,
                message,
            } => DockerError::Conflict(format!("{what}: {message}")),
            E::DockerResponseServerError { message, .. } => {
                DockerError::Refused(format!("{what}: {message}"))
            }
            other => DockerError::Unreachable {
                host: self.host.clone(),
                message: other.to_string(),
            },
        }
    }

    async fn timed<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, DockerError> {
        match tokio::time::timeout(CALL_TIMEOUT, f).await {
            Ok(r) => r.map_err(|e| self.classify(e, what)),
            Err(_) => Err(DockerError::Unreachable {
                host: self.host.clone(),
                message: format!("{what}: no answer in {}s", CALL_TIMEOUT.as_secs()),
            }),
        }
    }

    pub async fn ping(&self) -> Result<(), DockerError> {
        self.timed("ping", self.docker.ping()).await.map(|_| ())
    }

    pub async fn image_exists(&self, image: &str) -> Result<bool, DockerError> {
        match self
            .timed("inspect image", self.docker.inspect_image(image))
            .await
        {
            Ok(_) => Ok(true),
            Err(DockerError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn create(&self, spec: CreateSpec) -> Result<String, DockerError> {
        let host_config = HostConfig {
            memory: spec.memory_bytes,
            // No swap beyond the memory limit, so the limit is the limit.
            memory_swap: spec.memory_bytes,
            nano_cpus: spec.nano_cpus,
            pids_limit: spec.pids_limit,
            network_mode: Some(spec.network_mode.to_string()),
            binds: (!spec.binds.is_empty()).then_some(spec.binds),
            privileged: Some(false),
            security_opt: Some(vec!["no-new-privileges".into()]),
            auto_remove: Some(false),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.command,
            entrypoint: spec.entrypoint,
            env: Some(spec.env),
            working_dir: spec.working_dir,
            labels: Some(spec.labels),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            tty: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        match self
            .timed(
                "create container",
                self.docker.create_container(Some(options), body),
            )
            .await
        {
            Ok(created) => Ok(created.id),
            Err(DockerError::NotFound(_)) => Err(DockerError::ImageMissing(spec.image)),
            Err(e) => Err(e),
        }
    }

    /// Copies `files` (path relative to `/`, mode, content) into a created container.
    pub async fn upload(&self, id: &str, files: &[(&str, u32, &[u8])]) -> Result<(), DockerError> {
        let archive = tar_archive(files);
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        self.timed(
            "copy input into the container",
            self.docker.upload_to_container(
                id,
                Some(options),
                bollard::body_full(bytes::Bytes::from(archive)),
            ),
        )
        .await
    }

    pub async fn start(&self, id: &str) -> Result<(), DockerError> {
        self.timed("start container", self.docker.start_container(id, None))
            .await
    }

    pub async fn inspect(&self, name: &str) -> Result<Option<Inspected>, DockerError> {
        match self
            .timed(
                "inspect container",
                self.docker.inspect_container(name, None),
            )
            .await
        {
            Ok(c) => {
                let state = c.state.unwrap_or_default();
                Ok(Some(Inspected {
                    id: c.id.unwrap_or_default(),
                    running: state.running.unwrap_or(false),
                    never_started: state.status
                        == Some(bollard::models::ContainerStateStatusEnum::CREATED),
                    exit_code: state.exit_code,
                    oom_killed: state.oom_killed.unwrap_or(false),
                }))
            }
            Err(DockerError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Returns once the container is not running (at once if it already ended).
    pub async fn wait(&self, id: &str) -> Result<(), DockerError> {
        let options = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut stream = self.docker.wait_container(id, Some(options));
        match stream.next().await {
            // A non-zero exit comes back as an error from bollard: it is still an end.
            None
            | Some(Ok(_))
            | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => Ok(()),
            Some(Err(e)) => Err(self.classify(e, "wait for container")),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), DockerError> {
        let options = StopContainerOptionsBuilder::default()
            .t(grace.as_secs().try_into().unwrap_or(i32::MAX))
            .build();
        let stop = self.docker.stop_container(id, Some(options));
        match tokio::time::timeout(CALL_TIMEOUT + grace, stop).await {
            Ok(Ok(())) => Ok(()),
            // 304: already stopped.
            Ok(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            })) => Ok(()),
            Ok(Err(e)) => Err(self.classify(e, "stop container")),
            Err(_) => Err(DockerError::Unreachable {
                host: self.host.clone(),
                message: "stop container: no answer".into(),
            }),
        }
    }

    /// The container's output; only the last `limit` bytes of each stream are kept.
    pub async fn logs(&self, id: &str, limit: usize) -> Result<Logs, DockerError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("all")
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut logs = Logs {
            combined: Vec::new(),
            stdout: Vec::new(),
        };
        let collect = async {
            while let Some(item) = stream.next().await {
                let item = item.map_err(|e| self.classify(e, "read logs"))?;
                if let bollard::container::LogOutput::StdOut { message } = &item {
                    push_tail(&mut logs.stdout, message, limit);
                }
                push_tail(&mut logs.combined, item.as_ref(), limit);
            }
            Ok::<(), DockerError>(())
        };
        match tokio::time::timeout(CALL_TIMEOUT, collect).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(DockerError::Unreachable {
                    host: self.host.clone(),
                    message: "read logs: no answer".into(),
                });
            }
        }
        Ok(logs)
    }

    /// One file's content, `None` when the container has no such file.
    pub async fn read_file(
        &self,
        id: &str,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, DockerError> {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(id, Some(options));
        let mut archive = Vec::new();
        let collect = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.classify(e, "read the result file"))?;
                archive.extend_from_slice(&chunk);
                // Header + content + padding: more than this is a result too big to keep.
                if archive.len() > limit + 4096 {
                    break;
                }
            }
            Ok::<(), DockerError>(())
        };
        match tokio::time::timeout(CALL_TIMEOUT, collect).await {
            Ok(Ok(())) => {}
            Ok(Err(DockerError::NotFound(_))) => return Ok(None),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(DockerError::Unreachable {
                    host: self.host.clone(),
                    message: "read the result file: no answer".into(),
                });
            }
        }
        Ok(first_file_of_tar(&archive))
    }

    pub async fn remove(&self, id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self
            .timed(
                "remove container",
                self.docker.remove_container(id, Some(options)),
            )
            .await
        {
            Ok(()) | Err(DockerError::NotFound(_)) => Ok(()),
            // Removal already in progress.
            Err(DockerError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every container (running or not) carrying Stepyard's label, as (id, labels).
    pub async fn list_managed(
        &self,
    ) -> Result<Vec<(String, HashMap<String, String>)>, DockerError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .timed(
                "list containers",
                self.docker.list_containers(Some(options)),
            )
            .await?;
        Ok(list
            .into_iter()
            .filter_map(|c| Some((c.id?, c.labels.unwrap_or_default())))
            .collect())
    }

    /// The address of the host on Docker's default bridge: where a `bridge` container reaches
    /// the host.
    pub async fn bridge_gateway(&self) -> Result<Option<IpAddr>, DockerError> {
        let network = self
            .timed(
                "inspect the bridge network",
                self.docker
                    .inspect_network("bridge", None::<InspectNetworkOptions>),
            )
            .await?;
        let configs = network.ipam.and_then(|i| i.config).unwrap_or_default();
        for config in configs {
            if let Some(ip) = config.gateway.and_then(|g| g.parse().ok()) {
                return Ok(Some(ip));
            }
            // Docker leaves Gateway out on some setups: it is the subnet's first address.
            if let Some(IpAddr::V4(net)) = config
                .subnet
                .and_then(|s| s.split('/').next().and_then(|a| a.parse().ok()))
            {
                let first = u32::from(net) + 1;
                return Ok(Some(IpAddr::V4(first.into())));
            }
        }
        Ok(None)
    }
}

fn push_tail(buf: &mut Vec<u8>, data: &[u8], limit: usize) {
    buf.extend_from_slice(data);
    if buf.len() > limit {
        let cut = buf.len() - limit;
        buf.drain(..cut);
    }
}

/// A ustar archive of regular files (parent folders are made as `0777` entries so a container
/// running as any user can write its result next to its input).
pub(crate) fn tar_archive(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    for (path, _, _) in files {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            acc.push_str(part);
            acc.push('/');
            if !dirs.contains(&acc) {
                dirs.push(acc.clone());
            }
        }
    }
    for dir in &dirs {
        out.extend_from_slice(&tar_header(dir, 0o777, 0, b'5'));
    }
    for (path, mode, content) in files {
        out.extend_from_slice(&tar_header(path, *mode, content.len(), b'0'));
        out.extend_from_slice(content);
        let pad = (512 - content.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

fn tar_header(path: &str, mode: u32, size: usize, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    let name = path.as_bytes();
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    let octal = |h: &mut [u8; 512], at: usize, width: usize, value: u64| {
        let text = format!("{value:0w$o}", w = width - 1);
        h[at..at + width - 1].copy_from_slice(text.as_bytes());
    };
    octal(&mut h, 100, 8, mode as u64);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size as u64);
    octal(&mut h, 136, 12, 0);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// The content of the first regular file in a tar archive (skipping pax and GNU long-name
/// records, which Docker emits for some paths).
pub(crate) fn first_file_of_tar(archive: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while at + 512 <= archive.len() {
        let header = &archive[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            return None;
        }
        let size_text = std::str::from_utf8(&header[124..136]).ok()?;
        let size = u64::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .ok()? as usize;
        let start = at + 512;
        let kind = header[156];
        if kind == b'0' || kind == 0 {
            let end = (start + size).min(archive.len());
            return Some(archive[start..end].to_vec());
        }
        at = start + size.div_ceil(512) * 512;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_round_trip() {
        let archive = tar_archive(&[("stepyard/input.json", 0o644, br#"{"a":1}"#)]);
        assert_eq!(archive.len() % 512, 0);
        assert_eq!(
            first_file_of_tar(&archive).as_deref(),
            Some(&br#"{"a":1}"#[..])
        );
    }

    #[test]
    fn tails_keep_the_last_bytes() {
        let mut buf = Vec::new();
        push_tail(&mut buf, b"hello ", 8);
        push_tail(&mut buf, b"world", 8);
        assert_eq!(buf, b"lo world");
    }
}
