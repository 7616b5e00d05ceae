//! Unit tests of the store's internals; behaviour through the public API is tested in `tests/store.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::keys::MemoryKeyStore;
use crate::profile::Profile;

fn pid(id: &str) -> ProviderId {
    ProviderId::parse(id).unwrap()
}

fn paths(tmp: &Path) -> ProfilePaths {
    ProfilePaths::resolve(Profile::parse("dev").unwrap(), Some(tmp.to_owned())).unwrap()
}

fn open(paths: &ProfilePaths, keys: &MemoryKeyStore) -> Result<Vault, StoreError> {
    Vault::open(
        paths,
        KeySource::Keyring(Arc::new(keys.clone())),
        Arc::new(ManualClock::at_unix(1)),
        PROGRAM_CLI,
    )
}

#[test]
fn token_keys_split_back_into_record_and_field() {
    let id = ConnectionId::from_bytes([0xab; 16]);
    let k = token_key(id, "refresh_token");
    assert_eq!(k.len(), 16 + 1 + "refresh_token".len());
    assert_eq!(split_token_key(&k), Some((id, "refresh_token")));
    assert_eq!(split_token_key(&k[..10]), None);
    let mut no_separator = k.clone();
    no_separator[16] = b'x';
    assert_eq!(split_token_key(&no_separator), None);
}

/// F2: a provider's text with escape sequences and bidi overrides never reaches the store, nor comes out of it.
#[test]
fn provider_text_is_stored_and_read_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths(tmp.path());
    let keys = MemoryKeyStore::new();
    let vault = open(&paths, &keys).unwrap();
    let hostile = "\u{1b}[2J\u{1b}[31mHACKED\u{1b}]0;pwned\u{7}";
    let mut meta = ConnectionMeta::new(pid("demo"), format!("\u{202e}nimda{hostile}"));
    meta.subject = Some(format!("sub{hostile}"));
    meta.scopes = vec![format!("read{hostile}"), "\u{1b}".into()];
    meta.last_error = Some(format!("{hostile}\n{}", "x".repeat(1000)));
    let tokens = TokenSet {
        access: SecretString::new("access-value".into()),
        refresh: None,
        id_token: None,
        dpop_key: None,
    };
    let id = vault.put_connection(meta, &tokens).unwrap();
    let check = |m: &ConnectionMeta| {
        for text in [&m.account, m.subject.as_ref().unwrap(), m.last_error.as_ref().unwrap()]
            .into_iter()
            .chain(&m.scopes)
        {
            assert!(crate::text::is_clean(text), "{text:?}");
        }
        assert_eq!(m.account, "nimda[2J[31mHACKED]0;pwned");
        assert_eq!(m.scopes, ["read[2J[31mHACKED]0;pwned"]);
        assert!(m.last_error.as_ref().unwrap().chars().count() <= crate::text::MAX_ERROR_CHARS);
    };
    check(&vault.get_meta(id).unwrap());
    let updated = vault
        .update_meta(id, |m| m.last_error = Some(format!("later {hostile}")))
        .unwrap();
    assert_eq!(updated.last_error.as_deref(), Some("later [2J[31mHACKED]0;pwned"));
    check(&vault.get_meta(id).unwrap());
}

#[test]
fn sled_lock_errors_are_recognised() {
    let tmp = tempfile::tempdir().unwrap();
    let _held = sled::open(tmp.path()).unwrap();
    let err = sled::open(tmp.path()).unwrap_err();
    assert!(is_lock_error(&err), "{err:?}");
    assert!(!is_lock_error(&sled::Error::Unsupported("x".into())));
}

#[test]
fn records_without_a_key_id_are_refused_not_adopted() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths(tmp.path());
    let keys = MemoryKeyStore::new();
    drop(open(&paths, &keys).unwrap());
    {
        let db = sled::open(paths.store_dir().join("sled")).unwrap();
        db.open_tree(TREE_META).unwrap().remove(META_KEY_ID).unwrap();
        db.open_tree(TREE_CONNECTIONS)
            .unwrap()
            .insert([1u8; 16], b"sealed".to_vec())
            .unwrap();
        db.flush().unwrap();
    }
    let err = open(&paths, &keys).unwrap_err();
    assert!(matches!(err, StoreError::MetaDamaged { .. }), "{err:?}");
    assert_eq!(keys.key_ids().len(), 1, "no second key was created");
}

#[test]
fn newer_formats_and_damaged_meta_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths(tmp.path());
    let keys = MemoryKeyStore::new();
    drop(open(&paths, &keys).unwrap());
    let set_meta = |k: &[u8], v: &[u8]| {
        let db = sled::open(paths.store_dir().join("sled")).unwrap();
        db.open_tree(TREE_META).unwrap().insert(k, v).unwrap();
        db.flush().unwrap();
    };
    set_meta(META_FORMAT, &2u32.to_be_bytes());
    let err = open(&paths, &keys).unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedFormat { found: 2, supported: 1 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("update Tokenkeep"), "{err}");

    set_meta(META_FORMAT, &1u32.to_be_bytes());
    set_meta(META_KEY_ID, b"short");
    let err = open(&paths, &keys).unwrap_err();
    assert!(
        err.to_string().contains("the key id record has the wrong length"),
        "{err}"
    );
}

#[test]
fn store_errors_carry_no_secret_bytes() {
    let err = record_error(
        "tokens/google",
        ConnectionId::from_bytes([1; 16]),
        "access_token",
        RecordError::Decrypt,
    );
    assert_eq!(
        err.to_string(),
        "connection 01010101010101010101010101010101: access_token in tokens/google could not be decrypted: it was \
         altered or damaged"
    );
}

#[test]
fn client_secrets_are_sealed_per_provider_and_survive_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths(tmp.path());
    let keys = MemoryKeyStore::new();
    let vault = open(&paths, &keys).unwrap();
    assert!(vault.client_secret(&pid("twitch")).unwrap().is_none());
    vault
        .set_client_secret(&pid("twitch"), &SecretString::new("twitch-client-secret-1".into()))
        .unwrap();
    vault
        .set_client_secret(&pid("reddit"), &SecretString::new("reddit-client-secret-2".into()))
        .unwrap();
    vault
        .set_client_secret(&pid("twitch"), &SecretString::new("twitch-client-secret-3".into()))
        .unwrap();
    assert_eq!(
        vault
            .client_secret(&pid("twitch"))
            .unwrap()
            .unwrap()
            .dangerously_expose(),
        "twitch-client-secret-3"
    );
    assert!(
        ProviderId::parse("Not A Provider").is_err(),
        "no secret can be stored under an id that cannot name a record"
    );

    // Sealed on disk, bound to its provider: a secret copied under another provider's record does not open.
    let clients = vault.db.open_tree(TREE_CLIENTS).unwrap();
    let reddit = clients
        .get(token_key(
            clients::client_record_id(&pid("reddit")),
            FIELD_CLIENT_SECRET,
        ))
        .unwrap()
        .unwrap();
    assert!(
        !reddit.windows(6).any(|w| w == b"reddit"),
        "the plaintext is not on disk"
    );
    clients
        .insert(
            token_key(clients::client_record_id(&pid("twitch")), FIELD_CLIENT_SECRET),
            reddit,
        )
        .unwrap();
    assert!(matches!(
        vault.client_secret(&pid("twitch")),
        Err(StoreError::Record { .. })
    ));
    let problems = vault.verify().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].tree, TREE_CLIENTS);

    assert!(vault.delete_client_secret(&pid("twitch")).unwrap());
    assert!(!vault.delete_client_secret(&pid("twitch")).unwrap());
    let report = vault.rotate_key().unwrap();
    assert_eq!(
        report.resealed, 1,
        "the remaining client secret is re-sealed under the new key"
    );
    assert_eq!(
        vault
            .client_secret(&pid("reddit"))
            .unwrap()
            .unwrap()
            .dangerously_expose(),
        "reddit-client-secret-2"
    );
    let raw = vault.raw_records().unwrap();
    assert_eq!(raw.len(), 1);
    assert_eq!(
        (raw[0].tree.as_str(), raw[0].field.as_str()),
        (TREE_CLIENTS, FIELD_CLIENT_SECRET)
    );
    assert_eq!(envelope::peek_header(&raw[0].envelope).unwrap().key_id, report.new);
}

/// The in-flight marker: reads show `refreshing` while it stands (also after a reopen: a process that died
/// mid-refresh), the sealed metadata is not rewritten for it, and the connection's next write ends it in the same
/// transaction. It holds the random id and a time, nothing else; reading a store never creates its tree.
#[test]
fn the_in_flight_marker_shows_refreshing_until_the_next_write() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths(tmp.path());
    let keys = MemoryKeyStore::new();
    let tokens = TokenSet {
        access: SecretString::new("access-value".into()),
        refresh: Some(SecretString::new("refresh-value".into())),
        id_token: None,
        dpop_key: None,
    };
    let (a, b) = {
        let vault = open(&paths, &keys).unwrap();
        let a = vault
            .put_connection(ConnectionMeta::new(pid("demo"), "a@example.test"), &tokens)
            .unwrap();
        let b = vault
            .put_connection(ConnectionMeta::new(pid("demo"), "b@example.test"), &tokens)
            .unwrap();
        vault.list().unwrap();
        vault.get_meta(a).unwrap();
        assert!(
            !vault
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == TREE_IN_FLIGHT.as_bytes()),
            "reading created the in-flight tree"
        );
        let sealed_before = vault.connections.get(a.as_bytes()).unwrap().unwrap();
        let generation = vault.generation();
        vault.begin_refresh(a).unwrap();
        assert_eq!(vault.get_meta(a).unwrap().status, ConnectionStatus::Refreshing);
        assert_eq!(vault.get_meta(b).unwrap().status, ConnectionStatus::Connected);
        assert_eq!(vault.connections.get(a.as_bytes()).unwrap().unwrap(), sealed_before);
        assert_eq!(vault.generation(), generation, "a marker is not a commit");
        let marker = vault.in_flight.get().unwrap().get(a.as_bytes()).unwrap().unwrap();
        assert_eq!(
            marker.as_ref(),
            1u64.to_be_bytes(),
            "the marker is the time it began, nothing else"
        );
        assert!(matches!(
            vault.begin_refresh(ConnectionId::from_bytes([7; 16])),
            Err(StoreError::NotFound(_))
        ));
        (a, b)
    };

    // A process that died mid-refresh: the marker is on disk.
    let vault = open(&paths, &keys).unwrap();
    let listed: HashMap<_, _> = vault
        .list()
        .unwrap()
        .into_iter()
        .map(|(id, m)| (id, m.unwrap().status))
        .collect();
    assert_eq!(listed[&a], ConnectionStatus::Refreshing);
    assert_eq!(listed[&b], ConnectionStatus::Connected);
    // Any write of the connection ends it: a metadata update (a failure recorded) ...
    vault.update_meta(a, |m| m.status = ConnectionStatus::Retrying).unwrap();
    assert_eq!(vault.get_meta(a).unwrap().status, ConnectionStatus::Retrying);
    // ... new tokens ...
    vault.begin_refresh(a).unwrap();
    let mut meta = vault.get_meta(a).unwrap();
    meta.status = ConnectionStatus::Connected;
    vault.replace_tokens(a, &tokens, &meta).unwrap();
    assert_eq!(vault.get_meta(a).unwrap().status, ConnectionStatus::Connected);
    // ... or a disconnect, which leaves nothing of it behind.
    vault.begin_refresh(b).unwrap();
    assert!(vault.delete_connection(b).unwrap());
    assert!(vault.in_flight.get().unwrap().is_empty());
}

/// A picture is sealed in its own tree, named by tag in the metadata in the same commit, bound to its connection
/// (moved under another it does not open, and `verify` says so), re-sealed by a rotation, deleted with the
/// connection, and never makes the connection unreadable.
#[test]
fn pictures_are_sealed_bound_rotated_and_deleted_with_their_connection() {
    use crate::picture::AccountPicture;

    let tmp = tempfile::tempdir().unwrap();
    let paths = paths(tmp.path());
    let keys = MemoryKeyStore::new();
    let vault = open(&paths, &keys).unwrap();
    let tokens = TokenSet {
        access: SecretString::new("access-value".into()),
        refresh: None,
        id_token: None,
        dpop_key: None,
    };
    let a = vault
        .put_connection(ConnectionMeta::new(pid("demo"), "a@example.test"), &tokens)
        .unwrap();
    let b = vault
        .put_connection(ConnectionMeta::new(pid("demo"), "b@example.test"), &tokens)
        .unwrap();
    assert!(vault.picture(a).unwrap().is_none());
    assert!(
        !vault
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == TREE_PICTURES.as_bytes()),
        "reading created the pictures tree"
    );

    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend_from_slice(b"a-distinctive-picture-body");
    let picture = AccountPicture::from_bytes(bytes.clone()).unwrap();
    let generation = vault.generation();
    vault.set_picture(a, &picture).unwrap();
    assert!(vault.generation() > generation, "a picture is a commit");
    assert_eq!(vault.get_meta(a).unwrap().picture, Some(picture.tag()));
    assert_eq!(vault.get_meta(b).unwrap().picture, None);
    let stored = vault.picture(a).unwrap().unwrap();
    assert_eq!(stored.bytes(), &bytes[..]);
    assert_eq!(stored.kind().media_type(), "image/png");

    // Sealed on disk, and bound to its connection.
    let tree = vault.db.open_tree(TREE_PICTURES).unwrap();
    let sealed = tree.get(token_key(a, FIELD_PICTURE)).unwrap().unwrap();
    assert!(
        !sealed.windows(12).any(|w| w == b"distinctive-"),
        "the plaintext is not on disk"
    );
    tree.insert(token_key(b, FIELD_PICTURE), sealed).unwrap();
    assert!(matches!(vault.picture(b), Err(StoreError::Record { .. })));
    assert!(vault.get_meta(b).is_ok(), "a bad picture costs only the picture");
    let problems = vault.verify().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].tree, TREE_PICTURES);
    tree.remove(token_key(b, FIELD_PICTURE)).unwrap();
    assert!(vault.verify().unwrap().is_empty());

    // Rotation re-seals it under the new key.
    let report = vault.rotate_key().unwrap();
    assert!(report.resealed >= 2, "{report:?}");
    assert_eq!(vault.picture(a).unwrap().unwrap().bytes(), &bytes[..]);
    let raw = vault.raw_records().unwrap();
    let picture_record = raw
        .iter()
        .find(|r| r.tree == TREE_PICTURES)
        .expect("the picture is exported");
    assert_eq!(
        envelope::peek_header(&picture_record.envelope).unwrap().key_id,
        report.new
    );

    // A disconnect leaves nothing of it behind.
    vault.delete_connection(a).unwrap();
    assert!(tree.get(token_key(a, FIELD_PICTURE)).unwrap().is_none());
    assert!(vault.picture(a).unwrap().is_none());
    assert!(matches!(vault.set_picture(a, &picture), Err(StoreError::NotFound(_))));
}

/// F7: the write that ends a refresh is single-key writes in order, not a transaction. Cut short after any of them
/// (a crash: sled recovers a prefix of its log), the connection reads whole — the old tokens or the new, never a
/// listed one missing — and still carries the in-flight marker, so the next start checks it as a refresh cut short.
#[test]
fn a_refresh_result_cut_short_anywhere_reads_whole_and_stays_marked() {
    let token = |s: &str| Some(SecretString::new(s.into()));
    // A refresh that adds an ID token, and one that drops it (the removal comes after the metadata).
    let cases = [
        (
            TokenSet {
                access: SecretString::new("old-a".into()),
                refresh: token("old-r"),
                id_token: None,
                dpop_key: None,
            },
            TokenSet {
                access: SecretString::new("new-a".into()),
                refresh: token("new-r"),
                id_token: token("new-i"),
                dpop_key: None,
            },
        ),
        (
            TokenSet {
                access: SecretString::new("old-a".into()),
                refresh: token("old-r"),
                id_token: token("old-i"),
                dpop_key: None,
            },
            TokenSet {
                access: SecretString::new("new-a".into()),
                refresh: token("new-r"),
                id_token: None,
                dpop_key: None,
            },
        ),
    ];
    let expose = |t: &Option<SecretString>| t.as_ref().map(|t| t.dangerously_expose().to_owned());
    for (old, new) in cases {
        let mut cut = 0;
        loop {
            let tmp = tempfile::tempdir().unwrap();
            let paths = paths(tmp.path());
            let keys = MemoryKeyStore::new();
            let vault = open(&paths, &keys).unwrap();
            let id = vault
                .put_connection(ConnectionMeta::new(pid("demo"), "a@example.test"), &old)
                .unwrap();
            vault.begin_refresh(id).unwrap();
            let generation = vault.generation();
            let mut meta = vault.get_meta(id).unwrap();
            meta.status = ConnectionStatus::Connected;
            meta.expires_at = Some(99);
            vault.crash_after.store(cut, Ordering::Relaxed);
            let finished = vault.replace_tokens(id, &new, &meta).is_ok();
            drop(vault);

            let vault = open(&paths, &keys).unwrap();
            let read = vault
                .tokens(id)
                .unwrap_or_else(|e| panic!("cut after {cut} writes: {e}"));
            assert_eq!(vault.verify().unwrap(), [], "cut after {cut} writes");
            let meta = vault.get_meta(id).unwrap();
            let access = read.access.dangerously_expose();
            assert!(access == "old-a" || access == "new-a", "cut after {cut}: {access}");
            assert!(
                [expose(&old.refresh), expose(&new.refresh)].contains(&expose(&read.refresh)),
                "cut after {cut} writes"
            );
            if finished {
                assert_eq!(meta.status, ConnectionStatus::Connected);
                assert_eq!((access, expose(&read.refresh)), ("new-a", expose(&new.refresh)));
                assert_eq!(expose(&read.id_token), expose(&new.id_token));
                assert_eq!(meta.expires_at, Some(99));
                assert_eq!(vault.generation(), generation + 1);
                break;
            }
            assert_eq!(
                meta.status,
                ConnectionStatus::Refreshing,
                "cut after {cut} writes: the marker stays"
            );
            cut += 1;
        }
        // Tokens, metadata, removal, generation, marker: each cut was tried.
        assert!(cut >= 5, "only {cut} writes");
    }
}

/// A DPoP key is a record of its connection's token tree like a token: sealed (never its bytes in the clear),
/// read back as the same key, carried by a key rotation and by the raw export, and a flipped byte in it is damage
/// that `tokens` and `verify` name, costing that record only.
#[test]
fn a_dpop_key_is_sealed_like_a_token_and_damage_to_it_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths(tmp.path());
    let keys = MemoryKeyStore::new();
    let vault = open(&paths, &keys).unwrap();
    let key = crate::dpop::DpopKey::generate().unwrap();
    let thumbprint = key.thumbprint().to_owned();
    let private = key.to_secret().dangerously_expose().to_vec();
    let tokens = TokenSet {
        access: SecretString::new("bound-access".into()),
        refresh: Some(SecretString::new("bound-refresh".into())),
        id_token: None,
        dpop_key: Some(key),
    };
    let id = vault
        .put_connection(ConnectionMeta::new(pid("bluesky"), "alice.example"), &tokens)
        .unwrap();
    let read = vault.tokens(id).unwrap();
    assert_eq!(read.dpop_key.as_ref().unwrap().thumbprint(), thumbprint);

    let tree = vault.db.open_tree("tokens/bluesky").unwrap();
    let sealed = tree.get(token_key(id, FIELD_DPOP_KEY)).unwrap().unwrap();
    assert!(
        !sealed.windows(private.len()).any(|w| w == private.as_slice()),
        "the key is not on disk in the clear"
    );
    let raw = vault.raw_records().unwrap();
    assert!(
        raw.iter()
            .any(|r| r.field == FIELD_DPOP_KEY && r.envelope == sealed.to_vec())
    );

    // Sealed to its place: the access token's envelope is not a key of this record.
    let access = tree.get(token_key(id, TokenKind::Access.field())).unwrap().unwrap();
    tree.insert(token_key(id, FIELD_DPOP_KEY), access).unwrap();
    assert!(matches!(vault.tokens(id), Err(StoreError::Record { .. })));
    let mut flipped = sealed.to_vec();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    tree.insert(token_key(id, FIELD_DPOP_KEY), flipped).unwrap();
    let err = vault.tokens(id).unwrap_err();
    assert!(err.to_string().contains(FIELD_DPOP_KEY), "{err}");
    let problems = vault.verify().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, FIELD_DPOP_KEY);
    assert!(vault.get_meta(id).is_ok(), "the rest of the connection reads");

    // Removed behind the store's back, it is missing (the metadata lists it), not silently unbound.
    tree.remove(token_key(id, FIELD_DPOP_KEY)).unwrap();
    assert!(vault.tokens(id).unwrap_err().to_string().contains(FIELD_DPOP_KEY));

    tree.insert(token_key(id, FIELD_DPOP_KEY), sealed).unwrap();
    vault.rotate_key().unwrap();
    assert_eq!(vault.tokens(id).unwrap().dpop_key.unwrap().thumbprint(), thumbprint);
}
