//! The vault across processes: against the REAL OS keyring (a private D-Bus session bus and gnome-keyring,
//! started by each test), and with another process holding the store.
//!
//! Requires `dbus-daemon`, `gnome-keyring-daemon`, `dbus-send` and `secret-tool` (apt: `dbus gnome-keyring
//! libsecret-tools`). If they are missing these tests FAIL, they do not skip: CI installs them.
//!
//! **Why child processes:** the bus address, data directories and `TOKENKEEP_MASTER_KEY` are process-wide
//! environment. So the vault code never runs in the test
//! process: each step is a run of `vault-probe` (`tests/src/bin/vault-probe.rs`) inside the session. That makes
//! "reopen in a new process" the normal case.
// Each test prints the keyring message it observed, for the record.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use sha2::{Digest as _, Sha256};
use tokenkeep_core::clock::SystemClock;
use tokenkeep_core::keys::{self, KeySource};
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::secret::MasterKey;
use tokenkeep_core::store::{PROGRAM_CLI, Vault};
use tokenkeep_e2e::{HeadlessSession, KeyringMode, SessionOptions, scratch_dir};

/// What `vault-probe create` stores.
const TOKEN: &str = "kr-access-token-5f1e2d3c";
const CHILD_CONNECTION: &str = "TK_PROBE_CONNECTION";
const TEST_DIR: &str = "vault-process";

fn probe() -> &'static str {
    env!("CARGO_BIN_EXE_vault-probe")
}

/// A session under `dir` without a display (the probe opens no window).
fn start(dir: &Path, keyring: KeyringMode) -> Result<HeadlessSession> {
    HeadlessSession::start_with(
        dir,
        SessionOptions {
            display: false,
            keyring,
        },
    )
}

fn store_dir(session: &HeadlessSession) -> PathBuf {
    session.dir().join("tk/dev/store")
}

/// What a probe step reported: `@@ KEY value` lines.
struct Outcome {
    lines: BTreeMap<String, String>,
    raw: String,
}

impl Outcome {
    fn get(&self, key: &str) -> &str {
        self.lines
            .get(key)
            .unwrap_or_else(|| panic!("the probe printed no {key}:\n{}", self.raw))
    }

    fn error(&self) -> &str {
        self.get("ERR")
    }
}

/// Runs one probe step in `session` (with `extra_env`) and returns what it printed.
fn run(session: &HeadlessSession, action: &str, extra_env: &[(&str, &str)]) -> Outcome {
    let mut cmd = session.command(probe());
    cmd.arg(action)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let lines: BTreeMap<String, String> = out
        .lines()
        .filter_map(|l| l.split_once("@@ ").map(|(_, rest)| rest))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Outcome { lines, raw: out }
}

fn run_with_timeout(mut cmd: Command, limit: Duration) -> String {
    use std::os::unix::process::CommandExt as _;
    let mut child = cmd.process_group(0).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("probe step timed out after {limit:?}; stderr: {}", err.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "probe step failed ({status}):\n{out}\n{err}");
    out
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.insert(
                path.clone(),
                format!("{} bytes, sha256 {}", bytes.len(), hex::encode(Sha256::digest(&bytes))),
            );
        }
    }
    out
}

const WHAT_TO_DO: &str = "Start or unlock your keyring (GNOME Keyring, KWallet), then try again. Without a keyring, \
                          TOKENKEEP_MASTER_KEY can hold the key instead: this store's own key (`tokenkeep key export` \
                          shows it where the keyring works), or, for a profile with no store yet, 32 random bytes in \
                          base64";

#[test]
fn keyring_the_key_lands_in_the_keyring_and_a_new_process_reads_the_token_back() -> Result<()> {
    let tmp = scratch_dir(TEST_DIR)?;
    let session = start(&tmp, KeyringMode::Unlocked)?;
    let created = run(&session, "create", &[]);
    let key_id = created.get("KEYID").to_owned();
    assert_eq!(created.get("HEADLESS"), "false");

    let items = session.keyring_items()?;
    assert!(items.contains(&format!("dev/master/{key_id}")), "{items}");
    let stored = session.keyring_lookup(&format!("dev/master/{key_id}"))?;
    assert_eq!(
        keys::parse_env_key(&stored).unwrap().id().to_hex(),
        key_id,
        "the entry holds the key, as base64"
    );

    let read = run(&session, "read", &[(CHILD_CONNECTION, created.get("CONNECTION"))]);
    assert_eq!(read.get("TOKEN"), TOKEN);
    assert_eq!(read.get("KEYID"), key_id);

    // The key survives the keyring daemon: a new session on the same files, unlocked with the same password.
    drop(session);
    let session = start(&tmp, KeyringMode::Unlocked)?;
    assert_eq!(
        run(&session, "read", &[(CHILD_CONNECTION, created.get("CONNECTION"))]).get("TOKEN"),
        TOKEN
    );

    // Rotation in the real keyring: the new key is stored, the old one deleted.
    let rotated = run(&session, "rotate", &[]);
    let new_key = rotated.get("NEWKEY").to_owned();
    let items = session.keyring_items()?;
    assert!(items.contains(&format!("dev/master/{new_key}")), "{items}");
    assert!(
        !items.contains(&format!("dev/master/{key_id}")),
        "old key deleted: {items}"
    );
    let read = run(&session, "read", &[(CHILD_CONNECTION, created.get("CONNECTION"))]);
    assert_eq!((read.get("TOKEN"), read.get("KEYID")), (TOKEN, new_key.as_str()));
    Ok(())
}

#[test]
fn keyring_another_key_is_refused_and_nothing_changes() -> Result<()> {
    let tmp = scratch_dir(TEST_DIR)?;
    let session = start(&tmp, KeyringMode::Unlocked)?;
    let created = run(&session, "create", &[]);
    let key_id = created.get("KEYID").to_owned();
    run(&session, "open", &[]); // let sled replay its log once (it rewrites its own files on that open)
    let files = snapshot(&store_dir(&session));
    let entry = session.keyring_lookup(&format!("dev/master/{key_id}"))?;

    // 1. Headless with another key.
    let other = MasterKey::generate().unwrap();
    let other_b64 = keys::encode_key(&other);
    let refused = run(&session, "open", &[(keys::ENV_MASTER_KEY, other_b64.as_str())]);
    let expected = format!(
        "this store was encrypted with another key (store key id {key_id}, available key {})",
        other.id()
    );
    assert!(refused.error().starts_with(&expected), "{}", refused.error());
    eprintln!("observed (headless, other key): {}", refused.error());

    // 2. The keyring entry replaced by another key.
    session.keyring_store(&format!("dev/master/{key_id}"), &other_b64)?;
    let refused = run(&session, "open", &[]);
    assert!(refused.error().starts_with(&expected), "{}", refused.error());
    eprintln!("observed (keyring entry replaced): {}", refused.error());

    assert_eq!(
        snapshot(&store_dir(&session)),
        files,
        "not one byte of the store changed"
    );
    session.keyring_store(&format!("dev/master/{key_id}"), &entry)?;
    assert_eq!(
        run(&session, "read", &[(CHILD_CONNECTION, created.get("CONNECTION"))]).get("TOKEN"),
        TOKEN
    );
    Ok(())
}

#[test]
fn keyring_a_missing_key_is_named_and_not_replaced() -> Result<()> {
    let tmp = scratch_dir(TEST_DIR)?;
    let session = start(&tmp, KeyringMode::Unlocked)?;
    let key_id = run(&session, "create", &[]).get("KEYID").to_owned();
    session.keyring_clear(&format!("dev/master/{key_id}"))?;
    let refused = run(&session, "open", &[]);
    eprintln!("observed (key missing): {}", refused.error());
    assert!(
        refused.error().contains(&format!(
            "the key for this store is not in the keyring (profile dev, key id {key_id}): restore it or set TOKENKEEP_MASTER_KEY"
        )),
        "{}",
        refused.error()
    );
    assert!(
        !session.keyring_items()?.contains("dev/master/"),
        "no new key was created"
    );
    Ok(())
}

#[test]
fn keyring_a_locked_keyring_is_named() -> Result<()> {
    let tmp = scratch_dir(TEST_DIR)?;
    {
        // Create the login keyring (and a store whose key is in it), then log out.
        let session = start(&tmp, KeyringMode::Unlocked)?;
        run(&session, "create", &[]);
        run(&session, "open", &[]); // settle sled's files (see `another_key_is_refused_and_nothing_changes`)
    }
    let session = start(&tmp, KeyringMode::Locked)?;
    let files = snapshot(&store_dir(&session));
    let refused = run(&session, "open", &[]);
    eprintln!("observed (locked): {}", refused.error());
    assert!(
        refused
            .error()
            .starts_with("the OS keyring is locked, or its unlock prompt was dismissed. "),
        "{}",
        refused.error()
    );
    assert!(refused.error().ends_with(WHAT_TO_DO), "{}", refused.error());
    assert_eq!(snapshot(&store_dir(&session)), files);
    Ok(())
}

#[test]
fn keyring_no_session_bus_is_named() -> Result<()> {
    let tmp = scratch_dir(TEST_DIR)?;
    let session = start(&tmp, KeyringMode::None)?;
    // Point at a bus that does not exist (the usual SSH / container situation).
    let no_bus = format!("unix:path={}", tmp.join("runtime/no-such-bus").display());
    let refused = run(&session, "create", &[("DBUS_SESSION_BUS_ADDRESS", &no_bus)]);
    eprintln!("observed (no session bus): {}", refused.error());
    assert!(
        refused
            .error()
            .starts_with("cannot reach the OS keyring: this session has no D-Bus session bus "),
        "{}",
        refused.error()
    );
    assert!(refused.error().ends_with(WHAT_TO_DO), "{}", refused.error());
    Ok(())
}

#[test]
fn keyring_a_bus_without_secret_service_is_named() -> Result<()> {
    let tmp = scratch_dir(TEST_DIR)?;
    let session = start(&tmp, KeyringMode::None)?;
    let refused = run(&session, "create", &[]);
    eprintln!("observed (bus, no Secret Service): {}", refused.error());
    assert!(
        refused.error().starts_with(
            "cannot reach the OS keyring: no keyring service (Secret Service) is running in this session. "
        ),
        "{}",
        refused.error()
    );
    // zbus's words go to the log, not into the message a person reads.
    assert!(!refused.error().contains("zbus"), "{}", refused.error());
    assert!(refused.error().ends_with(WHAT_TO_DO), "{}", refused.error());
    Ok(())
}

/// Retry in the same process finds a keyring that started after the first attempt, and one that was locked
/// then unlocked: each attempt connects anew (`keyring`'s v1 API connected once per process, so only a restart
/// helped).
#[test]
fn keyring_retry_in_the_same_process_finds_a_keyring_started_or_unlocked_later() -> Result<()> {
    let tmp = scratch_dir(TEST_DIR)?;
    let mut session = start(&tmp, KeyringMode::None)?;
    let retried = retry_after(&mut session, KeyringMode::Unlocked)?;
    assert!(
        retried
            .get("FIRST_ERR")
            .starts_with("cannot reach the OS keyring: no keyring service"),
        "{}",
        retried.raw
    );
    let created = retried.get("KEYID").to_owned();
    drop(session);

    let mut session = start(&tmp, KeyringMode::Locked)?;
    let retried = retry_after(&mut session, KeyringMode::Unlocked)?;
    assert!(
        retried.get("FIRST_ERR").starts_with("the OS keyring is locked"),
        "{}",
        retried.raw
    );
    assert_eq!(retried.get("KEYID"), created, "the same key, found once unlocked");
    Ok(())
}

/// Runs `vault-probe retry`: after its first attempt failed, (re)starts the session's keyring as `mode`, then lets
/// the probe try again.
fn retry_after(session: &mut HeadlessSession, mode: KeyringMode) -> Result<Outcome> {
    let mut child = session
        .command(probe())
        .arg("retry")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut raw = String::new();
    loop {
        let mut line = String::new();
        anyhow::ensure!(out.read_line(&mut line)? > 0, "the probe ended before waiting:\n{raw}");
        raw.push_str(&line);
        if line.contains("@@ WAITING") {
            break;
        }
    }
    session.start_keyring(mode)?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n")?;
    }
    out.read_to_string(&mut raw)?;
    anyhow::ensure!(child.wait()?.success(), "the probe failed:\n{raw}");
    let lines = raw
        .lines()
        .filter_map(|l| l.split_once("@@ ").map(|(_, rest)| rest))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(Outcome { lines, raw })
}

#[test]
fn keyring_headless_mode_never_touches_the_keyring() -> Result<()> {
    let tmp = scratch_dir(TEST_DIR)?;
    let key = keys::encode_key(&MasterKey::generate().unwrap());
    let headless = [(keys::ENV_MASTER_KEY, key.as_str())];

    // With a live, unlocked keyring: nothing lands in it.
    let session = start(&tmp, KeyringMode::Unlocked)?;
    let created = run(&session, "create", &headless);
    assert_eq!(created.get("HEADLESS"), "true");
    assert!(
        !session.keyring_items()?.contains("tokenkeep"),
        "{}",
        session.keyring_items()?
    );
    let rotate = run(&session, "rotate", &headless);
    assert!(
        rotate.get("ROTATE_ERR").starts_with("rotate-key needs the OS keyring"),
        "{}",
        rotate.raw
    );
    assert!(
        !session.keyring_items()?.contains("tokenkeep"),
        "{}",
        session.keyring_items()?
    );
    drop(session);

    // With no bus at all: headless mode still opens and reads.
    let session = start(&tmp, KeyringMode::None)?;
    let no_bus = format!("unix:path={}", tmp.join("runtime/no-such-bus").display());
    let read = run(
        &session,
        "read",
        &[
            ("DBUS_SESSION_BUS_ADDRESS", no_bus.as_str()),
            (keys::ENV_MASTER_KEY, key.as_str()),
            (CHILD_CONNECTION, created.get("CONNECTION")),
        ],
    );
    assert_eq!(read.get("TOKEN"), TOKEN);
    Ok(())
}

/// 2025-11-24T16:00:00Z: when the holding "app" started, as its holder file says.
const T0: u64 = 1_764_000_000;

#[test]
fn another_process_holding_the_store_is_named() -> Result<()> {
    let home = scratch_dir("vault-holder")?;
    let key = MasterKey::generate()?;
    let encoded = keys::encode_key(&key);
    let paths = ProfilePaths::resolve(Profile::parse("dev")?, Some(home.clone()))?;
    let mut child = Command::new(probe())
        .arg("hold")
        .env("TOKENKEEP_HOME", &home)
        .env(keys::ENV_MASTER_KEY, encoded.as_str())
        .env("TK_PROBE_CLOCK", T0.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(
            out.read_line(&mut line)? > 0,
            "the probe exited before holding the store"
        );
    }

    let err = match Vault::open(&paths, KeySource::Headless(key), Arc::new(SystemClock), PROGRAM_CLI) {
        Ok(_) => panic!("a second process opened the store"),
        Err(err) => err,
    };
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "is in use by the Tokenkeep app (pid {}, since 2025-11-24",
            child.id()
        )),
        "{msg}"
    );
    assert!(msg.contains("close it or use the app"), "{msg}");

    drop(child.stdin.take());
    assert!(child.wait()?.success());
    Ok(())
}

/// Issue 13: the key the keyring holds can be exported for a backup and imported back after the keyring lost it —
/// and the store opens again. The key never reaches the log.
#[test]
fn keyring_an_exported_key_brings_back_a_store_whose_key_the_keyring_lost() -> Result<()> {
    use tokenkeep_e2e::cli::{PROFILE, Tokenkeep};
    let tmp = scratch_dir(TEST_DIR)?;
    let session = start(&tmp, KeyringMode::Unlocked)?;
    let tk = Tokenkeep::in_session(&session)?;
    tk.ok(&["list"], None)?; // the first open creates the store and its key
    let exported = tk.ok(&["key", "export", "--yes"], None)?;
    let key = exported.stdout.trim().to_owned();
    assert_eq!(key.len(), 44, "base64 of 32 bytes: {key:?}");
    let key_id = keys::parse_env_key(&key)?.id();
    assert!(exported.stderr.contains(&key_id.to_string()), "{}", exported.stderr);

    session.keyring_clear(&format!("{PROFILE}/master/{}", key_id.to_hex()))?;
    let lost = tk.run(&["list"], None)?;
    assert!(!lost.status.success(), "the store opened without its key");
    assert!(lost.stderr.contains("is not in the keyring"), "{}", lost.stderr);

    let imported = tk.ok(&["key", "import"], Some(&format!("{key}\n")))?;
    assert!(
        imported.stdout.starts_with(&format!("Imported key {key_id}")),
        "{}",
        imported.stdout
    );
    tk.ok(&["list"], None)?;
    let again = tk.ok(&["key", "import"], Some(&key))?;
    assert!(again.stdout.contains("already holds key"), "{}", again.stdout);

    let log = std::fs::read_to_string(tk.log_file()).unwrap_or_default();
    assert!(!log.contains(&key), "the key reached the log");
    assert!(
        log.contains("the master key was exported"),
        "the export is logged (without the key)"
    );
    Ok(())
}
