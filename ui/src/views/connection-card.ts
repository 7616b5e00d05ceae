// One connection card. Built once per id, then updated in place so focus and selection survive events.

import type { Connection } from '../api';
import { colourSlot, displayNames, scopeChips, scopeLabel } from '../model/connections';
import { canRefresh, derivePill, needsReconnect } from '../model/status';
import { capitalise, expiryText, lastRefreshText } from '../model/time';
import { TID } from '../testids';
import { button, byTestId, el, nextId, setModifier, setText } from './dom';

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
}

function absolute(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString();
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
  const lastError = el('p', { class: 'conn-last-error', testid: TID.lastError, hidden: true });
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

  card.append(head, el('div', { class: 'conn-body' }, [times, meaning, scopes, lastError, cardError, actions]));

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

/** Brings a card up to date with the connection, the clock and any running action. */
export function updateCard(card: HTMLElement, c: Connection, now: number, extras: CardExtras): void {
  card.dispatchEvent(new CustomEvent('tk-update', { detail: c }));
  const pill = derivePill(c, now);
  card.dataset.status = c.status;
  card.dataset.pill = pill.kind;

  const q = (id: string): HTMLElement => byTestId(card, id)!;
  const { provider: providerName, account } = displayNames(c);

  const mark = card.querySelector<HTMLElement>('.avatar')!;
  setText(mark, c.damaged ? '?' : providerName.trim().charAt(0).toUpperCase() || '?');
  setModifier(mark, 'avatar', `c${colourSlot(c.provider || providerName)}`);
  setText(q(TID.providerName), providerName);
  setText(q(TID.accountName), account);

  const pillEl = q(TID.statusPill);
  setText(pillEl, pill.text);
  setModifier(pillEl, 'pill', pill.tone);
  pillEl.dataset.kind = pill.kind;
  pillEl.title = pill.meaning;

  const times = card.querySelector<HTMLElement>('.conn-times')!;
  times.hidden = Boolean(c.damaged);
  const expiry = q(TID.expiry);
  setText(expiry, capitalise(expiryText(c.expiresAt, now)));
  if (typeof c.expiresAt === 'number') expiry.title = `Expires ${absolute(c.expiresAt)}`;
  else expiry.removeAttribute('title');
  const refreshed = q(TID.lastRefresh);
  setText(refreshed, capitalise(lastRefreshText(c.lastRefreshAt, now)));
  if (typeof c.lastRefreshAt === 'number') refreshed.title = `Last refreshed ${absolute(c.lastRefreshAt)}`;
  else refreshed.removeAttribute('title');

  const meaning = card.querySelector<HTMLElement>('.conn-meaning')!;
  const showMeaning = pill.kind !== 'connected' && pill.kind !== 'refreshing';
  meaning.hidden = !showMeaning;
  setText(meaning, c.damaged ? `${pill.meaning} Reason: ${c.damaged}.` : pill.meaning);

  renderScopes(q(TID.scopes), c.damaged ? [] : c.scopes ?? []);

  const lastError = q(TID.lastError);
  const errText = c.lastError?.trim() ?? '';
  lastError.hidden = errText === '' || Boolean(c.damaged);
  setText(lastError, errText === '' ? '' : `Last problem: ${errText}`);

  const cardError = q(TID.cardError);
  cardError.hidden = extras.error === null;
  setText(cardError, extras.error ?? '');

  const who = `${providerName}, ${account}`;
  const refreshBtn = q(TID.refreshButton) as HTMLButtonElement;
  const refreshing = extras.busy === 'refresh' || c.status === 'refreshing';
  setText(refreshBtn, refreshing ? 'Refreshing…' : 'Refresh now');
  refreshBtn.disabled = refreshing || !canRefresh(c) || extras.busy === 'disconnect';
  refreshBtn.hidden = Boolean(c.damaged);
  refreshBtn.setAttribute('aria-label', `Refresh now: ${who}`);

  const reconnectBtn = q(TID.reconnectButton) as HTMLButtonElement;
  reconnectBtn.hidden = !needsReconnect(c);
  reconnectBtn.disabled = extras.busy !== null;
  reconnectBtn.setAttribute('aria-label', `Reconnect ${who}`);

  const inspectBtn = q(TID.inspectButton) as HTMLButtonElement;
  inspectBtn.hidden = Boolean(c.damaged);
  inspectBtn.setAttribute('aria-label', `Inspect ${who}`);

  const disconnectBtn = q(TID.disconnectButton) as HTMLButtonElement;
  disconnectBtn.disabled = extras.busy === 'disconnect';
  disconnectBtn.setAttribute('aria-label', `Disconnect ${who}`);
}
