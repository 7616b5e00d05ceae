//! The operations: everything a front-end can ask of Tokenkeep, implemented once.
//!
//! The window (`src-tauri`), the CLI and the CLI socket's server are callers of this module; none of them decides
//! anything. [`LocalOps`] is the one implementation: the open vault and the [`RefreshEngine`] (through which
//! everything that changes a connection goes), the HTTP client and the clock. The socket client
//! (`local_api::Client`) is the other implementation of [`Operations`], for a CLI whose store is held by the app or
//! the daemon: it sends the same request and reads back the same value.
//!
//! An operation is a request type implementing [`Op`]: its fields are its arguments, [`Op::Output`] its result and
//! [`Op::run`] its one local implementation. [`Request`] lists the operations served over the socket, one variant
//! each. Adding an operation means: the type and its `run`, and its line in [`Request`] — the client and the server
//! are generic over [`Op`].
//!
//! Operations that need this process itself are methods of [`LocalOps`] and are not served over the socket:
//! [`LocalOps::connect`] (the browser and the terminal are the caller's), [`LocalOps::rotate_key`] (it re-seals
//! every record and wants the store to itself), and the provider settings ([`LocalOps::add_provider`]).

pub mod api;
mod backups;
mod connections;
mod jwt;
mod master_key;
mod providers;
mod tokens;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::api::{ApiCall, ApiResponse};
pub use self::backups::{DescribedBackup, describe_backups, restore_from_backup};
pub use self::connections::{
    ConnectionEntry, ExportEnvelopes, ExportedEnvelope, Inspection, JwtParts, KeyBinding, List, Picture, Problem,
    RevealedToken, Show, Shown, StoredPicture, TokenInspection, Verify, VerifyReport,
};
pub use self::master_key::{ExportedKey, ImportedKey, acknowledge_key_notice, export_key, import_key, key_notice_due};
pub use self::providers::{
    AddProvider, AddedProvider, ImportedProvider, RemoveProvider, RemovedProvider, add_provider, catalog,
    client_metadata, export_provider, import_provider,
};
pub use self::tokens::{
    AccessToken, Disconnect, FailedRefresh, Refresh, RefreshAll, RefreshAllReport, RefreshReport, Token,
};
use self::wire::{ApiError, ErrorKind, Line, Reply};
use crate::browser::BrowserOpener;
use crate::clock::{Clock, SystemClock};
use crate::connect::{self, ConnectError, ConnectObserver, ConnectRequest, Connected};
use crate::credentials::{self, CredentialsError};
use crate::http::SharedHttp;
use crate::keys::KeySource;
use crate::profile::ProfilePaths;
use crate::provider::catalog::{Catalog, CatalogError};
use crate::provider::config::ConfigError;
use crate::provider::discovery::DiscoveryError;
use crate::provider::{ProviderError, ProviderId};
use crate::refresh::{EngineParts, RefreshEngine, RefreshError, RefreshPolicy};
use crate::secret::SecretString;
use crate::store::{RotationReport, StoreError, TokenKind, Vault};

/// Why an operation failed. Each message says what happened and what to do next, and never holds token bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The request contradicts itself, or names something that does not exist (`message` says which).
    #[error("{0}")]
    Invalid(String),
    /// The vault failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A refresh, token request or disconnect failed.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The provider's client cannot be used yet (no client id, no secret).
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The profile's configuration could not be read or written.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The provider catalog could not be built.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A provider is unknown or its definition is invalid.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// OpenID discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// Registering at a server of a platform of many servers failed.
    #[error(transparent)]
    Instance(#[from] crate::provider::instance::InstanceError),
    /// A call to a platform's API (`tokenkeep api`) got no usable answer: unreachable, too large, redirected
    /// where a token must not go (`message` says which; never a token, header or query value).
    #[error("{0}")]
    Api(String),
    /// A bug: the operation stopped unexpectedly (the log has the details).
    #[error("{0}")]
    Internal(String),
}

impl From<crate::keys::KeyError> for OpError {
    fn from(error: crate::keys::KeyError) -> Self {
        Self::Store(error.into())
    }
}

impl From<&OpError> for ApiError {
    fn from(error: &OpError) -> Self {
        let kind = match error {
            OpError::Invalid(_) => ErrorKind::Invalid,
            OpError::Store(StoreError::NotFound(_))
            | OpError::Refresh(RefreshError::NotFound(_) | RefreshError::Disconnected { .. }) => ErrorKind::NotFound,
            OpError::Refresh(RefreshError::NeedsReconnect { .. }) => ErrorKind::NeedsReconnect,
            OpError::Refresh(RefreshError::Retrying { .. }) => ErrorKind::Retrying,
            _ => ErrorKind::Failed,
        };
        // The message and its causes joined by ": ", exactly as the CLI prints a local error (anyhow's `{:#}`),
        // so the two ways also fail with the same words.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(kind, message)
    }
}

/// An operation: its fields are the arguments, [`Op::Output`] the result, [`Op::run`] the one implementation.
pub trait Op: Into<Request> + Send + 'static {
    /// What the operation returns.
    type Output: Reply + Send + 'static;

    /// Runs the operation on the open vault and the engine.
    fn run(self, local: &LocalOps) -> impl Future<Output = Result<Self::Output, OpError>> + Send;
}

/// Where operations run: [`LocalOps`] (this process holds the store) or the socket client (another process does).
pub trait Operations {
    /// Why a call failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Runs `op` and returns what it returns.
    fn run<O: Op>(&self, op: O) -> impl Future<Output = Result<O::Output, Self::Error>> + Send;
}

/// Declares [`Request`]: the operations served over the CLI socket, one variant and one wire name each.
macro_rules! requests {
    ($($variant:ident($op:ty) = $name:literal,)*) => {
        /// One operation the CLI asks the store's holder to run; `op` on the wire, with the operation's fields.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "op")]
        #[non_exhaustive]
        pub enum Request {
            $(
                #[doc = concat!("`", $name, "`: [`", stringify!($op), "`].")]
                #[serde(rename = $name)]
                $variant($op),
            )*
        }

        $(
            impl From<$op> for Request {
                fn from(op: $op) -> Self {
                    Self::$variant(op)
                }
            }
        )*

        impl Request {
            /// Every operation's wire name.
            pub const NAMES: &[&str] = &[$($name),*];

            /// The operation's name on the wire (also what the server logs).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)*
                }
            }

            /// Runs the request on `local` and returns its reply line (the value, or the failure).
            pub async fn answer(self, local: &LocalOps) -> Line {
                match self {
                    $(Self::$variant(op) => reply(op.run(local).await),)*
                }
            }
        }
    };
}

requests! {
    List(List) = "list",
    Show(Show) = "show",
    Picture(Picture) = "picture",
    Verify(Verify) = "verify",
    ExportEnvelopes(ExportEnvelopes) = "export_envelopes",
    Token(Token) = "token",
    Refresh(Refresh) = "refresh",
    RefreshAll(RefreshAll) = "refresh_all",
    Disconnect(Disconnect) = "disconnect",
    RemoveProvider(RemoveProvider) = "remove_provider",
    Api(ApiCall) = "api",
}

fn reply<T: Reply>(result: Result<T, OpError>) -> Line {
    match result {
        Ok(value) => value.encode(),
        Err(error) => wire::error(&ApiError::from(&error)),
    }
}

#[derive(Serialize)]
struct RequestOut<'a> {
    v: u32,
    #[serde(flatten)]
    request: &'a Request,
}

#[derive(Deserialize)]
struct RequestHead {
    v: u32,
    op: String,
}

impl Request {
    /// The request line.
    pub fn encode(&self) -> Line {
        wire::encode(&RequestOut {
            v: wire::PROTOCOL_VERSION,
            request: self,
        })
    }

    /// Parses a request line.
    ///
    /// # Errors
    /// [`ErrorKind::Protocol`] for a line that is not a request of this version (the server ends the session);
    /// [`ErrorKind::Unsupported`] for an operation it does not serve and [`ErrorKind::Invalid`] for one whose
    /// arguments are wrong (the session goes on).
    pub fn decode(line: &[u8]) -> Result<Self, ApiError> {
        let head: RequestHead =
            serde_json::from_slice(line).map_err(|e| ApiError::protocol(format!("not a request line: {e}")))?;
        wire::check_version(head.v)?;
        if !Self::NAMES.contains(&head.op.as_str()) {
            return Err(ApiError::new(
                ErrorKind::Unsupported,
                format!(
                    "{:?} is not served over the CLI socket: {} are; do the rest in the app window, or close the \
                     app first",
                    head.op,
                    Self::NAMES.join(", ")
                ),
            ));
        }
        serde_json::from_slice(line).map_err(|e| {
            ApiError::new(
                ErrorKind::Invalid,
                format!(
                    "the {} request is incomplete or wrong ({e}); a connection is named by its id or as \
                     provider:account",
                    head.op
                ),
            )
        })
    }
}

/// Options of [`LocalOps::connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Scopes instead of the provider's configured ones.
    pub scopes: Option<Vec<String>>,
    /// How long to wait for the browser.
    pub timeout: Duration,
    /// The account to sign in as (a Bluesky handle, DID or server; a `login_hint` elsewhere).
    pub account: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            scopes: None,
            timeout: crate::oauth::DEFAULT_TIMEOUT,
            account: None,
        }
    }
}

/// The operations on a vault this process holds: the one implementation of every operation.
#[derive(Debug)]
pub struct LocalOps {
    paths: ProfilePaths,
    engine: RefreshEngine,
    http: SharedHttp,
    clock: Arc<dyn Clock>,
}

impl LocalOps {
    /// Opens the profile's vault as `program` (the key from the OS keyring, or `TOKENKEEP_MASTER_KEY`) and sets
    /// up the engine, whose timer does not run until [`RefreshEngine::start`] (a one-shot command never starts
    /// it). Blocking: the keyring and sled take a moment.
    ///
    /// # Errors
    /// [`OpError::Store`] (a locked store names its holder, see [`StoreError::Locked`]), or the profile's provider
    /// configuration cannot be read.
    pub fn open(paths: &ProfilePaths, program: &'static str, http: SharedHttp) -> Result<Self, OpError> {
        let keys = KeySource::resolve(paths.profile())?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let vault = Vault::open(paths, keys, clock.clone(), program)?;
        Self::new(paths.clone(), Arc::new(vault), http, clock)
    }

    /// The operations on an open `vault`, with the profile's providers and the default timing rules.
    ///
    /// # Errors
    /// The profile's provider configuration cannot be read.
    pub fn new(
        paths: ProfilePaths,
        vault: Arc<Vault>,
        http: SharedHttp,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OpError> {
        let engine = RefreshEngine::new(EngineParts {
            vault,
            catalog: Catalog::load(&paths)?,
            http: http.clone(),
            clock: clock.clone(),
            policy: RefreshPolicy::default(),
        });
        Ok(Self {
            paths,
            engine,
            http,
            clock,
        })
    }

    /// The profile's paths.
    pub fn paths(&self) -> &ProfilePaths {
        &self.paths
    }

    /// The vault.
    pub fn vault(&self) -> &Arc<Vault> {
        self.engine.vault()
    }

    /// The refresh engine: its events, its timer, its catalog.
    pub fn engine(&self) -> &RefreshEngine {
        &self.engine
    }

    /// Runs vault work on a blocking thread (decrypting every record of a large store takes a while).
    /// The HTTP client every request to a provider goes through.
    pub(crate) fn http(&self) -> &SharedHttp {
        &self.http
    }

    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Vault) -> Result<T, OpError> + Send + 'static,
    ) -> Result<T, OpError> {
        let vault = self.vault().clone();
        match tokio::task::spawn_blocking(move || work(&vault)).await {
            Ok(result) => result,
            Err(error) => {
                tracing::error!(%error, "a vault operation panicked");
                Err(OpError::Internal(
                    "the operation stopped unexpectedly; this is a bug in Tokenkeep — the log file has the details"
                        .into(),
                ))
            }
        }
    }

    /// The providers, re-read from the profile's configuration (another process may have changed it), and handed
    /// to the engine too.
    ///
    /// # Errors
    /// The configuration cannot be read or makes a provider invalid.
    pub fn reload_providers(&self) -> Result<Arc<Catalog>, OpError> {
        self.engine.set_catalog(Catalog::load(&self.paths)?);
        Ok(self.engine.catalog())
    }

    /// Whether the vault holds a client secret for `provider`.
    ///
    /// # Errors
    /// The sealed secret cannot be read.
    pub fn has_client_secret(&self, provider: &ProviderId) -> Result<bool, OpError> {
        Ok(self.vault().client_secret(provider)?.is_some())
    }

    /// Adds or configures a provider (see [`add_provider`]), sealing its secret in this vault, and reloads the
    /// providers.
    ///
    /// # Errors
    /// See [`add_provider`].
    pub async fn add_provider(&self, request: AddProvider) -> Result<AddedProvider, OpError> {
        let added = add_provider(&self.paths, &*self.http, || Ok(&**self.vault()), request).await?;
        self.reload_providers()?;
        Ok(added)
    }

    /// Adds or replaces a provider from a definition in the catalog's TOML format (see [`import_provider`]), and
    /// reloads the providers.
    ///
    /// # Errors
    /// See [`import_provider`]: nothing is written unless the whole profile stays valid.
    pub fn import_provider(&self, name: &str, text: &str) -> Result<ImportedProvider, OpError> {
        let imported = import_provider(&self.paths, name, text)?;
        self.reload_providers()?;
        Ok(imported)
    }

    /// The stored token of `kind` of the connection named by `connection`, for a person who asked to see it (the
    /// window's "Reveal"). Offline: the stored value, even when it has expired.
    ///
    /// # Errors
    /// No such connection, or no token of that kind.
    pub async fn reveal(&self, connection: &str, kind: TokenKind) -> Result<SecretString, OpError> {
        let connection = connection.to_owned();
        self.blocking(move |vault| {
            let id = connections::find_connection(vault, &connection)?;
            let token = connections::reveal(vault, id, kind)?;
            // Who saw what, never the value.
            tracing::info!(connection = %id, kind = %kind.field(), "token revealed");
            Ok(token)
        })
        .await
    }

    /// Connects an account of `provider` through the system browser, seals its tokens, and hands the connection
    /// to the engine (which announces it to every listener and plans its refresh).
    ///
    /// # Errors
    /// The provider is unknown or not set up, the flow failed (declined, timed out, refused), or the tokens could
    /// not be stored.
    pub async fn connect(
        &self,
        provider: &ProviderId,
        options: ConnectOptions,
        browser: &dyn BrowserOpener,
        observer: &mut dyn ConnectObserver,
    ) -> Result<Connected, OpError> {
        let catalog = self.engine.catalog();
        let provider = catalog.require(provider)?;
        let credentials = credentials::client_credentials(self.vault(), provider)?;
        let request = ConnectRequest {
            spec: provider.spec(),
            credentials,
            scopes: options.scopes,
            timeout: options.timeout,
            account: options.account,
        };
        let connected = connect::connect(self.vault(), &self.http, browser, &*self.clock, request, observer).await?;
        self.engine.connected(connected.id)?;
        Ok(connected)
    }

    /// Creates a new master key and re-seals every record under it (needs the OS keyring).
    ///
    /// # Errors
    /// Headless mode (no keyring), a keyring failure, or a database failure; the rotation resumes at the next
    /// open if it was cut short.
    pub async fn rotate_key(&self) -> Result<RotationReport, OpError> {
        self.blocking(|vault| Ok(vault.rotate_key()?)).await
    }
}

impl Operations for LocalOps {
    type Error = OpError;

    fn run<O: Op>(&self, op: O) -> impl Future<Output = Result<O::Output, OpError>> + Send {
        op.run(self)
    }
}

/// Arbitrary bytes on the socket (issue 12): a request line decodes or is refused with an error, never a panic.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_line_decodes_or_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Request::decode(&bytes);
        }

        #[test]
        fn json_shaped_lines_decode_or_are_refused(op in "[a-z_]{0,12}", arg in "\\PC{0,40}") {
            let line = format!(r#"{{"op":"{op}","connection":{arg:?},"json":true}}"#);
            let _ = Request::decode(line.as_bytes());
        }
    }
}
