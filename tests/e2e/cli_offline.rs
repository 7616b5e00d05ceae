//! Offline inspection through the built CLI: `export --envelopes` opened by an independent decoder, `verify`
//! naming a tampered record, and the read commands running with no network at all.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use serde_json::Value;
use tokenkeep_e2e::cli::{Tokenkeep, connected_id, decode_envelopes};
use tokenkeep_e2e::peer::{OidcPeer, PeerConfig};

/// A headless installation with one demo account connected through the real browser flow.
fn connected(test: &str) -> Result<(OidcPeer, Tokenkeep, String)> {
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let tk = Tokenkeep::headless(test)?;
    tk.ok(&["providers", "add", "demo", "--issuer", peer.issuer()], None)?;
    let id = connected_id(&tk.ok(&["connect", "demo"], None)?)?;
    Ok((peer, tk, id))
}

/// What `export --envelopes` prints opens with nothing but docs/FORMAT.md and the master key — in another
/// language and crypto library — and holds no plaintext itself. Then a byte flipped in one stored envelope is
/// found by `verify`, which names exactly that record, while every other record stays readable.
#[test]
fn export_opens_independently_and_verify_names_a_tampered_record() -> Result<()> {
    let (_peer, tk, id) = connected("cli-export")?;
    let key = tk.master_key().context("headless")?.to_owned();
    let tokens = {
        let vault = tk.open_vault()?;
        let t = vault.tokens(id.parse().map_err(|_| anyhow!("bad id"))?)?;
        (
            t.access.dangerously_expose().to_owned(),
            t.refresh
                .as_ref()
                .map(|r| r.dangerously_expose().to_owned())
                .context("refresh token")?,
        )
    };

    let export = tk.ok(&["export", "--envelopes"], None)?.stdout;
    for secret in [&tokens.0, &tokens.1, &"alice@example.test".to_owned()] {
        ensure!(!export.contains(secret.as_str()), "the export contains plaintext");
    }
    let rows: Vec<Value> = export.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let fields: Vec<&str> = rows.iter().filter_map(|r| r["field"].as_str()).collect();
    for wanted in ["meta", "access_token", "refresh_token", "id_token"] {
        ensure!(fields.contains(&wanted), "no {wanted} record in the export: {fields:?}");
    }

    let decoded = decode_envelopes(&export, &key)?;
    ensure!(
        decoded.len() == rows.len(),
        "decoded {} of {} records",
        decoded.len(),
        rows.len()
    );
    let plain = |field: &str| -> Result<&str> {
        decoded
            .iter()
            .find(|d| d["field"] == field && d["record_id"] == id.as_str())
            .and_then(|d| d["plaintext"].as_str())
            .ok_or_else(|| anyhow!("the decoder did not open {field}: {decoded:?}"))
    };
    ensure!(
        plain("access_token")? == tokens.0,
        "the independent decoder read another access token"
    );
    ensure!(
        plain("refresh_token")? == tokens.1,
        "the independent decoder read another refresh token"
    );
    let meta: Value = serde_json::from_str(plain("meta")?)?;
    ensure!(
        meta["account"] == "alice@example.test" && meta["provider"] == "demo",
        "meta decoded as {meta}"
    );
    // The account picture, sealed like the rest: the media type the document names, and a PNG.
    let picture = decoded
        .iter()
        .find(|d| d["tree"] == "pictures" && d["record_id"] == id.as_str())
        .ok_or_else(|| anyhow!("no picture record was exported: {decoded:?}"))?;
    ensure!(picture["media_type"] == "image/png", "the picture decoded as {picture}");
    let image = base64::engine::general_purpose::STANDARD.decode(picture["image"].as_str().unwrap_or_default())?;
    ensure!(image.starts_with(b"\x89PNG"), "the picture is not a PNG");
    // And with the wrong key it opens nothing.
    let wrong = decode_envelopes(&export, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    ensure!(wrong.is_err(), "a wrong key must not open the export");

    let verified = tk.ok(&["verify"], None)?;
    ensure!(
        verified.stdout.contains("all intact"),
        "verify said {:?}",
        verified.stdout
    );

    // Tamper with one stored envelope: flip a byte of the access token's ciphertext, as a disk fault or an
    // attacker with write access would.
    let store = tk.store_dir().join("sled");
    let db = open_sled(&store)?;
    let tree = db.open_tree("tokens/demo")?;
    let mut key_bytes = hex_decode(&id)?;
    key_bytes.push(0);
    key_bytes.extend_from_slice(b"access_token");
    let mut value = tree.get(&key_bytes)?.context("the access token record")?.to_vec();
    let middle = value.len() / 2;
    value[middle] ^= 0x40;
    tree.insert(&key_bytes, value)?;
    db.flush()?;
    drop(tree);
    drop(db);

    let damaged = tk.run(&["verify"], None)?;
    damaged.ensure_code(3)?;
    for expected in ["tokens/demo", id.as_str(), "access_token", "could not be decrypted"] {
        ensure!(
            damaged.stdout.contains(expected),
            "verify did not name {expected:?}: {}",
            damaged.stdout
        );
    }
    let report: Value = serde_json::from_str(&tk.run(&["verify", "--json"], None)?.stdout)?;
    ensure!(
        report["ok"] == false && report["problems"].as_array().map(Vec::len) == Some(1),
        "{report}"
    );
    // Nothing was deleted and the rest still reads: the connection is listed, its refresh token is intact.
    let list = tk.list_json()?;
    ensure!(
        list.len() == 1 && list[0]["id"] == id.as_str(),
        "list after tampering: {list:?}"
    );
    let after = tk.ok(&["export", "--envelopes"], None)?.stdout;
    ensure!(after.lines().count() == rows.len(), "records disappeared");
    Ok(())
}

/// `list`, `verify`, `export` and `paths` need no network: they run in an empty network namespace (not even
/// loopback is up). A command that does need the network fails there, which shows the namespace is real.
#[test]
fn offline_commands_run_without_any_network() -> Result<()> {
    let (_peer, tk, id) = connected("cli-offline")?;
    let unshare = unshare_net()?;
    let wrapper: Vec<&str> = unshare.iter().map(String::as_str).collect();
    let started = Instant::now();
    for args in [
        &["list", "--json"][..],
        &["list"],
        &["verify"],
        &["verify", "--json"],
        &["export", "--envelopes"],
        &["paths"],
    ] {
        let out = tk.run_wrapped(&wrapper, args)?;
        out.ensure_code(0)
            .with_context(|| format!("`tokenkeep {}` failed without a network", args.join(" ")))?;
    }
    let listed: Vec<Value> = serde_json::from_str(&tk.run_wrapped(&wrapper, &["list", "--json"])?.stdout)?;
    ensure!(
        listed.len() == 1 && listed[0]["id"] == id.as_str(),
        "offline list: {listed:?}"
    );
    // The control: refreshing needs the provider, which is unreachable in the namespace.
    let refresh = tk.run_wrapped(&wrapper, &["refresh", &id])?;
    ensure!(
        !refresh.status.success(),
        "refresh succeeded without a network: the namespace is not isolated"
    );
    ensure!(
        refresh.stderr.contains("(network)"),
        "refresh failed for another reason: {}",
        refresh.stderr
    );
    ensure!(
        started.elapsed() < Duration::from_secs(60),
        "offline commands were slow"
    );
    Ok(())
}

/// `unshare --net` (root) or `unshare --net --map-root-user` (others): a new, empty network namespace.
fn unshare_net() -> Result<Vec<String>> {
    let root = Command::new("id").arg("-u").output()?.stdout.starts_with(b"0\n");
    let mut wrapper = vec!["unshare".to_owned(), "--net".to_owned()];
    if !root {
        wrapper.push("--map-root-user".to_owned());
    }
    let probe = Command::new(&wrapper[0]).args(&wrapper[1..]).arg("true").status()?;
    if !probe.success() {
        bail!(
            "`{}` failed: this test needs network namespaces (util-linux unshare)",
            wrapper.join(" ")
        );
    }
    Ok(wrapper)
}

/// sled lets go of its lock a moment after the last handle closes; the CLI may have just exited.
fn open_sled(path: &std::path::Path) -> Result<sled::Db> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sled::open(path) {
            Ok(db) => return Ok(db),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn hex_decode(hex: &str) -> Result<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).context("odd hex")?, 16).map_err(Into::into))
        .collect()
}

/// `tokenkeep … | head -1`: when the reader goes away, every command stops quietly (exit 0, nothing on stderr), as
/// Unix tools do, instead of panicking on the broken pipe.
#[test]
fn a_closed_pipe_ends_every_command_quietly() -> Result<()> {
    let tk = Tokenkeep::headless("closed-pipe")?;
    let id = {
        let vault = tk.open_vault()?;
        let mut meta = tokenkeep_core::store::ConnectionMeta::new(
            tokenkeep_core::provider::ProviderId::parse("demo")?,
            "pipe@example.test",
        );
        meta.expires_at = Some(tokenkeep_e2e::seed::now_secs() + 86_400);
        let tokens = tokenkeep_core::store::TokenSet {
            access: tokenkeep_core::secret::SecretString::new("access-token-for-the-pipe-test".into()),
            refresh: None,
            id_token: None,
            dpop_key: None,
        };
        vault.put_connection(meta, &tokens)?.to_hex()
    };
    let cases: [&[&str]; 10] = [
        &["list"],
        &["list", "--json"],
        &["verify"],
        &["verify", "--json"],
        &["show", &id],
        &["show", &id, "--json"],
        &["providers", "list"],
        &["providers", "list", "--json"],
        &["paths"],
        &["token", &id],
    ];
    for args in cases {
        // Several runs each: where the write falls relative to the exit used to decide between a panic and not.
        for _ in 0..3 {
            let (status, stderr) = tk.run_into_closed_pipe(args)?;
            ensure!(
                status.code() == Some(0) && stderr.is_empty(),
                "`tokenkeep {}` into a closed pipe ended with {status}: {stderr}",
                args.join(" ")
            );
        }
    }
    Ok(())
}
