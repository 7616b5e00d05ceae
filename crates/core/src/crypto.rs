//! The authenticated cipher: AES_256_CBC_HMAC_SHA_512 exactly as RFC 7518 §5.2.2, built on RustCrypto primitives.
//!
//! CBC on its own is malleable and, with padding errors exposed, a decryption oracle. This module therefore
//! encrypts-then-MACs and, on the way back, verifies the tag in constant time *before* touching the ciphertext.
//! Every decryption failure — bad tag, bad length, bad padding — is the same [`CryptoError::Decrypt`], so a
//! caller (or an attacker watching it) learns nothing about which check failed. `docs/FORMAT.md` explains why.
//!
//! Construction (RFC 7518 §5.2.2.1, with the §5.2.6 parameters):
//! `K = MAC_KEY (32) ‖ ENC_KEY (32)`, `C = AES-256-CBC(ENC_KEY, IV, PKCS#7(P))`,
//! `T = HMAC-SHA-512(MAC_KEY, A ‖ IV ‖ C ‖ AL)[..32]` where `AL` is the bit length of `A` as a big-endian `u64`.

use std::fmt;

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha512;
use zeroize::Zeroizing;

use crate::secret::{KeyMaterialError, SecretBytes};

/// Length in bytes of an [`AeadKey`]: a 32-byte MAC key followed by a 32-byte encryption key.
pub const KEY_LEN: usize = 64;
/// Length in bytes of the CBC initialisation vector.
pub const IV_LEN: usize = 16;
/// Length in bytes of the authentication tag (HMAC-SHA-512 truncated to its first half).
pub const TAG_LEN: usize = 32;
/// AES block length; every ciphertext is a non-zero multiple of it.
pub const BLOCK_LEN: usize = 16;

const HALF: usize = KEY_LEN / 2;

/// Errors from the cipher and from key handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Decryption failed. Deliberately one coarse variant for every cause (wrong key, altered or truncated data,
    /// bad padding), so that no caller can be turned into a padding or tag oracle.
    #[error("could not decrypt: the data was altered, truncated, or sealed with another key")]
    Decrypt,
    /// The operating system's random number generator failed.
    #[error("the operating system could not provide random bytes; retry, and report this if it persists")]
    Rng,
    /// Key material of the wrong length was supplied.
    #[error("invalid key length: expected {expected} bytes, got {actual}")]
    KeyLength {
        /// The required length in bytes.
        expected: usize,
        /// The length that was supplied.
        actual: usize,
    },
}

impl From<KeyMaterialError> for CryptoError {
    fn from(error: KeyMaterialError) -> Self {
        match error {
            KeyMaterialError::Length { expected, actual } => Self::KeyLength { expected, actual },
            // `Rng`, and anything a later `secret` adds: no key could be made.
            _ => Self::Rng,
        }
    }
}

/// A 64-byte AES_256_CBC_HMAC_SHA_512 key (`MAC_KEY ‖ ENC_KEY`). Not `Clone`; zeroized on drop; `Debug` redacted.
pub struct AeadKey(Box<Zeroizing<[u8; KEY_LEN]>>);

impl AeadKey {
    /// Takes ownership of `bytes` and zeroizes this function's copy of them.
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let mut key = Self::zeroed();
        key.0.copy_from_slice(&bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        key
    }

    /// Copies a key out of a slice.
    ///
    /// # Errors
    /// [`CryptoError::KeyLength`] unless `bytes` is exactly 64 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::KeyLength {
                expected: KEY_LEN,
                actual: bytes.len(),
            });
        }
        let mut key = Self::zeroed();
        key.0.copy_from_slice(bytes);
        Ok(key)
    }

    /// An all-zero key to be filled in place (used by key derivation, which writes straight into it).
    pub(crate) fn zeroed() -> Self {
        Self(Box::new(Zeroizing::new([0u8; KEY_LEN])))
    }

    /// Mutable access for in-place key derivation.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }

    /// The raw key, for known-answer tests only.
    #[cfg(test)]
    pub(crate) fn dangerously_expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn mac_key(&self) -> &[u8] {
        &self.0[..HALF]
    }

    fn enc_key(&self) -> &[u8; HALF] {
        self.0[HALF..]
            .try_into()
            .expect("the second half of a 64-byte key is 32 bytes")
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

/// The public output of [`seal`]: all three parts are needed, with the same AAD, to [`open`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The random CBC initialisation vector.
    pub iv: [u8; IV_LEN],
    /// The ciphertext: PKCS#7-padded, so `16 * (plaintext.len() / 16 + 1)` bytes.
    pub ciphertext: Vec<u8>,
    /// The authentication tag over AAD, IV and ciphertext.
    pub tag: [u8; TAG_LEN],
}

/// Encrypts and authenticates `plaintext`, binding it to `aad`, under a fresh random IV.
///
/// # Errors
/// [`CryptoError::Rng`] if the operating system cannot provide an IV.
pub fn seal(key: &AeadKey, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
    // IMPORTANT: CBC needs an unpredictable IV, fresh for every message; never derive it from the data.
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut iv).map_err(|_| CryptoError::Rng)?;
    let (ciphertext, tag) = encrypt_with_iv(key, &iv, aad, plaintext);
    Ok(Sealed { iv, ciphertext, tag })
}

/// Verifies and decrypts. Every failure is [`CryptoError::Decrypt`].
///
/// # Errors
/// [`CryptoError::Decrypt`] if any input is malformed, altered, or was sealed with another key or AAD.
pub fn open(key: &AeadKey, aad: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> Result<SecretBytes, CryptoError> {
    // Lengths are public, so rejecting bad ones early reveals nothing.
    if iv.len() != IV_LEN
        || tag.len() != TAG_LEN
        || ciphertext.is_empty()
        || !ciphertext.len().is_multiple_of(BLOCK_LEN)
    {
        return Err(CryptoError::Decrypt);
    }
    let iv: &[u8; IV_LEN] = iv.try_into().map_err(|_| CryptoError::Decrypt)?;
    // IMPORTANT: authenticate before decrypting, in constant time. Nothing below runs on forged data, so the
    // padding check cannot become an oracle.
    mac(key, aad, iv, ciphertext)
        .verify_truncated_left(tag)
        .map_err(|_| CryptoError::Decrypt)?;

    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = cbc::Decryptor::<Aes256>::new(key.enc_key().into(), iv.into())
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| CryptoError::Decrypt)?
        .len();
    buf.truncate(len);
    // Moves the allocation out (no copy); the emptied `Zeroizing` drops harmlessly.
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}

/// Deterministic core of [`seal`] with a caller-chosen IV. Only for known-answer tests: reusing an IV, or
/// choosing a predictable one, breaks CBC's confidentiality.
pub(crate) fn encrypt_with_iv(
    key: &AeadKey,
    iv: &[u8; IV_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> (Vec<u8>, [u8; TAG_LEN]) {
    let ciphertext =
        cbc::Encryptor::<Aes256>::new(key.enc_key().into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plaintext);
    let full = mac(key, aad, iv, &ciphertext).finalize().into_bytes();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    (ciphertext, tag)
}

/// HMAC-SHA-512(MAC_KEY, A ‖ IV ‖ C ‖ AL), not yet finalized.
fn mac(key: &AeadKey, aad: &[u8], iv: &[u8; IV_LEN], ciphertext: &[u8]) -> Hmac<Sha512> {
    let aad_bits = u64::try_from(aad.len())
        .ok()
        .and_then(|n| n.checked_mul(8))
        .expect("no slice in memory is 2^61 bytes long");
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key.mac_key()).expect("HMAC takes keys of any length");
    mac.update(aad);
    mac.update(iv);
    mac.update(ciphertext);
    mac.update(&aad_bits.to_be_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 7518 Appendix B.3, embedded so the test can never silently skip; the shared JSON copy, when present,
    /// must agree with it.
    mod b3 {
        pub(super) const K: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                                    202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
        pub(super) const P: &str = "41206369706865722073797374656d206d757374206e6f7420626520726571756972656420746f\
            206265207365637265742c20616e64206974206d7573742062652061626c6520746f2066616c6c20696e746f207468652068616e\
            6473206f662074686520656e656d7920776974686f757420696e636f6e76656e69656e6365";
        pub(super) const IV: &str = "1af38c2dc2b96ffdd86694092341bc04";
        pub(super) const A: &str =
            "546865207365636f6e64207072696e6369706c65206f662041756775737465204b6572636b686f666673";
        pub(super) const C: &str = "4affaaadb78c31c5da4b1b590d10ffbd3dd8d5d302423526912da037ecbcc7bd822c301dd67c37\
            3bccb584ad3e9279c2e6d12a1374b77f077553df829410446b36ebd97066296ae6427ea75c2e0846a11a09ccf5370dc80bfecbad\
            28c73f09b3a3b75e662a2594410ae496b2e2e6609e31e6e02cc837f053d21f37ff4f51950bbe2638d09dd7a4930930806d0703b1\
            f6";
        pub(super) const T: &str = "4dd3b4c088a7f45c216839645b2012bf2e6269a8c56a816dbc1b267761955bc5";
    }

    const VECTOR_FILE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/rfc7518-b3-aes256cbc-hs512.json"
    );

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn shared_vector_file_matches_embedded_constants() {
        let Ok(text) = std::fs::read_to_string(VECTOR_FILE) else {
            // The embedded constants still run in `rfc7518_b3_*`; only the cross-check is skipped.
            return;
        };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (name, value) in [
            ("K", b3::K),
            ("P", b3::P),
            ("IV", b3::IV),
            ("A", b3::A),
            ("C", b3::C),
            ("T", b3::T),
        ] {
            assert_eq!(json[name].as_str(), Some(value), "{name} differs from {VECTOR_FILE}");
        }
    }

    #[test]
    fn rfc7518_b3_encrypts_byte_exactly() {
        let key = AeadKey::from_slice(&unhex(b3::K)).unwrap();
        let iv: [u8; 16] = unhex(b3::IV).try_into().unwrap();
        let (c, t) = encrypt_with_iv(&key, &iv, &unhex(b3::A), &unhex(b3::P));
        assert_eq!(hex::encode(c), b3::C);
        assert_eq!(hex::encode(t), b3::T);
    }

    #[test]
    fn rfc7518_b3_decrypts() {
        let key = AeadKey::from_slice(&unhex(b3::K)).unwrap();
        let p = open(&key, &unhex(b3::A), &unhex(b3::IV), &unhex(b3::C), &unhex(b3::T)).unwrap();
        assert_eq!(p.dangerously_expose(), unhex(b3::P));
    }

    #[test]
    fn malformed_lengths_are_the_coarse_error() {
        let key = AeadKey::from_bytes([9; 64]);
        let s = seal(&key, b"a", b"p").unwrap();
        let cases: [(&[u8], &[u8], &[u8]); 6] = [
            (&s.iv[..15], &s.ciphertext, &s.tag),
            (&s.iv, &[], &s.tag),
            (&s.iv, &s.ciphertext[..15], &s.tag),
            (&s.iv, &s.ciphertext, &s.tag[..31]),
            (&s.iv, &s.ciphertext, &[]),
            (&s.iv, &[s.ciphertext.as_slice(), &[0; 16]].concat(), &s.tag),
        ];
        for (iv, c, t) in cases {
            assert!(matches!(open(&key, b"a", iv, c, t), Err(CryptoError::Decrypt)));
        }
        // The full, untruncated tag (64 bytes) is not accepted either: the format fixes 32.
        let full = mac(&key, b"a", &s.iv, &s.ciphertext).finalize().into_bytes();
        assert!(matches!(
            open(&key, b"a", &s.iv, &s.ciphertext, &full),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn authentic_but_badly_padded_ciphertext_is_the_same_coarse_error() {
        // Someone holding the key could produce a valid tag over a ciphertext with bad padding; the error must
        // still be the same one.
        let key = AeadKey::from_bytes([3; 64]);
        let iv = [1; 16];
        let c = cbc::Encryptor::<Aes256>::new(key.enc_key().into(), (&iv).into())
            .encrypt_padded_vec::<cbc::cipher::block_padding::NoPadding>(&[0u8; 16]);
        let tag = mac(&key, b"", &iv, &c).finalize().into_bytes();
        let err = open(&key, b"", &iv, &c, &tag[..32]).unwrap_err();
        assert!(matches!(err, CryptoError::Decrypt));
    }

    #[test]
    fn error_messages_are_coarse_and_helpful() {
        assert_eq!(
            CryptoError::Decrypt.to_string(),
            "could not decrypt: the data was altered, truncated, or sealed with another key"
        );
        assert_eq!(format!("{:?}", AeadKey::from_bytes([0x5a; 64])), "AeadKey(<redacted>)");
    }

    #[test]
    fn a_different_key_is_rejected() {
        let s = seal(&AeadKey::from_bytes([1; 64]), b"aad", b"token").unwrap();
        let mut other = [1; 64];
        other[0] ^= 1; // MAC_KEY differs, so the tag cannot verify
        other[63] ^= 1;
        assert!(matches!(
            open(&AeadKey::from_bytes(other), b"aad", &s.iv, &s.ciphertext, &s.tag),
            Err(CryptoError::Decrypt)
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn round_trips(pt in proptest::collection::vec(any::<u8>(), 0..4096),
                       aad in proptest::collection::vec(any::<u8>(), 0..256),
                       key in proptest::array::uniform32(any::<u8>())) {
            let mut k = [0u8; 64];
            k[..32].copy_from_slice(&key);
            k[32..].copy_from_slice(&key.map(|b| !b));
            let key = AeadKey::from_bytes(k);
            let s = seal(&key, &aad, &pt).unwrap();
            prop_assert_eq!(s.ciphertext.len(), (pt.len() / 16 + 1) * 16);
            let back = open(&key, &aad, &s.iv, &s.ciphertext, &s.tag).unwrap();
            prop_assert_eq!(back.dangerously_expose(), &pt[..]);
        }

        #[test]
        fn sealing_twice_differs(pt in proptest::collection::vec(any::<u8>(), 0..512)) {
            let key = AeadKey::from_bytes([0x42; 64]);
            let a = seal(&key, b"x", &pt).unwrap();
            let b = seal(&key, b"x", &pt).unwrap();
            prop_assert_ne!(a.iv, b.iv);
            prop_assert_ne!(&a.ciphertext, &b.ciphertext);
            prop_assert_ne!(a.tag, b.tag);
        }

        #[test]
        fn any_single_bit_flip_is_rejected(pt in proptest::collection::vec(any::<u8>(), 0..300),
                                           aad in proptest::collection::vec(any::<u8>(), 0..64),
                                           pos in any::<proptest::sample::Index>(),
                                           bit in 0u8..8) {
            let key = AeadKey::from_bytes([0x17; 64]);
            let s = seal(&key, &aad, &pt).unwrap();
            // IV ‖ C ‖ T as one flat buffer; flip exactly one bit anywhere in it.
            let mut wire = [&s.iv[..], &s.ciphertext, &s.tag].concat();
            let i = pos.index(wire.len());
            wire[i] ^= 1 << bit;
            let (iv, rest) = wire.split_at(IV_LEN);
            let (c, t) = rest.split_at(rest.len() - TAG_LEN);
            prop_assert!(matches!(open(&key, &aad, iv, c, t), Err(CryptoError::Decrypt)));
        }

        #[test]
        fn any_byte_change_is_rejected(pt in proptest::collection::vec(any::<u8>(), 0..300),
                                       pos in any::<proptest::sample::Index>(),
                                       delta in 1u8..=255) {
            let key = AeadKey::from_bytes([0x71; 64]);
            let s = seal(&key, b"aad", &pt).unwrap();
            let mut wire = [&s.iv[..], &s.ciphertext, &s.tag].concat();
            let i = pos.index(wire.len());
            wire[i] = wire[i].wrapping_add(delta);
            let (iv, rest) = wire.split_at(IV_LEN);
            let (c, t) = rest.split_at(rest.len() - TAG_LEN);
            prop_assert!(matches!(open(&key, b"aad", iv, c, t), Err(CryptoError::Decrypt)));
        }

        #[test]
        fn any_other_aad_is_rejected(pt in proptest::collection::vec(any::<u8>(), 0..128),
                                     aad in proptest::collection::vec(any::<u8>(), 0..64),
                                     other in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assume!(aad != other);
            let key = AeadKey::from_bytes([0x99; 64]);
            let s = seal(&key, &aad, &pt).unwrap();
            prop_assert!(matches!(open(&key, &other, &s.iv, &s.ciphertext, &s.tag), Err(CryptoError::Decrypt)));
        }
    }
}
