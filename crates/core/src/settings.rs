//! The desktop app's settings, persisted in the profile (`<profile dir>/settings.json`): what the person chose
//! in the window's Settings panel, and what the app has told them once.
//!
//! Nothing here is secret or personal. A missing file is the defaults; a damaged one is logged and read as the
//! defaults too (a settings file must never keep the app from starting), and it is only replaced when the person
//! changes a setting. Writes are atomic (a new file renamed over the old one, both flushed).
//!
//! "Start at login" is an XDG autostart entry (freedesktop.org's Desktop Application Autostart Specification:
//! `$XDG_CONFIG_HOME/autostart/*.desktop`, which GNOME, KDE, Xfce and the other session managers read), one per
//! profile, starting the app with `--background`. [`Settings::start_at_login`] is what the person chose; the entry
//! on disk is what happens, and [`autostart_entry`] reads it back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::profile::ProfilePaths;
use crate::provider::config::{ConfigError, write_atomically};

/// The shortest and longest time a copied token may stay on the clipboard, in seconds.
pub const CLIPBOARD_SECONDS: std::ops::RangeInclusive<u32> = 5..=600;

/// The app's settings. Unknown keys in the file are ignored (a newer version may have written them), missing ones
/// take their default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Settings {
    /// Start (in the background, tray only) when the person logs in. Off by default.
    pub start_at_login: bool,
    /// Closing the window hides it and keeps refreshing from the tray (where a tray can be shown).
    pub keep_running: bool,
    /// Desktop notifications when an account needs the person.
    pub notifications: bool,
    /// How long a copied token stays on the clipboard before it is cleared, in seconds.
    pub clipboard_seconds: u32,
    /// The person was told once that closing the window keeps Tokenkeep running in the background.
    pub background_noted: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            start_at_login: false,
            keep_running: true,
            notifications: true,
            clipboard_seconds: 30,
            background_noted: false,
        }
    }
}

impl Settings {
    /// The profile's settings: the defaults where the file is missing, damaged or says something out of range.
    pub fn load(paths: &ProfilePaths) -> Self {
        Self::load_from(&paths.settings_file())
    }

    fn load_from(path: &Path) -> Self {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read the settings; using the defaults");
                return Self::default();
            }
        };
        match serde_json::from_slice::<Self>(&bytes) {
            Ok(settings) => settings.clamped(),
            Err(error) => {
                tracing::warn!(
                    path = %path.display(),
                    %error,
                    "the settings file is damaged; using the defaults until a setting is changed"
                );
                Self::default()
            }
        }
    }

    /// Writes the settings to the profile, atomically.
    ///
    /// # Errors
    /// The profile directory cannot be written.
    pub fn save(&self, paths: &ProfilePaths) -> Result<(), ConfigError> {
        let mut bytes = serde_json::to_vec_pretty(&self.clone().clamped()).expect("settings serialize");
        bytes.push(b'\n');
        write_atomically(&paths.settings_file(), &bytes)
    }

    /// The same settings with every number within its range.
    #[must_use]
    pub fn clamped(mut self) -> Self {
        self.clipboard_seconds = self
            .clipboard_seconds
            .clamp(*CLIPBOARD_SECONDS.start(), *CLIPBOARD_SECONDS.end());
        self
    }
}

/// What the person changes in the Settings panel; an absent field stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsChange {
    /// [`Settings::start_at_login`]: writes or removes the autostart entry.
    pub start_at_login: Option<bool>,
    /// [`Settings::keep_running`].
    pub keep_running: Option<bool>,
    /// [`Settings::notifications`].
    pub notifications: Option<bool>,
    /// [`Settings::clipboard_seconds`], within [`CLIPBOARD_SECONDS`].
    pub clipboard_seconds: Option<u32>,
}

/// Why a settings change was not made. Nothing is written then.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A clipboard time outside [`CLIPBOARD_SECONDS`].
    #[error("a copied token can stay on the clipboard for 5 to 600 seconds, not {0}")]
    ClipboardSeconds(u32),
    /// The settings file or the autostart entry could not be written.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Settings {
    /// Applies `change` to the profile's settings and saves them; "start at login" writes or removes the autostart
    /// entry that starts `exe`. Returns the settings as they are now.
    ///
    /// # Errors
    /// [`SettingsError::ClipboardSeconds`] (checked before anything is written), or a file that cannot be written.
    pub fn change(paths: &ProfilePaths, exe: &Path, change: &SettingsChange) -> Result<Self, SettingsError> {
        if let Some(seconds) = change.clipboard_seconds
            && !CLIPBOARD_SECONDS.contains(&seconds)
        {
            return Err(SettingsError::ClipboardSeconds(seconds));
        }
        let mut settings = Self::load(paths);
        if let Some(on) = change.start_at_login {
            let entry = set_start_at_login(paths, exe, on)?;
            tracing::info!(start_at_login = on, entry = %entry.display(), "start at login switched");
            settings.start_at_login = on;
        }
        if let Some(on) = change.keep_running {
            settings.keep_running = on;
        }
        if let Some(on) = change.notifications {
            settings.notifications = on;
        }
        if let Some(seconds) = change.clipboard_seconds {
            settings.clipboard_seconds = seconds;
        }
        settings.save(paths)?;
        tracing::info!(
            keep_running = settings.keep_running,
            notifications = settings.notifications,
            clipboard_seconds = settings.clipboard_seconds,
            "settings saved"
        );
        Ok(settings)
    }
}

/// Where this profile's autostart entry lives: `$XDG_CONFIG_HOME/autostart` (or `~/.config/autostart`), named after
/// the app and the profile so that a dev build and the installed app each have their own.
pub fn autostart_entry(paths: &ProfilePaths) -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(
        config
            .join("autostart")
            .join(format!("io.tokenkeep.desktop-{}.desktop", paths.profile().as_str())),
    )
}

/// Writes (or, with `enabled` false, removes) this profile's autostart entry, which starts `exe --background` at
/// login with the profile's own `TOKENKEEP_PROFILE` and, when set, `TOKENKEEP_HOME`. Returns the entry's path.
///
/// # Errors
/// There is no home directory, or the autostart directory cannot be written.
pub fn set_start_at_login(paths: &ProfilePaths, exe: &Path, enabled: bool) -> Result<PathBuf, ConfigError> {
    let entry = autostart_entry(paths).ok_or_else(|| ConfigError::Io {
        action: "find",
        path: PathBuf::from("~/.config/autostart"),
        source: std::io::Error::other("neither XDG_CONFIG_HOME nor HOME is set"),
    })?;
    if !enabled {
        return match std::fs::remove_file(&entry) {
            Ok(()) => Ok(entry),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(entry),
            Err(source) => Err(ConfigError::Io {
                action: "remove",
                path: entry,
                source,
            }),
        };
    }
    let mut exec = vec![
        "env".to_owned(),
        format!("{}={}", crate::profile::ENV_PROFILE, paths.profile().as_str()),
    ];
    if let Some(home) = std::env::var_os(crate::profile::ENV_HOME) {
        exec.push(format!("{}={}", crate::profile::ENV_HOME, home.to_string_lossy()));
    }
    exec.push(exe.to_string_lossy().into_owned());
    exec.push("--background".to_owned());
    let exec: Vec<String> = exec.iter().map(|arg| exec_arg(arg)).collect();
    let text = format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=Tokenkeep\n\
         Comment=Keeps your connected accounts' tokens fresh in the background\n\
         Exec={}\n\
         Icon=tokenkeep-app\n\
         Terminal=false\n\
         X-GNOME-Autostart-enabled=true\n",
        exec.join(" ")
    );
    write_atomically(&entry, text.as_bytes())?;
    Ok(entry)
}

/// One argument of a desktop entry's `Exec` key: quoted when it holds a reserved character, with `"`, `` ` ``,
/// `$` and `\` escaped inside the quotes, then every `\` doubled again for the string value and `%` doubled for
/// field codes (the Desktop Entry Specification, "The Exec key").
fn exec_arg(arg: &str) -> String {
    const RESERVED: &[char] = &[
        ' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`',
    ];
    let quoted = if arg.contains(RESERVED) || arg.is_empty() {
        let mut out = String::from("\"");
        for c in arg.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    } else {
        arg.to_owned()
    };
    quoted.replace('\\', "\\\\").replace('%', "%%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    fn paths(dir: &Path) -> ProfilePaths {
        let paths = ProfilePaths::resolve(Profile::parse("dev").unwrap(), Some(dir.to_path_buf())).unwrap();
        paths.ensure().unwrap();
        paths
    }

    #[test]
    fn a_change_is_saved_and_an_out_of_range_clipboard_time_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let exe = Path::new("/usr/bin/tokenkeep-app");
        let refused = Settings::change(
            &paths,
            exe,
            &SettingsChange {
                notifications: Some(false),
                clipboard_seconds: Some(3),
                ..SettingsChange::default()
            },
        );
        assert!(
            matches!(refused, Err(SettingsError::ClipboardSeconds(3))),
            "{refused:?}"
        );
        assert!(!paths.settings_file().exists(), "nothing was written");

        let now = Settings::change(
            &paths,
            exe,
            &SettingsChange {
                notifications: Some(false),
                clipboard_seconds: Some(45),
                ..SettingsChange::default()
            },
        )
        .unwrap();
        assert!(!now.notifications && now.keep_running);
        assert_eq!(now.clipboard_seconds, 45);
        assert_eq!(Settings::load(&paths), now);
    }

    #[test]
    fn exec_arguments_are_quoted_and_escaped_as_the_desktop_entry_spec_says() {
        assert_eq!(exec_arg("/usr/bin/tokenkeep-app"), "/usr/bin/tokenkeep-app");
        assert_eq!(exec_arg("/opt/My Apps/tk"), "\"/opt/My Apps/tk\"");
        // `$` escaped inside the quotes, and that backslash doubled again for the string value.
        assert_eq!(exec_arg("/a$b"), "\"/a\\\\$b\"");
        assert_eq!(exec_arg("/100%/x"), "/100%%/x");
    }

    #[test]
    fn missing_damaged_and_partial_files_read_as_defaults_and_a_save_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        assert_eq!(Settings::load(&paths), Settings::default());
        assert!(!Settings::default().start_at_login, "start at login is off by default");

        std::fs::write(paths.settings_file(), b"{ not json").unwrap();
        assert_eq!(Settings::load(&paths), Settings::default());
        assert_eq!(
            std::fs::read(paths.settings_file()).unwrap(),
            b"{ not json",
            "a damaged file is left as it is until the person changes a setting"
        );

        std::fs::write(
            paths.settings_file(),
            br#"{"notifications": false, "clipboardSeconds": 100000, "fromTheFuture": 1}"#,
        )
        .unwrap();
        let read = Settings::load(&paths);
        assert!(!read.notifications);
        assert_eq!(read.clipboard_seconds, 600, "clamped to the longest time");
        assert!(read.keep_running, "a missing key takes its default");

        let chosen = Settings {
            start_at_login: true,
            keep_running: false,
            notifications: true,
            clipboard_seconds: 45,
            background_noted: true,
        };
        chosen.save(&paths).unwrap();
        assert_eq!(Settings::load(&paths), chosen);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(paths.settings_file()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
