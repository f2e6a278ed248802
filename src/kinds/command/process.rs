//! A program's process group. The program is started as the leader of a
//! group of its own, so that a signal reaches everything it started (a
//! shell's children, a background grandchild) and not errand itself.

use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::Instant;

/// How often a stopping group is looked at to see whether it has emptied.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// The process group of a started program. Dropping it kills whatever is
/// left of the group, so nothing outlives the attempt, even one that was
/// aborted.
pub(super) struct ProcessGroup {
    pgid: Option<Pid>,
}

impl ProcessGroup {
    /// The group `child` leads (it was spawned with `process_group(0)`).
    pub fn of(child: &Child) -> ProcessGroup {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        ProcessGroup { pgid }
    }

    fn signal(&self, signal: Option<Signal>) -> bool {
        // ESRCH (no process left in the group) is the usual answer once the
        // program has ended; there is nothing else to do about a failure.
        self.pgid.is_some_and(|pgid| killpg(pgid, signal).is_ok())
    }

    /// Whether any process of the group is still there. The leader must
    /// have been reaped, or it counts (as a zombie).
    fn alive(&self) -> bool {
        self.signal(None)
    }

    /// Kills everything left in the group at once.
    pub fn kill(&self) {
        self.signal(Some(Signal::SIGKILL));
    }

    /// Stops the program: SIGTERM to the whole group, then SIGKILL to what
    /// is left of it after `grace`. Returns once the leader is reaped and
    /// the group is empty or killed.
    pub async fn terminate(&self, child: &mut Child, grace: Duration) {
        self.signal(Some(Signal::SIGTERM));
        let deadline = Instant::now() + grace;
        let leader_gone = tokio::time::timeout_at(deadline, child.wait())
            .await
            .is_ok();
        if leader_gone {
            while self.alive() && Instant::now() < deadline {
                tokio::time::sleep(GROUP_POLL).await;
            }
        }
        self.kill();
        // Killed: the leader ends at once (a reaping error leaves nothing to do).
        let _ = child.wait().await;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
