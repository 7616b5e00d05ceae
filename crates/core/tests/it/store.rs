//! The vault against an in-memory key store and a hand-driven clock, on real sled stores in temporary directories.
//!
//! Raw sled access (with the vault closed) plays the part of disk damage and of an attacker reading the files.
use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokenkeep_core::clock::ManualClock;
use tokenkeep_core::envelope::{self, RecordLocation};
use tokenkeep_core::keys::{KeyError, KeySource, KeyStore, MemoryKeyStore};
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::{MasterKey, SecretString};
use tokenkeep_core::store::{
    ConnectionId, ConnectionMeta, ConnectionStatus, PROGRAM_CLI, RecordError, RotationStep, StoreError, TokenKind,
    TokenSet, Vault,
};

pub(crate) const T0: u64 = 1_764_000_000;
pub(crate) const ACCOUNT: &str = "alice.distinctive-account@example.com";

pub(crate) struct Fixture {
    _tmp: tempfile::TempDir,
    pub(crate) paths: ProfilePaths,
    pub(crate) keys: MemoryKeyStore,
    pub(crate) clock: Arc<ManualClock>,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let paths = ProfilePaths::resolve(Profile::parse("dev").unwrap(), Some(tmp.path().join("home"))).unwrap();
        Self {
            _tmp: tmp,
            paths,
            keys: MemoryKeyStore::new(),
            clock: Arc::new(ManualClock::at_unix(T0)),
        }
    }

    pub(crate) fn try_open(&self) -> Result<Vault, StoreError> {
        Vault::open(
            &self.paths,
            KeySource::Keyring(Arc::new(self.keys.clone())),
            self.clock.clone(),
            PROGRAM_CLI,
        )
    }

    pub(crate) fn open(&self) -> Vault {
        self.try_open().unwrap()
    }

    pub(crate) fn open_headless(&self, key: MasterKey) -> Result<Vault, StoreError> {
        Vault::open(&self.paths, KeySource::Headless(key), self.clock.clone(), PROGRAM_CLI)
    }

    pub(crate) fn sled_dir(&self) -> PathBuf {
        self.paths.store_dir().join("sled")
    }

    /// Runs `f` on the raw database (the vault must be closed).
    pub(crate) fn raw<T>(&self, f: impl FnOnce(&sled::Db) -> T) -> T {
        // A vault just dropped lets go of sled's file lock when sled's own flusher thread ends, a moment later.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match sled::open(self.sled_dir()) {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("cannot open the raw store: {e}"),
            }
        };
        let out = f(&db);
        db.flush().unwrap();
        out
    }
}

pub(crate) fn tokens(access: &str, refresh: Option<&str>, id_token: Option<&str>) -> TokenSet {
    let s = |v: &str| SecretString::new(v.to_owned());
    TokenSet {
        access: s(access),
        refresh: refresh.map(s),
        id_token: id_token.map(s),
        dpop_key: None,
    }
}

pub(crate) fn meta(provider: &str, account: &str) -> ConnectionMeta {
    ConnectionMeta {
        subject: Some(format!("sub-{account}")),
        scopes: vec!["openid".into(), "email".into()],
        expires_at: Some(T0 + 3600),
        ..ConnectionMeta::new(ProviderId::parse(provider).unwrap(), account)
    }
}

/// Every file below `dir`, with its bytes.
pub(crate) fn read_all(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(read_all(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    out
}

/// Every file below `dir` as length and SHA-256 (readable when an assertion fails).
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    read_all(dir)
        .into_iter()
        .map(|(p, b)| {
            (
                p,
                format!("{} bytes, sha256 {}", b.len(), hex::encode(Sha256::digest(&b))),
            )
        })
        .collect()
}

type KeyValue = (Vec<u8>, Vec<u8>);

/// Every key/value of every tree (what the store means, independent of sled's file layout).
fn logical(db: &sled::Db) -> BTreeMap<Vec<u8>, Vec<KeyValue>> {
    db.tree_names()
        .into_iter()
        .map(|name| {
            let tree = db.open_tree(&name).unwrap();
            let kv = tree
                .iter()
                .map(|r| r.unwrap())
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
            (name.to_vec(), kv)
        })
        .collect()
}

pub(crate) fn token_key(id: ConnectionId, kind: TokenKind) -> Vec<u8> {
    [id.as_bytes().as_slice(), &[0], kind.field().as_bytes()].concat()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Three connections; the first has all three tokens.
pub(crate) fn populate(vault: &Vault) -> Vec<ConnectionId> {
    vec![
        vault
            .put_connection(
                meta("google", ACCOUNT),
                &tokens("at-one", Some("rt-one"), Some("idt-one")),
            )
            .unwrap(),
        vault
            .put_connection(meta("github", "bob"), &tokens("at-two", Some("rt-two"), None))
            .unwrap(),
        vault
            .put_connection(meta("google", "carol"), &tokens("at-three", None, None))
            .unwrap(),
    ]
}

pub(crate) fn assert_all_readable(vault: &Vault, ids: &[ConnectionId]) {
    let expected = [("at-one", ACCOUNT), ("at-two", "bob"), ("at-three", "carol")];
    for (id, (access, account)) in ids.iter().zip(expected) {
        assert_eq!(vault.tokens(*id).unwrap().access.dangerously_expose(), access);
        assert_eq!(vault.get_meta(*id).unwrap().account, account);
    }
    assert_eq!(vault.verify().unwrap(), vec![]);
}

#[test]
fn created_store_reopens_and_reads_everything_back() {
    let fx = Fixture::new();
    let (id, key_id) = {
        let vault = fx.open();
        let id = vault
            .put_connection(meta("google", ACCOUNT), &tokens("at-1", Some("rt-1"), Some("idt-1")))
            .unwrap();
        (id, vault.key_id())
    };
    assert_eq!(fx.keys.key_ids(), vec![key_id], "exactly one key, in the keystore");

    fx.clock.advance(Duration::from_secs(60));
    let vault = fx.open();
    assert_eq!(vault.key_id(), key_id);
    assert!(!vault.is_headless());
    let got = vault.get_meta(id).unwrap();
    assert_eq!(
        got,
        ConnectionMeta {
            created_at: T0,
            updated_at: T0,
            ..meta("google", ACCOUNT)
        }
    );
    let set = vault.tokens(id).unwrap();
    assert_eq!(set.access.dangerously_expose(), "at-1");
    assert_eq!(set.refresh.unwrap().dangerously_expose(), "rt-1");
    assert_eq!(set.id_token.unwrap().dangerously_expose(), "idt-1");
    assert_eq!(fx.keys.key_ids(), vec![key_id], "reopening creates no key");
}

#[test]
fn replace_update_and_delete_change_exactly_what_they_say() {
    let fx = Fixture::new();
    let vault = fx.open();
    let ids = populate(&vault);

    fx.clock.advance(Duration::from_secs(10));
    let mut m = vault.get_meta(ids[0]).unwrap();
    m.status = ConnectionStatus::Connected;
    m.last_refresh_at = Some(T0 + 10);
    vault
        .replace_tokens(ids[0], &tokens("at-one-b", None, Some("idt-one-b")), &m)
        .unwrap();
    let set = vault.tokens(ids[0]).unwrap();
    assert_eq!(set.access.dangerously_expose(), "at-one-b");
    assert!(set.refresh.is_none(), "None removes the stored refresh token");
    assert_eq!(set.id_token.unwrap().dangerously_expose(), "idt-one-b");
    let got = vault.get_meta(ids[0]).unwrap();
    assert_eq!(
        (got.created_at, got.updated_at, got.last_refresh_at),
        (T0, T0 + 10, Some(T0 + 10))
    );

    fx.clock.advance(Duration::from_secs(5));
    let updated = vault
        .update_meta(ids[1], |m| {
            m.status = ConnectionStatus::NeedsReconnect;
            m.last_error = Some("the provider revoked access".into());
        })
        .unwrap();
    assert_eq!(updated.updated_at, T0 + 15);
    assert_eq!(vault.get_meta(ids[1]).unwrap(), updated);
    assert_eq!(
        vault.tokens(ids[1]).unwrap().access.dangerously_expose(),
        "at-two",
        "tokens untouched"
    );

    let err = vault
        .update_meta(ids[1], |m| m.provider = ProviderId::parse("google").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ProviderChanged { ref stored } if stored == "github"),
        "{err}"
    );
    let err = vault
        .replace_tokens(ids[1], &tokens("x", None, None), &meta("google", "bob"))
        .unwrap_err();
    assert!(matches!(err, StoreError::ProviderChanged { .. }), "{err}");
    // A provider id names a tree: one that could not is refused before any connection can carry it.
    let err = ProviderId::parse("Bad/Provider").unwrap_err();
    assert!(err.to_string().contains("invalid provider id"), "{err}");

    assert!(vault.delete_connection(ids[0]).unwrap());
    assert!(!vault.delete_connection(ids[0]).unwrap());
    assert!(matches!(vault.tokens(ids[0]), Err(StoreError::NotFound(id)) if id == ids[0]));
    assert!(matches!(vault.get_meta(ids[0]), Err(StoreError::NotFound(_))));
    assert!(matches!(
        vault.replace_tokens(ids[0], &tokens("x", None, None), &m),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(vault.list().unwrap().len(), 2);
    assert_eq!(vault.verify().unwrap(), vec![]);
    drop(vault);
    let leftover = fx.raw(|db| {
        logical(db)
            .into_values()
            .flatten()
            .filter(|(k, _)| k.starts_with(ids[0].as_bytes()))
            .count()
    });
    assert_eq!(leftover, 0, "every record of the deleted connection is gone");
}

#[test]
fn a_different_headless_key_is_refused_and_nothing_changes_on_disk() {
    let fx = Fixture::new();
    let store_key = {
        let vault = fx.open();
        populate(&vault);
        vault.key_id()
    };
    // Unsettled store (sled has not yet replayed its log): the logical content must not change.
    let before = fx.raw(logical);
    let other = MasterKey::generate().unwrap();
    let other_id = other.id();
    let err = fx.open_headless(other).unwrap_err();
    assert!(
        matches!(err, StoreError::WrongKey { expected, found } if expected == store_key && found == other_id),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("this store was encrypted with another key"), "{msg}");
    assert!(
        msg.contains(&format!("store key id {store_key}, available key {other_id}")),
        "{msg}"
    );
    assert_eq!(fx.raw(logical), before);

    // Settled store: not one byte of any file changes. (sled rewrites its own files on the first open after
    // writes — log replay and a snapshot — whoever opens it, hence the settling open just above.)
    let files = snapshot(&fx.paths.store_dir());
    let err = fx.open_headless(MasterKey::generate().unwrap()).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
    assert_eq!(snapshot(&fx.paths.store_dir()), files);
    assert_eq!(fx.keys.key_ids(), vec![store_key], "the keystore is untouched");
}

#[test]
fn a_keyring_entry_holding_another_key_is_refused_as_another_key() {
    let fx = Fixture::new();
    let store_key = fx.open().key_id();
    let other = MasterKey::generate().unwrap();
    let other_id = other.id();
    fx.keys.replace_entry(store_key, other);
    let err = fx.try_open().unwrap_err();
    assert!(
        matches!(err, StoreError::WrongKey { expected, found } if expected == store_key && found == other_id),
        "{err:?}"
    );
}

#[test]
fn a_store_whose_key_is_missing_is_refused_and_no_new_key_is_created() {
    let fx = Fixture::new();
    let store_key = {
        let vault = fx.open();
        populate(&vault);
        vault.key_id()
    };
    fx.raw(|_| ()); // settle sled (see above)
    let files = snapshot(&fx.paths.store_dir());
    fx.keys.remove(store_key);

    let err = fx.try_open().unwrap_err();
    assert!(
        matches!(err, StoreError::Key(KeyError::KeyMissing { key_id, .. }) if key_id == store_key),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("the key for this store is not in the keyring"), "{msg}");
    assert!(msg.contains("restore it or set TOKENKEEP_MASTER_KEY"), "{msg}");
    assert!(
        fx.keys.key_ids().is_empty(),
        "no key was created over the existing store"
    );
    assert_eq!(snapshot(&fx.paths.store_dir()), files);
}

#[test]
fn keystore_failures_surface_at_open() {
    let fx = Fixture::new();
    fx.keys.fail_with(Some(|| KeyError::Locked {
        detail: "SS error: prompt dismissed".into(),
    }));
    let msg = fx.try_open().unwrap_err().to_string();
    assert!(
        msg.contains("locked") && msg.contains("Start or unlock your keyring"),
        "{msg}"
    );

    fx.keys.fail_with(None);
    fx.keys.lose_writes(true);
    let err = fx.try_open().unwrap_err();
    assert!(matches!(err, StoreError::Key(KeyError::NotPersisted { .. })), "{err:?}");

    // A store whose creation failed before its key was recorded is simply created at the next open.
    fx.keys.lose_writes(false);
    let vault = fx.open();
    assert_eq!(fx.keys.key_ids(), vec![vault.key_id()]);
}

#[test]
fn headless_mode_uses_the_given_key_and_refuses_rotation() {
    let fx = Fixture::new();
    let key = MasterKey::generate().unwrap();
    let key_bytes = *key.dangerously_expose_bytes();
    let key_id = key.id();
    let id = {
        let vault = fx.open_headless(key).unwrap();
        assert!(vault.is_headless());
        assert_eq!(vault.key_id(), key_id);
        let id = vault
            .put_connection(meta("google", ACCOUNT), &tokens("at-h", None, None))
            .unwrap();
        let err = vault.rotate_key().unwrap_err();
        assert!(err.to_string().starts_with("rotate-key needs the OS keyring"), "{err}");
        id
    };
    assert!(fx.keys.key_ids().is_empty(), "headless mode never touches the keystore");
    let vault = fx.open_headless(MasterKey::from_bytes(key_bytes)).unwrap();
    assert_eq!(vault.tokens(id).unwrap().access.dangerously_expose(), "at-h");
    drop(vault);
    // The same store can move to the keyring once its key is put there.
    fx.keys.insert(MasterKey::from_bytes(key_bytes));
    assert_eq!(fx.open().tokens(id).unwrap().access.dangerously_expose(), "at-h");
}

#[test]
fn a_damaged_record_is_reported_for_itself_and_nothing_is_deleted() {
    let fx = Fixture::new();
    let ids = populate(&fx.open());
    let flip_last = |v: &[u8]| {
        let mut v = v.to_vec();
        *v.last_mut().unwrap() ^= 0x01;
        v
    };
    let before = fx.raw(|db| {
        let conns = db.open_tree("connections").unwrap();
        let v = conns.get(ids[1].as_bytes()).unwrap().unwrap();
        conns.insert(ids[1].as_bytes(), flip_last(&v)).unwrap();
        let google = db.open_tree("tokens/google").unwrap();
        let k = token_key(ids[0], TokenKind::Refresh);
        let v = google.get(&k).unwrap().unwrap();
        google.insert(k, flip_last(&v)).unwrap();
        logical(db)
    });

    let vault = fx.open();
    let list = vault.list().unwrap();
    assert_eq!(list.len(), 3);
    for (id, entry) in &list {
        if *id == ids[1] {
            assert_eq!(entry.as_ref().unwrap_err(), &RecordError::Decrypt);
        } else {
            assert!(entry.is_ok(), "{id}: {entry:?}");
        }
    }
    // The other connection's meta is damaged, its tokens are fine; the first's refresh token is damaged only.
    assert_eq!(vault.tokens(ids[1]).unwrap().access.dangerously_expose(), "at-two");
    let err = vault.tokens(ids[0]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(&err, StoreError::Record { field, error: RecordError::Decrypt, .. } if field == "refresh_token"));
    assert!(
        msg.contains("refresh_token in tokens/google") && msg.contains(&ids[0].to_hex()),
        "{msg}"
    );
    assert!(!msg.contains("rt-one"), "{msg}");
    let err = vault.get_meta(ids[1]).unwrap_err();
    assert!(
        err.to_string().contains("meta in connections could not be decrypted"),
        "{err}"
    );

    let mut problems = vault.verify().unwrap();
    problems.sort_by(|a, b| a.tree.cmp(&b.tree));
    let found: Vec<_> = problems
        .iter()
        .map(|p| (p.tree.as_str(), p.record.clone(), p.field.as_str(), &p.error))
        .collect();
    assert_eq!(
        found,
        vec![
            ("connections", ids[1].to_hex(), "meta", &RecordError::Decrypt),
            ("tokens/google", ids[0].to_hex(), "refresh_token", &RecordError::Decrypt),
        ]
    );
    drop(vault);
    assert_eq!(fx.raw(logical), before, "nothing was deleted or rewritten");
}

#[test]
fn truncated_unknown_version_and_foreign_key_records_are_named() {
    let fx = Fixture::new();
    let ids = populate(&fx.open());
    let stranger = MasterKey::generate().unwrap();
    fx.raw(|db| {
        let google = db.open_tree("tokens/google").unwrap();
        let k = token_key(ids[0], TokenKind::Access);
        let v = google.get(&k).unwrap().unwrap();
        google.insert(&k, &v[..5]).unwrap();
        let k = token_key(ids[0], TokenKind::Id);
        let mut v = google.get(&k).unwrap().unwrap().to_vec();
        v[0] = 99;
        google.insert(&k, v).unwrap();
        let github = db.open_tree("tokens/github").unwrap();
        let loc = RecordLocation {
            profile: "dev",
            tree: "tokens/github",
            record_id: ids[1].as_bytes(),
            field: "access_token",
        };
        github
            .insert(
                token_key(ids[1], TokenKind::Access),
                envelope::seal(&stranger, &loc, b"x").unwrap(),
            )
            .unwrap();
        // A token whose connection does not exist.
        let ghost = ConnectionId::from_bytes([7; 16]);
        github
            .insert(token_key(ghost, TokenKind::Access), vec![1u8, 0, 0])
            .unwrap();
    });
    let vault = fx.open();
    let have = vault.key_id();
    let problems = vault.verify().unwrap();
    let mut found: Vec<_> = problems.iter().map(|p| (p.field.clone(), p.error.clone())).collect();
    found.sort_by_key(|(f, e)| (f.clone(), format!("{e:?}")));
    assert_eq!(
        found,
        vec![
            ("access_token".to_owned(), RecordError::Orphan),
            ("access_token".to_owned(), RecordError::Truncated),
            ("access_token".to_owned(), RecordError::Truncated),
            (
                "access_token".to_owned(),
                RecordError::WrongKey {
                    sealed_with: stranger.id(),
                    have
                }
            ),
            ("id_token".to_owned(), RecordError::UnknownVersion(99)),
        ],
        "{problems:#?}"
    );
    let shown: Vec<_> = problems.iter().map(ToString::to_string).collect();
    assert!(
        shown.iter().any(|s| s.contains("uses record format version 99")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains(&format!("was sealed with key {}", stranger.id()))),
        "{shown:?}"
    );
    // Healthy records are still fine.
    assert_eq!(vault.tokens(ids[2]).unwrap().access.dangerously_expose(), "at-three");
}

#[test]
fn a_second_open_in_this_process_names_the_holder() {
    let fx = Fixture::new();
    let _held = fx.open();
    let err = fx.try_open().unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, StoreError::Locked { holder: Some(ref h), .. } if h.pid == std::process::id()),
        "{err:?}"
    );
    assert!(
        msg.contains(&format!(
            "is in use by the tokenkeep command (pid {}",
            std::process::id()
        )),
        "{msg}"
    );
    assert!(msg.contains("wait for it to finish or stop it"), "{msg}");
}

#[cfg(unix)]
#[test]
fn store_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let fx = Fixture::new();
    let check = |dir: &Path| {
        let mut seen = 0;
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            assert_eq!(
                std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
                0o700,
                "{}",
                d.display()
            );
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                    assert_eq!(mode, 0o600, "{}", path.display());
                    seen += 1;
                }
            }
        }
        seen
    };
    {
        let vault = fx.open();
        populate(&vault);
        assert!(check(&fx.paths.store_dir()) >= 3, "holder, conf, db at least");
    }
    assert!(check(&fx.paths.store_dir()) >= 2);
    drop(fx.open()); // sled's replay writes a snapshot on this open
    check(&fx.paths.store_dir());
    assert_eq!(
        std::fs::metadata(fx.paths.dir()).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn no_token_account_or_key_bytes_reach_the_disk() {
    let fx = Fixture::new();
    let secrets = [
        "AT-9f8e7d6c5b4a-distinctive",
        "RT-0a1b2c3d4e5f-distinctive",
        "IDT-77aa88bb99cc-distinctive",
    ];
    let key_bytes = {
        let vault = fx.open();
        for _ in 0..3 {
            vault
                .put_connection(
                    meta("google", ACCOUNT),
                    &tokens(secrets[0], Some(secrets[1]), Some(secrets[2])),
                )
                .unwrap();
        }
        *fx.keys
            .load(vault.key_id())
            .unwrap()
            .unwrap()
            .dangerously_expose_bytes()
    };
    drop(fx.open()); // replay + snapshot, so every file sled writes is there
    let files = read_all(fx.paths.dir());
    assert!(files.len() >= 3);
    let subject = format!("sub-{ACCOUNT}");
    let needles: Vec<&[u8]> = vec![
        secrets[0].as_bytes(),
        secrets[1].as_bytes(),
        secrets[2].as_bytes(),
        ACCOUNT.as_bytes(),
        b"alice.distinctive",
        subject.as_bytes(),
        &key_bytes,
    ];
    for (path, bytes) in &files {
        for needle in &needles {
            assert!(
                !contains(bytes, needle),
                "{} contains {:?}",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[test]
fn identical_tokens_seal_to_different_bytes() {
    let fx = Fixture::new();
    let vault = fx.open();
    let a = vault
        .put_connection(meta("google", "same"), &tokens("same-token", None, None))
        .unwrap();
    let b = vault
        .put_connection(meta("google", "same"), &tokens("same-token", None, None))
        .unwrap();
    let first = vault.raw_records().unwrap();
    let m = vault.get_meta(a).unwrap();
    vault.replace_tokens(a, &tokens("same-token", None, None), &m).unwrap();
    let second = vault.raw_records().unwrap();
    let access = |records: &[tokenkeep_core::store::RawRecord], id: ConnectionId| {
        records
            .iter()
            .find(|r| r.record_id == id && r.field == "access_token")
            .unwrap()
            .envelope
            .clone()
    };
    assert_ne!(access(&first, a), access(&first, b), "two records");
    assert_ne!(access(&first, a), access(&second, a), "the same record rewritten");
    assert_eq!(first.len(), 4, "two metas, two access tokens: {first:?}");
    assert!(
        first
            .iter()
            .all(|r| envelope::peek_header(&r.envelope).unwrap().key_id == vault.key_id())
    );
}

#[test]
fn rotation_reseals_everything_and_retires_the_old_key() {
    let fx = Fixture::new();
    let vault = fx.open();
    let ids = populate(&vault);
    let old = vault.key_id();
    let report = vault.rotate_key().unwrap();
    assert_eq!(report.old, old);
    assert_eq!(report.new, vault.key_id());
    assert_ne!(report.new, old);
    assert_eq!((report.resealed, report.damaged), (3 + 6, 0));
    assert_eq!(fx.keys.key_ids(), vec![report.new]);
    assert_all_readable(&vault, &ids);
    assert!(
        vault
            .raw_records()
            .unwrap()
            .iter()
            .all(|r| envelope::peek_header(&r.envelope).unwrap().key_id == report.new)
    );
    drop(vault);
    let vault = fx.open();
    assert_eq!(vault.key_id(), report.new);
    assert_all_readable(&vault, &ids);
}

#[test]
fn rotation_leaves_damaged_records_alone() {
    let fx = Fixture::new();
    let ids = populate(&fx.open());
    fx.raw(|db| {
        let conns = db.open_tree("connections").unwrap();
        let mut v = conns.get(ids[2].as_bytes()).unwrap().unwrap().to_vec();
        v[20] ^= 0xff;
        conns.insert(ids[2].as_bytes(), v).unwrap();
    });
    let vault = fx.open();
    let report = vault.rotate_key().unwrap();
    assert_eq!((report.resealed, report.damaged), (8, 1));
    let problems = vault.verify().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].record, ids[2].to_hex());
    assert_eq!(vault.tokens(ids[2]).unwrap().access.dangerously_expose(), "at-three");
}

/// Where to stop a rotation: a step, and for `RecordResealed` which occurrence.
const FAIL_POINTS: &[(RotationStep, usize)] = &[
    (RotationStep::Planned, 1),
    (RotationStep::KeyStored, 1),
    (RotationStep::RecordResealed, 1),
    (RotationStep::RecordResealed, 5),
    (RotationStep::RecordResealed, 9),
    (RotationStep::Switched, 1),
    (RotationStep::OldKeyDeleted, 1),
];

/// Starts a rotation on a populated store and stops it at the `nth` `step`, as a crash would.
fn interrupted_rotation(step: RotationStep, nth: usize) -> (Fixture, Vault, Vec<ConnectionId>) {
    let fx = Fixture::new();
    let vault = fx.open();
    let ids = populate(&vault);
    let mut seen = 0;
    let err = vault
        .rotate_key_with_failpoint(&mut |at| {
            if at == step {
                seen += 1;
            }
            at == step && seen == nth
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Interrupted(at) if at == step), "{err:?}");
    // Every record stays readable through the interrupted vault itself.
    assert_all_readable(&vault, &ids);
    (fx, vault, ids)
}

#[test]
fn a_rotation_interrupted_anywhere_is_finished_by_the_next_open() {
    for &(step, nth) in FAIL_POINTS {
        let (fx, vault, ids) = interrupted_rotation(step, nth);
        drop(vault); // the "crash"
        let vault = fx.open();
        assert_all_readable(&vault, &ids);
        assert_eq!(
            fx.keys.key_ids(),
            vec![vault.key_id()],
            "{step:?}#{nth}: only the current key remains"
        );
        // A new rotation after recovery works normally.
        let report = vault.rotate_key().unwrap();
        assert_eq!(fx.keys.key_ids(), vec![report.new], "{step:?}#{nth}");
        assert_all_readable(&vault, &ids);
    }
}

#[test]
fn a_rotation_interrupted_anywhere_is_finished_by_rerunning_it() {
    for &(step, nth) in FAIL_POINTS {
        let (fx, vault, ids) = interrupted_rotation(step, nth);
        let report = vault.rotate_key().unwrap();
        assert_eq!(vault.key_id(), report.new, "{step:?}#{nth}");
        assert_eq!(
            fx.keys.key_ids(),
            vec![report.new],
            "{step:?}#{nth}: old key gone from the keystore"
        );
        assert_all_readable(&vault, &ids);
        drop(vault);
        let vault = fx.open();
        assert_eq!(vault.key_id(), report.new);
        assert_all_readable(&vault, &ids);
    }
}

#[test]
fn an_interrupted_rotation_cannot_be_finished_headless() {
    let (fx, vault, _) = interrupted_rotation(RotationStep::RecordResealed, 2);
    let old = vault.key_id();
    let old_key = fx.keys.load(old).unwrap().unwrap();
    drop(vault);
    let err = fx.open_headless(old_key).unwrap_err();
    assert!(
        matches!(err, StoreError::RotationPending { old: o, .. } if o == old),
        "{err:?}"
    );
    assert!(err.to_string().contains("needs the OS keyring to complete"), "{err}");
}
