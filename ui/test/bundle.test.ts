// The production bundle is what the app embeds: it must hold no development-only code. This runs the same
// `vite build` as `npm run build` (in its own process: inside vitest, NODE_ENV is "test" and Vite would build
// in development mode) into a temporary directory, leaving ui/dist alone, and reads every file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
let outDir = '';
let files: { name: string; text: string }[] = [];

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((entry: string) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

beforeAll(() => {
  outDir = mkdtempSync(join(tmpdir(), 'tokenkeep-ui-bundle-'));
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production' };
  delete env['VITEST'];
  execFileSync(join(root, 'node_modules', '.bin', 'vite'), ['build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'error'], {
    cwd: root,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  files = walk(outDir).map((path) => ({ name: path.slice(outDir.length + 1), text: readFileSync(path, 'utf8') }));
}, 60_000);

afterAll(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe('the production bundle', () => {
  it('is built', () => {
    expect(files.some((f) => f.name === 'index.html')).toBe(true);
    expect(files.some((f) => f.name.endsWith('.js'))).toBe(true);
  });

  it('holds no mock backend, no mock scenario and no mock data', () => {
    expect(files.map((f) => f.name).filter((n) => /mock/i.test(n))).toEqual([]);
    // Identifiers and texts that exist only in src/dev-mock.ts.
    const markers = ['createMock', 'mockAppInfo', 'dev-mock'];
    for (const { name, text } of files) {
      for (const marker of markers) {
        expect(text.includes(marker), `${marker} in ${name}`).toBe(false);
      }
    }
  });
});
