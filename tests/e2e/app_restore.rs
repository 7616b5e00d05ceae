//! Issue 12, F1 in the window: a store damaged on disk is not opened (and not changed); the banner says so and
//! offers "Restore from backup"; one click brings every account back, marked "check needed" where the refresh
//! token may have rotated since — and the engine's check then turns it connected again.
//!
//! Real components: the built app under Xvfb through tauri-driver, the session's gnome-keyring, the OAuth test
//! peer, a real browser sign-in by the CLI to create the account.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokenkeep_e2e::cli::{PROFILE, Tokenkeep, connected_id};
use tokenkeep_e2e::peer::{OidcPeer, PeerConfig};
use tokenkeep_e2e::seed::add_demo;
use tokenkeep_e2e::window::{Ui, tid};
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

/// Flips bytes of the store's log until the CLI refuses the store as damaged; returns the offset (the store is left
/// damaged) and checks the refusal changed nothing.
fn damage(tk: &Tokenkeep) -> Result<usize> {
    let db = tk.store_dir().join("sled").join("db");
    let clean = std::fs::read(&db)?;
    let used = clean.iter().rposition(|b| *b != 0).context("an empty log")? + 1;
    for offset in (0..used).step_by((used / 16).max(1)).skip(1) {
        let mut bytes = clean.clone();
        bytes[offset] ^= 0x5a;
        std::fs::write(&db, &bytes)?;
        let out = tk.run(&["list"], None)?;
        if !out.status.success() && out.stderr.contains("is damaged") {
            ensure!(std::fs::read(&db)? == bytes, "the refused `list` changed the log");
            return Ok(offset);
        }
        std::fs::write(&db, &clean)?;
    }
    bail!("no flipped byte made the store refuse to open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_restores_a_damaged_store_from_its_backup() -> Result<()> {
    let started = Instant::now();
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let dir = scratch_dir("app-restore")?;
    let session = HeadlessSession::start(&dir)?;
    let tk = Tokenkeep::in_session(&session)?;
    add_demo(&tk, &peer)?;
    let id = connected_id(&tk.ok(&["connect", "demo"], None)?)?;
    damage(&tk)?;

    let home = tk.profile_dir().parent().context("a home")?.to_path_buf();
    let env = [("TOKENKEEP_HOME", home.into()), ("TOKENKEEP_PROFILE", PROFILE.into())];
    let driver = TauriDriver::start(&session, &env)?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let shots = screenshot_dir()?;
    let result = async {
        let limit = Duration::from_secs(20);
        let banner = format!("{}[data-code='store_damaged']", tid("vault-banner"));
        ui.wait_for(&banner, limit, "the damaged-store banner").await?;
        let text = ui.text_of(&banner, limit, "the banner").await?;
        ensure!(text.contains("Nothing was changed"), "banner: {text}");
        ui.screenshot(&shots, "app-restore-1-damaged").await?;

        ui.click(&tid("vault-restore"), "Restore from backup").await?;
        ui.wait_gone(&banner, limit, "the banner after the restore").await?;
        // Restored, then checked by the engine at once: check_needed, then connected.
        let card = |status: &str| {
            format!(
                "{}[data-connection-id='{id}'][data-status='{status}']",
                tid("connection-card")
            )
        };
        ui.wait_for(
            &card("connected"),
            Duration::from_secs(30),
            "the restored connection, checked",
        )
        .await?;
        ui.screenshot(&shots, "app-restore-2-restored").await?;
        Ok(())
    }
    .await;
    ui.client.clone().close().await.ok();
    result?;

    // The damaged store was kept aside, not deleted.
    let aside: Vec<_> = std::fs::read_dir(tk.profile_dir())?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("store.damaged-"))
        .collect();
    ensure!(aside.len() == 1, "the damaged store was not kept aside");
    let log = std::fs::read_to_string(tk.profile_dir().join("logs").join("tokenkeep-app.log"))?;
    ensure!(
        log.contains("restored the store from a backup"),
        "the app log does not record the restore"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(90),
        "took {:.1?}",
        started.elapsed()
    );
    Ok(())
}
