// The "browser" of the dialect tests: opens the sign-in URL it is given (as TOKENKEEP_BROWSER) and follows the
// redirects the way a browser would, without a page to click (the emulations in platforms.mjs approve at once).
//
//   node tests/js/follow.mjs URL          (env TK_FOLLOW_PASTE=FILE for platforms that redirect to https)
//
// A redirect to the loopback callback is fetched, as the browser would load it. A redirect to a page that is not
// on this machine (the https page a person registered with Meta) is NOT fetched: its address, as the address bar
// would show it, is written to TK_FOLLOW_PASTE for the test to paste into Tokenkeep. Nothing leaves 127.0.0.1.

import { renameSync, writeFileSync } from 'node:fs';

const isLocal = (u) => u.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(u.hostname);

let address = process.argv[2];
for (let hop = 0; hop < 10; hop += 1) {
  const url = new URL(address);
  if (!isLocal(url)) {
    const file = process.env.TK_FOLLOW_PASTE;
    if (!file) {
      console.error(`follow: the sign-in went to ${url.origin}, and TK_FOLLOW_PASTE is not set`);
      process.exit(1);
    }
    writeFileSync(`${file}.tmp`, `${address}\n`);
    renameSync(`${file}.tmp`, file);
    process.exit(0);
  }
  const response = await fetch(address, { redirect: 'manual' });
  const location = response.headers.get('location');
  if (response.status >= 300 && response.status < 400 && location) {
    address = new URL(location, address).toString();
    continue;
  }
  const text = await response.text();
  console.error(`follow: ${response.status} ${url.pathname}: ${text.slice(0, 300)}`);
  process.exit(response.ok ? 0 : 1);
}
console.error('follow: too many redirects');
process.exit(1);
