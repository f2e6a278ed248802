//! Command kinds: `[kinds.NAME] command = [argv…]` runs a program for each
//! attempt, so that work written in any language needs no Rust. The
//! contract, for the program:
//!
//! - **stdin** is the payload, as JSON, then end of file.
//! - **Environment**: only what `env_passthrough` copies from errand's own
//!   (by default `PATH`, `HOME`, `LANG`, `LC_ALL`, `TZ`) and what `env`
//!   sets, plus `ERRAND_TASK_TOKEN`, `ERRAND_ATTEMPT` (1, 2, …),
//!   `ERRAND_KIND`, `ERRAND_SCRATCH_DIR` (a folder of its own, also
//!   `TMPDIR`, removed after the attempt), `ERRAND_INPUT_DIR` (in it: the
//!   task's input files, each named as the task names it) and
//!   `ERRAND_OUTPUT_DIR` (in it: where it leaves output files, stored as
//!   the task's when it exits 0). errand's configuration (`DATABASE_URL`,
//!   `ERRAND__*`, the callback secret) never reaches it.
//! - **stderr**: a line that is a JSON object with a numeric `progress`
//!   (0 to 1) and an optional `message` reports progress; any other line is
//!   log, whose last lines go into the error when the attempt fails.
//! - **stdout** is the result: JSON; text that is not JSON becomes a JSON
//!   string; no output is `null`.
//! - **Exit code** 0 completes the task; 65 (`EX_DATAERR`) fails it for
//!   good; 75 (`EX_TEMPFAIL`) with `{"snooze": N}` on stdout snoozes it:
//!   "not yet, look again in N seconds", queued again without using up an
//!   attempt (see `Outcome::Snooze`); any other code, or death by a signal,
//!   fails the attempt and it is retried while attempts remain.
//! - **Stopping**: on cancel, timeout or shutdown, SIGTERM goes to the
//!   program's whole process group, and SIGKILL to what is left of it after
//!   `kill_grace`. Whatever it leaves running when it exits is killed too.
//! - **Limits**: stdout and stderr are each read up to `max_output_bytes`;
//!   past that the program is killed and the attempt fails for good.

mod files;
mod output;
mod process;
mod spec;

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use self::output::{
    Exceeded, LogTail, Reading, SNOOZE_EXIT_CODE, failure, read_stderr, read_stdout, result_of,
    snooze_of,
};
use self::process::ProcessGroup;
use self::spec::CommandSpec;
use super::registry::{Handler, HandlerFuture};
use super::{RegistryError, TaskContext, TaskError};
use crate::config::{KindSettings, Settings};

/// A kind that runs a program (see the module's documentation).
pub(super) struct CommandKind {
    spec: CommandSpec,
}

impl CommandKind {
    pub fn new(
        name: &str,
        argv: &[String],
        kind: &KindSettings,
        settings: &Settings,
    ) -> Result<CommandKind, RegistryError> {
        Ok(CommandKind {
            spec: CommandSpec::new(name, argv, kind, settings)?,
        })
    }
}

impl Handler for CommandKind {
    fn public(&self) -> bool {
        true
    }

    /// The payload is the program's business (and its schema's).
    fn check(&self, _payload: &Value) -> Result<(), String> {
        Ok(())
    }

    fn start(self: Arc<Self>, payload: Value, ctx: TaskContext) -> HandlerFuture {
        Box::pin(async move { run(&self.spec, &payload, &ctx).await })
    }

    /// SIGTERM, `kill_grace`, SIGKILL, and a moment to reap.
    fn stop_grace(&self) -> Duration {
        self.spec.kill_grace + Duration::from_secs(1)
    }

    fn preflight(&self) -> Result<(), String> {
        self.spec.program().map(|_| ())
    }
}

/// How the program ended, as the supervisor saw it.
enum End {
    Exited(ExitStatus),
    /// Asked to stop (cancel, timeout, shutdown), and stopped.
    Stopped,
    /// An output went past its limit, and it was killed.
    Overflowed,
}

/// One attempt: its input files staged, the program run, its output
/// files stored, its scratch folder removed.
async fn run(spec: &CommandSpec, payload: &Value, ctx: &TaskContext) -> Result<Value, TaskError> {
    let scratch = Scratch::create(&spec.scratch_root, ctx)?;
    let result = async {
        files::stage_inputs(ctx, &scratch.inputs()).await?;
        let value = execute(spec, payload, ctx, &scratch).await?;
        files::collect_outputs(ctx, &scratch.outputs()).await?;
        Ok(value)
    }
    .await;
    scratch.remove().await;
    result
}

/// Starts the program, feeds it, reads it, waits for it.
async fn execute(
    spec: &CommandSpec,
    payload: &Value,
    ctx: &TaskContext,
    scratch: &Scratch,
) -> Result<Value, TaskError> {
    let mut child = start(spec, ctx, scratch)?;
    let group = ProcessGroup::of(&child);
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
        return Err(TaskError::retryable("the program's pipes were not set up"));
    };
    let reading = Reading {
        limit: spec.max_output_bytes,
        overflowed: CancellationToken::new(),
        finished: CancellationToken::new(),
    };
    // Serialising a JSON value can't fail.
    let input = serde_json::to_vec(payload).unwrap_or_default();
    let feed = async {
        // A program that does not read its stdin is fine: the write ends
        // with the program (a broken pipe) or when it has ended.
        tokio::select! {
            _ = stdin.write_all(&input) => {}
            () = reading.finished.cancelled() => {}
        }
        drop(stdin);
    };
    let supervise = async {
        let end = supervise(&mut child, &group, spec, ctx, &reading).await;
        reading.finished.cancel();
        end
    };
    let (end, out, log, ()) = tokio::join!(
        supervise,
        read_stdout(stdout, &reading),
        read_stderr(stderr, &reading, |p| ctx.report(p)),
        feed,
    );
    outcome(spec, end?, out, log)
}

/// Starts the program in its own process group, with exactly its
/// environment.
fn start(spec: &CommandSpec, ctx: &TaskContext, scratch: &Scratch) -> Result<Child, TaskError> {
    // Looked up again: it may have gone since the worker started.
    let program = spec.program().map_err(TaskError::retryable)?;
    let mut command = Command::new(&program);
    command
        .args(&spec.argv[1..])
        .current_dir(&spec.workdir)
        .env_clear()
        .envs(&spec.env)
        .env("ERRAND_TASK_TOKEN", ctx.token().to_string())
        .env("ERRAND_ATTEMPT", ctx.attempt().to_string())
        .env("ERRAND_KIND", &spec.kind)
        .env("ERRAND_SCRATCH_DIR", scratch.path())
        .env("ERRAND_INPUT_DIR", scratch.inputs())
        .env("ERRAND_OUTPUT_DIR", scratch.outputs());
    if !spec.env.contains_key("TMPDIR") {
        command.env("TMPDIR", scratch.path());
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    command
        .spawn()
        .map_err(|e| TaskError::retryable(format!("could not start {}: {e}", program.display())))
}

/// Waits for the program to exit, or stops it when asked or when its output
/// overflows. Whatever it leaves running in its group is killed.
async fn supervise(
    child: &mut Child,
    group: &ProcessGroup,
    spec: &CommandSpec,
    ctx: &TaskContext,
    reading: &Reading,
) -> Result<End, TaskError> {
    let stop = tokio::select! {
        status = child.wait() => Err(status),
        () = ctx.cancelled() => Ok((End::Stopped, spec.kill_grace)),
        () = reading.overflowed.cancelled() => Ok((End::Overflowed, Duration::ZERO)),
    };
    let end = match stop {
        Err(status) => {
            group.kill();
            let status = status.map_err(|e| {
                TaskError::retryable(format!("could not wait for the program: {e}"))
            })?;
            End::Exited(status)
        }
        Ok((end, grace)) => {
            group.terminate(child, grace).await;
            end
        }
    };
    Ok(end)
}

/// The attempt's result or failure.
fn outcome(
    spec: &CommandSpec,
    end: End,
    out: Result<Vec<u8>, Exceeded>,
    log: Result<LogTail, Exceeded>,
) -> Result<Value, TaskError> {
    let too_much = |stream: &str| {
        TaskError::permanent(format!(
            "the program's {stream} went past max_output_bytes ({} bytes); it was stopped",
            spec.max_output_bytes
        ))
    };
    match (end, out, log) {
        // How the attempt ends is the worker's call (cancelled, timed out,
        // handed back); the log says where the program was.
        (End::Stopped, _, log) => Err(TaskError::permanent(format!(
            "the program was stopped{}",
            log.map(|log| log.suffix()).unwrap_or_default()
        ))),
        (_, Err(Exceeded), _) => Err(too_much("stdout")),
        (_, _, Err(Exceeded)) | (End::Overflowed, _, _) => Err(too_much("stderr")),
        (End::Exited(status), Ok(out), Ok(log)) => match status.code() {
            Some(0) => result_of(out),
            Some(SNOOZE_EXIT_CODE) => Err(snooze_of(out, &log)),
            _ => Err(failure(status, &log)),
        },
    }
}

/// An attempt's scratch folder: made empty and private, removed after.
struct Scratch {
    path: Option<PathBuf>,
}

impl Scratch {
    fn create(root: &Path, ctx: &TaskContext) -> Result<Scratch, TaskError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let name = format!(
            "errand-{}-{}-{:08x}",
            ctx.token(),
            ctx.attempt(),
            getrandom::u32().unwrap_or(0)
        );
        let path = root.join(name);
        std::fs::create_dir_all(root)
            .and_then(|()| std::fs::DirBuilder::new().mode(0o700).create(&path))
            .and_then(|()| std::fs::create_dir(path.join("input")))
            .and_then(|()| std::fs::create_dir(path.join("output")))
            .map_err(|e| {
                TaskError::retryable(format!(
                    "could not make a scratch folder in {}: {e}",
                    root.display()
                ))
            })?;
        Ok(Scratch { path: Some(path) })
    }

    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new("."))
    }

    /// `ERRAND_INPUT_DIR`: the task's input files, written before the start.
    fn inputs(&self) -> PathBuf {
        self.path().join("input")
    }

    /// `ERRAND_OUTPUT_DIR`: where the program leaves its output files.
    fn outputs(&self) -> PathBuf {
        self.path().join("output")
    }

    /// Removes the folder, off the async threads (it may be large).
    async fn remove(mut self) {
        let Some(path) = self.path.take() else { return };
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&path)).await;
        if let Ok(Err(e)) = removed {
            tracing::warn!(error = %e, "could not remove the scratch folder");
        }
    }
}

impl Drop for Scratch {
    /// An attempt that was aborted still cleans up.
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}
