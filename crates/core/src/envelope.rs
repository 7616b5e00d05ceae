//! The on-disk record envelope: a versioned header, a per-record key, and an AAD that binds a sealed value to the
//! exact place it lives.
//!
//! ```text
//! envelope = version (1) ‖ key id (8) ‖ IV (16) ‖ ciphertext (16·n, n ≥ 1) ‖ tag (32)
//! ```
//!
//! The 9-byte header is public (it says which master key sealed the record) and is authenticated as part of the
//! AAD. Each record is encrypted under its own 64-byte key, derived from the master key and the record's
//! location with HKDF-SHA-512. `docs/FORMAT.md` is the byte-exact specification and explains every choice;
//! `tests/format_doc.rs` decodes records from that document alone.

use hkdf::Hkdf;
use sha2::Sha512;

use crate::crypto::{self, AeadKey, BLOCK_LEN, CryptoError, IV_LEN, TAG_LEN};
use crate::secret::{KEY_ID_LEN, KeyId, MasterKey, SecretBytes};

/// The format version this build writes, and the only one it reads.
pub const FORMAT_VERSION: u8 = 1;
/// Length of the public header: version (1) ‖ key id (8).
pub const HEADER_LEN: usize = 1 + KEY_ID_LEN;
/// Length of the shortest valid envelope (an empty plaintext still pads to one block).
pub const MIN_LEN: usize = HEADER_LEN + IV_LEN + BLOCK_LEN + TAG_LEN;

/// Domain label that opens every AAD, so an envelope AAD can never equal any other message Tokenkeep MACs.
const AAD_LABEL: &[u8] = b"tokenkeep/v1/record";
/// HKDF-SHA-512 salt for record keys: fixed and public; it separates record keys from every other derivation.
const RECORD_KEY_SALT: &[u8] = b"tokenkeep/v1/record-key";

/// Where a sealed value lives. It is bound into the AAD and the record key, so a ciphertext moved anywhere else
/// (another profile, tree, record or field) fails to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordLocation<'a> {
    /// The profile (`dev`, `prod`, …).
    pub profile: &'a str,
    /// The store tree (table) holding the record.
    pub tree: &'a str,
    /// The record's key within the tree.
    pub record_id: &'a [u8],
    /// Which secret of the record this is (`access_token`, `refresh_token`, …).
    pub field: &'a str,
}

/// The public, unencrypted part of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnvelopeHeader {
    /// Format version; see [`FORMAT_VERSION`].
    pub version: u8,
    /// Identifier of the master key that sealed the record.
    pub key_id: KeyId,
}

impl EnvelopeHeader {
    /// The header as it appears on disk (and inside the AAD): version ‖ key id.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.version;
        out[1..].copy_from_slice(self.key_id.as_bytes());
        out
    }
}

/// Why an envelope could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The data is too short, or its length is impossible, for an envelope of its version.
    #[error("the sealed record is truncated or malformed: it was damaged in storage; restore it or sign in again")]
    Truncated,
    /// The envelope was written by a format version this build does not know.
    #[error("the sealed record uses format version {0}, which this version of Tokenkeep cannot read: update Tokenkeep")]
    UnknownVersion(u8),
    /// The envelope was sealed under a different master key than the one supplied.
    #[error(
        "the record was sealed with key {sealed_with}, but the vault is unlocked with key {have}: restore the master \
         key with id {sealed_with}"
    )]
    WrongKey {
        /// The key that sealed the record.
        sealed_with: KeyId,
        /// The key that was supplied.
        have: KeyId,
    },
    /// Authentication failed: deliberately coarse, like [`CryptoError::Decrypt`].
    #[error("could not decrypt: the data was altered, truncated, or sealed with another key")]
    Decrypt,
}

/// Seals `plaintext` for `loc` under a key derived from `master`, with a fresh random IV.
///
/// # Errors
/// [`CryptoError::Rng`] if the operating system cannot provide an IV.
pub fn seal(master: &MasterKey, loc: &RecordLocation<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let header = EnvelopeHeader {
        version: FORMAT_VERSION,
        key_id: master.id(),
    };
    let sealed = crypto::seal(&record_key(master, loc), &aad(loc, &header), plaintext)?;
    Ok(assemble(&header, &sealed.iv, &sealed.ciphertext, &sealed.tag))
}

/// Opens an envelope sealed by [`seal`] for the same `loc` and master key.
///
/// Checks run from the public to the secret: header (version, then key id), then lengths, then the tag.
///
/// # Errors
/// [`EnvelopeError::UnknownVersion`] or [`EnvelopeError::Truncated`] for a bad header or length,
/// [`EnvelopeError::WrongKey`] if another master key sealed it, and [`EnvelopeError::Decrypt`] for everything
/// the tag catches (any alteration, or a record moved from another location).
pub fn open(master: &MasterKey, loc: &RecordLocation<'_>, envelope: &[u8]) -> Result<SecretBytes, EnvelopeError> {
    let header = peek_header(envelope)?;
    if header.key_id != master.id() {
        return Err(EnvelopeError::WrongKey {
            sealed_with: header.key_id,
            have: master.id(),
        });
    }
    let body = &envelope[HEADER_LEN..];
    if body.len() < MIN_LEN - HEADER_LEN || !(body.len() - IV_LEN - TAG_LEN).is_multiple_of(BLOCK_LEN) {
        return Err(EnvelopeError::Truncated);
    }
    let (iv, rest) = body.split_at(IV_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    crypto::open(&record_key(master, loc), &aad(loc, &header), iv, ciphertext, tag).map_err(|_| EnvelopeError::Decrypt)
}

/// Parses the public header without any key: tells which key sealed a record, and reports damage early.
///
/// # Errors
/// [`EnvelopeError::Truncated`] if the header is incomplete, [`EnvelopeError::UnknownVersion`] for a version
/// other than [`FORMAT_VERSION`].
pub fn peek_header(envelope: &[u8]) -> Result<EnvelopeHeader, EnvelopeError> {
    // The version comes first and decides the layout of everything after it.
    let (&version, rest) = envelope.split_first().ok_or(EnvelopeError::Truncated)?;
    if version != FORMAT_VERSION {
        return Err(EnvelopeError::UnknownVersion(version));
    }
    let key_id: [u8; KEY_ID_LEN] = rest
        .get(..KEY_ID_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(EnvelopeError::Truncated)?;
    Ok(EnvelopeHeader {
        version,
        key_id: KeyId::from_bytes(key_id),
    })
}

/// The associated data authenticated with a record, exactly as `docs/FORMAT.md` specifies:
/// `lp("tokenkeep/v1/record") ‖ lp(header) ‖ lp(profile) ‖ lp(tree) ‖ lp(record_id) ‖ lp(field)`,
/// where `lp(x)` is the length of `x` as a big-endian `u64` followed by `x`.
pub fn aad(loc: &RecordLocation<'_>, header: &EnvelopeHeader) -> Vec<u8> {
    let parts: [&[u8]; 6] = [
        AAD_LABEL,
        &header.to_bytes(),
        loc.profile.as_bytes(),
        loc.tree.as_bytes(),
        loc.record_id,
        loc.field.as_bytes(),
    ];
    length_prefixed(&parts)
}

/// Number of bytes [`seal`] produces for a plaintext of `plaintext_len` bytes.
pub const fn sealed_len(plaintext_len: usize) -> usize {
    HEADER_LEN + IV_LEN + (plaintext_len / BLOCK_LEN + 1) * BLOCK_LEN + TAG_LEN
}

/// The record key: HKDF-SHA-512(salt = "tokenkeep/v1/record-key", ikm = master key,
/// info = lp(profile) ‖ lp(tree) ‖ lp(record_id) ‖ lp(field)), 64 bytes.
fn record_key(master: &MasterKey, loc: &RecordLocation<'_>) -> AeadKey {
    let info = length_prefixed(&[
        loc.profile.as_bytes(),
        loc.tree.as_bytes(),
        loc.record_id,
        loc.field.as_bytes(),
    ]);
    let mut key = AeadKey::zeroed();
    master
        .record_kdf(|ikm| Hkdf::<Sha512>::new(Some(RECORD_KEY_SALT), ikm))
        .expand(&info, key.bytes_mut())
        .expect("64 bytes is far below HKDF-SHA-512's output limit");
    key
}

/// `lp(p0) ‖ lp(p1) ‖ …` with `lp(x) = u64_be(len(x)) ‖ x`: unambiguous, so ("ab", "c") never equals ("a", "bc").
fn length_prefixed(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| 8 + p.len()).sum());
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn assemble(header: &EnvelopeHeader, iv: &[u8; IV_LEN], ciphertext: &[u8], tag: &[u8; TAG_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + IV_LEN + ciphertext.len() + TAG_LEN);
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(iv);
    out.extend_from_slice(ciphertext);
    out.extend_from_slice(tag);
    out
}

/// [`seal`] with a caller-chosen IV, for the pinned worked example only.
#[cfg(test)]
fn seal_with_iv(master: &MasterKey, loc: &RecordLocation<'_>, iv: &[u8; IV_LEN], plaintext: &[u8]) -> Vec<u8> {
    let header = EnvelopeHeader {
        version: FORMAT_VERSION,
        key_id: master.id(),
    };
    let (ciphertext, tag) = crypto::encrypt_with_iv(&record_key(master, loc), iv, &aad(loc, &header), plaintext);
    assemble(&header, iv, &ciphertext, &tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FORMAT_MD: &str = include_str!("../../../docs/FORMAT.md");

    fn key(fill: u8) -> MasterKey {
        MasterKey::from_bytes([fill; 32])
    }

    const LOC: RecordLocation<'static> = RecordLocation {
        profile: "dev",
        tree: "accounts",
        record_id: b"\x00\x01acct",
        field: "refresh_token",
    };

    #[test]
    fn round_trips_and_has_the_documented_length() {
        let master = key(1);
        for pt in [&b""[..], b"x", &[7; 15], &[7; 16], &[7; 2048]] {
            let env = seal(&master, &LOC, pt).unwrap();
            assert_eq!(env.len(), sealed_len(pt.len()));
            assert_eq!(env[0], FORMAT_VERSION);
            assert_eq!(&env[1..9], master.id().as_bytes());
            assert_eq!(open(&master, &LOC, &env).unwrap().dangerously_expose(), pt);
        }
        assert_eq!(sealed_len(0), MIN_LEN);
    }

    #[test]
    fn a_record_moved_anywhere_else_does_not_open() {
        let master = key(2);
        let env = seal(&master, &LOC, b"token").unwrap();
        let moved = [
            RecordLocation { profile: "prod", ..LOC },
            RecordLocation { tree: "account", ..LOC },
            RecordLocation {
                record_id: b"\x00\x02acct",
                ..LOC
            },
            RecordLocation { record_id: b"", ..LOC },
            RecordLocation {
                field: "access_token",
                ..LOC
            },
        ];
        for loc in moved {
            assert_eq!(
                open(&master, &loc, &env).unwrap_err(),
                EnvelopeError::Decrypt,
                "{loc:?}"
            );
        }
    }

    #[test]
    fn component_boundaries_are_unambiguous() {
        let header = EnvelopeHeader {
            version: 1,
            key_id: KeyId::from_bytes([0; 8]),
        };
        let a = RecordLocation {
            profile: "ab",
            tree: "c",
            record_id: b"",
            field: "f",
        };
        let b = RecordLocation {
            profile: "a",
            tree: "bc",
            record_id: b"",
            field: "f",
        };
        let c = RecordLocation {
            profile: "a",
            tree: "b",
            record_id: b"c",
            field: "f",
        };
        assert_ne!(aad(&a, &header), aad(&b, &header));
        assert_ne!(aad(&b, &header), aad(&c, &header));
        let master = key(3);
        let env = seal(&master, &a, b"t").unwrap();
        assert_eq!(open(&master, &b, &env).unwrap_err(), EnvelopeError::Decrypt);
    }

    #[test]
    fn aad_matches_the_documented_layout() {
        let header = EnvelopeHeader {
            version: 1,
            key_id: KeyId::from_bytes(*b"\x01\x02\x03\x04\x05\x06\x07\x08"),
        };
        let loc = RecordLocation {
            profile: "p",
            tree: "tr",
            record_id: &[0xff],
            field: "",
        };
        let expected = [
            &[0, 0, 0, 0, 0, 0, 0, 19][..],
            b"tokenkeep/v1/record",
            &[0, 0, 0, 0, 0, 0, 0, 9, 1, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0, 0, 0, 0, 0, 0, 0, 1, b'p'],
            &[0, 0, 0, 0, 0, 0, 0, 2, b't', b'r'],
            &[0, 0, 0, 0, 0, 0, 0, 1, 0xff],
            &[0, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(aad(&loc, &header), expected);
    }

    #[test]
    fn record_keys_differ_per_location_and_per_master() {
        let m = key(4);
        let base = record_key(&m, &LOC);
        let b = |k: &AeadKey| *k.dangerously_expose_bytes();
        assert_ne!(
            b(&base),
            b(&record_key(
                &m,
                &RecordLocation {
                    field: "access_token",
                    ..LOC
                }
            ))
        );
        assert_ne!(b(&base), b(&record_key(&key(5), &LOC)));
        assert_eq!(b(&base), b(&record_key(&m, &LOC)), "derivation must be deterministic");
    }

    #[test]
    fn another_master_key_is_reported_before_anything_else() {
        let a = key(6);
        let b = key(7);
        let mut env = seal(&a, &LOC, b"token").unwrap();
        let want = EnvelopeError::WrongKey {
            sealed_with: a.id(),
            have: b.id(),
        };
        assert_eq!(open(&b, &LOC, &env).unwrap_err(), want);
        // Even when the body is damaged: the key id is public and is checked first.
        env.truncate(20);
        assert_eq!(open(&b, &LOC, &env).unwrap_err(), want);
        let msg = want.to_string();
        assert!(
            msg.contains(&a.id().to_hex()) && msg.contains(&b.id().to_hex()),
            "{msg}"
        );
    }

    #[test]
    fn header_fields_are_checked_and_authenticated() {
        let master = key(8);
        let env = seal(&master, &LOC, b"token").unwrap();
        assert_eq!(
            peek_header(&env).unwrap(),
            EnvelopeHeader {
                version: 1,
                key_id: master.id()
            }
        );

        let mut v = env.clone();
        v[0] = 2;
        assert_eq!(open(&master, &LOC, &v).unwrap_err(), EnvelopeError::UnknownVersion(2));
        assert_eq!(peek_header(&v).unwrap_err(), EnvelopeError::UnknownVersion(2));

        let mut k = env.clone();
        k[5] ^= 0x10;
        assert!(matches!(
            open(&master, &LOC, &k).unwrap_err(),
            EnvelopeError::WrongKey { .. }
        ));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let master = key(9);
        let env = seal(&master, &LOC, &[0x55; 40]).unwrap();
        assert_eq!(peek_header(&[]).unwrap_err(), EnvelopeError::Truncated);
        assert_eq!(peek_header(&env[..8]).unwrap_err(), EnvelopeError::Truncated);
        for len in 0..env.len() {
            let err = open(&master, &LOC, &env[..len]).unwrap_err();
            // Block-aligned truncations are structurally plausible, so only the tag can catch them.
            assert!(
                matches!(err, EnvelopeError::Truncated | EnvelopeError::Decrypt),
                "{len}: {err:?}"
            );
            if len < MIN_LEN || !(len - HEADER_LEN - IV_LEN - TAG_LEN).is_multiple_of(BLOCK_LEN) {
                assert_eq!(err, EnvelopeError::Truncated, "{len}");
            }
        }
        let mut longer = env.clone();
        longer.extend_from_slice(&[0; 16]);
        assert_eq!(open(&master, &LOC, &longer).unwrap_err(), EnvelopeError::Decrypt);
    }

    #[test]
    fn worked_example_in_format_md_is_what_seal_produces() {
        let master = MasterKey::from_bytes(std::array::from_fn(|i| i as u8));
        let record_id: [u8; 16] = std::array::from_fn(|i| 0x10 + i as u8);
        let loc = RecordLocation {
            profile: "prod",
            tree: "tokens/github",
            record_id: &record_id,
            field: "access_token",
        };
        let iv: [u8; 16] = std::array::from_fn(|i| 0xa0 + i as u8);
        let pt = b"gho_EXAMPLE0000000000000000000000000000";
        let env = seal_with_iv(&master, &loc, &iv, pt);
        let header = peek_header(&env).unwrap();
        let shown = |label: &str, bytes: &[u8]| {
            // FORMAT.md prints `label: hex`, wrapping long values onto indented continuation lines.
            let prefix = format!("{label}:");
            let mut lines = FORMAT_MD.lines().skip_while(|l| !l.starts_with(&prefix));
            let first = lines
                .next()
                .unwrap_or_else(|| panic!("FORMAT.md has no `{prefix}` line"));
            let mut doc = first[prefix.len()..].trim().to_owned();
            doc.extend(lines.take_while(|l| l.starts_with(' ')).map(str::trim));
            assert_eq!(
                doc,
                hex::encode(bytes),
                "FORMAT.md's worked example is stale at `{label}`"
            );
        };
        shown("key id", master.id().as_bytes());
        shown("record key", record_key(&master, &loc).dangerously_expose_bytes());
        shown("aad", &aad(&loc, &header));
        shown("envelope", &env);
        assert_eq!(open(&master, &loc, &env).unwrap().dangerously_expose(), pt);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trips_anywhere(profile in "[a-z0-9_-]{1,32}", tree in ".{0,16}",
                                record_id in proptest::collection::vec(any::<u8>(), 0..64),
                                field in "[a-z_]{0,24}",
                                pt in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let master = key(10);
            let loc = RecordLocation { profile: &profile, tree: &tree, record_id: &record_id, field: &field };
            let env = seal(&master, &loc, &pt).unwrap();
            let back = open(&master, &loc, &env).unwrap();
            prop_assert_eq!(back.dangerously_expose(), &pt[..]);
        }

        #[test]
        fn any_altered_byte_is_rejected(pt in proptest::collection::vec(any::<u8>(), 0..200),
                                        pos in any::<proptest::sample::Index>(),
                                        delta in 1u8..=255) {
            let master = key(11);
            let mut env = seal(&master, &LOC, &pt).unwrap();
            let i = pos.index(env.len());
            env[i] = env[i].wrapping_add(delta);
            prop_assert!(open(&master, &LOC, &env).is_err());
        }
    }
}
