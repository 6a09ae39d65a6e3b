//! A bounded HTTP load generator for a running Stepyard server on loopback.
//!
//! It starts no server: point it at one (`stepyard serve --listen 127.0.0.1:PORT ...`).
//!
//! ```text
//! cargo run --release -p stepyard-api --example loadgen -- \
//!     --url http://127.0.0.1:8080 --mode sync-express --concurrency 64 --duration 10
//! ```
//!
//! Modes, both over the AWS JSON 1.0 protocol on `POST /`:
//! - `sync-express`: `AWSStepFunctions.StartSyncExecution` of a 10-Pass EXPRESS chain; a response
//!   counts as a success only when it is 200 with `"status":"SUCCEEDED"`.
//! - `start-standard`: `AWSStepFunctions.StartExecution` of a 10-Pass STANDARD chain; after the load
//!   it waits (bounded by `--drain-timeout`) until none of them is RUNNING and counts the SUCCEEDED.
//!
//! Each run creates its own state machine (a fresh name), so runs against one server do not mix.
//! It stops by itself after `--duration` seconds or `--count` requests, whichever comes first, and
//! prints requests/s, p50/p90/p99/max latency and errors, then one `RESULT {json}` line for scripts.
//!
//! Two clients: `raw` (default) is a minimal keep-alive HTTP/1.1 client over tokio's TCP stream,
//! cheap enough that on a small machine most of the CPU goes to the server; `reqwest` is the
//! ordinary client, for comparison.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USAGE: &str = "usage: loadgen --url http://127.0.0.1:PORT --mode sync-express|start-standard
               [--concurrency N (64)] [--duration SECONDS (10)] [--count N (no limit)]
               [--warmup SECONDS (1)] [--client raw|reqwest (raw)] [--drain-timeout SECONDS (120)]";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    SyncExpress,
    StartStandard,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::SyncExpress => "sync-express",
            Mode::StartStandard => "start-standard",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ClientKind {
    Raw,
    Reqwest,
}

#[derive(Debug)]
struct Options {
    url: String,
    addr: SocketAddr,
    mode: Mode,
    concurrency: usize,
    duration: Duration,
    count: Option<u64>,
    warmup: Duration,
    client: ClientKind,
    drain_timeout: Duration,
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut mode = None;
    let mut concurrency = 64usize;
    let mut duration = 10.0f64;
    let mut count = None;
    let mut warmup = 1.0f64;
    let mut client = ClientKind::Raw;
    let mut drain_timeout = 120.0f64;
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{what}: not a non-negative number: {value}"))
        };
        match flag.as_str() {
            "--url" => url = Some(value.trim_end_matches('/').to_owned()),
            "--mode" => {
                mode = Some(match value.as_str() {
                    "sync-express" => Mode::SyncExpress,
                    "start-standard" => Mode::StartStandard,
                    other => return Err(format!("unknown mode {other}")),
                })
            }
            "--concurrency" => concurrency = number("--concurrency")? as usize,
            "--duration" => duration = number("--duration")?,
            "--count" => count = Some(number("--count")? as u64),
            "--warmup" => warmup = number("--warmup")?,
            "--drain-timeout" => drain_timeout = number("--drain-timeout")?,
            "--client" => {
                client = match value.as_str() {
                    "raw" => ClientKind::Raw,
                    "reqwest" => ClientKind::Reqwest,
                    other => return Err(format!("unknown client {other}")),
                }
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let mode = mode.ok_or("--mode is required")?;
    if concurrency == 0 || concurrency > 4096 {
        return Err("--concurrency must be 1..=4096".into());
    }
    if duration <= 0.0 || duration > 3600.0 {
        return Err("--duration must be in (0, 3600] seconds".into());
    }
    let host_port = url
        .strip_prefix("http://")
        .ok_or("--url must start with http://")?;
    if host_port.contains('/') {
        return Err("--url must be the server root (http://HOST:PORT)".into());
    }
    let addr = host_port
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {host_port}: {err}"))?
        .find(|addr| addr.ip().is_loopback())
        .ok_or("the load generator only targets loopback (127.0.0.1, ::1, localhost)")?;
    Ok(Options {
        url,
        addr,
        mode,
        concurrency,
        duration: Duration::from_secs_f64(duration),
        count,
        warmup: Duration::from_secs_f64(warmup.min(60.0)),
        client,
        drain_timeout: Duration::from_secs_f64(drain_timeout.min(3600.0)),
    })
}

/// A 10-Pass chain: P0 -> P1 -> ... -> P9 (End).
fn ten_pass_definition() -> String {
    let mut states = serde_json::Map::new();
    for i in 0..10 {
        let mut state =
            json!({"Type": "Pass", "Result": {"step": i}, "ResultPath": format!("$.p{i}")});
        if i < 9 {
            state["Next"] = json!(format!("P{}", i + 1));
        } else {
            state["End"] = json!(true);
        }
        states.insert(format!("P{i}"), state);
    }
    json!({"Comment": "loadgen: 10 Pass states", "StartAt": "P0", "States": states}).to_string()
}

// ---------------------------------------------------------------------------------------------
// Clients

/// One response: status code and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 keep-alive connection: enough for the server's fixed-length JSON answers
/// (chunked bodies are read too).
struct RawConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl RawConn {
    fn new(addr: SocketAddr) -> Self {
        RawConn {
            addr,
            stream: None,
            buf: Vec::with_capacity(8192),
        }
    }

    async fn post(&mut self, target: &str, body: &[u8]) -> Result<Answer, String> {
        // A dropped keep-alive connection gets one retry on a fresh one, before any byte came back.
        let reused = self.stream.is_some();
        match self.post_once(target, body).await {
            Err(err) if reused && err.starts_with("closed") => {
                self.stream = None;
                self.post_once(target, body).await
            }
            other => other,
        }
    }

    async fn post_once(&mut self, target: &str, body: &[u8]) -> Result<Answer, String> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|err| format!("connect: {err}"))?;
            stream.set_nodelay(true).map_err(|err| err.to_string())?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        let mut request = Vec::with_capacity(256 + body.len());
        request.extend_from_slice(
            format!(
                "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: {target}\r\ncontent-length: {}\r\n\r\n",
                self.addr,
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(body);
        if let Err(err) = stream.write_all(&request).await {
            self.stream = None;
            return Err(format!("closed: write: {err}"));
        }
        match read_response(stream, &mut self.buf).await {
            Ok((answer, keep_alive)) => {
                if !keep_alive {
                    self.stream = None;
                }
                Ok(answer)
            }
            Err(err) => {
                self.stream = None;
                Err(err)
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, first: bool) -> Result<(), String> {
    let mut chunk = [0u8; 16384];
    let n = stream
        .read(&mut chunk)
        .await
        .map_err(|err| format!("read: {err}"))?;
    if n == 0 {
        return Err(if first && buf.is_empty() {
            "closed: before the response".into()
        } else {
            "connection closed mid-response".into()
        });
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Reads one response from `stream`; `buf` keeps bytes that arrived beyond it (none, without
/// pipelining, but harmless).
async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(Answer, bool), String> {
    let mut first = true;
    let head_end = loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos;
        }
        fill(stream, buf, first).await?;
        first = false;
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "non-UTF-8 response head")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    let mut keep_alive = true;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    let body_start = head_end + 4;
    let body = if chunked {
        let mut body = Vec::new();
        let mut pos = body_start;
        loop {
            let line_end = loop {
                if let Some(i) = find(&buf[pos..], b"\r\n") {
                    break pos + i;
                }
                fill(stream, buf, false).await?;
            };
            let size_text = std::str::from_utf8(&buf[pos..line_end]).unwrap_or("");
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            let data_start = line_end + 2;
            while buf.len() < data_start + size + 2 {
                fill(stream, buf, false).await?;
            }
            body.extend_from_slice(&buf[data_start..data_start + size]);
            pos = data_start + size + 2;
            if size == 0 {
                // No trailers are expected; the final CRLF was consumed above.
                break;
            }
        }
        buf.drain(..pos);
        body
    } else {
        let length = content_length.unwrap_or(0);
        while buf.len() < body_start + length {
            fill(stream, buf, false).await?;
        }
        let body = buf[body_start..body_start + length].to_vec();
        buf.drain(..body_start + length);
        body
    };
    Ok((Answer { status, body }, keep_alive))
}

enum Client {
    Raw(RawConn),
    Reqwest(reqwest::Client, String),
}

impl Client {
    fn new(options: &Options, shared: &reqwest::Client) -> Self {
        match options.client {
            ClientKind::Raw => Client::Raw(RawConn::new(options.addr)),
            ClientKind::Reqwest => Client::Reqwest(shared.clone(), format!("{}/", options.url)),
        }
    }

    async fn call(&mut self, operation: &str, body: &[u8]) -> Result<Answer, String> {
        let target = format!("AWSStepFunctions.{operation}");
        match self {
            Client::Raw(conn) => conn.post(&target, body).await,
            Client::Reqwest(client, url) => {
                let response = client
                    .post(url.as_str())
                    .header("content-type", "application/x-amz-json-1.0")
                    .header("x-amz-target", target)
                    .body(body.to_vec())
                    .send()
                    .await
                    .map_err(|err| format!("send: {err}"))?;
                let status = response.status().as_u16();
                let body = response
                    .bytes()
                    .await
                    .map_err(|err| format!("body: {err}"))?;
                Ok(Answer {
                    status,
                    body: body.to_vec(),
                })
            }
        }
    }

    /// One call whose answer must be 200 with a JSON body.
    async fn json(&mut self, operation: &str, body: &Value) -> Result<Value, String> {
        let answer = self.call(operation, body.to_string().as_bytes()).await?;
        if answer.status != 200 {
            return Err(format!(
                "{operation}: HTTP {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        serde_json::from_slice(&answer.body).map_err(|err| format!("{operation}: bad JSON: {err}"))
    }
}

// ---------------------------------------------------------------------------------------------
// The run

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

fn classify(mode: Mode, result: &Result<Answer, String>) -> Option<String> {
    match result {
        Err(err) => Some(format!(
            "transport: {}",
            err.split(':').next().unwrap_or(err)
        )),
        Ok(answer) if answer.status != 200 => {
            let kind = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|body| {
                    body.get("__type")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            Some(format!("HTTP {} {kind}", answer.status))
        }
        Ok(answer) if mode == Mode::SyncExpress => {
            // A sync execution answers 200 whatever its outcome: the status field tells.
            if find(&answer.body, br#""status":"SUCCEEDED""#).is_some() {
                None
            } else {
                Some("execution not SUCCEEDED".into())
            }
        }
        Ok(_) => None,
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

async fn create_state_machine(client: &mut Client, mode: Mode) -> Result<String, String> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let (prefix, kind) = match mode {
        Mode::SyncExpress => ("loadgen-express", "EXPRESS"),
        Mode::StartStandard => ("loadgen-standard", "STANDARD"),
    };
    let created = client
        .json(
            "CreateStateMachine",
            &json!({
                "name": format!("{prefix}-{stamp}-{}", std::process::id()),
                "definition": ten_pass_definition(),
                "roleArn": "arn:aws:iam::123456789012:role/loadgen",
                "type": kind,
            }),
        )
        .await?;
    created["stateMachineArn"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "CreateStateMachine: no stateMachineArn".into())
}

/// Counts the executions of `arn` in `status`, paging through ListExecutions.
async fn count_executions(client: &mut Client, arn: &str, status: &str) -> Result<u64, String> {
    let mut total = 0u64;
    let mut next_token: Option<String> = None;
    loop {
        let mut request =
            json!({"stateMachineArn": arn, "statusFilter": status, "maxResults": 1000});
        if let Some(token) = &next_token {
            request["nextToken"] = json!(token);
        }
        let page = client.json("ListExecutions", &request).await?;
        total += page["executions"].as_array().map_or(0, Vec::len) as u64;
        match page["nextToken"].as_str() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => return Ok(total),
        }
    }
}

async fn any_running(client: &mut Client, arn: &str) -> Result<bool, String> {
    let page = client
        .json(
            "ListExecutions",
            &json!({"stateMachineArn": arn, "statusFilter": "RUNNING", "maxResults": 1}),
        )
        .await?;
    Ok(page["executions"]
        .as_array()
        .is_some_and(|list| !list.is_empty()))
}

async fn run(options: Options) -> Result<bool, String> {
    let shared = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .tcp_nodelay(true)
        .build()
        .map_err(|err| err.to_string())?;
    let mut control = Client::new(&options, &shared);
    let arn = create_state_machine(&mut control, options.mode).await?;
    let operation = match options.mode {
        Mode::SyncExpress => "StartSyncExecution",
        Mode::StartStandard => "StartExecution",
    };
    let body: Arc<[u8]> = json!({"stateMachineArn": arn, "input": "{\"n\":1}"})
        .to_string()
        .into_bytes()
        .into();
    eprintln!(
        "loadgen: {} against {} ({operation}, {arn}), concurrency {}, {:?} (+{:?} warm-up), client {:?}",
        options.mode.as_str(),
        options.url,
        options.concurrency,
        options.duration,
        options.warmup,
        options.client
    );

    let options = Arc::new(options);
    // Warm-up: open the connections and let the server settle; not measured. Its executions count
    // in the drain check of start-standard.
    let warm_sent = Arc::new(AtomicU64::new(0));
    let warm_started = Instant::now();
    if !options.warmup.is_zero() {
        let until = Instant::now() + options.warmup;
        let mut tasks = Vec::new();
        for _ in 0..options.concurrency {
            let mut client = Client::new(&options, &shared);
            let body = body.clone();
            let warm_sent = warm_sent.clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    if client
                        .call(operation, &body)
                        .await
                        .is_ok_and(|a| a.status == 200)
                    {
                        warm_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    let warm_elapsed = warm_started.elapsed();
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut tasks = Vec::new();
    for _ in 0..options.concurrency {
        let mut client = Client::new(&options, &shared);
        let body = body.clone();
        let issued = issued.clone();
        let stop = stop.clone();
        let options = options.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = WorkerResult {
                latencies_us: Vec::with_capacity(65536),
                ..WorkerResult::default()
            };
            loop {
                if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    break;
                }
                if let Some(limit) = options.count
                    && issued.fetch_add(1, Ordering::Relaxed) >= limit
                {
                    break;
                }
                let sent = Instant::now();
                let result = client.call(operation, &body).await;
                let elapsed = sent.elapsed();
                match classify(options.mode, &result) {
                    None => out
                        .latencies_us
                        .push(elapsed.as_micros().min(u32::MAX as u128) as u32),
                    Some(kind) => *out.errors.entry(kind).or_default() += 1,
                }
            }
            out
        }));
    }
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        let out = task
            .await
            .map_err(|err| format!("worker panicked: {err}"))?;
        latencies.extend(out.latencies_us);
        for (kind, n) in out.errors {
            *errors.entry(kind).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    latencies.sort_unstable();
    let ok = latencies.len() as u64;
    let error_count: u64 = errors.values().sum();
    let rps = ok as f64 / elapsed.as_secs_f64();
    let (p50, p90, p99, max) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
    );
    println!(
        "{}: {ok} ok, {error_count} errors in {:.2} s = {rps:.0} req/s; latency p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        options.mode.as_str(),
        elapsed.as_secs_f64()
    );
    for (kind, n) in &errors {
        println!("  error {kind}: {n}");
    }

    let mut result = json!({
        "mode": options.mode.as_str(),
        "client": format!("{:?}", options.client).to_lowercase(),
        "concurrency": options.concurrency,
        "seconds": elapsed.as_secs_f64(),
        "ok": ok,
        "errors": error_count,
        "error_kinds": errors,
        "rps": rps,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": max,
        "warmup_requests": warm_sent.load(Ordering::Relaxed),
    });
    let mut success = error_count == 0 && ok > 0;

    if options.mode == Mode::StartStandard {
        // Every accepted StartExecution (warm-up included) must reach SUCCEEDED.
        let expected = ok + warm_sent.load(Ordering::Relaxed);
        let drain_started = Instant::now();
        let drain_deadline = drain_started + options.drain_timeout;
        let mut drained = false;
        while Instant::now() < drain_deadline {
            if !any_running(&mut control, &arn).await? {
                drained = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let drain = drain_started.elapsed();
        let succeeded = count_executions(&mut control, &arn, "SUCCEEDED").await?;
        // From the first start (warm-up included) to the last completion.
        let completed_per_s = succeeded as f64 / (warm_elapsed + elapsed + drain).as_secs_f64();
        println!(
            "start-standard: {succeeded}/{expected} SUCCEEDED; all done {:.2} s after the last start{}; {completed_per_s:.0} completed/s from the first start (warm-up included) to the last completion",
            drain.as_secs_f64(),
            if drained {
                ""
            } else {
                " (drain timeout: some still RUNNING)"
            }
        );
        result["expected"] = json!(expected);
        result["succeeded"] = json!(succeeded);
        result["drain_seconds"] = json!(drain.as_secs_f64());
        result["drained"] = json!(drained);
        result["completed_per_s"] = json!(completed_per_s);
        success &= drained && succeeded == expected;
    }
    println!("RESULT {result}");
    Ok(success)
}

fn main() -> std::process::ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("loadgen: {message}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("loadgen: cannot start tokio: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(err) => {
            eprintln!("loadgen: {err}");
            std::process::ExitCode::from(2)
        }
    }
}
