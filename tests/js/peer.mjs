// The OAuth 2.0 / OpenID Connect test peer: a loopback authorization server built on `oidc-provider`, for
// Tokenkeep's end-to-end tests only. It never talks to anything but 127.0.0.1.
//
//   node tests/js/peer.mjs [--config JSON]
//
// It binds 127.0.0.1 on an ephemeral port first, then builds the issuer as exactly `http://127.0.0.1:PORT`, then
// prints ONE line on stdout, `{"issuer":"http://127.0.0.1:PORT","port":PORT}`, when it is ready. Everything else
// (one line per request: method, path without query, status) goes to stderr. SIGTERM/SIGINT stop it cleanly.
//
// Clients (fixed ids):
//   tokenkeep-public  public native client: token_endpoint_auth_method "none", application_type "native".
//   tokenkeep-basic   confidential, client_secret_basic, secret `basicSecret` (default "tokenkeep-basic-secret").
//   tokenkeep-post    confidential, client_secret_post, secret `postSecret` (default "tokenkeep-post-secret").
// All three are native clients with the loopback redirect URIs http://127.0.0.1/callback, http://localhost/callback
// and http://[::1]/callback registered WITHOUT a port: for native clients oidc-provider then accepts any port on
// that host (RFC 8252 §7.3); the three hosts are separate entries. PKCE (S256) is required for every client.
// Grant types: authorization_code and refresh_token; response type: code only.
//
// Extra clients of the strict peer only (`strict: true`), all public native clients like tokenkeep-public (auth
// "none", the same loopback rules) that MUST use DPoP (`dpop_bound_access_tokens: true`: oidc-provider refuses
// their token requests without a DPoP proof, RFC 9449 §5):
//   tokenkeep-dpop      the three loopback redirect URIs above.
//   http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric
//                       the atproto "localhost" development client
//                       (https://atproto.com/specs/oauth#localhost-client-development): its metadata is implied
//                       by the client_id itself, redirect URI http://127.0.0.1/callback (any port, as above),
//                       scope "atproto transition:generic".
//   https://tokenkeep.example/client-metadata.json
//                       an atproto "hosted" client, same settings. A real atproto authorization server fetches a
//                       client's metadata from its client_id URL; the peer cannot (loopback only), so both are
//                       registered STATICALLY under exactly these ids. oidc-provider accepts any string as a static
//                       client_id; its own client-id-metadata-document feature stays off (it would fetch https).
// Both atproto clients are limited to the scopes "atproto transition:generic" (their metadata's `scope`: any other
// scope is invalid_scope), and a pushed authorization request of theirs without `atproto` is refused with 400
// invalid_scope (https://atproto.com/specs/oauth#scopes: the atproto scope is required).
//
// Accounts: the dev login page accepts any login name and password; the login name becomes the account id and
// `sub`. Claims derived from it: login "alice" → email "alice@example.test" (verified), name "Alice",
// preferred_username "alice".
//
// Scopes: openid profile email offline_access videos.read videos.upload atproto transition:generic (the last two
// are atproto's, https://atproto.com/specs/oauth#scopes; in every mode). A refresh token is issued to every client
// allowed the refresh_token grant, whether or not offline_access was granted (the `issueRefreshToken` hook;
// oidc-provider's default wants offline_access + prompt=consent). NOTE: oidc-provider still drops offline_access
// from the granted `scope` unless the request had prompt=consent, so the token response's scope is narrower than
// the request (realistic: providers may grant less than asked).
//
// Client authentication is strict: a confidential client must use its registered method. oidc-provider alone
// would accept client_secret_post for a client_secret_basic client and vice versa; the peer answers 401
// invalid_client instead (see rejectWrongAuthMethod).
//
// Config knobs (--config JSON; unknown keys are an error):
//   accessTokenTtl      seconds, default 3600
//   refreshTokenTtl     seconds, default 1209600 (14 days)
//   rotateRefreshToken  bool, default true (every refresh returns a new refresh token; reusing a rotated one
//                       revokes the whole grant)
//   clockTolerance      seconds, default 0 (oidc-provider's default is 15; 0 makes expiry sharp)
//   basicSecret, postSecret  the confidential clients' secrets
//   port                0 (default) for an ephemeral port; a fixed port fails at start if it is taken
//   strict              bool, default false. The peer as a strict, atproto-style authorization server and PDS:
//                         - pushed authorization requests (RFC 9126) REQUIRED for every client: an authorization
//                           request without a `request_uri` from POST /request is refused (invalid_request);
//                         - DPoP (RFC 9449) with server nonces REQUIRED on every proof (token endpoint, PAR,
//                           userinfo, the resource server): a proof without a current nonce gets 400/401
//                           `use_dpop_nonce` and a fresh one in the `DPoP-Nonce` header (§8, §9);
//                         - the extra DPoP/atproto clients above;
//                         - both metadata documents say `client_id_metadata_document_supported: true` (the atproto
//                           clients' URL ids are registered statically; no document is fetched);
//                         - every successful token response (code exchange and refresh) carries `sub`, the account
//                           id, as the atproto profile requires
//                           (https://atproto.com/specs/oauth#tokens-and-session-management).
//                       Without it DPoP still works as oidc-provider ships it (optional, no nonces) and PAR is
//                       optional; the resource server checks DPoP-bound tokens in both modes (see below).
//   bskyRoutes          bool, default false. The endpoints at bsky.social's paths (its
//                       /.well-known/oauth-authorization-server): /oauth/authorize, /oauth/par, /oauth/token,
//                       /oauth/revoke, /oauth/introspect, instead of oidc-provider's /auth, /request, /token,
//                       /token/revocation, /token/introspection; so the shipped `bluesky` preset runs against the
//                       peer with only its host moved. Everything below that names a default path means the moved
//                       one then.
//
// TEST-ONLY admin endpoints (they exist only in this peer, no real provider has them):
//   POST /__admin/revoke-grant  {"account": "alice"} or {"token": "<access or refresh token>"}: revokes every
//                               grant of that account, or the grant the token belongs to, with all its tokens,
//                               "behind the app's back". Answers {"revoked": <number of grants>}.
//   GET  /__admin/stats         request counters, see `stats` below. `parRequests` counts requests to the PAR
//                               endpoint (/request); `dpopNonceChallenges` the answers `use_dpop_nonce` (token
//                               endpoint, PAR, userinfo, resource server: the first request of every DPoP client
//                               gets one in strict mode); `dpopProofsRejected` the DPoP proofs refused for any other
//                               reason (`invalid_dpop_proof` there, and a proof whose key is not the token's at the
//                               resource server).
//   POST /__admin/config        {"accessTokenTtl"?, "refreshTokenTtl"?, "rotateRefreshToken"?}: changes these
//                               for tokens issued from now on. Answers the knobs now in force.
//   POST /__admin/outage        {"mode": "drop" | "503" | "429" | "off", "seconds": N, "retryAfter"?: S}: for the
//                               next N seconds every request to the TOKEN ENDPOINT (/token) fails as if the server
//                               were down or overloaded, while all state (grants, tokens, sessions) is kept:
//                                 drop  the socket is destroyed without an answer (connection reset);
//                                 503   HTTP 503 {"error":"temporarily_unavailable"};
//                                 429   HTTP 429 {"error":"temporarily_unavailable"}.
//                               `retryAfter` adds a `Retry-After: S` header to 503/429 answers. "off" (or seconds
//                               0) ends an outage at once. Other endpoints (introspection, revocation, admin) keep
//                               working, so a test can still look. Requests hit by an outage are NOT counted in
//                               `stats` (they never reached oidc-provider); the outage counts them itself.
//                               Answers {"mode", "remainingMs", "affected"}.
//                               `"endpoints": ["token", "revocation"]` (default ["token"]) also fails the
//                               revocation endpoint (/token/revocation) the same way, as a provider that is down
//                               altogether.
//   GET  /__admin/outage        the same answer, for the outage in force (mode "off" when none): `affected` is how
//                               many token requests the current or last outage failed.
//   POST /__admin/mint          {"account": "u1", "count"?: 1 (at most 5000), "clientId"?: "tokenkeep-public",
//                                "scope"?: "openid offline_access videos.read", "jkt"?: "<JWK SHA-256 thumbprint>"}:
//                               creates `count` grants for `account`
//                               WITHOUT a browser, through oidc-provider's own models (Grant, RefreshToken,
//                               AccessToken), so the tokens behave exactly like ones from a code exchange
//                               (rotation, reuse detection, introspection, revocation; the access token lives
//                               accessTokenTtl). With `jkt` (base64url, 43 characters: RFC 7638 over the client's
//                               DPoP public key) the access token is DPoP-bound to that key (cnf.jkt, RFC 9449 §6),
//                               and so is the refresh token of a public client (what oidc-provider does at a code
//                               exchange with a proof). Answers {"grants": [{"grantId", "refreshToken",
//                               "accessToken", "expiresIn", "scope", "tokenType": "Bearer" | "DPoP"}]}. The tokens
//                               are in the answer on purpose: test-only.
//   POST /__admin/tokens        {"account": "u1"}: every access and refresh token issued for `account` since start
//                               (code exchange, refresh, mint), and how many are still active by the same rules as
//                               introspection (stored, not consumed, not expired, grant alive). Answers
//                               {"issued", "active", "activeAccess", "activeRefresh", "liveGrants"}. With
//                               "values": true the answer also lists every one of those tokens, active or not, as
//                               "values": [{"kind": "AccessToken" | "RefreshToken", "value", "jkt"?}], oldest
//                               first, so a test can check that none of them leaked anywhere; `jkt` (the cnf.jkt
//                               thumbprint) is there when the token is DPoP-bound, so a test can check the binding.
//                               The tokens are in the answer on purpose: test-only.
//   POST /__admin/api          {"refuseNext": N}: the next N requests to /api/* or /xrpc/* answer 401
//                               invalid_token whatever their token (a token the platform stopped accepting before
//                               its expiry). Answers {"refuseNext"}.
//   GET  /__admin/api          every request /api/* and /xrpc/* received, oldest first: [{"method", "path", "host",
//                               "authorization"}]. Never the token itself. `authorization` is one of
//                                 none             no Authorization header;
//                                 other            a scheme other than Bearer and DPoP, or a malformed header;
//                                 bearer-valid     `Bearer` with an active unbound token;
//                                 bearer-invalid   `Bearer` with a token that is not active;
//                                 dpop-no-proof    a DPoP-bound token sent as `Bearer`, or `DPoP` without a proof;
//                                 dpop-bad-proof   a proof that fails a check of RFC 9449 §4.3 (see below);
//                                 dpop-no-nonce    a proof without a current resource-server nonce (strict), or
//                                                  with a stale or foreign one (both modes);
//                                 dpop-invalid     `DPoP` with a token that is not active;
//                                 dpop-wrong-key   a good proof by a key other than the token's cnf.jkt, or for a
//                                                  token bound to no key at all;
//                                 dpop-valid       `DPoP` with an active bound token and a good proof of its key.
//
// The resource server (test-only, what `tokenkeep api` calls; the demo preset's api_base is the issuer):
//   ANY /api/echo               checks the access token with the peer itself (the same rules as introspection:
//                               stored, not expired, grant alive) and answers 200 {"method", "path", "query",
//                               "account", "scope", "headers" (without authorization and dpop), "body" (text)}; a
//                               missing or dead token gets 401 with `WWW-Authenticate: Bearer error="invalid_token"`
//                               (RFC 6750 §3.1), as platforms answer.
//   GET /api/redirect?to=URL    302 to URL (no token check: a redirect that points elsewhere).
//   GET /api/page?pages=P&cursor=K  page K (from 0) of P (default 3): {"page", "items", "next_cursor"}, the
//                               cursor absent on the last page (the demo preset's `api_pagination`).
//   GET /api/bytes?n=N          N bytes (default 256) of every value 0..255 in turn, application/octet-stream,
//                               after the token check: a body that is not UTF-8.
//   GET /xrpc/com.atproto.server.getSession  the PDS side of atproto (https://atproto.com/specs/xrpc): the same
//                               token check, and the token's scope must hold `atproto` (else 403
//                               InsufficientScope); answers 200 {"did": account, "handle": "handle.invalid" (the
//                               atproto value for a handle the server cannot vouch for), "active": true}. Errors have
//                               the XRPC shape {"error", "message"}; another /xrpc/ method gets 501
//                               MethodNotImplemented.
//   DPoP at the resource server (RFC 9449 §7), in both modes. An unbound token works as `Bearer` exactly as above.
//   A DPoP-bound token (cnf.jkt) must come as `Authorization: DPoP <token>` with exactly one `DPoP` proof header,
//   checked per §4.3: a compact JWS; header typ "dpop+jwt", alg one of ES256 Ed25519 EdDSA (oidc-provider's own
//   list, the one it announces as dpop_signing_alg_values_supported), `jwk` a public key (one with "d" or any other
//   private member is refused); a good signature by that key; claims `jti` (a string never seen before: a replayed
//   proof is refused), `htm` = the request method, `htu` = the request's target URI without query and fragment,
//   i.e. http://<Host header><path> (normalized as a URL: a client that calls http://localhost:PORT/... signs that
//   name), `iat` within 60 s of now, `ath` = base64url(SHA-256(token)); in strict mode also `nonce` = a current
//   resource-server nonce (its own, not the authorization server's: a nonce from /token is refused here, as two
//   servers would); without strict a nonce is optional, but one that is there must be current. Then the token
//   must be active, and the RFC 7638 SHA-256 thumbprint of `jwk` must equal its cnf.jkt. Answers, all 401 with
//   `WWW-Authenticate: DPoP algs="ES256 Ed25519 EdDSA", error="…", error_description="…"`:
//     a bound token as Bearer (no proof), DPoP without a proof, a dead token, the wrong key → invalid_token;
//     a bad proof → invalid_dpop_proof;
//     no nonce / a stale or foreign one → use_dpop_nonce, with a fresh nonce in `DPoP-Nonce` (§9).
//   Every answer to a request with a proof carries `DPoP-Nonce` when its nonce is not the newest (§9: the server
//   may hand out a new nonce at any time); nonces change every minute and a nonce stays good for about three.
//
// Standard endpoints are announced at /.well-known/openid-configuration (token /token, introspection
// /token/introspection — it needs client authentication: use a confidential client — revocation
// /token/revocation, userinfo /me, pushed authorization requests /request). In every mode:
//   GET /.well-known/oauth-authorization-server  the same document (RFC 8414; what atproto clients read):
//                               oidc-provider serves both paths with one handler.
//   GET /.well-known/oauth-protected-resource    {"resource": issuer, "authorization_servers": [issuer],
//                               "bearer_methods_supported": ["header"]} (RFC 9728): the peer is its own resource
//                               server, as an atproto PDS that is also its entryway.
// Client authentication at PAR (/request) is as strict as at the token endpoint (rejectWrongAuthMethod).

import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { crc32, deflateSync } from 'node:zlib';
import { parseArgs } from 'node:util';

import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import Provider from 'oidc-provider';
// oidc-provider's default in-memory adapter keeps at most 1000 entries (grants, tokens, sessions) and silently
// evicts the oldest, which turns tokens issued early in a large test into `invalid_grant`. The peer is a
// short-lived test server: its adapter (same class, see `adapter:` below) gets room for every entry it will ever
// hold. (Deep imports: the package has no "exports" map.)
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';
// The time-windowed nonces oidc-provider gives DPoP clients; the resource server makes its own with another secret.
import ServerChallenge from 'oidc-provider/lib/helpers/challenge.js';

const log = (...args) => console.error('peer:', ...args);

const DEFAULTS = {
  accessTokenTtl: 3600,
  refreshTokenTtl: 14 * 24 * 60 * 60,
  rotateRefreshToken: true,
  clockTolerance: 0,
  basicSecret: 'tokenkeep-basic-secret',
  postSecret: 'tokenkeep-post-secret',
  // 0: an ephemeral port (tests). `cargo xtask run` asks for a fixed one so the demo issuer stays the same.
  port: 0,
  strict: false,
  bskyRoutes: false,
};
const RUNTIME_KNOBS = new Set(['accessTokenTtl', 'refreshTokenTtl', 'rotateRefreshToken']);

function validateKnobs(input, allowed) {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new Error('config must be a JSON object');
  }
  for (const [key, value] of Object.entries(input)) {
    if (!allowed.has(key)) throw new Error(`unknown config key ${JSON.stringify(key)}`);
    const expected = typeof DEFAULTS[key];
    if (typeof value !== expected) throw new Error(`config key ${key} must be a ${expected}`);
    if (expected === 'number' && !(Number.isInteger(value) && value >= 0)) {
      throw new Error(`config key ${key} must be a non-negative integer`);
    }
  }
  for (const key of ['accessTokenTtl', 'refreshTokenTtl']) {
    if (input[key] === 0) throw new Error(`config key ${key} must be at least 1`);
  }
  return input;
}

const { values: cli } = parseArgs({ options: { config: { type: 'string' } } });
let knobs;
try {
  knobs = { ...DEFAULTS, ...validateKnobs(JSON.parse(cli.config ?? '{}'), new Set(Object.keys(DEFAULTS))) };
} catch (err) {
  log(`bad --config: ${err.message}`);
  process.exit(2);
}

const stats = {
  // Every request to the token endpoint, whatever its outcome, and those that failed.
  tokenRequests: 0,
  tokenErrors: 0,
  // Per grant type (successful + failed).
  codeExchanges: 0,
  codeExchangeErrors: 0,
  refreshRequests: 0,
  refreshErrors: 0,
  introspections: 0,
  revocations: 0,
  userinfoRequests: 0,
  authorizations: 0,
  // GET /avatars/<account>.png: the account pictures the `picture` claim names (fetched once, at connect).
  pictureRequests: 0,
  adminRevokedGrants: 0,
  // POST /request (pushed authorization requests, RFC 9126), whatever their outcome.
  parRequests: 0,
  // Answers `use_dpop_nonce`, and DPoP proofs refused for anything else (see the header).
  dpopNonceChallenges: 0,
  dpopProofsRejected: 0,
};

// Bind FIRST: the issuer has to carry the real port.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(knobs.port, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

// Where the endpoints are (see `bskyRoutes`).
const ROUTES = knobs.bskyRoutes
  ? {
    authorization: '/oauth/authorize',
    pushed_authorization_request: '/oauth/par',
    token: '/oauth/token',
    revocation: '/oauth/revoke',
    introspection: '/oauth/introspect',
    userinfo: '/me',
  }
  : {
    authorization: '/auth',
    pushed_authorization_request: '/request',
    token: '/token',
    revocation: '/token/revocation',
    introspection: '/token/introspection',
    userinfo: '/me',
  };

const redirectUris = ['http://127.0.0.1/callback', 'http://localhost/callback', 'http://[::1]/callback'];
const nativeClient = {
  application_type: 'native',
  redirect_uris: redirectUris,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
};

// The DPoP signature algorithms, one list for oidc-provider (which announces it as
// dpop_signing_alg_values_supported) and for the resource server. It is oidc-provider's default; atproto clients
// use ES256 (https://atproto.com/specs/oauth#dpop).
const DPOP_ALGS = ['ES256', 'Ed25519', 'EdDSA'];
// How far a proof's `iat` may be from now at the resource server (RFC 9449 §11.1 leaves it to the server).
const DPOP_IAT_WINDOW = 60;
// The atproto clients of the strict peer (see the header): the "localhost" development client, whose client_id
// carries its redirect URI and scope, and a hosted one. Both are registered statically.
const ATPROTO_LOOPBACK_CLIENT_ID =
  'http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric';
const ATPROTO_HOSTED_CLIENT_ID = 'https://tokenkeep.example/client-metadata.json';
const ATPROTO_CLIENT_IDS = new Set([ATPROTO_LOOPBACK_CLIENT_ID, ATPROTO_HOSTED_CLIENT_ID]);
const dpopClient = { ...nativeClient, token_endpoint_auth_method: 'none', dpop_bound_access_tokens: true };
const atprotoClient = { ...dpopClient, redirect_uris: ['http://127.0.0.1/callback'], scope: 'atproto transition:generic' };
const strictClients = [
  { ...dpopClient, client_id: 'tokenkeep-dpop' },
  { ...atprotoClient, client_id: ATPROTO_LOOPBACK_CLIENT_ID },
  { ...atprotoClient, client_id: ATPROTO_HOSTED_CLIENT_ID },
];

// Which grants belong to which account, for /__admin/revoke-grant {"account"}.
const grantsByAccount = new Map();
// Every access and refresh token ever issued per account, for /__admin/tokens: [kind, value, jkt] triples (jkt
// undefined for an unbound token). Opaque tokens are looked up by their value (the jti), so this holds what it
// needs to find them again.
const tokensByAccount = new Map();

// The outage in force (/__admin/outage): until when (ms since the epoch), how, and how many requests it failed.
const outage = { mode: 'off', until: 0, retryAfter: undefined, affected: 0, paths: new Set([ROUTES.token]) };
const OUTAGE_PATHS = { token: ROUTES.token, revocation: ROUTES.revocation };

function capitalized(login) {
  return login.charAt(0).toUpperCase() + login.slice(1);
}

const storage = new LRU({ maxSize: 1_000_000 });
const provider = new Provider(issuer, {
  routes: ROUTES,
  adapter: (model) => new MemoryAdapter(model, storage, knobs.clockTolerance),
  clients: [
    { ...nativeClient, client_id: 'tokenkeep-public', token_endpoint_auth_method: 'none' },
    {
      ...nativeClient,
      client_id: 'tokenkeep-basic',
      client_secret: knobs.basicSecret,
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      ...nativeClient,
      client_id: 'tokenkeep-post',
      client_secret: knobs.postSecret,
      token_endpoint_auth_method: 'client_secret_post',
    },
    ...(knobs.strict ? strictClients : []),
  ],
  responseTypes: ['code'],
  clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post'],
  pkce: { required: () => true },
  scopes: [
    'openid', 'offline_access', 'profile', 'email', 'videos.read', 'videos.upload',
    // https://atproto.com/specs/oauth#scopes
    'atproto', 'transition:generic',
  ],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'picture'],
    email: ['email', 'email_verified'],
  },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: capitalized(sub),
          preferred_username: sub,
          picture: `${issuer}/avatars/${encodeURIComponent(sub)}.png`,
          email: `${sub}@example.test`,
          email_verified: true,
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: false },
    // RFC 9126. oidc-provider enables PAR by default (optional); strict requires it of every client.
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: knobs.strict },
    // RFC 9449. oidc-provider enables DPoP by default, without nonces; strict requires a server nonce in every
    // proof (§8: the secret derives nonces that change every minute).
    dPoP: knobs.strict
      ? { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true }
      : { enabled: true },
  },
  enabledJWA: { dPoPSigningAlgValues: DPOP_ALGS },
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  rotateRefreshToken: () => knobs.rotateRefreshToken,
  clockTolerance: knobs.clockTolerance,
  // Functions, so that /__admin/config applies to tokens issued afterwards.
  ttl: {
    AccessToken: () => knobs.accessTokenTtl,
    RefreshToken: () => knobs.refreshTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 14 * 24 * 60 * 60,
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
});

provider.on('grant.saved', (grant) => {
  const grants = grantsByAccount.get(grant.accountId) ?? new Set();
  grants.add(grant.jti);
  grantsByAccount.set(grant.accountId, grants);
});
for (const [event, kind] of [['access_token.saved', 'AccessToken'], ['refresh_token.saved', 'RefreshToken']]) {
  provider.on(event, (token) => {
    if (!token.accountId) return;
    const tokens = tokensByAccount.get(token.accountId) ?? [];
    tokens.push([kind, token.jti, token.jkt]);
    tokensByAccount.set(token.accountId, tokens);
  });
}
provider.on('grant.success', (ctx) => countGrant(ctx, false));
provider.on('grant.error', (ctx, err) => {
  countGrant(ctx, true);
  log(`token endpoint error: ${err.error}`); // the code only: descriptions may echo input
});
provider.on('server_error', (_ctx, err) => log('server error:', err));

// Runs around every request oidc-provider answers, after its own error handling has set the answer.
provider.use(async (ctx, next) => {
  await next();
  countDpopError(ctx.body?.error);
  // The atproto profile wants the account in the token response ("sub" is the account DID,
  // https://atproto.com/specs/oauth#tokens-and-session-management); oidc-provider answers without it. Code exchange
  // and refresh alike.
  // atproto clients look for this flag (https://atproto.com/specs/oauth#authorization-servers). The strict peer
  // accepts URL client ids — the atproto clients registered above, statically: it fetches no document.
  if (
    knobs.strict
    && ctx.method === 'GET'
    && (ctx.path === '/.well-known/oauth-authorization-server' || ctx.path === '/.well-known/openid-configuration')
    && ctx.status === 200
    && ctx.body
    && typeof ctx.body === 'object'
  ) {
    ctx.body = { ...ctx.body, client_id_metadata_document_supported: true };
  }
  if (
    knobs.strict
    && ctx.method === 'POST'
    && ctx.path === ROUTES.token
    && ctx.status === 200
    && typeof ctx.body?.access_token === 'string'
  ) {
    const token = await provider.AccessToken.find(ctx.body.access_token);
    if (token?.accountId) ctx.body = { ...ctx.body, sub: token.accountId };
  }
});

function countDpopError(error) {
  if (error === 'use_dpop_nonce') stats.dpopNonceChallenges += 1;
  if (error === 'invalid_dpop_proof') stats.dpopProofsRejected += 1;
}

function countGrant(ctx, failed) {
  countGrantType(ctx.oidc?.params?.grant_type, failed);
}

function countGrantType(grantType, failed) {
  if (failed) stats.tokenErrors += 1;
  if (grantType === 'authorization_code') {
    stats.codeExchanges += 1;
    if (failed) stats.codeExchangeErrors += 1;
  } else if (grantType === 'refresh_token') {
    stats.refreshRequests += 1;
    if (failed) stats.refreshErrors += 1;
  }
}

async function revokeGrant(grantId) {
  // One memory store indexes every token of a grant, so this removes codes, access and refresh tokens alike.
  await provider.AccessToken.revokeByGrantId(grantId);
  await provider.RefreshToken.revokeByGrantId(grantId);
  await provider.Grant.adapter.destroy(grantId);
  stats.adminRevokedGrants += 1;
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 56 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readJson(req) {
  const text = (await readBody(req)).toString('utf8');
  return text ? JSON.parse(text) : {};
}

// Strict client authentication. oidc-provider treats client_secret_basic and client_secret_post as
// interchangeable (either one authenticates a client registered with the other); many real providers do not, and
// the tests must catch a client that uses the wrong one. So on the endpoints that authenticate clients the peer
// reads the body first, rejects a secret sent the other way, and hands the already-read body on to
// oidc-provider (which accepts `req.body`; it logs a one-time warning about an "already parsed request body").
const AUTH_METHODS = new Map([
  ['tokenkeep-public', 'none'],
  ['tokenkeep-basic', 'client_secret_basic'],
  ['tokenkeep-post', 'client_secret_post'],
  ...strictClients.map((c) => [c.client_id, 'none']),
]);
const CLIENT_AUTH_PATHS = new Set([ROUTES.token, ROUTES.introspection, ROUTES.revocation, ROUTES.pushed_authorization_request]);

/** Returns true when it has answered the request itself (a mismatched method). */
async function rejectWrongAuthMethod(req, res, path) {
  const raw = await readBody(req);
  req.body = raw;
  const form = new URLSearchParams(raw.toString('utf8'));
  const header = req.headers.authorization ?? '';
  let clientId = form.get('client_id');
  let used = form.has('client_secret') ? 'client_secret_post' : 'none';
  if (/^basic /i.test(header)) {
    used = 'client_secret_basic';
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    try {
      clientId = decodeURIComponent(decoded.slice(0, Math.max(0, decoded.indexOf(':'))).replace(/\+/g, ' '));
    } catch {
      return false; // malformed: oidc-provider answers it
    }
  }
  const registered = AUTH_METHODS.get(clientId);
  if (!registered?.startsWith('client_secret_') || used === 'none' || used === registered) return false;
  if (path === ROUTES.token) countGrantType(form.get('grant_type'), true);
  log(`${path}: ${clientId} authenticated with ${used}, registered for ${registered}: invalid_client`);
  res.writeHead(401, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'www-authenticate': `Basic realm="${issuer}", error="invalid_client"`,
  });
  res.end(JSON.stringify({
    error: 'invalid_client',
    error_description: 'client authentication failed',
  }));
  return true;
}

/**
 * An atproto client's pushed authorization request must ask for `atproto` (https://atproto.com/specs/oauth#scopes);
 * oidc-provider knows no such rule. Runs after rejectWrongAuthMethod has read the body. Returns true when it has
 * answered the request itself.
 */
function rejectAtprotoWithoutScope(req, res, path) {
  if (!knobs.strict || path !== ROUTES.pushed_authorization_request || !Buffer.isBuffer(req.body)) return false;
  const form = new URLSearchParams(req.body.toString('utf8'));
  if (!ATPROTO_CLIENT_IDS.has(form.get('client_id'))) return false;
  if (form.get('scope')?.split(' ').includes('atproto')) return false;
  reply(res, 400, { error: 'invalid_scope', error_description: 'the "atproto" scope is required' });
  return true;
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

// The resource server's state (/__admin/api), and its own DPoP nonces and seen proof ids (RFC 9449 §9, §11.1).
const api = { refuseNext: 0, requests: [] };
const rsNonces = new ServerChallenge(randomBytes(32), 'tokenkeep-peer resource server DPoP nonce');
// jti → when it may be forgotten (ms): once a proof's iat is out of the window, a replay fails on iat anyway.
const seenProofIds = new Map();

/** An active access token (the rules of introspection: stored, not expired, grant alive), or undefined. */
async function activeToken(value) {
  const token = await provider.AccessToken.find(value);
  const grant = token?.isValid && token.grantId && (await provider.Grant.find(token.grantId));
  return token?.isValid && grant ? token : undefined;
}

class ProofError extends Error {
  constructor(kind, description) {
    super(description);
    this.kind = kind;
  }
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * Checks the DPoP proof of a request to the resource server by RFC 9449 §4.3 (the numbers below are its steps)
 * and §7.1 (ath). Returns {thumbprint, nonce} or throws a ProofError whose kind is dpop-no-proof, dpop-bad-proof
 * or dpop-no-nonce.
 */
async function checkProof(req, url, accessToken) {
  const proofs = req.headersDistinct.dpop ?? [];
  if (proofs.length === 0) throw new ProofError('dpop-no-proof', 'DPoP proof missing');
  // 1. exactly one DPoP header; 2. a single well-formed JWT (compact JWS).
  if (proofs.length > 1) throw new ProofError('dpop-bad-proof', 'more than one DPoP header');
  const proof = proofs[0];
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(proof)) {
    throw new ProofError('dpop-bad-proof', 'DPoP proof is not a compact JWS');
  }
  let header;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw new ProofError('dpop-bad-proof', 'DPoP proof header is not JSON');
  }
  // 4. typ; 5. an asymmetric alg the server supports; 6. a public JWK only (§4.2: "MUST NOT contain a private key").
  if (header.typ !== 'dpop+jwt') throw new ProofError('dpop-bad-proof', 'DPoP proof typ must be dpop+jwt');
  if (!DPOP_ALGS.includes(header.alg)) throw new ProofError('dpop-bad-proof', 'DPoP proof alg not supported');
  if (typeof header.jwk !== 'object' || header.jwk === null || Array.isArray(header.jwk)) {
    throw new ProofError('dpop-bad-proof', 'DPoP proof has no jwk');
  }
  if (PRIVATE_JWK_MEMBERS.some((m) => m in header.jwk)) {
    throw new ProofError('dpop-bad-proof', 'DPoP proof jwk holds a private key');
  }
  // 7. the signature, by that key.
  let payload;
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, { algorithms: DPOP_ALGS, typ: 'dpop+jwt' }));
  } catch {
    throw new ProofError('dpop-bad-proof', 'DPoP proof signature invalid');
  }
  // 3. the required claims; 8. htm; 9. htu (target URI without query and fragment, RFC 9110 §7.1).
  if (typeof payload.jti !== 'string' || !payload.jti) throw new ProofError('dpop-bad-proof', 'DPoP proof has no jti');
  if (payload.htm !== req.method) throw new ProofError('dpop-bad-proof', 'DPoP proof htm mismatch');
  const target = new URL(url.pathname, `http://${req.headers.host ?? new URL(issuer).host}`).href;
  const htu = typeof payload.htu === 'string' && URL.parse(payload.htu);
  if (htu) {
    htu.search = '';
    htu.hash = '';
  }
  if (!htu || htu.href !== target) throw new ProofError('dpop-bad-proof', 'DPoP proof htu mismatch');
  // 11. iat within the server's window.
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > DPOP_IAT_WINDOW) {
    throw new ProofError('dpop-bad-proof', 'DPoP proof iat not recent');
  }
  // 12. ath, the hash of the access token it comes with.
  if (payload.ath !== createHash('sha256').update(accessToken).digest('base64url')) {
    throw new ProofError('dpop-bad-proof', 'DPoP proof ath mismatch');
  }
  // 10. the server's nonce: required by strict, checked whenever present.
  if (payload.nonce !== undefined && typeof payload.nonce !== 'string') {
    throw new ProofError('dpop-bad-proof', 'DPoP proof nonce must be a string');
  }
  if (payload.nonce === undefined ? knobs.strict : !rsNonces.checkChallenge(payload.nonce)) {
    throw new ProofError('dpop-no-nonce', 'Resource server requires nonce in DPoP proof');
  }
  // §11.1: a proof is used once. Only a proof that passed everything else is remembered.
  for (const [jti, forget] of seenProofIds) if (forget < Date.now()) seenProofIds.delete(jti);
  if (seenProofIds.has(payload.jti)) throw new ProofError('dpop-bad-proof', 'DPoP proof replayed');
  seenProofIds.set(payload.jti, (payload.iat + DPOP_IAT_WINDOW + 1) * 1000);
  return { thumbprint: await calculateJwkThumbprint(header.jwk, 'sha256'), nonce: payload.nonce };
}

/**
 * What a request's Authorization (and DPoP) headers amount to: {kind, account?, scope?, scheme, error?,
 * description?, nonce?}. `kind` is what /__admin/api records; `scheme` is the challenge a refusal answers with.
 */
async function authorizationOf(req, url) {
  const header = req.headers.authorization;
  if (!header) return { kind: 'none', scheme: 'Bearer' };
  const match = /^(Bearer|DPoP) (\S+)$/i.exec(header);
  if (!match) return { kind: 'other', scheme: 'Bearer' };
  const value = match[2];
  if (match[1].toLowerCase() === 'bearer') {
    const token = await activeToken(value);
    if (!token) return { kind: 'bearer-invalid', scheme: 'Bearer' };
    // RFC 9449 §7.2: a DPoP-bound token is not a bearer token.
    if (token.jkt) return refusedDpop('dpop-no-proof', 'invalid_token', 'DPoP-bound token sent as Bearer');
    return { kind: 'bearer-valid', scheme: 'Bearer', account: token.accountId, scope: token.scope };
  }
  let proof;
  try {
    proof = await checkProof(req, url, value);
  } catch (err) {
    if (!(err instanceof ProofError)) throw err;
    const error = { 'dpop-no-proof': 'invalid_token', 'dpop-no-nonce': 'use_dpop_nonce' }[err.kind];
    if (err.kind === 'dpop-bad-proof') stats.dpopProofsRejected += 1;
    const proofSent = err.kind !== 'dpop-no-proof';
    return refusedDpop(err.kind, error ?? 'invalid_dpop_proof', err.message, { proofSent });
  }
  const sent = { nonce: proof.nonce, proofSent: true };
  const token = await activeToken(value);
  if (!token) return refusedDpop('dpop-invalid', 'invalid_token', 'The access token is invalid', sent);
  if (token.jkt !== proof.thumbprint) {
    stats.dpopProofsRejected += 1;
    const why = token.jkt ? 'DPoP proof key does not match the token binding' : 'the access token is not DPoP-bound';
    return refusedDpop('dpop-wrong-key', 'invalid_token', why, sent);
  }
  return { kind: 'dpop-valid', scheme: 'DPoP', account: token.accountId, scope: token.scope, ...sent };
}

function refusedDpop(kind, error, description, extra = {}) {
  return { kind, scheme: 'DPoP', error, description, ...extra };
}

/** The headers of a refusal: the challenge of the scheme used (RFC 6750 §3, RFC 9449 §7.1) and a fresh nonce. */
function refusalHeaders(auth, error, description) {
  if (auth.scheme === 'Bearer') {
    return { 'www-authenticate': `Bearer realm="peer", error="${error}", error_description="${description}"` };
  }
  const headers = {
    'www-authenticate': `DPoP algs="${DPOP_ALGS.join(' ')}", error="${error}", error_description="${description}"`,
  };
  if (auth.proofSent || error === 'use_dpop_nonce') Object.assign(headers, nonceHeader(auth));
  return headers;
}

/** `DPoP-Nonce` with the current nonce when the request's proof did not use it (RFC 9449 §8.2, §9). */
function nonceHeader(auth) {
  const next = rsNonces.nextChallenge();
  return auth.scheme === 'DPoP' && auth.nonce !== next ? { 'dpop-nonce': next } : {};
}

async function resource(req, res, url) {
  const path = url.pathname;
  const auth = await authorizationOf(req, url);
  api.requests.push({ method: req.method, path, host: req.headers.host, authorization: auth.kind });
  if (req.method === 'GET' && path === '/api/redirect') {
    res.writeHead(302, { location: url.searchParams.get('to') ?? '/' });
    return res.end();
  }
  const xrpc = path.startsWith('/xrpc/');
  const refused = api.refuseNext > 0;
  if (refused) api.refuseNext -= 1;
  if (auth.error === 'use_dpop_nonce') stats.dpopNonceChallenges += 1;
  if (refused || !auth.account) {
    const error = refused ? 'invalid_token' : auth.error ?? 'invalid_token';
    const description = refused ? 'The access token is invalid' : auth.description ?? 'The access token is invalid';
    res.writeHead(401, { 'content-type': 'application/json', ...refusalHeaders(auth, error, description) });
    // XRPC errors are {"error", "message"} (https://atproto.com/specs/xrpc#error-responses).
    return res.end(JSON.stringify(xrpc ? { error, message: description } : { error }));
  }
  const answer = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...nonceHeader(auth) });
    res.end(JSON.stringify(body));
  };
  if (xrpc) {
    if (path !== '/xrpc/com.atproto.server.getSession') {
      return answer(501, { error: 'MethodNotImplemented', message: 'Method Not Implemented' });
    }
    if (req.method !== 'GET') {
      return answer(400, { error: 'InvalidRequest', message: 'getSession is a query: use GET' });
    }
    // An atproto OAuth session's token always holds the `atproto` scope (https://atproto.com/specs/oauth#scopes).
    if (!auth.scope?.split(' ').includes('atproto')) {
      return answer(403, { error: 'InsufficientScope', message: 'the access token lacks the atproto scope' });
    }
    return answer(200, { did: auth.account, handle: 'handle.invalid', active: true });
  }
  if (path === '/api/echo') {
    const { authorization: _a, dpop: _d, ...headers } = req.headers;
    return answer(200, {
      method: req.method,
      path,
      query: Object.fromEntries(url.searchParams),
      account: auth.account,
      scope: auth.scope,
      headers,
      body: (await readBody(req)).toString('utf8'),
    });
  }
  if (req.method === 'GET' && path === '/api/page') {
    const at = Number(url.searchParams.get('cursor') ?? 0);
    const pages = Number(url.searchParams.get('pages') ?? 3);
    const body = { page: at, items: [`item-${at}-a`, `item-${at}-b`] };
    if (at + 1 < pages) body.next_cursor = String(at + 1);
    return answer(200, body);
  }
  if (req.method === 'GET' && path === '/api/bytes') {
    const n = Math.min(Number(url.searchParams.get('n') ?? 256), 16 * 1024 * 1024);
    const bytes = Buffer.alloc(n);
    for (let i = 0; i < n; i += 1) bytes[i] = i % 256;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n, ...nonceHeader(auth) });
    return res.end(bytes);
  }
  return answer(404, { error: 'no such API endpoint' });
}

async function admin(req, res, path) {
  if (path === '/__admin/api' && req.method === 'GET') {
    return reply(res, 200, api.requests);
  }
  if (path === '/__admin/api' && req.method === 'POST') {
    const body = await readJson(req);
    if (!Number.isInteger(body.refuseNext) || body.refuseNext < 0) return reply(res, 400, { error: 'give "refuseNext"' });
    api.refuseNext = body.refuseNext;
    return reply(res, 200, { refuseNext: api.refuseNext });
  }
  if (req.method === 'GET' && path === '/__admin/stats') {
    return reply(res, 200, stats);
  }
  if (req.method === 'POST' && path === '/__admin/revoke-grant') {
    const body = await readJson(req);
    let grantIds = [];
    if (typeof body.account === 'string') {
      grantIds = [...(grantsByAccount.get(body.account) ?? [])];
      grantsByAccount.delete(body.account);
    } else if (typeof body.token === 'string') {
      const token = (await provider.AccessToken.find(body.token)) ?? (await provider.RefreshToken.find(body.token));
      if (token?.grantId) grantIds = [token.grantId];
    } else {
      return reply(res, 400, { error: 'give "account" or "token"' });
    }
    let revoked = 0;
    for (const grantId of grantIds) {
      if (await provider.Grant.find(grantId)) revoked += 1;
      await revokeGrant(grantId);
    }
    log(`admin: revoked ${revoked} grant(s)`);
    return reply(res, 200, { revoked });
  }
  if (req.method === 'POST' && path === '/__admin/config') {
    const body = validateKnobs(await readJson(req), RUNTIME_KNOBS);
    Object.assign(knobs, body);
    const { basicSecret: _b, postSecret: _p, ...shown } = knobs;
    log(`admin: config now ${JSON.stringify(shown)}`);
    return reply(res, 200, shown);
  }
  if (path === '/__admin/outage' && (req.method === 'GET' || req.method === 'POST')) {
    if (req.method === 'POST') setOutage(await readJson(req));
    return reply(res, 200, outageState());
  }
  if (req.method === 'POST' && path === '/__admin/mint') {
    return reply(res, 200, { grants: await mint(await readJson(req)) });
  }
  if (req.method === 'POST' && path === '/__admin/tokens') {
    const body = await readJson(req);
    if (typeof body.account !== 'string') return reply(res, 400, { error: 'give "account"' });
    const answer = await tokensOf(body.account);
    if (body.values === true) {
      answer.values = (tokensByAccount.get(body.account) ?? []).map(([kind, value, jkt]) => ({ kind, value, jkt }));
    }
    return reply(res, 200, answer);
  }
  return reply(res, 404, { error: 'no such admin endpoint' });
}

const OUTAGE_MODES = new Set(['drop', '503', '429', 'off']);

function setOutage(body) {
  const { mode, seconds = 0, retryAfter, endpoints = ['token'] } = body;
  if (!OUTAGE_MODES.has(mode)) throw new Error('mode must be "drop", "503", "429" or "off"');
  if (!Array.isArray(endpoints) || endpoints.some((e) => !(e in OUTAGE_PATHS))) {
    throw new Error('endpoints must list "token" and/or "revocation"');
  }
  if (!(Number.isInteger(seconds) && seconds >= 0)) throw new Error('seconds must be a non-negative integer');
  if (retryAfter !== undefined && !(Number.isInteger(retryAfter) && retryAfter >= 0)) {
    throw new Error('retryAfter must be a non-negative integer');
  }
  const off = mode === 'off' || seconds === 0;
  Object.assign(outage, {
    mode: off ? 'off' : mode,
    until: off ? 0 : Date.now() + seconds * 1000,
    retryAfter,
    affected: off ? outage.affected : 0,
    paths: new Set(endpoints.map((e) => OUTAGE_PATHS[e])),
  });
  log(`admin: outage ${off ? 'off' : `${mode} for ${seconds} s`}`);
}

function outageActive() {
  return outage.mode !== 'off' && Date.now() < outage.until;
}

function outageState() {
  const active = outageActive();
  return {
    mode: active ? outage.mode : 'off',
    remainingMs: active ? outage.until - Date.now() : 0,
    affected: outage.affected,
  };
}

/** Fails a request to an endpoint of the outage in force; returns true when it did. */
function failForOutage(req, res, path) {
  if (!outageActive() || !outage.paths.has(path)) return false;
  outage.affected += 1;
  if (outage.mode === 'drop') {
    log(`outage: dropping ${req.method} ${path}`);
    req.socket.destroy();
    return true;
  }
  const headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (outage.retryAfter !== undefined) headers['retry-after'] = String(outage.retryAfter);
  res.writeHead(Number(outage.mode), headers);
  res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'test outage' }));
  return true;
}

async function mint(body) {
  const {
    account,
    count = 1,
    clientId = 'tokenkeep-public',
    scope = 'openid offline_access videos.read',
    jkt,
  } = body;
  if (typeof account !== 'string' || !account) throw new Error('give "account"');
  if (jkt !== undefined && !(typeof jkt === 'string' && /^[\w-]{43}$/.test(jkt))) {
    throw new Error('jkt must be a base64url SHA-256 JWK thumbprint (43 characters)');
  }
  if (!(Number.isInteger(count) && count >= 1 && count <= 5000)) throw new Error("count must be 1..5000");
  if (typeof scope !== 'string') throw new Error('scope must be a string');
  const client = await provider.Client.find(clientId);
  if (!client) throw new Error(`no client ${JSON.stringify(clientId)}`);
  const minted = [];
  for (let i = 0; i < count; i += 1) {
    // The same shapes the authorization_code grant produces: a Grant holding the scope, then tokens bound to it.
    const grant = new provider.Grant({ accountId: account, clientId });
    grant.addOIDCScope(scope);
    const grantId = await grant.save();
    const common = { accountId: account, client, grantId, gty: 'authorization_code', scope };
    const rt = new provider.RefreshToken(common);
    const at = new provider.AccessToken(common);
    if (jkt) {
      at.setThumbprint('jkt', jkt);
      // As oidc-provider's setRefreshTokenBindings: only a public client's refresh token is bound to the key.
      if (client.clientAuthMethod === 'none') rt.jkt = jkt;
    }
    const refreshToken = await rt.save();
    const accessToken = await at.save();
    minted.push({ grantId, refreshToken, accessToken, expiresIn: at.expiration, scope, tokenType: at.tokenType });
  }
  log(`admin: minted ${count} grant(s)`);
  return minted;
}

async function tokensOf(account) {
  const tokens = tokensByAccount.get(account) ?? [];
  const out = { issued: tokens.length, active: 0, activeAccess: 0, activeRefresh: 0, liveGrants: 0 };
  for (const [kind, value] of tokens) {
    const token = await provider[kind].find(value);
    if (!token?.isValid) continue;
    const grant = token.grantId && (await provider.Grant.find(token.grantId, { ignoreExpiration: true }));
    if (!grant || grant.isExpired) continue;
    out.active += 1;
    out[kind === 'AccessToken' ? 'activeAccess' : 'activeRefresh'] += 1;
  }
  for (const grantId of grantsByAccount.get(account) ?? []) {
    if (await provider.Grant.find(grantId)) out.liveGrants += 1;
  }
  return out;
}

const COUNTED = new Map([
  [ROUTES.token, 'tokenRequests'],
  [ROUTES.introspection, 'introspections'],
  [ROUTES.revocation, 'revocations'],
  [ROUTES.userinfo, 'userinfoRequests'],
  [ROUTES.authorization, 'authorizations'],
  [ROUTES.pushed_authorization_request, 'parRequests'],
]);

/** A real 16×16 PNG in one colour, derived from `name`: each account has its own picture. */
function avatarPng(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  const rgb = [h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff];
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(16, 0);
  ihdr.writeUInt32BE(16, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = Buffer.concat(Array.from({ length: 16 }, () => Buffer.from([0, ...Array(16).fill(rgb).flat()])));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const oidc = provider.callback();
server.on('request', (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  res.on('finish', () => log(`${req.method} ${path} ${res.statusCode}`));
  const avatar = /^\/avatars\/([^/]+)\.png$/.exec(path);
  if (req.method === 'GET' && avatar) {
    stats.pictureRequests += 1;
    const png = avatarPng(decodeURIComponent(avatar[1]));
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
    res.end(png);
    return;
  }
  if (path.startsWith('/__admin/')) {
    admin(req, res, path).catch((err) => reply(res, 400, { error: err.message }));
    return;
  }
  if (path.startsWith('/api/') || path.startsWith('/xrpc/')) {
    resource(req, res, new URL(req.url, issuer)).catch((err) => reply(res, 400, { error: err.message }));
    return;
  }
  if (req.method === 'GET' && path === '/.well-known/oauth-protected-resource') {
    // RFC 9728 §3.2.
    reply(res, 200, { resource: issuer, authorization_servers: [issuer], bearer_methods_supported: ['header'] });
    return;
  }
  // Before the counters: a request failed by an outage never reached oidc-provider.
  if (req.method === 'POST' && failForOutage(req, res, path)) return;
  const counter = COUNTED.get(path);
  if (counter) stats[counter] += 1;
  if (req.method === 'POST' && CLIENT_AUTH_PATHS.has(path)) {
    rejectWrongAuthMethod(req, res, path).then(
      (answered) => answered || rejectAtprotoWithoutScope(req, res, path) || oidc(req, res),
      (err) => reply(res, 400, { error: 'invalid_request', error_description: err.message }),
    );
    return;
  }
  oidc(req, res);
});

function stop(signal) {
  log(`${signal}: stopping`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
log(`ready at ${issuer}`);
