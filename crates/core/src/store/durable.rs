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

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use super::StoreError;

#[derive(Debug)]
struct State {
    /// Every write numbered up to this one is on disk.
    durable: u64,
    /// A sync is under way.
    syncing: bool,
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
    synced: Condvar,
    /// How many syncs ran (tests and benchmarks read it to show that commits share them).
    syncs: AtomicU64,
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
            }),
            synced: Condvar::new(),
            syncs: AtomicU64::new(0),
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

    /// Returns once the write numbered `write` (see [`Self::applied`]) is durable.
    ///
    /// # Errors
    /// The sync failed; the write may or may not be on disk, and the caller must say it failed.
    pub(super) fn wait(&self, write: u64) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.durable >= write {
                return Ok(());
            }
            if state.syncing {
                state = self.synced.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.syncing = true;
            // IMPORTANT: read after taking the syncer's role: every commit applied before this load is in sled's
            // buffers, so the sync below makes it durable.
            let target = self.last_applied();
            drop(state);
            let result = self.sync();
            state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.syncing = false;
            if result.is_ok() {
                state.durable = state.durable.max(target);
            }
            self.synced.notify_all();
            result?;
        }
    }

    /// Makes everything applied so far durable, now (a key rotation's steps, which hold the write lock).
    pub(super) fn sync_now(&self) -> Result<(), StoreError> {
        let target = self.last_applied();
        self.sync()?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.durable = state.durable.max(target);
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

    /// Sixteen writers that write at the same time share a few syncs, and each returns only once its own write is
    /// covered by a finished sync.
    #[test]
    fn concurrent_writes_share_one_sync() {
        let tmp = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(tmp.path()).open().unwrap();
        let mut durable = Durability::new(db.clone(), tmp.path().join("db")).unwrap();
        durable.delay = Duration::from_millis(50);
        let durable = Arc::new(durable);
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
}
