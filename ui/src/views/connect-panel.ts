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
  validateImport,
  validateServer,
  type AuthChoice,
  type ConfigureField,
  type CustomField,
  type ImportField,
  type ServerField,
} from '../model/forms';
import { connectFailed, connectSucceeded, orderProviders, providerLabel, type ConnectOutcome } from '../model/outcomes';
import { colourSlot } from '../model/connections';
import { TID, providerConnectId, providerEditId, providerSetupId } from '../testids';
import { button, copyableText, el, setModifier } from './dom';
import { focusFirst, openModal, type Modal } from './dialog';
import { selectField, showErrors, textAreaField, textField, type Field } from './form';
import { setAvatar } from './mark';

export interface ConnectPanelDeps {
  backend: Backend;
  providers(): Provider[] | null;
  providersError(): string | null;
  reloadProviders(): Promise<void>;
  /** A provider changed (configured or added). */
  providerSaved(p: Provider): void;
  /** A provider was removed (or a built-in one's setup forgotten), with `disconnected` accounts (the panel
   * reloads the providers itself, to put the focus back). */
  providerRemoved(p: Provider, disconnected: number): void;
  /** How many accounts are connected with this provider. */
  accountsOf(providerId: string): number;
  connected(c: Connected): void;
  /** The redirect URI to register for an OpenID provider added by its issuer (from `app_info`). */
  customRedirectUri(): string | null;
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
  private importOpen = false;

  constructor(private readonly deps: ConnectPanelDeps) {}

  get isOpen(): boolean {
    return this.modal !== null;
  }

  get running(): boolean {
    return this.flow.phase === 'running';
  }

  /**
   * Opens the panel: "Add an account", or, given the account being signed in again, "Reconnect ACCOUNT" (the
   * same platforms and flow; only what the person is doing is named differently).
   */
  open(reconnecting?: { account: string; platform: string }): void {
    if (this.modal) return;
    if (this.flow.phase === 'done') this.flow = { phase: 'idle' };
    this.modal = openModal({
      title: reconnecting ? `Reconnect ${reconnecting.account}` : 'Add an account',
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
        this.importOpen = false;
        if (this.flow.phase === 'done') this.flow = { phase: 'idle' };
      },
    });
    const privacy =
      'Tokenkeep never sees your password, only the tokens the platform gives back, which are encrypted on this ' +
      'computer.';
    const intro = el('p', {
      class: 'modal-intro',
      text: reconnecting
        ? `Your browser opens so you can sign in to ${reconnecting.platform} again as ${reconnecting.account}; ` +
          `the connection keeps its place and gets the new tokens. ${privacy}`
        : `Pick a platform. Your browser opens so you can sign in there; ${privacy}`,
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

  /**
   * Opens the panel (if needed) and starts signing in to `providerId`; `reconnecting` names the account when this
   * signs an existing connection in again.
   */
  async start(providerId: string, reconnecting?: { account: string }): Promise<void> {
    if (this.flow.phase === 'running') return;
    const p = this.deps.providers()?.find((x) => x.id === providerId);
    const name = p ? providerLabel(p).name : providerId;
    this.open(reconnecting ? { account: reconnecting.account, platform: name } : undefined);
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
    // The providers can change under the person (a terminal, an event): a focused button keeps the focus.
    const active = document.activeElement;
    const kept = active instanceof HTMLElement && region.contains(active) ? active.dataset.testid : undefined;
    region.replaceChildren(heading, list, this.customSection(providers, running), this.importSection(running));
    if (kept) region.querySelector<HTMLElement>(`[data-testid="${kept}"]`)?.focus();
  }

  private providerRow(p: Provider, running: boolean): HTMLElement {
    const label = providerLabel(p);
    const mark = el('div', { class: 'avatar avatar--sm', attrs: { 'aria-hidden': 'true' } });
    setAvatar(mark, { platform: p.platform, letter: label.name.charAt(0).toUpperCase(), slot: colourSlot(p.id) });
    const nameBox = el('div', { class: 'provider-name' }, [
      el('span', { class: 'provider-title', text: label.name }),
      label.note === null ? null : el('span', { class: 'provider-note', text: label.note }),
      p.ready ? null : el('span', { class: 'provider-note provider-note--setup', text: 'Needs setup first' }),
      p.ready && p.developmentClient
        ? el('span', { class: 'provider-note', text: 'Development client: short sessions', attrs: { title: 'Works without registering an app. For full-length sessions, host your own client document: tokenkeep providers client-metadata' } })
        : null,
    ]);
    const row = el('li', { class: 'provider', testid: TID.providerRow });
    row.dataset.providerId = p.id;
    if (p.origin === 'demo') row.classList.add('provider--demo');

    let action: HTMLButtonElement;
    let edit: HTMLButtonElement | null = null;
    if (p.ready) {
      action = button('Connect', {
        variant: 'primary',
        small: true,
        testid: providerConnectId(p.id),
        attrs: { 'aria-label': `Connect ${label.name}` },
      }, () => void this.start(p.id));
      action.disabled = running;
      if (isSetUp(p)) {
        const open = this.openSetup === p.id;
        edit = button(open ? 'Close' : 'Edit', {
          small: true,
          variant: 'ghost',
          testid: providerEditId(p.id),
          attrs: { 'aria-expanded': String(open), 'aria-label': `${open ? 'Close the setup of' : 'Edit the setup of'} ${label.name}` },
        }, () => {
          this.openSetup = open ? null : p.id;
          this.renderProviders();
          this.listRegion
            ?.querySelector<HTMLElement>(open ? `[data-testid="${providerEditId(p.id)}"]` : `[data-testid="${TID.configureForm}"] input`)
            ?.focus();
        });
        edit.disabled = running;
      }
    } else {
      const open = this.openSetup === p.id;
      action = button(open ? 'Close setup' : p.template ? 'Add your server' : 'Set up', {
        small: true,
        testid: providerSetupId(p.id),
        attrs: { 'aria-expanded': String(open), 'aria-label': `${open ? 'Close setup for' : 'Set up'} ${label.name}` },
      }, () => {
        this.openSetup = open ? null : p.id;
        this.renderProviders();
        const target = this.listRegion?.querySelector<HTMLElement>(
          open
            ? `[data-testid="${providerSetupId(p.id)}"]`
            : `[data-testid="${p.template ? TID.serverForm : TID.configureForm}"] input`,
        );
        target?.focus();
      });
    }
    row.append(el('div', { class: 'provider-line' }, [mark, nameBox, el('div', { class: 'provider-actions' }, [edit, action])]));
    if (this.openSetup === p.id) row.append(p.template ? this.serverForm(p) : this.configureForm(p));
    return row;
  }

  /** After a provider was saved: closes its form, tells the app, and focuses what comes next. */
  private saved(saved: Provider): void {
    this.openSetup = null;
    this.deps.providerSaved(saved);
    this.renderProviders();
    const next = this.listRegion?.querySelector<HTMLElement>(
      `[data-testid="${saved.ready ? providerConnectId(saved.id) : providerSetupId(saved.id)}"]`,
    );
    next?.focus();
  }

  /** A platform of many servers (Mastodon): the person names their server; Tokenkeep registers itself there. */
  private serverForm(p: Provider): HTMLElement {
    const name = providerLabel(p).name;
    const fields: Record<ServerField, Field> = {
      server: textField('Your server', 'server', {
        placeholder: 'mastodon.social',
        hint: `The address of the ${name} server your account is on. Tokenkeep registers itself there as an app; no developer account is needed.`,
      }),
    };
    fields.server.wrap.classList.add('field--wide');
    const formError = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
    const save = el('button', { class: 'btn btn-primary btn-sm', text: 'Add server', testid: TID.serverSave, attrs: { type: 'submit' } });
    const form = el('form', { class: 'setup-form', testid: TID.serverForm, attrs: { novalidate: '', 'aria-label': `Add your ${name} server` } }, [
      el('p', { class: 'setup-needs', text: `${name} runs on many servers, each with its own sign-in. Name yours and Tokenkeep adds it as a platform of its own.` }),
      el('div', { class: 'form-grid' }, [fields.server.wrap]),
      formError,
      el('div', { class: 'form-actions' }, [save]),
    ]);
    form.dataset.providerId = p.id;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = validateServer(p.id, { server: fields.server.input.value });
      formError.hidden = true;
      if (!v.ok) {
        showErrors(fields, v.errors);
        return;
      }
      showErrors(fields, {});
      save.disabled = true;
      save.textContent = 'Registering…';
      this.deps.backend.addServer(v.args).then(
        (saved) => this.saved(saved),
        (err) => {
          save.disabled = false;
          save.textContent = 'Add server';
          formError.hidden = false;
          formError.textContent = errorLine(err);
          fields.server.input.focus();
        },
      );
    });
    return form;
  }

  /** The developer console as a link (opened by the app: the webview opens no addresses itself). */
  private consoleLink(p: Provider, name: string): HTMLElement {
    const status = el('span', { class: 'copy-status', attrs: { role: 'status' } });
    const open = button(`Open the ${name} developer console`, { small: true, testid: TID.setupOpen }, () => {
      this.deps.backend.openSetupPage(p.id).then(
        () => {
          status.textContent = 'Opened in your browser';
        },
        (err) => {
          status.textContent = errorLine(err);
        },
      );
    });
    return el('div', { class: 'setup-fact' }, [
      el('span', { class: 'field-label', text: 'Where to register' }),
      el('div', { class: 'setup-link' }, [open, status]),
      copyableText(p.setupUrl ?? '', 'setup-url', 'developer console address'),
    ]);
  }

  private configureForm(p: Provider): HTMLElement {
    const name = providerLabel(p).name;
    const authOptions = (Object.keys(AUTH_LABELS) as (keyof typeof AUTH_LABELS)[]).map((a) => ({
      value: a,
      label: AUTH_LABELS[a],
    }));
    const paste = p.redirect === 'paste';
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
      redirectUri: textField('Your redirect page', 'redirectUri', {
        type: 'url',
        value: p.pastePage ?? '',
        placeholder: 'https://your.site/tokenkeep',
        hint: `${name} sends the browser back only to an https page. Register one you control as the app’s redirect URI and enter it here; after you approve a sign-in, you paste the address the browser lands on.`,
      }),
    };
    fields.redirectUri.wrap.classList.add('field--wide');
    const formError = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
    const save = el('button', { class: 'btn btn-primary btn-sm', text: 'Save', testid: TID.configureSave, attrs: { type: 'submit' } });
    const back = p.ready ? providerEditId(p.id) : providerSetupId(p.id);
    const form = el('form', { class: 'setup-form', testid: TID.configureForm, attrs: { novalidate: '', 'aria-label': `${p.ready ? 'Edit the setup of' : 'Set up'} ${name}` } }, [
      p.needs ? el('p', { class: 'setup-needs', text: p.needs }) : null,
      p.redirectUri && !paste ? el('div', { class: 'setup-fact' }, [el('span', { class: 'field-label', text: 'Redirect URI to register' }), copyableText(p.redirectUri, 'redirect-uri', 'redirect URI')]) : null,
      p.setupUrl ? this.consoleLink(p, name) : null,
      el('div', { class: 'form-grid' }, [fields.clientId.wrap, fields.clientSecret.wrap, paste ? fields.redirectUri.wrap : null]),
      // The definition already knows how the secret is sent: the choice waits behind "Advanced".
      p.origin === 'builtin' || p.origin === 'demo'
        ? el('details', { class: 'setup-advanced' }, [el('summary', { text: 'Advanced: how the secret is sent' }), fields.auth.wrap])
        : fields.auth.wrap,
      formError,
      el('div', { class: 'form-actions' }, [
        save,
        button('Cancel', { small: true, variant: 'ghost' }, () => {
          this.openSetup = null;
          this.renderProviders();
          this.listRegion?.querySelector<HTMLElement>(`[data-testid="${back}"]`)?.focus();
        }),
        isSetUp(p) ? this.removeControl(p, name) : null,
      ]),
    ]);
    form.dataset.providerId = p.id;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = validateConfigure(p, {
        clientId: fields.clientId.input.value,
        clientSecret: fields.clientSecret.input.value,
        auth: fields.auth.input.value as AuthChoice,
        redirectUri: fields.redirectUri.input.value,
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
          this.saved(saved);
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

  /**
   * "Remove…" for a provider that is set up, then a confirmation that says what goes with it: a custom provider is
   * removed; a built-in one forgets its client ID and secret (it stays listed, needing setup). Accounts connected
   * with it are disconnected first (revoked at the platform, deleted).
   */
  private removeControl(p: Provider, name: string): HTMLElement {
    const box = el('div', { class: 'provider-remove' });
    const custom = p.origin === 'custom';
    const ask = (): void => {
      const n = this.deps.accountsOf(p.id);
      const what = custom ? `Remove ${name} from Tokenkeep?` : `Forget the setup of ${name}? ${p.hasSecret ? 'Its client ID and secret are' : 'Its client ID is'} deleted; you can set it up again.`;
      const accounts = n === 0 ? '' : ` ${n === 1 ? 'The 1 account' : `The ${n} accounts`} connected with it ${n === 1 ? 'is' : 'are'} disconnected first (revoked at ${name}) and deleted.`;
      const error = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
      const keep = button('Keep it', { small: true, variant: 'ghost' }, () => {
        box.replaceChildren(start);
        start.focus();
      });
      const confirm = button(custom ? 'Remove' : 'Forget setup', { small: true, variant: 'danger', testid: TID.providerRemoveConfirm }, () => {
        confirm.disabled = true;
        keep.disabled = true;
        confirm.textContent = n > 0 ? 'Disconnecting…' : 'Removing…';
        this.deps.backend.removeProvider(p.id, n > 0).then(
          (removed) => {
            this.openSetup = null;
            this.deps.providerRemoved(p, removed.disconnected);
            // The form (or the whole row) is gone with the focus in it: focus goes to the row's own button
            // (Set up, for a built-in), or the first platform's when the row went too.
            void this.deps.reloadProviders().then(() => {
              const list = this.listRegion;
              (
                list?.querySelector<HTMLElement>(`[data-provider-id="${p.id}"] .provider-actions button`) ??
                list?.querySelector<HTMLElement>('.providers .provider-actions button')
              )?.focus();
            });
          },
          (err) => {
            confirm.disabled = false;
            keep.disabled = false;
            confirm.textContent = custom ? 'Remove' : 'Forget setup';
            error.hidden = false;
            error.textContent = errorLine(err);
          },
        );
      });
      box.replaceChildren(el('div', { class: 'provider-remove-confirm', attrs: { role: 'group', 'aria-label': `Remove ${name}` } }, [
        el('p', { class: 'provider-remove-text', text: what + accounts }),
        error,
        el('div', { class: 'form-actions' }, [confirm, keep]),
      ]));
      keep.focus();
    };
    const start = button(custom ? 'Remove…' : 'Forget setup…', { small: true, variant: 'danger', testid: TID.providerRemove, attrs: { 'aria-label': `${custom ? 'Remove' : 'Forget the setup of'} ${name}` } }, ask);
    box.append(start);
    return box;
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
        el('p', { class: 'field-hint', text: 'Any service that supports OpenID Connect discovery (for example a self-hosted login).' }),
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
    const redirect = this.deps.customRedirectUri();
    const form = el('form', { class: 'setup-form', testid: TID.customProviderForm, attrs: { novalidate: '', 'aria-label': 'Add an OpenID provider' } }, [
      redirect === null
        ? null
        : el('div', { class: 'setup-fact' }, [
            el('span', { class: 'field-label', text: 'Redirect URI to register with the provider (any port)' }),
            copyableText(redirect, TID.customRedirectUri, 'redirect URI'),
          ]),
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

  /** "Import a definition": a provider in the catalog's own TOML format, from a file or pasted. */
  private importSection(running: boolean): HTMLElement {
    const toggle = button(this.importOpen ? 'Close' : 'Import a definition', {
      small: true,
      variant: 'ghost',
      testid: TID.importToggle,
      attrs: { 'aria-expanded': String(this.importOpen) },
    }, () => {
      this.importOpen = !this.importOpen;
      this.renderProviders();
      this.listRegion
        ?.querySelector<HTMLElement>(this.importOpen ? `[data-testid="${TID.importForm}"] textarea` : `[data-testid="${TID.importToggle}"]`)
        ?.focus();
    });
    toggle.disabled = running;
    const head = el('div', { class: 'custom-head' }, [
      el('div', {}, [
        el('h3', { class: 'section-title', text: 'A platform Tokenkeep does not ship?' }),
        el('p', { class: 'field-hint', text: 'Import its definition: a .toml file in the format of Tokenkeep’s own presets (docs/PROVIDERS.md). One with the id of a built-in platform replaces it.' }),
      ]),
      toggle,
    ]);
    const section = el('section', { class: 'custom' }, [head]);
    if (!this.importOpen) return section;

    const fields: Record<ImportField, Field> = {
      name: textField('File', 'name', { optional: true, placeholder: 'my-platform.toml' }),
      text: textAreaField('Definition', 'text', { placeholder: 'id = "my-platform"\ndisplay_name = "My Platform"\n…' }),
    };
    fields.name.wrap.hidden = true;
    const file = el('input', { class: 'input', testid: TID.importFile, attrs: { type: 'file', accept: '.toml,text/plain', 'aria-label': 'Choose a definition file' } });
    file.addEventListener('change', () => {
      const chosen = file.files?.[0];
      if (!chosen) return;
      if (chosen.size > 64 * 1024) {
        fields.text.setError('That file is too large for a provider definition (64 KiB at most).');
        return;
      }
      void chosen.text().then((text) => {
        fields.text.input.value = text;
        fields.name.input.value = chosen.name;
        fields.text.setError(undefined);
      });
    });
    const formError = el('p', { class: 'inline-error', attrs: { role: 'alert' }, hidden: true });
    const save = el('button', { class: 'btn btn-primary btn-sm', text: 'Import', testid: TID.importSave, attrs: { type: 'submit' } });
    const form = el('form', { class: 'setup-form', testid: TID.importForm, attrs: { novalidate: '', 'aria-label': 'Import a provider definition' } }, [
      el('div', { class: 'field field--wide' }, [el('span', { class: 'field-label', text: 'From a file' }), file]),
      el('div', { class: 'form-grid' }, [fields.name.wrap, fields.text.wrap]),
      formError,
      el('div', { class: 'form-actions' }, [save]),
    ]);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = validateImport({ name: fields.name.input.value, text: fields.text.input.value });
      formError.hidden = true;
      if (!v.ok) {
        showErrors(fields, v.errors);
        return;
      }
      showErrors(fields, {});
      save.disabled = true;
      save.textContent = 'Checking…';
      this.deps.backend.importProvider(v.args).then(
        (saved) => {
          this.importOpen = false;
          this.saved(saved);
        },
        (err) => {
          save.disabled = false;
          save.textContent = 'Import';
          formError.hidden = false;
          formError.textContent = errorLine(err);
          fields.text.input.focus();
        },
      );
    });
    section.append(form);
    return section;
  }
}

/** Set up by the person (a custom provider, or a built-in with a client ID or secret): it can be edited or removed. */
function isSetUp(p: Provider): boolean {
  if (p.origin === 'demo' || p.template) return false;
  return p.origin === 'custom' || Boolean(p.clientId) || p.hasSecret;
}
