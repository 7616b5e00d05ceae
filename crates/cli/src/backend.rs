//! Where a command's operation runs: on the vault this process opens (core's `LocalOps`), or — when the app or
//! `tokenkeep daemon` holds the store — in that process, through its authenticated socket (`local_api::Client`).
//! Both implement `Operations` and return the operation's own output, which the commands render with one piece
//! of code, so a command prints the same either way.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use tokenkeep_core::http::LazyHttp;
use tokenkeep_core::keys::KeySource;
use tokenkeep_core::local_api::Client;
use tokenkeep_core::ops::{LocalOps, Op, OpError, Operations as _};
use tokenkeep_core::refresh::RefreshError;
use tokenkeep_core::store::{Holder, PROGRAM_APP, PROGRAM_CLI, PROGRAM_DAEMON, StoreError, Vault};

use crate::Context;

/// Where the operations of one command run. Chosen once per command by [`Backend::open`].
pub(crate) struct Backend {
    runtime: tokio::runtime::Runtime,
    place: Place,
}

enum Place {
    /// This process holds the store.
    Local(LocalOps),
    /// The app or the daemon holds it and answers for it.
    Remote(Client),
}

/// Whether `holder` serves the CLI over its socket (the app and the daemon do; another `tokenkeep` command
/// does not: it will finish soon).
pub(crate) fn serves_cli(holder: &Holder) -> bool {
    holder.program == PROGRAM_APP || holder.program == PROGRAM_DAEMON
}

/// "the Tokenkeep app" / "`tokenkeep daemon`", for messages about a holder that [`serves_cli`].
pub(crate) fn holder_name(holder: &Holder) -> &'static str {
    if holder.program == PROGRAM_APP {
        "the Tokenkeep app"
    } else {
        "`tokenkeep daemon`"
    }
}

/// The program (`PROGRAM_APP` or `PROGRAM_DAEMON`) that holds the store and answers on its socket now, if any:
/// commands that change only the configuration use it to say what happens next.
pub(crate) fn serving_program(ctx: &Context) -> Option<String> {
    let runtime = runtime().ok()?;
    runtime
        .block_on(Client::connect(&ctx.paths))
        .ok()
        .map(|client| client.server().program.clone())
}

/// A single-threaded runtime for one command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the async runtime: {e}"))
}

impl Backend {
    /// Opens the vault; when the app or the daemon holds it, connects to that process's socket instead.
    pub(crate) fn open(ctx: &Context) -> Result<Self> {
        let runtime = runtime()?;
        let place = match LocalOps::open(&ctx.paths, PROGRAM_CLI, Arc::new(LazyHttp::new())) {
            Ok(ops) => {
                tell_notices(ops.vault());
                Place::Local(ops)
            }
            Err(OpError::Store(StoreError::Locked {
                holder: Some(holder), ..
            })) if serves_cli(&holder) => Place::Remote(remote(ctx, &runtime, &holder)?),
            Err(error) => return Err(error.into()),
        };
        Ok(Self { runtime, place })
    }

    /// Runs `op` where the store is.
    pub(crate) fn run<O: Op>(&self, op: O) -> Result<O::Output> {
        match &self.place {
            Place::Local(ops) => self.runtime.block_on(ops.run(op)).map_err(one_shot),
            Place::Remote(client) => Ok(self.runtime.block_on(client.run(op))?),
        }
    }
}

fn remote(ctx: &Context, runtime: &tokio::runtime::Runtime, holder: &Holder) -> Result<Client> {
    match runtime.block_on(Client::connect(&ctx.paths)) {
        Ok(client) => {
            tracing::info!(
                program = %client.server().program,
                pid = client.server().pid,
                "the store is held by another process; using its CLI socket"
            );
            Ok(client)
        }
        Err(error) => Err(anyhow!(
            "the store is in use by {} (pid {}), and its CLI socket could not be used: {error}. If it is still \
             starting, try again in a moment; otherwise close it (or end process {} if it hangs), then try again",
            holder_name(holder),
            holder.pid,
            holder.pid,
        )),
    }
}

/// Says on stderr what opening the store repaired (stdout stays the command's own output).
pub(crate) fn tell_notices(vault: &Vault) {
    for notice in vault.notices() {
        eprintln!("tokenkeep: note: {notice}");
    }
}

/// The operations on the store for a command that cannot run through the app's or the daemon's socket (`what`
/// names it): when one of them holds the store, say where to do it instead.
pub(crate) fn open_exclusive(ctx: &Context, what: &str, program: &'static str, http: LazyHttp) -> Result<LocalOps> {
    let ops = LocalOps::open(&ctx.paths, program, Arc::new(http)).map_err(|e| unless_held(what, e))?;
    tell_notices(ops.vault());
    Ok(ops)
}

/// `error`, except that a store held by the app or the daemon becomes "`what` needs the store to itself…".
pub(crate) fn unless_held(what: &str, error: impl Into<OpError>) -> anyhow::Error {
    match error.into() {
        OpError::Store(StoreError::Locked {
            holder: Some(holder), ..
        }) if serves_cli(&holder) => anyhow!("{}", needs_store_to_itself(what, &holder)),
        other => other.into(),
    }
}

/// "`tokenkeep connect` needs the store to itself, and the Tokenkeep app (pid 1234) holds it: …".
pub(crate) fn needs_store_to_itself(what: &str, holder: &Holder) -> String {
    let advice = if holder.program == PROGRAM_APP {
        "do this in the app window, or close the app first"
    } else {
        "stop the daemon first"
    };
    format!(
        "{what} needs the store to itself, and {} (pid {}) holds it: {advice}",
        holder_name(holder),
        holder.pid
    )
}

/// The vault alone, for `providers add` (it seals a client secret and nothing else).
pub(crate) fn open_vault(ctx: &Context) -> Result<Vault, StoreError> {
    let keys = KeySource::resolve(ctx.paths.profile())?;
    let vault = Vault::open(
        &ctx.paths,
        keys,
        Arc::new(tokenkeep_core::clock::SystemClock),
        PROGRAM_CLI,
    )?;
    tell_notices(&vault);
    Ok(vault)
}

/// A one-shot command has no engine timer behind it to retry: say so instead of promising a retry. (Through the
/// socket the app's or daemon's engine does retry, so its own words stand.)
fn one_shot(error: OpError) -> anyhow::Error {
    match error {
        OpError::Refresh(RefreshError::Retrying {
            provider,
            account,
            reason,
            ..
        }) => anyhow!(
            "refreshing {account} at {provider} failed ({reason}); the tokens are kept. Try again later — the app \
             and `tokenkeep daemon` retry by themselves"
        ),
        other => other.into(),
    }
}
