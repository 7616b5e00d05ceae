import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const invokeMock = vi.hoisted(() => vi.fn());
const listenMock = vi.hoisted(() => vi.fn());
vi.mock('@tauri-apps/api/core', () => ({ invoke: invokeMock }));
vi.mock('@tauri-apps/api/event', () => ({ listen: listenMock }));

import * as api from './api';
import { AppError, FRONTEND_ERROR_CODES, call, getAppInfo, hasTauri, tauriBackend, toAppError } from './api';

describe('toAppError', () => {
  it('keeps the backend { code, message } shape', () => {
    const e = toAppError({ code: 'keyring_locked', message: 'The keyring is locked.' });
    expect(e).toBeInstanceOf(AppError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('keyring_locked');
    expect(e.message).toBe('The keyring is locked.');
    expect(e.name).toBe('AppError');
  });

  it('returns an AppError unchanged', () => {
    const original = new AppError('x', 'y');
    expect(toAppError(original)).toBe(original);
  });

  it('wraps plain strings (Tauri rejects unknown commands with a string)', () => {
    const e = toAppError('command list_connections not found');
    expect(e.code).toBe(FRONTEND_ERROR_CODES.unknown);
    expect(e.message).toBe('command list_connections not found');
  });

  it('wraps Error instances', () => {
    const e = toAppError(new TypeError('boom'));
    expect(e.code).toBe(FRONTEND_ERROR_CODES.unknown);
    expect(e.message).toBe('boom');
  });

  it('uses message when code is missing or not a string', () => {
    expect(toAppError({ message: 'only a message' }).message).toBe('only a message');
    const e = toAppError({ code: 42, message: 'numeric code' });
    expect(e.code).toBe(FRONTEND_ERROR_CODES.unknown);
    expect(e.message).toBe('numeric code');
  });

  it.each([undefined, null, 7, '', '   ', {}, []])('gives a generic message for %j', (raw) => {
    const e = toAppError(raw);
    expect(e.code).toBe(FRONTEND_ERROR_CODES.unknown);
    expect(e.message).toMatch(/unexpected/i);
  });
});

describe('hasTauri', () => {
  it('detects __TAURI_INTERNALS__', () => {
    expect(hasTauri({ __TAURI_INTERNALS__: {} })).toBe(true);
    expect(hasTauri({})).toBe(false);
    expect(hasTauri(undefined)).toBe(false);
  });
});

describe('call', () => {
  const g = globalThis as { __TAURI_INTERNALS__?: unknown };

  beforeEach(() => {
    invokeMock.mockReset();
  });
  afterEach(() => {
    delete g.__TAURI_INTERNALS__;
  });

  it('rejects with no_tauri outside the app without invoking', async () => {
    await expect(call('app_info')).rejects.toMatchObject({
      code: FRONTEND_ERROR_CODES.noTauri,
    });
    expect(invokeMock).not.toHaveBeenCalled();
  });

  it('passes the command and args through and returns the result', async () => {
    g.__TAURI_INTERNALS__ = {};
    invokeMock.mockResolvedValue({ ok: 1 });
    await expect(call('some_cmd', { id: 3 })).resolves.toEqual({ ok: 1 });
    expect(invokeMock).toHaveBeenCalledWith('some_cmd', { id: 3 });
  });

  it('normalises backend rejections into AppError', async () => {
    g.__TAURI_INTERNALS__ = {};
    invokeMock.mockRejectedValue({ code: 'io', message: 'disk full' });
    const err = await call('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'io', message: 'disk full' });
  });

  it('getAppInfo invokes app_info', async () => {
    g.__TAURI_INTERNALS__ = {};
    const info = {
      name: 'Tokenkeep',
      version: '0.1.0',
      profile: 'dev',
      dataDir: '/tmp/tk',
      headless: true,
    };
    invokeMock.mockResolvedValue(info);
    await expect(getAppInfo()).resolves.toEqual(info);
    expect(invokeMock).toHaveBeenCalledWith('app_info', undefined);
  });
});

describe('every command in docs/IPC.md', () => {
  const g = globalThis as { __TAURI_INTERNALS__?: unknown };
  beforeEach(() => {
    invokeMock.mockReset();
    invokeMock.mockResolvedValue(null);
    g.__TAURI_INTERNALS__ = {};
  });
  afterEach(() => {
    delete g.__TAURI_INTERNALS__;
  });

  const id = '0123456789abcdef0123456789abcdef';
  const cases: [string, () => Promise<unknown>, unknown][] = [
    ['app_info', () => api.getAppInfo(), undefined],
    ['vault_status', () => api.vaultStatus(), undefined],
    ['retry_vault', () => api.retryVault(), undefined],
    ['restore_backup', () => api.restoreBackup(), undefined],
    ['export_key', () => api.exportKey(), undefined],
    ['open_setup_page', () => api.openSetupPage('youtube'), { id: 'youtube' }],
    ['acknowledge_key_notice', () => api.acknowledgeKeyNotice(), undefined],
    ['import_key', () => api.importKey('k'), { key: 'k' }],
    ['list_providers', () => api.listProviders(), undefined],
    ['configure_provider', () => api.configureProvider({ id: 'x', clientId: 'cid' }), { id: 'x', clientId: 'cid' }],
    [
      'add_custom_provider',
      () => api.addCustomProvider({ id: 'f', issuer: 'https://i', clientId: 'c', clientSecret: 's', auth: 'basic', displayName: 'F' }),
      { id: 'f', issuer: 'https://i', clientId: 'c', clientSecret: 's', auth: 'basic', displayName: 'F' },
    ],
    [
      'configure_provider',
      () => api.configureProvider({ id: 'instagram', clientId: 'cid', redirectUri: 'https://me.example/tk' }),
      { id: 'instagram', clientId: 'cid', redirectUri: 'https://me.example/tk' },
    ],
    ['add_server', () => api.addServer({ template: 'mastodon', server: 'mastodon.social' }), { template: 'mastodon', server: 'mastodon.social' }],
    ['import_provider', () => api.importProvider({ name: 'a.toml', text: 'id = "a"' }), { name: 'a.toml', text: 'id = "a"' }],
    ['remove_provider', () => api.removeProvider('acme'), { id: 'acme', withConnections: false }],
    ['remove_provider', () => api.removeProvider('acme', true), { id: 'acme', withConnections: true }],
    ['connect', () => api.connect('demo'), { provider: 'demo' }],
    ['cancel_connect', () => api.cancelConnect(), undefined],
    ['paste_sign_in_address', () => api.pasteSignInAddress('https://x/?code=c&state=s'), { address: 'https://x/?code=c&state=s' }],
    ['list_connections', () => api.listConnections(), undefined],
    ['refresh_now', () => api.refreshNow(id), { id }],
    ['pause_refreshing', () => api.pauseRefreshing(60), { minutes: 60 }],
    ['pause_refreshing', () => api.pauseRefreshing(null), { minutes: null }],
    ['get_settings', () => api.getSettings(), undefined],
    ['set_settings', () => api.setSettings({ keepRunning: false }), { change: { keepRunning: false } }],
    ['take_tray_reconnect', () => api.takeTrayReconnect(), undefined],
    ['disconnect', () => api.disconnect(id), { id, ifRevocationFails: 'keep_trying' }],
    ['disconnect', () => api.disconnect(id, 'delete_now'), { id, ifRevocationFails: 'delete_now' }],
    ['inspect', () => api.inspect(id), { id }],
    ['account_picture', () => api.accountPicture(id), { id }],
    ['reveal', () => api.reveal(id, 'refresh_token'), { id, kind: 'refresh_token' }],
    ['copy_token', () => api.copyToken(id, 'access_token'), { id, kind: 'access_token' }],
    ['clear_clipboard', () => api.clearClipboard(), undefined],
  ];

  it.each(cases)('%s', async (cmd, run, args) => {
    await run();
    expect(invokeMock).toHaveBeenCalledWith(cmd, args);
  });

  it('omits optional arguments that are not given', async () => {
    await api.configureProvider({ id: 'x', clientId: 'c', clientSecret: undefined as never });
    expect(invokeMock.mock.calls[0]![1]).toEqual({ id: 'x', clientId: 'c' });
  });

  it('the backend object covers the same commands', () => {
    expect(Object.keys(tauriBackend).sort()).toEqual(
      ['accountPicture', 'acknowledgeKeyNotice', 'clearClipboard', 'copyToken', 'exportKey', 'getSettings', 'importKey', 'openSetupPage', 'addCustomProvider', 'addServer', 'importProvider', 'appInfo', 'cancelConnect', 'configureProvider', 'connect', 'disconnect', 'inspect', 'listConnections', 'listProviders', 'on', 'pasteSignInAddress', 'pauseRefreshing', 'refreshNow', 'removeProvider', 'restoreBackup', 'retryVault', 'reveal', 'setSettings', 'takeTrayReconnect', 'vaultStatus'].sort(),
    );
  });

  it('rejections carry the contract error code', async () => {
    invokeMock.mockRejectedValue({ code: 'needs_reconnect', message: 'Sign in again.' });
    await expect(api.refreshNow(id)).rejects.toMatchObject({ code: 'needs_reconnect', message: 'Sign in again.' });
  });
});

describe('events', () => {
  const g = globalThis as { __TAURI_INTERNALS__?: unknown };
  beforeEach(() => {
    listenMock.mockReset();
    g.__TAURI_INTERNALS__ = {};
  });
  afterEach(() => {
    delete g.__TAURI_INTERNALS__;
  });

  it.each(api.EVENT_NAMES)('%s: passes the payload and returns the unlisten function', async (name) => {
    const unlisten = vi.fn();
    listenMock.mockImplementation(async (_n: string, cb: (e: { payload: unknown }) => void) => {
      cb({ payload: { id: 'p' } });
      return unlisten;
    });
    const handler = vi.fn();
    const off = await api.onEvent(name, handler);
    expect(listenMock).toHaveBeenCalledWith(name, expect.any(Function));
    expect(handler).toHaveBeenCalledWith({ id: 'p' });
    off();
    expect(unlisten).toHaveBeenCalled();
  });

  it('typed helpers subscribe to the right event', async () => {
    listenMock.mockResolvedValue(() => {});
    await api.onConnectionStatus(() => {});
    await api.onConnectionRemoved(() => {});
    await api.onProvidersChanged(() => {});
    await api.onAttention(() => {});
    await api.onConnectProgress(() => {});
    await api.onVaultStatus(() => {});
    expect(listenMock.mock.calls.map((c) => c[0])).toEqual(['connection-status', 'connection-removed', 'providers-changed', 'attention', 'connect-progress', 'vault-status']);
  });

  it('rejects with no_tauri outside the app', async () => {
    delete g.__TAURI_INTERNALS__;
    await expect(api.onEvent('attention', () => {})).rejects.toMatchObject({ code: FRONTEND_ERROR_CODES.noTauri });
  });

  it('normalises listen failures', async () => {
    listenMock.mockRejectedValue('event.listen not allowed');
    await expect(api.onEvent('attention', () => {})).rejects.toBeInstanceOf(AppError);
  });
});
