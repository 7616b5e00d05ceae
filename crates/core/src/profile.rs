//! Profiles (`dev`, `prod`, …) and the directories each one owns.
//!
//! A profile isolates everything: its own master key in the keyring, its own store, its own logs. Debug builds
//! default to `dev` and release builds to `prod`, so development never touches the tokens a creator relies on.

use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable that overrides the data root (every profile lives below it).
pub const ENV_HOME: &str = "TOKENKEEP_HOME";
/// Environment variable that selects the profile.
pub const ENV_PROFILE: &str = "TOKENKEEP_PROFILE";

/// Errors from resolving a profile or its directories.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The profile name is not 1–32 characters of `a-z`, `0-9`, `-` and `_`.
    #[error(
        "invalid profile name {0:?}: use 1–32 characters from a-z, 0-9, '-' and '_' (for example \"dev\" or \"prod\")"
    )]
    InvalidName(String),
    /// No home directory could be determined and no override was given.
    #[error("cannot find a data directory for Tokenkeep: set {ENV_HOME} to a directory you own")]
    NoDataDir,
    /// A directory could not be created or secured.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The directory concerned.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// A validated profile name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Profile(String);

impl Profile {
    /// The profile a build uses when none is chosen: `dev` for debug builds, `prod` for release builds.
    pub fn default_for_build() -> Self {
        Self(if cfg!(debug_assertions) { "dev" } else { "prod" }.to_owned())
    }

    /// Validates `name` as a profile name.
    pub fn parse(name: &str) -> Result<Self, ProfileError> {
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(ProfileError::InvalidName(name.to_owned()))
        }
    }

    /// The explicit choice if any, else the build default.
    pub fn resolve(explicit: Option<&str>) -> Result<Self, ProfileError> {
        explicit
            .filter(|s| !s.is_empty())
            .map_or_else(|| Ok(Self::default_for_build()), Self::parse)
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Profile({})", self.0)
    }
}

/// Where one profile keeps its files. Resolved once, then passed around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePaths {
    profile: Profile,
    dir: PathBuf,
}

impl ProfilePaths {
    /// Resolves the directories of `profile` below `home` if given, else below the platform's data directory
    /// (`$XDG_DATA_HOME/tokenkeep` on Linux, `~/Library/Application Support/io.tokenkeep.Tokenkeep` on macOS,
    /// `%APPDATA%\tokenkeep\Tokenkeep\data` on Windows).
    pub fn resolve(profile: Profile, home: Option<PathBuf>) -> Result<Self, ProfileError> {
        let root = match home.filter(|p| !p.as_os_str().is_empty()) {
            // Absolute, so the app and the CLI find the same directory whatever their working directories.
            Some(root) => std::path::absolute(&root).map_err(|source| ProfileError::Io { path: root, source })?,
            None => directories::ProjectDirs::from("io", "tokenkeep", "Tokenkeep")
                .ok_or(ProfileError::NoDataDir)?
                .data_dir()
                .to_path_buf(),
        };
        let dir = root.join(profile.as_str());
        Ok(Self { profile, dir })
    }

    /// The profile these paths belong to.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The profile's own directory; everything below is private to the user.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sled store.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// Sealed backups of the store (outside `store/`, so that losing the store does not lose them).
    pub fn backups_dir(&self) -> PathBuf {
        self.dir.join("backups")
    }

    /// The lock a process holds while it has the store open (outside `store/`, which a restore moves aside).
    pub fn store_lock(&self) -> PathBuf {
        self.dir.join("store.lock")
    }

    /// The marker saying that a store exists here, and under which key (so a missing store is noticed).
    pub fn store_marker(&self) -> PathBuf {
        self.dir.join("store.marker")
    }

    /// `<dir>/key-notice`: the id of the keyring key the person was told about (created, and what losing it means).
    pub fn key_notice(&self) -> PathBuf {
        self.dir.join("key-notice")
    }

    /// `<dir>/settings.json`: the desktop app's settings (see `settings`).
    pub fn settings_file(&self) -> PathBuf {
        self.dir.join("settings.json")
    }

    /// Log files.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The profile's configuration (user-added providers and settings).
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// Creates the profile directory and its log directory, readable by the user only (mode 0700 on Unix).
    pub fn ensure(&self) -> Result<(), ProfileError> {
        create_private_dir(&self.dir)?;
        create_private_dir(&self.logs_dir())
    }
}

/// Creates `path` (and its parents) and restricts it to the user (0700) where the OS has such modes.
pub fn create_private_dir(path: &Path) -> Result<(), ProfileError> {
    let io = |source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_are_validated() {
        for good in ["dev", "prod", "creator-2", "a_b", &"x".repeat(32)] {
            assert_eq!(Profile::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "Dev", "../prod", "a b", "prod/..", &"x".repeat(33), "é"] {
            let err = Profile::parse(bad).unwrap_err();
            assert!(err.to_string().contains("invalid profile name"), "{err}");
        }
    }

    #[test]
    fn build_default_follows_debug_assertions() {
        let expected = if cfg!(debug_assertions) { "dev" } else { "prod" };
        assert_eq!(Profile::resolve(None).unwrap().as_str(), expected);
        assert_eq!(Profile::resolve(Some("")).unwrap().as_str(), expected);
        assert_eq!(Profile::resolve(Some("prod")).unwrap().as_str(), "prod");
    }

    #[test]
    fn home_override_separates_profiles() {
        let tmp = tempfile::tempdir().unwrap();
        let dev = ProfilePaths::resolve(Profile::parse("dev").unwrap(), Some(tmp.path().into())).unwrap();
        let prod = ProfilePaths::resolve(Profile::parse("prod").unwrap(), Some(tmp.path().into())).unwrap();
        assert_ne!(dev.store_dir(), prod.store_dir());
        assert!(dev.store_dir().starts_with(tmp.path().join("dev")));
    }

    #[cfg(unix)]
    #[test]
    fn ensure_creates_user_only_directories() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let paths = ProfilePaths::resolve(Profile::parse("dev").unwrap(), Some(tmp.path().join("home"))).unwrap();
        paths.ensure().unwrap();
        for dir in [paths.dir().to_path_buf(), paths.logs_dir()] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
    }
}
