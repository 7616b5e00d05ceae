//! Issue 13, providers while the app runs: `tokenkeep providers add` in a terminal shows up in the open window by
//! itself (the app looks at `config.toml` every 2 s) and says so instead of suggesting `tokenkeep connect`, which
//! cannot run beside the app; a provider that is set up can be edited and removed in the window — a custom one
//! goes, a built-in one forgets its client ID (and secret) and asks to be set up again; the setup form's
//! developer-console button opens exactly the address the preset names.
//!
//! Real components: the built app and CLI under Xvfb through tauri-driver, the OpenID test peer for the custom
//! provider's discovery. Screenshots: `target/screenshots/app-providers-*.png`.

use std::time::Duration;

use anyhow::{Result, ensure};
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::peer::{OidcPeer, PeerConfig};
use tokenkeep_e2e::window::{Ui, tid};
use tokenkeep_e2e::{HeadlessSession, TauriDriver, built_binary, scratch_dir, screenshot_dir};

const LIMIT: Duration = Duration::from_secs(20);

fn row(id: &str) -> String {
    format!("{}[data-provider-id='{id}']", tid("provider-row"))
}

/// Waits until `check` (a JavaScript expression) holds for the focused element.
async fn focus_lands(ui: &Ui, check: &str, what: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let holds = ui.client.execute(&format!("return {check};"), vec![]).await?;
        if holds == serde_json::Value::Bool(true) {
            return Ok(());
        }
        let focused = ui
            .client
            .execute("return document.activeElement.outerHTML.slice(0, 120);", vec![])
            .await?;
        ensure!(
            std::time::Instant::now() < deadline,
            "the focus did not land {what}: it is on {focused}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_picks_up_providers_added_in_a_terminal_and_edits_and_removes_them() -> Result<()> {
    let dir = scratch_dir("app-providers")?;
    let session = HeadlessSession::start(&dir)?;
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let tk = Tokenkeep::headless("app-providers-store")?;
    // A "browser" that only writes down what it was asked to open.
    let opened = dir.join("opened.txt");
    let recorder = dir.join("record-browser.sh");
    std::fs::write(
        &recorder,
        format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", opened.display()),
    )?;
    std::fs::set_permissions(&recorder, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let mut env = tk.app_env();
    env.push(("TOKENKEEP_BROWSER", recorder.clone().into_os_string()));
    let driver = TauriDriver::start(&session, &env)?;
    let ui = Ui {
        client: driver.connect(&built_binary("tokenkeep-app")?).await?,
    };
    let shots = screenshot_dir()?;
    let result = async {
        ui.click(&tid("empty-connect-button"), "the empty state's connect button")
            .await?;
        ui.wait_for(&tid("connect-panel"), LIMIT, "the connect panel").await?;
        ui.wait_for(&tid("provider-x-setup"), LIMIT, "X, not set up yet")
            .await?;

        // Its setup form links to X's developer console: the app opens exactly the address the preset names.
        ui.click(&tid("provider-x-setup"), "Set up on X").await?;
        ui.click(
            &format!("{} {}", row("x"), tid("setup-open")),
            "Open the developer console",
        )
        .await?;
        // The status line fills in when the app answers.
        let status = ui
            .text_of(
                &format!("{} .setup-link .copy-status:not(:empty)", row("x")),
                LIMIT,
                "the link's status",
            )
            .await?;
        let deadline = std::time::Instant::now() + LIMIT;
        ensure!(status == "Opened in your browser", "the console link says {status:?}");
        let asked = loop {
            let asked = std::fs::read_to_string(&opened).unwrap_or_default();
            if !asked.is_empty() || std::time::Instant::now() > deadline {
                break asked;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        ensure!(
            asked.trim() == "https://developer.x.com/en/portal/dashboard",
            "the browser was asked to open {asked:?}"
        );
        ui.click(&tid("provider-x-setup"), "Close setup on X").await?;

        // A terminal sets X up while the window is open: the row turns ready by itself, and the CLI says where
        // to connect now.
        let added = tk.ok(
            &["providers", "add", "x", "--client-id", "x-client-from-terminal"],
            None,
        )?;
        ensure!(
            added
                .stdout
                .contains("The Tokenkeep app is running and picks this up by itself")
                && !added.stdout.contains("Connect an account with `tokenkeep connect x`"),
            "providers add said:\n{}",
            added.stdout
        );
        ui.wait_for(
            &tid("provider-x-connect"),
            LIMIT,
            "X did not turn ready in the open window",
        )
        .await?;
        // A custom OpenID provider, found by discovery, appears the same way.
        tk.ok(
            &[
                "providers",
                "add",
                "studio",
                "--issuer",
                peer.issuer(),
                "--display-name",
                "Studio SSO",
                "--client-id",
                "tokenkeep-public",
            ],
            None,
        )?;
        ui.wait_for(
            &tid("provider-studio-connect"),
            LIMIT,
            "the custom provider did not appear",
        )
        .await?;
        ui.screenshot(&shots, "app-providers-1-picked-up-from-the-terminal")
            .await?;

        // Edit X: its form shows the client ID in force; "Forget setup…" asks first, then X needs setup again.
        ui.click(&tid("provider-x-edit"), "Edit on X").await?;
        let form = format!("{} {}", row("x"), tid("configure-form"));
        let client_id = ui
            .on(
                &format!("{form} input[name='clientId']"),
                LIMIT,
                "X's client ID field",
                |e| async move { e.prop("value").await },
            )
            .await?;
        ensure!(
            client_id.as_deref() == Some("x-client-from-terminal"),
            "the form shows {client_id:?}"
        );
        ui.click(&format!("{form} {}", tid("provider-remove")), "Forget setup on X")
            .await?;
        let asked = ui
            .text_of(&format!("{form} .provider-remove-text"), LIMIT, "the confirmation")
            .await?;
        ensure!(
            asked.starts_with("Forget the setup of X"),
            "the confirmation reads {asked:?}"
        );
        ui.screenshot(&shots, "app-providers-2-forget-setup-confirm").await?;
        ui.click(
            &format!("{form} {}", tid("provider-remove-confirm")),
            "the confirmation's button",
        )
        .await?;
        ui.wait_for(&tid("provider-x-setup"), LIMIT, "X still looks set up")
            .await?;
        focus_lands(
            &ui,
            "document.activeElement.dataset.testid === 'provider-x-setup'",
            "on X's Set up",
        )
        .await?;
        let config = std::fs::read_to_string(tk.config_file())?;
        ensure!(
            !config.contains("x-client-from-terminal"),
            "config.toml still holds X's client id:\n{config}"
        );

        // Remove the custom provider: it leaves the list (and the configuration).
        ui.click(&tid("provider-studio-edit"), "Edit on Studio").await?;
        let form = format!("{} {}", row("studio"), tid("configure-form"));
        ui.click(&format!("{form} {}", tid("provider-remove")), "Remove on Studio")
            .await?;
        let asked = ui
            .text_of(&format!("{form} .provider-remove-text"), LIMIT, "the confirmation")
            .await?;
        ensure!(
            asked == "Remove Studio SSO from Tokenkeep?",
            "the confirmation reads {asked:?}"
        );
        ui.click(
            &format!("{form} {}", tid("provider-remove-confirm")),
            "the confirmation's button",
        )
        .await?;
        ui.wait_gone(&row("studio"), LIMIT, "the removed provider is still listed")
            .await?;
        // The focus was in the removed row: it lands on a platform's button, not on the page.
        focus_lands(
            &ui,
            "document.activeElement.closest('.provider-actions') !== null",
            "on a platform's button",
        )
        .await?;
        let config = std::fs::read_to_string(tk.config_file())?;
        ensure!(
            !config.contains("studio"),
            "config.toml still holds the custom provider:\n{config}"
        );
        ui.screenshot(&shots, "app-providers-3-after-removing").await?;

        // The terminal sees the same: X needs setup, Studio is gone.
        let listed = tk.ok(&["providers", "list", "--json"], None)?;
        let providers: serde_json::Value = serde_json::from_str(&listed.stdout)?;
        let entries = providers.as_array().cloned().unwrap_or_default();
        ensure!(
            !entries.iter().any(|p| p["id"] == "studio"),
            "studio is still listed: {providers}"
        );
        ensure!(
            entries.iter().any(|p| p["id"] == "x" && p["ready"] == false),
            "x is not back to needing setup: {providers}"
        );
        Ok(())
    }
    .await;
    ui.client.close().await.ok();
    drop(driver);
    result
}
