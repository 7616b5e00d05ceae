//! Benchmarks of the vault's hot paths: sealing and opening records, and the cipher beneath them.
//!
//! The `aead` group runs the same AES-256-CBC + HMAC-SHA-512/256 work through OpenSSL in the same process, so the
//! ratio to this machine's floor is visible. The OpenSSL side reuses its key object and its cipher and MAC
//! contexts across calls, as a real OpenSSL program would; only the IV is new each time. Before measuring, `assert_openssl_is_like_for_like` checks that the
//! OpenSSL path produces exactly Tokenkeep's bytes for the same IV.
#![allow(missing_docs, clippy::print_stdout, clippy::print_stderr)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use openssl::md::Md;
use openssl::md_ctx::MdCtx;
use openssl::pkey::{PKey, Private};
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

/// RFC 7518 §5.2.2 through OpenSSL, used as a careful OpenSSL user would: the HMAC key object and the cipher
/// contexts are made once and reused for every call (only the IV changes), so the reference pays no per-call
/// setup that a real program would avoid.
struct OpensslAead {
    pkey: PKey<Private>,
    mac: MdCtx,
    enc: CipherCtx,
    dec: CipherCtx,
}

impl OpensslAead {
    fn new(key: &[u8; 64]) -> Self {
        let mut enc = CipherCtx::new().unwrap();
        enc.encrypt_init(Some(Cipher::aes_256_cbc()), Some(&key[32..]), None)
            .unwrap();
        let mut dec = CipherCtx::new().unwrap();
        dec.decrypt_init(Some(Cipher::aes_256_cbc()), Some(&key[32..]), None)
            .unwrap();
        Self {
            pkey: PKey::hmac(&key[..32]).unwrap(),
            mac: MdCtx::new().unwrap(),
            enc,
            dec,
        }
    }

    fn tag(&mut self, iv: &[u8], aad: &[u8], c: &[u8]) -> [u8; TAG_LEN] {
        self.mac.digest_sign_init(Some(Md::sha512()), &self.pkey).unwrap();
        for part in [aad, iv, c, &(aad.len() as u64 * 8).to_be_bytes()] {
            self.mac.digest_sign_update(part).unwrap();
        }
        let mut full = [0u8; 64];
        self.mac.digest_sign_final(Some(&mut full)).unwrap();
        full[..TAG_LEN].try_into().unwrap()
    }

    /// `(C, T)` for a given IV.
    fn encrypt(&mut self, iv: &[u8], aad: &[u8], pt: &[u8]) -> (Vec<u8>, [u8; TAG_LEN]) {
        self.enc.encrypt_init(None, None, Some(iv)).unwrap();
        let mut c = Vec::with_capacity(pt.len() + 16);
        self.enc.cipher_update_vec(pt, &mut c).unwrap();
        self.enc.cipher_final_vec(&mut c).unwrap();
        let t = self.tag(iv, aad, &c);
        (c, t)
    }

    fn seal(&mut self, aad: &[u8], pt: &[u8]) -> ([u8; IV_LEN], Vec<u8>, [u8; TAG_LEN]) {
        let mut iv = [0u8; IV_LEN];
        getrandom::fill(&mut iv).unwrap();
        let (c, t) = self.encrypt(&iv, aad, pt);
        (iv, c, t)
    }

    fn open(&mut self, aad: &[u8], iv: &[u8], c: &[u8], t: &[u8]) -> Option<Vec<u8>> {
        // Verify first, in constant time, exactly as Tokenkeep does.
        if !openssl::memcmp::eq(&self.tag(iv, aad, c), t) {
            return None;
        }
        self.dec.decrypt_init(None, None, Some(iv)).unwrap();
        let mut p = Vec::with_capacity(c.len() + 16);
        self.dec.cipher_update_vec(c, &mut p).ok()?;
        self.dec.cipher_final_vec(&mut p).ok()?;
        Some(p)
    }
}

/// Same IV in, same bytes out, and each side opens the other's output: the comparison is like for like.
fn assert_openssl_is_like_for_like() {
    let key_bytes = aead_key_bytes();
    let key = AeadKey::from_bytes(key_bytes);
    let mut ossl = OpensslAead::new(&key_bytes);
    for len in [0, 15, 16, TOKEN_LEN, 64 * 1024] {
        let pt: Vec<u8> = token().into_iter().cycle().take(len).collect();
        let ours = crypto::seal(&key, AAD, &pt).unwrap();
        let (c, t) = ossl.encrypt(&ours.iv, AAD, &pt);
        assert_eq!(
            c, ours.ciphertext,
            "OpenSSL ciphertext differs for the same IV ({len} bytes)"
        );
        assert_eq!(
            t.as_slice(),
            ours.tag.as_slice(),
            "OpenSSL tag differs for the same IV ({len} bytes)"
        );
        let (iv, c, t) = ossl.seal(AAD, &pt);
        assert_eq!(crypto::open(&key, AAD, &iv, &c, &t).unwrap().dangerously_expose(), pt);
        assert_eq!(ossl.open(AAD, &ours.iv, &ours.ciphertext, &ours.tag).unwrap(), pt);
        let mut forged = ours.ciphertext.clone();
        forged[0] ^= 1;
        assert!(ossl.open(AAD, &ours.iv, &forged, &ours.tag).is_none());
    }
}

fn bench_envelope(c: &mut Criterion) {
    let master = MasterKey::from_bytes([0x5a; 32]);
    let mut g = c.benchmark_group("envelope");
    for len in [TOKEN_LEN, 64 * 1024] {
        let pt: Vec<u8> = token().into_iter().cycle().take(len).collect();
        let sealed = envelope::seal(&master, &LOC, &pt).unwrap();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("seal", len), &pt, |b, pt| {
            b.iter(|| envelope::seal(&master, black_box(&LOC), black_box(pt)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("open", len), &sealed, |b, sealed| {
            b.iter(|| envelope::open(&master, black_box(&LOC), black_box(sealed)).unwrap())
        });
    }
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
        let mut ossl = OpensslAead::new(&key_bytes);
        g.bench_with_input(BenchmarkId::new("openssl_seal", len), &pt, |b, pt| {
            b.iter(|| ossl.seal(AAD, black_box(pt)))
        });
        g.bench_with_input(BenchmarkId::new("openssl_open", len), &ours, |b, s| {
            b.iter(|| ossl.open(AAD, &s.iv, black_box(&s.ciphertext), &s.tag).unwrap())
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
        dpop_key: None,
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
    // The floor of a durable write: what sled's flush leaves undone (the drive cache, the file size) costs this.
    let log = std::fs::File::open(tmp.path().join("raw").join("db")).unwrap();
    g.bench_function("sled_seal_insert_flush_fdatasync_2KiB", |b| {
        b.iter(|| {
            tree.insert(LOC.record_id, envelope::seal(&master, &LOC, pt.as_bytes()).unwrap())
                .unwrap();
            db.flush().unwrap();
            log.sync_data().unwrap()
        })
    });
    g.finish();
}

/// What a backup costs at 1,000 connections (a full, sealed, MACed copy written atomically with fsync), next to
/// the write it follows (`replace_tokens` on the same store). The writer thread coalesces a burst of writes into
/// one backup, so this is the cost per write when writes come one at a time, its worst case.
fn bench_backup(c: &mut Criterion) {
    use std::sync::Arc;
    use tokenkeep_core::clock::ManualClock;
    use tokenkeep_core::keys::{KeySource, MemoryKeyStore};
    use tokenkeep_core::profile::{Profile, ProfilePaths};
    use tokenkeep_core::secret::SecretString;
    use tokenkeep_core::store::{ConnectionMeta, PROGRAM_CLI, TokenSet, Vault};

    const CONNECTIONS: usize = 1000;
    let tmp = tempfile::tempdir().unwrap();
    let paths = ProfilePaths::resolve(Profile::parse("bench").unwrap(), Some(tmp.path().to_owned())).unwrap();
    let keys = KeySource::Keyring(Arc::new(MemoryKeyStore::new()));
    let vault = Vault::open(&paths, keys, Arc::new(ManualClock::at_unix(1_764_000_000)), PROGRAM_CLI).unwrap();
    // A realistic mix: a 1 KiB access token (a JWT), a short refresh token, and the metadata.
    let set = |n: usize| TokenSet {
        access: SecretString::new(format!("{n:08}{}", "a".repeat(1016))),
        refresh: Some(SecretString::new(format!("rt-{n:08}-{}", "r".repeat(48)))),
        id_token: None,
        dpop_key: None,
    };
    let meta = |n: usize| {
        let mut m = ConnectionMeta::new(ProviderId::parse("youtube").unwrap(), format!("creator{n}@example.com"));
        m.scopes = vec![
            "openid".into(),
            "https://www.googleapis.com/auth/youtube.readonly".into(),
        ];
        m
    };
    let ids: Vec<_> = (0..CONNECTIONS)
        .map(|n| vault.put_connection(meta(n), &set(n)).unwrap())
        .collect();
    vault.settle_backups();
    let size = Vault::backups(&paths)[0].path.metadata().unwrap().len();
    println!("backup of {CONNECTIONS} connections: {size} bytes");

    let mut g = c.benchmark_group("backup_1000_connections");
    g.sample_size(20);
    g.bench_function("replace_tokens", |b| {
        let mut n = 0;
        b.iter(|| {
            n = (n + 1) % CONNECTIONS;
            vault.replace_tokens(ids[n], &set(n), &meta(n)).unwrap()
        })
    });
    g.bench_function("full_backup", |b| b.iter(|| vault.backup().unwrap()));
    g.finish();
}

criterion_group!(benches, bench_envelope, bench_aead, bench_store_put_flush, bench_backup);
criterion_main!(benches);
