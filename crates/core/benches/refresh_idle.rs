//! The refresh engine at rest: 10,000 connections planned, nothing due, for a minute.
//!
//! Prints the resident memory, the CPU time used, the engine's wakeups and the process's context switches over
//! the idle period. The engine should sleep until the next due time (capped by its wake check), so the wakeups
//! should be a handful, not one per connection or per second. `IDLE_SECS` (default 60) and `CONNECTIONS`
//! (default 10000) change the run.
//!
//! `cargo bench --workspace --bench refresh_idle`
#![allow(clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokenkeep_core::clock::SystemClock;
use tokenkeep_core::http::{BoxFuture, HttpClient, HttpError, HttpRequest, HttpResponse};
use tokenkeep_core::keys::KeySource;
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::provider::catalog::Catalog;
use tokenkeep_core::provider::config::ProfileConfig;
use tokenkeep_core::refresh::{EngineParts, RefreshEngine, RefreshPolicy};
use tokenkeep_core::secret::{MasterKey, SecretString};
use tokenkeep_core::store::{ConnectionMeta, TokenSet, Vault};

/// Counts requests; none should happen while idle.
#[derive(Debug, Default)]
struct CountingHttp(AtomicU64);

impl HttpClient for CountingHttp {
    fn execute(&self, _request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Err(HttpError::InvalidRequest("the idle benchmark makes no requests".into())) })
    }
}

/// (resident KiB, CPU seconds, voluntary + involuntary context switches summed over all threads) of this process.
fn process_figures() -> (u64, f64, u64) {
    let field = |status: &str, name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // /proc/self/status counts the main thread's switches only; each thread has its own under task/.
    let switches: u64 = std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .map(|task| {
                    let s = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
                    field(&s, "voluntary_ctxt_switches:") + field(&s, "nonvoluntary_ctxt_switches:")
                })
                .sum()
        })
        .unwrap_or(0);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime (all threads) are fields 14 and 15 of /proc/PID/stat, i.e. 11 and 12 after the command;
    // 100 ticks per second.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    (field(&status, "VmRSS:"), cpu, switches)
}

fn main() {
    let connections: usize = std::env::var("CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let idle = Duration::from_secs(
        std::env::var("IDLE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let paths = ProfilePaths::resolve(Profile::parse("bench").unwrap(), Some(tmp.path().to_owned())).unwrap();
    let key = MasterKey::generate().unwrap();
    let vault =
        Arc::new(Vault::open(&paths, KeySource::Headless(key), Arc::new(SystemClock), "bench").expect("open vault"));
    let mut config = ProfileConfig::default();
    config
        .set_demo_issuer(Some("http://127.0.0.1:9".parse().unwrap()))
        .unwrap();
    let catalog = Catalog::from_config(&config).unwrap();

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let seeded = Instant::now();
    for i in 0..connections {
        let mut meta = ConnectionMeta::new(ProviderId::parse("demo").unwrap(), format!("user{i}@example.test"));
        // Spread expiries over the next 1–24 hours: nothing is due within the idle minute.
        meta.expires_at = Some(now + 3600 + (i as u64 * 82_800 / connections as u64));
        meta.last_refresh_at = Some(now);
        let tokens = TokenSet {
            access: SecretString::new(format!("access-{i:08}-{}", "a".repeat(40))),
            refresh: Some(SecretString::new(format!("refresh-{i:08}-{}", "r".repeat(40)))),
            id_token: None,
            dpop_key: None,
        };
        vault.put_connection(meta, &tokens).expect("seed");
    }
    println!("seeded {connections} connections in {:.1?}", seeded.elapsed());

    let http = Arc::new(CountingHttp::default());
    let engine = RefreshEngine::new(EngineParts {
        vault,
        catalog,
        http: http.clone(),
        clock: Arc::new(SystemClock),
        policy: RefreshPolicy::default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        engine.start();
        while engine.stats().planned < connections as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!(
            "engine planned {} connections in {:.1?}",
            engine.stats().planned,
            started.elapsed()
        );

        let (rss0, cpu0, ctx0) = process_figures();
        let wake0 = engine.stats().wakeups;
        tokio::time::sleep(idle).await;
        let (rss1, cpu1, ctx1) = process_figures();
        let stats = engine.stats();
        println!("idle for {idle:?} with {connections} connections planned:");
        println!(
            "  resident memory   {:.1} MiB (start of idle {:.1} MiB)",
            rss1 as f64 / 1024.0,
            rss0 as f64 / 1024.0
        );
        println!(
            "  CPU time          {:.3} s ({:.3} % of one core)",
            cpu1 - cpu0,
            (cpu1 - cpu0) * 100.0 / idle.as_secs_f64()
        );
        println!("  engine wakeups    {}", stats.wakeups - wake0);
        println!(
            "  context switches  {} (all threads: tokio workers, sled's own threads)",
            ctx1.saturating_sub(ctx0)
        );
        println!("  refreshes         {} (expected 0)", stats.refreshes);
        println!("  HTTP requests     {} (expected 0)", http.0.load(Ordering::Relaxed));
        engine.stop(Duration::from_secs(5)).await;
    });
}
