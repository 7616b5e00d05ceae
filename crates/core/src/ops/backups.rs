//! Restoring the store from its sealed backups: the operations both front-ends call while the store is closed
//! (damaged or missing), with the profile's own key source. See `store::restore` for what a restore does.

use std::path::Path;
use std::sync::Arc;

use crate::clock::SystemClock;
use crate::keys::KeySource;
use crate::profile::ProfilePaths;
use crate::store::backup::{BackupError, BackupFile};
use crate::store::{BackupSummary, RestoreFrom, RestoreReport, Vault};

use super::OpError;

/// Restores `from` (or the newest backup that verifies) with the profile's key, leaving the store closed so that
/// the caller opens it the usual way (the app with its engine and socket, the CLI on its next command).
///
/// # Errors
/// The key source cannot be reached, the store is held by another process, no backup verifies, or I/O.
pub fn restore_from_backup(paths: &ProfilePaths, from: Option<&Path>, program: &str) -> Result<RestoreReport, OpError> {
    let keys = KeySource::resolve(paths.profile())?;
    let from = from.map_or(RestoreFrom::Newest, RestoreFrom::File);
    let (vault, report) = Vault::restore(paths, keys, from, Arc::new(SystemClock), program)?;
    drop(vault);
    Ok(report)
}

/// A backup file and what it holds (or why it cannot be opened).
pub type DescribedBackup = (BackupFile, Result<BackupSummary, BackupError>);

/// Every backup, newest first, each with what it holds once opened with the profile's key (or why it cannot be).
///
/// # Errors
/// The key source cannot be reached.
pub fn describe_backups(paths: &ProfilePaths) -> Result<Vec<DescribedBackup>, OpError> {
    let files = Vault::backups(paths);
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let keys = KeySource::resolve(paths.profile())?;
    Ok(files
        .into_iter()
        .map(|file| {
            let summary = Vault::describe_backup(paths, &keys, &file.path);
            (file, summary)
        })
        .collect())
}
