//! What DPoP (RFC 9449) adds to a refresh: the same refresh-token grant, bearer and DPoP-bound, against the same
//! test peer in the same run, through Tokenkeep's own refresh call (`oauth::refresh_tokens` on the production
//! HTTP client), plus the proof signing on its own.
//!
//! The peer (non-strict) accepts DPoP without nonces, so both variants make one request per refresh and the
//! difference is the proof: made and signed by us (ES256), checked by the server (signature, `jti`, `cnf.jkt`).
//! With the strict peer (`DPOP_STRICT=1`) proofs need the server's nonce; after the first answer it is known, so
//! again one request each. The variants alternate in rounds, each on grants minted for it; the figure is the
//! median per refresh.
//!
//! `cargo bench -p tokenkeep-e2e --bench dpop_refresh` (`DPOP_REFRESHES`, default 300 per variant).
#![allow(clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, ensure};
use tokenkeep_core::dpop::DpopKey;
use tokenkeep_core::http::{ReqwestHttp, SharedHttp};
use tokenkeep_core::oauth::{ClientCredentials, Grant, refresh_tokens};
use tokenkeep_core::provider::ProviderSpec;
use tokenkeep_core::secret::SecretString;
use tokenkeep_e2e::peer::{DPOP_CLIENT_ID, MintRequest, OidcPeer, PUBLIC_CLIENT_ID, PeerConfig};

const ROUNDS: usize = 5;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn spec(peer: &OidcPeer) -> Result<ProviderSpec> {
    let issuer = peer.issuer();
    Ok(ProviderSpec::from_toml(
        "bench",
        &format!(
            r#"
            id = "bench"
            display_name = "Bench"
            issuer = "{issuer}"
            authorization_endpoint = "{auth}"
            token_endpoint = "{token}"
            identity = {{ source = "id_token" }}
            "#,
            auth = peer.authorization_endpoint()?,
            token = peer.token_endpoint()?,
        ),
    )?)
}

/// Refreshes each grant once (rotating its refresh token in place) and returns the time of each.
async fn refresh_all(
    spec: &ProviderSpec,
    client: &ClientCredentials,
    http: &SharedHttp,
    grants: &mut [SecretString],
    key: Option<&DpopKey>,
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(grants.len());
    for grant in grants.iter_mut() {
        let started = Instant::now();
        let refreshed = refresh_tokens(spec, client, Grant::RefreshToken(grant), key, http, SystemTime::now())
            .await
            .map_err(|e| anyhow::anyhow!("a refresh failed: {e}"))?;
        times.push(started.elapsed());
        if let Some(rotated) = refreshed.refresh {
            *grant = rotated;
        }
    }
    Ok(times)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let n = std::env::var("DPOP_REFRESHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300usize);
    let strict = std::env::var("DPOP_STRICT").is_ok_and(|v| v == "1");
    let peer = OidcPeer::start(&PeerConfig {
        strict,
        ..PeerConfig::default()
    })?;
    let spec = spec(&peer)?;
    let http: SharedHttp = Arc::new(ReqwestHttp::new()?);
    let key = DpopKey::generate()?;
    let per_round = n.div_ceil(ROUNDS);
    let mint = |client: &str, jkt: Option<&str>, count: usize| -> Result<Vec<SecretString>> {
        let mut request = MintRequest::new("bench");
        request.count = count;
        request.client_id = client.to_owned();
        request.jkt = jkt.map(str::to_owned);
        Ok(peer
            .mint_with(&request)?
            .into_iter()
            .map(|g| SecretString::new(g.refresh_token))
            .collect())
    };
    let bearer_client = ClientCredentials {
        client_id: PUBLIC_CLIENT_ID.into(),
        client_secret: None,
    };
    // The default peer binds any client's tokens that come with a proof; the strict one wants its DPoP client
    // (and has no bearer variant: every token it issues is bound).
    let bound_id = if strict { DPOP_CLIENT_ID } else { PUBLIC_CLIENT_ID };
    let dpop_client = ClientCredentials {
        client_id: bound_id.into(),
        client_secret: None,
    };
    ensure!(n > 0, "nothing to do");
    // Warm-up: connections, the peer's JIT, the server's nonce.
    if !strict {
        refresh_all(
            &spec,
            &bearer_client,
            &http,
            &mut mint(PUBLIC_CLIENT_ID, None, 5)?,
            None,
        )
        .await?;
    }
    let mut warm = mint(bound_id, Some(key.thumbprint()), 5)?;
    refresh_all(&spec, &dpop_client, &http, &mut warm, Some(&key)).await?;

    let (mut bearer, mut bound) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        if !strict {
            let mut grants = mint(PUBLIC_CLIENT_ID, None, per_round)?;
            bearer.extend(refresh_all(&spec, &bearer_client, &http, &mut grants, None).await?);
        }
        let mut grants = mint(bound_id, Some(key.thumbprint()), per_round)?;
        bound.extend(refresh_all(&spec, &dpop_client, &http, &mut grants, Some(&key)).await?);
    }

    // The proof alone: what the client adds per request.
    let uri: http::Uri = peer.token_endpoint()?.parse()?;
    let proofs = 2000;
    let started = Instant::now();
    for _ in 0..proofs {
        std::hint::black_box(key.proof(&http::Method::POST, &uri, None, Some("nonce"), 1)?);
    }
    let per_proof = started.elapsed() / proofs;

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "refresh with and without DPoP: {} refreshes each, {} peer, median per refresh",
        per_round * ROUNDS,
        if strict { "strict (nonces required)" } else { "default" }
    );
    if !strict {
        let (bearer, bound) = (median(bearer), median(bound));
        println!("  bearer refresh       {:>9.0} µs", us(bearer));
        println!(
            "  DPoP-bound refresh   {:>9.0} µs  (+{:.0} µs, {:.2}×: our proof, and the server checking it)",
            us(bound),
            us(bound) - us(bearer),
            us(bound) / us(bearer)
        );
    } else {
        println!("  DPoP-bound refresh   {:>9.0} µs", us(median(bound)));
    }
    println!(
        "  signing one proof    {:>9.1} µs  (ES256, in this process)",
        us(per_proof)
    );
    Ok(())
}
