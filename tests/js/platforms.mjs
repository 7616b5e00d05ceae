// Strict local emulations of the platforms' OAuth dialects, for Tokenkeep's end-to-end tests only. Loopback only.
//
//   node tests/js/platforms.mjs --dialect NAME
//
// It binds 127.0.0.1 on an ephemeral port and prints ONE line on stdout, {"port": PORT, "dialect": NAME}. The
// tests load the SHIPPED preset file with every `https://HOST` rewritten to `http://127.0.0.1:PORT/HOST`, so this
// server sees each platform host as the first path segment (`/open.tiktokapis.com/v2/oauth/token/`).
//
// Each dialect follows its platform's documentation (cited at each rule) and REFUSES what the platform refuses,
// in the platform's own error shape: a base64url PKCE challenge at TikTok, a code_verifier at LinkedIn, a missing
// empty-password Basic header or User-Agent at Reddit, a redirect that is not the registered https page at Meta, a
// refresh of a token younger than a day at Instagram and Threads, and so on. The authorization endpoint approves
// at once for the test account (there is no consent page to click: the "browser" is tests/js/follow.mjs).
//
// Clients: every dialect has one registered client, CLIENT_ID with secret CLIENT_SECRET (ignored by public ones).
// Account: "ada" (display names per platform below).
//
// TEST-ONLY admin endpoints (no platform has them):
//   GET  /__admin/state            {"tokens": [{kind, active, age}], "requests": {path: count}, "refused": [...],
//                                  "notes": [...]}
//   POST /__admin/clock {"advance": SECONDS}   moves this server's clock (token ages, expiries) forward
//   POST /__admin/revoke-all       makes every token inactive "behind the app's back"
//   POST /__admin/introspect {"token": VALUE}  -> {"known", "kind", "active", "age"} for a token the test holds

import crypto from 'node:crypto';
import http from 'node:http';

const CLIENT_ID = 'tk-client-id';
const CLIENT_SECRET = 'tk-client-secret';
/** The https page registered by the person for the paste dialects (never fetched). */
const PASTE_PAGE = 'https://creator.example/tokenkeep/';

const args = process.argv.slice(2);
const dialectName = args[args.indexOf('--dialect') + 1];

/** `http://127.0.0.1:PORT`, once listening: a platform's host `H` is `${origin}/H` here (issuers in id_tokens). */
let origin = '';
let clockOffset = 0;
const now = () => Math.floor(Date.now() / 1000) + clockOffset;
const random = (prefix) => `${prefix}-${crypto.randomBytes(18).toString('base64url')}`;

/** code → {clientId, redirectUri, challenge, method, scope, nonce, used} */
const codes = new Map();
/** token → {kind: access|refresh|short, active, issued, expires, scope} */
const tokens = new Map();
const requests = {};
const refused = [];
/** What happened that a test may want to see (not refusals): "authorize: PKCE S256". */
const notes = [];
const note = (text) => notes.push(text);

function issue(kind, ttl, scope) {
  const value = random(kind);
  tokens.set(value, { kind, active: true, issued: now(), expires: ttl === null ? null : now() + ttl, scope });
  return value;
}

function live(value, kind) {
  const t = tokens.get(value);
  if (!t || !t.active || (kind && t.kind !== kind)) return null;
  if (t.expires !== null && t.expires <= now()) return null;
  return t;
}

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', ...headers });
  res.end(text);
}

/** Records a refusal (for the tests' eyes) and answers it. */
function refuse(res, status, body, why) {
  refused.push(why);
  send(res, status, body);
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function form(req, text) {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) return null;
  return new URLSearchParams(text);
}

function basic(req) {
  const h = req.headers.authorization ?? '';
  if (!h.startsWith('Basic ')) return null;
  const decoded = Buffer.from(h.slice(6), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? null : [decodeURIComponent(decoded.slice(0, i)), decodeURIComponent(decoded.slice(i + 1))];
}

function bearer(req) {
  const h = req.headers.authorization ?? '';
  return h.startsWith('Bearer ') ? h.slice(7) : null;
}

const sha256 = (s) => crypto.createHash('sha256').update(s).digest();

/** A real 1×1 PNG: the account picture the emulations' profile answers point to (on this server). */
const AVATAR_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z/C/HgAGgwJ/lK3Q6wAAAABJRU5ErkJggg==',
  'base64',
);
const sendAvatar = (_req, res) => {
  res.writeHead(200, { 'content-type': 'image/png', 'content-length': AVATAR_PNG.length });
  res.end(AVATAR_PNG);
};

function unsignedJwt(claims) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'RS256', kid: 'emulated', typ: 'JWT' })}.${enc(claims)}.${Buffer.from('emulated').toString('base64url')}`;
}

/** A loopback redirect URI: scheme http, host in `hosts`, a port; `port` when the platform matches it exactly. */
function loopbackOk(uri, { hosts, port = null, path = '/callback' }) {
  let u;
  try {
    u = new URL(uri);
  } catch {
    return false;
  }
  if (u.protocol !== 'http:' || !hosts.includes(u.hostname) || u.port === '') return false;
  if (port !== null && u.port !== String(port)) return false;
  return u.pathname === path && u.search === '' && u.hash === '';
}

// ---- The authorization endpoint, shared shape ----------------------------------------------------------------

/**
 * Checks an authorization request and redirects with a code. `rules` says what this platform wants:
 *   clientParam  the client id parameter's name
 *   redirect     (uri) => bool: whether the redirect URI is one registered
 *   pkce         'required-s256' | 'required-hex' | 'optional-s256' | 'none' (challenge ignored) | 'forbidden'
 *   state        whether `state` is required
 *   requireParams  {name: value} that must be present
 *   fragment     appended to the redirect (Meta's `#_`)
 *   error        (res, status, code, description) => void: the platform's error page/shape
 */
function authorize(req, res, url, rules) {
  const q = url.searchParams;
  const fail = (why) => refuse(res, 400, { error: 'invalid_request', error_description: why }, `authorize: ${why}`);
  if (q.get('response_type') !== 'code') return fail('response_type must be code');
  if (q.get(rules.clientParam) !== CLIENT_ID) return fail(`unknown ${rules.clientParam}`);
  const redirectUri = q.get('redirect_uri') ?? '';
  if (!rules.redirect(redirectUri)) return fail(`redirect_uri ${redirectUri} is not registered`);
  if (rules.state && !q.get('state')) return fail('state is required');
  for (const [name, value] of Object.entries(rules.requireParams ?? {})) {
    if (q.get(name) !== value) return fail(`${name}=${value} is required`);
  }
  const challenge = q.get('code_challenge');
  const method = q.get('code_challenge_method');
  if (rules.pkce.startsWith('required') && (!challenge || method !== 'S256')) return fail('PKCE S256 is required');
  if (rules.pkce === 'required-hex' && challenge && !/^[0-9a-f]{64}$/.test(challenge)) {
    // TikTok accepts the parameter as given; the token endpoint then finds it does not match (see tiktok below).
  }
  const code = random('code');
  codes.set(code, {
    redirectUri,
    challenge: rules.pkce === 'none' ? null : challenge,
    method,
    scope: q.get('scope') ?? '',
    nonce: q.get('nonce'),
    used: false,
  });
  const target = new URL(redirectUri);
  target.searchParams.set('code', code);
  if (q.get('state') !== null) target.searchParams.set('state', q.get('state'));
  if (rules.iss) target.searchParams.set('iss', rules.iss);
  res.writeHead(302, { location: target.toString() + (rules.fragment ?? '') });
  res.end();
}

/** Looks up a code for the token endpoint: unused, same redirect URI (RFC 6749 §4.1.3). */
function takeCode(params) {
  const entry = codes.get(params.get('code') ?? '');
  if (!entry || entry.used) return { error: 'invalid code' };
  if (params.get('redirect_uri') !== entry.redirectUri) return { error: 'redirect_uri mismatch' };
  entry.used = true;
  return { entry };
}

// ---- The dialects ----------------------------------------------------------------------------------------------

const dialects = {};

// TikTok, Login Kit for Desktop.
// https://developers.tiktok.com/doc/login-kit-desktop: "Only localhost or loopback IP 127.0.0.1 are allowed host
//   names in URI", "URIs must have a port number, and wildcard port number (*) is supported"; PKCE required,
//   "You must use hex encoding of SHA256 to generate the code challenge from the code verifier".
// https://developers.tiktok.com/doc/oauth-user-access-token-management: form body client_key, client_secret;
//   response open_id, scope, access_token, expires_in, refresh_token, refresh_expires_in, token_type;
//   "Refresh tokens are rotated … The previous refresh token stops working once a new one is issued."
// https://developers.tiktok.com/doc/oauth-error-handling: {"error", "error_description", "log_id"}.
// https://developers.tiktok.com/docs/en/oauth-revoke-a-user-access-token: form client_key, client_secret, token
//   (the ACCESS token); "A successful request returns an empty response body".
dialects.tiktok = {
  routes: {
    'GET /www.tiktok.com/v2/auth/authorize/': (req, res, url) =>
      authorize(req, res, url, {
        clientParam: 'client_key',
        redirect: (u) => loopbackOk(u, { hosts: ['127.0.0.1', 'localhost'] }),
        pkce: 'required-hex',
        state: true,
      }),
    'POST /open.tiktokapis.com/v2/oauth/token/': async (req, res, _url, body) => {
      const err = (code, description) =>
        refuse(res, 400, { error: code, error_description: description, log_id: random('log') }, `token: ${description}`);
      const p = form(req, body);
      if (!p) return err('invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
      if (p.get('client_key') !== CLIENT_ID || p.get('client_secret') !== CLIENT_SECRET) {
        return err('invalid_client', 'Client key or secret is incorrect.');
      }
      if (p.get('grant_type') === 'authorization_code') {
        const { entry, error } = takeCode(p);
        if (error) return err('invalid_grant', 'Authorization code is expired.');
        const verifier = p.get('code_verifier') ?? '';
        if (!verifier || sha256(verifier).toString('hex') !== entry.challenge) {
          return err('invalid_request', 'Code verifier or code challenge is invalid.');
        }
        return send(res, 200, tiktokTokens(entry.scope));
      }
      if (p.get('grant_type') === 'refresh_token') {
        const old = p.get('refresh_token') ?? '';
        const t = live(old, 'refresh');
        if (!t) return err('invalid_grant', 'Refresh token is invalid or expired.');
        t.active = false; // rotated
        return send(res, 200, tiktokTokens(t.scope));
      }
      return err('unsupported_grant_type', 'Grant type is not supported.');
    },
    'POST /open.tiktokapis.com/v2/oauth/revoke/': async (req, res, _url, body) => {
      const p = form(req, body);
      if (!p || p.get('client_key') !== CLIENT_ID || p.get('client_secret') !== CLIENT_SECRET) {
        return refuse(res, 401, { error: 'invalid_client', error_description: 'Client key or secret is incorrect.', log_id: random('log') }, 'revoke: client');
      }
      const t = live(p.get('token') ?? '', 'access');
      if (!t) return refuse(res, 400, { error: 'invalid_request', error_description: 'Access token is invalid.', log_id: random('log') }, 'revoke: not an access token');
      t.active = false;
      for (const other of tokens.values()) if (other.kind === 'refresh') other.active = false; // disconnects the app
      return send(res, 200, {});
    },
    'GET /open.tiktokapis.com/v2/user/info/': (req, res, url) => {
      const t = live(bearer(req) ?? '', 'access');
      if (!t) return refuse(res, 401, { error: { code: 'access_token_invalid', message: 'The access token is invalid or not found in the request.', log_id: random('log') } }, 'userinfo: token');
      if (!(url.searchParams.get('fields') ?? '').includes('open_id')) return send(res, 400, { error: { code: 'invalid_params', message: 'fields' } });
      return send(res, 200, { data: { user: { open_id: 'tt-open-ada', display_name: 'Ada on TikTok' } }, error: { code: 'ok', message: '', log_id: random('log') } });
    },
  },
};

function tiktokTokens(scope) {
  return {
    open_id: 'tt-open-ada',
    scope: scope || 'user.info.basic',
    access_token: issue('access', 7200, scope),
    expires_in: 7200,
    refresh_token: issue('refresh', 180 * 86400, scope),
    refresh_expires_in: 180 * 86400,
    token_type: 'Bearer',
  };
}

// LinkedIn, Sign In with LinkedIn using OpenID Connect (standard three-legged flow).
// https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow: the redirect URI
//   "must match one of the Redirect URLs defined in your application configuration"; form body client_id,
//   client_secret; access tokens last 60 days; refresh tokens only for approved partners.
// The standard flow fails with 401 invalid_client when a code_verifier is sent (teamhanko/hanko#2405,
//   UsefulSoftwareCo/executor#2087; Nango's disable_pkce).
dialects.linkedin = {
  routes: {
    'GET /www.linkedin.com/oauth/v2/authorization': (req, res, url) =>
      authorize(req, res, url, {
        clientParam: 'client_id',
        redirect: (u) => u === 'http://127.0.0.1:47812/callback',
        pkce: 'none',
        state: true,
      }),
    'POST /www.linkedin.com/oauth/v2/accessToken': async (req, res, _url, body) => {
      const p = form(req, body);
      if (!p) return refuse(res, 400, { error: 'invalid_request', error_description: 'content type' }, 'token: content type');
      if (p.has('code_verifier')) {
        return refuse(res, 401, { error: 'invalid_client', error_description: 'Client authentication failed' }, 'token: code_verifier sent');
      }
      if (p.get('client_id') !== CLIENT_ID || p.get('client_secret') !== CLIENT_SECRET) {
        return refuse(res, 401, { error: 'invalid_client', error_description: 'Client authentication failed' }, 'token: client');
      }
      const { entry, error } = takeCode(p);
      if (error || p.get('grant_type') !== 'authorization_code') {
        return refuse(res, 400, { error: 'invalid_grant', error_description: 'The provided authorization grant is invalid' }, `token: ${error}`);
      }
      const claims = { iss: `${origin}/www.linkedin.com/oauth`, aud: CLIENT_ID, sub: 'li-ada', exp: now() + 3600, iat: now(), email: 'ada@example.test', name: 'Ada Lovelace' };
      if (entry.nonce) claims.nonce = entry.nonce;
      return send(res, 200, { access_token: issue('access', 60 * 86400, entry.scope), expires_in: 60 * 86400, scope: entry.scope.split(' ').join(','), token_type: 'Bearer', id_token: unsignedJwt(claims) });
    },
    // .../linkedin/consumer/integrations/self-serve/sign-in-with-linkedin-v2: GET /v2/userinfo with the bearer token.
    'GET /api.linkedin.com/v2/userinfo': (req, res) => {
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 401, { serviceErrorCode: 65600, message: 'Invalid access token', status: 401 }, 'userinfo: token');
      return send(res, 200, { sub: 'li-ada', name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', email: 'ada@example.test', email_verified: true, locale: 'en_US' });
    },
    'POST /www.linkedin.com/oauth/v2/revoke': async (req, res, _url, body) => {
      const p = form(req, body);
      if (!p || p.get('client_id') !== CLIENT_ID || p.get('client_secret') !== CLIENT_SECRET) return refuse(res, 401, { error: 'invalid_client' }, 'revoke: client');
      const t = tokens.get(p.get('token') ?? '');
      if (t) t.active = false;
      return send(res, 200, '');
    },
  },
};

// Instagram API with Instagram Login.
// .../business-login: the redirect_uri must "exactly match one of the base URIs in your list of valid OAuth URIs";
//   Meta appends `#_`; the code exchange (POST api.instagram.com/oauth/access_token, client_id, client_secret,
//   grant_type, redirect_uri, code) answers {"data": [{"access_token", "user_id", "permissions"}]}, a short-lived
//   token (1 hour, get-started), no refresh token; errors {"error_type":"OAuthException","code":400,"error_message"}.
// .../reference/access_token: GET graph.instagram.com/access_token?grant_type=ig_exchange_token&client_secret&access_token
//   -> {"access_token","token_type":"bearer","expires_in":5183944}.
// .../reference/refresh_access_token: GET graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token&
//   access_token, for a long-lived token "at least 24 hours old but has not expired"; valid 60 days from then.
const graphError = (message, code = 190) => ({ error: { message, type: 'OAuthException', code, fbtrace_id: random('trace') } });

function metaLongLived(res, token, ttl) {
  return send(res, 200, { access_token: issue('access', ttl, token.scope), token_type: 'bearer', expires_in: ttl });
}

dialects.instagram = {
  routes: {
    'GET /www.instagram.com/oauth/authorize': (req, res, url) =>
      authorize(req, res, url, { clientParam: 'client_id', redirect: (u) => u === PASTE_PAGE, pkce: 'none', state: false, fragment: '#_' }),
    'POST /api.instagram.com/oauth/access_token': async (req, res, _url, body) => {
      const p = form(req, body);
      const err = (m) => refuse(res, 400, { error_type: 'OAuthException', code: 400, error_message: m }, `token: ${m}`);
      if (!p) return err('content type');
      if (p.get('client_id') !== CLIENT_ID || p.get('client_secret') !== CLIENT_SECRET) return err('Invalid platform app');
      if (p.get('grant_type') !== 'authorization_code') return err('Unsupported grant_type');
      const { entry, error } = takeCode(p);
      if (error) return err('Matching code was not found or was already used');
      return send(res, 200, { data: [{ access_token: issue('short', 3600, entry.scope), user_id: '17841400000000001', permissions: entry.scope }] });
    },
    'GET /graph.instagram.com/access_token': (req, res, url) => {
      const q = url.searchParams;
      if (q.get('grant_type') !== 'ig_exchange_token') return refuse(res, 400, graphError('Unsupported grant_type', 100), 'exchange: grant_type');
      if (q.get('client_secret') !== CLIENT_SECRET) return refuse(res, 400, graphError('Error validating client secret.', 1), 'exchange: secret');
      const t = live(q.get('access_token') ?? '', 'short');
      if (!t) return refuse(res, 400, graphError('Error validating access token: The session is invalid.'), 'exchange: token');
      return metaLongLived(res, t, 60 * 86400);
    },
    'GET /graph.instagram.com/refresh_access_token': (req, res, url) => {
      const q = url.searchParams;
      if (q.get('grant_type') !== 'ig_refresh_token') return refuse(res, 400, graphError('Unsupported grant_type', 100), 'refresh: grant_type');
      const t = live(q.get('access_token') ?? '', 'access');
      if (!t) return refuse(res, 400, graphError('Error validating access token: Session has expired.'), 'refresh: token');
      if (now() - t.issued < 86400) return refuse(res, 400, graphError('The access token must be at least 24 hours old to be refreshed.', 10), 'refresh: younger than 24 h');
      return metaLongLived(res, t, 60 * 86400);
    },
    'GET /graph.instagram.com/me': (req, res, url) => {
      const t = live(bearer(req) ?? url.searchParams.get('access_token') ?? '', 'access');
      if (!t) return refuse(res, 400, graphError('Invalid OAuth access token.'), 'me: token');
      return send(res, 200, { user_id: '17841400000000001', username: 'ada.creates', id: '2601' });
    },
  },
};

// Twitch.
// https://dev.twitch.tv/docs/authentication/getting-tokens-oidc; validate-tokens: "Your app must validate the OAuth
//   token when it starts and on an hourly basis thereafter", GET /oauth2/validate with `Authorization: OAuth <token>`,
//   401 {"status":401,"message":"invalid access token"}. revoke-tokens: POST form client_id, token. Errors
//   {"status", "message"} ("Invalid refresh token", "invalid client secret" with 403). `scope` is an array.
//   Redirect URIs match exactly (port included).
const twitchError = (res, status, message) => refuse(res, status, { status, message }, `twitch: ${message}`);
dialects.twitch = {
  routes: {
    'GET /id.twitch.tv/oauth2/authorize': (req, res, url) =>
      authorize(req, res, url, {
        clientParam: 'client_id',
        redirect: (u) => u === 'http://localhost:47814/callback',
        pkce: 'none',
        state: true,
        requireParams: { force_verify: 'true' },
      }),
    'POST /id.twitch.tv/oauth2/token': async (req, res, _url, body) => {
      const p = form(req, body);
      if (!p) return twitchError(res, 400, 'missing client id');
      if (p.get('client_id') !== CLIENT_ID) return twitchError(res, 400, 'invalid client');
      if (p.get('client_secret') !== CLIENT_SECRET) return twitchError(res, 403, 'invalid client secret');
      const tokensFor = (scope, nonce) => {
        const answer = { access_token: issue('access', 14000, scope), expires_in: 14000, refresh_token: issue('refresh', null, scope), scope: scope.split(' '), token_type: 'bearer' };
        if (scope.split(' ').includes('openid')) {
          const claims = { iss: `${origin}/id.twitch.tv/oauth2`, aud: CLIENT_ID, sub: '141981764', exp: now() + 900, iat: now(), preferred_username: 'ada_streams', email: 'ada@example.test' };
          if (nonce) claims.nonce = nonce;
          answer.id_token = unsignedJwt(claims);
        }
        return answer;
      };
      if (p.get('grant_type') === 'authorization_code') {
        const { entry, error } = takeCode(p);
        if (error) return twitchError(res, 400, 'Invalid authorization code');
        return send(res, 200, tokensFor(entry.scope, entry.nonce));
      }
      if (p.get('grant_type') === 'refresh_token') {
        const t = live(p.get('refresh_token') ?? '', 'refresh');
        if (!t) return twitchError(res, 400, 'Invalid refresh token');
        t.active = false;
        return send(res, 200, tokensFor(t.scope, null));
      }
      return twitchError(res, 400, 'unsupported grant type');
    },
    'GET /id.twitch.tv/oauth2/validate': (req, res) => {
      const h = req.headers.authorization ?? '';
      if (!h.startsWith('OAuth ')) return twitchError(res, 401, 'missing authorization token');
      const t = live(h.slice(6), 'access');
      if (!t) return twitchError(res, 401, 'invalid access token');
      return send(res, 200, { client_id: CLIENT_ID, login: 'ada_streams', scopes: t.scope.split(' '), user_id: '141981764', expires_in: t.expires - now() });
    },
    // getting-tokens-oidc: GET /oauth2/userinfo with `Authorization: Bearer`; `sub` and the claims asked for.
    'GET /id.twitch.tv/oauth2/userinfo': (req, res) => {
      if (!live(bearer(req) ?? '', 'access')) return twitchError(res, 401, 'invalid access token');
      return send(res, 200, { aud: CLIENT_ID, iss: `${origin}/id.twitch.tv/oauth2`, sub: '141981764', preferred_username: 'ada_streams' });
    },
    'POST /id.twitch.tv/oauth2/revoke': async (req, res, _url, body) => {
      const p = form(req, body);
      if (!p || !p.get('token')) return twitchError(res, 400, 'missing oauth token');
      if (p.get('client_id') !== CLIENT_ID) return twitchError(res, 404, 'client does not exist');
      const t = live(p.get('token'), 'access');
      if (!t) return twitchError(res, 400, 'Invalid token');
      t.active = false;
      for (const other of tokens.values()) if (other.kind === 'refresh') other.active = false;
      return send(res, 200, '');
    },
  },
};

// Reddit, installed app.
// https://github.com/reddit-archive/reddit/wiki/OAuth2: Basic auth, "The 'password' for non-confidential clients
//   (installed apps) is an empty string"; POST data, not URL; duration=permanent for a refresh token; the redirect
//   URI "must match exactly"; revoke_token with token/token_type_hint, 204 "even if the passed in token was never
//   valid"; "Revoking a refresh token will also revoke any related access tokens". Errors can come with HTTP 200
//   (prawcore: "Why are these OKAY responses?").
// Data API Wiki: a descriptive User-Agent; default ones "are drastically limited" (answered 429 here).
function redditGuard(req, res) {
  const ua = req.headers['user-agent'] ?? '';
  if (!/^[a-z]+:[^:]+:[^ ]+ \(.+\)$/.test(ua)) {
    refuse(res, 429, { message: 'Too Many Requests', error: 429 }, `reddit: user agent ${ua}`);
    return false;
  }
  return true;
}
dialects.reddit = {
  routes: {
    'GET /www.reddit.com/api/v1/authorize': (req, res, url) =>
      authorize(req, res, url, {
        clientParam: 'client_id',
        redirect: (u) => u === 'http://127.0.0.1:47813/callback',
        pkce: 'none',
        state: true,
        requireParams: { duration: 'permanent' },
      }),
    'POST /www.reddit.com/api/v1/access_token': async (req, res, _url, body) => {
      if (!redditGuard(req, res)) return;
      const auth = basic(req);
      if (!auth || auth[0] !== CLIENT_ID || auth[1] !== '') return refuse(res, 401, { message: 'Unauthorized', error: 401 }, 'reddit token: basic');
      const p = form(req, body);
      if (!p) return send(res, 200, { error: 'unsupported_grant_type' });
      if (p.get('grant_type') === 'authorization_code') {
        const { entry, error } = takeCode(p);
        if (error) return refuse(res, 200, { error: 'invalid_grant' }, `reddit token: ${error}`);
        return send(res, 200, { access_token: issue('access', 3600, entry.scope), token_type: 'bearer', expires_in: 3600, scope: entry.scope, refresh_token: issue('refresh', null, entry.scope) });
      }
      if (p.get('grant_type') === 'refresh_token') {
        const t = live(p.get('refresh_token') ?? '', 'refresh');
        if (!t) return refuse(res, 200, { error: 'invalid_grant' }, 'reddit refresh: invalid');
        return send(res, 200, { access_token: issue('access', 3600, t.scope), token_type: 'bearer', expires_in: 3600, scope: t.scope });
      }
      return send(res, 200, { error: 'unsupported_grant_type' });
    },
    'POST /www.reddit.com/api/v1/revoke_token': async (req, res, _url, body) => {
      if (!redditGuard(req, res)) return;
      const auth = basic(req);
      if (!auth || auth[0] !== CLIENT_ID || auth[1] !== '') return refuse(res, 401, { message: 'Unauthorized', error: 401 }, 'reddit revoke: basic');
      const p = form(req, body);
      const t = tokens.get(p?.get('token') ?? '');
      if (t) {
        t.active = false;
        if (t.kind === 'refresh') for (const other of tokens.values()) if (other.kind === 'access') other.active = false;
      }
      res.writeHead(204);
      res.end();
    },
    'GET /oauth.reddit.com/api/v1/me': (req, res) => {
      if (!redditGuard(req, res)) return;
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 401, { message: 'Unauthorized', error: 401 }, 'reddit me: token');
      return send(res, 200, { name: 'ada_posts', id: '1w72' });
    },
  },
};

// Google (YouTube), installed app.
// https://developers.google.com/identity/protocols/oauth2/native-app: loopback http://127.0.0.1:port (any port);
//   PKCE S256; client_secret in the body; refresh tokens do not rotate; errors {"error", "error_description"}.
// https://developers.google.com/identity/openid-connect/openid-connect: `iss` is "https://accounts.google.com or
//   accounts.google.com" — this emulation sends the form without the scheme.
// https://developers.google.com/youtube/v3/docs/channels/list: ?part=snippet&mine=true -> items[].id, snippet.title.
dialects.youtube = {
  routes: {
    'GET /accounts.google.com/o/oauth2/v2/auth': (req, res, url) =>
      authorize(req, res, url, {
        clientParam: 'client_id',
        redirect: (u) => loopbackOk(u, { hosts: ['127.0.0.1'] }),
        pkce: 'required-s256',
        state: false,
        requireParams: { access_type: 'offline' },
      }),
    'POST /oauth2.googleapis.com/token': async (req, res, _url, body) => {
      const p = form(req, body);
      const err = (code, d) => refuse(res, 400, { error: code, error_description: d }, `google: ${d}`);
      if (!p) return err('invalid_request', 'content type');
      if (p.get('client_id') !== CLIENT_ID || p.get('client_secret') !== CLIENT_SECRET) return err('invalid_client', 'The OAuth client was not found.');
      if (p.get('grant_type') === 'authorization_code') {
        const { entry, error } = takeCode(p);
        if (error) return err('invalid_grant', 'Bad Request');
        const verifier = p.get('code_verifier');
        if (!verifier) return err('invalid_grant', 'Missing code verifier.');
        if (sha256(verifier).toString('base64url') !== entry.challenge) return err('invalid_grant', 'Invalid code verifier.');
        const claims = { iss: 'accounts.google.com', aud: CLIENT_ID, sub: '1098765', exp: now() + 3600, iat: now(), email: 'ada@example.test', email_verified: true };
        if (entry.nonce) claims.nonce = entry.nonce;
        return send(res, 200, { access_token: issue('access', 3599, entry.scope), expires_in: 3599, refresh_token: issue('refresh', null, entry.scope), scope: entry.scope, token_type: 'Bearer', id_token: unsignedJwt(claims) });
      }
      if (p.get('grant_type') === 'refresh_token') {
        const t = live(p.get('refresh_token') ?? '', 'refresh');
        if (!t) return err('invalid_grant', 'Token has been expired or revoked.');
        return send(res, 200, { access_token: issue('access', 3599, t.scope), expires_in: 3599, scope: t.scope, token_type: 'Bearer' });
      }
      return err('unsupported_grant_type', 'Invalid grant_type');
    },
    'POST /oauth2.googleapis.com/revoke': async (req, res, url, body) => {
      const p = form(req, body) ?? url.searchParams;
      const t = tokens.get(p.get('token') ?? url.searchParams.get('token') ?? '');
      if (!t) return refuse(res, 400, { error: 'invalid_token', error_description: 'Token expired or revoked' }, 'google revoke: unknown');
      // "If the token is an access token and it has a corresponding refresh token, the refresh token will also be revoked."
      for (const other of tokens.values()) other.active = false;
      return send(res, 200, {});
    },
    'GET /www.googleapis.com/youtube/v3/channels': (req, res, url) => {
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 401, { error: { code: 401, message: 'Request had invalid authentication credentials.' } }, 'channels: token');
      if (url.searchParams.get('mine') !== 'true') return send(res, 400, { error: { code: 400, message: 'No filter selected.' } });
      return send(res, 200, { kind: 'youtube#channelListResponse', items: [{ kind: 'youtube#channel', id: 'UCada000000000000000000', snippet: { title: 'Ada Makes Videos' } }] });
    },
  },
};

// X (Twitter), OAuth 2.0 Authorization Code with PKCE, Native App (public client).
// https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code: PKCE required; the redirect URI must
//   match; a refresh token only with offline.access; POST /2/oauth2/token form with client_id; /2/oauth2/revoke.
// https://docs.x.com/x-api/users/user-lookup-me: GET /2/users/me -> {"data": {"id", "name", "username"}}; more
//   fields only when `user.fields` names them (profile_image_url among them); an unknown field is a 400.
const X_USER_FIELDS = new Set(['affiliation', 'connection_status', 'created_at', 'description', 'entities', 'id', 'location', 'most_recent_tweet_id', 'name', 'pinned_tweet_id', 'profile_banner_url', 'profile_image_url', 'protected', 'public_metrics', 'receives_your_dm', 'subscription_type', 'url', 'username', 'verified', 'verified_type', 'withheld']);
dialects.x = {
  routes: {
    'GET /x.com/i/oauth2/authorize': (req, res, url) =>
      authorize(req, res, url, { clientParam: 'client_id', redirect: (u) => u === 'http://127.0.0.1:47811/callback', pkce: 'required-s256', state: true }),
    'POST /api.x.com/2/oauth2/token': async (req, res, _url, body) => {
      const p = form(req, body);
      const err = (code, d) => refuse(res, 400, { error: code, error_description: d }, `x: ${d}`);
      if (!p || p.get('client_id') !== CLIENT_ID) return err('invalid_request', 'Missing required parameter [client_id].');
      if (p.get('grant_type') === 'authorization_code') {
        const { entry, error } = takeCode(p);
        if (error) return err('invalid_request', 'Value passed for the authorization code was invalid.');
        if (sha256(p.get('code_verifier') ?? '').toString('base64url') !== entry.challenge) return err('invalid_request', 'Value passed for the code verifier was invalid.');
        const answer = { token_type: 'bearer', expires_in: 7200, access_token: issue('access', 7200, entry.scope), scope: entry.scope };
        if (entry.scope.split(' ').includes('offline.access')) answer.refresh_token = issue('refresh', null, entry.scope);
        return send(res, 200, answer);
      }
      if (p.get('grant_type') === 'refresh_token') {
        const t = live(p.get('refresh_token') ?? '', 'refresh');
        if (!t) return err('invalid_request', 'Value passed for the token was invalid.');
        t.active = false;
        return send(res, 200, { token_type: 'bearer', expires_in: 7200, access_token: issue('access', 7200, t.scope), scope: t.scope, refresh_token: issue('refresh', null, t.scope) });
      }
      return err('invalid_request', 'grant_type');
    },
    'POST /api.x.com/2/oauth2/revoke': async (req, res, _url, body) => {
      const p = form(req, body);
      if (!p || p.get('client_id') !== CLIENT_ID) return refuse(res, 400, { error: 'invalid_request' }, 'x revoke: client');
      const t = tokens.get(p.get('token') ?? '');
      if (t) t.active = false;
      return send(res, 200, { revoked: true });
    },
    'GET /api.x.com/2/users/me': (req, res, url) => {
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 401, { title: 'Unauthorized', status: 401 }, 'x me: token');
      const fields = (url.searchParams.get('user.fields') ?? '').split(',').filter(Boolean);
      const unknown = fields.filter((f) => !X_USER_FIELDS.has(f));
      if (unknown.length > 0) return refuse(res, 400, { errors: [{ parameters: { 'user.fields': unknown }, message: `The \`user.fields\` query parameter value [${unknown[0]}] is not one of [${[...X_USER_FIELDS].join(',')}]` }], title: 'Invalid Request', type: 'https://api.twitter.com/2/problems/invalid-request' }, 'x me: user.fields');
      const data = { id: '2244994945', name: 'Ada', username: 'ada_writes' };
      if (fields.includes('profile_image_url')) data.profile_image_url = `http://${req.headers.host}/pbs.twimg.com/profile_images/2244994945/ada_normal.png`;
      return send(res, 200, { data });
    },
    'GET /pbs.twimg.com/profile_images/2244994945/ada_normal.png': sendAvatar,
  },
};

// Facebook Login (Pages) and Instagram through Facebook Login.
// https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow: the redirect must be registered
//   exactly; Meta appends a fragment. .../access-tokens/get-long-lived: GET /oauth/access_token?grant_type=
//   fb_exchange_token&client_id&client_secret&fb_exchange_token -> {"access_token","token_type","expires_in"}.
// .../graph-api/reference/user/permissions/: DELETE /me/permissions revokes the whole grant -> {"success": true}.
function metaRoutes(version, identity) {
  const base = `/graph.facebook.com/${version}`;
  return {
    [`GET /www.facebook.com/${version}/dialog/oauth`]: (req, res, url) =>
      authorize(req, res, url, { clientParam: 'client_id', redirect: (u) => u === PASTE_PAGE, pkce: 'none', state: true, fragment: '#_=_' }),
    [`POST ${base}/oauth/access_token`]: async (req, res, _url, body) => {
      const p = form(req, body);
      if (!p || p.get('client_id') !== CLIENT_ID || p.get('client_secret') !== CLIENT_SECRET) return refuse(res, 400, graphError('Error validating client secret.', 1), 'meta token: client');
      const { entry, error } = takeCode(p);
      if (error) return refuse(res, 400, graphError('This authorization code has been used.', 100), `meta token: ${error}`);
      return send(res, 200, { access_token: issue('short', 3600, entry.scope), token_type: 'bearer' });
    },
    [`GET ${base}/oauth/access_token`]: (req, res, url) => {
      const q = url.searchParams;
      if (q.get('grant_type') !== 'fb_exchange_token') return refuse(res, 400, graphError('Unsupported grant_type', 100), 'meta exchange: grant');
      if (q.get('client_id') !== CLIENT_ID || q.get('client_secret') !== CLIENT_SECRET) return refuse(res, 400, graphError('Error validating client secret.', 1), 'meta exchange: client');
      const t = live(q.get('fb_exchange_token') ?? '', 'short');
      if (!t) return refuse(res, 400, graphError('Error validating access token: The session is invalid.'), 'meta exchange: token');
      return metaLongLived(res, t, 60 * 86400);
    },
    [`DELETE ${base}/me/permissions`]: (req, res, url) => {
      const t = live(url.searchParams.get('access_token') ?? '', 'access');
      if (!t) return refuse(res, 400, graphError('Invalid OAuth access token.'), 'meta permissions: token');
      for (const other of tokens.values()) other.active = false;
      return send(res, 200, { success: true });
    },
    ...identity(base),
  };
}

dialects.facebook = {
  routes: metaRoutes('v21.0', (base) => ({
    [`GET ${base}/me`]: (req, res) => {
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 400, graphError('Invalid OAuth access token.'), 'fb me: token');
      return send(res, 200, { id: '10160000000000001', name: 'Ada Lovelace' });
    },
  })),
};

dialects['instagram-facebook'] = {
  routes: metaRoutes('v21.0', (base) => ({
    [`GET ${base}/me/accounts`]: (req, res, url) => {
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 400, graphError('Invalid OAuth access token.'), 'fb accounts: token');
      if (!(url.searchParams.get('fields') ?? '').includes('instagram_business_account')) return send(res, 200, { data: [{ id: '1057', name: 'Ada Studio' }] });
      return send(res, 200, { data: [{ id: '1057', instagram_business_account: { id: '17841400000000002', username: 'ada.studio' } }] });
    },
  })),
};

// Threads.
// https://developers.facebook.com/docs/threads/get-started/get-access-tokens-and-permissions: POST
//   graph.threads.net/oauth/access_token form client_id, client_secret, code, grant_type, redirect_uri; a short-lived
//   token (1 hour). .../long-lived-tokens: GET graph.threads.net/access_token?grant_type=th_exchange_token&
//   client_secret&access_token (60 days); GET graph.threads.net/refresh_access_token?grant_type=th_refresh_token&
//   access_token, for a token "at least 24 hours old but not expired".
// fbsamples/threads_api README: no localhost, https redirects only.
dialects.threads = {
  routes: {
    'GET /threads.net/oauth/authorize': (req, res, url) =>
      authorize(req, res, url, { clientParam: 'client_id', redirect: (u) => u === PASTE_PAGE, pkce: 'none', state: false, fragment: '#_' }),
    'POST /graph.threads.net/oauth/access_token': async (req, res, _url, body) => {
      const p = form(req, body);
      if (!p || p.get('client_id') !== CLIENT_ID || p.get('client_secret') !== CLIENT_SECRET) return refuse(res, 400, graphError('Error validating client secret.', 1), 'threads token: client');
      const { entry, error } = takeCode(p);
      if (error) return refuse(res, 400, graphError('Invalid authorization code', 100), `threads token: ${error}`);
      return send(res, 200, { access_token: issue('short', 3600, entry.scope), user_id: 25000000000000001 });
    },
    'GET /graph.threads.net/access_token': (req, res, url) => {
      const q = url.searchParams;
      if (q.get('grant_type') !== 'th_exchange_token' || q.get('client_secret') !== CLIENT_SECRET) return refuse(res, 400, graphError('Error validating client secret.', 1), 'threads exchange');
      const t = live(q.get('access_token') ?? '', 'short');
      if (!t) return refuse(res, 400, graphError('Error validating access token.'), 'threads exchange: token');
      return metaLongLived(res, t, 60 * 86400);
    },
    'GET /graph.threads.net/refresh_access_token': (req, res, url) => {
      const q = url.searchParams;
      if (q.get('grant_type') !== 'th_refresh_token') return refuse(res, 400, graphError('Unsupported grant_type', 100), 'threads refresh: grant');
      const t = live(q.get('access_token') ?? '', 'access');
      if (!t) return refuse(res, 400, graphError('Error validating access token: Session has expired.'), 'threads refresh: token');
      if (now() - t.issued < 86400) return refuse(res, 400, graphError('The access token must be at least 24 hours old to be refreshed.', 10), 'threads refresh: younger than 24 h');
      return metaLongLived(res, t, 60 * 86400);
    },
    'GET /graph.threads.net/v1.0/me': (req, res) => {
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 400, graphError('Invalid OAuth access token.'), 'threads me: token');
      return send(res, 200, { id: '25000000000000001', username: 'ada.threads' });
    },
  },
};

// Pinterest API v5.
// https://developers.pinterest.com/docs/getting-started/set-up-authentication-and-authorization/: POST
//   /v5/oauth/token with HTTP Basic (app id : secret), form body; continuous refresh returns a new refresh token;
//   errors {"code", "message"}. pinterest/api-quickstart registers http://localhost:8085/ (exact match).
const pinError = (res, status, message) => refuse(res, status, { code: 2, message }, `pinterest: ${message}`);
dialects.pinterest = {
  routes: {
    'GET /www.pinterest.com/oauth/': (req, res, url) =>
      authorize(req, res, url, { clientParam: 'client_id', redirect: (u) => u === 'http://localhost:47815/callback', pkce: 'none', state: true }),
    'POST /api.pinterest.com/v5/oauth/token': async (req, res, _url, body) => {
      const auth = basic(req);
      if (!auth || auth[0] !== CLIENT_ID || auth[1] !== CLIENT_SECRET) return pinError(res, 401, 'Authentication failed.');
      const p = form(req, body);
      if (!p) return pinError(res, 400, 'Invalid request');
      const answer = (scope) => ({ access_token: issue('access', 30 * 86400, scope), response_type: 'authorization_code', token_type: 'bearer', expires_in: 30 * 86400, scope, refresh_token: issue('refresh', 60 * 86400, scope), refresh_token_expires_in: 60 * 86400 });
      if (p.get('grant_type') === 'authorization_code') {
        const { entry, error } = takeCode(p);
        if (error) return pinError(res, 400, 'Invalid authorization code');
        return send(res, 200, answer(entry.scope));
      }
      if (p.get('grant_type') === 'refresh_token') {
        const t = live(p.get('refresh_token') ?? '', 'refresh');
        if (!t) return pinError(res, 400, 'Invalid refresh token');
        t.active = false;
        return send(res, 200, answer(t.scope));
      }
      return pinError(res, 400, 'Unsupported grant type');
    },
    'GET /api.pinterest.com/v5/user_account': (req, res) => {
      if (!live(bearer(req) ?? '', 'access')) return pinError(res, 401, 'Authentication failed.');
      return send(res, 200, { account_type: 'BUSINESS', id: '5566778899', username: 'adapins' });
    },
  },
};

// Kick.
// KickEngineering/KickDevDocs getting-started/generating-tokens-oauth2-flow.md: PKCE (S256) and state required,
//   client_secret required in the form body; refresh returns a new refresh token; POST /oauth/revoke?token=…&
//   token_hint_type=… (query parameters) answers `OK`; errors {"error": "Invalid request"}.
//   apis/users.md: GET /public/v1/users -> {"data": [{"user_id", "name", …}], "message": "OK"}.
dialects.kick = {
  routes: {
    'GET /id.kick.com/oauth/authorize': (req, res, url) =>
      authorize(req, res, url, { clientParam: 'client_id', redirect: (u) => u === 'http://localhost:47816/callback', pkce: 'required-s256', state: true }),
    'POST /id.kick.com/oauth/token': async (req, res, _url, body) => {
      const p = form(req, body);
      const err = () => refuse(res, 400, { error: 'Invalid request' }, 'kick token');
      if (!p || p.get('client_id') !== CLIENT_ID || p.get('client_secret') !== CLIENT_SECRET) return err();
      const answer = (scope) => ({ access_token: issue('access', 7200, scope), token_type: 'Bearer', refresh_token: issue('refresh', null, scope), expires_in: 7200, scope });
      if (p.get('grant_type') === 'authorization_code') {
        const { entry, error } = takeCode(p);
        if (error || sha256(p.get('code_verifier') ?? '').toString('base64url') !== entry.challenge) return err();
        return send(res, 200, answer(entry.scope));
      }
      if (p.get('grant_type') === 'refresh_token') {
        const t = live(p.get('refresh_token') ?? '', 'refresh');
        if (!t) return refuse(res, 400, { error: 'invalid_grant' }, 'kick refresh');
        t.active = false; // the answer carries the refresh token to use from now on
        return send(res, 200, answer(t.scope));
      }
      return err();
    },
    'POST /id.kick.com/oauth/revoke': async (req, res, url, body) => {
      if (body !== '' || !url.searchParams.get('token')) return refuse(res, 400, { error: 'Invalid request' }, 'kick revoke: parameters not in the query');
      const t = tokens.get(url.searchParams.get('token'));
      if (t) t.active = false;
      return send(res, 200, 'OK');
    },
    'GET /api.kick.com/public/v1/users': (req, res) => {
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 401, { data: {}, message: 'Unauthorized' }, 'kick users: token');
      return send(res, 200, { data: [{ user_id: 4377088, name: 'ada_live', email: 'ada@example.test' }], message: 'OK' });
    },
  },
};

// Spotify, Authorization Code with PKCE.
// https://developer.spotify.com/documentation/web-api/concepts/redirect_uri: "localhost is not allowed as redirect
//   URI"; loopback IP literals "can dynamically be assigned ports". code-pkce-flow: POST /api/token form client_id,
//   grant_type, code, redirect_uri, code_verifier (no secret). refreshing-tokens: refresh with client_id.
// https://developer.spotify.com/documentation/web-api/reference/get-current-users-profile: GET /v1/me.
dialects.spotify = {
  routes: {
    'GET /accounts.spotify.com/authorize': (req, res, url) =>
      authorize(req, res, url, { clientParam: 'client_id', redirect: (u) => loopbackOk(u, { hosts: ['127.0.0.1'] }), pkce: 'required-s256', state: false }),
    'POST /accounts.spotify.com/api/token': async (req, res, _url, body) => {
      const p = form(req, body);
      const err = (code, d) => refuse(res, 400, { error: code, error_description: d }, `spotify: ${d}`);
      if (!p || p.get('client_id') !== CLIENT_ID) return err('invalid_client', 'Invalid client');
      const answer = (scope) => ({ access_token: issue('access', 3600, scope), token_type: 'Bearer', scope, expires_in: 3600, refresh_token: issue('refresh', null, scope) });
      if (p.get('grant_type') === 'authorization_code') {
        const { entry, error } = takeCode(p);
        if (error) return err('invalid_grant', 'Invalid authorization code');
        if (sha256(p.get('code_verifier') ?? '').toString('base64url') !== entry.challenge) return err('invalid_grant', 'code_verifier was incorrect');
        return send(res, 200, answer(entry.scope));
      }
      if (p.get('grant_type') === 'refresh_token') {
        const t = live(p.get('refresh_token') ?? '', 'refresh');
        if (!t) return err('invalid_grant', 'Refresh token revoked');
        t.active = false;
        return send(res, 200, answer(t.scope));
      }
      return err('unsupported_grant_type', 'grant_type');
    },
    'GET /api.spotify.com/v1/me': (req, res) => {
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 401, { error: { status: 401, message: 'Invalid access token' } }, 'spotify me: token');
      return send(res, 200, { id: 'ada-listens', display_name: 'Ada Podcasts', type: 'user' });
    },
  },
};

// Mastodon (any server; this emulation is one server at its origin, so routes have no host prefix).
// https://docs.joinmastodon.org/methods/apps/: POST /api/v1/apps (form or JSON) with client_name and redirect_uris
//   required, scopes (default "read"); 422 {"error": "Validation failed: ..."}; the answer has client_id and
//   client_secret. Mastodon "only supports provisioning confidential clients".
// https://docs.joinmastodon.org/methods/oauth/: authorize — redirect_uri "must match one of the redirect_uris
//   declared during app registration", scope "must be a subset of scopes declared during app registration",
//   code_challenge_method "must be S256" (4.3.0+); token — client_id and client_secret required, redirect_uri "must
//   match the redirect_uri used during the Authorization request", code_verifier "required if PKCE is used";
//   answer {access_token, token_type, scope, created_at} (no expiry, no refresh token); 401 invalid_client;
//   revoke — client_id, client_secret, token; 200 {}; 403 unauthorized_client for a token not the client's;
//   /.well-known/oauth-authorization-server (4.3.0+, 404 before) with app_registration_endpoint.
// https://docs.joinmastodon.org/methods/accounts/#verify_credentials: 401 {"error": "The access token is invalid"}.
// The loopback port is matched exactly here (the conservative reading of "must match").
const apps = new Map(); // client_id -> {secret, redirectUris, scopes}
function mastodonRoutes({ metadata }) {
  const oauthError = (res, status, error, description) => refuse(res, status, { error, error_description: description }, `mastodon: ${error}: ${description}`);
  const routes = {
    'POST /api/v1/apps': async (req, res, _url, body) => {
      const type = req.headers['content-type'] ?? '';
      let p;
      if (type.startsWith('application/json')) {
        const j = JSON.parse(body || '{}');
        p = new Map(Object.entries(j).map(([k, v]) => [k, Array.isArray(v) ? v.join('\n') : String(v)]));
      } else {
        p = new Map(new URLSearchParams(body));
      }
      const name = p.get('client_name');
      const uris = (p.get('redirect_uris') ?? '').split(/\s+/).filter(Boolean);
      if (!name) return refuse(res, 422, { error: "Validation failed: Application name can't be blank" }, 'apps: no name');
      if (uris.length === 0 || !uris.every((u) => { try { return Boolean(new URL(u)); } catch { return false; } })) {
        return refuse(res, 422, { error: 'Validation failed: Redirect URI must be an absolute URI.' }, 'apps: redirect');
      }
      const client_id = random('cid');
      const client_secret = random('csecret');
      const scopes = (p.get('scopes') ?? 'read').split(/\s+/).filter(Boolean);
      apps.set(client_id, { secret: client_secret, redirectUris: uris, scopes });
      note(`apps: registered ${name} for ${uris.join(' ')} with ${scopes.join(' ')}`);
      return send(res, 200, { id: String(apps.size), name, website: null, scopes, redirect_uri: uris.join('\n'), redirect_uris: uris, client_id, client_secret, client_secret_expires_at: 0 });
    },
    'GET /oauth/authorize': (req, res, url) => {
      const q = url.searchParams;
      const app = apps.get(q.get('client_id') ?? '');
      const page = (why) => refuse(res, 400, `The redirect uri included is not valid. (${why})`, `authorize: ${why}`);
      if (!app) return page('unknown client');
      if (!app.redirectUris.includes(q.get('redirect_uri') ?? '')) return page(`redirect_uri ${q.get('redirect_uri')} was not registered`);
      const scope = (q.get('scope') ?? 'read').split(/[\s+]+/).filter(Boolean);
      if (!scope.every((s) => app.scopes.includes(s))) return page(`scope ${scope.join(' ')} is not a subset of ${app.scopes.join(' ')}`);
      const challenge = q.get('code_challenge');
      if (metadata && challenge && q.get('code_challenge_method') !== 'S256') return page('code_challenge_method must be S256');
      note(`authorize: ${challenge && metadata ? 'PKCE S256' : 'no PKCE'}`);
      const code = random('code');
      codes.set(code, { redirectUri: q.get('redirect_uri'), challenge: metadata ? challenge : null, scope: scope.join(' '), clientId: q.get('client_id'), used: false });
      const target = new URL(q.get('redirect_uri'));
      target.searchParams.set('code', code);
      if (q.get('state') !== null) target.searchParams.set('state', q.get('state'));
      res.writeHead(302, { location: target.toString() });
      res.end();
    },
    'POST /oauth/token': async (req, res, _url, body) => {
      const p = form(req, body);
      if (!p) return oauthError(res, 400, 'invalid_request', 'The request is missing a required parameter.');
      const [id, secret] = basic(req) ?? [p.get('client_id'), p.get('client_secret')];
      const app = apps.get(id ?? '');
      if (!app || app.secret !== secret) return oauthError(res, 401, 'invalid_client', 'Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.');
      if (p.get('grant_type') !== 'authorization_code') return oauthError(res, 400, 'unsupported_grant_type', 'The authorization grant type is not supported by the authorization server.');
      const entry = codes.get(p.get('code') ?? '');
      const invalid = () => oauthError(res, 400, 'invalid_grant', 'The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.');
      if (!entry || entry.used || entry.clientId !== id || entry.redirectUri !== p.get('redirect_uri')) return invalid();
      if (entry.challenge && sha256(p.get('code_verifier') ?? '').toString('base64url') !== entry.challenge) return invalid();
      entry.used = true;
      const token = issue('access', null, entry.scope);
      tokens.get(token).clientId = id;
      return send(res, 200, { access_token: token, token_type: 'Bearer', scope: entry.scope, created_at: now() });
    },
    'POST /oauth/revoke': async (req, res, _url, body) => {
      const p = form(req, body);
      const [id, secret] = basic(req) ?? [p?.get('client_id'), p?.get('client_secret')];
      const app = apps.get(id ?? '');
      const t = tokens.get(p?.get('token') ?? '');
      if (!app || app.secret !== secret || (t && t.clientId !== id)) return oauthError(res, 403, 'unauthorized_client', 'You are not authorized to revoke this token');
      if (t) t.active = false;
      return send(res, 200, {});
    },
    'GET /api/v1/accounts/verify_credentials': (req, res) => {
      if (!live(bearer(req) ?? '', 'access')) return refuse(res, 401, { error: 'The access token is invalid' }, 'verify_credentials: token');
      return send(res, 200, { id: '109348', username: 'ada', acct: 'ada', display_name: 'Ada Lovelace', url: `${origin}/@ada` });
    },
  };
  // Before 4.3 the document does not exist: "requesting this endpoint will result in a 404 Not Found error".
  routes['GET /.well-known/oauth-authorization-server'] = (req, res) => send(res, 404, 'The page you are looking for isn\'t here.');
  if (metadata) {
    routes['GET /.well-known/oauth-authorization-server'] = (req, res) => send(res, 200, {
      issuer: `${origin}/`,
      service_documentation: 'https://docs.joinmastodon.org/',
      authorization_endpoint: `${origin}/oauth/authorize`,
      token_endpoint: `${origin}/oauth/token`,
      app_registration_endpoint: `${origin}/api/v1/apps`,
      revocation_endpoint: `${origin}/oauth/revoke`,
      scopes_supported: ['read', 'read:accounts', 'write', 'write:statuses', 'write:media', 'profile', 'follow', 'push'],
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      grant_types_supported: ['authorization_code', 'client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    });
  }
  return routes;
}
dialects.mastodon = { routes: mastodonRoutes({ metadata: true }) };
// Mastodon before 4.3: no metadata document (404), PKCE parameters ignored.
dialects['mastodon-legacy'] = { routes: mastodonRoutes({ metadata: false }) };

// ---- The server ------------------------------------------------------------------------------------------------

const dialect = dialects[dialectName];
if (!dialect) {
  console.error(`unknown dialect ${dialectName}: one of ${Object.keys(dialects).join(', ')}`);
  process.exit(2);
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const body = await readBody(req);
  const key = `${req.method} ${url.pathname}`;
  requests[key] = (requests[key] ?? 0) + 1;
  console.error(`${req.method} ${url.pathname}`);
  try {
    if (url.pathname === '/__admin/state') {
      return send(res, 200, {
        tokens: [...tokens.entries()].map(([value, t]) => ({ kind: t.kind, active: live(value) !== null, age: now() - t.issued })),
        requests,
        refused,
        notes,
      });
    }
    if (url.pathname === '/__admin/clock' && req.method === 'POST') {
      clockOffset += JSON.parse(body).advance;
      return send(res, 200, { offset: clockOffset });
    }
    if (url.pathname === '/__admin/introspect' && req.method === 'POST') {
      const value = JSON.parse(body).token ?? '';
      const t = tokens.get(value);
      if (!t) return send(res, 200, { known: false });
      return send(res, 200, { known: true, kind: t.kind, active: live(value) !== null, age: now() - t.issued });
    }
    if (url.pathname === '/__admin/revoke-all' && req.method === 'POST') {
      for (const t of tokens.values()) t.active = false;
      return send(res, 200, { revoked: tokens.size });
    }
    const route = dialect.routes[key];
    if (!route) return refuse(res, 404, { error: 'not_found', error_description: `${key} is not an endpoint of ${dialectName}` }, `404 ${key}`);
    await route(req, res, url, body);
  } catch (e) {
    console.error(e);
    send(res, 500, { error: 'server_error' });
  }
});

server.listen(0, '127.0.0.1', () => {
  origin = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`${JSON.stringify({ port: server.address().port, dialect: dialectName })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
