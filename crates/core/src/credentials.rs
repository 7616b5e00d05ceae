//! The OAuth client of a provider: its configured client id and, for confidential clients, the secret sealed in
//! the vault. Connecting, refreshing and revoking all authenticate with it.

use crate::oauth::ClientCredentials;
use crate::provider::ProviderId;
use crate::provider::catalog::{Readiness, ResolvedProvider};
use crate::store::{StoreError, Vault};

/// Why a provider's client cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// No client id is configured; the message says what to register, where, and with which redirect URI.
    #[error("{0}")]
    NotReady(String),
    /// A confidential client has no secret stored.
    #[error(
        "{provider} authenticates with a client secret and none is stored: run `tokenkeep providers add {id} \
         --client-id ID --client-secret-stdin` (or enter it in the app)"
    )]
    MissingClientSecret {
        /// Display name.
        provider: String,
        /// Provider id.
        id: ProviderId,
    },
    /// The sealed secret could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The OAuth client for `provider`: its configured id and, for confidential clients, the secret from the vault.
///
/// # Errors
/// [`CredentialsError::NotReady`] without a client id, [`CredentialsError::MissingClientSecret`] for a
/// confidential client whose secret was never stored, [`CredentialsError::Store`] if it cannot be read.
pub fn client_credentials(vault: &Vault, provider: &ResolvedProvider) -> Result<ClientCredentials, CredentialsError> {
    let spec = provider.spec();
    let client_id = match (provider.readiness(), provider.client_id()) {
        (Readiness::Ready, Some(id)) => id.to_owned(),
        (
            Readiness::NeedsClientId { message }
            | Readiness::NeedsRedirectUri { message }
            | Readiness::NeedsInstance { message },
            _,
        ) => {
            return Err(CredentialsError::NotReady(message.clone()));
        }
        _ => {
            return Err(CredentialsError::NotReady(format!(
                "{} has no client id configured",
                spec.display_name
            )));
        }
    };
    let client_secret = if provider.needs_client_secret() {
        Some(
            vault
                .client_secret(&spec.id)?
                .ok_or_else(|| CredentialsError::MissingClientSecret {
                    provider: spec.display_name.clone(),
                    id: spec.id.clone(),
                })?,
        )
    } else {
        None
    };
    // Masked wherever it might appear: a log line, or a platform's error text that echoes the request.
    if let Some(secret) = &client_secret {
        crate::logging::register_secret(secret.dangerously_expose());
    }
    Ok(ClientCredentials {
        client_id,
        client_secret,
    })
}
