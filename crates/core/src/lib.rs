//! Tokenkeep's engine: everything that matters about tokens, independent of any user interface.
//!
//! The desktop app (`src-tauri`) and the command-line tool (`crates/cli`) are thin adapters over this crate.
//! **Invariant:** this crate knows nothing of Tauri, clap or the webview; platform services (keyring, clock,
//! browser, HTTP) sit behind small traits so the logic is testable without any of them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod browser;
pub mod clock;
pub mod connect;
pub mod credentials;
pub mod crypto;
pub mod desktop;
pub mod dpop;
pub mod envelope;
#[cfg(unix)]
pub mod host;
pub mod http;
pub mod keys;
#[cfg(unix)]
pub mod local_api;
pub mod logging;
pub mod oauth;
pub mod ops;
pub mod picture;
pub mod profile;
pub mod provider;
pub mod refresh;
pub mod secret;
pub mod settings;
pub mod store;
pub mod text;
