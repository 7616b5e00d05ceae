//! `rotate-key`: a new master key, every record re-sealed under it (it needs the store to itself); `key export` and
//! `key import`: the key for a backup, and back into the keyring (neither opens the store).

use std::io::{IsTerminal as _, Read as _, Write as _};

use anyhow::{Context as _, Result, bail};
use tokenkeep_core::http::LazyHttp;
use tokenkeep_core::ops;
use tokenkeep_core::store::PROGRAM_CLI;
use zeroize::Zeroizing;

use crate::Context;
use crate::backend::{open_exclusive, runtime};
use crate::output::SecretBuf;

/// `key export [--yes]`: the key on stdout, after a confirmation on the terminal (or `--yes`).
pub(super) fn export(ctx: &Context, yes: bool) -> Result<()> {
    let profile = ctx.paths.profile();
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("`tokenkeep key export` prints the master key: add --yes to confirm when not at a terminal");
        }
        eprint!(
            "This prints the master key of profile {profile}. Anyone with it and a copy of your data folder can read \
             every token. Keep it offline. Export it? [y/N] "
        );
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            bail!("not exported");
        }
    }
    let key = ops::export_key(&ctx.paths)?;
    let mut out = SecretBuf::with_capacity(key.dangerously_expose().len() + 1);
    out.write_all(key.dangerously_expose().as_bytes())?;
    out.write_all(b"\n")?;
    out.print()?;
    eprintln!(
        "tokenkeep: this is key {} of profile {profile}. To restore it: `tokenkeep key import` (reads it from standard \
         input), or run headless with TOKENKEEP_MASTER_KEY set to it.",
        key.key_id()
    );
    Ok(())
}

/// `key import`: an exported key from stdin into the keyring, if it is this store's key.
pub(super) fn import(ctx: &Context) -> Result<()> {
    if std::io::stdin().is_terminal() {
        eprintln!("Paste the exported key, then press Enter and Ctrl-D:");
    }
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the key from standard input")?;
    let imported = ops::import_key(&ctx.paths, &text)?;
    if imported.already_there {
        outln!(
            "The keyring already holds key {} of profile {}: nothing to do.",
            imported.key_id,
            ctx.paths.profile()
        );
    } else {
        outln!(
            "Imported key {} of profile {} into the keyring (read back to be sure). Tokenkeep can open the store again.",
            imported.key_id,
            ctx.paths.profile()
        );
    }
    Ok(())
}

/// `rotate-key`.
pub(super) fn rotate(ctx: &Context) -> Result<()> {
    let ops = open_exclusive(ctx, "`tokenkeep rotate-key`", PROGRAM_CLI, LazyHttp::new())?;
    let report = runtime()?.block_on(ops.rotate_key())?;
    outln!(
        "Rotated the master key: {} record(s) re-sealed under key {} (was {}); the old key was deleted from the keyring.",
        report.resealed,
        report.new,
        report.old
    );
    if report.damaged > 0 {
        outln!(
            "{} damaged record(s) could not be opened and were left as they were.",
            report.damaged
        );
    }
    Ok(())
}
