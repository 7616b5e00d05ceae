//! A refresh storm against the OAuth test peer: Tokenkeep's refresh path next to a plain HTTP client.
//!
//! Both sides refresh the same number of freshly minted grants at the same concurrency against the same peer in
//! the same run. The plain client sends the bare `grant_type=refresh_token` request over the same HTTP stack and
//! only checks the status; Tokenkeep's path adds everything a real refresh does: the in-flight marker written and
//! flushed, the `oauth2` request and lenient parsing, sealing the new tokens and flushing them. The peer itself is
//! usually the bottleneck (a single Node.js process), which the plain client's figure shows.
//!
//! `cargo bench --workspace --bench refresh_storm` (`STORM_CONNECTIONS`, default 300; `STORM_CONCURRENCY`,
//! default 4 = the engine's default).
#![allow(clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, ensure};
use tokenkeep_core::clock::SystemClock;
use tokenkeep_core::http::{ReqwestHttp, SharedHttp};
use tokenkeep_core::keys::KeySource;
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::provider::catalog::Catalog;
use tokenkeep_core::provider::config::ProfileConfig;
use tokenkeep_core::refresh::{EngineParts, RefreshEngine, RefreshOutcome, RefreshPolicy};
use tokenkeep_core::secret::{MasterKey, SecretString};
use tokenkeep_core::store::{ConnectionMeta, TokenSet, Vault};
use tokenkeep_e2e::peer::{MintedGrant, OidcPeer, PUBLIC_CLIENT_ID, PeerConfig};

/// CPU time this process has used so far (user + system, all threads), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    cpu_time_of("self")
}

/// CPU time process `pid` (`self`, or a number) has used so far, from `/proc/PID/stat`.
fn cpu_time_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces): utime is the 12th, stime
    // the 13th of them, in clock ticks (100 per second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Refreshes every grant with a bare form POST, `concurrency` at a time; returns the wall time.
async fn plain_client(
    http: SharedHttp,
    token_endpoint: &str,
    grants: &[MintedGrant],
    concurrency: usize,
) -> Result<Duration> {
    let queue = Arc::new(std::sync::Mutex::new(
        grants.iter().map(|g| g.refresh_token.clone()).collect::<Vec<_>>(),
    ));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (queue, http, endpoint) = (queue.clone(), http.clone(), token_endpoint.to_owned());
        workers.spawn(async move {
            loop {
                let Some(token) = queue.lock().unwrap().pop() else {
                    return Ok::<_, anyhow::Error>(());
                };
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", &token)
                    .append_pair("client_id", PUBLIC_CLIENT_ID)
                    .finish();
                let request = http::Request::post(&endpoint)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("accept", "application/json")
                    .body(body.into_bytes())?;
                let response = http.execute(request).await?;
                ensure!(
                    response.status() == 200,
                    "plain refresh answered HTTP {}: {}",
                    response.status(),
                    String::from_utf8_lossy(response.body())
                );
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

/// Refreshes every connection through Tokenkeep's refresh engine ("Refresh now"), `concurrency` at a time (its own
/// limit).
async fn tokenkeep(engine: Arc<RefreshEngine>, ids: Vec<tokenkeep_core::store::ConnectionId>) -> Result<Duration> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids {
        let engine = engine.clone();
        tasks.spawn(async move { engine.refresh_now(id).await });
    }
    let mut refreshed = 0;
    while let Some(done) = tasks.join_next().await {
        if let RefreshOutcome::Refreshed { .. } = done?.context("a Tokenkeep refresh failed")? {
            refreshed += 1;
        }
    }
    ensure!(refreshed > 0, "nothing was refreshed");
    Ok(started.elapsed())
}

fn main() -> Result<()> {
    let connections = env_usize("STORM_CONNECTIONS", 300);
    let concurrency = env_usize("STORM_CONCURRENCY", RefreshPolicy::default().max_concurrent);
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let token_endpoint = peer.token_endpoint()?.to_owned();
    let peer_pid = peer.pid().to_string();
    // Five pairs: the machine's speed drifts between runs (the plain client's rate alone moves by a third), and
    // both the ratio of the medians and the median of each adjacent pair's ratio are reported.
    const ROUNDS: usize = 5;
    let warmup = peer.mint("warmup", 1500)?;
    let plain: Vec<Vec<MintedGrant>> = (0..ROUNDS)
        .map(|round| peer.mint(&format!("plain-{round}"), connections))
        .collect::<Result<_>>()?;
    let ours = peer.mint("tokenkeep", connections)?;

    let tmp = tokenkeep_e2e::scratch_dir("refresh-storm")?;
    let paths = ProfilePaths::resolve(Profile::parse("bench")?, Some(tmp.clone()))?;
    let vault = Arc::new(Vault::open(
        &paths,
        KeySource::Headless(MasterKey::generate()?),
        Arc::new(SystemClock),
        "bench",
    )?);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut ids = Vec::with_capacity(connections);
    for (i, grant) in ours.iter().enumerate() {
        let mut meta = ConnectionMeta::new(ProviderId::parse("demo")?, format!("user{i}@example.test"));
        meta.expires_at = Some(now + grant.expires_in);
        meta.last_refresh_at = Some(now);
        let tokens = TokenSet {
            access: SecretString::new(grant.access_token.clone()),
            refresh: Some(SecretString::new(grant.refresh_token.clone())),
            id_token: None,
            dpop_key: None,
        };
        ids.push(vault.put_connection(meta, &tokens)?);
    }
    let mut config = ProfileConfig::default();
    config.set_demo_issuer(Some(peer.issuer().parse()?))?;
    let http: SharedHttp = Arc::new(ReqwestHttp::new()?);
    let policy = RefreshPolicy {
        max_concurrent: concurrency,
        ..RefreshPolicy::default()
    };
    let refresher = Arc::new(RefreshEngine::new(EngineParts {
        vault: vault.clone(),
        catalog: Catalog::from_config(&config)?,
        http: http.clone(),
        clock: Arc::new(SystemClock),
        policy,
    }));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Node's JIT warms up over the first few hundred requests; then the two clients alternate, so drift in the
        // peer's speed affects both alike. Tokenkeep refreshes the same connections each round (rotation on).
        plain_client(http.clone(), &token_endpoint, &warmup, concurrency).await?;
        let rate = |d: Duration| connections as f64 / d.as_secs_f64();
        let (mut plain_rates, mut our_rates) = (Vec::new(), Vec::new());
        println!("refresh storm: {connections} refreshes per run, concurrency {concurrency}, one peer (oidc-provider)");
        for grants in &plain {
            let (cpu, peer_cpu) = (cpu_time(), cpu_time_of(&peer_pid));
            let p = plain_client(http.clone(), &token_endpoint, grants, concurrency).await?;
            let (plain_cpu, plain_peer) = (cpu_time() - cpu, cpu_time_of(&peer_pid) - peer_cpu);
            let (syncs, cpu, peer_cpu) = (vault.syncs(), cpu_time(), cpu_time_of(&peer_pid));
            let t = tokenkeep(refresher.clone(), ids.clone()).await?;
            let (syncs, our_cpu) = (vault.syncs() - syncs, cpu_time() - cpu);
            let our_peer = cpu_time_of(&peer_pid) - peer_cpu;
            let per = |d: Duration| d.as_secs_f64() * 1e6 / connections as f64;
            println!(
                "  plain HTTP client {:>8.1} refreshes/s ({:>4.0} µs CPU each, peer {:>4.0} µs)   Tokenkeep engine \
                 {:>8.1} refreshes/s ({:>4.0} µs CPU each, peer {:>4.0} µs, {:.2} syncs)",
                rate(p),
                per(plain_cpu),
                per(plain_peer),
                rate(t),
                per(our_cpu),
                per(our_peer),
                syncs as f64 / connections as f64
            );
            plain_rates.push(rate(p));
            our_rates.push(rate(t));
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mut pair_ratios: Vec<f64> = our_rates.iter().zip(&plain_rates).map(|(t, p)| t / p).collect();
        let pair = median(&mut pair_ratios);
        let (p, t) = (median(&mut plain_rates), median(&mut our_rates));
        println!(
            "  median: plain {p:.1}/s, Tokenkeep {t:.1}/s, ratio {:.2} (median of the pairs' ratios {pair:.2})",
            t / p
        );
        Ok::<_, anyhow::Error>(())
    })?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
