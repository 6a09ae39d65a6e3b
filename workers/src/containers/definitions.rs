//! Task definitions: what a container job runs, in families of numbered revisions as ECS has them.
//!
//! A [`TaskDefinitionSpec`] is what a user registers; registering it again under the same family
//! makes the next revision (`scan:1`, `scan:2`, ...). Running a job resolves a reference
//! (`scan`, `scan:2` or `arn:aws:ecs:REGION:ACCOUNT:task-definition/scan:2`) to one revision and
//! applies the run's overrides to get a [`ContainerSpec`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::containers::Error;

/// Where a container's result comes from (documented for users in the README of the workers crate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultSource {
    /// The file `/stepyard/result.json` if the container wrote it, else the last line of stdout
    /// that is a JSON object or array, else `null`.
    #[default]
    Auto,
    /// Only `/stepyard/result.json` (`null` when absent).
    File,
    /// Only the last JSON object or array line of stdout (`null` when none).
    Stdout,
    /// No result: `null`.
    None,
}

/// The container's network. There is deliberately no `host`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// No network at all (the default): the container only sees its input.
    #[default]
    None,
    /// Docker's default bridge: outbound access, and Stepyard's API at the bridge gateway.
    Bridge,
}

impl NetworkMode {
    pub fn docker_name(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Bridge => "bridge",
        }
    }
}

/// A host folder mounted read-only into the container. Writable host mounts do not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// An absolute host path inside one of the server's allowed folders.
    pub source: PathBuf,
    /// An absolute path inside the container.
    pub target: String,
}

/// What a user registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefinitionSpec {
    pub family: String,
    pub image: String,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    /// CPU units as ECS counts them: 1024 is one core.
    #[serde(default)]
    pub cpu: Option<u32>,
    #[serde(default)]
    pub memory_mib: Option<u64>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub network_mode: NetworkMode,
    #[serde(default)]
    pub mounts: Vec<BindMount>,
    /// Used when the Task state has no `TimeoutSeconds`.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub result: ResultSource,
}

/// Docker refuses memory limits below 6 MiB.
const MIN_MEMORY_MIB: u64 = 6;

impl TaskDefinitionSpec {
    /// Checks the spec; bind mounts must resolve inside one of `allowed_mount_roots`.
    pub fn validate(&self, allowed_mount_roots: &[PathBuf]) -> Result<(), Error> {
        validate_family(&self.family)?;
        let invalid =
            |field: &'static str, message: String| Error::InvalidDefinition { field, message };
        if self.image.trim().is_empty() {
            return Err(invalid("image", "must not be empty".into()));
        }
        if let Some(dir) = &self.working_dir
            && !dir.starts_with('/')
        {
            return Err(invalid(
                "working_dir",
                format!("'{dir}' is not an absolute path"),
            ));
        }
        if self.cpu == Some(0) {
            return Err(invalid(
                "cpu",
                "must be at least 1 (1024 is one core)".into(),
            ));
        }
        if let Some(m) = self.memory_mib
            && m < MIN_MEMORY_MIB
        {
            return Err(invalid(
                "memory_mib",
                format!("must be at least {MIN_MEMORY_MIB}"),
            ));
        }
        if let Some(p) = self.pids_limit
            && p < 1
        {
            return Err(invalid("pids_limit", "must be at least 1".into()));
        }
        if self.timeout_seconds == Some(0) {
            return Err(invalid("timeout_seconds", "must be at least 1".into()));
        }
        for name in self.environment.keys() {
            if name.is_empty() || name.contains('=') {
                return Err(invalid(
                    "environment",
                    format!("invalid variable name '{name}'"),
                ));
            }
        }
        for mount in &self.mounts {
            check_mount(mount, allowed_mount_roots)?;
        }
        Ok(())
    }
}

fn validate_family(family: &str) -> Result<(), Error> {
    let ok = !family.is_empty()
        && family.len() <= 255
        && family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidDefinition {
            field: "family",
            message: format!("'{family}' must be 1 to 255 letters, digits, hyphens or underscores"),
        })
    }
}

/// A bind mount's source must be an existing folder or file inside an allowed root, after
/// resolving symlinks and `..` (so a link cannot lead out of the root).
fn check_mount(mount: &BindMount, roots: &[PathBuf]) -> Result<(), Error> {
    let invalid = |message: String| Error::InvalidDefinition {
        field: "mounts",
        message,
    };
    if !mount.target.starts_with('/') || mount.target.contains(':') {
        return Err(invalid(format!(
            "target '{}' must be an absolute path without ':'",
            mount.target
        )));
    }
    if mount.target == "/stepyard" || mount.target.starts_with("/stepyard/") {
        return Err(invalid(
            "target /stepyard is reserved for input and result".into(),
        ));
    }
    let source = mount
        .source
        .canonicalize()
        .map_err(|e| invalid(format!("source '{}': {e}", mount.source.display())))?;
    if source.to_string_lossy().contains(':') {
        return Err(invalid(format!(
            "source '{}' must not contain ':'",
            source.display()
        )));
    }
    let allowed = roots.iter().any(|root| {
        root.canonicalize()
            .is_ok_and(|root| Path::new(&source).starts_with(root))
    });
    if allowed {
        Ok(())
    } else if roots.is_empty() {
        Err(invalid(
            "bind mounts are disabled: the server allows no host folders (--container-mount-root)"
                .into(),
        ))
    } else {
        Err(invalid(format!(
            "source '{}' is outside the allowed folders ({})",
            source.display(),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// Whether a revision may run new jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DefinitionStatus {
    Active,
    Inactive,
}

/// One registered revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub revision: u32,
    pub status: DefinitionStatus,
    pub registered_ms: u64,
    pub spec: TaskDefinitionSpec,
}

impl TaskDefinition {
    pub fn family(&self) -> &str {
        &self.spec.family
    }

    /// `family:revision`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.spec.family, self.revision)
    }
}

/// A reference to a revision: `family` (its latest active revision), `family:3`, or an ECS ARN
/// `arn:aws:ecs:REGION:ACCOUNT:task-definition/family:3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionRef {
    pub family: String,
    pub revision: Option<u32>,
}

impl DefinitionRef {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bare = match text.split_once(":task-definition/") {
            Some((prefix, rest)) if prefix.starts_with("arn:") => rest,
            _ => text,
        };
        let (family, revision) = match bare.rsplit_once(':') {
            Some((family, rev)) => {
                let rev = rev
                    .parse::<u32>()
                    .map_err(|_| Error::InvalidReference(text.into()))?;
                (family, Some(rev))
            }
            None => (bare, None),
        };
        validate_family(family).map_err(|_| Error::InvalidReference(text.into()))?;
        Ok(DefinitionRef {
            family: family.to_string(),
            revision,
        })
    }
}

/// What a run may change (ECS `Overrides.ContainerOverrides[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// The resolved container of one job: a revision with the run's overrides applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub family: String,
    pub revision: u32,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub cpu: Option<u32>,
    pub memory_mib: Option<u64>,
    pub pids_limit: Option<i64>,
    pub network_mode: NetworkMode,
    pub mounts: Vec<BindMount>,
    pub timeout_seconds: Option<u64>,
    pub result: ResultSource,
}

impl ContainerSpec {
    pub fn resolve(def: &TaskDefinition, overrides: &Overrides) -> Self {
        let spec = &def.spec;
        let mut environment = spec.environment.clone();
        environment.extend(overrides.environment.clone());
        ContainerSpec {
            family: spec.family.clone(),
            revision: def.revision,
            image: spec.image.clone(),
            command: overrides.command.clone().or_else(|| spec.command.clone()),
            entrypoint: spec.entrypoint.clone(),
            environment,
            working_dir: spec.working_dir.clone(),
            cpu: spec.cpu,
            memory_mib: spec.memory_mib,
            pids_limit: spec.pids_limit,
            network_mode: spec.network_mode,
            mounts: spec.mounts.clone(),
            timeout_seconds: spec.timeout_seconds,
            result: spec.result,
        }
    }

    pub fn definition_name(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_in_their_three_forms() {
        let r = DefinitionRef::parse("scan").unwrap();
        assert_eq!((r.family.as_str(), r.revision), ("scan", None));
        let r = DefinitionRef::parse("scan:7").unwrap();
        assert_eq!((r.family.as_str(), r.revision), ("scan", Some(7)));
        let r = DefinitionRef::parse("arn:aws:ecs:us-east-1:123456789012:task-definition/scan:2")
            .unwrap();
        assert_eq!((r.family.as_str(), r.revision), ("scan", Some(2)));
        assert!(DefinitionRef::parse("scan:x").is_err());
        assert!(DefinitionRef::parse("").is_err());
        assert!(DefinitionRef::parse("a/b").is_err());
    }

    fn spec() -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            family: "scan".into(),
            image: "img".into(),
            command: None,
            entrypoint: None,
            environment: BTreeMap::new(),
            working_dir: None,
            cpu: None,
            memory_mib: None,
            pids_limit: None,
            network_mode: NetworkMode::None,
            mounts: Vec::new(),
            timeout_seconds: None,
            result: ResultSource::Auto,
        }
    }

    #[test]
    fn mounts_must_stay_inside_the_allowed_folders() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("repo");
        std::fs::create_dir(&inside).unwrap();
        let mut s = spec();
        s.mounts = vec![BindMount {
            source: inside.clone(),
            target: "/src".into(),
        }];
        s.validate(&[root.path().to_path_buf()]).unwrap();
        // `..` cannot climb out of the root.
        s.mounts[0].source = inside.join("..").join("..");
        let err = s.validate(&[root.path().to_path_buf()]).unwrap_err();
        assert!(
            err.to_string().contains("outside the allowed folders"),
            "{err}"
        );
        // No roots configured: no mounts at all.
        s.mounts[0].source = inside;
        let err = s.validate(&[]).unwrap_err();
        assert!(
            err.to_string().contains("bind mounts are disabled"),
            "{err}"
        );
    }

    #[test]
    fn limits_are_checked() {
        let mut s = spec();
        s.memory_mib = Some(2);
        assert!(
            s.validate(&[])
                .unwrap_err()
                .to_string()
                .contains("memory_mib")
        );
        let mut s = spec();
        s.family = "no spaces".into();
        assert!(s.validate(&[]).is_err());
    }
}
