//! The atproto identity emulation (`tests/js/atproto.mjs`) seen from Rust: handle resolution
//! (`/.well-known/atproto-did`), a PLC directory, did:web documents and PDS resource metadata, served by the
//! request's Host header on one loopback port. The rules and answers are documented in the script's header.
//!
//! **Invariant:** everything here talks to 127.0.0.1 only; the client under test reaches the emulated
//! `*.localhost` names by mapping them to [`AtprotoEmulation::port`], never through DNS.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::Guarded;
use crate::peer::{NodeServer, loopback_agent, start_node_server};

/// One account's identity: its handle, its DID and the DID document's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtprotoIdentity {
    /// The handle, e.g. `alice.localhost` (its host answers `/.well-known/atproto-did`).
    pub handle: String,
    /// `did:plc:…` (served by the PLC directory, see [`did_plc`]) or `did:web:DOMAIN` (served by DOMAIN).
    pub did: String,
    /// The PDS URL the DID document names (`#atproto_pds`); `None`: a document without a PDS.
    pub pds: Option<String>,
    /// The document's `alsoKnownAs`; `None`: `["at://HANDLE"]`. Anything else makes a document that does not
    /// claim the handle back.
    pub also_known_as: Option<Vec<String>>,
    /// Whether the handle's well-known answers (default true); false: the handle resolves to nothing.
    pub serve_handle: bool,
    /// Whether the DID document is served (default true); false: the DID resolves to nothing.
    pub serve_document: bool,
}

impl AtprotoIdentity {
    /// `handle` → `did`, whose document claims the handle back and names `pds`.
    pub fn new(handle: &str, did: &str, pds: &str) -> Self {
        Self {
            handle: handle.to_owned(),
            did: did.to_owned(),
            pds: Some(pds.to_owned()),
            also_known_as: None,
            serve_handle: true,
            serve_document: true,
        }
    }

    fn to_json(&self) -> Value {
        let mut body = json!({
            "handle": self.handle,
            "did": self.did,
            "serveHandle": self.serve_handle,
            "serveDocument": self.serve_document,
        });
        if let Some(pds) = &self.pds {
            body["pds"] = pds.as_str().into();
        }
        if let Some(aka) = &self.also_known_as {
            body["alsoKnownAs"] = aka.clone().into();
        }
        body
    }
}

/// A PDS host whose RFC 9728 metadata (`/.well-known/oauth-protected-resource`) the emulation serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedPds {
    /// The host name (optionally with a port), e.g. `evil-pds.localhost`.
    pub host: String,
    /// The `authorization_servers` it names.
    pub authorization_servers: Vec<String>,
    /// The `resource` it names; `None`: `http://HOST`.
    pub resource: Option<String>,
}

impl EmulatedPds {
    /// `host` naming `authorization_server` as its only authorization server.
    pub fn new(host: &str, authorization_server: &str) -> Self {
        Self {
            host: host.to_owned(),
            authorization_servers: vec![authorization_server.to_owned()],
            resource: None,
        }
    }

    fn to_json(&self) -> Value {
        let mut body = json!({ "host": self.host, "authorizationServers": self.authorization_servers });
        if let Some(resource) = &self.resource {
            body["resource"] = resource.as_str().into();
        }
        body
    }
}

/// Everything the emulation serves; [`AtprotoEmulation::set_identities`] replaces it all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AtprotoConfig {
    /// The identities (handles and DIDs).
    pub identities: Vec<AtprotoIdentity>,
    /// The PDS hosts with resource metadata.
    pub pdses: Vec<EmulatedPds>,
}

impl AtprotoConfig {
    fn to_json(&self) -> Value {
        json!({
            "identities": self.identities.iter().map(AtprotoIdentity::to_json).collect::<Vec<_>>(),
            "pdses": self.pdses.iter().map(EmulatedPds::to_json).collect::<Vec<_>>(),
        })
    }
}

/// The emulation's request counters (`GET /__admin/stats`), since it started. Each `…_requests` counts every
/// request of its kind, `…_misses` those it answered 404 (or 400).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AtprotoStats {
    /// `/.well-known/atproto-did` requests.
    pub handle_requests: u64,
    /// … for a host that is no (served) handle.
    pub handle_misses: u64,
    /// PLC directory lookups.
    pub plc_requests: u64,
    /// … for a DID it does not serve, or not a did:plc.
    pub plc_misses: u64,
    /// `/.well-known/did.json` requests.
    pub did_web_requests: u64,
    /// … for a host that is no (served) did:web.
    pub did_web_misses: u64,
    /// `/.well-known/oauth-protected-resource` requests.
    pub pds_metadata_requests: u64,
    /// … for a host that is no emulated PDS.
    pub pds_metadata_misses: u64,
    /// Anything else (admin requests aside).
    pub unmatched_requests: u64,
}

/// A running atproto identity emulation. Its whole process group is stopped on drop.
#[derive(Debug)]
pub struct AtprotoEmulation {
    url: String,
    port: u16,
    log: PathBuf,
    agent: ureq::Agent,
    _process: Guarded,
}

impl AtprotoEmulation {
    /// Starts `node tests/js/atproto.mjs --config …` and waits (with a time limit) for its address. Its log goes
    /// to `atproto.log` in a fresh scratch directory ([`Self::log_path`]).
    pub fn start(config: &AtprotoConfig) -> Result<Self> {
        let NodeServer {
            process,
            address: url,
            port,
            log,
        } = start_node_server(
            "atproto.mjs",
            "the atproto identity emulation",
            "atproto-emulation",
            &config.to_json(),
            "url",
        )?;
        let agent = loopback_agent();
        Ok(Self {
            url,
            port,
            log,
            agent,
            _process: process,
        })
    }

    /// `http://127.0.0.1:PORT`: also the PLC directory's URL (it answers `GET /did:plc:…` on this host).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port on 127.0.0.1 that the client under test maps `*.localhost` names to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its log (stderr): one line per request (method, Host, path, status).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// TEST-ONLY admin: replaces every identity and PDS it serves.
    pub fn set_identities(&self, config: &AtprotoConfig) -> Result<()> {
        let url = format!("{}/__admin/identities", self.url);
        let mut response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(config.to_json().to_string())
            .with_context(|| format!("POST {url} failed"))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        ensure!(status == 200, "{url} answered HTTP {status}: {text}");
        Ok(())
    }

    /// TEST-ONLY admin: the request counters.
    pub fn stats(&self) -> Result<AtprotoStats> {
        let url = format!("{}/__admin/stats", self.url);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url} failed"))?;
        ensure!(response.status() == 200, "stats answered HTTP {}", response.status());
        let body: Value = serde_json::from_str(&response.body_mut().read_to_string()?)?;
        let field = |name: &str| {
            body[name]
                .as_u64()
                .ok_or_else(|| anyhow!("stats lack {name:?}: {body}"))
        };
        Ok(AtprotoStats {
            handle_requests: field("handleRequests")?,
            handle_misses: field("handleMisses")?,
            plc_requests: field("plcRequests")?,
            plc_misses: field("plcMisses")?,
            did_web_requests: field("didWebRequests")?,
            did_web_misses: field("didWebMisses")?,
            pds_metadata_requests: field("pdsMetadataRequests")?,
            pds_metadata_misses: field("pdsMetadataMisses")?,
            unmatched_requests: field("unmatchedRequests")?,
        })
    }
}

/// A syntactically valid did:plc made deterministically from `seed`: `did:plc:` + the first 24 characters of
/// the lowercase base32 (RFC 4648, `a-z2-7`) SHA-256 of the seed, the same shape as PLC's (which hashes the
/// genesis operation; <https://web.plc.directory>). Different seeds give different DIDs.
pub fn did_plc(seed: &str) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let digest = Sha256::digest(seed.as_bytes());
    // 24 characters × 5 bits = the first 15 bytes.
    let mut id = String::with_capacity(24);
    let (mut buffer, mut bits) = (0_u32, 0_u32);
    for &byte in &digest[..15] {
        // Only the low 12 bits are ever pending.
        buffer = ((buffer << 8) | u32::from(byte)) & 0xffff;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            id.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    format!("did:plc:{id}")
}

#[cfg(test)]
mod tests {
    use super::{AtprotoConfig, AtprotoEmulation, AtprotoIdentity, did_plc};

    #[test]
    fn the_emulation_serves_a_plc_document_and_counts_it() -> anyhow::Result<()> {
        let did = did_plc("alice");
        let config = AtprotoConfig {
            identities: vec![AtprotoIdentity::new("alice.localhost", &did, "http://127.0.0.1:9")],
            ..AtprotoConfig::default()
        };
        let emulation = AtprotoEmulation::start(&config)?;
        let mut found = emulation.agent.get(format!("{}/{did}", emulation.url())).call()?;
        assert_eq!(found.status(), 200);
        let document: serde_json::Value = serde_json::from_str(&found.body_mut().read_to_string()?)?;
        assert_eq!(document["id"], did.as_str());
        assert_eq!(document["alsoKnownAs"][0], "at://alice.localhost");
        assert_eq!(document["service"][0]["serviceEndpoint"], "http://127.0.0.1:9");

        emulation.set_identities(&AtprotoConfig::default())?;
        let gone = emulation.agent.get(format!("{}/{did}", emulation.url())).call()?;
        assert_eq!(gone.status(), 404, "set_identities replaces everything");
        let stats = emulation.stats()?;
        assert_eq!((stats.plc_requests, stats.plc_misses), (2, 1));
        Ok(())
    }

    #[test]
    fn did_plc_is_deterministic_and_well_formed() {
        let did = did_plc("alice");
        assert_eq!(did, did_plc("alice"));
        assert_ne!(did, did_plc("bob"));
        let id = did.strip_prefix("did:plc:").expect("the did:plc prefix");
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')), "{did}");
    }
}
