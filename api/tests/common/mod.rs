//! Starts the real `stepyard` binary on a free port with a temp data folder.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub base_url: String,
    pub data_dir: PathBuf,
    /// Every stderr line the server printed after the "listening" line.
    pub log: mpsc::Receiver<String>,
    _temp: Option<tempfile::TempDir>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_stepyard")
}

impl Server {
    /// A server on its own temp data folder.
    pub fn start() -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut server = Server::start_with(&data_dir, &[], &[]);
        server._temp = Some(temp);
        server
    }

    /// A server on `data_dir` with extra arguments and environment; panics if it does not come up.
    pub fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if !args.contains(&"--listen") && !env.iter().any(|(k, _)| *k == "STEPYARD_LISTEN") {
            command.arg("--listen").arg("127.0.0.1:0");
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn stepyard");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let base_url = loop {
            let line = receiver
                .recv_timeout(Duration::from_secs(30))
                .expect("server printed no 'listening' line within 30 s");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        };
        Server {
            child,
            base_url,
            data_dir: data_dir.to_owned(),
            log: receiver,
            _temp: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        let lines = self.log.try_iter().collect();
        (exit, lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
