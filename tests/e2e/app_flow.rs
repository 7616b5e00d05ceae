//! The whole life of one connection in the real app window, as a creator would live it: connect through the
//! browser, watch it refresh on its own, lose it behind the app's back, reconnect, inspect and reveal, disconnect.
//!
//! Everything is real: the built `tokenkeep-app` under Xvfb, driven through tauri-driver + WebKitWebDriver; the
//! session's own gnome-keyring holds the master key (no `TOKENKEEP_MASTER_KEY`); the OAuth test peer issues
//! 10-second access tokens with rotation; the login driver (headless Chromium, `TOKENKEEP_BROWSER`) signs in as
//! alice. Every state is saved as `target/screenshots/app-flow-NN-<state>.png` for people to look at.
//!
//! # How the app gets its environment
//! tauri-driver starts WebKitWebDriver, which starts the app, each inheriting its parent's environment; so the
//! variables given to [`TauriDriver::start`] reach the app and the login driver the app starts. The test checks
//! that instead of assuming it: the header's profile badge must name the `e2e` profile (the app's default is
//! `dev`), and the app's log must be under the `TOKENKEEP_HOME` given here.
//!
//! # Waiting
//! Every wait is for a condition (a CSS selector or its absence through WebDriver, a log line, an exit), each
//! with a limit; no step sleeps for a fixed time. The card must change through the app's events alone: a marker
//! set in the page before the wait must still be there after it, which proves the page was not reloaded.
//!
//! # DOM secrecy (why exact values, not token shapes)
//! Every step keeps the page source (`client.source()`). At the end the test asks the peer, through a TEST-ONLY
//! admin call ([`OidcPeer::issued_tokens_of`]), for the value of every access and refresh token it ever issued
//! to alice (both grants, every rotation), and checks each kept source: no issued token appears in it, except the
//! access token the user revealed, and only in the sources taken while it was shown. Exact values are sound in
//! both directions. A check by shape (43 base64url characters) would flag what the page legitimately shows —
//! the sign-in address carries `state`, `nonce` and `code_challenge` of that very shape, and the Inspect dialog
//! lists the decoded ID token's `nonce` — and every exception carved out for them would be a place a token could
//! hide. The check is shown to bite: the source taken during the reveal must contain the revealed value, and
//! that value must be one the peer issued. ID tokens (JWTs, which the peer does not list) are caught by shape
//! instead: no source may contain `eyJ….eyJ` (a JWT's header and payload), which nothing else produces. The same
//! exact values must also be absent from the app's log.
//!
//! # Notifications and lifetimes
//! The revocation must give exactly one `desktop notification sent` line for the connection (the card of a dead
//! connection offers Reconnect, not "Refresh now"); the count is checked again at the end of the run. Before the reconnect the
//! peer switches to 300-second access tokens, so that after the disconnect the revealed access token can only
//! be inactive because Tokenkeep revoked it, not because it ran out.
//!
//! # Timing
//! About 25–35 s: app start ~1 s, two browser sign-ins ~2 s each, a little over one 10-second access-token
//! lifetime watching automatic refreshes, a few seconds for the revocation to be noticed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use fantoccini::Locator;
use tokenkeep_e2e::cli::{PROFILE, Tokenkeep};
use tokenkeep_e2e::peer::{OidcPeer, PeerChange, PeerConfig, tokenkeep_browser};
use tokenkeep_e2e::seed::{DEMO, add_demo};
use tokenkeep_e2e::window::{SETTLE_FRAMES, Ui, tid};
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

/// The login name the login driver signs in with (the peer's account id).
const LOGIN: &str = "alice";
/// The account the app shows for alice (the demo provider takes the `email` claim).
const ACCOUNT: &str = "alice@example.test";
/// The demo provider's display name.
const DEMO_NAME: &str = "Demo (local)";
/// Access-token lifetime at the peer for the first connection: short, so the app refreshes within seconds.
const SHORT_TTL: u64 = 10;
/// Access-token lifetime after the revocation: long, so that after the disconnect the revealed access token can
/// only be inactive because Tokenkeep revoked it, not because it expired.
const LONG_TTL: u64 = 300;
/// What the app logs for each connection a shown desktop notification names (`src-tauri/src/notify.rs`).
const NOTIFICATION_SENT: &str = "desktop notification sent";

/// Timings go to the captured test output (`--no-capture` shows them).
#[expect(clippy::print_stderr, reason = "timings are reported to whoever runs the test")]
fn note(started: Instant, message: &str) {
    eprintln!("app_flow: +{:.1?} {message}", started.elapsed());
}

/// One page source kept for the secrecy check at the end.
struct Capture {
    label: String,
    source: String,
    /// The token value shown in the page when the source was taken (the user had pressed Reveal).
    revealed: Option<String>,
}

/// The WebDriver client plus what the run keeps: screenshots (numbered) and page sources.
struct Window {
    ui: Ui,
    shots: PathBuf,
    taken: usize,
    captures: Vec<Capture>,
    started: Instant,
}

impl std::ops::Deref for Window {
    type Target = Ui;
    fn deref(&self) -> &Ui {
        &self.ui
    }
}

impl Window {
    /// Saves `app-flow-NN-<state>.png` and keeps the page source; `revealed` is the token on screen, if any.
    async fn record(&mut self, state: &str, revealed: Option<&str>) -> Result<String> {
        self.taken += 1;
        let label = format!("app-flow-{:02}-{state}", self.taken);
        self.client.execute_async(SETTLE_FRAMES, vec![]).await?;
        let png = self.client.screenshot().await?;
        ensure!(png.starts_with(b"\x89PNG"), "the screenshot {label} is not a PNG");
        std::fs::write(self.shots.join(format!("{label}.png")), &png)?;
        let source = self.client.source().await?;
        note(self.started, &format!("recorded {label}"));
        self.captures.push(Capture {
            label,
            source: source.clone(),
            revealed: revealed.map(str::to_owned),
        });
        Ok(source)
    }
}

/// The card of connection `id` (any status when `status` is `None`).
fn card(id: &str, status: Option<&str>) -> String {
    let status = status.map_or_else(String::new, |s| format!("[data-status='{s}']"));
    format!("{}[data-connection-id='{id}']{status}", tid("connection-card"))
}

/// A CSS string literal for `value` (attribute values such as locale date strings).
fn css_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\a "),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `desktop notification sent` lines of the app log for connection `hex`.
fn notifications(log: &Path, hex: &str) -> Result<usize> {
    let text = std::fs::read_to_string(log).with_context(|| format!("no app log at {}", log.display()))?;
    Ok(text
        .lines()
        .filter(|l| l.contains(NOTIFICATION_SENT) && l.contains(&format!("connection={hex}")))
        .count())
}

/// Waits (at most `limit`) until the app log has at least one notification line for `hex`; returns the count.
async fn wait_for_notification(log: &Path, hex: &str, limit: Duration) -> Result<usize> {
    let deadline = Instant::now() + limit;
    loop {
        let n = notifications(log, hex)?;
        if n > 0 {
            return Ok(n);
        }
        if Instant::now() > deadline {
            bail!("the app logged no {NOTIFICATION_SENT:?} for connection {hex} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `source` holds something shaped like a JWT: `eyJ<base64url>.eyJ` (a JSON header, then a JSON payload).
fn contains_jwt(source: &str) -> bool {
    let b64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    source.match_indices("eyJ").any(|(start, _)| {
        let rest = &source.as_bytes()[start..];
        let run = rest.iter().take_while(|b| b64url(**b)).count();
        rest.get(run) == Some(&b'.') && rest[run + 1..].starts_with(b"eyJ")
    })
}

/// The WebDriver session ends by closing the app; until it has exited the store is held and the CLI fails with
/// "in use". Retries `list --json` while that is the reason, within `limit`.
fn list_after_app_exit(tk: &Tokenkeep, limit: Duration) -> Result<Vec<serde_json::Value>> {
    let deadline = Instant::now() + limit;
    loop {
        let out = tk.run(&["list", "--json"], None)?;
        if out.status.success() {
            return serde_json::from_str(&out.stdout)
                .with_context(|| format!("`list --json` printed {:?}", out.stdout));
        }
        let held = out.stderr.contains("in use by");
        if !held || Instant::now() > deadline {
            out.ensure_code(0)?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_flow_connect_refresh_revoke_reconnect_inspect_disconnect() -> Result<()> {
    let started = Instant::now();
    // Screenshots of an earlier run would mix with this one's (the numbering depends on how far a run got).
    for entry in std::fs::read_dir(screenshot_dir()?)? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("app-flow-"))
        {
            std::fs::remove_file(&path)?;
        }
    }
    let dir = scratch_dir("app-flow")?;
    let session = HeadlessSession::start(&dir)?;
    // A notification server takes the attention notification: the app logs one only when a server showed it.
    let _notifications = tokenkeep_e2e::desktop::Notifications::start(&session)?;
    let peer = OidcPeer::start(&PeerConfig {
        access_token_ttl: SHORT_TTL,
        rotate_refresh_token: true,
        ..PeerConfig::default()
    })?;
    // The CLI lives in the same session and home as the app: same profile, same keyring, same store.
    let tk = Tokenkeep::in_session(&session)?;
    add_demo(&tk, &peer)?; // writes config.toml only; does not open the store
    let home = tk
        .profile_dir()
        .parent()
        .ok_or_else(|| anyhow!("the profile directory has no parent"))?
        .to_path_buf();
    let app_log = tk.profile_dir().join("logs").join("tokenkeep-app.log");
    let login_log = dir.join("login-driver.log");
    let env: [(&str, OsString); 5] = [
        ("TOKENKEEP_HOME", home.into()),
        ("TOKENKEEP_PROFILE", PROFILE.into()),
        ("TOKENKEEP_BROWSER", tokenkeep_browser()?.into()),
        ("PEER_LOGIN", LOGIN.into()),
        ("PEER_LOG", login_log.clone().into()),
    ];
    let driver = TauriDriver::start(&session, &env)?;
    let client = driver.connect(&built_binary("tokenkeep-app")?).await?;
    note(started, "app started");
    let mut w = Window {
        ui: Ui { client },
        shots: screenshot_dir()?,
        taken: 0,
        captures: Vec::new(),
        started,
    };

    let result = scenario(&mut w, &peer, &app_log, &tk).await;
    if result.is_err() {
        // What the window showed when it went wrong, for whoever reads the failure.
        let _ = w.record("failure", None).await;
    }
    let Window { ui, captures, .. } = w;
    let client = ui.client;
    // Step 8: closing the WebDriver session closes the app, which releases the store.
    let closed = client.close().await;
    let result = result.and_then(|revealed| {
        closed.context("the WebDriver session did not close")?;
        let listed = list_after_app_exit(&tk, Duration::from_secs(20))?;
        ensure!(
            listed.is_empty(),
            "after the disconnect, `list --json` shows {listed:?}"
        );
        note(started, "app closed; the CLI lists nothing");
        check_secrecy(&peer, &captures, &revealed, &app_log)
    });
    if result.is_err() {
        note(
            started,
            &format!(
                "logs: app {} · login driver {} · peer {} · tauri-driver {}",
                app_log.display(),
                login_log.display(),
                peer.log_path().display(),
                dir.join("tauri-driver.log").display()
            ),
        );
    }
    note(started, "done");
    result
}

/// Steps 1–7 in the window. Returns the access token that was revealed.
async fn scenario(w: &mut Window, peer: &OidcPeer, app_log: &Path, tk: &Tokenkeep) -> Result<String> {
    let started = w.started;
    let s5 = Duration::from_secs(5);
    let s20 = Duration::from_secs(20);

    // 1. Empty state, with the environment given to tauri-driver in force.
    w.wait_for("body[data-ready='true']", s20, "the UI never finished rendering")
        .await?;
    w.wait_for(
        &format!("{}[data-tone='ok']", tid("vault-indicator")),
        s20,
        "the vault did not open with the session keyring",
    )
    .await?;
    let badge = w.text("#profile-badge").await?;
    ensure!(
        badge.to_lowercase().contains(PROFILE),
        "the profile badge reads {badge:?}: TOKENKEEP_PROFILE={PROFILE} did not reach the app through tauri-driver"
    );
    ensure!(
        app_log.is_file(),
        "no app log at {}: TOKENKEEP_HOME did not reach the app",
        app_log.display()
    );
    let empty = w.text_of("#empty-title", s5, "no empty state").await?;
    ensure!(empty == "No accounts connected yet", "the empty state reads {empty:?}");
    w.record("empty", None).await?;

    // 2. Connect from the empty state.
    w.click(&tid("empty-connect-button"), "no Connect button in the empty state")
        .await?;
    w.wait_for(&tid("connect-panel"), s5, "the connect panel did not open")
        .await?;
    let connect_demo = tid(&format!("provider-{DEMO}-connect"));
    w.wait_for(&connect_demo, s5, "the demo provider is not offered")
        .await?;
    w.record("connect-panel", None).await?;
    w.click(&connect_demo, "cannot press Connect on the demo provider")
        .await?;
    let waiting = w
        .text_of(&tid("connect-waiting"), s5, "no \"Waiting for the browser…\"")
        .await?;
    ensure!(
        waiting.contains("Waiting for the browser"),
        "the waiting state reads {waiting:?}"
    );
    w.record("waiting-for-browser", None).await?;
    let (said, tone) = w
        .text_and_attr(
            &tid("connect-outcome"),
            "data-outcome",
            Duration::from_secs(40),
            "the sign-in never ended",
        )
        .await?;
    ensure!(
        tone.as_deref() == Some("ok") && said.contains(&format!("Connected as {ACCOUNT}")),
        "the connect outcome is {tone:?}: {said:?}"
    );
    // The first access token was issued before the window said so: it has expired SHORT_TTL from now.
    let first_token_dead = Instant::now() + Duration::from_secs(SHORT_TTL);
    note(started, "connected in the window");
    w.record("connected-outcome", None).await?;
    w.click(&tid("connect-close"), "no Done button").await?;
    w.wait_gone(&tid("connect-panel"), s5, "the connect panel stayed open")
        .await?;
    let (_, id) = w
        .text_and_attr(
            &format!("{}[data-status='connected']", tid("connection-card")),
            "data-connection-id",
            s5,
            "no connected card after connecting",
        )
        .await?;
    let id = id.ok_or_else(|| anyhow!("the card has no data-connection-id"))?;
    let cards = w.client.find_all(Locator::Css(&tid("connection-card"))).await?;
    ensure!(cards.len() == 1, "{} cards after one connect", cards.len());
    let account = w.text(&format!("{} {}", card(&id, None), tid("account-name"))).await?;
    ensure!(account == ACCOUNT, "the card shows the account {account:?}");
    // The account's picture (the peer's PNG, fetched once at connect), from the vault as a data: image, with the
    // platform's mark as its badge; nothing is fetched to show it.
    let picture = w
        .attr(&format!("{} .avatar img.avatar-img", card(&id, None)), "src")
        .await?
        .unwrap_or_default();
    ensure!(
        picture.starts_with("data:image/png;base64,"),
        "the card's picture is {picture:?}"
    );
    w.wait_for(
        &format!("{} .avatar-badge svg", card(&id, None)),
        s5,
        "no platform badge on the picture",
    )
    .await?;
    ensure!(
        peer.stats()?.picture_requests == 1,
        "the picture was fetched {} times",
        peer.stats()?.picture_requests
    );
    w.record("card-connected", None).await?;

    // 3. The access token's lifetime passes: the engine refreshes and the card follows, through events only.
    let last_refresh = format!("{} {}", card(&id, None), tid("last-refresh"));
    let before_title = w.attr(&last_refresh, "title").await?;
    let before_text = w.text(&last_refresh).await?;
    let refreshes_before = peer.stats()?.refresh_requests;
    w.client
        .execute("window.__appFlowNotReloaded = true; return null;", vec![])
        .await?;
    // Follow the card through its automatic refreshes until the first access token's lifetime is over: each
    // refresh must show up as a newer "last refreshed" time on a connected card, with nobody touching the window.
    let mut title = before_title.clone();
    let mut seen = 0;
    let (after_text, after_title) = loop {
        let changed = match &title {
            Some(t) => format!("[title]:not([title={}])", css_string(t)),
            None => "[title]".to_owned(),
        };
        let (text, newer) = w
            .text_and_attr(
                &format!("{} {}{changed}", card(&id, Some("connected")), tid("last-refresh")),
                "title",
                Duration::from_secs(2 * SHORT_TTL + 5),
                "the card never showed a newer refresh on its own",
            )
            .await?;
        seen += 1;
        if Instant::now() >= first_token_dead {
            break (text, newer);
        }
        title = newer;
    };
    note(
        started,
        &format!(
            "{seen} automatic refresh(es) seen: {before_text:?} {before_title:?} → {after_text:?} {after_title:?}"
        ),
    );
    let pill = w.attr(&card(&id, None), "data-pill").await?;
    ensure!(
        pill.as_deref() != Some("expired"),
        "past the first token's lifetime the card shows the pill {pill:?}"
    );
    let kept = w
        .client
        .execute("return window.__appFlowNotReloaded === true;", vec![])
        .await?;
    ensure!(
        kept == serde_json::Value::Bool(true),
        "the page was reloaded: the card must change through events"
    );
    ensure!(
        peer.stats()?.refresh_requests > refreshes_before,
        "the card changed but the peer saw no refresh"
    );
    w.record("refreshed-automatically", None).await?;

    // 4. The peer revokes the grant behind the app's back: the next refresh finds out.
    ensure!(
        peer.revoke_grant_for(LOGIN)? == 1,
        "the peer revoked no grant of {LOGIN}"
    );
    note(started, "grant revoked at the peer");
    w.wait_for(
        &card(&id, Some("needs_reconnect")),
        Duration::from_secs(2 * SHORT_TTL + 5),
        "the card never showed needs_reconnect",
    )
    .await?;
    let reconnect = format!("{} {}", card(&id, None), tid("reconnect-button"));
    ensure!(
        w.on(
            &reconnect,
            Duration::from_secs(5),
            "no Reconnect button",
            |e| async move { e.is_displayed().await }
        )
        .await?,
        "no Reconnect button on the card"
    );
    let pill = w.text(&format!("{} {}", card(&id, None), tid("status-pill"))).await?;
    ensure!(pill == "Needs reconnect", "the pill reads {pill:?}");
    let sent = wait_for_notification(app_log, &id, s5).await?;
    ensure!(sent == 1, "{sent} desktop notifications for one revocation");
    note(started, "needs_reconnect shown, one notification");
    w.record("needs-reconnect", None).await?;
    // Issue 13: a dead connection says it once, in words — no OAuth code, no internal id, no expiry or "Refresh
    // now" that cannot help — and the summary at the top names the account with its Reconnect.
    let hidden = |what: &'static str| {
        let css = format!("{} {}", card(&id, None), tid(what));
        let w = &w;
        async move { w.on(&css, s5, what, |e| async move { e.is_displayed().await }).await }
    };
    ensure!(!hidden("refresh-button").await?, "a dead connection offers Refresh now");
    ensure!(!hidden("expiry").await?, "a dead connection shows its token's expiry");
    let card_text = w.text(&card(&id, None)).await?;
    ensure!(
        !card_text.contains("invalid_grant"),
        "the OAuth code is on the card: {card_text}"
    );
    ensure!(
        !card_text.contains("Last problem"),
        "the failure is repeated: {card_text}"
    );
    ensure!(
        card_text.matches("no longer accepts").count() == 1,
        "the card says it once: {card_text}"
    );
    let summary = w.text(&tid("attention-summary")).await?;
    ensure!(summary.contains("1 account needs you"), "the summary reads {summary:?}");
    ensure!(
        !summary.contains("invalid_grant"),
        "the OAuth code is in the summary: {summary}"
    );
    let label = w
        .attr(&format!("{} .attention-reconnect", tid("attention")), "aria-label")
        .await?;
    ensure!(
        label
            .as_deref()
            .is_some_and(|l| l.starts_with("Reconnect ") && l.ends_with(ACCOUNT)),
        "the summary's Reconnect names the account: {label:?}"
    );
    let sent = notifications(app_log, &id)?;
    ensure!(sent == 1, "{sent} desktop notifications for one incident");
    w.record("needs-reconnect-one-message", None).await?;

    // 5. Reconnect: the browser signs in again, the tokens are replaced in place.
    peer.reconfigure(&PeerChange {
        access_token_ttl: Some(LONG_TTL),
        ..PeerChange::default()
    })?;
    w.click(&reconnect, "cannot press Reconnect").await?;
    w.wait_for(&tid("connect-waiting"), s5, "Reconnect did not start a sign-in")
        .await?;
    let title = w.text(&format!("{} .modal-title", tid("connect-panel"))).await?;
    ensure!(
        title == format!("Reconnect {ACCOUNT}"),
        "the reconnect panel is titled {title:?}"
    );
    w.record("reconnect-waiting", None).await?;
    let (said, tone) = w
        .text_and_attr(
            &tid("connect-outcome"),
            "data-outcome",
            Duration::from_secs(40),
            "the reconnect never ended",
        )
        .await?;
    ensure!(
        tone.as_deref() == Some("ok") && said.contains(&format!("Reconnected as {ACCOUNT}")),
        "the reconnect outcome is {tone:?}: {said:?}"
    );
    w.record("reconnected-outcome", None).await?;
    w.click(&tid("connect-close"), "no Done button after reconnecting")
        .await?;
    w.wait_gone(&tid("connect-panel"), s5, "the connect panel stayed open")
        .await?;
    w.wait_for(
        &card(&id, Some("connected")),
        s5,
        "the same card is not connected again",
    )
    .await?;
    let cards = w.client.find_all(Locator::Css(&tid("connection-card"))).await?;
    ensure!(cards.len() == 1, "{} cards after reconnecting one account", cards.len());
    w.wait_gone(&tid("attention"), s5, "the attention notice outlived the reconnect")
        .await?;
    note(started, "reconnected, same connection id");
    w.record("connected-again", None).await?;

    // 6. Inspect: metadata and token rows, no value until Reveal; the revealed one is live at the peer.
    w.click(
        &format!("{} {}", card(&id, None), tid("inspect-button")),
        "no Inspect button",
    )
    .await?;
    let row = |kind: &str| format!("{} {}[data-kind='{kind}']", tid("inspect-dialog"), tid("token-row"));
    w.wait_for(&row("access_token"), s5, "the inspect dialog shows no access token row")
        .await?;
    let dialog = w.text(&tid("inspect-dialog")).await?;
    ensure!(
        dialog.contains(ACCOUNT) && dialog.contains(DEMO_NAME),
        "the inspect dialog does not name the account and provider:\n{dialog}"
    );
    for kind in ["access_token", "refresh_token"] {
        let present = w.attr(&row(kind), "data-present").await?;
        ensure!(
            present.as_deref() == Some("true"),
            "{kind} row: data-present={present:?}"
        );
    }
    // The safe way for scripts: the window shows the `tokenkeep api` line, and that line works as shown (through
    // the app's socket: the app makes the request, the CLI never holds the token).
    let command = w.text(&tid("api-command")).await?;
    let expected = format!("tokenkeep api demo:{ACCOUNT} me");
    ensure!(
        command == expected,
        "Inspect shows the command line {command:?}, not {expected:?}"
    );
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    let answer = tk.ok(&args, None)?;
    ensure!(
        answer.stdout.contains(&format!("\"email\":\"{ACCOUNT}\"")),
        "the shown command answered {}",
        answer.stdout
    );
    w.record("inspect", None).await?;
    w.client
        .execute(
            "document.querySelector('[data-testid=\"api-command\"]').scrollIntoView({ block: 'center' }); return null;",
            vec![],
        )
        .await?;
    w.record("inspect-use-from-scripts", None).await?;
    w.client
        .execute("document.querySelector('[data-testid=\"reveal-access_token\"]').scrollIntoView({ block: 'center' }); return null;", vec![])
        .await?;
    w.click(&tid("reveal-access_token"), "no Reveal button for the access token")
        .await?;
    let revealed = w.text_of(&tid("revealed-value"), s5, "Reveal showed no value").await?;
    ensure!(!revealed.is_empty(), "the revealed value is empty");
    let source = w.record("access-token-revealed", Some(&revealed)).await?;
    ensure!(
        source.contains(&revealed),
        "the revealed value is not in the page source"
    );
    ensure!(
        peer.is_active(&revealed)?,
        "the revealed access token is not active at the peer"
    );
    w.click(&tid("reveal-hide"), "no Hide now button").await?;
    w.wait_gone(&tid("revealed-value"), s5, "Hide now left the value on screen")
        .await?;
    let source = w.record("access-token-hidden", None).await?;
    ensure!(
        !source.contains(&revealed),
        "the access token is still in the DOM after Hide now"
    );
    w.click(&tid("inspect-dialog-close"), "no close button on the inspect dialog")
        .await?;
    w.wait_gone(&tid("inspect-dialog"), s5, "the inspect dialog stayed open")
        .await?;

    // 7. Disconnect: confirm, revoke at the peer, the card goes, the empty state returns.
    w.click(
        &format!("{} {}", card(&id, None), tid("disconnect-button")),
        "no Disconnect button",
    )
    .await?;
    let confirm = w
        .text_of(&tid("disconnect-dialog"), s5, "no confirmation dialog")
        .await?;
    ensure!(
        confirm.contains(ACCOUNT),
        "the confirmation does not name the account:\n{confirm}"
    );
    w.record("confirm-disconnect", None).await?;
    w.click(&tid("confirm-disconnect"), "no confirm button").await?;
    let (said, revocation) = w
        .text_and_attr(
            &tid("disconnect-result"),
            "data-revocation",
            s20,
            "the disconnect never finished",
        )
        .await?;
    ensure!(
        revocation.as_deref() == Some("revoked"),
        "the disconnect result says revocation={revocation:?}: {said:?}"
    );
    w.wait_gone(&tid("connection-card"), s5, "the card outlived the disconnect")
        .await?;
    w.record("disconnected", None).await?;
    w.click(
        &format!("{} .modal-actions button", tid("disconnect-dialog")),
        "no Done button on the result",
    )
    .await?;
    w.wait_gone(&tid("disconnect-dialog"), s5, "the result dialog stayed open")
        .await?;
    w.wait_for("#empty-title", s5, "no empty state after the disconnect")
        .await?;
    w.record("empty-again", None).await?;
    ensure!(
        !peer.is_active(&revealed)?,
        "the revealed access token (valid for {LONG_TTL} s) is still active after the disconnect"
    );
    let left = peer.tokens_of(LOGIN)?;
    ensure!(
        left.active == 0 && left.live_grants == 0,
        "after the disconnect the peer still has live tokens for {LOGIN}: {left:?}"
    );
    let sent = notifications(app_log, &id)?;
    ensure!(
        sent == 1,
        "{sent} desktop notifications over the whole run (one incident)"
    );
    note(started, "disconnected and revoked");
    Ok(revealed)
}

/// Step 9: no token the peer issued is in any page source (but the revealed one while shown), nor in the app log.
fn check_secrecy(peer: &OidcPeer, captures: &[Capture], revealed: &str, app_log: &Path) -> Result<()> {
    let issued = peer.issued_tokens_of(LOGIN)?;
    ensure!(
        issued.iter().any(|t| t.kind == "AccessToken" && t.value == revealed),
        "the revealed value is not an access token the peer issued to {LOGIN}"
    );
    ensure!(
        issued.iter().filter(|t| t.kind == "RefreshToken").count() >= 3,
        "the peer issued fewer refresh tokens than two sign-ins and a rotation make"
    );
    for capture in captures {
        for token in &issued {
            if capture.source.contains(&token.value) && capture.revealed.as_deref() != Some(token.value.as_str()) {
                bail!(
                    "the page source of {} contains an issued token ({}) that was not revealed there",
                    capture.label,
                    token.kind
                );
            }
        }
        ensure!(
            !contains_jwt(&capture.source),
            "the page source of {} contains a JWT (an ID token?)",
            capture.label
        );
    }
    let shown_while_revealed = captures
        .iter()
        .filter(|c| c.revealed.as_deref() == Some(revealed))
        .count();
    ensure!(
        shown_while_revealed == 1,
        "{shown_while_revealed} sources were taken during the reveal"
    );
    let log = std::fs::read_to_string(app_log)?;
    if let Some(token) = issued.iter().find(|t| log.contains(&t.value)) {
        bail!("the app log contains an issued token ({})", token.kind);
    }
    ensure!(!contains_jwt(&log), "the app log contains a JWT");
    Ok(())
}

/// `contains_jwt` must see a JWT where there is one and nothing where there is none, or the secrecy check is
/// empty.
#[test]
fn app_flow_jwt_detector_finds_jwts_only() {
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";
    assert!(contains_jwt(&format!("<pre>{jwt}</pre>")));
    assert!(!contains_jwt("<p>eyJhbGciOiJSUzI1NiJ9 and eyJzdWIi</p>"));
    assert!(!contains_jwt("<p>eyJ.</p>"));
}
