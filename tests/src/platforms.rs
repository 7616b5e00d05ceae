//! The strict platform emulations (`tests/js/platforms.mjs`) seen from Rust, and the shipped provider presets
//! moved onto them.
//!
//! **Invariant:** an emulation is plain HTTP on an ephemeral 127.0.0.1 port, and a platform host `H` is the path
//! prefix `/H` there. [`Platform::moved_preset`] takes the preset file Tokenkeep ships (`crates/core/providers/`)
//! and changes only its hosts — every `https://H` in a setting becomes `http://127.0.0.1:PORT/H` — so the test
//! proves the file a user gets, not a copy written for the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::{Value, json};

use crate::peer::js_dir;
use crate::{Guarded, first_line, scratch_dir, workspace_root};

/// The client id every emulated platform has registered.
pub const CLIENT_ID: &str = "tk-client-id";
/// Its secret (public dialects ignore it).
pub const CLIENT_SECRET: &str = "tk-client-secret";
/// The https page "registered" for the platforms that redirect only to https (Meta's); never fetched.
pub const PASTE_PAGE: &str = "https://creator.example/tokenkeep/";

/// `TOKENKEEP_BROWSER` for the follow "browser" (`tests/js/follow.mjs`: follows the redirects as a browser would;
/// a landing on an https page is written to `TK_FOLLOW_PASTE`). Tokenkeep splits the value on whitespace, so a
/// checkout path with whitespace is refused.
pub fn follow_browser() -> Result<String> {
    let script = js_dir().join("follow.mjs");
    let script = script
        .to_str()
        .ok_or_else(|| anyhow!("the checkout path is not UTF-8"))?;
    ensure!(
        !script.contains(char::is_whitespace),
        "the checkout path must not contain whitespace"
    );
    Ok(format!("node {script}"))
}

/// How long an emulation may take to print its address (well under a second).
const START_LIMIT: Duration = Duration::from_secs(15);

/// One running emulation of one platform's dialect. Dropping it stops the server.
#[derive(Debug)]
pub struct Platform {
    dialect: String,
    port: u16,
    log: PathBuf,
    agent: ureq::Agent,
    _process: Guarded,
}

/// What an emulation knows about a token a test holds (`POST /__admin/introspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenState {
    /// `access`, `refresh` or `short` (a short-lived token Meta exchanges for a long-lived one).
    pub kind: String,
    /// Issued, not revoked and not expired on the emulation's clock.
    pub active: bool,
}

impl Platform {
    /// Starts `node tests/js/platforms.mjs --dialect DIALECT` and waits for its address. Its request log goes to
    /// `platform.log` in a fresh scratch directory.
    pub fn start(dialect: &str) -> Result<Self> {
        let dir = scratch_dir(&format!("platform-{dialect}"))?;
        let log = dir.join("platform.log");
        let mut process = Guarded::spawn(
            "a platform emulation (node tests/js/platforms.mjs)",
            Command::new("node")
                .arg(js_dir().join("platforms.mjs"))
                .args(["--dialect", dialect])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log)?),
        )
        .context("is node installed and on PATH?")?;
        let line = first_line(process.child(), "the platform emulation", START_LIMIT)
            .with_context(|| format!("emulation log:\n{}", read_log(&log)))?;
        let ready: Value = serde_json::from_str(&line).with_context(|| format!("the emulation printed {line:?}"))?;
        ensure!(
            ready["dialect"] == dialect,
            "the emulation speaks {:?}",
            ready["dialect"]
        );
        let port = ready["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| anyhow!("no port in {line:?}"))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // IMPORTANT: never route loopback requests through a proxy from the environment.
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(Self {
            dialect: dialect.to_owned(),
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

    /// The emulation's request log (one `METHOD /path` per line, and any error it met).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The shipped preset `crates/core/providers/ID.toml` with every platform host moved onto this emulation.
    pub fn moved_preset(&self, id: &str) -> Result<String> {
        let path = workspace_root()
            .join("crates/core/providers")
            .join(format!("{id}.toml"));
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(move_hosts(&text, &self.origin()))
    }

    /// Writes [`Platform::moved_preset`] to `dir/ID.toml` for `tokenkeep providers import`.
    pub fn write_moved_preset(&self, id: &str, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(format!("{id}.toml"));
        std::fs::write(&path, self.moved_preset(id)?)?;
        Ok(path)
    }

    /// `GET /__admin/state`: every token's kind, activity and age, request counts, and what was refused.
    pub fn state(&self) -> Result<Value> {
        self.admin_get("/__admin/state")
    }

    /// Everything the emulation refused so far, in its own words (`"token: code_verifier sent"`).
    pub fn refused(&self) -> Result<Vec<String>> {
        Ok(self.state()?["refused"]
            .as_array()
            .ok_or_else(|| anyhow!("the state has no refused list"))?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }

    /// Fails, with the emulation's log, if it refused anything.
    pub fn ensure_nothing_refused(&self) -> Result<()> {
        let refused = self.refused()?;
        ensure!(
            refused.is_empty(),
            "{} refused {refused:?}; its log:\n{}",
            self.dialect,
            self.log()
        );
        Ok(())
    }

    /// What the emulation noted that is not a refusal (`"authorize: PKCE S256"`), in order.
    pub fn notes(&self) -> Result<Vec<String>> {
        Ok(self.state()?["notes"]
            .as_array()
            .ok_or_else(|| anyhow!("the state has no notes"))?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }

    /// How often `METHOD /path` (e.g. `"GET /id.twitch.tv/oauth2/validate"`) was requested.
    pub fn requests(&self, key: &str) -> Result<u64> {
        Ok(self.state()?["requests"][key].as_u64().unwrap_or(0))
    }

    /// What the emulation knows about `token` (`None`: it never issued it).
    pub fn introspect(&self, token: &str) -> Result<Option<TokenState>> {
        let answer = self.admin_post("/__admin/introspect", &json!({ "token": token }))?;
        if answer["known"] != true {
            return Ok(None);
        }
        Ok(Some(TokenState {
            kind: answer["kind"]
                .as_str()
                .ok_or_else(|| anyhow!("no kind in {answer}"))?
                .to_owned(),
            active: answer["active"] == true,
        }))
    }

    /// Moves the emulation's clock forward (token ages and expiries), e.g. past Instagram's 24-hour minimum age.
    pub fn advance_clock(&self, seconds: u64) -> Result<()> {
        self.admin_post("/__admin/clock", &json!({ "advance": seconds }))
            .map(drop)
    }

    /// Makes every token inactive, as when the person removes the app in the platform's settings.
    pub fn revoke_all(&self) -> Result<()> {
        self.admin_post("/__admin/revoke-all", &json!({})).map(drop)
    }

    fn admin_get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.origin());
        let mut response = self.agent.get(&url).call().with_context(|| format!("GET {url}"))?;
        ensure!(response.status() == 200, "GET {url} answered {}", response.status());
        Ok(serde_json::from_str(&response.body_mut().read_to_string()?)?)
    }

    fn admin_post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.origin());
        let mut response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("POST {url}"))?;
        ensure!(response.status() == 200, "POST {url} answered {}", response.status());
        Ok(serde_json::from_str(&response.body_mut().read_to_string()?)?)
    }
}

/// Moves every `https://HOST` in the settings of a preset onto `origin` (`http://127.0.0.1:PORT/HOST`). Comment
/// lines (the preset's sources) and scope values (opaque strings such as Google's `https://www.googleapis.com/
/// auth/youtube.readonly`) stay as they are; a bare host (Google's scheme-less issuer alias) is not a URL and
/// stays too.
pub fn move_hosts(preset: &str, origin: &str) -> String {
    let mut out = String::with_capacity(preset.len() + 256);
    for line in preset.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with("scopes") {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("https://") {
            let after = &rest[at + "https://".len()..];
            let host_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                .unwrap_or(after.len());
            out.push_str(&rest[..at]);
            if host_len == 0 {
                // Not a host (a placeholder such as `https://…`): left alone.
                out.push_str("https://");
            } else {
                out.push_str(origin);
                out.push('/');
                out.push_str(&after[..host_len]);
            }
            rest = &after[host_len..];
        }
        out.push_str(rest);
    }
    out
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(could not read {}: {e})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::move_hosts;

    #[test]
    fn only_the_hosts_of_settings_move() {
        let preset = "# source: https://developers.tiktok.com/doc/login-kit-desktop\n\
                      token_endpoint = \"https://open.tiktokapis.com/v2/oauth/token/\"\n\
                      issuer_aliases = [\"accounts.google.com\", \"https://www.linkedin.com\"]\n\
                      scopes = [\"https://www.googleapis.com/auth/youtube.readonly\"]\n\
                      redirect_uri = \"https://… (an https address you control)\"\n";
        assert_eq!(
            move_hosts(preset, "http://127.0.0.1:9"),
            "# source: https://developers.tiktok.com/doc/login-kit-desktop\n\
             token_endpoint = \"http://127.0.0.1:9/open.tiktokapis.com/v2/oauth/token/\"\n\
             issuer_aliases = [\"accounts.google.com\", \"http://127.0.0.1:9/www.linkedin.com\"]\n\
             scopes = [\"https://www.googleapis.com/auth/youtube.readonly\"]\n\
             redirect_uri = \"https://… (an https address you control)\"\n"
        );
    }
}
