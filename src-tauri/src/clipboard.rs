//! Copying a token to the system clipboard, from Rust, and taking it back.
//!
//! The webview never holds a copied token: `copy_token` reads it from the vault and writes it to the clipboard
//! here. After [`clear_after`] the clipboard is cleared — but only if it still holds that token (the person may
//! have copied something else since, which is theirs); quitting clears it the same way. What is remembered for
//! that check is a SHA-256 of the value, never the value. The window hears `clipboard` events
//! ([`ClipboardEvent`]) to count down and to say what happened.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tauri::{AppHandle, Emitter as _, Manager as _};
use tokenkeep_core::secret::SecretString;

/// The event the window listens to.
pub(crate) const CLIPBOARD: &str = "clipboard";

/// `TOKENKEEP_CLIPBOARD_SECONDS` (5 to 600) fixes the time for one run, over the setting (tests, scripts).
const ENV_CLEAR_AFTER: &str = "TOKENKEEP_CLIPBOARD_SECONDS";

/// The time `TOKENKEEP_CLIPBOARD_SECONDS` fixes, if it is set to a valid one.
pub(crate) fn env_clear_after() -> Option<Duration> {
    std::env::var(ENV_CLEAR_AFTER)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|s| tokenkeep_core::settings::CLIPBOARD_SECONDS.contains(s))
        .map(|s| Duration::from_secs(u64::from(s)))
}

/// How long a copied token stays on the clipboard: the variable, or the person's setting (30 s by default).
pub(crate) fn clear_after(paths: &tokenkeep_core::profile::ProfilePaths) -> Duration {
    env_clear_after().unwrap_or_else(|| {
        Duration::from_secs(u64::from(
            tokenkeep_core::settings::Settings::load(paths).clipboard_seconds,
        ))
    })
}

/// What became of a copied token, for the window.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum ClipboardEvent {
    /// The token is on the clipboard until `clearsAt` (Unix seconds).
    #[serde(rename_all = "camelCase")]
    Holding { clears_at: u64, seconds: u64 },
    /// It was cleared (the time was up, the person asked, or the app quit).
    Cleared,
    /// The clipboard holds something else now (copied since): left alone.
    Replaced,
}

/// The clipboard as far as Tokenkeep's copies go.
#[derive(Default)]
pub(crate) struct TokenClipboard {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Opened on first use (there may be no display at all). On X11 the clipboard's content is served by this
    /// object's thread: it lives as long as the app.
    board: Option<arboard::Clipboard>,
    /// The last copy: its number and the SHA-256 of its value.
    held: Option<(u64, [u8; 32])>,
    copies: u64,
}

impl std::fmt::Debug for TokenClipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenClipboard")
    }
}

/// Why a copy failed, in words (never the value).
#[derive(Debug, thiserror::Error)]
#[error("the clipboard cannot be used ({0}); reveal the token and select it instead")]
pub(crate) struct ClipboardError(String);

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl TokenClipboard {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `value` on the clipboard and plans its clearing; returns the event that says so (also emitted).
    pub(crate) fn copy(&self, app: &AppHandle, value: &SecretString) -> Result<ClipboardEvent, ClipboardError> {
        let after = clear_after(&app.state::<crate::state::AppState>().paths);
        let copy = {
            let mut inner = self.inner();
            if inner.board.is_none() {
                inner.board = Some(arboard::Clipboard::new().map_err(|e| ClipboardError(e.to_string()))?);
            }
            let board = inner.board.as_mut().expect("opened just above");
            board
                .set_text(value.dangerously_expose())
                .map_err(|e| ClipboardError(e.to_string()))?;
            inner.copies += 1;
            let copy = inner.copies;
            inner.held = Some((copy, digest(value.dangerously_expose())));
            copy
        };
        let event = ClipboardEvent::Holding {
            clears_at: unix_secs() + after.as_secs(),
            seconds: after.as_secs(),
        };
        let _ = app.emit(CLIPBOARD, &event);
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(after).await;
            use tauri::Manager as _;
            if let Some(outcome) = app.state::<TokenClipboard>().clear_if_ours(Some(copy)) {
                let _ = app.emit(CLIPBOARD, &outcome);
            }
        });
        Ok(event)
    }

    /// Clears the clipboard if it still holds the token of copy `copy` (any copy: `None`). Returns what happened,
    /// or `None` when there was nothing of ours to clear (a later copy replaced it, or it was cleared already).
    pub(crate) fn clear_if_ours(&self, copy: Option<u64>) -> Option<ClipboardEvent> {
        let mut inner = self.inner();
        let (held, expected) = inner.held?;
        if copy.is_some_and(|c| c != held) {
            return None;
        }
        inner.held = None;
        let board = inner.board.as_mut()?;
        let ours = board.get_text().is_ok_and(|now| {
            let now = zeroize::Zeroizing::new(now);
            digest(&now) == expected
        });
        if !ours {
            tracing::info!("the clipboard holds something else now; left alone");
            return Some(ClipboardEvent::Replaced);
        }
        match board.clear() {
            Ok(()) => {
                tracing::info!("the copied token was cleared from the clipboard");
                Some(ClipboardEvent::Cleared)
            }
            Err(error) => {
                tracing::warn!(%error, "could not clear the clipboard");
                Some(ClipboardEvent::Replaced)
            }
        }
    }
}
