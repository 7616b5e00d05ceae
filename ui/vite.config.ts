import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tokenkeep front-end. Served by Tauri from `ui/dist` under a strict CSP
// (default-src 'self'), so everything is bundled: no CDN, no web fonts,
// no inline scripts or styles.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  clearScreen: false,
  envPrefix: ['VITE_', 'TAURI_ENV_'],
  server: {
    port: 1420,
    strictPort: true,
    host: '127.0.0.1',
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // WebKitGTK / WKWebView (Safari 13+) and WebView2 (Chromium).
    target: ['es2021', 'safari13'],
    sourcemap: false,
    // Never turn assets into data: URIs or inline anything.
    assetsInlineLimit: 0,
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
