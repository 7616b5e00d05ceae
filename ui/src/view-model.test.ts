import { describe, expect, it } from 'vitest';
import { AppError, FRONTEND_ERROR_CODES } from './api';
import { mockAppInfo } from './dev-mock';
import { describeLoadError, formatVersion, mockRequested, profileBadge } from './view-model';

describe('profileBadge', () => {
  it.each(['dev', 'DEV', ' development ', 'debug'])('marks %j as development', (p) => {
    const b = profileBadge(p);
    expect(b.text).toBe('Development profile');
    expect(b.className).toBe('badge badge--dev');
  });

  it.each(['prod', 'Production', 'release'])('marks %j as production', (p) => {
    const b = profileBadge(p);
    expect(b.text).toBe('Production');
    expect(b.className).toBe('badge badge--prod');
  });

  it('names any other profile in text, not by colour alone', () => {
    expect(profileBadge('staging')).toMatchObject({
      text: 'Profile: staging',
      className: 'badge badge--other',
    });
    expect(profileBadge('  ').text).toBe('Profile: unknown');
  });

  it('always gives a description', () => {
    for (const p of ['dev', 'prod', 'x']) expect(profileBadge(p).description).not.toBe('');
  });
});

describe('formatVersion', () => {
  it('prefixes a bare version', () => expect(formatVersion('0.1.0')).toBe('v0.1.0'));
  it('keeps an existing prefix', () => expect(formatVersion('v1.2.3')).toBe('v1.2.3'));
  it('leaves empty empty', () => expect(formatVersion(' ')).toBe(''));
});

describe('describeLoadError', () => {
  it('explains the plain-browser case without a code', () => {
    const v = describeLoadError(new AppError(FRONTEND_ERROR_CODES.noTauri, 'x'));
    expect(v.title).toMatch(/desktop app/i);
    expect(v.detail).toMatch(/browser/i);
    expect(v.code).toBeNull();
  });

  it('shows backend message and code', () => {
    const v = describeLoadError(new AppError('config_invalid', 'Bad config file.'));
    expect(v.detail).toBe('Bad config file.');
    expect(v.code).toBe('config_invalid');
  });

  it('copes with non-AppError values', () => {
    const v = describeLoadError(new Error('raw'));
    expect(v.title).not.toBe('');
    expect(v.detail).toMatch(/unexpected/i);
    expect(v.code).toBeNull();
  });
});

describe('mockRequested (dev-only layout mock)', () => {
  it('is never honoured inside Tauri', () => {
    expect(mockRequested('?mock', true)).toBe(false);
    expect(mockRequested('?mock=prod', true)).toBe(false);
  });
  it('needs ?mock in a plain browser', () => {
    expect(mockRequested('?mock', false)).toBe(true);
    expect(mockRequested('?other=1', false)).toBe(false);
    expect(mockRequested('', false)).toBe(false);
  });
  it('mock data has the AppInfo shape and picks the profile', () => {
    expect(mockAppInfo('?mock').profile).toBe('dev');
    expect(mockAppInfo('?mock=prod').profile).toBe('prod');
    expect(Object.keys(mockAppInfo('?mock')).sort()).toEqual(
      ['dataDir', 'headless', 'name', 'profile', 'version'].sort(),
    );
  });
});
