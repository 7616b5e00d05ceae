// The system-browser stand-in for Tokenkeep's end-to-end tests: headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) signs in on the test peer's dev login page and answers its consent page.
//
//   node tests/js/login.mjs AUTHORIZE_URL
//
// Environment:
//   PEER_LOGIN    the login name to sign in with (default "alice"); the peer makes it the account id / `sub`.
//   PEER_ACTION   "approve" (default) or "decline" (presses Cancel on the consent page → error=access_denied).
//   PEER_LOG      optional file to append this driver's log to (it also goes to stderr).
//   PEER_TIMEOUT  overall limit in seconds (default 60).
//   CHROMIUM      the browser binary (default /usr/bin/chromium).
//
// It opens the URL, signs in, approves or declines, then waits until the browser has navigated to the redirect
// URI — any loopback http URL outside the issuer's origin — and that page has loaded (the client's listener
// answered), closes the browser and exits 0. On failure or timeout it exits 1 with a message on stderr; 2 on a
// usage error. Every request that leaves the loopback interface is aborted (the dev pages import web fonts).
//
// It never prints an authorization code or a token: URLs are logged without their query, and error messages are
// scrubbed of queries too (Playwright's own messages quote URLs in full).

import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const started = Date.now();
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Drops query strings and fragments from anything URL-like, so codes and tokens never reach a log. */
function scrub(text) {
  return String(text).replace(/([a-z]+:\/\/[^\s"'?#]*)[?#][^\s"']*/gi, '$1?…');
}

function log(message) {
  const line = `login: +${Date.now() - started}ms ${scrub(message)}`;
  console.error(line);
  if (process.env.PEER_LOG) {
    try {
      appendFileSync(process.env.PEER_LOG, `${line}\n`);
    } catch {
      // The log file is a convenience; never fail the login because of it.
    }
  }
}

function usage(message) {
  log(`${message}\nusage: [PEER_LOGIN=alice] [PEER_ACTION=approve|decline] node login.mjs AUTHORIZE_URL`);
  process.exit(2);
}

const target = process.argv[2];
if (!target || process.argv.length > 3) usage('expected exactly one argument, the authorization URL');
let issuerOrigin;
try {
  issuerOrigin = new URL(target).origin;
} catch {
  usage('the argument is not a URL');
}
const login = process.env.PEER_LOGIN || 'alice';
const action = process.env.PEER_ACTION || 'approve';
if (!['approve', 'decline'].includes(action)) usage(`PEER_ACTION must be approve or decline, not ${action}`);
const limitMs = Number(process.env.PEER_TIMEOUT || 60) * 1000;
if (!(limitMs > 0)) usage('PEER_TIMEOUT must be a positive number of seconds');

function isLoopback(url) {
  return (url.protocol === 'http:' || url.protocol === 'https:') && LOOPBACK_HOSTS.has(url.hostname);
}

/** The redirect URI: loopback, but not the authorization server itself. */
function isCallback(url) {
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname) && url.origin !== issuerOrigin;
}

const remaining = () => Math.max(1, limitMs - (Date.now() - started));

const profile = mkdtempSync(join(tmpdir(), 'tokenkeep-login-'));
let context;

async function cleanUp() {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

const watchdog = setTimeout(async () => {
  log(`gave up after ${limitMs / 1000} s without reaching the redirect URI`);
  await Promise.race([cleanUp(), new Promise((resolve) => setTimeout(resolve, 3000))]);
  process.exit(1);
}, limitMs);

async function run() {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-proxy-server',
      // Never touch the desktop's keyring (the e2e session runs a real gnome-keyring).
      '--password-store=basic',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost , EXCLUDE ::1',
    ],
  });
  log('browser started');

  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    return isLoopback(url) ? route.continue() : route.abort('blockedbyclient');
  });

  const page = context.pages()[0] ?? (await context.newPage());

  // A navigation to the redirect URI that fails (nobody listening) would otherwise only show up as a timeout.
  const callbackFailed = new Promise((_, reject) => {
    page.on('requestfailed', (request) => {
      const url = new URL(request.url());
      if (request.isNavigationRequest() && isCallback(url)) {
        reject(new Error(`the redirect URI ${url.origin}${url.pathname} did not answer: ${request.failure()?.errorText}`));
      }
    });
  });
  callbackFailed.catch(() => {});

  await page.goto(target, { waitUntil: 'domcontentloaded', timeout: remaining() });

  for (let step = 0; step < 6; step += 1) {
    const here = new URL(page.url());
    if (isCallback(here)) break;
    if (here.origin !== issuerOrigin) throw new Error(`the browser ended up at ${here.origin}${here.pathname}`);

    let click;
    if ((await page.locator('input[name="login"]').count()) > 0) {
      log(`login page: signing in as ${login}`);
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', 'any-password');
      click = () => page.click('button[type="submit"]');
    } else if ((await page.locator('input[name="prompt"][value="consent"]').count()) > 0) {
      log(`consent page: ${action}`);
      click = action === 'approve' ? () => page.click('button[type="submit"]') : () => page.click('text=[ Cancel ]');
    } else {
      const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 500);
      throw new Error(`unexpected page at ${here.pathname}: ${text}`);
    }
    const before = page.url();
    await click();
    await Promise.race([
      page.waitForURL((url) => url.href !== before, { waitUntil: 'load', timeout: remaining() }),
      callbackFailed,
    ]);
  }

  const final = new URL(page.url());
  if (!isCallback(final)) throw new Error(`did not reach the redirect URI (last page ${final.pathname})`);
  // The listener's page has loaded: waitForURL waited for `load`.
  log(`reached the redirect URI ${final.origin}${final.pathname}`);
}

try {
  await run();
  clearTimeout(watchdog);
  await cleanUp();
  log('done');
  process.exit(0);
} catch (err) {
  clearTimeout(watchdog);
  log(`failed: ${err?.message ?? err}`);
  await cleanUp();
  process.exit(1);
}
