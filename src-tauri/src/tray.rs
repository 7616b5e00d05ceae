//! The tray icon: Tokenkeep's face while the window is closed.
//!
//! On Linux it is a StatusNotifierItem (libayatana-appindicator) with its menu over `com.canonical.dbusmenu`. The
//! icon shows the aggregate state — all fine, something refreshing, some accounts need the person — and the menu
//! offers: Open Tokenkeep, a Reconnect for each account that needs the person, Refresh all, Pause (or Resume)
//! refreshing, Quit. Both follow the engine's events ([`Tray::observe`], called by `events::forward` after the
//! window has each event), never a timer: changes are gathered for [`GATHER`], and the menu is rebuilt (off the
//! async workers: it waits for the main thread) only when what it shows changed.
//!
//! Where no tray host runs (no StatusNotifier watcher with a host on the session bus), the item would be
//! invisible: [`Tray::visible`] says so, and closing the window then quits instead of leaving it to the tray.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tauri::image::Image;
use tauri::menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};
use tokenkeep_core::ops::{self, ConnectionEntry, LocalOps, Operations as _};
use tokenkeep_core::provider::catalog::Catalog;
use tokenkeep_core::refresh::EngineEvent;
use tokenkeep_core::store::{ConnectionId, ConnectionMeta, ConnectionStatus};

use crate::state::AppState;

/// The tray item's id (also in its menu events' ids).
const TRAY_ID: &str = "tokenkeep";
/// How long "Pause refreshing" pauses.
const PAUSE_FOR: Duration = Duration::from_secs(3600);
/// At most this many accounts are listed in the menu; the rest are counted.
const MENU_ACCOUNTS: usize = 8;
/// Menu item ids.
const OPEN: &str = "open";
const REFRESH_ALL: &str = "refresh-all";
const PAUSE: &str = "pause";
const RESUME: &str = "resume";
const QUIT: &str = "quit";
const RECONNECT_PREFIX: &str = "reconnect:";

/// The webview event that says a Reconnect was chosen in the tray. Payload: `{ id }`. The window acts on it by
/// taking the request ([`Tray::take_reconnect`]), so that a request made while the window was being built, before
/// its page listened, is not lost, and one that both the event and the page's start find is acted on once.
pub(crate) const TRAY_RECONNECT: &str = "tray-reconnect";

/// How long the tray gathers changes before it shows them: a storm of refreshes rebuilds the menu a few times a
/// second at most, not once per event.
const GATHER: Duration = Duration::from_millis(200);

/// The tray, once built, and what it shows.
#[derive(Debug, Default)]
pub(crate) struct Tray {
    inner: Mutex<Inner>,
    /// Something changed that the tray may show (its render task waits on it).
    changed: tokio::sync::Notify,
    /// The account whose Reconnect was chosen in the tray, until the window takes it.
    reconnect: Mutex<Option<ConnectionId>>,
}

#[derive(Default)]
struct Inner {
    icon: Option<TrayIcon<Wry>>,
    /// Every connection as last heard of.
    connections: BTreeMap<ConnectionId, Entry>,
    paused_until: Option<u64>,
    /// The vault is open and its connections were listed: until then there is nothing to count or refresh.
    listed: bool,
    /// What the menu and icon show now: rebuilt only when the next view differs.
    shown: Option<View>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// "alice@example.com (YouTube)".
    label: String,
    status: ConnectionStatus,
}

/// The aggregate state the icon shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mood {
    Fine,
    Busy,
    NeedsYou,
}

/// Everything the tray shows, so that an event that changes none of it changes nothing on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    mood: Mood,
    headline: String,
    /// The accounts that need the person, at most [`MENU_ACCOUNTS`], and how many more there are.
    attention: Vec<(ConnectionId, String)>,
    more: usize,
    paused_until: Option<u64>,
    /// Refresh all and Pause can do something.
    vault_open: bool,
}

impl Tray {
    /// Builds the tray item (an empty store until the vault opens). A tray that cannot be built is logged: the
    /// app then works as before, and closing the window quits.
    pub(crate) fn install(&self, app: &AppHandle) {
        let view = self.lock().view();
        let built = menu(app, &view).and_then(|menu| {
            TrayIconBuilder::with_id(TRAY_ID)
                .icon(icon(app, view.mood))
                .menu(&menu)
                .temp_dir_path(app_icon_dir(app))
                .on_menu_event(on_menu)
                .build(app)
        });
        match built {
            Ok(icon) => {
                let mut inner = self.lock();
                inner.icon = Some(icon);
                inner.shown = Some(view);
                tracing::info!("tray icon installed");
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    let tray = app.state::<Tray>();
                    loop {
                        tray.changed.notified().await;
                        tokio::time::sleep(GATHER).await;
                        // Building menus waits for the main thread: not on an async worker.
                        let app = app.clone();
                        let _ = tokio::task::spawn_blocking(move || app.state::<Tray>().render(&app)).await;
                    }
                });
            }
            Err(error) => tracing::warn!(%error, "the tray icon could not be created; closing the window will quit"),
        }
    }

    /// Whether the tray item can be seen: it was built, and a tray host shows it. Blocking (a D-Bus round trip).
    pub(crate) fn visible(&self) -> bool {
        self.lock().icon.is_some() && tokenkeep_core::desktop::tray_host_present()
    }

    /// [`visible`](Self::visible), off the async workers.
    pub(crate) async fn visible_async(&self) -> bool {
        if self.lock().icon.is_none() {
            return false;
        }
        tokio::task::spawn_blocking(tokenkeep_core::desktop::tray_host_present)
            .await
            .unwrap_or(false)
    }

    /// Starts over from every stored connection (the vault just opened).
    pub(crate) async fn sync(&self, ops: &LocalOps) {
        let entries = match ops.run(ops::List {}).await {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, "cannot list connections for the tray");
                return;
            }
        };
        let catalog = ops.engine().catalog();
        {
            let mut inner = self.lock();
            inner.connections = entries
                .iter()
                .filter_map(|ConnectionEntry { id, meta, .. }| {
                    meta.as_ref().ok().map(|meta| (*id, Entry::new(meta, &catalog)))
                })
                .collect();
            inner.paused_until = ops.engine().paused_until();
            inner.listed = true;
        }
        self.changed.notify_one();
    }

    /// Follows one engine event.
    pub(crate) fn observe(&self, event: &EngineEvent, catalog: &Catalog) {
        {
            let mut inner = self.lock();
            match event {
                EngineEvent::Status(change) => {
                    inner.connections.insert(change.id, Entry::new(&change.meta, catalog));
                }
                EngineEvent::Removed(id) => {
                    inner.connections.remove(id);
                }
                EngineEvent::Paused { until } => inner.paused_until = *until,
                _ => return,
            }
        }
        self.changed.notify_one();
    }

    /// Shows the current view, when it differs from what is shown.
    fn render(&self, app: &AppHandle) {
        let (view, icon) = {
            let inner = self.lock();
            let view = inner.view();
            if inner.shown.as_ref() == Some(&view) {
                return;
            }
            let Some(icon) = inner.icon.clone() else { return };
            (view, icon)
        };
        let previous_mood = self.lock().shown.as_ref().map(|v| v.mood);
        match menu(app, &view) {
            Ok(menu) => {
                if let Err(error) = icon.set_menu(Some(menu)) {
                    tracing::warn!(%error, "cannot update the tray menu");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot build the tray menu"),
        }
        if previous_mood != Some(view.mood)
            && let Err(error) = icon.set_icon(Some(self::icon(app, view.mood)))
        {
            tracing::warn!(%error, "cannot update the tray icon");
        }
        tracing::debug!(mood = ?view.mood, attention = view.attention.len() + view.more, "tray updated");
        self.lock().shown = Some(view);
    }

    /// Holds `connection`'s Reconnect, chosen in the menu, for the window (the latest choice wins).
    fn ask_reconnect(&self, connection: ConnectionId) {
        *self.pending_reconnect() = Some(connection);
    }

    /// The account whose Reconnect was chosen in the tray, once: the next call says `None` until another is chosen.
    pub(crate) fn take_reconnect(&self) -> Option<ConnectionId> {
        self.pending_reconnect().take()
    }

    fn pending_reconnect(&self) -> std::sync::MutexGuard<'_, Option<ConnectionId>> {
        self.reconnect.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("icon", &self.icon.as_ref().map(|_| "installed"))
            .field("connections", &self.connections.len())
            .field("paused_until", &self.paused_until)
            .field("shown", &self.shown)
            .finish()
    }
}

impl Entry {
    fn new(meta: &ConnectionMeta, catalog: &Catalog) -> Self {
        let provider = crate::dto::provider_name(catalog, &meta.provider);
        Self {
            label: format!("{} ({provider})", shorten(&meta.account, 40)),
            status: meta.status,
        }
    }
}

impl Inner {
    fn view(&self) -> View {
        if !self.listed {
            // Opening, or closed for want of the keyring or for damage: the window says which.
            return View {
                mood: Mood::Fine,
                headline: "The vault is not open (open Tokenkeep to see why)".to_owned(),
                attention: Vec::new(),
                more: 0,
                paused_until: None,
                vault_open: false,
            };
        }
        summarize(
            self.connections.iter().map(|(id, e)| (*id, e)),
            self.paused_until,
            &|at| clock_time(at),
        )
    }
}

/// The view of `connections`: pure, so its words are tested without a tray.
fn summarize<'a>(
    connections: impl Iterator<Item = (ConnectionId, &'a Entry)>,
    paused_until: Option<u64>,
    clock: &dyn Fn(u64) -> String,
) -> View {
    let (mut total, mut busy) = (0usize, 0usize);
    let mut needs = Vec::new();
    for (id, entry) in connections {
        match entry.status {
            ConnectionStatus::RevocationPending => continue,
            status if status.needs_user() => needs.push((id, entry.label.clone())),
            ConnectionStatus::Refreshing | ConnectionStatus::Retrying | ConnectionStatus::CheckNeeded => busy += 1,
            _ => {}
        }
        total += 1;
    }
    let accounts = |n: usize| {
        if n == 1 {
            "1 account".to_owned()
        } else {
            format!("{n} accounts")
        }
    };
    let (mood, headline) = if !needs.is_empty() {
        let verb = if needs.len() == 1 { "needs" } else { "need" };
        (Mood::NeedsYou, format!("{} {verb} you", accounts(needs.len())))
    } else if let Some(until) = paused_until {
        (Mood::Fine, format!("Refreshing is paused until {}", clock(until)))
    } else if busy > 0 {
        (Mood::Busy, format!("Refreshing {}…", accounts(busy)))
    } else if total == 0 {
        (Mood::Fine, "No accounts connected yet".to_owned())
    } else if total == 1 {
        (Mood::Fine, "Your account is fine".to_owned())
    } else {
        (Mood::Fine, format!("All {total} accounts are fine"))
    };
    let more = needs.len().saturating_sub(MENU_ACCOUNTS);
    needs.truncate(MENU_ACCOUNTS);
    View {
        mood,
        headline,
        attention: needs,
        more,
        paused_until,
        vault_open: true,
    }
}

fn menu(app: &AppHandle, view: &View) -> tauri::Result<Menu<Wry>> {
    let mut items: Vec<Box<dyn IsMenuItem<Wry>>> = vec![
        Box::new(MenuItem::with_id(
            app,
            "headline",
            escape(&view.headline),
            false,
            None::<&str>,
        )?),
        Box::new(MenuItem::with_id(app, OPEN, "Open Tokenkeep", true, None::<&str>)?),
        Box::new(PredefinedMenuItem::separator(app)?),
    ];
    if !view.attention.is_empty() {
        for (id, label) in &view.attention {
            let text = format!("Reconnect {}…", escape(label));
            items.push(Box::new(MenuItem::with_id(
                app,
                format!("{RECONNECT_PREFIX}{}", id.to_hex()),
                text,
                true,
                None::<&str>,
            )?));
        }
        if view.more > 0 {
            let text = format!("…and {} more (open Tokenkeep)", view.more);
            items.push(Box::new(MenuItem::with_id(app, OPEN, text, true, None::<&str>)?));
        }
        items.push(Box::new(PredefinedMenuItem::separator(app)?));
    }
    // Nothing to refresh or pause before the vault is open.
    let open = view.vault_open;
    items.push(Box::new(MenuItem::with_id(
        app,
        REFRESH_ALL,
        "Refresh all",
        open,
        None::<&str>,
    )?));
    items.push(Box::new(match view.paused_until {
        Some(until) => MenuItem::with_id(
            app,
            RESUME,
            format!("Resume refreshing (paused until {})", clock_time(until)),
            open,
            None::<&str>,
        )?,
        None => MenuItem::with_id(app, PAUSE, "Pause refreshing for an hour", open, None::<&str>)?,
    }));
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    items.push(Box::new(MenuItem::with_id(
        app,
        QUIT,
        "Quit Tokenkeep",
        true,
        None::<&str>,
    )?));
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|item| &**item).collect();
    Menu::with_items(app, &refs)
}

fn on_menu(app: &AppHandle, event: tauri::menu::MenuEvent) {
    let id = event.id().as_ref();
    tracing::info!(item = id.split(':').next().unwrap_or(id), "tray menu");
    match id {
        OPEN => show_window(app),
        QUIT => {
            tracing::info!("quitting from the tray");
            app.exit(0);
        }
        REFRESH_ALL => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let Ok(ready) = app.state::<AppState>().ready().await else {
                    tracing::info!("refresh all: the vault is not open");
                    show_window(&app);
                    return;
                };
                match ready.ops().run(ops::RefreshAll {}).await {
                    Ok(report) if !report.failed.is_empty() => tracing::warn!(
                        failed = report.failed.len(),
                        "refresh all: some connections could not be refreshed"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "refresh all failed"),
                }
            });
        }
        PAUSE | RESUME => {
            let app = app.clone();
            let length = (id == PAUSE).then_some(PAUSE_FOR);
            tauri::async_runtime::spawn(async move {
                if let Ok(ready) = app.state::<AppState>().ready().await
                    && let Err(error) = ready.ops().engine().pause(length)
                {
                    tracing::warn!(%error, "cannot pause or resume refreshing");
                }
            });
        }
        id => {
            if let Some(connection) = id
                .strip_prefix(RECONNECT_PREFIX)
                .and_then(|hex| hex.parse::<ConnectionId>().ok())
            {
                app.state::<Tray>().ask_reconnect(connection);
                show_window(app);
                crate::events::emit(
                    app,
                    TRAY_RECONNECT,
                    crate::dto::TrayReconnect {
                        id: connection.to_hex(),
                    },
                );
            }
        }
    }
}

/// Shows, unminimizes and focuses the main window — built again from the configuration when it was closed to
/// the tray.
pub(crate) fn show_window(app: &AppHandle) {
    let window = match app.get_webview_window("main") {
        Some(window) => window,
        None => {
            let Some(config) = app.config().app.windows.iter().find(|w| w.label == "main") else {
                tracing::error!("the configuration has no main window");
                return;
            };
            match tauri::WebviewWindowBuilder::from_config(app, config).and_then(|b| b.build()) {
                Ok(window) => {
                    tracing::info!("window opened again");
                    window
                }
                Err(error) => {
                    tracing::error!(%error, "cannot open the window again");
                    return;
                }
            }
        }
    };
    let _ = window.unminimize();
    let _ = window.show();
    let _ = window.set_focus();
}

/// The app icon with a badge for `mood`: none when all is fine, blue while refreshing, amber when accounts need
/// the person (so that the state shows in a monochrome-free panel at a glance).
fn icon(app: &AppHandle, mood: Mood) -> Image<'static> {
    let base = app
        .default_window_icon()
        .map(|i| i.clone().to_owned())
        .unwrap_or_else(|| Image::new_owned(vec![0; 32 * 32 * 4], 32, 32));
    let colour = match mood {
        Mood::Fine => return base,
        Mood::Busy => [0x25, 0x63, 0xeb],
        Mood::NeedsYou => [0xd9, 0x77, 0x06],
    };
    badged(base.rgba(), base.width(), base.height(), colour)
}

/// `rgba` with a filled circle of `colour` (white rim) in its lower right quarter.
fn badged(rgba: &[u8], width: u32, height: u32, colour: [u8; 3]) -> Image<'static> {
    let mut out = rgba.to_vec();
    let size = f64::from(width.min(height));
    let radius = size * 0.24;
    let (cx, cy) = (f64::from(width) - radius - 0.5, f64::from(height) - radius - 0.5);
    for y in 0..height {
        for x in 0..width {
            let d = ((f64::from(x) + 0.5 - cx).powi(2) + (f64::from(y) + 0.5 - cy).powi(2)).sqrt();
            let px = ((y * width + x) * 4) as usize;
            if d <= radius - size * 0.06 {
                out[px..px + 4].copy_from_slice(&[colour[0], colour[1], colour[2], 0xff]);
            } else if d <= radius {
                out[px..px + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
            }
        }
    }
    Image::new_owned(out, width, height)
}

/// Where the tray writes its icon files (the SNI protocol passes a file name): the app's cache, not `/tmp`.
fn app_icon_dir(app: &AppHandle) -> std::path::PathBuf {
    app.path()
        .app_cache_dir()
        .map(|dir| dir.join("tray"))
        .unwrap_or_else(|_| std::env::temp_dir().join("tokenkeep-tray"))
}

/// `at` (Unix seconds) as the local wall-clock time, `21:45`.
fn clock_time(at: u64) -> String {
    use chrono::TimeZone as _;
    i64::try_from(at)
        .ok()
        .and_then(|at| chrono::Local.timestamp_opt(at, 0).single())
        .map_or_else(|| "later".to_owned(), |t| t.format("%H:%M").to_string())
}

/// A menu label shows `&` as a mnemonic marker: double it.
fn escape(text: &str) -> String {
    text.replace('&', "&&")
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(label: &str, status: ConnectionStatus) -> Entry {
        Entry {
            label: label.to_owned(),
            status,
        }
    }

    fn view(entries: &[(u8, Entry)], paused: Option<u64>) -> View {
        let entries: Vec<_> = entries
            .iter()
            .map(|(n, e)| (ConnectionId::from_bytes([*n; 16]), e.clone()))
            .collect();
        summarize(entries.iter().map(|(id, e)| (*id, e)), paused, &|at| format!("t{at}"))
    }

    #[test]
    fn the_headline_says_the_worst_first_and_counts_in_words() {
        assert_eq!(view(&[], None).headline, "No accounts connected yet");
        let fine = entry("a (X)", ConnectionStatus::Connected);
        assert_eq!(view(&[(1, fine.clone())], None).headline, "Your account is fine");
        let two = view(&[(1, fine.clone()), (2, fine.clone())], None);
        assert_eq!(
            (two.mood, two.headline.as_str()),
            (Mood::Fine, "All 2 accounts are fine")
        );

        let busy = view(
            &[(1, fine.clone()), (2, entry("b (X)", ConnectionStatus::Retrying))],
            None,
        );
        assert_eq!(
            (busy.mood, busy.headline.as_str()),
            (Mood::Busy, "Refreshing 1 account…")
        );

        let needs = view(
            &[
                (1, entry("a (X)", ConnectionStatus::NeedsReconnect)),
                (2, entry("b (X)", ConnectionStatus::Refreshing)),
                (3, entry("c (X)", ConnectionStatus::Interrupted)),
                (4, entry("gone (X)", ConnectionStatus::RevocationPending)),
            ],
            Some(99),
        );
        assert_eq!(
            (needs.mood, needs.headline.as_str()),
            (Mood::NeedsYou, "2 accounts need you")
        );
        let labels: Vec<_> = needs.attention.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["a (X)", "c (X)"]);

        let paused = view(&[(1, fine)], Some(1234));
        assert_eq!(paused.headline, "Refreshing is paused until t1234");
    }

    #[test]
    fn before_the_vault_is_listed_the_tray_says_so_and_offers_nothing_to_do() {
        let inner = Inner::default();
        let view = inner.view();
        assert!(!view.vault_open);
        assert!(view.headline.starts_with("The vault is not open"), "{}", view.headline);
        let listed = Inner {
            listed: true,
            ..Inner::default()
        };
        assert_eq!(listed.view().headline, "No accounts connected yet");
    }

    #[test]
    fn a_long_list_of_problems_is_cut_and_counted() {
        let entries: Vec<_> = (0..12u8)
            .map(|n| (n, entry(&format!("user{n} (X)"), ConnectionStatus::NeedsReconnect)))
            .collect();
        let v = view(&entries, None);
        assert_eq!(v.attention.len(), MENU_ACCOUNTS);
        assert_eq!(v.more, 12 - MENU_ACCOUNTS);
        assert_eq!(v.headline, "12 accounts need you");
    }

    #[test]
    fn labels_keep_ampersands_and_long_names_are_shortened() {
        assert_eq!(escape("R&D"), "R&&D");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }

    #[test]
    fn the_badge_is_drawn_in_the_corner_and_leaves_the_rest() {
        let base = vec![10u8; 32 * 32 * 4];
        let out = badged(&base, 32, 32, [1, 2, 3]);
        let px = |x: u32, y: u32| &out.rgba()[((y * 32 + x) * 4) as usize..((y * 32 + x) * 4 + 4) as usize];
        assert_eq!(px(0, 0), [10, 10, 10, 10]);
        assert_eq!(px(24, 24), [1, 2, 3, 0xff]);
    }
}
