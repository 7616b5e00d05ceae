//! Damaged, rolled-back and missing stores (F1): a failed open leaves every byte as it was, the sealed backups
//! restore every account, and a store is never silently replaced by an empty one.

use std::path::{Path, PathBuf};

use tokenkeep_core::keys::KeySource;
use tokenkeep_core::store::{ConnectionStatus, PROGRAM_CLI, RestoreFrom, StoreError, Vault};

use super::store::{ACCOUNT, Fixture, assert_all_readable, populate, read_all, snapshot};

fn restore(fx: &Fixture) -> Result<(Vault, tokenkeep_core::store::RestoreReport), StoreError> {
    Vault::restore(
        &fx.paths,
        KeySource::Keyring(std::sync::Arc::new(fx.keys.clone())),
        RestoreFrom::Newest,
        fx.clock.clone(),
        PROGRAM_CLI,
    )
}

/// A store of three connections with its backups written, closed; its sled files settled by one more open.
fn settled_store(fx: &Fixture) -> Vec<tokenkeep_core::store::ConnectionId> {
    let ids = {
        let vault = fx.open();
        let ids = populate(&vault);
        vault.settle_backups();
        ids
    };
    // sled rewrites its files on the first open after writes, whoever opens it: settle them.
    drop(fx.open());
    ids
}

fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn sled_files(fx: &Fixture) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = read_all(&fx.sled_dir()).into_keys().collect();
    files.sort();
    files
}

/// F1: flipped bytes in sled's log either leave the store readable (the damage costs at most the damaged
/// records, reported as such) or are refused with every file exactly as it was, naming the backup; the backup
/// then restores every account. Never a panic, never a wrong answer.
#[test]
fn a_damaged_log_changes_nothing_and_the_backup_restores_every_account() {
    let fx = Fixture::new();
    let ids = settled_store(&fx);
    let db = fx.sled_dir().join("db");
    let pristine = std::fs::read(&db).unwrap();
    let clean = read_all(&fx.paths.store_dir());
    let used = pristine.iter().rposition(|b| *b != 0).unwrap() + 1;
    let mut refused = 0;
    for offset in (0..used).step_by((used / 24).max(1)) {
        flip(&db, offset);
        let flipped = snapshot(&fx.paths.store_dir());
        match fx.try_open() {
            Ok(vault) => {
                // Whatever opens must be the truth: every record reads back as written, or is named damaged.
                for (id, entry) in vault.list().unwrap() {
                    if let Ok(meta) = entry {
                        assert!(ids.contains(&id), "offset {offset}: an unknown connection {id}");
                        assert!(["alice", "bob", "carol"].iter().any(|a| meta.account.contains(a)));
                    }
                }
                assert_eq!(vault.list().unwrap().len(), 3, "offset {offset}: a connection vanished");
            }
            Err(error) => {
                assert!(
                    matches!(error, StoreError::Damaged { .. }),
                    "offset {offset}: {error:?}"
                );
                let message = error.to_string();
                for words in ["is damaged", "Nothing was changed", "tokenkeep restore"] {
                    assert!(message.contains(words), "offset {offset}: {message}");
                }
                assert_eq!(
                    snapshot(&fx.paths.store_dir()),
                    flipped,
                    "offset {offset}: a failed open changed the files"
                );
                refused += 1;
            }
        }
        // Put the store back as it was for the next position (an open above may have rewritten it).
        std::fs::remove_dir_all(fx.paths.store_dir()).unwrap();
        for (path, bytes) in &clean {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }
    assert!(refused > 0, "no flip was refused: the test damaged nothing");

    // One refused store, restored from its backup: every account, the refresh-token holders marked.
    flip(&db, used / 2);
    assert!(fx.try_open().is_err());
    let (vault, report) = restore(&fx).unwrap();
    assert_eq!(report.connections, 3);
    assert_eq!(report.check_needed, 2, "two of the three hold a refresh token");
    let aside = report.set_aside.clone().unwrap();
    assert!(aside.join("sled/db").exists(), "the damaged store is kept aside");
    assert_all_readable(&vault, &ids);
    let statuses: Vec<ConnectionStatus> = ids.iter().map(|id| vault.get_meta(*id).unwrap().status).collect();
    assert_eq!(
        statuses,
        [
            ConnectionStatus::CheckNeeded,
            ConnectionStatus::CheckNeeded,
            ConnectionStatus::Connected
        ]
    );
    assert!(
        vault
            .get_meta(ids[0])
            .unwrap()
            .last_error
            .unwrap()
            .contains("restored from the backup")
    );
}

/// F1: a damaged snapshot does not block the store: it is rebuilt from the log, and nothing is lost.
#[test]
fn a_damaged_snapshot_is_rebuilt_from_the_log() {
    let fx = Fixture::new();
    let ids = settled_store(&fx);
    let snaps: Vec<PathBuf> = sled_files(&fx)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("snap."))
        .collect();
    assert!(!snaps.is_empty(), "sled wrote no snapshot: {:?}", sled_files(&fx));
    for snap in &snaps {
        let len = std::fs::metadata(snap).unwrap().len() as usize;
        flip(snap, len / 2);
    }
    let vault = fx.try_open().unwrap();
    assert_all_readable(&vault, &ids);
    assert!(
        vault
            .notices()
            .iter()
            .any(|n| n.contains("snapshot") && n.contains("rebuilt")),
        "the rebuild is said: {:?}",
        vault.notices()
    );
    drop(vault);
    assert!(fx.open().notices().is_empty(), "a healthy open says nothing");
}

/// F1: restoring older files of the whole store (a rollback, or sled cutting its log short) is noticed: the
/// store is older than its newest backup, so it is refused, unchanged.
#[test]
fn a_store_older_than_its_backup_is_refused_unchanged() {
    let fx = Fixture::new();
    let ids = settled_store(&fx);
    let old = fx.paths.dir().join("old-store");
    copy_dir(&fx.paths.store_dir(), &old);
    {
        let vault = fx.open();
        vault.delete_connection(ids[2]).unwrap();
        vault.settle_backups();
    }
    std::fs::remove_dir_all(fx.paths.store_dir()).unwrap();
    copy_dir(&old, &fx.paths.store_dir());
    let before = snapshot(&fx.paths.store_dir());
    let error = fx.try_open().unwrap_err();
    assert!(matches!(error, StoreError::Damaged { .. }), "{error:?}");
    assert!(error.to_string().contains("lost committed changes"), "{error}");
    assert_eq!(snapshot(&fx.paths.store_dir()), before);
    // The backup has the newer state: two connections.
    let (vault, report) = restore(&fx).unwrap();
    assert_eq!(report.connections, 2);
    assert_eq!(vault.list().unwrap().len(), 2);
}

/// F1: a deleted store is not silently replaced by an empty one; restore brings it back, and starting over is a
/// deliberate act that keeps the old data aside.
#[test]
fn a_missing_store_is_refused_until_restored_or_started_over() {
    let fx = Fixture::new();
    let ids = settled_store(&fx);
    for gone in [fx.sled_dir(), fx.paths.store_dir()] {
        std::fs::remove_dir_all(&gone).unwrap();
        let error = fx.try_open().unwrap_err();
        assert!(matches!(error, StoreError::Missing { .. }), "{error:?}");
        let message = error.to_string();
        for words in [
            "missing or empty",
            "will not start a new",
            "tokenkeep restore",
            "--start-over",
        ] {
            assert!(message.contains(words), "{message}");
        }
        assert!(!gone.exists(), "the refused open created {}", gone.display());
        let (vault, report) = restore(&fx).unwrap();
        assert_eq!(report.connections, 3);
        assert_all_readable(&vault, &ids);
        assert_eq!(vault.get_meta(ids[0]).unwrap().account, ACCOUNT);
    }

    let report = Vault::start_over(&fx.paths, 2_000_000_000).unwrap();
    let aside = report.set_aside.unwrap();
    assert!(aside.join("sled/db").exists());
    assert!(report.backups_set_aside.unwrap().exists());
    let vault = fx.open();
    assert!(vault.list().unwrap().is_empty(), "a new, empty store");
}

/// Every committed change is followed by a sealed backup of the whole store; only the newest few are kept, and a
/// backup for another profile or with a flipped byte does not verify.
#[test]
fn every_commit_is_backed_up_and_backups_verify_only_as_written() {
    let fx = Fixture::new();
    let vault = fx.open();
    let ids = populate(&vault);
    vault.settle_backups();
    let keys = KeySource::Keyring(std::sync::Arc::new(fx.keys.clone()));
    let newest = Vault::backups(&fx.paths);
    assert!(!newest.is_empty() && newest.len() <= 3, "{newest:?}");
    let header = newest[0].header.clone().unwrap();
    assert_eq!(header.generation, vault.generation());
    let backup = Vault::verify_backup(&fx.paths, &keys, &newest[0].path).unwrap();
    assert_eq!(backup.records.iter().filter(|r| r.tree == "connections").count(), 3);
    for _ in 0..5 {
        vault.update_meta(ids[1], |m| m.scopes.push("more".into())).unwrap();
        vault.settle_backups();
    }
    let listed = Vault::backups(&fx.paths);
    assert_eq!(listed.len(), 3, "only the newest three are kept");
    assert_eq!(listed[0].header.as_ref().unwrap().generation, vault.generation());

    let path = &listed[0].path;
    let bytes = std::fs::read(path).unwrap();
    for offset in (0..bytes.len()).step_by(97) {
        let mut altered = bytes.clone();
        altered[offset] ^= 1;
        std::fs::write(path, &altered).unwrap();
        assert!(Vault::verify_backup(&fx.paths, &keys, path).is_err(), "offset {offset}");
    }
    std::fs::write(path, &bytes).unwrap();
    let other = tokenkeep_core::profile::ProfilePaths::resolve(
        tokenkeep_core::profile::Profile::parse("prod").unwrap(),
        Some(fx.paths.dir().parent().unwrap().to_owned()),
    )
    .unwrap();
    assert!(
        Vault::verify_backup(&other, &keys, path).is_err(),
        "another profile's backup"
    );
}

/// F1: a refresh-token record renamed in place (a flipped byte in its key's field, or in its record id) reads as
/// damage of that record — not as "refresh_token not stored" or "this provider issued no refresh token".
#[test]
fn a_renamed_token_record_is_damage_not_absence() {
    use tokenkeep_core::store::{RecordError, TokenKind};
    for rename_id in [false, true] {
        let fx = Fixture::new();
        let ids = settled_store(&fx);
        fx.raw(|db| {
            let tree = db.open_tree("tokens/google").unwrap();
            let key = super::store::token_key(ids[0], TokenKind::Refresh);
            let value = tree.remove(&key).unwrap().unwrap();
            let mut renamed = key.clone();
            if rename_id {
                renamed[3] ^= 0x01;
            } else {
                *renamed.last_mut().unwrap() ^= 0x1b;
            }
            tree.insert(renamed, value).unwrap();
        });
        let vault = fx.open();
        let error = vault.tokens(ids[0]).unwrap_err();
        let expected = if rename_id {
            RecordError::Missing
        } else {
            RecordError::BadRecordKey
        };
        assert!(
            matches!(&error, StoreError::Record { error, .. } if *error == expected),
            "rename_id {rename_id}: {error:?}"
        );
        let message = error.to_string();
        assert!(!message.contains('\u{1b}'), "{message:?}");
        assert!(message.contains("tokens/"), "{message}");
        let problems = vault.verify().unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.record == ids[0].to_hex() && p.field.starts_with("refresh_toke")),
            "rename_id {rename_id}: {problems:?}"
        );
        // The other connections are untouched.
        assert_eq!(
            vault.tokens(ids[1]).unwrap().refresh.unwrap().dangerously_expose(),
            "rt-two"
        );
    }
}

/// Backups hold no pictures: a restored connection that had one names none afterwards (the window shows the
/// platform's mark until a reconnect stores one), so nothing points at a picture that is not there.
#[test]
fn a_restore_forgets_the_pictures_the_backup_does_not_hold() {
    let fx = Fixture::new();
    let ids = {
        let vault = fx.open();
        let ids = populate(&vault);
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(b"restored-picture");
        let picture = tokenkeep_core::picture::AccountPicture::from_bytes(png).unwrap();
        vault.set_picture(ids[0], &picture).unwrap();
        assert!(vault.get_meta(ids[0]).unwrap().picture.is_some());
        vault.settle_backups();
        ids
    };
    std::fs::remove_dir_all(fx.paths.store_dir()).unwrap();
    let (vault, report) = restore(&fx).unwrap();
    assert_eq!(report.connections, 3);
    assert_all_readable(&vault, &ids);
    for id in &ids {
        assert_eq!(vault.get_meta(*id).unwrap().picture, None, "{id} still names a picture");
        assert!(vault.picture(*id).unwrap().is_none());
    }
    assert!(vault.verify().unwrap().is_empty());
}
