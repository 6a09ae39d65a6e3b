//! Functions with real processes: a Python handler run by the official `awslambdaric` from
//! PyPI, unmodified, through the Runtime API each sandbox gets on its own loopback port; an
//! `http` function served by a test server; Task states calling both; the REST API and
//! Lambda's own Invoke path through `app(state).oneshot`.
//!
//! `STEPYARD_PYTHON` must name a Python with `awslambdaric` installed (`scripts/test` makes
//! `.venv` from `tests/python/requirements.txt` and sets it). Without it these tests fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use stepyard_api::config::ServerConfig;
use stepyard_api::{AppState, app};
use stepyard_engine::{CreateStateMachine, StartExecution};
use stepyard_workers::functions::{FunctionSpec, Invoke, InvokeOutput};
use tower::ServiceExt;

const HANDLER: &str = r#"
import json
import os
import time


class FlakyError(Exception):
    pass


def handler(event, context):
    action = event.get("action", "echo")
    print(f"handling {action} in {os.getpid()}", flush=True)
    if action == "echo":
        return {
            "echo": event.get("value"),
            "pid": os.getpid(),
            "request_id": context.aws_request_id,
            "arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "memory": context.memory_limit_in_mb,
            "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "region": os.environ["AWS_REGION"],
            "greeting": os.environ.get("GREETING"),
            "secret": os.environ.get("STEPYARD_TEST_SECRET"),
            "client_context": getattr(context.client_context, "custom", None),
        }
    if action == "raise":
        raise ValueError("bad value: " + str(event.get("value")))
    if action == "sleep":
        time.sleep(event["seconds"])
        return {"slept": event["seconds"]}
    if action == "exit":
        os._exit(3)
    if action == "rendezvous":
        # Proves invocations run at once: each waits until `n` have arrived.
        folder = os.path.join(os.environ["LAMBDA_TASK_ROOT"], "rendezvous")
        os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, context.aws_request_id), "w").close()
        deadline = time.time() + 20
        while len(os.listdir(folder)) < event["n"] and time.time() < deadline:
            time.sleep(0.01)
        return {"pid": os.getpid(), "saw": len(os.listdir(folder))}
    if action == "block":
        # Blocks until the test writes a byte to the connection (the test controls it).
        import socket
        with socket.create_connection(("127.0.0.1", event["port"])) as conn:
            conn.sendall(b"x")
            conn.recv(1)
        return {"released": event.get("value")}
    if action == "hog":
        # Holds `mb` megabytes, touched so they are resident.
        hog = bytearray(event["mb"] * 1024 * 1024)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        return {"held": len(hog)}
    if action == "flaky":
        # Fails with FlakyError until the third call for this key.
        path = os.path.join(os.environ["LAMBDA_TASK_ROOT"], "count-" + event["key"])
        count = int(open(path).read()) + 1 if os.path.exists(path) else 1
        open(path, "w").write(str(count))
        if count < 3:
            raise FlakyError(f"attempt {count} failed")
        return {"ok": True, "attempts": count, "key": event["key"]}
    raise KeyError(action)
"#;

fn python() -> String {
    let python = std::env::var("STEPYARD_PYTHON").unwrap_or_else(|_| {
        panic!(
            "STEPYARD_PYTHON is not set: it must name a Python with awslambdaric installed \
             (scripts/test creates .venv from tests/python/requirements.txt and sets it)"
        )
    });
    let status = std::process::Command::new(&python)
        .args(["-c", "import awslambdaric"])
        .status()
        .unwrap_or_else(|e| panic!("STEPYARD_PYTHON={python} cannot be run: {e}"));
    assert!(
        status.success(),
        "STEPYARD_PYTHON={python} has no awslambdaric: pip install -r tests/python/requirements.txt"
    );
    python
}

struct Harness {
    state: AppState,
    code: PathBuf,
    python: String,
    _temp: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        let python = python();
        let temp = tempfile::tempdir().unwrap();
        let code = temp.path().join("code");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(code.join("app.py"), HANDLER).unwrap();
        let config = ServerConfig::local(temp.path().join("data"));
        let state = AppState::open(config).await.expect("open the server state");
        Harness {
            state,
            code,
            python,
            _temp: temp,
        }
    }

    fn spec(&self, name: &str) -> FunctionSpec {
        let mut spec = FunctionSpec::process(
            name,
            vec![
                self.python.clone(),
                "-m".into(),
                "awslambdaric".into(),
                "app.handler".into(),
            ],
            &self.code,
        );
        spec.handler = Some("app.handler".into());
        spec.environment.insert("GREETING".into(), "hello".into());
        spec
    }

    async fn create(&self, spec: FunctionSpec) {
        self.state.functions().create(spec).await.unwrap();
    }

    async fn invoke(&self, name: &str, event: Value) -> InvokeOutput {
        self.state
            .functions()
            .invoke(
                name,
                Invoke {
                    payload: Bytes::from(event.to_string()),
                    ..Invoke::default()
                },
            )
            .await
            .unwrap()
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, header::HeaderMap, Bytes) {
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, bytes)
    }

    async fn send_json(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, bytes) = self
            .send(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        (status, parse(&bytes))
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, _, bytes) = self
            .send(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        (status, parse(&bytes))
    }
}

fn parse(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()))
    }
}

fn ok(output: &InvokeOutput) -> Value {
    match &output.result {
        Ok(bytes) => serde_json::from_slice(bytes).unwrap(),
        Err(e) => panic!("expected success, got {} {}", e.error_type, e.cause()),
    }
}

fn err(output: &InvokeOutput) -> (String, Value) {
    match &output.result {
        Ok(bytes) => panic!("expected an error, got {}", String::from_utf8_lossy(bytes)),
        Err(e) => (
            e.error_type.clone(),
            serde_json::from_slice(&e.payload).unwrap(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_handler_runs_cold_then_warm_with_lambdas_environment_and_logs() {
    let h = Harness::new().await;
    let mut spec = h.spec("echo");
    spec.memory_size_mb = 256;
    h.create(spec).await;
    // The server's own environment does not leak into sandboxes.
    let first = h.invoke("echo", json!({"value": 1})).await;
    let first_body = ok(&first);
    assert_eq!(first_body["echo"], 1);
    assert_eq!(first_body["request_id"], first.request_id.as_str());
    assert_eq!(
        first_body["arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:echo"
    );
    assert_eq!(first_body["function"], "echo");
    assert_eq!(
        first_body["memory"], "256",
        "awslambdaric reads it from the environment"
    );
    assert_eq!(first_body["region"], "us-east-1");
    assert_eq!(first_body["greeting"], "hello");
    assert_eq!(Path::new(first_body["task_root"].as_str().unwrap()), h.code);
    let remaining = first_body["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 3000, "{remaining}");
    assert_eq!(h.state.functions().pool_stats("echo").cold_starts, 1);

    let second = h.invoke("echo", json!({"value": 2})).await;
    let second_body = ok(&second);
    assert_eq!(second_body["echo"], 2);
    assert_eq!(
        second_body["pid"], first_body["pid"],
        "the warm sandbox is reused"
    );
    assert_ne!(second.request_id, first.request_id);
    let stats = h.state.functions().pool_stats("echo");
    assert_eq!((stats.cold_starts, stats.sandboxes), (1, 1));

    // The invocation's own lines, framed as CloudWatch frames them.
    let log = h
        .state
        .functions()
        .logs("echo", &second.request_id)
        .unwrap();
    let pid = second_body["pid"].as_i64().unwrap();
    assert_eq!(
        log.lines.first().map(String::as_str),
        Some(format!("START RequestId: {} Version: $LATEST", second.request_id).as_str())
    );
    assert!(
        log.lines.contains(&format!("handling echo in {pid}")),
        "{:?}",
        log.lines
    );
    assert!(
        log.lines
            .iter()
            .any(|l| l.starts_with(&format!("REPORT RequestId: {}", second.request_id))),
        "{:?}",
        log.lines
    );
    let (status, body) = h
        .get(&format!(
            "/v1/functions/echo/invocations/{}/logs",
            second.request_id
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lines"], json!(log.lines));
    let (status, _) = h
        .get(&format!(
            "/v1/functions/other/invocations/{}/logs",
            second.request_id
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_timeouts_and_crashes_are_reported_as_lambda_reports_them() {
    let h = Harness::new().await;
    let mut spec = h.spec("faulty");
    spec.timeout_seconds = 1;
    h.create(spec).await;

    // A raised exception: its type is the error name, the cause is the runtime's error object.
    let raised = h
        .invoke("faulty", json!({"action": "raise", "value": 7}))
        .await;
    let (name, cause) = err(&raised);
    assert_eq!(name, "ValueError");
    assert_eq!(cause["errorType"], "ValueError");
    assert_eq!(cause["errorMessage"], "bad value: 7");
    assert_eq!(cause["requestId"], raised.request_id.as_str());
    assert!(cause["stackTrace"].is_array(), "{cause}");
    let warm_pid = ok(&h.invoke("faulty", json!({})).await)["pid"].clone();

    // Past the timeout: Sandbox.Timedout, the process is killed and replaced on demand.
    let slow = h
        .invoke("faulty", json!({"action": "sleep", "seconds": 30}))
        .await;
    let (name, cause) = err(&slow);
    assert_eq!(name, "Sandbox.Timedout");
    assert_eq!(
        cause["errorMessage"],
        format!(
            "RequestId: {} Error: Task timed out after 1.00 seconds",
            slow.request_id
        )
    );
    let after_timeout = ok(&h.invoke("faulty", json!({})).await);
    assert_ne!(
        after_timeout["pid"], warm_pid,
        "a timed-out sandbox is replaced"
    );

    // The process exits mid-invocation: Runtime.ExitError with the exit status.
    let exited = h.invoke("faulty", json!({"action": "exit"})).await;
    let (name, cause) = err(&exited);
    assert_eq!(name, "Runtime.ExitError");
    assert!(
        cause["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Runtime exited with error: exit status: 3"),
        "{cause}"
    );
    let after_exit = ok(&h.invoke("faulty", json!({})).await);
    assert_ne!(after_exit["pid"], after_timeout["pid"]);
    assert_eq!(h.state.functions().pool_stats("faulty").cold_starts, 3);

    // Init fails (the handler's module does not exist): the init error's type, every time.
    let mut broken = FunctionSpec::process(
        "broken",
        vec![
            h.python.clone(),
            "-m".into(),
            "awslambdaric".into(),
            "missing_module.handler".into(),
        ],
        &h.code,
    );
    broken.handler = Some("missing_module.handler".into());
    h.create(broken).await;
    for _ in 0..2 {
        let (name, cause) = err(&h.invoke("broken", json!({})).await);
        assert_eq!(name, "Runtime.ImportModuleError", "{cause}");
        assert!(
            cause["errorMessage"]
                .as_str()
                .unwrap()
                .contains("missing_module"),
            "{cause}"
        );
    }

    // A command that does not exist.
    let absent = FunctionSpec::process(
        "absent",
        vec![h.code.join("no-such-bootstrap").display().to_string()],
        &h.code,
    );
    h.create(absent).await;
    let (name, _) = err(&h.invoke("absent", json!({})).await);
    assert_eq!(name, "Runtime.InvalidEntrypoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_run_at_once_up_to_the_limit_then_queue_then_throttle() {
    let h = Harness::new().await;
    let mut spec = h.spec("wide");
    spec.timeout_seconds = 30;
    spec.reserved_concurrency = Some(3);
    h.create(spec).await;
    let event = json!({"action": "rendezvous", "n": 3});
    let (a, b, c) = tokio::join!(
        h.invoke("wide", event.clone()),
        h.invoke("wide", event.clone()),
        h.invoke("wide", event.clone())
    );
    let outputs = [a, b, c];
    let mut pids: Vec<i64> = outputs
        .iter()
        .map(|o| {
            let body = ok(o);
            assert_eq!(body["saw"], 3, "all three ran at once: {body}");
            body["pid"].as_i64().unwrap()
        })
        .collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three sandboxes");
    assert_eq!(h.state.functions().pool_stats("wide").sandboxes, 3);

    // Reserved concurrency 0 throttles, as on AWS.
    let mut closed = h.spec("closed");
    closed.reserved_concurrency = Some(0);
    h.create(closed).await;
    let throttled = h
        .state
        .functions()
        .invoke("closed", Invoke::default())
        .await;
    assert!(
        matches!(
            throttled,
            Err(stepyard_workers::functions::Error::TooManyRequests(_))
        ),
        "{throttled:?}"
    );
    let (status, body) = h
        .send_json("POST", "/v1/functions/closed/invoke", json!({}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_over_its_memory_size_is_killed_with_runtime_out_of_memory() {
    let h = Harness::new().await;
    let mut spec = h.spec("hog");
    spec.timeout_seconds = 30;
    spec.memory_size_mb = 128;
    h.create(spec).await;
    let warm = ok(&h.invoke("hog", json!({"action": "echo", "value": 1})).await);
    assert_eq!(warm["memory"], "128", "{warm}");

    let killed = h.invoke("hog", json!({"action": "hog", "mb": 300})).await;
    let (error_type, payload) = err(&killed);
    assert_eq!(error_type, "Runtime.OutOfMemory", "{payload}");
    assert_eq!(payload["errorType"], "Runtime.OutOfMemory");
    assert_eq!(
        payload["errorMessage"],
        format!(
            "RequestId: {} Error: Runtime exited with error: signal: killed",
            killed.request_id
        )
    );
    let (status, log) = h
        .get(&format!(
            "/v1/functions/hog/invocations/{}/logs",
            killed.request_id
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["error"], "Runtime.OutOfMemory", "{log}");

    // The next invocation runs on a fresh sandbox, and one within the size is not killed.
    let fresh = ok(&h.invoke("hog", json!({"action": "echo", "value": 2})).await);
    assert_ne!(
        fresh["pid"], warm["pid"],
        "a new sandbox replaced the killed one"
    );
    let within = ok(&h.invoke("hog", json!({"action": "hog", "mb": 16})).await);
    assert_eq!(within["held"], 16 * 1024 * 1024);
    assert_eq!(h.state.functions().pool_stats("hog").cold_starts, 2);
}

/// Builds `api/tests/fixtures/rust-echo` (the `lambda_runtime` greeter, its own lock file) once
/// per test binary and returns its `bootstrap` binary.
fn rust_echo_bootstrap() -> &'static Path {
    static BOOTSTRAP: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BOOTSTRAP.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("rust-echo");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = root.join("api/tests/fixtures/rust-echo/Cargo.toml");
        let status = std::process::Command::new(cargo)
            .args(["build", "--release", "--locked", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo to build the rust-echo fixture");
        assert!(
            status.success(),
            "cargo build of {} failed",
            manifest.display()
        );
        target.join("release/bootstrap")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_handler_built_with_lambda_runtime_answers_warm_and_reports_its_error_type() {
    let bootstrap = tokio::task::spawn_blocking(rust_echo_bootstrap)
        .await
        .unwrap();
    let h = Harness::new().await;
    let mut spec =
        FunctionSpec::process("rust-echo", vec![bootstrap.display().to_string()], &h.code);
    spec.timeout_seconds = 10;
    h.create(spec).await;

    let first = h.invoke("rust-echo", json!({"name": "Ada"})).await;
    let body = ok(&first);
    assert_eq!(body["message"], "Hello, Ada!", "{body}");
    assert_eq!(body["request_id"], json!(first.request_id), "{body}");

    // Warm: the same process answers the second call.
    let second = h.invoke("rust-echo", json!({"name": "Grace"})).await;
    let warm = ok(&second);
    assert_eq!(warm["message"], "Hello, Grace!", "{warm}");
    assert_eq!(warm["pid"], body["pid"], "the warm sandbox answers");
    assert_eq!(h.state.functions().pool_stats("rust-echo").cold_starts, 1);

    // The handler's error type is the invocation's error name, as on Lambda.
    let failed = h.invoke("rust-echo", json!({"name": "error"})).await;
    let (error_type, payload) = err(&failed);
    assert_eq!(error_type, "NameError", "{payload}");
    assert_eq!(payload["errorType"], "NameError", "{payload}");
    assert_eq!(payload["errorMessage"], "cannot greet 'error'", "{payload}");

    // Through Lambda's own Invoke path: the function error header names it too.
    let (status, headers, bytes) = h
        .send(
            Request::post("/2015-03-31/functions/rust-echo/invocations")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"name": "error"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(parse(&bytes)["errorType"], "NameError");
    // Still the one warm process after an error.
    let again = ok(&h.invoke("rust-echo", json!({})).await);
    assert_eq!(again["message"], "Hello, world!");
    assert_eq!(again["pid"], body["pid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_throttles_with_too_many_requests_and_the_queued_ones_run_once_unblocked() {
    use stepyard_workers::functions::{Error as FunctionsError, Functions, FunctionsConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::new().await;
    // Its own runtime with a queue of two per function (the server's is 1000).
    let temp = tempfile::tempdir().unwrap();
    let functions = Functions::open(FunctionsConfig {
        max_queue: 2,
        ..FunctionsConfig::new(
            temp.path().join("functions"),
            std::sync::Arc::new(stepyard_api::runtime_api::LoopbackRuntimeApi),
        )
    })
    .unwrap();
    let mut spec = h.spec("narrow");
    spec.timeout_seconds = 60;
    spec.reserved_concurrency = Some(1);
    functions.create(spec).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let call = |value: u32| {
        let functions = functions.clone();
        async move {
            let event = json!({"action": "block", "port": port, "value": value});
            functions
                .invoke(
                    "narrow",
                    Invoke {
                        payload: Bytes::from(event.to_string()),
                        ..Invoke::default()
                    },
                )
                .await
        }
    };
    // Polls `fut` once: `invoke` submits to the pool before its first await.
    macro_rules! submit {
        ($fut:expr) => {
            tokio::select! {
                biased;
                r = &mut $fut => panic!("finished while blocked: {r:?}"),
                _ = std::future::ready(()) => {}
            }
        };
    }
    let mut first = Box::pin(call(1));
    submit!(first);
    // The first invocation is running once its handler connects.
    let (mut running, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("the first handler connects")
        .unwrap();
    let mut byte = [0u8; 1];
    running.read_exact(&mut byte).await.unwrap();
    let mut second = Box::pin(call(2));
    let mut third = Box::pin(call(3));
    submit!(second);
    submit!(third);
    let stats = functions.pool_stats("narrow");
    assert_eq!(
        (stats.sandboxes, stats.queued),
        (1, 2),
        "one running, two queued"
    );

    // The queue is full: the next one is throttled at once, as Lambda throttles.
    let throttled = call(4).await;
    match &throttled {
        Err(FunctionsError::TooManyRequests(message)) => {
            assert!(message.contains("narrow"), "{message}")
        }
        other => panic!("expected TooManyRequests, got {other:?}"),
    }

    // Unblocked one by one, the queued ones run on the same sandbox and succeed.
    running.write_all(b"x").await.unwrap();
    for _ in 0..2 {
        let (mut conn, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
            .await
            .expect("a queued handler connects")
            .unwrap();
        conn.read_exact(&mut byte).await.unwrap();
        conn.write_all(b"x").await.unwrap();
    }
    let outputs = [
        first.await.unwrap(),
        second.await.unwrap(),
        third.await.unwrap(),
    ];
    for (i, output) in outputs.iter().enumerate() {
        assert_eq!(ok(output), json!({"released": i + 1}));
    }
    assert_eq!(functions.pool_stats("narrow").cold_starts, 1);
    functions.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_retries_the_functions_error_type_and_gets_its_result() {
    let h = Harness::new().await;
    let mut spec = h.spec("flaky");
    spec.timeout_seconds = 10;
    h.create(spec).await;
    let engine = h.state.engine();
    let definition = json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:flaky",
                "Retry": [{"ErrorEquals": ["FlakyError"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 3}],
                "Next": "Wrapped"
            },
            "Wrapped": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "flaky", "Payload": {"action": "echo", "value.$": "$.attempts"}},
                "ResultSelector": {"attempts.$": "$.Payload.echo", "status.$": "$.StatusCode", "version.$": "$.ExecutedVersion"},
                "End": true
            }
        }
    });
    let sm = engine
        .create_state_machine(CreateStateMachine {
            name: "retry-flaky".into(),
            definition: definition.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let started = engine
        .start_execution(StartExecution {
            state_machine_arn: sm.arn,
            input: Some(json!({"action": "flaky", "key": "k1"}).to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    let done = tokio::time::timeout(
        Duration::from_secs(60),
        engine.await_execution(&started.execution_arn),
    )
    .await
    .expect("the execution ends")
    .unwrap();
    assert_eq!(
        format!("{:?}", done.status),
        "Succeeded",
        "{:?} {:?}",
        done.error,
        done.cause
    );
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        output,
        json!({"attempts": 3, "status": 200, "version": "$LATEST"})
    );

    // Three attempts of the first Task in the history: two failures with the handler's error.
    let history = engine
        .get_execution_history(&started.execution_arn, Default::default(), false)
        .await
        .unwrap();
    let kinds: Vec<String> = history
        .items
        .iter()
        .map(|e| format!("{:?}", e.kind))
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| x.as_str() == k).count();
    assert_eq!(count("LambdaFunctionScheduled"), 3, "{kinds:?}");
    assert_eq!(count("LambdaFunctionFailed"), 2, "{kinds:?}");
    assert_eq!(count("LambdaFunctionSucceeded"), 1, "{kinds:?}");
    assert_eq!(count("TaskSucceeded"), 1, "{kinds:?}");
    let failures: Vec<&Value> = history
        .items
        .iter()
        .filter(|e| format!("{:?}", e.kind) == "LambdaFunctionFailed")
        .map(|e| &e.details)
        .collect();
    for failure in &failures {
        assert_eq!(failure["error"], "FlakyError", "{failure}");
        let cause: Value = serde_json::from_str(failure["cause"].as_str().unwrap()).unwrap();
        assert_eq!(cause["errorType"], "FlakyError");
    }

    // Each completion event names its request id, which opens that invocation's logs.
    let completions: Vec<(String, &Value)> = history
        .items
        .iter()
        .map(|e| (format!("{:?}", e.kind), &e.details))
        .filter(|(k, _)| {
            [
                "LambdaFunctionFailed",
                "LambdaFunctionSucceeded",
                "TaskSucceeded",
            ]
            .contains(&k.as_str())
        })
        .collect();
    assert_eq!(completions.len(), 4, "{completions:?}");
    let expected = [
        ("Call", 0, Some("FlakyError")),
        ("Call", 1, Some("FlakyError")),
        ("Call", 2, None),
        ("Wrapped", 0, None),
    ];
    let mut ids = Vec::new();
    for ((kind, details), (state, attempt, error)) in completions.iter().zip(expected) {
        let request_id = details["requestId"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} has no requestId: {details}"));
        let (status, log) = h
            .get(&format!(
                "/v1/functions/flaky/invocations/{request_id}/logs"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{kind}: {log}");
        assert_eq!(log["request_id"], request_id, "{log}");
        assert_eq!(log["execution_arn"], json!(started.execution_arn), "{log}");
        assert_eq!(log["state_name"], state, "{kind}: {log}");
        assert_eq!(log["attempt"], attempt, "{kind}: {log}");
        assert_eq!(log["error"], json!(error), "{kind}: {log}");
        let lines = log["lines"].as_array().unwrap();
        assert!(
            lines.iter().any(|l| l.as_str().unwrap()
                == format!("START RequestId: {request_id} Version: $LATEST")),
            "{log}"
        );
        ids.push(request_id.to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "one request id per attempt");

    // The link from the execution to its functions' logs.
    let (status, body) = h
        .get(&format!(
            "/v1/function-invocations?execution_arn={}",
            started.execution_arn
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let invocations = body["invocations"].as_array().unwrap();
    assert_eq!(invocations.len(), 4, "{body}");
    let attempts: Vec<(Value, Value, Value)> = invocations
        .iter()
        .map(|i| {
            (
                i["state_name"].clone(),
                i["attempt"].clone(),
                i["error"].clone(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![
            (json!("Call"), json!(0), json!("FlakyError")),
            (json!("Call"), json!(1), json!("FlakyError")),
            (json!("Call"), json!(2), Value::Null),
            (json!("Wrapped"), json!(0), Value::Null),
        ]
    );
    assert!(
        invocations[0]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("handling flaky in ")),
        "{body}"
    );
}

/// A tiny HTTP service for the `http` runtime.
async fn http_service() -> String {
    use axum::routing::post;
    let app = axum::Router::new()
        .route(
            "/ok",
            post(|body: axum::body::Bytes| async move {
                let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                axum::Json(json!({"got": event}))
            }),
        )
        .route(
            "/down",
            post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "overloaded") }),
        )
        .route(
            "/lambda-error",
            post(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(json!({"errorType": "MyError", "errorMessage": "nope"})),
                )
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_functions_answer_fail_and_time_out() {
    let h = Harness::new().await;
    let base = http_service().await;
    for (name, path) in [
        ("ok", "/ok"),
        ("down", "/down"),
        ("lambda-error", "/lambda-error"),
        ("slow", "/slow"),
    ] {
        let mut spec = FunctionSpec::http(name, format!("{base}{path}"));
        spec.timeout_seconds = 1;
        h.create(spec).await;
    }
    assert_eq!(
        ok(&h.invoke("ok", json!({"a": 1})).await),
        json!({"got": {"a": 1}})
    );
    let (name, cause) = err(&h.invoke("down", json!({})).await);
    assert_eq!(name, "Lambda.ServiceException");
    assert!(
        cause["errorMessage"].as_str().unwrap().contains("HTTP 503"),
        "{cause}"
    );
    let (name, cause) = err(&h.invoke("lambda-error", json!({})).await);
    assert_eq!(name, "MyError");
    assert_eq!(cause["errorMessage"], "nope");
    let (name, _) = err(&h.invoke("slow", json!({})).await);
    assert_eq!(name, "Sandbox.Timedout");

    // From a Task state, Catch sees the same names.
    let engine = h.state.engine();
    let definition = json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:down",
                "Catch": [{"ErrorEquals": ["Lambda.ServiceException"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": true
            },
            "Caught": {"Type": "Pass", "End": true}
        }
    });
    let sm = engine
        .create_state_machine(CreateStateMachine {
            name: "catch-http".into(),
            definition: definition.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let started = engine
        .start_execution(StartExecution {
            state_machine_arn: sm.arn,
            input: Some("{}".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let done = engine
        .await_execution(&started.execution_arn)
        .await
        .unwrap();
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        output["error"]["Error"], "Lambda.ServiceException",
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_manages_functions_and_invokes_them_sync_and_async() {
    let h = Harness::new().await;
    let command = json!([h.python, "-m", "awslambdaric", "app.handler"]);
    let body = json!({
        "name": "api-echo",
        "runtime": "process",
        "command": command,
        "code": h.code.display().to_string(),
        "handler": "app.handler",
        "environment": {"GREETING": "hi"},
        "reserved_concurrency": 1
    });
    let (status, created) = h.send_json("POST", "/v1/functions", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["timeout_seconds"], 3);
    assert_eq!(created["revision"], 1);
    let (status, again) = h.send_json("POST", "/v1/functions", body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (status, bad) = h
        .send_json(
            "POST",
            "/v1/functions",
            json!({"name": "x", "runtime": "process", "command": ["a"], "code": "/no/such/dir"}),
        )
        .await;
    assert_eq!(
        (status, bad["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("/code"))
    );
    let (status, list) = h.get("/v1/functions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["functions"][0]["name"], "api-echo");

    // Async first, then sync: with concurrency 1 the sync one runs after the async one.
    let (status, accepted) = h
        .send_json(
            "POST",
            "/v1/functions/api-echo/invoke",
            json!({"payload": {"value": "later"}, "invocation_type": "Event"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let (status, result) = h
        .send_json(
            "POST",
            "/v1/functions/api-echo/invoke",
            json!({"payload": {"value": "now"}, "client_context": {"custom": {"k": "v"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["payload"]["echo"], "now");
    assert_eq!(result["payload"]["greeting"], "hi");
    assert_eq!(result["payload"]["client_context"], json!({"k": "v"}));
    assert_eq!(result["executed_version"], "$LATEST");
    let (status, log) = h.get(accepted["logs_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert!(log["lines"].to_string().contains("handling echo"), "{log}");

    let (status, failed) = h
        .send_json(
            "POST",
            "/v1/functions/api-echo/invoke",
            json!({"payload": {"action": "raise", "value": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(failed["error"]["error"], "ValueError", "{failed}");
    assert_eq!(failed["payload"], Value::Null);

    // Update: a new revision, the next invocation runs in a new sandbox with the new environment.
    let mut update = body.clone();
    update["environment"] = json!({"GREETING": "bonjour"});
    let (status, updated) = h.send_json("PUT", "/v1/functions/api-echo", update).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["revision"], 2);
    let (_, result) = h
        .send_json(
            "POST",
            "/v1/functions/api-echo/invoke",
            json!({"payload": {}}),
        )
        .await;
    assert_eq!(result["payload"]["greeting"], "bonjour", "{result}");

    // Lambda's own REST path, as boto3 calls it.
    let (status, headers, bytes) = h
        .send(
            Request::post("/2015-03-31/functions/api-echo/invocations")
                .header("x-amz-log-type", "Tail")
                .body(Body::from(r#"{"value": 5}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse(&bytes)["echo"], 5);
    assert_eq!(headers["x-amz-executed-version"], "$LATEST");
    assert!(headers.get("x-amz-function-error").is_none());
    assert!(headers.contains_key("x-amz-log-result"));
    let (status, headers, bytes) = h
        .send(
            Request::post(
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aapi-echo/invocations",
            )
            .body(Body::from(r#"{"action": "raise"}"#))
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(parse(&bytes)["errorType"], "ValueError");
    let (status, headers, _) = h
        .send(
            Request::post("/2015-03-31/functions/nope/invocations")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-amzn-errortype"], "ResourceNotFoundException");
    let (status, _, _) = h
        .send(
            Request::post("/2015-03-31/functions/api-echo/invocations")
                .header("x-amz-invocation-type", "Event")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let (status, _) = h
        .send_json("DELETE", "/v1/functions/api-echo", json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = h.get("/v1/functions/api-echo").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sandboxes_are_stopped_and_started_again_on_demand() {
    use std::sync::Arc;
    use stepyard_workers::functions::{Functions, FunctionsConfig};
    let h = Harness::new().await;
    let temp = tempfile::tempdir().unwrap();
    let functions = Functions::open(FunctionsConfig {
        idle_timeout: Duration::from_millis(200),
        ..FunctionsConfig::new(
            temp.path().join("functions"),
            Arc::new(stepyard_api::runtime_api::LoopbackRuntimeApi),
        )
    })
    .unwrap();
    functions.create(h.spec("idle")).await.unwrap();
    let call = || {
        functions.invoke(
            "idle",
            Invoke {
                payload: Bytes::from_static(b"{}"),
                ..Invoke::default()
            },
        )
    };
    let first = ok(&call().await.unwrap());
    tokio::time::timeout(
        Duration::from_secs(20),
        functions.wait_for_sandboxes("idle", |n| n == 0),
    )
    .await
    .expect("the idle sandbox is stopped");
    let second = ok(&call().await.unwrap());
    assert_ne!(second["pid"], first["pid"], "a new process after reaping");
    assert_eq!(functions.pool_stats("idle").cold_starts, 2);
    functions.shutdown().await.unwrap();
}
