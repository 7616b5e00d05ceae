// "Disconnected — still revoking": one row per account whose revocation is pending, with "Try now" and "Delete
// now". Built once and updated in place, row by row (keyed by connection), so focus survives events and ticks.

import type { Connection } from '../api';
import { displayNames } from '../model/connections';
import { revocationText } from '../model/revocations';
import { TID } from '../testids';
import { button, copyableText, el, setAttr, setHidden, setText } from './dom';

export interface RevocationHandlers {
  retry(c: Connection): void;
  deleteNow(c: Connection): void;
}

export interface RevocationExtras {
  busy: ReadonlySet<string>;
  errors: ReadonlyMap<string, string>;
}

/** Renders `pending` into `region` (its section appears with the first and goes with the last). */
export function renderRevocations(
  region: HTMLElement,
  pending: readonly Connection[],
  now: number,
  handlers: RevocationHandlers,
  extras: RevocationExtras,
  focusAfterRemoval: () => HTMLElement | null,
): void {
  let box = region.querySelector<HTMLElement>('section.revocations');
  if (pending.length === 0) {
    if (box?.contains(document.activeElement)) focusAfterRemoval()?.focus();
    box?.remove();
    return;
  }
  if (box === null) {
    box = el('section', { class: 'revocations', testid: TID.revocations, attrs: { 'aria-labelledby': 'revocations-title' } }, [
      el('h2', { class: 'revocations-title', text: 'Disconnected — still revoking access', attrs: { id: 'revocations-title' } }),
      el('p', {
        class: 'revocations-sub',
        text: 'These accounts are no longer used. Tokenkeep keeps only what revoking needs, encrypted, until the platform confirms.',
      }),
      el('ul', { class: 'revocation-list' }),
    ]);
    region.append(box);
  }
  latest.clear();
  for (const c of pending) latest.set(c.id, c);
  const list = box.querySelector<HTMLElement>('.revocation-list')!;
  const rows = new Map<string, HTMLElement>();
  for (const row of list.querySelectorAll<HTMLElement>(':scope > li')) rows.set(row.dataset.connectionId ?? '', row);
  const wanted = new Set(pending.map((c) => c.id));
  for (const [id, row] of rows) {
    if (wanted.has(id)) continue;
    const hadFocus = row.contains(document.activeElement);
    row.remove();
    if (hadFocus) focusAfterRemoval()?.focus();
  }
  let prev: Element | null = null;
  for (const c of pending) {
    let row = rows.get(c.id);
    if (!row) {
      row = el('li', { class: 'revocation', testid: TID.revocation }, [
        el('p', { class: 'revocation-text' }, [el('strong', { class: 'revocation-who' }), el('span', { class: 'revocation-what' })]),
        el('div', { class: 'revocation-manage' }),
        el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true }),
        el('div', { class: 'revocation-actions' }, [
          button('Try now', { small: true, testid: TID.revocationRetry, class: 'revocation-retry' }, () => handlers.retry(latest.get(c.id) ?? c)),
          button('Delete now', { small: true, variant: 'ghost', testid: TID.revocationDelete, class: 'revocation-delete' }, () =>
            handlers.deleteNow(latest.get(c.id) ?? c),
          ),
        ]),
      ]);
      row.dataset.connectionId = c.id;
    }
    const names = displayNames(c);
    const busy = extras.busy.has(c.id);
    setText(row.querySelector('.revocation-who')!, `${names.provider} · ${names.account}: `);
    setText(row.querySelector('.revocation-what')!, revocationText(c, now, busy));
    const manage = row.querySelector<HTMLElement>('.revocation-manage')!;
    const url = c.revocation?.manageUrl ?? null;
    if ((manage.dataset.url ?? null) !== url) {
      manage.dataset.url = url ?? '';
      manage.replaceChildren(
        ...(url
          ? [el('span', { class: 'field-label', text: `Revoke by hand at ${names.provider}:` }), copyableText(url, TID.manageUrl, `${names.provider} address`)]
          : []),
      );
    }
    const error = row.querySelector<HTMLElement>('.inline-error')!;
    const said = extras.errors.get(c.id) ?? null;
    setHidden(error, said === null);
    setText(error, said ?? '');
    const retry = row.querySelector<HTMLButtonElement>('.revocation-retry')!;
    const del = row.querySelector<HTMLButtonElement>('.revocation-delete')!;
    retry.disabled = busy;
    del.disabled = busy;
    setText(retry, busy ? 'Trying…' : 'Try now');
    setAttr(retry, 'aria-label', `Try now to revoke ${names.provider}, ${names.account}`);
    setAttr(del, 'aria-label', `Delete ${names.provider}, ${names.account} now without revoking`);
    const expected: Element | null = prev === null ? list.firstElementChild : prev.nextElementSibling;
    if (expected !== row) {
      if (prev === null) list.prepend(row);
      else prev.after(row);
    }
    prev = row;
  }
}

/** The newest state of each row's connection, for its buttons (rows outlive the arrays they were built from). */
const latest = new Map<string, Connection>();
