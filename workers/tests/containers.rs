//! Container tasks on the real Docker engine, driven through a real engine in a temp dir.
//!
//! The test image is built here `FROM scratch` with Debian's `busybox-static` (no registry is
//! reachable). Without a Docker engine or busybox these tests fail, saying so: they never skip.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use stepyard_engine::{
    CreateStateMachine, Engine, EngineConfig, ExecutionInfo, ExecutionStatus, StartExecution,
};
use stepyard_workers::containers::{
    ContainerConfig, ContainerRuntime, ECS_RUN_TASK, JobStatus, NetworkMode, Overrides, RunJob,
    StopCode, TaskDefinitionSpec,
};

const IMAGE: &str = "stepyard-test-busybox:1";

/// Builds the busybox image once per test binary.
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let version = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output();
        match version {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "the container tests need a running Docker engine: `docker version` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!("the container tests need Docker: cannot run `docker`: {e}"),
        }
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "the container tests need Debian's busybox-static (/bin/busybox): apt-get install busybox-static (scripts/test installs it)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(busybox, dir.path().join("busybox")).expect("copy busybox");
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )
        .expect("write Dockerfile");
        let out = Command::new("docker")
            .args(["build", "-q", "-t", IMAGE])
            .arg(dir.path())
            .output()
            .expect("run docker build");
        assert!(
            out.status.success(),
            "docker build of the test image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    IMAGE
}

struct Rig {
    engine: Engine,
    runtime: ContainerRuntime,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    image();
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(EngineConfig::new(dir.path().join("engine")))
        .await
        .expect("engine");
    let runtime = ContainerRuntime::open(ContainerConfig {
        stop_grace: Duration::from_secs(1),
        ..ContainerConfig::new(dir.path().join("containers"))
    })
    .expect("runtime");
    engine.register_worker(ECS_RUN_TASK, Arc::new(runtime.clone()));
    Rig {
        engine,
        runtime,
        _dir: dir,
    }
}

fn shell(family: &str, script: &str) -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: family.into(),
        image: IMAGE.into(),
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        entrypoint: None,
        environment: Default::default(),
        working_dir: None,
        cpu: Some(512),
        memory_mib: Some(64),
        pids_limit: Some(64),
        network_mode: NetworkMode::None,
        mounts: Vec::new(),
        timeout_seconds: None,
        result: Default::default(),
    }
}

impl Rig {
    async fn run(&self, name: &str, definition: Value, input: Value) -> ExecutionInfo {
        let sm = self
            .engine
            .create_state_machine(CreateStateMachine {
                name: name.into(),
                definition: definition.to_string(),
                ..Default::default()
            })
            .await
            .expect("create state machine");
        let started = self
            .engine
            .start_execution(StartExecution {
                state_machine_arn: sm.arn,
                input: Some(input.to_string()),
                ..Default::default()
            })
            .await
            .expect("start");
        tokio::time::timeout(
            Duration::from_secs(60),
            self.engine.await_execution(&started.execution_arn),
        )
        .await
        .expect("the execution did not end within 60 s")
        .expect("await")
    }
}

fn one_task(resource: &str, parameters: Value, extra: Value) -> Value {
    let mut state =
        json!({"Type": "Task", "Resource": resource, "Parameters": parameters, "End": true});
    if let (Some(s), Some(extra)) = (state.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    json!({"StartAt": "Run", "States": {"Run": state}})
}

fn containers_of_job(job: &str) -> String {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=io.stepyard.job={job}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn job_id_of(description: &Value) -> String {
    description["TaskArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .expect("TaskArn")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_task_returns_ecs_description_with_the_json_result() {
    let rig = rig().await;
    // Input arrives as a file and a variable; overrides change command and environment.
    let script = r#"echo "hello from $GREETING"; printf '{"from_file":%s,"from_env":%s,"greeting":"%s"}' "$(cat /stepyard/input.json)" "$STEPYARD_INPUT" "$GREETING" > /stepyard/result.json"#;
    let def = rig
        .runtime
        .register_definition(shell("echo", "exit 9"))
        .await
        .unwrap();
    assert_eq!(def.revision, 1);
    let params = json!({
        "TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/echo:1",
        "Overrides": {"ContainerOverrides": [{"Name": "echo", "Command": ["sh", "-c", script],
            "Environment": [{"Name": "GREETING", "Value": "overrides"}]}]},
        "Input.$": "$.payload"
    });
    let done = rig
        .run(
            "sync-ok",
            one_task("arn:aws:states:::ecs:runTask.sync", params, json!({})),
            json!({"payload": {"n": 7}}),
        )
        .await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let out: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        out["Result"],
        json!({"from_file": {"n": 7}, "from_env": {"n": 7}, "greeting": "overrides"})
    );
    assert_eq!(out["LastStatus"], "STOPPED");
    assert_eq!(out["StopCode"], "EssentialContainerExited");
    assert_eq!(out["Containers"][0]["ExitCode"], 0);
    assert_eq!(out["Containers"][0]["Name"], "echo");
    assert_eq!(
        out["TaskDefinitionArn"],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/echo:1"
    );
    // The container is gone; its logs are kept.
    let job = job_id_of(&out);
    assert_eq!(containers_of_job(&job), "");
    let logs = rig.runtime.logs(&job).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&logs), "hello from overrides\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_json_line_is_the_result_when_no_file_is_written() {
    let rig = rig().await;
    rig.runtime
        .register_definition(shell(
            "double",
            r#"n=$(cat /stepyard/input.json); echo "working on $n"; echo "{\"n\": $((n * 2))}"; echo done"#,
        ))
        .await
        .unwrap();
    // A Map over several items, each a container.
    let definition = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": true,
        "Iterator": {"StartAt": "Double", "States": {"Double": {
            "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
            "Parameters": {"TaskDefinition": "double", "Input.$": "$"},
            "ResultSelector": {"n.$": "$.Result.n"}, "End": true}}}}}});
    let done = rig
        .run("map", definition, json!({"items": [1, 2, 3, 4, 5]}))
        .await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let out: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        out,
        json!([{"n": 2}, {"n": 4}, {"n": 6}, {"n": 8}, {"n": 10}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn non_zero_exit_fails_the_task_with_exit_code_and_log_tail() {
    let rig = rig().await;
    rig.runtime
        .register_definition(shell(
            "fail",
            "echo checking; echo 'fatal: no repo' >&2; exit 3",
        ))
        .await
        .unwrap();
    let done = rig
        .run(
            "fails",
            one_task(
                "arn:aws:states:::ecs:runTask.sync",
                json!({"TaskDefinition": "fail"}),
                json!({}),
            ),
            json!({}),
        )
        .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.TaskFailed"));
    let cause = done.cause.unwrap_or_default();
    assert!(cause.contains("exited with code 3"), "{cause}");
    assert!(cause.contains("fatal: no repo"), "{cause}");
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_stops_then_kills_the_container() {
    let rig = rig().await;
    // PID 1 ignores SIGTERM: the kill after the grace is what ends it.
    let mut spec = shell("sleepy", "echo sleeping; sleep 60");
    spec.timeout_seconds = Some(1);
    rig.runtime.register_definition(spec).await.unwrap();
    let started = std::time::Instant::now();
    let done = rig
        .run(
            "times-out",
            one_task(
                "arn:aws:states:::ecs:runTask.sync",
                json!({"TaskDefinition": "sleepy"}),
                json!({}),
            ),
            json!({}),
        )
        .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    let cause = done.cause.unwrap_or_default();
    assert!(cause.contains("timed out after 1s"), "{cause}");
    assert!(cause.contains("sleeping"), "{cause}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let job = rig.runtime.jobs().unwrap().remove(0);
    assert_eq!(job.stop_code, Some(StopCode::ServiceSchedulerInitiated));
    assert_eq!(containers_of_job(&job.id), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_hit_says_out_of_memory() {
    let rig = rig().await;
    let mut spec = shell(
        "hog",
        "echo filling; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
    );
    spec.memory_mib = Some(16);
    rig.runtime.register_definition(spec).await.unwrap();
    let done = rig
        .run(
            "hog",
            one_task(
                "arn:aws:states:::ecs:runTask.sync",
                json!({"TaskDefinition": "hog"}),
                json!({}),
            ),
            json!({}),
        )
        .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.TaskFailed"));
    let cause = done.cause.unwrap_or_default();
    assert!(cause.contains("OutOfMemoryError"), "{cause}");
    assert!(cause.contains("limit 16 MiB"), "{cause}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_image_and_unknown_definition_fail_at_once() {
    let rig = rig().await;
    let mut spec = shell("ghost", "true");
    spec.image = "stepyard-no-such-image:404".into();
    rig.runtime.register_definition(spec).await.unwrap();
    // Known before any run, for the warning at start.
    assert_eq!(
        rig.runtime.missing_images().await.unwrap(),
        vec![(
            "ghost:1".to_string(),
            "stepyard-no-such-image:404".to_string()
        )]
    );
    let done = rig
        .run(
            "ghost",
            one_task(
                "arn:aws:states:::ecs:runTask.sync",
                json!({"TaskDefinition": "ghost"}),
                json!({}),
            ),
            json!({}),
        )
        .await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    let cause = done.cause.unwrap_or_default();
    assert!(
        cause.contains("stepyard-no-such-image:404") && cause.contains("not on the Docker engine"),
        "{cause}"
    );
    let done = rig
        .run(
            "unknown",
            one_task(
                "arn:aws:states:::ecs:runTask.sync",
                json!({"TaskDefinition": "nope:3"}),
                json!({}),
            ),
            json!({}),
        )
        .await;
    assert_eq!(done.error.as_deref(), Some("ECS.ClientException"));
    assert!(
        done.cause
            .unwrap_or_default()
            .contains("'nope:3' does not exist")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_docker_is_a_clear_task_error() {
    image();
    let dir = tempfile::tempdir().unwrap();
    let runtime = ContainerRuntime::open(ContainerConfig {
        docker_host: format!("unix://{}", dir.path().join("no.sock").display()),
        ..ContainerConfig::new(dir.path().join("containers"))
    })
    .unwrap();
    assert!(runtime.ping().await.is_err());
    runtime
        .register_definition(shell("any", "true"))
        .await
        .unwrap();
    let job = runtime
        .run(RunJob {
            definition: "any".into(),
            overrides: Overrides::default(),
            input: json!({}),
            timeout: None,
        })
        .await
        .unwrap();
    let job = tokio::time::timeout(
        Duration::from_secs(10),
        runtime.wait_for(&job.id, |j| j.is_stopped()),
    )
    .await
    .expect("no hang")
    .unwrap();
    assert_eq!(job.stop_code, Some(StopCode::TaskFailedToStart));
    assert!(
        job.stopped_reason
            .unwrap_or_default()
            .contains("Docker engine is unreachable"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_jobs_queue_at_the_limit_and_stop_on_request() {
    image();
    let dir = tempfile::tempdir().unwrap();
    let runtime = ContainerRuntime::open(ContainerConfig {
        max_running: 1,
        stop_grace: Duration::from_secs(1),
        ..ContainerConfig::new(dir.path().join("containers"))
    })
    .unwrap();
    runtime
        .register_definition(shell("long", "echo up; sleep 60"))
        .await
        .unwrap();
    let run = || RunJob {
        definition: "long".into(),
        overrides: Overrides::default(),
        input: json!({}),
        timeout: None,
    };
    let first = runtime.run(run()).await.unwrap();
    let first = runtime
        .wait_for(&first.id, |j| j.status == JobStatus::Running)
        .await
        .unwrap();
    assert_eq!(first.status, JobStatus::Running);
    let second = runtime.run(run()).await.unwrap();
    // One slot: the second waits in the queue.
    let queued = runtime.job(&second.id).unwrap();
    assert_eq!(queued.status, JobStatus::Pending, "{queued:?}");
    runtime.stop(&first.id).unwrap();
    let first = runtime
        .wait_for(&first.id, |j| j.is_stopped())
        .await
        .unwrap();
    assert_eq!(first.stop_code, Some(StopCode::UserInitiated));
    // The freed slot goes to the second; stop it too.
    runtime
        .wait_for(&second.id, |j| j.status == JobStatus::Running)
        .await
        .unwrap();
    runtime.stop(&second.id).unwrap();
    let second = runtime
        .wait_for(&second.id, |j| j.is_stopped())
        .await
        .unwrap();
    assert_eq!(second.stop_code, Some(StopCode::UserInitiated));
    assert_eq!(
        String::from_utf8_lossy(&runtime.logs(&second.id).await.unwrap()),
        "up\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_mounts_are_read_only_and_only_from_allowed_folders() {
    image();
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("repos");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("README"), "hello from the host\n").unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path().join("engine")))
        .await
        .unwrap();
    let runtime = ContainerRuntime::open(ContainerConfig {
        allowed_mount_roots: vec![allowed.clone()],
        ..ContainerConfig::new(dir.path().join("containers"))
    })
    .unwrap();
    engine.register_worker(ECS_RUN_TASK, Arc::new(runtime.clone()));
    let rig = Rig {
        engine,
        runtime,
        _dir: dir,
    };
    let mut spec = shell(
        "reader",
        r#"cat /src/README; if touch /src/written 2>/dev/null; then echo '{"writable": true}'; else echo '{"writable": false}'; fi"#,
    );
    spec.mounts = vec![stepyard_workers::containers::BindMount {
        source: allowed.clone(),
        target: "/src".into(),
    }];
    rig.runtime.register_definition(spec.clone()).await.unwrap();
    let done = rig
        .run(
            "reader",
            one_task(
                "arn:aws:states:::ecs:runTask.sync",
                json!({"TaskDefinition": "reader"}),
                json!({"ResultSelector": {"r.$": "$.Result"}}),
            ),
            json!({}),
        )
        .await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(done.output.as_deref(), Some(r#"{"r":{"writable":false}}"#));
    assert!(!allowed.join("written").exists());
    // A folder outside the allowed ones is refused at registration.
    spec.mounts[0].source = "/etc".into();
    let err = rig.runtime.register_definition(spec).await.unwrap_err();
    assert!(
        err.to_string().contains("outside the allowed folders"),
        "{err}"
    );
}

fn inspect(container: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", format, container])
        .output()
        .expect("docker inspect");
    assert!(
        out.status.success(),
        "docker inspect {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_run_task_returns_once_running_with_labels_and_limits_on_the_container() {
    let rig = rig().await;
    // Runs until told to stop, so the test can look at the live container.
    rig.runtime
        .register_definition(shell("live", "echo up; while :; do sleep 0.1; done"))
        .await
        .unwrap();
    let done = rig
        .run(
            "plain",
            one_task(
                "arn:aws:states:::ecs:runTask",
                json!({"TaskDefinition": "live"}),
                json!({}),
            ),
            json!({}),
        )
        .await;
    // Without .sync the state ends when the task is RUNNING (ECS's RunTask answer).
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let out: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    let description = &out["Tasks"][0];
    assert_eq!(description["LastStatus"], "RUNNING", "{out}");
    let job = job_id_of(description);
    let container = containers_of_job(&job);
    assert!(
        !container.is_empty(),
        "the container runs on after the state"
    );
    assert_eq!(
        inspect(
            &container,
            "{{index .Config.Labels \"io.stepyard.execution\"}}"
        ),
        done.execution_arn
    );
    assert_eq!(
        inspect(&container, "{{index .Config.Labels \"io.stepyard.state\"}}"),
        "Run"
    );
    assert_eq!(
        inspect(
            &container,
            "{{index .Config.Labels \"io.stepyard.attempt\"}}"
        ),
        "0"
    );
    // cpu 512 units = half a core; 64 MiB without extra swap; 64 processes; no network,
    // not privileged.
    assert_eq!(inspect(&container, "{{.HostConfig.NanoCpus}}"), "500000000");
    assert_eq!(
        inspect(&container, "{{.HostConfig.Memory}}"),
        (64 * 1024 * 1024).to_string()
    );
    assert_eq!(
        inspect(&container, "{{.HostConfig.MemorySwap}}"),
        (64 * 1024 * 1024).to_string()
    );
    assert_eq!(inspect(&container, "{{.HostConfig.PidsLimit}}"), "64");
    assert_eq!(inspect(&container, "{{.HostConfig.NetworkMode}}"), "none");
    assert_eq!(inspect(&container, "{{.HostConfig.Privileged}}"), "false");
    rig.runtime.stop(&job).unwrap();
    let stopped = rig
        .runtime
        .wait_for(&job, |j| j.status == JobStatus::Stopped)
        .await
        .unwrap();
    assert_eq!(stopped.stop_code, Some(StopCode::UserInitiated));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_sends_sigterm_before_the_kill() {
    let rig = rig().await;
    // The shell notes the SIGTERM and goes on, so only the kill after the grace ends it.
    let mut spec = shell(
        "stubborn",
        "trap 'echo got TERM' TERM; echo started; while :; do sleep 0.1; done",
    );
    spec.timeout_seconds = Some(1);
    rig.runtime.register_definition(spec).await.unwrap();
    let done = rig
        .run(
            "stubborn",
            one_task(
                "arn:aws:states:::ecs:runTask.sync",
                json!({"TaskDefinition": "stubborn"}),
                json!({}),
            ),
            json!({}),
        )
        .await;
    assert_eq!(done.error.as_deref(), Some("States.Timeout"), "{done:?}");
    let job = rig.runtime.jobs().unwrap().remove(0);
    let logs = String::from_utf8_lossy(&rig.runtime.logs(&job.id).await.unwrap()).to_string();
    assert!(logs.contains("started"), "{logs}");
    assert!(logs.contains("got TERM"), "SIGTERM came first: {logs}");
    // Killed, not exited on its own: 137 is 128 + SIGKILL.
    let exit = job.exit_code;
    assert_eq!(exit, Some(137), "{job:?}");
}
