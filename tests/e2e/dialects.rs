//! Every shipped platform preset, unchanged but for its hosts, through the built CLI against a strict emulation
//! of that platform's dialect (`tests/js/platforms.mjs`): connect (loopback or pasted redirect), the account it
//! names, the token a script gets, a refresh in the platform's own way, and disconnect with the platform's own
//! revocation — and the emulation refused nothing. Regression cases show that the emulations are strict: the
//! generic dialect (a base64url challenge at TikTok, a code_verifier at LinkedIn) is refused there.
//!
//! The "browser" is `tests/js/follow.mjs`, which follows the redirects as a browser would (the emulations approve
//! at once); for the platforms that redirect only to an https page, it writes the address it lands on to a file
//! the test pastes into the waiting CLI, as a person would copy it from the address bar.
//!
//! Several presets listen on the fixed port their platform needs registered (LinkedIn 47812, Reddit 47813, Twitch
//! 47814, Pinterest 47815, Kick 47816, X 47811); each such port is used by one test only, so they run in parallel.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;
use tokenkeep_core::store::ConnectionId;
use tokenkeep_e2e::cli::{CliOutput, Tokenkeep};
use tokenkeep_e2e::platforms::{CLIENT_ID, CLIENT_SECRET, PASTE_PAGE, Platform, follow_browser};
use tokenkeep_e2e::scratch_dir;

/// How long the follow "browser" may take to land on the registered https page.
const LANDING_LIMIT: Duration = Duration::from_secs(20);

/// How the platform lets an app refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// A refresh-token grant that returns a new refresh token (the old one stops working).
    Rotates,
    /// A refresh-token grant that keeps the refresh token.
    Keeps,
    /// No refresh at all (LinkedIn's standard apps, Facebook's long-lived user tokens): "Refresh now" changes
    /// nothing while the token is valid.
    Never,
    /// Instagram's and Threads' refresh with the access token, allowed once the token is a day old.
    AfterADay,
}

/// What disconnect does at the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revoke {
    /// The platform revokes; afterwards no token Tokenkeep held is accepted.
    AtPlatform,
    /// The platform offers apps no revocation; the person is told where to remove access.
    NotOffered,
}

/// One platform's case: its shipped preset (same id as the emulation's dialect) and what it should do.
#[derive(Debug, Clone, Copy)]
struct Case {
    id: &'static str,
    /// Whether the client has a secret (confidential), read from stdin by `providers add`.
    secret: bool,
    /// Whether the platform redirects to a registered https page, whose address the person pastes.
    paste: bool,
    /// The account name Tokenkeep should show, from the platform's identity answer.
    account: &'static str,
    refresh: Refresh,
    revoke: Revoke,
}

/// A headless installation whose browser is the follow script, and the file it writes a landing address to.
fn installation(test: &str) -> Result<(Tokenkeep, std::path::PathBuf)> {
    let mut tk = Tokenkeep::headless(test)?;
    tk.set_env("TOKENKEEP_BROWSER", &follow_browser()?);
    let landing = scratch_dir(&format!("{test}-landing"))?.join("landing.txt");
    tk.set_env(
        "TK_FOLLOW_PASTE",
        landing.to_str().ok_or_else(|| anyhow!("scratch path not UTF-8"))?,
    );
    Ok((tk, landing))
}

/// Imports `preset` (text) as the provider `id` and sets its client as the person would after registering.
fn configure(tk: &Tokenkeep, case: &Case, preset: &str) -> Result<()> {
    let dir = scratch_dir(&format!("preset-{}", case.id))?;
    let file = dir.join(format!("{}.toml", case.id));
    std::fs::write(&file, preset)?;
    let file = file.to_str().ok_or_else(|| anyhow!("scratch path not UTF-8"))?;
    tk.ok(&["providers", "import", file], None)?;
    let mut args = vec!["providers", "add", case.id, "--client-id", CLIENT_ID];
    if case.secret {
        args.push("--client-secret-stdin");
    }
    if case.paste {
        args.extend(["--redirect-uri", PASTE_PAGE]);
    }
    let added = tk.ok(&args, case.secret.then_some(CLIENT_SECRET))?;
    ensure!(
        added.stdout.contains(&format!("tokenkeep connect {}", case.id)),
        "`providers add {}` did not say how to connect:\n{}",
        case.id,
        added.stdout
    );
    Ok(())
}

/// `tokenkeep connect ID`, the browser being the follow script; for a paste platform, the landing address is
/// pasted once the browser has written it. Returns the run's output (whatever its exit code).
fn connect(tk: &Tokenkeep, case: &Case, provider: &str, landing: &std::path::Path) -> Result<CliOutput> {
    if !case.paste {
        return tk.run(&["connect", provider, "--timeout", "30"], None);
    }
    let _ = std::fs::remove_file(landing);
    let mut process = tk.spawn_interactive(&["connect", provider, "--timeout", "30"])?;
    let deadline = Instant::now() + LANDING_LIMIT;
    let address = loop {
        if let Ok(text) = std::fs::read_to_string(landing) {
            break text.trim().to_owned();
        }
        if process.exited_yet()?.is_some() || Instant::now() > deadline {
            let output = process.finish(Duration::from_secs(5))?;
            bail!(
                "the browser never landed on the registered page ({}); connect printed:\n{}",
                landing.display(),
                output.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ensure!(
        address.starts_with(PASTE_PAGE),
        "the browser landed on {address}, not the registered page"
    );
    // As a person would: only after Tokenkeep asked for it.
    process.wait_for_stderr_line(LANDING_LIMIT, |line| line.contains("paste it here"))?;
    process.send_line(&address)?;
    process.finish(Duration::from_secs(60))
}

/// The only connection `list --json` shows, after checking its provider, account and status.
fn only_connection(tk: &Tokenkeep, case: &Case, provider: &str, status: &str) -> Result<Value> {
    let list = tk.list_json()?;
    ensure!(list.len() == 1, "expected one connection, `list` shows {list:?}");
    let entry = list.into_iter().next().ok_or_else(|| anyhow!("empty list"))?;
    ensure!(
        entry["provider"] == provider && entry["account"] == case.account && entry["status"] == status,
        "expected {provider}:{} {status}, `list` shows {entry}",
        case.account
    );
    Ok(entry)
}

/// The stored access and refresh tokens of connection `id` (read from the vault while no CLI runs).
fn stored_tokens(tk: &Tokenkeep, id: &str) -> Result<(String, Option<String>)> {
    let id: ConnectionId = id.parse().map_err(|_| anyhow!("{id} is not a connection id"))?;
    let tokens = tk.open_vault()?.tokens(id)?;
    Ok((
        tokens.access.dangerously_expose().to_owned(),
        tokens.refresh.as_ref().map(|r| r.dangerously_expose().to_owned()),
    ))
}

/// Fails if the emulation does not hold `token` as an active token of `kind`.
fn ensure_active(platform: &Platform, token: &str, kind: &str, what: &str) -> Result<()> {
    let state = platform
        .introspect(token)?
        .ok_or_else(|| anyhow!("{what}: the platform never issued this token"))?;
    ensure!(
        state.kind == kind && state.active,
        "{what}: the platform holds it as {state:?}, not an active {kind} token"
    );
    Ok(())
}

/// Fails if a log or an output of the run shows any of `secrets`.
fn ensure_not_shown(tk: &Tokenkeep, outputs: &[&CliOutput], secrets: &[&str]) -> Result<()> {
    let log = std::fs::read_to_string(tk.log_file()).unwrap_or_default();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        ensure!(!log.contains(secret), "the log file shows a secret");
        for output in outputs {
            ensure!(
                !output.stderr.contains(secret) && !output.stdout.contains(secret),
                "`tokenkeep {}` printed a secret",
                output.args
            );
        }
    }
    Ok(())
}

/// The whole life of one connection at `case`'s platform, from its shipped preset. Returns the emulation for
/// case-specific follow-ups.
fn connect_refresh_disconnect(case: &Case) -> Result<Platform> {
    let test = format!("dialect-{}", case.id);
    let platform = Platform::start(case.id)?;
    let (tk, landing) = installation(&test)?;
    configure(&tk, case, &platform.moved_preset(case.id)?)?;
    lifecycle(case, case.id, &platform, &tk, &landing)?;
    Ok(platform)
}

/// Connect, token, refresh and disconnect at `provider` (configured in `tk`), checked at the platform.
fn lifecycle(
    case: &Case,
    provider: &str,
    platform: &Platform,
    tk: &Tokenkeep,
    landing: &std::path::Path,
) -> Result<()> {
    let tk = tk.clone();
    let connected = connect(&tk, case, provider, landing)?;
    connected
        .ensure_code(0)
        .with_context(|| format!("platform log:\n{}", platform.log()))?;
    ensure!(
        connected.stdout.contains("Connected") && connected.stdout.contains(case.account),
        "connect printed {:?}",
        connected.stdout
    );
    let entry = only_connection(&tk, case, provider, "connected")?;
    let id = entry["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id in {entry}"))?
        .to_owned();
    let (access, refresh) = stored_tokens(&tk, &id)?;
    // The emulations that answer with a profile picture (on their own host): it is fetched at connect and sealed.
    if PICTURED.contains(&case.id) {
        let connection: ConnectionId = id.parse().map_err(|e| anyhow!("{e}"))?;
        let picture = tk
            .open_vault()?
            .picture(connection)?
            .ok_or_else(|| anyhow!("{}: the profile picture was not stored", case.id))?;
        ensure!(
            picture.kind().media_type() == "image/png",
            "{}: stored {picture:?}",
            case.id
        );
    }
    // A long-lived token where the platform has one (Meta's exchange): the short-lived one is never kept.
    ensure_active(platform, &access, "access", "the stored access token")?;
    match (case.refresh, &refresh) {
        (Refresh::Rotates | Refresh::Keeps, Some(refresh)) => {
            ensure_active(platform, refresh, "refresh", "the stored refresh token")?;
        }
        (Refresh::Rotates | Refresh::Keeps, None) => bail!("no refresh token was stored"),
        (Refresh::Never | Refresh::AfterADay, Some(_)) => bail!("a refresh token was stored, none was issued"),
        (Refresh::Never | Refresh::AfterADay, None) => {}
    }

    let token = tk.ok(&["token", &id], None)?;
    ensure!(
        token.stdout.trim() == access,
        "`token` printed another token than the stored one"
    );

    let refreshed = tk.ok(&["refresh", &id], None)?;
    let mut outputs = vec![connected.clone(), refreshed.clone()];
    match case.refresh {
        Refresh::Rotates | Refresh::Keeps => {
            ensure!(
                refreshed.stdout.starts_with("Refreshed")
                    && refreshed.stdout.contains("rotated") == (case.refresh == Refresh::Rotates),
                "refresh printed {:?}",
                refreshed.stdout
            );
        }
        Refresh::Never | Refresh::AfterADay => {
            ensure!(
                refreshed.stdout.contains("is still fresh"),
                "refresh printed {:?}",
                refreshed.stdout
            );
        }
    }
    if case.refresh == Refresh::AfterADay {
        // A day later on both clocks: the platform now accepts the refresh, and Tokenkeep asks for it.
        platform.advance_clock(25 * 3600)?;
        let later = tk.run_wrapped(&["faketime", "+25 hours"], &["refresh", &id])?;
        later.ensure_code(0)?;
        ensure!(
            later.stdout.starts_with("Refreshed"),
            "refresh a day later printed {:?}",
            later.stdout
        );
        outputs.push(later);
    }
    let (access_now, refresh_now) = stored_tokens(&tk, &id)?;
    if case.refresh == Refresh::Never {
        ensure!(access_now == access, "the access token changed without a refresh");
    } else {
        ensure!(access_now != access, "the refresh stored no new access token");
        ensure_active(platform, &access_now, "access", "the refreshed access token")?;
    }
    match case.refresh {
        Refresh::Rotates => {
            ensure!(refresh_now != refresh, "the rotated refresh token was not stored");
            let new = refresh_now
                .as_deref()
                .ok_or_else(|| anyhow!("the refresh token is gone"))?;
            ensure_active(platform, new, "refresh", "the rotated refresh token")?;
        }
        Refresh::Keeps => ensure!(refresh_now == refresh, "the refresh token changed"),
        Refresh::Never | Refresh::AfterADay => ensure!(refresh_now.is_none(), "a refresh token appeared"),
    }

    let disconnected = tk.ok(&["disconnect", &id], None)?;
    match case.revoke {
        Revoke::AtPlatform => {
            ensure!(
                disconnected
                    .stdout
                    .contains("The provider confirmed that the tokens are revoked."),
                "disconnect printed {:?} {:?}",
                disconnected.stdout,
                disconnected.stderr
            );
            for token in std::iter::once(&access_now).chain(refresh_now.as_ref()) {
                let state = platform.introspect(token)?;
                ensure!(
                    state.is_some_and(|s| !s.active),
                    "a token Tokenkeep held is still accepted after disconnect"
                );
            }
        }
        Revoke::NotOffered => ensure!(
            disconnected.stderr.contains("offers no way for apps to revoke"),
            "disconnect printed {:?}",
            disconnected.stderr
        ),
    }
    ensure!(tk.list_json()?.is_empty(), "disconnect left a connection");
    outputs.push(disconnected);

    platform.ensure_nothing_refused()?;
    let secrets = [
        access.as_str(),
        access_now.as_str(),
        refresh.as_deref().unwrap_or(""),
        refresh_now.as_deref().unwrap_or(""),
        CLIENT_SECRET,
    ];
    ensure_not_shown(&tk, &outputs.iter().collect::<Vec<_>>(), &secrets)?;
    Ok(())
}

/// A preset changed in one setting: `from` (a whole line) replaced by `to`.
fn with_line(preset: &str, from: &str, to: &str) -> Result<String> {
    ensure!(preset.lines().any(|l| l == from), "the preset has no line {from:?}");
    Ok(preset
        .lines()
        .map(|l| if l == from { to } else { l })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Connecting with `preset` fails at the platform, which refused `refusal`; nothing is stored, and Tokenkeep
/// shows the platform's own words.
fn ensure_refused(case: &Case, platform: &Platform, preset: &str, refusal: &str, shown: &str) -> Result<()> {
    let (tk, landing) = installation(&format!("dialect-{}-refused", case.id))?;
    configure(&tk, case, preset)?;
    let before = platform.refused()?.len();
    let output = connect(&tk, case, case.id, &landing)?;
    ensure!(output.status.code() != Some(0), "connect succeeded:\n{}", output.stdout);
    ensure!(
        output.stderr.contains(shown),
        "connect did not show the platform's answer {shown:?}:\n{}",
        output.stderr
    );
    let refused = platform.refused()?;
    ensure!(
        refused[before..].iter().any(|r| r == refusal),
        "the platform refused {:?}, not {refusal:?}",
        &refused[before..]
    );
    ensure!(tk.list_json()?.is_empty(), "a refused connect stored something");
    Ok(())
}

const TIKTOK: Case = Case {
    id: "tiktok",
    secret: true,
    paste: false,
    account: "Ada on TikTok",
    refresh: Refresh::Rotates,
    revoke: Revoke::AtPlatform,
};

#[test]
fn tiktok_hex_challenge_client_key_and_rotation() -> Result<()> {
    connect_refresh_disconnect(&TIKTOK).map(drop)
}

#[test]
fn tiktok_refuses_the_base64url_challenge_of_generic_pkce() -> Result<()> {
    let platform = Platform::start("tiktok")?;
    let preset = with_line(&platform.moved_preset("tiktok")?, "pkce = \"hex\"", "pkce = \"s256\"")?;
    ensure_refused(
        &TIKTOK,
        &platform,
        &preset,
        "token: Code verifier or code challenge is invalid.",
        "Code verifier or code challenge is invalid.",
    )
}

const LINKEDIN: Case = Case {
    id: "linkedin",
    secret: true,
    paste: false,
    account: "ada@example.test",
    refresh: Refresh::Never,
    revoke: Revoke::AtPlatform,
};

#[test]
fn linkedin_without_pkce_on_its_registered_port() -> Result<()> {
    let platform = connect_refresh_disconnect(&LINKEDIN)?;
    // With generic PKCE the standard flow fails (the same fixed port: so in this test, after the first).
    let preset = with_line(&platform.moved_preset("linkedin")?, "pkce = \"off\"", "pkce = \"s256\"")?;
    ensure_refused(
        &LINKEDIN,
        &platform,
        &preset,
        "token: code_verifier sent",
        "Client authentication failed",
    )
}

#[test]
fn instagram_pasted_redirect_long_lived_token_and_day_old_refresh() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "instagram",
        secret: true,
        paste: true,
        account: "ada.creates",
        refresh: Refresh::AfterADay,
        revoke: Revoke::NotOffered,
    })
    .map(drop)
}

#[test]
fn threads_pasted_redirect_long_lived_token_and_day_old_refresh() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "threads",
        secret: true,
        paste: true,
        account: "ada.threads",
        refresh: Refresh::AfterADay,
        revoke: Revoke::NotOffered,
    })
    .map(drop)
}

#[test]
fn facebook_pages_pasted_redirect_exchange_and_permission_revoke() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "facebook",
        secret: true,
        paste: true,
        account: "Ada Lovelace",
        refresh: Refresh::Never,
        revoke: Revoke::AtPlatform,
    })
    .map(drop)
}

#[test]
fn instagram_through_facebook_names_the_business_account() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "instagram-facebook",
        secret: true,
        paste: true,
        account: "ada.studio",
        refresh: Refresh::Never,
        revoke: Revoke::AtPlatform,
    })
    .map(drop)
}

#[test]
fn twitch_force_verify_validation_and_revoke_with_client_id() -> Result<()> {
    let case = Case {
        id: "twitch",
        secret: true,
        paste: false,
        account: "ada_streams",
        refresh: Refresh::Rotates,
        revoke: Revoke::AtPlatform,
    };
    let platform = connect_refresh_disconnect(&case)?;

    // Twitch requires apps to validate their tokens at start and hourly: the engine does, and a token the person
    // revoked at Twitch ends in "reconnect" at once, not at its expiry.
    let (tk, landing) = installation("dialect-twitch-validate")?;
    configure(&tk, &case, &platform.moved_preset("twitch")?)?;
    connect(&tk, &case, case.id, &landing)?.ensure_code(0)?;
    let validate = "GET /id.twitch.tv/oauth2/validate";
    let before = platform.requests(validate)?;
    let tokens_before = platform.requests("POST /id.twitch.tv/oauth2/token")?;
    {
        let mut daemon = tk.spawn(&["daemon"])?;
        daemon.wait_for_stderr_line(Duration::from_secs(20), |l| l.contains("keeping this profile"))?;
        wait_until(Duration::from_secs(20), || Ok(platform.requests(validate)? > before))?;
    }
    ensure!(
        platform.requests("POST /id.twitch.tv/oauth2/token")? == tokens_before,
        "a valid token was refreshed instead of only validated"
    );
    only_connection(&tk, &case, case.id, "connected")?;

    platform.revoke_all()?;
    {
        let mut daemon = tk.spawn(&["daemon"])?;
        daemon.wait_for_stderr_line(Duration::from_secs(30), |l| l.contains("ATTENTION twitch:"))?;
    }
    only_connection(&tk, &case, case.id, "needs_reconnect")?;
    let refused = platform.refused()?;
    ensure!(
        refused == ["twitch: invalid access token", "twitch: Invalid refresh token"],
        "the platform refused {refused:?}"
    );
    Ok(())
}

/// Polls `done` every 50 ms until it is true, failing after `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !done()? {
        ensure!(Instant::now() < deadline, "not done within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

#[test]
fn reddit_installed_app_basic_with_empty_password_and_user_agent() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "reddit",
        secret: false,
        paste: false,
        account: "ada_posts",
        refresh: Refresh::Keeps,
        revoke: Revoke::AtPlatform,
    })
    .map(drop)
}

#[test]
fn youtube_channel_identity_and_schemeless_issuer() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "youtube",
        secret: true,
        paste: false,
        account: "Ada Makes Videos",
        refresh: Refresh::Keeps,
        revoke: Revoke::AtPlatform,
    })
    .map(drop)
}

/// The platforms whose emulation names a profile picture in its identity answer (X only when `user.fields` asks).
const PICTURED: &[&str] = &["x"];

#[test]
fn x_public_client_with_rotation() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "x",
        secret: false,
        paste: false,
        account: "ada_writes",
        refresh: Refresh::Rotates,
        revoke: Revoke::AtPlatform,
    })
    .map(drop)
}

#[test]
fn pinterest_basic_auth_and_continuous_refresh() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "pinterest",
        secret: true,
        paste: false,
        account: "adapins",
        refresh: Refresh::Rotates,
        revoke: Revoke::NotOffered,
    })
    .map(drop)
}

#[test]
fn kick_pkce_with_secret_and_query_revocation() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "kick",
        secret: true,
        paste: false,
        account: "ada_live",
        refresh: Refresh::Rotates,
        revoke: Revoke::AtPlatform,
    })
    .map(drop)
}

#[test]
fn spotify_public_pkce_client_on_an_ip_literal() -> Result<()> {
    connect_refresh_disconnect(&Case {
        id: "spotify",
        secret: false,
        paste: false,
        account: "Ada Podcasts",
        refresh: Refresh::Rotates,
        revoke: Revoke::NotOffered,
    })
    .map(drop)
}

/// Mastodon, on the shipped template: `providers add mastodon --instance` registers Tokenkeep at the server for the
/// exact loopback redirect, the server becomes a provider of its own, and its connection lives and ends there.
fn mastodon(dialect: &str, pkce: bool) -> Result<()> {
    let case = Case {
        id: "mastodon",
        secret: true,
        paste: false,
        account: "ada",
        refresh: Refresh::Never,
        revoke: Revoke::AtPlatform,
    };
    let platform = Platform::start(dialect)?;
    let (tk, landing) = installation(&format!("dialect-{dialect}"))?;

    // The template cannot be connected, nor configured like a platform of one server.
    let template = tk.run(&["connect", "mastodon"], None)?;
    ensure!(
        template.status.code() != Some(0) && template.stderr.contains("--instance"),
        "connecting the template: {template:?}"
    );
    let by_hand = tk.run(&["providers", "add", "mastodon", "--client-id", "x"], None)?;
    ensure!(
        by_hand.status.code() != Some(0) && by_hand.stderr.contains("--instance"),
        "a client id for the template: {by_hand:?}"
    );

    let origin = platform.origin();
    let port = origin
        .rsplit(':')
        .next()
        .ok_or_else(|| anyhow!("no port in {origin}"))?;
    let provider = format!("127-0-0-1-{port}");
    let added = tk.ok(&["providers", "add", "mastodon", "--instance", &origin], None)?;
    ensure!(
        added
            .stdout
            .contains(&format!("Added provider {provider} (Mastodon (127.0.0.1:{port}))"))
            && added.stdout.contains(&format!("tokenkeep connect {provider}")),
        "`providers add mastodon --instance` printed {:?}",
        added.stdout
    );
    let notes = platform.notes()?;
    let registered = notes
        .iter()
        .find(|n| n.starts_with("apps: registered Tokenkeep for "))
        .ok_or_else(|| anyhow!("nothing was registered: {notes:?}"))?;
    ensure!(
        registered.ends_with("/callback with read:accounts write:statuses write:media")
            && registered.contains("for http://127.0.0.1:"),
        "registered {registered:?}"
    );
    // The client id is configuration; the secret the server issued is only in the vault.
    let config = std::fs::read_to_string(tk.config_file())?;
    ensure!(
        config.contains("client_id = \"cid-") && !config.contains("csecret-"),
        "config.toml:\n{config}"
    );
    let sealed = tk
        .open_vault()?
        .client_secret(&tokenkeep_core::provider::ProviderId::parse(&provider)?)?
        .ok_or_else(|| anyhow!("no client secret sealed"))?;
    ensure!(
        sealed.dangerously_expose().starts_with("csecret-"),
        "another secret was sealed"
    );

    let again = tk.run(&["providers", "add", "mastodon", "--instance", &origin], None)?;
    ensure!(
        again.status.code() != Some(0) && again.stderr.contains("already added"),
        "adding the server twice: {again:?}"
    );

    lifecycle(&case, &provider, &platform, &tk, &landing)?;
    let expected = if pkce {
        "authorize: PKCE S256"
    } else {
        "authorize: no PKCE"
    };
    let notes = platform.notes()?;
    ensure!(
        notes.iter().any(|n| n == expected),
        "expected {expected:?} in {notes:?}"
    );
    Ok(())
}

#[test]
fn mastodon_registers_itself_at_a_current_server_and_uses_pkce() -> Result<()> {
    mastodon("mastodon", true)
}

#[test]
fn mastodon_before_4_3_has_no_metadata_and_no_pkce() -> Result<()> {
    mastodon("mastodon-legacy", false)
}
