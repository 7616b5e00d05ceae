//! `tokenkeep`: the command-line face of Tokenkeep, a thin adapter over `tokenkeep-core`.
//!
//! Each subcommand parses its arguments, calls one core operation, and prints the result for people (tables,
//! relative times) or, with `--json`, as stable JSON. Errors go to stderr as one sentence saying what happened
//! and what to do next; the exit status is 0 on success, 1 on failure, 2 for a usage error, 3 when `verify` found
//! damaged records, 130 when cancelled.
//!
//! While the app or `tokenkeep daemon` holds the store, the read, token and refresh commands get their data from
//! it over its CLI socket instead (`backend.rs`), and render it with the same code.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a terminal tool: printing is its job

mod backend;
mod render;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use tokenkeep_core::browser::{self, BrowserOpener, CommandBrowser, NoBrowser};
use tokenkeep_core::clock::SystemClock;
use tokenkeep_core::http::{ReqwestHttp, SharedHttp};
use tokenkeep_core::keys::KeySource;
use tokenkeep_core::local_api::{self, RevocationInfo, Shown, VerifyData};
use tokenkeep_core::oauth::human_duration;
use tokenkeep_core::profile::{self, Profile, ProfilePaths};
use tokenkeep_core::provider::catalog::{Origin, Readiness};
use tokenkeep_core::provider::{ClientAuth, ProviderId};
use tokenkeep_core::refresh::{EngineEvent, RefreshEngine};
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::service::{self, AddProvider, ConnectOptions};
use tokenkeep_core::store::{PROGRAM_APP, PROGRAM_CLI, PROGRAM_DAEMON, StoreError, Vault};
use url::Url;

use crate::backend::Backend;

/// Tokenkeep keeps your social accounts' OAuth tokens encrypted and fresh.
#[derive(Debug, Parser)]
#[command(name = "tokenkeep", version, propagate_version = true)]
struct Cli {
    /// Profile to use (default: `dev` for debug builds, `prod` for release builds).
    #[arg(long, global = true, env = profile::ENV_PROFILE, value_name = "NAME")]
    profile: Option<String>,
    /// Directory holding every profile's data (default: the platform's data directory).
    #[arg(long, global = true, env = profile::ENV_HOME, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Also print log messages to stderr.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List, add or configure providers (platforms you can connect to).
    Providers {
        #[command(subcommand)]
        command: ProvidersCommand,
    },
    /// Connect an account: sign in through your browser, then the tokens are sealed in the vault.
    Connect {
        /// The provider id (see `tokenkeep providers list`).
        provider: String,
        /// Do not open a browser; print the sign-in link instead.
        #[arg(long)]
        no_browser: bool,
        /// Ask for these scopes instead of the provider's defaults (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Give up after this many seconds without an answer from the browser.
        #[arg(long, value_name = "SECONDS", default_value_t = 300)]
        timeout: u64,
    },
    /// Show one connection offline: metadata, stored token kinds, expiry, key id, decoded JWT claims.
    Show {
        /// The connection: its id, or provider:account.
        connection: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also print the stored token values (a warning goes to stderr).
        #[arg(long)]
        reveal: bool,
    },
    /// Print a valid access token for scripts (refreshing it first when it is about to expire).
    Token {
        /// The connection: its id, or provider:account.
        connection: String,
    },
    /// Refresh a connection's tokens now.
    Refresh {
        /// The connection: its id, or provider:account.
        connection: String,
    },
    /// Revoke a connection's tokens at the provider and delete everything stored for it.
    Disconnect {
        /// The connection: its id, or provider:account.
        connection: String,
    },
    /// Run the refresh engine in the foreground (servers, tests): keeps every connection fresh, logs status
    /// changes, stops cleanly on Ctrl-C / SIGTERM.
    Daemon,
    /// List connected accounts (offline: reads the vault only).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Open and check every record offline; list the damaged ones (exit status 3 when there are any).
    Verify {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print every sealed record for audits and independent decryption (JSON lines; no plaintext).
    Export {
        /// Export the sealed envelopes with their AAD (the only export there is; the flag says what you get).
        #[arg(long, required = true)]
        envelopes: bool,
    },
    /// Create a new master key and re-seal every record under it (needs the OS keyring).
    RotateKey,
    /// Show where this profile keeps its data.
    Paths {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ProvidersCommand {
    /// List the providers this profile can connect to, and what each still needs.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a custom OpenID provider by discovery, or set the client of a built-in one.
    Add {
        /// Provider id: a built-in one (`youtube`, `twitch`, …) or a new one for a custom provider.
        name: String,
        /// Issuer URL of a custom OpenID provider (its /.well-known/openid-configuration is read).
        #[arg(long, value_name = "URL")]
        issuer: Option<Url>,
        /// Name to show for a custom provider.
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// The OAuth client id you registered with the platform.
        #[arg(long, value_name = "ID")]
        client_id: Option<String>,
        /// Read the client secret from standard input (it is sealed in the vault, never written to a file).
        #[arg(long)]
        client_secret_stdin: bool,
        /// How the client authenticates at the token endpoint.
        #[arg(long, value_enum, value_name = "METHOD")]
        auth: Option<AuthArg>,
        /// Scopes to ask for instead of the defaults (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuthArg {
    /// Public client: no secret, PKCE only.
    None,
    /// client_secret_basic: HTTP Basic authentication.
    Basic,
    /// client_secret_post: id and secret in the request body.
    Post,
}

impl From<AuthArg> for ClientAuth {
    fn from(value: AuthArg) -> Self {
        match value {
            AuthArg::None => Self::None,
            AuthArg::Basic => Self::ClientSecretBasic,
            AuthArg::Post => Self::ClientSecretPost,
        }
    }
}

/// Failures that have their own exit status.
#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled; nothing was connected")
    }
}

impl std::error::Error for Cancelled {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<Cancelled>() => {
            eprintln!("tokenkeep: {error}");
            ExitCode::from(130)
        }
        Err(error) if error.is::<Damaged>() => {
            eprintln!("tokenkeep: {error}");
            ExitCode::from(EXIT_DAMAGED)
        }
        Err(error) => {
            eprintln!("tokenkeep: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Settings resolved once from flags and environment.
struct Context {
    paths: ProfilePaths,
}

impl Context {
    fn open_vault(&self) -> Result<Vault, StoreError> {
        self.open_vault_as(PROGRAM_CLI)
    }

    fn open_vault_as(&self, program: &str) -> Result<Vault, StoreError> {
        let keys = KeySource::resolve(self.paths.profile())?;
        Vault::open(&self.paths, keys, Arc::new(SystemClock), program)
    }

    /// The vault for a command that cannot run through the app's or the daemon's socket (`what` names it):
    /// when one of them holds the store, say where to do it instead.
    fn open_vault_exclusive(&self, what: &str, program: &str) -> Result<Vault> {
        match self.open_vault_as(program) {
            Err(StoreError::Locked {
                holder: Some(holder), ..
            }) if backend::serves_cli(&holder) => {
                let advice = if holder.program == PROGRAM_APP {
                    "do this in the app window, or close the app first"
                } else {
                    "stop the daemon first"
                };
                bail!(
                    "{what} needs the store to itself, and {} (pid {}) holds it: {advice}",
                    backend::holder_name(&holder),
                    holder.pid
                )
            }
            other => Ok(other?),
        }
    }

    fn http(&self) -> Result<SharedHttp> {
        Ok(Arc::new(ReqwestHttp::new()?))
    }
}

fn run(cli: Cli) -> Result<()> {
    let paths = ProfilePaths::resolve(Profile::resolve(cli.profile.as_deref())?, cli.home)?;
    paths.ensure()?;
    tokenkeep_core::logging::init(&tokenkeep_core::logging::LogConfig {
        dir: Some(&paths.logs_dir()),
        file_stem: PROGRAM_CLI,
        stderr: cli.verbose,
        default_filter: "info",
    })
    .with_context(|| format!("cannot open the log file in {}", paths.logs_dir().display()))?;
    let ctx = Context { paths };
    match cli.command {
        Command::Providers {
            command: ProvidersCommand::List { json },
        } => providers_list(&ctx, json),
        Command::Providers {
            command:
                ProvidersCommand::Add {
                    name,
                    issuer,
                    display_name,
                    client_id,
                    client_secret_stdin,
                    auth,
                    scopes,
                },
        } => {
            let client_secret = if client_secret_stdin {
                Some(read_secret_stdin()?)
            } else {
                None
            };
            let request = AddProvider {
                id: ProviderId::parse(&name)?,
                issuer,
                display_name,
                client_id,
                client_secret,
                auth: auth.map(Into::into),
                scopes: (!scopes.is_empty()).then_some(scopes),
            };
            providers_add(&ctx, request)
        }
        Command::Connect {
            provider,
            no_browser,
            scopes,
            timeout,
        } => {
            let options = ConnectOptions {
                scopes: (!scopes.is_empty()).then_some(scopes),
                timeout: Duration::from_secs(timeout),
            };
            connect(&ctx, &ProviderId::parse(&provider)?, no_browser, options)
        }
        Command::Show {
            connection,
            json,
            reveal,
        } => show(&ctx, &connection, json, reveal),
        Command::Token { connection } => token(&ctx, &connection),
        Command::Refresh { connection } => refresh(&ctx, &connection),
        Command::Disconnect { connection } => disconnect(&ctx, &connection),
        Command::Daemon => daemon(&ctx),
        Command::List { json } => list(&ctx, json),
        Command::Verify { json } => verify(&ctx, json),
        Command::Export { envelopes: _ } => export(&ctx),
        Command::RotateKey => rotate_key(&ctx),
        Command::Paths { json } => paths_command(&ctx, json),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn read_secret_stdin() -> Result<SecretString> {
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the client secret from standard input")?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        bail!("no client secret on standard input (pipe it in, e.g. `printf %s \"$SECRET\" | tokenkeep …`)");
    }
    Ok(SecretString::new(secret.to_owned()))
}

fn providers_list(ctx: &Context, json: bool) -> Result<()> {
    let catalog = service::catalog(&ctx.paths)?;
    let origin = |o: Origin| match o {
        Origin::BuiltIn => "built-in",
        Origin::Demo => "demo",
        Origin::Custom => "custom",
        _ => "other",
    };
    if json {
        let items: Vec<_> = catalog
            .list()
            .map(|p| {
                let spec = p.spec();
                json!({
                    "id": spec.id.as_str(),
                    "name": spec.display_name,
                    "origin": origin(p.origin()),
                    "ready": p.is_ready(),
                    "needs": match p.readiness() { Readiness::NeedsClientId { message } => Some(message.as_str()), _ => None },
                    "client_id": p.client_id(),
                    "auth": spec.client_auth.short_name(),
                    "scopes": spec.scopes,
                    "issuer": spec.issuer,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = catalog
        .list()
        .map(|p| {
            let spec = p.spec();
            let state = if p.is_ready() {
                "ready".to_owned()
            } else {
                "needs a client id".to_owned()
            };
            vec![
                spec.id.to_string(),
                spec.display_name.clone(),
                origin(p.origin()).to_owned(),
                state,
            ]
        })
        .collect();
    println!("{}", render::table(&["id", "name", "kind", "state"], &rows));
    let waiting = catalog.list().filter(|p| !p.is_ready()).count();
    if waiting > 0 {
        println!(
            "\n{waiting} provider(s) need a client id before you can connect: `tokenkeep providers add NAME --client-id \
             ID` (see `tokenkeep providers list --json` for where to register)."
        );
    }
    Ok(())
}

fn providers_add(ctx: &Context, request: AddProvider) -> Result<()> {
    let http = ctx.http()?;
    let added = runtime()?.block_on(service::add_provider(&ctx.paths, &*http, || ctx.open_vault(), request))?;
    let spec = added.provider.spec();
    let verb = if added.created { "Added" } else { "Updated" };
    println!("{verb} provider {} ({}).", spec.id, spec.display_name);
    if added.secret_stored {
        println!("Its client secret is sealed in the vault.");
    }
    match added.provider.readiness() {
        Readiness::Ready => println!("Connect an account with `tokenkeep connect {}`.", spec.id),
        Readiness::NeedsClientId { message } => println!("{message}"),
        _ => {}
    }
    Ok(())
}

fn connect(ctx: &Context, provider: &ProviderId, no_browser: bool, options: ConnectOptions) -> Result<()> {
    let catalog = service::catalog(&ctx.paths)?;
    let vault = ctx.open_vault_exclusive("`tokenkeep connect`", PROGRAM_CLI)?;
    let http = ctx.http()?;
    let browser: Box<dyn BrowserOpener> = if no_browser {
        Box::new(NoBrowser)
    } else {
        Box::new(CommandBrowser::from_env_value(
            std::env::var(browser::ENV_BROWSER).ok().as_deref(),
        ))
    };
    let name = catalog.require(provider)?.spec().display_name.clone();
    let timeout = options.timeout;
    let mut observer = |url: &Url, opened: Result<(), &browser::BrowserError>| match (no_browser, opened) {
        (false, Ok(())) => eprintln!(
            "Opening your browser to sign in to {name}…\nWaiting for the browser (Ctrl-C cancels; gives up after {}).",
            human_duration(timeout)
        ),
        (_, opened) => {
            if let Err(error) = opened {
                eprintln!("{error}");
            }
            eprintln!(
                "Open this link in your browser to sign in to {name}:\n\n  {url}\n\nWaiting for the browser (Ctrl-C \
                 cancels; gives up after {}).",
                human_duration(timeout)
            );
        }
    };
    let connected = runtime()?.block_on(async {
        let work = service::connect_account(
            &catalog,
            &vault,
            &http,
            browser.as_ref(),
            &SystemClock,
            provider,
            options,
            &mut observer,
        );
        tokio::select! {
            result = work => result.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(Cancelled.into()),
        }
    })?;
    let verb = if connected.replaced { "Reconnected" } else { "Connected" };
    println!("{verb} {name} as {} (connection {}).", connected.account, connected.id);
    Ok(())
}

fn show(ctx: &Context, query: &str, json: bool, reveal: bool) -> Result<()> {
    let Shown { data, revealed } = Backend::open(ctx)?.show(query, reveal)?;
    if reveal {
        eprintln!(
            "tokenkeep: WARNING: printing stored token values. Anyone who sees them can act as this account; do not \
             paste them into chats, tickets or logs."
        );
    }
    let value_of = |kind: &str| {
        revealed
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.value.dangerously_expose())
    };
    let meta = &data.meta;
    if json {
        let tokens: Vec<_> = data
            .tokens
            .iter()
            .map(|t| {
                let mut entry = json!({
                    "kind": t.kind,
                    "present": t.length.is_some(),
                    "length": t.length,
                    "jwt": t.jwt.as_ref().map(|j| json!({ "header": j.header, "claims": j.claims })),
                });
                if let Some(value) = value_of(&t.kind) {
                    entry["value"] = json!(value);
                }
                entry
            })
            .collect();
        let value = json!({
            "id": data.id,
            "provider": meta.provider,
            "account": meta.account,
            "subject": meta.subject,
            "scopes": meta.scopes,
            "status": meta.status,
            "expires_at": meta.expires_at.map(render::rfc3339),
            "created_at": render::rfc3339(meta.created_at),
            "updated_at": render::rfc3339(meta.updated_at),
            "last_refresh_at": meta.last_refresh_at.map(render::rfc3339),
            "last_error": meta.last_error,
            "key_id": data.key_id,
            "tokens": tokens,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let now = render::now_secs();
    let when = |t: Option<u64>| {
        t.map_or("never".to_owned(), |t| {
            format!("{} ({})", render::relative(t, now), render::rfc3339(t))
        })
    };
    println!("connection    {}", data.id);
    println!("provider      {}", meta.provider);
    println!("account       {}", meta.account);
    if let Some(subject) = &meta.subject {
        println!("subject       {subject}");
    }
    println!("status        {}", meta.status.replace('_', " "));
    if let Some(error) = &meta.last_error {
        println!("last error    {error}");
    }
    println!(
        "scopes        {}",
        if meta.scopes.is_empty() {
            "(none reported)".to_owned()
        } else {
            meta.scopes.join(" ")
        }
    );
    println!("expiry        {}", render::expiry(meta.expires_at, now));
    println!("last refresh  {}", when(meta.last_refresh_at));
    println!("connected     {}", when(Some(meta.created_at)));
    println!("sealed with   key {}", data.key_id);
    println!("tokens:");
    for t in &data.tokens {
        match t.length {
            None => println!("  {:<14} not stored", t.kind),
            Some(len) => {
                let kind = if t.jwt.is_some() { "JWT" } else { "opaque" };
                println!("  {:<14} stored, {len} bytes, {kind}", t.kind);
                if let Some(jwt) = &t.jwt {
                    for (name, value) in &jwt.claims {
                        let shown = match (name.as_str(), value.as_u64()) {
                            ("exp" | "iat" | "nbf" | "auth_time", Some(t)) => {
                                format!("{value} ({})", render::rfc3339(t))
                            }
                            _ => value.to_string(),
                        };
                        println!("      {name:<12} {shown}");
                    }
                }
                if let Some(value) = value_of(&t.kind) {
                    println!("      value        {value}");
                }
            }
        }
    }
    Ok(())
}

fn token(ctx: &Context, query: &str) -> Result<()> {
    let token = Backend::open(ctx)?.token(query)?;
    // The one place the CLI prints a token: the user asked for exactly this, for a script.
    println!("{}", token.dangerously_expose());
    Ok(())
}

fn refresh(ctx: &Context, query: &str) -> Result<()> {
    let done = Backend::open(ctx)?.refresh(query)?;
    let now = render::now_secs();
    if done.refreshed {
        println!(
            "Refreshed {} at {}: {}{}.",
            done.account,
            done.provider,
            render::expiry(done.expires_at, now),
            if done.rotated {
                "; the provider rotated the refresh token"
            } else {
                ""
            }
        );
    } else {
        println!(
            "{} at {} is still fresh: {}.",
            done.account,
            done.provider,
            render::expiry(done.expires_at, now)
        );
    }
    Ok(())
}

fn disconnect(ctx: &Context, query: &str) -> Result<()> {
    let report = Backend::open(ctx)?.disconnect(query)?;
    println!(
        "Disconnected {} from {}; every token stored for it was deleted.",
        report.account, report.provider
    );
    let by_hand = |url: &Option<String>| match url {
        Some(url) => format!(" Revoke Tokenkeep's access by hand at {url}"),
        None => " Revoke Tokenkeep's access in the platform's account settings".to_owned(),
    };
    match &report.revocation {
        RevocationInfo::Revoked => println!("The provider confirmed that the tokens are revoked."),
        RevocationInfo::NotSupported { manage_url } => eprintln!(
            "Note: {} offers no way for apps to revoke their tokens, so access may remain at the platform.{}.",
            report.provider,
            by_hand(manage_url)
        ),
        RevocationInfo::Failed { reason, manage_url } => eprintln!(
            "Warning: the tokens could not be revoked at {} ({reason}), so access may remain at the platform.{}.",
            report.provider,
            by_hand(manage_url)
        ),
        RevocationInfo::Skipped { reason } => eprintln!("Note: nothing was revoked at the provider: {reason}."),
        _ => {}
    }
    Ok(())
}

fn daemon(ctx: &Context) -> Result<()> {
    // Held under its own name: the other `tokenkeep` commands then know to ask it over its socket.
    let vault = Arc::new(ctx.open_vault_exclusive("`tokenkeep daemon`", PROGRAM_DAEMON)?);
    let refresher = service::refresher(&ctx.paths, vault, ctx.http()?, Arc::new(SystemClock))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut events = refresher.subscribe();
        let engine = RefreshEngine::start(refresher.clone());
        // Before the banner: whoever waits for it may use the socket at once.
        let handler = local_api::Handler::new(refresher.clone(), ctx.paths.profile(), PROGRAM_DAEMON);
        let socket = match local_api::LocalServer::start(&ctx.paths, handler).await {
            Ok(socket) => Some(socket),
            Err(error) => {
                tracing::warn!(%error, "the CLI socket is not available");
                eprintln!(
                    "tokenkeep daemon: warning: other tokenkeep commands cannot use this profile while the daemon \
                     runs: its CLI socket could not be opened ({error})"
                );
                None
            }
        };
        eprintln!("tokenkeep daemon: keeping this profile's connections fresh (Ctrl-C or SIGTERM stops).");
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch SIGTERM")?;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => report_event(&event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        eprintln!("daemon: {missed} status events were skipped (too many at once)");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            }
        }
        eprintln!("tokenkeep daemon: stopping…");
        if let Some(socket) = socket {
            socket.close();
        }
        engine.stop(Duration::from_secs(10)).await;
        eprintln!("tokenkeep daemon: stopped.");
        Ok::<_, anyhow::Error>(())
    })
}

/// One line per event on stderr: the daemon's log for people (the log file has the details).
fn report_event(event: &EngineEvent) {
    let now = render::now_secs();
    match event {
        EngineEvent::Status(change) => {
            let detail = match (&change.last_error, change.expires_at) {
                (Some(error), _) if change.status.as_str() != "connected" => format!(" — {error}"),
                (_, expires_at) => format!(" — {}", render::expiry(expires_at, now)),
            };
            eprintln!(
                "{} {}:{} {} {}{detail}",
                render::rfc3339(now),
                change.provider,
                change.account,
                change.id,
                change.status.as_str().replace('_', " "),
            );
        }
        EngineEvent::Attention {
            provider,
            account,
            message,
            ..
        } => {
            eprintln!("{} ATTENTION {provider}:{account}: {message}", render::rfc3339(now));
        }
        EngineEvent::Removed(id) => eprintln!("{} {id} disconnected", render::rfc3339(now)),
        _ => {}
    }
}

fn list(ctx: &Context, json: bool) -> Result<()> {
    let rows = Backend::open(ctx)?.list()?;
    let now = render::now_secs();
    if json {
        let items: Vec<_> = rows
            .iter()
            .map(|row| match &row.meta {
                Ok(m) => json!({
                    "id": row.id,
                    "provider": m.provider,
                    "account": m.account,
                    "scopes": m.scopes,
                    "expires_at": m.expires_at.map(render::rfc3339),
                    "status": m.status,
                }),
                Err(problem) => json!({ "id": row.id, "status": "damaged", "error": problem }),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "No accounts connected yet. Connect one with `tokenkeep connect PROVIDER` (see `tokenkeep providers list`)."
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| match &row.meta {
            Ok(m) => vec![
                row.id.clone(),
                m.provider.clone(),
                m.account.clone(),
                m.status.replace('_', " "),
                render::expiry(m.expires_at, now),
                m.scopes.join(" "),
            ],
            Err(problem) => vec![
                row.id.clone(),
                "?".into(),
                "?".into(),
                "damaged".into(),
                problem.clone(),
                String::new(),
            ],
        })
        .collect();
    println!(
        "{}",
        render::table(&["id", "provider", "account", "status", "expiry", "scopes"], &rows)
    );
    Ok(())
}

/// Exit status of `verify` when it found damaged records (1 means it could not check at all).
const EXIT_DAMAGED: u8 = 3;

/// `verify` found damage: a distinct exit status, the report is already printed.
#[derive(Debug)]
struct Damaged(usize);

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} damaged record(s); nothing was changed or deleted", self.0)
    }
}

impl std::error::Error for Damaged {}

fn verify(ctx: &Context, json: bool) -> Result<()> {
    let VerifyData {
        records: checked,
        key_id,
        problems,
    } = Backend::open(ctx)?.verify()?;
    if json {
        let items: Vec<_> = problems
            .iter()
            .map(|p| json!({ "tree": p.tree, "record": p.record, "field": p.field, "problem": p.problem }))
            .collect();
        let report = json!({ "records": checked, "key_id": key_id, "ok": problems.is_empty(), "problems": items });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if problems.is_empty() {
        println!("Checked {checked} sealed record(s) with key {key_id}: all intact.");
    } else {
        let rows: Vec<Vec<String>> = problems
            .iter()
            .map(|p| vec![p.tree.clone(), p.record.clone(), p.field.clone(), p.problem.clone()])
            .collect();
        println!(
            "Checked {checked} sealed record(s) with key {key_id}; {} problem(s):\n",
            problems.len()
        );
        println!("{}", render::table(&["tree", "record", "field", "problem"], &rows));
        println!(
            "\nThe other records are intact and usable. Nothing was deleted: disconnect or reconnect the affected \
             accounts, or restore the store from a backup."
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Damaged(problems.len()).into())
    }
}

fn export(ctx: &Context) -> Result<()> {
    let rows = Backend::open(ctx)?.export_envelopes()?;
    let mut out = std::io::stdout().lock();
    for row in rows {
        let line = json!({
            "profile": row.profile,
            "tree": row.tree,
            "record_id": row.record_id,
            "field": row.field,
            "key_id": row.key_id,
            "aad": row.aad,
            "envelope": row.envelope,
        });
        std::io::Write::write_all(&mut out, format!("{line}\n").as_bytes())?;
    }
    Ok(())
}

fn rotate_key(ctx: &Context) -> Result<()> {
    let vault = ctx.open_vault_exclusive("`tokenkeep rotate-key`", PROGRAM_CLI)?;
    let report = vault.rotate_key()?;
    println!(
        "Rotated the master key: {} record(s) re-sealed under key {} (was {}); the old key was deleted from the keyring.",
        report.resealed, report.new, report.old
    );
    if report.damaged > 0 {
        println!(
            "{} damaged record(s) could not be opened and were left as they were.",
            report.damaged
        );
    }
    Ok(())
}

fn paths_command(ctx: &Context, json: bool) -> Result<()> {
    let paths = &ctx.paths;
    if json {
        let value = json!({
            "profile": paths.profile().as_str(),
            "dir": paths.dir(),
            "store": paths.store_dir(),
            "logs": paths.logs_dir(),
            "config": paths.config_file(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("profile  {}", paths.profile());
        println!("data     {}", paths.dir().display());
        println!("store    {}", paths.store_dir().display());
        println!("logs     {}", paths.logs_dir().display());
        println!("config   {}", paths.config_file().display());
    }
    Ok(())
}
