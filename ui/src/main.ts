// Tokenkeep's window: header, vault banner, connections, and the Connect / Inspect / Disconnect dialogs.
//
// Test hooks: every `data-testid` is a constant in ./testids.ts (documented there), e.g.
// connection-card[data-connection-id][data-status][data-pill], status-pill, account-name, expiry,
// last-refresh, refresh-button, reconnect-button, inspect-button, disconnect-button, confirm-disconnect,
// disconnect-result, add-account-button, provider-<id>-connect, connect-waiting, connect-cancel,
// connect-outcome, inspect-dialog, reveal-<kind>, revealed-value, vault-banner, vault-retry.
// Kept from before: #empty-title ("No accounts connected yet"), #profile-badge, body[data-ready="true"].
//
// Updates arrive as events (`connection-status`, `connection-removed`, `attention`, `connect-progress`);
// nothing polls. One timer wakes when the nearest countdown or relative time on screen next reads differently.

import './styles.css';
import {
  AppError,
  hasTauri,
  type AccountPicture,
  tauriBackend,
  type AppInfo,
  type Attention,
  type Backend,
  type Connected,
  type Connection,
  type Paused,
  type Provider,
  type VaultStatus,
} from './api';
import { accountCountText, connectionsReducer, displayNames, groupConnections, matchesFilter, type ConnectionsAction, type Grouping } from './model/connections';
import { canRestore, errorLine } from './model/errors';
import { isPendingRevocation, nextRevocationChange } from './model/revocations';
import { cardMessage, derivePill, needsReconnect, nextCardChange } from './model/status';
import { expiryText, nowSeconds } from './model/time';
import { TID } from './testids';
import { describeLoadError, formatVersion, mockRequested, profileBadge } from './view-model';
import { ClipboardNotice } from './views/clipboard-notice';
import { ConnectPanel } from './views/connect-panel';
import { createCard, updateCard, type CardExtras } from './views/connection-card';
import { openDisconnectDialog } from './views/disconnect-dialog';
import { openSettingsDialog } from './views/settings-dialog';
import { button, byId, byTestId, el, setAttr, setHidden, setText } from './views/dom';
import { openInspectDialog } from './views/inspect-dialog';
import { openExportKeyDialog, openImportKeyDialog, renderKeyNotice } from './views/key-dialogs';
import { renderRevocations } from './views/revocations';
import { renderVaultBanner, renderVaultIndicator, type BannerState } from './views/vault';

// ---- State ---------------------------------------------------------------------------------------

interface State {
  info: AppInfo | null;
  vault: VaultStatus | null;
  banner: BannerState;
  providers: Provider[] | null;
  providersError: string | null;
  connections: readonly Connection[];
  /** null until `list_connections` answered; a string when it failed. */
  listState: 'loading' | 'loaded' | string;
  attention: Attention[];
  /** Problems the person dismissed from the summary (until the app restarts or the connection changes). */
  dismissed: Set<string>;
  busy: Map<string, 'refresh' | 'disconnect'>;
  cardErrors: Map<string, string>;
  /** The list filter (Ctrl+F). */
  filter: string;
  /** One list (problems first) or a section per platform; remembered across starts. */
  grouping: Grouping;
  /** Cards, or one row per account (twenty fit on a screen); remembered across starts. */
  compact: boolean;
  /** Confirmations shown on a card for a few seconds ("Refreshed — …"), with their timers. */
  cardNotes: Map<string, { text: string; timer: number }>;
  /** Pending revocations the person asked to try now, and what went wrong with such a try. */
  revoking: Set<string>;
  revocationErrors: Map<string, string>;
}

// How the list is laid out, kept in the webview's storage (nothing personal: two words).
const GROUPING_KEY = 'tokenkeep.grouping';
const COMPACT_KEY = 'tokenkeep.compact';

function stored(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function store(key: string, value: string): void {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // A webview without storage: the choice lasts until the app closes.
  }
}

function storedGrouping(): Grouping {
  return stored(GROUPING_KEY) === 'platform' ? 'platform' : 'none';
}

function setGrouping(grouping: Grouping): void {
  state.grouping = grouping;
  store(GROUPING_KEY, grouping);
  renderView(false);
}

function setCompact(compact: boolean): void {
  state.compact = compact;
  store(COMPACT_KEY, String(compact));
  renderView(false);
}

const state: State = {
  info: null,
  vault: null,
  banner: { retrying: false, retryError: null },
  providers: null,
  providersError: null,
  connections: [],
  listState: 'loading',
  attention: [],
  dismissed: new Set(),
  busy: new Map(),
  cardErrors: new Map(),
  cardNotes: new Map(),
  filter: '',
  grouping: storedGrouping(),
  compact: stored(COMPACT_KEY) === 'true',
  revoking: new Set(),
  revocationErrors: new Map(),
};

let backend: Backend = tauriBackend;
const cards = new Map<string, HTMLElement>();
/** The group headings on the list (by group key), kept like the cards so nothing is rebuilt. */
const groupHeads = new Map<string, HTMLElement>();
const lastPill = new Map<string, string>();
let connectPanel: ConnectPanel;
let clipboardNotice: ClipboardNotice;
/** How long a card's confirmation stays. */
const NOTE_MS = 6000;
/** The one timer: it fires when the nearest countdown or relative time on screen next reads differently. */
let clockTimer: number | undefined;

function cloneTemplate(id: string): DocumentFragment {
  return byId<HTMLTemplateElement>(id).content.cloneNode(true) as DocumentFragment;
}

function announce(text: string): void {
  const a = byId('announcer');
  a.textContent = '';
  // A fresh text node after clearing makes screen readers read it even when it repeats.
  window.setTimeout(() => {
    a.textContent = text;
  }, 50);
}

// ---- Loading -------------------------------------------------------------------------------------

function vaultFromError(err: unknown): VaultStatus {
  const e = err instanceof AppError ? err : new AppError('internal', 'The vault status is unknown.');
  return {
    ready: false,
    headless: state.info?.headless ?? false,
    error: { code: e.code as never, message: e.message },
  };
}

async function loadProviders(): Promise<void> {
  try {
    state.providers = await backend.listProviders();
    state.providersError = null;
  } catch (err) {
    state.providersError = errorLine(err);
  }
  connectPanel.refreshProviders();
  renderView();
}

async function loadConnections(): Promise<void> {
  try {
    const list = await backend.listConnections();
    dispatch({ type: 'loaded', connections: list }, false);
    state.listState = 'loaded';
  } catch (err) {
    state.listState = errorLine(err);
  }
  renderView();
  void takeTrayReconnect();
}

/**
 * Opens the sign-in of the account whose Reconnect was chosen in the tray. The app holds that choice until the
 * page takes it: when the window was closed, the tray builds it again and the choice is made before this page
 * listens, so the page also asks once its connections are listed. Taking it is once only, so the event and the
 * listing never both act on it; before the listing there is no card to reconnect, and the listing asks.
 */
async function takeTrayReconnect(): Promise<void> {
  if (state.listState !== 'loaded') return;
  let asked: { id: string } | null;
  try {
    asked = await backend.takeTrayReconnect();
  } catch (err) {
    console.error('cannot take the tray\'s reconnect', err);
    return;
  }
  const c = asked && state.connections.find((x) => x.id === asked.id);
  if (c) cardHandlers.reconnect(c);
}

async function loadVaultContents(): Promise<void> {
  await Promise.all([loadConnections(), loadProviders()]);
}

async function restoreBackup(): Promise<void> {
  state.banner = { retrying: false, restoring: true, retryError: null };
  renderVault();
  try {
    const restored = await backend.restoreBackup();
    state.vault = restored.status;
    state.banner = { retrying: false, retryError: null };
    const when = new Date(restored.takenAt * 1000).toLocaleString();
    const check =
      restored.checkNeeded > 0
        ? ` ${restored.checkNeeded} ${restored.checkNeeded === 1 ? 'needs' : 'need'} a check: their platform may have replaced the token since.`
        : '';
    announce(`Restored ${restored.connections} account(s) from the backup of ${when}.${check}`);
  } catch (err) {
    state.banner = { retrying: false, retryError: `Restore failed: ${errorLine(err)}` };
  }
  renderVault();
  // The restore announced what it brought back.
  await showOpened(state.vault?.ready === true, null);
}

async function retryVault(): Promise<void> {
  state.banner = { retrying: true, retryError: null };
  renderVault();
  try {
    state.vault = await backend.retryVault();
    state.banner = { retrying: false, retryError: null };
  } catch (err) {
    state.banner = { retrying: false, retryError: `Retry failed: ${errorLine(err)}` };
  }
  renderVault();
  if (!(await showOpened(state.vault?.ready === true, 'The vault is open.'))) {
    byTestId<HTMLElement>(document, TID.vaultRetry)?.focus();
  }
}

/** After the vault's state changed: loads the accounts if it just opened (and says so), else shows why not. */
async function showOpened(opened: boolean, said: string | null): Promise<boolean> {
  if (!opened) {
    renderView();
    return false;
  }
  if (said !== null) announce(said);
  state.listState = 'loading';
  renderView();
  await loadVaultContents();
  return true;
}

// ---- Events --------------------------------------------------------------------------------------

/** The vault opened (or failed again) by itself: the keyring it waited for started or was unlocked. */
async function vaultChanged(v: VaultStatus): Promise<void> {
  const wasReady = state.vault?.ready === true;
  state.vault = v;
  renderVault();
  await showOpened(v.ready && !wasReady, 'The keyring is available: the vault is open.');
}

function dispatch(action: ConnectionsAction, announceChanges = true): void {
  const before = state.connections;
  state.connections = connectionsReducer(state.connections, action);
  if (action.type === 'removed') {
    state.attention = state.attention.filter((a) => a.id !== action.id);
    state.busy.delete(action.id);
    state.cardErrors.delete(action.id);
    state.revoking.delete(action.id);
    state.revocationErrors.delete(action.id);
  }
  let cleared = false;
  if (action.type === 'status') {
    const c = action.connection;
    state.dismissed.delete(c.id);
    if (c.status === 'connected') {
      // Working again (an automatic retry succeeded, or a reconnect): an old failure no longer applies.
      const attention = state.attention.filter((a) => a.id !== c.id);
      cleared = attention.length !== state.attention.length || state.cardErrors.has(c.id);
      state.attention = attention;
      state.cardErrors.delete(c.id);
    }
  }
  // IMPORTANT: also when the connection itself reads as before (a reconnect's result can arrive before its
  // status event): the notices it cleared must go from the screen.
  if (before !== state.connections || cleared) renderView(announceChanges);
}

function onAttention(a: Attention): void {
  if (state.attention.some((x) => x.id === a.id && x.message === a.message)) return;
  state.attention = [...state.attention.filter((x) => x.id !== a.id), a];
  state.dismissed.delete(a.id);
  const conn = state.connections.find((c) => c.id === a.id);
  const said = (conn && cardMessage(conn, nowSeconds())) ?? a.message;
  announce(`${conn?.providerName || a.provider}, ${a.account}: ${said}`);
  renderView();
}

async function subscribe(): Promise<void> {
  const subs = [
    backend.on('connection-status', (c) => dispatch({ type: 'status', connection: c })),
    backend.on('connection-removed', ({ id }) => dispatch({ type: 'removed', id })),
    // Maybe `tokenkeep providers add` in a terminal: the panel shows the providers as they are now.
    backend.on('providers-changed', () => void loadProviders()),
    backend.on('attention', onAttention),
    backend.on('connect-progress', (p) => connectPanel.progress(p)),
    backend.on('vault-status', (v) => void vaultChanged(v)),
    backend.on('clipboard', (c) => clipboardNotice.show(c)),
    backend.on('refresh-paused', showPaused),
    backend.on('tray-reconnect', () => void takeTrayReconnect()),
  ];
  const results = await Promise.allSettled(subs);
  for (const r of results) if (r.status === 'rejected') console.error('event subscription failed', r.reason);
}

// ---- Actions -------------------------------------------------------------------------------------

const PAUSED_AT = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });

/** The header says while automatic refreshing is paused (from the tray), with a way to resume it. */
function showPaused({ until }: Paused): void {
  const note = byId('paused-note');
  const wasHidden = note.hidden;
  note.hidden = until === null;
  if (until !== null) {
    setText(byId('paused-text'), `Refreshing paused until ${PAUSED_AT.format(new Date(until * 1000))}`);
    if (wasHidden) announce(byId('paused-text').textContent ?? '');
  } else if (!wasHidden) {
    announce('Refreshing resumed.');
  }
}

function setBusy(id: string, busy: 'refresh' | 'disconnect' | null): void {
  if (busy === null) state.busy.delete(id);
  else state.busy.set(id, busy);
  renderView();
}

async function refresh(c: Connection): Promise<void> {
  state.cardErrors.delete(c.id);
  setBusy(c.id, 'refresh');
  try {
    const updated = await backend.refreshNow(c.id);
    state.busy.delete(c.id);
    const expires = typeof updated.expiresAt === 'number' ? `; the new token ${expiryText(updated.expiresAt, nowSeconds())}` : '';
    showNote(c.id, `Refreshed just now${expires}.`);
    dispatch({ type: 'status', connection: updated });
    announce(`${updated.providerName}, ${updated.account}: refreshed.`);
  } catch (err) {
    state.cardErrors.set(c.id, `Refresh failed. ${errorLine(err)}`);
  } finally {
    setBusy(c.id, null);
  }
}

/** A confirmation on the card itself, for a few seconds (the announcer tells screen readers the same). */
function showNote(id: string, text: string): void {
  const old = state.cardNotes.get(id);
  if (old) window.clearTimeout(old.timer);
  const timer = window.setTimeout(() => {
    state.cardNotes.delete(id);
    renderView(false);
  }, NOTE_MS);
  state.cardNotes.set(id, { text, timer });
}

function connected(res: Connected): void {
  announce(`Connected as ${res.account}.`);
  // The `connection-status` event brings the card; one reload makes sure nothing was missed.
  void loadConnections();
}

const cardHandlers = {
  refresh: (c: Connection) => void refresh(c),
  reconnect: (c: Connection) => {
    state.cardErrors.delete(c.id);
    void connectPanel.start(c.provider, { account: c.account });
  },
  inspect: (c: Connection) => openInspectDialog(c, backend),
  disconnect: (c: Connection) =>
    openDisconnectDialog(c, {
      backend,
      busy: (id, on) => setBusy(id, on ? 'disconnect' : null),
      removed: (id, result) => {
        if (result.pending) {
          // Kept for the revocation: the `connection-status` event moves it to "still revoking"; a reload makes
          // sure nothing was missed.
          announce(`${result.account} disconnected; Tokenkeep keeps trying to revoke its access.`);
          void loadConnections();
          return;
        }
        dispatch({ type: 'removed', id });
        announce(`${result.account} disconnected.`);
      },
    }),
};

const revocationHandlers = {
  retry: (c: Connection) => void retryRevocation(c),
  deleteNow: (c: Connection) => cardHandlers.disconnect(c),
};

/** "Try now" on a pending revocation: revoked and deleted, or still pending with the next try planned. */
async function retryRevocation(c: Connection): Promise<void> {
  const { provider, account } = displayNames(c);
  state.revoking.add(c.id);
  state.revocationErrors.delete(c.id);
  renderView(false);
  try {
    const result = await backend.disconnect(c.id, 'keep_trying');
    state.revoking.delete(c.id);
    if (result.pending) {
      // The platform's own words are in the disconnect dialog's details; here, the fact.
      state.revocationErrors.set(c.id, `Still couldn’t reach ${provider}. Tokenkeep keeps trying.`);
      void loadConnections();
    } else {
      dispatch({ type: 'removed', id: c.id });
      announce(`${provider}, ${account}: access revoked, and everything stored for it was deleted.`);
    }
  } catch (err) {
    state.revoking.delete(c.id);
    state.revocationErrors.set(c.id, errorLine(err));
  }
  renderView(false);
}

// ---- Rendering -----------------------------------------------------------------------------------

function renderHeader(info: AppInfo): void {
  const badge = profileBadge(info.profile);
  const badgeEl = byId('profile-badge');
  badgeEl.className = badge.className;
  badgeEl.textContent = badge.text;
  badgeEl.title = badge.description;
  byId('app-version').textContent = formatVersion(info.version);
  byId('app-meta').hidden = false;
  byId('data-dir').textContent = info.dataDir;
  byId('footer').hidden = false;
  if (info.name.trim() !== '') document.title = info.name;
}

function renderVault(): void {
  renderVaultIndicator(byId('vault-indicator'), state.vault);
  renderVaultBanner(
    byId('banner-region'),
    state.vault,
    state.banner,
    () => void retryVault(),
    () => void restoreBackup(),
    () => openImportKeyDialog(backend, (v) => void vaultChanged(v)),
  );
  renderKeyNotice(byId('key-notice-region'), state.vault, {
    export: () => openExportKeyDialog(backend, keyAcknowledged),
    acknowledge: () => void backend.acknowledgeKeyNotice().then(keyAcknowledged, (err) => announce(errorLine(err))),
  });
}

function keyAcknowledged(v: VaultStatus): void {
  const hadFocus = byId('key-notice-region').contains(document.activeElement);
  state.vault = v;
  renderVault();
  if (hadFocus) byTestId<HTMLElement>(document, TID.addAccountButton)?.focus();
}

function setCentered(centered: boolean): void {
  const content = byId('content');
  content.classList.toggle('content--center', centered);
  content.classList.toggle('content--list', !centered);
}

function hasDemo(): boolean {
  return state.providers?.some((p) => p.origin === 'demo' && p.ready) ?? false;
}

function renderEmpty(view: HTMLElement): void {
  if (view.dataset.mode === 'empty') {
    byTestId(view, TID.demoHint)!.hidden = !hasDemo();
    return;
  }
  view.dataset.mode = 'empty';
  const frag = cloneTemplate('tpl-empty');
  const connectBtn = byTestId<HTMLButtonElement>(frag, TID.emptyConnectButton)!;
  connectBtn.addEventListener('click', () => connectPanel.open());
  byTestId(frag, TID.demoHint)!.hidden = !hasDemo();
  view.replaceChildren(frag);
}

function renderNotice(view: HTMLElement, mode: string, title: string, text: string, action?: HTMLElement): void {
  view.dataset.mode = mode;
  view.replaceChildren(
    el('section', { class: 'card notice notice--quiet', attrs: { 'aria-labelledby': `${mode}-title` } }, [
      el('h1', { class: 'notice-title', text: title, attrs: { id: `${mode}-title` } }),
      el('p', { class: 'notice-text', text }),
      action ?? null,
    ]),
  );
}

/**
 * What the summary lists: every `attention` event of this run, and every connection that needs the person now —
 * also after a restart, when no event came — unless dismissed.
 */
function problems(): Attention[] {
  const listed = new Map<string, Attention>();
  for (const c of state.connections) {
    if (needsReconnect(c) && !state.dismissed.has(c.id)) {
      listed.set(c.id, { id: c.id, provider: c.provider, account: c.account, message: derivePill(c, nowSeconds()).meaning });
    }
  }
  for (const a of state.attention) if (!state.dismissed.has(a.id)) listed.set(a.id, a);
  return [...listed.values()];
}

/** Words for a notice row: the state, short (the card says the rest); the engine's sentence only without a card. */
function attentionText(a: Attention, conn: Connection | undefined): string {
  return conn ? derivePill(conn, nowSeconds()).text : a.message;
}

/**
 * The attention notices: one summary ("2 accounts need you — Review") that expands to one row per account. Built
 * once and updated in place, row by row (keyed by connection), so focus and the open/closed state survive events.
 */
function renderAttention(region: HTMLElement): void {
  let box = region.querySelector<HTMLDetailsElement>('details.attention-box');
  const shown = problems();
  if (shown.length === 0) {
    box?.remove();
    return;
  }
  if (box === null) {
    box = el('details', { class: 'attention-box', testid: TID.attentionSummary }, [
      el('summary', { class: 'attention-summary' }, [
        el('span', { class: 'attention-icon', text: '!', attrs: { 'aria-hidden': 'true' } }),
        el('span', { class: 'attention-count' }),
        el('span', { class: 'attention-review', text: 'Review' }),
      ]),
      el('ul', { class: 'attention-list' }),
    ]) as HTMLDetailsElement;
    // One account: its row is the summary's whole point, so it starts open.
    box.open = shown.length === 1;
    region.append(box);
  }
  const n = shown.length;
  setText(box.querySelector('.attention-count')!, `${n === 1 ? '1 account needs' : `${n} accounts need`} you`);
  const list = box.querySelector<HTMLElement>('.attention-list')!;
  const rows = new Map<string, HTMLElement>();
  for (const row of list.querySelectorAll<HTMLElement>(':scope > li')) rows.set(row.dataset.connectionId ?? '', row);
  const wanted = new Set(shown.map((a) => a.id));
  for (const [id, row] of rows) {
    if (!wanted.has(id)) {
      const hadFocus = row.contains(document.activeElement);
      row.remove();
      if (hadFocus) (box.querySelector<HTMLElement>('summary') ?? byTestId<HTMLElement>(document, TID.addAccountButton))?.focus();
    }
  }
  let prev: Element | null = null;
  for (const a of shown) {
    const conn = state.connections.find((c) => c.id === a.id);
    const names = conn ? displayNames(conn) : { provider: a.provider, account: a.account };
    let row = rows.get(a.id);
    if (!row || !row.isConnected) {
      const reconnect = button('Reconnect', { small: true, variant: 'primary', class: 'attention-reconnect' }, () => {
        const c = state.connections.find((x) => x.id === a.id);
        if (c) cardHandlers.reconnect(c);
      });
      const dismiss = button('Dismiss', { small: true, variant: 'ghost', class: 'attention-dismiss' }, () => {
        state.attention = state.attention.filter((x) => x.id !== a.id);
        state.dismissed.add(a.id);
        renderView();
      });
      row = el('li', { class: 'attention', testid: TID.attention }, [
        el('p', { class: 'attention-text' }, [el('strong', { class: 'attention-who' }), el('span', { class: 'attention-what' })]),
        el('div', { class: 'attention-actions' }, [reconnect, dismiss]),
      ]);
      row.dataset.connectionId = a.id;
    }
    setText(row.querySelector('.attention-who')!, `${names.provider} · ${names.account}: `);
    setText(row.querySelector('.attention-what')!, attentionText(a, conn));
    const reconnect = row.querySelector<HTMLButtonElement>('.attention-reconnect')!;
    setHidden(reconnect, !(conn && needsReconnect(conn)));
    setAttr(reconnect, 'aria-label', `Reconnect ${names.provider}, ${names.account}`);
    setAttr(row.querySelector('.attention-dismiss')!, 'aria-label', `Dismiss the notice about ${names.provider}, ${names.account}`);
    const expected: Element | null = prev === null ? list.firstElementChild : prev.nextElementSibling;
    if (expected !== row) {
      if (prev === null) list.prepend(row);
      else prev.after(row);
    }
    prev = row;
  }
}

/**
 * When (Unix seconds) each card's or row's text next changes with the clock alone. A change further off than a
 * couple of seconds is a minute-level text ("refreshed 4 min ago"): it is moved to the next mark of a one-minute
 * grid, so that a thousand cards whose minutes turn at a thousand different seconds are updated in one batch a
 * minute, not one wake-up after another (a minute-level text is at most a minute late). Countdowns in seconds
 * stay exact.
 */
const due = new Map<string, number>();
const GRID_SECONDS = 60;

/**
 * The cards on screen (or within a screen of it). The clock updates only these: a card scrolled away waits, and is
 * brought up to date the moment it comes near the view — with a thousand accounts the window does the work of the
 * ten or so that can be seen.
 */
const onScreen = new Set<string>();
const visibility =
  typeof IntersectionObserver === 'undefined'
    ? null
    : new IntersectionObserver(
        (entries) => {
          const now = nowSeconds();
          for (const e of entries) {
            const id = (e.target as HTMLElement).dataset.connectionId ?? '';
            if (!e.isIntersecting) {
              onScreen.delete(id);
              continue;
            }
            onScreen.add(id);
            const at = due.get(id);
            const c = state.connections.find((x) => x.id === id);
            const card = cards.get(id);
            const unloaded = c?.picture ? !pictures.has(c.picture) : false;
            if (c && card && ((at !== undefined && at <= now) || unloaded)) {
              updateCard(card, c, now, cardExtras(c));
              due.set(id, dueAt(c, now));
            }
          }
          scheduleClock(now);
        },
        { rootMargin: '25% 0px' },
      );

/** Whether the clock should keep `id`'s text current now. */
function watched(c: Connection): boolean {
  return visibility === null || isPendingRevocation(c) || onScreen.has(c.id);
}

function dueAt(c: Connection, now: number): number {
  const wait = isPendingRevocation(c) ? nextRevocationChange(c, now) : nextCardChange(c, now);
  if (!Number.isFinite(wait)) return Infinity;
  const at = now + wait;
  return wait <= 2 ? at : Math.ceil(at / GRID_SECONDS) * GRID_SECONDS;
}

/** Sleeps until the nearest change of anything the clock alone changes on screen (no 1-second re-render). */
function scheduleClock(now: number): void {
  if (clockTimer !== undefined) window.clearTimeout(clockTimer);
  clockTimer = undefined;
  let next = Infinity;
  for (const c of state.connections) {
    const at = due.get(c.id);
    if (at !== undefined && watched(c)) next = Math.min(next, at);
  }
  if (!Number.isFinite(next)) return;
  // A little past the moment, so the new text is there; at most an hour (timers drift across suspend).
  clockTimer = window.setTimeout(tick, Math.min(Math.max(0, next - now) * 1000 + 30, 3_600_000));
}

/** The clock moved on: only the cards (and rows) whose text changed now are updated. */
function tick(): void {
  clockTimer = undefined;
  const view = byId('view');
  if (view.dataset.mode !== 'list') return;
  const now = nowSeconds();
  let rows = false;
  for (const c of state.connections) {
    const at = due.get(c.id);
    if (at === undefined || at > now || !watched(c)) continue;
    if (isPendingRevocation(c)) {
      rows = true;
    } else {
      const card = cards.get(c.id);
      if (card) updateCard(card, c, now, cardExtras(c));
    }
    due.set(c.id, dueAt(c, now));
  }
  if (rows) renderRevocationRows(view, now);
  scheduleClock(now);
}

function cardExtras(c: Connection): CardExtras {
  return {
    busy: state.busy.get(c.id) ?? null,
    error: state.cardErrors.get(c.id) ?? null,
    note: state.cardNotes.get(c.id)?.text ?? null,
    picture: pictureFor(c),
  };
}

/**
 * Account pictures by tag, loaded (from the vault: nothing is fetched from the platform) when their card first
 * comes near the view, and kept while some connection names them.
 */
const pictures = new Map<string, AccountPicture | 'loading' | 'none'>();

function pictureFor(c: Connection): AccountPicture | null {
  const tag = c.picture;
  const id = c.id;
  if (!tag) return null;
  const known = pictures.get(tag);
  if (typeof known === 'object') return known;
  if (known === undefined && watched(c)) {
    pictures.set(tag, 'loading');
    backend.accountPicture(id).then(
      (picture) => {
        pictures.set(tag, picture && picture.tag === tag ? picture : 'none');
        const latest = state.connections.find((x) => x.id === id);
        const card = cards.get(id);
        if (latest && card && byId('view').dataset.mode === 'list') {
          updateCard(card, latest, nowSeconds(), cardExtras(latest));
        }
      },
      // The letter or the mark stays; the next list (a reconnect changes the tag) tries again.
      () => pictures.delete(tag),
    );
  }
  return null;
}

function forgetUnusedPictures(): void {
  const used = new Set(state.connections.map((c) => c.picture).filter((t): t is string => Boolean(t)));
  for (const tag of pictures.keys()) if (!used.has(tag)) pictures.delete(tag);
}

function renderRevocationRows(view: HTMLElement, now: number): void {
  renderRevocations(
    view.querySelector<HTMLElement>('.revocations-region')!,
    state.connections.filter(isPendingRevocation),
    now,
    revocationHandlers,
    { busy: state.revoking, errors: state.revocationErrors },
    () => byTestId<HTMLElement>(view, TID.addAccountButton),
  );
}

function renderList(view: HTMLElement, announceChanges: boolean): void {
  if (view.dataset.mode !== 'list') {
    view.dataset.mode = 'list';
    visibility?.disconnect();
    onScreen.clear();
    cards.clear();
    groupHeads.clear();
    const add = button('Add account', { variant: 'primary', testid: TID.addAccountButton, attrs: { 'aria-keyshortcuts': 'Control+N' } }, () => connectPanel.open());
    add.prepend(el('span', { class: 'btn-icon', text: '+', attrs: { 'aria-hidden': 'true' } }));
    const filter = el('input', {
      class: 'input filter-input',
      testid: TID.filter,
      attrs: {
        type: 'search',
        placeholder: 'Filter (Ctrl+F)',
        'aria-label': 'Filter accounts by platform or name',
        'aria-keyshortcuts': 'Control+F',
        autocomplete: 'off',
        spellcheck: 'false',
      },
    }) as HTMLInputElement;
    filter.value = state.filter;
    filter.addEventListener('input', () => {
      state.filter = filter.value;
      renderView(false);
    });
    filter.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && filter.value !== '') {
        ev.preventDefault();
        filter.value = '';
        state.filter = '';
        renderView(false);
      }
    });
    const group = button('By platform', { testid: TID.groupToggle, attrs: { 'aria-pressed': String(state.grouping === 'platform'), 'aria-label': 'Group by platform', title: 'Group by platform' } }, () =>
      setGrouping(state.grouping === 'platform' ? 'none' : 'platform'),
    );
    const compact = button('Compact', { testid: TID.compactToggle, attrs: { 'aria-pressed': String(state.compact), title: 'One line per account' } }, () =>
      setCompact(!state.compact),
    );
    view.replaceChildren(
      el('section', { class: 'list-view', attrs: { 'aria-labelledby': 'connections-title' } }, [
        el('div', { class: 'list-head' }, [
          el('div', {}, [
            el('h1', { class: 'list-title', text: 'Connections', attrs: { id: 'connections-title' } }),
            el('p', { class: 'list-sub' }),
          ]),
          el('div', { class: 'list-tools' }, [filter, compact, group, add]),
        ]),
        el('div', { class: 'attention-region' }),
        el('p', { class: 'filter-empty', testid: TID.filterEmpty, hidden: true }),
        el('ul', { class: 'conn-list', testid: TID.connections, attrs: { 'aria-labelledby': 'connections-title' } }),
        el('div', { class: 'revocations-region' }),
      ]),
    );
  }
  // Disconnected accounts still being revoked are not accounts any more: they have their own section.
  const accounts = state.connections.filter((c) => !isPendingRevocation(c));
  const n = accounts.length;
  const sub = view.querySelector<HTMLElement>('.list-sub')!;
  setText(sub, `${accountCountText(n)} · tokens are refreshed automatically while Tokenkeep runs`);
  renderAttention(view.querySelector<HTMLElement>('.attention-region')!);

  const list = byTestId<HTMLElement>(view, TID.connections)!;
  const now = nowSeconds();
  let matched = 0;
  const seen = new Set<string>();
  let prev: Element | null = null;
  const place = (item: Element): void => {
    const expected: Element | null = prev === null ? list.firstElementChild : prev.nextElementSibling;
    if (expected !== item) {
      if (prev === null) list.prepend(item);
      else prev.after(item);
    }
    prev = item;
  };
  const renderCard = (c: Connection): void => {
    seen.add(c.id);
    let card = cards.get(c.id);
    if (!card) {
      card = createCard(c, cardHandlers);
      cards.set(c.id, card);
      visibility?.observe(card);
    }
    updateCard(card, c, now, cardExtras(c));
    const item = card.parentElement ?? el('li', { class: 'conn-item' }, [card]);
    const shown = matchesFilter(c, state.filter);
    setHidden(item, !shown);
    if (shown) matched += 1;
    place(item);
    const pill = card.dataset.pill ?? '';
    const was = lastPill.get(c.id);
    if (announceChanges && was !== undefined && was !== pill) {
      const n = displayNames(c);
      announce(`${n.provider}, ${n.account}: ${derivePill(c, now).text}`);
    }
    lastPill.set(c.id, pill);
  };
  const groupToggle = byTestId<HTMLElement>(view, TID.groupToggle)!;
  setAttr(groupToggle, 'aria-pressed', String(state.grouping === 'platform'));
  setHidden(groupToggle, accounts.length < 2);
  const compactToggle = byTestId<HTMLElement>(view, TID.compactToggle)!;
  setAttr(compactToggle, 'aria-pressed', String(state.compact));
  setHidden(compactToggle, accounts.length === 0);
  list.classList.toggle('conn-list--compact', state.compact);
  const usedHeads = new Set<string>();
  for (const g of groupConnections(accounts, state.grouping)) {
    if (g.title !== '') {
      usedHeads.add(g.key);
      let head = groupHeads.get(g.key);
      if (!head) {
        head = el('li', { class: 'conn-group-head', testid: TID.groupHead }, [
          el('h2', { class: 'conn-group-title' }, [el('span', { class: 'conn-group-name' }), el('span', { class: 'conn-group-count' })]),
        ]);
        head.dataset.group = g.key;
        groupHeads.set(g.key, head);
      }
      setText(head.querySelector('.conn-group-name')!, g.title);
      const count = g.problems > 0 ? `${accountCountText(g.items.length)} · ${g.problems} need${g.problems === 1 ? 's' : ''} you` : accountCountText(g.items.length);
      setText(head.querySelector('.conn-group-count')!, count);
      setHidden(head, !g.items.some((c) => matchesFilter(c, state.filter)));
      place(head);
    }
    for (const c of g.items) renderCard(c);
  }
  for (const [key, head] of groupHeads) {
    if (!usedHeads.has(key)) {
      head.remove();
      groupHeads.delete(key);
    }
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      const hadFocus = card.contains(document.activeElement);
      visibility?.unobserve(card);
      onScreen.delete(id);
      (card.parentElement ?? card).remove();
      cards.delete(id);
      lastPill.delete(id);
      if (hadFocus) byTestId<HTMLElement>(view, TID.addAccountButton)?.focus();
    }
  }
  const none = byTestId<HTMLElement>(view, TID.filterEmpty)!;
  setHidden(none, matched > 0 || accounts.length === 0);
  setText(none, `No account matches “${state.filter.trim()}”. Esc clears the filter.`);
  renderRevocationRows(view, now);
  forgetUnusedPictures();
  due.clear();
  for (const c of state.connections) due.set(c.id, dueAt(c, now));
  scheduleClock(now);
}

/** Ctrl+N adds an account; Ctrl+F filters the list. Not while a dialog is open (it has its own keys). */
function onShortcut(ev: KeyboardEvent): void {
  if (!(ev.ctrlKey || ev.metaKey) || ev.altKey || ev.shiftKey) return;
  if (document.querySelector('dialog[open]') !== null || state.vault?.ready !== true) return;
  const key = ev.key.toLowerCase();
  if (key === 'n') {
    ev.preventDefault();
    connectPanel.open();
  } else if (key === 'f' && byId('view').dataset.mode === 'list') {
    ev.preventDefault();
    const filter = byTestId<HTMLInputElement>(document, TID.filter);
    filter?.focus();
    filter?.select();
  }
}

function renderView(announceChanges = true): void {
  const view = byId('view');
  const vault = state.vault;
  if (vault === null) return;
  if (!vault.ready) {
    setCentered(true);
    const restorable = canRestore(vault.error);
    const [title, text] = restorable
      ? [
          'Your connections are in the backup',
          'Tokenkeep didn’t open the damaged data, so nothing in it was changed. Restore from backup brings your ' +
            'accounts back as of their last change.',
        ]
      : vault.storeExists === false
        ? ['No accounts yet', 'Once Tokenkeep can keep its key, you can connect your first account here.']
        : [
            'Your connections are safe, but locked',
            'Tokenkeep can’t open your vault yet, so your accounts aren’t shown. Nothing has been lost. ' +
              (vault.retryable === false ? 'Follow the steps above.' : 'Follow the steps above, then press Retry.'),
          ];
    renderNotice(view, 'locked', title, text);
    return;
  }
  if (state.listState === 'loading') {
    setCentered(true);
    if (view.dataset.mode !== 'loading') {
      view.dataset.mode = 'loading';
      view.replaceChildren(el('p', { class: 'loading', text: 'Loading your connections…' }));
    }
    return;
  }
  if (state.listState !== 'loaded') {
    setCentered(true);
    const again = button('Try again', { variant: 'primary' }, () => {
      state.listState = 'loading';
      renderView();
      void loadConnections();
    });
    renderNotice(view, 'list-error', 'Your connections could not be listed', state.listState, el('div', { class: 'actions' }, [again]));
    return;
  }
  if (state.connections.length === 0) {
    setCentered(true);
    renderEmpty(view);
    return;
  }
  setCentered(false);
  renderList(view, announceChanges);
}

function renderError(err: unknown): void {
  const view = describeLoadError(err);
  const frag = cloneTemplate('tpl-error');
  const q = <T extends Element>(sel: string): T => {
    const e = frag.querySelector<T>(sel);
    if (!e) throw new Error(`${sel} missing from #tpl-error`);
    return e;
  };
  q('.notice-title').textContent = view.title;
  q('.notice-text').textContent = view.detail;
  if (view.code !== null) {
    q('.notice-code code').textContent = view.code;
    q<HTMLElement>('.notice-code').hidden = false;
  }
  byId('view').replaceChildren(frag);
}

// ---- Start ---------------------------------------------------------------------------------------

async function start(): Promise<void> {
  const content = byId('content');
  let scenario: (() => Promise<void>) | null = null;
  try {
    // DEV ONLY (`npm run dev` in a plain browser, with ?mock). `import.meta.env.DEV` is the constant `false` in
    // a production build, so Vite drops this branch and the mock module with it: `ui/dist` holds no mock code
    // (`src/bundle.test.ts` builds the bundle and checks).
    if (import.meta.env.DEV && mockRequested(window.location.search, hasTauri())) {
      const mock = await import('./dev-mock');
      const m = mock.createMock(window.location.search);
      backend = m.backend;
      scenario = m.scenario;
    }
    clipboardNotice = new ClipboardNotice(backend);
    connectPanel = new ConnectPanel({
      backend,
      providers: () => state.providers,
      providersError: () => state.providersError,
      reloadProviders: loadProviders,
      providerSaved: (p) => {
        const list = state.providers ?? [];
        state.providers = list.some((x) => x.id === p.id) ? list.map((x) => (x.id === p.id ? p : x)) : [...list, p];
        renderView();
      },
      providerRemoved: (p, disconnected) => {
        const name = p.name;
        const accounts = disconnected === 0 ? '' : ` and disconnected ${accountCountText(disconnected)}`;
        announce(p.origin === 'custom' ? `Removed ${name}${accounts}.` : `Forgot the setup of ${name}${accounts}.`);
      },
      accountsOf: (id) => state.connections.filter((c) => c.provider === id && !isPendingRevocation(c)).length,
      connected,
      customRedirectUri: () => state.info?.customRedirectUri ?? null,
    });

    state.info = await backend.appInfo();
    renderHeader(state.info);
    await subscribe();
    try {
      state.vault = await backend.vaultStatus();
    } catch (err) {
      state.vault = vaultFromError(err);
    }
    renderVault();
    if (state.vault.ready) await loadVaultContents();
    else renderView();
    document.body.dataset.state = 'ready';
  } catch (err) {
    if (!(err instanceof AppError)) console.error(err);
    setCentered(true);
    renderError(err);
    document.body.dataset.state = 'error';
  } finally {
    content.setAttribute('aria-busy', 'false');
    document.body.dataset.ready = 'true';
  }
  document.addEventListener('keydown', onShortcut);
  byId('settings-button').addEventListener('click', () => openSettingsDialog(backend, announce));
  // Where no tray shows the icon, closing the window quits: say so where it is always visible.
  backend.getSettings().then(
    (s) => {
      byId('tray-missing-note').hidden = s.trayAvailable;
    },
    () => {},
  );
  byId('resume-refreshing').addEventListener('click', () => {
    backend.pauseRefreshing(null).then(showPaused, (err: unknown) => announce(errorLine(err)));
  });
  // After a suspend the clock jumped: bring every time on screen up to date at once.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && byId('view').dataset.mode === 'list') renderView(false);
  });
  if (scenario) await scenario();
}

void start();
