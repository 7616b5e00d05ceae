// DEV ONLY: a fake backend for looking at every screen in a plain browser. main.ts loads this only when
// Tauri is absent and the URL has `?mock`, so it can never answer inside the app.
//
//   ?mock                 a few connections in different states (use ?mock=prod for the prod badge)
//   &state=…              list (default) | all | empty | needs_reconnect | headless | list_error |
//                         keyring_locked | keyring_unavailable | key_missing | wrong_key | store_locked | store
//                         (vault problems: Retry succeeds the second time; add &retry=fail to keep failing)
//   &dialog=…             inspect | reveal | disconnect | disconnected | connect | setup | custom |
//                         custom_errors | waiting | outcome | refresh_error | retry (press Retry twice)
//   &revocation=…         with dialog=disconnected: revoked | not_supported | failed | skipped | pending
//   &outcome=…            with dialog=outcome (or any connect): ok | declined | timeout | cancelled | error | busy
//   &of=<provider>        which card the dialog opens for (default: the first)
//   &url=open             with dialog=waiting: expand "Browser didn’t open?"
//   &live                 simulated events: refreshes, an attention notice, an expiring token

import type {
  SettingsView,
  AppEvents,
  AppInfo,
  Backend,
  Connection,
  Disconnected,
  EventName,
  Inspection,
  Provider,
  Revocation,
  TokenKind,
  VaultStatus,
} from './api';
import { AppError } from './api';
import { TID, providerConnectId, providerSetupId, revealId } from './testids';

export function mockAppInfo(search: string): AppInfo {
  const profile = new URLSearchParams(search).get('mock') === 'prod' ? 'prod' : 'dev';
  return {
    name: 'Tokenkeep',
    version: '0.1.0',
    profile,
    dataDir: `/home/creator/.local/share/app.tokenkeep${profile === 'dev' ? '.dev' : ''}`,
    headless: false,
  };
}

const KEY_ID = '3f9a1c2b7d4e5f60718293a4b5c6d7e8';
const now = (): number => Math.floor(Date.now() / 1000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let idSeq = 0;
const newId = (): string => {
  idSeq += 1;
  return (idSeq.toString(16) + 'a1b2c3d4e5f60718293a4b5c6d7e8f90').slice(0, 32).padStart(32, '0');
};

function provider(p: Partial<Provider> & Pick<Provider, 'id' | 'name'>): Provider {
  const platform = p.origin === 'custom' ? null : p.id;
  return { origin: 'builtin', ready: true, auth: 'none', needsSecret: false, hasSecret: false, scopes: [], redirect: 'loopback', template: false, platform, ...p };
}

function mockProviders(): Provider[] {
  return [
    provider({ id: 'demo', name: 'Demo (local)', origin: 'demo', clientId: 'tokenkeep-public', scopes: ['openid', 'profile', 'email', 'offline_access', 'videos.read'] }),
    provider({ id: 'youtube', name: 'YouTube', clientId: '1234-abc.apps.googleusercontent.com', auth: 'post', needsSecret: true, hasSecret: true, scopes: ['openid', 'email', 'https://www.googleapis.com/auth/youtube.readonly'] }),
    provider({ id: 'twitch', name: 'Twitch', clientId: 'h3x9twitchclient', auth: 'post', needsSecret: true, hasSecret: true }),
    provider({ id: 'tiktok', name: 'TikTok', clientId: 'awtiktokkey' }),
    provider({
      id: 'x',
      name: 'X',
      ready: false,
      needs: 'Register an app in the X developer portal (type “Native App”) with the redirect URI below, then paste its client ID here.',
      setupUrl: 'https://developer.x.com/en/portal/projects-and-apps',
      redirectUri: 'http://127.0.0.1/callback',
    }),
    provider({
      id: 'linkedin',
      name: 'LinkedIn',
      ready: false,
      auth: 'post',
      needsSecret: true,
      needs: 'Create an app on LinkedIn Developers, add “Sign In with LinkedIn using OpenID Connect”, register the redirect URI below, then paste its client ID and secret.',
      setupUrl: 'https://www.linkedin.com/developers/apps',
      redirectUri: 'http://127.0.0.1:47813/callback',
    }),
    provider({ id: 'reddit', name: 'Reddit', ready: false, needs: 'Create an “installed app” at reddit.com/prefs/apps with the redirect URI below.', redirectUri: 'http://127.0.0.1:47814/callback', setupUrl: 'https://www.reddit.com/prefs/apps' }),
    provider({
      id: 'instagram',
      name: 'Instagram',
      ready: false,
      auth: 'post',
      needsSecret: true,
      redirect: 'paste',
      needs: 'Instagram needs a client id: register a Business app with Instagram Login at developers.facebook.com, with an https address you control as its redirect URI.',
      setupUrl: 'https://developers.facebook.com/apps',
    }),
    provider({
      id: 'mastodon',
      name: 'Mastodon',
      ready: false,
      auth: 'post',
      needsSecret: true,
      template: true,
      needs: 'Mastodon runs on many servers: add yours, and Tokenkeep registers itself there — no developer account needed.',
    }),
  ];
}

function conn(p: Partial<Connection> & Pick<Connection, 'provider' | 'providerName' | 'account'>): Connection {
  return { id: newId(), status: 'connected', scopes: [], platform: p.provider, ...p };
}

const MOCK_PICTURE_TAG = '0f1e2d3c4b5a6978';

/** A stand-in account picture: a PNG drawn here (the real one comes from the vault). */
function mockPicture(): string {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 96;
  const g = canvas.getContext('2d');
  if (!g) return '';
  const grad = g.createLinearGradient(0, 0, 96, 96);
  grad.addColorStop(0, '#f59e0b');
  grad.addColorStop(1, '#db2777');
  g.fillStyle = grad;
  g.fillRect(0, 0, 96, 96);
  g.fillStyle = 'rgba(255,255,255,0.9)';
  g.beginPath();
  g.arc(48, 38, 18, 0, Math.PI * 2);
  g.fill();
  g.beginPath();
  g.ellipse(48, 92, 34, 26, 0, 0, Math.PI * 2);
  g.fill();
  return canvas.toDataURL('image/png');
}

function mockConnections(state: string): Connection[] {
  const t = now();
  const youtube = conn({ provider: 'youtube', providerName: 'YouTube', account: 'maya.makes@gmail.com', picture: MOCK_PICTURE_TAG, expiresAt: t + 48 * 60, lastRefreshAt: t - 12 * 60, scopes: ['openid', 'email', 'https://www.googleapis.com/auth/youtube.readonly'] });
  const twitch = conn({ provider: 'twitch', providerName: 'Twitch', account: 'mayamakes_live', expiresAt: t + 6 * 60 + 20, lastRefreshAt: t - 3 * 3600, scopes: ['user:read:email', 'channel:read:subscriptions', 'moderator:read:followers', 'bits:read', 'channel:read:redemptions', 'clips:edit', 'analytics:read:extensions'] });
  const x = conn({ provider: 'x', providerName: 'X', account: '@maya_makes', status: 'needs_reconnect', expiresAt: t - 2 * 3600, lastRefreshAt: t - 4 * 3600, lastError: 'X rejected the refresh token (invalid_grant): sign in again to reconnect', scopes: ['tweet.read', 'users.read', 'offline.access'] });
  const tiktok = conn({ provider: 'tiktok', providerName: 'TikTok', account: 'mayamakes', status: 'retrying', expiresAt: t + 3 * 60, lastRefreshAt: t - 23 * 3600, lastError: 'Couldn’t reach open.tiktokapis.com (timed out); trying again in 2 min', scopes: ['user.info.basic', 'video.list'] });
  switch (state) {
    case 'empty':
      return [];
    case 'needs_reconnect':
      return [youtube, x];
    case 'all':
      return [
        youtube,
        twitch,
        x,
        tiktok,
        conn({ provider: 'demo', providerName: 'Demo (local)', account: 'creator@demo.test', status: 'refreshing', expiresAt: t + 30, lastRefreshAt: t - 3600, scopes: ['openid', 'profile', 'email', 'offline_access', 'videos.read'] }),
        conn({ provider: 'reddit', providerName: 'Reddit', account: 'u/mayamakes', status: 'interrupted', expiresAt: t - 600, lastRefreshAt: t - 86400, lastError: 'interrupted — reconnect needed: a refresh was cut short (Tokenkeep stopped during it) and Reddit rejected the refresh token', scopes: ['identity', 'read'] }),
        conn({ provider: 'linkedin', providerName: 'LinkedIn', account: 'Maya Okafor', status: 'error', expiresAt: t + 20 * 86400, lastRefreshAt: t - 5 * 86400, lastError: 'LinkedIn answered with something Tokenkeep could not understand (HTTP 502)', scopes: ['openid', 'profile', 'email'] }),
        conn({ provider: 'youtube', providerName: 'YouTube', account: 'second.channel@gmail.com', expiresAt: t - 90, lastRefreshAt: t - 3700, scopes: ['openid', 'email'] }),
        // What the Rust side sends for an unreadable record: only the id and what is wrong.
        { id: newId(), damaged: 'the record failed its integrity check' } as unknown as Connection,
      ];
    default:
      return [youtube, twitch, x, tiktok];
  }
}

const VAULT_CODES: Record<string, string> = {
  keyring_locked: 'The keyring “login” is locked.',
  keyring_unavailable: 'org.freedesktop.secrets was not provided by any .service files',
  key_missing: 'No key tokenkeep/dev/3f9a1c2b in the keyring.',
  wrong_key: 'The stored key 3f9a1c2b does not match the vault (key 8e7d6c5b).',
  store_locked: 'The store is held by tokenkeep daemon (pid 48121).',
  store: 'Permission denied (os error 13) while opening /home/creator/.local/share/app.tokenkeep.dev/store.',
};

function b64url(o: object): string {
  return btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

export function createMock(search: string): { backend: Backend; scenario: () => Promise<void> } {
  const params = new URLSearchParams(search);
  const stateName = params.get('state') ?? 'list';
  const dialog = params.get('dialog');
  const outcome = params.get('outcome') ?? 'ok';
  const retryFails = params.get('retry') === 'fail';
  const info = mockAppInfo(search);
  const headless = stateName === 'headless';
  info.headless = headless;

  let vault: VaultStatus = VAULT_CODES[stateName]
    ? { ready: false, headless, error: { code: stateName as never, message: VAULT_CODES[stateName]! } }
    : { ready: true, keyId: KEY_ID, headless };
  let providers = mockProviders();
  let connections = mockConnections(stateName);
  let settings: SettingsView = {
    startAtLogin: false,
    keepRunning: true,
    notifications: true,
    clipboardSeconds: 30,
    trayAvailable: !params.has('noTray'),
    autostartEntry: '~/.config/autostart/io.tokenkeep.desktop-dev.desktop',
    clipboardFromEnv: false,
  };
  const handlers = new Map<EventName, Set<(p: unknown) => void>>();
  const emit = <K extends EventName>(event: K, payload: AppEvents[K]): void => {
    for (const h of handlers.get(event) ?? []) h(structuredClone(payload));
  };
  let retryCount = 0;
  let pendingConnect: { reject: (e: unknown) => void } | null = null;

  const find = (id: string): Connection => {
    const c = connections.find((x) => x.id === id);
    if (!c) throw new AppError('not_found', 'No connection with that id.');
    return c;
  };
  const put = (c: Connection): Connection => {
    connections = connections.some((x) => x.id === c.id) ? connections.map((x) => (x.id === c.id ? c : x)) : [...connections, c];
    emit('connection-status', c);
    return c;
  };
  const needVault = (): void => {
    if (!vault.ready) throw new AppError(vault.error!.code, vault.error!.message);
  };

  const backend: Backend = {
    appInfo: async () => info,
    vaultStatus: async () => vault,
    retryVault: async () => {
      await sleep(500);
      if (!retryFails && vault.error) vault = retryCount++ >= 1 ? { ready: true, keyId: KEY_ID, headless } : vault;
      return vault;
    },
    exportKey: async () => ({ keyId: KEY_ID, key: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=' }),
    openSetupPage: async () => null,
    acknowledgeKeyNotice: async () => {
      vault = { ...vault, keyNotice: false };
      return vault;
    },
    importKey: async () => {
      await sleep(300);
      vault = { ready: true, keyId: KEY_ID, headless };
      return vault;
    },
    restoreBackup: async () => {
      await sleep(800);
      vault = { ready: true, keyId: KEY_ID, headless };
      return { status: vault, connections: 3, checkNeeded: 2, takenAt: Math.floor(Date.now() / 1000) - 90, setAside: null };
    },
    listProviders: async () => {
      needVault();
      return providers;
    },
    configureProvider: async (args) => {
      await sleep(300);
      const p = providers.find((x) => x.id === args.id);
      if (!p) throw new AppError('not_found', 'No such provider.');
      if (args.clientId === 'bad') throw new AppError('invalid', 'The client ID was refused by the platform.');
      const next: Provider = { ...p, ready: true, needs: null, clientId: args.clientId, auth: args.auth ?? p.auth, hasSecret: p.hasSecret || Boolean(args.clientSecret) };
      providers = providers.map((x) => (x.id === p.id ? next : x));
      return next;
    },
    addServer: async (args) => {
      await sleep(600);
      const host = args.server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
      if (host.includes('unreachable')) throw new AppError('invalid', `could not reach https://${host}/api/v1/apps: connection refused`);
      const id = host.replace(/[^a-z0-9]+/g, '-');
      const p = provider({ id, name: `Mastodon (${host})`, origin: 'custom', clientId: 'registered-client', auth: 'post', needsSecret: true, hasSecret: true, scopes: ['read:accounts', 'write:statuses', 'write:media'] });
      providers = [...providers, p];
      return p;
    },
    importProvider: async (args) => {
      await sleep(300);
      const id = /^id\s*=\s*"([a-z0-9-]+)"/m.exec(args.text)?.[1];
      if (!id) throw new AppError('invalid', `provider definition ${args.name}: line 1: missing field \`id\``);
      const p = provider({ id, name: id, origin: 'custom', ready: false, needs: `${id} needs a client id: register Tokenkeep with the provider (redirect URI http://127.0.0.1/callback), then enter its client id in Tokenkeep` });
      providers = [...providers.filter((x) => x.id !== id), p];
      return p;
    },
    addCustomProvider: async (args) => {
      await sleep(600);
      if (args.issuer.includes('unreachable')) {
        throw new AppError('provider_unreachable', `Could not fetch ${args.issuer}/.well-known/openid-configuration (connection refused).`);
      }
      const p = provider({ id: args.id, name: args.displayName ?? args.id, origin: 'custom', clientId: args.clientId, auth: args.auth ?? 'none', hasSecret: Boolean(args.clientSecret), scopes: ['openid', 'profile', 'offline_access'] });
      providers = [...providers, p];
      return p;
    },
    connect: (id) =>
      new Promise((resolve, reject) => {
        if (pendingConnect) return reject(new AppError('busy', 'A sign-in is already running.'));
        pendingConnect = { reject };
        const p = providers.find((x) => x.id === id);
        const url = `${id === 'demo' ? 'http://127.0.0.1:47800/auth' : 'https://accounts.example.com/o/oauth2/auth'}?response_type=code&client_id=${encodeURIComponent(p?.clientId ?? 'x')}&redirect_uri=http%3A%2F%2F127.0.0.1%3A51234%2Fcallback&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=af0ifjsldkj&scope=openid%20offline_access`;
        setTimeout(() => emit('connect-progress', { provider: id, stage: 'waiting_for_browser', url, opened: !params.has('noBrowser') }), 300);
        if (dialog === 'waiting') return; // waits until Cancel
        setTimeout(
          () => {
            if (!pendingConnect) return;
            pendingConnect = null;
            const errors: Record<string, AppError> = {
              declined: new AppError('declined', 'You declined access on the platform’s page.'),
              timeout: new AppError('timeout', 'No answer from the browser within 5 minutes.'),
              cancelled: new AppError('cancelled', 'The sign-in was cancelled.'),
              busy: new AppError('busy', 'A sign-in is already running.'),
              error: new AppError('provider_rejected', 'The platform answered “invalid_client”: check the client ID and secret.'),
            };
            const e = errors[outcome];
            if (e) return reject(e);
            const existing = connections.find((c) => c.provider === id && c.status !== 'connected');
            const c = put({
              ...(existing ?? conn({ provider: id, providerName: p?.name ?? id, account: id === 'demo' ? 'creator@demo.test' : `maya@${id}`, scopes: p?.scopes ?? [] })),
              status: 'connected',
              expiresAt: now() + 3600,
              lastRefreshAt: now(),
              lastError: null,
            });
            resolve({ id: c.id, account: c.account, replaced: existing !== undefined });
          },
          dialog === 'outcome' ? 700 : 2500,
        );
      }),
    pasteSignInAddress: async () => {
      await sleep(200);
      return null;
    },
    cancelConnect: async () => {
      await sleep(200);
      pendingConnect?.reject(new AppError('cancelled', 'The sign-in was cancelled.'));
      pendingConnect = null;
      return null;
    },
    listConnections: async () => {
      needVault();
      if (stateName === 'list_error') throw new AppError('store', 'A record in the connections tree could not be decrypted.');
      return connections;
    },
    getSettings: async () => ({ ...settings }),
    // The mock has no tray: nothing is ever chosen there.
    takeTrayReconnect: async () => null,
    setSettings: async (change) => {
      settings = { ...settings, ...change };
      return { ...settings };
    },
    pauseRefreshing: async (minutes) => {
      const until = minutes === null ? null : now() + minutes * 60;
      emit('refresh-paused', { until });
      return { until };
    },
    refreshNow: async (id) => {
      const c = find(id);
      if (c.status === 'needs_reconnect' || dialog === 'refresh_error') {
        await sleep(200);
        throw new AppError(dialog === 'refresh_error' ? 'provider_unreachable' : 'needs_reconnect', dialog === 'refresh_error' ? 'Couldn’t reach the token endpoint (DNS lookup failed).' : 'X rejected the refresh token: sign in again.');
      }
      put({ ...c, status: 'refreshing' });
      await sleep(1200);
      return put({ ...c, status: 'connected', expiresAt: now() + 3600, lastRefreshAt: now(), lastError: null });
    },
    disconnect: async (id, ifRevocationFails = 'keep_trying') => {
      const c = find(id);
      await sleep(600);
      const manageUrl = 'https://example.com/settings/apps';
      if (c.status === 'revocation_pending') {
        if (ifRevocationFails === 'keep_trying') {
          const revocation = { ...c.revocation!, attempts: c.revocation!.attempts + 1, nextAttemptAt: now() + 120 };
          put({ ...c, revocation });
          return { account: c.account, provider: c.provider, revocation: 'failed', detail: 'could not reach the platform', manageUrl, pending: revocation };
        }
        connections = connections.filter((x) => x.id !== id);
        emit('connection-removed', { id });
        return { account: c.account, provider: c.provider, revocation: 'not_tried', manageUrl };
      }
      if (params.get('revocation') === 'pending' && ifRevocationFails === 'keep_trying') {
        const t = now();
        const revocation = { since: t, attempts: 1, nextAttemptAt: t + 60, giveUpAt: t + 7 * 86400, manageUrl };
        put({ ...c, status: 'revocation_pending', expiresAt: null, scopes: [], lastError: 'could not reach the platform', revocation });
        return { account: c.account, provider: c.provider, revocation: 'failed', detail: 'could not reach the platform', manageUrl, pending: revocation };
      }
      const defaults: Record<string, Revocation> = { youtube: 'revoked', x: 'not_supported', tiktok: 'failed', twitch: 'revoked' };
      const revocation = (params.get('revocation') as Revocation | null) ?? defaults[c.provider] ?? 'revoked';
      const manage: Record<string, string> = {
        youtube: 'https://myaccount.google.com/connections',
        x: 'https://x.com/settings/connected_apps',
        tiktok: 'https://www.tiktok.com/setting/security',
        twitch: 'https://www.twitch.tv/settings/connections',
      };
      const result: Disconnected = { account: c.account, provider: c.provider, revocation };
      if (revocation !== 'revoked' && revocation !== 'skipped') result.manageUrl = manage[c.provider] ?? 'https://example.com/settings/apps';
      if (revocation === 'failed') result.detail = 'the revocation endpoint answered HTTP 503';
      if (revocation === 'skipped') result.detail = 'the tokens could not be read (the record failed its integrity check)';
      connections = connections.filter((x) => x.id !== id);
      emit('connection-removed', { id });
      return result;
    },
    copyToken: async () => {
      const clip = { state: 'holding' as const, clearsAt: Math.ceil(now()) + 30, seconds: 30 };
      emit('clipboard', clip);
      window.setTimeout(() => emit('clipboard', { state: 'cleared' }), 30_000);
      return clip;
    },
    clearClipboard: async () => {
      emit('clipboard', { state: 'cleared' });
      return { state: 'cleared' as const };
    },
    removeProvider: async (id, withConnections = false) => {
      await sleep(200);
      const p = providers.find((x) => x.id === id);
      if (!p) throw new AppError('not_found', `No provider ${id}.`);
      const using = connections.filter((c) => c.provider === id);
      if (using.length > 0 && !withConnections) throw new AppError('invalid', `${using.length} connection(s) use ${id}: disconnect them first`);
      for (const c of using) {
        connections = connections.filter((x) => x.id !== c.id);
        emit('connection-removed', { id: c.id });
      }
      const forgot = p.origin !== 'custom';
      providers = forgot
        ? providers.map((x) => (x.id === id ? { ...x, ready: false, clientId: null, hasSecret: false, needs: `${x.name} needs a client id.` } : x))
        : providers.filter((x) => x.id !== id);
      emit('providers-changed', null);
      return { id, disconnected: using.length, setupForgotten: forgot };
    },
    accountPicture: async (id) => {
      const c = find(id);
      await sleep(50);
      return c.picture ? { tag: c.picture, dataUrl: mockPicture() } : null;
    },
    inspect: async (id) => {
      const c = find(id);
      await sleep(150);
      const t = now();
      const oidc = c.scopes.includes('openid');
      const claims = { iss: 'https://accounts.google.com', sub: '108204268033311234567', aud: '1234-abc.apps.googleusercontent.com', email: c.account, email_verified: true, iat: t - 720, exp: t + 2880, nonce: 'n-0S6_WzA2Mj' };
      const i: Inspection = {
        ...c,
        subject: oidc ? claims.sub : null,
        createdAt: t - 40 * 86400,
        updatedAt: c.lastRefreshAt ?? t - 3600,
        keyId: KEY_ID,
        apiCommand: `tokenkeep api ${c.provider}:${c.account} youtube/v3/channels?part=snippet&mine=true`,
        tokens: [
          { kind: 'access_token', present: true, length: 218 },
          { kind: 'refresh_token', present: c.provider !== 'tiktok', length: 103 },
          oidc ? { kind: 'id_token', present: true, length: 1041, jwt: { header: { alg: 'RS256', kid: 'c8ab71d4', typ: 'JWT' }, claims } } : { kind: 'id_token', present: false },
        ],
      };
      return i;
    },
    reveal: async (_id, kind: TokenKind) => {
      await sleep(150);
      const values: Record<TokenKind, string> = {
        access_token: 'MOCK-ya29.a0AfB_byNOT-A-REAL-TOKEN-xq1Lw9Kd0cY2x3WQpHc8tZ-ov3bTnE4sQ7Jf5uAaPq0rLm2NkVb8X6gH1iYdC4eR9wS3zUoTjK7lBmFpG0vQxH2cNyZ_aWs5Dd',
        refresh_token: 'MOCK-1//0gNOT-A-REAL-REFRESH-TOKEN-Lq8fYx2KcW0Z7pRbN4tHs6vJ9mDu3aEo1iGk5yTlQ',
        id_token: `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url({ sub: 'mock', note: 'not a real token' })}.MOCKSIGNATURE`,
      };
      return { value: values[kind] };
    },
    on: async (event, handler) => {
      const set = handlers.get(event) ?? new Set();
      set.add(handler as (p: unknown) => void);
      handlers.set(event, set);
      return () => set.delete(handler as (p: unknown) => void);
    },
  };
  const live = (): void => {
    // A refresh every 9 s of whichever connected token expires first, and one attention notice.
    setInterval(() => {
      const c = connections.filter((x) => x.status === 'connected' && typeof x.expiresAt === 'number').sort((a, b) => a.expiresAt! - b.expiresAt!)[0];
      if (!c) return;
      put({ ...c, status: 'refreshing' });
      setTimeout(() => put({ ...c, status: 'connected', expiresAt: now() + 3600, lastRefreshAt: now() }), 1500);
    }, 9000);
    setTimeout(() => {
      const c = connections.find((x) => x.status === 'connected');
      if (!c) return;
      const broken = put({ ...c, status: 'needs_reconnect', lastError: `${c.providerName} rejected the refresh token (invalid_grant): sign in again to reconnect` });
      emit('attention', { id: broken.id, provider: broken.providerName, account: broken.account, message: 'needs you to sign in again.' });
    }, 4000);
  };

  const scenario = async (): Promise<void> => {
    if (params.has('live')) live();
    if (stateName === 'needs_reconnect') {
      const c = connections.find((x) => x.status === 'needs_reconnect');
      if (c) emit('attention', { id: c.id, provider: c.providerName, account: c.account, message: 'X no longer accepts Tokenkeep’s token. Reconnect to keep posting.' });
    }
    const click = async (sel: string): Promise<HTMLElement | null> => {
      for (let i = 0; i < 40; i++) {
        const e = document.querySelector<HTMLElement>(sel);
        if (e && !(e as HTMLButtonElement).disabled) {
          e.click();
          return e;
        }
        await sleep(50);
      }
      console.warn('mock scenario: not found', sel);
      return null;
    };
    const tid = (id: string): string => `[data-testid="${id}"]`;
    const of = params.get('of');
    const ofId = of ? connections.find((c) => c.provider === of)?.id : undefined;
    const first = ofId ? `[data-connection-id="${ofId}"]` : `${tid(TID.connectionCard)}`;
    switch (dialog) {
      case 'inspect':
        await click(`${first} ${tid(TID.inspectButton)}`);
        break;
      case 'reveal':
        await click(`${first} ${tid(TID.inspectButton)}`);
        await click(tid(revealId('access_token')));
        break;
      case 'disconnect':
        await click(`${first} ${tid(TID.disconnectButton)}`);
        break;
      case 'disconnected': {
        const target = params.get('revocation') ? first : `[data-connection-id="${connections.find((c) => c.provider === 'x')?.id ?? ''}"]`;
        await click(`${target} ${tid(TID.disconnectButton)}`);
        await click(tid(TID.confirmDisconnect));
        break;
      }
      case 'connect':
        await click(tid(TID.addAccountButton)) ?? (await click(tid(TID.emptyConnectButton)));
        break;
      case 'setup':
        await click(tid(TID.addAccountButton)) ?? (await click(tid(TID.emptyConnectButton)));
        await click(tid(providerSetupId('linkedin')));
        break;
      case 'custom':
      case 'custom_errors':
        await click(tid(TID.addAccountButton)) ?? (await click(tid(TID.emptyConnectButton)));
        await click('.custom-toggle');
        if (dialog === 'custom_errors') {
          const issuer = document.querySelector<HTMLInputElement>(`${tid(TID.customProviderForm)} input[name="issuer"]`);
          const id = document.querySelector<HTMLInputElement>(`${tid(TID.customProviderForm)} input[name="id"]`);
          if (issuer) issuer.value = 'http://auth.example.com';
          if (id) id.value = 'My Forum';
          await click(tid(TID.customProviderSave));
        }
        break;
      case 'waiting':
      case 'outcome':
        await click(tid(TID.addAccountButton)) ?? (await click(tid(TID.emptyConnectButton)));
        await click(tid(providerConnectId('demo')));
        if (params.get('url') === 'open') {
          await sleep(500);
          document.querySelector<HTMLDetailsElement>('.flow-url')?.setAttribute('open', '');
        }
        break;
      case 'retry':
        await click(tid(TID.vaultRetry));
        await sleep(700);
        await click(tid(TID.vaultRetry));
        break;
      case 'refresh_error':
        await click(`${first} ${tid(TID.refreshButton)}`);
        break;
    }
  };

  return { backend, scenario };
}
