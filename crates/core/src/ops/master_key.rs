//! The master key as a person handles it: told once that it was created (and what losing it means), exported for
//! a backup, imported back into the keyring. None of this opens the store: the store's marker names its key, and
//! the key lives in the keyring (or `TOKENKEEP_MASTER_KEY`), so these work while the app holds the store.
//!
//! An exported key is the text `TOKENKEEP_MASTER_KEY` takes (standard base64 of the 32 bytes): one format for a
//! backup, a headless start and `secret-tool`.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::clock::SystemClock;
use crate::keys::{self, KeySource};
use crate::profile::ProfilePaths;
use crate::secret::{KeyId, MasterKey};
use crate::store::{PROGRAM_CLI, StoreError, Vault, store_key_id};

use super::OpError;

/// The profile's master key, encoded for a backup. `Debug` shows only the key id; the text zeroizes on drop.
pub struct ExportedKey {
    key_id: KeyId,
    text: Zeroizing<String>,
}

impl ExportedKey {
    /// The key's public id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The key itself, as base64. The caller shows it to the person who asked, and nowhere else.
    pub fn dangerously_expose(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ExportedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedKey")
            .field("key_id", &self.key_id)
            .field("text", &"<redacted>")
            .finish()
    }
}

/// The store's key id (its marker names it), or why there is none. A store from before markers is opened once to
/// learn it (which writes its marker); a store the app holds has its marker already.
fn required_key_id(paths: &ProfilePaths) -> Result<KeyId, OpError> {
    if let Some(id) = store_key_id(paths) {
        return Ok(id);
    }
    if !paths.store_dir().join("sled").exists() {
        return Err(OpError::Invalid(format!(
            "profile {} has no store yet, so it has no key: one is created with the store, when Tokenkeep first opens it",
            paths.profile()
        )));
    }
    let keys = KeySource::resolve(paths.profile())?;
    let vault = Vault::open(paths, keys, Arc::new(SystemClock), PROGRAM_CLI)?;
    Ok(vault.key_id())
}

/// The key of the profile's store, from where this process gets keys (the keyring, or `TOKENKEEP_MASTER_KEY`).
///
/// # Errors
/// No store yet; the keyring cannot be reached; the key is not there ([`keys::KeyError::KeyMissing`]); the headless
/// key is another one.
pub fn export_key(paths: &ProfilePaths) -> Result<ExportedKey, OpError> {
    let key_id = required_key_id(paths)?;
    let key = match KeySource::resolve(paths.profile())? {
        KeySource::Headless(key) if key.id() == key_id => key,
        KeySource::Headless(key) => {
            return Err(StoreError::WrongKey {
                expected: key_id,
                found: key.id(),
            }
            .into());
        }
        KeySource::Keyring(store) => store.load(key_id)?.ok_or_else(|| {
            StoreError::Key(keys::KeyError::KeyMissing {
                profile: paths.profile().to_string(),
                key_id,
            })
        })?,
    };
    tracing::info!(key_id = %key_id, "the master key was exported");
    Ok(ExportedKey {
        key_id,
        text: keys::encode_key(&key),
    })
}

/// What [`import_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportedKey {
    /// The key's id (the store's).
    pub key_id: KeyId,
    /// The keyring already held exactly this key: nothing was written.
    pub already_there: bool,
}

/// Puts an exported key (`text`, base64) back into the profile's keyring entry, after checking that it is the key
/// the store is sealed with. Nothing is written for any other key.
///
/// # Errors
/// Not a key; not this store's key; headless (`TOKENKEEP_MASTER_KEY` is set, so the keyring is not in use); the
/// keyring cannot be reached or does not keep the key.
pub fn import_key(paths: &ProfilePaths, text: &str) -> Result<ImportedKey, OpError> {
    let key = parse_exported(text)?;
    let key_id = required_key_id(paths)?;
    if key.id() != key_id {
        return Err(OpError::Invalid(format!(
            "this is key {}, but the store of profile {} is sealed with key {key_id}: nothing was imported",
            key.id(),
            paths.profile()
        )));
    }
    let KeySource::Keyring(keyring) = KeySource::resolve(paths.profile())? else {
        return Err(OpError::Invalid(format!(
            "{} is set, so this Tokenkeep does not use the keyring: unset it to import the key into the keyring",
            keys::ENV_MASTER_KEY
        )));
    };
    let already_there = match keyring.load(key_id) {
        Ok(Some(_)) => true,
        // A damaged entry, or another key under this key's name: replaced by the right one.
        Ok(None) | Err(keys::KeyError::Corrupt { .. } | keys::KeyError::IdMismatch { .. }) => false,
        Err(e) => return Err(StoreError::Key(e).into()),
    };
    if !already_there {
        keys::store_verified(&*keyring, &key).map_err(StoreError::Key)?;
    }
    tracing::info!(key_id = %key_id, already_there, "a master key was imported into the keyring");
    Ok(ImportedKey { key_id, already_there })
}

/// An exported key, as pasted or piped: base64 of 32 bytes, surrounding whitespace ignored. Never echoed.
fn parse_exported(text: &str) -> Result<MasterKey, OpError> {
    keys::parse_env_key(text).map_err(|_| {
        OpError::Invalid(
            "that is not a Tokenkeep key: an exported key is 44 characters of base64 (32 bytes), as \
             `tokenkeep key export` prints it"
                .into(),
        )
    })
}

/// Whether the person should be told about the store's keyring key: it was created (or rotated) and they have not
/// acknowledged it yet. Never for a headless key (the person brought it).
pub fn key_notice_due(paths: &ProfilePaths, key_id: KeyId, headless: bool) -> bool {
    if headless {
        return false;
    }
    let seen = std::fs::read_to_string(paths.key_notice()).ok();
    seen.as_deref().map(str::trim) != Some(key_id.to_hex().as_str())
}

/// Records that the person was told about key `key_id` (it is not shown again until another key replaces it).
///
/// # Errors
/// The profile directory cannot be written.
pub fn acknowledge_key_notice(paths: &ProfilePaths, key_id: KeyId) -> Result<(), OpError> {
    let path = paths.key_notice();
    std::fs::write(&path, format!("{}\n", key_id.to_hex()))
        .map_err(|e| OpError::Internal(format!("could not write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    fn paths(dir: &std::path::Path) -> ProfilePaths {
        let p = ProfilePaths::resolve(Profile::parse("dev").unwrap(), Some(dir.to_path_buf())).unwrap();
        p.ensure().unwrap();
        p
    }

    #[test]
    fn a_key_is_told_about_once_and_again_after_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (a, b) = (MasterKey::generate().unwrap().id(), MasterKey::generate().unwrap().id());
        assert!(key_notice_due(&paths, a, false));
        assert!(!key_notice_due(&paths, a, true), "never for a headless key");
        acknowledge_key_notice(&paths, a).unwrap();
        assert!(!key_notice_due(&paths, a, false));
        assert!(key_notice_due(&paths, b, false), "a rotated key is told about again");
    }

    #[test]
    fn nothing_is_exported_or_imported_for_a_profile_without_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let err = export_key(&paths).unwrap_err().to_string();
        assert!(err.contains("has no store yet"), "{err}");
        let key = keys::encode_key(&MasterKey::generate().unwrap());
        let err = import_key(&paths, &key).unwrap_err().to_string();
        assert!(err.contains("has no store yet"), "{err}");
    }

    #[test]
    fn an_import_that_is_not_a_key_never_echoes_it() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let err = import_key(&paths, "hunter2-not-a-key").unwrap_err().to_string();
        assert!(err.contains("not a Tokenkeep key"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn an_exported_key_redacts_debug() {
        let key = MasterKey::generate().unwrap();
        let exported = ExportedKey {
            key_id: key.id(),
            text: keys::encode_key(&key),
        };
        let shown = format!("{exported:?}");
        assert!(!shown.contains(exported.dangerously_expose()), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
