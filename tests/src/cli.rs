//! The built `tokenkeep` command line, driven as a user would: one private home per test, a headless master key
//! (or a [`HeadlessSession`]'s keyring), the login driver as the browser, and time-limited runs.
//!
//! Every run starts the CLI in its own process group, with a cleared environment, so nothing from the developer's
//! shell (a real `TOKENKEEP_HOME`, `RUST_LOG`, a keyring session) reaches it. The browser the CLI starts (the login
//! driver and its Chromium) inherits that group and the CLI's stderr, so its log shows up in the run's stderr and
//! it is stopped together with the CLI.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use tokenkeep_core::clock::SystemClock;
use tokenkeep_core::keys::{KeySource, parse_env_key};
use tokenkeep_core::profile::{Profile, ProfilePaths};
use tokenkeep_core::store::Vault;

use crate::peer::tokenkeep_browser;
use crate::{HeadlessSession, built_binary, scratch_dir};

/// The profile every test uses (any name works; a fixed one keeps paths predictable).
pub const PROFILE: &str = "e2e";

/// How long a run may take unless the caller says otherwise: a browser sign-in takes a few seconds.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// After the CLI exits, how long the browser it started may keep its stderr open before the group is killed.
const PIPE_GRACE: Duration = Duration::from_secs(15);

/// Which master key the CLI uses. Its `Debug` never shows the key.
#[derive(Clone)]
enum KeyMode {
    /// `TOKENKEEP_MASTER_KEY` (standard base64 of 32 random bytes).
    Headless(String),
    /// The keyring of a private session (its environment is in `Tokenkeep::env`).
    Keyring,
}

impl std::fmt::Debug for KeyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Headless(_) => "Headless(<redacted>)",
            Self::Keyring => "Keyring",
        })
    }
}

/// One Tokenkeep installation for one test: a private home, a profile, a key and an environment.
#[derive(Debug, Clone)]
pub struct Tokenkeep {
    binary: PathBuf,
    home: PathBuf,
    key: KeyMode,
    env: Vec<(String, OsString)>,
}

impl Tokenkeep {
    /// A headless installation (`TOKENKEEP_MASTER_KEY`, no keyring) in a fresh scratch directory named after
    /// `test`. `TOKENKEEP_BROWSER` is the login driver, so `connect` without `--no-browser` signs in by itself
    /// (as `PEER_LOGIN`, default alice, doing `PEER_ACTION`, default approve: see [`Tokenkeep::set_env`]).
    pub fn headless(test: &str) -> Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| anyhow!("no randomness: {e}"))?;
        let dir = scratch_dir(test)?;
        let key = STANDARD.encode(key);
        let home = dir.join("tokenkeep-home");
        let mut env = Self::base_env(&home)?;
        // A HOME of its own for the CLI and the browser it starts.
        env.push(("HOME".into(), dir.join("user-home").into()));
        std::fs::create_dir_all(dir.join("user-home"))?;
        Ok(Self {
            binary: built_binary("tokenkeep")?,
            home,
            key: KeyMode::Headless(key),
            env,
        })
    }

    /// The `tokenkeep` binary this installation runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Runs `binary` instead of the debug build (a benchmark measures the release build).
    pub fn use_binary(&mut self, binary: PathBuf) {
        self.binary = binary;
    }

    /// An installation that lives in `session` and keeps its master key in that session's gnome-keyring
    /// (no `TOKENKEEP_MASTER_KEY`).
    pub fn in_session(session: &HeadlessSession) -> Result<Self> {
        let home = session.dir().join("tokenkeep-home");
        let mut env = Self::base_env(&home)?;
        env.extend(session.env());
        Ok(Self {
            binary: built_binary("tokenkeep")?,
            home,
            key: KeyMode::Keyring,
            env,
        })
    }

    fn base_env(home: &Path) -> Result<Vec<(String, OsString)>> {
        Ok(vec![
            // The login driver is `node …`, found on PATH.
            ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
            ("TOKENKEEP_HOME".into(), home.into()),
            ("TOKENKEEP_PROFILE".into(), PROFILE.into()),
            ("TOKENKEEP_BROWSER".into(), tokenkeep_browser()?.into()),
        ])
    }

    /// Sets (or replaces) an environment variable for later runs, e.g. `PEER_LOGIN` for the login driver.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.into()));
    }

    /// The environment every run gets (after a cleared one), the headless key aside.
    pub fn env(&self) -> &[(String, OsString)] {
        &self.env
    }

    /// The profile's directory, `<TOKENKEEP_HOME>/<profile>`.
    pub fn profile_dir(&self) -> PathBuf {
        self.home.join(PROFILE)
    }

    /// The sealed store.
    pub fn store_dir(&self) -> PathBuf {
        self.profile_dir().join("store")
    }

    /// The CLI's log file.
    pub fn log_file(&self) -> PathBuf {
        self.profile_dir().join("logs").join("tokenkeep.log")
    }

    /// The profile's configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.profile_dir().join("config.toml")
    }

    /// Opens the vault with the headless key, as the test itself (only while no CLI runs: sled admits one process).
    pub fn open_vault(&self) -> Result<Vault> {
        let KeyMode::Headless(key) = &self.key else {
            bail!("this installation keeps its key in a session keyring; only headless vaults open in-test");
        };
        let paths = ProfilePaths::resolve(Profile::parse(PROFILE)?, Some(self.home.clone()))?;
        let key = parse_env_key(key)?;
        Ok(Vault::open(
            &paths,
            KeySource::Headless(key),
            Arc::new(SystemClock),
            "test",
        )?)
    }

    /// The environment that makes the app open this installation's store (its home, the test profile and, when
    /// headless, its key): for [`crate::TauriDriver::start`].
    pub fn app_env(&self) -> Vec<(&'static str, OsString)> {
        let mut env = vec![
            ("TOKENKEEP_HOME", self.home.clone().into_os_string()),
            ("TOKENKEEP_PROFILE", PROFILE.into()),
        ];
        if let KeyMode::Headless(key) = &self.key {
            env.push((tokenkeep_core::keys::ENV_MASTER_KEY, key.into()));
        }
        env
    }

    /// The headless master key (base64), for tests that decode what Tokenkeep stored on their own.
    pub fn master_key(&self) -> Option<&str> {
        match &self.key {
            KeyMode::Headless(key) => Some(key),
            KeyMode::Keyring => None,
        }
    }

    /// The command `tokenkeep ARGS` with this installation's environment, not yet started (for callers that want
    /// its raw output).
    pub fn command(&self, args: &[&str]) -> Command {
        self.wrapped_command(&[], args)
    }

    /// `wrapper… tokenkeep ARGS` (e.g. `unshare --net`), with this installation's environment.
    fn wrapped_command(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.home.parent().unwrap_or(&self.home));
        if let KeyMode::Headless(key) = &self.key {
            command.env("TOKENKEEP_MASTER_KEY", key);
        }
        command
    }

    /// Runs `tokenkeep ARGS` to completion with `stdin` (or none), within [`DEFAULT_LIMIT`].
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<CliOutput> {
        self.run_within(args, stdin, DEFAULT_LIMIT)
    }

    /// Runs `tokenkeep ARGS` to completion with `stdin`; kills its process group and fails after `limit`.
    pub fn run_within(&self, args: &[&str], stdin: Option<&str>, limit: Duration) -> Result<CliOutput> {
        let mut process = CliProcess::start(self.command(args), args, stdin)?;
        process.finish(limit)
    }

    /// Runs `wrapper… tokenkeep ARGS` to completion (no stdin) within [`DEFAULT_LIMIT`].
    pub fn run_wrapped(&self, wrapper: &[&str], args: &[&str]) -> Result<CliOutput> {
        let mut process = CliProcess::start(self.wrapped_command(wrapper, args), args, None)?;
        process.finish(DEFAULT_LIMIT)
    }

    /// Runs `tokenkeep ARGS` with stdout a pipe whose reading end is already closed (`tokenkeep list | :`, where
    /// `:` has exited), so every write to stdout fails with EPIPE. Returns how it ended and its stderr.
    pub fn run_into_closed_pipe(&self, args: &[&str]) -> Result<(ExitStatus, String)> {
        let (reader, writer) = std::io::pipe()?;
        drop(reader);
        let mut command = self.command(args);
        let output = command
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .process_group(0)
            .output()
            .context("could not start the built tokenkeep binary")?;
        Ok((output.status, String::from_utf8_lossy(&output.stderr).into_owned()))
    }

    /// Starts `tokenkeep ARGS` without stdin, for the cases that interact with it while it runs.
    pub fn spawn(&self, args: &[&str]) -> Result<CliProcess> {
        CliProcess::start(self.command(args), args, None)
    }

    /// Starts `tokenkeep ARGS` with stdin kept open, for input it asks for later ([`CliProcess::send_line`]).
    pub fn spawn_interactive(&self, args: &[&str]) -> Result<CliProcess> {
        CliProcess::start_with(self.command(args), args, Input::Later)
    }

    /// Runs `tokenkeep ARGS` and fails (with its stderr) unless it exits 0.
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> Result<CliOutput> {
        let output = self.run(args, stdin)?;
        output.ensure_code(0)?;
        Ok(output)
    }

    /// `tokenkeep list --json`, parsed.
    pub fn list_json(&self) -> Result<Vec<serde_json::Value>> {
        let output = self.ok(&["list", "--json"], None)?;
        serde_json::from_str(&output.stdout).with_context(|| format!("`list --json` printed {:?}", output.stdout))
    }
}

/// What a finished run left behind.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// The command line after `tokenkeep`, for messages.
    pub args: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it (and the browser it started) printed on stderr.
    pub stderr: String,
    /// From start to exit.
    pub took: Duration,
}

impl CliOutput {
    /// Fails, showing stdout and stderr, unless the exit code is `code`.
    pub fn ensure_code(&self, code: i32) -> Result<()> {
        ensure!(
            self.status.code() == Some(code),
            "`tokenkeep {}` ended with {} (expected exit code {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.status,
            self.stdout,
            self.stderr
        );
        Ok(())
    }
}

/// A running `tokenkeep` in its own process group. Dropping it stops the group (TERM, then KILL).
#[derive(Debug)]
pub struct CliProcess {
    args: String,
    pid: u32,
    started: Instant,
    exited: Receiver<std::io::Result<ExitStatus>>,
    status: Option<ExitStatus>,
    stdout: Option<JoinHandle<String>>,
    stderr: Arc<Mutex<String>>,
    stderr_lines: Receiver<String>,
    /// Closed (`Disconnected`) when both pipes have reached end of file.
    pipes_closed: Receiver<()>,
    /// Standard input, when it is written while the command runs.
    stdin: Option<std::process::ChildStdin>,
}

/// What a started command gets on stdin.
enum Input<'a> {
    /// Nothing (`/dev/null`).
    None,
    /// This text, then end of file.
    Now(&'a str),
    /// A pipe kept open for [`CliProcess::send_line`].
    Later,
}

impl CliProcess {
    fn start(command: Command, args: &[&str], stdin: Option<&str>) -> Result<Self> {
        Self::start_with(command, args, stdin.map_or(Input::None, Input::Now))
    }

    /// Writes `line` and a newline to the command's stdin (started with [`Tokenkeep::spawn_interactive`]).
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let pipe = self.stdin.as_mut().ok_or_else(|| anyhow!("stdin is not open"))?;
        pipe.write_all(line.as_bytes())?;
        pipe.write_all(b"\n")?;
        pipe.flush()?;
        Ok(())
    }

    fn start_with(mut command: Command, args: &[&str], input: Input<'_>) -> Result<Self> {
        let mut child: Child = command
            .stdin(if matches!(input, Input::None) {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .context("could not start the built tokenkeep binary")?;
        let started = Instant::now();
        let mut kept_stdin = None;
        match input {
            Input::Now(text) => {
                let mut pipe = child.stdin.take().ok_or_else(|| anyhow!("stdin not captured"))?;
                pipe.write_all(text.as_bytes())?;
            } // closing stdin ends the input
            Input::Later => kept_stdin = child.stdin.take(),
            Input::None => {}
        }
        let (pipes_open, pipes_closed) = mpsc::channel::<()>();
        let mut out = child.stdout.take().ok_or_else(|| anyhow!("stdout not captured"))?;
        let out_guard = pipes_open.clone();
        let stdout = std::thread::spawn(move || {
            let _open = out_guard;
            let mut text = Vec::new();
            let _ = out.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        });
        let err = child.stderr.take().ok_or_else(|| anyhow!("stderr not captured"))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let (line_tx, stderr_lines) = mpsc::channel();
        {
            let stderr = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let _open = pipes_open;
                let mut reader = BufReader::new(err);
                let mut line = Vec::new();
                while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    stderr.lock().unwrap_or_else(PoisonError::into_inner).push_str(&text);
                    let _ = line_tx.send(text.trim_end_matches(['\r', '\n']).to_owned());
                    line.clear();
                }
            });
        }
        let pid = child.id();
        let (exit_tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exit_tx.send(child.wait());
        });
        Ok(Self {
            args: args.join(" "),
            pid,
            started,
            exited,
            status: None,
            stdout: Some(stdout),
            stderr,
            stderr_lines,
            pipes_closed,
            stdin: kept_stdin,
        })
    }

    /// Sends SIGTERM to the command (its process group), as a service manager stops it.
    pub fn terminate(&self) {
        self.signal_group("-TERM");
    }

    /// Everything printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Waits (at most `limit`) for a stderr line for which `wanted` is true and returns it. Lines read while
    /// waiting stay in the full stderr.
    pub fn wait_for_stderr_line(&mut self, limit: Duration, wanted: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            match self
                .stderr_lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "`tokenkeep {}` printed no such line within {limit:?}; stderr so far:\n{}",
                        self.args,
                        self.stderr_so_far()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!(
                        "`tokenkeep {}` closed stderr without printing such a line:\n{}",
                        self.args,
                        self.stderr_so_far()
                    )
                }
            }
        }
    }

    /// The exit status if the process has exited by now (without waiting).
    pub fn exited_yet(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            match self.exited.try_recv() {
                Ok(status) => self.status = Some(status?),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => bail!("lost track of `tokenkeep {}`", self.args),
            }
        }
        Ok(self.status)
    }

    /// Waits (at most `limit` from the start) for the process to exit and for its output. On time-out the whole
    /// group is killed and this fails with what it printed.
    pub fn finish(&mut self, limit: Duration) -> Result<CliOutput> {
        let status = match self.status {
            Some(status) => status,
            None => match self.exited.recv_timeout(limit.saturating_sub(self.started.elapsed())) {
                Ok(status) => {
                    let status = status?;
                    self.status = Some(status);
                    status
                }
                Err(_) => {
                    self.signal_group("-KILL");
                    bail!(
                        "`tokenkeep {}` did not finish within {limit:?} (killed); stderr:\n{}",
                        self.args,
                        self.stderr_so_far()
                    );
                }
            },
        };
        let took = self.started.elapsed();
        // IMPORTANT: the browser the CLI started shares its stderr and may still be closing; wait for the pipes
        // to close rather than for some fixed time, and stop the group if they stay open.
        if let Err(RecvTimeoutError::Timeout) = self.pipes_closed.recv_timeout(PIPE_GRACE) {
            self.signal_group("-KILL");
        }
        let stdout = self
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the output of `tokenkeep {}` was already collected", self.args))?
            .join()
            .map_err(|_| anyhow!("the stdout reader panicked"))?;
        Ok(CliOutput {
            args: self.args.clone(),
            status,
            stdout,
            stderr: self.stderr_so_far(),
            took,
        })
    }

    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.pid)])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for CliProcess {
    fn drop(&mut self) {
        if matches!(self.exited_yet(), Ok(Some(_))) {
            // The CLI is gone; a browser it started may remain in the group.
            self.signal_group("-KILL");
            return;
        }
        self.signal_group("-TERM");
        if self.exited.recv_timeout(Duration::from_secs(3)).is_err() {
            self.signal_group("-KILL");
            let _ = self.exited.recv_timeout(Duration::from_secs(3));
        }
        self.signal_group("-KILL");
    }
}

/// The connection id `tokenkeep connect` printed (`… (connection <hex>).`).
pub fn connected_id(output: &CliOutput) -> Result<String> {
    output
        .stdout
        .rsplit_once("(connection ")
        .and_then(|(_, rest)| rest.strip_suffix(").\n"))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("unexpected connect output {:?}", output.stdout))
}

/// The Python interpreter with pyca/cryptography: `target/py` (made by `cargo xtask test`), else `python3`.
pub fn python() -> Result<PathBuf> {
    let venv = crate::target_dir().join("py/bin/python3");
    let python = if venv.is_file() { venv } else { PathBuf::from("python3") };
    let probe = Command::new(&python).args(["-c", "import cryptography"]).output()?;
    ensure!(
        probe.status.success(),
        "{} cannot import cryptography: run `cargo xtask test` (it creates target/py from tests/py/requirements.txt)",
        python.display()
    );
    Ok(python)
}

/// Runs the independent decoder (`tests/py/decode_envelopes.py`, from docs/FORMAT.md alone) on what `export
/// --envelopes` printed, with the master key, and returns its JSON lines.
pub fn decode_envelopes(export: &str, master_key: &str) -> Result<Vec<serde_json::Value>> {
    let mut child = Command::new(python()?)
        .arg(crate::workspace_root().join("tests/py/decode_envelopes.py"))
        .env("TOKENKEEP_MASTER_KEY", master_key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(child.stdin.as_mut().context("stdin")?, export.as_bytes())?;
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8(out.stdout)?;
    ensure!(
        out.status.success(),
        "the decoder failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).map_err(Into::into))
        .collect()
}
