//! The window at rest: idle CPU and memory of Tokenkeep's process tree (the app, its WebKit web and network
//! processes) with 1, 100 and 1,000 connections, next to a bare Tauri window (`src-tauri/examples/bare-window.rs`:
//! the same Tauri, WebKitGTK, toolchain and window size, a static page) measured in the same run on the same Xvfb.
//!
//! Each window gets `IDLE_SETTLE` seconds to start, render and finish its start-up work (default 40: longer than
//! a request's 30 s timeout, so the start-up check of every seeded Twitch token, which cannot reach the platform
//! here, has given up before the measurement), then its tree's CPU time is measured over `IDLE_SECONDS` (default
//! 60), and its resident memory (the sum of `VmRSS`, so shared pages count once per process: an upper bound) at
//! the end.
//!
//! CPU time comes from a cpuacct cgroup made for each window where the machine offers one (v1
//! `/sys/fs/cgroup/cpuacct`, writable as root): `cpuacct.usage` is the scheduler's exact run time, in
//! nanoseconds, of every process the window started, also those that ended. Elsewhere it is the user + system
//! times of `/proc/<pid>/stat`, which the kernel counts in 10 ms ticks — at a window's idle 0.05 % of a core that
//! is three ticks a minute, so those figures are coarse. The output says which was used; the per-process split is
//! always in ticks. No refresh is due during the
//! measurement (the seeded tokens expire in hours). Goal (issue 13): at 1,000 connections, at most 1.5× the bare
//! window's CPU.
//!
//! Then (issue 14) the app with `IDLE_BACKGROUND` connections (default 50; 0 skips it) with its window open, and
//! the same process after its window was closed to the tray (a StatusNotifier watcher plays the panel).
//!
//! `cargo bench -p tokenkeep-e2e --bench idle_window` (`IDLE_COUNTS=1,100,1000` to choose). It builds the app and
//! the bare window (debug profile, like the end-to-end tests) first.
#![allow(clippy::print_stdout, missing_docs)]

use std::collections::HashMap;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{ConnectionMeta, TokenSet};
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::desktop::{Watcher, services_call};
use tokenkeep_e2e::seed::now_secs;
use tokenkeep_e2e::{HeadlessSession, scratch_dir, target_dir, workspace_root};

const PLATFORMS: &[&str] = &[
    "youtube",
    "x",
    "tiktok",
    "instagram",
    "facebook",
    "threads",
    "linkedin",
    "reddit",
    "twitch",
    "pinterest",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Clock ticks per second of `/proc/*/stat` times.
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// (parent pid, user + system ticks) of every process now.
fn processes() -> HashMap<u32, (u32, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command name (in parentheses, may hold spaces): state, ppid, …; utime and stime are the 12th
        // and 13th fields after it.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid = fields.get(1).and_then(|f| f.parse().ok()).unwrap_or(0);
        let ticks = fields.get(11).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        out.insert(pid, (ppid, ticks));
    }
    out
}

/// `root` and every process below it.
fn tree(root: u32, all: &HashMap<u32, (u32, u64)>) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|(_, (ppid, _))| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    found
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().to_owned())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Idle {
    cpu_percent: f64,
    rss_mib: f64,
    processes: usize,
    /// Per process: its name and share of a core.
    detail: Vec<(String, f64)>,
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map_or_else(|_| "?".into(), |s| s.trim().to_owned())
}

/// A cpuacct cgroup that a window's processes run in: their exact CPU time, also of those that ended.
struct Cgroup {
    dir: std::path::PathBuf,
}

impl Cgroup {
    const ROOT: &str = "/sys/fs/cgroup/cpuacct";

    /// A new cgroup `name`, or `None` where the machine offers none this process may make.
    fn new(name: &str) -> Option<Self> {
        let dir = std::path::Path::new(Self::ROOT).join(format!("tokenkeep-idle-{}-{name}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        dir.join("cpuacct.usage").exists().then_some(Self { dir })
    }

    /// `program` started inside the cgroup: a shell joins it (writing 0 to `cgroup.procs` moves the writer) and
    /// then becomes the program, so the pid is the program's and every child it starts is counted.
    fn command(&self, session: &HeadlessSession, program: &std::path::Path) -> Command {
        let mut command = session.command("/bin/sh");
        command
            .arg("-c")
            .arg("echo 0 > \"$1/cgroup.procs\" && exec \"$0\"")
            .arg(program)
            .arg(&self.dir);
        command
    }

    /// CPU time used so far by everything in the cgroup.
    fn usage(&self) -> Duration {
        let ns = std::fs::read_to_string(self.dir.join("cpuacct.usage"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        Duration::from_nanos(ns)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Empty once its processes ended; a cgroup is removed with rmdir.
        for _ in 0..20 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// How a window's CPU time is counted (see the module's documentation).
fn meter_name(cgroup: Option<&Cgroup>) -> &'static str {
    if cgroup.is_some() {
        "cgroup cpuacct, exact"
    } else {
        "/proc ticks of 10 ms"
    }
}

/// Starts `program` for a measurement: in a new cgroup where there can be one.
fn spawn(
    session: &HeadlessSession,
    program: &std::path::Path,
    name: &str,
    env: &[(&str, std::ffi::OsString)],
) -> Result<(Child, Option<Cgroup>)> {
    let cgroup = Cgroup::new(name);
    let mut command = match &cgroup {
        Some(cgroup) => cgroup.command(session, program),
        None => session.command(program),
    };
    let child = command.envs(env.iter().map(|(k, v)| (*k, v))).spawn()?;
    Ok((child, cgroup))
}

/// Lets `child` settle, then measures its tree at rest.
fn measure(child: &mut Child, cgroup: Option<&Cgroup>, settle: Duration, window: Duration) -> Result<Idle> {
    measure_tree(child, cgroup, settle, window, 2)
}

/// [`measure`], for a tree of at least `min_processes` (1: the app alone, its window closed).
fn measure_tree(
    child: &mut Child,
    cgroup: Option<&Cgroup>,
    settle: Duration,
    window: Duration,
    min_processes: usize,
) -> Result<Idle> {
    std::thread::sleep(settle);
    if let Some(status) = child.try_wait()? {
        bail!("the window exited during start-up: {status}");
    }
    let ticks_per_sec = clock_ticks();
    let before = processes();
    let pids = tree(child.id(), &before);
    ensure!(
        pids.len() >= min_processes,
        "fewer than {min_processes} processes in the window's tree: {pids:?}"
    );
    let started: u64 = pids.iter().filter_map(|p| before.get(p)).map(|(_, t)| t).sum();
    let exact_before = cgroup.map(Cgroup::usage);
    let clock = std::time::Instant::now();
    std::thread::sleep(window);
    let exact = exact_before
        .zip(cgroup)
        .map(|(before, c)| c.usage().saturating_sub(before));
    let after = processes();
    let elapsed = clock.elapsed().as_secs_f64();
    // The same processes (one that ended counts what it had used).
    let ended: u64 = pids
        .iter()
        .map(|p| after.get(p).or(before.get(p)).map_or(0, |(_, t)| *t))
        .sum();
    let used = exact.map_or(ended.saturating_sub(started) as f64 / ticks_per_sec as f64, |d| {
        d.as_secs_f64()
    });
    let rss: u64 = tree(child.id(), &after).iter().map(|p| rss_kib(*p)).sum();
    let detail = pids
        .iter()
        .map(|p| {
            let t = |m: &HashMap<u32, (u32, u64)>| m.get(p).map_or(0, |(_, t)| *t);
            let share = t(&after).saturating_sub(t(&before)) as f64 / ticks_per_sec as f64 / elapsed * 100.0;
            (comm(*p), share)
        })
        .collect();
    Ok(Idle {
        cpu_percent: used / elapsed * 100.0,
        rss_mib: rss as f64 / 1024.0,
        processes: pids.len(),
        detail,
    })
}

/// One measurement's line (and `suffix`), then its processes' shares.
fn print_idle(label: &str, idle: &Idle, suffix: String) {
    println!(
        "{label:<28} {:>7.2} % of a core  {:>7.1} MiB  ({} processes){suffix}",
        idle.cpu_percent, idle.rss_mib, idle.processes,
    );
    let detail: Vec<String> = idle
        .detail
        .iter()
        .map(|(name, share)| format!("{name} {share:.2} %"))
        .collect();
    println!("{:<28} {}", "", detail.join(", "));
}

fn stop(mut child: Child) {
    // SIGTERM first, so the app closes its store and socket.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    for _ in 0..50 {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn seed(tk: &Tokenkeep, n: u64) -> Result<()> {
    let vault = tk.open_vault()?;
    let now = now_secs();
    for i in 0..n {
        let provider = PLATFORMS[i as usize % PLATFORMS.len()];
        let mut meta = ConnectionMeta::new(ProviderId::parse(provider)?, format!("creator {i}"));
        // Due in hours, spread so the relative times differ.
        meta.expires_at = Some(now + 3 * 3600 + i * 7);
        meta.last_refresh_at = Some(now - 600 - i);
        meta.scopes = vec!["openid".into(), "profile".into()];
        let tokens = TokenSet {
            access: SecretString::new(format!("idle-access-{i}")),
            refresh: Some(SecretString::new(format!("idle-refresh-{i}"))),
            id_token: None,
            dpop_key: None,
        };
        vault.put_connection(meta, &tokens)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let settle = Duration::from_secs(env_u64("IDLE_SETTLE", 40));
    let window = Duration::from_secs(env_u64("IDLE_SECONDS", 60));
    let counts: Vec<u64> = std::env::var("IDLE_COUNTS")
        .unwrap_or_else(|_| "1,100,1000".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().context("IDLE_COUNTS is a list of numbers"))
        .collect::<Result<_>>()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "-p",
            "tokenkeep-app",
            "--bin",
            "tokenkeep-app",
            "--example",
            "bare-window",
        ])
        .status()?;
    ensure!(built.success(), "building the app and the bare window failed");
    let debug = target_dir().join("debug");
    let (app, bare) = (debug.join("tokenkeep-app"), debug.join("examples").join("bare-window"));

    let dir = scratch_dir("idle-window")?;
    let session = HeadlessSession::start(&dir)?;
    let (mut bare_child, bare_group) = spawn(&session, &bare, "bare", &[])?;
    println!(
        "idle over {} s after {} s to settle; process tree of the window (app + WebKit processes); CPU time: {}",
        window.as_secs(),
        settle.as_secs(),
        meter_name(bare_group.as_ref()),
    );
    let reference = measure(&mut bare_child, bare_group.as_ref(), settle, window);
    stop(bare_child);
    drop(bare_group);
    let reference = reference?;
    print_idle("bare Tauri window", &reference, String::new());
    for n in counts {
        let tk = Tokenkeep::headless(&format!("idle-window-{n}"))?;
        seed(&tk, n)?;
        let (mut child, group) = spawn(&session, &app, &n.to_string(), &tk.app_env())?;
        let idle = measure(&mut child, group.as_ref(), settle, window);
        stop(child);
        drop(group);
        let idle = idle?;
        let ratio = format!(
            "  CPU {:.2}x, memory {:.2}x the bare window",
            idle.cpu_percent / reference.cpu_percent.max(0.01),
            idle.rss_mib / reference.rss_mib.max(1.0),
        );
        print_idle(&format!("Tokenkeep, {n} connection(s)"), &idle, ratio);
    }

    // Issue 14: the same app with its window open, then closed to the tray (a StatusNotifier watcher plays the
    // panel), in one process: what running in the background costs.
    let background = env_u64("IDLE_BACKGROUND", 50);
    if background > 0 {
        let watcher = Watcher::start(&session)?;
        let tk = Tokenkeep::headless("idle-window-background")?;
        seed(&tk, background)?;
        let (mut child, group) = spawn(&session, &app, "background", &tk.app_env())?;
        watcher.registered(Duration::from_secs(30))?;
        let open = measure(&mut child, group.as_ref(), settle, window);
        let closed = open.and_then(|open| {
            services_call(&session, &["close", "Tokenkeep"])?;
            // The web process ends with its page; give it and the allocator a moment.
            let closed = measure_tree(&mut child, group.as_ref(), Duration::from_secs(10), window, 1)?;
            Ok((open, closed))
        });
        stop(child);
        drop(group);
        let (open, closed) = closed?;
        for (label, idle) in [("window open", &open), ("window closed (tray)", &closed)] {
            print_idle(&format!("{background} connections, {label}"), idle, String::new());
        }
        println!(
            "{:<28} CPU {:.2}x, memory {:.2}x the open window",
            "closed to the tray",
            closed.cpu_percent / open.cpu_percent.max(0.01),
            closed.rss_mib / open.rss_mib.max(1.0),
        );
    }
    Ok(())
}
