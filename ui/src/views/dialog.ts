// A modal <dialog>: labelled, focus kept inside, Esc (the `cancel` event) closes it.

import { el, nextId } from './dom';

export interface ModalOptions {
  title: string;
  testid: string;
  /** Extra class: `modal--drawer` docks it to the right. */
  variant?: 'sheet' | 'drawer' | 'small';
  /** Called once, whichever way the dialog closes (Esc, a close button, `close()`). */
  onClose?: () => void;
  /**
   * Called on Esc / the × button. Return false to keep the dialog open (the handler then closes
   * it itself, e.g. after cancelling a running flow).
   */
  beforeCancel?: () => boolean;
}

export interface Modal {
  dialog: HTMLDialogElement;
  body: HTMLElement;
  titleEl: HTMLElement;
  close(): void;
}

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"]), summary';

function visibleFocusables(root: HTMLElement): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter(
    (e) => !e.closest('[hidden]') && !e.closest('details:not([open]) > :not(summary)'),
  );
}

export function openModal(opts: ModalOptions): Modal {
  const titleId = nextId('dlg-title');
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const titleEl = el('h2', { class: 'modal-title', text: opts.title, attrs: { id: titleId } });
  const closeBtn = el('button', {
    class: 'icon-btn',
    text: '×',
    attrs: { type: 'button', 'aria-label': 'Close' },
    testid: `${opts.testid}-close`,
  });
  const body = el('div', { class: 'modal-body' });
  const dialog = el(
    'dialog',
    {
      class: `modal modal--${opts.variant ?? 'sheet'}`,
      testid: opts.testid,
      attrs: { 'aria-labelledby': titleId },
    },
    [el('header', { class: 'modal-head' }, [titleEl, closeBtn]), body],
  );

  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    opts.onClose?.();
    if (opener && opener.isConnected) opener.focus();
  };
  const cancel = (): void => {
    if (opts.beforeCancel && !opts.beforeCancel()) return;
    close();
  };

  closeBtn.addEventListener('click', cancel);
  dialog.addEventListener('cancel', (ev) => {
    ev.preventDefault();
    cancel();
  });
  dialog.addEventListener('close', () => close());
  // Keep Tab inside the dialog even where the engine would let it reach the browser chrome.
  dialog.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Tab') return;
    const items = visibleFocusables(dialog);
    if (items.length === 0) return;
    const first = items[0]!;
    const last = items[items.length - 1]!;
    const active = document.activeElement;
    if (ev.shiftKey && (active === first || !dialog.contains(active))) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && (active === last || !dialog.contains(active))) {
      ev.preventDefault();
      first.focus();
    }
  });

  document.body.append(dialog);
  dialog.showModal();
  return { dialog, body, titleEl, close };
}

/** Focuses the first focusable element in `root` (or the root itself). */
export function focusFirst(root: HTMLElement): void {
  const first = visibleFocusables(root)[0];
  if (first) first.focus();
}
