//! An independent reader and writer of the record format, written only from `docs/FORMAT.md`.
//!
//! It uses the raw `aes`, `cbc`, `hmac`, `sha2` and `hkdf` crates and none of Tokenkeep's crypto or envelope code
//! (only `envelope::seal` to produce records and `MasterKey` to hold the key), so if the document and the code ever
//! disagree, this test fails. It also pins the document's worked example.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};
use tokenkeep_core::envelope::{self, RecordLocation};
use tokenkeep_core::secret::MasterKey;

const FORMAT_MD: &str = include_str!("../../../../docs/FORMAT.md");

/// A location, as the document names its parts.
struct Loc<'a> {
    profile: &'a str,
    tree: &'a str,
    record_id: &'a [u8],
    field: &'a str,
}

impl Loc<'_> {
    fn as_record(&self) -> RecordLocation<'_> {
        RecordLocation {
            profile: self.profile,
            tree: self.tree,
            record_id: self.record_id,
            field: self.field,
        }
    }
}

/// `lp(x) = u64be(len(x)) ‖ x`.
fn lp(out: &mut Vec<u8>, x: &[u8]) {
    out.extend_from_slice(&(x.len() as u64).to_be_bytes());
    out.extend_from_slice(x);
}

fn key_id(mk: &[u8; 32]) -> [u8; 8] {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b""), mk)
        .expand(b"tokenkeep/v1/key-id", &mut okm)
        .unwrap();
    okm[..8].try_into().unwrap()
}

fn record_key(mk: &[u8; 32], loc: &Loc<'_>) -> [u8; 64] {
    let mut info = Vec::new();
    for part in [
        loc.profile.as_bytes(),
        loc.tree.as_bytes(),
        loc.record_id,
        loc.field.as_bytes(),
    ] {
        lp(&mut info, part);
    }
    let mut k = [0u8; 64];
    Hkdf::<Sha512>::new(Some(b"tokenkeep/v1/record-key"), mk)
        .expand(&info, &mut k)
        .unwrap();
    k
}

fn aad(header: &[u8], loc: &Loc<'_>) -> Vec<u8> {
    let mut a = Vec::new();
    for part in [
        b"tokenkeep/v1/record",
        header,
        loc.profile.as_bytes(),
        loc.tree.as_bytes(),
        loc.record_id,
    ] {
        lp(&mut a, part);
    }
    lp(&mut a, loc.field.as_bytes());
    a
}

/// `HMAC-SHA-512(MAC_KEY, A ‖ IV ‖ C ‖ u64be(8·len(A)))[0..32]`.
fn tag(mac_key: &[u8], a: &[u8], iv: &[u8], c: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(mac_key).unwrap();
    for part in [a, iv, c, &(a.len() as u64 * 8).to_be_bytes()] {
        mac.update(part);
    }
    mac.finalize().into_bytes()[..32].try_into().unwrap()
}

/// Why the independent reader refused an envelope (mirrors the document's "Opening" steps).
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Truncated,
    UnknownVersion(u8),
    WrongKey,
    CouldNotDecrypt,
}

/// "Opening", steps 1–5 of FORMAT.md.
fn doc_open(mk: &[u8; 32], loc: &Loc<'_>, env: &[u8]) -> Result<Vec<u8>, Refusal> {
    let version = *env.first().ok_or(Refusal::Truncated)?;
    if version != 0x01 {
        return Err(Refusal::UnknownVersion(version));
    }
    if env.len() < 9 {
        return Err(Refusal::Truncated);
    }
    if env[1..9] != key_id(mk) {
        return Err(Refusal::WrongKey);
    }
    if env.len() < 73 || !(env.len() - 57).is_multiple_of(16) {
        return Err(Refusal::Truncated);
    }
    let (header, rest) = env.split_at(9);
    let (iv, rest) = rest.split_at(16);
    let (c, t) = rest.split_at(rest.len() - 32);
    let k = record_key(mk, loc);
    let expected = tag(&k[..32], &aad(header, loc), iv, c);
    // Constant time, as the document requires.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], t)) {
        return Err(Refusal::CouldNotDecrypt);
    }
    cbc::Decryptor::<Aes256>::new_from_slices(&k[32..], iv)
        .unwrap()
        .decrypt_padded_vec::<Pkcs7>(c)
        .map_err(|_| Refusal::CouldNotDecrypt)
}

/// The document's sealing procedure, with a given IV.
fn doc_seal(mk: &[u8; 32], loc: &Loc<'_>, iv: &[u8; 16], p: &[u8]) -> Vec<u8> {
    let k = record_key(mk, loc);
    let mut env = vec![0x01];
    env.extend_from_slice(&key_id(mk));
    let a = aad(&env, loc);
    let c = cbc::Encryptor::<Aes256>::new_from_slices(&k[32..], iv)
        .unwrap()
        .encrypt_padded_vec::<Pkcs7>(p);
    let t = tag(&k[..32], &a, iv, &c);
    env.extend_from_slice(iv);
    env.extend_from_slice(&c);
    env.extend_from_slice(&t);
    env
}

const LOCATIONS: [Loc<'static>; 5] = [
    Loc {
        profile: "dev",
        tree: "accounts",
        record_id: b"github:octocat",
        field: "access_token",
    },
    Loc {
        profile: "dev",
        tree: "accounts",
        record_id: b"github:octocat",
        field: "refresh_token",
    },
    Loc {
        profile: "prod",
        tree: "accounts",
        record_id: b"github:octocat",
        field: "access_token",
    },
    Loc {
        profile: "prod",
        tree: "clients",
        record_id: &[0, 1, 2, 0xff],
        field: "client_secret",
    },
    Loc {
        profile: "p",
        tree: "",
        record_id: b"",
        field: "",
    },
];

#[test]
fn records_sealed_by_tokenkeep_open_with_the_document_alone() {
    let master = MasterKey::generate().unwrap();
    let mk = master.dangerously_expose_bytes();
    for loc in &LOCATIONS {
        for pt in [&b""[..], b"ya29.short", &[0x42; 16], &[0x17; 2048]] {
            let env = envelope::seal(&master, &loc.as_record(), pt).unwrap();
            assert_eq!(
                doc_open(mk, loc, &env).unwrap(),
                pt,
                "{}/{}/{}",
                loc.profile,
                loc.tree,
                loc.field
            );
        }
    }
}

#[test]
fn records_written_from_the_document_open_in_tokenkeep() {
    let master = MasterKey::from_bytes([0x33; 32]);
    for (i, loc) in LOCATIONS.iter().enumerate() {
        let env = doc_seal(master.dangerously_expose_bytes(), loc, &[i as u8; 16], b"refresh-me");
        let back = envelope::open(&master, &loc.as_record(), &env).unwrap();
        assert_eq!(back.dangerously_expose(), b"refresh-me");
    }
}

#[test]
fn a_moved_record_is_refused_by_the_document_reader() {
    let master = MasterKey::generate().unwrap();
    let mk = master.dangerously_expose_bytes();
    for (i, from) in LOCATIONS.iter().enumerate() {
        let env = envelope::seal(&master, &from.as_record(), b"gho_secret").unwrap();
        for (j, to) in LOCATIONS.iter().enumerate() {
            if i != j {
                assert_eq!(doc_open(mk, to, &env), Err(Refusal::CouldNotDecrypt), "{i} -> {j}");
            }
        }
    }
}

#[test]
fn header_checks_follow_the_documented_order() {
    let master = MasterKey::from_bytes([0x44; 32]);
    let other = [0x45; 32];
    let loc = &LOCATIONS[0];
    let env = envelope::seal(&master, &loc.as_record(), b"t").unwrap();
    assert_eq!(env.len(), 9 + 16 + 16 + 32);
    assert_eq!(doc_open(&other, loc, &env), Err(Refusal::WrongKey));
    assert_eq!(
        doc_open(master.dangerously_expose_bytes(), loc, &env[..72]),
        Err(Refusal::Truncated)
    );
    let mut v2 = env.clone();
    v2[0] = 2;
    assert_eq!(
        doc_open(master.dangerously_expose_bytes(), loc, &v2),
        Err(Refusal::UnknownVersion(2))
    );
    assert_eq!(
        doc_open(master.dangerously_expose_bytes(), loc, &[]),
        Err(Refusal::Truncated)
    );
}

/// The worked example, duplicated here so that a change to either the document or the code is caught.
mod example {
    pub(super) const KEY_ID: &str = "a685478eaf2d261a";
    pub(super) const RECORD_KEY: &str = "53a7e395f5e738b67cc51b1569de3552b9533b39117205b2d489cf66b3769816\
                                         7aee6db225a3fafa563335f0b064433a72def0ac6c9361d068e6cb5d9d1a2a13";
    pub(super) const AAD: &str = "0000000000000013746f6b656e6b6565702f76312f7265636f72640000000000\
                                  00000901a685478eaf2d261a000000000000000470726f64000000000000000d\
                                  746f6b656e732f6769746875620000000000000010101112131415161718191a\
                                  1b1c1d1e1f000000000000000c6163636573735f746f6b656e";
    pub(super) const IV: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
    pub(super) const CIPHERTEXT: &str = "193746d41e6ca9b607c4d33965afb9580b151d582e3ccf5c4ae8634e190f7c81\
                                         91feebe6dd68f6f730ab1955c1f862be";
    pub(super) const TAG: &str = "2cd7914dae1057565caeb730bbd50a9347b6f0ada09cacaf283b92774d600f68";
    pub(super) const ENVELOPE: &str = "01a685478eaf2d261aa0a1a2a3a4a5a6a7a8a9aaabacadaeaf193746d41e6ca9\
                                       b607c4d33965afb9580b151d582e3ccf5c4ae8634e190f7c8191feebe6dd68f6\
                                       f730ab1955c1f862be2cd7914dae1057565caeb730bbd50a9347b6f0ada09cac\
                                       af283b92774d600f68";
    pub(super) const PLAINTEXT: &[u8] = b"gho_EXAMPLE0000000000000000000000000000";
}

/// The example's record id: the 16 bytes 0x10 to 0x1f, as a connection id is 16 bytes.
const EXAMPLE_RECORD_ID: [u8; 16] = [
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

const EXAMPLE_LOC: Loc<'static> = Loc {
    profile: "prod",
    tree: "tokens/github",
    record_id: &EXAMPLE_RECORD_ID,
    field: "access_token",
};

fn example_master() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

/// The hex printed after `label:` in FORMAT.md, continuation lines included.
fn doc_value(label: &str) -> String {
    let prefix = format!("{label}:");
    let mut lines = FORMAT_MD.lines().skip_while(|l| !l.starts_with(&prefix));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("FORMAT.md has no `{prefix}` line"));
    let mut value = first[prefix.len()..].trim().to_owned();
    value.extend(lines.take_while(|l| l.starts_with(' ')).map(str::trim));
    value
}

#[test]
fn worked_example_in_the_document_is_current() {
    for (label, value) in [
        ("key id", example::KEY_ID),
        ("record key", example::RECORD_KEY),
        ("aad", example::AAD),
        ("iv", example::IV),
        ("ciphertext", example::CIPHERTEXT),
        ("tag", example::TAG),
        ("envelope", example::ENVELOPE),
    ] {
        assert_eq!(
            doc_value(label),
            value,
            "FORMAT.md's worked example differs at `{label}`"
        );
    }
}

#[test]
fn worked_example_is_reproduced_byte_exactly_by_the_document_writer() {
    let mk = example_master();
    assert_eq!(hex::encode(key_id(&mk)), example::KEY_ID);
    assert_eq!(hex::encode(record_key(&mk, &EXAMPLE_LOC)), example::RECORD_KEY);
    let header = [&[1u8][..], &key_id(&mk)].concat();
    assert_eq!(hex::encode(aad(&header, &EXAMPLE_LOC)), example::AAD);
    let iv: [u8; 16] = hex::decode(example::IV).unwrap().try_into().unwrap();
    let env = hex::encode(doc_seal(&mk, &EXAMPLE_LOC, &iv, example::PLAINTEXT));
    assert_eq!(env, example::ENVELOPE);
    assert_eq!(
        env,
        ["01", example::KEY_ID, example::IV, example::CIPHERTEXT, example::TAG].concat()
    );
}

#[test]
fn worked_example_opens_in_tokenkeep_and_in_the_document_reader() {
    let mk = example_master();
    let env = hex::decode(example::ENVELOPE).unwrap();
    assert_eq!(doc_open(&mk, &EXAMPLE_LOC, &env).unwrap(), example::PLAINTEXT);
    let master = MasterKey::from_bytes(mk);
    assert_eq!(master.id().to_hex(), example::KEY_ID);
    let header = envelope::peek_header(&env).unwrap();
    assert_eq!(
        hex::encode(envelope::aad(&EXAMPLE_LOC.as_record(), &header)),
        example::AAD
    );
    let back = envelope::open(&master, &EXAMPLE_LOC.as_record(), &env).unwrap();
    assert_eq!(back.dangerously_expose(), example::PLAINTEXT);
    let moved = RecordLocation {
        field: "refresh_token",
        ..EXAMPLE_LOC.as_record()
    };
    assert_eq!(
        envelope::open(&master, &moved, &env).unwrap_err(),
        envelope::EnvelopeError::Decrypt
    );
}
