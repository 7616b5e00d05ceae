// "Add an account": the platforms, their setup forms, "Add an OpenID provider", and a running sign-in.

import {
  AppError,
  type Backend,
  type Connected,
  type ConnectProgress,
  type Provider,
} from '../api';
import { errorLine } from '../model/errors';
import {
  AUTH_LABELS,
  validateConfigure,
  validateCustom,
  type AuthChoice,
  type ConfigureField,
  type CustomField,
} from '../model/forms';
import { connectFailed, connectSucceeded, orderProviders, providerLabel, type ConnectOutcome } from '../model/outcomes';
import { colourSlot } from '../model/connections';
import { TID, providerConnectId, providerSetupId } from '../testids';
import { button, copyableText, el, setModifier } from './dom';
import { focusFirst, openModal, type Modal } from './dialog';
import { selectField, showErrors, textField, type Field } from './form';

export interface ConnectPanelDeps {
  backend: Backend;
  providers(): Provider[] | null;
  providersError(): string | null;
  reloadProviders(): Promise<void>;
  /** A provider changed (configured or added). */
  providerSaved(p: Provider): void;
  connected(c: Connected): void;
}

type Flow =
  | { phase: 'idle' }
  | {
      phase: 'running';
      provider: string;
      name: string;
      url: string | null;
      opened: boolean;
      cancelling: boolean;
      /** The registered https page whose address the person pastes, when the platform redirects there. */
      pastePage: string | null;
      pasteError: string | null;
    }
  | { phase: 'done'; provider: string; outcome: ConnectOutcome };

export class ConnectPanel {
  private modal: Modal | null = null;
  private flow: Flow = { phase: 'idle' };
  private flowRegion: HTMLElement | null = null;
  private listRegion: HTMLElement | null = null;
  private openSetup: string | null = null;
  private customOpen = false;

  constructor(private readonly deps: ConnectPanelDeps) {}

  get isOpen(): boolean {
    return this.modal !== null;
  }

  get running(): boolean {
    return this.flow.phase === 'running';
  }

  open(): void {
    if (this.modal) return;
    if (this.flow.phase === 'done') this.flow = { phase: 'idle' };
    this.modal = openModal({
      title: 'Add an account',
      testid: TID.connectPanel,
      variant: 'sheet',
      beforeCancel: () => {
        if (this.flow.phase === 'running') {
          void this.cancel();
          return false;
        }
        return true;
      },
      onClose: () => {
        this.modal = null;
        this.flowRegion = null;
        this.listRegion = null;
        this.openSetup = null;
        this.customOpen = false;
        if (this.flow.phase === 'done') this.flow = { phase: 'idle' };
      },
    });
    const intro = el('p', {
      class: 'modal-intro',
      text:
        'Pick a platform. Your browser opens so you can sign in there; Tokenkeep never sees your password, ' +
        'only the tokens the platform gives back, which are encrypted on this computer.',
    });
    this.flowRegion = el('div', { class: 'flow-region', attrs: { 'aria-live': 'polite' } });
    this.listRegion = el('div', { class: 'provider-region' });
    this.modal.body.append(intro, this.flowRegion, this.listRegion);
    this.renderFlow();
    this.renderProviders();
    if (this.deps.providers() === null) void this.deps.reloadProviders().then(() => this.renderProviders());
    focusFirst(this.listRegion);
  }

  /** Called by the app when the provider list changed. */
  refreshProviders(): void {
    this.renderProviders();
  }

  /** Opens the panel (if needed) and starts signing in to `providerId`. */
  async start(providerId: string): Promise<void> {
    if (this.flow.phase === 'running') return;
    this.open();
    const p = this.deps.providers()?.find((x) => x.id === providerId);
    const name = p ? providerLabel(p).name : providerId;
    this.flow = {
      phase: 'running',
      provider: providerId,
      name,
      url: null,
      opened: true,
      cancelling: false,
      pastePage: null,
      pasteError: null,
    };
    this.renderFlow();
    this.renderProviders();
    this.focusFlow();
    let outcome: ConnectOutcome;
    try {
      const res = await this.deps.backend.connect(providerId);
      outcome = connectSucceeded(res);
      this.deps.connected(res);
    } catch (err) {
      outcome = connectFailed(err);
    }
    this.flow = { phase: 'done', provider: providerId, outcome };
    if (!this.modal) {
      this.flow = { phase: 'idle' };
      return;
    }
    this.renderFlow();
    this.renderProviders();
    this.focusFlow();
  }

  /** `connect-progress`: the browser was opened with this URL. */
  progress(p: ConnectProgress): void {
    if (this.flow.phase !== 'running' || this.flow.provider !== p.provider) return;
    this.flow =
      p.stage === 'waiting_for_paste'
        ? { ...this.flow, pastePage: p.url }
        : { ...this.flow, url: p.url, opened: p.opened };
    this.renderFlow();
  }

  /** Sends the address the person pasted; the flow goes on (or fails with a clear reason) on its own. */
  private async paste(address: string): Promise<void> {
    if (this.flow.phase !== 'running') return;
    if (address.trim() === '') {
      this.flow = { ...this.flow, pasteError: 'Paste the whole address from the browser’s address bar.' };
      this.renderFlow();
      return;
    }
    try {
      await this.deps.backend.pasteSignInAddress(address.trim());
      if (this.flow.phase === 'running') this.flow = { ...this.flow, pastePage: null, pasteError: null };
    } catch (err) {
      if (this.flow.phase === 'running') this.flow = { ...this.flow, pasteError: errorLine(err) };
    }
    this.renderFlow();
  }

  async cancel(): Promise<void> {
    if (this.flow.phase !== 'running' || this.flow.cancelling) return;
    this.flow = { ...this.flow, cancelling: true };
    this.renderFlow();
    try {
      await this.deps.backend.cancelConnect();
    } catch (err) {
      if (this.flow.phase === 'running') {
        this.flow = { ...this.flow, cancelling: false };
        this.renderFlow();
        const note = this.flowRegion?.querySelector('.flow-cancel-error');
        if (note) note.textContent = `Could not cancel: ${errorLine(err)}`;
      }
    }
    // `connect` itself now rejects with `cancelled`; `start` shows the outcome.
  }

  private focusFlow(): void {
    const target =
      this.flowRegion?.querySelector<HTMLElement>(`[data-testid="${TID.connectCancel}"]`) ??
      this.flowRegion?.querySelector<HTMLElement>('.flow-outcome-title');
    target?.focus();
  }

  private renderFlow(): void {
    const region = this.flowRegion;
    if (!region) return;
    const f = this.flow;
    if (f.phase === 'idle') {
      region.replaceChildren();
      return;
    }
    if (f.phase === 'running') {
      const cancel = button(
        f.cancelling ? 'Cancelling…' : 'Cancel',
        { testid: TID.connectCancel, attrs: { 'aria-label': `Cancel signing in to ${f.name}` } },
        () => void this.cancel(),
      );
      cancel.disabled = f.cancelling;
      const url =
        f.url === null
          ? null
          : el('details', { class: 'flow-url', attrs: f.opened ? {} : { open: '' } }, [
              el('summary', { text: f.opened ? 'Browser didn’t open?' : 'Tokenkeep could not open your browser' }),
              el('p', {
                class: 'field-hint',
                text: 'Copy this address into your browser to sign in. It only works on this computer, for this sign-in.',
              }),
              copyableText(f.url, TID.connectUrl, 'sign-in address'),
            ]);
      const pastePage = f.pastePage;
      const paste =
        pastePage === null
          ? null
          : (() => {
              const input = el('input', {
                class: 'input',
                testid: TID.connectPasteInput,
                attrs: { type: 'url', 'aria-label': 'The address the browser landed on', placeholder: `${pastePage}?code=…` },
              });
              const send = button('Continue', { testid: TID.connectPasteSend }, () => void this.paste(input.value));
              return el('div', { class: 'flow-paste' }, [
                el('p', {
                  class: 'field-hint',
                  text: `After you approve, ${f.name} opens your registered page ${pastePage}. It may show an error — that is fine. Copy the whole address from the browser’s address bar and paste it here.`,
                }),
                el('div', { class: 'flow-paste-row' }, [input, send]),
                f.pasteError === null
                  ? null
                  : el('p', { class: 'inline-error', text: f.pasteError, attrs: { role: 'alert' } }),
              ]);
            })();
      region.replaceChildren(
        el('section', { class: 'flow flow--waiting', testid: TID.connectWaiting, attrs: { 'aria-busy': 'true' } }, [
          el('div', { class: 'spinner', attrs: { 'aria-hidden': 'true' } }),
          el('div', { class: 'flow-main' }, [
            el('p', { class: 'flow-title', text: 'Waiting for the browser…' }),
            el('p', {
              class: 'flow-text',
              text: `Sign in to ${f.name} in the browser window that opened and approve access. Tokenkeep continues on its own when you are done.`,
            }),
            url,
            paste,
            el('p', { class: 'inline-error flow-cancel-error', attrs: { role: 'alert' } }),
          ]),
          cancel,
        ]),
      );
      return;
    }
    const o = f.outcome;
    const title = el('p', { class: 'flow-outcome-title', text: o.text, attrs: { tabindex: '-1' } });
    const box = el(
      'section',
      { class: 'flow flow--outcome', testid: TID.connectOutcome, attrs: { role: 'status' } },
      [
        el('div', { class: 'flow-icon', text: o.tone === 'ok' ? '✓' : o.tone === 'bad' ? '!' : 'i', attrs: { 'aria-hidden': 'true' } }),
        el('div', { class: 'flow-main' }, [
          title,
          o.detail === null ? null : el('p', { class: 'flow-text', text: o.detail }),
        ]),
        button(o.tone === 'ok' ? 'Done' : 'Close', { testid: TID.connectClose }, () => this.modal?.close()),
      ],
    );
    box.dataset.outcome = o.tone;
    setModifier(box, 'flow', o.tone);
    region.replaceChildren(box);
  }

  private renderProviders(): void {
    const region = this.listRegion;
    if (!region) return;
    const providers = this.deps.providers();
    const error = this.deps.providersError();
    if (providers === null) {
      region.replaceChildren(
        error === null
          ? el('p', { class: 'muted', text: 'Loading platforms…' })
          : el('div', { class: 'inline-error-box', attrs: { role: 'alert' } }, [
              el('p', { text: `Could not list the platforms. ${error}` }),
              button('Try again', { small: true }, () => void this.deps.reloadProviders().then(() => this.renderProviders())),
            ]),
      );
      return;
    }
    const running = this.flow.phase === 'running';
    const list = el('ul', { class: 'providers', attrs: { 'aria-label': 'Platforms' } });
    for (const p of orderProviders(providers)) list.append(this.providerRow(p, running));
    const heading = el('h3', { class: 'section-title', text: 'Platforms' });
    region.replaceChildren(heading, list, this.customSection(providers, running));
  }

  private providerRow(p: Provider, running: boolean): HTMLElement {
    const label = providerLabel(p);
    const mark = el('div', { class: 'avatar avatar--sm', text: label.name.charAt(0).toUpperCase(), attrs: { 'aria-hidden': 'true' } });
    setModifier(mark, 'avatar', `c${colourSlot(p.id)}`);
    const nameBox = el('div', { class: 'provider-name' }, [
      el('span', { class: 'provider-title', text: label.name }),
      label.note === null ? null : el('span', { class: 'provider-note', text: label.note }),
      p.ready ? null : el('span', { class: 'provider-note provider-note--setup', text: 'Needs setup first' }),
    ]);
    const row = el('li', { class: 'provider', testid: TID.providerRow });
    row.dataset.providerId = p.id;
    if (p.origin === 'demo') row.classList.add('provider--demo');

    let action: HTMLButtonElement;
    if (p.ready) {
      action = button('Connect', {
        variant: 'primary',
        small: true,
        testid: providerConnectId(p.id),
        attrs: { 'aria-label': `Connect ${label.name}` },
      }, () => void this.start(p.id));
      action.disabled = running;
    } else {
      const open = this.openSetup === p.id;
      action = button(open ? 'Close setup' : 'Set up', {
        small: true,
        testid: providerSetupId(p.id),
        attrs: { 'aria-expanded': String(open), 'aria-label': `${open ? 'Close setup for' : 'Set up'} ${label.name}` },
      }, () => {
        this.openSetup = open ? null : p.id;
        this.renderProviders();
        const target = this.listRegion?.querySelector<HTMLElement>(
          open ? `[data-testid="${providerSetupId(p.id)}"]` : `[data-testid="${TID.configureForm}"] input`,
        );
        target?.focus();
      });
    }
    row.append(el('div', { class: 'provider-line' }, [mark, nameBox, action]));
    if (!p.ready && this.openSetup === p.id) row.append(this.configureForm(p));
    return row;
  }

  private configureForm(p: Provider): HTMLElement {
    const name = providerLabel(p).name;
    const authOptions = (Object.keys(AUTH_LABELS) as (keyof typeof AUTH_LABELS)[]).map((a) => ({
      value: a,
      label: AUTH_LABELS[a],
    }));
    const fields: Record<ConfigureField, Field> = {
      clientId: textField('Client ID', 'clientId', { value: p.clientId ?? '' }),
      clientSecret: textField('Client secret', 'clientSecret', {
        type: 'password',
        optional: !p.needsSecret || p.hasSecret,
        hint: p.hasSecret
          ? 'A secret is already saved. Leave this empty to keep it.'
          : p.needsSecret
            ? `${name} gives you a secret with the client ID. It is stored encrypted.`
            : 'Only if the platform gave you one. It is stored encrypted.',
      }),
      auth: selectField('How the secret is sent', 'auth', authOptions, p.auth, 'Keep the suggested choice unless the platform’s documentation says otherwise.', true),
    };
    const formError = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
    const save = el('button', { class: 'btn btn-primary btn-sm', text: 'Save', testid: TID.configureSave, attrs: { type: 'submit' } });
    const form = el('form', { class: 'setup-form', testid: TID.configureForm, attrs: { novalidate: '', 'aria-label': `Set up ${name}` } }, [
      p.needs ? el('p', { class: 'setup-needs', text: p.needs }) : null,
      p.redirectUri ? el('div', { class: 'setup-fact' }, [el('span', { class: 'field-label', text: 'Redirect URI to register' }), copyableText(p.redirectUri, 'redirect-uri', 'redirect URI')]) : null,
      p.setupUrl ? el('div', { class: 'setup-fact' }, [el('span', { class: 'field-label', text: 'Developer console (open it in your browser)' }), copyableText(p.setupUrl, 'setup-url', 'developer console address')]) : null,
      el('div', { class: 'form-grid' }, [fields.clientId.wrap, fields.clientSecret.wrap, fields.auth.wrap]),
      formError,
      el('div', { class: 'form-actions' }, [
        save,
        button('Cancel', { small: true, variant: 'ghost' }, () => {
          this.openSetup = null;
          this.renderProviders();
          this.listRegion?.querySelector<HTMLElement>(`[data-testid="${providerSetupId(p.id)}"]`)?.focus();
        }),
      ]),
    ]);
    form.dataset.providerId = p.id;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = validateConfigure(p, {
        clientId: fields.clientId.input.value,
        clientSecret: fields.clientSecret.input.value,
        auth: fields.auth.input.value as AuthChoice,
      });
      formError.hidden = true;
      if (!v.ok) {
        showErrors(fields, v.errors);
        return;
      }
      showErrors(fields, {});
      save.disabled = true;
      save.textContent = 'Saving…';
      this.deps.backend.configureProvider(v.args).then(
        (saved) => {
          fields.clientSecret.input.value = '';
          this.openSetup = null;
          this.deps.providerSaved(saved);
          this.renderProviders();
          const next = this.listRegion?.querySelector<HTMLElement>(
            `[data-testid="${saved.ready ? providerConnectId(saved.id) : providerSetupId(saved.id)}"]`,
          );
          next?.focus();
        },
        (err) => {
          save.disabled = false;
          save.textContent = 'Save';
          formError.hidden = false;
          formError.textContent = errorLine(err);
          if (err instanceof AppError && err.code === 'invalid') fields.clientId.input.focus();
        },
      );
    });
    return form;
  }

  private customSection(providers: Provider[], running: boolean): HTMLElement {
    const toggle = button(this.customOpen ? 'Close' : 'Add an OpenID provider', {
      small: true,
      variant: 'ghost',
      attrs: { 'aria-expanded': String(this.customOpen) },
    }, () => {
      this.customOpen = !this.customOpen;
      this.renderProviders();
      this.listRegion
        ?.querySelector<HTMLElement>(this.customOpen ? `[data-testid="${TID.customProviderForm}"] input` : '.custom-toggle')
        ?.focus();
    });
    toggle.classList.add('custom-toggle');
    toggle.disabled = running;
    const head = el('div', { class: 'custom-head' }, [
      el('div', {}, [
        el('h3', { class: 'section-title', text: 'Another platform?' }),
        el('p', { class: 'field-hint', text: 'Any service that supports OpenID Connect discovery (for example a Mastodon-compatible or self-hosted login).' }),
      ]),
      toggle,
    ]);
    const section = el('section', { class: 'custom' }, [head]);
    if (!this.customOpen) return section;

    const authOptions = [
      { value: '', label: 'Automatic — let Tokenkeep choose' },
      ...(Object.keys(AUTH_LABELS) as (keyof typeof AUTH_LABELS)[]).map((a) => ({ value: a, label: AUTH_LABELS[a] })),
    ];
    const fields: Record<CustomField, Field> = {
      displayName: textField('Name', 'displayName', { optional: true, placeholder: 'My Forum' }),
      id: textField('Short id', 'id', { hint: 'Lowercase letters, digits and dashes, e.g. my-forum.' }),
      issuer: textField('Issuer URL', 'issuer', { type: 'url', placeholder: 'https://auth.example.com' }),
      clientId: textField('Client ID', 'clientId'),
      clientSecret: textField('Client secret', 'clientSecret', { type: 'password', optional: true, hint: 'Stored encrypted.' }),
      auth: selectField('How the secret is sent', 'auth', authOptions, ''),
    };
    fields.issuer.wrap.classList.add('field--wide');
    fields.auth.wrap.classList.add('field--wide');
    const formError = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
    const save = el('button', { class: 'btn btn-primary btn-sm', text: 'Add provider', testid: TID.customProviderSave, attrs: { type: 'submit' } });
    const form = el('form', { class: 'setup-form', testid: TID.customProviderForm, attrs: { novalidate: '', 'aria-label': 'Add an OpenID provider' } }, [
      el('div', { class: 'form-grid' }, Object.values(fields).map((f) => f.wrap)),
      formError,
      el('div', { class: 'form-actions' }, [save]),
    ]);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = validateCustom(
        {
          id: fields.id.input.value,
          issuer: fields.issuer.input.value,
          displayName: fields.displayName.input.value,
          clientId: fields.clientId.input.value,
          clientSecret: fields.clientSecret.input.value,
          auth: fields.auth.input.value as AuthChoice,
        },
        providers.map((p) => p.id),
      );
      formError.hidden = true;
      if (!v.ok) {
        showErrors(fields, v.errors);
        return;
      }
      showErrors(fields, {});
      save.disabled = true;
      save.textContent = 'Checking the provider…';
      this.deps.backend.addCustomProvider(v.args).then(
        (saved) => {
          this.customOpen = false;
          this.deps.providerSaved(saved);
          this.renderProviders();
          this.listRegion
            ?.querySelector<HTMLElement>(`[data-testid="${saved.ready ? providerConnectId(saved.id) : providerSetupId(saved.id)}"]`)
            ?.focus();
        },
        (err) => {
          save.disabled = false;
          save.textContent = 'Add provider';
          formError.hidden = false;
          formError.textContent = errorLine(err);
        },
      );
    });
    section.append(form);
    return section;
  }
}
