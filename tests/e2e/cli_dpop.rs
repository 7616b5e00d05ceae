//! Tokens bound to a key (DPoP, RFC 9449) with pushed authorization requests (RFC 9126), end to end: the built CLI
//! against the test peer in strict mode (`tests/js/peer.mjs`, `"strict": true`: PAR required, DPoP nonces
//! required, a client registered with `dpop_bound_access_tokens`), signing in through the real browser.
//!
//! The peer's resource server checks every proof (method, address, time, replay, the access token's hash, its
//! nonce, and the key against the token's `cnf.jkt`), so what it accepts and refuses is the platform's verdict,
//! not ours.

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tokenkeep_core::dpop::DpopKey;
use tokenkeep_e2e::cli::{Tokenkeep, decode_envelopes};
use tokenkeep_e2e::peer::{DPOP_CLIENT_ID, OidcPeer, PeerConfig, loopback_agent};

const CONNECTION: &str = "studio:alice@example.test";

/// The strict peer, and a headless installation with a custom provider discovered from it, using its
/// DPoP-bound client.
fn installation(test: &str) -> Result<(OidcPeer, Tokenkeep)> {
    let peer = OidcPeer::start(&PeerConfig {
        strict: true,
        ..PeerConfig::default()
    })?;
    let mut tk = Tokenkeep::headless(test)?;
    tk.ok(
        &[
            "providers",
            "add",
            "studio",
            "--issuer",
            peer.issuer(),
            "--display-name",
            "Studio",
            "--client-id",
            DPOP_CLIENT_ID,
        ],
        None,
    )?;
    tk.set_env("PEER_LOGIN", "alice");
    Ok((peer, tk))
}

/// A request to the peer with `Authorization: DPoP <token>`, and a proof from `key` when one is given; a
/// `use_dpop_nonce` answer is tried once more with the nonce, as a client that holds the key would.
fn resource_request(peer: &OidcPeer, token: &str, key: Option<&DpopKey>) -> Result<(u16, String)> {
    let url = format!("{}/api/echo", peer.issuer());
    let agent = loopback_agent();
    let mut nonce: Option<String> = None;
    for _ in 0..2 {
        let mut request = agent.get(&url).header("Authorization", &format!("DPoP {token}"));
        if let Some(key) = key {
            let proof = key.proof(
                &http::Method::GET,
                &url.parse()?,
                Some(token),
                nonce.as_deref(),
                tokenkeep_core::dpop::now_secs(),
            )?;
            request = request.header("DPoP", &proof);
        }
        let mut response = request.call()?;
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("WWW-Authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let fresh = response
            .headers()
            .get("DPoP-Nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if key.is_some() && challenge.contains("use_dpop_nonce") && fresh.is_some() && fresh != nonce {
            nonce = fresh;
            continue;
        }
        return Ok((status, format!("{challenge} {}", response.body_mut().read_to_string()?)));
    }
    anyhow::bail!("the peer kept asking for a new nonce")
}

/// Connect (pushed request, proofs on every call), inspect (the binding is shown, the key is not), use it through
/// `tokenkeep api` (the resource server takes the proofs), refuse to hand the token out, show that the same
/// token is refused by the platform without a proof and with another key's proof, refresh with rotation under the
/// same key, and disconnect: the revocation is accepted and nothing of the connection is left.
#[test]
fn cli_dpop_binds_a_connection_to_its_key_and_a_copied_token_is_useless() -> Result<()> {
    let (peer, tk) = installation("dpop-bound")?;
    let connected = tk.ok(&["connect", "studio"], None)?;
    ensure!(
        connected.stdout.contains("alice@example.test"),
        "connect printed {:?}",
        connected.stdout
    );
    let stats = peer.stats()?;
    ensure!(
        stats.par_requests >= 1,
        "the authorization request was not pushed: {stats:?}"
    );

    // The binding, as `show` tells it, is the key the platform bound the tokens to.
    let issued = peer.issued_tokens_of("alice")?;
    let access = issued
        .iter()
        .find(|t| t.kind == "AccessToken")
        .context("the peer issued no access token")?;
    let jkt = access.jkt.clone().context("the access token is not bound to a key")?;
    let shown = tk.ok(&["show", CONNECTION], None)?.stdout;
    ensure!(
        shown.contains(&format!("bound to a key (DPoP, ES256, thumbprint {jkt})")),
        "show does not name the binding:\n{shown}"
    );
    let json: Value = serde_json::from_str(&tk.ok(&["show", CONNECTION, "--json"], None)?.stdout)?;
    ensure!(
        json["binding"]["thumbprint"] == jkt.as_str(),
        "show --json: {}",
        json["binding"]
    );

    // Used through the vault: a proof per request, the resource server's nonce answered.
    // A discovered provider has no API base: its issuer's host is allowed, by whole URL.
    let echo_url = format!("{}/api/echo", peer.issuer());
    let echo: Value = serde_json::from_str(&tk.ok(&["api", CONNECTION, &echo_url], None)?.stdout)?;
    ensure!(echo["account"] == "alice", "the API answered {echo}");
    let me = format!("{}/me", peer.issuer());
    let userinfo: Value = serde_json::from_str(&tk.ok(&["api", CONNECTION, &me], None)?.stdout)?;
    ensure!(userinfo["sub"] == "alice", "userinfo answered {userinfo}");
    let seen = peer.api_requests()?;
    ensure!(
        seen.iter().any(|r| r.authorization == "dpop-valid"),
        "the resource server saw {seen:?}"
    );
    ensure!(
        seen.iter().all(|r| r.authorization.starts_with("dpop-")),
        "a request went without DPoP: {seen:?}"
    );

    // Not handed out: a bearer copy would be useless, and `token` says what to use instead.
    let refused = tk.run(&["token", CONNECTION], None)?;
    ensure!(!refused.status.success(), "`token` handed out a bound token");
    ensure!(
        refused.stderr.contains("bound to a key") && refused.stderr.contains("tokenkeep api"),
        "`token` said {:?}",
        refused.stderr
    );
    let exec = tk.run(&["exec", "--env", &format!("T={CONNECTION}"), "--", "true"], None)?;
    ensure!(
        !exec.status.success() && exec.stderr.contains("tokenkeep api"),
        "`exec` said {:?}",
        exec.stderr
    );

    // The platform's verdict on a copy of the token: refused without a proof, and with another key's proof.
    let (status, said) = resource_request(&peer, &access.value, None)?;
    ensure!(
        status == 401 && said.contains("invalid_token"),
        "no proof: HTTP {status} {said}"
    );
    let (status, said) = resource_request(&peer, &access.value, Some(&DpopKey::generate()?))?;
    ensure!(
        status == 401 && said.contains("invalid_token"),
        "another key: HTTP {status} {said}"
    );
    let kinds: Vec<String> = peer.api_requests()?.into_iter().map(|r| r.authorization).collect();
    ensure!(
        kinds.contains(&"dpop-no-proof".to_owned()) && kinds.contains(&"dpop-wrong-key".to_owned()),
        "the resource server saw {kinds:?}"
    );

    // A refresh rotates the refresh token; the new tokens are bound to the same key, and work.
    let before = peer.issued_tokens_of("alice")?.len();
    tk.ok(&["refresh", CONNECTION], None)?;
    let after = peer.issued_tokens_of("alice")?;
    ensure!(after.len() > before, "the refresh issued nothing");
    ensure!(
        after
            .iter()
            .all(|t| t.kind != "AccessToken" || t.jkt.as_deref() == Some(jkt.as_str())),
        "a refreshed token is bound to another key"
    );
    let echo: Value = serde_json::from_str(&tk.ok(&["api", CONNECTION, &echo_url], None)?.stdout)?;
    ensure!(echo["account"] == "alice", "after the refresh the API answered {echo}");

    // The sealed key travels in `export --envelopes`, and opens with FORMAT.md alone to the same key.
    let export = tk.ok(&["export", "--envelopes"], None)?.stdout;
    let decoded = decode_envelopes(&export, tk.master_key().context("headless")?)?;
    let keys: Vec<&Value> = decoded.iter().filter(|row| row["field"] == "dpop_key").collect();
    ensure!(
        keys.len() == 1 && keys[0]["thumbprint"] == jkt.as_str(),
        "the decoder opened {keys:?}"
    );
    // Reveal shows the tokens asked for, never the key.
    let revealed = tk.ok(&["show", CONNECTION, "--reveal", "--json"], None)?.stdout;
    let revealed: Value = serde_json::from_str(&revealed)?;
    let fields: Vec<&str> = revealed["tokens"]
        .as_array()
        .context("tokens")?
        .iter()
        .filter_map(|t| t["kind"].as_str())
        .collect();
    ensure!(
        fields == ["access_token", "refresh_token", "id_token"],
        "show --reveal lists {fields:?}"
    );

    // Disconnect revokes with a proof; the peer then holds no live token of alice's.
    tk.ok(&["disconnect", CONNECTION], None)?;
    let left = peer.tokens_of("alice")?;
    ensure!(left.active == 0, "alice still has live tokens at the peer: {left:?}");
    ensure!(tk.list_json()?.is_empty(), "the connection is still listed");

    // No token value anywhere in what the CLI printed or logged.
    let log = std::fs::read_to_string(tk.log_file()).unwrap_or_default();
    for token in peer.issued_tokens_of("alice")? {
        for (what, text) in [("the log", &log), ("show", &shown)] {
            ensure!(!text.contains(&token.value), "a {} appears in {what}", token.kind);
        }
    }
    Ok(())
}
