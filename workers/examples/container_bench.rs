//! Stepyard's overhead over a bare container run, and concurrent container tasks sustained.
//!
//! `cargo run --release -p stepyard-workers --example container_bench [RUNS] [CONCURRENT]`
//!
//! Needs Docker and `/bin/busybox` (Debian's busybox-static): builds a FROM-scratch busybox image.
//! Measures, RUNS times each (p50 and p90):
//! - `docker run --rm` of the image (the CLI, as a user would type it);
//! - the same lifecycle through the Engine API directly (create, start, wait, logs, remove);
//! - a Stepyard job (`ContainerRuntime::run`, until its record says STOPPED: the container is
//!   removed and its logs and result are stored by then);
//! - a workflow with one `ecs:runTask.sync` state, from StartExecution to SUCCEEDED.
//!
//! Then CONCURRENT jobs at once (running limit = CONCURRENT) and the jobs per second sustained.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use serde_json::json;
use stepyard_engine::{CreateStateMachine, Engine, EngineConfig, StartExecution};
use stepyard_workers::containers::{
    ContainerConfig, ContainerRuntime, ECS_RUN_TASK, NetworkMode, Overrides, RunJob,
    TaskDefinitionSpec,
};

const IMAGE: &str = "stepyard-bench-busybox:1";
const SCRIPT: &str = r#"echo '{"ok": true}'"#;

fn build_image() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("/bin/busybox (apt-get install busybox-static)");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .unwrap();
    let status = Command::new("docker")
        .args(["build", "-q", "-t", IMAGE])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("docker build");
    assert!(status.success(), "docker build failed");
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (
        at(0.5).as_secs_f64() * 1000.0,
        at(0.9).as_secs_f64() * 1000.0,
    )
}

fn report(what: &str, samples: Vec<Duration>) -> f64 {
    let (p50, p90) = percentiles(samples);
    println!("{what:<48} p50 {p50:7.1} ms   p90 {p90:7.1} ms");
    p50
}

async fn bare_api_run(docker: &Docker) {
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
        .await
        .unwrap();
    docker.start_container(&created.id, None).await.unwrap();
    let wait = WaitContainerOptionsBuilder::default()
        .condition("not-running")
        .build();
    let _ = docker.wait_container(&created.id, Some(wait)).next().await;
    let logs = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(&created.id, Some(logs));
    while stream.next().await.is_some() {}
    docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let concurrent: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    build_image();
    let docker = Docker::connect_with_unix(
        "/var/run/docker.sock",
        120,
        &bollard::ClientVersion {
            major_version: 1,
            minor_version: 41,
        },
    )
    .unwrap();

    let mut cli = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new("docker")
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                IMAGE,
                "sh",
                "-c",
                SCRIPT,
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        cli.push(t.elapsed());
    }
    let cli_p50 = report("docker run --rm (CLI)", cli);

    let mut api = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        bare_api_run(&docker).await;
        api.push(t.elapsed());
    }
    let api_p50 = report("Engine API: create+start+wait+logs+remove", api);

    let dir = tempfile::tempdir().unwrap();
    let runtime = ContainerRuntime::open(ContainerConfig {
        max_running: concurrent,
        ..ContainerConfig::new(dir.path().join("containers"))
    })
    .unwrap();
    runtime
        .register_definition(TaskDefinitionSpec {
            family: "bench".into(),
            image: IMAGE.into(),
            command: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
            entrypoint: None,
            environment: Default::default(),
            working_dir: None,
            cpu: None,
            memory_mib: None,
            pids_limit: None,
            network_mode: NetworkMode::None,
            mounts: Vec::new(),
            timeout_seconds: None,
            result: Default::default(),
        })
        .await
        .unwrap();
    let run = || RunJob {
        definition: "bench".into(),
        overrides: Overrides::default(),
        input: json!({"n": 1}),
        timeout: None,
    };
    let mut jobs = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let job = runtime.run(run()).await.unwrap();
        let job = runtime.wait_for(&job.id, |j| j.is_stopped()).await.unwrap();
        assert!(job.exit_code == Some(0), "{job:?}");
        jobs.push(t.elapsed());
    }
    let job_p50 = report("Stepyard job (run until STOPPED, stored)", jobs);

    let engine = Engine::open(EngineConfig::new(dir.path().join("engine")))
        .await
        .unwrap();
    engine.register_worker(ECS_RUN_TASK, Arc::new(runtime.clone()));
    let sm = engine
        .create_state_machine(CreateStateMachine {
            name: "bench".into(),
            definition: json!({"StartAt": "Run", "States": {"Run": {"Type": "Task",
                "Resource": "arn:aws:states:::ecs:runTask.sync",
                "Parameters": {"TaskDefinition": "bench"}, "End": true}}})
            .to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut flows = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let started = engine
            .start_execution(StartExecution {
                state_machine_arn: sm.arn.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let done = engine
            .await_execution(&started.execution_arn)
            .await
            .unwrap();
        assert_eq!(done.status, stepyard_engine::ExecutionStatus::Succeeded);
        flows.push(t.elapsed());
    }
    let flow_p50 = report("workflow with one runTask.sync (start to end)", flows);

    println!(
        "overhead over the bare Engine API run: job {:+.1} ms, workflow {:+.1} ms (CLI run is {:.1} ms)",
        job_p50 - api_p50,
        flow_p50 - api_p50,
        cli_p50
    );

    // Sustained: `concurrent` jobs at a time, 4 rounds.
    let total = concurrent * 4;
    let t = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..total {
        ids.push(runtime.run(run()).await.unwrap().id);
    }
    let mut ok = 0;
    for id in &ids {
        let job = runtime.wait_for(id, |j| j.is_stopped()).await.unwrap();
        ok += usize::from(job.exit_code == Some(0));
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{total} jobs, {concurrent} running at once: {ok} ok in {secs:.1} s = {:.1} jobs/s",
        total as f64 / secs
    );
    engine.shutdown().await.unwrap();
}
