// The Settings panel's words: what each setting does on this desktop.

import type { SettingsView } from '../api';

export interface SettingsHints {
  keepRunning: string;
  startAtLogin: string;
  notifications: string;
  clipboard: string;
}

/** What each setting means here — in particular when this desktop shows no tray icon. */
export function settingsHints(view: SettingsView): SettingsHints {
  const keepRunning = !view.trayAvailable
    ? 'This desktop shows no tray icons, so closing the window quits Tokenkeep and refreshing stops until you open it again.'
    : view.keepRunning
      ? 'Closing the window leaves Tokenkeep in the tray, refreshing. Quit from the tray icon.'
      : 'Closing the window quits Tokenkeep: refreshing stops until you open it again.';
  const startAtLogin = view.startAtLogin
    ? `Tokenkeep starts in the background (tray only) when you log in${view.autostartEntry ? ` — ${view.autostartEntry}` : ''}.`
    : 'Off: Tokenkeep refreshes only while you have it open.';
  const notifications = view.notifications
    ? 'Once per problem, saying which account and what to do.'
    : 'Off: accounts that need you show only here and in the tray.';
  const clipboard = view.clipboardFromEnv
    ? `Fixed at ${view.clipboardSeconds} seconds for this run by TOKENKEEP_CLIPBOARD_SECONDS.`
    : 'Only if the clipboard still holds the token; at quit too. 5 to 600 seconds.';
  return { keepRunning, startAtLogin, notifications, clipboard };
}
