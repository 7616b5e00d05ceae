// The status pill of a connection: what it says, its tone, and what it means. Pure.

import type { Connection, Status } from '../api';
import { formatDuration, nextTextChange } from './time';

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
  | 'revocation_pending'
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
  revocation_pending: {
    text: 'Revoking access',
    tone: 'busy',
    meaning:
      'Disconnected: Tokenkeep no longer uses this account, and keeps asking the platform to revoke its access until it confirms.',
  },
  error: {
    text: 'Error',
    tone: 'bad',
    meaning: 'Something went wrong with this connection, and Tokenkeep cannot fix it alone.',
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
  'revocation_pending',
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

/** "Refresh now" makes sense unless a refresh is running, the record is unreadable or the connection is dead. */
export function canRefresh(c: Pick<Connection, 'status' | 'damaged'>): boolean {
  return !c.damaged && c.status !== 'refreshing' && !isDead(c);
}

/** The platform no longer accepts the connection (or it cannot be used): its token times mean nothing. */
export function isDead(c: Pick<Connection, 'status' | 'damaged'>): boolean {
  return Boolean(c.damaged) || needsReconnect(c);
}

/** "refresh failed (network error)" → "network error": the engine's words, without its own frame. */
function failureReason(lastError: string | null | undefined): string | null {
  const text = lastError?.trim() ?? '';
  if (text === '') return null;
  const framed = /^refresh failed \((.*)\)$/.exec(text);
  return framed ? framed[1]! : text;
}

/**
 * The one sentence a card says about its state, in a creator's words; null when there is nothing to say. The
 * platform's own error codes stay in Inspect. A retry counts down to `retryAt`.
 */
export function cardMessage(
  c: Pick<Connection, 'status' | 'expiresAt' | 'damaged' | 'lastError' | 'retryAt' | 'lastRefreshAt'>,
  now: number,
): string | null {
  const pill = derivePill(c, now);
  if (c.damaged) return `${pill.meaning} Reason: ${c.damaged}.`;
  switch (pill.kind) {
    case 'connected':
    case 'refreshing':
      return null;
    case 'retrying': {
      const reason = failureReason(c.lastError);
      const failed = reason === null ? 'The last refresh failed for a passing reason.' : `The last refresh failed (${reason}).`;
      if (typeof c.retryAt !== 'number') return `${failed} Tokenkeep will try again shortly.`;
      const left = c.retryAt - now;
      return left >= 1
        ? `${failed} Tokenkeep tries again in ${formatDuration(left)}.`
        : `${failed} Tokenkeep is trying again now.`;
    }
    case 'error': {
      const reason = failureReason(c.lastError);
      return reason === null ? pill.meaning : `${pill.meaning} ${reason.charAt(0).toUpperCase()}${reason.slice(1)}.`;
    }
    default:
      return pill.meaning;
  }
}

/**
 * Seconds until anything this connection's card shows changes with the clock alone (a countdown, a relative time,
 * the pill turning "expiring soon" or "expired"); Infinity when nothing does. The window sleeps until the nearest.
 */
export function nextCardChange(
  c: Pick<Connection, 'status' | 'expiresAt' | 'damaged' | 'retryAt' | 'lastRefreshAt'>,
  now: number,
): number {
  if (isDead(c)) return Infinity;
  const waits: number[] = [];
  if (typeof c.expiresAt === 'number') {
    waits.push(nextTextChange(c.expiresAt, now));
    const lifetime = typeof c.lastRefreshAt === 'number' ? c.expiresAt - c.lastRefreshAt : null;
    for (const t of [c.expiresAt - expiringSoonWindow(lifetime), c.expiresAt]) if (t > now) waits.push(t - now);
  }
  if (typeof c.lastRefreshAt === 'number') {
    const ago = now - c.lastRefreshAt;
    // "refreshed just now" holds for the whole first minute.
    waits.push(ago < 60 ? Math.max(0.05, 60 - ago) : nextTextChange(c.lastRefreshAt, now));
  }
  if (c.status === 'retrying' && typeof c.retryAt === 'number' && c.retryAt > now) {
    waits.push(nextTextChange(c.retryAt, now));
  }
  return waits.length === 0 ? Infinity : Math.min(...waits);
}
