//! Issue 13, "disconnect must not lose the chance to revoke", in the real window: with the provider down, a
//! disconnect keeps the account as a pending revocation instead of deleting its tokens; the window shows it in its
//! own section (not among the accounts), the CLI lists it through the app's socket, "Try now" revokes it once the
//! provider is back — the peer then holds the tokens inactive — and "Delete now instead" gives up at once, naming
//! where to revoke by hand, with the tokens still live at the provider (that is what the choice means).
//!
//! Real components: the built app under Xvfb through tauri-driver, the OAuth test peer (its TEST-ONLY outage
//! fails the token and the revocation endpoints as a provider that is down), grants minted at the peer and
//! written into the vault as `connect` would have. Screenshots: `target/screenshots/app-revocation-*.png`.

use std::time::Duration;

use anyhow::{Result, ensure};
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::peer::{OidcPeer, Outage, PeerConfig};
use tokenkeep_e2e::seed::{add_demo, now_secs, seed_into};
use tokenkeep_e2e::window::{Ui, tid};
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

fn card(account_id: &str) -> String {
    format!("{}[data-connection-id='{account_id}']", tid("connection-card"))
}

fn row(account_id: &str) -> String {
    format!("{}[data-connection-id='{account_id}']", tid("revocation"))
}

/// Disconnects `id` in the window while the provider is down, and keeps trying: the dialog says so.
async fn disconnect_while_down(ui: &Ui, id: &str, limit: Duration) -> Result<String> {
    ui.click(
        &format!("{} {}", card(id), tid("disconnect-button")),
        "the Disconnect button",
    )
    .await?;
    ui.click(&tid("confirm-disconnect"), "the confirm button").await?;
    let (said, kind) = ui
        .text_and_attr(
            &tid("disconnect-result"),
            "data-revocation",
            limit,
            "the disconnect result",
        )
        .await?;
    ensure!(kind.as_deref() == Some("pending"), "revocation={kind:?}: {said}");
    Ok(said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_keeps_revoking_a_disconnect_the_provider_missed_then_revokes_or_deletes_on_request() -> Result<()> {
    let dir = scratch_dir("app-revocation")?;
    let session = HeadlessSession::start(&dir)?;
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let tk = Tokenkeep::headless("app-revocation-store")?;
    add_demo(&tk, &peer)?;
    let accounts = ["rowan".to_owned(), "sasha".to_owned()];
    let seeded = {
        let vault = tk.open_vault()?;
        seed_into(&vault, &peer, &accounts, now_secs() + 3 * 3600)?
    };
    let (rowan, sasha) = (&seeded[0], &seeded[1]);
    let driver = TauriDriver::start(&session, &tk.app_env())?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let shots = screenshot_dir()?;
    let limit = Duration::from_secs(20);
    let result = async {
        let (rowan_id, sasha_id) = (rowan.id.to_hex(), sasha.id.to_hex());
        ui.wait_for(&card(&sasha_id), limit, "the cards").await?;
        // The provider is down altogether: no token and no revocation answers.
        peer.outage_of(Outage::Drop, 600, &["token", "revocation"])?;

        // 1. Disconnect, keep trying: the account leaves the list and waits in its own section.
        let said = disconnect_while_down(&ui, &rowan_id, limit).await?;
        ensure!(said.contains("keeps trying in the background"), "{said}");
        ui.screenshot(&shots, "app-revocation-1-kept-pending").await?;
        ui.click(&tid("keep-revoking"), "Keep trying").await?;
        ui.wait_gone(&card(&rowan_id), limit, "the card of the disconnected account")
            .await?;
        let text = ui.text_of(&row(&rowan_id), limit, "the pending revocation").await?;
        ensure!(
            text.contains("couldn’t reach") && text.contains("Next try in") && text.contains("1 try so far"),
            "{text}"
        );
        let sub = ui.text_of(".list-sub", limit, "the count").await?;
        ensure!(
            sub.starts_with("1 account"),
            "the pending one is not counted among the accounts: {sub}"
        );
        ensure!(peer.is_active(&rowan.grant.refresh_token)?, "nothing was revoked yet");
        // The CLI, through the app's socket, lists it apart and refuses to hand out its token.
        let listed = tk.ok(&["list"], None)?.stdout;
        ensure!(
            listed.contains("revocation pending") && listed.contains("rowan"),
            "{listed}"
        );
        let token = tk.run(&["token", "demo:rowan"], None)?;
        ensure!(
            !token.status.success() && token.stderr.contains("was disconnected"),
            "{}",
            token.stderr
        );

        // 2. "Try now" while still down: still pending, a second try counted, the focus kept.
        ui.click(&format!("{} {}", row(&rowan_id), tid("revocation-retry")), "Try now")
            .await?;
        ui.wait_for(
            &format!("{} .inline-error:not([hidden])", row(&rowan_id)),
            limit,
            "the failed try",
        )
        .await?;
        let text = ui.text_of(&row(&rowan_id), limit, "the pending revocation").await?;
        ensure!(
            text.contains("2 tries so far") && text.contains("Still couldn’t reach"),
            "{text}"
        );
        ui.screenshot(&shots, "app-revocation-2-still-down").await?;

        // 3. The provider is back: "Try now" revokes, and everything is deleted.
        peer.outage(Outage::Off, 0)?;
        ui.click(&format!("{} {}", row(&rowan_id), tid("revocation-retry")), "Try now")
            .await?;
        ui.wait_gone(&tid("revocations"), limit, "the section after the revocation")
            .await?;
        ensure!(
            !peer.is_active(&rowan.grant.refresh_token)?,
            "the refresh token is still active"
        );
        ensure!(
            !peer.is_active(&rowan.grant.access_token)?,
            "the access token is still active"
        );
        ensure!(
            !tk.ok(&["list"], None)?.stdout.contains("rowan"),
            "rowan is still listed"
        );

        // 4. Down again; disconnect the other one and choose "Delete now instead".
        peer.outage_of(Outage::Drop, 600, &["token", "revocation"])?;
        disconnect_while_down(&ui, &sasha_id, limit).await?;
        ui.click(&tid("delete-now"), "Delete now instead").await?;
        let (said, kind) = ui
            .text_and_attr(
                &format!("{}[data-revocation='not_tried']", tid("disconnect-result")),
                "data-revocation",
                limit,
                "the delete-now result",
            )
            .await?;
        ensure!(
            kind.as_deref() == Some("not_tried") && said.contains("access may remain"),
            "{said}"
        );
        ui.screenshot(&shots, "app-revocation-3-deleted-now").await?;
        ui.click(&format!("{} .modal-actions button", tid("disconnect-dialog")), "Done")
            .await?;
        ui.wait_for("#empty-title", limit, "the empty state").await?;
        peer.outage(Outage::Off, 0)?;
        ensure!(
            peer.is_active(&sasha.grant.refresh_token)?,
            "deleting now must not have revoked (the person chose to revoke by hand)"
        );
        Ok(())
    }
    .await;
    ui.client.close().await.ok();
    drop(driver);
    result
}
