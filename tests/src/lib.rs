//! Helpers shared by the end-to-end tests: a private headless desktop session (Xvfb, D-Bus, the real
//! gnome-keyring) and a WebDriver connection to the built app through tauri-driver.
//!
//! Every process a test starts lives in its own process group and is stopped (TERM, then KILL) when its guard
//! is dropped, even when the test fails. Everything a session writes stays under `target/e2e/`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

pub mod cli;
pub mod peer;
pub mod seed;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits below the root")
        .to_path_buf()
}

/// The `target/` directory the binaries under test were built into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Path of a built binary of the workspace (debug profile), with a clear error when it was not built.
pub fn built_binary(name: &str) -> Result<PathBuf> {
    let path = target_dir().join("debug").join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it first with `cargo build --workspace` (`cargo xtask test` does)",
            path.display()
        );
    }
    Ok(path)
}

/// A fresh directory under `target/e2e/` for one test.
pub fn scratch_dir(test: &str) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let dir = target_dir()
        .join("e2e")
        .join(format!("{test}-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process in its own process group; the whole group is stopped on drop.
#[derive(Debug)]
pub struct Guarded {
    name: &'static str,
    child: Child,
}

impl Guarded {
    /// Spawns `command` in a new process group.
    pub fn spawn(name: &'static str, command: &mut Command) -> Result<Self> {
        let child = command
            .process_group(0)
            .spawn()
            .with_context(|| format!("could not start {name}"))?;
        Ok(Self { name, child })
    }

    /// The child itself (for its pipes).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Fails if the process has already exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early with {status}", self.name);
        }
        Ok(())
    }

    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            // The leader is gone; helpers it started may remain in the group.
            self.signal_group("-KILL");
            return;
        }
        self.signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                self.signal_group("-KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}

/// Reads the first line a child prints on stdout, with a time limit.
fn first_line(child: &mut Child, what: &str, limit: Duration) -> Result<String> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("{what}: stdout not captured"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = tx.send(reader.read_line(&mut line).map(|_| line));
        // Keep draining so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = rx
        .recv_timeout(limit)
        .map_err(|_| anyhow!("{what} did not start within {limit:?}"))??;
    let line = line.trim().to_owned();
    if line.is_empty() {
        bail!("{what} exited without printing its address");
    }
    Ok(line)
}

/// A private desktop session: an X display (Xvfb), a D-Bus session bus and an unlocked gnome-keyring that
/// provides the real Secret Service, all confined to one scratch directory.
#[derive(Debug)]
pub struct HeadlessSession {
    dir: PathBuf,
    display: String,
    bus_address: String,
    // Dropped in reverse order of start: keyring, bus, display.
    _keyring: Guarded,
    _bus: Guarded,
    _xvfb: Guarded,
}

/// The password of the throwaway login keyring.
pub const KEYRING_PASSWORD: &str = "tokenkeep-e2e";

impl HeadlessSession {
    /// Starts Xvfb, a session bus and gnome-keyring under `dir`.
    pub fn start(dir: &Path) -> Result<Self> {
        for sub in ["data", "cache", "config", "runtime", "home"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        set_mode_700(&dir.join("runtime"))?;

        let mut xvfb = Guarded::spawn(
            "Xvfb",
            Command::new("Xvfb")
                .args([
                    "-displayfd",
                    "1",
                    "-screen",
                    "0",
                    "1280x800x24",
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )?;
        let display = format!(":{}", first_line(xvfb.child(), "Xvfb", Duration::from_secs(15))?);

        let mut bus = Guarded::spawn(
            "dbus-daemon",
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
                .arg(format!("--address=unix:dir={}", dir.join("runtime").display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )?;
        let bus_address = first_line(bus.child(), "dbus-daemon", Duration::from_secs(10))?;

        let mut session_env = Self::env_for(dir, &display, &bus_address);
        let mut keyring = Guarded::spawn(
            "gnome-keyring-daemon",
            Command::new("gnome-keyring-daemon")
                .args(["--unlock", "--components=secrets", "--foreground"])
                .env_clear()
                .envs(session_env.drain(..))
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        {
            let mut stdin = keyring
                .child()
                .stdin
                .take()
                .ok_or_else(|| anyhow!("keyring stdin not captured"))?;
            stdin.write_all(KEYRING_PASSWORD.as_bytes())?;
        } // closing stdin ends the password
        let session = Self {
            dir: dir.to_path_buf(),
            display,
            bus_address,
            _keyring: keyring,
            _bus: bus,
            _xvfb: xvfb,
        };
        session.wait_for_bus_name("org.freedesktop.secrets", Duration::from_secs(15))?;
        Ok(session)
    }

    fn env_for(dir: &Path, display: &str, bus: &str) -> Vec<(String, OsString)> {
        vec![
            ("DISPLAY".into(), display.into()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), bus.into()),
            ("XDG_DATA_HOME".into(), dir.join("data").into()),
            ("XDG_CACHE_HOME".into(), dir.join("cache").into()),
            ("XDG_CONFIG_HOME".into(), dir.join("config").into()),
            ("XDG_RUNTIME_DIR".into(), dir.join("runtime").into()),
            ("HOME".into(), dir.join("home").into()),
            // No accessibility bus: GTK would otherwise start at-spi daemons that outlive the test.
            ("NO_AT_BRIDGE".into(), "1".into()),
            ("GDK_BACKEND".into(), "x11".into()),
        ]
    }

    /// The environment a program needs to live in this session.
    pub fn env(&self) -> Vec<(String, OsString)> {
        Self::env_for(&self.dir, &self.display, &self.bus_address)
    }

    /// The session's scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wait_for_bus_name(&self, name: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let out = Command::new("dbus-send")
                .envs(self.env())
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    &format!("string:{name}"),
                ])
                .output()?;
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{name} did not appear on the session bus within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(unix)]
fn set_mode_700(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// tauri-driver (and the WebKitWebDriver it starts), listening on a free loopback port.
#[derive(Debug)]
pub struct TauriDriver {
    port: u16,
    _process: Guarded,
}

impl TauriDriver {
    /// Starts tauri-driver inside `session`, with `extra_env` passed on to the app it launches.
    pub fn start(session: &HeadlessSession, extra_env: &[(&str, OsString)]) -> Result<Self> {
        let port = free_port()?;
        let native_port = free_port()?;
        let log = std::fs::File::create(session.dir().join("tauri-driver.log"))?;
        let mut process = Guarded::spawn(
            "tauri-driver",
            Command::new(tauri_driver_path()?)
                .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
                .envs(session.env())
                .envs(extra_env.iter().map(|(k, v)| (*k, v)))
                .stdout(log.try_clone()?)
                .stderr(log),
        )?;
        // IMPORTANT: tauri-driver accepts connections before WebKitWebDriver is ready; only `"ready": true` on
        // /status means a session can be created.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            process.ensure_running()?;
            if http_get(port, "/status").is_ok_and(|body| body.contains("\"ready\":true")) {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "tauri-driver was not ready within 30 s (see {})",
                    session.dir().join("tauri-driver.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            port,
            _process: process,
        })
    }

    /// Opens a WebDriver session that launches `application`.
    pub async fn connect(&self, application: &Path) -> Result<fantoccini::Client> {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": application }),
        );
        caps.insert("browserName".into(), "wry".into());
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .context("could not open a WebDriver session with the app")?;
        Ok(client)
    }
}

fn tauri_driver_path() -> Result<PathBuf> {
    let from_cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin/tauri-driver"));
    if let Some(path) = from_cargo.filter(|p| p.is_file()) {
        return Ok(path);
    }
    let out = Command::new("sh").args(["-c", "command -v tauri-driver"]).output()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if path.is_empty() {
        bail!("tauri-driver is not installed: `cargo install tauri-driver --version 2.1.0 --locked`");
    }
    Ok(path.into())
}

/// A minimal HTTP/1.0 GET on loopback, for health checks.
pub fn http_get(port: u16, path: &str) -> Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    Ok(body.replace([' ', '\n'], ""))
}

/// Where tests save screenshots for people to look at.
pub fn screenshot_dir() -> Result<PathBuf> {
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
