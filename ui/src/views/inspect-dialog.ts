// "Inspect": what is stored for a connection, read offline. Tokens stay hidden unless revealed, for 30 s.

import type { Backend, Connection, Inspection, TokenInfo, TokenKind } from '../api';
import { describeError, errorLine } from '../model/errors';
import { claimRows, tokenPresenceText } from '../model/inspect';
import { hideCountdownText, HIDDEN, revealReducer, tokenKindName, type RevealEvent, type RevealState } from '../model/reveal';
import { derivePill } from '../model/status';
import { scopeLabel } from '../model/connections';
import { expiryText, nowSeconds, relativeText } from '../model/time';
import { TID, revealId } from '../testids';
import { button, el, setModifier } from './dom';
import { openModal } from './dialog';

const dateText = (s: number): string => new Date(s * 1000).toLocaleString();
const when = (s: number | null | undefined, now: number): string =>
  typeof s === 'number' ? `${dateText(s)} (${relativeText(s, now)})` : '—';

function row(label: string, value: Node | string): HTMLElement[] {
  return [el('dt', { text: label }), el('dd', {}, [value])];
}

export function openInspectDialog(c: Connection, backend: Backend): void {
  const provider = c.providerName || c.provider;
  let reveal: RevealState = HIDDEN;
  let requestSeq = 0;
  let timer: number | null = null;
  const slots = new Map<TokenKind, { slot: HTMLElement; button: HTMLButtonElement }>();

  const modal = openModal({
    title: `${provider} · ${c.account}`,
    testid: TID.inspectDialog,
    variant: 'drawer',
    onClose: () => {
      // Hide at once: drop the value and its DOM node.
      dispatch({ type: 'hide' });
      slots.clear();
    },
  });
  modal.body.append(
    el('p', { class: 'modal-intro', text: `Read from this computer only — nothing is sent to ${provider}.` }),
    el('p', { class: 'muted', text: 'Loading…', attrs: { role: 'status' } }),
  );

  function dispatch(ev: RevealEvent): void {
    const before = reveal;
    reveal = revealReducer(reveal, ev);
    if (reveal.phase === 'shown' && timer === null) {
      timer = window.setInterval(() => dispatch({ type: 'tick', now: Date.now() }), 250);
    }
    if (reveal.phase !== 'shown' && timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
    if (before !== reveal || ev.type === 'tick') renderReveal(before);
  }

  function renderReveal(before: RevealState): void {
    for (const [kind, { slot, button: btn }] of slots) {
      const mine = reveal.phase !== 'hidden' && reveal.kind === kind;
      if (!mine) {
        if (slot.childElementCount > 0) slot.replaceChildren();
        btn.disabled = reveal.phase === 'loading';
        btn.textContent = 'Reveal';
        continue;
      }
      if (reveal.phase === 'loading') {
        btn.disabled = true;
        btn.textContent = 'Revealing…';
        slot.replaceChildren();
      } else if (reveal.phase === 'failed') {
        btn.disabled = false;
        btn.textContent = 'Reveal';
        slot.replaceChildren(el('p', { class: 'inline-error', text: reveal.message, attrs: { role: 'alert' } }));
      } else if (reveal.phase === 'shown') {
        btn.disabled = true;
        btn.textContent = 'Shown';
        const countdown = hideCountdownText(reveal, Date.now());
        const existing = slot.querySelector<HTMLElement>(`[data-testid="${TID.revealCountdown}"]`);
        if (before.phase === 'shown' && before.kind === kind && existing) {
          if (existing.textContent !== countdown) existing.textContent = countdown;
          continue;
        }
        const status = el('span', { class: 'copy-status', attrs: { role: 'status' } });
        const copy = button('Copy', { small: true, testid: TID.revealCopy, attrs: { 'aria-label': `Copy the ${tokenKindName(kind).toLowerCase()}` } }, () => {
          if (reveal.phase !== 'shown' || reveal.kind !== kind) return;
          copyToken(kind, status);
        });
        const hide = button('Hide now', { small: true, variant: 'ghost', testid: TID.revealHide }, () => {
          dispatch({ type: 'hide' });
          btn.focus();
        });
        slot.replaceChildren(
          el('div', { class: 'reveal-box' }, [
            el('pre', { class: 'secret', text: reveal.value, testid: TID.revealedValue, attrs: { 'aria-label': tokenKindName(kind), tabindex: '0' } }),
            el('div', { class: 'reveal-bar' }, [
              el('span', { class: 'reveal-countdown', text: countdown, testid: TID.revealCountdown, attrs: { 'aria-hidden': 'true' } }),
              el('span', { class: 'visually-hidden', attrs: { role: 'status' }, text: `${tokenKindName(kind)} shown for 30 seconds.` }),
              status,
              copy,
              hide,
            ]),
          ]),
        );
        copy.focus();
      }
    }
  }

  /** Copies from Rust (the value does not pass through this page), cleared after a while: see the notice. */
  function copyToken(kind: TokenKind, status: HTMLElement): void {
    status.textContent = '';
    backend.copyToken(c.id, kind).then(
      () => {
        status.textContent = 'Copied';
      },
      (err) => {
        status.textContent = `Copy failed: ${errorLine(err)}`;
      },
    );
  }

  function tokenSection(t: TokenInfo): HTMLElement {
    const name = tokenKindName(t.kind);
    const presence = el('span', { class: `token-presence ${t.present ? 'is-present' : 'is-absent'}`, text: tokenPresenceText(t) });
    const slot = el('div', { class: 'reveal-slot' });
    const revealBtn = button('Reveal', {
      small: true,
      testid: revealId(t.kind),
      attrs: { 'aria-label': `Reveal the ${name.toLowerCase()} for 30 seconds` },
    }, () => {
      requestSeq += 1;
      const requestId = requestSeq;
      dispatch({ type: 'request', kind: t.kind, requestId });
      backend.reveal(c.id, t.kind).then(
        (r) => dispatch({ type: 'loaded', requestId, value: r.value, now: Date.now() }),
        (err) => dispatch({ type: 'failed', requestId, message: errorLine(err) }),
      );
    });
    revealBtn.hidden = !t.present;
    const copied = el('span', { class: 'copy-status', attrs: { role: 'status' } });
    const copyBtn = button('Copy', {
      small: true,
      testid: TID.tokenCopy,
      attrs: { 'aria-label': `Copy the ${name.toLowerCase()} without showing it` },
    }, () => copyToken(t.kind, copied));
    copyBtn.hidden = !t.present;
    slots.set(t.kind, { slot, button: revealBtn });
    const section = el('li', { class: 'token', testid: TID.tokenRow }, [
      el('div', { class: 'token-line' }, [el('span', { class: 'token-name', text: name }), presence, copied, copyBtn, revealBtn]),
      slot,
    ]);
    section.dataset.kind = t.kind;
    section.dataset.present = String(t.present);
    return section;
  }

  function jwtSection(t: TokenInfo, now: number): HTMLElement | null {
    if (!t.jwt) return null;
    const rows = claimRows(t.jwt.claims, now, dateText);
    const headerRows = claimRows(t.jwt.header, now, dateText);
    const dl = el('dl', { class: 'kv kv--claims', testid: TID.jwtClaims });
    dl.dataset.kind = t.kind;
    for (const r of rows) dl.append(...row(r.key, el('span', { class: 'claim-value', text: r.value })));
    return el('section', { class: 'inspect-section' }, [
      el('h3', { class: 'section-title', text: `${tokenKindName(t.kind)} claims` }),
      el('p', { class: 'field-hint', text: 'Decoded from the stored token. The signature is not checked here.' }),
      dl,
      headerRows.length === 0
        ? null
        : el('details', { class: 'jwt-header' }, [
            el('summary', { text: 'Token header' }),
            el('dl', { class: 'kv kv--claims' }, headerRows.flatMap((r) => row(r.key, r.value))),
          ]),
    ]);
  }

  /** How scripts use this connection without holding its token: the command line, to select or copy. */
  function scriptsSection(command: string): HTMLElement {
    const status = el('span', { class: 'copy-status', attrs: { role: 'status' } });
    const copy = button('Copy', { small: true, testid: TID.apiCommandCopy, attrs: { 'aria-label': 'Copy the command line' } }, () => {
      status.textContent = '';
      navigator.clipboard.writeText(command).then(
        () => {
          status.textContent = 'Copied';
        },
        () => {
          status.textContent = 'Select the line and copy it';
        },
      );
    });
    return el('section', { class: 'inspect-section' }, [
      el('h3', { class: 'section-title', text: 'Use it from scripts' }),
      el('p', {
        class: 'field-hint',
        text: `A script can call ${provider}'s API as this account without ever holding its token: Tokenkeep adds the token, refreshed when due, and sends it only to ${provider}'s own hosts.`,
      }),
      el('div', { class: 'command-line' }, [
        el('code', { class: 'selectable', text: command, testid: TID.apiCommand, attrs: { tabindex: '0' } }),
        status,
        copy,
      ]),
      el('p', { class: 'field-hint' }, [el('code', { text: 'tokenkeep api --help' }), ' lists the options: method, headers, fields, --paginate.']),
    ]);
  }

  function render(i: Inspection): void {
    const now = nowSeconds();
    const pill = derivePill(i, now);
    const pillEl = el('span', { class: 'pill', text: pill.text });
    setModifier(pillEl, 'pill', pill.tone);
    const scopes =
      i.scopes.length === 0
        ? '—'
        : el('ul', { class: 'chips' }, i.scopes.map((s) => el('li', { class: 'chip', text: scopeLabel(s), attrs: { title: s } })));
    const details = el('dl', { class: 'kv' }, [
      ...row('Platform', i.providerName || i.provider),
      ...row('Account', i.account),
      ...(i.subject ? row('Subject (account id)', el('code', { class: 'selectable', text: i.subject })) : []),
      ...row('Status', pillEl),
      ...row('Permissions', scopes),
      ...row('Expires', typeof i.expiresAt === 'number' ? `${dateText(i.expiresAt)} (${expiryText(i.expiresAt, now)})` : 'No expiry date'),
      ...row('Last refresh', when(i.lastRefreshAt, now)),
      ...row('Connected', when(i.createdAt, now)),
      ...row('Updated', when(i.updatedAt, now)),
      ...row('Encryption key', el('code', { class: 'selectable', text: i.keyId })),
      ...(i.binding ? row('Tokens', el('span', { class: 'selectable thumbprint', text: capitalized(i.binding), attrs: { 'data-testid': TID.tokenBinding } })) : []),
      ...(i.lastError ? row('Last problem', i.lastError) : []),
    ]);
    const tokens = el('ul', { class: 'tokens' }, i.tokens.map(tokenSection));
    modal.body.replaceChildren(
      el('p', { class: 'modal-intro', text: `Read from this computer only — nothing is sent to ${provider}.` }),
      el('section', { class: 'inspect-section' }, [el('h3', { class: 'section-title', text: 'Details' }), details]),
      el('section', { class: 'inspect-section' }, [
        el('h3', { class: 'section-title', text: 'Stored tokens' }),
        el('p', {
          class: 'warning-note',
          text: i.binding
            ? `These tokens are bound to a key that never leaves Tokenkeep: a copy is refused by ${provider} without a proof from that key. Reveal one only when nobody can see your screen; it hides again after 30 seconds.`
            : `Anyone who has a token can act as you on ${provider}. Reveal one only when nobody can see your screen; it hides again after 30 seconds. A copied token is cleared from the clipboard after a while.`,
        }),
        tokens,
      ]),
      ...(i.apiCommand ? [scriptsSection(i.apiCommand)] : []),
      ...i.tokens.map((t) => jwtSection(t, now)).filter((x): x is HTMLElement => x !== null),
    );
    modal.dialog.querySelector<HTMLElement>('.icon-btn')?.focus();
  }

  backend.inspect(c.id).then(
    (i) => {
      if (modal.dialog.isConnected) render(i);
    },
    (err) => {
      if (!modal.dialog.isConnected) return;
      const w = describeError(err);
      modal.body.replaceChildren(
        el('div', { class: 'inline-error-box', attrs: { role: 'alert' } }, [
          el('p', { text: `Could not read this connection. ${w.summary}` }),
          w.detail === null ? null : el('p', { class: 'field-hint', text: w.detail }),
        ]),
      );
    },
  );
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
