//! Secret-holding types: the master key, its public [`KeyId`], and secret bytes and strings.
//!
//! Every secret type here defends itself: its `Debug` prints `<redacted>`, it cannot be serialized, it is not
//! `Copy` or `Clone`, it is zeroized when dropped, and its bytes are reachable only through a method whose name
//! starts with `dangerously_`, so a leak is visible in review. Heap-backed storage (a `Box` or `Vec`) keeps the
//! bytes at one address, so moving a value does not leave stale copies on the stack.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use hkdf::Hkdf;
use sha2::{Sha256, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// Length in bytes of a [`MasterKey`].
pub const MASTER_KEY_LEN: usize = 32;
/// Length in bytes of a [`KeyId`].
pub const KEY_ID_LEN: usize = 8;
/// HKDF `info` label from which a [`KeyId`] is derived (see `docs/FORMAT.md`).
const KEY_ID_INFO: &[u8] = b"tokenkeep/v1/key-id";

/// Why key material could not be made. (`crypto::CryptoError` converts from it: this module sits below the
/// cipher and knows nothing of it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyMaterialError {
    /// The operating system's random number generator failed.
    #[error("the operating system could not provide random bytes; retry, and report this if it persists")]
    Rng,
    /// Key material of the wrong length was supplied.
    #[error("invalid key length: expected {expected} bytes, got {actual}")]
    Length {
        /// The required length in bytes.
        expected: usize,
        /// The length that was supplied.
        actual: usize,
    },
}

/// The cached record-key HKDF ([`MasterKey::record_kdf`]) is a keyed HMAC state: its secret part is the two
/// SHA-512 states keyed with the inner and outer pads, which must wipe themselves when dropped (`sha2`'s `zeroize`
/// feature; `hmac` adds no zeroizing of its own, and its buffer holds only the public `info`).
const _: fn() = wipes_itself::<sha2::block_api::Sha512VarCore>;
const fn wipes_itself<T: zeroize::ZeroizeOnDrop>() {}

/// The 32-byte master key from which every record key is derived.
///
/// Not `Copy`, `Clone` or `Serialize`; zeroized on drop; `Debug` shows only its public [`KeyId`].
pub struct MasterKey {
    // IMPORTANT: boxed so that moving a `MasterKey` moves a pointer, never the key bytes.
    bytes: Box<Zeroizing<[u8; MASTER_KEY_LEN]>>,
    id: KeyId,
    /// The record keys' HKDF with its extract step done (see [`Self::record_kdf`]). It is as secret as the key:
    /// boxed, never copied out, and zeroized on drop with it (`hmac`'s and `sha2`'s `zeroize` features).
    record_kdf: OnceLock<Box<Hkdf<Sha512>>>,
}

impl MasterKey {
    /// Generates a fresh key from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`KeyMaterialError::Rng`] if the operating system cannot provide random bytes.
    pub fn generate() -> Result<Self, KeyMaterialError> {
        let mut bytes = Box::new(Zeroizing::new([0u8; MASTER_KEY_LEN]));
        getrandom::fill(&mut bytes[..]).map_err(|_| KeyMaterialError::Rng)?;
        Ok(Self::from_boxed(bytes))
    }

    /// Takes ownership of `bytes` and zeroizes this function's copy of them.
    ///
    /// Arrays are `Copy`, so the caller remains responsible for any copy it keeps.
    pub fn from_bytes(mut bytes: [u8; MASTER_KEY_LEN]) -> Self {
        let mut boxed = Box::new(Zeroizing::new([0u8; MASTER_KEY_LEN]));
        boxed.copy_from_slice(&bytes);
        bytes.zeroize();
        Self::from_boxed(boxed)
    }

    /// Copies a key out of a slice (for example one read from the OS keyring).
    ///
    /// # Errors
    /// [`KeyMaterialError::Length`] unless `bytes` is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyMaterialError> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(KeyMaterialError::Length {
                expected: MASTER_KEY_LEN,
                actual: bytes.len(),
            });
        }
        let mut boxed = Box::new(Zeroizing::new([0u8; MASTER_KEY_LEN]));
        boxed.copy_from_slice(bytes);
        Ok(Self::from_boxed(boxed))
    }

    fn from_boxed(bytes: Box<Zeroizing<[u8; MASTER_KEY_LEN]>>) -> Self {
        let id = KeyId::derive(&bytes);
        Self {
            bytes,
            id,
            record_kdf: OnceLock::new(),
        }
    }

    /// The public identifier of this key (computed once, when the key is created).
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The raw key bytes. Use only to hand the key to the keyring or the key-derivation function.
    pub fn dangerously_expose_bytes(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.bytes
    }

    /// The HKDF from which every record key is expanded, made by `extract` from this key the first time and kept
    /// with the key. HKDF-Extract gives the same pseudorandom key for every record, and each record then needs
    /// only its own Expand: a refresh opens and seals about ten records, and each derivation costs half as
    /// many SHA-512 blocks. `envelope` is the one caller, and always passes the same `extract`.
    pub(crate) fn record_kdf(&self, extract: impl FnOnce(&[u8; MASTER_KEY_LEN]) -> Hkdf<Sha512>) -> &Hkdf<Sha512> {
        self.record_kdf.get_or_init(|| Box::new(extract(&self.bytes)))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(<redacted>, id={})", self.id)
    }
}

/// Public 8-byte identifier of a [`MasterKey`]; safe to store, log and show.
///
/// It is the first 8 bytes of HKDF-SHA-256(ikm = master key, salt = empty, info = `"tokenkeep/v1/key-id"`).
/// Being a one-way function of the key, it reveals nothing usable about it, yet tells which key sealed a record.
/// `Debug` and `Display` print 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct KeyId([u8; KEY_ID_LEN]);

impl From<KeyId> for String {
    fn from(id: KeyId) -> Self {
        id.to_hex()
    }
}

impl TryFrom<String> for KeyId {
    type Error = InvalidKeyId;

    fn try_from(hex: String) -> Result<Self, Self::Error> {
        Self::from_hex(&hex)
    }
}

impl KeyId {
    fn derive(master: &[u8; MASTER_KEY_LEN]) -> Self {
        let mut id = [0u8; KEY_ID_LEN];
        Hkdf::<Sha256>::new(None, master)
            .expand(KEY_ID_INFO, &mut id)
            .expect("8 bytes is far below HKDF-SHA-256's output limit");
        Self(id)
    }

    /// Wraps raw identifier bytes, for example read from an envelope header.
    pub const fn from_bytes(bytes: [u8; KEY_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw identifier bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }

    /// 16 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 16 hex digits (either case).
    ///
    /// # Errors
    /// [`InvalidKeyId`] if `s` is not exactly 16 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, InvalidKeyId> {
        let mut id = [0u8; KEY_ID_LEN];
        hex::decode_to_slice(s, &mut id).map_err(|_| InvalidKeyId)?;
        Ok(Self(id))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for KeyId {
    type Err = InvalidKeyId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

/// A key identifier that is not 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid key id: expected 16 hex digits, as printed by Tokenkeep (for example \"3f2a9c0d11e45b70\")")]
pub struct InvalidKeyId;

/// Secret bytes, such as a decrypted token: `Debug` prints `<redacted>`, zeroized on drop.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are zeroized when the value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes. Keep the borrow short and do not copy them into unprotected storage.
    pub fn dangerously_expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of secret bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no secret bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret UTF-8 string, such as an access token, refresh token or client secret: `Debug` prints `<redacted>`,
/// zeroized on drop.
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Takes ownership of `s`; it is zeroized when the value is dropped.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The secret text. Keep the borrow short and do not copy it into unprotected storage.
    pub fn dangerously_expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// Secret bytes that are not valid UTF-8. Deliberately carries neither the bytes nor the position of the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the secret is not valid UTF-8 text: it may be damaged; store it again")]
pub struct NotUtf8;

impl TryFrom<SecretBytes> for SecretString {
    type Error = NotUtf8;

    fn try_from(mut secret: SecretBytes) -> Result<Self, Self::Error> {
        // Moves the buffer out (a pointer move, no copy); the emptied `Zeroizing` drops harmlessly.
        let bytes = std::mem::take(&mut *secret.0);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Self::new(s)),
            Err(e) => {
                // The rejected bytes are still secret: wipe them instead of returning them.
                drop(Zeroizing::new(e.into_bytes()));
                Err(NotUtf8)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_00_1f() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    /// Every way a byte string might show up in a debug dump.
    fn renderings(secret: &[u8]) -> Vec<String> {
        let mut out = vec![
            hex::encode(secret),
            hex::encode_upper(secret),
            format!("{secret:?}"),
            format!("{secret:x?}"),
            String::from_utf8_lossy(secret).into_owned(),
        ];
        // Any 4-byte window, in hex and as Rust would list it in decimal.
        for w in secret.windows(4) {
            out.push(hex::encode(w));
            out.push(format!("{w:?}").trim_matches(['[', ']']).to_owned());
        }
        out
    }

    fn assert_no_leak(debug: &str, secret: &[u8]) {
        for r in renderings(secret) {
            assert!(!debug.contains(&r), "{debug:?} leaks {r:?}");
        }
    }

    #[test]
    fn master_key_debug_shows_only_the_id() {
        let bytes = key_00_1f();
        let key = MasterKey::from_bytes(bytes);
        let id = key.id().to_hex();
        for debug in [format!("{key:?}"), format!("{key:#?}")] {
            assert_eq!(debug, format!("MasterKey(<redacted>, id={id})"));
            assert_no_leak(&debug.replace(&id, ""), &bytes);
        }
    }

    #[test]
    fn secret_bytes_and_string_debug_are_redacted() {
        let token = "ya29.a0AfH6SMBx-very-secret-token";
        let bytes = SecretBytes::new(token.as_bytes().to_vec());
        let string = SecretString::from(token.to_owned());
        for debug in [
            format!("{bytes:?}"),
            format!("{string:#?}"),
            format!("{:?}", Some(&bytes)),
        ] {
            assert!(debug.contains("<redacted>"), "{debug}");
            assert_no_leak(&debug, token.as_bytes());
        }
        assert_eq!(format!("{bytes:?}"), "<redacted>");
        assert_eq!(format!("{string:?}"), "<redacted>");
    }

    #[test]
    fn key_id_is_pinned_for_key_00_to_1f() {
        // Computed once from the definition (HKDF-SHA-256, empty salt, info "tokenkeep/v1/key-id") and pinned:
        // changing it would orphan every stored record, so this must never change.
        let key = MasterKey::from_bytes(key_00_1f());
        assert_eq!(key.id().to_hex(), KEY_ID_00_1F);
        assert_eq!(key.id(), MasterKey::from_slice(&key_00_1f()).unwrap().id());
        assert_eq!(format!("{}", key.id()), KEY_ID_00_1F);
        assert_eq!(format!("{:?}", key.id()), format!("KeyId({KEY_ID_00_1F})"));
    }

    const KEY_ID_00_1F: &str = "a685478eaf2d261a";

    #[test]
    fn key_id_hex_round_trips_and_rejects_junk() {
        let id = MasterKey::from_bytes([7; 32]).id();
        assert_eq!(KeyId::from_hex(&id.to_hex()), Ok(id));
        assert_eq!(KeyId::from_hex(&id.to_hex().to_uppercase()), Ok(id));
        assert_eq!(id.to_hex().parse::<KeyId>(), Ok(id));
        assert_eq!(KeyId::from_bytes(*id.as_bytes()), id);
        for junk in ["", "00", "0011223344556677 ", "001122334455667788", "zz11223344556677"] {
            assert_eq!(KeyId::from_hex(junk), Err(InvalidKeyId), "{junk:?}");
        }
    }

    #[test]
    fn from_slice_rejects_wrong_lengths() {
        for len in [0, 1, 16, 31, 33, 64] {
            let err = MasterKey::from_slice(&vec![0xa5; len]).unwrap_err();
            assert!(
                matches!(err, KeyMaterialError::Length { expected: 32, actual } if actual == len),
                "{len}: {err:?}"
            );
        }
        let key = MasterKey::from_slice(&key_00_1f()).unwrap();
        assert_eq!(key.dangerously_expose_bytes(), &key_00_1f());
    }

    #[test]
    fn generated_keys_differ() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        assert_ne!(a.dangerously_expose_bytes(), b.dangerously_expose_bytes());
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn secret_string_from_bytes_checks_utf8_without_leaking() {
        let s = SecretString::try_from(SecretBytes::new(b"refresh-token".to_vec())).unwrap();
        assert_eq!(s.dangerously_expose(), "refresh-token");
        assert_eq!(s.len(), 13);

        let err = SecretString::try_from(SecretBytes::new(vec![b's', 0xff, 0xfe, b'k'])).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert_no_leak(&shown, &[0xff, 0xfe]);
        assert!(!shown.contains("255"), "{shown}");

        let empty = SecretBytes::new(Vec::new());
        assert!(empty.is_empty());
        assert!(SecretString::try_from(empty).unwrap().is_empty());
    }
}
