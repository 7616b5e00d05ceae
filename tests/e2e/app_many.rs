//! Issue 13, twenty accounts at a glance: problems first and summed up in one notice (also after a restart, when
//! no event told of them), focus that survives the clock, the Ctrl+F filter and Ctrl+N, the sticky header, two
//! columns on a wide window — and the screenshots of that walk in `target/screenshots/app-many-*.png`.
//!
//! Real components: the built app under Xvfb through tauri-driver, the session's gnome-keyring. The accounts are
//! written into the vault as `connect` would have (no refresh is due during the test: the working ones expire in
//! hours, and the engine leaves the others to the person).

use std::time::Duration;

use anyhow::{Result, ensure};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{ConnectionMeta, ConnectionStatus, TokenSet};
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::seed::now_secs;
use tokenkeep_e2e::window::{Ui, tid};
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

/// (provider, account, status, expires in seconds, last error).
const ACCOUNTS: &[(&str, &str, ConnectionStatus, i64, Option<&str>)] = &[
    ("youtube", "Maya Makes", ConnectionStatus::Connected, 3 * 3600, None),
    (
        "youtube",
        "Maya Makes Shorts",
        ConnectionStatus::Connected,
        50 * 60,
        None,
    ),
    (
        "x",
        "@maya_makes",
        ConnectionStatus::NeedsReconnect,
        -7200,
        Some("the provider rejected the refresh token (invalid_grant): sign in again to reconnect"),
    ),
    ("x", "@maya_clips", ConnectionStatus::Connected, 90 * 60, None),
    ("tiktok", "mayamakes", ConnectionStatus::Connected, 20 * 3600, None),
    (
        "tiktok",
        "maya.behind.the.scenes",
        ConnectionStatus::NeedsReconnect,
        -600,
        Some("the provider rejected the refresh token (invalid_grant): sign in again to reconnect"),
    ),
    ("instagram", "maya.makes", ConnectionStatus::Connected, 50 * 86400, None),
    (
        "instagram",
        "maya.studio",
        ConnectionStatus::Connected,
        58 * 86400,
        None,
    ),
    (
        "facebook",
        "Maya Makes Page",
        ConnectionStatus::Connected,
        40 * 86400,
        None,
    ),
    ("threads", "maya.makes", ConnectionStatus::Connected, 30 * 86400, None),
    (
        "linkedin",
        "Maya Okafor",
        ConnectionStatus::Error,
        20 * 86400,
        Some("the provider \"linkedin\" has no client id configured in this profile"),
    ),
    (
        "reddit",
        "u/mayamakes",
        ConnectionStatus::Interrupted,
        -600,
        Some("interrupted — reconnect needed"),
    ),
    ("reddit", "u/maya_alt", ConnectionStatus::Connected, 3000, None),
    ("twitch", "mayamakeslive", ConnectionStatus::Connected, 4 * 3600, None),
    ("twitch", "maya_vods", ConnectionStatus::Connected, 2 * 3600, None),
    ("pinterest", "mayamakes", ConnectionStatus::Connected, 25 * 86400, None),
    ("spotify", "Maya Makes Podcast", ConnectionStatus::Connected, 3500, None),
    ("kick", "mayamakes", ConnectionStatus::Connected, 5 * 3600, None),
    ("youtube", "Maya Archive", ConnectionStatus::Connected, 6 * 3600, None),
    ("x", "@maya_news", ConnectionStatus::Connected, 100 * 60, None),
];

/// The platforms of [`ACCOUNTS`], each once: one group heading each when grouped by platform.
const PLATFORMS: usize = 12;

fn seed(tk: &Tokenkeep) -> Result<()> {
    let vault = tk.open_vault()?;
    let now = now_secs();
    for (i, (provider, account, status, expires_in, error)) in ACCOUNTS.iter().enumerate() {
        let mut meta = ConnectionMeta::new(ProviderId::parse(provider)?, *account);
        meta.status = *status;
        meta.expires_at = Some(now.saturating_add_signed(*expires_in));
        meta.last_refresh_at = Some(now - 600 - i as u64 * 97);
        meta.last_error = error.map(str::to_owned);
        meta.scopes = vec!["openid".into(), "profile".into()];
        let tokens = TokenSet {
            access: SecretString::new(format!("seeded-access-{i}")),
            refresh: Some(SecretString::new(format!("seeded-refresh-{i}"))),
            id_token: None,
            dpop_key: None,
        };
        vault.put_connection(meta, &tokens)?;
    }
    Ok(())
}

/// Presses Ctrl+`key` on the page, as the keyboard would (the window's own shortcut handler).
async fn ctrl(ui: &Ui, key: &str) -> Result<()> {
    ui.client
        .execute(
            "document.dispatchEvent(new KeyboardEvent('keydown', { key: arguments[0], ctrlKey: true, bubbles: true, cancelable: true }));",
            vec![key.into()],
        )
        .await?;
    Ok(())
}

async fn visible_cards(ui: &Ui) -> Result<usize> {
    let n = ui
        .client
        .execute(
            "return [...document.querySelectorAll(\"[data-testid='connection-card']\")].filter(c => !c.closest('li').hidden).length;",
            vec![],
        )
        .await?;
    Ok(n.as_u64().unwrap_or(0) as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_shows_twenty_accounts_problems_first_with_one_summary() -> Result<()> {
    let dir = scratch_dir("app-many")?;
    let session = HeadlessSession::start(&dir)?;
    // Headless, so the test can write the accounts into the vault itself before the app holds it.
    let tk = Tokenkeep::headless("app-many-store")?;
    seed(&tk)?;
    let driver = TauriDriver::start(&session, &tk.app_env())?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let shots = screenshot_dir()?;
    let limit = Duration::from_secs(20);
    let result = async {
        ui.wait_for(&format!("{}:nth-of-type(1)", tid("connection-card")), limit, "the cards").await?;
        let statuses = ui
            .client
            .execute(
                "return [...document.querySelectorAll(\"[data-testid='connection-card']\")].map(c => c.dataset.status);",
                vec![],
            )
            .await?;
        let statuses: Vec<String> = serde_json::from_value(statuses)?;
        ensure!(statuses.len() == ACCOUNTS.len(), "{} cards", statuses.len());
        let dead = |s: &str| matches!(s, "needs_reconnect" | "interrupted" | "error");
        let problems = statuses.iter().take_while(|s| dead(s)).count();
        ensure!(problems == 4 && statuses.iter().filter(|s| dead(s)).count() == 4, "problems first: {statuses:?}");

        // One summary of the four, though no event told of them in this run.
        let summary = ui.text_of(&tid("attention-summary"), limit, "the summary").await?;
        ensure!(summary.starts_with("!\n4 accounts need you") || summary.contains("4 accounts need you"), "summary: {summary}");
        ui.screenshot(&shots, "app-many-1-top").await?;
        ui.click(&format!("{} summary", tid("attention-summary")), "the summary").await?;
        let rows = ui.client.find_all(fantoccini::Locator::Css(&tid("attention"))).await?;
        ensure!(rows.len() == 4, "{} rows in the summary", rows.len());
        ui.screenshot(&shots, "app-many-2-summary-open").await?;

        // Focus stays on a summary button while the clock runs (no re-render on a timer).
        ui.client
            .execute("document.querySelector('.attention-reconnect').focus(); window.__kept = document.activeElement;", vec![])
            .await?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let kept = ui
            .client
            .execute("return document.activeElement === window.__kept && document.activeElement.isConnected;", vec![])
            .await?;
        ensure!(kept == serde_json::Value::Bool(true), "focus left the Reconnect button while idle");
        let label = ui.attr(&format!("{} .attention-reconnect", tid("attention")), "aria-label").await?;
        ensure!(label.as_deref().is_some_and(|l| l.starts_with("Reconnect ") && l.contains(", ")), "{label:?}");

        // Ctrl+F filters; Esc clears.
        ctrl(&ui, "f").await?;
        let focused = ui.client.execute("return document.activeElement.dataset.testid;", vec![]).await?;
        ensure!(focused == "filter", "Ctrl+F focused {focused}");
        ui.fill(&tid("filter"), "youtube", "the filter").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        ensure!(visible_cards(&ui).await? == 3, "three YouTube accounts");
        ui.screenshot(&shots, "app-many-3-filtered").await?;
        ui.fill(&tid("filter"), "nothing-like-this", "the filter").await?;
        let none = ui.text_of(&format!("{}:not([hidden])", tid("filter-empty")), limit, "the no-match line").await?;
        ensure!(none.contains("No account matches"), "{none}");
        ui.on(&tid("filter"), limit, "the filter", |e| async move { e.send_keys("\u{E00C}").await })
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        ensure!(visible_cards(&ui).await? == ACCOUNTS.len(), "Esc shows every account again");

        // Ctrl+N opens "Add an account".
        ctrl(&ui, "n").await?;
        let title = ui.text_of(&format!("{} .modal-title", tid("connect-panel")), limit, "the connect panel").await?;
        ensure!(title == "Add an account", "Ctrl+N opened {title:?}");
        ui.client
            .execute("document.querySelector('dialog[open]').close();", vec![])
            .await?;

        // The header stays while scrolling.
        ui.client.execute("window.scrollTo(0, document.body.scrollHeight);", vec![]).await?;
        let top = ui
            .client
            .execute("return document.querySelector('.list-head').getBoundingClientRect().top;", vec![])
            .await?;
        ensure!(top.as_f64().is_some_and(|t| (-1.0..=80.0).contains(&t)), "the list header scrolled away: top {top}");
        ui.screenshot(&shots, "app-many-4-scrolled-sticky-header").await?;

        // A wide window shows two columns.
        ui.client.set_window_rect(0, 0, 1280, 800).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        ui.client.execute("window.scrollTo(0, 0);", vec![]).await?;
        let columns = ui
            .client
            .execute(
                "return getComputedStyle(document.querySelector(\"[data-testid='connections']\")).gridTemplateColumns.split(' ').length;",
                vec![],
            )
            .await?;
        ensure!(columns.as_u64() == Some(2), "{columns} columns at 1280 px");
        ui.screenshot(&shots, "app-many-5-wide-two-columns").await?;

        // Every card shows its platform's mark (the seeded accounts have no pictures), not a letter.
        let marks = ui
            .client
            .execute(
                "return [...document.querySelectorAll(\"[data-testid='connection-card']\")].map(c => c.querySelector('.avatar').dataset.mark ?? null);",
                vec![],
            )
            .await?;
        let marks: Vec<Option<String>> = serde_json::from_value(marks)?;
        ensure!(marks.iter().all(Option::is_some), "cards without a mark: {marks:?}");
        let providers = ui
            .client
            .execute(
                "return [...document.querySelectorAll(\"[data-testid='connection-card']\")].map(c => c.dataset.provider);",
                vec![],
            )
            .await?;
        let providers: Vec<String> = serde_json::from_value(providers)?;
        ensure!(
            marks.iter().zip(&providers).all(|(m, p)| m.as_deref() == Some(p.as_str())),
            "marks {marks:?} for {providers:?}"
        );

        // Grouped by platform: a heading per platform with its count (and how many need you), the choice kept
        // across a reload.
        ui.click(&tid("group-toggle"), "Group by platform").await?;
        let heads = ui
            .client
            .execute(
                "return [...document.querySelectorAll(\"[data-testid='group-head']\")].map(h => h.textContent);",
                vec![],
            )
            .await?;
        let heads: Vec<String> = serde_json::from_value(heads)?;
        ensure!(heads.len() == PLATFORMS, "{} group headings: {heads:?}", heads.len());
        ensure!(heads.iter().any(|h| h.starts_with("YouTube") && h.contains("3 accounts")), "{heads:?}");
        ensure!(heads.iter().any(|h| h.starts_with("X") && h.contains("3 accounts · 1 needs you")), "{heads:?}");
        let pressed = ui.attr(&tid("group-toggle"), "aria-pressed").await?;
        ensure!(pressed.as_deref() == Some("true"), "aria-pressed {pressed:?}");
        ui.screenshot(&shots, "app-many-6-grouped-by-platform").await?;
        ui.client.execute("location.reload();", vec![]).await?;
        ui.wait_for(&tid("group-head"), limit, "the group headings after a reload").await?;
        let pressed = ui.attr(&tid("group-toggle"), "aria-pressed").await?;
        ensure!(pressed.as_deref() == Some("true"), "the grouping was not kept: {pressed:?}");
        ui.click(&tid("group-toggle"), "Group by platform").await?;
        let left = ui
            .client
            .execute("return document.querySelectorAll(\"[data-testid='group-head']\").length;", vec![])
            .await?;
        ensure!(left.as_u64() == Some(0), "{left} headings after ungrouping");

        // Compact: one row per working account (a second line only for what needs the person), so the twenty
        // fit on a screen or so; kept across a reload like the grouping.
        ui.click(&tid("compact-toggle"), "Compact").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let heights = ui
            .client
            .execute(
                "return [...document.querySelectorAll(\"[data-testid='connection-card'][data-status='connected']\")].map(c => c.getBoundingClientRect().height);",
                vec![],
            )
            .await?;
        let heights: Vec<f64> = serde_json::from_value(heights)?;
        ensure!(heights.len() == ACCOUNTS.len() - 4, "{} connected cards", heights.len());
        ensure!(heights.iter().all(|h| *h <= 64.0), "compact rows are taller than one line: {heights:?}");
        ui.client.execute("document.querySelector('details[open]')?.removeAttribute('open'); window.scrollTo(0, 0);", vec![]).await?;
        ui.screenshot(&shots, "app-many-7-compact").await?;
        ui.client.execute("location.reload();", vec![]).await?;
        ui.wait_for(&format!("{} {}", tid("connections"), tid("connection-card")), limit, "the cards after a reload").await?;
        let pressed = ui.attr(&tid("compact-toggle"), "aria-pressed").await?;
        ensure!(pressed.as_deref() == Some("true"), "the compact layout was not kept: {pressed:?}");
        ui.click(&tid("compact-toggle"), "Compact").await?;
        Ok(())
    }
    .await;
    ui.client.close().await.ok();
    drop(driver);
    result
}
