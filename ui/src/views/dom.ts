// Tiny DOM helpers: elements are built with createElement + textContent, never innerHTML.

export interface ElOptions {
  class?: string;
  text?: string;
  testid?: string;
  attrs?: Record<string, string>;
  hidden?: boolean;
}

export type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  opts: ElOptions = {},
  children: Child[] = [],
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (opts.class) e.className = opts.class;
  if (opts.text !== undefined) e.textContent = opts.text;
  if (opts.testid) e.dataset.testid = opts.testid;
  if (opts.hidden) e.hidden = true;
  for (const [k, v] of Object.entries(opts.attrs ?? {})) e.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

export function button(
  text: string,
  opts: ElOptions & { variant?: 'primary' | 'secondary' | 'ghost' | 'danger' | 'danger-solid'; small?: boolean } = {},
  onClick?: (ev: MouseEvent) => void,
): HTMLButtonElement {
  const variant = opts.variant ?? 'secondary';
  const cls = ['btn', `btn-${variant}`, opts.small ? 'btn-sm' : '', opts.class ?? '']
    .filter(Boolean)
    .join(' ');
  const b = el('button', { ...opts, class: cls, text });
  b.type = 'button';
  if (onClick) b.addEventListener('click', onClick);
  return b;
}

let uid = 0;
/** A unique id for label/aria wiring. */
export function nextId(prefix: string): string {
  uid += 1;
  return `${prefix}-${uid}`;
}

export function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing from index.html`);
  return e as T;
}

export function byTestId<T extends HTMLElement>(root: ParentNode, testid: string): T | null {
  return root.querySelector<T>(`[data-testid="${testid}"]`);
}

/** Sets text only when it changed (keeps screen readers and selection calm). */
export function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** Replaces a class from a family (`pill--ok` → `pill--warn`) without touching the others. */
export function setModifier(e: Element, base: string, value: string): void {
  const wanted = `${base}--${value}`;
  for (const c of [...e.classList]) if (c.startsWith(`${base}--`) && c !== wanted) e.classList.remove(c);
  if (!e.classList.contains(wanted)) e.classList.add(wanted);
}

/** Sets an attribute only when it changes (an update on every event must not touch the DOM otherwise). */
export function setAttr(e: Element, name: string, value: string | null): void {
  if (value === null) {
    if (e.hasAttribute(name)) e.removeAttribute(name);
  } else if (e.getAttribute(name) !== value) {
    e.setAttribute(name, value);
  }
}

/** Sets `hidden` only when it changes. */
export function setHidden(e: HTMLElement, hidden: boolean): void {
  if (e.hidden !== hidden) e.hidden = hidden;
}

/** Selectable text plus a Copy button (clipboard write only; opening URLs is not granted). */
export function copyableText(value: string, testid: string, label: string): HTMLElement {
  const code = el('code', { class: 'copyable-text', text: value, testid });
  const status = el('span', { class: 'copy-status', attrs: { role: 'status' } });
  const copy = button('Copy', { small: true, attrs: { 'aria-label': `Copy ${label}` } }, () => {
    void copyToClipboard(value).then((ok) => {
      status.textContent = ok ? 'Copied' : 'Select the text and copy it yourself';
    });
  });
  return el('div', { class: 'copyable' }, [code, copy, status]);
}

export async function copyToClipboard(value: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(value);
    return true;
  } catch {
    return false;
  }
}
