//! Group commit ([`Batcher`]): many concurrent callers hand their items to
//! a few writers, each of which writes whatever has gathered in one
//! statement, and every caller gets its own answer. It adds no wait: an
//! item that arrives alone is written at once; under load, the items that
//! arrive while a write is in flight go together in the next one, so one
//! commit serves many callers.
//!
//! A caller with a way of its own to write (a connection of its thread's)
//! may write its item itself when nothing else is in flight
//! ([`Batcher::submit_or_write`]): a lone item then skips the hop to a
//! writer and back.
//!
//! [`PerThread`] keeps one value per thread (a batcher, a pool) made on that
//! thread: a caller on a single-threaded runtime, such as an HTTP worker,
//! then reaches the database without handing its work to another thread and
//! waking it.
//!
//! Uses nothing of the crate.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;

use tokio::sync::{Mutex, mpsc, oneshot};

type Item<T, R> = (T, oneshot::Sender<R>);

/// Writes items in batches (see the module). Cheap to clone; the writers
/// start with the first item, on the runtime the batcher was made in (else
/// the one that item comes from: not an HTTP worker's own, which stops
/// with it), and stop when the last clone is dropped.
pub struct Batcher<T, R> {
    inner: Arc<Inner<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Batcher {
            inner: self.inner.clone(),
        }
    }
}

type WriteFn<T, R> =
    dyn Fn(Vec<T>) -> std::pin::Pin<Box<dyn Future<Output = Vec<R>> + Send>> + Send + Sync;

struct Inner<T, R> {
    max: usize,
    writers: usize,
    write: Arc<WriteFn<T, R>>,
    sender: OnceLock<mpsc::Sender<Item<T, R>>>,
    runtime: Option<tokio::runtime::Handle>,
    /// Items handed over and not yet answered, and those being written by
    /// their callers.
    in_flight: Arc<AtomicUsize>,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// `writers` concurrent writers, each writing at most `max` items at a
    /// time with `write`, which answers one `R` per item, in order.
    pub fn new<F, Fut>(max: usize, writers: usize, write: F) -> Batcher<T, R>
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let write: Arc<WriteFn<T, R>> = Arc::new(move |items| Box::pin(write(items)));
        Batcher {
            inner: Arc::new(Inner {
                max: max.max(1),
                writers: writers.max(1),
                write,
                sender: OnceLock::new(),
                runtime: tokio::runtime::Handle::try_current().ok(),
                in_flight: Arc::default(),
            }),
        }
    }

    /// Writes `item` with the next batch: its answer. `None` only if the
    /// writer is gone (the runtime is shutting down).
    pub async fn submit(&self, item: T) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        // Counted out by the writer once handed over, else here (a full
        // channel's wait may be dropped with the caller).
        let counted = Counted::add(&self.inner.in_flight, 1);
        self.sender().send((item, reply)).await.ok()?;
        counted.handed_over();
        answer.await.ok()
    }

    /// Writes `item` with `write` (which answers one `R` per item, as the
    /// batcher's own does) on the caller, if no other item is in flight;
    /// else [`Batcher::submit`]s it. Items that arrive while it is written
    /// go to the batcher's writers.
    pub async fn submit_or_write<Fut>(
        &self,
        item: T,
        write: impl FnOnce(Vec<T>) -> Fut,
    ) -> Option<R>
    where
        Fut: Future<Output = Vec<R>>,
    {
        let in_flight = &self.inner.in_flight;
        if in_flight
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return self.submit(item).await;
        }
        // Counted out however this ends, a caller that went away included.
        let _done = Counted::taken(in_flight, 1);
        write(vec![item]).await.pop()
    }

    fn sender(&self) -> &mpsc::Sender<Item<T, R>> {
        self.inner.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(self.inner.max * self.inner.writers * 2);
            let receiver = Arc::new(Mutex::new(receiver));
            let runtime =
                (self.inner.runtime.clone()).unwrap_or_else(tokio::runtime::Handle::current);
            for _ in 0..self.inner.writers {
                runtime.spawn(write_loop(
                    receiver.clone(),
                    self.inner.write.clone(),
                    self.inner.max,
                    self.inner.in_flight.clone(),
                ));
            }
            sender
        })
    }
}

/// Takes what has gathered (waiting for the first item), writes it, and
/// answers each caller, until every sender is gone.
async fn write_loop<T, R>(
    receiver: Arc<Mutex<mpsc::Receiver<Item<T, R>>>>,
    write: Arc<WriteFn<T, R>>,
    max: usize,
    in_flight: Arc<AtomicUsize>,
) {
    let mut batch = Vec::with_capacity(max);
    loop {
        let taken = receiver.lock().await.recv_many(&mut batch, max).await;
        if taken == 0 {
            return;
        }
        let _done = Counted::taken(&in_flight, taken);
        let (items, replies): (Vec<T>, Vec<oneshot::Sender<R>>) = batch.drain(..).unzip();
        let answers = write(items).await;
        for (reply, answer) in replies.into_iter().zip(answers) {
            // A caller that went away does not want its answer.
            let _ = reply.send(answer);
        }
    }
}

/// Items counted in flight, counted out when this is dropped, unless
/// handed over to whoever counts them out next.
struct Counted {
    count: Arc<AtomicUsize>,
    items: usize,
}

impl Counted {
    /// `items` counted in now.
    fn add(count: &Arc<AtomicUsize>, items: usize) -> Counted {
        count.fetch_add(items, Ordering::SeqCst);
        Counted::taken(count, items)
    }

    /// `items` already counted in.
    fn taken(count: &Arc<AtomicUsize>, items: usize) -> Counted {
        Counted {
            count: count.clone(),
            items,
        }
    }

    /// Someone else counts them out.
    fn handed_over(mut self) {
        self.items = 0;
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.count.fetch_sub(self.items, Ordering::SeqCst);
    }
}

/// One value per thread, made by `make` on that thread the first time it
/// is asked for there, and dropped with this.
pub struct PerThread<V> {
    make: Box<dyn Fn() -> V + Send + Sync>,
    made: std::sync::Mutex<HashMap<ThreadId, V>>,
}

impl<V: Clone> PerThread<V> {
    pub fn new(make: impl Fn() -> V + Send + Sync + 'static) -> PerThread<V> {
        PerThread {
            make: Box::new(make),
            made: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// This thread's value.
    pub fn get(&self) -> V {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        let id = std::thread::current().id();
        made.entry(id).or_insert_with(|| (self.make)()).clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_caller_gets_its_own_answer_and_items_go_together() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Batcher::new(8, 1, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move {
                tokio::task::yield_now().await;
                items.into_iter().map(|i| i * 10).collect::<Vec<_>>()
            }
        });
        let calls: Vec<_> = (0..40)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { (i, b.submit(i).await) })
            })
            .collect();
        for call in calls {
            let (i, answer) = call.await.unwrap();
            assert_eq!(answer, Some(i * 10));
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.iter().all(|n| *n <= 8), "{sizes:?}");
    }

    #[tokio::test]
    async fn a_lone_item_is_written_by_its_caller_and_others_meanwhile_by_the_writers() {
        let batcher = Batcher::new(8, 1, |items: Vec<u32>| async move {
            items.into_iter().map(|i| (i, "writer")).collect::<Vec<_>>()
        });
        let by_caller = |items: Vec<u32>| async move {
            items.into_iter().map(|i| (i, "caller")).collect::<Vec<_>>()
        };
        assert_eq!(
            batcher.submit_or_write(1, by_caller).await,
            Some((1, "caller"))
        );

        // While a caller writes (until `go`), another item goes to the writers.
        let (go, gate) = oneshot::channel::<()>();
        let held = batcher.clone();
        let first = tokio::spawn(async move {
            held.submit_or_write(2, |items: Vec<u32>| async move {
                gate.await.unwrap();
                items.into_iter().map(|i| (i, "caller")).collect::<Vec<_>>()
            })
            .await
        });
        while batcher.inner.in_flight.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            batcher.submit_or_write(3, by_caller).await,
            Some((3, "writer"))
        );
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Some((2, "caller")));

        // A caller that goes away mid-write leaves nothing counted in flight.
        let abandoned = batcher.submit_or_write(4, |_: Vec<u32>| std::future::pending());
        assert!(
            tokio::time::timeout(Duration::from_millis(5), abandoned)
                .await
                .is_err()
        );
        assert_eq!(batcher.inner.in_flight.load(Ordering::SeqCst), 0);
        assert_eq!(
            batcher.submit_or_write(5, by_caller).await,
            Some((5, "caller"))
        );
    }

    #[tokio::test]
    async fn an_item_whose_caller_left_before_it_was_handed_over_is_not_counted() {
        // One writer, stuck on its first item; the channel holds two more.
        let batcher = Batcher::new(1, 1, |_: Vec<u32>| std::future::pending::<Vec<u32>>());
        let stuck: Vec<_> = (0..3)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { b.submit(i).await })
            })
            .collect();
        while batcher.inner.in_flight.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        let waiting = batcher.submit(3);
        assert!(
            tokio::time::timeout(Duration::from_millis(5), waiting)
                .await
                .is_err()
        );
        assert_eq!(batcher.inner.in_flight.load(Ordering::SeqCst), 3);
        stuck.iter().for_each(|call| call.abort());
    }

    #[test]
    fn each_thread_gets_its_own_value_made_once() {
        let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = made.clone();
        let values = Arc::new(PerThread::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::current().id()
        }));
        assert_eq!(values.get(), std::thread::current().id());
        assert_eq!(values.get(), std::thread::current().id());
        let other = values.clone();
        let there = std::thread::spawn(move || (other.get(), std::thread::current().id()));
        let (got, id) = there.join().unwrap();
        assert_eq!(got, id);
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
