//! Helpers for the refresh tests: seeding a vault with minted grants (no browser), reading the daemon's event
//! lines, and driving a `tokenkeep daemon` process (SIGKILL, clean stop).
//!
//! The store admits one process at a time: seed (and inspect) the vault only while no CLI runs, which is why
//! [`seed_connections`] opens and closes it within the call.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{ConnectionId, ConnectionMeta, ConnectionStatus, TokenSet, Vault};

use crate::cli::{CliOutput, CliProcess, Tokenkeep};
use crate::peer::{MINT_SCOPE, MintedGrant, OidcPeer};

/// The provider id of the test peer in the CLI.
pub const DEMO: &str = "demo";

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A uniform random number below `n` (test timing only).
pub fn random_below(n: u64) -> Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(u64::from_le_bytes(bytes) % n.max(1))
}

/// Configures the demo provider on `peer` (`tokenkeep providers add demo --issuer …`).
pub fn add_demo(tk: &Tokenkeep, peer: &OidcPeer) -> Result<()> {
    let added = tk.ok(&["providers", "add", DEMO, "--issuer", peer.issuer()], None)?;
    ensure!(
        added.stdout.contains("tokenkeep connect demo"),
        "`providers add demo` printed {:?}",
        added.stdout
    );
    Ok(())
}

/// A connection put straight into the vault from a minted grant.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Its id in the vault.
    pub id: ConnectionId,
    /// The account (also the peer's `sub`).
    pub account: String,
    /// The grant its tokens came from.
    pub grant: MintedGrant,
}

/// Mints one grant per account at `peer` and stores each as a `connected` demo connection, as `connect` would
/// have, with the access token expiring at `expires_at` (Unix seconds; in the past makes it due at once). Opens
/// the vault only for the call: no CLI may be running.
pub fn seed_connections(tk: &Tokenkeep, peer: &OidcPeer, accounts: &[String], expires_at: u64) -> Result<Vec<Seeded>> {
    seed_into(&tk.open_vault()?, peer, accounts, expires_at)
}

/// [`seed_connections`] into a vault the caller holds open.
pub fn seed_into(vault: &Vault, peer: &OidcPeer, accounts: &[String], expires_at: u64) -> Result<Vec<Seeded>> {
    let mut seeded = Vec::with_capacity(accounts.len());
    for account in accounts {
        let grant = peer
            .mint(account, 1)?
            .pop()
            .ok_or_else(|| anyhow!("no grant minted for {account}"))?;
        let mut meta = ConnectionMeta::new(ProviderId::parse(DEMO)?, account.clone());
        meta.subject = Some(account.clone());
        meta.scopes = MINT_SCOPE.split(' ').map(str::to_owned).collect();
        meta.expires_at = Some(expires_at);
        meta.status = ConnectionStatus::Connected;
        let tokens = TokenSet {
            access: SecretString::new(grant.access_token.clone()),
            refresh: Some(SecretString::new(grant.refresh_token.clone())),
            id_token: None,
            dpop_key: None,
        };
        let id = vault.put_connection(meta, &tokens)?;
        seeded.push(Seeded {
            id,
            account: account.clone(),
            grant,
        });
    }
    Ok(seeded)
}

/// One line the daemon prints on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonLine {
    /// `<rfc3339> <provider>:<account> <id> <status> — <detail>`.
    Status {
        /// `provider:account`.
        connection: String,
        /// The connection id (hex).
        id: String,
        /// The status in words (`connected`, `needs reconnect`, …).
        status: String,
        /// What follows the dash: an expiry (`expires in 3 s`) or the last error.
        detail: String,
    },
    /// `<rfc3339> ATTENTION <provider>:<account>: <message>`.
    Attention {
        /// `provider:account`.
        connection: String,
        /// What happened.
        message: String,
    },
    /// `<rfc3339> <id> disconnected`.
    Removed {
        /// The connection id (hex).
        id: String,
    },
}

impl DaemonLine {
    /// Parses one stderr line; `None` for anything else (banners, log lines with `-v`).
    pub fn parse(line: &str) -> Option<Self> {
        let (stamp, rest) = line.split_once(' ')?;
        // 2026-11-30T04:12:09Z
        if stamp.len() != 20 || !stamp.ends_with('Z') || stamp.as_bytes().get(10) != Some(&b'T') {
            return None;
        }
        if let Some(rest) = rest.strip_prefix("ATTENTION ") {
            let (connection, message) = rest.split_once(": ")?;
            return Some(Self::Attention {
                connection: connection.to_owned(),
                message: message.to_owned(),
            });
        }
        if let Some(id) = rest.strip_suffix(" disconnected")
            && is_hex_id(id)
        {
            return Some(Self::Removed { id: id.to_owned() });
        }
        let (head, detail) = rest.split_once(" — ")?;
        let mut words = head.splitn(3, ' ');
        let connection = words.next()?.to_owned();
        let id = words.next()?.to_owned();
        let status = words.next()?.to_owned();
        if !connection.contains(':') || !is_hex_id(&id) {
            return None;
        }
        Some(Self::Status {
            connection,
            id,
            status,
            detail: detail.to_owned(),
        })
    }

    /// Every daemon line in `stderr`, in order.
    pub fn all(stderr: &str) -> Vec<Self> {
        stderr.lines().filter_map(Self::parse).collect()
    }

    /// The status, when this is a status line for connection id `hex`.
    pub fn status_of(&self, hex: &str) -> Option<&str> {
        match self {
            Self::Status { id, status, .. } if id == hex => Some(status),
            _ => None,
        }
    }
}

fn is_hex_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A running `tokenkeep daemon`, with its pid so a test can SIGKILL it.
#[derive(Debug)]
pub struct Daemon {
    process: CliProcess,
    pid: u32,
    started: Instant,
}

/// How long the daemon may take to print its banner.
const START_LIMIT: Duration = Duration::from_secs(20);

impl Daemon {
    /// Starts `tokenkeep daemon` (with `extra` arguments such as `-v`) and waits for its banner.
    pub fn start(tk: &Tokenkeep, extra: &[&str]) -> Result<Self> {
        let started = Instant::now();
        let mut args = vec!["daemon"];
        args.extend_from_slice(extra);
        let mut process = tk.spawn(&args)?;
        process.wait_for_stderr_line(START_LIMIT, |l| l.starts_with("tokenkeep daemon: keeping"))?;
        let pid = find_pid(tk, "daemon")?;
        Ok(Self { process, pid, started })
    }

    /// Everything it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr_so_far()
    }

    /// Its event lines so far.
    pub fn lines(&self) -> Vec<DaemonLine> {
        DaemonLine::all(&self.stderr())
    }

    /// Polls (every 50 ms, at most `limit`) until `done` holds for the event lines so far; fails with the stderr
    /// otherwise, or when the daemon exits first.
    pub fn wait_until(&mut self, limit: Duration, what: &str, done: impl Fn(&[DaemonLine]) -> bool) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.lines()) {
                return Ok(());
            }
            if let Some(status) = self.process.exited_yet()? {
                bail!("the daemon exited ({status}) before {what}:\n{}", self.stderr());
            }
            if Instant::now() > deadline {
                bail!("no {what} within {limit:?}; daemon stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How long `finish` may wait from the start: the time run so far plus `extra`.
    fn limit(&self, extra: Duration) -> Duration {
        self.started.elapsed() + extra
    }

    /// SIGKILL, as a crash would; returns what it printed.
    pub fn kill9(mut self) -> Result<String> {
        signal(self.pid, "-KILL")?;
        // The pipes close when the process is gone.
        let limit = self.limit(Duration::from_secs(10));
        let output = self.process.finish(limit)?;
        ensure!(
            output.status.code().is_none(),
            "the daemon was not killed by the signal: {}",
            output.status
        );
        Ok(output.stderr)
    }

    /// SIGTERM and wait: it must exit 0 after saying "stopped.".
    pub fn stop(mut self) -> Result<CliOutput> {
        signal(self.pid, "-TERM")?;
        // IMPORTANT: the engine lets refreshes in flight finish for up to 10 s before it gives up on them.
        let limit = self.limit(Duration::from_secs(30));
        let output = self.process.finish(limit)?;
        output.ensure_code(0)?;
        ensure!(
            output.stderr.contains("tokenkeep daemon: stopped."),
            "the daemon did not say it stopped:\n{}",
            output.stderr
        );
        Ok(output)
    }
}

fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status()?;
    ensure!(status.success(), "kill {signal} {pid} failed");
    Ok(())
}

/// The pid of the one `tokenkeep SUBCOMMAND` running for this installation: found in /proc by its binary, its
/// subcommand and its `TOKENKEEP_HOME` (unique per test), since the harness keeps the pid to itself.
fn find_pid(tk: &Tokenkeep, subcommand: &str) -> Result<u32> {
    let home = tk
        .env()
        .iter()
        .find(|(k, _)| k == "TOKENKEEP_HOME")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| anyhow!("the installation has no TOKENKEEP_HOME"))?;
    let mut wanted_env = b"TOKENKEEP_HOME=".to_vec();
    wanted_env.extend_from_slice(home.as_encoded_bytes());
    let binary = tk.binary().canonicalize()?;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let dir = entry.path();
        if std::fs::read_link(dir.join("exe")).ok().as_deref() != Some(binary.as_path()) {
            continue;
        }
        let args = read_nul_separated(&dir.join("cmdline"));
        let env = read_nul_separated(&dir.join("environ"));
        if args.iter().any(|a| a == subcommand.as_bytes()) && env.contains(&wanted_env) {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => bail!("no `tokenkeep {subcommand}` of this test is running"),
        _ => bail!("several `tokenkeep {subcommand}` of this test are running: {found:?}"),
    }
}

fn read_nul_separated(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(<[u8]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::DaemonLine;

    #[test]
    fn daemon_lines_parse() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            DaemonLine::parse(&format!(
                "2026-11-30T04:12:09Z demo:u1 {id} needs reconnect — the provider no longer accepts it"
            )),
            Some(DaemonLine::Status {
                connection: "demo:u1".into(),
                id: id.into(),
                status: "needs reconnect".into(),
                detail: "the provider no longer accepts it".into(),
            })
        );
        assert_eq!(
            DaemonLine::parse("2026-11-30T04:12:09Z ATTENTION demo:u1: sign in again"),
            Some(DaemonLine::Attention {
                connection: "demo:u1".into(),
                message: "sign in again".into(),
            })
        );
        assert_eq!(
            DaemonLine::parse(&format!("2026-11-30T04:12:09Z {id} disconnected")),
            Some(DaemonLine::Removed { id: id.into() })
        );
        assert_eq!(DaemonLine::parse("tokenkeep daemon: stopped."), None);
    }
}
