//! The `http` runtime: the event is POSTed as JSON to the function's URL.
//!
//! A 2xx answer's body is the result (empty is `null`). A function error is an answer whose body
//! is a Lambda-shaped error object (`{"errorType", "errorMessage"}`) with a non-2xx status or
//! the `X-Amz-Function-Error` header; any other non-2xx answer, or an unreachable endpoint, is
//! `Lambda.ServiceException` (429: `Lambda.TooManyRequestsException`), so the usual Lambda
//! Retry block retries it. Past the function's timeout the call is dropped: `Sandbox.Timedout`.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::functions::pool::Outcome;
use crate::functions::service::FunctionError;
use crate::functions::spec::Function;

/// Concurrency limit and queue of one `http` function.
pub(crate) struct HttpGate {
    running: Semaphore,
    waiting: AtomicUsize,
    max_queue: usize,
}

impl HttpGate {
    pub fn new(limit: usize, max_queue: usize) -> HttpGate {
        HttpGate {
            running: Semaphore::new(limit),
            waiting: AtomicUsize::new(0),
            max_queue,
        }
    }
}

/// `Err(message)`: throttled.
pub(crate) async fn invoke(
    client: &reqwest::Client,
    gate: &HttpGate,
    function: &Function,
    url: &str,
    request_id: &str,
    payload: Bytes,
    log: &mut Vec<String>,
) -> Result<Outcome, String> {
    if function.spec.reserved_concurrency == Some(0) {
        return Err(format!(
            "function '{}' has a reserved concurrency of 0",
            function.spec.name
        ));
    }
    let waiting = gate.waiting.fetch_add(1, Ordering::SeqCst);
    let max_queue = gate.max_queue;
    if gate.running.available_permits() == 0 && waiting >= max_queue {
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(format!(
            "function '{}' has {max_queue} invocations waiting (the limit)",
            function.spec.name
        ));
    }
    let permit = gate.running.acquire().await;
    gate.waiting.fetch_sub(1, Ordering::SeqCst);
    let _permit = permit.map_err(|_| "the function is being removed".to_string())?;
    let timeout = function.spec.timeout();
    let started = std::time::Instant::now();
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", request_id)
        .header("lambda-runtime-invoked-function-arn", &function.arn)
        .timeout(timeout)
        .body(payload)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) if e.is_timeout() => {
            return Ok(Err(timed_out(request_id, timeout)));
        }
        Err(e) => {
            log.push(format!("POST {url} failed: {e}"));
            return Ok(Err(FunctionError::new(
                "Lambda.ServiceException",
                request_id,
                &format!("cannot reach {url}: {e}"),
            )));
        }
    };
    let status = response.status();
    let function_error = response.headers().contains_key("x-amz-function-error");
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) if e.is_timeout() => return Ok(Err(timed_out(request_id, timeout))),
        Err(e) => {
            return Ok(Err(FunctionError::new(
                "Lambda.ServiceException",
                request_id,
                &format!("reading the answer of {url}: {e}"),
            )));
        }
    };
    log.push(format!(
        "POST {url} -> {} in {:.2} ms ({} bytes)",
        status.as_u16(),
        started.elapsed().as_secs_f64() * 1000.0,
        body.len()
    ));
    let lambda_shaped = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .is_some_and(|v| v.get("errorType").is_some_and(|t| t.is_string()));
    if function_error || (!status.is_success() && lambda_shaped) {
        return Ok(Err(FunctionError::from_runtime(None, body, request_id)));
    }
    if status.is_success() {
        return Ok(Ok(if body.is_empty() {
            Bytes::from_static(b"null")
        } else {
            body
        }));
    }
    let error_type = if status.as_u16() == 429 {
        "Lambda.TooManyRequestsException"
    } else {
        "Lambda.ServiceException"
    };
    let text = String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
    Ok(Err(FunctionError::new(
        error_type,
        request_id,
        &format!("{url} answered HTTP {}: {text}", status.as_u16()),
    )))
}

fn timed_out(request_id: &str, timeout: std::time::Duration) -> FunctionError {
    FunctionError::new(
        "Sandbox.Timedout",
        request_id,
        &format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
    )
}
