//! End-to-end tests: the built binaries against real components (Xvfb, D-Bus, gnome-keyring, WebKitWebDriver).

mod app_bluesky;
mod app_clipboard;
mod app_dialects;
mod app_flow;
mod app_keyring;
mod app_many;
mod app_providers;
mod app_restore;
mod app_revocation;
mod app_settings;
mod app_tray;
mod app_window;
mod cli_api;
mod cli_bluesky;
mod cli_connect;
mod cli_dpop;
mod cli_offline;
mod cli_socket;
mod dialects;
mod hostile;
mod oauth_peer;
mod refresh;
mod tamper;
mod vault_process;
