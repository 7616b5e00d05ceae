//! A bare Tauri window — the reference of the idle benchmark (`tests/benches/idle_window.rs`): the same Tauri,
//! WebKitGTK and toolchain as Tokenkeep, the same window size, and a static page with nothing running in it. What
//! Tokenkeep uses at idle beyond this is Tokenkeep's own.

fn main() {
    let mut context = tauri::generate_context!("../tauri.conf.json");
    // Not Tokenkeep's window (that would load its UI): one of the same size, on a page that does nothing.
    context.config_mut().app.windows.clear();
    let result = tauri::Builder::default()
        // A real page in a real web process (an `about:blank` would not start one), served from memory.
        .register_uri_scheme_protocol("bare", |_, _| {
            tauri::http::Response::builder()
                .header("content-type", "text/html")
                .body(b"<!doctype html><title>bare</title><h1>A bare window</h1>".to_vec())
                .expect("a valid response")
        })
        .setup(|app| {
            tauri::WebviewWindowBuilder::new(
                app,
                "bare",
                tauri::WebviewUrl::CustomProtocol("bare://localhost/".parse().expect("a valid URL")),
            )
            .title("bare")
            .inner_size(960.0, 680.0)
            .build()?;
            Ok(())
        })
        .run(context);
    if let Err(error) = result {
        panic!("the bare window could not run: {error}");
    }
}
