//! Running one sandbox: its Runtime API listener, its process with Lambda's environment, and
//! the reader that turns its output into log lines.

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;

use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use crate::functions::LATEST;
use crate::functions::logs::MAX_LINE_BYTES;
use crate::functions::pool::{Pool, Sandbox, SandboxApi, now_ms};

/// Runs the sandbox until its process ends (or is killed), then tells the pool.
pub(crate) async fn run_sandbox(pool: Arc<Pool>, sandbox: Arc<Sandbox>) {
    let Some((command, code_dir)) = pool.process_command() else {
        return;
    };
    let binding = match pool
        .settings
        .runtime_api
        .serve(SandboxApi(sandbox.clone()))
        .await
    {
        Ok(binding) => binding,
        Err(e) => {
            return pool.sandbox_failed_to_start(
                &sandbox,
                format!("cannot serve the Runtime API for a sandbox: {e}"),
            );
        }
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(pair) => pair,
        Err(e) => {
            return pool.sandbox_failed_to_start(&sandbox, format!("cannot create a pipe: {e}"));
        }
    };
    let spec = &pool.function.spec;
    let mut cmd = tokio::process::Command::new(&command[0]);
    cmd.args(&command[1..])
        .current_dir(code_dir)
        .env_clear()
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // Lambda's environment, and nothing of the server's (it may hold secrets) but PATH.
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let region = &pool.settings.region;
    let stream = format!(
        "{}/[{LATEST}]{:032x}",
        date_of(now_ms()),
        u128::from(sandbox.id) ^ (u128::from(now_ms()) << 64)
    );
    cmd.env("LANG", "en_US.UTF-8")
        .env("TZ", ":UTC")
        .env("LAMBDA_TASK_ROOT", code_dir)
        .env("LAMBDA_RUNTIME_DIR", code_dir)
        .env("AWS_LAMBDA_RUNTIME_API", binding.address.to_string())
        .env("_HANDLER", spec.handler.as_deref().unwrap_or(""))
        .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_size_mb.to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_VERSION", LATEST)
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", stream)
        .env("AWS_REGION", region)
        .env("AWS_DEFAULT_REGION", region)
        .envs(&spec.environment);
    let stdout = writer.try_clone().map(Stdio::from);
    match stdout {
        Ok(stdout) => {
            cmd.stdout(stdout).stderr(Stdio::from(writer));
        }
        Err(e) => {
            return pool.sandbox_failed_to_start(&sandbox, format!("cannot create a pipe: {e}"));
        }
    }
    let child = cmd.spawn();
    // The command holds the pipe's write ends: drop it so the reader sees EOF when the process ends.
    drop(cmd);
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            return pool.sandbox_failed_to_start(
                &sandbox,
                format!(
                    "cannot start {:?} in {}: {e}",
                    command[0],
                    code_dir.display()
                ),
            );
        }
    };
    let (sync_tx, sync_rx) = mpsc::unbounded_channel();
    sandbox.set_log_sync(sync_tx);
    let reader_task = match pipe::Receiver::from_owned_fd(OwnedFd::from(reader)) {
        Ok(receiver) => Some(tokio::spawn(read_lines(
            receiver,
            sync_rx,
            Arc::downgrade(&sandbox),
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a sandbox's output");
            None
        }
    };
    tracing::debug!(function = %spec.name, sandbox = sandbox.id, pid = ?child.id(), "sandbox started");
    let limit_bytes = u64::from(spec.memory_size_mb) * 1024 * 1024;
    let watchdog = watch_memory(child.id(), limit_bytes, &sandbox);
    let status = tokio::select! {
        status = child.wait() => status,
        () = sandbox.killed() => {
            let _ = child.start_kill();
            child.wait().await
        }
        () = watchdog => {
            tracing::info!(function = %spec.name, sandbox = sandbox.id, limit_mb = spec.memory_size_mb, "sandbox out of memory: killed");
            sandbox.set_out_of_memory();
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let reason = match status {
        Ok(status) => status.to_string(),
        Err(e) => e.to_string(),
    };
    // Everything the process wrote is in the pipe now; read it before the sandbox is retired.
    sandbox.drain_logs().await;
    if let Some(task) = reader_task {
        task.abort();
    }
    drop(binding);
    tracing::debug!(function = %spec.name, sandbox = sandbox.id, %reason, "sandbox ended");
    pool.sandbox_exited(&sandbox, reason);
}

/// How often the memory watchdog reads a busy sandbox's resident memory.
const MEMORY_POLL: std::time::Duration = std::time::Duration::from_millis(25);

/// Returns when the process (and its children) hold more resident memory than `limit_bytes`
/// while an invocation runs: Lambda's memory size, enforced by reading `/proc` (no cgroups,
/// no `unsafe`). Never returns where `/proc` cannot be read.
async fn watch_memory(pid: Option<u32>, limit_bytes: u64, sandbox: &Sandbox) {
    let Some(pid) = pid else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(MEMORY_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !sandbox.busy() {
            continue;
        }
        match resident_bytes(pid) {
            Some(bytes) if bytes > limit_bytes => return,
            Some(_) => {}
            None => return std::future::pending().await,
        }
    }
}

/// `VmRSS` of `pid` and its descendants (through `/proc/<pid>/task/*/children` where the
/// kernel has it), in bytes; `None` if `pid` cannot be read.
fn resident_bytes(pid: u32) -> Option<u64> {
    let mut total = vm_rss(pid)?;
    let mut pending = children(pid);
    let mut seen = 0;
    while let Some(child) = pending.pop() {
        seen += 1;
        if seen > 1024 {
            break;
        }
        total += vm_rss(child).unwrap_or(0);
        pending.extend(children(child));
    }
    Some(total)
}

fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Reads the process's output into lines; on a sync request, reads whatever the pipe holds
/// right now before acknowledging (the process wrote it before it posted its answer).
async fn read_lines(
    receiver: pipe::Receiver,
    mut sync: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    sandbox: std::sync::Weak<Sandbox>,
) {
    let mut partial: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut eof = false;
    let emit = |partial: &mut Vec<u8>, flush: bool| {
        let Some(sandbox) = sandbox.upgrade() else {
            partial.clear();
            return;
        };
        while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = partial.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            line.truncate(MAX_LINE_BYTES);
            sandbox.on_line(String::from_utf8_lossy(&line).into_owned());
        }
        if partial.len() > MAX_LINE_BYTES || (flush && !partial.is_empty()) {
            let mut line = std::mem::take(partial);
            line.truncate(MAX_LINE_BYTES);
            sandbox.on_line(String::from_utf8_lossy(&line).into_owned());
        }
    };
    let mut drain = |partial: &mut Vec<u8>, eof: &mut bool| {
        loop {
            match receiver.try_read(&mut buf) {
                Ok(0) => {
                    *eof = true;
                    break;
                }
                Ok(n) => partial.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    *eof = true;
                    break;
                }
            }
        }
    };
    loop {
        if eof {
            emit(&mut partial, true);
            // Nothing more will come: acknowledge syncs at once until the sandbox is gone.
            while let Some(ack) = sync.recv().await {
                let _ = ack.send(());
            }
            return;
        }
        tokio::select! {
            biased;
            request = sync.recv() => {
                drain(&mut partial, &mut eof);
                emit(&mut partial, eof);
                match request {
                    Some(ack) => { let _ = ack.send(()); }
                    None => return,
                }
            }
            ready = receiver.readable() => {
                if ready.is_err() {
                    eof = true;
                    continue;
                }
                drain(&mut partial, &mut eof);
                emit(&mut partial, eof);
            }
        }
    }
}

/// `YYYY/MM/DD` of a Unix time in ms (the log stream name's prefix).
fn date_of(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}/{m:02}/{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_of_epoch_ms() {
        assert_eq!(super::date_of(0), "1970/01/01");
        assert_eq!(super::date_of(1_700_000_000_000), "2023/11/14");
    }
}
