//! `tokenkeep api` next to a plain `curl` holding the token, against the peer's resource server, in the same run.
//!
//! Each call is a new process, as a script makes it: `curl -H "Authorization: Bearer …" URL` (the reference: the
//! script holds the token) and `tokenkeep api CONNECTION PATH`, which opens the store itself (direct) or, while
//! `tokenkeep daemon` holds it, asks the daemon through the CLI socket. The three alternate in rounds, so that
//! drift of the machine hits each alike; the figure is the median time per call and its ratio to curl's.
//!
//! `cargo build --release -p tokenkeep-cli && cargo bench -p tokenkeep-e2e --bench api_overhead`
//! (`API_CALLS`, default 200 per variant).
#![allow(clippy::print_stdout, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::peer::{OidcPeer, PeerConfig};
use tokenkeep_e2e::seed::{Daemon, add_demo, now_secs, seed_connections};

const ROUNDS: usize = 5;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Runs `command` to completion `calls` times; each must succeed and print `expect` somewhere. Returns the times.
fn time_calls(calls: usize, expect: &str, mut command: impl FnMut() -> Command) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let out = command().stdin(Stdio::null()).output()?;
        times.push(started.elapsed());
        ensure!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(expect),
            "a call failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(times)
}

fn main() -> Result<()> {
    let calls = std::env::var("API_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200usize);
    let release = tokenkeep_e2e::target_dir().join("release").join("tokenkeep");
    ensure!(
        release.is_file(),
        "{} is missing: cargo build --release -p tokenkeep-cli",
        release.display()
    );
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let mut tk = Tokenkeep::headless("api-overhead")?;
    tk.use_binary(release);
    add_demo(&tk, &peer)?;
    let seeded = seed_connections(&tk, &peer, &["alice".into()], now_secs() + 30 * 24 * 3600)?;
    let token = seeded[0].grant.access_token.clone();
    let url = format!("{}/api/echo", peer.issuer());
    let curl = || {
        let mut c = Command::new("curl");
        c.args(["-sS", "--fail", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(&url);
        c
    };
    let ours = || tk.command(&["api", "demo:alice", "api/echo"]);
    // Warm-up: page cache, the peer's JIT.
    time_calls(10, "alice", curl)?;
    time_calls(10, "alice", ours)?;

    let per_round = calls.div_ceil(ROUNDS);
    let (mut plain, mut direct, mut socket) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        plain.extend(time_calls(per_round, "alice", curl)?);
        direct.extend(time_calls(per_round, "alice", ours)?);
        let daemon = Daemon::start(&tk, &[]).context("starting the daemon")?;
        socket.extend(time_calls(per_round, "alice", ours)?);
        daemon.stop()?;
    }
    let (plain, direct, socket) = (median(plain), median(direct), median(socket));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "tokenkeep api vs curl: {} calls each, new process per call, median per call",
        per_round * ROUNDS
    );
    println!("  curl with the token          {:>7.2} ms", ms(plain));
    println!(
        "  tokenkeep api, direct        {:>7.2} ms  ({:.1}× curl: opens the store, reads the key, decrypts)",
        ms(direct),
        ms(direct) / ms(plain)
    );
    println!(
        "  tokenkeep api, via the daemon {:>6.2} ms  ({:.1}× curl: the daemon holds the store and makes the call)",
        ms(socket),
        ms(socket) / ms(plain)
    );
    Ok(())
}
