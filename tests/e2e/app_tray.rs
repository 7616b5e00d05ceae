//! Issue 14, "always on", in a real desktop session: the app's tray item registers with a StatusNotifier watcher
//! on the session bus, its menu (read over `com.canonical.dbusmenu`, as a panel reads it) follows the engine —
//! all fine, paused until a time, an account that needs the person — and its entries work: "Refresh all" reaches
//! the OAuth peer, Pause and Resume switch the timer, Quit ends the process with exit 0 and removes the CLI
//! socket's files. SIGTERM ends it the same way. Closing the window (WM_DELETE_WINDOW, as a window manager's
//! close button sends it) hides it while a tray shows the item — the next automatic refresh then reaches the peer
//! with the window closed — and quits where no tray host runs.
//!
//! Real components: the built app (started with `--background`: no window, as a login start) under Xvfb, a
//! private session bus, the OAuth test peer, and `tests/py/desktop_services.py` as the panel's StatusNotifier
//! watcher and notification server (the desktop's part, not ours: fakes are fine there).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::desktop::{Logind, Notifications, Watcher, services_call};
use tokenkeep_e2e::peer::{OidcPeer, Outage, PeerConfig};
use tokenkeep_e2e::seed::{add_demo, now_secs, seed_connections};
use tokenkeep_e2e::{Guarded, HeadlessSession, built_binary, scratch_dir};

/// The tray item's menu labels (separators as "—"), and its properties.
fn menu(session: &HeadlessSession, item: &str) -> Result<(Vec<String>, Value)> {
    let dump = services_call(session, &["dump", item])?;
    let labels = dump["menu"]
        .as_array()
        .ok_or_else(|| anyhow!("no menu in {dump}"))?
        .iter()
        .filter(|e| e["visible"].as_bool() != Some(false))
        .map(|e| {
            if e["type"] == "separator" {
                "—".to_owned()
            } else {
                e["label"].as_str().unwrap_or_default().to_owned()
            }
        })
        .collect();
    Ok((labels, dump["item"].clone()))
}

/// Waits until the menu satisfies `done`; returns it.
fn menu_until(
    session: &HeadlessSession,
    item: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Result<(Vec<String>, Value)> {
    let deadline = Instant::now() + limit;
    loop {
        let (labels, props) = menu(session, item)?;
        if done(&labels) {
            return Ok((labels, props));
        }
        if Instant::now() > deadline {
            bail!("{what} within {limit:?}; the menu reads {labels:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn click(session: &HeadlessSession, item: &str, label: &str) -> Result<()> {
    services_call(session, &["click", item, label]).map(|_| ())
}

fn wait_until(limit: Duration, what: &str, done: impl Fn() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !done()? {
        if Instant::now() > deadline {
            bail!("{what} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn wait_exit(app: &mut Guarded, limit: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = app.child().try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("the app did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn socket_files(tk: &Tokenkeep) -> [PathBuf; 2] {
    let dir = tk.profile_dir();
    [dir.join("cli.sock"), dir.join("cli.secret")]
}

fn start_app(session: &HeadlessSession, tk: &Tokenkeep, log: &Path) -> Result<Guarded> {
    Guarded::spawn(
        "tokenkeep-app",
        session
            .command(built_binary("tokenkeep-app")?)
            .envs(tk.app_env())
            .arg("--background")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?),
    )
}

#[test]
fn app_tray_menu_follows_the_engine_and_its_entries_refresh_pause_and_quit() -> Result<()> {
    let dir = scratch_dir("app-tray")?;
    let session = HeadlessSession::start(&dir)?;
    let watcher = Watcher::start(&session)?;
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let tk = Tokenkeep::headless("app-tray-store")?;
    add_demo(&tk, &peer)?;
    let accounts = ["rowan".to_owned(), "sasha".to_owned()];
    seed_connections(&tk, &peer, &accounts, now_secs() + 3 * 3600)?;
    let log = dir.join("app.log");
    let mut app = start_app(&session, &tk, &log)?;
    let limit = Duration::from_secs(20);

    let result = (|| -> Result<()> {
        let item = watcher.registered(limit)?;
        let (labels, props) = menu_until(&session, &item, limit, "the vault's accounts in the menu", |l| {
            l.first().is_some_and(|h| h == "All 2 accounts are fine")
        })?;
        ensure!(props["Status"] == "Active", "{props}");
        ensure!(
            labels
                == [
                    "All 2 accounts are fine",
                    "Open Tokenkeep",
                    "—",
                    "Refresh all",
                    "Pause refreshing for an hour",
                    "—",
                    "Quit Tokenkeep"
                ],
            "{labels:?}"
        );
        let fine_icon = props["IconName"].as_str().unwrap_or_default().to_owned();
        ensure!(Path::new(&fine_icon).is_file(), "the icon file {fine_icon:?} exists");

        // Refresh all: both accounts at the peer.
        let before = peer.stats()?.refresh_requests;
        click(&session, &item, "Refresh all")?;
        wait_until(limit, "two refreshes at the peer", || {
            Ok(peer.stats()?.refresh_requests >= before + 2)
        })?;

        // Pause: the menu says until when, and offers Resume; Resume undoes it.
        click(&session, &item, "Pause refreshing")?;
        let (labels, _) = menu_until(&session, &item, limit, "the pause in the menu", |l| {
            l.iter().any(|l| l.starts_with("Resume refreshing (paused until "))
        })?;
        ensure!(labels[0].starts_with("Refreshing is paused until "), "{labels:?}");
        click(&session, &item, "Resume refreshing")?;
        menu_until(&session, &item, limit, "the resume in the menu", |l| {
            l.iter().any(|l| l == "Pause refreshing for an hour")
        })?;

        // An account that needs the person: its Reconnect is in the menu, and the icon changed.
        peer.revoke_grant_for("sasha")?;
        click(&session, &item, "Refresh all")?;
        let (labels, props) = menu_until(&session, &item, limit, "the account that needs the person", |l| {
            l.first().is_some_and(|h| h == "1 account needs you")
        })?;
        ensure!(labels.iter().any(|l| l.starts_with("Reconnect sasha (")), "{labels:?}");
        ensure!(!labels.iter().any(|l| l.starts_with("Reconnect rowan")), "{labels:?}");
        ensure!(
            props["IconName"] != fine_icon.as_str(),
            "the icon shows the state: {props}"
        );
        // The tray cannot be drawn without a panel: its D-Bus view is kept instead, as screenshots are.
        std::fs::write(
            tokenkeep_e2e::screenshot_dir()?.join("tray-menu-needs-you.json"),
            serde_json::to_string_pretty(&services_call(&session, &["dump", &item])?)?,
        )?;

        // The CLI talks to the app in the background.
        let list = tk.run(&["list"], None)?;
        ensure!(list.status.success() && list.stdout.contains("rowan"), "{list:?}");
        for file in socket_files(&tk) {
            ensure!(file.exists(), "{} exists while the app runs", file.display());
        }

        // Quit: exit 0, the socket's files removed.
        click(&session, &item, "Quit Tokenkeep")?;
        let status = wait_exit(&mut app, limit)?;
        ensure!(status.success(), "Quit ended the app with {status}");
        for file in socket_files(&tk) {
            ensure!(!file.exists(), "{} was removed at Quit", file.display());
        }
        Ok(())
    })();
    result.with_context(|| format!("app log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))
}

#[test]
fn app_ends_cleanly_on_sigterm_and_removes_the_socket_files() -> Result<()> {
    let dir = scratch_dir("app-sigterm")?;
    let session = HeadlessSession::start(&dir)?;
    let tk = Tokenkeep::headless("app-sigterm-store")?;
    let log = dir.join("app.log");
    let mut app = start_app(&session, &tk, &log)?;
    let limit = Duration::from_secs(20);
    let files = socket_files(&tk);
    wait_until(limit, "the CLI socket", || Ok(files.iter().all(|f| f.exists())))?;

    let sent = Command::new("kill").args(["-TERM", &app.id().to_string()]).status()?;
    ensure!(sent.success());
    let status = wait_exit(&mut app, limit)?;
    let logged = std::fs::read_to_string(&log)?;
    ensure!(status.success(), "SIGTERM ended the app with {status}:\n{logged}");
    for file in &files {
        ensure!(!file.exists(), "{} was removed at SIGTERM", file.display());
    }
    ensure!(
        logged.contains("asked to quit") && logged.contains("signal=\"SIGTERM\""),
        "{logged}"
    );
    ensure!(logged.contains("Tokenkeep stopped exit_status=0"), "{logged}");
    Ok(())
}

/// Closing the window with a tray shown closes only the window: the process, the tray and the engine go on, and
/// the next automatic refresh reaches the peer with the window closed. Said once, as a notification; the tray's
/// Open brings the window back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_closed_with_a_tray_keeps_refreshing_and_opens_again_from_the_tray() -> Result<()> {
    use tokenkeep_e2e::TauriDriver;
    use tokenkeep_e2e::window::Ui;

    let dir = scratch_dir("app-tray-close")?;
    let session = HeadlessSession::start(&dir)?;
    let watcher = Watcher::start(&session)?;
    let notifications = Notifications::start(&session)?;
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let tk = Tokenkeep::headless("app-tray-close-store")?;
    add_demo(&tk, &peer)?;
    // Due in 30 to 90 s (five minutes before expiry, less up to a minute of jitter): after the window is closed.
    seed_connections(&tk, &peer, &["quinn".to_owned()], now_secs() + 390)?;
    let driver = TauriDriver::start(&session, &tk.app_env())?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let log = tk.profile_dir().join("logs/tokenkeep-app.log");
    let limit = Duration::from_secs(20);
    let result = async {
        let item = watcher.registered(limit)?;
        ui.wait_for("body[data-ready='true']", limit, "the window").await?;
        // As a window manager's close button: WM_DELETE_WINDOW to the window (Xvfb has no window manager).
        services_call(&session, &["close", "Tokenkeep"])?;
        wait_until(limit, "the window closed to the tray", || {
            Ok(std::fs::read_to_string(&log)?.contains("window closed; refreshing goes on in the background"))
        })?;
        wait_until(limit, "no window on the screen", || {
            Ok(services_call(&session, &["windows", "Tokenkeep"])?["shown"] == 0)
        })?;
        ensure!(
            peer.stats()?.refresh_requests == 0,
            "nothing was due before the window closed"
        );
        wait_until(
            Duration::from_secs(100),
            "an automatic refresh with the window closed",
            || Ok(peer.stats()?.refresh_requests > 0),
        )?;
        let (labels, _) = menu(&session, &item)?;
        ensure!(
            labels.iter().any(|l| l == "Quit Tokenkeep"),
            "the tray is still there: {labels:?}"
        );
        let shown = notifications.wait_for(1, limit)?;
        ensure!(
            shown.len() == 1
                && shown[0]["summary"] == "Tokenkeep is still running"
                && shown[0]["appName"] == "Tokenkeep",
            "said once: {shown:#?}"
        );
        ensure!(
            shown[0]["body"]
                .as_str()
                .is_some_and(|b| b.contains("in the background") && b.contains("Quit from the tray icon")),
            "{shown:#?}"
        );
        let settings = std::fs::read_to_string(tk.profile_dir().join("settings.json"))?;
        ensure!(settings.contains("\"backgroundNoted\": true"), "remembered: {settings}");
        // Launching the app again shows the window of the one that runs (and the second launch ends).
        let second = session
            .command(built_binary("tokenkeep-app")?)
            .envs(tk.app_env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        ensure!(second.success(), "the second launch ended with {second}");
        wait_until(limit, "the window back after a second launch", || {
            Ok(services_call(&session, &["windows", "Tokenkeep"])?["shown"] == 1)
        })?;
        ensure!(std::fs::read_to_string(&log)?.contains("window opened again"));
        // A second close says nothing more; the tray's Open builds the window again.
        services_call(&session, &["close", "Tokenkeep"])?;
        wait_until(limit, "no window on the screen again", || {
            Ok(services_call(&session, &["windows", "Tokenkeep"])?["shown"] == 0)
        })?;
        click(&session, &item, "Open Tokenkeep")?;
        wait_until(limit, "the window back from the tray", || {
            Ok(services_call(&session, &["windows", "Tokenkeep"])?["shown"] == 1)
        })?;
        std::thread::sleep(Duration::from_secs(3));
        ensure!(
            notifications.shown().len() == 1,
            "said once: {:#?}",
            notifications.shown()
        );
        click(&session, &item, "Quit Tokenkeep")?;
        Ok(())
    }
    .await;
    result.with_context(|| format!("app log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))
}

/// Without a tray host (no StatusNotifier watcher), closing the window quits as it always did — a hidden window
/// nobody could reach would only hide that refreshing stopped — and the socket's files go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_closed_without_a_tray_quits() -> Result<()> {
    use tokenkeep_e2e::TauriDriver;
    use tokenkeep_e2e::window::Ui;

    let dir = scratch_dir("app-no-tray-close")?;
    let session = HeadlessSession::start(&dir)?;
    let tk = Tokenkeep::headless("app-no-tray-close-store")?;
    let driver = TauriDriver::start(&session, &tk.app_env())?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let log = tk.profile_dir().join("logs/tokenkeep-app.log");
    let limit = Duration::from_secs(20);
    let result = async {
        ui.wait_for("body[data-ready='true']", limit, "the window").await?;
        services_call(&session, &["close", "Tokenkeep"])?;
        wait_until(limit, "the app to quit", || {
            Ok(std::fs::read_to_string(&log)?.contains("Tokenkeep stopped exit_status=0"))
        })?;
        let logged = std::fs::read_to_string(&log)?;
        ensure!(logged.contains("no tray host shows Tokenkeep's icon"), "{logged}");
        for file in socket_files(&tk) {
            ensure!(!file.exists(), "{} was removed", file.display());
        }
        Ok(())
    }
    .await;
    result.with_context(|| format!("app log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))
}

/// Issue 14: a 5-account outage (the platform's token endpoint down while their access tokens have run out) gives
/// one summary notification from "Tokenkeep" with its icon, not one per account; with notifications switched off
/// in the settings, a failure shows none.
#[test]
fn app_notifies_once_for_a_five_account_outage_and_not_at_all_when_switched_off() -> Result<()> {
    let dir = scratch_dir("app-notify")?;
    let session = HeadlessSession::start(&dir)?;
    let watcher = Watcher::start(&session)?;
    let notifications = Notifications::start(&session)?;
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let tk = Tokenkeep::headless("app-notify-store")?;
    add_demo(&tk, &peer)?;
    let out: Vec<String> = (1..=5).map(|n| format!("creator{n}")).collect();
    // Their access tokens have run out: the engine refreshes them as soon as it starts, into the outage.
    seed_connections(&tk, &peer, &out, now_secs().saturating_sub(60))?;
    seed_connections(&tk, &peer, &["sixth".to_owned()], now_secs() + 3 * 3600)?;
    peer.outage_of(Outage::Drop, 600, &["token"])?;
    let log = dir.join("app.log");
    let mut app = start_app(&session, &tk, &log)?;
    let limit = Duration::from_secs(20);

    let result = (|| -> Result<()> {
        let item = watcher.registered(limit)?;
        notifications.wait_for(1, limit)?;
        // Whatever else was going to come has had its chance.
        std::thread::sleep(GATHER_AND_MORE);
        let shown = notifications.shown();
        ensure!(shown.len() == 1, "one notification for five accounts: {shown:#?}");
        let n = &shown[0];
        ensure!(n["appName"] == "Tokenkeep", "{n}");
        ensure!(n["summary"] == "5 accounts need you", "{n}");
        ensure!(n["body"].as_str().is_some_and(|b| b.contains("and 2 more")), "{n}");
        ensure!(
            n["icon"]
                .as_str()
                .is_some_and(|i| i.starts_with("file:///") && i.ends_with(".png")),
            "{n}"
        );
        ensure!(n["desktopEntry"] == "Tokenkeep", "{n}");
        let logged = std::fs::read_to_string(&log)?;
        ensure!(
            logged
                .lines()
                .filter(|l| l.contains("desktop notification sent") && l.contains("accounts=5"))
                .count()
                == 5,
            "one line per account named:\n{logged}"
        );

        // Switched off: the sixth account's failure shows nothing.
        peer.outage_of(Outage::Off, 0, &["token"])?;
        std::fs::write(tk.profile_dir().join("settings.json"), br#"{"notifications": false}"#)?;
        peer.revoke_grant_for("sixth")?;
        click(&session, &item, "Refresh all")?;
        menu_until(&session, &item, limit, "the sixth account needing the person", |l| {
            l.iter().any(|l| l.starts_with("Reconnect sixth ("))
        })?;
        std::thread::sleep(GATHER_AND_MORE);
        ensure!(
            notifications.shown().len() == 1,
            "nothing more was shown: {:#?}",
            notifications.shown()
        );
        ensure!(std::fs::read_to_string(&log)?.contains("desktop notifications are switched off"));
        click(&session, &item, "Quit Tokenkeep")?;
        ensure!(wait_exit(&mut app, limit)?.success());
        Ok(())
    })();
    result.with_context(|| format!("app log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))
}

/// Longer than the notifier's wait for a burst to gather (1.5 s).
const GATHER_AND_MORE: Duration = Duration::from_secs(3);

/// Issue 14 (sleep and resume): when logind says the system woke, the engine plans every connection again at once
/// (a token that expired during the sleep is refreshed within moments; `refresh::tests` shows that part).
#[test]
fn app_replans_when_logind_says_the_system_woke() -> Result<()> {
    let dir = scratch_dir("app-wake")?;
    let session = HeadlessSession::start(&dir)?;
    let logind = Logind::start(&session)?;
    let tk = Tokenkeep::headless("app-wake-store")?;
    let log = dir.join("app.log");
    let (name, bus) = Logind::system_bus_env(&session)?;
    let mut app = Guarded::spawn(
        "tokenkeep-app",
        session
            .command(built_binary("tokenkeep-app")?)
            .envs(tk.app_env())
            .env(name, bus)
            .arg("--background")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?),
    )?;
    let limit = Duration::from_secs(20);
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let result = (|| -> Result<()> {
        wait_until(limit, "the app following logind", || {
            Ok(logged().contains("following logind's sleep and resume") && logged().contains("refresh engine started"))
        })?;
        logind.sleep_and_wake()?;
        wait_until(limit, "a re-plan after the wake", || {
            Ok(logged().contains("re-planning every connection (the system woke up)"))
        })?;
        ensure!(logged().contains("the system is going to sleep"), "{}", logged());
        Command::new("kill").args(["-TERM", &app.id().to_string()]).status()?;
        ensure!(wait_exit(&mut app, limit)?.success());
        Ok(())
    })();
    result.with_context(|| format!("app log:\n{}", logged()))
}

/// Waits for the connect panel and checks that it is `account`'s Reconnect.
async fn expect_reconnect_panel(
    ui: &tokenkeep_e2e::window::Ui,
    account: &str,
    limit: Duration,
    what: &str,
) -> Result<()> {
    use tokenkeep_e2e::window::tid;
    let title = ui
        .text_of(&format!("{} .modal-title", tid("connect-panel")), limit, what)
        .await?;
    ensure!(title == format!("Reconnect {account}"), "the panel is titled {title:?}");
    Ok(())
}

/// Cancels the running sign-in and closes the connect panel.
async fn cancel_sign_in(ui: &tokenkeep_e2e::window::Ui, limit: Duration) -> Result<()> {
    use tokenkeep_e2e::window::tid;
    ui.click(&tid("connect-cancel"), "Cancel").await?;
    ui.wait_for(&tid("connect-close"), limit, "the cancelled sign-in's Close")
        .await?;
    ui.click(&tid("connect-close"), "Close").await?;
    ui.wait_gone(&tid("connect-panel"), limit, "the connect panel").await
}

/// An account that needs the person, chosen in the tray menu, opens its Reconnect in the window — also when the
/// window was closed to the tray, and then once only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_tray_reconnect_opens_the_sign_in_of_that_account() -> Result<()> {
    use tokenkeep_e2e::TauriDriver;
    use tokenkeep_e2e::window::{Ui, tid};

    let dir = scratch_dir("app-tray-reconnect")?;
    let session = HeadlessSession::start(&dir)?;
    let watcher = Watcher::start(&session)?;
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let tk = Tokenkeep::headless("app-tray-reconnect-store")?;
    add_demo(&tk, &peer)?;
    seed_connections(
        &tk,
        &peer,
        &["ravi".to_owned(), "tess".to_owned()],
        now_secs() + 3 * 3600,
    )?;
    let mut env = tk.app_env();
    // The sign-in page would open in a browser: here, nowhere.
    env.push(("TOKENKEEP_BROWSER", "true".into()));
    let driver = TauriDriver::start(&session, &env)?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let log = tk.profile_dir().join("logs/tokenkeep-app.log");
    let limit = Duration::from_secs(20);
    let result = async {
        let item = watcher.registered(limit)?;
        ui.wait_for("body[data-ready='true']", limit, "the window").await?;
        peer.revoke_grant_for("tess")?;
        click(&session, &item, "Refresh all")?;
        menu_until(&session, &item, limit, "tess's Reconnect in the menu", |l| {
            l.iter().any(|l| l.starts_with("Reconnect tess ("))
        })?;
        click(&session, &item, "Reconnect tess")?;
        expect_reconnect_panel(&ui, "tess", limit, "the connect panel").await?;
        cancel_sign_in(&ui, limit).await?;

        // With the window closed to the tray, the tray builds it again, and its new page opens the sign-in once
        // it has listed the connections: the choice was made before that page listened.
        let before = ui.client.window().await?;
        services_call(&session, &["close", "Tokenkeep"])?;
        wait_until(limit, "no window on the screen", || {
            Ok(services_call(&session, &["windows", "Tokenkeep"])?["shown"] == 0)
        })?;
        click(&session, &item, "Reconnect tess")?;
        wait_until(limit, "the window back from the tray", || {
            Ok(services_call(&session, &["windows", "Tokenkeep"])?["shown"] == 1)
        })?;
        let deadline = std::time::Instant::now() + limit;
        let rebuilt = loop {
            let handles = ui.client.windows().await?;
            if let Some(h) = handles.into_iter().find(|h| *h != before) {
                break h;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "WebDriver never saw the new window"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        ui.client.switch_to_window(rebuilt).await?;
        expect_reconnect_panel(&ui, "tess", limit, "the connect panel in the rebuilt window").await?;
        // Taken once: reloading the page does not open it again.
        cancel_sign_in(&ui, limit).await?;
        ui.client.refresh().await?;
        ui.wait_for("body[data-ready='true']", limit, "the reloaded window")
            .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        ensure!(
            ui.client
                .find_all(fantoccini::Locator::Css(&tid("connect-panel")))
                .await?
                .is_empty(),
            "the reloaded page opened the tray's Reconnect again"
        );
        Ok(())
    }
    .await;
    ui.client.close().await.ok();
    result.with_context(|| format!("app log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))
}
