//! Benchmarks of the vault's hot paths: sealing and opening records, and the cipher beneath them.
//!
//! The `aead` group runs the same AES-256-CBC + HMAC-SHA-512/256 work through OpenSSL in the same process, so the
//! ratio to this machine's floor is visible. Before measuring, `assert_openssl_is_like_for_like` checks that the
//! OpenSSL path produces exactly Tokenkeep's bytes for the same IV.
#![allow(missing_docs, clippy::print_stdout, clippy::print_stderr)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::symm::{Cipher, decrypt, encrypt};
use tokenkeep_core::crypto::{self, AeadKey, IV_LEN, TAG_LEN};
use tokenkeep_core::envelope::{self, RecordLocation};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::MasterKey;

/// A large access token (JWTs with many claims reach this size).
const TOKEN_LEN: usize = 2048;
const LOC: RecordLocation<'static> = RecordLocation {
    profile: "prod",
    tree: "accounts",
    record_id: b"github:octocat",
    field: "access_token",
};
const AAD: &[u8] = b"tokenkeep/bench/aad: about the size of a record location";

fn token() -> Vec<u8> {
    (0..TOKEN_LEN).map(|i| b'A' + (i % 26) as u8).collect()
}

fn aead_key_bytes() -> [u8; 64] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(7))
}

/// RFC 7518 §5.2.2 through OpenSSL: `(C, T)` for a given IV.
fn openssl_encrypt(key: &[u8; 64], iv: &[u8], aad: &[u8], pt: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let c = encrypt(Cipher::aes_256_cbc(), &key[32..], Some(iv), pt).unwrap();
    let t = openssl_tag(key, iv, aad, &c);
    (c, t)
}

fn openssl_tag(key: &[u8; 64], iv: &[u8], aad: &[u8], c: &[u8]) -> Vec<u8> {
    let pkey = PKey::hmac(&key[..32]).unwrap();
    let mut signer = Signer::new(MessageDigest::sha512(), &pkey).unwrap();
    for part in [aad, iv, c, &(aad.len() as u64 * 8).to_be_bytes()] {
        signer.update(part).unwrap();
    }
    let mut t = signer.sign_to_vec().unwrap();
    t.truncate(TAG_LEN);
    t
}

fn openssl_seal(key: &[u8; 64], aad: &[u8], pt: &[u8]) -> ([u8; IV_LEN], Vec<u8>, Vec<u8>) {
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut iv).unwrap();
    let (c, t) = openssl_encrypt(key, &iv, aad, pt);
    (iv, c, t)
}

fn openssl_open(key: &[u8; 64], aad: &[u8], iv: &[u8], c: &[u8], t: &[u8]) -> Option<Vec<u8>> {
    // Verify first, in constant time, exactly as Tokenkeep does.
    if !openssl::memcmp::eq(&openssl_tag(key, iv, aad, c), t) {
        return None;
    }
    decrypt(Cipher::aes_256_cbc(), &key[32..], Some(iv), c).ok()
}

/// Same IV in, same bytes out, and each side opens the other's output: the comparison is like for like.
fn assert_openssl_is_like_for_like() {
    let key_bytes = aead_key_bytes();
    let key = AeadKey::from_bytes(key_bytes);
    let pt = token();
    let ours = crypto::seal(&key, AAD, &pt).unwrap();
    let (c, t) = openssl_encrypt(&key_bytes, &ours.iv, AAD, &pt);
    assert_eq!(c, ours.ciphertext, "OpenSSL ciphertext differs for the same IV");
    assert_eq!(t, ours.tag, "OpenSSL tag differs for the same IV");
    let (iv, c, t) = openssl_seal(&key_bytes, AAD, &pt);
    assert_eq!(crypto::open(&key, AAD, &iv, &c, &t).unwrap().dangerously_expose(), pt);
    assert_eq!(
        openssl_open(&key_bytes, AAD, &ours.iv, &ours.ciphertext, &ours.tag).unwrap(),
        pt
    );
}

fn bench_envelope(c: &mut Criterion) {
    let master = MasterKey::from_bytes([0x5a; 32]);
    let pt = token();
    let sealed = envelope::seal(&master, &LOC, &pt).unwrap();
    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Bytes(TOKEN_LEN as u64));
    g.bench_function("seal_2KiB", |b| {
        b.iter(|| envelope::seal(&master, black_box(&LOC), black_box(&pt)).unwrap())
    });
    g.bench_function("open_2KiB", |b| {
        b.iter(|| envelope::open(&master, black_box(&LOC), black_box(&sealed)).unwrap())
    });
    g.finish();
}

fn bench_aead(c: &mut Criterion) {
    assert_openssl_is_like_for_like();
    let key_bytes = aead_key_bytes();
    let key = AeadKey::from_bytes(key_bytes);
    let mut g = c.benchmark_group("aead");
    // 2 KiB is the real workload (dominated by per-call setup); 64 KiB shows the primitives' bulk speed.
    for len in [TOKEN_LEN, 64 * 1024] {
        let pt: Vec<u8> = token().into_iter().cycle().take(len).collect();
        let ours = crypto::seal(&key, AAD, &pt).unwrap();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("tokenkeep_seal", len), &pt, |b, pt| {
            b.iter(|| crypto::seal(&key, AAD, black_box(pt)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("tokenkeep_open", len), &ours, |b, s| {
            b.iter(|| crypto::open(&key, AAD, &s.iv, black_box(&s.ciphertext), &s.tag).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("openssl_seal", len), &pt, |b, pt| {
            b.iter(|| openssl_seal(&key_bytes, AAD, black_box(pt)))
        });
        g.bench_with_input(BenchmarkId::new("openssl_open", len), &ours, |b, s| {
            b.iter(|| openssl_open(&key_bytes, AAD, &s.iv, black_box(&s.ciphertext), &s.tag).unwrap())
        });
    }
    g.finish();
}

// Store benchmarks (put + flush of one sealed record, …) go in their own `bench_store_*` functions and are added
// to the group list below; each creates its own `benchmark_group("store")`.

// ---- store (keys/store owner) ----------------------------------------------------------------------------------

/// Put + flush on a real sled store in a temporary directory: `replace_tokens` (seal meta and access token, one
/// multi-tree transaction, `flush`), and one sealed record inserted and flushed by hand, the floor beneath it.
/// Dominated by the `fsync` of the flush, so it measures this machine's disk as much as Tokenkeep.
fn bench_store_put_flush(c: &mut Criterion) {
    use std::sync::Arc;
    use tokenkeep_core::clock::ManualClock;
    use tokenkeep_core::keys::{KeySource, MemoryKeyStore};
    use tokenkeep_core::profile::{Profile, ProfilePaths};
    use tokenkeep_core::secret::SecretString;
    use tokenkeep_core::store::{ConnectionMeta, PROGRAM_CLI, TokenSet, Vault};

    let tmp = tempfile::tempdir().unwrap();
    let paths = ProfilePaths::resolve(Profile::parse("bench").unwrap(), Some(tmp.path().to_owned())).unwrap();
    let keys = KeySource::Keyring(Arc::new(MemoryKeyStore::new()));
    let vault = Vault::open(&paths, keys, Arc::new(ManualClock::at_unix(1_764_000_000)), PROGRAM_CLI).unwrap();
    let token = || String::from_utf8(token()).unwrap();
    let set = || TokenSet {
        access: SecretString::new(token()),
        refresh: None,
        id_token: None,
    };
    let meta = ConnectionMeta::new(ProviderId::parse("github").unwrap(), "octocat");
    let id = vault.put_connection(meta.clone(), &set()).unwrap();

    let mut g = c.benchmark_group("store_put_flush");
    g.bench_function("vault_replace_tokens_2KiB", |b| {
        b.iter_batched(
            set,
            |tokens| vault.replace_tokens(id, &tokens, &meta).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    drop(vault);

    let db = sled::open(tmp.path().join("raw")).unwrap();
    let tree = db.open_tree("tokens/github").unwrap();
    let master = MasterKey::from_bytes([0x5a; 32]);
    let pt = token();
    g.bench_function("sled_seal_insert_flush_2KiB", |b| {
        b.iter(|| {
            tree.insert(LOC.record_id, envelope::seal(&master, &LOC, pt.as_bytes()).unwrap())
                .unwrap();
            db.flush().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_envelope, bench_aead, bench_store_put_flush);
criterion_main!(benches);
