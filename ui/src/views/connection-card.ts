// One connection card. Built once per id, then updated in place so focus and selection survive events.

import type { Connection } from '../api';
import { colourSlot, displayNames, scopeChips, scopeLabel } from '../model/connections';
import { canRefresh, cardMessage, derivePill, isDead, needsReconnect } from '../model/status';
import { capitalise, expiryText, lastRefreshText } from '../model/time';
import { TID } from '../testids';
import { button, byTestId, el, nextId, setAttr, setHidden, setModifier, setText } from './dom';
import { setAvatar } from './mark';

export interface CardHandlers {
  refresh(c: Connection): void;
  reconnect(c: Connection): void;
  inspect(c: Connection): void;
  disconnect(c: Connection): void;
}

export interface CardExtras {
  /** A command for this card is running. */
  busy: 'refresh' | 'disconnect' | null;
  /** An inline error from the last action on this card. */
  error: string | null;
  /** A short confirmation of the last action ("Refreshed"), shown for a few seconds. */
  note: string | null;
  /** The account picture, once loaded (the connection's `picture` names its tag). */
  picture?: { tag: string; dataUrl: string } | null | undefined;
}

// One formatter for every card: making one per call is the costly part of `toLocaleString`.
const ABSOLUTE = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });

function absolute(seconds: number): string {
  return ABSOLUTE.format(new Date(seconds * 1000));
}

export function createCard(c: Connection, handlers: CardHandlers): HTMLElement {
  const titleId = nextId('conn-title');
  let current = c;
  const card = el('article', {
    class: 'conn',
    testid: TID.connectionCard,
    attrs: { 'aria-labelledby': titleId },
  });
  card.dataset.connectionId = c.id;
  card.dataset.provider = c.provider;

  const mark = el('div', { class: 'avatar', attrs: { 'aria-hidden': 'true' } });
  const title = el('h3', { class: 'conn-title', attrs: { id: titleId } }, [
    el('span', { class: 'conn-provider', testid: TID.providerName }),
    el('span', { class: 'visually-hidden', text: ', ' }),
    el('span', { class: 'conn-account', testid: TID.accountName }),
  ]);
  const pill = el('span', { class: 'pill', testid: TID.statusPill });
  const head = el('div', { class: 'conn-head' }, [mark, title, pill]);

  const times = el('p', { class: 'conn-times' }, [
    el('span', { class: 'conn-expiry', testid: TID.expiry }),
    el('span', { class: 'dot', text: '·', attrs: { 'aria-hidden': 'true' } }),
    el('span', { class: 'conn-refreshed', testid: TID.lastRefresh }),
  ]);
  const meaning = el('p', { class: 'conn-meaning' });
  const scopes = el('div', { class: 'scopes', testid: TID.scopes });
  const note = el('p', { class: 'conn-note', testid: TID.cardNote, attrs: { role: 'status' }, hidden: true });
  const cardError = el('p', {
    class: 'inline-error',
    testid: TID.cardError,
    attrs: { role: 'alert' },
    hidden: true,
  });

  const refreshBtn = button('Refresh now', { testid: TID.refreshButton, small: true }, () =>
    handlers.refresh(current),
  );
  const reconnectBtn = button('Reconnect', { testid: TID.reconnectButton, small: true, variant: 'primary' }, () =>
    handlers.reconnect(current),
  );
  const inspectBtn = button('Inspect', { testid: TID.inspectButton, small: true }, () =>
    handlers.inspect(current),
  );
  const disconnectBtn = button('Disconnect', { testid: TID.disconnectButton, small: true, variant: 'danger' }, () =>
    handlers.disconnect(current),
  );
  const actions = el('div', { class: 'conn-actions' }, [reconnectBtn, refreshBtn, inspectBtn, disconnectBtn]);

  card.append(head, el('div', { class: 'conn-body' }, [times, meaning, scopes, note, cardError, actions]));

  // Keep `current` in step with updates for the handlers.
  card.addEventListener('tk-update', (ev) => {
    current = (ev as CustomEvent<Connection>).detail;
  });
  return card;
}

function renderScopes(box: HTMLElement, scopes: readonly string[]): void {
  const expanded = box.dataset.expanded === 'true';
  const sig = `${expanded}|${scopes.join(' ')}`;
  if (box.dataset.sig === sig) return;
  box.dataset.sig = sig;
  box.replaceChildren();
  if (scopes.length === 0) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const { shown, hidden } = scopeChips(scopes);
  const visible = expanded ? [...shown, ...hidden] : shown;
  const list = el('ul', { class: 'chips', attrs: { 'aria-label': 'Permissions (scopes)' } });
  for (const s of visible) {
    list.append(el('li', { class: 'chip', text: scopeLabel(s), attrs: { title: s } }));
  }
  box.append(list);
  if (hidden.length > 0) {
    const more = button(expanded ? 'Show fewer' : `+${hidden.length} more`, {
      class: 'chip-more',
      variant: 'ghost',
      small: true,
      attrs: {
        'aria-expanded': String(expanded),
        'aria-label': expanded ? 'Show fewer permissions' : `Show ${hidden.length} more permissions`,
      },
    });
    more.addEventListener('click', () => {
      box.dataset.expanded = String(!expanded);
      renderScopes(box, scopes);
      box.querySelector<HTMLButtonElement>('.chip-more')?.focus();
    });
    box.append(more);
  }
}

/** Brings a card up to date with the connection, the clock and any running action. Touches only what changed. */
export function updateCard(card: HTMLElement, c: Connection, now: number, extras: CardExtras): void {
  card.dispatchEvent(new CustomEvent('tk-update', { detail: c }));
  const pill = derivePill(c, now);
  if (card.dataset.status !== c.status) card.dataset.status = c.status;
  if (card.dataset.pill !== pill.kind) card.dataset.pill = pill.kind;

  const q = (id: string): HTMLElement => byTestId(card, id)!;
  const { provider: providerName, account } = displayNames(c);

  setAvatar(card.querySelector<HTMLElement>('.avatar')!, {
    platform: c.damaged ? null : c.platform,
    letter: c.damaged ? '?' : providerName.trim().charAt(0).toUpperCase() || '?',
    slot: colourSlot(c.provider || providerName),
    picture: c.picture ? (extras.picture ?? null) : null,
  });
  setText(q(TID.providerName), providerName);
  setText(q(TID.accountName), account);

  const pillEl = q(TID.statusPill);
  setText(pillEl, pill.text);
  setModifier(pillEl, 'pill', pill.tone);
  if (pillEl.dataset.kind !== pill.kind) pillEl.dataset.kind = pill.kind;
  setAttr(pillEl, 'title', pill.meaning);

  // A dead connection's token times mean nothing: the card says what to do instead.
  const times = card.querySelector<HTMLElement>('.conn-times')!;
  setHidden(times, isDead(c));
  const expiry = q(TID.expiry);
  setText(expiry, capitalise(expiryText(c.expiresAt, now)));
  setAttr(expiry, 'title', typeof c.expiresAt === 'number' ? `Expires ${absolute(c.expiresAt)}` : null);
  const refreshed = q(TID.lastRefresh);
  setText(refreshed, capitalise(lastRefreshText(c.lastRefreshAt, now)));
  setAttr(refreshed, 'title', typeof c.lastRefreshAt === 'number' ? `Last refreshed ${absolute(c.lastRefreshAt)}` : null);

  // One message: the state in a creator's words (a retry counts down); the platform's codes are in Inspect.
  const meaning = card.querySelector<HTMLElement>('.conn-meaning')!;
  const message = cardMessage(c, now);
  setHidden(meaning, message === null);
  setText(meaning, message ?? '');

  renderScopes(q(TID.scopes), c.damaged ? [] : c.scopes ?? []);

  const note = q(TID.cardNote);
  setHidden(note, extras.note === null);
  setText(note, extras.note ?? '');

  const cardError = q(TID.cardError);
  setHidden(cardError, extras.error === null);
  setText(cardError, extras.error ?? '');

  const who = `${providerName}, ${account}`;
  const refreshBtn = q(TID.refreshButton) as HTMLButtonElement;
  const refreshing = extras.busy === 'refresh' || c.status === 'refreshing';
  setText(refreshBtn, refreshing ? 'Refreshing…' : 'Refresh now');
  const refreshDisabled = refreshing || !canRefresh(c) || extras.busy === 'disconnect';
  if (refreshBtn.disabled !== refreshDisabled) refreshBtn.disabled = refreshDisabled;
  setHidden(refreshBtn, isDead(c));
  setAttr(refreshBtn, 'aria-label', `Refresh now: ${who}`);

  const reconnectBtn = q(TID.reconnectButton) as HTMLButtonElement;
  setHidden(reconnectBtn, !needsReconnect(c));
  if (reconnectBtn.disabled !== (extras.busy !== null)) reconnectBtn.disabled = extras.busy !== null;
  setAttr(reconnectBtn, 'aria-label', `Reconnect ${who}`);

  const inspectBtn = q(TID.inspectButton) as HTMLButtonElement;
  setHidden(inspectBtn, Boolean(c.damaged));
  setAttr(inspectBtn, 'aria-label', `Inspect ${who}`);

  const disconnectBtn = q(TID.disconnectButton) as HTMLButtonElement;
  if (disconnectBtn.disabled !== (extras.busy === 'disconnect')) disconnectBtn.disabled = extras.busy === 'disconnect';
  setAttr(disconnectBtn, 'aria-label', `Disconnect ${who}`);
}
