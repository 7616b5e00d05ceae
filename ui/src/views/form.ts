// Labelled form fields with inline errors (aria-invalid + aria-describedby).

import { el, nextId } from './dom';

export interface Field {
  wrap: HTMLElement;
  input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  setError(message: string | undefined): void;
}

export function textField(
  label: string,
  name: string,
  opts: { type?: 'text' | 'password' | 'url'; hint?: string; optional?: boolean; value?: string; placeholder?: string } = {},
): Field {
  const input = el('input', { class: 'input' });
  input.type = opts.type ?? 'text';
  input.name = name;
  input.autocomplete = 'off';
  input.spellcheck = false;
  input.setAttribute('autocapitalize', 'off');
  if (opts.value) input.value = opts.value;
  if (opts.placeholder) input.placeholder = opts.placeholder;
  return wrapField(label, input, opts.hint, opts.optional ?? false);
}

/** A multi-line text field (a provider definition), monospaced. */
export function textAreaField(label: string, name: string, opts: { hint?: string; rows?: number; placeholder?: string } = {}): Field {
  const input = el('textarea', { class: 'input input--code' });
  input.name = name;
  input.rows = opts.rows ?? 8;
  input.spellcheck = false;
  input.setAttribute('autocapitalize', 'off');
  if (opts.placeholder) input.placeholder = opts.placeholder;
  const f = wrapField(label, input, opts.hint, false);
  f.wrap.classList.add('field--wide');
  return f;
}

export function selectField(
  label: string,
  name: string,
  options: { value: string; label: string }[],
  value: string,
  hint?: string,
  wide = false,
): Field {
  const select = el('select', { class: 'input' });
  select.name = name;
  for (const o of options) {
    const opt = el('option', { text: o.label });
    opt.value = o.value;
    select.append(opt);
  }
  select.value = value;
  const f = wrapField(label, select, hint, false);
  if (wide) f.wrap.classList.add('field--wide');
  return f;
}

function wrapField(
  label: string,
  input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint: string | undefined,
  optional: boolean,
): Field {
  const id = nextId('field');
  input.id = id;
  const hintId = `${id}-hint`;
  const errId = `${id}-error`;
  const labelEl = el('label', { class: 'field-label', attrs: { for: id } }, [
    label,
    optional ? el('span', { class: 'optional', text: ' (optional)' }) : null,
  ]);
  const hintEl = hint ? el('p', { class: 'field-hint', text: hint, attrs: { id: hintId } }) : null;
  const errEl = el('p', { class: 'field-error', attrs: { id: errId }, hidden: true });
  const describe = (withError: boolean): void => {
    const ids = [hint ? hintId : null, withError ? errId : null].filter(Boolean).join(' ');
    if (ids) input.setAttribute('aria-describedby', ids);
    else input.removeAttribute('aria-describedby');
  };
  describe(false);
  const wrap = el('div', { class: 'field' }, [labelEl, input, hintEl, errEl]);
  return {
    wrap,
    input,
    setError(message) {
      errEl.hidden = message === undefined;
      errEl.textContent = message ?? '';
      if (message === undefined) input.removeAttribute('aria-invalid');
      else input.setAttribute('aria-invalid', 'true');
      describe(message !== undefined);
    },
  };
}

/** Shows each field's error; focuses the first invalid field. Returns whether any was shown. */
export function showErrors<F extends string>(
  fields: Record<F, Field>,
  errors: Partial<Record<F, string>>,
): boolean {
  let first: Field | null = null;
  for (const [name, f] of Object.entries(fields) as [F, Field][]) {
    const msg = errors[name];
    f.setError(msg);
    if (msg !== undefined && first === null) first = f;
  }
  first?.input.focus();
  return first !== null;
}
