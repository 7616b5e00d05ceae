//! How the window is drawn. WebKitGTK composites the page with OpenGL when it sees fit; without a GPU (a virtual
//! machine, a remote desktop, Xvfb) that OpenGL is Mesa's software rasterizer, and every repaint — a "refreshed 4
//! min ago" turning into "5 min ago" — re-composites the whole window on the CPU. Tokenkeep's window is text,
//! buttons and a few small spinners, which WebKit paints directly at a fraction of that cost and memory, so the app
//! asks for that ("hardware acceleration: never"); `TOKENKEEP_GPU=1` gives WebKit its default back.
//!
//! Measured by `tests/benches/idle_window.rs` (figures in the issue-13 note): with 100 accounts idle under Xvfb,
//! about 1.2 % of a core with compositing, 0.1 % without, and ~110 MiB less memory.

/// The variable that keeps WebKit's own choice (compositing with OpenGL when it sees fit).
pub(crate) const ENV_GPU: &str = "TOKENKEEP_GPU";

/// Whether the person asked for WebKit's default renderer.
fn gpu_wanted() -> bool {
    std::env::var_os(ENV_GPU).is_some_and(|v| v == "1")
}

/// Applies the renderer choice to `window`'s webview. A failure is logged: the window works either way.
pub(crate) fn configure(window: &tauri::WebviewWindow) {
    if gpu_wanted() {
        tracing::info!("{ENV_GPU}=1: WebKit chooses how to composite the window");
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let applied = window.with_webview(|webview| {
            use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt as _, WebViewExt as _};
            if let Some(settings) = webview.inner().settings() {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        });
        if let Err(error) = applied {
            tracing::warn!(%error, "could not choose the window's renderer; WebKit's default stays");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = window;
}
