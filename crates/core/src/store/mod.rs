//! The vault: a sled store of sealed connection records under one master key, and rotation of that key.
//!
//! # Layout
//!
//! ```text
//! <profile dir>/store/         0700
//!   holder                     0600  who holds the store (see `holder`)
//!   sled/                      0700  the sled database; every file 0600
//! ```
//!
//! Trees:
//!
//! | tree                 | key                                   | value                                  |
//! |----------------------|---------------------------------------|----------------------------------------|
//! | `meta`               | `format_version`, `key_id`, `generation`, `rotation`, `retired_key` | plaintext, public only |
//! | `connections`        | record id (16 random bytes)           | envelope of the JSON [`ConnectionMeta`], field `meta` |
//! | `tokens/<provider>`  | record id ‖ `0x00` ‖ field name       | envelope of the token, field `access_token`, `refresh_token` or `id_token` |
//! | `clients`            | derived record id ‖ `0x00` ‖ `client_secret` | envelope of a provider's client secret (see `clients`) |
//! | `pictures`           | record id ‖ `0x00` ‖ `picture`        | envelope of the account's picture (see `pictures`) |
//!
//! Every envelope is bound to `RecordLocation { profile, tree, record_id, field }`, so a value copied to another
//! profile, tree, record or field does not open. Record ids are random, never derived from account names; the
//! provider id is public (it names a tree). `meta` holds only public facts: the format version, the current
//! [`KeyId`], `rotation` = old id ‖ new id while a rotation is under way, and `retired_key` = an old id whose
//! keyring entry is still to be deleted.
//!
//! # Invariants
//!
//! - **Every write that changes tokens is one sled transaction across `connections` and the provider's tree, and
//!   is flushed before the call returns.**
//! - **A new master key is never created over an existing store**; a store opened with a key other than the one
//!   it records is refused before anything is written.
//! - **A damaged record only affects itself**: [`Vault::list`] and [`Vault::verify`] report it, nothing deletes
//!   it automatically.
//! - **Key rotation survives a crash at any point**: see [`Vault::rotate_key`].

pub mod backup;
mod clients;
mod durable;
mod error;
mod holder;
mod model;
mod pictures;
mod recovery;
mod restore;
mod rotation;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sled::Transactional as _;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::envelope::{self, RecordLocation};
use crate::keys::{KeyError, KeySource, KeyStore, store_verified};
use crate::profile::{ProfilePaths, create_private_dir};
use crate::provider::ProviderId;
use crate::secret::{KeyId, MasterKey, SecretBytes, SecretString};

pub use clients::FIELD_CLIENT_SECRET;
pub use error::{RecordError, RecordProblem, StoreError};
pub use holder::{Holder, PROGRAM_APP, PROGRAM_CLI, PROGRAM_DAEMON};
use model::is_token_field;
pub use model::{
    CONNECTION_ID_LEN, ConnectionId, ConnectionMeta, ConnectionStatus, FIELD_DPOP_KEY, InvalidConnectionId,
    PendingRevocation, TokenKind, TokenSet,
};
pub use pictures::{FIELD_PICTURE, TREE_PICTURES};
pub use restore::{BackupSummary, RestoreFrom, RestoreReport, StartOverReport};
pub use rotation::{RotationReport, RotationStep};

/// Whether `paths` holds a store, or held one: the rule [`Vault::open`] follows to refuse starting an empty store
/// in its place (a marker, written after each open, or backups). `false` on a first run, when no connection can be
/// at stake. Reads only the marker and the backup directory: safe whatever state the store is in.
pub fn store_exists(paths: &ProfilePaths) -> bool {
    recovery::read_marker(&paths.store_marker()).is_some() || backup::newest(&paths.backups_dir()).is_some()
}

/// The id of the key the profile's store was last opened with (its marker names it), read without opening the
/// store: `None` when the profile has no store yet.
pub fn store_key_id(paths: &ProfilePaths) -> Option<KeyId> {
    recovery::read_marker(&paths.store_marker()).and_then(|text| text.parse().ok())
}

use model::MetaPayload;

/// Store format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The plaintext tree of public facts about the store.
pub const TREE_META: &str = "meta";
/// The tree of sealed connection metadata.
pub const TREE_CONNECTIONS: &str = "connections";
/// The tree of sealed OAuth client secrets (one per provider).
pub const TREE_CLIENTS: &str = "clients";
/// The tree of refreshes in flight: a connection's id → when its refresh began (unix seconds, u64 big-endian).
/// Not sealed, not in the backups and not counted in the generation: it holds a random id and a time, nothing else
/// (see [`Vault::begin_refresh`]).
pub const TREE_IN_FLIGHT: &str = "in_flight";
/// Prefix of the per-provider token trees (`tokens/<provider>`).
pub const TOKEN_TREE_PREFIX: &str = "tokens/";
/// The field name of a connection's sealed metadata.
pub const FIELD_META: &str = "meta";

const META_FORMAT: &[u8] = b"format_version";
const META_KEY_ID: &[u8] = b"key_id";
const META_ROTATION: &[u8] = b"rotation";
const META_RETIRED: &[u8] = b"retired_key";
/// How many commits the store has seen (u64, big-endian), written in the same transaction as each: a backup
/// records it, so a store that opens with a smaller one has lost committed changes.
const META_GENERATION: &[u8] = b"generation";

/// One sealed value as stored, for `export --envelopes`: enough to put it back exactly where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The tree (`connections`, `tokens/<provider>` or `clients`).
    pub tree: String,
    /// The record id: the connection's id, or a client record's derived id.
    pub record_id: ConnectionId,
    /// The field (`meta`, `access_token`, …, `client_secret`).
    pub field: String,
    /// The envelope, exactly as stored.
    pub envelope: Vec<u8>,
}

/// One entry of [`Vault::list`]: a connection's id and its metadata, or why that record cannot be read.
pub type ListEntry = (ConnectionId, Result<ConnectionMeta, RecordError>);

/// Where the vault gets keys from after opening.
#[derive(Debug)]
enum Source {
    Keyring(Arc<dyn KeyStore>),
    Headless,
}

/// The key(s) the vault can open records with: the current key and, during a rotation, the other one.
struct Keys {
    current: MasterKey,
    other: Option<MasterKey>,
}

impl Keys {
    fn find(&self, id: KeyId) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(self.other.as_ref())
            .find(|k| k.id() == id)
    }
}

/// One change to one tree.
#[derive(Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Del(Vec<u8>),
}

/// Public facts read from the `meta` tree.
#[derive(Debug, Default)]
struct MetaState {
    format: Option<u32>,
    key_id: Option<KeyId>,
    rotation: Option<(KeyId, KeyId)>,
    retired: Option<KeyId>,
    generation: u64,
}

/// An open store. One per process and profile: sled's lock keeps a second opener out (see [`StoreError::Locked`]).
pub struct Vault {
    db: sled::Db,
    meta: sled::Tree,
    connections: sled::Tree,
    /// [`TREE_IN_FLIGHT`], once it exists (created by the first refresh, so that reading never creates it).
    in_flight: OnceLock<sled::Tree>,
    /// A crash after this many single-key writes of [`Self::apply_ordered`].
    #[cfg(test)]
    crash_after: std::sync::atomic::AtomicUsize,
    profile: String,
    store_dir: PathBuf,
    source: Source,
    keys: Arc<RwLock<Keys>>,
    clock: Arc<dyn Clock>,
    /// Serialises writers, so read-modify-write updates and rotation never interleave.
    write: Arc<Mutex<()>>,
    /// The store's generation (see [`META_GENERATION`]), as last applied (durable once `durable` says so).
    generation: Arc<AtomicU64>,
    /// Where commits become durable (see `durable`).
    durable: Arc<durable::Durability>,
    /// Where the backups go, and the thread that writes them.
    backups_dir: PathBuf,
    backup: backup::BackupWriter,
    /// What a backup reads, shared with the writer thread (and used directly by [`Vault::backup`]).
    backup_source: Arc<BackupSource>,
    _holder: holder::HolderGuard,
    /// What opening it repaired, for the user (see [`Vault::notices`]).
    notices: Vec<String>,
    /// Held for the vault's life; dropped last, after every database handle.
    _lock: recovery::OpenLock,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("profile", &self.profile)
            .field("store_dir", &self.store_dir)
            .field("key_id", &self.key_id())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens (or creates) the store of `paths`' profile.
    ///
    /// On first open, a master key is created in the keystore (and read back), or the headless key is adopted,
    /// and its id is recorded. Later opens load the key the store names; an unfinished rotation is completed.
    /// `program` (e.g. [`PROGRAM_APP`]) is written to the `holder` file so that a second opener can say who holds
    /// the store.
    ///
    /// # Errors
    /// [`StoreError::Locked`] if another process has the store open; [`StoreError::WrongKey`] if the headless key
    /// is not the store's (nothing is changed); [`StoreError::Key`] with [`KeyError::KeyMissing`] if the store's key
    /// is not in the keyring (no new key is created); [`StoreError::Key`] for an unreachable keyring; others for
    /// I/O and database failures.
    pub fn open(
        paths: &ProfilePaths,
        keys: KeySource,
        clock: Arc<dyn Clock>,
        program: &str,
    ) -> Result<Self, StoreError> {
        let store_dir = paths.store_dir();
        let db_dir = store_dir.join("sled");
        create_private_dir(paths.dir())?;
        // The lock comes first: no second process may copy, open or put back sled's files meanwhile.
        let lock = recovery::OpenLock::take(paths)?;
        let backups_dir = paths.backups_dir();
        let newest_backup = backup::newest(&backups_dir);
        let marker = recovery::read_marker(&paths.store_marker());
        // A store existed here if it left its marker or backups: never start an empty one silently in its place.
        let existed = marker.is_some() || newest_backup.is_some();
        let missing = || StoreError::Missing {
            path: store_dir.clone(),
            key: marker.clone().unwrap_or_else(|| "unknown".into()),
            backup: newest_backup,
        };
        if existed && std::fs::metadata(db_dir.join("db")).map_or(true, |m| m.len() == 0) {
            return Err(missing());
        }
        prepare_db_dir(&store_dir)?;

        // IMPORTANT: `preserved` is declared before every database handle: an early return drops the handles
        // first, then puts sled's files back exactly as they were (see `recovery`).
        let preserved = recovery::Preserved::take(&db_dir, &store_dir.join(".pre-open"))
            .map_err(StoreError::io("copy aside the files of", &db_dir))?;
        let (db, notice) = open_sound(&db_dir, &store_dir, &preserved, newest_backup)?;
        let meta = db
            .open_tree(TREE_META)
            .map_err(StoreError::db("opening the meta tree"))?;
        let connections = db
            .open_tree(TREE_CONNECTIONS)
            .map_err(StoreError::db("opening the connections tree"))?;
        let state = read_meta(&meta)?;
        let profile = paths.profile().as_str().to_owned();
        let log_path = db_dir.join("db");
        let durable = Arc::new(
            durable::Durability::new(db.clone(), log_path.clone()).map_err(StoreError::io("open", &log_path))?,
        );

        let (source, keys) = match state.key_id {
            None => {
                if has_records(&db)? {
                    return Err(StoreError::MetaDamaged {
                        reason: "it holds records but does not say which key sealed them".into(),
                    });
                }
                if existed {
                    return Err(missing());
                }
                let (source, key) = match keys {
                    KeySource::Headless(key) => (Source::Headless, key),
                    KeySource::Keyring(store) => {
                        let key = MasterKey::generate().map_err(crate::crypto::CryptoError::from)?;
                        store_verified(&*store, &key)?;
                        (Source::Keyring(store), key)
                    }
                };
                let mut batch = sled::Batch::default();
                batch.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes());
                batch.insert(META_KEY_ID, key.id().as_bytes());
                meta.apply_batch(batch)
                    .map_err(StoreError::db("recording the store's key id"))?;
                durable.sync_now()?;
                // The directory entries of sled's new files are durable too.
                std::fs::File::open(&db_dir)
                    .and_then(|dir| dir.sync_all())
                    .map_err(StoreError::io("sync", &db_dir))?;
                tracing::info!(key_id = %key.id(), profile, "created a new store");
                (
                    source,
                    Keys {
                        current: key,
                        other: None,
                    },
                )
            }
            Some(key_id) => {
                match state.format {
                    Some(found) if found > FORMAT_VERSION => {
                        return Err(StoreError::UnsupportedFormat {
                            found,
                            supported: FORMAT_VERSION,
                        });
                    }
                    Some(_) => {}
                    None => {
                        return Err(StoreError::MetaDamaged {
                            reason: "the format version is missing".into(),
                        });
                    }
                }
                if let Some((old, _)) = state.rotation
                    && old != key_id
                {
                    return Err(StoreError::MetaDamaged {
                        reason: "the rotation record names another key".into(),
                    });
                }
                match keys {
                    KeySource::Headless(key) => {
                        if let Some((old, new)) = state.rotation {
                            return Err(StoreError::RotationPending { old, new });
                        }
                        if key.id() != key_id {
                            return Err(StoreError::WrongKey {
                                expected: key_id,
                                found: key.id(),
                            });
                        }
                        (
                            Source::Headless,
                            Keys {
                                current: key,
                                other: None,
                            },
                        )
                    }
                    KeySource::Keyring(store) => {
                        let current = match store.load(key_id) {
                            Ok(Some(key)) => key,
                            Ok(None) => {
                                return Err(KeyError::KeyMissing {
                                    profile: profile.clone(),
                                    key_id,
                                }
                                .into());
                            }
                            // The entry named after the store's key holds another key: same situation, same message.
                            Err(KeyError::IdMismatch { expected, found, .. }) => {
                                return Err(StoreError::WrongKey { expected, found });
                            }
                            Err(e) => return Err(e.into()),
                        };
                        let other = match state.rotation {
                            Some((_, new)) => store.load(new)?,
                            None => None,
                        };
                        (Source::Keyring(store), Keys { current, other })
                    }
                }
            }
        };

        let since = clock.unix_secs();
        let holder = Holder {
            pid: std::process::id(),
            program: program.to_owned(),
            since,
        };
        let holder = holder::HolderGuard::write(&store_dir, &holder).map_err(StoreError::io("write", &store_dir))?;
        holder::secure_tree(&store_dir).map_err(StoreError::io("secure", &store_dir))?;
        let keys = Arc::new(RwLock::new(keys));
        let write = Arc::new(Mutex::new(()));
        let generation = Arc::new(AtomicU64::new(state.generation));
        let backups_dir = paths.backups_dir();
        let newest_backup = newest_backup.map_or(0, |(generation, _)| generation);
        let backup_source = Arc::new(BackupSource {
            db: db.clone(),
            meta: meta.clone(),
            connections: connections.clone(),
            keys: keys.clone(),
            write: write.clone(),
            profile: profile.clone(),
            clock: clock.clone(),
            durable: durable.clone(),
        });
        let writer = backup::BackupWriter::start(backups_dir.clone(), backup_source.clone(), newest_backup);
        let vault = Self {
            db,
            meta,
            connections,
            in_flight: OnceLock::new(),
            #[cfg(test)]
            crash_after: std::sync::atomic::AtomicUsize::new(usize::MAX),
            profile,
            store_dir,
            source,
            keys,
            clock,
            write,
            generation: generation.clone(),
            durable: durable.clone(),
            backups_dir,
            backup: writer,
            backup_source,
            _holder: holder,
            notices: notice.into_iter().collect(),
            _lock: lock,
        };
        // From here on the vault writes (a rotation to finish, a backup): the copy is no longer the truth.
        preserved.discard();
        vault.finish_interrupted_rotation(state)?;
        recovery::write_marker(&paths.store_marker(), vault.key_id());
        // A store without a current backup (new, or from a version without backups) gets one now.
        if vault.generation() > newest_backup || (newest_backup == 0 && has_records(&vault.db)?) {
            vault.backup.changed();
        }
        Ok(vault)
    }

    /// What opening the store repaired on its own and the user should hear about (a damaged snapshot rebuilt from
    /// the log), one sentence each; empty on a healthy open.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// How many commits the store has seen.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Where the store's backups are.
    pub fn backups_dir(&self) -> &Path {
        &self.backups_dir
    }

    /// Waits (at most 30 s) until a backup of everything committed so far is on disk.
    pub fn settle_backups(&self) {
        self.backup.settle(self.generation());
    }

    /// The id of the key the store is sealed with.
    pub fn key_id(&self) -> KeyId {
        self.keys_read().current.id()
    }

    /// Whether the vault runs on a headless key (no keyring).
    pub fn is_headless(&self) -> bool {
        matches!(self.source, Source::Headless)
    }

    /// The store directory.
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// Stores a new connection with its tokens, atomically, and returns its new random id. `created_at` and
    /// `updated_at` are set from the clock.
    ///
    /// # Errors
    /// A sealing or database failure (then nothing was stored).
    pub fn put_connection(&self, meta: ConnectionMeta, tokens: &TokenSet) -> Result<ConnectionId, StoreError> {
        let w = self.write_lock();
        let mut id = ConnectionId::generate().map_err(|_| crate::crypto::CryptoError::Rng)?;
        while self.exists(id)? {
            id = ConnectionId::generate().map_err(|_| crate::crypto::CryptoError::Rng)?;
        }
        let now = self.clock.unix_secs();
        let mut meta = ConnectionMeta {
            created_at: now,
            updated_at: now,
            ..meta
        };
        meta.sanitize();
        self.write_connection(w, id, &meta, Some(tokens))?.wait()?;
        Ok(id)
    }

    /// Replaces a connection's tokens and metadata in one commit (atomic, or, while a refresh is in flight,
    /// ordered so that a crash leaves a whole record and the marker: see `docs/SECURITY.md`). The token set is
    /// taken as is: a `None` removes the stored token of that kind (to keep a refresh token the provider did not
    /// reissue, pass the old one back). `updated_at` is set from the clock. A connection whose metadata record is
    /// damaged can be repaired this way.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::ProviderChanged`], or a sealing or database failure (then nothing
    /// changed).
    pub fn replace_tokens(&self, id: ConnectionId, tokens: &TokenSet, meta: &ConnectionMeta) -> Result<(), StoreError> {
        self.apply_tokens(id, tokens, meta)?.wait()
    }

    /// [`Self::replace_tokens`] for async code: the calling task waits for the disk without holding its thread
    /// (see `durable`).
    ///
    /// # Errors
    /// As [`Self::replace_tokens`].
    pub async fn replace_tokens_async(
        &self,
        id: ConnectionId,
        tokens: &TokenSet,
        meta: &ConnectionMeta,
    ) -> Result<(), StoreError> {
        self.apply_tokens(id, tokens, meta)?.settled().await
    }

    /// [`Self::replace_tokens`], applied but not yet durable.
    fn apply_tokens(
        &self,
        id: ConnectionId,
        tokens: &TokenSet,
        meta: &ConnectionMeta,
    ) -> Result<Pending<'_>, StoreError> {
        let w = self.write_lock();
        if !self.exists(id)? {
            return Err(StoreError::NotFound(id));
        }
        let wanted = token_tree_name(&meta.provider);
        for (name, tree) in self.token_trees()? {
            if name != wanted && tree.scan_prefix(id.as_bytes()).next().is_some() {
                return Err(StoreError::ProviderChanged {
                    stored: name[TOKEN_TREE_PREFIX.len()..].to_owned(),
                });
            }
        }
        let meta = ConnectionMeta {
            updated_at: self.clock.unix_secs(),
            ..meta.clone()
        };
        self.write_connection(w, id, &meta, Some(tokens))
    }

    /// Changes a connection's metadata with `f` (read, modify, write under the vault's write lock, flushed) and
    /// returns the result. `updated_at` is set from the clock; the provider cannot change.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Record`] if the stored metadata cannot be read,
    /// [`StoreError::ProviderChanged`], or a sealing or database failure.
    pub fn update_meta(
        &self,
        id: ConnectionId,
        f: impl FnOnce(&mut ConnectionMeta),
    ) -> Result<ConnectionMeta, StoreError> {
        let (meta, pending) = self.apply_meta(id, f)?;
        pending.wait()?;
        Ok(meta)
    }

    /// [`Self::update_meta`] for async code: the calling task waits for the disk without holding its thread.
    ///
    /// # Errors
    /// As [`Self::update_meta`].
    pub async fn update_meta_async(
        &self,
        id: ConnectionId,
        f: impl FnOnce(&mut ConnectionMeta) + Send,
    ) -> Result<ConnectionMeta, StoreError> {
        let (meta, pending) = self.apply_meta(id, f)?;
        pending.settled().await?;
        Ok(meta)
    }

    /// [`Self::update_meta`], applied but not yet durable.
    fn apply_meta(
        &self,
        id: ConnectionId,
        f: impl FnOnce(&mut ConnectionMeta),
    ) -> Result<(ConnectionMeta, Pending<'_>), StoreError> {
        let w = self.write_lock();
        // The sealed status, not the in-flight one: this write ends the refresh in flight, if any.
        let mut meta = self.sealed_meta(id)?;
        let provider = meta.provider.clone();
        f(&mut meta);
        meta.sanitize();
        if meta.provider != provider {
            return Err(StoreError::ProviderChanged {
                stored: provider.to_string(),
            });
        }
        meta.updated_at = self.clock.unix_secs();
        let pending = self.write_connection(w, id, &meta, None)?;
        Ok((meta, pending))
    }

    /// A connection's metadata; its status is `refreshing` while a refresh is in flight (see
    /// [`Self::begin_refresh`]).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], or [`StoreError::Record`] if the record cannot be read.
    pub fn get_meta(&self, id: ConnectionId) -> Result<ConnectionMeta, StoreError> {
        let mut meta = self.sealed_meta(id)?;
        if self.in_flight_tree()?.is_some_and(|tree| in_flight(&tree, id)) {
            meta.status = ConnectionStatus::Refreshing;
        }
        Ok(meta)
    }

    /// Records, durably, that a refresh of `id` is about to be sent: the in-flight marker. Reads show the
    /// connection `refreshing` until its next write, which ends the marker in the same transaction; a process
    /// that dies mid-refresh leaves it behind, so the next start knows the refresh token may have rotated unseen.
    /// It is one small record beside the sealed metadata (a random id and a time), so marking costs one insert and
    /// a share of a group sync, not a re-sealed record in a transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], or a database or sync failure (then the refresh must not be sent).
    pub fn begin_refresh(&self, id: ConnectionId) -> Result<(), StoreError> {
        self.apply_begin_refresh(id)?.wait()
    }

    /// [`Self::begin_refresh`] for async code: the calling task waits for the disk without holding its thread.
    ///
    /// # Errors
    /// As [`Self::begin_refresh`].
    pub async fn begin_refresh_async(&self, id: ConnectionId) -> Result<(), StoreError> {
        self.apply_begin_refresh(id)?.settled().await
    }

    /// [`Self::begin_refresh`], applied but not yet durable.
    fn apply_begin_refresh(&self, id: ConnectionId) -> Result<Pending<'_>, StoreError> {
        let w = self.write_lock();
        if !self.exists(id)? {
            return Err(StoreError::NotFound(id));
        }
        let tree = match self.in_flight.get() {
            Some(tree) => tree.clone(),
            None => {
                let tree = self
                    .db
                    .open_tree(TREE_IN_FLIGHT)
                    .map_err(StoreError::db("opening the in-flight tree"))?;
                self.in_flight.get_or_init(|| tree).clone()
            }
        };
        tree.insert(id.as_bytes(), &self.clock.unix_secs().to_be_bytes())
            .map_err(StoreError::db("recording a refresh in flight"))?;
        // The marker is not in backups (it says what this process is doing, not what the store holds).
        Ok(self.applied(w, false))
    }

    /// [`TREE_IN_FLIGHT`], if it exists (reading never creates it; [`Self::begin_refresh`] does).
    fn in_flight_tree(&self) -> Result<Option<sled::Tree>, StoreError> {
        if let Some(tree) = self.in_flight.get() {
            return Ok(Some(tree.clone()));
        }
        Ok(self
            .existing_tree(TREE_IN_FLIGHT)?
            .map(|tree| self.in_flight.get_or_init(|| tree).clone()))
    }

    /// The write that ends `id`'s in-flight marker, if it has one.
    fn end_in_flight(&self, id: ConnectionId) -> Result<Option<(sled::Tree, Vec<Op>)>, StoreError> {
        Ok(self
            .in_flight_tree()?
            .filter(|tree| in_flight(tree, id))
            .map(|tree| (tree, vec![Op::Del(id.as_bytes().to_vec())])))
    }

    /// A connection's metadata as sealed (without the in-flight status).
    fn sealed_meta(&self, id: ConnectionId) -> Result<ConnectionMeta, StoreError> {
        // IMPORTANT: hold the keys before reading the record, so a rotation cannot retire the key that sealed it
        // in between (retiring takes the keys' write lock).
        let keys = self.keys_read();
        let sealed = self
            .connections
            .get(id.as_bytes())
            .map_err(StoreError::db("reading connections"))?
            .ok_or(StoreError::NotFound(id))?;
        self.decode_meta(&keys, id, &sealed)
            .map_err(|error| record_error(TREE_CONNECTIONS, id, FIELD_META, error))
    }

    /// A connection's tokens.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], or [`StoreError::Record`] naming the token that cannot be read.
    pub fn tokens(&self, id: ConnectionId) -> Result<TokenSet, StoreError> {
        // IMPORTANT: read under the write lock, so a delete (or a token replacement) cannot land between the
        // reads of one connection's records: the answer is a consistent set, or `NotFound`, never half of each.
        let _w = self.write_lock();
        let keys = self.keys_read();
        let sealed_meta = self
            .connections
            .get(id.as_bytes())
            .map_err(StoreError::db("reading connections"))?
            .ok_or(StoreError::NotFound(id))?;
        let listed = self.listed_in(&keys, id, &sealed_meta);
        let access_key = token_key(id, TokenKind::Access.field());
        let mut found = None;
        for (name, tree) in self.token_trees()? {
            if tree
                .contains_key(&access_key)
                .map_err(StoreError::db("reading tokens"))?
            {
                found = Some((name, tree));
                break;
            }
        }
        let Some((name, tree)) = found else {
            return Err(record_error(
                "tokens/*",
                id,
                TokenKind::Access.field(),
                RecordError::Missing,
            ));
        };
        let read = |kind: TokenKind| -> Result<Option<SecretString>, StoreError> {
            let field = kind.field();
            let Some(sealed) = tree
                .get(token_key(id, field))
                .map_err(StoreError::db("reading tokens"))?
            else {
                return Ok(None);
            };
            self.decode_token(&keys, &name, id, field, &sealed)
                .map(Some)
                .map_err(|error| record_error(&name, id, field, error))
        };
        let access = read(TokenKind::Access)?
            .ok_or_else(|| record_error(&name, id, TokenKind::Access.field(), RecordError::Missing))?;
        let dpop_key = match tree
            .get(token_key(id, FIELD_DPOP_KEY))
            .map_err(StoreError::db("reading tokens"))?
        {
            None => None,
            Some(sealed) => Some(
                self.decode_dpop_key(&keys, &name, id, &sealed)
                    .map_err(|error| record_error(&name, id, FIELD_DPOP_KEY, error))?,
            ),
        };
        let set = TokenSet {
            access,
            refresh: read(TokenKind::Refresh)?,
            id_token: read(TokenKind::Id)?,
            dpop_key,
        };
        // A token record renamed in place (a flipped byte in its key) or gone is damage: say so, rather than
        // answer as if the provider had never issued it.
        for item in tree.scan_prefix(token_key(id, "")) {
            let (k, _) = item.map_err(StoreError::db("reading tokens"))?;
            match split_token_key(&k) {
                Some((_, field)) if is_token_field(field) => {}
                Some((_, field)) => {
                    let field = crate::text::clean(field, 64);
                    return Err(record_error(&name, id, &field, RecordError::BadRecordKey));
                }
                None => return Err(record_error(&name, id, "", RecordError::BadRecordKey)),
            }
        }
        if let Some(listed) = listed {
            for field in listed {
                let missing = match TokenKind::from_field(&field) {
                    Some(kind) => set.get(kind).is_none(),
                    None => field == FIELD_DPOP_KEY && set.dpop_key.is_none(),
                };
                if missing {
                    return Err(record_error(&name, id, &field, RecordError::Missing));
                }
            }
        }
        Ok(set)
    }

    /// Every connection with its metadata, in record-id order. A record that cannot be read is reported in place;
    /// the others are unaffected, and nothing is deleted.
    ///
    /// # Errors
    /// Only a database failure.
    pub fn list(&self) -> Result<Vec<ListEntry>, StoreError> {
        let keys = self.keys_read();
        let in_flight_tree = self.in_flight_tree()?;
        let mut out = Vec::new();
        for item in self.connections.iter() {
            let (k, v) = item.map_err(StoreError::db("listing connections"))?;
            match ConnectionId::from_slice(&k) {
                Some(id) => {
                    let mut meta = self.decode_meta(&keys, id, &v);
                    if let Ok(meta) = &mut meta
                        && in_flight_tree.as_ref().is_some_and(|tree| in_flight(tree, id))
                    {
                        meta.status = ConnectionStatus::Refreshing;
                    }
                    out.push((id, meta));
                }
                None => tracing::warn!(tree = TREE_CONNECTIONS, "skipping a record with a malformed key"),
            }
        }
        Ok(out)
    }

    /// Deletes a connection and every record of it, atomically and flushed. Returns whether anything existed.
    ///
    /// # Errors
    /// A database failure (then nothing was deleted).
    pub fn delete_connection(&self, id: ConnectionId) -> Result<bool, StoreError> {
        let w = self.write_lock();
        let mut writes = Vec::new();
        if self.exists(id)? {
            writes.push((self.connections.clone(), vec![Op::Del(id.as_bytes().to_vec())]));
        }
        writes.extend(self.end_in_flight(id)?);
        for (_, tree) in self.token_trees()? {
            let keys: Vec<_> = tree
                .scan_prefix(id.as_bytes())
                .keys()
                .map(|k| k.map(|k| Op::Del(k.to_vec())))
                .collect::<Result<_, _>>()
                .map_err(StoreError::db("reading tokens"))?;
            if !keys.is_empty() {
                writes.push((tree, keys));
            }
        }
        if let Some(pictures) = self.existing_tree(TREE_PICTURES)?
            && pictures
                .contains_key(token_key(id, FIELD_PICTURE))
                .map_err(StoreError::db("reading pictures"))?
        {
            writes.push((pictures, vec![Op::Del(token_key(id, FIELD_PICTURE))]));
        }
        if writes.is_empty() {
            return Ok(false);
        }
        self.commit(w, &writes)?;
        Ok(true)
    }

    /// Checks that every record opens and parses, and that every connection has an access token and every token
    /// a connection. Returns the problems found, each naming its tree, record and field; changes nothing.
    ///
    /// # Errors
    /// Only a database failure.
    pub fn verify(&self) -> Result<Vec<RecordProblem>, StoreError> {
        let keys = self.keys_read();
        let mut problems = Vec::new();
        // A damaged key can hold any bytes: the field name is shown cleaned (see `text`).
        let problem = |tree: &str, record: String, field: &str, error| RecordProblem {
            tree: tree.to_owned(),
            record,
            field: crate::text::clean(field, 64),
            error,
        };
        let mut ids = Vec::new();
        for item in self.connections.iter() {
            let (k, v) = item.map_err(StoreError::db("reading connections"))?;
            let Some(id) = ConnectionId::from_slice(&k) else {
                problems.push(problem(
                    TREE_CONNECTIONS,
                    hex::encode(&k),
                    "",
                    RecordError::BadRecordKey,
                ));
                continue;
            };
            ids.push(id);
            if let Err(e) = self.decode_meta(&keys, id, &v) {
                problems.push(problem(TREE_CONNECTIONS, id.to_hex(), FIELD_META, e));
            }
        }
        let known: HashSet<_> = ids.iter().copied().collect();
        let mut with_access = HashSet::new();
        let mut present: HashSet<(ConnectionId, String)> = HashSet::new();
        for (name, tree) in self.token_trees()? {
            for item in tree.iter() {
                let (k, v) = item.map_err(StoreError::db("reading tokens"))?;
                let Some((id, field)) = split_token_key(&k) else {
                    problems.push(problem(&name, hex::encode(&k), "", RecordError::BadRecordKey));
                    continue;
                };
                if !known.contains(&id) {
                    problems.push(problem(&name, id.to_hex(), field, RecordError::Orphan));
                }
                if field == TokenKind::Access.field() {
                    with_access.insert(id);
                }
                present.insert((id, field.to_owned()));
                let opened = if field == FIELD_DPOP_KEY {
                    self.decode_dpop_key(&keys, &name, id, &v).map(drop)
                } else {
                    self.decode_token(&keys, &name, id, field, &v).map(drop)
                };
                if let Err(e) = opened {
                    problems.push(problem(&name, id.to_hex(), field, e));
                }
            }
        }
        for item in self.existing_tree(TREE_CLIENTS)?.iter().flat_map(sled::Tree::iter) {
            let (k, v) = item.map_err(StoreError::db("reading clients"))?;
            match split_token_key(&k) {
                Some((id, field)) if field == FIELD_CLIENT_SECRET => {
                    if let Err(e) = self.decode_secret(&keys, TREE_CLIENTS, id, field, &v) {
                        problems.push(problem(TREE_CLIENTS, id.to_hex(), field, e));
                    }
                }
                _ => problems.push(problem(TREE_CLIENTS, hex::encode(&k), "", RecordError::BadRecordKey)),
            }
        }
        for item in self.existing_tree(TREE_PICTURES)?.iter().flat_map(sled::Tree::iter) {
            let (k, v) = item.map_err(StoreError::db("reading pictures"))?;
            match split_token_key(&k) {
                Some((id, field)) if field == FIELD_PICTURE => {
                    if !known.contains(&id) {
                        problems.push(problem(TREE_PICTURES, id.to_hex(), field, RecordError::Orphan));
                    }
                    if let Err(e) = self.decode_picture(&keys, id, &v) {
                        problems.push(problem(TREE_PICTURES, id.to_hex(), field, e));
                    }
                }
                _ => problems.push(problem(TREE_PICTURES, hex::encode(&k), "", RecordError::BadRecordKey)),
            }
        }
        for &id in &ids {
            for field in self.listed_tokens(&keys, id).unwrap_or_default() {
                if field != TokenKind::Access.field() && !present.contains(&(id, field.clone())) {
                    problems.push(problem("tokens/*", id.to_hex(), &field, RecordError::Missing));
                }
            }
        }
        for id in ids.iter().filter(|id| !with_access.contains(id)) {
            problems.push(problem(
                "tokens/*",
                id.to_hex(),
                TokenKind::Access.field(),
                RecordError::Missing,
            ));
        }
        Ok(problems)
    }

    /// Every sealed value exactly as stored (for `export --envelopes`): connection metadata first, then tokens,
    /// then client secrets.
    /// Nothing is decrypted.
    ///
    /// # Errors
    /// Only a database failure.
    pub fn raw_records(&self) -> Result<Vec<RawRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.connections.iter() {
            let (k, v) = item.map_err(StoreError::db("reading connections"))?;
            if let Some(record_id) = ConnectionId::from_slice(&k) {
                out.push(RawRecord {
                    tree: TREE_CONNECTIONS.into(),
                    record_id,
                    field: FIELD_META.into(),
                    envelope: v.to_vec(),
                });
            }
        }
        for (name, tree) in self.sealed_trees()?.into_iter().skip(1) {
            for item in tree.iter() {
                let (k, v) = item.map_err(StoreError::db("reading tokens"))?;
                if let Some((record_id, field)) = split_token_key(&k) {
                    out.push(RawRecord {
                        tree: name.clone(),
                        record_id,
                        field: field.into(),
                        envelope: v.to_vec(),
                    });
                }
            }
        }
        Ok(out)
    }

    // ---- internals -------------------------------------------------------------------------------------------

    fn keys_read(&self) -> RwLockReadGuard<'_, Keys> {
        // A panic while holding the lock cannot leave `Keys` half-updated (every update is one assignment).
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn keys_write(&self) -> RwLockWriteGuard<'_, Keys> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether connection `id` has a metadata record.
    fn exists(&self, id: ConnectionId) -> Result<bool, StoreError> {
        self.connections
            .contains_key(id.as_bytes())
            .map_err(StoreError::db("reading connections"))
    }

    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn location<'a>(&'a self, tree: &'a str, id: &'a ConnectionId, field: &'a str) -> RecordLocation<'a> {
        RecordLocation {
            profile: &self.profile,
            tree,
            record_id: id.as_bytes(),
            field,
        }
    }

    fn open_sealed(
        &self,
        keys: &Keys,
        tree: &str,
        id: ConnectionId,
        field: &str,
        sealed: &[u8],
    ) -> Result<SecretBytes, RecordError> {
        let header = envelope::peek_header(sealed)?;
        let key = keys.find(header.key_id).ok_or(RecordError::WrongKey {
            sealed_with: header.key_id,
            have: keys.current.id(),
        })?;
        Ok(envelope::open(key, &self.location(tree, &id, field), sealed)?)
    }

    /// The token fields the connection's metadata record lists as stored (`None` for a record written before
    /// the list existed, or one that cannot be read).
    fn listed_tokens(&self, keys: &Keys, id: ConnectionId) -> Option<Vec<String>> {
        let sealed = self.connections.get(id.as_bytes()).ok()??;
        self.listed_in(keys, id, &sealed)
    }

    /// [`Self::listed_tokens`] from the sealed metadata record already read.
    fn listed_in(&self, keys: &Keys, id: ConnectionId, sealed: &[u8]) -> Option<Vec<String>> {
        let plain = self.open_sealed(keys, TREE_CONNECTIONS, id, FIELD_META, sealed).ok()?;
        serde_json::from_slice::<MetaPayload>(plain.dangerously_expose())
            .ok()?
            .tokens
    }

    fn decode_meta(&self, keys: &Keys, id: ConnectionId, sealed: &[u8]) -> Result<ConnectionMeta, RecordError> {
        let plain = self.open_sealed(keys, TREE_CONNECTIONS, id, FIELD_META, sealed)?;
        meta_from_plain(&plain)
    }

    fn decode_token(
        &self,
        keys: &Keys,
        tree: &str,
        id: ConnectionId,
        field: &str,
        sealed: &[u8],
    ) -> Result<SecretString, RecordError> {
        if TokenKind::from_field(field).is_none() {
            return Err(RecordError::BadRecordKey);
        }
        self.decode_secret(keys, tree, id, field, sealed)
    }

    /// Opens a connection's sealed DPoP key: 32 bytes that are a P-256 private key.
    fn decode_dpop_key(
        &self,
        keys: &Keys,
        tree: &str,
        id: ConnectionId,
        sealed: &[u8],
    ) -> Result<crate::dpop::DpopKey, RecordError> {
        let plain = self.open_sealed(keys, tree, id, FIELD_DPOP_KEY, sealed)?;
        crate::dpop::DpopKey::from_secret(&plain).map_err(|_| RecordError::Malformed)
    }

    /// Opens a sealed UTF-8 secret (a token or a client secret).
    fn decode_secret(
        &self,
        keys: &Keys,
        tree: &str,
        id: ConnectionId,
        field: &str,
        sealed: &[u8],
    ) -> Result<SecretString, RecordError> {
        let plain = self.open_sealed(keys, tree, id, field, sealed)?;
        SecretString::try_from(plain).map_err(|_| RecordError::Malformed)
    }

    fn seal(
        &self,
        key: &MasterKey,
        tree: &str,
        id: ConnectionId,
        field: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        Ok(envelope::seal(key, &self.location(tree, &id, field), plain)?)
    }

    /// Seals and writes a connection's metadata and, if given, its whole token set, and releases the caller's
    /// write lock while the commit becomes durable: in one transaction, or — the write that ends a refresh in
    /// flight — as ordered single-key writes ([`Self::apply_ordered`]).
    fn write_connection(
        &self,
        write: MutexGuard<'_, ()>,
        id: ConnectionId,
        meta: &ConnectionMeta,
        tokens: Option<&TokenSet>,
    ) -> Result<Pending<'_>, StoreError> {
        self.write_connection_with(write, id, meta, tokens, Vec::new())
    }

    /// [`Self::write_connection`], with `extra` writes in the same transaction.
    fn write_connection_with(
        &self,
        write: MutexGuard<'_, ()>,
        id: ConnectionId,
        meta: &ConnectionMeta,
        tokens: Option<&TokenSet>,
        extra: Vec<(sled::Tree, Vec<Op>)>,
    ) -> Result<Pending<'_>, StoreError> {
        let keys = self.keys_read();
        let key = &keys.current;
        let mut payload = MetaPayload::from(meta);
        payload.tokens = match tokens {
            Some(tokens) => Some(
                TokenKind::ALL
                    .into_iter()
                    .filter(|kind| tokens.get(*kind).is_some())
                    .map(|kind| kind.field().to_owned())
                    .chain(tokens.dpop_key.is_some().then(|| FIELD_DPOP_KEY.to_owned()))
                    .collect(),
            ),
            // The metadata alone changes: what the record said is stored still is.
            None => self.listed_tokens(&keys, id),
        };
        let payload = Zeroizing::new(serde_json::to_vec(&payload).expect("plain data serializes"));
        let mut writes = vec![(
            self.connections.clone(),
            vec![Op::Put(
                id.as_bytes().to_vec(),
                self.seal(key, TREE_CONNECTIONS, id, FIELD_META, &payload)?,
            )],
        )];
        // Every write of a connection says its status: a refresh in flight ends with it.
        let end = self.end_in_flight(id)?;
        // The write that ends a refresh in flight is not a transaction (see `apply_ordered`).
        let ordered = end.is_some() && extra.is_empty();
        if let Some(tokens) = tokens {
            let name = token_tree_name(&meta.provider);
            let tree = self
                .db
                .open_tree(&name)
                .map_err(StoreError::db("opening a token tree"))?;
            let (mut puts, mut dels) = (Vec::new(), Vec::new());
            for kind in TokenKind::ALL {
                let k = token_key(id, kind.field());
                match tokens.get(kind) {
                    Some(token) => puts.push(Op::Put(
                        k,
                        self.seal(key, &name, id, kind.field(), token.dangerously_expose().as_bytes())?,
                    )),
                    None => dels.push(Op::Del(k)),
                }
            }
            let k = token_key(id, FIELD_DPOP_KEY);
            match &tokens.dpop_key {
                Some(dpop) => puts.push(Op::Put(
                    k,
                    self.seal(key, &name, id, FIELD_DPOP_KEY, dpop.to_secret().dangerously_expose())?,
                )),
                None => dels.push(Op::Del(k)),
            }
            if ordered {
                // IMPORTANT: the new tokens before the metadata that lists them, and the removals after it, so
                // that every prefix of the commit holds each token that the metadata in it lists.
                writes.insert(0, (tree.clone(), puts));
                writes.push((tree, dels));
            } else {
                puts.extend(dels);
                writes.push((tree, puts));
            }
        }
        drop(keys);
        match end {
            Some(end) if ordered => self.apply_ordered(write, &writes, &end),
            end => {
                writes.extend(extra);
                writes.extend(end);
                self.apply(write, &writes)
            }
        }
    }

    /// Applies `writes` in one sled transaction across all the trees named, with the store's generation one
    /// higher in the same transaction, then flushes; a backup follows. The caller holds the write lock.
    fn commit(&self, write: MutexGuard<'_, ()>, writes: &[(sled::Tree, Vec<Op>)]) -> Result<(), StoreError> {
        self.apply(write, writes)?.wait()
    }

    /// [`Self::commit`] up to the disk: the transaction is applied and the write lock released; the returned
    /// [`Pending`] waits for the sync (which commits that overlap share) and then asks for a backup.
    fn apply(&self, write: MutexGuard<'_, ()>, writes: &[(sled::Tree, Vec<Op>)]) -> Result<Pending<'_>, StoreError> {
        let next = self.generation() + 1;
        let mut writes = writes.to_vec();
        writes.push(self.generation_write(next));
        let writes = &writes;
        let trees: Vec<&sled::Tree> = writes.iter().map(|(t, _)| t).collect();
        trees
            .as_slice()
            .transaction(|views| {
                for (view, (_, ops)) in views.iter().zip(writes) {
                    for op in ops {
                        match op {
                            Op::Put(k, v) => {
                                view.insert(k.as_slice(), v.as_slice())?;
                            }
                            Op::Del(k) => {
                                view.remove(k.as_slice())?;
                            }
                        }
                    }
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(source) => StoreError::Db {
                    context: "writing a transaction",
                    source,
                },
                sled::transaction::TransactionError::Abort(()) => {
                    unreachable!("the transaction closure never aborts")
                }
            })?;
        self.generation.store(next, Ordering::Release);
        Ok(self.applied(write, true))
    }

    /// The write that ends a refresh in flight (its result, or its failure), without a sled transaction: `writes`
    /// one key at a time in their order, then the store's generation, then `end` (the in-flight marker's
    /// removal); the write lock is released as by [`Self::apply`]. A sled transaction costs two extra writes of
    /// its log buffer, each waited for on the disk: a refresh storm spent half its CPU on them.
    ///
    /// sled recovers a prefix of its log (it replays in log order and stops at the first message it cannot read),
    /// so a crash part-way — or a failure here — leaves a prefix: a readable record (the caller orders the new
    /// tokens before the metadata that lists them) and the marker, so the next start treats the connection as a
    /// refresh cut short, what it would do had the crash come a moment earlier.
    fn apply_ordered(
        &self,
        write: MutexGuard<'_, ()>,
        writes: &[(sled::Tree, Vec<Op>)],
        end: &(sled::Tree, Vec<Op>),
    ) -> Result<Pending<'_>, StoreError> {
        #[cfg(test)]
        let budget = std::cell::Cell::new(self.crash_after.load(Ordering::Relaxed));
        let put_all = |(tree, ops): &(sled::Tree, Vec<Op>)| -> Result<(), StoreError> {
            for op in ops {
                #[cfg(test)]
                {
                    if budget.get() == 0 {
                        return Err(StoreError::Io {
                            context: "a crash (test)",
                            path: PathBuf::new(),
                            source: std::io::Error::other("the process died here"),
                        });
                    }
                    budget.set(budget.get() - 1);
                }
                match op {
                    Op::Put(k, v) => tree.insert(k.as_slice(), v.as_slice()).map(drop),
                    Op::Del(k) => tree.remove(k.as_slice()).map(drop),
                }
                .map_err(StoreError::db("writing a refresh's result"))?;
            }
            Ok(())
        };
        writes.iter().try_for_each(put_all)?;
        let next = self.generation() + 1;
        put_all(&self.generation_write(next))?;
        self.generation.store(next, Ordering::Release);
        put_all(end)?;
        Ok(self.applied(write, true))
    }

    /// The write that records `next` as the store's generation.
    fn generation_write(&self, next: u64) -> (sled::Tree, Vec<Op>) {
        (
            self.meta.clone(),
            vec![Op::Put(META_GENERATION.to_vec(), next.to_be_bytes().to_vec())],
        )
    }

    /// Numbers a write just applied to sled and releases the write lock: the returned [`Pending`] waits for the
    /// disk. Group commit: the next writer may apply its change meanwhile; one sync covers both (see `durable`).
    fn applied(&self, write: MutexGuard<'_, ()>, backup: bool) -> Pending<'_> {
        let applied = self.durable.applied();
        drop(write);
        Pending {
            vault: self,
            write: applied,
            backup,
        }
    }

    /// Writes a backup of everything committed, now, on this thread (the writer thread does this on its own
    /// after commits; this is for benchmarks and for a backup on demand). Returns the generation backed up.
    ///
    /// # Errors
    /// The backup could not be written.
    pub fn backup(&self) -> Result<u64, StoreError> {
        let _w = self.write_lock();
        self.backup_now()?;
        Ok(self.generation())
    }

    /// Writes a backup of the store as it is, now, on this thread; the caller holds the write lock (a key rotation,
    /// before it deletes the backups of the old key).
    fn backup_now(&self) -> Result<(), StoreError> {
        let source = &*self.backup_source;
        let Some((generation, records)) = source.snapshot_locked() else {
            return Ok(());
        };
        let bytes = backup::Source::encode(source, generation, records);
        backup::write(&self.backups_dir, generation, &bytes)
            .map_err(StoreError::io("write a backup in", &self.backups_dir))?;
        self.backup.written(generation);
        Ok(())
    }

    /// Marks a change made outside [`Self::commit`] (a key rotation's re-sealing): one more generation, flushed,
    /// and a backup.
    fn bump_generation(&self) -> Result<(), StoreError> {
        let next = self.generation() + 1;
        self.meta
            .insert(META_GENERATION, &next.to_be_bytes())
            .map_err(StoreError::db("recording the store's generation"))?;
        self.generation.store(next, Ordering::Release);
        self.flush()?;
        self.backup.changed();
        Ok(())
    }

    /// Makes everything applied so far durable (sled's flush, then `fdatasync`; see `durable`).
    fn flush(&self) -> Result<(), StoreError> {
        self.durable.sync_now()
    }

    /// How many syncs the store has run since it was opened (commits that overlap share one).
    pub fn syncs(&self) -> u64 {
        self.durable.syncs()
    }

    /// The token trees that exist, by name.
    fn token_trees(&self) -> Result<Vec<(String, sled::Tree)>, StoreError> {
        let mut out = Vec::new();
        for name in self.db.tree_names() {
            if let Ok(name) = std::str::from_utf8(&name)
                && name.starts_with(TOKEN_TREE_PREFIX)
            {
                let tree = self
                    .db
                    .open_tree(name)
                    .map_err(StoreError::db("opening a token tree"))?;
                out.push((name.to_owned(), tree));
            }
        }
        Ok(out)
    }

    /// Every tree holding sealed records: `connections`, the token trees, `clients`, then `pictures`.
    fn sealed_trees(&self) -> Result<Vec<(String, sled::Tree)>, StoreError> {
        let mut trees = vec![(TREE_CONNECTIONS.to_owned(), self.connections.clone())];
        trees.extend(self.token_trees()?);
        if let Some(clients) = self.existing_tree(TREE_CLIENTS)? {
            trees.push((TREE_CLIENTS.to_owned(), clients));
        }
        if let Some(pictures) = self.existing_tree(TREE_PICTURES)? {
            trees.push((TREE_PICTURES.to_owned(), pictures));
        }
        Ok(trees)
    }

    /// The tree `name` if it exists. Read paths use this: `open_tree` would create it, and reading must not
    /// change the store.
    fn existing_tree(&self, name: &str) -> Result<Option<sled::Tree>, StoreError> {
        if !self.db.tree_names().iter().any(|n| n.as_ref() == name.as_bytes()) {
            return Ok(None);
        }
        self.db
            .open_tree(name)
            .map(Some)
            .map_err(StoreError::db("opening a tree"))
    }
}

/// A write applied to the store, not yet reported committed: it is once [`Pending::wait`] or
/// [`Pending::settled`] says it is on disk (then a backup of it follows, for a commit).
#[must_use = "a write counts as committed only once it is durable"]
struct Pending<'v> {
    vault: &'v Vault,
    write: u64,
    /// A commit of what the store holds (a backup follows), not the in-flight marker.
    backup: bool,
}

impl Pending<'_> {
    /// Blocks this thread until the write is durable.
    fn wait(self) -> Result<(), StoreError> {
        self.vault.durable.wait(self.write)?;
        self.done();
        Ok(())
    }

    /// Waits, without holding the thread, until the write is durable.
    async fn settled(self) -> Result<(), StoreError> {
        self.vault.durable.settled(self.write).await?;
        self.done();
        Ok(())
    }

    fn done(&self) {
        if self.backup {
            self.vault.backup.changed();
        }
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        if let Err(e) = self.db.flush() {
            tracing::error!(error = %e, "could not flush the store on close");
        }
        if let Err(e) = holder::secure_tree(&self.store_dir) {
            tracing::warn!(error = %e, "could not restrict the store's file permissions");
        }
    }
}

fn token_tree_name(provider: &ProviderId) -> String {
    format!("{TOKEN_TREE_PREFIX}{provider}")
}

/// Token-tree key: record id (16 bytes) ‖ `0x00` ‖ field name. The separator keeps `scan_prefix(record id)`
/// exact and the key readable in a hex dump.
fn token_key(id: ConnectionId, field: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(CONNECTION_ID_LEN + 1 + field.len());
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(field.as_bytes());
    k
}

fn split_token_key(k: &[u8]) -> Option<(ConnectionId, &str)> {
    let (id, rest) = k.split_at_checked(CONNECTION_ID_LEN)?;
    let field = std::str::from_utf8(rest.strip_prefix(&[0])?).ok()?;
    Some((ConnectionId::from_slice(id)?, field))
}

fn record_error(tree: &str, id: ConnectionId, field: &str, error: RecordError) -> StoreError {
    StoreError::Record {
        tree: tree.to_owned(),
        record: id.to_hex(),
        field: field.to_owned(),
        error,
    }
}

/// Opens the sled database, waiting briefly while its lock is held.
///
/// IMPORTANT: sled releases its file lock only when its background flusher lets go of the database, a moment
/// after the last handle is dropped; and a CLI run may start just as another one exits. A short, bounded wait
/// turns both into a success instead of a spurious "in use" error; a store really held by a running app still
/// fails after about a second.
/// Creates `<store>/sled` with its `blobs` directory and empty `conf` and `db` files where they are missing, all
/// private; returns the sled directory.
fn prepare_db_dir(store_dir: &Path) -> Result<PathBuf, StoreError> {
    let db_dir = store_dir.join("sled");
    create_private_dir(store_dir)?;
    create_private_dir(&db_dir)?;
    create_private_dir(&db_dir.join("blobs"))?;
    // IMPORTANT: create sled's files ourselves with mode 0600 so they are never, even briefly, readable by
    // others whatever the umask; sled opens existing files without changing their mode or content.
    for file in ["conf", "db"] {
        let path = db_dir.join(file);
        holder::touch_private(&path).map_err(StoreError::io("create", &path))?;
    }
    Ok(db_dir)
}

/// Why [`open_checked`] failed.
enum OpenFailure {
    /// Another process holds sled's lock.
    Locked,
    /// The files are damaged, or hold fewer commits than the newest backup: the words say which.
    Damaged(String),
    /// The OS refused (permissions, disk full): not a sign of damage.
    Other(StoreError),
}

/// Opens sled at `db_dir` and checks that it holds at least the commits of the newest backup.
fn open_checked(db_dir: &Path, newest: Option<(u64, u64)>) -> Result<sled::Db, OpenFailure> {
    // sled has asserts on what it reads back: a damaged file must give an error, never take the process down.
    let opened = std::panic::catch_unwind(|| open_db(db_dir))
        .map_err(|_| OpenFailure::Damaged("the database engine stopped on damaged data".into()))?;
    let db = opened.map_err(|e| match &e {
        e if is_lock_error(e) => OpenFailure::Locked,
        sled::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            OpenFailure::Other(StoreError::Db {
                context: "opening the database",
                source: e,
            })
        }
        e => OpenFailure::Damaged(crate::text::clean(&format!("its log cannot be read: {e}"), 200)),
    })?;
    let generation = (|| -> Result<u64, sled::Error> {
        let meta = db.open_tree(TREE_META)?;
        Ok(meta
            .get(META_GENERATION)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    })()
    .map_err(|e| OpenFailure::Damaged(crate::text::clean(&format!("its metadata cannot be read: {e}"), 200)))?;
    match newest {
        Some((backup, _)) if generation < backup => Err(OpenFailure::Damaged(format!(
            "it opens with {generation} commits but its newest backup has {backup}: the database lost committed \
             changes while reading its log"
        ))),
        _ => Ok(db),
    }
}

/// Opens the store's database without ever leaving it worse: on damage the files go back as they were; a
/// damaged snapshot is rebuilt from the log when the log alone, tried on a scratch copy, is sound.
fn open_sound(
    db_dir: &Path,
    store_dir: &Path,
    preserved: &recovery::Preserved,
    newest: Option<(u64, u64)>,
) -> Result<(sled::Db, Option<String>), StoreError> {
    let damaged = |detail: String| StoreError::Damaged {
        path: store_dir.to_owned(),
        detail,
        backup: newest,
    };
    let put_back = || {
        preserved
            .restore()
            .map_err(StoreError::io("put back the files of", db_dir))
    };
    let locked = || StoreError::Locked {
        holder: Holder::read(store_dir),
        path: store_dir.to_owned(),
    };
    let first = match open_checked(db_dir, newest) {
        Ok(db) => return Ok((db, None)),
        Err(OpenFailure::Locked) => return Err(locked()),
        Err(OpenFailure::Other(e)) => return Err(e),
        Err(OpenFailure::Damaged(detail)) => detail,
    };
    put_back()?;
    if recovery::snapshots(db_dir).is_empty() {
        return Err(damaged(first));
    }
    let probe = store_dir.join(".probe");
    recovery::copy_without_snapshots(preserved.copy_dir(), &probe)
        .map_err(StoreError::io("make a scratch copy of", db_dir))?;
    let sound = open_checked(&probe, newest).is_ok();
    let _ = recovery::remove_all(&probe);
    if !sound {
        return Err(damaged(first));
    }
    for snapshot in recovery::snapshots(db_dir) {
        std::fs::remove_file(&snapshot).map_err(StoreError::io("remove the damaged snapshot", &snapshot))?;
    }
    match open_checked(db_dir, newest) {
        Ok(db) => {
            let notice = "the store's snapshot file was damaged; it was rebuilt from the log, and nothing was lost";
            tracing::warn!(store = %store_dir.display(), cause = %first, "{notice}");
            Ok((db, Some(notice.to_owned())))
        }
        Err(_) => {
            put_back()?;
            Err(damaged(first))
        }
    }
}

fn open_db(db_dir: &Path) -> Result<sled::Db, sled::Error> {
    let mut delay = std::time::Duration::from_millis(10);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        // IMPORTANT: no periodic background flush. Every write here is flushed before it returns (the vault's
        // durability rule), so sled's default 500 ms flusher would only wake the process twice a second for nothing.
        match sled::Config::new().path(db_dir).flush_every_ms(None).open() {
            Err(e) if is_lock_error(&e) && std::time::Instant::now() + delay < deadline => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(200));
            }
            result => return result,
        }
    }
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock"))
}

fn read_meta(meta: &sled::Tree) -> Result<MetaState, StoreError> {
    let get = |k: &[u8]| meta.get(k).map_err(StoreError::db("reading the meta tree"));
    let damaged = |what: &str| StoreError::MetaDamaged {
        reason: format!("the {what} record has the wrong length"),
    };
    let key_id = |bytes: &[u8]| -> Option<KeyId> { bytes.try_into().ok().map(KeyId::from_bytes) };
    let mut state = MetaState::default();
    if let Some(v) = get(META_FORMAT)? {
        state.format = Some(u32::from_be_bytes(
            v.as_ref().try_into().map_err(|_| damaged("format version"))?,
        ));
    }
    if let Some(v) = get(META_KEY_ID)? {
        state.key_id = Some(key_id(&v).ok_or_else(|| damaged("key id"))?);
    }
    if let Some(v) = get(META_ROTATION)? {
        let (old, new) = v.split_at_checked(8).ok_or_else(|| damaged("rotation"))?;
        state.rotation = Some((
            key_id(old).ok_or_else(|| damaged("rotation"))?,
            key_id(new).ok_or_else(|| damaged("rotation"))?,
        ));
    }
    if let Some(v) = get(META_RETIRED)? {
        state.retired = Some(key_id(&v).ok_or_else(|| damaged("retired key"))?);
    }
    if let Some(v) = get(META_GENERATION)? {
        state.generation = u64::from_be_bytes(v.as_ref().try_into().map_err(|_| damaged("generation"))?);
    }
    Ok(state)
}

/// Whether `tree` (the in-flight tree) marks `id` (a read error counts as no: the marker only words a later
/// failure).
fn in_flight(tree: &sled::Tree, id: ConnectionId) -> bool {
    tree.contains_key(id.as_bytes()).unwrap_or(false)
}

/// Whether any tree other than `meta` holds a record.
fn has_records(db: &sled::Db) -> Result<bool, StoreError> {
    for name in db.tree_names() {
        if name.as_ref() == TREE_META.as_bytes() || name.as_ref() == b"__sled__default" {
            continue;
        }
        let tree = db.open_tree(&name).map_err(StoreError::db("opening a tree"))?;
        if !tree.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A connection's metadata from its opened record.
fn meta_from_plain(plain: &SecretBytes) -> Result<ConnectionMeta, RecordError> {
    let payload: MetaPayload =
        serde_json::from_slice(plain.dangerously_expose()).map_err(|_| RecordError::Malformed)?;
    ConnectionMeta::try_from(payload).map_err(|()| RecordError::Malformed)
}

/// What the backup writer reads: the store's trees, its keys and its write lock.
struct BackupSource {
    db: sled::Db,
    meta: sled::Tree,
    connections: sled::Tree,
    keys: Arc<RwLock<Keys>>,
    write: Arc<Mutex<()>>,
    profile: String,
    clock: Arc<dyn Clock>,
    durable: Arc<durable::Durability>,
}

impl BackupSource {
    /// Every sealed record and the generation; the caller holds the write lock.
    fn snapshot_locked(&self) -> Option<(u64, Vec<backup::BackupRecord>)> {
        let read = || -> Result<(u64, Vec<backup::BackupRecord>), sled::Error> {
            let generation = match self.meta.get(META_GENERATION)? {
                Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or_default()),
                None => 0,
            };
            let mut records = Vec::new();
            let mut push = |tree: &str, t: &sled::Tree| -> Result<(), sled::Error> {
                for item in t.iter() {
                    let (k, v) = item?;
                    records.push(backup::BackupRecord {
                        tree: tree.to_owned(),
                        key: k.to_vec(),
                        value: v.to_vec(),
                    });
                }
                Ok(())
            };
            push(TREE_CONNECTIONS, &self.connections)?;
            for name in self.db.tree_names() {
                let Ok(name) = std::str::from_utf8(&name) else { continue };
                if name.starts_with(TOKEN_TREE_PREFIX) || name == TREE_CLIENTS {
                    push(name, &self.db.open_tree(name)?)?;
                }
            }
            Ok((generation, records))
        };
        let snapshot = match read() {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!(%error, "could not read the store for a backup");
                return None;
            }
        };
        // A backup never gets ahead of the disk: were it newer than what a power loss leaves of the store, the
        // store would be refused as having lost commits that were never reported committed.
        // The caller holds the write lock: every write up to the last one applied is in the snapshot.
        if let Err(error) = self.durable.wait(self.durable.last_applied()) {
            tracing::error!(%error, "could not sync the store before a backup");
            return None;
        }
        Some(snapshot)
    }
}

impl backup::Source for BackupSource {
    fn snapshot(&self) -> Option<(u64, Vec<backup::BackupRecord>)> {
        // Under the write lock: every record at one generation, never half of a commit.
        let _w = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        self.snapshot_locked()
    }

    fn encode(&self, generation: u64, records: Vec<backup::BackupRecord>) -> Vec<u8> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        backup::Backup {
            header: backup::BackupHeader {
                key_id: keys.current.id(),
                generation,
                created_at: self.clock.unix_secs(),
                profile: self.profile.clone(),
                records: records.len() as u32,
            },
            records,
        }
        .encode(&keys.current)
    }
}

#[cfg(test)]
mod tests;
