//! The platforms compiled into Tokenkeep: `crates/core/providers/<id>.toml`, each a [`ProviderSpec`] plus an optional
//! catalog-only `[setup]` table ([`Setup`]: where and what to register with the platform), which is split off
//! before the spec is parsed — the OAuth flow never needs it — and the demo template.
//!
//! This is data both the profile's configuration (`config`: custom providers may not take a built-in id) and the
//! resolved catalog (`catalog`) read; it depends on neither.

use std::sync::OnceLock;

use serde::Deserialize;
use url::Url;

use super::{ProviderError, ProviderId, ProviderSpec};

/// The demo provider's id.
pub const DEMO_ID: &str = "demo";

/// The placeholder in `demo.toml` replaced by the configured issuer.
pub(super) const ISSUER_PLACEHOLDER: &str = "{issuer}";

/// One compiled-in definition: the file's stem (which must equal the id) and its text.
pub(super) struct Builtin {
    pub(super) file: &'static str,
    pub(super) text: &'static str,
}

/// The built-in platforms, in the order they are listed.
pub(super) const BUILTINS: &[Builtin] = &[
    Builtin {
        file: "youtube",
        text: include_str!("../../providers/youtube.toml"),
    },
    Builtin {
        file: "x",
        text: include_str!("../../providers/x.toml"),
    },
    Builtin {
        file: "tiktok",
        text: include_str!("../../providers/tiktok.toml"),
    },
    Builtin {
        file: "instagram",
        text: include_str!("../../providers/instagram.toml"),
    },
    Builtin {
        file: "linkedin",
        text: include_str!("../../providers/linkedin.toml"),
    },
    Builtin {
        file: "reddit",
        text: include_str!("../../providers/reddit.toml"),
    },
    Builtin {
        file: "twitch",
        text: include_str!("../../providers/twitch.toml"),
    },
    Builtin {
        file: "facebook",
        text: include_str!("../../providers/facebook.toml"),
    },
    Builtin {
        file: "instagram-facebook",
        text: include_str!("../../providers/instagram-facebook.toml"),
    },
    Builtin {
        file: "threads",
        text: include_str!("../../providers/threads.toml"),
    },
    Builtin {
        file: "pinterest",
        text: include_str!("../../providers/pinterest.toml"),
    },
    Builtin {
        file: "kick",
        text: include_str!("../../providers/kick.toml"),
    },
    Builtin {
        file: "spotify",
        text: include_str!("../../providers/spotify.toml"),
    },
    Builtin {
        file: "mastodon",
        text: include_str!("../../providers/mastodon.toml"),
    },
    Builtin {
        file: "bluesky",
        text: include_str!("../../providers/bluesky.toml"),
    },
];

/// The demo template (see the module docs).
pub(super) const DEMO_TEMPLATE: Builtin = Builtin {
    file: DEMO_ID,
    text: include_str!("../../providers/demo.toml"),
};

/// How a person registers Tokenkeep with a platform: shown while a built-in provider needs setup.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// The platform's developer console, where the app is registered.
    pub console_url: Url,
    /// What to register there, as a phrase ("an OAuth client ID of type \"Desktop app\"").
    pub register: String,
    /// The redirect URI to register (`http://127.0.0.1/callback`; `:*` where the platform wants a port wildcard).
    pub redirect_uri: String,
}

/// The built-in definitions (without the demo template), parsed and validated once.
pub fn builtin() -> &'static [ProviderSpec] {
    static SPECS: OnceLock<Vec<ProviderSpec>> = OnceLock::new();
    SPECS.get_or_init(|| entries().iter().map(|(spec, _)| spec.clone()).collect())
}

/// Whether `id` belongs to a built-in provider, the demo provider included (custom providers cannot take it).
pub fn is_builtin(id: &ProviderId) -> bool {
    id.as_str() == DEMO_ID || builtin().iter().any(|spec| &spec.id == id)
}

/// The shipped file of the built-in platform `id` (not the demo template).
pub fn source(id: &ProviderId) -> Option<&'static str> {
    BUILTINS.iter().find(|b| b.file == id.as_str()).map(|b| b.text)
}

/// How to register with the built-in platform `id`.
pub fn builtin_setup(id: &ProviderId) -> Option<&'static Setup> {
    entries()
        .iter()
        .find(|(spec, _)| &spec.id == id)
        .and_then(|(_, setup)| setup.as_ref())
}

pub(super) fn entries() -> &'static [(ProviderSpec, Option<Setup>)] {
    static ENTRIES: OnceLock<Vec<(ProviderSpec, Option<Setup>)>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        BUILTINS
            .iter()
            .map(|builtin| {
                // The files are compiled in and every one is parsed by the tests below, so a failure here is a
                // bug in this build, not something a person could fix.
                parse(builtin.file, builtin.text)
                    .unwrap_or_else(|e| panic!("built-in provider {}.toml is invalid: {e}", builtin.file))
            })
            .collect()
    })
}

/// Splits off the catalog-only `[setup]` table, then parses and validates the rest as a [`ProviderSpec`].
pub(super) fn parse(file: &str, text: &str) -> Result<(ProviderSpec, Option<Setup>), ProviderError> {
    let (spec, setup) = parse_definition(&format!("{file}.toml"), text)?;
    if spec.id.as_str() != file {
        return Err(ProviderError::Parse {
            name: format!("{file}.toml"),
            message: format!("the id {:?} differs from the file name", spec.id.as_str()),
        });
    }
    Ok((spec, setup))
}

/// Parses and validates a definition in the catalog's own format (a [`ProviderSpec`] and an optional `[setup]`
/// table), as `providers import` reads a file. Every error names the field and, where the text has it, its line
/// (`name` is the file, for messages).
pub fn parse_definition(name: &str, text: &str) -> Result<(ProviderSpec, Option<Setup>), ProviderError> {
    let error = |message: String| ProviderError::Parse {
        name: name.to_owned(),
        message,
    };
    // An instance template's `{instance}` becomes a name that never resolves until a server is chosen
    // (`provider::instance`); lengths of lines change, their number does not.
    let text = &text.replace(super::INSTANCE_PLACEHOLDER, super::TEMPLATE_ORIGIN);
    // `[setup]` is not part of the spec: parse it on its own, and blank its lines out of the spec's text so that
    // the line numbers of every other error stay those of the file.
    let (spec_text, setup_text) = split_setup(text);
    let setup = match setup_text {
        Some(setup_text) => Some(
            toml::from_str::<SetupFile>(&setup_text)
                .map_err(|e| error(one_line(&e)))?
                .setup,
        ),
        None => None,
    };
    let spec: ProviderSpec = toml::from_str(&spec_text).map_err(|e| error(one_line(&e)))?;
    spec.validate().map_err(|e| match line_of_field(text, &e) {
        Some(line) => error(format!("{e} (line {line})")),
        None => e,
    })?;
    Ok((spec, setup))
}

#[derive(Deserialize)]
struct SetupFile {
    setup: Setup,
}

/// The text without its `[setup]` table (blank lines in its place), and that table alone (padded with blank lines
/// so its line numbers are the file's).
fn split_setup(text: &str) -> (String, Option<String>) {
    let mut spec = String::with_capacity(text.len());
    let mut setup = String::new();
    let mut in_setup = false;
    let mut found = false;
    for line in text.lines() {
        let header = line.trim_start();
        if header.starts_with('[') {
            in_setup = header.trim_end() == "[setup]";
            found |= in_setup;
        }
        let (keep, blank) = if in_setup {
            (&mut setup, &mut spec)
        } else {
            (&mut spec, &mut setup)
        };
        keep.push_str(line);
        keep.push('\n');
        blank.push('\n');
    }
    (spec, found.then_some(setup))
}

/// A TOML error as one line: `line 5, column 1: unknown field ...` (toml's own text spans several lines, with the
/// offending line quoted).
fn one_line(error: &toml::de::Error) -> String {
    let message = error.message().trim();
    match error.span() {
        Some(span) => {
            // The span is into the text toml parsed, whose lines are the file's (see `split_setup`).
            let line = error.to_string().lines().next().and_then(|first| {
                first
                    .strip_prefix("TOML parse error at line ")
                    .map(|rest| rest.split(',').next().unwrap_or(rest).to_owned())
            });
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => format!("at byte {}: {message}", span.start),
            }
        }
        None => message.to_owned(),
    }
}

/// The line of the field a validation error is about, when the error names one that the text sets.
fn line_of_field(text: &str, error: &ProviderError) -> Option<usize> {
    let field = match error {
        ProviderError::InsecureEndpoint { endpoint, .. } => match *endpoint {
            "long_lived" | "refresh" | "validation" => format!("[{endpoint}]"),
            other => format!("{other}_endpoint"),
        },
        _ => return None,
    };
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.starts_with(&field) && (field.starts_with('[') || line[field.len()..].trim_start().starts_with('='))
        })
        .map(|index| index + 1)
}
