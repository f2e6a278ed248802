//! A program's output. stdout is its result, read whole up to
//! `max_output_bytes`. stderr is read line by line: a line that is a JSON
//! object with a numeric `progress` reports progress; every other line is
//! the log, of which a bounded tail is kept for the error message. Going
//! past `max_output_bytes` on either stream stops the read (and, through
//! `overflowed`, the program).

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio_util::sync::CancellationToken;

use crate::kinds::{Outcome, TaskError};
use crate::tasks::Progress;

/// The exit code that means "do not retry": EX_DATAERR from sysexits.h,
/// "the input data was incorrect".
pub(super) const PERMANENT_EXIT_CODE: i32 = 65;

/// The exit code that means "not yet: look again later", with
/// `{"snooze": seconds}` on stdout: EX_TEMPFAIL from sysexits.h, "a
/// temporary failure; the user is invited to retry".
pub(super) const SNOOZE_EXIT_CODE: i32 = 75;

/// Longest stderr line handled whole; the rest of a longer one is dropped.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Longest log line kept in the tail, in characters.
const MAX_TAIL_LINE_CHARS: usize = 300;
/// Most characters of log kept for the error message.
const MAX_TAIL_CHARS: usize = 1500;
/// After the program has ended, how long its pipes may take to close (a
/// process that left its group can hold them open for ever).
const DRAIN: Duration = Duration::from_secs(2);

/// A stream went past `max_output_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Exceeded;

/// How the readers are bounded and told to stop.
pub(super) struct Reading {
    pub limit: usize,
    /// Cancelled by a reader that went past `limit`.
    pub overflowed: CancellationToken,
    /// Cancelled once the program has ended: the pipes get [`DRAIN`] more.
    pub finished: CancellationToken,
}

impl Reading {
    /// The next chunk, or `None` at the end of the stream (or when the
    /// drain time after the program's end is over).
    async fn chunk(&self, pipe: &mut (impl AsyncRead + Unpin), buf: &mut [u8]) -> Option<usize> {
        let abandon = async {
            self.finished.cancelled().await;
            tokio::time::sleep(DRAIN).await;
        };
        tokio::select! {
            read = pipe.read(buf) => read.ok().filter(|n| *n > 0),
            () = abandon => None,
        }
    }

    /// Counts `n` more bytes of a stream: past the limit, the program must stop.
    fn count(&self, total: &mut usize, n: usize) -> Result<(), Exceeded> {
        *total += n;
        if *total > self.limit {
            self.overflowed.cancel();
            return Err(Exceeded);
        }
        Ok(())
    }
}

/// Reads stdout to its end.
pub(super) async fn read_stdout(
    mut pipe: impl AsyncRead + Unpin,
    reading: &Reading,
) -> Result<Vec<u8>, Exceeded> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    while let Some(n) = reading.chunk(&mut pipe, &mut buf).await {
        reading.count(&mut total, n)?;
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// Reads stderr to its end: progress lines go to `report`, the rest to the
/// tail it returns.
pub(super) async fn read_stderr(
    mut pipe: impl AsyncRead + Unpin,
    reading: &Reading,
    report: impl Fn(Progress),
) -> Result<LogTail, Exceeded> {
    let mut tail = LogTail::default();
    let mut line = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end_matches('\r');
        match progress_of(text) {
            Some(progress) => report(progress),
            None => tail.push(text),
        }
    };
    let mut buf = vec![0u8; 16 * 1024];
    let (mut pending, mut skipping, mut total) = (Vec::new(), false, 0);
    while let Some(n) = reading.chunk(&mut pipe, &mut buf).await {
        reading.count(&mut total, n)?;
        let mut rest = &buf[..n];
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            if !skipping {
                pending.extend_from_slice(&rest[..end]);
                line(&pending);
            }
            (pending, skipping) = (Vec::new(), false);
            rest = &rest[end + 1..];
        }
        if !skipping {
            pending.extend_from_slice(rest);
            if pending.len() > MAX_LINE_BYTES {
                line(&pending[..MAX_LINE_BYTES]);
                (pending, skipping) = (Vec::new(), true);
            }
        }
    }
    if !pending.is_empty() && !skipping {
        line(&pending);
    }
    Ok(tail)
}

/// A progress report, if the line is one: `{"progress": 0.4, "message": "…"}`.
fn progress_of(line: &str) -> Option<Progress> {
    if !line.trim_start().starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(line).ok()?;
    let fraction = value.get("progress")?.as_f64()?;
    let message = value.get("message").and_then(Value::as_str);
    Some(Progress::new(fraction, message.map(str::to_string)))
}

/// The last lines of a program's log, at most [`MAX_TAIL_CHARS`].
#[derive(Debug, Default)]
pub(super) struct LogTail {
    lines: VecDeque<String>,
    chars: usize,
}

impl LogTail {
    fn push(&mut self, line: &str) {
        tracing::debug!(line, "program log");
        let line: String = line.chars().take(MAX_TAIL_LINE_CHARS).collect();
        self.chars += line.chars().count() + 1;
        self.lines.push_back(line);
        while self.chars > MAX_TAIL_CHARS {
            let Some(first) = self.lines.pop_front() else {
                break;
            };
            self.chars -= first.chars().count() + 1;
        }
    }

    /// `; stderr: …` with the tail, or nothing if there was no log.
    pub(super) fn suffix(&self) -> String {
        if self.lines.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        format!("; stderr (last lines):\n{}", lines.join("\n"))
    }
}

/// The result of a program that exited 0: its stdout as JSON; text that is
/// not JSON as a JSON string (without the final newline); no output as
/// `null`. Output that is not UTF-8 is a permanent failure.
pub(super) fn result_of(stdout: Vec<u8>) -> Result<Value, TaskError> {
    let text = String::from_utf8(stdout).map_err(|_| {
        TaskError::permanent("the program exited 0 but its stdout is not UTF-8 text")
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(&text)
        .unwrap_or_else(|_| Value::String(text.trim_end_matches(['\n', '\r']).to_string())))
}

/// The snooze a program that exited 75 asks for: `{"snooze": N}` on its
/// stdout, N seconds (0 or more). Anything else there is a permanent
/// failure that says what was wrong (the worker holds a snooze to
/// `tasks.snooze_limit`).
pub(super) fn snooze_of(stdout: Vec<u8>, tail: &LogTail) -> TaskError {
    let asked = serde_json::from_slice::<Value>(&stdout)
        .ok()
        .and_then(|v| v.get("snooze").cloned());
    let seconds = match asked {
        Some(Value::Number(n)) => n.as_f64(),
        _ => {
            return TaskError::permanent(format!(
                "the program exited with code {SNOOZE_EXIT_CODE} (snooze) but its stdout is not \
                 {{\"snooze\": seconds}}{}",
                tail.suffix()
            ));
        }
    };
    match seconds.and_then(|s| Duration::try_from_secs_f64(s).ok()) {
        Some(after) => Outcome::Snooze(after).into(),
        None => TaskError::permanent(format!(
            "the program asked to snooze for {} seconds: a snooze is 0 seconds or more",
            seconds.unwrap_or(f64::NAN)
        )),
    }
}

/// The failure of a program that did not exit 0: its exit code (65 is
/// permanent, any other retryable) or the signal that killed it
/// (retryable), and its log's tail.
pub(super) fn failure(status: ExitStatus, tail: &LogTail) -> TaskError {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(PERMANENT_EXIT_CODE), _) => TaskError::permanent(format!(
            "the program exited with code {PERMANENT_EXIT_CODE} (permanent: not retried){}",
            tail.suffix()
        )),
        (Some(code), _) => TaskError::retryable(format!(
            "the program exited with code {code}{}",
            tail.suffix()
        )),
        (None, Some(signal)) => TaskError::retryable(format!(
            "the program was killed by signal {signal}{}",
            tail.suffix()
        )),
        (None, None) => TaskError::retryable(format!("the program ended{}", tail.suffix())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    fn reading(limit: usize) -> Reading {
        Reading {
            limit,
            overflowed: CancellationToken::new(),
            finished: CancellationToken::new(),
        }
    }

    #[test]
    fn stdout_is_json_or_text_or_nothing() {
        assert_eq!(
            result_of(b"{\"words\": 3}\n".to_vec()).unwrap(),
            json!({"words": 3})
        );
        assert_eq!(result_of(b"42\n".to_vec()).unwrap(), json!(42));
        assert_eq!(
            result_of(b"all done\n".to_vec()).unwrap(),
            json!("all done")
        );
        assert_eq!(result_of(b" \n".to_vec()).unwrap(), Value::Null);
        assert!(!result_of(vec![0xff, 0xfe]).unwrap_err().retryable);
    }

    #[test]
    fn exit_75_snoozes_for_the_seconds_stdout_gives() {
        let tail = LogTail::default();
        let snooze = snooze_of(b"{\"snooze\": 2.5}\n".to_vec(), &tail);
        assert_eq!(
            snooze.snoozed(),
            Some(std::time::Duration::from_millis(2500))
        );
        for bad in [
            &b"{\"snooze\": -1}"[..],
            b"{\"snooze\": \"soon\"}",
            b"later",
            b"",
        ] {
            let e = snooze_of(bad.to_vec(), &tail);
            assert_eq!(e.snoozed(), None, "{e}");
            assert!(!e.retryable, "{e}");
            assert!(e.message.contains("snooze"), "{e}");
        }
    }

    #[tokio::test]
    async fn stderr_splits_progress_from_log_and_keeps_a_bounded_tail() {
        let mut input = String::from("{\"progress\": 0.5, \"message\": \"half\"}\nstarting\n");
        for i in 0..500 {
            input.push_str(&format!("log line {i}\n"));
        }
        input.push_str("{\"progress\": \"soon\"}\nlast words");
        let reports = Mutex::new(Vec::new());
        let tail = read_stderr(input.as_bytes(), &reading(1 << 20), |p| {
            reports.lock().unwrap().push(p)
        })
        .await
        .unwrap();
        assert_eq!(
            *reports.lock().unwrap(),
            [Progress::new(0.5, Some("half".into()))]
        );
        let suffix = tail.suffix();
        assert!(
            suffix.ends_with("{\"progress\": \"soon\"}\nlast words"),
            "{suffix}"
        );
        assert!(!suffix.contains("starting") && suffix.chars().count() < 1600);
    }

    #[tokio::test]
    async fn output_past_the_limit_is_refused_and_flagged() {
        let r = reading(10);
        assert_eq!(read_stdout(&b"0123456789AB"[..], &r).await, Err(Exceeded));
        assert!(r.overflowed.is_cancelled());
        let r = reading(10);
        assert!(read_stderr(&b"0123456789AB"[..], &r, |_| {}).await.is_err());
        assert_eq!(
            read_stdout(&b"0123456789"[..], &reading(10))
                .await
                .unwrap()
                .len(),
            10
        );
    }
}
