//! A minimal SMTP server on 127.0.0.1 that hands every mail it accepts to the test, for the
//! tests of email subscriptions. Included with `#[path]` by the test binaries that need it.

// Each including binary uses part of it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Debug)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        head.split("\r\n").find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn body(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        if self
            .header("Content-Transfer-Encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"))
        {
            quoted_printable(body)
        } else {
            body.to_string()
        }
    }
}

fn quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub struct SmtpSink {
    pub port: u16,
    rx: mpsc::UnboundedReceiver<Mail>,
    wait: Duration,
}

impl SmtpSink {
    /// Accepts every recipient but those in `reject` (answered `550`); `next` waits up to
    /// `wait` for a mail.
    pub async fn start(reject: &[&str], wait: Duration) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let reject: Arc<HashSet<String>> = Arc::new(reject.iter().map(|s| s.to_string()).collect());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let tx = tx.clone();
                let reject = reject.clone();
                tokio::spawn(async move {
                    let _ = smtp_session(socket, &reject, &tx).await;
                });
            }
        });
        SmtpSink { port, rx, wait }
    }

    pub async fn next(&mut self) -> Mail {
        tokio::time::timeout(self.wait, self.rx.recv())
            .await
            .expect("a mail arrives in time")
            .expect("sink is up")
    }

    /// The relay address for the server's `--smtp-relay`.
    pub fn relay(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn smtp_session(
    socket: tokio::net::TcpStream,
    reject: &HashSet<String>,
    tx: &mpsc::UnboundedSender<Mail>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 sink.localhost ESMTP test sink\r\n")
        .await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink.localhost\r\n",
            "MAIL" => {
                to.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" => {
                let addr = command
                    .split_once('<')
                    .and_then(|(_, r)| r.split_once('>'))
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_default();
                if reject.contains(&addr) {
                    b"550 5.1.1 no such mailbox here\r\n"
                } else {
                    to.push(addr);
                    b"250 2.1.5 OK\r\n"
                }
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let _ = tx.send(Mail {
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 2.0.0 queued\r\n"
            }
            "RSET" | "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}
