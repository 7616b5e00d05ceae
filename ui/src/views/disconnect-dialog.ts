// "Disconnect?" — confirm, run, then say plainly whether the platform confirmed the revoke. When it could not be
// reached, the person chooses: keep trying in the background (the default) or delete now. For an account whose
// revocation is already pending, the same dialog confirms "Delete now".

import type { Backend, Connection, Disconnected, IfRevocationFails } from '../api';
import { displayNames } from '../model/connections';
import { errorLine } from '../model/errors';
import { disconnectOutcome } from '../model/outcomes';
import { isPendingRevocation } from '../model/revocations';
import { TID } from '../testids';
import { button, copyableText, el, setModifier } from './dom';
import { openModal } from './dialog';

export interface DisconnectDeps {
  backend: Backend;
  busy(id: string, on: boolean): void;
  /** The disconnect answered: the account is gone, or (`result.pending`) kept for a revocation still to do. */
  removed(id: string, result: Disconnected): void;
}

export function openDisconnectDialog(c: Connection, deps: DisconnectDeps): void {
  const { provider, account } = displayNames(c);
  const pending = isPendingRevocation(c);
  let running = false;
  const modal = openModal({
    title: c.damaged
      ? 'Remove the unreadable record?'
      : pending
        ? `Delete ${account} without revoking?`
        : `Disconnect ${account} from ${provider}?`,
    testid: TID.disconnectDialog,
    variant: 'small',
    beforeCancel: () => !running,
  });
  modal.dialog.setAttribute('role', 'alertdialog');

  const error = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
  const confirm = button(c.damaged ? 'Remove record' : pending ? 'Delete now' : 'Disconnect and revoke', {
    variant: 'danger-solid',
    testid: TID.confirmDisconnect,
  });
  const cancel = button(c.damaged ? 'Keep it' : pending ? 'Keep trying' : 'Keep connected', { testid: TID.cancelDisconnect }, () =>
    modal.close(),
  );
  const describe = pending
    ? el('p', { class: 'modal-text', attrs: { id: 'disconnect-dialog-desc' } }, [
        'Tokenkeep has not yet been able to ask ',
        el('strong', { text: provider }),
        ' to revoke its access. If you delete now, the tokens are gone from this computer but access may remain at ',
        `${provider} until you remove it in your account settings.`,
      ])
    : c.damaged
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
    run(pending ? 'delete_now' : 'keep_trying', (err) => {
      confirm.disabled = false;
      cancel.disabled = false;
      confirm.textContent = 'Try again';
      error.hidden = false;
      error.textContent = `Nothing was ${pending ? 'deleted' : 'disconnected'}. ${errorLine(err)}`;
      confirm.focus();
    });
  });

  function run(choice: IfRevocationFails, failed: (err: unknown) => void): void {
    running = true;
    deps.busy(c.id, true);
    deps.backend.disconnect(c.id, choice).then(
      (result) => {
        running = false;
        deps.busy(c.id, false);
        deps.removed(c.id, result);
        showResult(result);
      },
      (err) => {
        running = false;
        deps.busy(c.id, false);
        failed(err);
      },
    );
  }

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
    box.dataset.revocation = result.pending ? 'pending' : result.revocation;
    setModifier(box, 'result', o.tone);
    modal.dialog.removeAttribute('aria-describedby');
    modal.dialog.setAttribute('role', 'dialog');
    if (!result.pending) {
      const done = button('Done', { variant: 'primary' }, () => modal.close());
      modal.body.replaceChildren(box, el('div', { class: 'modal-actions' }, [done]));
      done.focus();
      return;
    }
    const failure = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
    const keep = button('Keep trying', { variant: 'primary', testid: TID.keepRevoking }, () => modal.close());
    const now = button('Delete now instead', { variant: 'danger', testid: TID.deleteNow }, () => {
      keep.disabled = true;
      now.disabled = true;
      now.textContent = 'Deleting…';
      run('delete_now', (err) => {
        keep.disabled = false;
        now.disabled = false;
        now.textContent = 'Delete now instead';
        failure.hidden = false;
        failure.textContent = `Nothing was deleted; Tokenkeep keeps trying. ${errorLine(err)}`;
      });
    });
    modal.body.replaceChildren(box, failure, el('div', { class: 'modal-actions' }, [now, keep]));
    keep.focus();
  }
}
