//! Builds the app from the repository-root `tauri.conf.json`, the single source of truth for its configuration.

// IMPORTANT: the config lives at the repository root (the product's layout), not beside this crate.
// `config_path` is the supported way to point tauri-build at it; `generate_context!` in `src/lib.rs` names the same
// file. Paths inside the config (frontendDist, icons) are relative to the config file itself.
const CONFIG: &str = "../tauri.conf.json";

/// Every command the webview may call (docs/IPC.md). The ACL denies anything not listed here and not granted by a
/// capability in `capabilities/`; keep it equal to `generate_handler!` in `src/lib.rs`.
const COMMANDS: &[&str] = &[
    "app_info",
    "vault_status",
    "retry_vault",
    "restore_backup",
    "export_key",
    "acknowledge_key_notice",
    "import_key",
    "open_setup_page",
    "list_providers",
    "configure_provider",
    "add_custom_provider",
    "add_server",
    "import_provider",
    "remove_provider",
    "connect",
    "cancel_connect",
    "paste_sign_in_address",
    "list_connections",
    "refresh_now",
    "pause_refreshing",
    "get_settings",
    "set_settings",
    "take_tray_reconnect",
    "disconnect",
    "inspect",
    "account_picture",
    "reveal",
    "copy_token",
    "clear_clipboard",
];

fn main() {
    println!("cargo:rerun-if-changed={CONFIG}");
    println!("cargo:rerun-if-changed=capabilities");
    let attributes = tauri_build::Attributes::new()
        .config_path(CONFIG)
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri build step failed: {error:#}");
    }
}
