//! Issue 13, "copying a token never clears the clipboard", in the real window on the session's X11 clipboard: Copy
//! in Inspect puts the token there (from Rust: it never appears in the page), a notice counts down, and when the
//! time is up the clipboard is cleared — unless the person copied something else since, which is left alone.
//! "Clear now" clears at once. Neither the page nor the app's log ever holds the token.
//!
//! The clipboard is read and taken by `clipboard-probe` (this crate's TEST-ONLY helper, on the session's display);
//! the app clears after `TOKENKEEP_CLIPBOARD_SECONDS=5` instead of 30 to keep the test short.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{ConnectionMeta, TokenSet};
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::seed::now_secs;
use tokenkeep_e2e::window::{Ui, tid};
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

const PROBE: &str = env!("CARGO_BIN_EXE_clipboard-probe");

/// What the clipboard holds now (`None`: nothing).
fn clipboard(session: &HeadlessSession) -> Result<Option<String>> {
    let out = session.command(PROBE).arg("get").output()?;
    match out.status.code() {
        Some(0) => Ok(Some(String::from_utf8(out.stdout)?)),
        Some(3) => Ok(None),
        _ => bail!("clipboard-probe get: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// Another program takes the clipboard with `text` (it serves it until the test ends or someone else takes it).
fn hold(session: &HeadlessSession, text: &str) -> Result<Child> {
    let mut child = session
        .command(PROBE)
        .args(["hold", text])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    ensure!(line.trim() == "holding", "clipboard-probe hold said {line:?}");
    // It says so just before it takes the clipboard.
    std::thread::sleep(Duration::from_millis(300));
    Ok(child)
}

async fn notice_state(ui: &Ui, state: &str, limit: Duration) -> Result<String> {
    ui.text_of(
        &format!("{}[data-state='{state}']", tid("clipboard-notice")),
        limit,
        &format!("the clipboard notice saying {state}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_clears_a_copied_token_from_the_clipboard_unless_replaced() -> Result<()> {
    let dir = scratch_dir("app-clipboard")?;
    let session = HeadlessSession::start(&dir)?;
    let tk = Tokenkeep::headless("app-clipboard-store")?;
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let token = format!("clip-access-{}", hex::encode(random));
    let id = {
        let vault = tk.open_vault()?;
        let mut meta = ConnectionMeta::new(ProviderId::parse("youtube")?, "Maya Makes");
        meta.expires_at = Some(now_secs() + 3 * 3600);
        meta.last_refresh_at = Some(now_secs() - 60);
        let tokens = TokenSet {
            access: SecretString::new(token.clone()),
            refresh: Some(SecretString::new(format!("{token}-refresh"))),
            id_token: None,
            dpop_key: None,
        };
        vault.put_connection(meta, &tokens)?.to_hex()
    };
    let mut env = tk.app_env();
    env.push(("TOKENKEEP_CLIPBOARD_SECONDS", "5".into()));
    let driver = TauriDriver::start(&session, &env)?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let shots = screenshot_dir()?;
    let limit = Duration::from_secs(20);
    let mut holder = None;
    let result = async {
        let card = format!("{}[data-connection-id='{id}']", tid("connection-card"));
        ui.click(&format!("{card} {}", tid("inspect-button")), "Inspect")
            .await?;
        let copy = format!("{}[data-kind='access_token'] {}", tid("token-row"), tid("token-copy"));
        ui.wait_for(&copy, limit, "the Copy button of the access token").await?;

        // 1. Copied, counted down, cleared when the time is up.
        ui.click(&copy, "Copy").await?;
        let said = notice_state(&ui, "holding", limit).await?;
        ensure!(said.contains("clears it from the clipboard in"), "{said}");
        ensure!(
            clipboard(&session)?.as_deref() == Some(token.as_str()),
            "the token is not on the clipboard"
        );
        ensure!(
            !ui.client.source().await?.contains(&token),
            "the copied token is in the page"
        );
        ui.screenshot(&shots, "app-clipboard-1-counting-down").await?;
        notice_state(&ui, "cleared", limit).await?;
        ensure!(clipboard(&session)?.is_none(), "the clipboard still holds something");

        // 2. Copied, then the person copies something else: that is theirs, left alone.
        ui.click(&copy, "Copy").await?;
        notice_state(&ui, "holding", limit).await?;
        holder = Some(hold(&session, "a note the person copied")?);
        let said = notice_state(&ui, "replaced", limit).await?;
        ensure!(said.contains("left the clipboard alone"), "{said}");
        ensure!(
            clipboard(&session)?.as_deref() == Some("a note the person copied"),
            "the person's own copy was touched"
        );

        // 3. "Clear now".
        ui.click(&copy, "Copy").await?;
        notice_state(&ui, "holding", limit).await?;
        ensure!(
            clipboard(&session)?.as_deref() == Some(token.as_str()),
            "not copied again"
        );
        ui.click(&tid("clipboard-clear"), "Clear now").await?;
        notice_state(&ui, "cleared", Duration::from_secs(3)).await?;
        ensure!(
            clipboard(&session)?.is_none(),
            "Clear now left the token on the clipboard"
        );
        ui.screenshot(&shots, "app-clipboard-2-cleared").await?;
        Ok(())
    }
    .await;
    if let Some(mut holder) = holder {
        holder.kill().ok();
        holder.wait().ok();
    }
    ui.client.close().await.ok();
    drop(driver);
    result?;
    let log = std::fs::read_to_string(tk.profile_dir().join("logs").join("tokenkeep-app.log"))?;
    ensure!(
        log.contains("token copied to the clipboard"),
        "the copy is not in the app's log"
    );
    ensure!(!log.contains(&token), "the token is in the app's log");
    Ok(())
}
