//! Tauri commands, one per row of docs/IPC.md: each extracts state, calls one core operation (`tokenkeep_core::ops`)
//! and maps the result to a DTO and the error to `{ code, message }`. Nothing else lives here.
//!
//! Every command but `app_info`, `vault_status`, `retry_vault`, `restore_backup` and `cancel_connect` needs the open vault, and
//! rejects with the vault's own error (e.g. `keyring_locked`) while it is not open. All of them are `async`: Tauri
//! runs synchronous commands on the main thread, and vault reads, however short, do not belong there.

use tauri::{AppHandle, Manager as _, State};
use tokenkeep_core::browser::BrowserError;
use tokenkeep_core::connect::ConnectObserver;
use tokenkeep_core::http::BoxFuture;
use tokenkeep_core::ops::{self, AddProvider, ConnectOptions, LocalOps, Operations as _};
use tokenkeep_core::profile::ProfilePaths;
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::refresh::IfRevocationFails;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::settings::{Settings, SettingsChange, SettingsError};
use tokenkeep_core::store::ConnectionId;
use url::Url;

use crate::browser::AppBrowser;
use crate::clipboard::{ClipboardEvent, TokenClipboard};
use crate::dto::{
    AccountPicture, AppInfo, Auth, ConnectProgress, Connected, Connection, ConnectionView, Disconnected, ExportedKey,
    Inspection, Provider, RemovedProvider, Restored, Revealed, VaultStatus,
};
use crate::error::{CommandError, ErrorCode};
use crate::events::{self, CONNECT_PROGRESS};
use crate::state::AppState;

type Result<T> = std::result::Result<T, CommandError>;

/// Name, version, profile and data directory of the running app.
#[tauri::command]
pub(crate) fn app_info(state: State<'_, AppState>) -> AppInfo {
    AppInfo {
        name: "Tokenkeep",
        version: env!("CARGO_PKG_VERSION"),
        profile: state.paths.profile().to_string(),
        data_dir: state.paths.dir().display().to_string(),
        headless: state.headless,
        custom_redirect_uri: tokenkeep_core::provider::discovery::custom_redirect_uri(),
    }
}

/// Opens a provider's developer console (where its client is registered) in the browser. Only the address the
/// provider's definition names: the webview cannot open arbitrary addresses.
#[tauri::command]
pub(crate) async fn open_setup_page(app: AppHandle, state: State<'_, AppState>, id: String) -> Result<()> {
    use tokenkeep_core::browser::BrowserOpener as _;
    let id = ProviderId::parse(&id)?;
    let ready = state.ready().await?;
    let catalog = ready.ops().engine().catalog();
    let url = catalog
        .get(&id)
        .and_then(|p| p.setup().map(|s| s.console_url.clone()))
        .ok_or_else(|| CommandError::new(ErrorCode::NotFound, format!("{id} names no developer console")))?;
    let browser = AppBrowser::for_app(&app, state.browser.as_ref());
    browser
        .open(&url)
        .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))
}

/// Whether the vault is open, and if not, why (waits while it is being opened).
#[tauri::command]
pub(crate) async fn vault_status(state: State<'_, AppState>) -> Result<VaultStatus> {
    Ok(state.status().await)
}

/// Tries to open the vault again, e.g. after the keyring was unlocked.
#[tauri::command]
pub(crate) async fn retry_vault(app: AppHandle, state: State<'_, AppState>) -> Result<VaultStatus> {
    Ok(state.retry(&app).await)
}

/// Restores the store from its newest good backup when it is damaged or missing (the replaced store is kept
/// aside), then opens it.
#[tauri::command]
pub(crate) async fn restore_backup(app: AppHandle, state: State<'_, AppState>) -> Result<Restored> {
    let (status, report) = state.restore(&app).await?;
    Ok(Restored::new(status, &report))
}

/// The vault's master key, for a backup: the window asked and the person confirmed. Core logs that it was
/// exported, never the key.
#[tauri::command]
pub(crate) async fn export_key(state: State<'_, AppState>) -> Result<ExportedKey> {
    let paths = state.paths.clone();
    let exported = tauri::async_runtime::spawn_blocking(move || ops::export_key(&paths))
        .await
        .map_err(|_| CommandError::internal("the key export stopped unexpectedly"))??;
    Ok(ExportedKey(exported))
}

/// The person read what the key means (and perhaps exported it): the notice is not shown again for this key.
#[tauri::command]
pub(crate) async fn acknowledge_key_notice(state: State<'_, AppState>) -> Result<VaultStatus> {
    let ready = state.ready().await?;
    ops::acknowledge_key_notice(&state.paths, ready.ops().vault().key_id())?;
    Ok(state.status().await)
}

/// Puts an exported key back into the keyring (only the store's own key is accepted), then opens the vault.
#[tauri::command]
pub(crate) async fn import_key(app: AppHandle, state: State<'_, AppState>, key: String) -> Result<VaultStatus> {
    let key = SecretString::new(key);
    let paths = state.paths.clone();
    tauri::async_runtime::spawn_blocking(move || ops::import_key(&paths, key.dangerously_expose()))
        .await
        .map_err(|_| CommandError::internal("the key import stopped unexpectedly"))??;
    Ok(state.retry(&app).await)
}

/// Every provider of the profile, re-read from its configuration (the CLI may have changed it meanwhile).
#[tauri::command]
pub(crate) async fn list_providers(state: State<'_, AppState>) -> Result<Vec<Provider>> {
    let ready = state.ready().await?;
    let catalog = ready.ops().reload_providers()?;
    catalog
        .list()
        .map(|p| Ok(Provider::new(p, ready.ops().has_client_secret(p.id())?)))
        .collect()
}

/// Sets the client of a built-in (or already added) provider, and for a platform that redirects only to https,
/// the page registered as its redirect.
#[tauri::command]
pub(crate) async fn configure_provider(
    state: State<'_, AppState>,
    id: String,
    client_id: String,
    client_secret: Option<String>,
    auth: Option<Auth>,
    redirect_uri: Option<String>,
) -> Result<Provider> {
    let redirect_uri = redirect_uri
        .map(|uri| {
            Url::parse(uri.trim()).map_err(|error| {
                CommandError::new(
                    ErrorCode::Invalid,
                    format!("the redirect page is not an address ({error}): give it as https://your.site/page"),
                )
            })
        })
        .transpose()?;
    let request = AddProvider {
        id: ProviderId::parse(&id)?,
        issuer: None,
        display_name: None,
        client_id: Some(client_id),
        client_secret: secret(client_secret),
        auth: auth.map(Into::into),
        scopes: None,
        redirect_uri,
        instance: None,
        api_hosts: Vec::new(),
        no_par: false,
        no_dpop: false,
        atproto: None,
    };
    save_provider(&state, request).await
}

/// Adds the person's server of a platform that runs on many (`template`: `mastodon`): Tokenkeep registers itself
/// there, and the server becomes a provider of its own (the one returned).
#[tauri::command]
pub(crate) async fn add_server(state: State<'_, AppState>, template: String, server: String) -> Result<Provider> {
    let request = AddProvider {
        id: ProviderId::parse(&template)?,
        issuer: None,
        display_name: None,
        client_id: None,
        client_secret: None,
        auth: None,
        scopes: None,
        redirect_uri: None,
        instance: Some(server),
        api_hosts: Vec::new(),
        no_par: false,
        no_dpop: false,
        atproto: None,
    };
    save_provider(&state, request).await
}

/// Adds or replaces a provider from a definition in the catalog's TOML format (`name`: the file's name, for
/// messages). Nothing changes unless the whole profile stays valid.
#[tauri::command]
pub(crate) async fn import_provider(state: State<'_, AppState>, name: String, text: String) -> Result<Provider> {
    let ready = state.ready().await?;
    let ops: &LocalOps = ready.ops();
    let imported = ops.import_provider(&name, &text)?;
    let catalog = ops.engine().catalog();
    let provider = catalog.get(imported.provider.id()).unwrap_or(&imported.provider);
    Ok(Provider::new(provider, ops.has_client_secret(provider.id())?))
}

/// Adds a custom OpenID provider by discovery from its issuer.
#[tauri::command]
pub(crate) async fn add_custom_provider(
    state: State<'_, AppState>,
    id: String,
    issuer: String,
    display_name: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    auth: Option<Auth>,
) -> Result<Provider> {
    let issuer = Url::parse(issuer.trim()).map_err(|error| {
        CommandError::new(
            ErrorCode::Invalid,
            format!("the issuer is not a URL ({error}): give it as https://accounts.example.com"),
        )
    })?;
    let request = AddProvider {
        id: ProviderId::parse(&id)?,
        issuer: Some(issuer),
        display_name: display_name.filter(|name| !name.trim().is_empty()),
        client_id: Some(client_id),
        client_secret: secret(client_secret),
        auth: auth.map(Into::into),
        scopes: None,
        redirect_uri: None,
        instance: None,
        api_hosts: Vec::new(),
        no_par: false,
        no_dpop: false,
        atproto: None,
    };
    save_provider(&state, request).await
}

/// Connects an account: opens the sign-in page and resolves when the flow ends. One flow at a time.
#[tauri::command]
pub(crate) async fn connect(app: AppHandle, state: State<'_, AppState>, provider: String) -> Result<Connected> {
    let provider = ProviderId::parse(&provider)?;
    let ready = state.ready().await?;
    let browser = AppBrowser::for_app(&app, state.browser.as_ref());
    let flow = {
        let (ops, app) = (ready.ops().clone(), app.clone());
        async move {
            let mut observer = WindowObserver {
                app,
                provider: provider.to_string(),
            };
            ops.connect(&provider, ConnectOptions::default(), &browser, &mut observer)
                .await
        }
    };
    let (task, _claim) = state.start_flow(flow)?;
    // The engine announces the new (or reconnected) connection as a `connection-status` event.
    match task.await {
        Ok(result) => Ok(Connected::from(&result?)),
        Err(tauri::Error::JoinError(error)) if error.is_cancelled() => {
            tracing::info!("sign-in cancelled by the user");
            Err(CommandError::cancelled())
        }
        Err(error) => {
            tracing::error!(%error, "the sign-in task failed");
            Err(CommandError::internal("the sign-in stopped unexpectedly"))
        }
    }
}

/// The address the browser landed on, for a sign-in whose platform redirects to an https page (the flow said so
/// with `connect-progress` stage `waiting_for_paste`). It is checked exactly like a loopback callback.
#[tauri::command]
pub(crate) async fn paste_sign_in_address(state: State<'_, AppState>, address: String) -> Result<()> {
    if state.paste(SecretString::new(address)) {
        Ok(())
    } else {
        Err(CommandError::new(
            ErrorCode::Invalid,
            "no sign-in is waiting for an address: start connecting again",
        ))
    }
}

/// What the window learns while a sign-in runs: `connect-progress` events, and the pasted address.
struct WindowObserver {
    app: AppHandle,
    provider: String,
}

impl ConnectObserver for WindowObserver {
    fn authorization_url(&mut self, url: &Url, opened: std::result::Result<(), &BrowserError>) {
        // Sent whether or not the browser opened (core has logged why not): the window offers the URL, up front
        // when the browser did not start.
        let progress = ConnectProgress {
            provider: self.provider.clone(),
            stage: "waiting_for_browser",
            url: url.to_string(),
            opened: opened.is_ok(),
        };
        events::emit(&self.app, CONNECT_PROGRESS, progress);
    }

    fn pasted_address(&mut self, redirect: &Url) -> BoxFuture<'_, Option<SecretString>> {
        let waiting = self.app.state::<AppState>().expect_paste();
        let progress = ConnectProgress {
            provider: self.provider.clone(),
            stage: "waiting_for_paste",
            url: redirect.to_string(),
            opened: true,
        };
        events::emit(&self.app, CONNECT_PROGRESS, progress);
        Box::pin(async move { waiting.await.ok() })
    }
}

/// Ends the running connect flow, if any; its `connect` rejects with `cancelled`.
#[tauri::command]
pub(crate) async fn cancel_connect(state: State<'_, AppState>) -> Result<()> {
    if state.cancel_flow() {
        tracing::info!("cancelling the sign-in");
    }
    Ok(())
}

/// Every connection (offline).
#[tauri::command]
pub(crate) async fn list_connections(state: State<'_, AppState>) -> Result<Vec<Connection>> {
    let ready = state.ready().await?;
    let entries = ready.ops().run(ops::List {}).await?;
    let catalog = ready.ops().engine().catalog();
    Ok(entries
        .iter()
        .map(|entry| Connection::new(entry.id, &entry.meta, &catalog))
        .collect())
}

/// Refreshes a connection now, through the engine, and returns its new state.
#[tauri::command]
pub(crate) async fn refresh_now(state: State<'_, AppState>, id: String) -> Result<ConnectionView> {
    let connection = connection_id(&id)?.to_hex();
    let ready = state.ready().await?;
    let report = ready.ops().run(ops::Refresh { connection }).await?;
    Ok(ConnectionView::new(
        report.id,
        &report.meta,
        &ready.ops().engine().catalog(),
    ))
}

/// The Settings panel's values (`settings.json` in the profile) and what this desktop allows.
#[tauri::command]
pub(crate) async fn get_settings(app: AppHandle, state: State<'_, AppState>) -> Result<crate::dto::SettingsView> {
    let paths = state.paths.clone();
    let tray = app.state::<crate::tray::Tray>().inner().visible_async().await;
    Ok(settings_view(&paths, &Settings::load(&paths), tray))
}

/// Changes some settings, saves them atomically and applies them: "start at login" writes or removes the XDG
/// autostart entry, and the clipboard time applies to the next copy. Returns the settings as they are now.
#[tauri::command]
pub(crate) async fn set_settings(
    app: AppHandle,
    state: State<'_, AppState>,
    change: SettingsChange,
) -> Result<crate::dto::SettingsView> {
    let paths = state.paths.clone();
    let exe = std::env::current_exe()
        .map_err(|e| CommandError::new(ErrorCode::Internal, format!("cannot find this program's path: {e}")))?;
    let settings = Settings::change(&paths, &exe, &change).map_err(|error| match error {
        SettingsError::ClipboardSeconds(_) => CommandError::new(ErrorCode::Invalid, error.to_string()),
        error => CommandError::new(ErrorCode::Internal, error.to_string()),
    })?;
    let tray = app.state::<crate::tray::Tray>().inner().visible_async().await;
    Ok(settings_view(&paths, &settings, tray))
}

fn settings_view(paths: &ProfilePaths, settings: &Settings, tray_available: bool) -> crate::dto::SettingsView {
    crate::dto::SettingsView {
        start_at_login: settings.start_at_login,
        keep_running: settings.keep_running,
        notifications: settings.notifications,
        clipboard_seconds: settings.clipboard_seconds,
        tray_available,
        autostart_entry: tokenkeep_core::settings::autostart_entry(paths).map(|p| p.display().to_string()),
        clipboard_from_env: crate::clipboard::env_clear_after().is_some(),
    }
}

/// The account whose Reconnect was chosen in the tray, if the window has not taken it yet (once: the next call
/// says `null`). The page asks when its `tray-reconnect` event comes and after it has listed the connections, so
/// a Reconnect chosen while the window was closed, which the tray builds again, opens once the page is ready.
#[tauri::command]
pub(crate) fn take_tray_reconnect(app: AppHandle) -> Option<crate::dto::TrayReconnect> {
    let id = app.state::<crate::tray::Tray>().take_reconnect()?;
    Some(crate::dto::TrayReconnect { id: id.to_hex() })
}

/// Pauses automatic refreshing for `minutes` (1 to a day), or resumes it (`null`); returns until when it is
/// paused. The window's Resume and the tray's Pause both end here or in the same engine call.
#[tauri::command]
pub(crate) async fn pause_refreshing(state: State<'_, AppState>, minutes: Option<u32>) -> Result<crate::dto::Paused> {
    let length = match minutes {
        Some(m @ 1..=1440) => Some(std::time::Duration::from_secs(u64::from(m) * 60)),
        Some(m) => {
            return Err(CommandError::new(
                ErrorCode::Invalid,
                format!("a pause of {m} minutes is not possible: choose 1 to 1440 minutes"),
            ));
        }
        None => None,
    };
    let ready = state.ready().await?;
    let until = ready
        .ops()
        .engine()
        .pause(length)
        .map_err(|error| CommandError::new(ErrorCode::Internal, error.to_string()))?;
    Ok(crate::dto::Paused { until })
}

/// Revokes a connection's tokens at the provider and deletes it. When the provider cannot be reached,
/// `ifRevocationFails` (`keep_trying`, the default, or `delete_now`) decides; on an account whose revocation is
/// pending, `keep_trying` tries again now and `delete_now` deletes it without another attempt.
#[tauri::command]
pub(crate) async fn disconnect(
    state: State<'_, AppState>,
    id: String,
    if_revocation_fails: Option<String>,
) -> Result<Disconnected> {
    let connection = connection_id(&id)?.to_hex();
    let if_revocation_fails = match if_revocation_fails.as_deref() {
        None | Some("keep_trying") => IfRevocationFails::KeepTrying,
        Some("delete_now") => IfRevocationFails::DeleteNow,
        Some(other) => {
            return Err(CommandError::new(
                ErrorCode::Invalid,
                format!(
                    "{:?} is not a choice: use keep_trying or delete_now",
                    tokenkeep_core::text::clean(other, 40)
                ),
            ));
        }
    };
    let ready = state.ready().await?;
    Ok(ready
        .ops()
        .run(ops::Disconnect {
            connection,
            if_revocation_fails,
        })
        .await?
        .into())
}

/// Everything about a connection but its token bytes (offline).
#[tauri::command]
pub(crate) async fn inspect(state: State<'_, AppState>, id: String) -> Result<Inspection> {
    let connection = connection_id(&id)?.to_hex();
    let ready = state.ready().await?;
    let shown = ready
        .ops()
        .run(ops::Show {
            connection,
            reveal: false,
        })
        .await?;
    Ok(Inspection::new(shown.inspection, &ready.ops().engine().catalog()))
}

/// Removes a custom provider, or forgets a built-in one's setup (its client id and secret). Refused while accounts
/// use it, unless `with_connections`: they are disconnected first (revoked at the platform, deleted).
#[tauri::command]
pub(crate) async fn remove_provider(
    state: State<'_, AppState>,
    id: String,
    with_connections: Option<bool>,
) -> Result<RemovedProvider> {
    let id = ProviderId::parse(&id)?;
    let ready = state.ready().await?;
    let removed = ready
        .ops()
        .run(ops::RemoveProvider {
            id,
            with_connections: with_connections.unwrap_or(false),
        })
        .await?;
    Ok(RemovedProvider {
        id: removed.id.to_string(),
        disconnected: removed.disconnected.len(),
        setup_forgotten: removed.setup_forgotten,
    })
}

/// The account picture stored at connect, as a `data:` address the window can show (its CSP allows `data:`
/// images and nothing remote); `null` when the platform gave none. Never fetched here: the window stays offline.
#[tauri::command]
pub(crate) async fn account_picture(state: State<'_, AppState>, id: String) -> Result<Option<AccountPicture>> {
    let connection = connection_id(&id)?.to_hex();
    let ready = state.ready().await?;
    let picture = ready.ops().run(ops::Picture { connection }).await?;
    Ok(picture.map(AccountPicture::from))
}

/// Copies one token to the clipboard from here — the webview never holds it — and clears it after a while if the
/// clipboard still holds it. Answers (and emits as `clipboard`) when it will be cleared.
#[tauri::command]
pub(crate) async fn copy_token(
    app: AppHandle,
    state: State<'_, AppState>,
    clipboard: State<'_, TokenClipboard>,
    id: String,
    kind: String,
) -> Result<ClipboardEvent> {
    let connection = connection_id(&id)?.to_hex();
    let kind = crate::dto::token_kind(&kind)?;
    let ready = state.ready().await?;
    let token = ready.ops().reveal(&connection, kind).await?;
    let copied = clipboard
        .copy(&app, &token)
        .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))?;
    tracing::info!(connection = %connection, kind = %kind.field(), "token copied to the clipboard");
    Ok(copied)
}

/// "Clear now": takes a copied token off the clipboard if it is still there.
#[tauri::command]
pub(crate) fn clear_clipboard(app: AppHandle, clipboard: State<'_, TokenClipboard>) -> ClipboardEvent {
    let outcome = clipboard.clear_if_ours(None).unwrap_or(ClipboardEvent::Cleared);
    let _ = tauri::Emitter::emit(&app, crate::clipboard::CLIPBOARD, &outcome);
    outcome
}

/// One token's value, because the user pressed "Reveal".
#[tauri::command]
pub(crate) async fn reveal(state: State<'_, AppState>, id: String, kind: String) -> Result<Revealed> {
    let connection = connection_id(&id)?.to_hex();
    let kind = crate::dto::token_kind(&kind)?;
    let ready = state.ready().await?;
    // Core logs who saw which kind of token, never the value.
    Ok(Revealed(ready.ops().reveal(&connection, kind).await?))
}

async fn save_provider(state: &AppState, request: AddProvider) -> Result<Provider> {
    let ready = state.ready().await?;
    let ops: &LocalOps = ready.ops();
    let added = ops.add_provider(request).await?;
    let catalog = ops.engine().catalog();
    let provider = catalog.get(added.provider.id()).unwrap_or(&added.provider);
    Ok(Provider::new(provider, ops.has_client_secret(provider.id())?))
}

/// A client secret from the webview, protected from here on. Absent means "leave it as it is"; an empty string
/// is stored as given (some platforms, e.g. Reddit's installed apps, authenticate with an empty secret).
fn secret(value: Option<String>) -> Option<SecretString> {
    value.map(SecretString::new)
}

fn connection_id(id: &str) -> Result<ConnectionId> {
    id.parse().map_err(|error: tokenkeep_core::store::InvalidConnectionId| {
        CommandError::new(ErrorCode::Invalid, error.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_absent_client_secret_is_absent() {
        assert!(secret(None).is_none());
        assert_eq!(secret(Some(String::new())).unwrap().dangerously_expose(), "");
        assert!(!format!("{:?}", secret(Some("s3cret-value".into()))).contains("s3cret"));
    }

    #[test]
    fn connection_ids_must_be_32_hex_digits() {
        assert_eq!(connection_id("nope").unwrap_err().code, ErrorCode::Invalid);
        let id = ConnectionId::from_bytes([0xab; 16]);
        assert_eq!(connection_id(&id.to_hex()).unwrap(), id);
    }
}
