//! The desktop's side of the tray and of notifications, for the end-to-end tests: `tests/py/desktop_services.py`
//! playing a panel's StatusNotifier watcher and a notification server on the session bus, and reading or clicking
//! a tray item's menu as a panel does. (These are the OS's services, not ours: fakes are fine there.)

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;

use crate::{Guarded, HeadlessSession, workspace_root};

/// Debian's Python, which has python3-dbus and python3-gi (another `python3` on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

fn services() -> PathBuf {
    workspace_root().join("tests/py/desktop_services.py")
}

/// A `desktop_services.py` service running in the session, and the JSON lines it prints.
struct Service {
    _process: Guarded,
    lines: mpsc::Receiver<Value>,
}

impl Service {
    fn start(session: &HeadlessSession, name: &'static str, mode: &str) -> Result<Self> {
        let mut process = Guarded::spawn(
            name,
            session
                .command(PYTHON)
                .arg(services())
                .arg(mode)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        )
        .context("apt install python3-dbus python3-gi")?;
        let stdout = process
            .child()
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no {name} stdout"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && tx.send(value).is_err()
                {
                    break;
                }
            }
        });
        let service = Self {
            _process: process,
            lines,
        };
        let first = service.next(Duration::from_secs(10))?;
        ensure!(first.get("ready").is_some(), "{name} said {first}");
        Ok(service)
    }

    fn next(&self, limit: Duration) -> Result<Value> {
        self.lines
            .recv_timeout(limit)
            .map_err(|_| anyhow!("the desktop service said nothing within {limit:?}"))
    }
}

/// The panel's StatusNotifier watcher, and the items that registered with it.
#[allow(missing_debug_implementations)] // a process and a channel: nothing to show
pub struct Watcher(Service);

impl Watcher {
    /// Owns `org.kde.StatusNotifierWatcher` on the session's bus, with a host registered.
    pub fn start(session: &HeadlessSession) -> Result<Self> {
        Service::start(session, "status notifier watcher", "watcher").map(Self)
    }

    /// The next item that registers: `<bus name><object path>`.
    pub fn registered(&self, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.0.next(left).context("no tray item registered")?;
            if let Some(item) = line["registered"].as_str() {
                return Ok(item.to_owned());
            }
        }
    }
}

/// logind's sleep announcements, on the session's bus (give the app `DBUS_SYSTEM_BUS_ADDRESS` from
/// [`Logind::system_bus_env`] so that it takes that bus for the system bus).
#[allow(missing_debug_implementations)] // a process and a channel: nothing to show
pub struct Logind(Service);

impl Logind {
    /// Owns `org.freedesktop.login1` on the session's bus.
    pub fn start(session: &HeadlessSession) -> Result<Self> {
        Service::start(session, "logind", "logind").map(Self)
    }

    /// The environment that makes a program take the session's bus for the system bus.
    pub fn system_bus_env(session: &HeadlessSession) -> Result<(&'static str, std::ffi::OsString)> {
        session
            .env()
            .into_iter()
            .find(|(name, _)| name == "DBUS_SESSION_BUS_ADDRESS")
            .map(|(_, address)| ("DBUS_SYSTEM_BUS_ADDRESS", address))
            .ok_or_else(|| anyhow!("the session has no bus address"))
    }

    /// A suspend and resume: `PrepareForSleep(true)`, then `PrepareForSleep(false)`; returns once both went out.
    pub fn sleep_and_wake(&self) -> Result<()> {
        let pid = self.0._process.id().to_string();
        let sent = std::process::Command::new("kill").args(["-USR1", &pid]).status()?;
        ensure!(sent.success(), "could not signal the logind stand-in");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.0.next(left)?.get("woke").is_some() {
                return Ok(());
            }
        }
    }
}

/// A notification server that records every notification shown.
#[allow(missing_debug_implementations)] // a process and a channel: nothing to show
pub struct Notifications {
    _service: Arc<Mutex<Service>>,
    shown: Arc<Mutex<Vec<Value>>>,
}

impl Notifications {
    /// Owns `org.freedesktop.Notifications` on the session's bus.
    pub fn start(session: &HeadlessSession) -> Result<Self> {
        let service = Arc::new(Mutex::new(Service::start(
            session,
            "notification server",
            "notifications",
        )?));
        let shown = Arc::new(Mutex::new(Vec::new()));
        let (reader, into) = (service.clone(), shown.clone());
        std::thread::spawn(move || {
            loop {
                let line = reader
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .next(Duration::from_millis(200));
                match line {
                    Ok(line) => {
                        if let Some(n) = line.get("notification") {
                            into.lock().unwrap_or_else(PoisonError::into_inner).push(n.clone());
                        }
                    }
                    Err(_) if Arc::strong_count(&reader) == 1 => break,
                    Err(_) => {}
                }
            }
        });
        Ok(Self {
            _service: service,
            shown,
        })
    }

    /// Every notification shown so far: `{ appName, icon, summary, body, desktopEntry, … }`.
    pub fn shown(&self) -> Vec<Value> {
        self.shown.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Waits until at least `n` notifications were shown; returns them all.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Result<Vec<Value>> {
        let deadline = Instant::now() + limit;
        loop {
            let shown = self.shown();
            if shown.len() >= n {
                return Ok(shown);
            }
            ensure!(
                Instant::now() < deadline,
                "{} notification(s) within {limit:?}, not {n}: {shown:?}",
                shown.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `desktop_services.py dump|click|close …` in the session; its JSON answer.
pub fn services_call(session: &HeadlessSession, args: &[&str]) -> Result<Value> {
    let out = session
        .command(PYTHON)
        .arg(services())
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        out.status.success(),
        "desktop_services.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}
