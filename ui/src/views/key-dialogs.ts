// The vault key as a person handles it: the once-only notice that it was created (and what losing it means), the
// confirmed export for a backup, and the import that puts a lost key back into the keyring.

import type { Backend, VaultStatus } from '../api';
import { describeError, errorLine } from '../model/errors';
import { capitalise } from '../model/time';
import { KEY_NOTICE } from '../model/keys';
import { TID } from '../testids';
import { button, copyableText, el } from './dom';
import { openModal } from './dialog';

export interface KeyNoticeHandlers {
  export(): void;
  acknowledge(): void;
}

/** Fills `region` with the key notice while `vault.keyNotice`, or empties it. Built once: focus survives. */
export function renderKeyNotice(region: HTMLElement, vault: VaultStatus | null, handlers: KeyNoticeHandlers): void {
  const due = vault?.ready === true && vault.keyNotice === true;
  const existing = region.querySelector<HTMLElement>('.key-notice');
  if (!due) {
    existing?.remove();
    return;
  }
  if (existing !== null) return;
  const exportBtn = button('Export the key…', { variant: 'primary', testid: TID.keyExport }, handlers.export);
  const later = button('Got it', { variant: 'ghost', testid: TID.keyNoticeDismiss }, handlers.acknowledge);
  region.append(
    el('section', { class: 'banner banner--info key-notice', testid: TID.keyNotice, attrs: { 'aria-labelledby': 'key-notice-title' } }, [
      el('div', { class: 'banner-icon', text: 'i', attrs: { 'aria-hidden': 'true' } }),
      el('div', { class: 'banner-main' }, [
        el('h2', { class: 'banner-title', text: KEY_NOTICE.title, attrs: { id: 'key-notice-title' } }),
        el('p', { class: 'banner-text', text: KEY_NOTICE.text }),
      ]),
      el('div', { class: 'banner-actions' }, [exportBtn, later]),
    ]),
  );
}

/** "Show your vault key?" — confirm, then show it once with a Copy button; Done acknowledges the notice. */
export function openExportKeyDialog(backend: Backend, acknowledged: (v: VaultStatus) => void): void {
  const modal = openModal({ title: 'Show your vault key?', testid: TID.keyDialog, variant: 'small' });
  modal.dialog.setAttribute('role', 'alertdialog');
  const text = el('p', { class: 'modal-text', attrs: { id: 'key-dialog-desc' } }, [
    'Anyone who has this key and a copy of your Tokenkeep data folder can read every token. Show it only where ' +
      'nobody is watching, and keep it offline — in a password manager, or on paper.',
  ]);
  const error = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
  const cancel = button('Cancel', {}, () => modal.close());
  const show = button('Show the key', { variant: 'primary', testid: TID.keyShow });
  modal.body.append(text, error, el('div', { class: 'modal-actions' }, [cancel, show]));
  modal.dialog.setAttribute('aria-describedby', text.id);
  cancel.focus();

  show.addEventListener('click', () => {
    show.disabled = true;
    error.hidden = true;
    backend.exportKey().then(
      (exported) => {
        modal.titleEl.textContent = 'Your vault key';
        const done = button('Done — I saved it', { variant: 'primary', testid: TID.keySaved }, () => {
          void backend.acknowledgeKeyNotice().then(acknowledged, () => {});
          modal.close();
        });
        modal.body.replaceChildren(
          el('p', { class: 'modal-text', text: `Key ${exported.keyId.slice(0, 8)} of this profile. To bring it back: Import key (when Tokenkeep says the key is missing), \`tokenkeep key import\`, or TOKENKEEP_MASTER_KEY.` }),
          copyableText(exported.key, TID.keyValue, 'vault key'),
          el('div', { class: 'modal-actions' }, [done]),
        );
        modal.dialog.removeAttribute('aria-describedby');
        done.focus();
      },
      (err) => {
        show.disabled = false;
        error.hidden = false;
        error.textContent = `The key could not be read. ${errorLine(err)}`;
      },
    );
  });
}

/** "Import your vault key": paste an exported key; only this vault's key is accepted, then the vault opens. */
export function openImportKeyDialog(backend: Backend, opened: (v: VaultStatus) => void): void {
  const modal = openModal({ title: 'Import your vault key', testid: TID.keyImportDialog, variant: 'small' });
  const input = el('input', {
    class: 'input',
    testid: TID.keyImportInput,
    attrs: { type: 'password', autocomplete: 'off', spellcheck: 'false', 'aria-label': 'Exported vault key' },
  }) as HTMLInputElement;
  const error = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
  const cancel = button('Cancel', {}, () => modal.close());
  const save = button('Import and open', { variant: 'primary', testid: TID.keyImportSave });
  modal.body.append(
    el('p', {
      class: 'modal-text',
      text: 'Paste the key you exported (44 characters). Tokenkeep puts it back into your keyring if it is this vault’s key, and opens the vault.',
    }),
    input,
    error,
    el('div', { class: 'modal-actions' }, [cancel, save]),
  );
  input.focus();
  const submit = (): void => {
    save.disabled = true;
    error.hidden = true;
    backend.importKey(input.value).then(
      (v) => {
        input.value = '';
        modal.close();
        opened(v);
      },
      (err) => {
        save.disabled = false;
        error.hidden = false;
        // The backend's sentence says exactly what is wrong with the key; the generic summary adds nothing.
        const words = describeError(err);
        error.textContent = words.detail === null ? words.summary : capitalise(words.detail);
        input.focus();
      },
    );
  };
  save.addEventListener('click', submit);
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') submit();
  });
}
