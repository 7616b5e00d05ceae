//! Where the data of `list`, `show`, `verify`, `export`, `token`, `refresh` and `disconnect` comes from: the vault
//! opened by this process, or — when the app or `tokenkeep daemon` holds the store — that process, over its
//! authenticated socket (`tokenkeep_core::local_api`). Both return the same plain payloads, which `main.rs` renders
//! with one piece of code, so a command prints the same either way.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use tokenkeep_core::clock::SystemClock;
use tokenkeep_core::local_api::{
    self, Client, ConnectionRow, DisconnectData, ExportRow, OpError, RefreshData, Shown, VerifyData,
};
use tokenkeep_core::refresh::{RefreshError, Refresher};
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::service;
use tokenkeep_core::store::{Holder, PROGRAM_APP, PROGRAM_DAEMON, StoreError, Vault};

use crate::{Context, runtime};

/// The source of a command's data. Chosen once per command by [`Backend::open`].
pub(crate) enum Backend<'a> {
    /// This process holds the store.
    Local { ctx: &'a Context, vault: Arc<Vault> },
    /// The app or the daemon holds it and answers for it.
    Remote(Box<Remote>),
}

/// A session with the store's holder, and the runtime its calls run on.
pub(crate) struct Remote {
    runtime: tokio::runtime::Runtime,
    client: Client,
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

impl<'a> Backend<'a> {
    /// Opens the vault; when the app or the daemon holds it, connects to that process's socket instead.
    pub(crate) fn open(ctx: &'a Context) -> Result<Self> {
        match ctx.open_vault() {
            Ok(vault) => Ok(Self::Local {
                ctx,
                vault: Arc::new(vault),
            }),
            Err(StoreError::Locked {
                holder: Some(holder), ..
            }) if serves_cli(&holder) => Self::remote(ctx, &holder),
            Err(error) => Err(error.into()),
        }
    }

    fn remote(ctx: &Context, holder: &Holder) -> Result<Self> {
        let runtime = runtime()?;
        match runtime.block_on(Client::connect(&ctx.paths)) {
            Ok(client) => {
                tracing::info!(
                    program = %client.server().program,
                    pid = client.server().pid,
                    "the store is held by another process; using its CLI socket"
                );
                Ok(Self::Remote(Box::new(Remote { runtime, client })))
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

    pub(crate) fn list(&mut self) -> Result<Vec<ConnectionRow>> {
        match self {
            Self::Local { vault, .. } => Ok(local_api::list(vault)?),
            Self::Remote(r) => Ok(r.runtime.block_on(r.client.list())?),
        }
    }

    pub(crate) fn show(&mut self, query: &str, reveal: bool) -> Result<Shown> {
        match self {
            Self::Local { vault, .. } => Ok(local_api::show(vault, query, reveal)?),
            Self::Remote(r) => Ok(r.runtime.block_on(r.client.show(query, reveal))?),
        }
    }

    pub(crate) fn verify(&mut self) -> Result<VerifyData> {
        match self {
            Self::Local { vault, .. } => Ok(local_api::verify(vault)?),
            Self::Remote(r) => Ok(r.runtime.block_on(r.client.verify())?),
        }
    }

    pub(crate) fn export_envelopes(&mut self) -> Result<Vec<ExportRow>> {
        match self {
            Self::Local { ctx, vault } => Ok(local_api::export_envelopes(vault, ctx.paths.profile().as_str())?),
            Self::Remote(r) => Ok(r.runtime.block_on(r.client.export_envelopes())?),
        }
    }

    pub(crate) fn token(&mut self, query: &str) -> Result<SecretString> {
        match self {
            Self::Local { ctx, vault } => {
                let refresher = refresher(ctx, vault)?;
                runtime()?
                    .block_on(local_api::token(&refresher, query))
                    .map_err(one_shot)
            }
            Self::Remote(r) => Ok(r.runtime.block_on(r.client.token(query))?),
        }
    }

    pub(crate) fn refresh(&mut self, query: &str) -> Result<RefreshData> {
        match self {
            Self::Local { ctx, vault } => {
                let refresher = refresher(ctx, vault)?;
                runtime()?
                    .block_on(local_api::refresh(&refresher, query))
                    .map_err(one_shot)
            }
            Self::Remote(r) => Ok(r.runtime.block_on(r.client.refresh(query))?),
        }
    }

    pub(crate) fn disconnect(&mut self, query: &str) -> Result<DisconnectData> {
        match self {
            Self::Local { ctx, vault } => {
                let refresher = refresher(ctx, vault)?;
                runtime()?
                    .block_on(local_api::disconnect(&refresher, query))
                    .map_err(one_shot)
            }
            Self::Remote(r) => Ok(r.runtime.block_on(r.client.disconnect(query))?),
        }
    }
}

fn refresher(ctx: &Context, vault: &Arc<Vault>) -> Result<Arc<Refresher>> {
    Ok(service::refresher(
        &ctx.paths,
        vault.clone(),
        ctx.http()?,
        Arc::new(SystemClock),
    )?)
}

/// A one-shot command has no engine behind it to retry: say so instead of promising a retry. (Through the socket
/// the app's or daemon's engine does retry, so its own words stand.)
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
