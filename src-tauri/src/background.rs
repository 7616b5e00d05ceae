//! Living in the background: the window's close button hides it while the tray keeps refreshing, `--background`
//! starts with no window, and SIGTERM, SIGINT and SIGHUP quit as cleanly as the tray's Quit (the engine finishes
//! what is in flight, the CLI socket's files are removed).

use tauri::{AppHandle, CloseRequestApi, Manager, WebviewWindow};
use tokenkeep_core::settings::Settings;

use crate::state::AppState;
use crate::tray::Tray;

/// The argument a login start passes: the tray only, no window.
pub(crate) const BACKGROUND_ARG: &str = "--background";

/// The webview event sent when the window was hidden rather than closed. Payload: `BackgroundNote`.
pub(crate) const BACKGROUND_NOTE: &str = "background-note";

/// What the person is told, once, the first time closing the window leaves Tokenkeep running.
pub(crate) const BACKGROUND_MESSAGE: &str =
    "Tokenkeep keeps your connections fresh in the background. Quit from the tray icon.";

/// Whether this launch asked for no window.
pub(crate) fn background_requested() -> bool {
    std::env::args().skip(1).any(|arg| arg == BACKGROUND_ARG)
}

/// The window's close button: hide the window and keep running when the setting says so and a tray shows the
/// item; otherwise let it close (the app then quits, as it always did).
pub(crate) fn on_close_requested(window: &WebviewWindow, api: &CloseRequestApi) {
    let app = window.app_handle();
    let paths = &app.state::<AppState>().paths;
    let mut settings = Settings::load(paths);
    if !settings.keep_running {
        tracing::info!("window closed; quitting (keeping running in the background is switched off)");
        return;
    }
    if !app.state::<Tray>().visible() {
        tracing::info!("window closed; quitting (no tray host shows Tokenkeep's icon on this desktop)");
        return;
    }
    api.prevent_close();
    if let Err(error) = window.hide() {
        tracing::warn!(%error, "cannot hide the window; quitting instead");
        app.exit(0);
        return;
    }
    tracing::info!("window hidden; refreshing goes on in the background");
    if !settings.background_noted {
        settings.background_noted = true;
        if let Err(error) = settings.save(paths) {
            tracing::warn!(%error, "cannot record that the background note was shown");
        }
        crate::events::notify_background(app, BACKGROUND_MESSAGE);
        crate::events::emit(
            app,
            BACKGROUND_NOTE,
            crate::dto::BackgroundNote {
                message: BACKGROUND_MESSAGE.to_owned(),
            },
        );
    }
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
