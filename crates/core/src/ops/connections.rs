//! Reading what is stored, offline: list, show (with an explicit reveal), verify, export of the sealed envelopes.
//! Nothing here goes to the network or changes a record.

use serde::{Deserialize, Serialize};

use super::wire::{self, ApiError, Line, Reply, plain_reply};
use super::{LocalOps, Op, OpError, jwt};
use crate::secret::{KeyId, SecretString};
use crate::store::{ConnectionId, ConnectionMeta, RecordProblem, StoreError, TokenKind, TokenSet, Vault};

/// Every connection, ordered by provider then account (damaged records last, by id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct List {}

/// One connection in detail; with `reveal`, also the values of its stored tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Show {
    /// An id (32 hex digits) or `provider:account`.
    pub connection: String,
    /// Also return the stored token values (the person asked to see them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reveal: bool,
}

/// Opens every sealed record and reports the damaged ones (their presence is data, not an error).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verify {}

/// Every sealed record with the AAD it is bound to, for audits and independent decryption. Decrypts nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportEnvelopes {}

/// A connection's account picture, as stored at connect (never fetched here: reading stays offline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Picture {
    /// An id, an id prefix, an account or `provider:account`.
    pub connection: String,
}

/// A stored account picture: its media type (sniffed from its bytes when it was fetched) and its bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPicture {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub media_type: String,
    /// Its fingerprint (as the connection's metadata names it).
    pub tag: String,
    /// The image.
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for StoredPicture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPicture")
            .field("media_type", &self.media_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// One connection as listed: its metadata, or why its record cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEntry {
    /// The connection id.
    pub id: ConnectionId,
    /// The metadata, or what is wrong with its record, in words.
    pub meta: Result<ConnectionMeta, String>,
}

/// One token of a connection as [`Show`] describes it: never its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInspection {
    /// Which token.
    pub kind: TokenKind,
    /// Its length in bytes, or `None` when the connection has no token of this kind.
    pub length: Option<usize>,
    /// Its header and claims, when it is a JWT. The signature is neither checked nor returned.
    pub jwt: Option<JwtParts>,
}

impl TokenInspection {
    /// Whether the connection has a token of this kind.
    pub fn is_present(&self) -> bool {
        self.length.is_some()
    }
}

/// The decoded header and claims of a JWT (RFC 7519): what a person may read in a token without being able to
/// reuse it, since the signature is left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtParts {
    /// The JOSE header (`alg`, `kid`, `typ`, …).
    pub header: serde_json::Map<String, serde_json::Value>,
    /// The claims (`iss`, `sub`, `exp`, …).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// Everything known about a connection except its token bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    /// The connection.
    pub id: ConnectionId,
    /// Its metadata.
    pub meta: ConnectionMeta,
    /// The id of the master key the store is sealed with.
    pub key_id: KeyId,
    /// One entry per [`TokenKind`], in [`TokenKind::ALL`] order, present or not.
    pub tokens: Vec<TokenInspection>,
    /// The key the tokens are bound to, when they are (DPoP): its public description, never the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<KeyBinding>,
}

/// What a connection's tokens are bound to (RFC 9449): shown as "bound to a key (DPoP, ES256, thumbprint …)".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBinding {
    /// The binding's mechanism: `DPoP`.
    pub method: String,
    /// The proof algorithm: `ES256`.
    pub alg: String,
    /// The public key's RFC 7638 SHA-256 thumbprint (base64url): what the platform's `cnf.jkt` names.
    pub thumbprint: String,
}

impl KeyBinding {
    /// "bound to a key (DPoP, ES256, thumbprint …)".
    pub fn describe(&self) -> String {
        format!(
            "bound to a key ({}, {}, thumbprint {})",
            self.method, self.alg, self.thumbprint
        )
    }
}

/// A stored token value the person asked to see. Not `Serialize`; `Debug` is redacted.
#[derive(Debug)]
pub struct RevealedToken {
    /// Which token.
    pub kind: TokenKind,
    /// The value.
    pub value: SecretString,
}

/// What [`Show`] returns: the description, and the token values when they were asked for.
#[derive(Debug)]
pub struct Shown {
    /// The description (no token bytes).
    pub inspection: Inspection,
    /// The values of the stored tokens, in [`TokenKind::ALL`] order, when revealed; empty otherwise.
    pub revealed: Vec<RevealedToken>,
}

impl Shown {
    /// The revealed value of `kind`, if it was revealed.
    pub fn revealed(&self, kind: TokenKind) -> Option<&SecretString> {
        self.revealed.iter().find(|r| r.kind == kind).map(|r| &r.value)
    }
}

/// What [`Verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Sealed records checked.
    pub records: usize,
    /// The store's key id.
    pub key_id: KeyId,
    /// The damaged records.
    pub problems: Vec<Problem>,
}

/// One damaged record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The tree.
    pub tree: String,
    /// The record id (hex).
    pub record: String,
    /// The field.
    pub field: String,
    /// What is wrong, in words.
    pub problem: String,
}

impl From<&RecordProblem> for Problem {
    fn from(p: &RecordProblem) -> Self {
        Self {
            tree: p.tree.clone(),
            record: p.record.clone(),
            field: p.field.clone(),
            problem: p.error.to_string(),
        }
    }
}

/// One sealed record as it is stored: where it lives, the AAD it is bound to and its envelope — no plaintext.
/// Enough for an independent decoder with the master key (`docs/FORMAT.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedEnvelope {
    /// The profile (part of the AAD).
    pub profile: String,
    /// The tree.
    pub tree: String,
    /// The record id (16 bytes).
    pub record_id: ConnectionId,
    /// The field.
    pub field: String,
    /// The key id in the envelope's header, when the header is readable.
    pub key_id: Option<KeyId>,
    /// The AAD the envelope is bound to (`None` when its header is unreadable).
    #[serde(with = "base64_opt")]
    pub aad: Option<Vec<u8>>,
    /// The envelope bytes as stored.
    #[serde(with = "base64_bytes")]
    pub envelope: Vec<u8>,
}

plain_reply!(
    Vec<ConnectionEntry>,
    Inspection,
    VerifyReport,
    Vec<ExportedEnvelope>,
    Option<StoredPicture>
);

impl Op for Picture {
    type Output = Option<StoredPicture>;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        local
            .blocking(move |vault| {
                let id = find_connection(vault, &self.connection)?;
                Ok(vault.picture(id)?.map(|picture| StoredPicture {
                    media_type: picture.kind().media_type().to_owned(),
                    tag: picture.tag(),
                    bytes: picture.bytes().to_vec(),
                }))
            })
            .await
    }
}

impl Op for List {
    type Output = Vec<ConnectionEntry>;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        local.blocking(list).await
    }
}

impl Op for Show {
    type Output = Shown;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        if self.reveal {
            // Who asked for what, never the values.
            tracing::info!("revealing stored token values, as asked");
        }
        local
            .blocking(move |vault| {
                let id = find_connection(vault, &self.connection)?;
                let tokens = vault.tokens(id)?;
                let inspection = inspect(vault, id, &tokens)?;
                let revealed = if self.reveal {
                    // Moved out of the token set, not copied: each value exists once, zeroized when dropped.
                    // The DPoP key is never revealed: it proves possession, and a copy would undo the binding.
                    let TokenSet {
                        access,
                        refresh,
                        id_token,
                        dpop_key: _,
                    } = tokens;
                    [
                        (TokenKind::Access, Some(access)),
                        (TokenKind::Refresh, refresh),
                        (TokenKind::Id, id_token),
                    ]
                    .into_iter()
                    .filter_map(|(kind, value)| value.map(|value| RevealedToken { kind, value }))
                    .collect()
                } else {
                    Vec::new()
                };
                Ok(Shown { inspection, revealed })
            })
            .await
    }
}

impl Op for Verify {
    type Output = VerifyReport;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        local
            .blocking(|vault| {
                let records = vault.raw_records()?.len();
                let problems = vault.verify()?;
                Ok(VerifyReport {
                    records,
                    key_id: vault.key_id(),
                    problems: problems.iter().map(Problem::from).collect(),
                })
            })
            .await
    }
}

impl Op for ExportEnvelopes {
    type Output = Vec<ExportedEnvelope>;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        let profile = local.paths().profile().as_str().to_owned();
        local.blocking(move |vault| export_envelopes(vault, &profile)).await
    }
}

/// Every connection, ordered by provider then account (damaged records last, by id).
pub(super) fn list(vault: &Vault) -> Result<Vec<ConnectionEntry>, OpError> {
    let mut entries: Vec<ConnectionEntry> = vault
        .list()?
        .into_iter()
        .map(|(id, meta)| ConnectionEntry {
            id,
            meta: meta.map_err(|error| error.to_string()),
        })
        .collect();
    entries.sort_by(|a, b| match (&a.meta, &b.meta) {
        (Ok(x), Ok(y)) => {
            (&x.provider, x.account.to_lowercase(), a.id).cmp(&(&y.provider, y.account.to_lowercase(), b.id))
        }
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.id.cmp(&b.id),
    });
    Ok(entries)
}

/// One way of naming a connection: whether a connection (its id, and its metadata when readable) matches.
type NameForm<'a> = dyn Fn(&ConnectionId, Option<&ConnectionMeta>) -> bool + 'a;

/// The shortest id prefix [`find_connection`] accepts (shorter ones match too much to be meant).
const MIN_ID_PREFIX: usize = 4;

/// Finds a connection the way a person names it: its id (32 hex digits) or an unambiguous prefix of it (at least
/// four), `provider:account`, or the account alone when only one provider has it (accounts compared without
/// case). The most precise form that matches wins; when several connections match it, the error lists them.
pub(super) fn find_connection(vault: &Vault, query: &str) -> Result<ConnectionId, OpError> {
    if let Ok(id) = query.parse::<ConnectionId>() {
        return match vault.get_meta(id) {
            Ok(_) | Err(StoreError::Record { .. }) => Ok(id),
            Err(e) => Err(e.into()),
        };
    }
    let entries = vault.list()?;
    let lower = query.to_ascii_lowercase();
    let id_prefix = query.len() >= MIN_ID_PREFIX && query.bytes().all(|b| b.is_ascii_hexdigit());
    let by_provider_account = |_: &ConnectionId, meta: Option<&ConnectionMeta>| {
        query.split_once(':').zip(meta).is_some_and(|((provider, account), m)| {
            m.provider.as_str() == provider && m.account.eq_ignore_ascii_case(account)
        })
    };
    let by_account =
        |_: &ConnectionId, meta: Option<&ConnectionMeta>| meta.is_some_and(|m| m.account.eq_ignore_ascii_case(query));
    let by_id_prefix = |id: &ConnectionId, _: Option<&ConnectionMeta>| id_prefix && id.to_hex().starts_with(&lower);
    // The most precise form first.
    let forms: [&NameForm<'_>; 3] = [&by_provider_account, &by_account, &by_id_prefix];
    for matches in forms {
        let found: Vec<_> = entries
            .iter()
            .filter(|(id, meta)| matches(id, meta.as_ref().ok()))
            .collect();
        match found.as_slice() {
            [] => {}
            [(id, _)] => return Ok(*id),
            many => {
                let listed: Vec<String> = many
                    .iter()
                    .map(|(id, meta)| match meta {
                        Ok(m) => format!("  {}:{} ({})", m.provider, m.account, &id.to_hex()[..8]),
                        Err(_) => format!("  {} (damaged record)", id.to_hex()),
                    })
                    .collect();
                return Err(OpError::Invalid(format!(
                    "{query:?} matches {} connections:\n{}\nname one as provider:account, or by its id (a prefix of \
                     at least {MIN_ID_PREFIX} digits is enough)",
                    many.len(),
                    listed.join("\n")
                )));
            }
        }
    }
    Err(OpError::Invalid(format!(
        "no connection {query:?}: name one by its id (or a prefix of at least {MIN_ID_PREFIX} digits), as \
         provider:account, or by its account; see `tokenkeep list`"
    )))
}

/// Describes connection `id` for a person: its metadata, which tokens it holds and how long they are, and the
/// header and claims of those that are JWTs. No token byte leaves this function.
fn inspect(vault: &Vault, id: ConnectionId, tokens: &TokenSet) -> Result<Inspection, OpError> {
    let meta = vault.get_meta(id)?;
    let tokens_of = tokens;
    let tokens = TokenKind::ALL
        .into_iter()
        .map(|kind| {
            let token = tokens.get(kind);
            TokenInspection {
                kind,
                length: token.map(SecretString::len),
                jwt: token.and_then(|t| jwt::decode(t.dangerously_expose())),
            }
        })
        .collect();
    let binding = tokens_of.dpop_key.as_ref().map(|key| KeyBinding {
        method: crate::dpop::DPOP.to_owned(),
        alg: crate::dpop::ALG.to_owned(),
        thumbprint: key.thumbprint().to_owned(),
    });
    Ok(Inspection {
        id,
        meta,
        key_id: vault.key_id(),
        tokens,
        binding,
    })
}

/// The stored token of `kind` of connection `id`, even when it has expired.
pub(super) fn reveal(vault: &Vault, id: ConnectionId, kind: TokenKind) -> Result<SecretString, OpError> {
    let tokens = vault.tokens(id)?;
    let token = match kind {
        TokenKind::Access => Some(tokens.access),
        TokenKind::Refresh => tokens.refresh,
        TokenKind::Id => tokens.id_token,
    };
    token.ok_or_else(|| {
        OpError::Invalid(format!(
            "this connection has no {}: the provider did not issue one",
            kind.field().replace('_', " ")
        ))
    })
}

fn export_envelopes(vault: &Vault, profile: &str) -> Result<Vec<ExportedEnvelope>, OpError> {
    Ok(vault
        .raw_records()?
        .into_iter()
        .map(|raw| {
            let header = crate::envelope::peek_header(&raw.envelope).ok();
            let aad = header.map(|h| {
                crate::envelope::aad(
                    &crate::envelope::RecordLocation {
                        profile,
                        tree: &raw.tree,
                        record_id: raw.record_id.as_bytes(),
                        field: &raw.field,
                    },
                    &h,
                )
            });
            ExportedEnvelope {
                profile: profile.to_owned(),
                tree: raw.tree,
                record_id: raw.record_id,
                field: raw.field,
                key_id: header.map(|h| h.key_id),
                aad,
                envelope: raw.envelope,
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------------------------
// `Shown` on the wire: the one reply besides the access token that carries token bytes.
// ---------------------------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ShownOut<'a> {
    inspection: &'a Inspection,
    revealed: Vec<RevealedOut<'a>>,
}

#[derive(Serialize)]
struct RevealedOut<'a> {
    kind: TokenKind,
    value: &'a str,
}

#[derive(Deserialize)]
struct ShownIn {
    inspection: Inspection,
    revealed: Vec<RevealedIn>,
}

#[derive(Deserialize)]
struct RevealedIn {
    kind: TokenKind,
    value: String,
}

impl Reply for Shown {
    fn encode(&self) -> Line {
        wire::ok(&ShownOut {
            inspection: &self.inspection,
            revealed: self
                .revealed
                .iter()
                .map(|r| RevealedOut {
                    kind: r.kind,
                    value: r.value.dangerously_expose(),
                })
                .collect(),
        })
    }

    fn decode(line: &[u8]) -> Result<Self, ApiError> {
        let shown: ShownIn = wire::parse_ok(line)?;
        Ok(Self {
            inspection: shown.inspection,
            revealed: shown
                .revealed
                .into_iter()
                .map(|r| RevealedToken {
                    kind: r.kind,
                    value: SecretString::new(r.value),
                })
                .collect(),
        })
    }
}

/// Bytes as standard base64 on the wire (envelopes are binary; JSON arrays of numbers would be four times larger).
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

mod base64_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::base64_bytes::serialize(bytes, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
        use base64::Engine as _;
        Option::<String>::deserialize(deserializer)?
            .map(|text| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::keys::KeySource;
    use crate::profile::{Profile, ProfilePaths};
    use crate::provider::ProviderId;
    use crate::secret::MasterKey;

    fn add(vault: &Vault, provider: &str, account: &str) -> ConnectionId {
        let tokens = TokenSet {
            access: SecretString::new(format!("access-{provider}-{account}")),
            refresh: None,
            id_token: None,
            dpop_key: None,
        };
        let meta = ConnectionMeta::new(ProviderId::parse(provider).unwrap(), account);
        vault.put_connection(meta, &tokens).unwrap()
    }

    /// A person names a connection by id, id prefix, `provider:account` or the account alone; an ambiguous name
    /// lists the candidates, and a name that matches nothing says which forms work.
    #[test]
    fn connections_are_found_by_any_unambiguous_name() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = ProfilePaths::resolve(Profile::parse("dev").unwrap(), Some(tmp.path().to_owned())).unwrap();
        let key = KeySource::Headless(MasterKey::generate().unwrap());
        let vault = Vault::open(&paths, key, Arc::new(SystemClock), "test").unwrap();
        let demo_alice = add(&vault, "demo", "alice@example.test");
        let google_alice = add(&vault, "google", "Alice@Example.test");
        let bob = add(&vault, "demo", "bob");

        let find = |query: &str| find_connection(&vault, query);
        assert_eq!(find(&bob.to_hex()).unwrap(), bob);
        assert_eq!(find(&bob.to_hex()[..8]).unwrap(), bob);
        assert_eq!(find(&bob.to_hex()[..8].to_uppercase()).unwrap(), bob);
        assert_eq!(find("demo:ALICE@example.test").unwrap(), demo_alice);
        assert_eq!(find("google:alice@example.test").unwrap(), google_alice);
        assert_eq!(find("BOB").unwrap(), bob);

        let ambiguous = find("alice@example.test").unwrap_err().to_string();
        assert!(ambiguous.contains("matches 2 connections"), "{ambiguous}");
        assert!(ambiguous.contains("demo:alice@example.test"), "{ambiguous}");
        assert!(ambiguous.contains("google:Alice@Example.test"), "{ambiguous}");
        assert!(ambiguous.contains(&google_alice.to_hex()[..8]), "{ambiguous}");

        // Too short to be meant as an id, and no account of that name.
        let short = find(&bob.to_hex()[..3]).unwrap_err().to_string();
        assert!(short.starts_with("no connection"), "{short}");
        assert!(short.contains("provider:account"), "{short}");
        let nobody = find("demo:nobody").unwrap_err().to_string();
        assert!(nobody.starts_with("no connection \"demo:nobody\""), "{nobody}");
    }
}
