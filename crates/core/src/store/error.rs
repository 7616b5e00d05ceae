//! Errors of the vault, and the per-record problems that leave the rest of the store usable.
//!
//! **Invariant:** no message here contains token or key bytes, or an account name. Paths, key ids, record ids and
//! tree names are public and may appear.

use std::fmt;
use std::path::PathBuf;

use crate::envelope::EnvelopeError;
use crate::keys::KeyError;
use crate::secret::KeyId;

use super::holder::Holder;
use super::model::ConnectionId;

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The master key could not be loaded, stored or deleted.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store was sealed under another master key than the one available. Nothing was changed.
    #[error(
        "this store was encrypted with another key (store key id {expected}, available key {found}): nothing was \
         changed. Use the key with id {expected} — restore it to the keyring or set TOKENKEEP_MASTER_KEY to it — or \
         run `tokenkeep restore --start-over` to begin a new, empty store (the old one is kept aside)"
    )]
    WrongKey {
        /// The key id the store records.
        expected: KeyId,
        /// The id of the key that was available.
        found: KeyId,
    },
    /// Another process holds the store's lock.
    #[error("the store at {} is in use by {}", path.display(), Holder::describe_opt(holder.as_ref()))]
    Locked {
        /// The store directory.
        path: PathBuf,
        /// Who holds it, if they said so in the `holder` file.
        holder: Option<Holder>,
    },
    /// The store was written by a newer Tokenkeep.
    #[error(
        "the store uses format version {found}, but this Tokenkeep reads up to version {supported}: update Tokenkeep"
    )]
    UnsupportedFormat {
        /// The format the store records.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The store's `meta` tree is damaged (e.g. records exist but no key id).
    #[error("the store's metadata is damaged: {reason}. Nothing was changed; restore the store from a backup")]
    MetaDamaged {
        /// What is wrong.
        reason: String,
    },
    /// A key rotation is unfinished and this process has no keyring to finish it with.
    #[error(
        "a key rotation (key {old} → {new}) is unfinished and needs the OS keyring to complete: run Tokenkeep once \
         without TOKENKEEP_MASTER_KEY, with the keyring unlocked"
    )]
    RotationPending {
        /// The key being replaced.
        old: KeyId,
        /// The key replacing it.
        new: KeyId,
    },
    /// Rotation was asked for in headless mode.
    #[error(
        "rotate-key needs the OS keyring: in headless mode the master key is the TOKENKEEP_MASTER_KEY you set, and \
         Tokenkeep cannot hand you a new one safely. To start over with a new key, disconnect your accounts, move \
         the store directory away (see `tokenkeep paths`) and connect them again with the new key"
    )]
    RotationNeedsKeyring,
    /// No connection has this id.
    #[error("no connection with id {0}; see `tokenkeep list`")]
    NotFound(ConnectionId),
    /// A record could not be read; the rest of the store is unaffected.
    #[error("connection {record}: {field} in {tree} {error}")]
    Record {
        /// The tree holding the record.
        tree: String,
        /// The record id (hex).
        record: String,
        /// The field.
        field: String,
        /// What is wrong with it.
        error: RecordError,
    },
    /// An update tried to change the provider of a stored connection.
    #[error("a connection's provider cannot change (it is {stored:?}); delete it and connect again")]
    ProviderChanged {
        /// The stored provider id.
        stored: String,
    },
    /// Sealing failed (the OS could not provide random bytes).
    #[error("could not encrypt: {0}")]
    Seal(#[from] crate::crypto::CryptoError),
    /// sled could not open the store's files, or opened a store that lost committed changes. The files were put
    /// back exactly as they were.
    #[error(
        "the store at {} is damaged ({detail}), so it cannot be opened. Nothing was changed: its files are exactly as \
         they were. {}", path.display(), restore_hint(*backup)
    )]
    Damaged {
        /// The store directory.
        path: PathBuf,
        /// What is wrong, in a few words.
        detail: String,
        /// The newest backup's generation and date (Unix seconds), if there is one.
        backup: Option<(u64, u64)>,
    },
    /// The store is missing or empty although one existed (the marker or the backups say so).
    #[error(
        "the store at {} is missing or empty, but this profile had one (key {key}): Tokenkeep will not start a new, \
         empty store in its place. {} To begin empty on purpose, run `tokenkeep restore --start-over`",
        path.display(), restore_hint(*backup)
    )]
    Missing {
        /// The store directory.
        path: PathBuf,
        /// The key id the marker names (or `unknown`).
        key: String,
        /// The newest backup's generation and date (Unix seconds), if there is one.
        backup: Option<(u64, u64)>,
    },
    /// No backup could be restored.
    #[error(
        "no backup in {} can be restored{}", dir.display(),
        if reasons.is_empty() { ": there is none".to_owned() } else { format!(": {}", reasons.join("; ")) }
    )]
    NoBackup {
        /// The backups directory.
        dir: PathBuf,
        /// Each backup tried, and why it could not be used.
        reasons: Vec<String>,
    },
    /// The database failed.
    #[error(
        "the store's database failed while {context}: {source}. Check free disk space and permissions of the store directory"
    )]
    Db {
        /// What the vault was doing.
        context: &'static str,
        /// The database error.
        #[source]
        source: sled::Error,
    },
    /// A file of the store could not be created, read or secured.
    #[error("cannot {context} {}: {source}", path.display())]
    Io {
        /// What the vault was doing.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The profile's directories could not be created or secured.
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    /// A test fail point stopped the operation (tests only; never produced otherwise).
    #[doc(hidden)]
    #[error("stopped by a test fail point at {0:?}")]
    Interrupted(super::RotationStep),
}

impl StoreError {
    pub(super) fn db(context: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |source| Self::Db { context, source }
    }

    pub(super) fn io(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { context, path, source }
    }
}

/// What is wrong with one record. Coarse on purpose where the cipher is: altered, truncated-inside or moved
/// records are all [`RecordError::Decrypt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Too short to be an envelope.
    #[error("is truncated: it was damaged in storage")]
    Truncated,
    /// Sealed with a format version this build does not know.
    #[error("uses record format version {0}, which this Tokenkeep cannot read: update Tokenkeep")]
    UnknownVersion(u8),
    /// Sealed with a key the vault does not have.
    #[error("was sealed with key {sealed_with}, not with this store's key {have}")]
    WrongKey {
        /// The key id in the record's header.
        sealed_with: KeyId,
        /// The store's current key id.
        have: KeyId,
    },
    /// Authentication failed: altered, damaged, or moved from another place.
    #[error("could not be decrypted: it was altered or damaged")]
    Decrypt,
    /// Decrypted, but the content is not what this field holds.
    #[error("decrypted but its content is malformed")]
    Malformed,
    /// A field every connection has is absent.
    #[error("is missing")]
    Missing,
    /// A token record whose connection does not exist.
    #[error("belongs to no stored connection")]
    Orphan,
    /// The record's key in the database has an impossible shape.
    #[error("has a malformed record key")]
    BadRecordKey,
}

impl From<EnvelopeError> for RecordError {
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::Truncated => Self::Truncated,
            EnvelopeError::UnknownVersion(v) => Self::UnknownVersion(v),
            EnvelopeError::WrongKey { sealed_with, have } => Self::WrongKey { sealed_with, have },
            // `Decrypt` and any variant added later: the coarse answer.
            _ => Self::Decrypt,
        }
    }
}

/// One damaged record, as found by [`super::Vault::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    /// The tree holding it (`connections`, `tokens/<provider>`).
    pub tree: String,
    /// The record id, hex (the raw record key if it is malformed).
    pub record: String,
    /// The field (`meta`, `access_token`, …; empty if the key is malformed).
    pub field: String,
    /// What is wrong.
    pub error: RecordError,
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {} / {}: {}", self.tree, self.record, self.field, self.error)
    }
}

/// What to do about a store that cannot be used, given the newest backup (generation, Unix seconds).
fn restore_hint(backup: Option<(u64, u64)>) -> String {
    match backup {
        Some((generation, at)) => format!(
            "The newest backup (generation {generation}, taken {}) holds every account as of then: `tokenkeep restore \
             --list` shows it and `tokenkeep restore` restores it (the damaged store is kept aside).",
            crate::clock::rfc3339(at)
        ),
        None => "There is no backup to restore from; keep the directory as it is and ask for help, or move it away \
                 to start again."
            .to_owned(),
    }
}
