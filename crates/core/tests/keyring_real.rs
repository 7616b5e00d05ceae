//! The vault against the REAL OS keyring: a private D-Bus session bus and gnome-keyring, started by each test.
//!
//! Requires `dbus-daemon`, `gnome-keyring-daemon`, `dbus-send` and `secret-tool` (apt: `dbus gnome-keyring
//! libsecret-tools`). If they are missing these tests FAIL, they do not skip: CI installs them.
//!
//! **Why child processes:** `keyring` binds to the platform store once per process, and the bus address, data
//! directories and `TOKENKEEP_MASTER_KEY` are process-wide environment. So the vault code never runs in the test
//! process: each step re-executes this test binary (`--exact child_entry`) with the session's environment. That
//! works the same under `cargo test` (tests as threads) and nextest (a process per test), and makes "reopen in a
//! new process" the normal case.
// Child steps report to the parent over stdout; observed keyring messages are printed for the record.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokenkeep_core::clock::SystemClock;
use tokenkeep_core::keys::{self, KeySource};
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::secret::{MasterKey, SecretString};
use tokenkeep_core::store::{ConnectionMeta, PROGRAM_CLI, TokenSet, Vault};

const PASSWORD: &str = "throwaway-test-password";
const TOKEN: &str = "kr-access-token-5f1e2d3c";
const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <!-- No <servicedir>: nothing is activated on demand, so "no Secret Service" stays true. -->
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

// ---- the session ------------------------------------------------------------------------------------------------

/// A throwaway desktop session: its own data directories, session bus and (optionally) gnome-keyring.
/// Everything it starts is killed on drop.
struct Session {
    root: PathBuf,
    bus: Option<String>,
    daemons: Vec<Child>,
}

/// How to start gnome-keyring.
#[derive(Clone, Copy, PartialEq)]
enum KeyringMode {
    None,
    Unlocked,
    Locked,
}

impl Session {
    /// A new session rooted at `root` (reuse a root to find the same keyring files again).
    fn start(root: &Path, keyring: KeyringMode) -> Self {
        for dir in ["data", "run", "home", "config", "cache", "tk"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        set_mode_700(&root.join("run"));
        let mut session = Self {
            root: root.to_owned(),
            bus: None,
            daemons: Vec::new(),
        };

        let socket = root.join("run/bus");
        let _ = std::fs::remove_file(&socket);
        let config = root.join("bus.conf");
        std::fs::write(&config, BUS_CONFIG.replace("@SOCKET@", socket.to_str().unwrap())).unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dbus-daemon (apt install dbus): {e}"));
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        session.daemons.push(bus);
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {address:?}");
        session.bus = Some(address);

        if keyring != KeyringMode::None {
            let mut cmd = Command::new("gnome-keyring-daemon");
            cmd.args(["--components=secrets", "--foreground"]);
            if keyring == KeyringMode::Unlocked {
                cmd.arg("--unlock");
            }
            let mut daemon = cmd
                .envs(session.env())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start gnome-keyring-daemon (apt install gnome-keyring): {e}"));
            let mut stdin = daemon.stdin.take().unwrap();
            if keyring == KeyringMode::Unlocked {
                stdin.write_all(PASSWORD.as_bytes()).unwrap();
            }
            drop(stdin);
            session.daemons.push(daemon);
            session.wait_for_secret_service();
        }
        session
    }

    /// The environment every process of this session gets.
    fn env(&self) -> Vec<(String, String)> {
        let p = |d: &str| self.root.join(d).to_str().unwrap().to_owned();
        let mut env = vec![
            ("XDG_DATA_HOME".into(), p("data")),
            ("XDG_RUNTIME_DIR".into(), p("run")),
            ("XDG_CONFIG_HOME".into(), p("config")),
            ("XDG_CACHE_HOME".into(), p("cache")),
            ("HOME".into(), p("home")),
            ("TOKENKEEP_HOME".into(), p("tk")),
        ];
        if let Some(bus) = &self.bus {
            env.push(("DBUS_SESSION_BUS_ADDRESS".into(), bus.clone()));
        }
        env
    }

    fn wait_for_secret_service(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self
                .command("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .unwrap_or_else(|e| panic!("cannot run dbus-send (apt install dbus): {e}"));
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gnome-keyring did not register org.freedesktop.secrets in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A command run inside this session, with nothing of ours inherited from the test process.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove(keys::ENV_MASTER_KEY)
            .envs(self.env());
        cmd
    }

    /// `secret-tool search --all service tokenkeep`: the attribute lines of every Tokenkeep item.
    fn keyring_items(&self) -> String {
        let out = self
            .command("secret-tool")
            .args(["search", "--all", "service", "tokenkeep"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run secret-tool (apt install libsecret-tools): {e}"));
        assert!(
            out.status.success() || out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // secret-tool prints attributes on stderr and values on stdout; keep both.
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn lookup(&self, user: &str) -> String {
        let out = self
            .command("secret-tool")
            .args(["lookup", "service", "tokenkeep", "username", user])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    fn replace_entry(&self, user: &str, value: &str) {
        let mut child = self
            .command("secret-tool")
            .args([
                "store",
                "--label=replaced by hand",
                "service",
                "tokenkeep",
                "username",
                user,
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// Runs one child step of the vault code in this session and returns what it printed.
    fn run(&self, action: &str, extra_env: &[(&str, &str)]) -> Outcome {
        let mut cmd = self.command(std::env::current_exe().unwrap().to_str().unwrap());
        cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
            .env(CHILD_ACTION, action)
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

    fn store_dir(&self) -> PathBuf {
        self.root.join("tk/dev/store")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Keyring first, then the bus; each was started as its own process group.
        for child in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn set_mode_700(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

fn run_with_timeout(mut cmd: Command, limit: Duration) -> String {
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
            panic!("child step timed out after {limit:?}; stderr: {}", err.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "child step failed ({status}):\n{out}\n{err}");
    out
}

/// What a child step reported: `@@ KEY value` lines.
struct Outcome {
    lines: BTreeMap<String, String>,
    raw: String,
}

impl Outcome {
    fn get(&self, key: &str) -> &str {
        self.lines
            .get(key)
            .unwrap_or_else(|| panic!("child printed no {key}:\n{}", self.raw))
    }

    fn error(&self) -> &str {
        self.get("ERR")
    }
}

// ---- the child side ---------------------------------------------------------------------------------------------

const CHILD_ACTION: &str = "TK_KEYRING_TEST_ACTION";
const CHILD_CONNECTION: &str = "TK_KEYRING_TEST_CONNECTION";

/// Entry point of the child steps. In a normal test run (no action set) it returns at once.
#[test]
fn child_entry() {
    let Ok(action) = std::env::var(CHILD_ACTION) else {
        return;
    };
    let report = |k: &str, v: &str| println!("@@ {k} {v}");
    let profile = Profile::parse("dev").unwrap();
    let home = std::env::var_os("TOKENKEEP_HOME").map(PathBuf::from);
    let paths = ProfilePaths::resolve(profile.clone(), home).unwrap();
    let opened = KeySource::resolve(&profile)
        .map_err(tokenkeep_core::store::StoreError::from)
        .and_then(|keys| Vault::open(&paths, keys, Arc::new(SystemClock), PROGRAM_CLI));
    let vault = match opened {
        Ok(vault) => vault,
        Err(e) => {
            report("ERR", &e.to_string());
            return;
        }
    };
    report("KEYID", &vault.key_id().to_hex());
    report("HEADLESS", &vault.is_headless().to_string());
    match action.as_str() {
        "create" => {
            let tokens = TokenSet {
                access: SecretString::new(TOKEN.into()),
                refresh: None,
                id_token: None,
            };
            let id = vault
                .put_connection(ConnectionMeta::new("google", "kr@example.com"), &tokens)
                .unwrap();
            report("CONNECTION", &id.to_hex());
        }
        "read" => {
            let id = std::env::var(CHILD_CONNECTION).unwrap().parse().unwrap();
            report("TOKEN", vault.tokens(id).unwrap().access.dangerously_expose());
        }
        "rotate" => match vault.rotate_key() {
            Ok(r) => report("NEWKEY", &r.new.to_hex()),
            Err(e) => report("ROTATE_ERR", &e.to_string()),
        },
        "open" => {}
        other => panic!("unknown child action {other}"),
    }
    report("DONE", "ok");
}

// ---- the tests --------------------------------------------------------------------------------------------------

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

const WHAT_TO_DO: &str = "Unlock or start your keyring (e.g. gnome-keyring / KWallet), or run headless with TOKENKEEP_MASTER_KEY=<base64 of 32 bytes>";

#[test]
fn the_key_lands_in_the_keyring_and_a_new_process_reads_the_token_back() {
    let tmp = tempfile::tempdir().unwrap();
    let session = Session::start(tmp.path(), KeyringMode::Unlocked);
    let created = session.run("create", &[]);
    let key_id = created.get("KEYID").to_owned();
    assert_eq!(created.get("HEADLESS"), "false");

    let items = session.keyring_items();
    assert!(items.contains(&format!("dev/master/{key_id}")), "{items}");
    let stored = session.lookup(&format!("dev/master/{key_id}"));
    assert_eq!(
        keys::parse_env_key(&stored).unwrap().id().to_hex(),
        key_id,
        "the entry holds the key, as base64"
    );

    let read = session.run("read", &[(CHILD_CONNECTION, created.get("CONNECTION"))]);
    assert_eq!(read.get("TOKEN"), TOKEN);
    assert_eq!(read.get("KEYID"), key_id);

    // The key survives the keyring daemon: a new session on the same files, unlocked with the same password.
    drop(session);
    let session = Session::start(tmp.path(), KeyringMode::Unlocked);
    assert_eq!(
        session
            .run("read", &[(CHILD_CONNECTION, created.get("CONNECTION"))])
            .get("TOKEN"),
        TOKEN
    );

    // Rotation in the real keyring: the new key is stored, the old one deleted.
    let rotated = session.run("rotate", &[]);
    let new_key = rotated.get("NEWKEY").to_owned();
    let items = session.keyring_items();
    assert!(items.contains(&format!("dev/master/{new_key}")), "{items}");
    assert!(
        !items.contains(&format!("dev/master/{key_id}")),
        "old key deleted: {items}"
    );
    let read = session.run("read", &[(CHILD_CONNECTION, created.get("CONNECTION"))]);
    assert_eq!((read.get("TOKEN"), read.get("KEYID")), (TOKEN, new_key.as_str()));
}

#[test]
fn another_key_is_refused_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let session = Session::start(tmp.path(), KeyringMode::Unlocked);
    let created = session.run("create", &[]);
    let key_id = created.get("KEYID").to_owned();
    session.run("open", &[]); // let sled replay its log once (it rewrites its own files on that open)
    let files = snapshot(&session.store_dir());
    let entry = session.lookup(&format!("dev/master/{key_id}"));

    // 1. Headless with another key.
    let other = MasterKey::generate().unwrap();
    let other_b64 = keys::encode_key(&other);
    let refused = session.run("open", &[(keys::ENV_MASTER_KEY, other_b64.as_str())]);
    let expected = format!(
        "this store was encrypted with another key (store key id {key_id}, available key {})",
        other.id()
    );
    assert!(refused.error().starts_with(&expected), "{}", refused.error());
    eprintln!("observed (headless, other key): {}", refused.error());

    // 2. The keyring entry replaced by another key.
    session.replace_entry(&format!("dev/master/{key_id}"), &other_b64);
    let refused = session.run("open", &[]);
    assert!(refused.error().starts_with(&expected), "{}", refused.error());
    eprintln!("observed (keyring entry replaced): {}", refused.error());

    assert_eq!(
        snapshot(&session.store_dir()),
        files,
        "not one byte of the store changed"
    );
    session.replace_entry(&format!("dev/master/{key_id}"), &entry);
    assert_eq!(
        session
            .run("read", &[(CHILD_CONNECTION, created.get("CONNECTION"))])
            .get("TOKEN"),
        TOKEN
    );
}

#[test]
fn a_missing_key_is_named_and_not_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let session = Session::start(tmp.path(), KeyringMode::Unlocked);
    let key_id = session.run("create", &[]).get("KEYID").to_owned();
    let status = session
        .command("secret-tool")
        .args([
            "clear",
            "service",
            "tokenkeep",
            "username",
            &format!("dev/master/{key_id}"),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let refused = session.run("open", &[]);
    eprintln!("observed (key missing): {}", refused.error());
    assert!(
        refused.error().contains(&format!(
            "the key for this store is not in the keyring (profile dev, key id {key_id}): restore it or set TOKENKEEP_MASTER_KEY"
        )),
        "{}",
        refused.error()
    );
    assert!(
        !session.keyring_items().contains("dev/master/"),
        "no new key was created"
    );
}

#[test]
fn a_locked_keyring_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    {
        // Create the login keyring (and a store whose key is in it), then log out.
        let session = Session::start(tmp.path(), KeyringMode::Unlocked);
        session.run("create", &[]);
        session.run("open", &[]); // settle sled's files (see `another_key_is_refused_and_nothing_changes`)
    }
    let session = Session::start(tmp.path(), KeyringMode::Locked);
    let files = snapshot(&session.store_dir());
    let refused = session.run("open", &[]);
    eprintln!("observed (locked): {}", refused.error());
    assert!(
        refused.error().starts_with("the OS keyring is locked ("),
        "{}",
        refused.error()
    );
    assert!(refused.error().ends_with(WHAT_TO_DO), "{}", refused.error());
    assert_eq!(snapshot(&session.store_dir()), files);
}

#[test]
fn no_session_bus_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let mut session = Session::start(tmp.path(), KeyringMode::None);
    // Point at a bus that does not exist (the usual SSH / container situation).
    session.bus = Some(format!("unix:path={}", tmp.path().join("run/no-such-bus").display()));
    let refused = session.run("create", &[]);
    eprintln!("observed (no session bus): {}", refused.error());
    assert!(
        refused
            .error()
            .starts_with("cannot reach the OS keyring: there is no D-Bus session bus ("),
        "{}",
        refused.error()
    );
    assert!(
        refused.error().contains("No default store has been set"),
        "{}",
        refused.error()
    );
    assert!(refused.error().ends_with(WHAT_TO_DO), "{}", refused.error());
}

#[test]
fn a_bus_without_secret_service_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let session = Session::start(tmp.path(), KeyringMode::None);
    let refused = session.run("create", &[]);
    eprintln!("observed (bus, no Secret Service): {}", refused.error());
    assert!(
        refused
            .error()
            .starts_with("cannot reach the OS keyring: no Secret Service is running on the session bus ("),
        "{}",
        refused.error()
    );
    assert!(
        refused.error().contains("org.freedesktop.DBus.Error.ServiceUnknown"),
        "{}",
        refused.error()
    );
    assert!(refused.error().ends_with(WHAT_TO_DO), "{}", refused.error());
}

#[test]
fn headless_mode_never_touches_the_keyring() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keys::encode_key(&MasterKey::generate().unwrap());
    let headless = [(keys::ENV_MASTER_KEY, key.as_str())];

    // With a live, unlocked keyring: nothing lands in it.
    let session = Session::start(tmp.path(), KeyringMode::Unlocked);
    let created = session.run("create", &headless);
    assert_eq!(created.get("HEADLESS"), "true");
    assert!(
        !session.keyring_items().contains("tokenkeep"),
        "{}",
        session.keyring_items()
    );
    let rotate = session.run("rotate", &headless);
    assert!(
        rotate.get("ROTATE_ERR").starts_with("rotate-key needs the OS keyring"),
        "{}",
        rotate.raw
    );
    assert!(
        !session.keyring_items().contains("tokenkeep"),
        "{}",
        session.keyring_items()
    );
    drop(session);

    // With no bus at all: headless mode still opens and reads.
    let mut session = Session::start(tmp.path(), KeyringMode::None);
    session.bus = Some(format!("unix:path={}", tmp.path().join("run/no-such-bus").display()));
    let read = session.run(
        "read",
        &[
            (keys::ENV_MASTER_KEY, key.as_str()),
            (CHILD_CONNECTION, created.get("CONNECTION")),
        ],
    );
    assert_eq!(read.get("TOKEN"), TOKEN);
}
