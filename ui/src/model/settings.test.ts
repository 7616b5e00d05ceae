import { describe, expect, it } from 'vitest';
import type { SettingsView } from '../api';
import { settingsHints } from './settings';

const base: SettingsView = {
  startAtLogin: false,
  keepRunning: true,
  notifications: true,
  clipboardSeconds: 30,
  trayAvailable: true,
  autostartEntry: '/home/a/.config/autostart/io.tokenkeep.desktop-prod.desktop',
  clipboardFromEnv: false,
};

describe('settingsHints', () => {
  it('says that closing quits where no tray shows the icon, whatever the setting', () => {
    for (const keepRunning of [true, false]) {
      const h = settingsHints({ ...base, trayAvailable: false, keepRunning });
      expect(h.keepRunning).toContain('no tray icons');
      expect(h.keepRunning).toContain('refreshing stops');
    }
  });

  it('names the tray as the way to quit while running in the background', () => {
    expect(settingsHints(base).keepRunning).toContain('Quit from the tray icon');
    expect(settingsHints({ ...base, keepRunning: false }).keepRunning).toContain('quits Tokenkeep');
  });

  it('shows where the autostart entry is once it is on', () => {
    expect(settingsHints({ ...base, startAtLogin: true }).startAtLogin).toContain('io.tokenkeep.desktop-prod.desktop');
    expect(settingsHints(base).startAtLogin).toMatch(/^Off/);
  });

  it('says when the clipboard time is fixed by the environment', () => {
    expect(settingsHints({ ...base, clipboardFromEnv: true, clipboardSeconds: 5 }).clipboard).toContain('TOKENKEEP_CLIPBOARD_SECONDS');
  });
});
