// Error codes → plain words. The server's own sentence is kept as the detail. Pure.

import { AppError, FRONTEND_ERROR_CODES, type CommandError, type VaultStatus } from '../api';

export interface ErrorWords {
  /** Short sentence: what happened / what to do. */
  summary: string;
  /** The backend's own message, when it adds something. */
  detail: string | null;
  code: string;
}

const SUMMARY: Record<string, string> = {
  keyring_locked: 'Your keyring is locked. Unlock it, then try again.',
  keyring_unavailable: 'No keyring service is running, so Tokenkeep can’t reach its key.',
  key_missing: 'The key for this vault is missing from your keyring.',
  wrong_key: 'The key in your keyring does not open this vault.',
  store_locked: 'Another Tokenkeep is using this profile.',
  store_damaged: 'Tokenkeep’s data is damaged; nothing was changed, and a backup can restore it.',
  store_missing: 'Tokenkeep’s data is missing; a backup can restore it.',
  store: 'Tokenkeep could not read or write its data folder.',
  provider_unreachable: 'Couldn’t reach the platform. Check your internet connection and try again.',
  provider_rejected: 'The platform refused the request.',
  declined: 'You declined — nothing was connected.',
  timeout: 'Timed out — nothing was connected.',
  cancelled: 'Cancelled — nothing was connected.',
  busy: 'Another sign-in is already in progress. Finish or cancel it first.',
  needs_reconnect: 'This account has to be reconnected: the platform no longer accepts its tokens.',
  not_found: 'That item no longer exists — it may have been removed already.',
  invalid: 'Some of the details are not valid.',
  internal: 'Something went wrong inside Tokenkeep.',
  [FRONTEND_ERROR_CODES.noTauri]: 'This page is not running inside the Tokenkeep app.',
  [FRONTEND_ERROR_CODES.unknown]: 'Something unexpected went wrong.',
};

function norm(s: string): string {
  return s.trim().replace(/[.!]+$/, '').toLowerCase();
}

/** Words for any error a command rejected with. */
export function describeError(err: unknown): ErrorWords {
  const e = err instanceof AppError ? err : null;
  const code = e?.code ?? FRONTEND_ERROR_CODES.unknown;
  const summary = SUMMARY[code] ?? SUMMARY[FRONTEND_ERROR_CODES.unknown]!;
  const message = e?.message.trim() ?? '';
  const detail = message === '' || norm(message) === norm(summary) ? null : message;
  return { summary, detail, code };
}

/** Summary and detail in one line, for compact inline errors. */
export function errorLine(err: unknown): string {
  const w = describeError(err);
  return w.detail === null ? w.summary : `${w.summary} ${w.detail}`;
}

export interface VaultProblem {
  title: string;
  /** What to do, in plain words. */
  text: string;
  /** The backend's message. */
  detail: string | null;
  code: string;
  /** Whether Retry is offered: not when nothing the app can do changes the outcome (TOKENKEEP_MASTER_KEY). */
  retry: boolean;
  /** Said when the app watches for the keyring and opens the vault by itself. */
  watching: string | null;
}

type Words = { title: string; text: string };

/** `stored`: this profile has a store (accounts may be at stake); `fresh`: a first run, nothing to lose yet. */
const KEYRING_TEXT: Record<'keyring_locked' | 'keyring_unavailable', { stored: Words; fresh: Words }> = {
  keyring_locked: {
    stored: {
      title: 'Unlock your keyring to continue',
      text:
        'Your connections are safe on disk, but the key that opens them is in your keyring, which is locked. ' +
        'Unlock it (for example by logging in to your desktop session, or in your keyring app).',
    },
    fresh: {
      title: 'Unlock your keyring to start',
      text:
        'Tokenkeep keeps the key that protects your tokens in your keyring, which is locked. You have no ' +
        'connections yet, so nothing is at stake: unlock the keyring and Tokenkeep sets itself up.',
    },
  },
  keyring_unavailable: {
    stored: {
      title: 'No keyring service',
      text:
        'Your connections are safe on disk, but the key that opens them is in your keyring, and no keyring ' +
        'service is running in this session. Start it (GNOME Keyring or KWallet, usually part of your desktop ' +
        'session).',
    },
    fresh: {
      title: 'Tokenkeep needs a keyring',
      text:
        'Tokenkeep keeps the key that protects your tokens in your desktop’s keyring (the Secret Service), and ' +
        'none is running in this session. You have no connections yet, so nothing is at stake: start a keyring ' +
        '(GNOME Keyring or KWallet, usually part of the desktop) and Tokenkeep sets itself up.',
    },
  },
};

/** Headless (TOKENKEEP_MASTER_KEY): the variable is the source, and only a new start reads it again. */
const HEADLESS_TEXT: Record<string, Words> = {
  wrong_key: {
    title: 'TOKENKEEP_MASTER_KEY doesn’t open this vault',
    text:
      'Tokenkeep was started with TOKENKEEP_MASTER_KEY, and that key is not the one this vault was sealed with. ' +
      'Nothing was changed. Quit Tokenkeep, set the variable to this vault’s key (or unset it to use your ' +
      'keyring), and start Tokenkeep again.',
  },
  invalid: {
    title: 'TOKENKEEP_MASTER_KEY is not a key',
    text:
      'Tokenkeep was started with TOKENKEEP_MASTER_KEY, but it does not hold a key (base64 of 32 bytes). Nothing ' +
      'was changed. Quit Tokenkeep, fix or unset the variable, and start Tokenkeep again.',
  },
  key_missing: {
    title: 'TOKENKEEP_MASTER_KEY doesn’t open this vault',
    text:
      'Tokenkeep was started with TOKENKEEP_MASTER_KEY, which cannot open this vault. Nothing was changed. Quit ' +
      'Tokenkeep, set the variable to this vault’s key (or unset it to use your keyring), and start it again.',
  },
};

const VAULT_TEXT: Record<string, Words> = {
  key_missing: {
    title: 'The vault key is missing',
    text:
      'The key that opens this vault is not in your keyring. If you exported it, Import key puts it back and opens ' +
      'the vault; if you moved or restored your keyring, put it back there, then Retry. Without it the saved ' +
      'tokens can’t be opened.',
  },
  wrong_key: {
    title: 'The key doesn’t fit this vault',
    text:
      'The key in your keyring does not open this vault — it may belong to another installation or profile. ' +
      'Nothing has been changed. If you exported this vault’s key, Import key puts it back and opens the vault.',
  },
  store_locked: {
    title: 'This profile is in use',
    text:
      'Another Tokenkeep is using this profile (perhaps a second window or the command-line tool). ' +
      'Close it, then Retry.',
  },
  store_damaged: {
    title: 'Your vault is damaged — a backup can restore it',
    text:
      'Part of the vault’s data on disk is damaged, so it was not opened. Nothing was changed. Restore from ' +
      'backup brings back every account as of the last change (the damaged data is kept aside).',
  },
  store_missing: {
    title: 'Your vault is missing — a backup can restore it',
    text:
      'This profile had a vault, but its data folder is missing or empty. Tokenkeep will not start a new, empty ' +
      'vault in its place. Restore from backup brings your accounts back.',
  },
  store: {
    title: 'Tokenkeep can’t open its data',
    text:
      'Tokenkeep could not open its data folder. Check that the disk is not full and the folder is readable, then Retry.',
  },
};

/** Whether a closed vault can be restored from a backup (the banner offers it). */
export function canRestore(error: CommandError | null | undefined): boolean {
  return error?.code === 'store_damaged' || error?.code === 'store_missing';
}

/** The banner shown while `vault_status` is not ready: words for *this* store and key source. */
export function vaultProblem(
  v: Pick<VaultStatus, 'error' | 'headless' | 'retryable' | 'watching' | 'storeExists'>,
): VaultProblem {
  const error = v.error;
  const code = error?.code ?? 'internal';
  const keyring = code === 'keyring_locked' || code === 'keyring_unavailable' ? KEYRING_TEXT[code] : null;
  const words: Words =
    (keyring !== null ? (v.storeExists === false ? keyring.fresh : keyring.stored) : null) ??
    (v.headless ? HEADLESS_TEXT[code] : undefined) ??
    VAULT_TEXT[code] ?? {
      title: 'Your vault is not open',
      text: 'Tokenkeep could not open your vault. Retry; if it keeps failing, the details below may help.',
    };
  const message = error?.message?.trim() ?? '';
  const watching =
    v.watching === true
      ? code === 'keyring_locked'
        ? 'Tokenkeep opens your vault by itself once the keyring is unlocked.'
        : 'Tokenkeep continues by itself as soon as a keyring is running.'
      : null;
  return { ...words, detail: message === '' ? null : message, code, retry: v.retryable !== false, watching };
}

/** "a1b2c3d4e5…" → "a1b2c3d4" (8 hex digits are plenty to tell keys apart). */
export function shortKeyId(keyId: string | null | undefined): string | null {
  if (!keyId) return null;
  const k = keyId.trim();
  return k === '' ? null : k.slice(0, 8);
}

export interface VaultIndicator {
  text: string;
  tone: 'ok' | 'bad' | 'pending';
  description: string;
}

/** The small "Vault" indicator in the header. */
export function vaultIndicator(
  v: { ready: boolean; keyId?: string | null; headless: boolean } | null,
): VaultIndicator {
  if (v === null) return { text: 'Vault…', tone: 'pending', description: 'Opening the vault.' };
  const where = v.headless
    ? 'headless: the key comes from TOKENKEEP_MASTER_KEY, not the keyring'
    : 'the key is kept in your system keyring';
  if (!v.ready) {
    return {
      text: v.headless ? 'Vault closed · headless' : 'Vault closed',
      tone: 'bad',
      description: `The vault is not open (${where}).`,
    };
  }
  const key = shortKeyId(v.keyId);
  const keyText = key === null ? '' : ` · key ${key}`;
  return {
    text: `Vault${keyText}${v.headless ? ' · headless' : ''}`,
    tone: 'ok',
    description: `The vault is open${key === null ? '' : ` with key ${v.keyId}`}; ${where}.`,
  };
}
