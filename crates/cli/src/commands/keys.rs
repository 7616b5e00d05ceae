//! `rotate-key`: a new master key, every record re-sealed under it. It needs the store to itself.

use anyhow::Result;
use tokenkeep_core::http::LazyHttp;
use tokenkeep_core::store::PROGRAM_CLI;

use crate::Context;
use crate::backend::{open_exclusive, runtime};

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
