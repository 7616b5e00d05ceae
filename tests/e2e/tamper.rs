//! The tamper suite (issue 12, F1): bytes flipped in each of the store's files, then the built CLI's read
//! commands, then `tokenkeep restore`. For every flip: no panic, no silent wrong answer, the files unchanged when
//! the store is refused, and every account back after a restore.
//!
//! In CI a deterministic sample is tried (a stride over each file, offset by a fixed seed). `cargo xtask tamper
//! --all` sets `TOKENKEEP_TAMPER_ALL=1` and tries every byte of every file, printing the counts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{ConnectionMeta, TokenSet};
use tokenkeep_e2e::cli::Tokenkeep;

/// Flips tried per file in the sampled run.
const SAMPLE: usize = 24;
/// The sample's seed: the first offset tried in each file's stride.
const SEED: usize = 7;

const ACCOUNTS: [&str; 3] = ["ana@tamper.test", "ben@tamper.test", "cleo@tamper.test"];

#[derive(Debug, Default)]
struct Counts {
    tried: usize,
    no_effect: usize,
    detected: usize,
    recovered: usize,
    silent: usize,
    panics: usize,
}

/// Every file below `dir` with its bytes.
fn read_all(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(read_all(&path)?);
        } else {
            out.insert(path.clone(), std::fs::read(&path)?);
        }
    }
    Ok(out)
}

/// Puts the profile directory back exactly as `clean` holds it (files outside it removed).
fn put_back(profile: &Path, clean: &BTreeMap<PathBuf, Vec<u8>>) -> Result<()> {
    for entry in std::fs::read_dir(profile)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n != "logs") {
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    for (path, bytes) in clean {
        std::fs::create_dir_all(path.parent().context("a parent")?)?;
        std::fs::write(path, bytes)?;
    }
    Ok(())
}

/// The accounts `list --json` shows intact, sorted, and how many entries are named damaged.
fn listed(list: &str) -> Result<(Vec<String>, usize)> {
    let entries: Vec<Value> = serde_json::from_str(list).with_context(|| format!("list printed {list:?}"))?;
    let mut accounts = Vec::new();
    let mut damaged = 0;
    for entry in &entries {
        match entry["account"].as_str() {
            Some(account) if entry["status"] != "damaged" => accounts.push(account.to_owned()),
            _ => damaged += 1,
        }
    }
    accounts.sort();
    Ok((accounts, damaged))
}

fn panicked(out: &tokenkeep_e2e::cli::CliOutput) -> bool {
    out.status.code() == Some(101) || out.stderr.contains("panicked")
}

/// Offsets to flip in `bytes`: within the part in use (sled preallocates its log segment with zeros), plus a
/// few in the zeroed rest.
fn offsets(bytes: &[u8], all: bool) -> Vec<usize> {
    let used = bytes.iter().rposition(|b| *b != 0).map_or(bytes.len(), |last| last + 1);
    let tail = bytes.len() - used;
    let in_tail = (0..4).map(|n| used + n * tail / 4 + SEED).filter(|o| *o < bytes.len());
    if all {
        return (0..used).chain(in_tail).collect();
    }
    let stride = (used / SAMPLE).max(1);
    (0..used).skip(SEED % stride).step_by(stride).chain(in_tail).collect()
}

fn seed(tk: &Tokenkeep) -> Result<()> {
    let vault = tk.open_vault()?;
    for (n, account) in ACCOUNTS.iter().enumerate() {
        let mut meta = ConnectionMeta::new(ProviderId::parse("demo")?, *account);
        meta.subject = Some(format!("subject-{n}"));
        meta.expires_at = Some(4_000_000_000);
        let tokens = TokenSet {
            access: SecretString::new(format!("tamper-access-{n}")),
            refresh: (n < 2).then(|| SecretString::new(format!("tamper-refresh-{n}"))),
            id_token: None,
            // One connection bound to a DPoP key: its sealed key is a record like the tokens, and is tampered
            // with like them.
            dpop_key: (n == 0).then(tokenkeep_core::dpop::DpopKey::generate).transpose()?,
        };
        vault.put_connection(meta, &tokens)?;
    }
    vault.settle_backups();
    Ok(())
}

#[test]
#[allow(clippy::print_stdout)] // the counts are the exhaustive run's report
fn flipped_bytes_in_every_store_file_are_detected_and_restored() -> Result<()> {
    let all = std::env::var_os("TOKENKEEP_TAMPER_ALL").is_some();
    let tk = Tokenkeep::headless("tamper")?;
    seed(&tk)?;
    // sled rewrites its files on the first open after writes: settle them, so a flip lands in what stays.
    tk.ok(&["list"], None)?;
    let expected: Vec<String> = ACCOUNTS.iter().map(|a| (*a).to_owned()).collect();
    let profile = tk.profile_dir();
    let clean = read_all(&profile)?;
    let sled = tk.store_dir().join("sled");
    let targets: Vec<(PathBuf, usize)> = clean
        .iter()
        .filter(|(path, bytes)| path.starts_with(&sled) && !bytes.is_empty())
        .map(|(path, bytes)| (path.clone(), bytes.len()))
        .collect();
    ensure!(
        targets.iter().any(|(p, _)| p.ends_with("db")),
        "no sled log among {targets:?}"
    );

    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut total = Counts::default();
    for (file, len) in &targets {
        let name = file.strip_prefix(&sled)?.display().to_string();
        let mut counts = Counts::default();
        for offset in offsets(&clean[file], all) {
            put_back(&profile, &clean)?;
            let mut bytes = clean[file].clone();
            bytes[offset] ^= 0x5a;
            std::fs::write(file, &bytes)?;
            let before = read_all(&tk.store_dir())?;
            counts.tried += 1;

            let list = tk.run(&["list", "--json"], None)?;
            let verify = tk.run(&["verify", "--json"], None)?;
            if panicked(&list) || panicked(&verify) {
                counts.panics += 1;
                failures.push(format!("{name}@{offset}: panic\n{}{}", list.stderr, verify.stderr));
                continue;
            }
            let detected = match list.status.code() {
                Some(0) => {
                    let (accounts, damaged) = listed(&list.stdout)?;
                    let verified_ok = verify.status.code() == Some(0);
                    if damaged == 0 && accounts == expected && verified_ok {
                        counts.no_effect += 1;
                        false
                    } else if damaged > 0 || verify.status.code() == Some(3) {
                        true
                    } else {
                        counts.silent += 1;
                        failures.push(format!(
                            "{name}@{offset}: silent: list {accounts:?}, verify {:?} {}",
                            verify.status.code(),
                            verify.stdout
                        ));
                        false
                    }
                }
                _ => {
                    let message = &list.stderr;
                    if !(message.contains("is damaged") && message.contains("Nothing was changed")) {
                        failures.push(format!("{name}@{offset}: unclear refusal: {message}"));
                    }
                    if read_all(&tk.store_dir())? != before {
                        failures.push(format!(
                            "{name}@{offset}: a refused store was changed by `list`/`verify`"
                        ));
                    }
                    true
                }
            };
            if !detected {
                continue;
            }
            counts.detected += 1;
            let restored = tk.run(&["restore"], None)?;
            if panicked(&restored) {
                counts.panics += 1;
            }
            match tk.run(&["list", "--json"], None) {
                Ok(out) if out.status.success() && listed(&out.stdout)? == (expected.clone(), 0) => {
                    counts.recovered += 1;
                }
                other => failures.push(format!(
                    "{name}@{offset}: not recovered: restore said {:?} {}; then {other:?}",
                    restored.status.code(),
                    restored.stderr
                )),
            }
        }
        report.push(format!(
            "{name} ({len} bytes): tried {}, no effect {}, detected {}, recovered {}, silent {}, panics {}",
            counts.tried, counts.no_effect, counts.detected, counts.recovered, counts.silent, counts.panics
        ));
        total.tried += counts.tried;
        total.no_effect += counts.no_effect;
        total.detected += counts.detected;
        total.recovered += counts.recovered;
        total.silent += counts.silent;
        total.panics += counts.panics;
    }
    println!("tamper ({}):", if all { "every byte" } else { "sample" });
    for line in &report {
        println!("  {line}");
    }
    println!("  total: {total:?}");
    if !failures.is_empty() {
        bail!("{} failure(s):\n{}", failures.len(), failures.join("\n"));
    }
    ensure!(
        total.detected > 0,
        "nothing was detected: the flips damaged nothing ({total:?})"
    );
    ensure!(total.recovered == total.detected, "{total:?}");
    Ok(())
}
