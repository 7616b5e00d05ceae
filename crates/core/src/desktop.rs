//! The desktop session around the app, over D-Bus: whether a tray can be shown, desktop notifications, and when
//! the system wakes.
//!
//! Both are best effort. Without a session bus (a server, a bare SSH login) there is no tray; without logind on the
//! system bus (a container) the refresh engine's own wake check (every five minutes) still notices a suspend.

use std::future::Future;

/// The StatusNotifier watcher's well-known name: it is owned by whatever collects tray items (a panel, or the
/// GNOME AppIndicator extension) and says whether something shows them.
pub const STATUS_NOTIFIER_WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// Whether a tray item would be shown now: a StatusNotifier watcher is on the session bus and a host (a panel
/// that draws the items) has registered with it. Blocking (a few D-Bus round trips).
pub fn tray_host_present() -> bool {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        use zbus::blocking::{Connection, Proxy};

        let Ok(bus) = Connection::session() else {
            return false;
        };
        let Ok(watcher) = Proxy::new(
            &bus,
            STATUS_NOTIFIER_WATCHER,
            "/StatusNotifierWatcher",
            STATUS_NOTIFIER_WATCHER,
        ) else {
            return false;
        };
        watcher
            .get_property::<bool>("IsStatusNotifierHostRegistered")
            .unwrap_or(false)
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        // macOS and Windows always have a menu bar or notification area.
        true
    }
}

/// A desktop notification, as the Desktop Notifications Specification has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice<'a> {
    /// The application's name the notification server shows ("Tokenkeep").
    pub app_name: &'a str,
    /// The icon: a theme name or an absolute `file://` path; empty for none.
    pub icon: &'a str,
    /// One line: what happened.
    pub summary: &'a str,
    /// What to do.
    pub body: &'a str,
    /// The desktop entry (without `.desktop`) the notification belongs to, for servers that group by app.
    pub desktop_entry: &'a str,
    /// The id of an earlier notification this one replaces (0: a new one).
    pub replaces: u32,
}

/// Why no notification was shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// No session bus, or no notification server on it (a headless session, a bare window manager).
    #[error("no notification service answered: {0}")]
    NoService(String),
}

/// Hands `notice` to the session's notification server; returns the id the server gave it (for `replaces`).
/// An error means that nothing was shown.
///
/// # Errors
/// [`NotifyError::NoService`] when there is no session bus or no server on it, or it refused the notification.
pub async fn notify(notice: &Notice<'_>) -> Result<u32, NotifyError> {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        use std::collections::HashMap;
        use zbus::zvariant::Value;

        let bus = zbus::Connection::session()
            .await
            .map_err(|e| NotifyError::NoService(e.to_string()))?;
        let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
        if !notice.desktop_entry.is_empty() {
            hints.insert("desktop-entry", Value::from(notice.desktop_entry));
        }
        let reply = bus
            .call_method(
                Some("org.freedesktop.Notifications"),
                "/org/freedesktop/Notifications",
                Some("org.freedesktop.Notifications"),
                "Notify",
                &(
                    notice.app_name,
                    notice.replaces,
                    notice.icon,
                    notice.summary,
                    notice.body,
                    Vec::<&str>::new(),
                    hints,
                    -1i32,
                ),
            )
            .await
            .map_err(|e| NotifyError::NoService(e.to_string()))?;
        reply
            .body()
            .deserialize::<u32>()
            .map_err(|e| NotifyError::NoService(e.to_string()))
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        let _ = notice;
        Err(NotifyError::NoService(
            "desktop notifications are shown by the app's plugin on this system".into(),
        ))
    }
}

/// Runs `woke` each time logind says the system resumed from sleep (`PrepareForSleep(false)` on the system bus),
/// until the bus goes away. Returns at once (logging why) where there is no logind to ask; the caller's own
/// fallback (the engine's wake check) then covers suspends.
pub async fn on_wake<F, Fut>(mut woke: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    #[cfg(target_os = "linux")]
    {
        use futures_lite::StreamExt as _;

        let bus = match zbus::Connection::system().await {
            Ok(bus) => bus,
            Err(error) => {
                tracing::info!(%error, "no system bus: resume from sleep is noticed by the wake check only");
                return;
            }
        };
        let manager = match zbus::Proxy::new(
            &bus,
            "org.freedesktop.login1",
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager",
        )
        .await
        {
            Ok(manager) => manager,
            Err(error) => {
                tracing::info!(%error, "no logind: resume from sleep is noticed by the wake check only");
                return;
            }
        };
        let mut signals = match manager.receive_signal("PrepareForSleep").await {
            Ok(signals) => signals,
            Err(error) => {
                tracing::info!(%error, "cannot follow logind's sleep signal: the wake check notices resumes");
                return;
            }
        };
        tracing::debug!("following logind's sleep and resume");
        while let Some(message) = signals.next().await {
            match message.body().deserialize::<bool>() {
                Ok(true) => tracing::info!("the system is going to sleep"),
                Ok(false) => {
                    tracing::info!("the system woke from sleep");
                    woke().await;
                }
                Err(error) => tracing::debug!(%error, "an unreadable PrepareForSleep signal"),
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = &mut woke;
    }
}
