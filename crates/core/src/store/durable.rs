//! What "committed" means: on the disk, not in a cache — and at the cost of one sync shared by every writer
//! that is waiting at the time (group commit).
//!
//! sled's `flush` writes its buffers and calls `sync_file_range`, which starts and waits for the page writeback
//! but flushes neither the drive's volatile write cache nor the file's size and allocation: after a power loss a
//! "flushed" commit can be gone. So after sled's flush, the log file (`store/sled/db`, where sled keeps every
//! record) is `fdatasync`ed, as SQLite does in WAL mode with `synchronous=FULL`; on Linux `fdatasync` also issues
//! the cache flush to the device. `docs/SECURITY.md` states the guarantee.
//!
//! Group commit: a write (a commit, or a refresh's in-flight marker) is applied to sled in memory, numbered here
//! ([`Durability::applied`]), and the writer waits (the vault's write lock released) until its number is durable.
//! The first waiter becomes the syncer and makes durable everything applied so far; writers that applied meanwhile
//! wait for the next round, which one of them runs. N concurrent writes therefore cost about two syncs, not N.
//!
//! Two kinds of waiter share the rounds: a thread ([`Durability::wait`]) blocks on a condition variable and syncs
//! on itself when it is the syncer; an async task ([`Durability::settled`], the refresh engine) holds no thread
//! while it waits, and when it is the syncer it runs the round on tokio's blocking pool. So a storm of refreshes
//! waiting for the disk occupies one blocking thread (the sync under way), not one per waiter, and the async
//! workers never wait for the disk.

use std::fs::File;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::sync::Notify;

use super::StoreError;

/// How long an async syncer waits before its round, so that the commits of refreshes finishing meanwhile share
/// it. A refresh takes tens of milliseconds at a platform; 5 ms more is not felt. Each round is a handoff to
/// sled's I/O thread, a write and a flush of its log, an `fdatasync` and the wake-up of every waiter: in a storm
/// of refreshes at concurrency 4 it was the largest cost left once commits stopped being sled transactions, and
/// the window sets how many rounds there are (per refresh: 0.8–0.9 without one, 0.24 at 2 ms, 0.12 at 5 ms, with
/// the CPU per refresh 430–510 µs at 2 ms and 330–400 µs at 5 ms; the `refresh_storm` bench).
const COMMIT_WINDOW: std::time::Duration = std::time::Duration::from_millis(5);

/// The syncer's role, held by an async syncer across its commit window; dropped while `held` (the task cancelled
/// before its round began), it is given back.
struct Role<'a> {
    durable: &'a Durability,
    /// The round has not started yet.
    held: bool,
}

impl Drop for Role<'_> {
    fn drop(&mut self) {
        if self.held {
            self.durable.abandon_round();
        }
    }
}

#[derive(Debug)]
struct State {
    /// Every write numbered up to this one is on disk.
    durable: u64,
    /// A sync is under way.
    syncing: bool,
    /// An async syncer is in its commit window: the next round is spoken for, but has not begun. A blocking
    /// waiter does not wait for it (the task may need a worker that the waiter's own thread keeps blocked): it
    /// takes the round over.
    window: bool,
}

/// The store's durability point: sled's flush, then `fdatasync` of the log.
#[derive(Debug)]
pub(super) struct Durability {
    db: sled::Db,
    log: File,
    log_path: PathBuf,
    /// The number of the last write applied to sled (see [`Durability::applied`]).
    applied: AtomicU64,
    state: Mutex<State>,
    /// Wakes the threads waiting in [`Self::wait`] when a round ends.
    synced: Condvar,
    /// Wakes the tasks waiting in [`Self::settled`] when a round ends.
    settled: Notify,
    /// How many syncs ran (tests and benchmarks read it to show that commits share them).
    syncs: AtomicU64,
    /// [`COMMIT_WINDOW`], or another in tests.
    commit_window: std::time::Duration,
    /// A slow disk, for the group-commit test.
    #[cfg(test)]
    delay: std::time::Duration,
}

impl Durability {
    /// The durability of `db`, whose log is `log_path`; what sled holds when this is made is on disk.
    pub(super) fn new(db: sled::Db, log_path: PathBuf) -> std::io::Result<Self> {
        // Read-only is enough: on Linux fdatasync works on any descriptor of the file.
        let log = File::open(&log_path)?;
        Ok(Self {
            db,
            log,
            log_path,
            applied: AtomicU64::new(0),
            state: Mutex::new(State {
                durable: 0,
                syncing: false,
                window: false,
            }),
            synced: Condvar::new(),
            settled: Notify::new(),
            syncs: AtomicU64::new(0),
            commit_window: COMMIT_WINDOW,
            #[cfg(test)]
            delay: std::time::Duration::ZERO,
        })
    }

    /// Numbers a write that sled has just applied (call it after sled returns): [`Self::wait`] with the number
    /// returns once that write is on disk.
    pub(super) fn applied(&self) -> u64 {
        self.applied.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The number of the last write applied so far.
    pub(super) fn last_applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Returns once the write numbered `write` (see [`Self::applied`]) is durable, blocking this thread.
    ///
    /// # Errors
    /// The sync failed; the write may or may not be on disk, and the caller must say it failed.
    pub(super) fn wait(&self, write: u64) -> Result<(), StoreError> {
        let mut state = self.lock();
        loop {
            if state.durable >= write {
                return Ok(());
            }
            if state.syncing {
                state = self.synced.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // An async syncer's window, if one is open, is taken over (see `State::window`).
            state.window = false;
            state.syncing = true;
            // IMPORTANT: read after taking the syncer's role: every commit applied before this load is in sled's
            // buffers, so the round's sync makes it durable.
            let target = self.last_applied();
            drop(state);
            self.round(target)?;
            state = self.lock();
        }
    }

    /// Returns once the write numbered `write` is durable, without holding a thread while it waits: when this
    /// task is the syncer, the round runs on the blocking pool. Dropping the future mid-round is harmless (the
    /// round finishes on its own and wakes the others).
    ///
    /// # Errors
    /// As [`Self::wait`].
    pub(super) async fn settled(self: &Arc<Self>, write: u64) -> Result<(), StoreError> {
        // A current-thread runtime (tests, one-shot tools) has no other worker to keep busy meanwhile: waiting in
        // place keeps its interleavings deterministic, as the engine's tests need.
        if tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
        {
            return self.wait(write);
        }
        loop {
            // IMPORTANT: registered before the state is read, so a round that ends in between still wakes us.
            let mut woken = pin!(self.settled.notified());
            woken.as_mut().enable();
            let syncer = {
                let mut state = self.lock();
                if state.durable >= write {
                    return Ok(());
                }
                let syncer = !state.syncing && !state.window;
                state.window |= syncer;
                syncer
            };
            if !syncer {
                woken.await;
                continue;
            }
            // The next round is ours; a drop (the task cancelled) before it begins gives it back.
            let mut role = Role {
                durable: self,
                held: true,
            };
            // Let the writes of the refreshes finishing around now join this round: one sync for several. A
            // round that ends meanwhile (a blocking waiter took this one over) may already cover our write.
            tokio::select! {
                () = tokio::time::sleep(self.commit_window) => {}
                () = &mut woken => {}
            }
            role.held = false;
            let target = {
                let mut state = self.lock();
                if !state.window {
                    // A blocking waiter took the round over meanwhile: wait for it like everyone else.
                    continue;
                }
                state.window = false;
                state.syncing = true;
                // IMPORTANT: read as the syncer, after the window: every commit applied before this load is in
                // sled's buffers, so the round's sync makes it durable.
                self.last_applied()
            };
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.round(target))
                .await
                .map_err(|_| StoreError::Io {
                    context: "sync to disk",
                    path: self.log_path.clone(),
                    source: std::io::Error::other("the sync was cut short"),
                })??;
        }
    }

    /// One round: syncs, records how far the disk now is, and wakes every waiter of either kind.
    fn round(&self, target: u64) -> Result<(), StoreError> {
        let result = self.sync();
        let mut state = self.lock();
        state.syncing = false;
        if result.is_ok() {
            state.durable = state.durable.max(target);
        }
        drop(state);
        self.synced.notify_all();
        self.settled.notify_waiters();
        result
    }

    /// Gives up the syncer's role without a round (a cancelled async syncer), so that another waiter takes it.
    fn abandon_round(&self) {
        self.lock().window = false;
        self.synced.notify_all();
        self.settled.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes everything applied so far durable, now (a key rotation's steps, which hold the write lock).
    pub(super) fn sync_now(&self) -> Result<(), StoreError> {
        let target = self.last_applied();
        self.sync()?;
        let mut state = self.lock();
        state.durable = state.durable.max(target);
        drop(state);
        self.synced.notify_all();
        self.settled.notify_waiters();
        Ok(())
    }

    /// How many syncs have run.
    pub(super) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        std::thread::sleep(self.delay);
        self.db.flush().map_err(StoreError::db("flushing to disk"))?;
        self.log.sync_data().map_err(|source| StoreError::Io {
            context: "sync to disk",
            path: self.log_path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A store's durability in a fresh directory, adjusted by `adjust` (a slow disk, a long window).
    fn durability(adjust: impl FnOnce(&mut Durability)) -> (tempfile::TempDir, sled::Db, Arc<Durability>) {
        let tmp = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(tmp.path()).open().unwrap();
        let mut durable = Durability::new(db.clone(), tmp.path().join("db")).unwrap();
        adjust(&mut durable);
        (tmp, db, Arc::new(durable))
    }

    /// Sixteen writers that write at the same time share a few syncs, and each returns only once its own write is
    /// covered by a finished sync.
    #[test]
    fn concurrent_writes_share_one_sync() {
        let (_tmp, db, durable) = durability(|d| d.delay = Duration::from_millis(50));
        let threads: Vec<_> = (0..16)
            .map(|n| {
                let (durable, db) = (durable.clone(), db.clone());
                std::thread::spawn(move || {
                    db.insert([n], vec![n]).unwrap();
                    let write = durable.applied();
                    durable.wait(write).unwrap();
                    let state = durable.state.lock().unwrap();
                    assert!(state.durable >= write);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let syncs = durable.syncs();
        assert!((1..=4).contains(&syncs), "16 writes took {syncs} syncs");
    }

    /// Async waiters on a multi-threaded runtime share the rounds with blocking ones, hold no worker while they
    /// wait (sixty-four of them on two workers), and each returns only once its write is durable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_and_blocking_waiters_share_the_rounds() {
        let (_tmp, db, durable) = durability(|d| d.delay = Duration::from_millis(30));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..64u8 {
            let (durable, db) = (durable.clone(), db.clone());
            tasks.spawn(async move {
                db.insert([n], vec![n]).unwrap();
                let write = durable.applied();
                durable.settled(write).await.unwrap();
                assert!(durable.lock().durable >= write);
            });
        }
        let blocking = {
            let (durable, db) = (durable.clone(), db.clone());
            std::thread::spawn(move || {
                db.insert([200], vec![200]).unwrap();
                let write = durable.applied();
                durable.wait(write).unwrap();
                assert!(durable.lock().durable >= write);
            })
        };
        // While the waiters wait, the two workers still run other tasks promptly.
        let started = std::time::Instant::now();
        tokio::task::yield_now().await;
        assert!(
            started.elapsed() < Duration::from_millis(25),
            "a worker was held by a waiter"
        );
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        blocking.join().unwrap();
        let syncs = durable.syncs();
        assert!((1..=8).contains(&syncs), "65 writes took {syncs} syncs");
    }

    /// A waiter dropped in its commit window or while its round runs leaves nobody stuck: the round finishes and the next waiter is served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_syncer_does_not_strand_the_others() {
        let (_tmp, db, durable) = durability(|d| d.delay = Duration::from_millis(100));
        db.insert([1], vec![1]).unwrap();
        let first = durable.applied();
        // Dropped at once: inside its commit window, before its round began.
        let cancelled = tokio::time::timeout(Duration::ZERO, durable.settled(first)).await;
        assert!(cancelled.is_err(), "the window should still be open");
        assert!(!durable.lock().window, "the round was given back");
        // Dropped during its round.
        let cancelled = tokio::time::timeout(Duration::from_millis(20), durable.settled(first)).await;
        assert!(cancelled.is_err(), "the round should still be running");
        db.insert([2], vec![2]).unwrap();
        let second = durable.applied();
        tokio::time::timeout(Duration::from_secs(10), durable.settled(second))
            .await
            .expect("the second write became durable")
            .unwrap();
        assert!(durable.lock().durable >= second);
    }

    /// The deadlock a commit window could cause: a thread holds a lock that the runtime's only worker is blocked
    /// on, and waits for the disk while an async syncer sits in its window (its timer needs that worker). The
    /// thread takes the round over instead of waiting for the task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_blocking_waiter_takes_over_a_window_it_cannot_wait_for() {
        let (_tmp, db, durable) = durability(|d| d.commit_window = Duration::from_secs(60));
        db.insert([1], vec![1]).unwrap();
        let first = durable.applied();
        let syncer = tokio::spawn({
            let durable = durable.clone();
            async move { durable.settled(first).await }
        });
        while !durable.lock().window {
            std::thread::sleep(Duration::from_millis(1));
        }
        let lock = Arc::new(Mutex::new(()));
        let (held, done) = (std::sync::mpsc::channel(), std::sync::mpsc::channel());
        let thread = std::thread::spawn({
            let (lock, durable, db) = (lock.clone(), durable.clone(), db.clone());
            move || {
                let _guard = lock.lock().unwrap();
                held.0.send(()).unwrap();
                db.insert([2], vec![2]).unwrap();
                let write = durable.applied();
                durable.wait(write).unwrap();
                done.0.send(write).unwrap();
            }
        });
        held.1.recv().unwrap();
        // The only worker blocks on the lock the thread holds.
        let blocked = tokio::spawn(async move { drop(lock.lock().unwrap()) });
        let write = done
            .1
            .recv_timeout(Duration::from_secs(10))
            .expect("the thread's write became durable");
        assert!(durable.lock().durable >= write);
        thread.join().unwrap();
        blocked.await.unwrap();
        // The task whose window was taken over is served by that round.
        tokio::time::timeout(Duration::from_secs(10), syncer)
            .await
            .expect("the syncer returned")
            .unwrap()
            .unwrap();
    }
}
