// The status pill of a connection: what it says, its tone, and what it means. Pure.

import type { Connection, Status } from '../api';

/**
 * A connected token is "expiring soon" only when its automatic refresh looks late: within a minute of expiry, or
 * within a quarter of its lifetime for tokens that live only minutes. Earlier, Tokenkeep simply has not needed to
 * refresh yet, and a warning would cry wolf on a healthy connection.
 */
export const EXPIRING_SOON_SECONDS = 60;

/** The "expiring soon" window for a token that lived `lifetime` seconds (unknown: the full minute). */
export function expiringSoonWindow(lifetime: number | null): number {
  return lifetime !== null && lifetime > 0 ? Math.min(EXPIRING_SOON_SECONDS, lifetime / 4) : EXPIRING_SOON_SECONDS;
}

export type PillKind =
  | 'connected'
  | 'refreshing'
  | 'expiring_soon'
  | 'expired'
  | 'retrying'
  | 'needs_reconnect'
  | 'interrupted'
  | 'error'
  | 'check_needed'
  | 'damaged';

/** Tone picks the colour; the text always says the state too (never colour alone). */
export type Tone = 'ok' | 'busy' | 'warn' | 'bad';

export interface Pill {
  kind: PillKind;
  text: string;
  tone: Tone;
  /** One sentence: what this means for the creator and what to do. */
  meaning: string;
}

const PILLS: Record<PillKind, Omit<Pill, 'kind'>> = {
  connected: {
    text: 'Connected',
    tone: 'ok',
    meaning: 'Working. Tokenkeep refreshes the token on its own before it expires.',
  },
  refreshing: {
    text: 'Refreshing…',
    tone: 'busy',
    meaning: 'Tokenkeep is getting a fresh token from the platform right now.',
  },
  expiring_soon: {
    text: 'Expiring soon',
    tone: 'warn',
    meaning: 'The token is about to expire and has not been refreshed yet. Tokenkeep will refresh it; you can also refresh now.',
  },
  expired: {
    text: 'Expired',
    tone: 'warn',
    meaning: 'The token has expired and has not been refreshed yet. Try Refresh now.',
  },
  retrying: {
    text: 'Retrying',
    tone: 'warn',
    meaning: 'The last refresh failed for a passing reason. Tokenkeep will try again shortly.',
  },
  needs_reconnect: {
    text: 'Needs reconnect',
    tone: 'bad',
    meaning: 'The platform no longer accepts this connection. Reconnect to sign in again.',
  },
  interrupted: {
    text: 'Interrupted',
    tone: 'bad',
    meaning:
      'A refresh was cut short (Tokenkeep stopped during it), so the saved token may not work. Reconnect to be sure.',
  },
  check_needed: {
    text: 'Check needed',
    tone: 'warn',
    meaning:
      'Restored from a backup: the platform may have replaced this token since. The next refresh tells; if it fails, reconnect.',
  },
  error: {
    text: 'Error',
    tone: 'bad',
    meaning: 'Something went wrong with this connection. See the details below.',
  },
  damaged: {
    text: 'Can’t be read',
    tone: 'bad',
    meaning: 'This saved record cannot be read. You can disconnect it and connect the account again.',
  },
};

export function pillFor(kind: PillKind): Pill {
  return { kind, ...PILLS[kind] };
}

const KNOWN: readonly Status[] = [
  'connected',
  'refreshing',
  'retrying',
  'needs_reconnect',
  'interrupted',
  'error',
  'check_needed',
];

/** Derives the pill from the backend status and the time (expiring soon / expired). */
export function derivePill(
  c: Pick<Connection, 'status' | 'expiresAt' | 'damaged'> & { lastRefreshAt?: number | null },
  now: number,
): Pill {
  if (c.damaged) return pillFor('damaged');
  if (!KNOWN.includes(c.status)) return pillFor('error');
  if (c.status === 'connected' && typeof c.expiresAt === 'number') {
    const left = c.expiresAt - now;
    if (left <= 0) return pillFor('expired');
    const lifetime = typeof c.lastRefreshAt === 'number' ? c.expiresAt - c.lastRefreshAt : null;
    if (left <= expiringSoonWindow(lifetime)) return pillFor('expiring_soon');
  }
  return pillFor(c.status);
}

/** The statuses where the creator has to sign in again: "Reconnect" is offered. */
export function needsReconnect(c: Pick<Connection, 'status' | 'damaged'>): boolean {
  if (c.damaged) return false;
  return c.status === 'needs_reconnect' || c.status === 'interrupted' || c.status === 'error';
}

/** "Refresh now" makes sense unless a refresh is running or the record is unreadable. */
export function canRefresh(c: Pick<Connection, 'status' | 'damaged'>): boolean {
  return !c.damaged && c.status !== 'refreshing';
}
