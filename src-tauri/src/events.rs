//! The events the webview listens to (docs/IPC.md, "Events"); each `attention` also goes to the desktop
//! notifications (`notify.rs`) and every event to the tray (`tray.rs`). Everything the refresh engine reports passes through [`forward`].

use std::sync::Arc;

use tauri::{AppHandle, Emitter, Manager};
use tokenkeep_core::ops::{self, LocalOps, Operations as _};
use tokenkeep_core::refresh::EngineEvent;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::dto::{self, ConnectionView};
use crate::notify::{self, Notifier};
use crate::tray::Tray;

/// A connection's status, expiry or last refresh changed. Payload: `Connection`.
pub(crate) const CONNECTION_STATUS: &str = "connection-status";
/// A connection was disconnected. Payload: `{ id }`.
pub(crate) const CONNECTION_REMOVED: &str = "connection-removed";
/// The providers changed (here, or another process edited the profile's configuration). Payload: `null`.
pub(crate) const PROVIDERS_CHANGED: &str = "providers-changed";
/// A connection needs the user, once per incident. Payload: `{ id, provider, account, message }`.
pub(crate) const ATTENTION: &str = "attention";
/// The vault opened (or failed again) without a command: the keyring it waited for started or was unlocked.
/// Payload: `VaultStatus`.
pub(crate) const VAULT_STATUS: &str = "vault-status";
/// Automatic refreshing was paused (from the tray) or resumed. Payload: `{ until }` (Unix seconds, or null).
pub(crate) const REFRESH_PAUSED: &str = "refresh-paused";
/// The browser was asked to open the sign-in page. Payload: `{ provider, stage, url }`.
pub(crate) const CONNECT_PROGRESS: &str = "connect-progress";

/// Sends one event to the webview. A failure (the window is gone) is logged, never fatal.
pub(crate) fn emit<P: serde::Serialize + Clone>(app: &AppHandle, event: &str, payload: P) {
    if let Err(error) = app.emit(event, payload) {
        tracing::warn!(event, %error, "could not send an event to the window");
    }
}

/// Forwards every [`EngineEvent`] to the webview until the engine is dropped. Each event carries the connection
/// as just written, so nothing is read from the vault again — except after missed events.
pub(crate) async fn forward(app: AppHandle, mut events: Receiver<EngineEvent>, ops: Arc<LocalOps>) {
    let tray = app.state::<Tray>();
    tray.sync(&ops).await;
    loop {
        let event = events.recv().await;
        // The tray follows after the window has the event (its menu is rebuilt a moment later, off this task).
        let for_tray = event.as_ref().ok().cloned();
        match event {
            Ok(EngineEvent::Status(change)) => {
                let connection = ConnectionView::new(change.id, &change.meta, &ops.engine().catalog());
                emit(&app, CONNECTION_STATUS, connection);
            }
            Ok(EngineEvent::Removed(id)) => emit(&app, CONNECTION_REMOVED, dto::Removed { id: id.to_hex() }),
            Ok(EngineEvent::ProvidersChanged) => {
                // A provider's name, readiness or mark may read differently now: the window reloads the
                // providers, and every card gets its connection again with the new names.
                emit(&app, PROVIDERS_CHANGED, ());
                resend_all(&app, &ops).await;
            }
            Ok(EngineEvent::Attention {
                id,
                provider,
                account,
                message,
            }) => {
                let provider_name = dto::provider_name(&ops.engine().catalog(), &provider);
                app.state::<Notifier>().attention(notify::Attention {
                    id,
                    provider: provider.clone(),
                    label: format!("{account} ({provider_name})"),
                    message: message.clone(),
                });
                let payload = dto::Attention {
                    id: id.to_hex(),
                    provider: provider.to_string(),
                    account,
                    message,
                };
                emit(&app, ATTENTION, payload);
            }
            Ok(EngineEvent::Paused { until }) => emit(&app, REFRESH_PAUSED, dto::Paused { until }),
            Ok(other) => tracing::debug!(?other, "engine event with no window counterpart"),
            Err(RecvError::Lagged(missed)) => {
                // IMPORTANT: the channel dropped events (a burst larger than its capacity). Statuses are state,
                // not history: re-sending every connection's current state puts the window right again.
                tracing::warn!(
                    missed,
                    "the window fell behind the refresh engine; re-sending every status"
                );
                tray.sync(&ops).await;
                resend_all(&app, &ops).await;
            }
            Err(RecvError::Closed) => break,
        }
        if let Some(event) = &for_tray {
            tray.observe(event, &ops.engine().catalog());
        }
    }
    tracing::debug!("engine events ended");
}

async fn resend_all(app: &AppHandle, ops: &LocalOps) {
    match ops.run(ops::List {}).await {
        Ok(entries) => {
            let catalog = ops.engine().catalog();
            for entry in entries {
                if let Ok(meta) = &entry.meta {
                    emit(app, CONNECTION_STATUS, ConnectionView::new(entry.id, meta, &catalog));
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot list connections to re-send their status"),
    }
}
