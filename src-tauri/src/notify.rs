//! Desktop notifications, as the person sees them: from "Tokenkeep" with its icon, saying in words which account
//! needs them and what to do. Attention events that come together (the network went down, a platform revoked
//! every grant) become one summary, not one notification per account: the first waits [`GATHER`] for the others.
//! What was shown is logged only when a notification server took it.

use std::time::Duration;

use tauri::{AppHandle, Manager as _};
use tokenkeep_core::desktop;
#[cfg(target_os = "linux")]
use tokenkeep_core::desktop::Notice;
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::settings::Settings;
use tokenkeep_core::store::ConnectionId;
use tokio::sync::mpsc;

use crate::state::AppState;

/// The log message written for each connection a shown notification names (tests look for it).
pub(crate) const NOTIFICATION_SENT: &str = "desktop notification sent";

/// How long the first attention of a burst waits for the others.
const GATHER: Duration = Duration::from_millis(1500);

/// The name notification servers show.
#[cfg(target_os = "linux")]
const APP_NAME: &str = "Tokenkeep";

/// At most this many accounts are named in a summary; the rest are counted.
const NAMED: usize = 3;

/// One account that needs the person.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    pub(crate) id: ConnectionId,
    pub(crate) provider: ProviderId,
    /// "alice@example.com (YouTube)".
    pub(crate) label: String,
    /// What happened and what to do, in words.
    pub(crate) message: String,
}

/// Gathers attention events and shows them.
#[derive(Debug)]
pub(crate) struct Notifier {
    attention: mpsc::UnboundedSender<Attention>,
}

impl Notifier {
    /// Starts the task that shows the notifications.
    pub(crate) fn start(app: &AppHandle) -> Self {
        let (attention, receiver) = mpsc::unbounded_channel();
        tauri::async_runtime::spawn(run(app.clone(), receiver));
        Self { attention }
    }

    /// An account needs the person (once per incident: core sends no repeats).
    pub(crate) fn attention(&self, attention: Attention) {
        let _ = self.attention.send(attention);
    }
}

async fn run(app: AppHandle, mut receiver: mpsc::UnboundedReceiver<Attention>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + GATHER;
        while let Ok(Some(next)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
            batch.push(next);
        }
        show_attention(&app, &batch).await;
    }
}

async fn show_attention(app: &AppHandle, batch: &[Attention]) {
    if !Settings::load(&app.state::<AppState>().paths).notifications {
        tracing::debug!(accounts = batch.len(), "desktop notifications are switched off");
        return;
    }
    let (summary, body) = words(batch);
    match show(app, &summary, &body).await {
        Ok(()) => {
            // The account names stay out of the log, as everywhere: provider and connection id identify them.
            for a in batch {
                tracing::info!(provider = %a.provider, connection = %a.id, accounts = batch.len(), "{NOTIFICATION_SENT}");
            }
        }
        Err(error) => tracing::warn!(accounts = batch.len(), %error, "no desktop notification was shown"),
    }
}

/// Tells the person that Tokenkeep went on running when the window closed; returns whether it was shown.
pub(crate) async fn background(app: &AppHandle, message: &str) -> bool {
    match show(app, "Tokenkeep is still running", message).await {
        Ok(()) => {
            tracing::info!("{NOTIFICATION_SENT}: running in the background");
            true
        }
        Err(error) => {
            tracing::info!(%error, "no desktop notification was shown for running in the background");
            false
        }
    }
}

#[cfg(not(target_os = "linux"))]
async fn show(app: &AppHandle, summary: &str, body: &str) -> Result<(), desktop::NotifyError> {
    use tauri_plugin_notification::NotificationExt as _;
    app.notification()
        .builder()
        .title(summary)
        .body(body)
        .show()
        .map_err(|e| desktop::NotifyError::NoService(e.to_string()))
}

#[cfg(target_os = "linux")]
async fn show(app: &AppHandle, summary: &str, body: &str) -> Result<(), desktop::NotifyError> {
    let icon = icon_file(app)
        .map(|p| format!("file://{}", p.display()))
        .unwrap_or_default();
    desktop::notify(&Notice {
        app_name: APP_NAME,
        icon: &icon,
        summary,
        body,
        // The installed desktop entry (`/usr/share/applications/Tokenkeep.desktop`).
        desktop_entry: "Tokenkeep",
        replaces: 0,
    })
    .await
    .map(|_| ())
}

/// The app icon as a file a notification server can read (written once into the app's cache).
#[cfg(target_os = "linux")]
fn icon_file(app: &AppHandle) -> Option<std::path::PathBuf> {
    const PNG: &[u8] = include_bytes!("../../icons/128x128.png");
    let path = app.path().app_cache_dir().ok()?.join("tokenkeep.png");
    if std::fs::read(&path).ok().as_deref() != Some(PNG) {
        std::fs::create_dir_all(path.parent()?).ok()?;
        std::fs::write(&path, PNG).ok()?;
    }
    Some(path)
}

/// The summary and body of a notification about `batch` (never empty).
fn words(batch: &[Attention]) -> (String, String) {
    match batch {
        [one] => (format!("{} needs you", one.label), one.message.clone()),
        many => {
            let mut names: Vec<&str> = many.iter().take(NAMED).map(|a| a.label.as_str()).collect();
            let rest = many.len().saturating_sub(NAMED);
            let listed = if rest > 0 {
                format!("{} and {rest} more", names.join(", "))
            } else {
                let last = names.pop().unwrap_or_default();
                format!("{} and {last}", names.join(", "))
            };
            (
                format!("{} accounts need you", many.len()),
                format!("{listed}. Open Tokenkeep to see what each needs."),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attention(n: u8, label: &str) -> Attention {
        Attention {
            id: ConnectionId::from_bytes([n; 16]),
            provider: ProviderId::parse("demo").unwrap(),
            label: label.to_owned(),
            message: format!("{label}: sign in again."),
        }
    }

    #[test]
    fn one_account_is_named_with_what_to_do_and_many_become_one_summary() {
        let one = words(&[attention(1, "alice (YouTube)")]);
        assert_eq!(
            one,
            (
                "alice (YouTube) needs you".to_owned(),
                "alice (YouTube): sign in again.".to_owned()
            )
        );

        let two = words(&[attention(1, "a (X)"), attention(2, "b (X)")]);
        assert_eq!(two.0, "2 accounts need you");
        assert!(two.1.starts_with("a (X) and b (X). Open Tokenkeep"), "{}", two.1);

        let five: Vec<_> = (0..5).map(|n| attention(n, &format!("u{n} (Demo)"))).collect();
        let five = words(&five);
        assert_eq!(five.0, "5 accounts need you");
        assert!(
            five.1.starts_with("u0 (Demo), u1 (Demo), u2 (Demo) and 2 more."),
            "{}",
            five.1
        );
    }
}
