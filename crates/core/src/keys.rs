//! Master keys: where they live (the OS keyring, or `TOKENKEEP_MASTER_KEY` when headless) and how failures to
//! reach them are explained to the user.
//!
//! # Where a key lives
//!
//! One keyring entry per profile and key: service [`KEYRING_SERVICE`] (`tokenkeep`), user
//! `<profile>/master/<key id hex>`. The secret is the key encoded as standard base64 — the very format of
//! `TOKENKEEP_MASTER_KEY` — so a user can export a key for headless use or backup with
//! `secret-tool lookup service tokenkeep username dev/master/<id>` and nothing else.
//!
//! Which key is *current* is not kept in the keyring: the store records the current [`KeyId`] in its plaintext
//! `meta` tree. A key id is public (a one-way function of the key), so nothing is lost by keeping it next to the
//! data, and the store and its key id can never disagree the way two keyring items could. Naming entries by id
//! also lets a rotation hold the old and the new key at once.
//!
//! # No silent fallback
//!
//! **Invariant:** if the keyring cannot be reached, the caller gets a [`KeyError`] that names the cause; nothing here
//! ever falls back to an in-memory, kernel or plaintext store. `MemoryKeyStore` exists for tests only and is
//! never chosen by [`KeySource::resolve`].

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::profile::Profile;
use crate::secret::{KeyId, MASTER_KEY_LEN, MasterKey};

/// Environment variable holding the master key for headless use: standard base64 of exactly 32 bytes.
pub const ENV_MASTER_KEY: &str = "TOKENKEEP_MASTER_KEY";
/// Keyring service name under which every Tokenkeep master key is stored.
pub const KEYRING_SERVICE: &str = "tokenkeep";

/// What every keyring message ends with: the two ways forward.
const WHAT_TO_DO: &str = "Start or unlock your keyring (GNOME Keyring, KWallet), then try again. Without a keyring, \
                          TOKENKEEP_MASTER_KEY can hold the key instead: this store's own key (`tokenkeep key export` \
                          shows it where the keyring works), or, for a profile with no store yet, 32 random bytes in \
                          base64";

/// Base64 accepted for keys: the standard alphabet, padding optional (people trim `=` by hand).
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Why a master key could not be loaded, stored or deleted.
///
/// Messages say what happened and what to do; none ever contains key bytes or the value of
/// `TOKENKEEP_MASTER_KEY`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No D-Bus session bus could be reached (typical over SSH, in containers and in CI), so the keyring was never
    /// asked. `keyring` reports this as "No default store has been set".
    #[error(
        "cannot reach the OS keyring: this session has no D-Bus session bus (typical over SSH, in containers and \
         services). {WHAT_TO_DO}"
    )]
    NoSessionBus {
        /// What the platform said (for the log: zbus's words help a bug report, not the reader).
        detail: String,
    },
    /// A session bus exists but no Secret Service answers on it (`org.freedesktop.DBus.Error.ServiceUnknown`).
    #[error(
        "cannot reach the OS keyring: no keyring service (Secret Service) is running in this session. {WHAT_TO_DO}"
    )]
    NoSecretService {
        /// What the platform said (for the log).
        detail: String,
    },
    /// The keyring is locked, or the unlock prompt was dismissed or could not be shown.
    #[error("the OS keyring is locked, or its unlock prompt was dismissed. {WHAT_TO_DO}")]
    Locked {
        /// What the platform said (for the log).
        detail: String,
    },
    /// The store exists and names its key, but that key is not in the keyring.
    #[error(
        "the key for this store is not in the keyring (profile {profile}, key id {key_id}): restore it or set \
         TOKENKEEP_MASTER_KEY. A new key cannot decrypt the existing store, so none was created"
    )]
    KeyMissing {
        /// The profile whose key is missing.
        profile: String,
        /// The id of the key the store needs.
        key_id: KeyId,
    },
    /// The keyring holds something under the key's name that is not that key.
    #[error(
        "the keyring entry for key {key_id} (profile {profile}) is damaged: {reason}. Restore the key from a backup \
         or set TOKENKEEP_MASTER_KEY"
    )]
    Corrupt {
        /// The profile concerned.
        profile: String,
        /// The key id the entry is named after.
        key_id: KeyId,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// The keyring entry named after one key holds another (valid) key — for example, it was replaced by hand.
    /// The vault reports this as "encrypted with another key".
    #[error(
        "the keyring entry for key {expected} (profile {profile}) holds another key, {found}: restore the original \
         key or set TOKENKEEP_MASTER_KEY to it"
    )]
    IdMismatch {
        /// The profile concerned.
        profile: String,
        /// The key id the entry is named after.
        expected: KeyId,
        /// The id of the key it holds.
        found: KeyId,
    },
    /// A key was written but reading it back did not return the same key: the keyring did not persist it.
    #[error(
        "the OS keyring accepted key {key_id} but did not return it when read back, so it would be lost. \
         Nothing was encrypted with it. {WHAT_TO_DO}"
    )]
    NotPersisted {
        /// The id of the key that was written.
        key_id: KeyId,
    },
    /// `TOKENKEEP_MASTER_KEY` is set but does not hold a valid key. The message says why, never what it holds.
    #[error(
        "TOKENKEEP_MASTER_KEY {reason}: it must be standard base64 of exactly 32 random bytes \
         (create one with `head -c 32 /dev/urandom | base64`), or unset it to use the OS keyring"
    )]
    InvalidEnvKey {
        /// What is wrong with the value.
        reason: String,
    },
    /// Any other failure of the OS keyring.
    #[error("the OS keyring failed: {detail}. {WHAT_TO_DO}")]
    Platform {
        /// What the platform said.
        detail: String,
    },
}

/// Where master keys are kept. Implemented by [`OsKeyring`] and, for tests, `MemoryKeyStore` (feature
/// `test-support`).
///
/// Implementations only move bytes; [`store_verified`] adds the read-back check every caller should use.
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// Loads the key named `id`: `Ok(None)` if there is no such entry.
    ///
    /// # Errors
    /// The store cannot be reached, or the entry does not hold the key `id` names ([`KeyError::Corrupt`]).
    fn load(&self, id: KeyId) -> Result<Option<MasterKey>, KeyError>;

    /// Stores `key` under its id, replacing any entry of that name.
    ///
    /// # Errors
    /// The store cannot be reached or refuses the write.
    fn store(&self, key: &MasterKey) -> Result<(), KeyError>;

    /// Deletes the key named `id`. Deleting a key that is not there succeeds.
    ///
    /// # Errors
    /// The store cannot be reached or refuses the deletion.
    fn delete(&self, id: KeyId) -> Result<(), KeyError>;

    /// A short human description, e.g. "the OS keyring (service tokenkeep, profile dev)".
    fn describe(&self) -> String;
}

/// Stores `key`, then reads it back and compares in constant time, so that a keyring that accepts writes but
/// does not keep them is caught *before* anything is encrypted with the key.
///
/// # Errors
/// Whatever [`KeyStore::store`] or [`KeyStore::load`] reports, or [`KeyError::NotPersisted`].
pub fn store_verified(store: &dyn KeyStore, key: &MasterKey) -> Result<(), KeyError> {
    store.store(key)?;
    let back = store
        .load(key.id())?
        .ok_or(KeyError::NotPersisted { key_id: key.id() })?;
    if bool::from(back.dangerously_expose_bytes().ct_eq(key.dangerously_expose_bytes())) {
        Ok(())
    } else {
        Err(KeyError::NotPersisted { key_id: key.id() })
    }
}

/// Where this process gets its master key from. Resolved once, at start-up, by [`KeySource::resolve`].
pub enum KeySource {
    /// Keys live in a [`KeyStore`] — the OS keyring in production.
    Keyring(Arc<dyn KeyStore>),
    /// One fixed key from `TOKENKEEP_MASTER_KEY`. The keyring is never touched; keys cannot be rotated.
    Headless(MasterKey),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keyring(store) => f.debug_tuple("Keyring").field(store).finish(),
            Self::Headless(key) => f.debug_tuple("Headless").field(key).finish(),
        }
    }
}

impl KeySource {
    /// Reads `TOKENKEEP_MASTER_KEY` once: if it is set, headless mode with that key; otherwise the OS keyring for
    /// `profile`. No connection to the keyring is made here.
    ///
    /// The variable stays in this process's environment (removing it is `unsafe` in Rust 2024, and racy with other
    /// threads): a caller that spawns child processes should clear it for them with `Command::env_remove`.
    ///
    /// # Errors
    /// [`KeyError::InvalidEnvKey`] if the variable is set but not a valid key (empty counts as invalid: an empty
    /// value is almost always a failed `$(cat file)`, and quietly using the keyring instead would surprise).
    pub fn resolve(profile: &Profile) -> Result<Self, KeyError> {
        match std::env::var_os(ENV_MASTER_KEY) {
            None => Ok(Self::Keyring(Arc::new(OsKeyring::new(profile.clone())))),
            Some(value) => {
                let value = Zeroizing::new(value.into_string().map_err(|raw| {
                    drop(Zeroizing::new(raw.into_encoded_bytes()));
                    KeyError::InvalidEnvKey {
                        reason: "is not valid UTF-8".into(),
                    }
                })?);
                Ok(Self::Headless(parse_env_key(&value)?))
            }
        }
    }

    /// Whether this is headless mode.
    pub fn is_headless(&self) -> bool {
        matches!(self, Self::Headless(_))
    }
}

/// Parses a `TOKENKEEP_MASTER_KEY` value: standard base64 (padding optional, surrounding whitespace ignored) of
/// exactly 32 bytes.
///
/// # Errors
/// [`KeyError::InvalidEnvKey`] saying what is wrong, never echoing the value.
pub fn parse_env_key(value: &str) -> Result<MasterKey, KeyError> {
    let invalid = |reason: String| KeyError::InvalidEnvKey { reason };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(invalid("is set but empty".into()));
    }
    decode_key(trimmed).map_err(|e| match e {
        DecodeKeyError::NotBase64 => invalid("is not valid base64".into()),
        DecodeKeyError::Length(n) => invalid(format!("decodes to {n} bytes, not 32")),
    })
}

/// Encodes a key in the one text format Tokenkeep uses for keys (standard base64, padded).
pub fn encode_key(key: &MasterKey) -> Zeroizing<String> {
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.dangerously_expose_bytes()))
}

enum DecodeKeyError {
    NotBase64,
    Length(usize),
}

fn decode_key(text: &str) -> Result<MasterKey, DecodeKeyError> {
    // Decode into a buffer that is wiped whatever happens; 3/4 of the length bounds the output.
    let mut buf = Zeroizing::new(vec![0u8; text.len().div_ceil(4) * 3]);
    let n = BASE64
        .decode_slice(text.as_bytes(), &mut buf[..])
        .map_err(|_| DecodeKeyError::NotBase64)?;
    if n != MASTER_KEY_LEN {
        return Err(DecodeKeyError::Length(n));
    }
    MasterKey::from_slice(&buf[..n]).map_err(|_| DecodeKeyError::Length(n))
}

/// The OS keyring (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows), through
/// `keyring-core` and the platform's store.
///
/// The connection to the platform's store (on Linux a D-Bus connection and a Secret Service session, 50–200 ms) is
/// made on first use and kept. A failure to reach the keyring drops it, so the next call connects from scratch:
/// a keyring started, restarted or unlocked after Tokenkeep is found without restarting Tokenkeep. Clones share
/// the connection.
#[derive(Debug, Clone)]
pub struct OsKeyring {
    service: String,
    profile: Profile,
    connection: Arc<Mutex<Option<Arc<keyring_core::CredentialStore>>>>,
}

impl OsKeyring {
    /// The keyring entries of `profile` under service [`KEYRING_SERVICE`].
    pub fn new(profile: Profile) -> Self {
        Self {
            service: KEYRING_SERVICE.to_owned(),
            profile,
            connection: Arc::default(),
        }
    }

    /// The keyring user name of key `id`: `<profile>/master/<id hex>`.
    pub fn entry_user(&self, id: KeyId) -> String {
        format!("{}/master/{}", self.profile.as_str(), id.to_hex())
    }

    /// Runs `op` on the entry of key `id`, connecting first if there is no connection. A failure that may mean the
    /// keyring went away, or was never there, drops the connection: the next call starts afresh.
    fn with_entry<T>(
        &self,
        id: KeyId,
        op: impl FnOnce(&keyring_core::Entry) -> Result<T, keyring_core::Error>,
    ) -> Result<T, keyring_core::Error> {
        let store = {
            let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
            match &*slot {
                Some(store) => store.clone(),
                None => {
                    let store = connect_platform_store()?;
                    *slot = Some(store.clone());
                    store
                }
            }
        };
        let result =
            keyring_core::Entry::new_in_store(&store, &self.service, &self.entry_user(id)).and_then(|e| op(&e));
        if matches!(
            result,
            Err(keyring_core::Error::PlatformFailure(_) | keyring_core::Error::NoStorageAccess(_))
        ) {
            self.connection.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
        result
    }

    fn corrupt(&self, id: KeyId, reason: &str) -> KeyError {
        KeyError::Corrupt {
            profile: self.profile.as_str().to_owned(),
            key_id: id,
            reason: reason.to_owned(),
        }
    }
}

/// A new connection to this platform's credential store.
fn connect_platform_store() -> Result<Arc<keyring_core::CredentialStore>, keyring_core::Error> {
    #[cfg(target_os = "macos")]
    let store: Arc<keyring_core::CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
    #[cfg(windows)]
    let store: Arc<keyring_core::CredentialStore> = windows_native_keyring_store::Store::new()?;
    #[cfg(all(unix, not(target_os = "macos")))]
    let store: Arc<keyring_core::CredentialStore> = zbus_secret_service_keyring_store::Store::new()?;
    #[cfg(not(any(unix, windows)))]
    let store: Arc<keyring_core::CredentialStore> = return Err(keyring_core::Error::NotSupportedByStore(
        "this platform has no keyring Tokenkeep can use".into(),
    ));
    Ok(store)
}

impl KeyStore for OsKeyring {
    fn load(&self, id: KeyId) -> Result<Option<MasterKey>, KeyError> {
        let secret = match self.with_entry(id, keyring_core::Entry::get_secret) {
            Ok(secret) => Zeroizing::new(secret),
            Err(keyring_core::Error::NoEntry) => return Ok(None),
            Err(e) => return Err(classify(&e)),
        };
        let text = std::str::from_utf8(&secret).map_err(|_| self.corrupt(id, "it is not text"))?;
        let key = decode_key(text.trim()).map_err(|_| self.corrupt(id, "it is not base64 of a 32-byte key"))?;
        if key.id() != id {
            return Err(KeyError::IdMismatch {
                profile: self.profile.as_str().to_owned(),
                expected: id,
                found: key.id(),
            });
        }
        Ok(Some(key))
    }

    fn store(&self, key: &MasterKey) -> Result<(), KeyError> {
        let text = encode_key(key);
        self.with_entry(key.id(), |e| e.set_secret(text.as_bytes()))
            .map_err(|e| classify(&e))
    }

    fn delete(&self, id: KeyId) -> Result<(), KeyError> {
        match self.with_entry(id, keyring_core::Entry::delete_credential) {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(classify(&e)),
        }
    }

    fn describe(&self) -> String {
        format!("the OS keyring (service {}, profile {})", self.service, self.profile)
    }
}

/// What the OS keyring looks like right now, as far as can be told without reading a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyringState {
    /// No session bus, or no keyring service on it.
    Unreachable,
    /// A keyring service runs, and its default collection is locked.
    Locked,
    /// A keyring service runs (or can be started by the bus), and nothing says it is locked.
    Available,
}

/// Looks at the OS keyring over a new connection, without reading a secret and without ever prompting: whether
/// the session bus has (or can start) a Secret Service, and whether its default collection is locked. Blocking
/// (a few D-Bus round trips). The app calls it every few seconds while the vault is closed for want of the keyring,
/// to notice the keyring starting or being unlocked.
///
/// On platforms without a Secret Service the keyring is part of the system: [`KeyringState::Available`].
pub fn probe_keyring() -> KeyringState {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        secret_service_state()
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        KeyringState::Available
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
fn secret_service_state() -> KeyringState {
    use zbus::blocking::Connection;
    use zbus::blocking::fdo::{DBusProxy, PropertiesProxy};
    use zbus::names::{BusName, InterfaceName};

    const SERVICE: &str = "org.freedesktop.secrets";
    let Ok(bus) = Connection::session() else {
        return KeyringState::Unreachable;
    };
    let Ok(dbus) = DBusProxy::new(&bus) else {
        return KeyringState::Unreachable;
    };
    let Ok(name) = BusName::try_from(SERVICE) else {
        return KeyringState::Unreachable;
    };
    let running = dbus.name_has_owner(name).unwrap_or(false);
    if !running {
        let activatable = dbus
            .list_activatable_names()
            .is_ok_and(|names| names.iter().any(|n| n.as_str() == SERVICE));
        return if activatable {
            KeyringState::Available
        } else {
            KeyringState::Unreachable
        };
    }
    // `Locked` of the default collection: a property read, which never prompts. No default collection yet (a
    // keyring never used) is not locked: creating the key creates it.
    let locked = PropertiesProxy::builder(&bus)
        .destination(SERVICE)
        .and_then(|b| b.path("/org/freedesktop/secrets/aliases/default"))
        .and_then(|b| b.build())
        .ok()
        .and_then(|props| {
            props
                .get(
                    InterfaceName::from_static_str_unchecked("org.freedesktop.Secret.Collection"),
                    "Locked",
                )
                .ok()
        })
        .and_then(|value| bool::try_from(value).ok());
    if locked == Some(true) {
        KeyringState::Locked
    } else {
        KeyringState::Available
    }
}

/// Turns a `keyring` error into a [`KeyError`] naming the cause.
fn classify(err: &keyring_core::Error) -> KeyError {
    let message = match err {
        // These carry the stored bytes in their payload: never format them.
        keyring_core::Error::BadEncoding(_) | keyring_core::Error::BadDataFormat(..) => {
            return KeyError::Platform {
                detail: "the keyring returned malformed data".into(),
            };
        }
        other => other.to_string(),
    };
    let error = classify_message(&message);
    // The platform's own words (zbus error names and all) help a bug report, not the person reading the message.
    tracing::debug!(target: "tokenkeep_core::keys", platform = %message, "keyring call failed");
    error
}

/// Classifies a keyring error message (the platform's wording, as observed with `keyring` 4.2 on the Secret
/// Service) into the case the user must act on. Split out so the wording can be tested without a keyring.
pub(crate) fn classify_message(message: &str) -> KeyError {
    let lower = message.to_ascii_lowercase();
    let detail = message.to_owned();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    // Most specific first: "No default store has been set" wraps the real cause.
    if has(&[
        "serviceunknown",
        "was not provided by any .service files",
        "name has no owner",
    ]) {
        KeyError::NoSecretService { detail }
    } else if has(&[
        "result not returned from ss api",
        "object locked",
        "is locked",
        "prompt dismissed",
        "connection closed before prompt completed",
    ]) {
        KeyError::Locked { detail }
    } else if has(&[
        "no secret service provider or dbus session found",
        "dbus_session_bus_address",
        "no default store has been set",
        "connection refused",
        "failed to connect",
    ]) {
        KeyError::NoSessionBus { detail }
    } else {
        KeyError::Platform { detail }
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use self::memory::MemoryKeyStore;

/// The in-memory key store of the tests, compiled only for them (the `test-support` feature, or this crate's own
/// unit tests): no build of the app or the CLI contains it.
#[cfg(any(test, feature = "test-support"))]
mod memory {
    use std::collections::HashMap;
    use std::fmt;
    use std::sync::{Arc, Mutex, PoisonError};

    use super::{KeyError, KeyStore};
    use crate::secret::{KeyId, MasterKey};

    /// Keys held in this process's memory. **For tests only**: the keys vanish when the process exits, so this is
    /// never used as a fallback (see the module's invariant). Clones share the same keys, so a test can keep a handle
    /// after giving one to a vault.
    #[derive(Debug, Clone, Default)]
    pub struct MemoryKeyStore {
        inner: Arc<Mutex<MemoryInner>>,
    }

    #[derive(Default)]
    struct MemoryInner {
        keys: HashMap<KeyId, MasterKey>,
        lose_writes: bool,
        fail_with: Option<fn() -> KeyError>,
    }

    impl fmt::Debug for MemoryInner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mut ids: Vec<_> = self.keys.keys().collect();
            ids.sort();
            f.debug_struct("MemoryInner")
                .field("key_ids", &ids)
                .finish_non_exhaustive()
        }
    }

    impl MemoryKeyStore {
        /// An empty store.
        pub fn new() -> Self {
            Self::default()
        }

        /// The ids of the keys held, sorted.
        pub fn key_ids(&self) -> Vec<KeyId> {
            let mut ids: Vec<_> = self.lock().keys.keys().copied().collect();
            ids.sort();
            ids
        }

        /// Puts `key` in the store directly (no failure injection).
        pub fn insert(&self, key: MasterKey) {
            self.lock().keys.insert(key.id(), key);
        }

        /// Puts `key` under the name of key `id` — like a keyring entry replaced by hand.
        pub fn replace_entry(&self, id: KeyId, key: MasterKey) {
            self.lock().keys.insert(id, key);
        }

        /// Removes a key directly (no failure injection).
        pub fn remove(&self, id: KeyId) {
            self.lock().keys.remove(&id);
        }

        /// When set, `store` reports success but keeps nothing — like a keyring that silently drops writes.
        pub fn lose_writes(&self, lose: bool) {
            self.lock().lose_writes = lose;
        }

        /// When set, every operation fails with the error `make` builds — to simulate a locked or absent keyring.
        pub fn fail_with(&self, make: Option<fn() -> KeyError>) {
            self.lock().fail_with = make;
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
            self.inner.lock().unwrap_or_else(PoisonError::into_inner)
        }

        fn check(inner: &MemoryInner) -> Result<(), KeyError> {
            inner.fail_with.map_or(Ok(()), |make| Err(make()))
        }
    }

    impl KeyStore for MemoryKeyStore {
        fn load(&self, id: KeyId) -> Result<Option<MasterKey>, KeyError> {
            let inner = self.lock();
            Self::check(&inner)?;
            match inner.keys.get(&id) {
                None => Ok(None),
                Some(k) if k.id() != id => Err(KeyError::IdMismatch {
                    profile: "memory".into(),
                    expected: id,
                    found: k.id(),
                }),
                Some(k) => Ok(Some(
                    MasterKey::from_slice(k.dangerously_expose_bytes()).expect("32 bytes"),
                )),
            }
        }

        fn store(&self, key: &MasterKey) -> Result<(), KeyError> {
            let mut inner = self.lock();
            Self::check(&inner)?;
            if !inner.lose_writes {
                let copy = MasterKey::from_slice(key.dangerously_expose_bytes()).expect("32 bytes");
                inner.keys.insert(key.id(), copy);
            }
            Ok(())
        }

        fn delete(&self, id: KeyId) -> Result<(), KeyError> {
            let mut inner = self.lock();
            Self::check(&inner)?;
            inner.keys.remove(&id);
            Ok(())
        }

        fn describe(&self) -> String {
            "an in-memory test key store".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error texts recorded in `platform.md` and observed with the real gnome-keyring
    /// (`tests/keyring_real.rs` checks the live ones).
    #[test]
    fn classifier_names_each_keyring_failure() {
        let cases: &[(&str, &str)] = &[
            (
                "No default store has been set, so cannot search or create entries: Platform failure: no secret \
                 service provider or dbus session found",
                "NoSessionBus",
            ),
            (
                "No default store has been set, so cannot search or create entries",
                "NoSessionBus",
            ),
            (
                "No default store has been set, so cannot search or create entries: Platform failure: zbus error: \
                 org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided by any \
                 .service files",
                "NoSecretService",
            ),
            (
                "Couldn't access platform storage: SS error: result not returned from SS API",
                "Locked",
            ),
            ("Couldn't access platform storage: SS error: prompt dismissed", "Locked"),
            ("Couldn't access platform storage: SS Error: object locked", "Locked"),
            // As observed with gnome-keyring 42.1 and keyring 4.2 (tests/keyring_real.rs prints them):
            (
                "No default store has been set, so cannot search or create entries: Platform failure: zbus error: \
                 Failed to connect to address `unix:path=/tmp/x/run/no-such-bus`: No such file or directory (os \
                 error 2)",
                "NoSessionBus",
            ),
            ("Couldn't access platform storage: SS error: prompt dismissed", "Locked"),
            ("Platform failure: zbus error: something else entirely", "Platform"),
        ];
        for (message, expected) in cases {
            let err = classify_message(message);
            let kind = match &err {
                KeyError::NoSessionBus { .. } => "NoSessionBus",
                KeyError::NoSecretService { .. } => "NoSecretService",
                KeyError::Locked { .. } => "Locked",
                KeyError::Platform { .. } => "Platform",
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(kind, *expected, "{message}");
            let shown = err.to_string();
            // The platform's words stay in the log; a classified failure is told in words, without zbus's.
            assert_eq!(
                shown.contains(message),
                *expected == "Platform",
                "the platform's words only when unclassified: {shown}"
            );
            assert!(
                *expected == "Platform" || !shown.contains("zbus"),
                "no zbus text: {shown}"
            );
            assert!(
                shown.contains("Start or unlock your keyring") && shown.contains("this store's own key"),
                "says what to do: {shown}"
            );
        }
    }

    #[test]
    fn env_key_parses_standard_base64_with_or_without_padding() {
        let key = MasterKey::from_bytes(std::array::from_fn(|i| i as u8 * 7));
        let text = encode_key(&key);
        for variant in [
            text.to_string(),
            text.trim_end_matches('=').to_owned(),
            format!("  {}\n", *text),
        ] {
            assert_eq!(parse_env_key(&variant).unwrap().id(), key.id());
        }
    }

    #[test]
    fn env_key_errors_say_what_is_wrong_without_echoing_the_value() {
        let short = base64::engine::general_purpose::STANDARD.encode([0x5au8; 31]);
        let long = base64::engine::general_purpose::STANDARD.encode([0x5au8; 33]);
        let cases = [
            ("", "is set but empty"),
            ("   ", "is set but empty"),
            ("not*base64*at*all!", "is not valid base64"),
            (short.as_str(), "decodes to 31 bytes, not 32"),
            (long.as_str(), "decodes to 33 bytes, not 32"),
        ];
        for (value, reason) in cases {
            let err = parse_env_key(value).unwrap_err();
            let shown = err.to_string();
            assert!(shown.contains(reason), "{shown}");
            assert!(shown.contains("TOKENKEEP_MASTER_KEY"), "{shown}");
            if !value.trim().is_empty() {
                assert!(!shown.contains(value), "echoes the value: {shown}");
            }
        }
    }

    #[test]
    fn store_verified_catches_a_store_that_drops_writes() {
        let store = MemoryKeyStore::new();
        let key = MasterKey::generate().unwrap();
        store.lose_writes(true);
        let err = store_verified(&store, &key).unwrap_err();
        assert!(
            matches!(err, KeyError::NotPersisted { key_id } if key_id == key.id()),
            "{err:?}"
        );
        store.lose_writes(false);
        store_verified(&store, &key).unwrap();
        assert_eq!(store.key_ids(), vec![key.id()]);
        store.delete(key.id()).unwrap();
        store.delete(key.id()).unwrap();
        assert!(store.load(key.id()).unwrap().is_none());
    }

    #[test]
    fn key_errors_never_show_key_bytes() {
        let key = MasterKey::from_bytes([0xc3; 32]);
        let encoded = encode_key(&key);
        let errors = [
            KeyError::NotPersisted { key_id: key.id() },
            KeyError::KeyMissing {
                profile: "dev".into(),
                key_id: key.id(),
            },
            KeyError::Corrupt {
                profile: "dev".into(),
                key_id: key.id(),
                reason: "it is not text".into(),
            },
        ];
        for err in errors {
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains(encoded.as_str()) && !shown.contains("c3c3c3"),
                "{shown}"
            );
        }
    }

    #[test]
    fn os_keyring_entry_names_profile_and_key() {
        let keyring = OsKeyring::new(Profile::parse("dev").unwrap());
        let id = KeyId::from_bytes([0xab; 8]);
        assert_eq!(keyring.entry_user(id), "dev/master/abababababababab");
        assert!(keyring.describe().contains("service tokenkeep"));
    }
}
