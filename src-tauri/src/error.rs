//! What a failed command gives the webview: `{ code, message }` (docs/IPC.md, "Errors").
//!
//! The code is chosen here, from the core error's variant; the message is the core error's `Display`, which is
//! already written for people and never contains token or key bytes. Nothing else about an error crosses IPC.

use serde::Serialize;
use tokenkeep_core::connect::ConnectError;
use tokenkeep_core::credentials::CredentialsError;
use tokenkeep_core::keys::KeyError;
use tokenkeep_core::oauth::FlowError;
use tokenkeep_core::ops::OpError;
use tokenkeep_core::provider::ProviderError;
use tokenkeep_core::provider::catalog::CatalogError;
use tokenkeep_core::provider::config::ConfigError;
use tokenkeep_core::provider::discovery::DiscoveryError;
use tokenkeep_core::refresh::RefreshError;
use tokenkeep_core::store::StoreError;

/// The stable error codes of docs/IPC.md. The UI branches on these, so a variant's name never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorCode {
    /// The OS keyring is locked: unlock it, then retry.
    KeyringLocked,
    /// No keyring to talk to (no session bus, no Secret Service, or one that does not keep keys).
    KeyringUnavailable,
    /// The store's key is not in the keyring (or its entry is damaged).
    KeyMissing,
    /// The available key is not the store's.
    WrongKey,
    /// Another process (the CLI daemon, another app) holds the store.
    StoreLocked,
    /// The store's files are damaged, or it lost committed changes: nothing was changed; a backup can restore it.
    StoreDamaged,
    /// The store is missing or empty although one existed: a backup can restore it.
    StoreMissing,
    /// Any other failure of the vault.
    Store,
    /// The provider could not be reached, or failed transiently.
    ProviderUnreachable,
    /// The provider refused (a grant, a client, a sign-in).
    ProviderRejected,
    /// The user declined on the consent page.
    Declined,
    /// The browser never came back.
    Timeout,
    /// `cancel_connect` ended the flow.
    Cancelled,
    /// A connect flow is already running.
    Busy,
    /// The user must sign in again.
    NeedsReconnect,
    /// No such connection or provider.
    NotFound,
    /// The request or the configuration is not acceptable.
    Invalid,
    /// A bug or an unexpected platform failure.
    Internal,
}

/// A failed command, as the webview receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CommandError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl CommandError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn from_display(code: ErrorCode, error: &dyn std::fmt::Display) -> Self {
        Self::new(code, error.to_string())
    }

    pub(crate) fn busy() -> Self {
        Self::new(
            ErrorCode::Busy,
            "another sign-in is already in progress: finish or cancel it first",
        )
    }

    pub(crate) fn cancelled() -> Self {
        Self::new(ErrorCode::Cancelled, "the sign-in was cancelled; nothing was connected")
    }

    pub(crate) fn internal(what: &str) -> Self {
        Self::new(
            ErrorCode::Internal,
            format!("{what}; this is a bug in Tokenkeep — the log file has the details"),
        )
    }
}

fn key_code(error: &KeyError) -> ErrorCode {
    match error {
        KeyError::Locked { .. } => ErrorCode::KeyringLocked,
        KeyError::NoSessionBus { .. }
        | KeyError::NoSecretService { .. }
        | KeyError::NotPersisted { .. }
        | KeyError::Platform { .. } => ErrorCode::KeyringUnavailable,
        // A damaged entry leaves the user where a missing one does: restore the key or set TOKENKEEP_MASTER_KEY.
        KeyError::KeyMissing { .. } | KeyError::Corrupt { .. } => ErrorCode::KeyMissing,
        KeyError::IdMismatch { .. } => ErrorCode::WrongKey,
        KeyError::InvalidEnvKey { .. } => ErrorCode::Invalid,
        _ => ErrorCode::Store,
    }
}

fn store_code(error: &StoreError) -> ErrorCode {
    match error {
        StoreError::Key(key) => key_code(key),
        StoreError::WrongKey { .. } => ErrorCode::WrongKey,
        StoreError::Locked { .. } => ErrorCode::StoreLocked,
        StoreError::Damaged { .. } => ErrorCode::StoreDamaged,
        StoreError::Missing { .. } => ErrorCode::StoreMissing,
        StoreError::NotFound(_) => ErrorCode::NotFound,
        _ => ErrorCode::Store,
    }
}

fn flow_code(error: &FlowError) -> ErrorCode {
    match error {
        FlowError::Declined(_) => ErrorCode::Declined,
        FlowError::Timeout(_) => ErrorCode::Timeout,
        FlowError::TokenEndpoint { .. } => ErrorCode::ProviderUnreachable,
        FlowError::Authorization { .. }
        | FlowError::IssuerMismatch { .. }
        | FlowError::MalformedCallback
        | FlowError::TokenRejected { .. }
        | FlowError::MalformedTokenResponse { .. }
        | FlowError::Identity { .. } => ErrorCode::ProviderRejected,
        FlowError::MissingClientSecret { .. } | FlowError::Configuration(_) => ErrorCode::Invalid,
        // The loopback listener could not bind: the machine, not the user or the provider.
        _ => ErrorCode::Internal,
    }
}

fn op_code(error: &OpError) -> ErrorCode {
    match error {
        OpError::Store(e) => store_code(e),
        OpError::Refresh(e) => refresh_code(e),
        OpError::Connect(ConnectError::Flow(e)) => flow_code(e),
        OpError::Connect(ConnectError::Store(e)) => store_code(e),
        OpError::Credentials(CredentialsError::Store(e)) => store_code(e),
        OpError::Provider(ProviderError::Unknown(_)) => ErrorCode::NotFound,
        OpError::Discovery(DiscoveryError::Fetch { .. }) => ErrorCode::ProviderUnreachable,
        OpError::Discovery(DiscoveryError::Status { status, .. }) if *status >= 500 => ErrorCode::ProviderUnreachable,
        OpError::Config(ConfigError::Io { .. }) | OpError::Catalog(CatalogError::Config(ConfigError::Io { .. })) => {
            ErrorCode::Internal
        }
        OpError::Provider(_)
        | OpError::Discovery(_)
        | OpError::Config(_)
        | OpError::Catalog(_)
        | OpError::Invalid(_)
        | OpError::Credentials(_) => ErrorCode::Invalid,
        _ => ErrorCode::Internal,
    }
}

fn refresh_code(error: &RefreshError) -> ErrorCode {
    match error {
        RefreshError::NotFound(_) | RefreshError::Disconnected { .. } => ErrorCode::NotFound,
        RefreshError::NeedsReconnect { .. } => ErrorCode::NeedsReconnect,
        // Transient: network, timeout, 5xx, 429. The engine retries by itself.
        RefreshError::Retrying { .. } => ErrorCode::ProviderUnreachable,
        RefreshError::Failed { .. } => ErrorCode::ProviderRejected,
        RefreshError::Store(e) => store_code(e),
        _ => ErrorCode::Internal,
    }
}

impl From<OpError> for CommandError {
    fn from(error: OpError) -> Self {
        Self::from_display(op_code(&error), &error)
    }
}

impl From<RefreshError> for CommandError {
    fn from(error: RefreshError) -> Self {
        Self::from_display(refresh_code(&error), &error)
    }
}

impl From<StoreError> for CommandError {
    fn from(error: StoreError) -> Self {
        Self::from_display(store_code(&error), &error)
    }
}

impl From<KeyError> for CommandError {
    fn from(error: KeyError) -> Self {
        Self::from_display(key_code(&error), &error)
    }
}

impl From<ProviderError> for CommandError {
    fn from(error: ProviderError) -> Self {
        OpError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use tokenkeep_core::http::HttpError;
    use tokenkeep_core::secret::KeyId;
    use tokenkeep_core::store::ConnectionId;

    use super::*;

    fn code_and_message(error: impl Into<CommandError> + std::fmt::Display) -> (ErrorCode, String, String) {
        let shown = error.to_string();
        let mapped = error.into();
        (mapped.code, mapped.message, shown)
    }

    fn flow(error: FlowError) -> OpError {
        OpError::Connect(ConnectError::Flow(error))
    }

    fn demo() -> tokenkeep_core::provider::ProviderId {
        tokenkeep_core::provider::ProviderId::parse("demo").unwrap()
    }

    #[test]
    fn every_error_family_maps_to_its_documented_code_with_core_s_message() {
        let key_id = KeyId::from_bytes([7; 8]);
        let id = ConnectionId::from_bytes([1; 16]);
        let http = || HttpError::Unreachable {
            host: "idp.example".into(),
            reason: "connection refused".into(),
        };
        let cases: Vec<(ErrorCode, String, String)> = vec![
            code_and_message(flow(FlowError::Declined("Demo".into()))),
            code_and_message(flow(FlowError::Timeout(Duration::from_secs(300)))),
            code_and_message(flow(FlowError::TokenEndpoint {
                provider: "Demo".into(),
                source: http(),
            })),
            code_and_message(flow(FlowError::TokenRejected {
                provider: "Demo".into(),
                error: "invalid_grant".into(),
                description: None,
            })),
            code_and_message(RefreshError::NeedsReconnect {
                provider: demo(),
                account: "alice".into(),
                reason: "invalid_grant".into(),
            }),
            code_and_message(RefreshError::NotFound(id)),
            code_and_message(RefreshError::Retrying {
                provider: demo(),
                account: "alice".into(),
                reason: "network".into(),
                retry_in: Duration::from_secs(30),
            }),
            code_and_message(RefreshError::Failed {
                provider: demo(),
                account: "alice".into(),
                reason: "invalid_client".into(),
            }),
            code_and_message(OpError::Invalid("the client id is empty".into())),
            code_and_message(OpError::Credentials(CredentialsError::NotReady(
                "YouTube needs a client id".into(),
            ))),
            code_and_message(OpError::Discovery(DiscoveryError::Fetch {
                url: "https://idp.example/.well-known/openid-configuration".into(),
                source: http(),
            })),
            code_and_message(KeyError::Locked {
                detail: "prompt dismissed".into(),
            }),
            code_and_message(KeyError::NoSessionBus {
                detail: "no bus".into(),
            }),
            code_and_message(KeyError::NoSecretService {
                detail: "ServiceUnknown".into(),
            }),
            code_and_message(StoreError::Key(KeyError::KeyMissing {
                profile: "dev".into(),
                key_id,
            })),
            code_and_message(StoreError::WrongKey {
                expected: key_id,
                found: KeyId::from_bytes([8; 8]),
            }),
            code_and_message(StoreError::Locked {
                path: PathBuf::from("/tmp/store"),
                holder: None,
            }),
            code_and_message(StoreError::MetaDamaged {
                reason: "no key id".into(),
            }),
        ];
        let codes: Vec<ErrorCode> = cases.iter().map(|(code, _, _)| *code).collect();
        use ErrorCode::*;
        assert_eq!(
            codes,
            [
                Declined,
                Timeout,
                ProviderUnreachable,
                ProviderRejected,
                NeedsReconnect,
                NotFound,
                ProviderUnreachable,
                ProviderRejected,
                Invalid,
                Invalid,
                ProviderUnreachable,
                KeyringLocked,
                KeyringUnavailable,
                KeyringUnavailable,
                KeyMissing,
                WrongKey,
                StoreLocked,
                Store,
            ]
        );
        for (code, message, shown) in &cases {
            assert_eq!(message, shown, "{code:?}: the message is core's Display, unchanged");
        }
    }

    #[test]
    fn a_missing_client_secret_is_invalid_input_not_an_internal_error() {
        let error = OpError::Credentials(CredentialsError::MissingClientSecret {
            provider: "Twitch".into(),
            id: tokenkeep_core::provider::ProviderId::parse("twitch").unwrap(),
        });
        assert_eq!(CommandError::from(error).code, ErrorCode::Invalid);
        let unknown = ProviderError::Unknown("nope".into());
        assert_eq!(CommandError::from(unknown).code, ErrorCode::NotFound);
    }

    #[test]
    fn serializes_as_code_and_message_with_snake_case_codes() {
        let json = serde_json::to_value(CommandError::busy()).unwrap();
        assert_eq!(json["code"], "busy");
        assert!(json["message"].as_str().unwrap().contains("already in progress"));
        assert_eq!(json.as_object().unwrap().len(), 2);
        let codes = [
            (ErrorCode::KeyringLocked, "keyring_locked"),
            (ErrorCode::KeyringUnavailable, "keyring_unavailable"),
            (ErrorCode::ProviderUnreachable, "provider_unreachable"),
            (ErrorCode::NeedsReconnect, "needs_reconnect"),
            (ErrorCode::NotFound, "not_found"),
        ];
        for (code, name) in codes {
            assert_eq!(serde_json::to_value(code).unwrap(), name);
        }
    }
}
