// Readable forms of inspection data (JWT claims, token presence). Pure.

import type { TokenInfo } from '../api';
import { relativeText } from './time';

/** Claims whose numbers are Unix times (RFC 7519 §4.1, OIDC Core §2). */
const TIME_CLAIMS = new Set(['exp', 'iat', 'nbf', 'auth_time', 'updated_at']);

export interface ClaimRow {
  key: string;
  value: string;
}

/** `formatDate` turns Unix seconds into local text; injected to keep this pure and testable. */
export function claimRows(
  claims: object | null | undefined,
  now: number,
  formatDate: (seconds: number) => string,
): ClaimRow[] {
  if (claims === null || claims === undefined || typeof claims !== 'object') return [];
  return Object.entries(claims as Record<string, unknown>).map(([key, v]) => {
    if (TIME_CLAIMS.has(key) && typeof v === 'number' && Number.isFinite(v)) {
      return { key, value: `${formatDate(v)} (${relativeText(v, now)})` };
    }
    if (typeof v === 'string') return { key, value: v };
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return { key, value: v.join(', ') };
    return { key, value: JSON.stringify(v) };
  });
}

/** "Stored · 1,284 characters" / "Not stored". */
export function tokenPresenceText(t: Pick<TokenInfo, 'present' | 'length'>): string {
  if (!t.present) return 'Not stored';
  if (typeof t.length === 'number') {
    return `Stored · ${t.length.toLocaleString('en-US')} character${t.length === 1 ? '' : 's'}`;
  }
  return 'Stored';
}
