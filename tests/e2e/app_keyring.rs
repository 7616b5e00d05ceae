//! Issue 13, keyring problems in the window: the banner speaks of *this* store (a first run has nothing at stake),
//! never shows zbus's words, and the app opens the vault by itself once the keyring starts or is unlocked — no
//! restart, no click. Headless with a `TOKENKEEP_MASTER_KEY` that does not fit, the variable is blamed and no
//! Retry is offered (it is read once, at start).
//!
//! Real components: the built app under Xvfb through tauri-driver, a private session bus, gnome-keyring started
//! (and replaced) while the app runs.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Result, ensure};
use tokenkeep_core::keys;
use tokenkeep_core::secret::MasterKey;
use tokenkeep_e2e::window::{Ui, tid};
use tokenkeep_e2e::{
    HeadlessSession, KeyringMode, SessionOptions, TauriDriver, built_binary, scratch_dir, screenshot_dir,
};

/// Long enough for the app's keyring watch (every 2 s) and the vault's open, on a loaded CI machine.
const NOTICED: Duration = Duration::from_secs(20);

async fn launch(session: &HeadlessSession, env: &[(&str, OsString)]) -> Result<(TauriDriver, Ui)> {
    let driver = TauriDriver::start(session, env)?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    Ok((driver, ui))
}

/// Closes the app and waits until it has let go of its single-instance name: a launch while the last one is still
/// quitting is forwarded to the dying instance and never opens a window.
async fn quit(session: &HeadlessSession, driver: TauriDriver, ui: Ui) -> Result<()> {
    ui.client.close().await.ok();
    drop(driver);
    session.wait_for_bus_name_gone("SingleInstance", Duration::from_secs(20))
}

fn banner(code: &str) -> String {
    format!("{}[data-code='{code}']", tid("vault-banner"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_opens_by_itself_when_the_keyring_starts_or_unlocks() -> Result<()> {
    let dir = scratch_dir("app-keyring")?;
    let mut session = HeadlessSession::start_with(
        &dir,
        SessionOptions {
            display: true,
            keyring: KeyringMode::None,
        },
    )?;
    let home = dir.join("tokenkeep-home");
    let env = [("TOKENKEEP_HOME", home.clone().into_os_string())];
    let shots = screenshot_dir()?;

    // 1. A first run with no keyring service: nothing is at stake, and the app waits for one by itself.
    let (driver, ui) = launch(&session, &env).await?;
    let first = async {
        let css = banner("keyring_unavailable");
        let text = ui.text_of(&css, NOTICED, "the no-keyring banner").await?;
        ensure!(text.contains("Tokenkeep needs a keyring"), "banner: {text}");
        ensure!(
            text.contains("nothing is at stake"),
            "a first run says nothing is at stake: {text}"
        );
        ensure!(
            !text.contains("zbus") && !text.contains("org.freedesktop"),
            "no zbus words: {text}"
        );
        ensure!(
            !text.contains("Nothing has been lost"),
            "nothing could have been lost: {text}"
        );
        let watching = ui.text(&tid("vault-watching")).await?;
        ensure!(
            watching.contains("by itself"),
            "says it continues by itself: {watching}"
        );
        let notice = ui.text("#locked-title").await?;
        ensure!(notice == "No accounts yet", "the notice below the banner: {notice}");
        ui.screenshot(&shots, "app-keyring-1-first-run-no-service").await?;

        session.start_keyring(KeyringMode::Unlocked)?;
        ui.wait_gone(&css, NOTICED, "the banner once the keyring runs").await?;
        let empty = ui.text_of("#empty-title", NOTICED, "the empty state").await?;
        ensure!(empty == "No accounts connected yet", "empty state: {empty}");

        // The key was created just now: said once, in words, with an export for a backup.
        let notice = ui
            .text_of(&tid("key-notice"), NOTICED, "the key-created notice")
            .await?;
        ensure!(
            notice.contains("Your vault key was created in your keyring"),
            "notice: {notice}"
        );
        ensure!(
            notice.contains("the platforms keep nothing for you"),
            "says what losing it means: {notice}"
        );
        ui.screenshot(&shots, "app-keyring-2-opened-by-itself-key-notice")
            .await?;
        ui.click(&tid("key-export"), "Export the key…").await?;
        ui.click(&tid("key-show"), "Show the key").await?;
        let shown = ui.text_of(&tid("key-value"), NOTICED, "the exported key").await?;
        let key_id = std::fs::read_to_string(home.join("dev/store.marker"))?
            .trim()
            .to_owned();
        let in_keyring = session.keyring_lookup(&format!("dev/master/{key_id}"))?;
        ensure!(shown == in_keyring.trim(), "the window shows the keyring's key");
        ui.screenshot(&shots, "app-keyring-2b-key-exported").await?;
        ui.click(&tid("key-saved"), "Done — I saved it").await?;
        ui.wait_gone(&tid("key-notice"), NOTICED, "the notice once acknowledged")
            .await?;
        Ok(shown)
    }
    .await;
    quit(&session, driver, ui).await?;
    let exported = first?;

    // 2. The store now exists and the keyring is locked: the connections are safe; unlocking is noticed.
    session.start_keyring(KeyringMode::Locked)?;
    let (driver, ui) = launch(&session, &env).await?;
    let second = async {
        let css = banner("keyring_locked");
        let text = ui.text_of(&css, NOTICED, "the locked-keyring banner").await?;
        ensure!(text.contains("Your connections are safe on disk"), "banner: {text}");
        ensure!(!text.contains("zbus"), "no zbus words: {text}");
        ui.screenshot(&shots, "app-keyring-3-locked").await?;
        session.start_keyring(KeyringMode::Unlocked)?;
        ui.wait_gone(&css, NOTICED, "the banner once the keyring is unlocked")
            .await?;
        ui.text_of("#empty-title", NOTICED, "the vault, open").await?;
        let notices = ui.client.find_all(fantoccini::Locator::Css(&tid("key-notice"))).await?;
        ensure!(notices.is_empty(), "the key notice is said once, not at every start");
        Ok(())
    }
    .await;
    quit(&session, driver, ui).await?;
    second?;

    // 3. The keyring lost the key: the banner offers Import, and the exported key opens the vault again.
    let key_id = std::fs::read_to_string(home.join("dev/store.marker"))?
        .trim()
        .to_owned();
    session.keyring_clear(&format!("dev/master/{key_id}"))?;
    let (driver, ui) = launch(&session, &env).await?;
    let imported = async {
        let css = banner("key_missing");
        ui.wait_for(&css, NOTICED, "the missing-key banner").await?;
        ui.click(&tid("vault-import-key"), "Import key…").await?;
        ui.fill(&tid("key-import-input"), "bm90LWEta2V5", "the key field")
            .await?;
        ui.click(&tid("key-import-save"), "Import and open").await?;
        let error = format!("{} .inline-error", tid("key-import-dialog"));
        let refused = ui.text_of(&error, NOTICED, "the refusal").await?;
        ensure!(refused.contains("not a Tokenkeep key"), "refusal: {refused}");
        ui.fill(&tid("key-import-input"), &exported, "the key field").await?;
        ui.screenshot(&shots, "app-keyring-5-import").await?;
        ui.click(&tid("key-import-save"), "Import and open").await?;
        ui.wait_gone(&css, NOTICED, "the banner once the key is back").await?;
        ui.text_of("#empty-title", NOTICED, "the vault, open").await?;
        let back = session.keyring_lookup(&format!("dev/master/{key_id}"))?;
        ensure!(back.trim() == exported, "the key is back in the keyring");
        let log = std::fs::read_to_string(home.join("dev/logs/tokenkeep-app.log"))?;
        ensure!(!log.contains(exported.as_str()), "the key reached the app's log");
        ensure!(
            log.contains("the master key was exported"),
            "the export is logged, without the key"
        );
        Ok(())
    }
    .await;
    quit(&session, driver, ui).await?;
    imported?;

    // 4. Headless with a key that is not this store's: the variable is named, and Retry is not offered.
    let other = keys::encode_key(&MasterKey::generate()?);
    let headless = [
        ("TOKENKEEP_HOME", home.into_os_string()),
        (keys::ENV_MASTER_KEY, OsString::from(other.as_str())),
    ];
    let (driver, ui) = launch(&session, &headless).await?;
    let third = async {
        let css = banner("wrong_key");
        let text = ui.text_of(&css, NOTICED, "the wrong-key banner").await?;
        ensure!(
            text.contains("TOKENKEEP_MASTER_KEY doesn’t open this vault"),
            "banner: {text}"
        );
        ensure!(
            !text.contains("The key in your keyring"),
            "the keyring is not blamed: {text}"
        );
        ensure!(!text.contains(other.as_str()), "the key never shows");
        let retry = ui.attr(&tid("vault-retry"), "hidden").await?;
        ensure!(
            retry.is_some(),
            "Retry is hidden: the variable cannot change while the app runs"
        );
        ui.screenshot(&shots, "app-keyring-4-headless-wrong-key").await?;
        Ok(())
    }
    .await;
    ui.client.close().await.ok();
    drop(driver);
    third
}
