// DEV ONLY: fake `app_info` for looking at the layout in a plain browser
// (`?mock` or `?mock=prod`). main.ts loads this only when Tauri is absent,
// so it can never answer inside the app.
import type { AppInfo } from './api';

export function mockAppInfo(search: string): AppInfo {
  const profile = new URLSearchParams(search).get('mock') === 'prod' ? 'prod' : 'dev';
  return {
    name: 'Tokenkeep',
    version: '0.1.0',
    profile,
    dataDir: `/home/creator/.local/share/app.tokenkeep${profile === 'dev' ? '.dev' : ''}`,
    headless: false,
  };
}
