//! Writes the sealed store that the CLI's offline cases read (`crates/cli/tests/cmd/fixtures/store/home`): one profile
//! `cases`, sealed with the published test key (the bytes 0..=31, as the cases' `TOKENKEEP_MASTER_KEY`), holding
//! connections whose every field — tokens, claims, times — is fixed, so that `show --json` and friends print the
//! same bytes on every machine. After regenerating, the cases' expected ids change: update them with
//! `TRYCMD=overwrite cargo test --workspace --test cli` and read the diff.
//!
//! ```sh
//! rm -r crates/cli/tests/cmd/fixtures/store/home
//! cargo build --workspace --examples && target/debug/examples/fixture_store crates/cli/tests/cmd/fixtures/store/home
//! ```
//!
//! The envelopes differ on every run (fresh random IVs); what they decrypt to does not. Nothing here is a secret:
//! the key is public and the tokens are made up.
#![allow(clippy::print_stdout)] // a developer tool: it says what it wrote

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokenkeep_core::clock::Clock;
use tokenkeep_core::keys::KeySource;
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::{MasterKey, SecretString};
use tokenkeep_core::store::{ConnectionMeta, ConnectionStatus, PROGRAM_CLI, TokenSet, Vault};

/// 2026-01-02T03:04:05Z: when the fixture's connections were "made".
const MADE_AT: u64 = 1_767_323_045;

/// A clock stopped at [`MADE_AT`].
#[derive(Debug)]
struct Stopped;

impl Clock for Stopped {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(MADE_AT)
    }
}

fn b64(json: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let home: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: fixture_store HOME_DIR")?
        .into();
    let paths = ProfilePaths::resolve(Profile::parse("cases")?, Some(home))?;
    if paths.store_dir().exists() {
        return Err(format!("{} exists already: remove it first", paths.store_dir().display()).into());
    }
    paths.ensure()?;
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let vault = Vault::open(
        &paths,
        KeySource::Headless(MasterKey::from_bytes(key)),
        Arc::new(Stopped),
        PROGRAM_CLI,
    )?;

    let id_token = format!(
        "{}.{}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk",
        b64(r#"{"alg":"RS256","kid":"fixture-key-1","typ":"JWT"}"#),
        b64(&format!(
            r#"{{"aud":"tokenkeep-demo","email":"alice@example.test","exp":{},"iat":{MADE_AT},"iss":"http://127.0.0.1:47800","sub":"user-alice-0001"}}"#,
            MADE_AT + 3600
        )),
    );
    let mut alice = ConnectionMeta::new(ProviderId::parse("demo")?, "alice@example.test");
    alice.subject = Some("user-alice-0001".into());
    alice.scopes = vec!["openid".into(), "profile".into(), "offline_access".into()];
    alice.expires_at = Some(MADE_AT + 3600);
    alice.last_refresh_at = Some(MADE_AT);
    let alice_id = vault.put_connection(
        alice,
        &TokenSet {
            access: SecretString::new("fixture-access-token-alice-0001".into()),
            refresh: Some(SecretString::new("fixture-refresh-token-alice-0001".into())),
            id_token: Some(SecretString::new(id_token)),
            dpop_key: None,
        },
    )?;

    let mut bob = ConnectionMeta::new(ProviderId::parse("demo")?, "bob");
    bob.status = ConnectionStatus::NeedsReconnect;
    bob.last_error = Some("the provider rejected the refresh token (invalid_grant): sign in again to reconnect".into());
    let bob_id = vault.put_connection(
        bob,
        &TokenSet {
            access: SecretString::new("fixture-access-token-bob-0002".into()),
            refresh: None,
            id_token: None,
            dpop_key: None,
        },
    )?;
    drop(vault);
    println!(
        "wrote {} with demo:alice@example.test ({alice_id}) and demo:bob ({bob_id})",
        paths.store_dir().display()
    );
    Ok(())
}
