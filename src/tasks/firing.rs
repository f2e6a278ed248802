//! Which ticks a scheduler pass fires ([`plan`]): one task per tick a
//! scheduler was alive for; of the ticks that passed while none was
//! ([`Liveness`]), none or the last one (`missed`); with `overlap =
//! "skip"`, the latest alone.

use chrono::{DateTime, Utc};

use super::{Missed, Overlap, Schedule};

/// Which ticks had a scheduler alive to fire them: every tick since this
/// process's scheduler started, and every tick up to the time that some
/// scheduler (this one, or another process's) last promised to look again
/// by. A tick neither covers passed while every scheduler was down: it was
/// missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// When this process's scheduler started.
    pub started: DateTime<Utc>,
    /// The latest promise of a scheduler to look again, before this pass
    /// (one that stopped cleanly promised to look until it stopped);
    /// `None`: none was ever made.
    pub alive_until: Option<DateTime<Utc>>,
}

impl Liveness {
    fn covers(&self, tick: DateTime<Utc>) -> bool {
        tick >= self.started || self.alive_until.is_some_and(|until| tick <= until)
    }
}

/// What a pass does for one schedule: a task for each of `ticks`, and the
/// schedule's next tick is then `next_tick`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub ticks: Vec<DateTime<Utc>>,
    pub next_tick: DateTime<Utc>,
    /// Ticks that passed with no scheduler alive and made no task.
    pub skipped: bool,
}

/// Which of the ticks from `next_tick` to `now` get a task: every one a
/// scheduler was alive for (see [`Liveness`]); of those that passed while
/// none was, none (`Missed::Skip`) or the last (`Missed::Once`); with
/// `Overlap::Skip`, only the latest (the store then makes it only if the
/// schedule's last task has ended). At most `limit` ticks per pass: the
/// rest are the next pass's. `None` when nothing is due.
pub fn plan(
    schedule: &Schedule,
    next_tick: DateTime<Utc>,
    now: DateTime<Utc>,
    liveness: Liveness,
    limit: usize,
) -> Option<Firing> {
    if next_tick > now {
        return None;
    }
    let cron = &schedule.cron;
    let far = DateTime::<Utc>::MAX_UTC;
    let mut firing = Firing {
        ticks: Vec::new(),
        next_tick: far,
        skipped: false,
    };
    let mut tick = next_tick;
    while tick <= now {
        if liveness.covers(tick) {
            if firing.ticks.len() >= limit.max(1) {
                firing.next_tick = tick;
                return Some(firing.overlapping(schedule.overlap));
            }
            firing.ticks.push(tick);
            tick = cron.next_after(tick).unwrap_or(far);
            continue;
        }
        // Every tick from here to this scheduler's start was missed (none
        // is covered by a promise: they all come after it); the last of
        // them is the last before that start, or before now.
        let bound = liveness
            .started
            .min(now + chrono::Duration::microseconds(1));
        let last = cron
            .last_before(bound)
            .filter(|last| *last >= tick)
            .unwrap_or(tick);
        if schedule.missed == Missed::Once {
            if firing.ticks.len() >= limit.max(1) {
                firing.next_tick = tick;
                return Some(firing.overlapping(schedule.overlap));
            }
            firing.ticks.push(last);
        }
        firing.skipped = true;
        tick = cron.next_after(last).unwrap_or(far);
    }
    firing.next_tick = tick;
    Some(firing.overlapping(schedule.overlap))
}

impl Firing {
    /// With `Overlap::Skip`, the latest tick alone: each would overlap
    /// the one before.
    fn overlapping(mut self, overlap: Overlap) -> Firing {
        if overlap == Overlap::Skip && self.ticks.len() > 1 {
            self.ticks = self.ticks.split_off(self.ticks.len() - 1);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::schedule::tests::every_second;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn alive_since(started: &str) -> Liveness {
        Liveness {
            started: at(started),
            alive_until: None,
        }
    }

    #[test]
    fn each_due_tick_fires_once_while_a_scheduler_was_alive() {
        let s = every_second(Missed::Skip, Overlap::Allow);
        let firing = plan(
            &s,
            at("2026-01-01T00:00:10Z"),
            at("2026-01-01T00:00:12.5Z"),
            alive_since("2026-01-01T00:00:00Z"),
            100,
        )
        .unwrap();
        assert_eq!(
            firing.ticks,
            [
                at("2026-01-01T00:00:10Z"),
                at("2026-01-01T00:00:11Z"),
                at("2026-01-01T00:00:12Z")
            ]
        );
        assert_eq!(firing.next_tick, at("2026-01-01T00:00:13Z"));
        assert!(!firing.skipped);
        // Nothing due yet: nothing to do.
        assert_eq!(
            plan(
                &s,
                at("2026-01-01T00:00:13Z"),
                at("2026-01-01T00:00:12.9Z"),
                alive_since("2026-01-01T00:00:00Z"),
                100
            ),
            None
        );
    }

    #[test]
    fn ticks_no_scheduler_was_alive_for_are_skipped_or_caught_up_once() {
        // The last promise ran to :05; this scheduler started at :20.
        let liveness = Liveness {
            started: at("2026-01-01T00:00:20Z"),
            alive_until: Some(at("2026-01-01T00:00:05Z")),
        };
        let skip = every_second(Missed::Skip, Overlap::Allow);
        let firing = plan(
            &skip,
            at("2026-01-01T00:00:04Z"),
            at("2026-01-01T00:00:21Z"),
            liveness,
            100,
        )
        .unwrap();
        assert_eq!(
            firing.ticks,
            [
                at("2026-01-01T00:00:04Z"),
                at("2026-01-01T00:00:05Z"),
                at("2026-01-01T00:00:20Z"),
                at("2026-01-01T00:00:21Z")
            ]
        );
        assert!(firing.skipped);
        assert_eq!(firing.next_tick, at("2026-01-01T00:00:22Z"));

        let once = every_second(Missed::Once, Overlap::Allow);
        let firing = plan(
            &once,
            at("2026-01-01T00:00:06Z"),
            at("2026-01-01T00:00:20.5Z"),
            liveness,
            100,
        )
        .unwrap();
        assert_eq!(
            firing.ticks,
            [at("2026-01-01T00:00:19Z"), at("2026-01-01T00:00:20Z")],
            "one catch-up for :06 to :19, then the live tick"
        );
        // Every scheduler stopped cleanly (no promise): all were missed.
        let firing = plan(
            &once,
            at("2026-01-01T00:00:06Z"),
            at("2026-01-01T00:00:19.5Z"),
            alive_since("2026-01-01T00:00:19.6Z"),
            100,
        )
        .unwrap();
        assert_eq!(firing.ticks, [at("2026-01-01T00:00:19Z")]);
        assert_eq!(firing.next_tick, at("2026-01-01T00:00:20Z"));
    }

    #[test]
    fn overlap_skip_fires_the_latest_tick_alone() {
        let s = every_second(Missed::Once, Overlap::Skip);
        let firing = plan(
            &s,
            at("2026-01-01T00:00:10Z"),
            at("2026-01-01T00:00:12Z"),
            alive_since("2026-01-01T00:00:00Z"),
            100,
        )
        .unwrap();
        assert_eq!(firing.ticks, [at("2026-01-01T00:00:12Z")]);
        assert_eq!(firing.next_tick, at("2026-01-01T00:00:13Z"));
    }

    #[test]
    fn a_pass_fires_at_most_its_limit_and_leaves_the_rest_for_the_next() {
        let s = every_second(Missed::Skip, Overlap::Allow);
        let firing = plan(
            &s,
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T00:01:00Z"),
            alive_since("2025-12-31T00:00:00Z"),
            10,
        )
        .unwrap();
        assert_eq!(firing.ticks.len(), 10);
        assert_eq!(firing.next_tick, at("2026-01-01T00:00:10Z"));
    }
}
