//! `token`, `refresh` and `disconnect`: using and changing a connection, through the refresh engine of whoever
//! holds the store.

use std::io::{IsTerminal as _, Write as _};

use anyhow::{Context as _, Result};
use tokenkeep_core::ops::{Disconnect, Refresh, Token};
use tokenkeep_core::refresh::{DisconnectReport, IfRevocationFails, Revocation};
use url::Url;

use crate::Context;
use crate::backend::Backend;
use crate::output::SecretBuf;
use crate::render;

/// `token CONNECTION`: the one place the CLI prints a token unasked-for by `--reveal` — the person asked for
/// exactly this, for a script. It goes from the `SecretString` into a zeroized buffer, then to stdout.
pub(super) fn token(ctx: &Context, connection: String) -> Result<()> {
    let token = Backend::open(ctx)?.run(Token { connection })?;
    let mut out = SecretBuf::with_capacity(token.0.len() + 1);
    out.write_all(token.0.dangerously_expose().as_bytes())?;
    out.write_all(b"\n")?;
    out.print()?;
    Ok(())
}

/// `refresh CONNECTION`.
pub(super) fn refresh(ctx: &Context, connection: String) -> Result<()> {
    let done = Backend::open(ctx)?.run(Refresh { connection })?;
    let now = render::now_secs();
    let (account, provider, expires_at) = (&done.meta.account, &done.meta.provider, done.meta.expires_at);
    if done.refreshed {
        outln!(
            "Refreshed {} at {}: {}{}.",
            account,
            provider,
            render::expiry(expires_at, now),
            if done.rotated {
                "; the provider rotated the refresh token"
            } else {
                ""
            }
        );
    } else {
        outln!(
            "{} at {} is still fresh: {}.",
            account,
            provider,
            render::expiry(expires_at, now)
        );
    }
    Ok(())
}

/// `disconnect CONNECTION [--keep-revoking | --delete-now]`.
pub(super) fn disconnect(ctx: &Context, connection: String, keep_revoking: bool, delete_now: bool) -> Result<()> {
    let backend = Backend::open(ctx)?;
    let if_revocation_fails = if delete_now {
        IfRevocationFails::DeleteNow
    } else {
        IfRevocationFails::KeepTrying
    };
    // The pending account keeps its record, so the same words find it again for a second call.
    let mut report = backend.run(Disconnect {
        connection: connection.clone(),
        if_revocation_fails,
    })?;
    // Asked only at a terminal, and only when it matters: the revocation failed and the choice was left open.
    if report.pending.is_some() && !keep_revoking && std::io::stdin().is_terminal() {
        print_revocation(&report);
        eprint!("Keep trying to revoke in the background (k), or delete everything now (d)? [K/d] ");
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if matches!(answer.trim(), "d" | "D" | "delete") {
            report = backend.run(Disconnect {
                connection,
                if_revocation_fails: IfRevocationFails::DeleteNow,
            })?;
        }
        return print_outcome(&report, false);
    }
    print_outcome(&report, true)
}

fn print_outcome(report: &DisconnectReport, with_revocation: bool) -> Result<()> {
    let now = render::now_secs();
    if let Some(pending) = &report.pending {
        outln!(
            "Disconnected {} from {}: Tokenkeep no longer uses it, but could not revoke its access yet.",
            report.account,
            report.provider
        );
        if with_revocation {
            print_revocation(report);
        }
        outln!(
            "Tokenkeep keeps trying in the background while the app or `tokenkeep daemon` runs (next try {}, \
             attempt {}), and deletes the tokens once the platform confirms — or on {} at the latest, then telling \
             you to revoke by hand. `tokenkeep list` shows it; `tokenkeep disconnect {} --delete-now` deletes it now.",
            render::relative(pending.next_attempt_at, now),
            pending.attempts + 1,
            render::rfc3339(pending.give_up_at),
            report.account,
        );
        return Ok(());
    }
    outln!(
        "Disconnected {} from {}; every token stored for it was deleted.",
        report.account,
        report.provider
    );
    print_revocation(report);
    Ok(())
}

fn print_revocation(report: &DisconnectReport) {
    let by_hand = |url: &Option<Url>| match url {
        Some(url) => format!(" Revoke Tokenkeep's access by hand at {url}"),
        None => " Revoke Tokenkeep's access in the platform's account settings".to_owned(),
    };
    match &report.revocation {
        Revocation::Revoked => outln!("The provider confirmed that the tokens are revoked."),
        Revocation::NotSupported { manage_url } => eprintln!(
            "Note: {} offers no way for apps to revoke their tokens, so access may remain at the platform.{}.",
            report.provider,
            by_hand(manage_url)
        ),
        Revocation::Failed { reason, manage_url } if report.pending.is_some() => eprintln!(
            "The tokens could not be revoked at {} ({reason}).{} if you would rather not wait.",
            report.provider,
            by_hand(manage_url)
        ),
        Revocation::Failed { reason, manage_url } => eprintln!(
            "Warning: the tokens could not be revoked at {} ({reason}), so access may remain at the platform.{}.",
            report.provider,
            by_hand(manage_url)
        ),
        Revocation::NotTried { manage_url } => eprintln!(
            "Warning: the revocation was still pending, so access may remain at the platform.{}.",
            by_hand(manage_url)
        ),
        Revocation::Skipped { reason } => eprintln!("Note: nothing was revoked at the provider: {reason}."),
        _ => {}
    }
}
