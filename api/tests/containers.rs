//! Container tasks through the real server and the real Docker engine: the REST resources,
//! `.waitForTaskToken` answered from inside a container, and kill -9 while a container runs.
//!
//! The test image is built `FROM scratch` with Debian's `busybox-static`. Without Docker or
//! busybox these tests fail, saying so: they never skip.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::Server;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const IMAGE: &str = "stepyard-test-busybox:1";

fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        match Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
        {
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

fn post(client: &Client, url: &str, body: Value) -> (u16, Value) {
    let resp = client.post(url).json(&body).send().expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn get(client: &Client, url: &str) -> Value {
    client.get(url).send().expect("GET").json().expect("JSON")
}

/// Polls `url` until `done` holds (the HTTP API has no long poll for these resources).
fn until(client: &Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let value = get(client, url);
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting on {url}: {value}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn register(client: &Client, server: &Server, family: &str, script: &str, extra: Value) -> Value {
    let mut body = json!({"family": family, "image": image(), "command": ["sh", "-c", script],
        "memory_mib": 64, "pids_limit": 64});
    if let (Some(b), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(extra.clone());
    }
    let (status, def) = post(client, &server.url("/v1/task-definitions"), body);
    assert_eq!(status, 201, "{def}");
    def
}

fn start_workflow(client: &Client, server: &Server, name: &str, definition: Value, input: Value) {
    let (status, body) = post(
        client,
        &server.url("/v1/state-machines"),
        json!({"name": name, "definition": definition}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        client,
        &server.url(&format!("/v1/state-machines/{name}/executions")),
        json!({"name": "run", "input": input}),
    );
    assert!(status == 200 || status == 201, "{body}");
}

fn finished(client: &Client, server: &Server, name: &str) -> Value {
    until(
        client,
        &server.url(&format!("/v1/state-machines/{name}/executions/run")),
        |e| e["status"] != "RUNNING",
    )
}

#[test]
fn task_definitions_have_revisions_and_tasks_run_stop_and_keep_logs() {
    image();
    let server = Server::start();
    let client = Client::new();
    let first = register(&client, &server, "report", "echo v1", json!({}));
    assert_eq!(first["name"], "report:1");
    assert_eq!(first["network_mode"], "none");
    let second = register(
        &client,
        &server,
        "report",
        r#"echo "input: $(cat /stepyard/input.json)"; echo "{\"greeting\": \"$GREETING\"}""#,
        json!({"environment": {"GREETING": "hi"}}),
    );
    assert_eq!(second["revision"], 2);
    assert_eq!(
        second["arn"],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/report:2"
    );
    // Host networking and writable or foreign host mounts do not exist.
    let (status, err) = post(
        &client,
        &server.url("/v1/task-definitions"),
        json!({"family": "bad", "image": IMAGE, "network_mode": "host"}),
    );
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("/network_mode")),
        "{err}"
    );
    let (status, err) = post(
        &client,
        &server.url("/v1/task-definitions"),
        json!({"family": "bad", "image": IMAGE, "mounts": [{"source": "/etc", "target": "/etc2"}]}),
    );
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("InvalidTaskDefinition")),
        "{err}"
    );
    let revisions = get(&client, &server.url("/v1/task-definitions/report"));
    assert_eq!(
        revisions["task_definitions"].as_array().map(Vec::len),
        Some(2)
    );
    let listed = get(&client, &server.url("/v1/task-definitions"));
    assert_eq!(listed["task_definitions"][0]["name"], "report:2");

    // Run the latest revision with an override and an input.
    let (status, task) = post(
        &client,
        &server.url("/v1/tasks"),
        json!({"task_definition": "report", "environment": {"GREETING": "hello"}, "input": {"n": 1}}),
    );
    assert_eq!(status, 201, "{task}");
    let id = task["id"].as_str().unwrap().to_string();
    let done = until(&client, &server.url(&format!("/v1/tasks/{id}")), |t| {
        t["status"] == "STOPPED"
    });
    assert_eq!(done["exit_code"], 0, "{done}");
    assert_eq!(done["result"], json!({"greeting": "hello"}));
    assert_eq!(done["stop_code"], "EssentialContainerExited");
    assert!(done["started_at"].is_string() && done["stopped_at"].is_string());
    let logs = client
        .get(server.url(&format!("/v1/tasks/{id}/logs")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(logs, "input: {\"n\":1}\n{\"greeting\": \"hello\"}\n");

    // A long task, stopped by hand.
    register(
        &client,
        &server,
        "long",
        "echo started; sleep 60",
        json!({}),
    );
    let (_, task) = post(
        &client,
        &server.url("/v1/tasks"),
        json!({"task_definition": "long:1"}),
    );
    let id = task["id"].as_str().unwrap().to_string();
    until(&client, &server.url(&format!("/v1/tasks/{id}")), |t| {
        t["status"] == "RUNNING"
    });
    let (status, _) = post(
        &client,
        &server.url(&format!("/v1/tasks/{id}/stop")),
        json!({}),
    );
    assert_eq!(status, 202);
    let stopped = until(&client, &server.url(&format!("/v1/tasks/{id}")), |t| {
        t["status"] == "STOPPED"
    });
    assert_eq!(stopped["stop_code"], "UserInitiated", "{stopped}");
    assert_eq!(stopped["error"], "States.TaskFailed");

    let (status, err) = post(
        &client,
        &server.url("/v1/tasks"),
        json!({"task_definition": "nope"}),
    );
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("TaskDefinitionDoesNotExist"))
    );
    let resp = client.get(server.url("/v1/tasks/0000")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[test]
fn wait_for_task_token_is_answered_from_inside_the_container() {
    image();
    let server = Server::start();
    let client = Client::new();
    // The container posts its own result with busybox wget.
    let script = r#"wget -q -O- --header 'Content-Type: application/json' --post-data "{\"task_token\": \"$STEPYARD_TASK_TOKEN\", \"output\": {\"answered_by\": \"container\", \"input\": $STEPYARD_INPUT}}" "$STEPYARD_API_URL/v1/task-tokens/success""#;
    register(
        &client,
        &server,
        "callback",
        script,
        json!({"network_mode": "bridge"}),
    );
    register(
        &client,
        &server,
        "silent-fail",
        "echo giving up; exit 4",
        json!({"network_mode": "bridge"}),
    );
    let definition = |family: &str| {
        json!({"StartAt": "Ask", "States": {"Ask": {
            "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.waitForTaskToken",
            "Parameters": {"TaskDefinition": family, "Input.$": "$"},
            "TimeoutSeconds": 60, "End": true}}})
    };
    start_workflow(
        &client,
        &server,
        "callback",
        definition("callback"),
        json!({"pr": 7}),
    );
    let done = finished(&client, &server, "callback");
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["output"],
        json!({"answered_by": "container", "input": {"pr": 7}})
    );
    // A container that fails without calling back fails the task instead of leaving it waiting.
    start_workflow(
        &client,
        &server,
        "silent",
        definition("silent-fail"),
        json!({}),
    );
    let done = finished(&client, &server, "silent");
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "States.TaskFailed");
    assert!(
        done["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("exited with code 4"),
        "{done}"
    );
}

fn kill_while_running(finish_while_down: bool) {
    image();
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let server = Server::start_with(&data, &[], &[]);
    let client = Client::new();
    // The container waits for a file the test writes, so the kill lands while it runs.
    register(
        &client,
        &server,
        "slow",
        r#"echo started; while [ ! -e /stepyard/go ]; do sleep 0.1; done; echo '{"finished": true}'"#,
        json!({}),
    );
    let definition = json!({"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
        "Parameters": {"TaskDefinition": "slow"},
        "ResultSelector": {"result.$": "$.Result"}, "End": true}}});
    start_workflow(&client, &server, "slow", definition, json!({}));
    let tasks = until(&client, &server.url("/v1/tasks"), |t| {
        t["tasks"][0]["status"] == "RUNNING"
    });
    let id = tasks["tasks"][0]["id"].as_str().unwrap().to_string();
    let container = format!("stepyard-{id}");
    let mut server = server;
    server.child.kill().expect("kill -9");
    server.child.wait().unwrap();
    drop(server);
    // The container outlives the server.
    let touch = || {
        let status = Command::new("docker")
            .args(["exec", &container, "touch", "/stepyard/go"])
            .status()
            .unwrap();
        assert!(status.success(), "the container should still run");
    };
    let server = if finish_while_down {
        touch();
        let waited = Command::new("docker")
            .args(["wait", &container])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&waited.stdout).trim(), "0");
        Server::start_with(&data, &[], &[])
    } else {
        let server = Server::start_with(&data, &[], &[]);
        // The restarted server waits on the running container: let it finish now.
        touch();
        server
    };
    let done = finished(&client, &server, "slow");
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], json!({"result": {"finished": true}}));
    // One job, one container run (its log has one start), and no container left.
    let tasks = get(&client, &server.url("/v1/tasks"));
    assert_eq!(tasks["tasks"].as_array().map(Vec::len), Some(1), "{tasks}");
    let logs = client
        .get(server.url(&format!("/v1/tasks/{id}/logs")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(logs, "started\n{\"finished\": true}\n");
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("name={container}")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "");
}

#[test]
fn kill_9_while_a_container_runs_then_restart_adopts_it() {
    kill_while_running(false);
}

#[test]
fn container_that_finished_while_the_server_was_down_is_collected() {
    kill_while_running(true);
}
