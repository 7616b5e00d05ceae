//! Restoring the store from its sealed backups, and starting over on purpose.
//!
//! A restore never deletes: the store it replaces is moved aside (`store.damaged-<time>` beside it), so that a
//! wrong choice can be undone by hand. The restored connections that hold a refresh token are marked
//! [`ConnectionStatus::CheckNeeded`]: the platform may have replaced that token since the backup was taken, and
//! only the next refresh can tell — never silently stale.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::Clock;
use crate::keys::KeySource;
use crate::profile::{ProfilePaths, create_private_dir};
use crate::secret::{KeyId, MasterKey};

use crate::envelope::{self, RecordLocation};

use super::backup::{self, Backup, BackupError, BackupFile, BackupHeader};
use super::error::RecordError;
use super::holder;
use super::model::{ConnectionId, ConnectionMeta, ConnectionStatus, TokenKind};
use super::recovery::{self, OpenLock};
use super::{
    FIELD_META, FORMAT_VERSION, META_FORMAT, META_GENERATION, META_KEY_ID, StoreError, TOKEN_TREE_PREFIX,
    TREE_CONNECTIONS, TREE_META, Vault, split_token_key,
};

/// Which backup to restore.
#[derive(Debug, Clone, Copy)]
pub enum RestoreFrom<'a> {
    /// The newest backup that verifies (older ones are tried when a newer one does not).
    Newest,
    /// This file.
    File(&'a Path),
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The backup restored.
    pub backup: PathBuf,
    /// Its generation.
    pub generation: u64,
    /// When it was taken (Unix seconds).
    pub taken_at: u64,
    /// How many connections it held.
    pub connections: usize,
    /// How many of them were marked "check needed" (they hold a refresh token that may have rotated since).
    pub check_needed: usize,
    /// Where the store it replaced went, if there was one.
    pub set_aside: Option<PathBuf>,
    /// Newer backups that could not be used, and why.
    pub skipped: Vec<(PathBuf, BackupError)>,
}

/// What a backup holds, opened with the key it names.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// Its facts.
    pub header: BackupHeader,
    /// Every connection in it, or why its record cannot be read.
    pub connections: Vec<(ConnectionId, Result<ConnectionMeta, RecordError>)>,
}

/// What starting over did.
#[derive(Debug, Clone)]
pub struct StartOverReport {
    /// Where the old store went, if there was one.
    pub set_aside: Option<PathBuf>,
    /// Where the old backups went, if there were any.
    pub backups_set_aside: Option<PathBuf>,
}

impl Vault {
    /// The backups of `paths`' profile, newest first (headers only; [`Vault::restore`] verifies).
    pub fn backups(paths: &ProfilePaths) -> Vec<BackupFile> {
        backup::list(&paths.backups_dir())
    }

    /// Reads and verifies a backup with the key it names.
    ///
    /// # Errors
    /// Why it cannot be used.
    pub fn verify_backup(paths: &ProfilePaths, keys: &KeySource, path: &Path) -> Result<Backup, BackupError> {
        let bytes = backup::read_bounded(path)?;
        Backup::decode(&bytes, paths.profile().as_str(), |id| key_for(keys, id))
    }

    /// Verifies a backup and opens its connections' metadata (never their tokens), to show what it holds.
    ///
    /// # Errors
    /// Why the backup cannot be used.
    pub fn describe_backup(paths: &ProfilePaths, keys: &KeySource, path: &Path) -> Result<BackupSummary, BackupError> {
        let backup = Self::verify_backup(paths, keys, path)?;
        let key = key_for(keys, backup.header.key_id).ok_or(BackupError::KeyUnavailable(backup.header.key_id))?;
        let profile = paths.profile().as_str();
        let connections = backup
            .records
            .iter()
            .filter(|r| r.tree == TREE_CONNECTIONS)
            .filter_map(|r| ConnectionId::from_slice(&r.key).map(|id| (id, &r.value)))
            .map(|(id, sealed)| {
                let location = RecordLocation {
                    profile,
                    tree: TREE_CONNECTIONS,
                    record_id: id.as_bytes(),
                    field: FIELD_META,
                };
                let meta = envelope::open(&key, &location, sealed)
                    .map_err(RecordError::from)
                    .and_then(|plain| super::meta_from_plain(&plain))
                    .map(|mut meta| {
                        meta.sanitize();
                        meta
                    });
                (id, meta)
            })
            .collect();
        Ok(BackupSummary {
            header: backup.header,
            connections,
        })
    }

    /// Replaces the store with a backup: the current store (damaged, missing or not) is moved aside, the backup's
    /// records are written back as they were sealed, and the store is opened. Connections holding a refresh token
    /// are marked [`ConnectionStatus::CheckNeeded`].
    ///
    /// # Errors
    /// [`StoreError::Locked`] while another process has the store open; [`StoreError::NoBackup`] when no backup
    /// verifies; I/O and database errors. The current store is only moved once a backup verified.
    pub fn restore(
        paths: &ProfilePaths,
        keys: KeySource,
        from: RestoreFrom<'_>,
        clock: Arc<dyn Clock>,
        program: &str,
    ) -> Result<(Self, RestoreReport), StoreError> {
        create_private_dir(paths.dir())?;
        let lock = OpenLock::take(paths)?;
        let candidates: Vec<PathBuf> = match from {
            RestoreFrom::File(path) => vec![path.to_owned()],
            RestoreFrom::Newest => Self::backups(paths).into_iter().map(|f| f.path).collect(),
        };
        let mut skipped = Vec::new();
        let mut chosen = None;
        for path in candidates {
            match Self::verify_backup(paths, &keys, &path) {
                Ok(backup) => {
                    chosen = Some((path, backup));
                    break;
                }
                Err(error) => skipped.push((path, error)),
            }
        }
        let Some((path, backup)) = chosen else {
            return Err(StoreError::NoBackup {
                dir: paths.backups_dir(),
                reasons: skipped.iter().map(|(p, e)| format!("{}: {e}", p.display())).collect(),
            });
        };
        let set_aside = set_aside(paths, clock.unix_secs())?;
        rebuild(&paths.store_dir(), &backup)?;
        let header = backup.header.clone();
        let check: Vec<ConnectionId> = refreshable(&backup);
        drop(backup);
        drop(lock);

        let vault = Self::open(paths, keys, clock, program)?;
        let connections = vault.list()?.len();
        let note = format!(
            "restored from the backup of {}: the platform may have replaced the refresh token since; the next \
             refresh checks it",
            crate::clock::rfc3339(header.created_at)
        );
        let mut marked = 0;
        // Backups hold no pictures (see `pictures`): a restored record that names one names nothing now, and
        // the window would ask for it in vain. It reads "no picture" until the next reconnect stores one.
        let pictured: Vec<ConnectionId> = vault
            .list()?
            .into_iter()
            .filter_map(|(id, meta)| meta.ok().filter(|m| m.picture.is_some()).map(|_| id))
            .collect();
        for id in pictured.iter().filter(|id| !check.contains(id)) {
            match vault.update_meta(*id, |m| m.picture = None) {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(error @ StoreError::Record { .. }) => tracing::warn!(%error, "a restored record is damaged"),
                Err(error) => return Err(error),
            }
        }
        for id in check {
            match vault.update_meta(id, |m| {
                m.status = ConnectionStatus::CheckNeeded;
                m.last_error = Some(note.clone());
                m.picture = None;
            }) {
                Ok(_) => marked += 1,
                Err(StoreError::NotFound(_)) => {}
                // A record the backup holds damaged stays as it is; `verify` names it.
                Err(error @ StoreError::Record { .. }) => tracing::warn!(%error, "a restored record is damaged"),
                Err(error) => return Err(error),
            }
        }
        tracing::info!(
            backup = %path.display(), generation = header.generation, connections, check_needed = marked,
            "restored the store from a backup"
        );
        vault.settle_backups();
        Ok((
            vault,
            RestoreReport {
                backup: path,
                generation: header.generation,
                taken_at: header.created_at,
                connections,
                check_needed: marked,
                set_aside,
                skipped,
            },
        ))
    }

    /// Begins a new, empty store on purpose: the old store and its backups are moved aside (never deleted) and
    /// the marker removed, so the next open creates a store.
    ///
    /// # Errors
    /// [`StoreError::Locked`] while another process has the store open; I/O errors.
    pub fn start_over(paths: &ProfilePaths, now: u64) -> Result<StartOverReport, StoreError> {
        create_private_dir(paths.dir())?;
        let _lock = OpenLock::take(paths)?;
        let set_aside = set_aside(paths, now)?;
        let backups = paths.backups_dir();
        let backups_set_aside = if backups.exists() {
            let to = unique(paths.dir(), "backups.replaced", now);
            std::fs::rename(&backups, &to).map_err(StoreError::io("move aside", &backups))?;
            Some(to)
        } else {
            None
        };
        let marker = paths.store_marker();
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::io("remove", &marker)(e));
            }
            _ => {}
        }
        tracing::info!(?set_aside, ?backups_set_aside, "starting over with an empty store");
        Ok(StartOverReport {
            set_aside,
            backups_set_aside,
        })
    }
}

/// The key with id `id`, if this key source has it.
fn key_for(keys: &KeySource, id: KeyId) -> Option<MasterKey> {
    match keys {
        KeySource::Keyring(store) => store.load(id).ok().flatten(),
        KeySource::Headless(key) if key.id() == id => Some(MasterKey::from_bytes(*key.dangerously_expose_bytes())),
        KeySource::Headless(_) => None,
    }
}

/// Moves the store directory aside (when it exists), to a name that says when and why.
fn set_aside(paths: &ProfilePaths, now: u64) -> Result<Option<PathBuf>, StoreError> {
    let store = paths.store_dir();
    if !store.exists() {
        return Ok(None);
    }
    let to = unique(paths.dir(), "store.damaged", now);
    std::fs::rename(&store, &to).map_err(StoreError::io("move aside", &store))?;
    // The copy an interrupted open left is of no use to anyone now.
    let _ = recovery::remove_all(&to.join(".pre-open"));
    let _ = recovery::remove_all(&to.join(".probe"));
    Ok(Some(to))
}

/// `<dir>/<stem>-<time>`, or with a counter when that exists.
fn unique(dir: &Path, stem: &str, now: u64) -> PathBuf {
    let stamp = crate::clock::rfc3339(now).replace(':', "");
    let mut candidate = dir.join(format!("{stem}-{stamp}"));
    let mut n = 2;
    while candidate.exists() {
        candidate = dir.join(format!("{stem}-{stamp}-{n}"));
        n += 1;
    }
    candidate
}

/// Writes a new sled database at `<store>/sled` holding the backup's records and its metadata.
fn rebuild(store: &Path, backup: &Backup) -> Result<(), StoreError> {
    let db_dir = super::prepare_db_dir(store)?;
    let db = super::open_db(&db_dir).map_err(StoreError::db("creating the restored store"))?;
    let meta = db
        .open_tree(TREE_META)
        .map_err(StoreError::db("creating the restored store"))?;
    let mut batch = sled::Batch::default();
    batch.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes());
    batch.insert(META_KEY_ID, backup.header.key_id.as_bytes());
    batch.insert(META_GENERATION, &backup.header.generation.to_be_bytes());
    meta.apply_batch(batch)
        .map_err(StoreError::db("writing the restored store's metadata"))?;
    for record in &backup.records {
        db.open_tree(&record.tree)
            .and_then(|tree| tree.insert(&record.key, record.value.as_slice()))
            .map_err(StoreError::db("writing a restored record"))?;
    }
    db.flush().map_err(StoreError::db("flushing the restored store"))?;
    drop(meta);
    drop(db);
    holder::secure_tree(store).map_err(StoreError::io("secure", store))
}

/// The connections whose refresh token the backup holds.
fn refreshable(backup: &Backup) -> Vec<ConnectionId> {
    let mut ids: Vec<ConnectionId> = backup
        .records
        .iter()
        .filter(|r| r.tree.starts_with(TOKEN_TREE_PREFIX))
        .filter_map(|r| split_token_key(&r.key))
        .filter(|(_, field)| *field == TokenKind::Refresh.field())
        .map(|(id, _)| id)
        .collect();
    ids.sort_by_key(|id| *id.as_bytes());
    ids.dedup();
    ids
}
