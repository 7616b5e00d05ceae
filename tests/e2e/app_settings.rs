//! Issue 14, the Settings panel in the real window: each switch is saved to the profile's `settings.json` at
//! once, "Start at login" creates and removes the XDG autostart entry (with `--background` and the profile it
//! belongs to), the clipboard time is kept within 5 to 600 seconds, and on a desktop without a tray host the
//! panel and the footer say that closing the window quits.
//!
//! Real components: the built app under Xvfb through tauri-driver, a private session bus (with or without the
//! StatusNotifier watcher of `tests/py/desktop_services.py`). Screenshots: `target/screenshots/app-settings-*.png`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use serde_json::Value;
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::desktop::Watcher;
use tokenkeep_e2e::window::{Ui, tid};
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

fn settings_file(tk: &Tokenkeep) -> Result<Value> {
    Ok(serde_json::from_str(&std::fs::read_to_string(
        tk.profile_dir().join("settings.json"),
    )?)?)
}

async fn wait_saved(tk: &Tokenkeep, key: &str, value: &Value) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if settings_file(tk).is_ok_and(|s| &s[key] == value) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "settings.json did not get {key} = {value}: {:?}",
                settings_file(tk).ok()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status(ui: &Ui) -> Result<String> {
    ui.text_of(&tid("settings-status"), Duration::from_secs(10), "the settings status")
        .await
}

/// Types `seconds` into the clipboard time and commits it, as leaving the field does.
async fn type_seconds(ui: &Ui, seconds: &str) -> Result<()> {
    ui.fill(&tid("setting-clipboard-seconds"), seconds, "the clipboard time")
        .await?;
    ui.client
        .execute(
            "document.querySelector(\"[data-testid='setting-clipboard-seconds']\").dispatchEvent(new Event('change'))",
            vec![],
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_settings_are_saved_and_start_at_login_writes_the_autostart_entry() -> Result<()> {
    let dir = scratch_dir("app-settings")?;
    let session = HeadlessSession::start(&dir)?;
    let _watcher = Watcher::start(&session)?;
    let tk = Tokenkeep::headless("app-settings-store")?;
    let driver = TauriDriver::start(&session, &tk.app_env())?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let shots = screenshot_dir()?;
    let limit = Duration::from_secs(20);
    let entry = dir.join("config/autostart/io.tokenkeep.desktop-e2e.desktop");
    let result = async {
        ui.wait_for("body[data-ready='true']", limit, "the window").await?;
        ensure!(
            ui.attr(&tid("tray-missing-note"), "hidden").await?.is_some(),
            "with a tray, the footer says nothing about closing"
        );
        ui.click(&tid("settings-button"), "Settings").await?;
        ui.wait_for(&tid("setting-start-at-login"), limit, "the settings")
            .await?;
        ui.screenshot(&shots, "app-settings-1-panel").await?;
        ensure!(!entry.exists(), "no autostart entry before it is switched on");

        ui.click(&tid("setting-start-at-login"), "Start at login").await?;
        wait_saved(&tk, "startAtLogin", &Value::Bool(true)).await?;
        let text = std::fs::read_to_string(&entry)?;
        ensure!(text.starts_with("[Desktop Entry]\n"), "{text}");
        let exec = text.lines().find_map(|l| l.strip_prefix("Exec=")).unwrap_or_default();
        ensure!(exec.ends_with("tokenkeep-app --background"), "{exec}");
        ensure!(exec.starts_with("env TOKENKEEP_PROFILE=e2e TOKENKEEP_HOME="), "{exec}");
        ensure!(
            text.contains("\nName=Tokenkeep\n") && text.contains("\nType=Application\n"),
            "{text}"
        );
        ensure!(status(&ui).await?.contains("starts in the background when you log in"));
        ui.screenshot(&shots, "app-settings-2-start-at-login").await?;

        ui.click(&tid("setting-start-at-login"), "Start at login").await?;
        wait_saved(&tk, "startAtLogin", &Value::Bool(false)).await?;
        ensure!(!entry.exists(), "switching it off removes the entry");

        ui.click(&tid("setting-notifications"), "Notifications").await?;
        wait_saved(&tk, "notifications", &Value::Bool(false)).await?;
        ui.click(&tid("setting-keep-running"), "Keep running").await?;
        wait_saved(&tk, "keepRunning", &Value::Bool(false)).await?;
        // The file is written before the panel hears back: wait for its word, so it does not cover the next one.
        ui.wait_for(
            &format!("{}[data-saved='keepRunning']", tid("settings-status")),
            Duration::from_secs(10),
            "the panel saying the last save",
        )
        .await?;

        type_seconds(&ui, "3").await?;
        ensure!(status(&ui).await? == "Choose 5 to 600 seconds.");
        ensure!(settings_file(&tk)?["clipboardSeconds"] == 30, "3 s was not saved");
        type_seconds(&ui, "45").await?;
        wait_saved(&tk, "clipboardSeconds", &Value::from(45)).await?;
        Ok(())
    }
    .await;
    ui.client.close().await.ok();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_without_a_tray_says_that_closing_the_window_stops_refreshing() -> Result<()> {
    let dir = scratch_dir("app-settings-no-tray")?;
    let session = HeadlessSession::start(&dir)?;
    let tk = Tokenkeep::headless("app-settings-no-tray-store")?;
    let driver = TauriDriver::start(&session, &tk.app_env())?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let limit = Duration::from_secs(20);
    let result = async {
        ui.wait_for("body[data-ready='true']", limit, "the window").await?;
        let note = ui
            .text_of(
                &format!("{}:not([hidden])", tid("tray-missing-note")),
                limit,
                "the footer note",
            )
            .await?;
        ensure!(
            note.contains("refreshing stops while Tokenkeep's window is closed"),
            "{note}"
        );
        ui.click(&tid("settings-button"), "Settings").await?;
        let keep = ui.wait_for(&tid("setting-keep-running"), limit, "the settings").await?;
        ensure!(
            !keep.is_enabled().await?,
            "keeping running cannot be switched on without a tray"
        );
        let hint = ui.text_of(".setting-hint", limit, "the first hint").await?;
        ensure!(
            hint.contains("no tray icons") && hint.contains("refreshing stops"),
            "{hint}"
        );
        ui.screenshot(&screenshot_dir()?, "app-settings-3-no-tray").await?;
        Ok(())
    }
    .await;
    ui.client.close().await.ok();
    result
}
