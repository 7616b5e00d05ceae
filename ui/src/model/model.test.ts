import { describe, expect, it } from 'vitest';
import { AppError, type Connection, type VaultStatus } from '../api';
import { accountCountText, colourSlot, connectionsReducer, displayNames, groupConnections, matchesFilter, scopeChips, scopeLabel, sortConnections } from './connections';
import { canRestore, describeError, errorLine, shortKeyId, vaultIndicator, vaultProblem } from './errors';
import { KEY_NOTICE, offersKeyImport } from './keys';
import { validateConfigure, validateCustom, validateImport, validateServer, type CustomForm } from './forms';
import { claimRows, tokenPresenceText } from './inspect';
import { connectFailed, connectSucceeded, disconnectOutcome, orderProviders, providerLabel } from './outcomes';
import { isPendingRevocation, nextRevocationChange, revocationText } from './revocations';
import { clipboardText } from './clipboard';
import { HIDDEN, REVEAL_MS, hideCountdownText, revealReducer, secondsLeft, tokenKindName, type RevealState } from './reveal';
import { EXPIRING_SOON_SECONDS, canRefresh, cardMessage, derivePill, needsReconnect, nextCardChange } from './status';
import { capitalise, expiryText, formatDuration, lastRefreshText, nextTextChange, relativeText } from './time';

const NOW = 1_700_000_000;

function conn(p: Partial<Connection> = {}): Connection {
  return { id: 'a'.repeat(32), provider: 'youtube', providerName: 'YouTube', account: 'me@x', status: 'connected', scopes: [], ...p };
}

describe('time', () => {
  it.each([
    [0, '0 s'],
    [42.9, '42 s'],
    [60, '1 min'],
    [12 * 60 + 59, '12 min'],
    [3600, '1 h'],
    [3600 + 5 * 60, '1 h 5 min'],
    [10 * 3600 + 5 * 60, '10 h'],
    [86400, '1 day'],
    [3 * 86400 + 100, '3 days'],
    [-5, '0 s'],
  ])('formatDuration(%s) = %s', (s, text) => expect(formatDuration(s)).toBe(text));

  it('says when a token expires or expired', () => {
    expect(expiryText(NOW + 12 * 60, NOW)).toBe('expires in 12 min');
    expect(expiryText(NOW + 30, NOW)).toBe('expires in 30 s');
    expect(expiryText(NOW - 2 * 60, NOW)).toBe('expired 2 min ago');
    expect(expiryText(NOW, NOW)).toBe('expires now');
    expect(expiryText(undefined, NOW)).toBe('no expiry date');
    expect(expiryText(null, NOW)).toBe('no expiry date');
  });

  it('counts down second by second', () => {
    const at = NOW + 61;
    expect(expiryText(at, NOW)).toBe('expires in 1 min');
    expect(expiryText(at, NOW + 2)).toBe('expires in 59 s');
    expect(expiryText(at, NOW + 63)).toBe('expired 2 s ago');
  });

  it('says when a token was last refreshed', () => {
    expect(lastRefreshText(NOW - 3 * 60, NOW)).toBe('refreshed 3 min ago');
    expect(lastRefreshText(NOW - 10, NOW)).toBe('refreshed just now');
    expect(lastRefreshText(undefined, NOW)).toBe('not refreshed yet');
    expect(lastRefreshText(NOW - 2 * 86400, NOW)).toBe('refreshed 2 days ago');
  });

  it('relative and capitalised text', () => {
    expect(relativeText(NOW + 120, NOW)).toBe('in 2 min');
    expect(relativeText(NOW - 120, NOW)).toBe('2 min ago');
    expect(relativeText(NOW + 5, NOW)).toBe('just now');
    expect(capitalise('expires in 1 min')).toBe('Expires in 1 min');
    expect(capitalise('')).toBe('');
  });
});

describe('status pill', () => {
  it('maps every backend status to words and a tone', () => {
    const cases: [Connection['status'], string, string][] = [
      ['connected', 'Connected', 'ok'],
      ['refreshing', 'Refreshing…', 'busy'],
      ['retrying', 'Retrying', 'warn'],
      ['needs_reconnect', 'Needs reconnect', 'bad'],
      ['interrupted', 'Interrupted', 'bad'],
      ['error', 'Error', 'bad'],
      ['check_needed', 'Check needed', 'warn'],
    ];
    for (const [status, text, tone] of cases) {
      const p = derivePill(conn({ status, expiresAt: NOW + 3600 }), NOW);
      expect(p).toMatchObject({ kind: status, text, tone });
      expect(p.meaning).not.toBe('');
    }
  });

  it('derives "expiring soon" only when the automatic refresh looks late', () => {
    expect(derivePill(conn({ expiresAt: NOW + EXPIRING_SOON_SECONDS }), NOW).kind).toBe('expiring_soon');
    expect(derivePill(conn({ expiresAt: NOW + EXPIRING_SOON_SECONDS + 1 }), NOW).kind).toBe('connected');
    expect(derivePill(conn({ expiresAt: NOW + 1 }), NOW).kind).toBe('expiring_soon');
    expect(derivePill(conn({ expiresAt: NOW + 1 }), NOW).text).toBe('Expiring soon');
    // A healthy hour-long token eight minutes before expiry is simply connected: the refresh is not due yet.
    expect(derivePill(conn({ expiresAt: NOW + 480, lastRefreshAt: NOW - 3120 }), NOW).kind).toBe('connected');
    // A 10-second token is "expiring soon" only in its last 2.5 seconds, not for its whole life.
    expect(derivePill(conn({ expiresAt: NOW + 5, lastRefreshAt: NOW - 5 }), NOW).kind).toBe('connected');
    expect(derivePill(conn({ expiresAt: NOW + 2, lastRefreshAt: NOW - 8 }), NOW).kind).toBe('expiring_soon');
  });

  it('only for connected: other states keep their own pill near expiry', () => {
    expect(derivePill(conn({ status: 'refreshing', expiresAt: NOW + 30 }), NOW).kind).toBe('refreshing');
    expect(derivePill(conn({ status: 'retrying', expiresAt: NOW + 30 }), NOW).kind).toBe('retrying');
  });

  it('says expired when a connected token is past its expiry', () => {
    expect(derivePill(conn({ expiresAt: NOW }), NOW).kind).toBe('expired');
    expect(derivePill(conn({ expiresAt: NOW - 60 }), NOW).tone).toBe('warn');
  });

  it('no expiry date: plain connected', () => {
    expect(derivePill(conn({ expiresAt: null }), NOW).kind).toBe('connected');
  });

  it('damaged records and unknown statuses', () => {
    expect(derivePill(conn({ damaged: 'bad mac' }), NOW).kind).toBe('damaged');
    expect(derivePill(conn({ status: 'weird' as never }), NOW).kind).toBe('error');
  });

  it('offers Reconnect only when the user must sign in again', () => {
    expect(needsReconnect(conn({ status: 'needs_reconnect' }))).toBe(true);
    expect(needsReconnect(conn({ status: 'interrupted' }))).toBe(true);
    expect(needsReconnect(conn({ status: 'error' }))).toBe(true);
    for (const s of ['connected', 'refreshing', 'retrying'] as const) expect(needsReconnect(conn({ status: s }))).toBe(false);
    expect(needsReconnect(conn({ status: 'error', damaged: 'x' }))).toBe(false);
    expect(canRefresh(conn({ status: 'refreshing' }))).toBe(false);
    // A dead connection offers Reconnect, not a refresh that cannot work.
    expect(canRefresh(conn({ status: 'needs_reconnect' }))).toBe(false);
    expect(canRefresh(conn({ status: 'retrying' }))).toBe(true);
    expect(canRefresh(conn({ damaged: 'x' }))).toBe(false);
  });
});

describe('one message per card', () => {
  it('says a needs-reconnect state once, in words, without the OAuth code or the provider id', () => {
    const c = conn({ status: 'needs_reconnect', provider: 'demo', lastError: 'the provider rejected the refresh token (invalid_grant): sign in again to reconnect' });
    const m = cardMessage(c, NOW)!;
    expect(m).toBe('The platform no longer accepts this connection. Reconnect to sign in again.');
    expect(m).not.toMatch(/invalid_grant|demo/);
  });

  it('counts a retry down to its planned time, one time only', () => {
    const c = conn({ status: 'retrying', retryAt: NOW + 8, lastError: 'refresh failed (network error)' });
    expect(cardMessage(c, NOW)).toBe('The last refresh failed (network error). Tokenkeep tries again in 8 s.');
    expect(cardMessage(c, NOW + 5)).toBe('The last refresh failed (network error). Tokenkeep tries again in 3 s.');
    expect(cardMessage(c, NOW + 9)).toBe('The last refresh failed (network error). Tokenkeep is trying again now.');
    expect(cardMessage(c, NOW)!.match(/\bin \d/g)).toHaveLength(1);
  });

  it('says nothing for a working connection, and the reason for an error', () => {
    expect(cardMessage(conn({ expiresAt: NOW + 3600 }), NOW)).toBeNull();
    expect(cardMessage(conn({ status: 'error', lastError: 'the provider "x" is no longer configured' }), NOW)).toMatch(
      /cannot fix it alone\. The provider "x" is no longer configured\.$/,
    );
  });

  it('puts the accounts that need the person first', () => {
    const ok = conn({ id: '1'.repeat(32), providerName: 'A', account: 'a' });
    const dead = conn({ id: '2'.repeat(32), providerName: 'Z', account: 'z', status: 'needs_reconnect' });
    expect(sortConnections([ok, dead]).map((c) => c.id)).toEqual([dead.id, ok.id]);
  });
});

describe('the window sleeps until something on screen changes', () => {
  it('wakes each second within a minute, else at the next whole minute', () => {
    expect(nextTextChange(NOW + 42, NOW)).toBe(1);
    expect(nextTextChange(NOW + 720.5, NOW)).toBeCloseTo(0.5);
    expect(nextTextChange(NOW + 750, NOW)).toBe(30);
    expect(nextTextChange(NOW - 90, NOW)).toBe(30);
  });

  it('wakes at the granularity shown: hours from ten hours, days from one day', () => {
    // Each wait ends exactly where formatDuration's words change, and not before.
    const cases: Array<[number, number]> = [
      [10 * 3600 + 100, 100], // "10 h" until "9 h 59 min"
      [15 * 3600 + 1200, 1200], // "15 h" until "14 h"
      [2 * 86_400 + 5 * 3600, 5 * 3600], // "2 days" until "1 day"
      [86_400 + 30, 30], // "1 day" until "23 h"
    ];
    for (const [left, wait] of cases) {
      expect(nextTextChange(NOW + left, NOW)).toBe(wait);
      expect(formatDuration(left - wait + 0.5)).toBe(formatDuration(left));
      expect(formatDuration(left - wait - 0.5)).not.toBe(formatDuration(left));
    }
    // Counting up: "3 days ago" until "4 days ago"; "12 h ago" until "13 h ago".
    expect(nextTextChange(NOW - (3 * 86_400 + 600), NOW)).toBe(86_400 - 600);
    expect(nextTextChange(NOW - (12 * 3600 + 60), NOW)).toBe(3540);
    expect(formatDuration(12 * 3600 + 60 + 3539)).toBe(formatDuration(12 * 3600 + 60));
    expect(formatDuration(12 * 3600 + 60 + 3540)).not.toBe(formatDuration(12 * 3600 + 60));
  });

  it('takes the nearest of expiry, last refresh, retry and the pill thresholds; nothing for a dead one', () => {
    const c = conn({ expiresAt: NOW + 3600, lastRefreshAt: NOW - 30 });
    expect(nextCardChange(c, NOW)).toBe(30); // "refreshed just now" ends
    expect(nextCardChange(conn({ expiresAt: NOW + 65, lastRefreshAt: NOW - 3000 }), NOW)).toBe(5); // turns "expiring soon"
    expect(nextCardChange(conn({ status: 'needs_reconnect', expiresAt: NOW + 5 }), NOW)).toBe(Infinity);
    expect(nextCardChange(conn({ expiresAt: null, lastRefreshAt: null }), NOW)).toBe(Infinity);
  });
});

describe('error words', () => {
  it('turns codes into plain words and keeps the server message as detail', () => {
    const w = describeError(new AppError('provider_unreachable', 'DNS lookup failed for oauth2.googleapis.com.'));
    expect(w.summary).toMatch(/couldn’t reach the platform/i);
    expect(w.detail).toBe('DNS lookup failed for oauth2.googleapis.com.');
    expect(w.code).toBe('provider_unreachable');
  });

  it('drops a detail that repeats the summary', () => {
    expect(describeError(new AppError('declined', 'You declined — nothing was connected.')).detail).toBeNull();
  });

  it('has words for every contract code and unknown ones', () => {
    for (const code of ['keyring_locked', 'keyring_unavailable', 'key_missing', 'wrong_key', 'store_locked', 'store', 'provider_unreachable', 'provider_rejected', 'declined', 'timeout', 'cancelled', 'busy', 'needs_reconnect', 'not_found', 'invalid', 'internal']) {
      expect(describeError(new AppError(code, '')).summary).not.toMatch(/unexpected/i);
    }
    expect(describeError(new AppError('brand_new', 'x')).summary).toMatch(/unexpected/i);
    expect(describeError('not an AppError').code).toBe('unknown');
    expect(errorLine(new AppError('busy', 'One at a time.'))).toBe(
      'Another sign-in is already in progress. Finish or cancel it first. One at a time.',
    );
  });

  it('explains vault problems per code', () => {
    const v = (code: string, more: Partial<VaultStatus> = {}) =>
      vaultProblem({ headless: false, storeExists: true, retryable: true, error: { code: code as never, message: 'm' }, ...more });
    expect(v('keyring_locked').text).toMatch(/^Your connections are safe on disk, but .* locked\. Unlock it/);
    expect(v('keyring_unavailable').text).toMatch(/no keyring service is running in this session/);
    expect(v('store_locked').text).toMatch(/^Another Tokenkeep is using this profile/);
    expect(v('wrong_key').text).toMatch(/does not open this vault/);
    const p = vaultProblem({ headless: false, error: { code: 'store', message: 'Permission denied.' } });
    expect(p.detail).toBe('Permission denied.');
    expect(p.code).toBe('store');
    expect(vaultProblem({ headless: false }).title).toMatch(/not open/);
    expect(vaultProblem({ headless: false, error: { code: 'internal', message: ' ' } }).detail).toBeNull();
  });

  it('speaks of this store: a first run has nothing at stake', () => {
    const fresh = vaultProblem({ headless: false, storeExists: false, error: { code: 'keyring_unavailable', message: 'm' } });
    expect(fresh.text).toMatch(/You have no connections yet, so nothing is at stake/);
    expect(fresh.text).not.toMatch(/safe|lost/);
    const stored = vaultProblem({ headless: false, storeExists: true, error: { code: 'keyring_unavailable', message: 'm' } });
    expect(stored.text).toMatch(/^Your connections are safe on disk/);
    for (const p of [fresh, stored]) expect(`${p.title} ${p.text}`).not.toMatch(/random|TOKENKEEP_MASTER_KEY/);
  });

  it('blames TOKENKEEP_MASTER_KEY, not the keyring, when headless, and offers no Retry', () => {
    const p = vaultProblem({ headless: true, retryable: false, storeExists: true, error: { code: 'wrong_key', message: 'm' } });
    expect(p.title).toBe('TOKENKEEP_MASTER_KEY doesn’t open this vault');
    expect(p.text).toMatch(/Quit Tokenkeep, set the variable to this vault’s key/);
    expect(p.text).not.toMatch(/keyring does not/);
    expect(p.retry).toBe(false);
    expect(vaultProblem({ headless: true, retryable: false, error: { code: 'invalid', message: 'm' } }).title).toMatch(
      /TOKENKEEP_MASTER_KEY is not a key/,
    );
    // With the keyring, the same code is the keyring's key, and Retry helps once it is put back.
    const k = vaultProblem({ headless: false, retryable: true, error: { code: 'wrong_key', message: 'm' } });
    expect(k.text).toMatch(/The key in your keyring/);
    expect(k.retry).toBe(true);
  });

  it('says when the app continues by itself', () => {
    const locked = vaultProblem({ headless: false, watching: true, error: { code: 'keyring_locked', message: 'm' } });
    expect(locked.watching).toBe('Tokenkeep opens your vault by itself once the keyring is unlocked.');
    const gone = vaultProblem({ headless: false, watching: true, error: { code: 'keyring_unavailable', message: 'm' } });
    expect(gone.watching).toMatch(/as soon as a keyring is running/);
    expect(vaultProblem({ headless: false, watching: false, error: { code: 'keyring_locked', message: 'm' } }).watching).toBeNull();
  });

  it('offers a restore only for a damaged or missing store', () => {
    const d = (code: string) => vaultProblem({ headless: false, error: { code: code as never, message: 'm' } });
    expect(d('store_damaged').title).toMatch(/backup can restore it/);
    expect(d('store_missing').text).toMatch(/will not start a new, empty vault/);
    expect(canRestore({ code: 'store_damaged', message: 'm' })).toBe(true);
    expect(canRestore({ code: 'store_missing', message: 'm' })).toBe(true);
    for (const code of ['store', 'store_locked', 'wrong_key', 'key_missing', 'keyring_locked'] as const) {
      expect(canRestore({ code, message: 'm' })).toBe(false);
    }
    expect(canRestore(undefined)).toBe(false);
  });

  it('vault indicator: short key id, headless, closed', () => {
    expect(shortKeyId('3f9a1c2b7d4e5f60718293a4b5c6d7e8')).toBe('3f9a1c2b');
    expect(shortKeyId(null)).toBeNull();
    expect(vaultIndicator({ ready: true, keyId: '3f9a1c2b7d4e5f60718293a4b5c6d7e8', headless: false })).toMatchObject({ text: 'Vault · key 3f9a1c2b', tone: 'ok' });
    expect(vaultIndicator({ ready: true, keyId: 'abcdef0123456789', headless: true }).text).toBe('Vault · key abcdef01 · headless');
    expect(vaultIndicator({ ready: false, headless: true })).toMatchObject({ text: 'Vault closed · headless', tone: 'bad' });
    expect(vaultIndicator(null).tone).toBe('pending');
  });
});

describe('reveal state machine', () => {
  const start = (): RevealState => revealReducer(HIDDEN, { type: 'request', kind: 'access_token', requestId: 1 });

  it('request → loaded → shown for 30 s → hidden', () => {
    let s = start();
    expect(s.phase).toBe('loading');
    s = revealReducer(s, { type: 'loaded', requestId: 1, value: 'SECRET', now: 1000 });
    expect(s).toMatchObject({ phase: 'shown', kind: 'access_token', value: 'SECRET', hideAt: 1000 + REVEAL_MS });
    expect(secondsLeft(s, 1000)).toBe(30);
    expect(hideCountdownText(s, 1000 + 2500)).toBe('Hides in 28 s');
    s = revealReducer(s, { type: 'tick', now: 1000 + REVEAL_MS - 1 });
    expect(s.phase).toBe('shown');
    s = revealReducer(s, { type: 'tick', now: 1000 + REVEAL_MS });
    expect(s).toEqual({ phase: 'hidden' });
    expect(JSON.stringify(s)).not.toContain('SECRET');
    expect(secondsLeft(s, 0)).toBe(0);
  });

  it('hide drops the value at once', () => {
    let s = revealReducer(start(), { type: 'loaded', requestId: 1, value: 'SECRET', now: 0 });
    s = revealReducer(s, { type: 'hide' });
    expect(s).toBe(HIDDEN);
  });

  it('ignores an answer that arrives after the dialog closed', () => {
    let s = revealReducer(start(), { type: 'hide' });
    s = revealReducer(s, { type: 'loaded', requestId: 1, value: 'LATE', now: 0 });
    expect(s).toBe(HIDDEN);
  });

  it('ignores a stale answer when another token was requested', () => {
    let s = start();
    s = revealReducer(s, { type: 'request', kind: 'refresh_token', requestId: 2 });
    s = revealReducer(s, { type: 'loaded', requestId: 1, value: 'OLD', now: 0 });
    expect(s).toMatchObject({ phase: 'loading', kind: 'refresh_token' });
    s = revealReducer(s, { type: 'loaded', requestId: 2, value: 'NEW', now: 0 });
    expect(s).toMatchObject({ phase: 'shown', kind: 'refresh_token', value: 'NEW' });
  });

  it('requesting another token replaces the shown one', () => {
    let s = revealReducer(start(), { type: 'loaded', requestId: 1, value: 'A', now: 0 });
    s = revealReducer(s, { type: 'request', kind: 'id_token', requestId: 2 });
    expect(JSON.stringify(s)).not.toContain('"A"');
  });

  it('failures are shown for their own request only', () => {
    let s = revealReducer(start(), { type: 'failed', requestId: 9, message: 'x' });
    expect(s.phase).toBe('loading');
    s = revealReducer(s, { type: 'failed', requestId: 1, message: 'The vault is locked.' });
    expect(s).toMatchObject({ phase: 'failed', message: 'The vault is locked.' });
    expect(tokenKindName('id_token')).toBe('ID token');
  });
});

describe('grouping by platform', () => {
  const yt1 = conn({ id: '1'.repeat(32), platform: 'youtube', account: 'b@x' });
  const yt2 = conn({ id: '2'.repeat(32), platform: 'youtube', account: 'a@x', status: 'needs_reconnect' });
  const ig = conn({ id: '3'.repeat(32), provider: 'instagram', providerName: 'Instagram', platform: 'instagram', account: 'maya' });
  const igFb = conn({ id: '4'.repeat(32), provider: 'instagram-facebook', providerName: 'Instagram (Facebook Login)', platform: 'instagram', account: 'maya.biz' });
  const m1 = conn({ id: '5'.repeat(32), provider: 'mastodon-social', providerName: 'Mastodon (mastodon.social)', platform: 'mastodon', account: '@m' });
  const m2 = conn({ id: '6'.repeat(32), provider: 'mastodon-art', providerName: 'Mastodon (mastodon.art)', platform: 'mastodon', account: '@m' });
  const custom = conn({ id: '7'.repeat(32), provider: 'acme', providerName: 'Acme SSO', account: 'me' });
  const damaged = { id: '8'.repeat(32), damaged: 'the record failed its integrity check' } as unknown as Connection;
  const all = sortConnections([yt1, yt2, ig, igFb, m1, m2, custom, damaged]);

  it('one list keeps the problems-first order and counts the problems', () => {
    const [one, ...rest] = groupConnections(all, 'none');
    expect(rest).toEqual([]);
    expect(one!.items).toEqual(all);
    expect(one!.title).toBe('');
    expect(one!.problems).toBe(2);
  });

  it('one group per platform, named as people know it, in name order; unreadable records last', () => {
    const groups = groupConnections(all, 'platform');
    expect(groups.map((g) => [g.title, g.items.map((c) => c.id[0])])).toEqual([
      ['Acme SSO', ['7']],
      ['Instagram', ['3', '4']],
      ['Mastodon', ['6', '5']],
      ['YouTube', ['2', '1']],
      ['Unreadable records', ['8']],
    ]);
    expect(groups.find((g) => g.title === 'YouTube')!.problems).toBe(1);
    expect(new Set(groups.map((g) => g.key)).size).toBe(groups.length);
  });

  it('a custom provider named like a platform is its own group', () => {
    const fake = conn({ id: '9'.repeat(32), provider: 'my-youtube', providerName: 'YouTube' });
    const keys = groupConnections(sortConnections([yt1, fake]), 'platform').map((g) => g.key);
    expect(keys).toHaveLength(2);
  });
});

describe('connections reducer', () => {
  const a = conn({ id: '1'.repeat(32), providerName: 'YouTube', account: 'b@x' });
  const b = conn({ id: '2'.repeat(32), provider: 'twitch', providerName: 'Twitch', account: 'zed' });
  const c = conn({ id: '3'.repeat(32), providerName: 'YouTube', account: 'a@x' });

  it('loads sorted by provider then account, without duplicates', () => {
    const s = connectionsReducer([], { type: 'loaded', connections: [a, b, c, a] });
    expect(s.map((x) => x.account)).toEqual(['zed', 'a@x', 'b@x']);
  });

  it('connection-status replaces by id or inserts', () => {
    let s = connectionsReducer([], { type: 'loaded', connections: [a] });
    s = connectionsReducer(s, { type: 'status', connection: { ...a, status: 'refreshing' } });
    expect(s).toHaveLength(1);
    expect(s[0]!.status).toBe('refreshing');
    s = connectionsReducer(s, { type: 'status', connection: b });
    expect(s.map((x) => x.id)).toEqual([b.id, a.id]);
  });

  it('returns the same array when nothing changed', () => {
    const s = connectionsReducer([], { type: 'loaded', connections: [a, b] });
    expect(connectionsReducer(s, { type: 'status', connection: { ...a } })).toBe(s);
    expect(connectionsReducer(s, { type: 'removed', id: 'nope' })).toBe(s);
  });

  it('connection-removed deletes by id', () => {
    const s = connectionsReducer([], { type: 'loaded', connections: [a, b] });
    expect(connectionsReducer(s, { type: 'removed', id: a.id }).map((x) => x.id)).toEqual([b.id]);
  });

  it('a damaged record (only id + damaged, as the backend sends it) still sorts and has names', () => {
    const d = { id: 'f'.repeat(32), damaged: 'bad tag' } as unknown as Connection;
    const s = connectionsReducer([], { type: 'loaded', connections: [a, d] });
    expect(s.map((x) => x.id)).toEqual([d.id, a.id]);
    expect(displayNames(d)).toEqual({ provider: 'Unreadable record', account: 'record ffffffff' });
    expect(displayNames(a)).toEqual({ provider: 'YouTube', account: 'b@x' });
    expect(derivePill(d, NOW).kind).toBe('damaged');
    expect(needsReconnect(d)).toBe(false);
  });

  it('helpers: count, chips, scope labels, colour slot', () => {
    expect(accountCountText(1)).toBe('1 account');
    expect(accountCountText(3)).toBe('3 accounts');
    expect(scopeChips(['a', 'b', 'c', 'd', 'e'])).toEqual({ shown: ['a', 'b', 'c', 'd', 'e'], hidden: [] });
    expect(scopeChips(['a', 'b', 'c', 'd', 'e', 'f'])).toEqual({ shown: ['a', 'b', 'c', 'd'], hidden: ['e', 'f'] });
    expect(scopeLabel('https://www.googleapis.com/auth/youtube.readonly')).toBe('youtube.readonly');
    expect(scopeLabel('openid')).toBe('openid');
    expect(colourSlot('youtube')).toBe(colourSlot('youtube'));
    expect(colourSlot('x')).toBeLessThan(6);
    expect(sortConnections([])).toEqual([]);
  });
});

describe('provider forms', () => {
  const p = { id: 'x', needsSecret: false, hasSecret: false, redirect: 'loopback' as const };

  it('configure: needs a client id without spaces', () => {
    const v = validateConfigure(p, { clientId: '  ', clientSecret: '', auth: 'none', redirectUri: '' });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(Object.keys(v.errors)).toEqual(['clientId']);
    const w = validateConfigure(p, { clientId: 'abc def', clientSecret: '', auth: 'none', redirectUri: '' });
    expect(w.ok).toBe(false);
  });

  it('configure: builds the arguments, trimming the id and omitting an empty secret', () => {
    expect(validateConfigure(p, { clientId: ' abc ', clientSecret: '', auth: 'none', redirectUri: '' })).toEqual({
      ok: true,
      args: { id: 'x', clientId: 'abc', auth: 'none' },
    });
    expect(validateConfigure(p, { clientId: 'abc', clientSecret: 's3cret', auth: 'post', redirectUri: '' })).toEqual({
      ok: true,
      args: { id: 'x', clientId: 'abc', clientSecret: 's3cret', auth: 'post' },
    });
  });

  it('configure: a provider that needs a secret gets one, unless one is saved', () => {
    const needs = { id: 'li', needsSecret: true, hasSecret: false, redirect: 'loopback' as const };
    const v = validateConfigure(needs, { clientId: 'abc', clientSecret: '', auth: 'post', redirectUri: '' });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.errors.clientSecret).toMatch(/secret/);
    expect(validateConfigure({ ...needs, hasSecret: true }, { clientId: 'abc', clientSecret: '', auth: 'post', redirectUri: '' }).ok).toBe(true);
  });

  it('configure: secret and auth method must agree', () => {
    const basicNoSecret = validateConfigure(p, { clientId: 'abc', clientSecret: '', auth: 'basic', redirectUri: '' });
    expect(basicNoSecret.ok).toBe(false);
    if (!basicNoSecret.ok) expect(basicNoSecret.errors.auth).toBeDefined();
    const noneWithSecret = validateConfigure(p, { clientId: 'abc', clientSecret: 'x', auth: 'none', redirectUri: '' });
    expect(noneWithSecret.ok).toBe(false);
    if (!noneWithSecret.ok) expect(noneWithSecret.errors.clientSecret).toBeDefined();
    const padded = validateConfigure(p, { clientId: 'abc', clientSecret: ' x', auth: 'post', redirectUri: '' });
    expect(padded.ok).toBe(false);
  });

  it('configure: a platform that redirects to https needs its registered page', () => {
    const ig = { id: 'instagram', needsSecret: true, hasSecret: true, redirect: 'paste' as const };
    const none = validateConfigure(ig, { clientId: 'abc', clientSecret: '', auth: 'post', redirectUri: '' });
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.errors.redirectUri).toMatch(/https page/);
    const http = validateConfigure(ig, { clientId: 'abc', clientSecret: '', auth: 'post', redirectUri: 'http://a.example/x' });
    expect(http.ok).toBe(false);
    if (!http.ok) expect(http.errors.redirectUri).toMatch(/https/);
    expect(
      validateConfigure(ig, { clientId: 'abc', clientSecret: '', auth: 'post', redirectUri: ' https://me.example/tk/ ' }),
    ).toEqual({ ok: true, args: { id: 'instagram', clientId: 'abc', auth: 'post', redirectUri: 'https://me.example/tk/' } });
    // A loopback platform sends no page, whatever the field holds.
    expect(validateConfigure(p, { clientId: 'abc', clientSecret: '', auth: 'none', redirectUri: 'junk' })).toEqual({
      ok: true,
      args: { id: 'x', clientId: 'abc', auth: 'none' },
    });
  });

  it('server: a host or an https address; plain http only on this computer', () => {
    expect(validateServer('mastodon', { server: ' mastodon.social ' })).toEqual({
      ok: true,
      args: { template: 'mastodon', server: 'mastodon.social' },
    });
    expect(validateServer('mastodon', { server: 'http://127.0.0.1:4000' }).ok).toBe(true);
    for (const bad of ['', 'http://mastodon.social', 'mastodon', 'https://a:b@mastodon.social', 'ht tp://x']) {
      expect(validateServer('mastodon', { server: bad }).ok, bad).toBe(false);
    }
  });

  it('import: needs text; names a pasted one', () => {
    expect(validateImport({ name: '', text: '  ' }).ok).toBe(false);
    expect(validateImport({ name: '', text: 'id = "a"' })).toEqual({ ok: true, args: { name: 'pasted-definition.toml', text: 'id = "a"' } });
    expect(validateImport({ name: 'studio.toml', text: 'x' })).toEqual({ ok: true, args: { name: 'studio.toml', text: 'x' } });
    expect(validateImport({ name: 'big.toml', text: 'x'.repeat(70_000) }).ok).toBe(false);
  });

  const form = (f: Partial<CustomForm>): CustomForm => ({
    id: 'my-forum', issuer: 'https://auth.example.com', displayName: '', clientId: 'cid', clientSecret: '', auth: '', ...f,
  });

  it('custom: valid form gives exactly the contract arguments', () => {
    expect(validateCustom(form({ displayName: ' My Forum ' }), ['youtube'])).toEqual({
      ok: true,
      args: { id: 'my-forum', issuer: 'https://auth.example.com', displayName: 'My Forum', clientId: 'cid' },
    });
    expect(validateCustom(form({ clientSecret: 's', auth: 'basic' }), [])).toMatchObject({
      ok: true,
      args: { clientSecret: 's', auth: 'basic' },
    });
  });

  it.each([
    ['', /short id/i],
    ['My Forum', /lowercase/],
    ['-x', /lowercase/],
    ['a'.repeat(33), /lowercase/],
    ['youtube', /already exists/],
  ])('custom: id %j is refused', (id, msg) => {
    const v = validateCustom(form({ id }), ['youtube']);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.errors.id).toMatch(msg);
  });

  it.each([
    ['', false],
    ['auth.example.com', false],
    ['http://auth.example.com', false],
    ['https://auth.example.com/?x=1', false],
    ['https://user:pw@auth.example.com', false],
    ['ftp://auth.example.com', false],
    ['https://auth.example.com/realms/creators', true],
    ['http://127.0.0.1:47800', true],
    ['http://localhost:8080', true],
  ])('custom: issuer %j valid=%s', (issuer, ok) => {
    const v = validateCustom(form({ issuer }), []);
    expect(v.ok ? true : v.errors.issuer === undefined).toBe(ok);
  });
});

describe('outcomes', () => {
  it('connect outcomes in words', () => {
    expect(connectSucceeded({ id: 'i', account: 'maya', replaced: false }).text).toBe('Connected as maya');
    expect(connectSucceeded({ id: 'i', account: 'maya', replaced: true }).text).toBe('Reconnected as maya');
    expect(connectFailed(new AppError('declined', 'x')).text).toBe('You declined — nothing was connected.');
    expect(connectFailed(new AppError('timeout', 'x')).text).toBe('Timed out — nothing was connected.');
    expect(connectFailed(new AppError('cancelled', 'x')).text).toBe('Cancelled — nothing was connected.');
    const e = connectFailed(new AppError('provider_rejected', 'invalid_client'));
    expect(e).toMatchObject({ tone: 'bad', detail: 'invalid_client' });
  });

  it('disconnect: revoked vs access may remain, with the manage URL', () => {
    const ok = disconnectOutcome({ account: 'maya', provider: 'youtube', revocation: 'revoked' }, 'YouTube');
    expect(ok.tone).toBe('ok');
    expect(ok.text).toMatch(/confirmed/);
    expect(ok.manageUrl).toBeNull();
    for (const revocation of ['not_supported', 'failed', 'skipped'] as const) {
      const o = disconnectOutcome({ account: 'maya', provider: 'x', revocation, manageUrl: 'https://x.com/settings/connected_apps', detail: 'HTTP 503' }, 'X');
      expect(o.tone).toBe('warn');
      expect(o.text).toMatch(/access may remain/);
      expect(o.manageUrl).toBe('https://x.com/settings/connected_apps');
      expect(o.detail).toBe('HTTP 503');
    }
    expect(disconnectOutcome({ account: 'm', provider: 'x', revocation: 'failed', manageUrl: null }, 'X').manageUrl).toBeNull();
    for (const revocation of ['not_supported', 'failed', 'skipped', 'not_tried'] as const) {
      expect(disconnectOutcome({ account: 'maya', provider: 'x', revocation }, 'X').text).toMatch(/access may remain/);
    }
  });

  it('disconnect: a revocation kept pending says Tokenkeep keeps trying, for how long, and what is kept', () => {
    const pending = { since: 1000, attempts: 1, nextAttemptAt: 1060, giveUpAt: 1000 + 7 * 86400 };
    const o = disconnectOutcome(
      { account: 'maya', provider: 'x', revocation: 'failed', detail: 'connection refused', manageUrl: 'https://x.com/apps', pending },
      'X',
    );
    expect(o.title).toBe('Disconnected — still revoking');
    expect(o.text).toMatch(/keeps trying in the background, for up to 7 days/);
    expect(o.text).toMatch(/only what revoking needs is kept, encrypted/);
    expect(o.text).not.toMatch(/were deleted/);
    expect(o.manageUrl).toBe('https://x.com/apps');
    expect(o.detail).toBe('connection refused');
  });

  it('pending revocations: a counting-down next try, the tries so far and the day it stops', () => {
    const c = {
      status: 'revocation_pending' as const,
      provider: 'x',
      providerName: 'X',
      damaged: null,
      revocation: { since: 0, attempts: 3, nextAttemptAt: 1000 + 245, giveUpAt: Date.UTC(2026, 11, 9) / 1000 },
    };
    expect(isPendingRevocation(c)).toBe(true);
    expect(isPendingRevocation({ ...c, status: 'connected' })).toBe(false);
    const text = revocationText(c, 1000, false, 'en-US');
    expect(text).toBe(
      'Tokenkeep couldn’t reach X to revoke its access. Next try in 4 min (3 tries so far); after Dec 9 it stops, deletes the tokens and tells you to revoke by hand.',
    );
    expect(revocationText({ ...c, revocation: { ...c.revocation, attempts: 1 } }, 1000, false, 'en-US')).toMatch(/\(1 try so far\)/);
    expect(revocationText(c, 1000 + 245, false, 'en-US')).toMatch(/Trying again now/);
    expect(revocationText(c, 1000, true, 'en-US')).toMatch(/Trying again now/);
    // The countdown reads "4 min" until 3 min 59 s are left: the next change is at the minute.
    expect(nextRevocationChange(c, 1000)).toBe(5);
    expect(nextRevocationChange(c, 1000 + 200)).toBe(1);
    expect(nextRevocationChange(c, 1000 + 300)).toBe(Infinity);
    expect(derivePill({ status: 'revocation_pending', expiresAt: null, damaged: null }, 0).text).toBe('Revoking access');
  });

  it('providers: demo labelled and listed first, then ready, then needing setup', () => {
    const list = [
      { id: 'x', name: 'X', origin: 'builtin' as const, ready: false },
      { id: 'yt', name: 'YouTube', origin: 'builtin' as const, ready: true },
      { id: 'demo', name: 'Demo (local)', origin: 'demo' as const, ready: true },
      { id: 'tw', name: 'Twitch', origin: 'builtin' as const, ready: true },
    ];
    expect(orderProviders(list).map((p) => p.id)).toEqual(['demo', 'tw', 'yt', 'x']);
    expect(providerLabel({ name: 'whatever', origin: 'demo' })).toEqual({
      name: 'Demo (local)',
      note: 'Test server on this computer — no real account is involved.',
    });
    expect(providerLabel({ name: 'YouTube', origin: 'builtin' }).note).toBeNull();
  });
});

describe('inspection helpers', () => {
  it('claims become readable rows; times get dates', () => {
    const rows = claimRows({ sub: '123', exp: NOW + 120, aud: ['a', 'b'], email_verified: true, nested: { x: 1 } }, NOW, (s) => `D${s}`);
    expect(rows).toEqual([
      { key: 'sub', value: '123' },
      { key: 'exp', value: `D${NOW + 120} (in 2 min)` },
      { key: 'aud', value: 'a, b' },
      { key: 'email_verified', value: 'true' },
      { key: 'nested', value: '{"x":1}' },
    ]);
    expect(claimRows(null, NOW, String)).toEqual([]);
  });

  it('token presence text', () => {
    expect(tokenPresenceText({ present: true, length: 1284 })).toBe('Stored · 1,284 characters');
    expect(tokenPresenceText({ present: true, length: 1 })).toBe('Stored · 1 character');
    expect(tokenPresenceText({ present: true })).toBe('Stored');
    expect(tokenPresenceText({ present: false })).toBe('Not stored');
  });
});

describe('the vault key', () => {
  it('says once what losing the keyring means, in words', () => {
    expect(KEY_NOTICE.text).toMatch(/the platforms keep nothing for you/);
    expect(KEY_NOTICE.text).toMatch(/Export the key and keep it offline/);
  });

  it('offers an import only where the keyring lacks the key', () => {
    expect(offersKeyImport({ headless: false, error: { code: 'key_missing' } })).toBe(true);
    expect(offersKeyImport({ headless: false, error: { code: 'wrong_key' } })).toBe(true);
    expect(offersKeyImport({ headless: true, error: { code: 'wrong_key' } })).toBe(false);
    expect(offersKeyImport({ headless: false, error: { code: 'keyring_locked' } })).toBe(false);
    expect(offersKeyImport({ headless: false, error: null })).toBe(false);
  });
});

describe('the list filter', () => {
  const c = conn({ provider: 'youtube', providerName: 'YouTube', account: 'Maya Makes' });
  it('matches every word in the platform or the account, in any case', () => {
    expect(matchesFilter(c, '')).toBe(true);
    expect(matchesFilter(c, '  ')).toBe(true);
    expect(matchesFilter(c, 'tube')).toBe(true);
    expect(matchesFilter(c, 'youtube maya')).toBe(true);
    expect(matchesFilter(c, 'MAKES')).toBe(true);
    expect(matchesFilter(c, 'twitch')).toBe(false);
    expect(matchesFilter(c, 'maya twitch')).toBe(false);
  });
});

describe('the setup form says each thing once', () => {
  it('an empty save for a platform that needs a secret: the client id and the secret, no “None” it lacks', () => {
    const p = { id: 'youtube', needsSecret: true, hasSecret: false, redirect: 'loopback' as const };
    const v = validateConfigure(p, { clientId: '', clientSecret: '', auth: 'post', redirectUri: '' });
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(Object.keys(v.errors).sort()).toEqual(['clientId', 'clientSecret']);
      expect(Object.values(v.errors).join(' ')).not.toMatch(/None/);
    }
  });
});

describe('clipboard notice', () => {
  it('counts down to the clearing, then says what happened', () => {
    const holding = { state: 'holding' as const, clearsAt: 1030, seconds: 30 };
    expect(clipboardText(holding, 1000)).toBe('Token copied. Tokenkeep clears it from the clipboard in 30 s.');
    expect(clipboardText(holding, 1029.5)).toBe('Token copied. Tokenkeep is clearing it from the clipboard.');
    expect(clipboardText({ state: 'cleared' }, 0)).toMatch(/was cleared/);
    expect(clipboardText({ state: 'replaced' }, 0)).toMatch(/left the clipboard alone/);
    expect(clipboardText(null, 0)).toBeNull();
  });
});
