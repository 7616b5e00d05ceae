//! Tauri commands: each extracts state, calls core, maps the result to a DTO. Nothing else lives here.

use tauri::State;

use crate::dto::AppInfo;
use crate::state::AppState;

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
