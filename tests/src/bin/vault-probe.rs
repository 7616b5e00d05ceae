//! One step of vault code in a process of its own, for the tests in `e2e/vault_process.rs`.
//!
//! The bus address, data directories and `TOKENKEEP_MASTER_KEY` are process-wide: so each step the tests take against the real keyring is a run of this
//! program inside the test's session, and "reopen in a new process" is the normal case. It opens the profile `dev`
//! under `TOKENKEEP_HOME` with the key Tokenkeep would use (the keyring, or `TOKENKEEP_MASTER_KEY`) and reports on
//! stdout as `@@ KEY value` lines:
//!
//! - `create`: stores one connection (`google`, access token [`TOKEN`]) → `CONNECTION <id>`
//! - `read`: reads back the access token of `TK_PROBE_CONNECTION` → `TOKEN <value>`
//! - `rotate`: rotates the master key → `NEWKEY <id>`, or `ROTATE_ERR <message>`
//! - `open`: only opens
//! - `retry`: opens; if that fails, reports `FIRST_ERR <message>` and `WAITING`, waits for a line on stdin, and
//!   opens again in the same process (the app's Retry)
//! - `hold`: opens as the desktop app (with the clock at `TK_PROBE_CLOCK`, Unix seconds, when set), prints
//!   `@@ READY`, and holds the store until stdin closes
//!
//! Every step first reports `KEYID` and `HEADLESS`, or `ERR <message>` when the vault does not open; `DONE ok`
//! last. The token is a test value, not a secret.
#![allow(clippy::print_stdout)] // it reports to its parent over stdout

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokenkeep_core::clock::{Clock, SystemClock};
use tokenkeep_core::keys::KeySource;
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{ConnectionMeta, PROGRAM_APP, PROGRAM_CLI, StoreError, TokenSet, Vault};

/// The access token `create` stores.
const TOKEN: &str = "kr-access-token-5f1e2d3c";

/// A clock stopped at a given time (for the holder's "since").
#[derive(Debug)]
struct Stopped(u64);

impl Clock for Stopped {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0)
    }
}

fn report(key: &str, value: &str) {
    println!("@@ {key} {value}");
}

fn main() {
    let action = std::env::args().nth(1).unwrap_or_default();
    let profile = Profile::parse("dev").expect("a valid profile");
    let home = std::env::var_os("TOKENKEEP_HOME").map(PathBuf::from);
    let paths = ProfilePaths::resolve(profile.clone(), home).expect("the profile's paths");
    let (program, clock): (&str, Arc<dyn Clock>) = match std::env::var("TK_PROBE_CLOCK") {
        Ok(secs) if action == "hold" => (PROGRAM_APP, Arc::new(Stopped(secs.parse().expect("Unix seconds")))),
        _ if action == "hold" => (PROGRAM_APP, Arc::new(SystemClock)),
        _ => (PROGRAM_CLI, Arc::new(SystemClock)),
    };
    let open = || {
        KeySource::resolve(&profile)
            .map_err(StoreError::from)
            .and_then(|keys| Vault::open(&paths, keys, clock.clone(), program))
    };
    let mut opened = open();
    if action == "retry"
        && let Err(e) = &opened
    {
        // The app's Retry: the same process, a new key source (and with it a new connection to the keyring).
        report("FIRST_ERR", &e.to_string());
        report("WAITING", "for a line on stdin");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).ok();
        opened = open();
    }
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
                dpop_key: None,
            };
            let google = ProviderId::parse("google").expect("a valid provider id");
            let id = vault
                .put_connection(ConnectionMeta::new(google, "kr@example.com"), &tokens)
                .expect("stored");
            report("CONNECTION", &id.to_hex());
        }
        "read" => {
            let id = std::env::var("TK_PROBE_CONNECTION")
                .expect("TK_PROBE_CONNECTION")
                .parse()
                .expect("a connection id");
            report("TOKEN", vault.tokens(id).expect("readable").access.dangerously_expose());
        }
        "rotate" => match vault.rotate_key() {
            Ok(r) => report("NEWKEY", &r.new.to_hex()),
            Err(e) => report("ROTATE_ERR", &e.to_string()),
        },
        "open" | "retry" => {}
        "hold" => {
            report("READY", "holding the store");
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
        }
        other => panic!("unknown probe step {other:?}: create, read, rotate, open or hold"),
    }
    report("DONE", "ok");
}
