// The connection list and the events that change it. Pure reducer.

import type { Connection } from '../api';
import { markFor } from './marks';

export type ConnectionsAction =
  | { type: 'loaded'; connections: Connection[] }
  | { type: 'status'; connection: Connection }
  | { type: 'removed'; id: string };

/** Connections that need the person (or cannot be read) come first: "0", the rest "1". */
function rank(c: Connection): string {
  if (c.damaged) return '0';
  return c.status === 'needs_reconnect' || c.status === 'interrupted' || c.status === 'error' ? '0' : '1';
}

function key(c: Connection): string {
  return `${rank(c)}\u0000${(c.providerName || c.provider || '').toLowerCase()}\u0000${(c.account || '').toLowerCase()}\u0000${c.id}`;
}

/** Whether a connection needs the person (or cannot be read). */
export function isProblem(c: Connection): boolean {
  return rank(c) === '0';
}

/** Problems first, then a stable order: provider name, then account (case-insensitive), then id. */
export function sortConnections(list: readonly Connection[]): Connection[] {
  return [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function sameConnection(a: Connection, b: Connection): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Applies a load, a `connection-status` event (insert or replace by id) or a
 * `connection-removed` event. Returns the same array when nothing changed.
 */
export function connectionsReducer(
  state: readonly Connection[],
  action: ConnectionsAction,
): readonly Connection[] {
  switch (action.type) {
    case 'loaded': {
      const byId = new Map<string, Connection>();
      for (const c of action.connections) byId.set(c.id, c);
      return sortConnections([...byId.values()]);
    }
    case 'status': {
      const c = action.connection;
      const i = state.findIndex((x) => x.id === c.id);
      if (i >= 0 && sameConnection(state[i]!, c)) return state;
      const next = i >= 0 ? state.map((x, j) => (j === i ? c : x)) : [...state, c];
      return sortConnections(next);
    }
    case 'removed': {
      if (!state.some((x) => x.id === action.id)) return state;
      return state.filter((x) => x.id !== action.id);
    }
  }
}

/** "3 accounts" / "1 account". */
export function accountCountText(n: number): string {
  return n === 1 ? '1 account' : `${n} accounts`;
}

/** Scope chips: the first `max` shown, the rest counted ("+3 more"). */
export function scopeChips(
  scopes: readonly string[],
  max = 4,
): { shown: string[]; hidden: string[] } {
  if (scopes.length <= max + 1) return { shown: [...scopes], hidden: [] };
  return { shown: scopes.slice(0, max), hidden: scopes.slice(max) };
}

/** Short label for a scope: URL scopes by their last path segment ("youtube.readonly"). */
export function scopeLabel(scope: string): string {
  if (/^https?:\/\//i.test(scope)) {
    const last = scope.replace(/\/+$/, '').split('/').pop();
    if (last) return last;
  }
  return scope;
}

/** Picks one of `n` colour slots for a provider's letter mark, stable per id. */
export function colourSlot(id: string, n = 6): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % n;
}

/** Names to show for a connection; an unreadable record has only its id. */
export function displayNames(c: Pick<Connection, 'id' | 'provider' | 'providerName' | 'account' | 'damaged'>): {
  provider: string;
  account: string;
} {
  const provider = c.providerName || c.provider || (c.damaged ? 'Unreadable record' : 'Unknown platform');
  const account = c.account || (c.damaged ? `record ${String(c.id).slice(0, 8)}` : 'unknown account');
  return { provider, account };
}

/** Whether `c` matches the list filter: every word of `query` in its platform or account name (any case). */
export function matchesFilter(c: Pick<Connection, 'provider' | 'providerName' | 'account'>, query: string): boolean {
  const words = query.trim().toLowerCase().split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) return true;
  const hay = `${c.providerName} ${c.provider} ${c.account}`.toLowerCase();
  return words.every((w) => hay.includes(w));
}

/** How the list is laid out: one list, problems first; or a section per platform. */
export type Grouping = 'none' | 'platform';

export interface Group {
  /** Stable across renders: the platform (or, for a custom provider, the provider id); `''` for one list. */
  key: string;
  /** The heading ("YouTube"); empty for one list. */
  title: string;
  items: Connection[];
  /** How many of `items` need the person. */
  problems: number;
}

/**
 * `sorted` (see `sortConnections`) laid out by `grouping`. By platform: one group per platform — every Mastodon
 * server, both Instagram logins under one — named as people know it, groups in name order, each keeping the
 * problems-first order inside; unreadable records last, in their own group.
 */
export function groupConnections(sorted: readonly Connection[], grouping: Grouping): Group[] {
  if (grouping === 'none') {
    return [{ key: '', title: '', items: [...sorted], problems: sorted.filter(isProblem).length }];
  }
  const groups = new Map<string, Group>();
  for (const c of sorted) {
    const key = c.damaged ? '~damaged' : c.platform ? `p:${c.platform}` : `c:${c.provider}`;
    let g = groups.get(key);
    if (!g) {
      const title = c.damaged ? 'Unreadable records' : (markFor(c.platform)?.label ?? (c.providerName || c.provider));
      g = { key, title, items: [], problems: 0 };
      groups.set(key, g);
    }
    g.items.push(c);
    if (isProblem(c)) g.problems += 1;
  }
  return [...groups.values()].sort((a, b) => {
    if ((a.key === '~damaged') !== (b.key === '~damaged')) return a.key === '~damaged' ? 1 : -1;
    const t = a.title.localeCompare(b.title, undefined, { sensitivity: 'base' });
    return t !== 0 ? t : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  });
}
