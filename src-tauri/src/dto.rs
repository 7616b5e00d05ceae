//! The shapes the webview receives. **Invariant:** no DTO carries token or key bytes.

use serde::Serialize;

/// What the window shows about the running app.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppInfo {
    pub(crate) name: &'static str,
    pub(crate) version: &'static str,
    pub(crate) profile: String,
    pub(crate) data_dir: String,
    pub(crate) headless: bool,
}
