//! How the app opens a sign-in page: `TOKENKEEP_BROWSER` when set (core's [`CommandBrowser`], which tests use to
//! drive a headless browser), otherwise the desktop's URL handler through tauri-plugin-opener.

use tauri::AppHandle;
use tauri_plugin_opener::OpenerExt;
use tokenkeep_core::browser::{BrowserError, BrowserOpener, CommandBrowser};
use url::Url;

/// The app's [`BrowserOpener`].
pub(crate) enum AppBrowser {
    /// `TOKENKEEP_BROWSER`.
    Command(CommandBrowser),
    /// The desktop's handler for `https` URLs.
    Desktop(AppHandle),
}

impl AppBrowser {
    /// `TOKENKEEP_BROWSER` (`command`) when it is set, otherwise the desktop's handler.
    pub(crate) fn for_app(app: &AppHandle, command: Option<&CommandBrowser>) -> Self {
        match command {
            Some(command) => Self::Command(command.clone()),
            None => Self::Desktop(app.clone()),
        }
    }
}

impl std::fmt::Debug for AppBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Command(command) => f.debug_tuple("Command").field(command).finish(),
            Self::Desktop(_) => f.write_str("Desktop"),
        }
    }
}

impl BrowserOpener for AppBrowser {
    fn open(&self, url: &Url) -> Result<(), BrowserError> {
        match self {
            Self::Command(command) => command.open(url),
            Self::Desktop(app) => app.opener().open_url(url.as_str(), None::<&str>).or_else(|error| {
                // `BrowserError` can only be made by core, so a failure of the plugin is answered by core's own
                // platform command (on Linux both end in `xdg-open`); if that fails too, its error says why.
                tracing::warn!(%error, "the desktop URL handler failed; trying the platform's open command");
                CommandBrowser::system_default().open(url)
            }),
        }
    }
}
