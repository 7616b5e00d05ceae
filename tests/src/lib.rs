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

pub mod atproto;
pub mod cli;
pub mod desktop;
pub mod hostile;
pub mod peer;
pub mod platforms;
pub mod seed;
pub mod window;

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

    /// The process id (for reading its CPU time in `/proc`).
    pub fn id(&self) -> u32 {
        self.child.id()
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

/// How a [`HeadlessSession`]'s keyring starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyringMode {
    /// No keyring at all: the bus has no Secret Service.
    None,
    /// gnome-keyring, its login keyring unlocked with [`KEYRING_PASSWORD`].
    Unlocked,
    /// gnome-keyring without the password: the login keyring (created earlier in the same directory) is locked.
    Locked,
}

/// What a [`HeadlessSession`] provides.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Start an X display (Xvfb) for windows.
    pub display: bool,
    /// Whether and how to start gnome-keyring.
    pub keyring: KeyringMode,
}

impl Default for SessionOptions {
    /// A display and an unlocked keyring: what the app needs.
    fn default() -> Self {
        Self {
            display: true,
            keyring: KeyringMode::Unlocked,
        }
    }
}

/// A private desktop session: an X display (Xvfb), a D-Bus session bus and gnome-keyring providing the real
/// Secret Service, all confined to one scratch directory. A new session on the same directory finds the same
/// keyring files again (as after a logout and login).
///
/// The bus activates nothing on demand: a service exists only if the session started it, so "no Secret Service"
/// stays true without a keyring, and no stray daemon outlives a test.
#[derive(Debug)]
pub struct HeadlessSession {
    dir: PathBuf,
    display: Option<String>,
    bus_address: String,
    // Dropped in reverse order of start: keyring, bus, display.
    _keyring: Option<Guarded>,
    _bus: Guarded,
    _xvfb: Option<Guarded>,
}

/// The password of the throwaway login keyring.
pub const KEYRING_PASSWORD: &str = "tokenkeep-e2e";

/// A session bus that activates nothing (no `<servicedir>`), allows everything to its own user.
const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=@DIR@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

impl HeadlessSession {
    /// Starts Xvfb, a session bus and an unlocked gnome-keyring under `dir`.
    pub fn start(dir: &Path) -> Result<Self> {
        Self::start_with(dir, SessionOptions::default())
    }

    /// Starts a session bus under `dir` and, as `options` say, Xvfb and gnome-keyring.
    pub fn start_with(dir: &Path, options: SessionOptions) -> Result<Self> {
        for sub in ["data", "cache", "config", "runtime", "home", "tk"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        set_mode_700(&dir.join("runtime"))?;

        let (xvfb, display) = if options.display {
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
            (Some(xvfb), Some(display))
        } else {
            (None, None)
        };

        let config = dir.join("bus.conf");
        let runtime = dir.join("runtime");
        let runtime = runtime
            .to_str()
            .ok_or_else(|| anyhow!("{} is not UTF-8", runtime.display()))?;
        std::fs::write(&config, BUS_CONFIG.replace("@DIR@", runtime))?;
        let mut bus = Guarded::spawn(
            "dbus-daemon",
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", config.display()))
                .args(["--nofork", "--nopidfile", "--print-address=1"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .context("apt install dbus")?;
        let bus_address = first_line(bus.child(), "dbus-daemon", Duration::from_secs(10))?;

        let keyring = match options.keyring {
            KeyringMode::None => None,
            mode => Some(Self::spawn_keyring(dir, display.as_deref(), &bus_address, mode)?),
        };
        let session = Self {
            dir: dir.to_path_buf(),
            display,
            bus_address,
            _keyring: keyring,
            _bus: bus,
            _xvfb: xvfb,
        };
        if options.keyring != KeyringMode::None {
            session.wait_for_bus_name("org.freedesktop.secrets", Duration::from_secs(20))?;
        }
        Ok(session)
    }

    /// Starts gnome-keyring on the session's bus (`--replace`: a running one gives way), unlocked or locked.
    fn spawn_keyring(dir: &Path, display: Option<&str>, bus: &str, mode: KeyringMode) -> Result<Guarded> {
        let mut args = vec!["--components=secrets", "--foreground", "--replace"];
        if mode == KeyringMode::Unlocked {
            args.push("--unlock");
        }
        let mut session_env = Self::env_for(dir, display, bus);
        let mut keyring = Guarded::spawn(
            "gnome-keyring-daemon",
            Command::new("gnome-keyring-daemon")
                .args(args)
                .env_clear()
                .envs(session_env.drain(..))
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .context("apt install gnome-keyring")?;
        let mut stdin = keyring
            .child()
            .stdin
            .take()
            .ok_or_else(|| anyhow!("keyring stdin not captured"))?;
        if mode == KeyringMode::Unlocked {
            stdin.write_all(KEYRING_PASSWORD.as_bytes())?;
        }
        drop(stdin); // closing stdin ends the password
        Ok(keyring)
    }

    /// Starts the keyring now, in a session that had none — or replaces the running one (a locked keyring
    /// replaced by an unlocked one is, to its clients, a keyring that was unlocked) — and waits until it answers.
    pub fn start_keyring(&mut self, mode: KeyringMode) -> Result<()> {
        anyhow::ensure!(mode != KeyringMode::None, "start_keyring needs Unlocked or Locked");
        // The old daemon goes first (TERM, and its name leaves the bus), so the name that appears is the new one's.
        drop(self._keyring.take());
        self._keyring = Some(Self::spawn_keyring(
            &self.dir,
            self.display.as_deref(),
            &self.bus_address,
            mode,
        )?);
        self.wait_for_bus_name("org.freedesktop.secrets", Duration::from_secs(20))
    }

    fn env_for(dir: &Path, display: Option<&str>, bus: &str) -> Vec<(String, OsString)> {
        let mut env: Vec<(String, OsString)> = vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), bus.into()),
            ("XDG_DATA_HOME".into(), dir.join("data").into()),
            ("XDG_CACHE_HOME".into(), dir.join("cache").into()),
            ("XDG_CONFIG_HOME".into(), dir.join("config").into()),
            ("XDG_RUNTIME_DIR".into(), dir.join("runtime").into()),
            ("HOME".into(), dir.join("home").into()),
            // No accessibility bus: GTK would otherwise start at-spi daemons that outlive the test.
            ("NO_AT_BRIDGE".into(), "1".into()),
            ("GDK_BACKEND".into(), "x11".into()),
        ];
        if let Some(display) = display {
            env.push(("DISPLAY".into(), display.into()));
        }
        env
    }

    /// The environment a program needs to live in this session.
    pub fn env(&self) -> Vec<(String, OsString)> {
        Self::env_for(&self.dir, self.display.as_deref(), &self.bus_address)
    }

    /// `program` to run inside this session: the session's environment, `TOKENKEEP_HOME` in its `tk/`, and
    /// nothing of the test process's bus or master key.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("DISPLAY")
            .env_remove("TOKENKEEP_MASTER_KEY")
            .envs(self.env())
            .env("TOKENKEEP_HOME", self.dir.join("tk"));
        command
    }

    /// The session's scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `secret-tool search --all service tokenkeep`: the attribute lines of every Tokenkeep item.
    pub fn keyring_items(&self) -> Result<String> {
        let out = self
            .command("secret-tool")
            .args(["search", "--all", "service", "tokenkeep"])
            .stdin(Stdio::null())
            .output()
            .context("apt install libsecret-tools")?;
        // secret-tool prints attributes on stderr and values on stdout; keep both.
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// The secret of Tokenkeep's keyring item for `user` (`dev/master/<key id>`).
    pub fn keyring_lookup(&self, user: &str) -> Result<String> {
        let out = self
            .command("secret-tool")
            .args(["lookup", "service", "tokenkeep", "username", user])
            .stdin(Stdio::null())
            .output()?;
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Replaces the secret of Tokenkeep's keyring item for `user` by hand, as another program could.
    pub fn keyring_store(&self, user: &str, value: &str) -> Result<()> {
        let mut child = self
            .command("secret-tool")
            .args([
                "store",
                "--label=replaced by hand",
                "service",
                "tokenkeep",
                "username",
                user,
            ])
            .stdin(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("secret-tool stdin not captured"))?
            .write_all(value.as_bytes())?;
        if !child.wait()?.success() {
            bail!("secret-tool store failed");
        }
        Ok(())
    }

    /// Deletes Tokenkeep's keyring item for `user`.
    pub fn keyring_clear(&self, user: &str) -> Result<()> {
        let status = self
            .command("secret-tool")
            .args(["clear", "service", "tokenkeep", "username", user])
            .status()?;
        if !status.success() {
            bail!("secret-tool clear failed");
        }
        Ok(())
    }

    /// Asks the session bus `method` (`NameHasOwner string:…`, `ListNames`) and returns the printed reply.
    fn ask_bus(&self, method: &str, arg: Option<&str>) -> Result<String> {
        let out = Command::new("dbus-send")
            .envs(self.env())
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                &format!("org.freedesktop.DBus.{method}"),
            ])
            .args(arg)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits (at most `limit`) until `done` holds, checking every 100 ms; `what` names it in the error.
    fn poll_bus(&self, limit: Duration, what: &str, done: impl Fn(&Self) -> Result<bool>) -> Result<()> {
        let deadline = Instant::now() + limit;
        while !done(self)? {
            if Instant::now() > deadline {
                bail!("{what} within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Waits (at most `limit`) until no name on the session bus contains `part` — e.g. until an app that quit has
    /// let go of its single-instance name, so that the next launch is not forwarded to it as it dies.
    pub fn wait_for_bus_name_gone(&self, part: &str, limit: Duration) -> Result<()> {
        let what = format!("a bus name containing {part:?} did not go");
        self.poll_bus(limit, &what, |s| {
            let names = s.ask_bus("ListNames", None)?;
            Ok(names.contains("array") && !names.contains(part))
        })
    }

    fn wait_for_bus_name(&self, name: &str, limit: Duration) -> Result<()> {
        let what = format!("{name} did not appear on the session bus");
        let arg = format!("string:{name}");
        self.poll_bus(limit, &what, |s| {
            Ok(s.ask_bus("NameHasOwner", Some(&arg))?.contains("boolean true"))
        })
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
