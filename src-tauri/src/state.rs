//! What every command can reach: resolved once at start-up, shared read-only.

use tokenkeep_core::profile::ProfilePaths;

/// The app's shared state.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) paths: ProfilePaths,
    /// The master key comes from `TOKENKEEP_MASTER_KEY` rather than the OS keyring.
    pub(crate) headless: bool,
}

impl AppState {
    pub(crate) fn new(paths: ProfilePaths, headless: bool) -> Self {
        Self { paths, headless }
    }
}
