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
    let parse = |message: String| ProviderError::Parse {
        name: format!("{file}.toml"),
        message,
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| parse(e.to_string()))?;
    let setup = table
        .remove("setup")
        .map(|value| value.try_into::<Setup>().map_err(|e| parse(format!("[setup]: {e}"))))
        .transpose()?;
    let spec: ProviderSpec = table.try_into().map_err(|e: toml::de::Error| parse(e.to_string()))?;
    spec.validate()?;
    if spec.id.as_str() != file {
        return Err(parse(format!(
            "the id {:?} differs from the file name",
            spec.id.as_str()
        )));
    }
    Ok((spec, setup))
}
