//! The command line, as clap reads it. Only the shape of the arguments lives here; what each command does is in
//! `commands/`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use tokenkeep_core::profile;
use tokenkeep_core::provider::ClientAuth;
use url::Url;

/// Tokenkeep keeps your social accounts' OAuth tokens encrypted and fresh.
#[derive(Debug, Parser)]
#[command(name = "tokenkeep", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Profile to use (default: `dev` for debug builds, `prod` for release builds).
    #[arg(long, global = true, env = profile::ENV_PROFILE, value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// Directory holding every profile's data (default: the platform's data directory).
    #[arg(long, global = true, env = profile::ENV_HOME, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// Also print log messages to stderr.
    #[arg(long, short, global = true)]
    pub(crate) verbose: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

// Parsed once per run and matched once: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
        /// The account to sign in as: for Bluesky a handle (alice.bsky.social), a DID, or your server's address,
        /// which is resolved and checked first; for others a hint for the platform's sign-in page.
        #[arg(long, value_name = "ACCOUNT")]
        account: Option<String>,
    },
    /// Show one connection offline: metadata, stored token kinds, expiry, key id, decoded JWT claims.
    Show {
        /// The connection: its id (or a prefix of it), provider:account, or the account alone.
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
        /// The connection: its id (or a prefix of it), provider:account, or the account alone.
        connection: String,
    },
    /// Call a connection's API with its access token, which never reaches your script: the answer's body goes to
    /// stdout.
    ///
    /// PATH is relative to the platform's API (YouTube: `youtube/v3/channels?part=snippet&mine=true`), or a
    /// whole https URL on one of the hosts its tokens are for (a refusal names them). The token is refreshed
    /// first when due, and once more when the API says it is invalid. An HTTP error status ends with status 1,
    /// after the body.
    Api(ApiArgs),
    /// Run a command with fresh access tokens in its environment (`--env NAME=CONNECTION`), as `op run` does.
    ///
    /// The tokens are in the command's environment only, never in Tokenkeep's own or on a command line; the
    /// exit status is the command's. The command can do anything the tokens allow: prefer `tokenkeep api`,
    /// which never hands a token out.
    Exec(ExecArgs),
    /// Refresh a connection's tokens now.
    Refresh {
        /// The connection: its id (or a prefix of it), provider:account, or the account alone.
        connection: String,
    },
    /// Revoke a connection's tokens at the provider and delete everything stored for it.
    ///
    /// When the provider cannot be reached, the account leaves use at once and Tokenkeep keeps trying to revoke
    /// in the background (while the app or `tokenkeep daemon` runs), for up to a week; at a terminal you are
    /// asked. Run it again on a pending account to try now.
    Disconnect {
        /// The connection: its id (or a prefix of it), provider:account, or the account alone.
        connection: String,
        /// If revoking fails, keep trying in the background without asking (the default when not at a terminal).
        #[arg(long, conflicts_with = "delete_now")]
        keep_revoking: bool,
        /// If revoking fails (or is still pending), delete everything now and revoke by hand at the platform.
        #[arg(long)]
        delete_now: bool,
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
    /// One line per account: ok, refreshing, or needs you, and why (exit status 1 when any account needs you,
    /// for scripts).
    Status,
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
    /// Export the master key for a backup, or import it back into the keyring.
    ///
    /// The key is kept in your OS keyring. If the keyring is lost (a new computer, a reinstall, a reset
    /// password), the tokens are lost with it: the platforms keep nothing for you, and every account has to be
    /// connected again. An exported key, kept offline, prevents that.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Restore the store from its sealed backups, or start over on purpose (the old store is kept aside).
    ///
    /// When the store is damaged or missing, the newest backup that verifies holds every account as of its
    /// last change. The store it replaces is moved aside, never deleted.
    Restore {
        /// Show the backups and what each holds; change nothing.
        #[arg(long, conflicts_with_all = ["from", "start_over"])]
        list: bool,
        /// Restore this backup file instead of the newest one that verifies.
        #[arg(long, value_name = "FILE", conflicts_with = "start_over")]
        from: Option<PathBuf>,
        /// Begin a new, empty store: the old store and its backups are moved aside (not deleted).
        #[arg(long)]
        start_over: bool,
    },
    /// Show where this profile keeps its data.
    Paths {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Print this profile's master key (base64, the form TOKENKEEP_MASTER_KEY takes) on standard output.
    ///
    /// Anyone with the key and a copy of your data folder can read every token: keep it offline (a password
    /// manager, paper). Works while the app runs.
    Export {
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Put an exported key back into the OS keyring (read from standard input; never an argument, which shells keep
    /// in their history). Only this store's own key is accepted.
    Import,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum ProvidersCommand {
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
        /// The https page registered as the app's redirect, for platforms that redirect only to https (you then
        /// paste the address the browser lands on).
        #[arg(long, value_name = "URL")]
        redirect_uri: Option<Url>,
        /// Your server, for a platform that runs on many (`mastodon --instance mastodon.social`): Tokenkeep
        /// registers itself there and adds the server as a provider of its own.
        #[arg(long, value_name = "SERVER")]
        instance: Option<String>,
        /// For a custom provider: another host its access tokens are for, where `tokenkeep api` may send them
        /// (repeatable; its issuer's and userinfo endpoint's hosts are allowed already).
        #[arg(long = "api-host", value_name = "HOST")]
        api_hosts: Vec<String>,
        /// For a custom provider: do not push authorization requests (RFC 9126), even when its server takes them.
        #[arg(long)]
        no_par: bool,
        /// For a custom provider: keep bearer tokens, even when its server can bind them to a key (DPoP, RFC
        /// 9449), so `tokenkeep token` and `exec` can hand them out. Bound tokens are useless to anyone who copies
        /// them.
        #[arg(long)]
        no_dpop: bool,
        /// A Bluesky (AT Protocol) account, by handle or DID, or its server, whose authorization server is not
        /// bsky.social: that server becomes the provider NAME, on the `bluesky` definition.
        #[arg(long, value_name = "HANDLE|DID|URL", conflicts_with = "issuer")]
        atproto: Option<String>,
    },
    /// Print the client-metadata document to host for your own Bluesky (atproto) client: serve it at the https
    /// address given, then `providers add bluesky --client-id` that address (sessions then last their full time,
    /// unlike the built-in development client's).
    ClientMetadata {
        /// The provider (`bluesky`).
        name: String,
        /// The https address the document will be served at: it is the client id.
        #[arg(long, value_name = "URL")]
        client_id: Url,
    },
    /// Add or replace a provider from a definition file in the catalog's own TOML format (see `providers export`
    /// and docs/PROVIDERS.md); an id of a built-in provider overrides it.
    Import {
        /// The definition file.
        file: PathBuf,
    },
    /// Print a provider's definition in the catalog's TOML format (a built-in's file as shipped).
    Export {
        /// The provider id.
        name: String,
    },
    /// Remove a custom (or imported) provider; refused while connections use it.
    Remove {
        /// The provider id.
        name: String,
        /// Disconnect its connections first (each is revoked at the provider and deleted).
        #[arg(long)]
        with_connections: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AuthArg {
    /// Public client: no secret, PKCE only.
    None,
    /// client_secret_basic: HTTP Basic authentication.
    Basic,
    /// client_secret_post: id and secret in the request body.
    Post,
    /// HTTP Basic with the client id and an empty password (Reddit's installed apps: no secret).
    BasicId,
}

impl From<AuthArg> for ClientAuth {
    fn from(value: AuthArg) -> Self {
        match value {
            AuthArg::None => Self::None,
            AuthArg::Basic => Self::ClientSecretBasic,
            AuthArg::Post => Self::ClientSecretPost,
            AuthArg::BasicId => Self::ClientIdBasic,
        }
    }
}

/// The arguments of `tokenkeep api`.
#[derive(Debug, clap::Args)]
pub(crate) struct ApiArgs {
    /// The connection: its id (or a prefix of it), provider:account, or the account alone.
    pub(crate) connection: String,
    /// A path relative to the platform's API base, or an https URL.
    pub(crate) path: String,
    /// The HTTP method (default: GET, or POST when there are fields or an --input).
    #[arg(short = 'X', long, value_name = "METHOD")]
    pub(crate) method: Option<String>,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// A string field, `key=value` (repeatable): in the query of a GET, else in a JSON object body.
    #[arg(short = 'f', long = "raw-field", value_name = "KEY=VALUE")]
    pub(crate) raw_fields: Vec<String>,
    /// A typed field (repeatable): `true`, `false`, `null` and numbers as JSON, `@FILE` the file's text.
    #[arg(short = 'F', long = "field", value_name = "KEY=VALUE")]
    pub(crate) fields: Vec<String>,
    /// The request body, raw, from FILE (`-`: standard input); fields then go into the query.
    #[arg(long, value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    /// Print the status line and the response headers before the body.
    #[arg(short, long)]
    pub(crate) include: bool,
    /// Follow the platform's pages of a list to the end (as its definition declares: YouTube's
    /// `nextPageToken`, X's `next_token`, Meta's `paging.next`, Mastodon's `Link`), printing each page.
    #[arg(long)]
    pub(crate) paginate: bool,
}

/// The arguments of `tokenkeep exec`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExecArgs {
    /// A variable and the connection whose access token it holds, `NAME=CONNECTION` (repeatable).
    #[arg(long = "env", value_name = "NAME=CONNECTION", required = true)]
    pub(crate) env: Vec<String>,
    /// Replace every token value in the command's output with `<tokenkeep:NAME>` (the default when stdout
    /// or stderr is a terminal).
    #[arg(long, conflicts_with = "no_mask")]
    pub(crate) mask: bool,
    /// Pass the command's output through untouched.
    #[arg(long)]
    pub(crate) no_mask: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}
