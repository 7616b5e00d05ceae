//! Opening sled so that a failed open changes nothing, and what Tokenkeep knows about a store outside it.
//!
//! sled repairs its log while it opens: a torn or damaged segment is zeroed and the log cut there, whoever opens
//! it and whatever for. On a damaged store that turns a one-byte fault into a permanent loss, made by a read-only
//! command. So the vault opens sled only after copying its files aside ([`Preserved`]); when the open fails, or
//! opens a store that lost committed changes (its generation is older than the newest backup's), the copy is put
//! back byte for byte before the error is returned.
//!
//! ```text
//! <profile dir>/
//!   store.lock         held (flock) by the process that has the store open, before sled is touched
//!   store.marker       "a store with key <id> lives here": an empty store is never started silently over it
//!   store/.pre-open/   the copy of sled's files while an open is in progress (removed after)
//!   store/.probe/      a scratch copy without snapshots, to learn whether the log alone is sound
//! ```

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::profile::ProfilePaths;
use crate::secret::KeyId;

use super::StoreError;
use super::holder::Holder;

/// The advisory lock that keeps a second opener away from sled's files while the first copies and opens them.
#[derive(Debug)]
pub(super) struct OpenLock {
    _file: File,
}

impl OpenLock {
    /// Takes the profile's open lock, or says who holds the store: [`StoreError::Locked`] with the holder file's
    /// words. A running app or daemon is not waited for (see [`Self::acquire`]).
    pub(super) fn take(paths: &ProfilePaths) -> Result<Self, StoreError> {
        let (lock_path, store_dir) = (paths.store_lock(), paths.store_dir());
        let held_for_long = || Holder::read(&store_dir).is_some_and(|holder| holder.holds_for_long());
        Self::acquire(&lock_path, held_for_long)
            .map_err(StoreError::io("lock", &lock_path))?
            .ok_or_else(|| StoreError::Locked {
                holder: Holder::read(&store_dir),
                path: store_dir.clone(),
            })
    }

    /// Takes the lock at `path`, waiting up to a second for a process that is about to let go — unless
    /// `held_for_long` says the holder keeps it (the app, the daemon: the CLI then goes to its socket at once
    /// instead of waiting a second on every command).
    ///
    /// # Errors
    /// `Ok(None)` when another process holds it; `Err` when the file cannot be opened.
    pub(super) fn acquire(path: &Path, held_for_long: impl Fn() -> bool) -> io::Result<Option<Self>> {
        let file = super::holder::private_file(path)?;
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut delay = Duration::from_millis(10);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(Self { _file: file })),
                Err(fs::TryLockError::WouldBlock) if held_for_long() => return Ok(None),
                Err(fs::TryLockError::WouldBlock) if Instant::now() + delay < deadline => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// A byte-exact copy of sled's files, taken before sled opens them.
#[derive(Debug)]
pub(super) struct Preserved {
    db_dir: PathBuf,
    copy: PathBuf,
    /// Paths relative to `db_dir` of every file copied.
    files: Vec<PathBuf>,
    done: bool,
}

impl Preserved {
    /// Copies every file below `db_dir` to `copy` (replacing an older copy left by a crash).
    pub(super) fn take(db_dir: &Path, copy: &Path) -> io::Result<Self> {
        remove_all(copy)?;
        let files = files_below(db_dir)?;
        for rel in &files {
            let to = copy.join(rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::copy(db_dir.join(rel), &to)?;
        }
        Ok(Self {
            db_dir: db_dir.to_owned(),
            copy: copy.to_owned(),
            files,
            done: false,
        })
    }

    /// The copy, for a probe.
    pub(super) fn copy_dir(&self) -> &Path {
        &self.copy
    }

    /// Puts every file back exactly as it was and removes the files sled created since. Every handle on the
    /// database must be closed first.
    pub(super) fn restore(&self) -> io::Result<()> {
        for rel in files_below(&self.db_dir)? {
            if !self.files.contains(&rel) {
                fs::remove_file(self.db_dir.join(&rel))?;
            }
        }
        for rel in &self.files {
            let to = self.db_dir.join(rel);
            fs::copy(self.copy.join(rel), &to)?;
            File::open(&to)?.sync_all()?;
        }
        Ok(())
    }

    /// The open succeeded: the copy is no longer needed.
    pub(super) fn discard(mut self) {
        self.done = true;
        let _ = remove_all(&self.copy);
    }
}

impl Drop for Preserved {
    /// An early return after sled opened the files (wrong key, damaged meta, missing key…) puts them back.
    /// IMPORTANT: declare the `Preserved` before every database handle, so that the handles drop first.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Err(error) = self.restore() {
            tracing::error!(%error, copy = %self.copy.display(), "could not put the store's files back as they were; the copy is kept");
            return;
        }
        let _ = remove_all(&self.copy);
    }
}

/// The snapshot files sled keeps beside its log (`snap.<lsn>`), which it rebuilds from the log when they are absent.
pub(super) fn snapshots(db_dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(db_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("snap."))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A scratch copy of `from` without its snapshots, at `to`.
pub(super) fn copy_without_snapshots(from: &Path, to: &Path) -> io::Result<()> {
    remove_all(to)?;
    for rel in files_below(from)? {
        if rel.to_str().is_some_and(|n| n.starts_with("snap.")) {
            continue;
        }
        let dest = to.join(&rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(from.join(&rel), dest)?;
    }
    fs::create_dir_all(to.join("blobs"))?;
    Ok(())
}

/// Every regular file below `dir`, relative to it, sorted.
fn files_below(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let entries = match fs::read_dir(dir.join(&rel)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = rel.join(entry.file_name());
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(super) fn remove_all(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The marker a store leaves in its profile directory: it holds the key id, so that a missing store is noticed.
pub(super) fn read_marker(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Writes the marker (atomically; a failure only loses the protection, never the store).
pub(super) fn write_marker(path: &Path, key: KeyId) {
    let text = format!("{key}\n");
    if read_marker(path).as_deref() == Some(text.trim()) {
        return;
    }
    let tmp = path.with_extension("marker.tmp");
    let result = (|| -> io::Result<()> {
        use std::io::Write as _;
        let mut file = super::holder::private_file(&tmp)?;
        file.set_len(0)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(error) = result {
        tracing::warn!(%error, path = %path.display(), "could not write the store marker");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_puts_back_every_byte_and_removes_new_files() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("sled");
        fs::create_dir_all(db.join("blobs")).unwrap();
        fs::write(db.join("db"), b"original log").unwrap();
        fs::write(db.join("conf"), b"conf").unwrap();
        fs::write(db.join("snap.00"), b"snapshot").unwrap();
        let preserved = Preserved::take(&db, &tmp.path().join(".pre-open")).unwrap();
        fs::write(db.join("db"), b"zeroed\0\0\0\0\0\0\0\0\0\0\0").unwrap();
        fs::remove_file(db.join("snap.00")).unwrap();
        fs::write(db.join("snap.ff"), b"new").unwrap();
        drop(preserved);
        assert_eq!(fs::read(db.join("db")).unwrap(), b"original log");
        assert_eq!(fs::read(db.join("snap.00")).unwrap(), b"snapshot");
        assert!(!db.join("snap.ff").exists());
        assert!(!tmp.path().join(".pre-open").exists());

        let preserved = Preserved::take(&db, &tmp.path().join(".pre-open")).unwrap();
        fs::write(db.join("db"), b"changed by a good open").unwrap();
        preserved.discard();
        assert_eq!(fs::read(db.join("db")).unwrap(), b"changed by a good open");
        assert!(!tmp.path().join(".pre-open").exists());
    }

    #[test]
    fn the_open_lock_keeps_a_second_opener_out() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("store.lock");
        let first = OpenLock::acquire(&path, || false).unwrap();
        assert!(first.is_some());
        let started = Instant::now();
        assert!(OpenLock::acquire(&path, || false).unwrap().is_none());
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "it did not wait for a holder about to let go"
        );
        // A holder that keeps the store (the app, the daemon) is not waited for.
        let started = Instant::now();
        assert!(OpenLock::acquire(&path, || true).unwrap().is_none());
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "it waited for a long-running holder"
        );
        drop(first);
        assert!(OpenLock::acquire(&path, || true).unwrap().is_some());
    }
}
