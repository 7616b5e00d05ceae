// Settings: start at login, keep running when the window closes, notifications, how long a copied token stays on
// the clipboard. Each change is saved at once (`set_settings`); the panel says so, or what went wrong. Built once
// and updated in place from what the backend answers, so focus and a click on the next switch survive a save.

import type { Backend, SettingsChange, SettingsView } from '../api';
import { errorLine } from '../model/errors';
import { settingsHints } from '../model/settings';
import { TID } from '../testids';
import { button, el, nextId } from './dom';
import { openModal } from './dialog';

interface Row {
  row: HTMLElement;
  input: HTMLInputElement;
  hint: HTMLElement;
}

function row(label: string, testid: string, kind: 'checkbox' | 'number'): Row {
  const id = nextId('setting');
  const hint = el('p', { class: 'setting-hint', attrs: { id: `${id}-hint` } });
  const range = kind === 'number' ? { min: '5', max: '600', step: '5' } : {};
  const input = el('input', {
    testid,
    class: kind === 'number' ? 'setting-number' : 'setting-check',
    attrs: { type: kind, id, 'aria-describedby': `${id}-hint`, ...range },
  });
  const text = el('div', { class: 'setting-text' }, [el('label', { class: 'setting-label', text: label, attrs: { for: id } }), hint]);
  return { row: el('div', { class: 'setting' }, kind === 'number' ? [text, input] : [input, text]), input, hint };
}

/** Opens the Settings panel with the values `backend.getSettings()` returns. */
export function openSettingsDialog(backend: Backend, announce: (text: string) => void): void {
  const modal = openModal({ title: 'Settings', testid: TID.settingsDialog, variant: 'small' });
  const status = el('p', { class: 'setting-status', testid: TID.settingsStatus, attrs: { role: 'status' } });
  const keep = row('Keep running when the window is closed', TID.settingKeepRunning, 'checkbox');
  const login = row('Start Tokenkeep when you log in', TID.settingStartAtLogin, 'checkbox');
  const notes = row('Show a desktop notification when an account needs you', TID.settingNotifications, 'checkbox');
  const seconds = row('Clear a copied token from the clipboard after (seconds)', TID.settingClipboardSeconds, 'number');
  modal.body.append(el('p', { class: 'modal-text', text: 'Loading…' }));

  const show = (view: SettingsView): void => {
    const hints = settingsHints(view);
    // Without a tray it cannot keep running, whatever was chosen: show what happens.
    keep.input.checked = view.keepRunning && view.trayAvailable;
    keep.input.disabled = !view.trayAvailable;
    keep.hint.textContent = hints.keepRunning;
    login.input.checked = view.startAtLogin;
    login.hint.textContent = hints.startAtLogin;
    notes.input.checked = view.notifications;
    notes.hint.textContent = hints.notifications;
    if (document.activeElement !== seconds.input) seconds.input.value = String(view.clipboardSeconds);
    seconds.input.disabled = view.clipboardFromEnv;
    seconds.hint.textContent = hints.clipboard;
  };
  const say = (text: string, error = false): void => {
    status.textContent = text;
    status.classList.toggle('inline-error', error);
  };
  const save = (change: SettingsChange, said: string): void => {
    say('Saving…');
    backend.setSettings(change).then(
      (now) => {
        show(now);
        say(`Saved: ${said}.`);
        // Which setting the last answer was for (tests wait on it).
        status.dataset.saved = Object.keys(change).join(' ');
        announce(`Saved: ${said}.`);
      },
      (err: unknown) => {
        say(errorLine(err), true);
        // Put the switches back to what is stored.
        backend.getSettings().then(show, () => {});
      },
    );
  };

  keep.input.addEventListener('change', () =>
    save(
      { keepRunning: keep.input.checked },
      keep.input.checked ? 'Tokenkeep keeps running when the window is closed' : 'closing the window quits Tokenkeep',
    ),
  );
  login.input.addEventListener('change', () =>
    save(
      { startAtLogin: login.input.checked },
      login.input.checked ? 'Tokenkeep starts in the background when you log in' : 'Tokenkeep no longer starts when you log in',
    ),
  );
  notes.input.addEventListener('change', () =>
    save({ notifications: notes.input.checked }, notes.input.checked ? 'notifications on' : 'notifications off'),
  );
  seconds.input.addEventListener('change', () => {
    const n = Number(seconds.input.value);
    if (!Number.isInteger(n) || n < 5 || n > 600) {
      say('Choose 5 to 600 seconds.', true);
      return;
    }
    save({ clipboardSeconds: n }, `a copied token is cleared after ${n} seconds`);
  });

  backend.getSettings().then(
    (view) => {
      show(view);
      modal.body.replaceChildren(
        el('div', { class: 'settings' }, [keep.row, login.row, notes.row, seconds.row]),
        status,
        el('div', { class: 'modal-actions' }, [button('Done', { variant: 'primary' }, () => modal.close())]),
      );
      modal.body.querySelector<HTMLElement>('input:not([disabled])')?.focus();
    },
    (err: unknown) => modal.body.replaceChildren(el('p', { class: 'inline-error', attrs: { role: 'alert' }, text: errorLine(err) })),
  );
}
