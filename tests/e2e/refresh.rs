//! Background refresh and disconnect end to end: the built `tokenkeep daemon`, `token`, `refresh` and `disconnect`
//! against the real OAuth test peer, with short access-token lifetimes so that refreshes happen within seconds.
//!
//! Each test has its own peer and its own Tokenkeep home, so they run in parallel. Connections come from a real
//! browser sign-in (the first test) or from grants the peer mints through its own models (`/__admin/mint`), seeded
//! straight into the vault. What happened is read from the daemon's event lines on stderr, from the vault once no
//! CLI runs (the store admits one process), and from the peer: introspection, and its record of every token it
//! issued per account (`/__admin/tokens`).
//!
//! The race between a refresh and a disconnect runs in-process (`tokenkeep_core` with real HTTP), because two CLI
//! processes cannot hold the store at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;
use tokenkeep_core::clock::SystemClock;
use tokenkeep_core::http::ReqwestHttp;
use tokenkeep_core::ops::LocalOps;
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::refresh::{
    EngineEvent, IfRevocationFails, RefreshError, RefreshOutcome, RefreshPolicy, Revocation,
};
use tokenkeep_core::store::{ConnectionId, ConnectionStatus, StoreError, Vault};
use tokenkeep_e2e::cli::{PROFILE, Tokenkeep};
use tokenkeep_e2e::peer::{ClientAuth, OidcPeer, Outage, PUBLIC_CLIENT_ID, PeerConfig};
use tokenkeep_e2e::seed::{
    DEMO, Daemon, DaemonLine, Seeded, add_demo, now_secs, random_below, seed_connections, seed_into,
};

/// Timings go to the captured test output (`--no-capture` shows them).
#[expect(clippy::print_stderr, reason = "timings are reported to whoever runs the test")]
fn note(test: &str, started: Instant, message: &str) {
    eprintln!("refresh::{test}: +{:.1?} {message}", started.elapsed());
}

fn start_peer(access_token_ttl: u64, rotate_refresh_token: bool) -> Result<OidcPeer> {
    OidcPeer::start(&PeerConfig {
        access_token_ttl,
        rotate_refresh_token,
        ..PeerConfig::default()
    })
}

/// A scratch installation with the demo provider pointing at `peer`.
fn installation(test: &str, peer: &OidcPeer) -> Result<Tokenkeep> {
    let tk = Tokenkeep::headless(test)?;
    add_demo(&tk, peer)?;
    Ok(tk)
}

/// Seeds one connection for `account` whose minted access token lives `ttl` seconds from now.
fn seed_one(tk: &Tokenkeep, peer: &OidcPeer, account: &str, ttl: u64) -> Result<Seeded> {
    seed_connections(tk, peer, &[account.to_owned()], now_secs() + ttl)?
        .pop()
        .ok_or_else(|| anyhow!("nothing seeded"))
}

/// The `(status, detail)` of every status line for connection `hex`, in order.
fn statuses<'a>(lines: &'a [DaemonLine], hex: &str) -> Vec<(&'a str, &'a str)> {
    lines
        .iter()
        .filter_map(|l| match l {
            DaemonLine::Status { id, status, detail, .. } if id == hex => Some((status.as_str(), detail.as_str())),
            _ => None,
        })
        .collect()
}

/// How many refreshes of `hex` succeeded: the engine publishes `connected` only after one.
fn refreshes(lines: &[DaemonLine], hex: &str) -> usize {
    statuses(lines, hex).iter().filter(|(s, _)| *s == "connected").count()
}

fn attentions(lines: &[DaemonLine], connection: &str) -> usize {
    lines
        .iter()
        .filter(|l| matches!(l, DaemonLine::Attention { connection: c, .. } if c == connection))
        .count()
}

/// The seconds of "… retrying in N second(s)" / "N minute(s)" in a daemon detail.
fn retry_delay(detail: &str) -> Option<u64> {
    let rest = &detail[detail.rfind("retrying in ")? + "retrying in ".len()..];
    let (n, unit) = rest.split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    match unit.trim_end_matches('.') {
        "second" | "seconds" => Some(n),
        "minute" | "minutes" => Some(n * 60),
        _ => None,
    }
}

fn list_entry(tk: &Tokenkeep, hex: &str) -> Result<Value> {
    tk.list_json()?
        .into_iter()
        .find(|e| e["id"] == hex)
        .ok_or_else(|| anyhow!("`list --json` does not show connection {hex}"))
}

/// The stored refresh and access tokens of `id` (opens the vault: no CLI may run).
fn stored_tokens(tk: &Tokenkeep, id: ConnectionId) -> Result<(String, String)> {
    let tokens = tk.open_vault()?.tokens(id)?;
    let refresh = tokens
        .refresh
        .as_ref()
        .ok_or_else(|| anyhow!("connection {id} has no refresh token stored"))?
        .dangerously_expose()
        .to_owned();
    Ok((refresh, tokens.access.dangerously_expose().to_owned()))
}

/// Every refresh the daemon logged for `hex` started while the access token was still valid: the `refreshing`
/// line carries the expiry as the daemon saw it, and "expires in N s" means at least two whole seconds were left
/// ("just now" would be within a second either way, "expired …" after).
fn ensure_refreshed_before_expiry(lines: &[DaemonLine], hex: &str) -> Result<()> {
    for (status, detail) in statuses(lines, hex) {
        if status == "refreshing" {
            ensure!(
                detail.starts_with("expires in "),
                "a refresh started too late ({detail:?}); the access token was (nearly) expired"
            );
        }
        if status == "connected" {
            ensure!(
                detail.starts_with("expires in "),
                "a refresh stored an access token that is not valid: {detail:?}"
            );
        }
    }
    Ok(())
}

/// A real browser sign-in, access tokens of 6 s, rotation on: the daemon refreshes at least twice over three
/// lifetimes, always before expiry; afterwards the newest stored refresh token is active, every older one is not,
/// and `token` hands out an access token the peer accepts.
#[test]
fn refresh_daemon_keeps_a_browser_connection_fresh_before_expiry() -> Result<()> {
    const TEST: &str = "fresh";
    const TTL: u64 = 6;
    let started = Instant::now();
    let peer = start_peer(TTL, true)?;
    let tk = installation("refresh-fresh", &peer)?;
    let connected = tk.run(&["connect", DEMO], None)?;
    connected.ensure_code(0)?;
    let hex = connected
        .stdout
        .trim_end()
        .strip_suffix(").")
        .and_then(|l| l.rsplit_once("(connection "))
        .map(|(_, id)| id.to_owned())
        .ok_or_else(|| anyhow!("`connect` printed {:?}", connected.stdout))?;
    let id: ConnectionId = hex.parse().map_err(|_| anyhow!("{hex} is not a connection id"))?;
    let (first_refresh, _) = stored_tokens(&tk, id)?;
    note(TEST, started, "connected through the browser");

    let mut daemon = Daemon::start(&tk, &[])?;
    let running = Instant::now();
    let span = Duration::from_secs(3 * TTL);
    daemon.wait_until(
        span + Duration::from_secs(30),
        "two refreshes over three lifetimes",
        |lines| running.elapsed() >= span && refreshes(lines, &hex) >= 2,
    )?;
    let output = daemon.stop()?;
    let lines = DaemonLine::all(&output.stderr);
    let count = refreshes(&lines, &hex);
    note(
        TEST,
        started,
        &format!("daemon ran {:.1?}: {count} refreshes", running.elapsed()),
    );
    ensure_refreshed_before_expiry(&lines, &hex)?;
    ensure!(
        statuses(&lines, &hex)
            .iter()
            .all(|(s, _)| matches!(*s, "refreshing" | "connected")),
        "the daemon reported a failure:\n{}",
        output.stderr
    );

    let (newest_refresh, newest_access) = stored_tokens(&tk, id)?;
    let expires_at = tk.open_vault()?.get_meta(id)?.expires_at;
    ensure!(newest_refresh != first_refresh, "the refresh token was never rotated");
    ensure!(
        peer.is_active(&newest_refresh)?,
        "the newest stored refresh token is not active"
    );
    ensure!(
        !peer.is_active(&first_refresh)?,
        "the first (rotated) refresh token is still active"
    );
    // The daemon refreshes at least 2.4 s before expiry; only a stop in the last second leaves it too close to call.
    if expires_at.is_some_and(|at| at > now_secs() + 1) {
        ensure!(
            peer.is_active(&newest_access)?,
            "the newest stored access token is not active"
        );
    }

    // `token` refreshes first (6 s is within its on-demand margin) and prints the new access token.
    let printed = tk.ok(&["token", &hex], None)?;
    let access = printed.stdout.trim_end();
    ensure!(
        peer.is_active(access)?,
        "`token` printed an access token the peer rejects"
    );
    let (after_token, stored_access) = stored_tokens(&tk, id)?;
    ensure!(
        stored_access == access,
        "`token` printed another access token than it stored"
    );
    ensure!(
        peer.is_active(&after_token)?,
        "the refresh token stored by `token` is not active"
    );
    ensure!(
        after_token != newest_refresh && !peer.is_active(&newest_refresh)?,
        "`token` did not rotate the refresh token it used"
    );
    let stats = peer.stats()?;
    ensure!(stats.refresh_errors == 0, "the peer refused refreshes: {stats:?}");
    ensure!(
        stats.refresh_requests >= 3,
        "expected at least three refreshes: {stats:?}"
    );
    note(TEST, started, "done");
    Ok(())
}

/// Rotation off: after several refreshes the stored refresh token is the original one, and still active.
#[test]
fn refresh_without_rotation_keeps_the_refresh_token() -> Result<()> {
    const TEST: &str = "no_rotation";
    const TTL: u64 = 6;
    let started = Instant::now();
    let peer = start_peer(TTL, false)?;
    let tk = installation("refresh-norotate", &peer)?;
    let seeded = seed_one(&tk, &peer, "norotate", TTL)?;
    let hex = seeded.id.to_hex();

    let mut daemon = Daemon::start(&tk, &[])?;
    daemon.wait_until(Duration::from_secs(4 * TTL + 20), "three refreshes", |lines| {
        refreshes(lines, &hex) >= 3
    })?;
    let output = daemon.stop()?;
    let lines = DaemonLine::all(&output.stderr);
    note(TEST, started, &format!("{} refreshes", refreshes(&lines, &hex)));
    ensure_refreshed_before_expiry(&lines, &hex)?;

    let (refresh, access) = stored_tokens(&tk, seeded.id)?;
    ensure!(
        refresh == seeded.grant.refresh_token,
        "the refresh token changed although the provider does not rotate"
    );
    ensure!(
        peer.is_active(&refresh)?,
        "the unchanged refresh token is no longer active"
    );
    ensure!(
        access != seeded.grant.access_token,
        "the access token was never replaced"
    );
    let stats = peer.stats()?;
    ensure!(
        stats.refresh_requests >= 3 && stats.refresh_errors == 0,
        "unexpected refreshes at the peer: {stats:?}"
    );
    Ok(())
}

/// The grant is revoked at the provider while the daemon runs: the next refresh says `needs reconnect` with one
/// ATTENTION line, the daemon stops trying (no further requests, no second ATTENTION, also not after a restart),
/// and the tokens stay stored.
#[test]
fn refresh_revoked_behind_the_apps_back_needs_reconnect_once() -> Result<()> {
    const TEST: &str = "revoked";
    const TTL: u64 = 6;
    let started = Instant::now();
    let peer = start_peer(TTL, true)?;
    let tk = installation("refresh-revoked", &peer)?;
    let account = "revokee";
    let connection = format!("{DEMO}:{account}");
    let seeded = seed_one(&tk, &peer, account, TTL)?;
    let hex = seeded.id.to_hex();

    let mut daemon = Daemon::start(&tk, &[])?;
    daemon.wait_until(Duration::from_secs(20), "a first refresh", |lines| {
        refreshes(lines, &hex) >= 1
    })?;
    ensure!(peer.revoke_grant_for(account)? == 1, "the peer revoked no grant");
    note(TEST, started, "grant revoked at the peer");
    daemon.wait_until(Duration::from_secs(3 * TTL + 10), "a needs-reconnect line", |lines| {
        statuses(lines, &hex).iter().any(|(s, _)| *s == "needs reconnect")
    })?;
    let requests = peer.stats()?.refresh_requests;
    // IMPORTANT: a fixed window, on purpose: what is checked is that nothing happens in it. Two lifetimes would
    // have seen at least three timer refreshes of a healthy connection.
    std::thread::sleep(Duration::from_secs(2 * TTL));
    let output = daemon.stop()?;
    let lines = DaemonLine::all(&output.stderr);
    ensure!(
        peer.stats()?.refresh_requests == requests,
        "the daemon kept refreshing a connection that needs a reconnect"
    );
    ensure!(
        attentions(&lines, &connection) == 1,
        "expected exactly one ATTENTION line for {connection}:\n{}",
        output.stderr
    );
    let reason = statuses(&lines, &hex)
        .into_iter()
        .find(|(s, _)| *s == "needs reconnect")
        .map(|(_, d)| d.to_owned())
        .unwrap_or_default();
    ensure!(
        reason.contains("invalid_grant") && reason.contains("sign in again"),
        "the reason does not say what happened and what to do: {reason:?}"
    );
    note(TEST, started, "one ATTENTION, then quiet");

    ensure!(
        list_entry(&tk, &hex)?["status"] == "needs_reconnect",
        "`list --json` does not say needs_reconnect"
    );
    let (refresh, _) = stored_tokens(&tk, seeded.id)?;
    ensure!(!refresh.is_empty(), "the tokens were deleted");

    // A restart does not announce the same incident again, and plans nothing for it.
    let again = Daemon::start(&tk, &["-v"])?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !again.stderr().contains("refresh engine started") {
        ensure!(
            Instant::now() < deadline,
            "the engine did not start:\n{}",
            again.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let restarted = again.stop()?;
    ensure!(
        restarted.stderr.contains("planned=0"),
        "the restarted engine planned a connection that needs a reconnect:\n{}",
        restarted.stderr
    );
    ensure!(
        attentions(&DaemonLine::all(&restarted.stderr), &connection) == 0,
        "the restarted daemon announced the incident again:\n{}",
        restarted.stderr
    );

    // Refreshing by hand fails with the reason and leaves the state as it was.
    let refused = tk.run(&["refresh", &hex], None)?;
    refused.ensure_code(1)?;
    ensure!(
        refused.stderr.contains("needs to be reconnected"),
        "`refresh` does not say a reconnect is needed:\n{}",
        refused.stderr
    );
    ensure!(
        list_entry(&tk, &hex)?["status"] == "needs_reconnect",
        "`refresh` changed the status"
    );
    note(TEST, started, "done");
    Ok(())
}

/// The token endpoint drops every connection for 15 s while the daemon runs: the connection goes `retrying` with
/// growing delays, then recovers to `connected` by itself; the tokens are never lost. The outage outlives the
/// access token, which is told once (issue 14).
#[test]
fn refresh_outage_retries_with_growing_delays_then_recovers() -> Result<()> {
    const TEST: &str = "outage";
    const TTL: u64 = 6;
    const OUTAGE: u64 = 15;
    let started = Instant::now();
    let peer = start_peer(TTL, true)?;
    let tk = installation("refresh-outage", &peer)?;
    let seeded = seed_one(&tk, &peer, "patient", TTL)?;
    let hex = seeded.id.to_hex();

    let mut daemon = Daemon::start(&tk, &[])?;
    daemon.wait_until(Duration::from_secs(20), "a first refresh", |lines| {
        refreshes(lines, &hex) >= 1
    })?;
    let before = refreshes(&daemon.lines(), &hex);
    peer.outage(Outage::Drop, OUTAGE)?;
    let outage_started = Instant::now();
    note(TEST, started, "outage started");
    let retrying = |lines: &[DaemonLine]| {
        statuses(lines, &hex)
            .into_iter()
            .filter(|(s, _)| *s == "retrying")
            .count()
    };
    daemon.wait_until(Duration::from_secs(OUTAGE + 10), "two retries", |lines| {
        retrying(lines) >= 2
    })?;
    note(TEST, started, "retrying");
    // Backoff 2, 4, 8, 16 s (±20 %): the attempt after the outage comes at most ~20 s after its end.
    daemon.wait_until(Duration::from_secs(OUTAGE + 60), "recovery after the outage", |lines| {
        refreshes(lines, &hex) > before
    })?;
    let recovered_after = outage_started.elapsed();
    let output = daemon.stop()?;
    let lines = DaemonLine::all(&output.stderr);
    let states = statuses(&lines, &hex);
    let delays: Vec<u64> = states
        .iter()
        .filter(|(s, _)| *s == "retrying")
        .map(|(_, d)| retry_delay(d).ok_or_else(|| anyhow!("no retry delay in {d:?}")))
        .collect::<Result<_>>()?;
    note(
        TEST,
        started,
        &format!("recovered {recovered_after:.1?} after the outage began; retry delays {delays:?} s"),
    );
    ensure!(delays.len() >= 2, "expected at least two retries, saw {delays:?}");
    ensure!(
        delays.windows(2).all(|w| w[0] <= w[1]),
        "the retry delays shrank: {delays:?}"
    );
    // The daemon shows the planned time (`retry_at`, whole seconds) counted from its own clock: ±1 s.
    ensure!(
        delays[0] <= 3 && delays[delays.len() - 1] > delays[0],
        "the delays do not start at ~2 s and grow: {delays:?}"
    );
    ensure!(
        recovered_after >= Duration::from_secs(OUTAGE),
        "recovered during the outage ({recovered_after:?})?"
    );
    ensure!(
        states
            .iter()
            .all(|(s, _)| matches!(*s, "refreshing" | "connected" | "retrying")),
        "a transient outage was reported as more than that:\n{}",
        output.stderr
    );
    // The outage outlives the 6-second access token: scripts using the connection fail meanwhile, so the person
    // is told — once for the whole outage, that Tokenkeep keeps trying, not that they must act.
    let told: Vec<&DaemonLine> = lines
        .iter()
        .filter(|l| matches!(l, DaemonLine::Attention { connection, .. } if *connection == format!("{DEMO}:patient")))
        .collect();
    ensure!(
        told.len() == 1,
        "an outage that outlives the access token is told once:\n{}",
        output.stderr
    );
    ensure!(
        matches!(told[0], DaemonLine::Attention { message, .. } if message.contains("keeps trying")),
        "{:?}",
        told[0]
    );
    let affected = peer.outage_state()?.affected;
    ensure!(
        affected >= delays.len() as u64,
        "the peer failed {affected} requests, fewer than the {} retries",
        delays.len()
    );

    ensure!(
        list_entry(&tk, &hex)?["status"] == "connected",
        "`list --json` does not say connected"
    );
    let (refresh, _) = stored_tokens(&tk, seeded.id)?;
    ensure!(
        peer.is_active(&refresh)?,
        "the stored refresh token is dead after the outage"
    );
    note(TEST, started, "done");
    Ok(())
}

/// `disconnect provider:account` revokes at the provider (both tokens inactive, no live grant), lists nothing, and
/// leaves no record of the connection in the store; another connection is untouched.
#[test]
fn refresh_disconnect_revokes_and_deletes_everything() -> Result<()> {
    let peer = start_peer(3600, true)?;
    let tk = installation("refresh-disconnect", &peer)?;
    let accounts = ["leaver".to_owned(), "stayer".to_owned()];
    let seeded = seed_connections(&tk, &peer, &accounts, now_secs() + 3600)?;
    let (leaver, stayer) = (&seeded[0], &seeded[1]);
    ensure!(
        peer.is_active(&leaver.grant.refresh_token)? && peer.is_active(&leaver.grant.access_token)?,
        "the minted tokens are not active to begin with"
    );

    let output = tk.ok(&["disconnect", "demo:leaver"], None)?;
    ensure!(
        output.stdout.contains("Disconnected leaver from demo")
            && output
                .stdout
                .contains("The provider confirmed that the tokens are revoked."),
        "`disconnect` printed {:?}",
        output.stdout
    );
    ensure!(
        !peer.is_active(&leaver.grant.refresh_token)?,
        "the refresh token is still active"
    );
    ensure!(
        !peer.is_active(&leaver.grant.access_token)?,
        "the access token is still active"
    );
    let left = peer.tokens_of("leaver")?;
    ensure!(
        left.active == 0 && left.live_grants == 0,
        "the peer still has live tokens or grants: {left:?}"
    );

    let list = tk.list_json()?;
    let ids: Vec<&str> = list.iter().filter_map(|e| e["id"].as_str()).collect();
    ensure!(
        ids == [stayer.id.to_hex()],
        "`list --json` shows {ids:?} after the disconnect"
    );
    let records = tk.open_vault()?.raw_records()?;
    ensure!(
        !records.iter().any(|r| r.record_id == leaver.id),
        "the store still holds records of the disconnected connection"
    );
    ensure!(
        records.iter().filter(|r| r.record_id == stayer.id).count() >= 3,
        "the other connection lost records (meta, access, refresh)"
    );
    ensure!(
        peer.is_active(&stayer.grant.refresh_token)?,
        "the other connection was revoked too"
    );

    // Once more with the now empty list.
    let leftover = tk.ok(&["disconnect", "demo:stayer"], None)?;
    ensure!(leftover.stdout.contains("confirmed"), "{:?}", leftover.stdout);
    ensure!(
        tk.list_json()?.is_empty(),
        "`list --json` is not [] after disconnecting both"
    );
    Ok(())
}

/// The in-process operations of `tk`'s profile, over `vault`, with real HTTP; their engine's timer does not run,
/// so every refresh is one the test asks for.
fn refresher(tk: &Tokenkeep, vault: Arc<Vault>) -> Result<Arc<LocalOps>> {
    let home = tk
        .profile_dir()
        .parent()
        .ok_or_else(|| anyhow!("the profile has no home"))?
        .to_path_buf();
    let paths = ProfilePaths::resolve(Profile::parse(PROFILE)?, Some(home))?;
    Ok(Arc::new(LocalOps::new(
        paths,
        vault,
        Arc::new(ReqwestHttp::new()?),
        Arc::new(SystemClock),
    )?))
}

/// A disconnect racing a refresh of the same connection, 20 times with random head starts (in-process: the store
/// admits one process). Whoever wins, afterwards nothing of the connection is in the vault and every token the peer
/// ever issued for it is inactive: no resurrection, no live grant.
#[test]
fn refresh_disconnect_racing_a_refresh_leaves_nothing_alive() -> Result<()> {
    const TEST: &str = "race";
    const TRIALS: usize = 20;
    let started = Instant::now();
    let peer = start_peer(5, true)?;
    let tk = installation("refresh-race", &peer)?;
    let vault = Arc::new(tk.open_vault()?);
    let refresher = refresher(&tk, vault.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    for trial in 0..TRIALS {
        let account = format!("racer{trial}");
        let seeded = seed_into(&vault, &peer, std::slice::from_ref(&account), now_secs() + 5)?;
        let id = seeded[0].id;
        let (refresh_delay, disconnect_delay) = (random_below(40)?, random_below(40)?);
        let (refreshed, disconnected) = runtime.block_on(async {
            let r = refresher.clone();
            let refresh = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(refresh_delay)).await;
                r.engine().refresh_now(id).await
            });
            let r = refresher.clone();
            let disconnect = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(disconnect_delay)).await;
                r.engine().disconnect(id, IfRevocationFails::DeleteNow).await
            });
            (refresh.await, disconnect.await)
        });
        let refreshed = refreshed.context("the refresh task panicked")?;
        let report = disconnected
            .context("the disconnect task panicked")?
            .with_context(|| format!("trial {trial}: the disconnect failed"))?;
        ensure!(
            report.revocation == Revocation::Revoked,
            "trial {trial}: the revocation was {:?}",
            report.revocation
        );
        let outcome = match &refreshed {
            Ok(RefreshOutcome::Refreshed { .. }) => "refreshed first",
            Ok(_) => "still fresh",
            Err(RefreshError::NotFound(_)) => "overruled by the disconnect",
            Err(RefreshError::NeedsReconnect { .. }) => "rejected (grant already revoked)",
            Err(RefreshError::Store(e)) if matches!(**e, StoreError::NotFound(_)) => "found the connection deleted",
            Err(other) => return Err(anyhow!("trial {trial}: the refresh ended with {other}")),
        };
        *outcomes.entry(outcome.to_owned()).or_default() += 1;

        ensure!(
            matches!(vault.get_meta(id), Err(StoreError::NotFound(_))),
            "trial {trial} ({outcome}): the connection is still in the vault"
        );
        ensure!(
            !vault.raw_records()?.iter().any(|r| r.record_id == id),
            "trial {trial} ({outcome}): records of the connection remain in the store"
        );
        let tokens = peer.tokens_of(&account)?;
        ensure!(
            tokens.issued >= 2 && tokens.active == 0 && tokens.live_grants == 0,
            "trial {trial} ({outcome}, refresh after {refresh_delay} ms, disconnect after {disconnect_delay} ms): \
             the peer still has live tokens: {tokens:?}"
        );
    }
    ensure!(vault.list()?.is_empty(), "connections remain after every disconnect");
    note(TEST, started, &format!("{TRIALS} trials: {outcomes:?}"));
    Ok(())
}

/// "Once per incident": a connection whose grant was revoked, refreshed by hand again and again ("Refresh now"),
/// raises ONE attention event, not one per attempt. In-process, where the events can be counted.
#[test]
fn refresh_attention_is_raised_once_per_incident_across_manual_retries() -> Result<()> {
    let peer = start_peer(3600, true)?;
    let tk = installation("refresh-attention", &peer)?;
    let vault = Arc::new(tk.open_vault()?);
    let refresher = refresher(&tk, vault.clone())?;
    let seeded = seed_into(&vault, &peer, &["again".to_owned()], now_secs() + 3600)?;
    let id = seeded[0].id;
    ensure!(peer.revoke_grant_for("again")? == 1, "the peer revoked no grant");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut events = refresher.engine().subscribe();
    for attempt in 1..=3 {
        let result = runtime.block_on(refresher.engine().refresh_now(id));
        ensure!(
            matches!(result, Err(RefreshError::NeedsReconnect { .. })),
            "attempt {attempt}: {result:?}"
        );
    }
    let mut raised = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event, EngineEvent::Attention { id: a, .. } if a == id) {
            raised += 1;
        }
    }
    ensure!(
        vault.get_meta(id)?.status == ConnectionStatus::NeedsReconnect,
        "the connection is not needs_reconnect"
    );
    ensure!(
        raised == 1,
        "three attempts raised {raised} attention events for one incident"
    );
    Ok(())
}

/// Per round: ~50 connections with 4-second access tokens (rotation on), the daemon killed with SIGKILL at a
/// random moment of the refresh storm, restarted for two lifetimes, stopped. Every connection must then be either
/// `connected` with a refresh token the peer accepts, or `interrupted`/`needs_reconnect` with a reason and its
/// tokens kept: none silently broken.
#[test]
fn refresh_kill_9_during_a_refresh_storm_breaks_nothing_silently() -> Result<()> {
    const TEST: &str = "kill9";
    const TTL: u64 = 4;
    const ROUNDS: usize = 5;
    const CONNECTIONS: usize = 50;
    let started = Instant::now();
    let peer = start_peer(TTL, true)?;
    let mut report = Vec::new();
    for round in 0..ROUNDS {
        let tk = installation(&format!("refresh-kill9-{round}"), &peer)?;
        let accounts: Vec<String> = (0..CONNECTIONS).map(|i| format!("r{round}u{i}")).collect();
        let seeded = seed_connections(&tk, &peer, &accounts, now_secs() + TTL)?;

        let mut daemon = Daemon::start(&tk, &[])?;
        // A random moment while refreshes flow: after 5..=80 completed refreshes.
        let wanted = 5 + random_below(76)? as usize;
        daemon.wait_until(Duration::from_secs(60), "the refresh storm", |lines| {
            lines
                .iter()
                .filter(|l| matches!(l, DaemonLine::Status { status, .. } if status == "connected"))
                .count()
                >= wanted
        })?;
        let killed = DaemonLine::all(&daemon.kill9()?);
        let mut last: std::collections::HashMap<&str, &str> = Default::default();
        for line in &killed {
            if let DaemonLine::Status { id, status, .. } = line {
                last.insert(id, status);
            }
        }
        let in_flight = last.values().filter(|s| **s == "refreshing").count();

        let mut daemon = Daemon::start(&tk, &[])?;
        let running = Instant::now();
        daemon.wait_until(
            Duration::from_secs(2 * TTL + 30),
            "two lifetimes after the restart",
            |lines| running.elapsed() >= Duration::from_secs(2 * TTL) && !lines.is_empty(),
        )?;
        daemon.stop()?;

        let vault = tk.open_vault()?;
        let (mut connected, mut interrupted, mut needs_reconnect) = (0, 0, 0);
        for s in &seeded {
            let meta = vault.get_meta(s.id)?;
            let tokens = vault.tokens(s.id)?;
            let refresh = tokens
                .refresh
                .as_ref()
                .ok_or_else(|| anyhow!("round {round}: {} lost its refresh token", s.account))?;
            let at_peer = peer.tokens_of(&s.account)?;
            match meta.status {
                ConnectionStatus::Connected => {
                    connected += 1;
                    ensure!(
                        peer.is_active(refresh.dangerously_expose())?,
                        "round {round}: {} is `connected` but its stored refresh token is dead at the peer \
                         (silently broken; peer: {at_peer:?})",
                        s.account
                    );
                    ensure!(
                        at_peer.active_refresh == 1 && at_peer.live_grants == 1,
                        "round {round}: {} has {at_peer:?} at the peer",
                        s.account
                    );
                    if meta.expires_at.is_some_and(|at| at > now_secs() + 1) {
                        ensure!(
                            peer.is_active(tokens.access.dangerously_expose())?,
                            "round {round}: {} holds an unexpired access token the peer rejects",
                            s.account
                        );
                    }
                }
                ConnectionStatus::Interrupted | ConnectionStatus::NeedsReconnect => {
                    if meta.status == ConnectionStatus::Interrupted {
                        interrupted += 1;
                    } else {
                        needs_reconnect += 1;
                    }
                    ensure!(
                        meta.last_error.as_deref().is_some_and(|e| !e.is_empty()),
                        "round {round}: {} is {} without a reason",
                        s.account,
                        meta.status
                    );
                    ensure!(
                        at_peer.live_grants == 0,
                        "round {round}: {} is {} although its grant is alive at the peer ({at_peer:?})",
                        s.account,
                        meta.status
                    );
                }
                other => {
                    return Err(anyhow!(
                        "round {round}: {} was left {other} ({:?}) after a clean stop",
                        s.account,
                        meta.last_error
                    ));
                }
            }
        }
        let max = RefreshPolicy::default().max_exposed();
        ensure!(
            interrupted + needs_reconnect <= max,
            "round {round}: one kill broke {} connections, more than the {max} refreshes that can be exposed",
            interrupted + needs_reconnect
        );
        let line = format!(
            "round {round}: killed after {wanted} refreshes with {in_flight} in flight → connected {connected}, \
             interrupted {interrupted}, needs_reconnect {needs_reconnect}"
        );
        note(TEST, started, &line);
        report.push(line);
    }
    note(TEST, started, &format!("done:\n  {}", report.join("\n  ")));
    Ok(())
}

/// A 429 with `Retry-After: 5` while the daemon runs: the retry waits the 5 s the provider asked for (the own
/// backoff would be ~2 s), and the connection recovers once the provider answers again.
#[test]
fn refresh_daemon_honours_retry_after() -> Result<()> {
    const TEST: &str = "retry_after";
    const TTL: u64 = 6;
    let started = Instant::now();
    let peer = start_peer(TTL, true)?;
    let tk = installation("refresh-retry-after", &peer)?;
    let seeded = seed_one(&tk, &peer, "throttled", TTL)?;
    let hex = seeded.id.to_hex();

    let mut daemon = Daemon::start(&tk, &[])?;
    daemon.wait_until(Duration::from_secs(20), "a first refresh", |lines| {
        refreshes(lines, &hex) >= 1
    })?;
    let before = refreshes(&daemon.lines(), &hex);
    peer.outage(Outage::TooManyRequests { retry_after: Some(5) }, 8)?;
    daemon.wait_until(Duration::from_secs(60), "recovery after the throttling", |lines| {
        refreshes(lines, &hex) > before
    })?;
    let output = daemon.stop()?;
    let lines = DaemonLine::all(&output.stderr);
    let retries: Vec<&str> = statuses(&lines, &hex)
        .into_iter()
        .filter(|(s, _)| *s == "retrying")
        .map(|(_, d)| d)
        .collect();
    note(TEST, started, &format!("retries: {retries:?}"));
    ensure!(
        !retries.is_empty(),
        "the throttling caused no retry:\n{}",
        output.stderr
    );
    for detail in &retries {
        // The daemon counts from its own clock to the planned time (`retry_at`, rounded up to a whole second), so
        // 5 s of Retry-After read "5" or "6"; the default backoff would start at about 2.
        ensure!(
            detail.contains("HTTP 429") && matches!(retry_delay(detail), Some(5 | 6)),
            "a retry did not wait the 5 s of Retry-After: {detail:?}"
        );
    }
    ensure!(peer.outage_state()?.affected >= 1, "the peer throttled nothing");
    let (refresh, _) = stored_tokens(&tk, seeded.id)?;
    ensure!(
        peer.is_active(&refresh)?,
        "the stored refresh token is dead after the throttling"
    );
    Ok(())
}

/// The peer's TEST-ONLY endpoints this file relies on: minted tokens behave like real ones (introspection,
/// rotation, reuse detection that revokes the grant), `/__admin/tokens` counts what is alive, and an outage fails
/// the token endpoint in each mode while introspection keeps working.
#[test]
fn refresh_peer_mints_real_tokens_and_simulates_outages() -> Result<()> {
    let peer = start_peer(3600, true)?;
    let grant = peer.mint("minted", 1)?.pop().ok_or_else(|| anyhow!("nothing minted"))?;
    ensure!(
        grant.expires_in == 3600,
        "minted access token lives {} s",
        grant.expires_in
    );
    ensure!(
        peer.is_active(&grant.access_token)? && peer.is_active(&grant.refresh_token)?,
        "the minted tokens are not active"
    );
    let introspection = peer.introspect(&grant.refresh_token)?;
    ensure!(
        introspection["sub"] == "minted" && introspection["client_id"] == PUBLIC_CLIENT_ID,
        "the minted refresh token belongs to {} / {}",
        introspection["sub"],
        introspection["client_id"]
    );
    let counts = peer.tokens_of("minted")?;
    ensure!(
        counts.issued == 2 && counts.active == 2 && counts.live_grants == 1,
        "after minting: {counts:?}"
    );

    let refresh = |token: &str| {
        peer.token_request(
            ClientAuth::PUBLIC,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
    };
    // Outages first, while the grant is fresh: each mode fails the token endpoint, not introspection.
    peer.outage(Outage::Unavailable { retry_after: Some(3) }, 30)?;
    let unavailable = refresh(&grant.refresh_token)?;
    ensure!(
        unavailable.status == 503 && unavailable.error() == Some("temporarily_unavailable"),
        "503 mode answered HTTP {} {:?}",
        unavailable.status,
        unavailable.error()
    );
    peer.outage(Outage::TooManyRequests { retry_after: None }, 30)?;
    ensure!(
        refresh(&grant.refresh_token)?.status == 429,
        "429 mode did not answer 429"
    );
    peer.outage(Outage::Drop, 30)?;
    ensure!(refresh(&grant.refresh_token).is_err(), "drop mode answered a request");
    ensure!(
        peer.is_active(&grant.refresh_token)?,
        "introspection failed during the outage"
    );
    let state = peer.outage_state()?;
    ensure!(state.mode == "drop" && state.affected == 1, "outage state {state:?}");
    let off = peer.outage(Outage::Off, 0)?;
    ensure!(
        off.mode == "off" && off.remaining == Duration::ZERO,
        "outage still on: {off:?}"
    );
    ensure!(
        peer.stats()?.refresh_requests == 0,
        "requests failed by an outage reached oidc-provider"
    );

    let first = refresh(&grant.refresh_token)?;
    ensure!(
        first.status == 200,
        "refreshing a minted grant answered HTTP {}",
        first.status
    );
    let rotated = first.str_field("refresh_token")?.to_owned();
    ensure!(
        rotated != grant.refresh_token,
        "the minted refresh token was not rotated"
    );
    ensure!(
        !peer.is_active(&grant.refresh_token)?,
        "the rotated refresh token is still active"
    );
    let reuse = refresh(&grant.refresh_token)?;
    ensure!(
        reuse.error() == Some("invalid_grant"),
        "reuse answered {:?}",
        reuse.error()
    );
    ensure!(!peer.is_active(&rotated)?, "reuse detection did not revoke the grant");
    let counts = peer.tokens_of("minted")?;
    ensure!(
        counts.issued == 4 && counts.active == 0 && counts.live_grants == 0,
        "after reuse: {counts:?}"
    );
    Ok(())
}

/// Issue 12, F1 (threat model): a validly sealed *older* refresh-token envelope put back in place of the current
/// one cannot be told apart inside the store (see docs/SECURITY.md), but it cannot go unnoticed either: with a
/// rotating platform, the refresh that follows presents a used refresh token, the platform refuses it (and revokes
/// the grant, as reuse detection does), and the connection says it needs a reconnect.
#[test]
fn refresh_a_rolled_back_refresh_token_is_flagged_by_the_next_refresh() -> Result<()> {
    let peer = start_peer(3600, true)?;
    let tk = installation("refresh-rollback", &peer)?;
    let seeded = seed_one(&tk, &peer, "rollback", 3600)?;
    let hex = seeded.id.to_hex();
    let key = [seeded.id.as_bytes().as_slice(), b"\0refresh_token"].concat();
    let raw = |f: &mut dyn FnMut(&sled::Tree) -> Result<()>| -> Result<()> {
        let db = sled::open(tk.store_dir().join("sled"))?;
        f(&db.open_tree("tokens/demo")?)?;
        db.flush()?;
        Ok(())
    };
    let mut old = None;
    raw(&mut |tree| {
        old = tree.get(&key)?.map(|v| v.to_vec());
        Ok(())
    })?;
    let old = old.context("the stored refresh token")?;

    tk.ok(&["refresh", &hex], None)?;
    let (rotated, _) = stored_tokens(&tk, seeded.id)?;
    ensure!(
        rotated != seeded.grant.refresh_token,
        "the refresh did not rotate the refresh token"
    );

    // The rollback: the older envelope, sealed by Tokenkeep for exactly this place, goes back.
    raw(&mut |tree| {
        tree.insert(&key, old.as_slice())?;
        Ok(())
    })?;
    ensure!(
        tk.ok(&["verify"], None)?.stdout.contains("all intact"),
        "a validly sealed older envelope is not damage the store can see"
    );
    let refused = tk.run(&["refresh", &hex], None)?;
    ensure!(
        !refused.status.success(),
        "the rolled-back refresh token was accepted: {refused:?}"
    );
    ensure!(
        refused.stderr.contains("sign in again") || refused.stderr.contains("reconnect"),
        "{}",
        refused.stderr
    );
    let entry = list_entry(&tk, &hex)?;
    ensure!(
        entry["status"] == "needs_reconnect",
        "after the refused refresh: {entry}"
    );
    Ok(())
}

/// Issue 12, F7: a refresh that `tokenkeep refresh` reports done is on the disk, not only in the page cache: after
/// the last write to sled's log, the log is `fdatasync`ed (sled's own `sync_file_range` flushes neither the drive
/// cache nor the file size). Seen from outside, with strace.
#[test]
fn refresh_a_reported_refresh_is_fdatasynced_to_the_log() -> Result<()> {
    let peer = start_peer(3600, true)?;
    let tk = installation("refresh-fdatasync", &peer)?;
    let seeded = seed_one(&tk, &peer, "durable", 3600)?;
    let trace = tk.profile_dir().join("strace.txt");
    let trace_arg = trace.display().to_string();
    let out = tk.run_wrapped(
        &[
            "strace",
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=pwrite64,write,fdatasync,fsync,sync_file_range",
            "-o",
            &trace_arg,
        ],
        &["refresh", &seeded.id.to_hex()],
    )?;
    out.ensure_code(0)?;
    let lines: Vec<String> = std::fs::read_to_string(&trace)?.lines().map(str::to_owned).collect();
    let on_log = |call: &str| {
        let prefix = format!("{call}(");
        move |line: &&String| {
            line.split_once(' ')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(&prefix))
                && line.contains("/store/sled/db>")
        }
    };
    let last = |call: &str| lines.iter().rposition(|l| on_log(call)(&l));
    let last_write = last("pwrite64")
        .or_else(|| last("write"))
        .context("no write to the log was traced")?;
    let last_sync = last("fdatasync").with_context(|| {
        format!(
            "the log was never fdatasynced; syncs traced: {:?}",
            lines.iter().filter(|l| l.contains("sync")).collect::<Vec<_>>()
        )
    })?;
    ensure!(
        last_sync > last_write,
        "the last write to the log (line {last_write}) is not followed by an fdatasync (last at line {last_sync})"
    );
    ensure!(
        lines.iter().any(|l| on_log("sync_file_range")(&l)),
        "sled's own sync_file_range was not seen: is the trace looking at the right file?"
    );
    Ok(())
}
