//! The real binary, started as a user would start it.

mod common;

use std::process::{Command, Stdio};

use common::Server;

fn get(url: &str) -> reqwest::blocking::Response {
    reqwest::blocking::get(url).unwrap_or_else(|err| panic!("GET {url}: {err}"))
}

#[test]
fn healthz_answers_ok() {
    let server = Server::start();
    let response = get(&server.url("/healthz"));
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["status"], "ok");
}

#[test]
fn openapi_document_is_3_1_with_the_servers_paths() {
    let server = Server::start();
    let response = get(&server.url("/openapi.json"));
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Stepyard");
    for (path, method) in [
        ("/healthz", "get"),
        ("/v1/state-machines", "post"),
        ("/v1/state-machines/{name}/executions", "post"),
        ("/v1/activities/{name}/poll", "post"),
        ("/v1/event-buses/{bus}/events", "post"),
        ("/v1/functions", "post"),
        ("/v1/task-definitions", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing from the document"
        );
    }
}

#[test]
fn swagger_ui_is_served_from_the_server_itself() {
    let server = Server::start();
    let page = get(&server.url("/docs/"));
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    // The assets come from this server, not a CDN: no network is needed to render the page.
    assert!(!html.contains("https://"), "{html}");
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let response = get(&server.url(&format!("/docs/{asset}")));
        assert_eq!(response.status(), 200, "{asset}");
        let text = response.text().unwrap();
        assert!(text.len() > 100, "{asset} is too short");
        if asset == "swagger-initializer.js" {
            assert!(text.contains("/openapi.json"), "{text}");
        }
    }
}

#[test]
fn unknown_route_gets_the_error_body() {
    let server = Server::start();
    let response = get(&server.url("/no/such/thing"));
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["code"], "RouteNotFound");
    assert!(response_has_no_internals(&body));
}

fn response_has_no_internals(body: &serde_json::Value) -> bool {
    !body.to_string().contains("src/")
}

#[test]
fn requests_are_logged_one_line_each_with_method_path_status_latency() {
    let server = Server::start();
    let response = get(&server.url("/healthz"));
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_owned();
    let (status, lines) = server.terminate();
    assert!(status.success());
    let line = lines
        .iter()
        .find(|line| line.contains(&request_id))
        .unwrap_or_else(|| panic!("no log line with the request id in {lines:#?}"));
    for part in ["method=GET", "path=/healthz", "status=200", "latency_us="] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
}

#[test]
fn sigterm_shuts_down_cleanly_and_flushes() {
    let server = Server::start();
    assert_eq!(get(&server.url("/healthz")).status(), 200);
    let (status, lines) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        lines.iter().any(|line| line.contains("stopped")),
        "{lines:#?}"
    );
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &temp.path().join("data"),
        &[],
        &[("RUST_LOG", "info,stepyard::http=debug")],
    );
    let client = reqwest::blocking::Client::new();
    let created = client
        .post(server.url("/v1/activities"))
        .json(&serde_json::json!({"name": "slow"}))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let poll_url = server.url("/v1/activities/slow/poll?wait_seconds=2");
    let poll = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(poll_url)
            .send()
            .map(|r| r.status())
    });
    // The long poll is being handled once the server logs its start.
    loop {
        let line = server
            .log
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the poll reaches the server");
        if line.contains("request started") && line.contains("/v1/activities/slow/poll") {
            break;
        }
    }
    let (status, lines) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let answered = poll
        .join()
        .unwrap()
        .expect("the in-flight poll got an answer");
    // No task came in the 2 s: the poll's normal empty answer, given after the SIGTERM.
    assert_eq!(answered, 204, "{lines:#?}");
    let sigterm = lines.iter().position(|l| l.contains("SIGTERM received"));
    let answer = lines
        .iter()
        .position(|l| l.contains("path=/v1/activities/slow/poll"));
    assert!(sigterm < answer && sigterm.is_some(), "{lines:#?}");
}

#[test]
fn second_server_on_the_same_data_dir_fails_with_one_line_naming_the_folder() {
    let server = Server::start();
    let output = Command::new(common::binary())
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(&server.data_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run second server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("stepyard: "), "{stderr}");
    assert!(
        last.contains(&server.data_dir.display().to_string()),
        "{stderr}"
    );
    assert!(last.contains("in use"), "{stderr}");
    // The first server is unharmed.
    assert_eq!(get(&server.url("/healthz")).status(), 200);
}

#[test]
fn config_file_env_and_flags_layer_in_that_order() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("stepyard.toml");
    let file_dir = temp.path().join("from-file");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:1\"\ndata_dir = {:?}\n",
            file_dir.display().to_string()
        ),
    )
    .unwrap();
    // The file sets data_dir and listen; the environment overrides listen.
    let mut command = Command::new(common::binary());
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("STEPYARD_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("listening on"))
        .expect("listening line");
    assert!(listening.contains("127.0.0.1:"), "{listening}");
    assert!(!listening.contains("127.0.0.1:1 "), "{listening}");
    assert!(file_dir.exists(), "data dir from the file was not used");
    child.kill().unwrap();
    child.wait().unwrap();

    // A flag beats the environment.
    let flag_dir = temp.path().join("from-flag");
    let server = Server::start_with(
        &flag_dir,
        &["--config", config.to_str().unwrap()],
        &[("STEPYARD_DATA_DIR", "/nonexistent/should-not-be-used")],
    );
    assert!(flag_dir.exists());
    drop(server);
}

#[test]
fn bad_config_is_a_clear_error() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("bad.toml");
    std::fs::write(&config, "lisen = \"127.0.0.1:0\"\n").unwrap();
    let output = Command::new(common::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lisen"), "{stderr}");
}
