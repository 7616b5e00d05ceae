// The atproto identity emulation: handle resolution, a PLC directory, did:web documents and PDS resource metadata
// on one loopback HTTP server, for Tokenkeep's end-to-end tests only. It never talks to anything but 127.0.0.1.
//
//   node tests/js/atproto.mjs [--config JSON]
//
// It binds 127.0.0.1 on an ephemeral port and prints ONE line on stdout, `{"url":"http://127.0.0.1:PORT",
// "port":PORT}`, when it is ready. Everything else (one line per request: method, host, path without query,
// status) goes to stderr. SIGTERM/SIGINT stop it cleanly.
//
// It answers by the request's Host header: the client under test maps every `*.localhost` name to this port, so
// requests arrive with `Host: alice.localhost` (a port in the Host header is allowed and ignored, except for a
// did:web whose domain carries one). Host names compare case-insensitively. What it serves (all GET):
//   Host = a handle              /.well-known/atproto-did → 200 text/plain, the DID alone
//                                (https://atproto.com/specs/handle#https-well-known-method); an unknown host → 404.
//                                The DNS TXT method (_atproto.HANDLE) is not emulated.
//   Host = 127.0.0.1 or plc.localhost: the PLC directory (https://web.plc.directory/api/redoc), i.e. the PLC URL
//                                is this server's url():
//                                /did:plc:XXXXXXXXXXXXXXXXXXXXXXXX → 200 application/did+ld+json, the DID document
//                                (the path may percent-encode the colons); a well-formed DID it does not know → 404
//                                {"message": "DID not registered: DID"}, as plc.directory answers; anything else
//                                that is not a did:plc → 400 {"message": "invalid DID"} (the emulation's choice:
//                                PLC does not document that answer).
//   Host = a did:web's domain    /.well-known/did.json → 200 application/json, its document
//                                (https://atproto.com/specs/did#did-web; `did:web:example.localhost`, or with a
//                                port percent-encoded, `did:web:localhost%3A8080`); unknown → 404.
//   Host = an emulated PDS       /.well-known/oauth-protected-resource → 200 {"resource", "authorization_servers",
//                                "bearer_methods_supported": ["header"]} (RFC 9728; atproto clients read it to find
//                                the PDS's authorization server,
//                                https://atproto.com/specs/oauth#identity-authentication); unknown → 404.
// Anything else → 404 {"error": "NotFound"}.
//
// DID documents (https://atproto.com/specs/did#did-documents): {"@context": [did v1, multikey v1, secp256k1-2019],
// "id": DID, "alsoKnownAs": [...], "verificationMethod": [{"id": "DID#atproto", "type": "Multikey", "controller":
// DID, "publicKeyMultibase": "z…"}], "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
// "serviceEndpoint": PDS}]}. The key is a real secp256k1 public key derived from the DID (deterministic, nobody
// holds a use for its private half); `service` is empty when the identity has no `pds`.
//
// Configuration, the same shape for `--config JSON` (at start) and POST /__admin/identities (replaces everything;
// an omitted list is empty; unknown keys are an error):
//   {"identities": [IDENTITY...], "pdses": [PDS...], "port"?: 0 (only at start: 0 = ephemeral)}
//   IDENTITY  {"handle": "alice.localhost", "did": "did:plc:…" | "did:web:…", "pds"?: "http://127.0.0.1:PEERPORT",
//              "alsoKnownAs"?: ["at://alice.localhost"], "serveHandle"?: true, "serveDocument"?: true}
//             `handle` follows the handle syntax (https://atproto.com/specs/handle#handle-identifier-syntax) and is
//             stored lowercased; `did` is `did:plc:` + 24 characters of lowercase base32 (a-z, 2-7), as PLC makes
//             them, or a did:web. `alsoKnownAs` defaults to ["at://HANDLE"]; set it to something else for a DID
//             document that does not claim the handle back (bidirectional verification must then fail).
//             `serveHandle: false` makes the handle's well-known answer 404 (the handle resolves to nothing);
//             `serveDocument: false` makes the DID's document 404 (the handle points at a DID that resolves to
//             nothing). Handles and DIDs are unique across identities.
//   PDS       {"host": "evil-pds.localhost", "authorizationServers": ["http://127.0.0.1:OTHER"], "resource"?: URL}
//             `resource` defaults to "http://HOST"; `host` may carry a port and is matched with or without one.
//
// TEST-ONLY admin endpoints (any Host):
//   POST /__admin/identities  the configuration above; answers {"identities": N, "pdses": M}.
//   GET  /__admin/identities  the configuration in force, defaults filled in.
//   GET  /__admin/stats       request counters since start: {"handleRequests", "handleMisses", "plcRequests",
//                             "plcMisses", "didWebRequests", "didWebMisses", "pdsMetadataRequests",
//                             "pdsMetadataMisses", "unmatchedRequests"}. Each `…Requests` counts every request of
//                             its kind, `…Misses` those answered 404/400; `unmatchedRequests` everything else (not
//                             the admin endpoints).

import { createECDH, createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const log = (...args) => console.error('atproto:', ...args);

const PLC_HOSTS = new Set(['127.0.0.1', 'plc.localhost']);
// https://atproto.com/specs/did#blessed-did-methods and https://web.plc.directory (the identifier is the first 24
// characters of a base32 SHA-256).
const DID_PLC = /^did:plc:[a-z2-7]{24}$/;
// did:web for a hostname, optionally with a percent-encoded port; atproto allows no path
// (https://atproto.com/specs/did#did-web).
const DID_WEB = /^did:web:([a-z0-9.-]+(?:%3a[0-9]+)?)$/i;
// https://atproto.com/specs/handle#handle-identifier-syntax
const HANDLE = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

const stats = {
  handleRequests: 0,
  handleMisses: 0,
  plcRequests: 0,
  plcMisses: 0,
  didWebRequests: 0,
  didWebMisses: 0,
  pdsMetadataRequests: 0,
  pdsMetadataMisses: 0,
  unmatchedRequests: 0,
};

function object(value, what) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} must be an object`);
  return value;
}

function onlyKeys(value, allowed, what) {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new Error(`unknown key ${JSON.stringify(key)} in ${what}`);
  }
}

function httpUrl(value, what) {
  const url = typeof value === 'string' && URL.parse(value);
  if (!url || !['http:', 'https:'].includes(url.protocol)) throw new Error(`${what} must be an http(s) URL`);
  return value;
}

function strings(value, what) {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new Error(`${what} must be a list of strings`);
  }
  return value;
}

function flag(value, fallback, what) {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new Error(`${what} must be a bool`);
  return value;
}

/** Validates a whole configuration into {identities, pdses}; throws with the first problem. */
function resolveConfig(input, { atStart }) {
  object(input, 'the configuration');
  onlyKeys(input, atStart ? ['identities', 'pdses', 'port'] : ['identities', 'pdses'], 'the configuration');
  const identities = (input.identities ?? []).map((raw, i) => {
    const what = `identities[${i}]`;
    object(raw, what);
    onlyKeys(raw, ['handle', 'did', 'pds', 'alsoKnownAs', 'serveHandle', 'serveDocument'], what);
    const handle = typeof raw.handle === 'string' ? raw.handle.toLowerCase() : '';
    if (!HANDLE.test(handle)) throw new Error(`${what}.handle is not a valid handle`);
    if (typeof raw.did !== 'string' || !(DID_PLC.test(raw.did) || DID_WEB.test(raw.did))) {
      throw new Error(`${what}.did must be did:plc:<24 of a-z2-7> or did:web:<domain>`);
    }
    return {
      handle,
      did: raw.did,
      pds: raw.pds === undefined ? undefined : httpUrl(raw.pds, `${what}.pds`),
      alsoKnownAs: raw.alsoKnownAs === undefined ? [`at://${handle}`] : strings(raw.alsoKnownAs, `${what}.alsoKnownAs`),
      serveHandle: flag(raw.serveHandle, true, `${what}.serveHandle`),
      serveDocument: flag(raw.serveDocument, true, `${what}.serveDocument`),
    };
  });
  for (const key of ['handle', 'did']) {
    const seen = new Set();
    for (const identity of identities) {
      if (seen.has(identity[key])) throw new Error(`two identities have the ${key} ${identity[key]}`);
      seen.add(identity[key]);
    }
  }
  const pdses = (input.pdses ?? []).map((raw, i) => {
    const what = `pdses[${i}]`;
    object(raw, what);
    onlyKeys(raw, ['host', 'authorizationServers', 'resource'], what);
    if (typeof raw.host !== 'string' || !/^[a-z0-9.-]+(:[0-9]+)?$/i.test(raw.host)) {
      throw new Error(`${what}.host must be a host name, optionally with a port`);
    }
    const host = raw.host.toLowerCase();
    const servers = strings(raw.authorizationServers, `${what}.authorizationServers`);
    servers.forEach((s, j) => httpUrl(s, `${what}.authorizationServers[${j}]`));
    return {
      host,
      authorizationServers: servers,
      resource: raw.resource === undefined ? `http://${host}` : httpUrl(raw.resource, `${what}.resource`),
    };
  });
  if (input.port !== undefined && !(Number.isInteger(input.port) && input.port >= 0 && input.port < 65536)) {
    throw new Error('port must be 0..65535');
  }
  return { identities, pdses, port: input.port ?? 0 };
}

const { values: cli } = parseArgs({ options: { config: { type: 'string' } } });
let config;
try {
  config = resolveConfig(JSON.parse(cli.config ?? '{}'), { atStart: true });
} catch (err) {
  log(`bad --config: ${err.message}`);
  process.exit(2);
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function base58btc(bytes) {
  let n = BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
  let out = '';
  while (n > 0n) {
    out = BASE58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const byte of bytes) {
    if (byte !== 0) break;
    out = `1${out}`;
  }
  return out;
}

/**
 * A did:key-style multibase secp256k1 public key (https://atproto.com/specs/cryptography#public-key-encoding):
 * "z" + base58btc(0xe7 0x01 + the 33-byte compressed point), derived from the DID so documents are stable.
 */
function multikeyFor(did) {
  const ecdh = createECDH('secp256k1');
  ecdh.setPrivateKey(createHash('sha256').update(`tokenkeep atproto emulation ${did}`).digest());
  return `z${base58btc(Buffer.concat([Buffer.from([0xe7, 0x01]), ecdh.getPublicKey(null, 'compressed')]))}`;
}

function didDocument(identity) {
  const { did } = identity;
  return {
    '@context': [
      'https://www.w3.org/ns/did/v1',
      'https://w3id.org/security/multikey/v1',
      'https://w3id.org/security/suites/secp256k1-2019/v1',
    ],
    id: did,
    alsoKnownAs: identity.alsoKnownAs,
    verificationMethod: [
      { id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: multikeyFor(did) },
    ],
    service: identity.pds
      ? [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: identity.pds }]
      : [],
  };
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

const json = (res, status, body, type = 'application/json') => send(res, status, type, JSON.stringify(body));
const notFound = (res) => json(res, 404, { error: 'NotFound', message: 'not found' });

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1024 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function publicConfig() {
  return { identities: config.identities, pdses: config.pdses };
}

async function admin(req, res, path) {
  if (path === '/__admin/stats' && req.method === 'GET') return json(res, 200, stats);
  if (path === '/__admin/identities' && req.method === 'GET') return json(res, 200, publicConfig());
  if (path === '/__admin/identities' && req.method === 'POST') {
    const next = resolveConfig(await readJson(req), { atStart: false });
    config = { ...next, port: config.port };
    log(`admin: ${config.identities.length} identities, ${config.pdses.length} PDSes`);
    return json(res, 200, { identities: config.identities.length, pdses: config.pdses.length });
  }
  return json(res, 404, { error: 'no such admin endpoint' });
}

/** The host name without a port, and the whole host, both lowercase; `[::1]:80` → `[::1]`. */
function splitHost(header) {
  const full = (header ?? '').toLowerCase();
  const name = full.startsWith('[') ? full.slice(0, full.indexOf(']') + 1) : full.replace(/:\d*$/, '');
  return { full, name };
}

function serve(req, res, path) {
  const { full, name } = splitHost(req.headers.host);
  if (req.method !== 'GET') {
    stats.unmatchedRequests += 1;
    return json(res, 405, { error: 'MethodNotAllowed', message: 'GET only' });
  }
  if (path === '/.well-known/atproto-did') {
    stats.handleRequests += 1;
    const identity = config.identities.find((i) => i.handle === name && i.serveHandle);
    if (!identity) {
      stats.handleMisses += 1;
      return send(res, 404, 'text/plain; charset=utf-8', 'no handle here\n');
    }
    return send(res, 200, 'text/plain; charset=utf-8', identity.did);
  }
  if (path === '/.well-known/did.json') {
    stats.didWebRequests += 1;
    const identity = config.identities.find((i) => {
      const domain = DID_WEB.exec(i.did)?.[1].toLowerCase().replace('%3a', ':');
      return i.serveDocument && domain !== undefined && (domain === full || domain === name);
    });
    if (!identity) {
      stats.didWebMisses += 1;
      return notFound(res);
    }
    return json(res, 200, didDocument(identity));
  }
  if (path === '/.well-known/oauth-protected-resource') {
    stats.pdsMetadataRequests += 1;
    const pds = config.pdses.find((p) => p.host === full || p.host === name);
    if (!pds) {
      stats.pdsMetadataMisses += 1;
      return notFound(res);
    }
    // RFC 9728 §3.2.
    return json(res, 200, {
      resource: pds.resource,
      authorization_servers: pds.authorizationServers,
      bearer_methods_supported: ['header'],
    });
  }
  if (PLC_HOSTS.has(name) && path.length > 1 && !path.slice(1).includes('/')) {
    stats.plcRequests += 1;
    let did;
    try {
      did = decodeURIComponent(path.slice(1));
    } catch {
      did = '';
    }
    if (!DID_PLC.test(did)) {
      stats.plcMisses += 1;
      return json(res, 400, { message: 'invalid DID' });
    }
    const identity = config.identities.find((i) => i.did === did && i.serveDocument);
    if (!identity) {
      stats.plcMisses += 1;
      return json(res, 404, { message: `DID not registered: ${did}` });
    }
    return json(res, 200, didDocument(identity), 'application/did+ld+json; charset=utf-8');
  }
  stats.unmatchedRequests += 1;
  return notFound(res);
}

const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://127.0.0.1').pathname;
  res.on('finish', () => log(`${req.method} ${req.headers.host ?? '-'} ${path} ${res.statusCode}`));
  if (path.startsWith('/__admin/')) {
    admin(req, res, path).catch((err) => json(res, 400, { error: err.message }));
    return;
  }
  if (!req.headers.host) {
    stats.unmatchedRequests += 1;
    json(res, 400, { error: 'InvalidRequest', message: 'no Host header' });
    return;
  }
  serve(req, res, path);
});

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port, '127.0.0.1', resolve);
});
const { port } = server.address();
const url = `http://127.0.0.1:${port}`;

function stop(signal) {
  log(`${signal}: stopping`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

process.stdout.write(`${JSON.stringify({ url, port })}\n`);
log(`ready at ${url}`);
