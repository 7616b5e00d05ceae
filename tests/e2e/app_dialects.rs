//! One platform of each dialect family, set up and connected in the real app window, against the strict
//! emulations of `tests/js/platforms.mjs`, with the shipped presets (hosts moved) imported through the window:
//!
//! - **loopback** (TikTok: hex PKCE, `client_key`, comma scopes): the client id and secret typed into the setup
//!   form, the browser comes back to Tokenkeep's listener; then "Refresh now" (a rotation at the platform);
//! - **pasted redirect** (Instagram: an https page registered with Meta): the page typed into the setup form, the
//!   address the browser lands on pasted into the window's field; then the long-lived token is the one stored;
//! - **a platform of many servers** (Mastodon): the server typed into "Add your server", Tokenkeep registers itself
//!   there, the server's own provider appears and connects; then Disconnect revokes at the server.
//!
//! The app runs under Xvfb with the session's gnome-keyring, driven through tauri-driver + WebKitWebDriver; the
//! browser is `tests/js/follow.mjs`. Every state is saved as `target/screenshots/app-dialects-NN-<state>.png`.
//! Afterwards no emulation refused anything, and the CLI (same session and home) lists what the window left.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use fantoccini::Locator;
use serde_json::json;
use tokenkeep_e2e::cli::{PROFILE, Tokenkeep};
use tokenkeep_e2e::platforms::{CLIENT_ID, CLIENT_SECRET, PASTE_PAGE, Platform, follow_browser};
use tokenkeep_e2e::window::{Ui, tid};
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

const S5: Duration = Duration::from_secs(5);
const S20: Duration = Duration::from_secs(20);

/// Timings go to the captured test output (`--no-capture` shows them).
#[expect(clippy::print_stderr, reason = "timings are reported to whoever runs the test")]
fn note(started: Instant, message: &str) {
    eprintln!("app_dialects: +{:.1?} {message}", started.elapsed());
}

struct Run {
    ui: Ui,
    shots: PathBuf,
    taken: usize,
    started: Instant,
    /// Where the follow browser writes the address it landed on (paste platforms).
    landing: PathBuf,
}

impl Run {
    async fn shot(&mut self, state: &str) -> Result<()> {
        self.taken += 1;
        let name = format!("app-dialects-{:02}-{state}", self.taken);
        self.ui.screenshot(&self.shots, &name).await?;
        note(self.started, &format!("recorded {name}"));
        Ok(())
    }

    /// Opens "Add an account" from the header (or the empty state).
    async fn open_panel(&self) -> Result<()> {
        let header = self
            .ui
            .client
            .find_all(Locator::Css(&tid("add-account-button")))
            .await?;
        let button = if header.is_empty() {
            "empty-connect-button"
        } else {
            "add-account-button"
        };
        self.ui.click(&tid(button), "no button opens the connect panel").await?;
        self.ui
            .wait_for(&tid("connect-panel"), S5, "the connect panel did not open")
            .await?;
        Ok(())
    }

    /// Opens the import form (if it is not open) and puts `text` into its field, as a paste would (it is long).
    async fn paste_definition(&mut self, text: &str) -> Result<()> {
        let area = format!("{} textarea[name='text']", tid("import-form"));
        if self.ui.client.find_all(Locator::Css(&area)).await?.is_empty() {
            self.ui
                .click(&tid("import-toggle"), "no Import a definition button")
                .await?;
        }
        self.ui.wait_for(&area, S5, "the import form did not open").await?;
        self.ui
            .client
            .execute(
                "const a = document.querySelector(arguments[0]); a.value = arguments[1]; \
                 a.dispatchEvent(new Event('input', { bubbles: true }));",
                vec![json!(area), json!(text)],
            )
            .await?;
        Ok(())
    }

    /// A broken definition is refused in the form, naming the field and its line; the form stays open.
    async fn import_refused(&mut self, text: &str, expected: &str) -> Result<()> {
        self.paste_definition(text).await?;
        self.ui.click(&tid("import-save"), "no Import button").await?;
        let error = self
            .ui
            .text_of(
                &format!("{} .inline-error:not([hidden])", tid("import-form")),
                S20,
                "a broken definition showed no error",
            )
            .await?;
        ensure!(error.contains(expected), "the import error reads {error:?}");
        self.shot("import-refused").await?;
        Ok(())
    }

    /// Imports a definition through the window.
    async fn import(&mut self, name: &str, text: &str) -> Result<()> {
        self.paste_definition(text).await?;
        self.shot(&format!("import-{name}")).await?;
        self.ui.click(&tid("import-save"), "no Import button").await?;
        self.ui
            .wait_gone(&tid("import-form"), S20, "the import form stayed open (refused?)")
            .await
            .map_err(|e| anyhow!("{e:#}"))?;
        Ok(())
    }

    /// Fills the setup form of `provider` and saves it; the row then offers Connect.
    async fn set_up(&mut self, provider: &str, fields: &[(&str, &str)]) -> Result<()> {
        self.ui
            .click(&tid(&format!("provider-{provider}-setup")), "no Set up button")
            .await?;
        let form = format!("{}[data-provider-id='{provider}']", tid("configure-form"));
        self.ui.wait_for(&form, S5, "the setup form did not open").await?;
        for (name, value) in fields {
            self.ui
                .fill(
                    &format!("{form} input[name='{name}']"),
                    value,
                    "a setup field is missing",
                )
                .await?;
        }
        self.shot(&format!("setup-{provider}")).await?;
        self.ui.click(&tid("configure-save"), "no Save button").await?;
        self.ui
            .wait_for(
                &tid(&format!("provider-{provider}-connect")),
                S20,
                "the provider is not ready after saving its setup",
            )
            .await?;
        Ok(())
    }

    /// Presses Connect on `provider` and waits for the outcome; for a paste platform, pastes the landing address.
    async fn connect(&mut self, provider: &str, account: &str, paste: bool) -> Result<String> {
        let _ = std::fs::remove_file(&self.landing);
        self.ui
            .click(&tid(&format!("provider-{provider}-connect")), "no Connect button")
            .await?;
        if paste {
            self.ui
                .wait_for(
                    &tid("connect-paste-input"),
                    S20,
                    "the window never asked for the address",
                )
                .await?;
            let address = wait_for_file(&self.landing, S20).await?;
            ensure!(address.starts_with(PASTE_PAGE), "the browser landed on {address}");
            self.ui
                .fill(&tid("connect-paste-input"), &address, "no field for the address")
                .await?;
            self.shot(&format!("paste-{provider}")).await?;
            self.ui.click(&tid("connect-paste-send"), "no Continue button").await?;
        }
        let (said, tone) = self
            .ui
            .text_and_attr(
                &tid("connect-outcome"),
                "data-outcome",
                Duration::from_secs(40),
                "the sign-in never ended",
            )
            .await?;
        ensure!(
            tone.as_deref() == Some("ok") && said.contains(account),
            "connecting {provider}: the outcome is {tone:?}: {said:?}"
        );
        self.shot(&format!("connected-{provider}")).await?;
        self.ui.click(&tid("connect-close"), "no Done button").await?;
        self.ui
            .wait_gone(&tid("connect-panel"), S5, "the connect panel stayed open")
            .await?;
        let card = card_of(provider);
        let name = self
            .ui
            .text_of(
                &format!("{card} {}", tid("account-name")),
                S5,
                "no card for the connection",
            )
            .await?;
        ensure!(name == account, "the {provider} card names {name:?}");
        self.ui
            .attr(&card, "data-connection-id")
            .await?
            .ok_or_else(|| anyhow!("the card has no connection id"))
    }
}

/// The card of the connection at `provider`.
fn card_of(provider: &str) -> String {
    format!("{}[data-provider='{provider}']", tid("connection-card"))
}

async fn wait_for_file(path: &Path, limit: Duration) -> Result<String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Ok(text.trim().to_owned());
        }
        if Instant::now() > deadline {
            bail!(
                "the browser wrote no landing address to {} within {limit:?}",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_sets_up_and_connects_one_platform_of_each_dialect_family() -> Result<()> {
    let started = Instant::now();
    for entry in std::fs::read_dir(screenshot_dir()?)? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("app-dialects-"))
        {
            std::fs::remove_file(&path)?;
        }
    }
    let tiktok = Platform::start("tiktok")?;
    let instagram = Platform::start("instagram")?;
    let mastodon = Platform::start("mastodon")?;
    let dir = scratch_dir("app-dialects")?;
    let session = HeadlessSession::start(&dir)?;
    let tk = Tokenkeep::in_session(&session)?;
    let home = tk
        .profile_dir()
        .parent()
        .ok_or_else(|| anyhow!("the profile directory has no parent"))?
        .to_path_buf();
    let landing = dir.join("landing.txt");
    let env: [(&str, OsString); 4] = [
        ("TOKENKEEP_HOME", home.into()),
        ("TOKENKEEP_PROFILE", PROFILE.into()),
        ("TOKENKEEP_BROWSER", follow_browser()?.into()),
        ("TK_FOLLOW_PASTE", landing.clone().into()),
    ];
    let driver = TauriDriver::start(&session, &env)?;
    let client = driver.connect(&built_binary("tokenkeep-app")?).await?;
    note(started, "app started");
    let mut run = Run {
        ui: Ui { client },
        shots: screenshot_dir()?,
        taken: 0,
        started,
        landing,
    };
    let result = scenario(&mut run, &tiktok, &instagram, &mastodon).await;
    if result.is_err() {
        let _ = run.shot("failure").await;
    }
    let closed = run.ui.client.close().await;
    result?;
    closed.context("the WebDriver session did not close")?;
    for platform in [&tiktok, &instagram, &mastodon] {
        platform.ensure_nothing_refused()?;
    }
    note(started, "done");
    Ok(())
}

async fn scenario(run: &mut Run, tiktok: &Platform, instagram: &Platform, mastodon: &Platform) -> Result<()> {
    run.ui
        .wait_for("body[data-ready='true']", S20, "the UI never finished rendering")
        .await?;
    run.ui.wait_for("#empty-title", S20, "no empty state").await?;

    // Loopback: TikTok.
    run.open_panel().await?;
    run.shot("panel").await?;
    let typo = tiktok
        .moved_preset("tiktok")?
        .replace("scope_separator", "scope_seperator");
    // The line of the typo, as an editor numbers it: the error must point there.
    let line = typo
        .lines()
        .position(|l| l.starts_with("scope_seperator"))
        .ok_or_else(|| anyhow!("the TikTok preset has no scope_separator line"))?
        + 1;
    run.import_refused(&typo, &format!("line {line}: unknown field `scope_seperator`"))
        .await?;
    run.import("tiktok", &tiktok.moved_preset("tiktok")?).await?;
    run.set_up("tiktok", &[("clientId", CLIENT_ID), ("clientSecret", CLIENT_SECRET)])
        .await?;
    run.connect("tiktok", "Ada on TikTok", false).await?;
    note(run.started, "TikTok connected");
    let card = card_of("tiktok");
    // The card's "Last refreshed" title is precise to the second, and so is the connection's refresh time: a
    // refresh within the connect's own second reads the same. Let that second pass first.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token_requests = tiktok.requests("POST /open.tiktokapis.com/v2/oauth/token/")?;
    let before = run.ui.attr(&format!("{card} {}", tid("last-refresh")), "title").await?;
    run.ui
        .click(&format!("{card} {}", tid("refresh-button")), "no Refresh now button")
        .await?;
    let deadline = Instant::now() + S20;
    loop {
        let requests = tiktok.requests("POST /open.tiktokapis.com/v2/oauth/token/")?;
        let title = run.ui.attr(&format!("{card} {}", tid("last-refresh")), "title").await?;
        if requests != token_requests && title != before {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "Refresh now: TikTok saw {requests} token requests (before: {token_requests}); \
             the card's last refresh reads {title:?} (before: {before:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.ui
        .wait_for(
            &format!("{card}[data-status='connected']"),
            S5,
            "the card is not connected after the refresh",
        )
        .await?;
    run.shot("tiktok-refreshed").await?;

    // Pasted redirect: Instagram.
    run.open_panel().await?;
    run.import("instagram", &instagram.moved_preset("instagram")?).await?;
    run.set_up(
        "instagram",
        &[
            ("clientId", CLIENT_ID),
            ("clientSecret", CLIENT_SECRET),
            ("redirectUri", PASTE_PAGE),
        ],
    )
    .await?;
    run.connect("instagram", "ada.creates", true).await?;
    note(run.started, "Instagram connected by pasting");
    let state = instagram.state()?;
    let tokens = state["tokens"].as_array().cloned().unwrap_or_default();
    ensure!(
        tokens.iter().any(|t| t["kind"] == "access" && t["active"] == true),
        "Instagram issued no long-lived token: {state}"
    );

    // A platform of many servers: Mastodon.
    run.open_panel().await?;
    run.ui
        .click(
            &tid("provider-mastodon-setup"),
            "Mastodon offers no way to add a server",
        )
        .await?;
    let server = format!("{} input[name='server']", tid("server-form"));
    run.ui.wait_for(&server, S5, "no server field").await?;
    run.ui.fill(&server, &mastodon.origin(), "no server field").await?;
    run.shot("mastodon-server").await?;
    run.ui.click(&tid("server-save"), "no Add server button").await?;
    let port = mastodon.origin().rsplit(':').next().unwrap_or_default().to_owned();
    let provider = format!("127-0-0-1-{port}");
    run.ui
        .wait_for(
            &tid(&format!("provider-{provider}-connect")),
            S20,
            "the server's provider did not appear",
        )
        .await?;
    run.shot("mastodon-added").await?;
    let id = run.connect(&provider, "ada", false).await?;
    note(run.started, "Mastodon connected");
    let cards = run.ui.client.find_all(Locator::Css(&tid("connection-card"))).await?;
    ensure!(cards.len() == 3, "{} cards for three connections", cards.len());
    run.shot("three-connected").await?;

    // Disconnect at the server: revoked there.
    let card = format!("{}[data-connection-id='{id}']", tid("connection-card"));
    run.ui
        .click(&format!("{card} {}", tid("disconnect-button")), "no Disconnect button")
        .await?;
    run.ui.click(&tid("confirm-disconnect"), "no confirm button").await?;
    let (said, revocation) = run
        .ui
        .text_and_attr(
            &tid("disconnect-result"),
            "data-revocation",
            S20,
            "the disconnect never finished",
        )
        .await?;
    ensure!(
        revocation.as_deref() == Some("revoked"),
        "disconnecting Mastodon: revocation={revocation:?}: {said:?}"
    );
    run.shot("mastodon-disconnected").await?;
    let state = mastodon.state()?;
    ensure!(
        state["tokens"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["active"] == false)),
        "a Mastodon token is still active after the disconnect: {state}"
    );
    Ok(())
}
