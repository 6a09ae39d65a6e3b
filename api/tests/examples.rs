//! The folders under `examples/`, end to end: each test builds what its example needs (images
//! through the example's own script), starts the real `stepyard` binary on 127.0.0.1, deploys
//! the example with the real `stepyard apply`, sends the event the example is about, and checks
//! what a user would look at: the execution's output and history, the container's logs, and the
//! notifications that arrived (an HTTP hook and an SMTP sink served by the test).
//!
//! Needs Docker, Debian's busybox-static and `STEPYARD_PYTHON` (a Python with awslambdaric):
//! `scripts/test` provides all three. Without them these tests fail, saying so; they never skip.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use common::Server;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How long anything in these tests may take (containers on a busy CI machine are slow).
const WAIT: Duration = Duration::from_secs(90);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

// ---- what the examples need on the machine -----------------------------------------------------

/// The folder of `STEPYARD_PYTHON`, put first on the server's PATH so that the manifests'
/// `python3 -m awslambdaric` finds the Python that has it (as a user's activated venv would).
fn python_bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = std::env::var("STEPYARD_PYTHON").unwrap_or_else(|_| {
            panic!(
                "STEPYARD_PYTHON is not set: it must name a Python with awslambdaric installed \
                 (scripts/test creates .venv from tests/python/requirements.txt and sets it)"
            )
        });
        let status = Command::new(&python)
            .args(["-c", "import awslambdaric"])
            .status()
            .unwrap_or_else(|e| panic!("STEPYARD_PYTHON={python} cannot be run: {e}"));
        assert!(
            status.success(),
            "STEPYARD_PYTHON={python} has no awslambdaric: pip install -r tests/python/requirements.txt"
        );
        let dir = Path::new(&python)
            .parent()
            .expect("STEPYARD_PYTHON is a path")
            .to_path_buf();
        // The manifests say `python3`: make sure that name is this Python.
        assert!(
            dir.join("python3").exists(),
            "{} has no python3 next to it",
            dir.display()
        );
        dir
    })
    .clone()
}

fn server_path() -> String {
    format!(
        "{}:{}",
        python_bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs an example's image build script once per test binary.
fn build_image(script: &Path) -> String {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tag) = built.get(script) {
        return tag.clone();
    }
    match Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the examples need a running Docker engine: `docker version` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("the examples need Docker: cannot run `docker`: {e}"),
    }
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("run the example's build script");
    assert!(
        out.status.success(),
        "{} failed: {}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = String::from_utf8_lossy(&out.stdout).trim().to_string();
    built.insert(script.to_path_buf(), tag.clone());
    tag
}

// ---- the CLI -----------------------------------------------------------------------------------

struct Cli {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `stepyard ARGS` against `server` with `env` (the manifests' `${VAR}`).
async fn stepyard(server: &Server, args: &[&str], env: &[(&str, &str)]) -> Cli {
    let mut command = tokio::process::Command::new(common::binary());
    command
        .args(args)
        .env("STEPYARD_ENDPOINT", &server.base_url)
        .stdin(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().await.expect("run stepyard");
    Cli {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `stepyard apply DIR`, which must succeed; its report lines.
async fn apply(server: &Server, dir: &Path, env: &[(&str, &str)]) -> Vec<String> {
    let out = stepyard(server, &["apply", dir.to_str().unwrap()], env).await;
    assert_eq!(out.code, 0, "apply failed: {}{}", out.stdout, out.stderr);
    out.stdout.lines().map(str::to_string).collect()
}

/// A second apply of the same folder changes nothing and says so, line by line.
async fn assert_apply_is_idempotent(
    server: &Server,
    dir: &Path,
    env: &[(&str, &str)],
    first: &[String],
) {
    let again = apply(server, dir, env).await;
    assert_eq!(again.len(), first.len(), "{again:#?}");
    for line in &again[..again.len() - 1] {
        assert!(
            line.ends_with(": unchanged") || line.contains(": unchanged ("),
            "{again:#?}"
        );
    }
    assert!(
        again.last().unwrap().starts_with("nothing changed"),
        "{again:#?}"
    );
}

// ---- HTTP against the server ---------------------------------------------------------------------

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn of(server: &Server) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: server.base_url.clone(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls `path` until `done` holds (no long poll exists for these resources).
    async fn until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, value) = self.get(path).await;
            if done(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting on {path}: {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `n` executions of `machine` have ended; returns them.
    async fn finished_executions(&self, machine: &str, n: usize) -> Vec<Value> {
        let list = self
            .until(&format!("/v1/state-machines/{machine}/executions"), |l| {
                let all = l["executions"].as_array().cloned().unwrap_or_default();
                all.len() >= n && all.iter().all(|e| e["status"] != "RUNNING")
            })
            .await;
        list["executions"].as_array().cloned().unwrap_or_default()
    }

    async fn execution(&self, e: &Value) -> Value {
        self.ok(&format!(
            "/v1/state-machines/{}/executions/{}",
            machine_of(e),
            e["name"].as_str().unwrap()
        ))
        .await
    }

    async fn history(&self, e: &Value) -> Vec<Value> {
        let h = self
            .ok(&format!(
                "/v1/state-machines/{}/executions/{}/history?max_results=1000",
                machine_of(e),
                e["name"].as_str().unwrap()
            ))
            .await;
        h["events"].as_array().cloned().unwrap_or_default()
    }
}

fn machine_of(e: &Value) -> String {
    e["state_machine_arn"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

/// The states an execution entered, in order.
fn states_entered(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .unwrap_or_default()
                .ends_with("StateEntered")
        })
        .map(|e| {
            e["details"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The `TaskSucceeded` events' resources (`lambda:invoke`, `ecs:runTask.sync`, ...).
fn tasks_succeeded(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .filter(|e| e["type"] == "TaskSucceeded")
        .map(|e| {
            format!(
                "{}:{}",
                e["details"]["resourceType"].as_str().unwrap_or_default(),
                e["details"]["resource"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn types(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---- an HTTP hook and an SMTP sink on 127.0.0.1 ---------------------------------------------------

struct Hook {
    url: String,
    rx: mpsc::UnboundedReceiver<(HeaderMap, String)>,
}

impl Hook {
    async fn start(path: &str) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let router = axum::Router::new().route(
            path,
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((headers, body));
                    axum::http::StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Hook {
            url: format!("http://127.0.0.1:{port}{path}"),
            rx,
        }
    }

    /// The next body POSTed to the hook, as JSON.
    async fn next(&mut self) -> Value {
        let (_, body) = tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a webhook call arrives in time")
            .expect("the hook is up");
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("the hook got non-JSON: {body}"))
    }
}

#[path = "common/smtp.rs"]
mod smtp;

use smtp::SmtpSink;

// ---- code scanning -------------------------------------------------------------------------------

const GITHUB_SECRET: &str = "it-is-a-test-secret";

/// `X-Hub-Signature-256` as GitHub computes it.
fn github_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn send_pull_request(server: &Server, payload: &Path) -> u16 {
    let body = std::fs::read(payload).unwrap();
    reqwest::Client::new()
        .post(server.url("/v1/webhooks/github/default"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-hub-signature-256", github_signature(&body))
        .body(body)
        .send()
        .await
        .expect("POST the webhook")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_scanning_a_pull_request_with_leaks_and_a_clean_one_end_to_end() {
    let started = Instant::now();
    let dir = example("code-scanning");
    build_image(&dir.join("scanner/build.sh"));
    let mut hook = Hook::start("/code-scan").await;
    let mut smtp = SmtpSink::start(&[], WAIT).await;
    let temp = tempfile::tempdir().unwrap();
    let examples = repo_root().join("examples");
    let server = Server::start_with(
        &temp.path().join("data"),
        &[
            "--github-webhook-secret",
            GITHUB_SECRET,
            "--container-mount-roots",
            examples.to_str().unwrap(),
            "--smtp-relay",
            &smtp.relay(),
            "--smtp-from",
            "stepyard@example.com",
        ],
        &[("PATH", &server_path())],
    );
    let api = Api::of(&server);
    let hook_url = hook.url.clone();
    let env = [
        ("CODE_SCAN_WEBHOOK", hook_url.as_str()),
        ("CODE_SCAN_EMAIL", "security@example.com"),
    ];

    // Deploy: one line per resource, then the same again with nothing to do.
    let first = apply(&server, &dir, &env).await;
    let hook_line = format!("subscription code-scan-results http {}: created", hook.url);
    for expected in [
        "function parse-pull-request: created",
        "task definition code-scanner: created (code-scanner:1)",
        "topic code-scan-results: created",
        hook_line.as_str(),
        "subscription code-scan-results email security@example.com: created",
        "state machine code-scanning: created",
        "rule default/scan-pull-requests: created",
        "target default/scan-pull-requests/code-scanning: created",
        "8 created",
    ] {
        assert!(
            first.contains(&expected.to_string()),
            "{expected:?} not in {first:#?}"
        );
    }
    let machine = api.ok("/v1/state-machines/code-scanning").await;
    assert_apply_is_idempotent(&server, &dir, &env, &first).await;
    assert_eq!(
        api.ok("/v1/state-machines/code-scanning").await["revision_id"],
        machine["revision_id"],
        "a second apply makes no new revision"
    );
    assert_eq!(
        api.ok("/v1/functions/parse-pull-request").await["revision"],
        1
    );
    let revisions = api.ok("/v1/task-definitions/code-scanner").await;
    assert_eq!(
        revisions["task_definitions"].as_array().map(Vec::len),
        Some(1)
    );

    // A wrong signature publishes nothing; a closed PR is not matched by the rule.
    let opened = dir.join("events/pull_request.opened.json");
    let resp = reqwest::Client::new()
        .post(server.url("/v1/webhooks/github/default"))
        .header("x-github-event", "pull_request")
        .header("x-hub-signature-256", github_signature(b"another body"))
        .body(std::fs::read(&opened).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let sent_at = Instant::now();
    assert_eq!(
        send_pull_request(&server, &dir.join("events/pull_request.closed.json")).await,
        202
    );
    assert_eq!(send_pull_request(&server, &opened).await, 202);
    assert_eq!(
        send_pull_request(&server, &dir.join("events/pull_request.synchronize.json")).await,
        202
    );

    let executions = api.finished_executions("code-scanning", 2).await;
    let flow_time = sent_at.elapsed();
    // The closed PR's event was matched (or not) when it was accepted, before the other two.
    assert_eq!(
        executions.len(),
        2,
        "only opened and synchronize start a scan"
    );
    let mut by_repo = HashMap::new();
    for e in &executions {
        let e = api.execution(e).await;
        assert_eq!(e["status"], "SUCCEEDED", "{e}");
        let repo = e["input"]["detail"]["repository"]["full_name"]
            .as_str()
            .unwrap()
            .to_string();
        by_repo.insert(repo, e);
    }

    // Findings: the fake AWS key, the private key header and two to-do markers.
    let leaky = &by_repo["acme/acme-webshop"];
    let output = &leaky["output"];
    assert_eq!(output["verdict"], "findings", "{output}");
    assert_eq!(output["repository"], "acme/acme-webshop");
    assert_eq!(output["pull_request"], 42);
    assert_eq!(output["count"], 4);
    assert_eq!(
        output["findings"],
        json!([
            {"rule": "aws-access-key-id", "severity": "high", "file": "src/settings.py", "line": 5},
            {"rule": "private-key", "severity": "high", "file": "deploy/deploy_key.pem", "line": 1},
            {"rule": "todo-marker", "severity": "low", "file": "src/cart.py", "line": 5},
            {"rule": "todo-marker", "severity": "low", "file": "src/settings.py", "line": 4},
        ])
    );
    let history = api.history(leaky).await;
    assert_eq!(
        states_entered(&history),
        [
            "ParsePullRequest",
            "ScanCode",
            "AnyFindings",
            "NotifyFindings",
            "FindingsReported"
        ]
    );
    assert_eq!(
        tasks_succeeded(&history),
        ["lambda:invoke", "ecs:runTask.sync", "sns:publish"]
    );
    let parsed = history
        .iter()
        .find(|e| e["type"] == "TaskSucceeded")
        .map(|e| serde_json::from_str::<Value>(e["details"]["output"].as_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(parsed["Payload"]["scan_path"], "/repos/acme-webshop");
    assert_eq!(parsed["Payload"]["author"], "octocat");
    let choice = history
        .iter()
        .find(|e| e["type"] == "ChoiceStateExited")
        .unwrap();
    assert_eq!(choice["details"]["name"], "AnyFindings");

    // Clean: the other branch.
    let clean = &by_repo["acme/acme-docs"];
    assert_eq!(clean["output"]["verdict"], "clean", "{}", clean["output"]);
    assert_eq!(clean["output"]["count"], 0);
    assert_eq!(clean["output"]["files_scanned"], 3);
    let history = api.history(clean).await;
    assert_eq!(
        states_entered(&history),
        [
            "ParsePullRequest",
            "ScanCode",
            "AnyFindings",
            "NotifyClean",
            "CleanReported"
        ]
    );
    assert_eq!(
        tasks_succeeded(&history),
        ["lambda:invoke", "ecs:runTask.sync", "sns:publish"]
    );

    // The scanner ran as a container job: its log has the findings, never the secret itself.
    let tasks = api.ok("/v1/tasks").await;
    let jobs = tasks["tasks"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{tasks}");
    let mut saw_findings_log = false;
    for job in jobs {
        assert_eq!(job["exit_code"], 0, "{job}");
        let logs =
            reqwest::get(server.url(&format!("/v1/tasks/{}/logs", job["id"].as_str().unwrap())))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
        assert!(!logs.contains("AKIAIOSFODNN7EXAMPLE"), "{logs}");
        saw_findings_log |= logs.contains("finding: aws-access-key-id in src/settings.py:5");
    }
    assert!(saw_findings_log);

    // Both subscribers heard about both scans.
    let mut subjects = Vec::new();
    for _ in 0..2 {
        let note = hook.next().await;
        assert_eq!(note["Type"], "Notification");
        assert_eq!(
            note["TopicArn"],
            "arn:aws:sns:us-east-1:123456789012:code-scan-results"
        );
        let message: Value = serde_json::from_str(note["Message"].as_str().unwrap()).unwrap();
        match message["verdict"].as_str() {
            Some("findings") => {
                assert_eq!(message["secrets"], 2);
                assert_eq!(message["todos"], 2);
                assert_eq!(
                    message["pull_request"]["url"],
                    "https://github.com/acme/acme-webshop/pull/42"
                );
            }
            Some("clean") => assert_eq!(message["pull_request"]["repository"], "acme/acme-docs"),
            other => panic!("unexpected verdict {other:?}: {message}"),
        }
        subjects.push(note["Subject"].as_str().unwrap().to_string());
    }
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Code scan: 4 findings in acme/acme-webshop#42",
            "Code scan: acme/acme-docs#7 is clean"
        ]
    );
    let mut mail_subjects = Vec::new();
    for _ in 0..2 {
        let mail = smtp.next().await;
        assert_eq!(mail.to, ["security@example.com"]);
        mail_subjects.push(mail.header("Subject").unwrap());
    }
    mail_subjects.sort();
    assert_eq!(mail_subjects, subjects);
    let notified = sent_at.elapsed();

    // The terminal loop: list, describe, history through the CLI.
    let listed = stepyard(
        &server,
        &["executions", "list", "--state-machine", "code-scanning"],
        &[],
    )
    .await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(listed.stdout.lines().count(), 3, "{}", listed.stdout);
    assert!(
        listed.stdout.starts_with("STATE MACHINE  EXECUTION"),
        "{}",
        listed.stdout
    );
    let leaky_ref = format!("code-scanning/{}", leaky["name"].as_str().unwrap());
    let described = stepyard(&server, &["executions", "describe", &leaky_ref], &[]).await;
    assert!(
        described.stdout.contains("status    SUCCEEDED"),
        "{}",
        described.stdout
    );
    let history = stepyard(
        &server,
        &["executions", "history", leaky["arn"].as_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(
        history
            .stdout
            .lines()
            .any(|l| l.contains("TaskStateEntered") && l.ends_with("NotifyFindings")),
        "{}",
        history.stdout
    );
    let as_json = stepyard(
        &server,
        &["executions", "list", "--json", "--status", "SUCCEEDED"],
        &[],
    )
    .await;
    let as_json: Value = serde_json::from_str(&as_json.stdout).unwrap();
    assert_eq!(as_json.as_array().map(Vec::len), Some(2));

    // Delete takes it all away, and a second delete finds it gone.
    let deleted = stepyard(&server, &["delete", dir.to_str().unwrap()], &env).await;
    assert_eq!(deleted.code, 0, "{}{}", deleted.stdout, deleted.stderr);
    for expected in [
        "rule default/scan-pull-requests: deleted",
        "state machine code-scanning: deleted",
        "topic code-scan-results: deleted (with its subscriptions)",
        "task definition code-scanner: deleted (deregistered code-scanner:1)",
        "function parse-pull-request: deleted",
    ] {
        assert!(
            deleted.stdout.contains(expected),
            "{expected:?} not in {}",
            deleted.stdout
        );
    }
    for path in [
        "/v1/state-machines/code-scanning",
        "/v1/functions/parse-pull-request",
        "/v1/topics/code-scan-results",
        "/v1/event-buses/default/rules/scan-pull-requests",
    ] {
        assert_eq!(api.get(path).await.0, 404, "{path} is gone");
    }
    let again = stepyard(&server, &["delete", dir.to_str().unwrap()], &env).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again
            .stdout
            .lines()
            .filter(|l| l.ends_with(": already gone"))
            .count(),
        5,
        "{}",
        again.stdout
    );
    eprintln!(
        "code scanning: events to both executions done in {:?}, to all four notifications in {:?}, whole test {:?}",
        flow_time,
        notified,
        started.elapsed()
    );
}

// ---- human approval ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_approval_waits_for_a_person_to_approve_or_reject_through_the_api() {
    let started = Instant::now();
    let dir = example("human-approval");
    let mut hook = Hook::start("/approvals").await;
    let server = Server::start();
    let api = Api::of(&server);
    let env = [("APPROVAL_WEBHOOK", hook.url.as_str())];
    let first = apply(&server, &dir, &env).await;
    assert_eq!(first.last().unwrap(), "5 created", "{first:#?}");
    assert_apply_is_idempotent(&server, &dir, &env, &first).await;

    // Three expenses through the CLI: one small (no approval), two that need a person.
    let over = dir.join("events/expense-over-limit.json");
    let over_detail = format!("@{}", over.display());
    let small = dir.join("events/expense-small.json");
    let small_detail = format!("@{}", small.display());
    let another = r#"{"expense_id": "EXP-1044", "amount": 900, "currency": "EUR", "submitted_by": "ada", "description": "A second monitor"}"#;
    for detail in [over_detail.as_str(), small_detail.as_str(), another] {
        let put = stepyard(
            &server,
            &[
                "events",
                "put",
                "--source",
                "acme.expenses",
                "--detail-type",
                "Expense Submitted",
                "--detail",
                detail,
            ],
            &[],
        )
        .await;
        assert_eq!(put.code, 0, "{}{}", put.stdout, put.stderr);
        assert!(
            put.stdout.starts_with("event ") && put.stdout.contains(" put on bus default"),
            "{}",
            put.stdout
        );
    }

    // Two approval requests arrive, each with its token.
    let mut tokens = HashMap::new();
    for _ in 0..2 {
        let note = hook.next().await;
        let message: Value = serde_json::from_str(note["Message"].as_str().unwrap()).unwrap();
        let id = message["expense"]["expense_id"]
            .as_str()
            .unwrap()
            .to_string();
        let subject = note["Subject"].as_str().unwrap();
        assert!(
            subject.starts_with(&format!("Approve expense {id} of ")),
            "{subject}"
        );
        tokens.insert(id, message["task_token"].as_str().unwrap().to_string());
    }
    assert_eq!(tokens.len(), 2);
    assert!(tokens.contains_key("EXP-1042") && tokens.contains_key("EXP-1044"));

    // They wait: both executions are RUNNING, parked at the Task.
    let list = api
        .ok("/v1/state-machines/expense-approval/executions")
        .await;
    let running: Vec<&Value> = list["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "RUNNING")
        .collect();
    assert_eq!(running.len(), 2, "{list}");
    for e in running {
        // The publish that reached the hook is recorded as TaskSubmitted when it returns.
        let path = format!(
            "/v1/state-machines/expense-approval/executions/{}/history",
            e["name"].as_str().unwrap()
        );
        api.until(&path, |h| {
            h["events"]
                .as_array()
                .and_then(|e| e.last())
                .map(|e| &e["type"])
                == Some(&json!("TaskSubmitted"))
        })
        .await;
    }

    // Someone approves one and rejects the other.
    let (status, body) = api
        .post(
            "/v1/task-tokens/success",
            &json!({"task_token": tokens["EXP-1042"],
                    "output": {"approver": "margaret@example.com", "comment": "conference is in the plan"}}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let rejected = stepyard(
        &server,
        &[
            "task-tokens",
            "failure",
            &tokens["EXP-1044"],
            "--error",
            "Rejected",
            "--cause",
            "monitors come from IT",
        ],
        &[],
    )
    .await;
    assert_eq!(rejected.code, 0, "{}", rejected.stderr);
    assert_eq!(rejected.stdout, "task failed\n");
    // A token answers once.
    let (status, _) = api
        .post(
            "/v1/task-tokens/success",
            &json!({"task_token": tokens["EXP-1042"], "output": {}}),
        )
        .await;
    assert_eq!(status, 404);
    let again = stepyard(
        &server,
        &["task-tokens", "success", &tokens["EXP-1042"]],
        &[],
    )
    .await;
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(again.stderr.contains("404"), "{}", again.stderr);

    let executions = api.finished_executions("expense-approval", 3).await;
    let mut by_id = HashMap::new();
    for e in &executions {
        let e = api.execution(e).await;
        assert_eq!(e["status"], "SUCCEEDED", "{e}");
        by_id.insert(e["input"]["expense_id"].as_str().unwrap().to_string(), e);
    }
    assert_eq!(
        by_id["EXP-1042"]["output"],
        json!({"expense_id": "EXP-1042", "decision": "approved",
               "approver": "margaret@example.com", "comment": "conference is in the plan"})
    );
    assert_eq!(
        by_id["EXP-1044"]["output"],
        json!({"expense_id": "EXP-1044", "decision": "rejected", "reason": "monitors come from IT"})
    );
    assert_eq!(by_id["EXP-1043"]["output"]["decision"], "approved");
    let history = api.history(&by_id["EXP-1042"]).await;
    assert_eq!(
        states_entered(&history),
        ["NeedsApproval", "RequestApproval", "Approved"]
    );
    assert!(types(&history).contains(&"TaskSucceeded".to_string()));
    let history = api.history(&by_id["EXP-1044"]).await;
    assert_eq!(
        states_entered(&history),
        ["NeedsApproval", "RequestApproval", "Rejected"]
    );
    let failed = history.iter().find(|e| e["type"] == "TaskFailed").unwrap();
    assert_eq!(failed["details"]["error"], "Rejected");
    let history = api.history(&by_id["EXP-1043"]).await;
    assert_eq!(states_entered(&history), ["NeedsApproval", "AutoApproved"]);
    eprintln!("human approval: whole test {:?}", started.elapsed());
}

// ---- file processing -----------------------------------------------------------------------------

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_processing_summarizes_an_uploaded_file_and_stores_the_summary() {
    let started = Instant::now();
    let dir = example("file-processing");
    let storage = tempfile::tempdir().unwrap();
    copy_dir(&dir.join("sample-files"), storage.path());
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_with(&temp.path().join("data"), &[], &[("PATH", &server_path())]);
    let api = Api::of(&server);
    let root = storage.path().to_str().unwrap().to_string();
    let env = [("STORAGE_ROOT", root.as_str())];
    let first = apply(&server, &dir, &env).await;
    assert_eq!(first.last().unwrap(), "4 created", "{first:#?}");
    assert_apply_is_idempotent(&server, &dir, &env, &first).await;
    let function = api.ok("/v1/functions/summarize-file").await;
    assert_eq!(function["environment"]["STORAGE_ROOT"], root.as_str());

    let uploaded = format!("@{}", dir.join("events/object-created.json").display());
    let missing =
        r#"{"bucket": {"name": "inbox"}, "object": {"key": "reports/q4.txt", "size": 1}}"#;
    let elsewhere = r#"{"bucket": {"name": "archive"}, "object": {"key": "old.txt", "size": 1}}"#;
    for detail in [elsewhere, uploaded.as_str(), missing] {
        let put = stepyard(
            &server,
            &[
                "events",
                "put",
                "--source",
                "acme.storage",
                "--detail-type",
                "Object Created",
                "--detail",
                detail,
                "--json",
            ],
            &[],
        )
        .await;
        assert_eq!(put.code, 0, "{}{}", put.stdout, put.stderr);
        let answer: Value = serde_json::from_str(&put.stdout).unwrap();
        assert!(answer["event_id"].is_string(), "{answer}");
    }
    let executions = api.finished_executions("file-processing", 2).await;
    assert_eq!(executions.len(), 2, "the archive bucket is not matched");
    let mut by_key = HashMap::new();
    for e in &executions {
        let e = api.execution(e).await;
        by_key.insert(e["input"]["object"]["key"].as_str().unwrap().to_string(), e);
    }

    let done = &by_key["reports/q3.txt"];
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let text = std::fs::read(storage.path().join("inbox/reports/q3.txt")).unwrap();
    let sha = hex::encode(<Sha256 as sha2::Digest>::digest(&text));
    let output = &done["output"];
    assert_eq!(output["bytes"], text.len());
    assert_eq!(output["lines"], 5);
    assert_eq!(output["sha256"], sha.as_str());
    assert_eq!(output["first_line"], "Quarterly report, third quarter");
    assert_eq!(
        output["summary"],
        "s3://summaries/inbox/reports/q3.txt.summary.json"
    );
    // The stored summary is what the function returned.
    let stored: Value = serde_json::from_slice(
        &std::fs::read(
            storage
                .path()
                .join("summaries/inbox/reports/q3.txt.summary.json"),
        )
        .expect("the summary is stored"),
    )
    .unwrap();
    assert_eq!(stored["sha256"], sha.as_str());
    assert_eq!(stored["words"], output["words"]);
    let history = api.history(done).await;
    assert_eq!(
        types(&history),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded",
        ]
    );

    // A file that is not there: the function's FileNotFound is caught into FileMissing.
    let gone = &by_key["reports/q4.txt"];
    assert_eq!(gone["status"], "FAILED", "{gone}");
    assert_eq!(gone["error"], "FileMissing");
    let history = api.history(gone).await;
    let failed = history
        .iter()
        .find(|e| e["type"] == "LambdaFunctionFailed")
        .expect("the function failed");
    assert_eq!(failed["details"]["error"], "FileNotFound");
    assert_eq!(states_entered(&history), ["Summarize", "FileMissing"]);
    eprintln!("file processing: whole test {:?}", started.elapsed());
}

// ---- scheduled job -------------------------------------------------------------------------------

/// The rule's `rate(1 minute)` is checked as the server schedules it (its next firing is a
/// minute after the rule was written); the run itself is fired by the real scheduler through
/// an `at()` three seconds ahead, since no flag drives the server's clock and a rate's
/// shortest period is a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_job_runs_a_map_with_retry_and_catch_when_the_schedule_fires() {
    let started = Instant::now();
    let dir = example("scheduled-job");
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_with(&temp.path().join("data"), &[], &[("PATH", &server_path())]);
    let api = Api::of(&server);
    let before = chrono::Utc::now();
    let first = apply(&server, &dir, &[]).await;
    assert_eq!(first.last().unwrap(), "4 created", "{first:#?}");
    assert_apply_is_idempotent(&server, &dir, &[], &first).await;
    let rule = api
        .ok("/v1/event-buses/default/rules/inventory-sync-schedule")
        .await;
    assert_eq!(rule["schedule_expression"], "rate(1 minute)");
    let next =
        chrono::DateTime::parse_from_rfc3339(rule["next_fire_at"].as_str().unwrap()).unwrap();
    let ahead = next.signed_duration_since(before).num_milliseconds();
    // A minute after the rule was written (the apply itself took a moment after `before`).
    assert!(
        (59_000..=75_000).contains(&ahead),
        "next firing {ahead} ms after the apply"
    );

    // The same rule, now due in three seconds.
    let fire_at = (chrono::Utc::now() + chrono::Duration::seconds(3)).format("%Y-%m-%dT%H:%M:%S");
    let at = format!("at({fire_at})");
    let lines = apply(&server, &dir, &[("INVENTORY_SCHEDULE", &at)]).await;
    assert!(
        lines.contains(
            &"rule default/inventory-sync-schedule: updated (schedule_expression)".to_string()
        ),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "1 updated, 3 unchanged",
        "{lines:#?}"
    );

    let executions = api.finished_executions("inventory-sync", 1).await;
    assert_eq!(executions.len(), 1);
    let e = api.execution(&executions[0]).await;
    assert_eq!(e["status"], "SUCCEEDED", "{e}");
    let fired = chrono::DateTime::parse_from_rfc3339(e["started_at"].as_str().unwrap()).unwrap();
    let due = chrono::NaiveDateTime::parse_from_str(&fire_at.to_string(), "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc();
    assert!(fired >= due, "fired at {fired}, due at {due}");
    assert_eq!(
        e["input"]["warehouses"],
        json!([{"name": "north"}, {"name": "south", "busy_once": true}, {"name": "west"}])
    );
    let output = &e["output"];
    assert_eq!(output["warehouses"], 3);
    assert_eq!(
        output["results"],
        json!([
            {"warehouse": "north", "status": "synced", "items": 3, "units": 169, "low_stock": ["DESK-02"]},
            {"warehouse": "south", "status": "synced", "items": 2, "units": 28, "low_stock": ["CHAIR-01"]},
            {"warehouse": "west", "status": "skipped", "error": "WarehouseUnavailable"},
        ])
    );
    let history = api.history(&e).await;
    let kinds = types(&history);
    assert_eq!(
        kinds.iter().filter(|t| *t == "MapIterationStarted").count(),
        3
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|t| *t == "MapIterationSucceeded")
            .count(),
        3
    );
    // south failed once as busy and was retried; west failed and was caught.
    let failures: Vec<&str> = history
        .iter()
        .filter(|e| e["type"] == "LambdaFunctionFailed")
        .map(|e| e["details"]["error"].as_str().unwrap())
        .collect();
    let mut sorted = failures.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["WarehouseBusy", "WarehouseUnavailable"],
        "{failures:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|t| *t == "LambdaFunctionSucceeded")
            .count(),
        2
    );
    assert!(states_entered(&history).contains(&"Skipped".to_string()));
    // Fired once: an at() schedule has no next firing.
    let rule = api
        .ok("/v1/event-buses/default/rules/inventory-sync-schedule")
        .await;
    assert!(rule["next_fire_at"].is_null(), "{rule}");
    eprintln!("scheduled job: whole test {:?}", started.elapsed());
}

// ---- long work -----------------------------------------------------------------------------------

fn docker(args: &[&str]) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One backfill runs 8 s in a container (a function stops at 3 s here) and stays alive on
/// heartbeats (HeartbeatSeconds 5); another one's container is paused by the test, goes
/// silent, and the workflow catches States.HeartbeatTimeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_work_runs_in_a_container_past_a_functions_timeout_on_heartbeats() {
    let started = Instant::now();
    let dir = example("long-work");
    build_image(&dir.join("worker/build.sh"));
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_with(&temp.path().join("data"), &[], &[("PATH", &server_path())]);
    let api = Api::of(&server);
    let first = apply(&server, &dir, &[]).await;
    assert!(
        first.contains(&"event bus search-jobs: created".to_string()),
        "{first:#?}"
    );
    assert!(
        first.contains(&"rule search-jobs/backfill-requested: created".to_string()),
        "{first:#?}"
    );
    assert_eq!(first.last().unwrap(), "6 created", "{first:#?}");
    assert_apply_is_idempotent(&server, &dir, &[], &first).await;

    let request = format!("@{}", dir.join("events/backfill-requested.json").display());
    let silent = r#"{"job_id": "silent-worker", "chunks": 60, "chunk_seconds": 1}"#;
    for detail in [request.as_str(), silent] {
        let put = stepyard(
            &server,
            &[
                "events",
                "put",
                "--bus",
                "search-jobs",
                "--source",
                "acme.search",
                "--detail-type",
                "Backfill Requested",
                "--detail",
                detail,
            ],
            &[],
        )
        .await;
        assert_eq!(put.code, 0, "{}{}", put.stdout, put.stderr);
    }

    // Freeze the silent one's worker once it has started working. Its job is found through
    // the execution that started it.
    let tasks = api
        .until("/v1/tasks", |t| {
            t["tasks"].as_array().is_some_and(|jobs| jobs.len() == 2)
        })
        .await;
    let mut silent_job = None;
    for job in tasks["tasks"].as_array().unwrap() {
        let arn = job["execution_arn"].as_str().expect("a Task state's job");
        let name = arn.rsplit(':').next().unwrap();
        let e = api
            .ok(&format!("/v1/state-machines/backfill/executions/{name}"))
            .await;
        if e["input"]["job_id"] == "silent-worker" {
            silent_job = Some(job.clone());
        }
    }
    let silent_job = silent_job.expect("the silent worker's job");
    let silent_id = silent_job["id"].as_str().unwrap().to_string();
    let container = format!("stepyard-{silent_id}");
    let deadline = Instant::now() + WAIT;
    loop {
        let logs = reqwest::get(server.url(&format!("/v1/tasks/{silent_id}/logs")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if logs.contains("heartbeat, chunk 1 of 60") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the silent worker never started: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    docker(&["pause", &container]);

    let executions = api.finished_executions("backfill", 2).await;
    let mut by_job = HashMap::new();
    for e in &executions {
        let e = api.execution(e).await;
        by_job.insert(e["input"]["job_id"].as_str().unwrap().to_string(), e);
    }
    // Let the frozen worker go: it finds its task gone and exits, so its container is removed.
    docker(&["unpause", &container]);

    let done = &by_job["reindex-2026-12"];
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let output = &done["output"];
    assert_eq!(output["job_id"], "reindex-2026-12");
    assert_eq!(output["chunks_done"], 8);
    assert_eq!(output["function_timeout_seconds"], 3);
    let seconds = output["seconds"].as_u64().unwrap();
    assert!(seconds >= 8, "{output}");
    assert!(seconds > output["function_timeout_seconds"].as_u64().unwrap());
    let history = api.history(done).await;
    assert_eq!(
        states_entered(&history),
        ["PlanBackfill", "Backfill", "Done"]
    );
    let kinds = types(&history);
    assert!(kinds.contains(&"TaskSubmitted".to_string()), "{kinds:?}");
    assert_eq!(
        tasks_succeeded(&history),
        ["lambda:invoke", "ecs:runTask.waitForTaskToken"]
    );
    assert!(!kinds.contains(&"TaskTimedOut".to_string()), "{kinds:?}");
    // The plan said why it handed off.
    let plan = history
        .iter()
        .find(|e| e["type"] == "TaskSucceeded")
        .map(|e| serde_json::from_str::<Value>(e["details"]["output"].as_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(plan["Payload"]["hand_off"], true);
    assert_eq!(plan["Payload"]["estimated_seconds"], 8);

    let lost = &by_job["silent-worker"];
    assert_eq!(lost["status"], "FAILED", "{lost}");
    assert_eq!(lost["error"], "WorkerLost");
    let history = api.history(lost).await;
    let timed_out = history
        .iter()
        .find(|e| e["type"] == "TaskTimedOut")
        .expect("the task timed out");
    assert_eq!(timed_out["details"]["error"], "States.HeartbeatTimeout");
    assert_eq!(
        states_entered(&history),
        ["PlanBackfill", "Backfill", "WorkerLost"]
    );

    // Both workers' containers end (the silent one on its refused heartbeat) and are collected.
    let stopped = api
        .until(&format!("/v1/tasks/{silent_id}"), |t| {
            t["status"] == "STOPPED"
        })
        .await;
    assert_eq!(stopped["exit_code"], 1, "{stopped}");
    let logs = reqwest::get(server.url(&format!("/v1/tasks/{silent_id}/logs")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        logs.contains("the task no longer waits for this worker"),
        "{logs}"
    );

    // Delete takes the bus too, after its rule.
    let deleted = stepyard(&server, &["delete", dir.to_str().unwrap()], &[]).await;
    assert_eq!(deleted.code, 0, "{}{}", deleted.stdout, deleted.stderr);
    let lines: Vec<&str> = deleted.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"rule search-jobs/backfill-requested: deleted")
    );
    assert!(
        lines.contains(&"event bus search-jobs: deleted"),
        "{lines:#?}"
    );
    assert_eq!(api.get("/v1/event-buses/search-jobs").await.0, 404);
    eprintln!("long work: whole test {:?}", started.elapsed());
}

// ---- apply: updates and errors -------------------------------------------------------------------

/// Apply writes only what changed: edited code updates the function (a new revision), a new
/// endpoint replaces the subscription, an edited ASL updates the state machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_updates_only_what_changed_and_refuses_a_broken_folder() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("approval");
    copy_dir(&example("human-approval"), &dir);
    std::fs::create_dir_all(dir.join("functions/notify")).unwrap();
    std::fs::write(
        dir.join("functions/notify/app.py"),
        "def handler(e, c):\n    return 1\n",
    )
    .unwrap();
    let manifest = std::fs::read_to_string(dir.join("stepyard.toml")).unwrap();
    std::fs::write(
        dir.join("stepyard.toml"),
        format!(
            "{manifest}\n[[functions]]\nname = \"notify\"\ncommand = [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]\ncode = \"functions/notify\"\n"
        ),
    )
    .unwrap();
    let server = Server::start();
    let api = Api::of(&server);
    let env = [("APPROVAL_WEBHOOK", "http://127.0.0.1:9/one")];
    let first = apply(&server, &dir, &env).await;
    assert_eq!(first.last().unwrap(), "6 created", "{first:#?}");

    std::fs::write(
        dir.join("functions/notify/app.py"),
        "def handler(e, c):\n    return 2\n",
    )
    .unwrap();
    let asl = std::fs::read_to_string(dir.join("expense-approval.asl.json")).unwrap();
    std::fs::write(
        dir.join("expense-approval.asl.json"),
        asl.replace(
            "\"NumericLessThanEquals\": 100",
            "\"NumericLessThanEquals\": 250",
        ),
    )
    .unwrap();
    let lines = apply(
        &server,
        &dir,
        &[("APPROVAL_WEBHOOK", "http://127.0.0.1:9/two")],
    )
    .await;
    for expected in [
        "function notify: updated (code)",
        "state machine expense-approval: updated (definition)",
        "subscription approval-requests http http://127.0.0.1:9/two: created",
        "subscription approval-requests http http://127.0.0.1:9/one: deleted (not in the manifest)",
        "rule default/expense-submitted: unchanged",
        "target default/expense-submitted/approval: unchanged",
    ] {
        assert!(
            lines.contains(&expected.to_string()),
            "{expected:?} not in {lines:#?}"
        );
    }
    assert_eq!(
        lines.last().unwrap(),
        "1 created, 2 updated, 1 deleted, 3 unchanged",
        "{lines:#?}"
    );
    assert_eq!(api.ok("/v1/functions/notify").await["revision"], 2);
    let subs = api.ok("/v1/topics/approval-requests/subscriptions").await;
    let endpoints: Vec<&str> = subs["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(endpoints, ["http://127.0.0.1:9/two"]);

    // Mistakes in the folder are refused before anything is sent (exit 2), naming the problem.
    std::fs::write(
        dir.join("stepyard.toml"),
        "[[functions]]\nname = \"x\"\nruntime = \"process\"\ncomand = []\n",
    )
    .unwrap();
    let out = stepyard(&server, &["apply", dir.to_str().unwrap()], &[]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("comand"), "{}", out.stderr);
    let out = stepyard(
        &server,
        &["apply", temp.path().join("nowhere").to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("stepyard.toml"), "{}", out.stderr);
    // An invalid definition is the server's refusal (exit 1), with every problem listed.
    std::fs::write(
        dir.join("stepyard.toml"),
        "[[state_machines]]\nname = \"broken\"\ndefinition = \"broken.asl.json\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.asl.json"),
        r#"{"StartAt": "Nowhere", "States": {"A": {"Type": "Succeed"}}}"#,
    )
    .unwrap();
    let out = stepyard(&server, &["apply", dir.to_str().unwrap()], &[]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("/StartAt"), "{}", out.stderr);
    // No server: exit 1 and say so.
    let out = tokio::process::Command::new(common::binary())
        .args(["executions", "list", "--endpoint", "http://127.0.0.1:9"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot reach the server at http://127.0.0.1:9")
    );
}
