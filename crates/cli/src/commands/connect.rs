//! `connect PROVIDER`: sign in through the browser (or a printed link) and seal the tokens. It needs the store to
//! itself: the browser and the terminal are this process's.

use anyhow::Result;
use tokenkeep_core::browser::{self, BrowserOpener, CommandBrowser, NoBrowser};
use tokenkeep_core::connect::ConnectObserver;
use tokenkeep_core::http::{BoxFuture, LazyHttp};
use tokenkeep_core::oauth::human_duration;
use tokenkeep_core::ops::ConnectOptions;
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
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
    let mut observer = Terminal {
        name: name.clone(),
        no_browser,
        timeout: options.timeout,
    };
    let connected = runtime()?.block_on(async {
        let work = ops.connect(provider, options, browser.as_ref(), &mut observer);
        tokio::select! {
            result = work => result.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(Cancelled.into()),
        }
    })?;
    let verb = if connected.replaced { "Reconnected" } else { "Connected" };
    outln!("{verb} {name} as {} (connection {}).", connected.account, connected.id);
    Ok(())
}

/// What the terminal shows while the flow runs, and where a pasted address comes from: one line on stdin.
struct Terminal {
    name: String,
    no_browser: bool,
    timeout: std::time::Duration,
}

impl ConnectObserver for Terminal {
    fn authorization_url(&mut self, url: &Url, opened: Result<(), &browser::BrowserError>) {
        let (name, timeout) = (&self.name, human_duration(self.timeout));
        match (self.no_browser, opened) {
            (false, Ok(())) => eprintln!(
                "Opening your browser to sign in to {name}…\nWaiting for the browser (Ctrl-C cancels; gives up after \
                 {timeout})."
            ),
            (_, opened) => {
                if let Err(error) = opened {
                    eprintln!("{error}");
                }
                eprintln!(
                    "Open this link in your browser to sign in to {name}:\n\n  {url}\n\nWaiting for the browser \
                     (Ctrl-C cancels; gives up after {timeout})."
                );
            }
        }
    }

    fn pasted_address(&mut self, redirect: &Url) -> BoxFuture<'_, Option<SecretString>> {
        eprintln!(
            "{} sends the browser back to {redirect} (your registered page). When that page has loaded — it may \
             show an error, that is fine — copy the whole address from the browser's address bar, paste it here \
             and press Enter:",
            self.name
        );
        Box::pin(async {
            // Blocking stdin on its own thread: the runtime keeps the timeout and Ctrl-C alive meanwhile.
            let line = tokio::task::spawn_blocking(|| {
                let mut line = zeroize::Zeroizing::new(String::new());
                match std::io::stdin().read_line(&mut line) {
                    Ok(n) if n > 0 => Some(SecretString::new(line.trim().to_owned())),
                    _ => None,
                }
            })
            .await
            .ok()
            .flatten();
            line.filter(|l| !l.dangerously_expose().is_empty())
        })
    }
}
