//! `token`, `refresh` and `disconnect`: using and changing a connection, through the refresh engine of whoever
//! holds the store.

use std::io::Write as _;

use anyhow::Result;
use tokenkeep_core::ops::{Disconnect, Refresh, Token};
use tokenkeep_core::refresh::Revocation;
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

/// `disconnect CONNECTION`.
pub(super) fn disconnect(ctx: &Context, connection: String) -> Result<()> {
    let report = Backend::open(ctx)?.run(Disconnect { connection })?;
    outln!(
        "Disconnected {} from {}; every token stored for it was deleted.",
        report.account,
        report.provider
    );
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
        Revocation::Failed { reason, manage_url } => eprintln!(
            "Warning: the tokens could not be revoked at {} ({reason}), so access may remain at the platform.{}.",
            report.provider,
            by_hand(manage_url)
        ),
        Revocation::Skipped { reason } => eprintln!("Note: nothing was revoked at the provider: {reason}."),
        _ => {}
    }
    Ok(())
}
