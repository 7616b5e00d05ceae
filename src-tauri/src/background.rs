//! Living in the background: the window's close button closes the window while the tray keeps refreshing,
//! `--background` starts with no window, and SIGTERM, SIGINT and SIGHUP quit as cleanly as the tray's Quit (the
//! engine finishes what is in flight, the CLI socket's files are removed).
//!
//! A window closed to the tray is really closed, not hidden: its webview and WebKit's web process go, and with
//! them most of the app's memory and all of its rendering. The tray's Open (or a second launch) builds it again
//! from the configuration.

use std::sync::atomic::{AtomicBool, Ordering};

use tauri::{AppHandle, Manager, WebviewWindow};
use tokenkeep_core::settings::Settings;

use crate::state::AppState;
use crate::tray::Tray;

/// The argument a login start passes: the tray only, no window.
pub(crate) const BACKGROUND_ARG: &str = "--background";

/// What the person is told, once, the first time closing the window leaves Tokenkeep running.
pub(crate) const BACKGROUND_MESSAGE: &str =
    "Tokenkeep keeps your connections fresh in the background. Quit from the tray icon.";

/// Whether this launch asked for no window.
pub(crate) fn background_requested() -> bool {
    std::env::args().skip(1).any(|arg| arg == BACKGROUND_ARG)
}

/// Whether the app outlives its window.
#[derive(Debug, Default)]
pub(crate) struct Background {
    /// The last window closed was closed to the tray: its closing must not end the app.
    closed_to_tray: AtomicBool,
}

impl Background {
    /// Whether the app's exit, now that its last window closed, is to be prevented.
    pub(crate) fn keeps_running(&self) -> bool {
        self.closed_to_tray.load(Ordering::Acquire)
    }
}

/// The window's close button: keep running in the tray when the setting says so and a tray shows the item (the
/// window closes, the app does not quit); otherwise the window closes and the app quits, as it always did.
pub(crate) fn on_close_requested(window: &WebviewWindow) {
    let app = window.app_handle();
    let keep = keep_running(app);
    app.state::<Background>().closed_to_tray.store(keep, Ordering::Release);
}

fn keep_running(app: &AppHandle) -> bool {
    let paths = &app.state::<AppState>().paths;
    let settings = Settings::load(paths);
    if !settings.keep_running {
        tracing::info!("window closed; quitting (keeping running in the background is switched off)");
        return false;
    }
    if !app.state::<Tray>().visible() {
        tracing::info!("window closed; quitting (no tray host shows Tokenkeep's icon on this desktop)");
        return false;
    }
    tracing::info!("window closed; refreshing goes on in the background (the tray's Open brings it back)");
    if !settings.background_noted {
        // Recorded only once a notification server showed it: otherwise the next close says it again.
        let (app, paths) = (app.clone(), paths.clone());
        tauri::async_runtime::spawn(async move {
            if crate::notify::background(&app, BACKGROUND_MESSAGE).await {
                let mut settings = Settings::load(&paths);
                settings.background_noted = true;
                if let Err(error) = settings.save(&paths) {
                    tracing::warn!(%error, "cannot record that the background note was shown");
                }
            }
        });
    }
    true
}

/// Quits the app like the tray's Quit when the process is asked to end (SIGTERM from a session manager or
/// `kill`, SIGINT from a terminal, SIGHUP when the terminal goes away).
pub(crate) fn quit_on_signals(app: &AppHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                signal(SignalKind::hangup()),
            ) else {
                tracing::warn!("cannot watch for SIGTERM: a `kill` would leave the CLI socket's files behind");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => "SIGHUP",
            };
            tracing::info!(signal = name, "asked to quit");
            app.exit(0);
        });
    }
}

/// Re-plans the refresh engine each time the system wakes from sleep (logind), so that tokens that expired
/// during the sleep are refreshed within seconds.
pub(crate) fn replan_on_wake(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokenkeep_core::desktop::on_wake(|| {
            let app = app.clone();
            async move {
                if let Ok(ready) = app.state::<AppState>().ready().await {
                    ready.ops().engine().replan();
                }
            }
        })
        .await;
    });
}
