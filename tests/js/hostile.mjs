// A hostile or broken OAuth provider, for Tokenkeep's end-to-end tests only. Loopback only.
//
//   node tests/js/hostile.mjs
//
// It binds 127.0.0.1 on an ephemeral port and prints ONE line on stdout: {"port": PORT}. It has a token endpoint
// (POST /token: the refresh-token grant), a revocation endpoint (POST /revoke) and a userinfo endpoint (GET /me),
// whose answers follow the MODE the test sets (POST /__admin/mode {"mode": NAME, ...options}). Every request is
// counted; GET /__admin/state tells {"mode", "requests": {"POST /token": n, ...}, "times": [unix ms of each /token]}.
//
// Modes (what POST /token answers):
//   healthy        a new access token (expires_in 3600), the refresh token rotated
//   status         HTTP `status` (default 503) with `body` (default a JSON error) and, if given, `retryAfter`
//   html           200 with an HTML login page
//   truncated      200 with a JSON token response cut in the middle
//   huge           200 with a 10 MB JSON body
//   slow           200, the body sent one byte every `interval` ms (default 1000)
//   silence        accepts the request and never answers
//   reset          closes the connection without an answer
//   redirect       302 to another host
//   invalid_grant  400 {"error": "invalid_grant"}
//   token          200 with `token` merged into a valid token response (odd `token_type`, `expires_in`, …)
//   error_text     400 {"error": `error`, "error_description": `description`} (control characters welcome)

import crypto from 'node:crypto';
import http from 'node:http';

let mode = { mode: 'healthy' };
const requests = {};
const times = [];
const sockets = new Set();
let issued = 0;

const token = (prefix) => `${prefix}-${crypto.randomBytes(12).toString('base64url')}`;

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

function healthy() {
  issued += 1;
  return { access_token: token('at'), token_type: 'Bearer', expires_in: 3600, refresh_token: token('rt'), scope: 'read' };
}

function tokenAnswer(req, res) {
  switch (mode.mode) {
    case 'healthy':
      return json(res, 200, healthy());
    case 'status': {
      const headers = mode.retryAfter === undefined ? {} : { 'retry-after': String(mode.retryAfter) };
      return json(res, mode.status ?? 503, mode.body ?? { error: 'temporarily_unavailable' }, headers);
    }
    case 'html':
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<!doctype html><html><body><form>Sign in</form></body></html>');
    case 'truncated':
      return json(res, 200, JSON.stringify(healthy()).slice(0, 30));
    case 'huge':
      return json(res, 200, `{"access_token":"${'x'.repeat(10 * 1024 * 1024)}","token_type":"Bearer"}`);
    case 'slow': {
      const body = JSON.stringify(healthy());
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      let i = 0;
      const timer = setInterval(() => {
        if (i >= body.length || res.destroyed) {
          clearInterval(timer);
          res.end();
          return;
        }
        res.write(body[i]);
        i += 1;
      }, mode.interval ?? 1000);
      return undefined;
    }
    case 'silence':
      return undefined; // never answered
    case 'reset':
      return req.socket.destroy();
    case 'redirect':
      res.writeHead(302, { location: 'https://elsewhere.invalid/token' });
      return res.end();
    case 'invalid_grant':
      return json(res, 400, { error: 'invalid_grant' });
    case 'token':
      return json(res, 200, { ...healthy(), ...(mode.token ?? {}) });
    case 'error_text':
      return json(res, 400, { error: mode.error ?? 'invalid_request', error_description: mode.description ?? '' });
    default:
      return json(res, 500, { error: `unknown mode ${mode.mode}` });
  }
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const body = await readBody(req);
  const key = `${req.method} ${url.pathname}`;
  if (!url.pathname.startsWith('/__admin/')) requests[key] = (requests[key] ?? 0) + 1;
  if (url.pathname === '/__admin/state') return json(res, 200, { mode: mode.mode, requests, times, issued });
  if (url.pathname === '/__admin/mode' && req.method === 'POST') {
    mode = JSON.parse(body);
    return json(res, 200, mode);
  }
  if (key === 'POST /token') {
    times.push(Date.now());
    return tokenAnswer(req, res);
  }
  if (key === 'POST /revoke') return json(res, 200, {});
  if (key === 'GET /me') return json(res, 200, { sub: 'hostile-user', name: 'Hostile User' });
  return json(res, 404, { error: 'not_found' });
});
server.on('connection', (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    for (const s of sockets) s.destroy();
    server.close(() => process.exit(0));
  });
}
