//! The real app window, driven through tauri-driver + WebKitWebDriver under Xvfb.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use tokenkeep_e2e::window::SETTLE_FRAMES;
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_window_shows_empty_state() -> Result<()> {
    let dir = scratch_dir("smoke")?;
    let session = HeadlessSession::start(&dir)?;
    let home = dir.join("tokenkeep-home");
    let driver = TauriDriver::start(&session, &[("TOKENKEEP_HOME", home.clone().into())])?;
    let app = built_binary("tokenkeep-app")?;
    let client = driver.connect(&app).await?;

    let result = async {
        client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("body[data-ready='true']"))
            .await
            .context("the UI never finished rendering (body[data-ready] not set)")?;

        let title = client.title().await?;
        ensure!(title == "Tokenkeep", "window title is {title:?}");

        let empty = client.find(Locator::Id("empty-title")).await?.text().await?;
        ensure!(empty == "No accounts connected yet", "empty state reads {empty:?}");

        let badge = client.find(Locator::Id("profile-badge")).await?.text().await?;
        ensure!(
            badge.to_lowercase().contains("dev"),
            "profile badge reads {badge:?}, expected the dev profile"
        );

        client.execute_async(SETTLE_FRAMES, vec![]).await?;
        let png = client.screenshot().await?;
        ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(screenshot_dir()?.join("smoke-empty-state.png"), &png)?;

        // The app created its profile directory and log under TOKENKEEP_HOME, not in $HOME.
        let log = home.join("dev/logs/tokenkeep-app.log");
        let text = std::fs::read_to_string(&log).with_context(|| format!("no log at {}", log.display()))?;
        ensure!(
            text.contains("starting Tokenkeep"),
            "log does not record the start:\n{text}"
        );
        Ok(())
    }
    .await;
    client.close().await.ok();
    result
}
