//! Connecting an account: run the browser flow for a provider and seal the result in the vault.
//!
//! An account that is already connected (same provider and subject, or the same account name when the provider
//! gives no subject) has its tokens replaced in place, keeping its connection id; a new account gets a new
//! connection. Several accounts per provider are normal.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

use crate::browser::{BrowserError, BrowserOpener};
use crate::clock::Clock;
use crate::http::{BoxFuture, SharedHttp};
use crate::oauth::{Authorization, Authorized, ClientCredentials, FlowError, PasteSource};
use crate::picture::AccountPicture;
use crate::provider::ProviderSpec;
use crate::secret::SecretString;
use crate::store::{ConnectionId, ConnectionMeta, ConnectionStatus, StoreError, Vault};

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The OAuth flow failed (declined, timed out, refused, …).
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The tokens could not be stored; nothing was connected.
    #[error("the account authorized Tokenkeep, but its tokens could not be stored: {0}")]
    Store(#[from] StoreError),
}

/// The result of a successful connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The connection's id.
    pub id: ConnectionId,
    /// The account name.
    pub account: String,
    /// True when an existing connection of the same account was updated rather than a new one created.
    pub replaced: bool,
}

/// What the caller learns while the flow runs, and what it gives.
pub trait ConnectObserver: Send {
    /// The authorization URL is ready; `opened` says whether the browser could be started (if not, show the URL).
    fn authorization_url(&mut self, url: &Url, opened: Result<(), &BrowserError>);

    /// For platforms that redirect to an https page (`redirect = "paste"`): ask the person for the address the
    /// browser landed on, `redirect` followed by `?code=…`; `None` when they gave up. The default gives none (a
    /// caller that cannot ask: the flow then ends with a clear error).
    fn pasted_address(&mut self, redirect: &Url) -> BoxFuture<'_, Option<SecretString>> {
        let _ = redirect;
        Box::pin(async { None })
    }
}

impl<F: FnMut(&Url, Result<(), &BrowserError>) + Send> ConnectObserver for F {
    fn authorization_url(&mut self, url: &Url, opened: Result<(), &BrowserError>) {
        self(url, opened)
    }
}

/// The observer as the flow's source of a pasted address.
struct Paste<'a> {
    observer: &'a mut dyn ConnectObserver,
    redirect: Url,
}

impl PasteSource for Paste<'_> {
    fn pasted_address(&mut self) -> BoxFuture<'_, Option<SecretString>> {
        self.observer.pasted_address(&self.redirect)
    }
}

/// Everything [`connect`] needs besides the platform services.
#[derive(Debug)]
pub struct ConnectRequest<'a> {
    /// The provider, with the user's settings applied.
    pub spec: &'a ProviderSpec,
    /// The OAuth client to use.
    pub credentials: ClientCredentials,
    /// Scopes to ask for instead of the provider's defaults.
    pub scopes: Option<Vec<String>>,
    /// How long to wait for the browser.
    pub timeout: Duration,
    /// The account to sign in as, when the person named one (see [`Authorization::start_for`]).
    pub account: Option<String>,
}

/// Runs the whole flow and seals the result. Dropping the future cancels it (the listener closes).
pub async fn connect(
    vault: &Vault,
    http: &SharedHttp,
    browser: &dyn BrowserOpener,
    clock: &dyn Clock,
    request: ConnectRequest<'_>,
    observer: &mut dyn ConnectObserver,
) -> Result<Connected, ConnectError> {
    let authorization = Authorization::start_for(
        request.spec,
        request.credentials,
        request.scopes,
        request.account.as_deref(),
        http,
    )
    .await?;
    let opened = browser.open(authorization.authorize_url());
    if let Err(error) = &opened {
        tracing::warn!(%error, "could not open the browser; the URL is shown instead");
    }
    observer.authorization_url(authorization.authorize_url(), opened.as_ref().map(|_| ()));
    let mut paste = Paste {
        redirect: authorization.redirect_uri().clone(),
        observer,
    };
    let authorized = authorization
        .finish(http, || clock.now(), request.timeout, &mut paste)
        .await?;
    Ok(store_authorization(vault, request.spec, authorized, clock.now())?)
}

/// Seals a completed authorization: replaces the tokens of the same account, or adds a new connection.
pub fn store_authorization(
    vault: &Vault,
    spec: &ProviderSpec,
    authorized: Authorized,
    now: SystemTime,
) -> Result<Connected, StoreError> {
    let Authorized {
        identity,
        tokens,
        scopes,
        expires_at,
        session_ends_at,
        picture,
        resource,
    } = authorized;
    let resource = resource.map(String::from);
    let provider = &spec.id;
    let existing = vault.list()?.into_iter().find_map(|(id, meta)| {
        let meta = meta.ok()?;
        let same = &meta.provider == provider
            && match (&meta.subject, &identity.subject) {
                (Some(a), Some(b)) => a == b,
                _ => meta.account == identity.account,
            };
        same.then_some((id, meta))
    });
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    match existing {
        Some((id, mut meta)) => {
            meta.account = identity.account.clone();
            meta.subject = identity.subject;
            meta.scopes = scopes;
            meta.expires_at = expires_at;
            meta.status = ConnectionStatus::Connected;
            meta.last_refresh_at = Some(now_secs);
            meta.last_error = None;
            meta.session_ends_at = session_ends_at;
            meta.resource = resource;
            vault.replace_tokens(id, &tokens, &meta)?;
            store_picture(vault, id, picture.as_ref());
            tracing::info!(provider = %provider, connection = %id, "reconnected an existing account");
            Ok(Connected {
                id,
                account: identity.account,
                replaced: true,
            })
        }
        None => {
            let mut meta = ConnectionMeta::new(provider.clone(), identity.account.clone());
            meta.subject = identity.subject;
            meta.scopes = scopes;
            meta.expires_at = expires_at;
            meta.last_refresh_at = Some(now_secs);
            meta.session_ends_at = session_ends_at;
            meta.resource = resource;
            let id = vault.put_connection(meta, &tokens)?;
            store_picture(vault, id, picture.as_ref());
            tracing::info!(provider = %provider, connection = %id, "connected a new account");
            Ok(Connected {
                id,
                account: identity.account,
                replaced: false,
            })
        }
    }
}

/// Stores the account's picture after its tokens: a failure costs the picture only (logged), never the
/// connection. A reconnect without a picture keeps the one stored.
fn store_picture(vault: &Vault, id: ConnectionId, picture: Option<&AccountPicture>) {
    if let Some(picture) = picture
        && let Err(error) = vault.set_picture(id, picture)
    {
        tracing::warn!(connection = %id, %error, "could not store the account's picture");
    }
}
