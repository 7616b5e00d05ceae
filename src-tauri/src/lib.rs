//! Tokenkeep's desktop app: a thin Tauri adapter over `tokenkeep-core`.
//!
//! Commands extract state, call one core function and map the error; the types the webview sees (DTOs) live
//! here, never in core, and never carry token or key bytes. The contract with the webview is docs/IPC.md.
//!
//! Start-up: settings and logging first (so every later failure is logged), then the window; the vault is opened
//! in the background by the setup hook, and a vault that cannot be opened leaves the app running with
//! `vault_status` saying why. When the vault opens, the refresh engine starts and its events reach the window
//! (`events.rs`).

mod background;
mod browser;
mod clipboard;
mod commands;
mod dto;
mod error;
mod events;
mod notify;
mod state;
mod tray;

use std::process::ExitCode;

use tauri::Manager;
use tokenkeep_core::browser::{self as core_browser, CommandBrowser};
use tokenkeep_core::profile::{self, Profile, ProfilePaths};

use crate::state::AppState;

/// Program name recorded in logs (and, later, as the holder of the store lock).
pub const PROGRAM: &str = "tokenkeep-app";

/// Starts the app; returns when the last window closes.
pub fn run() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(message) => return fail(&message),
    };
    if let Err(message) = check_display() {
        return fail(&message);
    }
    if let Err(error) = settings.paths.ensure() {
        return fail(&error.to_string());
    }
    if let Err(error) = tokenkeep_core::logging::init(&tokenkeep_core::logging::LogConfig {
        dir: Some(&settings.paths.logs_dir()),
        file_stem: PROGRAM,
        stderr: true,
        default_filter: "info,tokenkeep_core=debug,tokenkeep_app=debug",
    }) {
        return fail(&format!(
            "cannot open the log file in {}: {error}",
            settings.paths.logs_dir().display()
        ));
    }
    let background = background::background_requested();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        background,
        profile = %settings.paths.profile(),
        data_dir = %settings.paths.dir().display(),
        "starting Tokenkeep"
    );

    // IMPORTANT: one instance per profile. The D-Bus name carries the profile so that a dev build can run
    // next to the installed prod app, while a second launch of the same profile focuses the first window.
    let single_instance = tauri_plugin_single_instance::Builder::new()
        .dbus_id(format!(
            "io.tokenkeep.desktop.profile_{}",
            settings.paths.profile().as_str().replace('-', "_")
        ))
        .callback(|app, _args, _cwd| {
            // Also when this instance runs in the background with its window hidden: a launch means "show me".
            tracing::info!("second launch: showing the existing window");
            tray::show_window(app);
        })
        .build();

    let app = tauri::Builder::default().plugin(single_instance);
    #[cfg(not(target_os = "linux"))]
    let app = app.plugin(tauri_plugin_notification::init());
    let app = app
        // IMPORTANT: the plugin's script that routes clicks on links to `open_url` is left out: the webview has
        // no opener permission (only Rust opens URLs, for sign-in), so that script could only fail.
        .plugin(
            tauri_plugin_opener::Builder::new()
                .open_js_links_on_click(false)
                .build(),
        )
        .manage(AppState::new(settings.paths, settings.headless, settings.browser))
        .manage(clipboard::TokenClipboard::default())
        .manage(tray::Tray::default())
        .manage(background::Background::default())
        .setup(move |app| {
            app.manage(notify::Notifier::start(app.handle()));
            app.state::<tray::Tray>().install(app.handle());
            // IMPORTANT: the window is created hidden (tauri.conf.json), so that a login start shows none.
            if background {
                tracing::info!("started in the background: no window until the tray's Open or a second launch");
            } else {
                tray::show_window(app.handle());
            }
            background::quit_on_signals(app.handle());
            background::replan_on_wake(app.handle());
            app.state::<AppState>().open_in_background(app.handle())?;
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { .. } = event
                && let Some(window) = window.app_handle().get_webview_window(window.label())
            {
                background::on_close_requested(&window);
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::vault_status,
            commands::retry_vault,
            commands::export_key,
            commands::acknowledge_key_notice,
            commands::import_key,
            commands::open_setup_page,
            commands::restore_backup,
            commands::list_providers,
            commands::configure_provider,
            commands::add_custom_provider,
            commands::add_server,
            commands::import_provider,
            commands::remove_provider,
            commands::connect,
            commands::cancel_connect,
            commands::paste_sign_in_address,
            commands::list_connections,
            commands::refresh_now,
            commands::pause_refreshing,
            commands::get_settings,
            commands::set_settings,
            commands::take_tray_reconnect,
            commands::disconnect,
            commands::inspect,
            commands::account_picture,
            commands::reveal,
            commands::copy_token,
            commands::clear_clipboard,
        ])
        .build(tauri::generate_context!("../tauri.conf.json"));
    let app = match app {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "the app could not start");
            return fail(&format!("the app could not start: {error}"));
        }
    };
    let code = app.run_return(|app, event| {
        // The last window closed to the tray: the app goes on (an explicit exit carries a code).
        if let tauri::RunEvent::ExitRequested { code: None, api, .. } = &event
            && app.state::<background::Background>().keeps_running()
        {
            api.prevent_exit();
            return;
        }
        if let tauri::RunEvent::Exit = event {
            // A copied token does not outlive the app on the clipboard.
            app.state::<clipboard::TokenClipboard>().clear_if_ours(None);
            // Let refreshes in flight finish (bounded) so that a rotated refresh token is saved, not lost.
            tauri::async_runtime::block_on(app.state::<AppState>().shut_down());
        }
    });
    // Not `code`: the log redactor masks `code=` as an OAuth authorization code.
    tracing::info!(exit_status = code, "Tokenkeep stopped");
    match u8::try_from(code) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::FAILURE,
    }
}

/// What the app needs from its environment, resolved once at start.
struct Settings {
    paths: ProfilePaths,
    headless: bool,
    /// `TOKENKEEP_BROWSER`, when set to a command.
    browser: Option<CommandBrowser>,
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let profile_name = std::env::var(profile::ENV_PROFILE).ok();
        let profile = Profile::resolve(profile_name.as_deref()).map_err(|e| e.to_string())?;
        let home = std::env::var_os(profile::ENV_HOME).map(Into::into);
        let paths = ProfilePaths::resolve(profile, home).map_err(|e| e.to_string())?;
        let headless = std::env::var_os(tokenkeep_core::keys::ENV_MASTER_KEY).is_some();
        let browser = std::env::var(core_browser::ENV_BROWSER)
            .ok()
            .and_then(|command| CommandBrowser::parse(&command));
        Ok(Self {
            paths,
            headless,
            browser,
        })
    }
}

/// GTK aborts with a cryptic "Failed to initialize GTK" without a display; say what is needed instead.
fn check_display() -> Result<(), String> {
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err(
            "no graphical display found (neither DISPLAY nor WAYLAND_DISPLAY is set). Tokenkeep's window \
                    needs a desktop session; on a server use the `tokenkeep` command-line tool instead, or run the \
                    app under Xvfb (`xvfb-run tokenkeep-app`)."
                .to_owned(),
        );
    }
    Ok(())
}

#[allow(clippy::print_stderr)] // the one place the app talks to a terminal: it could not start at all
fn fail(message: &str) -> ExitCode {
    eprintln!("tokenkeep-app: {message}");
    ExitCode::FAILURE
}
