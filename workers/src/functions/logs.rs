//! One invocation's log lines, bounded.

use serde::{Deserialize, Serialize};

/// The most log text kept per invocation; later lines are dropped and `truncated` is set.
pub(crate) const MAX_LOG_BYTES: usize = 256 * 1024;
/// Longer lines are cut (a runaway print without newlines cannot grow a buffer unbounded).
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024;

/// Lines collected while an invocation runs (or while a sandbox is between invocations).
#[derive(Debug, Default)]
pub(crate) struct LogBuffer {
    pub lines: Vec<String>,
    pub bytes: usize,
    pub truncated: bool,
}

impl LogBuffer {
    pub fn push(&mut self, line: String) {
        if self.bytes + line.len() > MAX_LOG_BYTES {
            self.truncated = true;
            return;
        }
        self.bytes += line.len();
        self.lines.push(line);
    }

    pub fn append(&mut self, other: LogBuffer) {
        self.truncated |= other.truncated;
        for line in other.lines {
            self.push(line);
        }
    }
}

/// A finished (or running) invocation's logs, as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationLog {
    pub request_id: String,
    pub function: String,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    /// `None` while running or on success; the error name otherwise.
    pub error: Option<String>,
    /// For invocations made by a Task state.
    pub execution_arn: Option<String>,
    pub state_name: Option<String>,
    pub attempt: Option<u32>,
    pub lines: Vec<String>,
    pub truncated: bool,
}

impl InvocationLog {
    /// The last `max` bytes of the text, on a line boundary (Lambda's `LogType: Tail`).
    pub fn tail(&self, max: usize) -> String {
        let mut out: Vec<&str> = Vec::new();
        let mut size = 0;
        for line in self.lines.iter().rev() {
            if size + line.len() + 1 > max {
                break;
            }
            size += line.len() + 1;
            out.push(line);
        }
        out.reverse();
        let mut text = out.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_is_bounded_and_tail_keeps_whole_lines() {
        let mut buffer = LogBuffer::default();
        let line = "x".repeat(1000);
        for _ in 0..300 {
            buffer.push(line.clone());
        }
        assert!(buffer.truncated);
        assert!(buffer.bytes <= MAX_LOG_BYTES);
        let log = InvocationLog {
            request_id: "r".into(),
            function: "f".into(),
            started_ms: 0,
            ended_ms: None,
            error: None,
            execution_arn: None,
            state_name: None,
            attempt: None,
            lines: vec!["one".into(), "two".into(), "three".into()],
            truncated: false,
        };
        assert_eq!(log.tail(4096), "one\ntwo\nthree\n");
        assert_eq!(log.tail(9), "three\n");
    }
}
