//! Sealed backups of the store: after every committed change, a copy of every sealed record beside the store, so
//! that damage to sled's files costs at most what changed since — never every account.
//!
//! A backup holds the records exactly as stored (they are envelopes already, each bound to its profile, tree,
//! record and field), the store's generation (a counter every commit increments), and a MAC over the whole file
//! under a key derived from the master key: a backup that was altered, cut short or written for another profile
//! does not verify, and nothing in it is plaintext. `docs/FORMAT.md` gives the byte layout.
//!
//! ```text
//! <profile dir>/backups/          0700
//!   backup-<generation:020>.tkb   0600   the newest KEEP, older ones pruned
//! ```
//!
//! Files are written atomically (a temporary file, fsync, rename, fsync of the directory), so a crash leaves the
//! previous backups intact. The writer runs on its own thread and coalesces a burst of commits into one backup of
//! the newest state.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac as _};
use sha2::Sha256;

use crate::secret::{KEY_ID_LEN, KeyId, MasterKey};

/// How many backups are kept.
pub const KEEP: usize = 3;
/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"TKBACKUP";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// HKDF-SHA-256 salt of the backup MAC key: fixed and public, it separates this key from every record key.
const MAC_SALT: &[u8] = b"tokenkeep/v1/backup-mac";
/// Length of the MAC at the end of the file.
const MAC_LEN: usize = 32;
/// The largest backup read back (a store of 100,000 connections is far below).
const MAX_FILE: u64 = 512 * 1024 * 1024;
/// How long the writer waits after a commit for more commits, so that a burst makes one backup.
const COALESCE: Duration = Duration::from_millis(200);
/// Between two backups the writer waits at least this many times as long as the last one took, so that backups
/// of a large store take at most about 2% of one core however fast commits come (a refresh storm)…
const PACE_FACTOR: u32 = 50;
/// … but never longer than this: a backup is at most this far behind the last commit.
const MAX_PACE: Duration = Duration::from_secs(5);

/// One sealed value of the store, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    /// The tree (`connections`, `tokens/<provider>`, `clients`).
    pub tree: String,
    /// The record's key in that tree, as stored.
    pub key: Vec<u8>,
    /// The envelope, as stored.
    pub value: Vec<u8>,
}

/// The public facts of a backup file, readable without the key ([`read_header`]; they are authenticated by the
/// MAC, which [`Backup::decode`] checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupHeader {
    /// The master key whose derived key MACs the file (and which sealed its records, but during a rotation).
    pub key_id: KeyId,
    /// The store's generation when the backup was taken.
    pub generation: u64,
    /// When it was taken (Unix seconds).
    pub created_at: u64,
    /// The profile it belongs to.
    pub profile: String,
    /// How many records it holds.
    pub records: u32,
}

/// A verified backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// Its facts.
    pub header: BackupHeader,
    /// Every sealed record.
    pub records: Vec<BackupRecord>,
}

/// A backup file found in the backups directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its header, or why it cannot be read.
    pub header: Result<BackupHeader, BackupError>,
}

/// Why a backup cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// Not a backup file, or one of another version, or cut short.
    #[error("it is not a Tokenkeep backup of a version this build reads, or it is cut short")]
    Malformed,
    /// The MAC does not verify: altered, damaged, or made with another key or for another profile.
    #[error("it was altered or damaged (its MAC does not verify)")]
    BadMac,
    /// The key that MACs it is not available.
    #[error("it was made with key {0}, which is not available")]
    KeyUnavailable(KeyId),
    /// It could not be read.
    #[error("it cannot be read: {0}")]
    Io(String),
}

impl Backup {
    /// The file's bytes: header, records, and the MAC under `key` (the store's current key).
    pub(crate) fn encode(&self, key: &MasterKey) -> Vec<u8> {
        let size: usize = self
            .records
            .iter()
            .map(|r| 2 + r.tree.len() + 2 + r.key.len() + 4 + r.value.len())
            .sum();
        let mut out = Vec::with_capacity(64 + self.header.profile.len() + size + MAC_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(key.id().as_bytes());
        out.extend_from_slice(&self.header.generation.to_be_bytes());
        out.extend_from_slice(&self.header.created_at.to_be_bytes());
        push_short(&mut out, self.header.profile.as_bytes());
        out.extend_from_slice(&(self.records.len() as u32).to_be_bytes());
        for record in &self.records {
            push_short(&mut out, record.tree.as_bytes());
            push_short(&mut out, &record.key);
            out.extend_from_slice(&(record.value.len() as u32).to_be_bytes());
            out.extend_from_slice(&record.value);
        }
        let mac = mac(key, &self.header.profile, &out);
        out.extend_from_slice(&mac);
        out
    }

    /// Reads a backup and checks its MAC with the key it names (`key_for`), for `profile`.
    ///
    /// # Errors
    /// [`BackupError::Malformed`], [`BackupError::KeyUnavailable`], [`BackupError::BadMac`] (also for a backup
    /// of another profile).
    pub fn decode(
        bytes: &[u8],
        profile: &str,
        key_for: impl FnOnce(KeyId) -> Option<MasterKey>,
    ) -> Result<Self, BackupError> {
        let (header, body_end) = parse(bytes)?;
        let key = key_for(header.key_id).ok_or(BackupError::KeyUnavailable(header.key_id))?;
        let (body, tag) = bytes.split_at(body_end);
        let mut check = mac_state(&key, profile);
        check.update(body);
        check.verify_slice(tag).map_err(|_| BackupError::BadMac)?;
        if header.profile != profile {
            return Err(BackupError::BadMac);
        }
        let records = parse_records(bytes, &header)?;
        Ok(Self { header, records })
    }
}

fn push_short(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn mac_state(key: &MasterKey, profile: &str) -> Hmac<Sha256> {
    let mut derived = zeroize::Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(MAC_SALT), key.dangerously_expose_bytes())
        .expand(profile.as_bytes(), derived.as_mut())
        .expect("32 bytes is a valid HKDF-SHA-256 output length");
    <Hmac<Sha256> as KeyInit>::new_from_slice(derived.as_ref()).expect("HMAC takes a key of any length")
}

fn mac(key: &MasterKey, profile: &str, body: &[u8]) -> [u8; MAC_LEN] {
    let mut state = mac_state(key, profile);
    state.update(body);
    state.finalize().into_bytes().into()
}

/// A bounds-checked reader over the file.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BackupError> {
        let end = self.at.checked_add(n).ok_or(BackupError::Malformed)?;
        let slice = self.bytes.get(self.at..end).ok_or(BackupError::Malformed)?;
        self.at = end;
        Ok(slice)
    }
    fn u16(&mut self) -> Result<usize, BackupError> {
        Ok(usize::from(u16::from_be_bytes(
            self.take(2)?.try_into().map_err(|_| BackupError::Malformed)?,
        )))
    }
    fn u32(&mut self) -> Result<u32, BackupError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().map_err(|_| BackupError::Malformed)?,
        ))
    }
    fn u64(&mut self) -> Result<u64, BackupError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().map_err(|_| BackupError::Malformed)?,
        ))
    }
}

/// The header, and where the MAC begins.
fn parse(bytes: &[u8]) -> Result<(BackupHeader, usize), BackupError> {
    let body_end = bytes.len().checked_sub(MAC_LEN).ok_or(BackupError::Malformed)?;
    Ok((head(&bytes[..body_end])?, body_end))
}

/// The header at the start of `body` (the file without its MAC, or a prefix of it).
fn head(body: &[u8]) -> Result<BackupHeader, BackupError> {
    let mut c = Cursor { bytes: body, at: 0 };
    if c.take(MAGIC.len())? != MAGIC || c.take(1)?[0] != VERSION {
        return Err(BackupError::Malformed);
    }
    let key_id = KeyId::from_bytes(c.take(KEY_ID_LEN)?.try_into().map_err(|_| BackupError::Malformed)?);
    let generation = c.u64()?;
    let created_at = c.u64()?;
    let len = c.u16()?;
    let profile = std::str::from_utf8(c.take(len)?)
        .map_err(|_| BackupError::Malformed)?
        .to_owned();
    let records = c.u32()?;
    Ok(BackupHeader {
        key_id,
        generation,
        created_at,
        profile,
        records,
    })
}

/// The largest header there is (magic, version, key id, generation, date, profile, count).
const MAX_HEADER: u64 = 8 + 1 + KEY_ID_LEN as u64 + 8 + 8 + 2 + 65_535 + 4;

/// The header of the backup file at `path`, reading only its first bytes (listing must stay cheap however large
/// the backups are). Not authenticated: only [`Backup::decode`] checks the MAC.
///
/// # Errors
/// [`BackupError::Io`], [`BackupError::Malformed`].
pub fn read_header(path: &Path) -> Result<BackupHeader, BackupError> {
    use std::io::Read as _;
    let io = |e: io::Error| BackupError::Io(e.to_string());
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_FILE {
        return Err(BackupError::Malformed);
    }
    let body = len.checked_sub(MAC_LEN as u64).ok_or(BackupError::Malformed)?;
    let mut prefix = Vec::new();
    file.take(body.min(MAX_HEADER)).read_to_end(&mut prefix).map_err(io)?;
    head(&prefix)
}

fn parse_records(bytes: &[u8], header: &BackupHeader) -> Result<Vec<BackupRecord>, BackupError> {
    let body_end = bytes.len() - MAC_LEN;
    let mut c = Cursor {
        bytes: &bytes[..body_end],
        at: MAGIC.len() + 1 + KEY_ID_LEN + 8 + 8 + 2 + header.profile.len() + 4,
    };
    let mut records = Vec::with_capacity(header.records.min(1 << 20) as usize);
    for _ in 0..header.records {
        let len = c.u16()?;
        let tree = std::str::from_utf8(c.take(len)?)
            .map_err(|_| BackupError::Malformed)?
            .to_owned();
        let len = c.u16()?;
        let key = c.take(len)?.to_vec();
        let len = c.u32()? as usize;
        let value = c.take(len)?.to_vec();
        records.push(BackupRecord { tree, key, value });
    }
    if c.at != body_end {
        return Err(BackupError::Malformed);
    }
    Ok(records)
}

/// The backup files in `dir`, newest generation first. A file that cannot be read is listed with its error.
pub fn list(dir: &Path) -> Vec<BackupFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<BackupFile> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tkb"))
        .map(|path| {
            let header = read_header(&path);
            BackupFile { path, header }
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.header.as_ref().map_or(0, |h| h.generation)));
    files
}

/// The file's bytes, refusing anything larger than a backup can be.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, BackupError> {
    let size = std::fs::metadata(path)
        .map_err(|e| BackupError::Io(e.to_string()))?
        .len();
    if size > MAX_FILE {
        return Err(BackupError::Malformed);
    }
    std::fs::read(path).map_err(|e| BackupError::Io(e.to_string()))
}

/// The generation and date (Unix seconds) of the newest readable backup in `dir`: its header, unauthenticated,
/// which is enough to notice that the store lost commits — a forged header can only make Tokenkeep refuse to
/// open, never accept.
pub fn newest(dir: &Path) -> Option<(u64, u64)> {
    list(dir)
        .into_iter()
        .find_map(|f| f.header.ok())
        .map(|h| (h.generation, h.created_at))
}

/// Writes `bytes` as the backup of `generation` in `dir`, atomically, then prunes all but the newest [`KEEP`].
pub(crate) fn write(dir: &Path, generation: u64, bytes: &[u8]) -> io::Result<PathBuf> {
    crate::profile::create_private_dir(dir).map_err(io::Error::other)?;
    let name = format!("backup-{generation:020}.tkb");
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("backup-") && n.ends_with(".tkb"))
        })
        .collect();
    // The names sort by generation (zero-padded).
    names.sort();
    let excess = names.len().saturating_sub(KEEP);
    for old in &names[..excess] {
        let _ = std::fs::remove_file(old);
    }
    Ok(path)
}

/// Deletes the backups in `dir` made with `key` (after that key was deleted, they cannot be verified), unless no
/// other backup would remain.
pub(crate) fn remove_made_with(dir: &Path, key: KeyId) {
    let files = list(dir);
    let others = files
        .iter()
        .filter(|f| f.header.as_ref().is_ok_and(|h| h.key_id != key))
        .count();
    if others == 0 {
        return;
    }
    for file in files {
        if file.header.as_ref().is_ok_and(|h| h.key_id == key) {
            let _ = std::fs::remove_file(&file.path);
        }
    }
}

/// What the writer thread needs from the vault: a consistent snapshot and the key to MAC it with.
pub(crate) trait Source: Send + Sync + 'static {
    /// Every sealed record and the generation they are at, read under the vault's write lock.
    fn snapshot(&self) -> Option<(u64, Vec<BackupRecord>)>;
    /// The backup file of `records` at `generation`, MACed with the store's current key, dated now.
    fn encode(&self, generation: u64, records: Vec<BackupRecord>) -> Vec<u8>;
}

#[derive(Debug, Default)]
struct Pending {
    dirty: bool,
    stop: bool,
    /// Someone waits for the backup ([`BackupWriter::settle`]): no pacing.
    hurry: bool,
    /// The generation of the newest backup written.
    written: u64,
}

/// The background writer: [`BackupWriter::changed`] after each commit; a backup of the newest state follows.
#[derive(Debug)]
pub(crate) struct BackupWriter {
    shared: Arc<(Mutex<Pending>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl BackupWriter {
    /// Starts the writer for backups in `dir`.
    pub(crate) fn start(dir: PathBuf, source: Arc<dyn Source>, written: u64) -> Self {
        let shared = Arc::new((
            Mutex::new(Pending {
                written,
                ..Pending::default()
            }),
            Condvar::new(),
        ));
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tokenkeep-backup".into())
            .spawn(move || run(&dir, &*source, &state))
            .map_err(|e| tracing::error!(error = %e, "cannot start the backup writer; backups are off"))
            .ok();
        Self { shared, thread }
    }

    /// A commit happened: a backup will follow.
    pub(crate) fn changed(&self) {
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(PoisonError::into_inner).dirty = true;
        wake.notify_one();
    }

    /// A backup of `generation` was written by someone else (the vault itself, under its write lock).
    pub(crate) fn written(&self, generation: u64) {
        let (lock, wake) = &*self.shared;
        let mut pending = lock.lock().unwrap_or_else(PoisonError::into_inner);
        pending.written = pending.written.max(generation);
        wake.notify_all();
    }

    /// Waits until the backup of everything committed so far is on disk (tests, and before a restore).
    pub(crate) fn settle(&self, generation: u64) {
        let (lock, wake) = &*self.shared;
        let mut pending = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while pending.written < generation && std::time::Instant::now() < deadline && self.thread.is_some() {
            pending.dirty = true;
            pending.hurry = true;
            wake.notify_one();
            pending = wake
                .wait_timeout(pending, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for BackupWriter {
    fn drop(&mut self) {
        {
            let (lock, wake) = &*self.shared;
            lock.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
            wake.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(dir: &Path, source: &dyn Source, shared: &(Mutex<Pending>, Condvar)) {
    let (lock, wake) = shared;
    let pending = || lock.lock().unwrap_or_else(PoisonError::into_inner);
    let mut pace = COALESCE;
    loop {
        let stopping = {
            let mut state = pending();
            while !state.dirty && !state.stop {
                state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if !state.dirty {
                return; // stopped, nothing left to write
            }
            state.stop
        };
        if !stopping {
            // Let a burst of commits finish: one backup for all of them (a stop cuts the wait short).
            let state = pending();
            drop(
                wake.wait_timeout_while(state, pace, |s| !s.stop && !s.hurry)
                    .unwrap_or_else(PoisonError::into_inner),
            );
        }
        {
            let mut state = pending();
            state.dirty = false;
            state.hurry = false;
        }
        let started = std::time::Instant::now();
        if let Some((generation, records)) = source.snapshot()
            && generation > pending().written
        {
            match write(dir, generation, &source.encode(generation, records)) {
                Ok(path) => tracing::debug!(generation, path = %path.display(), "backup written"),
                Err(error) => tracing::error!(%error, dir = %dir.display(), "could not write a backup of the store"),
            }
            pending().written = generation;
            pace = (started.elapsed() * PACE_FACTOR).clamp(COALESCE, MAX_PACE);
        }
        wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; 32])
    }

    fn sample() -> Backup {
        Backup {
            header: BackupHeader {
                key_id: key(1).id(),
                generation: 42,
                created_at: 1_700_000_000,
                profile: "dev".into(),
                records: 2,
            },
            records: vec![
                BackupRecord {
                    tree: "connections".into(),
                    key: vec![1; 16],
                    value: vec![9; 100],
                },
                BackupRecord {
                    tree: "tokens/demo".into(),
                    key: b"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00access_token".to_vec(),
                    value: vec![7; 80],
                },
            ],
        }
    }

    #[test]
    fn a_backup_round_trips_and_every_altered_byte_is_refused() {
        let bytes = sample().encode(&key(1));
        assert_eq!(Backup::decode(&bytes, "dev", |_| Some(key(1))).unwrap(), sample());
        assert_eq!(parse(&bytes).unwrap().0, sample().header);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(Backup::decode(&bad, "dev", |_| Some(key(1))).is_err(), "byte {i}");
        }
        for cut in [0, 10, bytes.len() - 1] {
            assert!(
                Backup::decode(&bytes[..cut], "dev", |_| Some(key(1))).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(
            Backup::decode(&bytes, "dev", |_| Some(key(2))),
            Err(BackupError::BadMac),
            "another key"
        );
        assert_eq!(
            Backup::decode(&bytes, "prod", |_| Some(key(1))),
            Err(BackupError::BadMac),
            "another profile"
        );
        assert_eq!(
            Backup::decode(&bytes, "dev", |_| None),
            Err(BackupError::KeyUnavailable(key(1).id()))
        );
    }

    #[test]
    fn writing_keeps_the_newest_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        for generation in 1..=5 {
            let mut backup = sample();
            backup.header.generation = generation;
            write(dir.path(), generation, &backup.encode(&key(1))).unwrap();
        }
        let files = list(dir.path());
        let generations: Vec<u64> = files.iter().map(|f| f.header.as_ref().unwrap().generation).collect();
        assert_eq!(generations, [5, 4, 3]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), KEEP);
        assert_eq!(newest(dir.path()).map(|(generation, _)| generation), Some(5));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files[0].path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

/// Arbitrary bytes as a backup file (issue 12): reading one never panics, and nothing but a file this build
/// wrote with this key verifies.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_bytes_are_refused_without_a_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..400), magic: bool) {
            if magic && bytes.len() > 9 {
                bytes[..8].copy_from_slice(MAGIC);
                bytes[8] = VERSION;
            }
            let _ = parse(&bytes);
            let _ = head(&bytes);
            prop_assert!(Backup::decode(&bytes, "dev", |_| Some(MasterKey::from_bytes([7; 32]))).is_err());
        }
    }
}
