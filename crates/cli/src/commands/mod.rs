//! One module per group of commands; each function reads its arguments, runs one core operation and prints the
//! result. [`exec()`] dispatches.

mod api;
mod connect;
mod connections;
mod daemon;
mod exec;
mod keys;
mod paths;
mod providers;
mod restore;
mod tokens;

use std::time::Duration;

use anyhow::Result;
use tokenkeep_core::ops::{AddProvider, ConnectOptions};
use tokenkeep_core::provider::ProviderId;

use crate::Context;
use crate::args::{Command, KeyCommand, ProvidersCommand};

pub(crate) use exec::ChildExit;
pub(crate) use providers::registration;

/// Exit status of `verify` when it found damaged records (1 means it could not check at all).
pub(crate) const EXIT_DAMAGED: u8 = 3;

/// A sign-in the person cancelled (exit status 130).
#[derive(Debug)]
pub(crate) struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled; nothing was connected")
    }
}

impl std::error::Error for Cancelled {}

/// `verify` found damage: a distinct exit status, the report is already printed.
#[derive(Debug)]
pub(crate) struct Damaged(pub(crate) usize);

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} damaged record(s); nothing was changed or deleted", self.0)
    }
}

impl std::error::Error for Damaged {}

/// `status` found accounts that need the person (exit status 1; the lines are already printed).
#[derive(Debug)]
pub(crate) struct NeedsYou(pub(crate) usize);

impl std::fmt::Display for NeedsYou {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            1 => f.write_str("1 account needs you"),
            n => write!(f, "{n} accounts need you"),
        }
    }
}

impl std::error::Error for NeedsYou {}

/// Runs `command`.
pub(crate) fn exec(ctx: &Context, command: Command) -> Result<()> {
    match command {
        Command::Providers {
            command: ProvidersCommand::List { json },
        } => providers::list(ctx, json),
        Command::Providers {
            command:
                ProvidersCommand::Add {
                    name,
                    issuer,
                    display_name,
                    client_id,
                    client_secret_stdin,
                    auth,
                    scopes,
                    redirect_uri,
                    instance,
                    api_hosts,
                    no_par,
                    no_dpop,
                    atproto,
                },
        } => {
            let client_secret = if client_secret_stdin {
                Some(providers::read_secret_stdin()?)
            } else {
                None
            };
            let request = AddProvider {
                id: ProviderId::parse(&name)?,
                issuer,
                display_name,
                client_id,
                client_secret,
                auth: auth.map(Into::into),
                scopes: (!scopes.is_empty()).then_some(scopes),
                redirect_uri,
                instance,
                api_hosts,
                no_par,
                no_dpop,
                atproto,
            };
            providers::add(ctx, request)
        }
        Command::Providers {
            command: ProvidersCommand::ClientMetadata { name, client_id },
        } => {
            outln!(
                "{}",
                tokenkeep_core::ops::client_metadata(&ctx.paths, &ProviderId::parse(&name)?, &client_id)?
            );
            Ok(())
        }
        Command::Providers {
            command: ProvidersCommand::Import { file },
        } => providers::import(ctx, &file),
        Command::Providers {
            command: ProvidersCommand::Export { name },
        } => providers::export(ctx, &ProviderId::parse(&name)?),
        Command::Providers {
            command: ProvidersCommand::Remove { name, with_connections },
        } => providers::remove(ctx, ProviderId::parse(&name)?, with_connections),
        Command::Connect {
            provider,
            no_browser,
            scopes,
            timeout,
            account,
        } => {
            let options = ConnectOptions {
                scopes: (!scopes.is_empty()).then_some(scopes),
                timeout: Duration::from_secs(timeout),
                account,
            };
            connect::exec(ctx, &ProviderId::parse(&provider)?, no_browser, options)
        }
        Command::Show {
            connection,
            json,
            reveal,
        } => connections::show(ctx, connection, json, reveal),
        Command::Token { connection } => tokens::token(ctx, connection),
        Command::Refresh { connection } => tokens::refresh(ctx, connection),
        Command::Exec(args) => exec::exec(ctx, args),
        Command::Api(args) => api::exec(ctx, args),
        Command::Disconnect {
            connection,
            keep_revoking,
            delete_now,
        } => tokens::disconnect(ctx, connection, keep_revoking, delete_now),
        Command::Daemon => daemon::exec(ctx),
        Command::List { json } => connections::list(ctx, json),
        Command::Status => connections::status(ctx),
        Command::Verify { json } => connections::verify(ctx, json),
        Command::Export { envelopes: _ } => connections::export(ctx),
        Command::RotateKey => keys::rotate(ctx),
        Command::Key {
            command: KeyCommand::Export { yes },
        } => keys::export(ctx, yes),
        Command::Key {
            command: KeyCommand::Import,
        } => keys::import(ctx),
        Command::Restore { list, from, start_over } => restore::exec(ctx, list, from, start_over),
        Command::Paths { json } => paths::exec(ctx, json),
    }
}
