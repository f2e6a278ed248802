//! Connections kept between statements ([`Kept`]). sqlx tests every
//! connection that goes back to its pool with a round trip (a ping, in
//! `return_to_pool`, whatever the pool's options say): one more round trip
//! to the database after every statement, on both sides' CPUs. A
//! connection whose statement finished cleanly needs no test, so the store
//! keeps it here, still checked out of the pool, for its next statement.
//!
//! A connection goes back to the pool (and through sqlx's test) when its
//! statement failed or was dropped half-way (it is never kept), when it was
//! not used for `fresh_for` (`database.check_idle_after`: a connection idle
//! that long may have been dropped by the database), when it has been out
//! of the pool for [`HOLD`] (so that the pool's own upkeep, such as its
//! connections' maximum lifetime, still reaches it), and whenever the pool
//! has nothing left to hand out or anyone waits for it: a kept connection
//! never makes anyone wait.
//!
//! Uses nothing of the crate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};

/// The longest a connection stays out of the pool.
pub(super) const HOLD: Duration = Duration::from_secs(30);

/// A connection kept, since when it is out of the pool, and when it was
/// last used.
struct Idle<DB: Database> {
    conn: PoolConnection<DB>,
    out_since: Instant,
    used: Instant,
}

/// See the module. One per pool.
pub(super) struct Kept<DB: Database> {
    /// Oldest use first.
    idle: Mutex<Vec<Idle<DB>>>,
    fresh_for: Duration,
    /// Where connections are opened: the runtime the store was made on.
    runtime: Option<tokio::runtime::Handle>,
    /// How many of the store's callers wait for the pool.
    waiting: Arc<AtomicUsize>,
}

/// One caller waiting for the pool, while it lives.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn enter(count: &Arc<AtomicUsize>) -> Waiting {
        count.fetch_add(1, Ordering::AcqRel);
        Waiting(count.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection to run statements on, and since when it is out of the pool.
pub(super) struct Lent<DB: Database> {
    pub(super) conn: PoolConnection<DB>,
    out_since: Instant,
}

impl<DB: Database> Kept<DB> {
    /// Keeps connections unused for less than `fresh_for`; none if zero.
    pub(super) fn new(fresh_for: Duration) -> Kept<DB> {
        Kept {
            idle: Mutex::new(Vec::new()),
            fresh_for,
            runtime: tokio::runtime::Handle::try_current().ok(),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The connection used last, if one is kept; else one from the pool.
    pub(super) async fn lend(&self, pool: &Pool<DB>) -> Result<Lent<DB>, sqlx::Error> {
        let (kept, stale) = {
            let mut idle = self.lock();
            let stale = self.take_stale(&mut idle);
            (idle.pop(), stale)
        };
        drop(stale);
        if let Some(kept) = kept {
            return Ok(Lent {
                conn: kept.conn,
                out_since: kept.out_since,
            });
        }
        // Counted while it waits for the pool, even if its caller goes away.
        let acquire = {
            let (pool, waiting) = (pool.clone(), Waiting::enter(&self.waiting));
            async move {
                let conn = pool.acquire().await;
                drop(waiting);
                conn
            }
        };
        let conn = match &self.runtime {
            // Opened on the store's runtime: a connection belongs to the
            // runtime it was opened on, and an HTTP worker's own runtime
            // stops before the store closes (its connections would then
            // fail whoever uses them next).
            Some(runtime) => {
                (runtime.spawn(acquire).await).map_err(|_| sqlx::Error::PoolClosed)??
            }
            None => acquire.await?,
        };
        Ok(Lent {
            conn,
            out_since: Instant::now(),
        })
    }

    /// Takes back a connection whose statements all finished: kept for the
    /// next, or handed back to the pool (see the module).
    pub(super) fn take_back(&self, lent: Lent<DB>, pool: &Pool<DB>) {
        let now = Instant::now();
        // Not while anyone waits for the pool: sqlx serves its waiters in
        // turn, and a kept connection would go to whoever comes next.
        let spare = self.waiting.load(Ordering::Acquire) == 0
            && (pool.num_idle() > 0 || pool.size() < pool.options().get_max_connections());
        let keep = spare
            && !pool.is_closed()
            && !self.fresh_for.is_zero()
            && now.duration_since(lent.out_since) < HOLD;
        let mut back = Vec::new();
        {
            let mut idle = self.lock();
            if keep {
                idle.push(Idle {
                    conn: lent.conn,
                    out_since: lent.out_since,
                    used: now,
                });
            } else {
                back.push(lent.conn);
            }
            back.extend(self.take_stale(&mut idle));
        }
        // Back to the pool, outside the lock.
        drop(back);
    }

    /// Hands every kept connection back to the pool (before it closes).
    pub(super) fn release_all(&self) {
        let all = std::mem::take(&mut *self.lock());
        drop(all);
    }

    /// The connections unused for `fresh_for` or out for [`HOLD`], taken
    /// off the list, for the caller to drop outside the lock.
    fn take_stale(&self, idle: &mut Vec<Idle<DB>>) -> Vec<PoolConnection<DB>> {
        let now = Instant::now();
        let fresh = |i: &Idle<DB>| {
            now.duration_since(i.used) < self.fresh_for && now.duration_since(i.out_since) < HOLD
        };
        if idle.iter().all(fresh) {
            return Vec::new();
        }
        let (keep, stale): (Vec<_>, Vec<_>) = std::mem::take(idle).into_iter().partition(fresh);
        *idle = keep;
        stale.into_iter().map(|i| i.conn).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle<DB>>> {
        // A panic while holding the lock leaves the list whole.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A store dropped without being closed (an HTTP thread's own, whose
/// runtime stops with the thread) closes what it kept rather than hand it
/// back: sqlx tests a connection handed back on the runtime of the moment,
/// and one that is stopping fails the test, loudly.
impl<DB: Database> Drop for Kept<DB> {
    fn drop(&mut self) {
        for idle in std::mem::take(&mut *self.lock()) {
            drop(idle.conn.detach());
        }
    }
}
