// "Disconnect?" — confirm, run, then say plainly whether the platform confirmed the revoke.

import type { Backend, Connection, Disconnected } from '../api';
import { displayNames } from '../model/connections';
import { errorLine } from '../model/errors';
import { disconnectOutcome } from '../model/outcomes';
import { TID } from '../testids';
import { button, copyableText, el, setModifier } from './dom';
import { openModal } from './dialog';

export interface DisconnectDeps {
  backend: Backend;
  busy(id: string, on: boolean): void;
  removed(id: string, result: Disconnected): void;
}

export function openDisconnectDialog(c: Connection, deps: DisconnectDeps): void {
  const { provider, account } = displayNames(c);
  let running = false;
  const modal = openModal({
    title: c.damaged ? 'Remove the unreadable record?' : `Disconnect ${account} from ${provider}?`,
    testid: TID.disconnectDialog,
    variant: 'small',
    beforeCancel: () => !running,
  });
  modal.dialog.setAttribute('role', 'alertdialog');

  const error = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
  const confirm = button(c.damaged ? 'Remove record' : 'Disconnect and revoke', { variant: 'danger-solid', testid: TID.confirmDisconnect });
  const cancel = button(c.damaged ? 'Keep it' : 'Keep connected', { testid: TID.cancelDisconnect }, () => modal.close());
  const describe = c.damaged
    ? el('p', { class: 'modal-text', attrs: { id: 'disconnect-dialog-desc' } }, [
        `This record can’t be read (${c.damaged}), so Tokenkeep may not be able to ask the platform to revoke its tokens. It will be deleted from this computer.`,
      ])
    : el('p', { class: 'modal-text', attrs: { id: 'disconnect-dialog-desc' } }, [
    'Tokenkeep will ask ',
    el('strong', { text: provider }),
    ' to revoke the tokens for ',
    el('strong', { text: account }),
    ', then delete them from this computer. Apps that use these tokens through Tokenkeep will stop working until you connect again.',
  ]);
  modal.body.append(
    describe,
    error,
    el('div', { class: 'modal-actions' }, [cancel, confirm]),
  );
  modal.dialog.setAttribute('aria-describedby', describe.id);
  cancel.focus();

  confirm.addEventListener('click', () => {
    running = true;
    confirm.disabled = true;
    cancel.disabled = true;
    confirm.textContent = 'Disconnecting…';
    error.hidden = true;
    deps.busy(c.id, true);
    deps.backend.disconnect(c.id).then(
      (result) => {
        running = false;
        deps.busy(c.id, false);
        deps.removed(c.id, result);
        showResult(result);
      },
      (err) => {
        running = false;
        deps.busy(c.id, false);
        confirm.disabled = false;
        cancel.disabled = false;
        confirm.textContent = 'Try again';
        error.hidden = false;
        error.textContent = `Nothing was disconnected. ${errorLine(err)}`;
        confirm.focus();
      },
    );
  });

  function showResult(result: Disconnected): void {
    const o = disconnectOutcome(result, provider);
    modal.titleEl.textContent = o.title;
    const box = el('section', { class: 'result', testid: TID.disconnectResult, attrs: { role: 'status' } }, [
      el('p', { class: 'modal-text', text: o.text }),
      o.manageUrl === null
        ? null
        : el('div', { class: 'setup-fact' }, [
            el('span', { class: 'field-label', text: `Manage connected apps at ${provider} (copy into your browser)` }),
            copyableText(o.manageUrl, TID.manageUrl, `${provider} address`),
          ]),
      o.detail === null ? null : el('p', { class: 'result-detail', text: `Details: ${o.detail}` }),
    ]);
    box.dataset.revocation = result.revocation;
    setModifier(box, 'result', o.tone);
    const done = button('Done', { variant: 'primary' }, () => modal.close());
    modal.body.replaceChildren(box, el('div', { class: 'modal-actions' }, [done]));
    modal.dialog.removeAttribute('aria-describedby');
    modal.dialog.setAttribute('role', 'dialog');
    done.focus();
  }
}
