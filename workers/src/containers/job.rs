//! A job: one container run (what ECS calls a task), its lifecycle and its stored record.
//!
//! Lifecycle (every arrow is a stored record, flushed before the next Docker call):
//!
//! ```text
//! Pending ──(a running slot is free; container created and started)──> Running
//! Pending ──(image missing, Docker unreachable, ...)──────────────────> Stopped (TaskFailedToStart)
//! Running ──(the container exited, was killed for memory, or timed out)─> Stopped
//! Running ──(stop asked by a user)──> Stopping ──(exited)──> Stopped (UserInitiated)
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::containers::definitions::ContainerSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Waiting for a running slot (the per-server limit) or being created.
    Pending,
    Running,
    /// A stop was asked; the container has been sent SIGTERM, SIGKILL follows after the grace.
    Stopping,
    Stopped,
}

impl JobStatus {
    /// ECS's `LastStatus` words.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Running => "RUNNING",
            JobStatus::Stopping => "STOPPING",
            JobStatus::Stopped => "STOPPED",
        }
    }
}

/// Why a job stopped, in ECS's `StopCode` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopCode {
    /// The container ended by itself (any exit code, or killed for memory).
    EssentialContainerExited,
    /// The container could not be created or started.
    TaskFailedToStart,
    /// A user asked for the stop.
    UserInitiated,
    /// Stepyard stopped it: the timeout passed.
    ServiceSchedulerInitiated,
}

impl StopCode {
    pub fn as_str(self) -> &'static str {
        match self {
            StopCode::EssentialContainerExited => "EssentialContainerExited",
            StopCode::TaskFailedToStart => "TaskFailedToStart",
            StopCode::UserInitiated => "UserInitiated",
            StopCode::ServiceSchedulerInitiated => "ServiceSchedulerInitiated",
        }
    }
}

/// How the caller waits for the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobMode {
    /// `runTask.sync`: the Task state waits for the container's end.
    Sync,
    /// `runTask.waitForTaskToken`: the container answers with its token; a failed container
    /// fails the task.
    Callback,
    /// `runTask` and `POST /v1/tasks`: started and left to run.
    Detached,
}

/// Where the job came from: a Task state, or the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOrigin {
    pub execution_arn: String,
    pub state_name: String,
    pub attempt: u32,
    pub invocation_id: String,
}

/// A job's end as the workflow sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded { result: Value },
    Failed { error: String, cause: String },
}

/// The stored record of a job (see `store.rs` for its key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub spec: ContainerSpec,
    pub input: Value,
    pub mode: JobMode,
    pub origin: Option<JobOrigin>,
    pub task_token: Option<String>,
    pub status: JobStatus,
    pub container_id: Option<String>,
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub stopping_ms: Option<u64>,
    pub stopped_ms: Option<u64>,
    /// When Stepyard stops the container: fixed at start so a restart keeps it.
    pub deadline_ms: Option<u64>,
    /// The effective timeout, for messages.
    pub timeout_seconds: Option<u64>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    pub outcome: Option<Outcome>,
}

impl JobRecord {
    pub fn is_stopped(&self) -> bool {
        self.status == JobStatus::Stopped
    }

    pub fn task_arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:ecs:{region}:{account}:task/stepyard/{}", self.id)
    }

    pub fn task_definition_arn(&self, region: &str, account: &str) -> String {
        format!(
            "arn:aws:ecs:{region}:{account}:task-definition/{}",
            self.spec.definition_name()
        )
    }

    /// The job as ECS's DescribeTasks shows a task (PascalCase, as Step Functions returns it),
    /// plus `Result`: what the container produced.
    pub fn ecs_description(&self, region: &str, account: &str) -> Value {
        let task_arn = self.task_arn(region, account);
        let mut container = json!({
            "ContainerArn": format!("arn:aws:ecs:{region}:{account}:container/stepyard/{}/{}", self.id, self.spec.family),
            "Image": self.spec.image,
            "LastStatus": self.status.as_str(),
            "Name": self.spec.family,
            "TaskArn": task_arn,
        });
        if let Some(code) = self.exit_code {
            container["ExitCode"] = json!(code);
        }
        if let Some(id) = &self.container_id {
            container["RuntimeId"] = json!(id);
        }
        if self.oom_killed {
            container["Reason"] = json!("OutOfMemoryError: Container killed due to memory usage");
        }
        let mut task = json!({
            "Attachments": [],
            "Containers": [container],
            "CreatedAt": self.created_ms,
            "DesiredStatus": if self.status == JobStatus::Pending || self.status == JobStatus::Running { "RUNNING" } else { "STOPPED" },
            "LastStatus": self.status.as_str(),
            "LaunchType": "STEPYARD",
            "TaskArn": task_arn,
            "TaskDefinitionArn": self.task_definition_arn(region, account),
        });
        if let Some(cpu) = self.spec.cpu {
            task["Cpu"] = json!(cpu.to_string());
        }
        if let Some(mem) = self.spec.memory_mib {
            task["Memory"] = json!(mem.to_string());
        }
        if let Some(ms) = self.started_ms {
            task["StartedAt"] = json!(ms);
        }
        if let Some(ms) = self.stopping_ms {
            task["StoppingAt"] = json!(ms);
        }
        if let Some(ms) = self.stopped_ms {
            task["StoppedAt"] = json!(ms);
        }
        if let Some(code) = self.stop_code {
            task["StopCode"] = json!(code.as_str());
        }
        if let Some(reason) = &self.stopped_reason {
            task["StoppedReason"] = json!(reason);
        }
        if let Some(origin) = &self.origin {
            task["StartedBy"] = json!(origin.execution_arn);
        }
        if let Some(Outcome::Succeeded { result }) = &self.outcome {
            task["Result"] = result.clone();
        }
        task
    }
}
