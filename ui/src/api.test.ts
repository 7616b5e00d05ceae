import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const invokeMock = vi.hoisted(() => vi.fn());
vi.mock('@tauri-apps/api/core', () => ({ invoke: invokeMock }));

import { AppError, FRONTEND_ERROR_CODES, call, getAppInfo, hasTauri, toAppError } from './api';

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
