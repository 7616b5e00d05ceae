//! Bluesky through the AT Protocol's OAuth profile, end to end: the shipped `bluesky` preset with only its hosts
//! moved — bsky.social onto the strict test peer (PAR and DPoP nonces required, `sub` in token responses, the
//! atproto development client registered, and a PDS of its own: `/.well-known/oauth-protected-resource`, XRPC),
//! the PLC directory onto the identity emulation (`tests/js/atproto.mjs`), whose handles are `*.localhost` names
//! (`TOKENKEEP_LOCALHOST_PORT` sends them to it).
//!
//! The negative cases are the attacks the profile's checks exist for: a token for another account than the one
//! named, an authorization server that is not the one the account's PDS declares, and a handle whose DID does not
//! claim it back.

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tokenkeep_e2e::atproto::{AtprotoConfig, AtprotoEmulation, AtprotoIdentity, EmulatedPds, did_plc};
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::peer::{OidcPeer, PeerConfig};
use tokenkeep_e2e::workspace_root;

struct World {
    peer: OidcPeer,
    _identities: AtprotoEmulation,
    tk: Tokenkeep,
    alice: String,
    mallory: String,
}

/// The strict peer, the identity emulation with alice (on the peer's PDS), mallory (on a PDS that names another
/// authorization server), carol (whose DID document claims another handle), and a headless installation with
/// the shipped preset moved onto them.
fn world(test: &str) -> Result<World> {
    let peer = OidcPeer::start(&PeerConfig {
        strict: true,
        bsky_routes: true,
        ..PeerConfig::default()
    })?;
    let (alice, mallory, carol) = (did_plc("alice"), did_plc("mallory"), did_plc("carol"));
    let mut carol_identity = AtprotoIdentity::new("carol.localhost", &carol, peer.issuer());
    carol_identity.also_known_as = Some(vec!["at://someone-else.localhost".into()]);
    let identities = AtprotoEmulation::start(&AtprotoConfig {
        identities: vec![
            AtprotoIdentity::new("alice.localhost", &alice, peer.issuer()),
            AtprotoIdentity::new("mallory.localhost", &mallory, "http://evil-pds.localhost"),
            carol_identity,
        ],
        // A PDS whose authorization server is not the peer (and does not exist).
        pdses: vec![EmulatedPds::new("evil-pds.localhost", "http://127.0.0.1:9")],
    })?;
    let mut tk = Tokenkeep::headless(test)?;
    tk.set_env("TOKENKEEP_LOCALHOST_PORT", &identities.port().to_string());
    // Only the hosts move: bsky.social is the peer (issuer, endpoints, API), plc.directory the emulation.
    let shipped = std::fs::read_to_string(workspace_root().join("crates/core/providers/bluesky.toml"))?;
    let moved = shipped
        .replace("https://bsky.social", peer.issuer())
        .replace("https://plc.directory", identities.url())
        .replace("https://bsky.app", peer.issuer());
    let file = tk.profile_dir().join("bluesky-moved.toml");
    std::fs::create_dir_all(tk.profile_dir())?;
    std::fs::write(&file, moved)?;
    tk.ok(&["providers", "import", file.to_str().context("path")?], None)?;
    Ok(World {
        peer,
        _identities: identities,
        tk,
        alice,
        mallory,
    })
}

/// A handle signs in: resolved both ways, the request pushed, the tokens bound and checked to be alice's, from the
/// server her PDS names. The connection is shown by its handle, its data reached on her PDS through `tokenkeep
/// api`, refreshed (single-use refresh tokens, rotated) and disconnected.
#[test]
fn cli_bluesky_connects_a_handle_and_uses_its_pds() -> Result<()> {
    let mut w = world("bluesky-ok")?;
    w.tk.set_env("PEER_LOGIN", &w.alice);
    let connected = w.tk.ok(&["connect", "bluesky", "--account", "alice.localhost"], None)?;
    ensure!(
        connected.stdout.contains("alice.localhost"),
        "connect printed {:?}",
        connected.stdout
    );
    ensure!(w.peer.stats()?.par_requests >= 1, "the request was not pushed");
    let shown: Value = serde_json::from_str(&w.tk.ok(&["show", "bluesky:alice.localhost", "--json"], None)?.stdout)?;
    ensure!(
        shown["subject"] == w.alice.as_str(),
        "the subject is {}",
        shown["subject"]
    );
    ensure!(
        shown["binding"]["method"] == "DPoP",
        "the binding is {}",
        shown["binding"]
    );

    let session: Value = serde_json::from_str(
        &w.tk
            .ok(
                &["api", "bluesky:alice.localhost", "xrpc/com.atproto.server.getSession"],
                None,
            )?
            .stdout,
    )?;
    ensure!(session["did"] == w.alice.as_str(), "getSession answered {session}");
    ensure!(
        w.peer
            .api_requests()?
            .iter()
            .any(|r| r.authorization == "dpop-valid" && r.path.starts_with("/xrpc/")),
        "the PDS saw no valid proof"
    );

    w.tk.ok(&["refresh", "bluesky:alice.localhost"], None)?;
    let again: Value = serde_json::from_str(
        &w.tk
            .ok(
                &["api", "bluesky:alice.localhost", "/xrpc/com.atproto.server.getSession"],
                None,
            )?
            .stdout,
    )?;
    ensure!(
        again["did"] == w.alice.as_str(),
        "after the refresh getSession answered {again}"
    );
    w.tk.ok(&["disconnect", "bluesky:alice.localhost"], None)?;
    ensure!(
        w.peer.tokens_of(&w.alice)?.active == 0,
        "alice keeps live tokens at the server"
    );
    Ok(())
}

/// The attacks: a token for someone else than the account named; a server that issues tokens for an account
/// whose PDS names another authorization server; a handle that its DID does not claim; an account on another
/// server. Each is refused with one sentence, and nothing is stored.
#[test]
fn cli_bluesky_refuses_tokens_for_another_account_or_from_another_server() -> Result<()> {
    let mut w = world("bluesky-refused")?;
    let refused = |tk: &Tokenkeep, args: &[&str], expected: &str| -> Result<()> {
        let out = tk.run(args, None)?;
        ensure!(!out.status.success(), "`{}` succeeded", args.join(" "));
        ensure!(
            out.stderr.contains(expected),
            "`{}` said {:?}, expected {expected:?}",
            args.join(" "),
            out.stderr
        );
        ensure!(tk.list_json()?.is_empty(), "`{}` stored a connection", args.join(" "));
        Ok(())
    };

    // Named alice, signed in as mallory at the consent page: the tokens are mallory's.
    w.tk.set_env("PEER_LOGIN", &w.mallory);
    refused(
        &w.tk,
        &["connect", "bluesky", "--account", "alice.localhost"],
        &format!("the tokens are for {}", w.mallory),
    )?;

    // Started from the server, signed in as mallory: her PDS names another authorization server, so this one may
    // not speak for her.
    refused(
        &w.tk,
        &["connect", "bluesky", "--account", w.peer.issuer()],
        "names http://127.0.0.1:9 as its authorization server",
    )?;

    // Named mallory: refused before any browser opens, since her server is another one.
    let codes = w.peer.stats()?.code_exchanges;
    refused(
        &w.tk,
        &["connect", "bluesky", "--account", "mallory.localhost"],
        "is served by http://127.0.0.1:9",
    )?;
    ensure!(
        w.peer.stats()?.code_exchanges == codes,
        "a code was exchanged for mallory"
    );

    // carol.localhost resolves to a DID whose document claims another handle.
    refused(
        &w.tk,
        &["connect", "bluesky", "--account", "carol.localhost"],
        "does not list carol.localhost back",
    )?;

    // Nothing of the issued tokens leaked into the log.
    let log = std::fs::read_to_string(w.tk.log_file()).unwrap_or_default();
    for token in w.peer.issued_tokens_of(&w.mallory)? {
        ensure!(!log.contains(&token.value), "a {} is in the log", token.kind);
    }
    Ok(())
}

/// `providers client-metadata bluesky` prints the document a person hosts for their own client.
#[test]
fn cli_bluesky_prints_a_client_metadata_document() -> Result<()> {
    let tk = Tokenkeep::headless("bluesky-metadata")?;
    let url = "https://tokenkeep.example/client-metadata.json";
    let doc: Value = serde_json::from_str(
        &tk.ok(&["providers", "client-metadata", "bluesky", "--client-id", url], None)?
            .stdout,
    )?;
    ensure!(doc["client_id"] == url, "{doc}");
    ensure!(
        doc["application_type"] == "native" && doc["dpop_bound_access_tokens"] == true,
        "{doc}"
    );
    ensure!(doc["redirect_uris"][0] == "http://127.0.0.1/callback", "{doc}");
    ensure!(doc["token_endpoint_auth_method"] == "none", "{doc}");
    ensure!(doc["scope"] == "atproto transition:generic", "{doc}");
    let refused = tk.run(&["providers", "client-metadata", "youtube", "--client-id", url], None)?;
    ensure!(
        !refused.status.success() && refused.stderr.contains("not on the AT Protocol"),
        "{:?}",
        refused.stderr
    );
    Ok(())
}

/// An account whose authorization server is not bsky.social: `providers add NAME --atproto SERVER` reads that
/// server's metadata, checks it is an AT Protocol authorization server, and makes it a provider of its own on
/// the `bluesky` definition; a server that is not one is refused, naming what it lacks.
#[test]
fn cli_bluesky_adds_another_atproto_server_as_a_provider() -> Result<()> {
    let mut w = world("bluesky-own-server")?;
    let added = w.tk.ok(
        &[
            "providers",
            "add",
            "my-pds",
            "--atproto",
            "alice.localhost",
            "--display-name",
            "My PDS",
        ],
        None,
    )?;
    ensure!(
        added.stdout.contains("my-pds"),
        "providers add printed {:?}",
        added.stdout
    );
    let exported = w.tk.ok(&["providers", "export", "my-pds"], None)?.stdout;
    ensure!(
        exported.contains(&format!("issuer = \"{}\"", w.peer.issuer()))
            && exported.contains("dpop = \"required\"")
            && exported.contains("[atproto]"),
        "the new provider reads:\n{exported}"
    );
    w.tk.set_env("PEER_LOGIN", &w.alice);
    w.tk.ok(&["connect", "my-pds", "--account", "alice.localhost"], None)?;
    let session: Value = serde_json::from_str(
        &w.tk
            .ok(
                &["api", "my-pds:alice.localhost", "xrpc/com.atproto.server.getSession"],
                None,
            )?
            .stdout,
    )?;
    ensure!(session["did"] == w.alice.as_str(), "getSession answered {session}");

    // A plain OpenID server is not an atproto one.
    let plain = OidcPeer::start(&PeerConfig::default())?;
    let refused =
        w.tk.run(&["providers", "add", "not-atproto", "--atproto", plain.issuer()], None)?;
    ensure!(
        !refused.status.success() && refused.stderr.contains("is not an AT Protocol authorization server"),
        "adding a plain server said {:?}",
        refused.stderr
    );
    Ok(())
}
