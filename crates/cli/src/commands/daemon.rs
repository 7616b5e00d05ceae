//! `daemon`: the refresh engine in the foreground (servers, tests), serving the same CLI socket as the app.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tokenkeep_core::host::Host;
use tokenkeep_core::http::{ReqwestHttp, SharedHttp};
use tokenkeep_core::ops::OpError;
use tokenkeep_core::refresh::{EngineEvent, StatusChange};
use tokenkeep_core::store::{ConnectionStatus, PROGRAM_DAEMON, StoreError};
use tokio::signal::unix::{SignalKind, signal};

use crate::Context;
use crate::backend::{needs_store_to_itself, serves_cli};
use crate::render;

/// `daemon`: holds the store and keeps every connection fresh until Ctrl-C or SIGTERM.
pub(super) fn exec(ctx: &Context) -> Result<()> {
    let http: SharedHttp = Arc::new(ReqwestHttp::new()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // IMPORTANT: the handlers before anything that says the daemon runs (the banner, the log line of the
        // engine): a SIGTERM that arrives earlier would otherwise kill it with the default action, mid-start.
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        // Held under its own name: the other `tokenkeep` commands then know to ask it over its socket.
        let host = match Host::open(&ctx.paths, PROGRAM_DAEMON, http).await {
            Err(OpError::Store(StoreError::Locked {
                holder: Some(holder), ..
            })) if serves_cli(&holder) => bail!("{}", needs_store_to_itself("`tokenkeep daemon`", &holder)),
            other => other?,
        };
        let mut events = host.ops().engine().subscribe();
        // Before the banner: whoever waits for it may use the socket at once.
        if let Err(error) = host.start().await {
            tracing::warn!(%error, "the CLI socket is not available");
            eprintln!(
                "tokenkeep daemon: warning: other tokenkeep commands cannot use this profile while the daemon \
                 runs: its CLI socket could not be opened ({error})"
            );
        }
        eprintln!("tokenkeep daemon: keeping this profile's connections fresh (Ctrl-C or SIGTERM stops).");
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => report_event(&event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        eprintln!("daemon: {missed} status events were skipped (too many at once)");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
            }
        }
        eprintln!("tokenkeep daemon: stopping…");
        host.stop(Duration::from_secs(10)).await;
        eprintln!("tokenkeep daemon: stopped.");
        Ok::<_, anyhow::Error>(())
    })
}

/// One line per event on stderr: the daemon's log for people (the log file has the details).
fn report_event(event: &EngineEvent) {
    let now = render::now_secs();
    match event {
        EngineEvent::Status(StatusChange { id, meta }) => {
            let detail = match (&meta.last_error, meta.expires_at) {
                (Some(error), _) if meta.status != ConnectionStatus::Connected => {
                    format!(" — {}", render::with_retry(meta, error))
                }
                (_, expires_at) => format!(" — {}", render::expiry(expires_at, now)),
            };
            eprintln!(
                "{} {}:{} {id} {}{detail}",
                render::rfc3339(now),
                meta.provider,
                meta.account,
                meta.status.as_str().replace('_', " "),
            );
        }
        EngineEvent::Attention {
            provider,
            account,
            message,
            ..
        } => {
            eprintln!("{} ATTENTION {provider}:{account}: {message}", render::rfc3339(now));
        }
        EngineEvent::Removed(id) => eprintln!("{} {id} disconnected", render::rfc3339(now)),
        EngineEvent::ProvidersChanged => eprintln!("{} providers reloaded", render::rfc3339(now)),
        _ => {}
    }
}
