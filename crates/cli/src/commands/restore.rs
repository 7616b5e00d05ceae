//! `restore`: the store back from its sealed backups, or a new one on purpose. It needs the store to itself.

use std::path::PathBuf;

use anyhow::{Result, bail};
use tokenkeep_core::clock::rfc3339;
use tokenkeep_core::ops;
use tokenkeep_core::store::{PROGRAM_CLI, Vault};

use crate::Context;
use crate::backend::unless_held;
use crate::render;

/// `restore [--list | --from FILE | --start-over]`.
pub(super) fn exec(ctx: &Context, list: bool, from: Option<PathBuf>, start_over: bool) -> Result<()> {
    if list {
        return show_backups(ctx);
    }
    let what = "`tokenkeep restore`";
    if start_over {
        let report = Vault::start_over(&ctx.paths, render::now_secs()).map_err(|e| unless_held(what, e))?;
        match &report.set_aside {
            Some(old) => outln!("The old store was moved to {} (nothing was deleted).", old.display()),
            None => outln!("There was no store to move aside."),
        }
        if let Some(old) = &report.backups_set_aside {
            outln!("Its backups were moved to {}.", old.display());
        }
        outln!("The next command starts a new, empty store. Connect your accounts again with `tokenkeep connect`.");
        return Ok(());
    }
    let report =
        ops::restore_from_backup(&ctx.paths, from.as_deref(), PROGRAM_CLI).map_err(|e| unless_held(what, e))?;
    for (path, why) in &report.skipped {
        outln!("Skipped {}: {why}.", path.display());
    }
    outln!(
        "Restored {} connection(s) from {} (generation {}, taken {}).",
        report.connections,
        report.backup.display(),
        report.generation,
        rfc3339(report.taken_at)
    );
    if let Some(old) = &report.set_aside {
        outln!(
            "The store it replaced was moved to {} (nothing was deleted).",
            old.display()
        );
    }
    if report.check_needed > 0 {
        outln!(
            "{} connection(s) are marked \"check needed\": the platform may have replaced their refresh token since \
             the backup. The next refresh tells (the app or `tokenkeep daemon` checks at once, or run `tokenkeep \
             refresh`); one the platform refuses needs a reconnect.",
            report.check_needed
        );
    }
    Ok(())
}

/// `restore --list`: every backup, and what the newest good one holds (accounts and providers, never tokens).
fn show_backups(ctx: &Context) -> Result<()> {
    let backups = ops::describe_backups(&ctx.paths)?;
    if backups.is_empty() {
        bail!(
            "there are no backups in {}: they are written after every change, so this store has none yet",
            ctx.paths.backups_dir().display()
        );
    }
    let now = render::now_secs();
    let mut rows = Vec::new();
    let mut newest_good = None;
    for (file, summary) in backups {
        let (generation, taken, records) = match &file.header {
            Ok(h) => (
                h.generation.to_string(),
                format!("{} ({})", rfc3339(h.created_at), render::relative(h.created_at, now)),
                h.records.to_string(),
            ),
            Err(_) => ("?".into(), "?".into(), "?".into()),
        };
        let state = match &summary {
            Ok(s) => format!("ok, {} connection(s)", s.connections.len()),
            Err(e) => format!("unusable: {e}"),
        };
        rows.push(vec![file.path.display().to_string(), generation, taken, records, state]);
        if newest_good.is_none()
            && let Ok(summary) = summary
        {
            newest_good = Some((file.path.clone(), summary));
        }
    }
    outln!(
        "{}",
        render::table(&["backup", "generation", "taken", "records", "state"], &rows)
    );
    let Some((path, summary)) = newest_good else {
        bail!("no backup verifies with this profile's key; nothing can be restored");
    };
    outln!("\n`tokenkeep restore` restores {}, which holds:", path.display());
    let rows: Vec<Vec<String>> = summary
        .connections
        .iter()
        .map(|(id, meta)| match meta {
            Ok(m) => vec![
                id.to_hex(),
                m.provider.to_string(),
                m.account.clone(),
                m.status.as_str().replace('_', " "),
            ],
            Err(e) => vec![id.to_hex(), "?".into(), "?".into(), format!("damaged: {e}")],
        })
        .collect();
    outln!("{}", render::table(&["id", "provider", "account", "status"], &rows));
    Ok(())
}
