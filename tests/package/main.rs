//! Issue 14, the installed package: `/usr/bin/tokenkeep-app --background` from the `.deb` starts with a fresh
//! HOME under Xvfb, registers its tray item, and the installed `/usr/bin/tokenkeep` talks to it through its socket;
//! the tray's Quit ends it with exit 0.
//!
//! It needs the package installed, so the default test run leaves it out (`.config/nextest.toml`); `cargo xtask
//! test` builds the package (`cargo xtask package`), checks it, installs it with `dpkg -i` and then runs this.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokenkeep_e2e::desktop::{Watcher, services_call};
use tokenkeep_e2e::{Guarded, HeadlessSession, scratch_dir};

const APP: &str = "/usr/bin/tokenkeep-app";
const CLI: &str = "/usr/bin/tokenkeep";

#[test]
fn installed_package_runs_in_the_background_with_a_tray_and_its_cli_talks_to_it() -> Result<()> {
    for file in [APP, CLI, "/usr/share/applications/Tokenkeep.desktop"] {
        ensure!(
            Path::new(file).exists(),
            "{file} is missing: build and install the package first (`cargo xtask package`, then `dpkg -i \
             target/release/bundle/deb/*.deb`)"
        );
    }
    let dir = scratch_dir("package")?;
    let session = HeadlessSession::start(&dir)?;
    let watcher = Watcher::start(&session)?;
    let fresh = |program: &str| {
        let mut command = session.command(program);
        // A fresh HOME and nothing else: the installed app finds its data where a person's would be.
        command.env_remove("TOKENKEEP_HOME").env_remove("TOKENKEEP_PROFILE");
        command
    };
    let log = dir.join("app.log");
    let mut app = Guarded::spawn(
        "installed tokenkeep-app",
        fresh(APP)
            .arg("--background")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?),
    )?;
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let limit = Duration::from_secs(30);
    let result = (|| -> Result<()> {
        let item = watcher.registered(limit)?;
        let deadline = Instant::now() + limit;
        loop {
            let dump = services_call(&session, &["dump", &item])?;
            let first = dump["menu"][0]["label"].as_str().unwrap_or_default().to_owned();
            if first == "No accounts connected yet" {
                break;
            }
            ensure!(Instant::now() < deadline, "the tray menu reads {dump}");
            std::thread::sleep(Duration::from_millis(200));
        }
        ensure!(
            logged().contains("profile=prod"),
            "a release build uses the prod profile:\n{}",
            logged()
        );

        // The store is the app's: the CLI can only answer through the socket.
        let deadline = Instant::now() + limit;
        let list = loop {
            let out = fresh(CLI).args(["list", "--json"]).stdin(Stdio::null()).output()?;
            if out.status.success() {
                break out;
            }
            ensure!(
                Instant::now() < deadline,
                "tokenkeep list failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let listed: serde_json::Value = serde_json::from_slice(&list.stdout).context("list --json")?;
        ensure!(listed.as_array().is_some_and(Vec::is_empty), "{listed}");
        ensure!(
            dir.join("data/tokenkeep/prod/cli.sock").exists(),
            "the app's socket is where a person's would be"
        );

        services_call(&session, &["click", &item, "Quit Tokenkeep"])?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = app.child().try_wait()? {
                ensure!(status.success(), "Quit ended the installed app with {status}");
                break;
            }
            if Instant::now() > deadline {
                bail!("the installed app did not quit");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })();
    result.with_context(|| format!("app log:\n{}", logged()))
}
