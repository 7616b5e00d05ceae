//! `paths`: where this profile keeps its data.

use anyhow::Result;

use crate::Context;
use crate::output::{self, PathsJson};

/// `paths [--json]`.
pub(super) fn exec(ctx: &Context, json: bool) -> Result<()> {
    let paths = &ctx.paths;
    if json {
        output::print_json(&PathsJson {
            backups: &paths.backups_dir(),
            config: &paths.config_file(),
            dir: paths.dir(),
            logs: &paths.logs_dir(),
            profile: paths.profile().as_str(),
            store: &paths.store_dir(),
        })?;
    } else {
        outln!("profile  {}", paths.profile());
        outln!("data     {}", paths.dir().display());
        outln!("store    {}", paths.store_dir().display());
        outln!("backups  {}", paths.backups_dir().display());
        outln!("logs     {}", paths.logs_dir().display());
        outln!("config   {}", paths.config_file().display());
    }
    Ok(())
}
