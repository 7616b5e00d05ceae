//! Tokenkeep's desktop app: a thin Tauri adapter over `tokenkeep-core`.
//!
//! Commands extract state, call one core function and map the error; the types the webview sees (DTOs) live
//! here, never in core, and never carry token or key bytes.

mod commands;
mod dto;
mod state;

use std::process::ExitCode;

use tauri::Manager;
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
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
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
            tracing::info!("second launch: focusing the existing window");
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.show();
                let _ = window.set_focus();
            }
        })
        .build();

    let result = tauri::Builder::default()
        .plugin(single_instance)
        .manage(AppState::new(settings.paths, settings.headless))
        .invoke_handler(tauri::generate_handler![commands::app_info])
        .run(tauri::generate_context!("../tauri.conf.json"));
    match result {
        Ok(()) => {
            tracing::info!("Tokenkeep stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "the app stopped with an error");
            fail(&format!("the app stopped with an error: {error}"))
        }
    }
}

/// What the app needs from its environment, resolved once at start.
struct Settings {
    paths: ProfilePaths,
    headless: bool,
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let profile_name = std::env::var(profile::ENV_PROFILE).ok();
        let profile = Profile::resolve(profile_name.as_deref()).map_err(|e| e.to_string())?;
        let home = std::env::var_os(profile::ENV_HOME).map(Into::into);
        let paths = ProfilePaths::resolve(profile, home).map_err(|e| e.to_string())?;
        let headless = std::env::var_os("TOKENKEEP_MASTER_KEY").is_some();
        Ok(Self { paths, headless })
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
