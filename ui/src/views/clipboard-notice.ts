// The clipboard notice: while a copied token is on the clipboard, a countdown to its clearing and "Clear now";
// then, for a few seconds, what happened. Lives at the bottom of the window, whatever dialog is open.

import type { Backend, ClipboardState } from '../api';
import { clipboardText } from '../model/clipboard';
import { errorLine } from '../model/errors';
import { nextTextChange, nowSeconds } from '../model/time';
import { TID } from '../testids';
import { button, el, setHidden, setText } from './dom';

/** How long "cleared" stays on screen. */
const AFTERWARDS_MS = 5000;

export class ClipboardNotice {
  private readonly box: HTMLElement;
  private readonly text: HTMLElement;
  private readonly clear: HTMLButtonElement;
  private state: ClipboardState | null = null;
  private timer: number | undefined;

  constructor(private readonly backend: Backend) {
    this.text = el('span', { class: 'clipboard-text' });
    this.clear = button('Clear now', { small: true, testid: TID.clipboardClear }, () => {
      void this.backend.clearClipboard().then(
        (s) => this.show(s),
        (err) => setText(this.text, `Could not clear the clipboard. ${errorLine(err)}`),
      );
    });
    this.box = el('div', { class: 'clipboard-notice', testid: TID.clipboardNotice, attrs: { role: 'status' }, hidden: true }, [
      this.text,
      this.clear,
    ]);
    document.body.append(this.box);
    // A modal dialog makes the rest of the page inert: the notice goes into the open dialog (and back out when
    // it closes), so "Clear now" always works.
    document.addEventListener('close', () => this.rehost(), true);
  }

  private rehost(): void {
    const host = document.querySelector<HTMLElement>('dialog[open]') ?? document.body;
    if (this.box.parentElement !== host) host.append(this.box);
  }

  show(state: ClipboardState): void {
    this.state = state;
    this.render();
  }

  private render(): void {
    if (this.timer !== undefined) window.clearTimeout(this.timer);
    this.timer = undefined;
    this.rehost();
    const now = nowSeconds();
    const said = clipboardText(this.state, now);
    setHidden(this.box, said === null);
    setText(this.text, said ?? '');
    this.box.dataset.state = this.state?.state ?? '';
    const holding = this.state?.state === 'holding' ? this.state : null;
    setHidden(this.clear, holding === null);
    if (holding !== null) {
      if (holding.clearsAt > now) this.timer = window.setTimeout(() => this.render(), nextTextChange(holding.clearsAt, now) * 1000 + 30);
    } else if (this.state !== null) {
      this.timer = window.setTimeout(() => {
        this.state = null;
        this.render();
      }, AFTERWARDS_MS);
    }
  }
}
