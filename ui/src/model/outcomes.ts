// Outcomes in words: a connect flow, a disconnect. Pure.

import { AppError, type Connected, type Disconnected, type Provider } from '../api';
import { describeError } from './errors';
import { formatDuration } from './time';

export type Tone = 'ok' | 'neutral' | 'warn' | 'bad';

export interface ConnectOutcome {
  tone: Tone;
  text: string;
  detail: string | null;
}

export function connectSucceeded(c: Connected): ConnectOutcome {
  const who = c.account.trim() === '' ? 'your account' : c.account;
  return c.replaced
    ? {
        tone: 'ok',
        text: `Reconnected as ${who}`,
        detail: 'The old tokens for this account were replaced.',
      }
    : { tone: 'ok', text: `Connected as ${who}`, detail: null };
}

export function connectFailed(err: unknown): ConnectOutcome {
  const code = err instanceof AppError ? err.code : '';
  const w = describeError(err);
  switch (code) {
    case 'declined':
      return { tone: 'neutral', text: 'You declined — nothing was connected.', detail: null };
    case 'cancelled':
      return { tone: 'neutral', text: 'Cancelled — nothing was connected.', detail: null };
    case 'timeout':
      return {
        tone: 'warn',
        text: 'Timed out — nothing was connected.',
        detail: 'The sign-in was not finished in the browser in time. You can try again.',
      };
    default:
      return { tone: 'bad', text: w.summary, detail: w.detail };
  }
}

/** What a provider row in the Connect panel says about itself. */
export function providerLabel(p: Pick<Provider, 'name' | 'origin'>): { name: string; note: string | null } {
  if (p.origin === 'demo') {
    return { name: 'Demo (local)', note: 'Test server on this computer — no real account is involved.' };
  }
  if (p.origin === 'custom') return { name: p.name, note: 'Added by you' };
  return { name: p.name, note: null };
}

export interface DisconnectOutcome {
  tone: Tone;
  title: string;
  text: string;
  /** Where to revoke by hand, shown as selectable text. */
  manageUrl: string | null;
  detail: string | null;
}

export function disconnectOutcome(d: Disconnected, providerName: string): DisconnectOutcome {
  const who = `${d.account} on ${providerName}`;
  const manageUrl = d.manageUrl?.trim() ? d.manageUrl.trim() : null;
  const detail = d.detail?.trim() ? d.detail.trim() : null;
  const byHand = manageUrl
    ? ` To be sure, remove Tokenkeep’s access in your ${providerName} account settings at the address below.`
    : ` To be sure, remove Tokenkeep’s access in your ${providerName} account settings (connected or third-party apps).`;
  if (d.pending) {
    return {
      tone: 'warn',
      title: 'Disconnected — still revoking',
      text:
        `Tokenkeep couldn’t reach ${providerName} to revoke access for ${d.account}. It no longer uses this account and ` +
        `keeps trying in the background, for up to ${formatDuration(d.pending.giveUpAt - d.pending.since)}; only ` +
        'what revoking needs is kept, encrypted. You can also delete everything now and remove the access by hand.',
      manageUrl,
      detail,
    };
  }
  switch (d.revocation) {
    case 'not_tried':
      return {
        tone: 'warn',
        title: 'Deleted — access may remain',
        text: `The tokens for ${who} were deleted here before ${providerName} confirmed the revoke, so access may remain.${byHand}`,
        manageUrl,
        detail,
      };
    case 'revoked':
      return {
        tone: 'ok',
        title: 'Disconnected and revoked',
        text: `${who} is disconnected. ${providerName} confirmed the tokens are revoked, and they were deleted here.`,
        manageUrl: null,
        detail,
      };
    case 'not_supported':
      return {
        tone: 'warn',
        title: 'Disconnected here — access may remain',
        text: `The tokens for ${who} were deleted here, but ${providerName} does not let apps revoke access themselves, so access may remain.${byHand}`,
        manageUrl,
        detail,
      };
    case 'failed':
      return {
        tone: 'warn',
        title: 'Disconnected here — revoking failed',
        text: `The tokens for ${who} were deleted here, but ${providerName} did not confirm the revoke, so access may remain.${byHand}`,
        manageUrl,
        detail,
      };
    case 'skipped':
      return {
        tone: 'warn',
        title: 'Disconnected here — platform not contacted',
        text: `The record for ${who} was deleted here. Tokenkeep could not ask ${providerName} to revoke access, so access may remain.${byHand}`,
        manageUrl,
        detail,
      };
  }
}

/** Connect panel order: demo first, then ready platforms, then those needing setup; by name within. */
export function orderProviders<P extends Pick<Provider, 'name' | 'origin' | 'ready'>>(list: readonly P[]): P[] {
  const rank = (p: P): number => (p.origin === 'demo' ? 0 : p.ready ? 1 : 2);
  return [...list].sort(
    (a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name, 'en', { sensitivity: 'base' }),
  );
}
