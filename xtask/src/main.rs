//! Project chores behind the README's two commands.
//!
//! * `cargo xtask run`  — installs missing system packages, builds the UI and the app, launches the app.
//! * `cargo xtask test` — installs what the tests need, then fmt, clippy, docs, UI tests and every Rust test,
//!   including the headless end-to-end suite (which starts its own Xvfb, D-Bus session and keyring).
//! * `cargo xtask package` — builds the release `.deb` (Tauri's bundler) and checks its metadata and contents.
//! * `cargo xtask icons` — regenerates `icons/` from `icons/master.svg`.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a terminal tool: printing is its job

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Debian/Ubuntu packages needed to build and run the app.
const BUILD_PACKAGES: &[&str] = &[
    "build-essential",
    "pkg-config",
    "libwebkit2gtk-4.1-dev",
    "libssl-dev",
    // The tray icon (a StatusNotifierItem through libayatana-appindicator).
    "libayatana-appindicator3-dev",
];
/// Extra packages the tests need: a virtual display, WebDriver for WebKitGTK, a private D-Bus session with the
/// real Secret Service keyring, and Chromium for the browser-driven OAuth tests.
const TEST_PACKAGES: &[&str] = &[
    "xvfb",
    "xauth",
    "webkit2gtk-driver",
    "dbus",
    "gnome-keyring",
    "libsecret-tools",
    "chromium",
    // The independent envelope decoder (tests/py) runs in a venv; `unshare` (util-linux) isolates the network.
    "python3-venv",
    "util-linux",
    // A day passes for the platform dialect tests (Instagram and Threads refresh only day-old tokens).
    "faketime",
    // The durability test watches the store's syncs from outside.
    "strace",
    // The tray tests play the panel: a StatusNotifier watcher and a dbusmenu reader on the session bus.
    "python3-dbus",
    "python3-gi",
];
/// tauri-driver must match Tauri 2: an unpinned install picks a 3.0 alpha.
const TAURI_DRIVER_VERSION: &str = "2.1.0";
/// Node.js major version the UI toolchain (Vite) needs at least.
const MIN_NODE_MAJOR: u32 = 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run_app(&args[1..]),
        Some("test") => run_tests(),
        Some("icons") => regenerate_icons(),
        Some("package") => package().map(|_| ()),
        Some("tamper") if args.get(1).map(String::as_str) == Some("--all") => tamper_all(),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  run [-- APP ARGS]  build and launch the app (installs what it needs)\n  \
                 test               run every check and test (what CI runs)\n  package            build the \
                 release .deb and check it\n  icons              regenerate icons/ \
                 from icons/master.svg\n  tamper --all       flip every byte of every store file, one at a time, and \
                 report the counts (slow; CI runs a sample)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nxtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// Command 1: build everything and open the window.
fn run_app(app_args: &[String]) -> Result<()> {
    std::env::set_current_dir(root())?;
    ensure_system_packages(BUILD_PACKAGES)?;
    ensure_node()?;
    build_ui()?;
    step(
        "install the demo provider's packages (tests/js)",
        npm().args(["ci", "--no-audit", "--no-fund"]).current_dir("tests/js"),
    )?;
    step("build the app", cargo().args(["build", "--workspace"]))?;
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        bail!(
            "the app is built (target/debug/tokenkeep-app) but there is no graphical display to open it on. \
             Run this from a desktop session, or try it headless with `xvfb-run target/debug/tokenkeep-app`."
        );
    }
    let mut demo = DemoProvider::start()?;
    let offered = step(
        "offer the demo provider to the profile",
        Command::new(root().join("target/debug/tokenkeep")).args([
            "providers",
            "add",
            "demo",
            "--issuer",
            &demo.issuer,
        ]),
    );
    if let Err(error) = offered {
        demo.stop();
        return Err(error);
    }
    println!(
        "\n==> Demo (local) is a test OAuth server on this machine at {issuer}; any user name and password sign in.\n    \
         It lets you try Tokenkeep without registering an app anywhere, and forgets its grants when it stops.\n    \
         Connect an account in the window: Connect an account → Demo (local).",
        issuer = demo.issuer
    );
    println!(
        "\n==> launching Tokenkeep (profile: {})",
        std::env::var("TOKENKEEP_PROFILE").unwrap_or("dev".into())
    );
    let status = Command::new(root().join("target/debug/tokenkeep-app"))
        .args(app_args)
        .status();
    demo.stop();
    let status = status?;
    if !status.success() {
        bail!("the app exited with {status}");
    }
    Ok(())
}

/// The local demo OAuth provider (the test peer, `tests/js/peer.mjs`), running while the app runs.
struct DemoProvider {
    child: std::process::Child,
    issuer: String,
}

impl DemoProvider {
    /// A fixed port first, so the demo issuer — and connections made against it — stay the same across runs.
    const PREFERRED_PORT: u16 = 47800;

    fn start() -> Result<Self> {
        match Self::start_on(Self::PREFERRED_PORT) {
            Ok(demo) => Ok(demo),
            Err(_) => Self::start_on(0).context("could not start the demo provider"),
        }
    }

    fn start_on(port: u16) -> Result<Self> {
        use std::io::BufRead as _;
        let mut child = Command::new("node")
            .args(["tests/js/peer.mjs", "--config", &format!("{{\"port\":{port}}}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("could not start node")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line));
        });
        // The peer prints one JSON line, {"issuer":"http://127.0.0.1:PORT","port":PORT}, once it listens.
        let issuer = match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(Ok(line)) => line
                .split('"')
                .skip_while(|part| *part != "issuer")
                .nth(2)
                .map(str::to_owned),
            _ => None,
        };
        match issuer {
            Some(issuer) => Ok(Self { child, issuer }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the demo provider did not start on port {port}")
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Command 2: everything CI checks, in the order that fails fastest.
fn run_tests() -> Result<()> {
    let started = Instant::now();
    std::env::set_current_dir(root())?;
    let mut packages = BUILD_PACKAGES.to_vec();
    packages.extend_from_slice(TEST_PACKAGES);
    ensure_system_packages(&packages)?;
    ensure_node()?;
    ensure_tauri_driver()?;
    if !Path::new("target/py/bin/python3").exists() {
        step(
            "create the Python environment for the independent decoder (target/py)",
            Command::new("python3").args(["-m", "venv", "target/py"]),
        )?;
    }
    step(
        "install the Python test packages (tests/py/requirements.txt)",
        Command::new("target/py/bin/python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            "tests/py/requirements.txt",
        ]),
    )?;
    step(
        "install test JS packages (tests/js)",
        npm().args(["ci", "--no-audit", "--no-fund"]).current_dir("tests/js"),
    )?;
    build_ui()?;
    step("UI unit tests (vitest)", npm().args(["test"]).current_dir("ui"))?;
    step("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    step(
        "clippy",
        cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    step(
        "rustdoc",
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--document-private-items"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // The end-to-end tests drive the built binaries: build them first, with the same feature set as the tests.
    step("build binaries", cargo().args(["build", "--workspace"]))?;
    if have("cargo-nextest") {
        step(
            "unit, integration and end-to-end tests (nextest)",
            cargo().args(["nextest", "run", "--workspace", "--no-fail-fast", "--profile", "ci"]),
        )?;
    } else {
        println!("(cargo-nextest not found: falling back to cargo test)");
        step(
            "unit, integration and end-to-end tests",
            // The installed-package test runs after the package is installed, below.
            cargo().args([
                "test",
                "--workspace",
                "--no-fail-fast",
                "--",
                "--skip",
                "installed_package",
            ]),
        )?;
    }
    package_test()?;
    println!("\nAll checks passed in {:.0?}.", started.elapsed());
    Ok(())
}

/// Builds the `.deb`, installs it (as root only: it puts binaries in /usr/bin) and runs the installed-package
/// test against it; removes it again if it was not installed before.
fn package_test() -> Result<()> {
    let deb = package()?;
    if !is_root() {
        println!(
            "\n==> not root: the .deb was built and checked, but not installed; the installed-package test \
             (tests/package) runs as root, as in CI"
        );
        return Ok(());
    }
    let was_installed = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", DEB_PACKAGE])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"));
    step("install the .deb", Command::new("dpkg").arg("-i").arg(&deb))?;
    let tested = step(
        "the installed package (tests/package)",
        cargo().args([
            "nextest",
            "run",
            "--profile",
            "ci",
            "-p",
            "tokenkeep-e2e",
            "--test",
            "package",
            "--ignore-default-filter",
        ]),
    );
    if !was_installed {
        step(
            "remove the test install",
            Command::new("dpkg").args(["-r", DEB_PACKAGE]),
        )?;
    }
    tested
}

/// The package name Tauri's bundler gives the `.deb` (from `productName`).
const DEB_PACKAGE: &str = "tokenkeep";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `cargo xtask package`: the release binaries, then Tauri's bundler (the `@tauri-apps/cli` npm package pinned in
/// `ui/`, which works offline) makes the `.deb` from `tauri.conf.json`; then its metadata and contents are
/// checked. Returns the `.deb`'s path.
fn package() -> Result<PathBuf> {
    std::env::set_current_dir(root())?;
    ensure_system_packages(BUILD_PACKAGES)?;
    ensure_node()?;
    build_ui()?;
    step(
        "build the release binaries",
        cargo().args(["build", "--release", "-p", "tokenkeep-app", "-p", "tokenkeep-cli"]),
    )?;
    let bundle_dir = root().join("target/release/bundle/deb");
    if bundle_dir.exists() {
        std::fs::remove_dir_all(&bundle_dir)?;
    }
    // IMPORTANT: Tauri's CLI takes the folder of tauri.conf.json for the app's crate and reads the `[package]` of
    // the Cargo.toml beside it; the configuration lives at the repository root, beside the virtual workspace
    // manifest. So the bundler gets, for the time it runs, a copy beside the app's crate with its paths moved.
    let staged = StagedConfig::write()?;
    let bundled = step(
        "bundle the .deb (Tauri's bundler)",
        npm()
            .args([
                "exec",
                "--prefix",
                "ui",
                "--",
                "tauri",
                "bundle",
                "--bundles",
                "deb",
                "--ci",
            ])
            .env("CI", "true")
            .env("TAURI_APP_PATH", root().join("src-tauri"))
            .env("TAURI_FRONTEND_PATH", root().join("ui")),
    );
    drop(staged);
    bundled?;
    let deb = std::fs::read_dir(&bundle_dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("the bundler wrote no .deb into {}", bundle_dir.display()))?;
    check_deb(&deb)?;
    Ok(deb)
}

/// `src-tauri/tauri.conf.json`: the root configuration with its paths made relative to `src-tauri/`, removed again
/// on drop (it is in .gitignore in case a crash leaves it).
struct StagedConfig(PathBuf);

impl StagedConfig {
    fn write() -> Result<Self> {
        let root = root();
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("tauri.conf.json"))?)?;
        let moved = |path: &str| format!("../{path}");
        if let Some(icons) = config["bundle"]["icon"].as_array_mut() {
            for icon in icons {
                if let Some(path) = icon.as_str() {
                    *icon = moved(path).into();
                }
            }
        }
        if let Some(dist) = config["build"]["frontendDist"].as_str() {
            config["build"]["frontendDist"] = moved(dist).into();
        }
        if let Some(files) = config["bundle"]["linux"]["deb"]["files"].as_object_mut() {
            for source in files.values_mut() {
                if let Some(path) = source.as_str() {
                    *source = moved(path).into();
                }
            }
        }
        if let Some(object) = config.as_object_mut() {
            object.remove("$schema");
        }
        let path = root.join("src-tauri/tauri.conf.json");
        std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
        Ok(Self(path))
    }
}

impl Drop for StagedConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The `.deb` declares what the app needs and holds what a person expects: both programs in /usr/bin, the
/// desktop entry and the icons.
fn check_deb(deb: &Path) -> Result<()> {
    let output = |args: &[&str]| -> Result<String> {
        let out = Command::new("dpkg-deb")
            .args(args)
            .arg(deb)
            .output()
            .context("dpkg-deb")?;
        if !out.status.success() {
            bail!("dpkg-deb {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let info = output(&["-I"])?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_default()
            .to_owned()
    };
    let mut problems = Vec::new();
    if field("Package") != DEB_PACKAGE {
        problems.push(format!("Package is {:?}, not {DEB_PACKAGE}", field("Package")));
    }
    let depends = field("Depends");
    for needed in ["libwebkit2gtk-4.1-0", "libgtk-3-0", "libayatana-appindicator3-1"] {
        if !depends.contains(needed) {
            problems.push(format!("Depends lacks {needed}: {depends:?}"));
        }
    }
    let contents = output(&["-c"])?;
    for path in [
        "usr/bin/tokenkeep-app",
        "usr/bin/tokenkeep",
        "usr/share/applications/Tokenkeep.desktop",
        "usr/share/icons/hicolor/128x128/apps/tokenkeep-app.png",
    ] {
        if !contents
            .lines()
            .any(|l| l.ends_with(&format!(" {path}")) || l.ends_with(&format!(" ./{path}")))
        {
            problems.push(format!("{path} is not in the package"));
        }
    }
    let size = std::fs::metadata(deb)?.len();
    println!(
        "\n==> {} ({:.1} MiB)\n{info}",
        deb.display(),
        size as f64 / (1024.0 * 1024.0)
    );
    if !problems.is_empty() {
        bail!("the .deb is not right:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// The exhaustive tamper run: the suite's tamper test with `TOKENKEEP_TAMPER_ALL=1` (every byte of every store
/// file), its counts printed. Outside CI: it takes minutes to hours, depending on the store's size.
fn tamper_all() -> Result<()> {
    std::env::set_current_dir(root())?;
    build_ui()?;
    step("build binaries", cargo().args(["build", "--workspace"]))?;
    step(
        "tamper test, every byte",
        cargo()
            .args([
                "test",
                "-p",
                "tokenkeep-e2e",
                "--test",
                "e2e",
                "tamper::",
                "--",
                "--nocapture",
            ])
            .env("TOKENKEEP_TAMPER_ALL", "1"),
    )
}

/// Rebuilds `icons/` from `icons/master.svg` (rsvg-convert rasterises, the pinned Tauri CLI cuts the set).
fn regenerate_icons() -> Result<()> {
    std::env::set_current_dir(root())?;
    ensure_system_packages(&["librsvg2-bin"])?;
    ensure_node()?;
    step(
        "install UI packages (ui)",
        npm().args(["ci", "--no-audit", "--no-fund"]).current_dir("ui"),
    )?;
    step("regenerate icons", Command::new("bash").arg("icons/generate.sh"))
}

fn build_ui() -> Result<()> {
    step(
        "install UI packages (ui)",
        npm().args(["ci", "--no-audit", "--no-fund"]).current_dir("ui"),
    )?;
    step("build the UI", npm().args(["run", "build"]).current_dir("ui"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn npm() -> Command {
    Command::new("npm")
}

/// Runs one step, echoing it, and fails with its name.
fn step(name: &str, command: &mut Command) -> Result<()> {
    println!("\n==> {name}");
    let started = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("could not start {:?}", command.get_program()))?;
    if !status.success() {
        bail!("step failed: {name} ({status})");
    }
    println!("    ({name}: {:.1?})", started.elapsed());
    Ok(())
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the missing ones of `packages` with apt on Debian/Ubuntu; elsewhere, says what is needed.
fn ensure_system_packages(packages: &[&str]) -> Result<()> {
    if !have("dpkg-query") || !have("apt-get") {
        println!(
            "==> not a Debian/Ubuntu system: make sure the equivalents of these packages are installed:\n    {}",
            packages.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", p]).output();
            !out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "\n==> installing {} missing system package(s) with apt-get:\n    {}",
        missing.len(),
        missing.join(" ")
    );
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut prefix: Vec<&str> = Vec::new();
    if !is_root {
        if !have("sudo") {
            bail!(
                "these packages are missing and this user cannot install them: {}",
                missing.join(" ")
            );
        }
        println!("    (using sudo; you may be asked for your password)");
        prefix.push("sudo");
    }
    let run = |args: &[&str]| -> Result<()> {
        let mut all = prefix.clone();
        all.extend_from_slice(args);
        let mut cmd = Command::new(all[0]);
        cmd.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        step(&all.join(" "), &mut cmd)
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(&missing);
    run(&install)
}

fn ensure_node() -> Result<()> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success());
    let Some(version) = version else {
        bail!(
            "Node.js {MIN_NODE_MAJOR}+ with npm is needed to build the UI and is not installed. Install it from your \
             distribution (Ubuntu 24.04+: `apt install nodejs npm`) or from nodejs.org, then run this again."
        );
    };
    let text = String::from_utf8_lossy(&version.stdout);
    let major: u32 = text
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < MIN_NODE_MAJOR {
        bail!(
            "Node.js {} is too old: the UI build needs Node.js {MIN_NODE_MAJOR} or newer",
            text.trim()
        );
    }
    Ok(())
}

fn ensure_tauri_driver() -> Result<()> {
    let list = cargo()
        .args(["install", "--list"])
        .output()
        .context("could not run cargo install --list")?;
    let wanted = format!("tauri-driver v{TAURI_DRIVER_VERSION}:");
    if String::from_utf8_lossy(&list.stdout)
        .lines()
        .any(|l| l.trim() == wanted)
    {
        return Ok(());
    }
    step(
        &format!("install tauri-driver {TAURI_DRIVER_VERSION}"),
        cargo().args(["install", "tauri-driver", "--version", TAURI_DRIVER_VERSION, "--locked"]),
    )
}
