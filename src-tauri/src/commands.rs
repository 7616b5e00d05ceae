//! Tauri commands, one per row of docs/IPC.md: each extracts state, calls one core function and maps the result
//! to a DTO and the error to `{ code, message }`. Nothing else lives here.
//!
//! Every command but `app_info`, `vault_status`, `retry_vault` and `cancel_connect` needs the open vault, and
//! rejects with the vault's own error (e.g. `keyring_locked`) while it is not open. All of them are `async`: Tauri
//! runs synchronous commands on the main thread, and vault reads, however short, do not belong there.

use tauri::{AppHandle, State};
use tokenkeep_core::browser::BrowserError;
use tokenkeep_core::clock::SystemClock;
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::service::{self, AddProvider, ConnectOptions};
use tokenkeep_core::store::{ConnectionId, Vault};
use url::Url;

use crate::browser::AppBrowser;
use crate::dto::{
    AppInfo, Auth, ConnectProgress, Connected, Connection, ConnectionView, Disconnected, Inspection, Provider,
    Revealed, VaultStatus,
};
use crate::error::{CommandError, ErrorCode};
use crate::events::{self, CONNECT_PROGRESS, CONNECTION_STATUS};
use crate::state::{AppState, Ready};

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
    }
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

/// Every provider of the profile, re-read from its configuration (the CLI may have changed it meanwhile).
#[tauri::command]
pub(crate) async fn list_providers(state: State<'_, AppState>) -> Result<Vec<Provider>> {
    let ready = state.ready().await?;
    let catalog = ready.reload_catalog(&state.paths)?;
    catalog
        .list()
        .map(|p| Ok(Provider::new(p, has_secret(&ready.vault, p.id())?)))
        .collect()
}

/// Sets the client of a built-in (or already added) provider.
#[tauri::command]
pub(crate) async fn configure_provider(
    state: State<'_, AppState>,
    id: String,
    client_id: String,
    client_secret: Option<String>,
    auth: Option<Auth>,
) -> Result<Provider> {
    let request = AddProvider {
        id: ProviderId::parse(&id)?,
        issuer: None,
        display_name: None,
        client_id: Some(client_id),
        client_secret: secret(client_secret),
        auth: auth.map(Into::into),
        scopes: None,
    };
    save_provider(&state, request).await
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
    };
    save_provider(&state, request).await
}

/// Connects an account: opens the sign-in page and resolves when the flow ends. One flow at a time.
#[tauri::command]
pub(crate) async fn connect(app: AppHandle, state: State<'_, AppState>, provider: String) -> Result<Connected> {
    let provider = ProviderId::parse(&provider)?;
    let ready = state.ready().await?;
    let browser = match &state.browser {
        Some(command) => AppBrowser::Command(command.clone()),
        None => AppBrowser::Desktop(app.clone()),
    };
    let flow = {
        let (ready, app) = (ready.clone(), app.clone());
        async move {
            let catalog = ready.catalog.get();
            let name = provider.to_string();
            let mut observer = move |url: &Url, opened: std::result::Result<(), &BrowserError>| {
                // Sent whether or not the browser opened (core has logged why not): the window offers the URL,
                // up front when the browser did not start.
                let progress = ConnectProgress {
                    provider: name.clone(),
                    stage: "waiting_for_browser",
                    url: url.to_string(),
                    opened: opened.is_ok(),
                };
                events::emit(&app, CONNECT_PROGRESS, progress);
            };
            let options = ConnectOptions::default();
            service::connect_account(
                &catalog,
                &ready.vault,
                &ready.http,
                &browser,
                &SystemClock,
                &provider,
                options,
                &mut observer,
            )
            .await
        }
    };
    let (task, _claim) = state.start_flow(flow)?;
    let connected = match task.await {
        Ok(result) => result?,
        Err(tauri::Error::JoinError(error)) if error.is_cancelled() => {
            tracing::info!("sign-in cancelled by the user");
            return Err(CommandError::cancelled());
        }
        Err(error) => {
            tracing::error!(%error, "the sign-in task failed");
            return Err(CommandError::internal("the sign-in stopped unexpectedly"));
        }
    };
    ready.engine.schedule(connected.id);
    // A reconnect changes an existing connection's status; a new one is news to any listener too.
    if let Ok(view) = connection_view(&ready, connected.id) {
        events::emit(&app, CONNECTION_STATUS, view);
    }
    Ok(Connected::from(&connected))
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
    let catalog = ready.catalog.get();
    let entries = service::list_connections(&ready.vault)?;
    Ok(entries
        .iter()
        .map(|entry| Connection::new(entry.id, &entry.meta, &catalog))
        .collect())
}

/// Refreshes a connection now, through the engine, and returns its new state.
#[tauri::command]
pub(crate) async fn refresh_now(state: State<'_, AppState>, id: String) -> Result<ConnectionView> {
    let id = connection_id(&id)?;
    let ready = state.ready().await?;
    ready.engine.refresh_now(id).await?;
    connection_view(&ready, id)
}

/// Revokes a connection's tokens at the provider and deletes it.
#[tauri::command]
pub(crate) async fn disconnect(state: State<'_, AppState>, id: String) -> Result<Disconnected> {
    let id = connection_id(&id)?;
    let ready = state.ready().await?;
    let report = ready.refresher.disconnect(id).await?;
    ready.engine.forget(id);
    Ok(report.into())
}

/// Everything about a connection but its token bytes (offline).
#[tauri::command]
pub(crate) async fn inspect(state: State<'_, AppState>, id: String) -> Result<Inspection> {
    let id = connection_id(&id)?;
    let ready = state.ready().await?;
    let inspection = service::inspect(&ready.vault, id)?;
    Ok(Inspection::new(inspection, &ready.catalog.get()))
}

/// One token's value, because the user pressed "Reveal".
#[tauri::command]
pub(crate) async fn reveal(state: State<'_, AppState>, id: String, kind: String) -> Result<Revealed> {
    let id = connection_id(&id)?;
    let kind = crate::dto::token_kind(&kind)?;
    let ready = state.ready().await?;
    let token = service::reveal(&ready.vault, id, kind)?;
    // Who saw what, never the value.
    tracing::info!(connection = %id, kind = %kind.field(), "token revealed in the window");
    Ok(Revealed(token))
}

async fn save_provider(state: &AppState, request: AddProvider) -> Result<Provider> {
    let ready = state.ready().await?;
    let added = service::add_provider(&state.paths, &*ready.http, || Ok(&*ready.vault), request).await?;
    let catalog = ready.reload_catalog(&state.paths)?;
    let provider = catalog.get(added.provider.id()).unwrap_or(&added.provider);
    Ok(Provider::new(provider, has_secret(&ready.vault, provider.id())?))
}

fn has_secret(vault: &Vault, provider: &ProviderId) -> Result<bool> {
    Ok(vault.client_secret(provider.as_str())?.is_some())
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

fn connection_view(ready: &Ready, id: ConnectionId) -> Result<ConnectionView> {
    let meta = ready.vault.get_meta(id)?;
    Ok(ConnectionView::new(id, &meta, &ready.catalog.get()))
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
