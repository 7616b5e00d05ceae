// Settings: start at login, keep running when the window closes, notifications, how long a copied token stays on
// the clipboard. Each change is saved at once (`set_settings`); the panel says so, or what went wrong.

import type { Backend, SettingsChange, SettingsView } from '../api';
import { errorLine } from '../model/errors';
import { settingsHints } from '../model/settings';
import { TID } from '../testids';
import { button, el, nextId } from './dom';
import { openModal } from './dialog';

function toggle(label: string, hint: HTMLElement, testid: string, checked: boolean): { row: HTMLElement; input: HTMLInputElement } {
  const id = nextId('setting');
  const input = el('input', { testid, attrs: { type: 'checkbox', id, 'aria-describedby': `${id}-hint` } });
  input.checked = checked;
  hint.id = `${id}-hint`;
  const row = el('div', { class: 'setting' }, [
    input,
    el('div', { class: 'setting-text' }, [el('label', { class: 'setting-label', text: label, attrs: { for: id } }), hint]),
  ]);
  return { row, input };
}

/** Opens the Settings panel with the values `backend.getSettings()` returns. */
export function openSettingsDialog(backend: Backend, announce: (text: string) => void): void {
  const modal = openModal({ title: 'Settings', testid: TID.settingsDialog, variant: 'small' });
  const status = el('p', { class: 'setting-status', testid: TID.settingsStatus, attrs: { role: 'status' } });
  modal.body.append(el('p', { class: 'modal-text', text: 'Loading…' }));

  backend.getSettings().then(
    (view) => render(view),
    (err: unknown) => modal.body.replaceChildren(el('p', { class: 'inline-error', attrs: { role: 'alert' }, text: errorLine(err) })),
  );

  function render(view: SettingsView): void {
    const hints = settingsHints(view);
    const hint = (text: string): HTMLElement => el('p', { class: 'setting-hint', text });
    // Without a tray it cannot keep running, whatever was chosen: show what happens.
    const keep = toggle('Keep running when the window is closed', hint(hints.keepRunning), TID.settingKeepRunning, view.keepRunning && view.trayAvailable);
    keep.input.disabled = !view.trayAvailable;
    const login = toggle('Start Tokenkeep when you log in', hint(hints.startAtLogin), TID.settingStartAtLogin, view.startAtLogin);
    const notes = toggle('Show a desktop notification when an account needs you', hint(hints.notifications), TID.settingNotifications, view.notifications);

    const secondsId = nextId('setting');
    const seconds = el('input', {
      testid: TID.settingClipboardSeconds,
      class: 'setting-number',
      attrs: { type: 'number', id: secondsId, min: '5', max: '600', step: '5', 'aria-describedby': `${secondsId}-hint` },
    });
    seconds.value = String(view.clipboardSeconds);
    seconds.disabled = view.clipboardFromEnv;
    const secondsHint = hint(hints.clipboard);
    secondsHint.id = `${secondsId}-hint`;
    const clipboard = el('div', { class: 'setting' }, [
      el('div', { class: 'setting-text' }, [
        el('label', { class: 'setting-label', text: 'Clear a copied token from the clipboard after (seconds)', attrs: { for: secondsId } }),
        secondsHint,
      ]),
      seconds,
    ]);

    const save = (change: SettingsChange, said: string): void => {
      status.textContent = 'Saving…';
      backend.setSettings(change).then(
        (now) => {
          render(now);
          const text = `Saved: ${said}.`;
          status.textContent = text;
          announce(text);
        },
        (err: unknown) => {
          status.textContent = errorLine(err);
          status.classList.add('inline-error');
        },
      );
    };
    keep.input.addEventListener('change', () =>
      save({ keepRunning: keep.input.checked }, keep.input.checked ? 'Tokenkeep keeps running when the window is closed' : 'closing the window quits Tokenkeep'),
    );
    login.input.addEventListener('change', () =>
      save({ startAtLogin: login.input.checked }, login.input.checked ? 'Tokenkeep starts in the background when you log in' : 'Tokenkeep no longer starts when you log in'),
    );
    notes.input.addEventListener('change', () =>
      save({ notifications: notes.input.checked }, notes.input.checked ? 'notifications on' : 'notifications off'),
    );
    seconds.addEventListener('change', () => {
      const n = Number(seconds.value);
      if (!Number.isInteger(n) || n < 5 || n > 600) {
        status.textContent = 'Choose 5 to 600 seconds.';
        status.classList.add('inline-error');
        return;
      }
      save({ clipboardSeconds: n }, `a copied token is cleared after ${n} seconds`);
    });

    const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.testid : undefined;
    status.classList.remove('inline-error');
    modal.body.replaceChildren(
      el('div', { class: 'settings' }, [keep.row, login.row, notes.row, clipboard]),
      status,
      el('div', { class: 'modal-actions' }, [button('Done', { variant: 'primary' }, () => modal.close())]),
    );
    // A re-render after a save keeps the focus where it was.
    const again = focused ? modal.body.querySelector<HTMLElement>(`[data-testid="${focused}"]`) : null;
    (again ?? modal.body.querySelector<HTMLElement>('input:not([disabled])'))?.focus();
  }
}
