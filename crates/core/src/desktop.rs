//! The desktop session around the app, over D-Bus: whether a tray can be shown, and when the system wakes.
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
