// The "Reveal" state machine: one token at a time, shown for 30 s, then gone. Pure.
//
// The value lives only in a `shown` state. Every transition away from `shown`
// returns a new state object without it, so once the caller drops the old
// state nothing in Tokenkeep's JS refers to the value any more. A `requestId`
// ties a `reveal` answer to the request: an answer that arrives after the
// dialog was closed (or another token was requested) is dropped unseen.

import type { TokenKind } from '../api';

export const REVEAL_MS = 30_000;

export type RevealState =
  | { phase: 'hidden' }
  | { phase: 'loading'; kind: TokenKind; requestId: number }
  | { phase: 'shown'; kind: TokenKind; requestId: number; value: string; hideAt: number }
  | { phase: 'failed'; kind: TokenKind; message: string };

export type RevealEvent =
  | { type: 'request'; kind: TokenKind; requestId: number }
  | { type: 'loaded'; requestId: number; value: string; now: number }
  | { type: 'failed'; requestId: number; message: string }
  | { type: 'tick'; now: number }
  | { type: 'hide' };

export const HIDDEN: RevealState = Object.freeze({ phase: 'hidden' });

export function revealReducer(state: RevealState, ev: RevealEvent): RevealState {
  switch (ev.type) {
    case 'request':
      return { phase: 'loading', kind: ev.kind, requestId: ev.requestId };
    case 'loaded':
      if (state.phase !== 'loading' || state.requestId !== ev.requestId) return state;
      return {
        phase: 'shown',
        kind: state.kind,
        requestId: ev.requestId,
        value: ev.value,
        hideAt: ev.now + REVEAL_MS,
      };
    case 'failed':
      if (state.phase !== 'loading' || state.requestId !== ev.requestId) return state;
      return { phase: 'failed', kind: state.kind, message: ev.message };
    case 'tick':
      if (state.phase === 'shown' && ev.now >= state.hideAt) return HIDDEN;
      return state;
    case 'hide':
      return HIDDEN;
  }
}

/** Whole seconds left before the value hides again (0 when not shown). */
export function secondsLeft(state: RevealState, now: number): number {
  if (state.phase !== 'shown') return 0;
  return Math.max(0, Math.ceil((state.hideAt - now) / 1000));
}

/** "Hides in 27 s". */
export function hideCountdownText(state: RevealState, now: number): string {
  return `Hides in ${secondsLeft(state, now)} s`;
}

/** Human name of a token kind. */
export function tokenKindName(kind: TokenKind): string {
  switch (kind) {
    case 'access_token':
      return 'Access token';
    case 'refresh_token':
      return 'Refresh token';
    case 'id_token':
      return 'ID token';
  }
}
