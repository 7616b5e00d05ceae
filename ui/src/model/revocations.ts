// Disconnected accounts whose revocation is still pending: what the window says about them. Pure.

import type { Connection } from '../api';
import { formatDuration, nextTextChange } from './time';

/** Disconnected, the platform not reached yet: not an account any more, a revocation Tokenkeep keeps trying. */
export function isPendingRevocation(c: Pick<Connection, 'status' | 'damaged'>): boolean {
  return !c.damaged && c.status === 'revocation_pending';
}

/** "Dec 9" in the person's locale (the give-up date). */
export function dayText(at: number, locale?: string): string {
  return new Date(at * 1000).toLocaleDateString(locale, { month: 'short', day: 'numeric' });
}

/**
 * The sentence of one pending revocation: when the next attempt is (counting down), and when Tokenkeep stops.
 * `busy` while an attempt the person asked for runs.
 */
export function revocationText(
  c: Pick<Connection, 'providerName' | 'provider' | 'revocation'>,
  now: number,
  busy = false,
  locale?: string,
): string {
  const platform = c.providerName || c.provider;
  const r = c.revocation;
  const first = `Tokenkeep couldn’t reach ${platform} to revoke its access.`;
  if (!r) return `${first} It keeps trying while it runs.`;
  const left = r.nextAttemptAt - now;
  const next = busy || left < 1 ? 'Trying again now' : `Next try in ${formatDuration(left)}`;
  const tries = r.attempts === 1 ? '1 try so far' : `${r.attempts} tries so far`;
  return `${first} ${next} (${tries}); after ${dayText(r.giveUpAt, locale)} it stops, deletes the tokens and tells you to revoke by hand.`;
}

/** Seconds until the row's text changes with the clock alone (the countdown); Infinity when it does not. */
export function nextRevocationChange(c: Pick<Connection, 'revocation'>, now: number): number {
  const at = c.revocation?.nextAttemptAt;
  return typeof at === 'number' && at > now ? nextTextChange(at, now) : Infinity;
}
