//! Issue 16 in the real window: a Bluesky connection whose tokens are bound to a key (DPoP) says so in Inspect —
//! "Bound to a key (DPoP, ES256, thumbprint …)", the thumbprint being the sealed key's — and never shows the key;
//! the Connect panel says that Bluesky runs on the development client, with short sessions.

use std::time::Duration;

use anyhow::{Result, ensure};
use tokenkeep_core::dpop::DpopKey;
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{ConnectionMeta, TokenSet};
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::seed::now_secs;
use tokenkeep_e2e::window::{Ui, tid};
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_shows_a_bound_bluesky_connection_and_its_development_client() -> Result<()> {
    let dir = scratch_dir("app-bluesky")?;
    let session = HeadlessSession::start(&dir)?;
    let tk = Tokenkeep::headless("app-bluesky-store")?;
    let key = DpopKey::generate()?;
    let thumbprint = key.thumbprint().to_owned();
    let private = hex::encode(key.to_secret().dangerously_expose());
    let id = {
        let vault = tk.open_vault()?;
        let mut meta = ConnectionMeta::new(ProviderId::parse("bluesky")?, "maya.bsky.social");
        meta.subject = Some("did:plc:abcdefghijklmnopqrstuvwx".into());
        meta.scopes = vec!["atproto".into(), "transition:generic".into()];
        meta.expires_at = Some(now_secs() + 1800);
        meta.last_refresh_at = Some(now_secs() - 60);
        meta.session_ends_at = Some(now_secs() + 13 * 24 * 3600);
        meta.resource = Some("https://morel.us-east.host.bsky.network/".into());
        let tokens = TokenSet {
            access: SecretString::new("bound-access-token".into()),
            refresh: Some(SecretString::new("bound-refresh-token".into())),
            id_token: None,
            dpop_key: Some(key),
        };
        vault.put_connection(meta, &tokens)?.to_hex()
    };
    let driver = TauriDriver::start(&session, &tk.app_env())?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let shots = screenshot_dir()?;
    let limit = Duration::from_secs(20);
    let result = async {
        let card = format!("{}[data-connection-id='{id}']", tid("connection-card"));
        ui.click(&format!("{card} {}", tid("inspect-button")), "Inspect")
            .await?;
        let binding = ui.text_of(&tid("token-binding"), limit, "the binding").await?;
        ensure!(
            binding == format!("Bound to a key (DPoP, ES256, thumbprint {thumbprint})"),
            "Inspect says {binding:?}"
        );
        let page = ui.client.source().await?;
        ensure!(!page.contains(&private), "the private key is in the page");
        ensure!(!page.contains("dpop_key"), "the key's record is listed in the page");
        ui.screenshot(&shots, "app-bluesky-1-inspect-bound-to-a-key").await?;
        // The line for scripts goes to the account's PDS.
        let command = ui.text_of(&tid("api-command"), limit, "the api command").await?;
        ensure!(
            command == "tokenkeep api bluesky:maya.bsky.social xrpc/com.atproto.server.getSession",
            "Inspect shows {command:?}"
        );
        ui.click(&tid("inspect-dialog-close"), "Close").await?;

        ui.click(&tid("add-account-button"), "Connect an account").await?;
        let row = format!("{}[data-provider-id='bluesky']", tid("provider-row"));
        let text = ui.text_of(&row, limit, "Bluesky's row").await?;
        ensure!(
            text.contains("Development client: short sessions"),
            "Bluesky's row reads {text:?}"
        );
        ui.wait_for(&tid("provider-bluesky-connect"), limit, "Bluesky's Connect button")
            .await?;
        ui.screenshot(&shots, "app-bluesky-2-connect-panel-development-client")
            .await?;
        Ok(())
    }
    .await;
    ui.client.close().await.ok();
    drop(driver);
    result
}
