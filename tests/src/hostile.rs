//! The hostile or broken provider (`tests/js/hostile.mjs`) seen from Rust, and a Tokenkeep installation with one
//! connection to it (seeded in the vault: the provider has no sign-in page).
//!
//! **Invariant:** plain HTTP on an ephemeral 127.0.0.1 port; its mode is set per test through its admin endpoint.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{ConnectionId, ConnectionMeta, ConnectionStatus, TokenSet};

use crate::cli::Tokenkeep;
use crate::peer::js_dir;
use crate::seed::now_secs;
use crate::{Guarded, first_line, scratch_dir};

/// The provider id the hostile provider is imported as.
pub const HOSTILE: &str = "hostile";
/// The access token a seeded connection starts with.
pub const SEEDED_ACCESS: &str = "seeded-access-token-0123456789";
/// The refresh token a seeded connection starts with.
pub const SEEDED_REFRESH: &str = "seeded-refresh-token-0123456789";

/// A running hostile provider. Dropping it stops the server.
#[derive(Debug)]
pub struct HostileProvider {
    port: u16,
    log: PathBuf,
    agent: ureq::Agent,
    _process: Guarded,
}

impl HostileProvider {
    /// Starts `node tests/js/hostile.mjs` in mode `healthy`.
    pub fn start() -> Result<Self> {
        let dir = scratch_dir("hostile-provider")?;
        let log = dir.join("hostile.log");
        let mut process = Guarded::spawn(
            "the hostile provider (node tests/js/hostile.mjs)",
            Command::new("node")
                .arg(js_dir().join("hostile.mjs"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log)?),
        )
        .context("is node installed and on PATH?")?;
        let line = first_line(process.child(), "the hostile provider", Duration::from_secs(15))?;
        let ready: Value = serde_json::from_str(&line).with_context(|| format!("it printed {line:?}"))?;
        let port = ready["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| anyhow!("no port in {line:?}"))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(Self {
            port,
            log,
            agent,
            _process: process,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sets what the token endpoint answers (see `hostile.mjs`): `{"mode": "status", "status": 503, ...}`.
    pub fn set_mode(&self, mode: &Value) -> Result<()> {
        let url = format!("{}/__admin/mode", self.origin());
        let response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(mode.to_string())?;
        ensure!(
            response.status() == 200,
            "setting the mode answered {}",
            response.status()
        );
        Ok(())
    }

    /// How many token requests it has received.
    pub fn token_requests(&self) -> Result<u64> {
        let url = format!("{}/__admin/state", self.origin());
        let mut response = self.agent.get(&url).call()?;
        let state: Value = serde_json::from_str(&response.body_mut().read_to_string()?)?;
        Ok(state["requests"]["POST /token"].as_u64().unwrap_or(0))
    }

    /// Its definition in the catalog's TOML format, as `providers import` takes it.
    pub fn definition(&self) -> String {
        let origin = self.origin();
        format!(
            r#"id = "{HOSTILE}"
display_name = "Hostile"
authorization_endpoint = "{origin}/authorize"
token_endpoint = "{origin}/token"
revocation_endpoint = "{origin}/revoke"
userinfo_endpoint = "{origin}/me"
scopes = ["read"]
client_auth = "none"
identity = {{ source = "userinfo", account_claims = ["name"], subject_claim = "sub" }}
"#
        )
    }

    /// Imports the definition into `tk`, gives it a client id, and stores one connection (access token expiring
    /// `expires_in` seconds from now; negative: already expired). Opens the vault only for the call.
    pub fn install(&self, tk: &Tokenkeep, expires_in: i64) -> Result<ConnectionId> {
        let file = scratch_dir("hostile-definition")?.join("hostile.toml");
        std::fs::write(&file, self.definition())?;
        let file = file.to_str().ok_or_else(|| anyhow!("scratch path not UTF-8"))?;
        tk.ok(&["providers", "import", file], None)?;
        tk.ok(&["providers", "add", HOSTILE, "--client-id", "hostile-client"], None)?;
        let vault = tk.open_vault()?;
        let mut meta = ConnectionMeta::new(ProviderId::parse(HOSTILE)?, "Hostile User");
        meta.subject = Some("hostile-user".into());
        meta.status = ConnectionStatus::Connected;
        meta.expires_at = Some(now_secs().saturating_add_signed(expires_in));
        let tokens = TokenSet {
            access: SecretString::new(SEEDED_ACCESS.into()),
            refresh: Some(SecretString::new(SEEDED_REFRESH.into())),
            id_token: None,
            dpop_key: None,
        };
        Ok(vault.put_connection(meta, &tokens)?)
    }
}
