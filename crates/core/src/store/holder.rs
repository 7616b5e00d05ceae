//! Who holds the store (the `holder` file) and the store's file permissions.
//!
//! sled takes an exclusive lock on its data file, so only one process can open the store. The lock itself says
//! nothing about its owner; the holder writes `holder` (pid, program, start time) once it is in, so the next
//! process can tell the user *who* to close. The file is advisory: the lock is the truth, and a stale `holder`
//! only ever makes a message less precise.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Program name the desktop app passes to `Vault::open`.
pub const PROGRAM_APP: &str = "tokenkeep-app";
/// Program name the command-line tool passes to `Vault::open`.
pub const PROGRAM_CLI: &str = "tokenkeep";
/// Program name `tokenkeep daemon` passes to `Vault::open`: like the app, it holds the store for a long time and
/// serves the CLI over its socket (see `local_api`).
pub const PROGRAM_DAEMON: &str = "tokenkeep-daemon";

/// The process that holds a store, as it described itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Program name, e.g. [`PROGRAM_APP`].
    pub program: String,
    /// When it opened the store, Unix seconds.
    pub since: u64,
}

impl Holder {
    fn render(&self) -> String {
        format!("pid={}\nprogram={}\nsince={}\n", self.pid, self.program, self.since)
    }

    fn parse(text: &str) -> Option<Self> {
        let (mut pid, mut program, mut since) = (None, None, None);
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => pid = v.trim().parse().ok(),
                Some(("program", v)) => program = Some(sanitize(v.trim())),
                Some(("since", v)) => since = v.trim().parse().ok(),
                _ => {}
            }
        }
        Some(Self {
            pid: pid?,
            program: program?,
            since: since.unwrap_or(0),
        })
    }

    /// Whether this holder keeps the store for a long time (the app, the daemon) and is still running: a second
    /// opener need not wait for it to let go.
    pub(super) fn holds_for_long(&self) -> bool {
        let long_running = self.program == PROGRAM_APP || self.program == PROGRAM_DAEMON;
        // Where processes cannot be looked up, a long-running holder is taken to be there (the lock says so).
        let alive = !cfg!(target_os = "linux") || Path::new("/proc").join(self.pid.to_string()).exists();
        long_running && alive
    }

    /// Reads the holder file of the store at `store_dir`, if there is a readable one.
    pub(super) fn read(store_dir: &Path) -> Option<Self> {
        let text = fs::read_to_string(holder_path(store_dir)).ok()?;
        Self::parse(&text)
    }

    /// "the Tokenkeep app (pid 1234, since 2026-11-30 03:50 UTC); close it or use the app", or a plain
    /// "another process; close it" when nobody said who.
    pub(super) fn describe_opt(holder: Option<&Self>) -> String {
        match holder {
            None => "another process (it did not say which); close other Tokenkeep windows and commands, then try \
                     again"
                .to_owned(),
            Some(h) => {
                let since = if h.since > 0 {
                    format!(", since {}", utc(h.since))
                } else {
                    String::new()
                };
                let (who, advice) = match h.program.as_str() {
                    PROGRAM_APP => ("the Tokenkeep app".to_owned(), "close it or use the app"),
                    PROGRAM_CLI => ("the tokenkeep command".to_owned(), "wait for it to finish or stop it"),
                    PROGRAM_DAEMON => ("`tokenkeep daemon`".to_owned(), "stop it"),
                    other => (format!("{other:?}"), "close it"),
                };
                format!("{who} (pid {}{since}); {advice}, then try again", h.pid)
            }
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::describe_opt(Some(self)))
    }
}

/// Keeps program names printable and short: the file could have been edited by anyone with access.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect()
}

fn holder_path(store_dir: &Path) -> PathBuf {
    store_dir.join("holder")
}

/// Our `holder` file; removed when the vault closes.
#[derive(Debug)]
pub(super) struct HolderGuard {
    path: PathBuf,
}

impl HolderGuard {
    /// Writes the holder file (0600, via a temporary file and a rename so a reader never sees half of it).
    pub(super) fn write(store_dir: &Path, holder: &Holder) -> std::io::Result<Self> {
        let path = holder_path(store_dir);
        let tmp = store_dir.join("holder.tmp");
        let mut file = private_file(&tmp)?;
        file.write_all(holder.render().as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        Ok(Self { path })
    }
}

impl Drop for HolderGuard {
    fn drop(&mut self) {
        // Best effort: a leftover file is harmless (see the module docs).
        let _ = fs::remove_file(&self.path);
    }
}

/// Opens (creating or truncating) `path` for writing, readable by the user only, whatever the umask.
pub(super) fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    set_mode(path, 0o600)?;
    Ok(file)
}

/// Creates `path` if absent, without touching an existing file's content, with mode 0600.
pub(super) fn touch_private(path: &Path) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?;
    set_mode(path, 0o600)
}

/// Sets every directory below `dir` (and `dir`) to 0700 and every file to 0600. The directory modes are what
/// protect the store; the file modes make a copied-out file private too. Applied after sled creates files with
/// the process umask.
pub(super) fn secure_tree(dir: &Path) -> std::io::Result<()> {
    set_mode(dir, 0o700)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            secure_tree(&entry.path())?;
        } else if kind.is_file() {
            set_mode(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if fs::metadata(path)?.permissions().mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    // Windows: the profile directory inherits the user's ACL; there is no mode to set.
    Ok(())
}

/// `YYYY-MM-DD HH:MM UTC` for Unix seconds.
fn utc(secs: u64) -> String {
    let (year, month, day, hour, minute, _) = crate::clock::civil_utc(secs);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trips_and_names_the_app() {
        let h = Holder {
            pid: 1234,
            program: PROGRAM_APP.into(),
            since: 1_764_474_600,
        };
        assert_eq!(Holder::parse(&h.render()), Some(h.clone()));
        assert_eq!(
            h.to_string(),
            "the Tokenkeep app (pid 1234, since 2025-11-30 03:50 UTC); close it or use the app, then try again"
        );
        let cli = Holder {
            pid: 9,
            program: PROGRAM_CLI.into(),
            since: 0,
        };
        assert!(cli.to_string().starts_with("the tokenkeep command (pid 9);"), "{cli}");
    }

    #[test]
    fn damaged_holder_files_are_ignored_or_sanitized() {
        assert_eq!(Holder::parse("garbage"), None);
        let odd = Holder::parse("pid=7\nprogram=evil\u{1b}[31m\n").unwrap();
        assert_eq!(odd.program, "evil[31m");
    }

    #[test]
    fn utc_matches_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
