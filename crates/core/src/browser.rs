//! Opening the system browser, behind a trait so tests and headless setups can substitute their own.
//!
//! The desktop default opens the URL with the platform's handler (`xdg-open`, `open`, `start`). Setting
//! `TOKENKEEP_BROWSER` to a command overrides it: the value is split on whitespace (no quoting) and the URL is
//! appended as the last argument. The browser process is never waited for — the flow waits for the callback.

use std::process::{Command, Stdio};

use url::Url;

/// Environment variable naming the command that opens URLs.
pub const ENV_BROWSER: &str = "TOKENKEEP_BROWSER";

/// Why the browser could not be opened. The message never contains the URL (it carries `state`).
#[derive(Debug, thiserror::Error)]
#[error("could not open a browser ({program}): {reason}")]
pub struct BrowserError {
    program: String,
    reason: String,
}

/// Opens a URL for the user.
pub trait BrowserOpener: Send + Sync + std::fmt::Debug {
    /// Opens `url` without waiting for the browser to close.
    fn open(&self, url: &Url) -> Result<(), BrowserError>;
}

/// Runs a command with the URL appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandBrowser {
    program: String,
    args: Vec<String>,
}

impl CommandBrowser {
    /// Parses a `TOKENKEEP_BROWSER`-style command line; `None` when it is blank.
    pub fn parse(command_line: &str) -> Option<Self> {
        let mut words = command_line.split_whitespace().map(str::to_owned);
        let program = words.next()?;
        Some(Self {
            program,
            args: words.collect(),
        })
    }

    /// The platform's default URL handler.
    pub fn system_default() -> Self {
        let (program, args): (&str, &[&str]) = if cfg!(target_os = "macos") {
            ("open", &[])
        } else if cfg!(windows) {
            ("cmd", &["/C", "start", ""])
        } else {
            ("xdg-open", &[])
        };
        Self {
            program: program.to_owned(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// `TOKENKEEP_BROWSER` when set (as passed in `env_value`), else the platform default.
    pub fn from_env_value(env_value: Option<&str>) -> Self {
        env_value.and_then(Self::parse).unwrap_or_else(Self::system_default)
    }
}

impl BrowserOpener for CommandBrowser {
    fn open(&self, url: &Url) -> Result<(), BrowserError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg(url.as_str())
            // The browser has no business with the headless master key.
            .env_remove(crate::keys::ENV_MASTER_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| BrowserError {
                program: self.program.clone(),
                reason: e.to_string(),
            })?;
        // Reap the child whenever it ends so it never lingers as a zombie; its outcome is not ours to judge
        // (xdg-open returns at once, a test driver only after the redirect).
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(())
    }
}

/// Opens nothing: the caller shows the URL itself (`tokenkeep connect --no-browser`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBrowser;

impl BrowserOpener for NoBrowser {
    fn open(&self, _url: &Url) -> Result<(), BrowserError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_split_and_blank_means_default() {
        assert_eq!(
            CommandBrowser::parse("node  /x/login.mjs --fast"),
            Some(CommandBrowser {
                program: "node".into(),
                args: vec!["/x/login.mjs".into(), "--fast".into()]
            })
        );
        assert_eq!(CommandBrowser::parse("  "), None);
        assert_eq!(
            CommandBrowser::from_env_value(Some("")),
            CommandBrowser::system_default()
        );
    }

    #[test]
    fn a_missing_program_is_reported_without_the_url() {
        let url = Url::parse("https://example.test/authorize?state=SECRETSTATE").unwrap();
        let err = CommandBrowser::parse("/nonexistent/browser")
            .unwrap()
            .open(&url)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/nonexistent/browser") && !text.contains("SECRETSTATE"),
            "{text}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_url_is_the_last_argument() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("args");
        // `sh -c 'echo "$@" > out' sh --flag URL` records the arguments it was given.
        let browser = CommandBrowser {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                format!("echo \"$@\" > {}", out.display()),
                "sh".into(),
                "--flag".into(),
            ],
        };
        browser.open(&Url::parse("http://127.0.0.1:1/x").unwrap()).unwrap();
        for _ in 0..100 {
            if let Ok(text) = std::fs::read_to_string(&out)
                && !text.is_empty()
            {
                assert_eq!(text.trim(), "--flag http://127.0.0.1:1/x");
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the browser command never ran");
    }
}
