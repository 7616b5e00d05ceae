// Pure presentation logic, kept free of the DOM so it is unit-tested in node.

import { AppError, FRONTEND_ERROR_CODES } from './api';

export interface Badge {
  text: string;
  className: string;
  /** Longer explanation, used as the badge's accessible description. */
  description: string;
}

/** Profile badge text and classes. Text always says the profile, not colour alone. */
export function profileBadge(profile: string): Badge {
  const p = profile.trim().toLowerCase();
  if (p === 'dev' || p === 'development' || p === 'debug') {
    return {
      text: 'Development profile',
      className: 'badge badge--dev',
      description: 'Development build: data is kept apart from the production vault.',
    };
  }
  if (p === 'prod' || p === 'production' || p === 'release') {
    return {
      text: 'Production',
      className: 'badge badge--prod',
      description: 'Production profile.',
    };
  }
  const shown = profile.trim() === '' ? 'unknown' : profile.trim();
  return {
    text: `Profile: ${shown}`,
    className: 'badge badge--other',
    description: `Running with the “${shown}” profile.`,
  };
}

/** "0.1.0" → "v0.1.0"; leaves an already prefixed or empty version alone. */
export function formatVersion(version: string): string {
  const v = version.trim();
  if (v === '') return '';
  return /^v/i.test(v) ? v : `v${v}`;
}

export interface LoadErrorView {
  title: string;
  detail: string;
  /** Error code shown in small print, when it helps a bug report. */
  code: string | null;
}

/** What to show when `app_info` could not be loaded. */
export function describeLoadError(err: unknown): LoadErrorView {
  const e = err instanceof AppError ? err : null;
  if (e?.code === FRONTEND_ERROR_CODES.noTauri) {
    return {
      title: 'Open Tokenkeep from the desktop app',
      detail:
        'This page was loaded in a plain web browser, so it cannot reach your vault. ' +
        'Start the Tokenkeep application instead.',
      code: null,
    };
  }
  return {
    title: 'Tokenkeep could not load its details',
    detail: e?.message ?? 'An unexpected error occurred while starting up.',
    code: e?.code ?? null,
  };
}

/** The dev-only mock runs only in a plain browser with `?mock` in the URL. */
export function mockRequested(search: string, insideTauri: boolean): boolean {
  if (insideTauri) return false;
  return new URLSearchParams(search).has('mock');
}
