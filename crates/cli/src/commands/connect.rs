//! `connect PROVIDER`: sign in through the browser (or a printed link) and seal the tokens. It needs the store to
//! itself: the browser and the terminal are this process's.

use anyhow::Result;
use tokenkeep_core::browser::{self, BrowserOpener, CommandBrowser, NoBrowser};
use tokenkeep_core::http::LazyHttp;
use tokenkeep_core::oauth::human_duration;
use tokenkeep_core::ops::ConnectOptions;
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::store::PROGRAM_CLI;
use url::Url;

use super::Cancelled;
use crate::Context;
use crate::backend::{open_exclusive, runtime};

/// `connect PROVIDER`.
pub(super) fn exec(ctx: &Context, provider: &ProviderId, no_browser: bool, options: ConnectOptions) -> Result<()> {
    let ops = open_exclusive(ctx, "`tokenkeep connect`", PROGRAM_CLI, LazyHttp::new())?;
    let browser: Box<dyn BrowserOpener> = if no_browser {
        Box::new(NoBrowser)
    } else {
        Box::new(CommandBrowser::from_env_value(
            std::env::var(browser::ENV_BROWSER).ok().as_deref(),
        ))
    };
    let name = ops.engine().catalog().require(provider)?.spec().display_name.clone();
    let timeout = options.timeout;
    let mut observer = |url: &Url, opened: Result<(), &browser::BrowserError>| match (no_browser, opened) {
        (false, Ok(())) => eprintln!(
            "Opening your browser to sign in to {name}…\nWaiting for the browser (Ctrl-C cancels; gives up after {}).",
            human_duration(timeout)
        ),
        (_, opened) => {
            if let Err(error) = opened {
                eprintln!("{error}");
            }
            eprintln!(
                "Open this link in your browser to sign in to {name}:\n\n  {url}\n\nWaiting for the browser (Ctrl-C \
                 cancels; gives up after {}).",
                human_duration(timeout)
            );
        }
    };
    let connected = runtime()?.block_on(async {
        let work = ops.connect(provider, options, browser.as_ref(), &mut observer);
        tokio::select! {
            result = work => result.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(Cancelled.into()),
        }
    })?;
    let verb = if connected.replaced { "Reconnected" } else { "Connected" };
    println!("{verb} {name} as {} (connection {}).", connected.account, connected.id);
    Ok(())
}
