// Typed wrappers around Tokenkeep's Tauri commands and events — exactly docs/IPC.md.
//
// Every command goes through `call`, which turns whatever the backend rejects
// with into an `AppError`. The backend's error shape is `{ code, message }`
// (`CommandError`); Tauri itself may also reject with a plain string (e.g. an
// unknown command or one the capability does not grant).
//
// Changing a command or event: change docs/IPC.md, the Rust side
// (`src-tauri/src/{commands,dto,events}.rs`) and this file in the same commit.

import { invoke, type InvokeArgs } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

// ---- Contract types (docs/IPC.md) ------------------------------------------

/** Every `code` a command can reject with. */
export type ErrorCode =
  | 'keyring_locked'
  | 'keyring_unavailable'
  | 'key_missing'
  | 'wrong_key'
  | 'store_locked'
  | 'store_damaged'
  | 'store_missing'
  | 'store'
  | 'provider_unreachable'
  | 'provider_rejected'
  | 'declined'
  | 'timeout'
  | 'cancelled'
  | 'busy'
  | 'needs_reconnect'
  | 'not_found'
  | 'invalid'
  | 'internal';

export const ERROR_CODES: readonly ErrorCode[] = [
  'keyring_locked',
  'keyring_unavailable',
  'key_missing',
  'wrong_key',
  'store_locked',
  'store_damaged',
  'store_missing',
  'store',
  'provider_unreachable',
  'provider_rejected',
  'declined',
  'timeout',
  'cancelled',
  'busy',
  'needs_reconnect',
  'not_found',
  'invalid',
  'internal',
];

/** What every failing command rejects with. `message` is one sentence for people. */
export interface CommandError {
  code: ErrorCode;
  message: string;
}

export interface AppInfo {
  name: string;
  version: string;
  profile: string;
  dataDir: string;
  headless: boolean;
  /** The redirect URI to register for an OpenID provider added by its issuer (any port). */
  customRedirectUri?: string;
}

export interface VaultStatus {
  ready: boolean;
  keyId?: string | null;
  headless: boolean;
  error?: CommandError | null;
  /** Whether Retry can help (not when headless and TOKENKEEP_MASTER_KEY itself is the problem). */
  retryable?: boolean;
  /** The app watches the keyring and opens the vault by itself when it starts or is unlocked. */
  watching?: boolean;
  /** A store exists (or existed) in this profile; false on a first run, when nothing is at stake. */
  storeExists?: boolean;
  /** The keyring key was created (or rotated) and the person has not yet been told what losing it means. */
  keyNotice?: boolean;
}

/** `export_key`: the vault's master key (base64, the form TOKENKEEP_MASTER_KEY takes), because the person asked. */
export interface ExportedKey {
  keyId: string;
  key: string;
}

/** What `restore_backup` did (the old store is kept aside, never deleted). */
export interface Restored {
  status: VaultStatus;
  connections: number;
  /** Connections whose refresh token may have rotated since the backup: the next refresh tells. */
  checkNeeded: number;
  /** When the backup was taken (Unix seconds). */
  takenAt: number;
  setAside: string | null;
}

export type Auth = 'none' | 'basic' | 'post' | 'basic-id';
export const AUTH_METHODS: readonly Auth[] = ['none', 'basic', 'post', 'basic-id'];

export type ProviderOrigin = 'builtin' | 'demo' | 'custom';

export interface Provider {
  id: string;
  name: string;
  origin: ProviderOrigin;
  ready: boolean;
  /** Why it is not ready, in words (register where, with which redirect URI). */
  needs?: string | null;
  setupUrl?: string | null;
  redirectUri?: string | null;
  clientId?: string | null;
  auth: Auth;
  needsSecret: boolean;
  hasSecret: boolean;
  scopes: string[];
  /** `loopback`: the browser comes back to Tokenkeep. `paste`: to a registered https page, whose address is pasted. */
  redirect: 'loopback' | 'paste';
  /** For `paste`: the https page configured as the redirect. */
  pastePage?: string | null;
  /** A platform of many servers (Mastodon) before a server is named: set up with `addServer`. */
  template: boolean;
  /** Whose mark to show (`youtube`, `x`, …); absent for a custom provider. */
  platform?: string | null;
  /** Runs on the AT Protocol's development client: no registration needed, short sessions. */
  developmentClient?: boolean;
}

export type Status =
  | 'connected'
  | 'refreshing'
  | 'retrying'
  | 'needs_reconnect'
  | 'interrupted'
  | 'error'
  | 'check_needed'
  | 'revocation_pending';

/** A revocation Tokenkeep keeps trying after a disconnect that could not reach the platform (Unix seconds). */
export interface PendingRevocation {
  since: number;
  attempts: number;
  nextAttemptAt: number;
  giveUpAt: number;
  /** Where to revoke by hand, if the platform has such a page. */
  manageUrl?: string | null;
}

export interface Connection {
  id: string;
  provider: string;
  providerName: string;
  account: string;
  status: Status;
  expiresAt?: number | null;
  lastRefreshAt?: number | null;
  lastError?: string | null;
  /** While `retrying`: when Tokenkeep tries again (Unix seconds). */
  retryAt?: number | null;
  scopes: string[];
  /** While `revocation_pending`: how the revocation is going. */
  revocation?: PendingRevocation | null;
  /** Set instead of the rest when the record cannot be read. */
  damaged?: string | null;
  /** Whose mark to show (`youtube`, `x`, …); absent for a custom provider. */
  platform?: string | null;
  /** The tag of the account picture stored at connect (it changes when the picture does); absent when none. */
  picture?: string | null;
}

/** What `removeProvider` did. */
export interface RemovedProvider {
  id: string;
  /** How many accounts were disconnected first. */
  disconnected: number;
  /** A built-in provider whose setup was forgotten: still listed, needing setup. */
  setupForgotten: boolean;
}

/** An account picture stored at connect: sniffed PNG/JPEG/GIF/WebP, never fetched at display time. */
export interface AccountPicture {
  tag: string;
  /** A `data:` address (the window's CSP allows `data:` images and nothing remote). */
  dataUrl: string;
}

export interface Connected {
  id: string;
  account: string;
  replaced: boolean;
}

export type Revocation = 'revoked' | 'not_supported' | 'failed' | 'skipped' | 'not_tried';

/** What `disconnect` does when the platform cannot be reached to revoke. */
export type IfRevocationFails = 'keep_trying' | 'delete_now';

export interface Disconnected {
  account: string;
  provider: string;
  revocation: Revocation;
  detail?: string | null;
  manageUrl?: string | null;
  /** Set when revoking failed and Tokenkeep keeps trying: the account stays, `revocation_pending`. */
  pending?: PendingRevocation | null;
}

export type TokenKind = 'access_token' | 'refresh_token' | 'id_token';
export const TOKEN_KINDS: readonly TokenKind[] = ['access_token', 'refresh_token', 'id_token'];

export interface TokenInfo {
  kind: TokenKind;
  present: boolean;
  length?: number | null;
  /** Decoded when the token is a JWT; the signature is not included. */
  jwt?: { header: object; claims: object } | null;
}

export type Inspection = Connection & {
  subject?: string | null;
  createdAt: number;
  updatedAt: number;
  keyId: string;
  tokens: TokenInfo[];
  /** The `tokenkeep api` command line for this connection (absent for a platform without an API base). */
  apiCommand?: string | null;
  /** "bound to a key (DPoP, ES256, thumbprint …)" when the tokens are bound (the public thumbprint only). */
  binding?: string | null;
};

export interface Revealed {
  value: string;
}

export interface ConfigureProviderArgs {
  id: string;
  clientId: string;
  clientSecret?: string;
  auth?: Auth;
  /** For a `paste` provider: the https page registered as its redirect. */
  redirectUri?: string;
}

export interface AddServerArgs {
  /** The template's id (`mastodon`). */
  template: string;
  /** The person's server (`mastodon.social`). */
  server: string;
}

export interface ImportProviderArgs {
  /** The file's name, for messages. */
  name: string;
  /** The definition, in the catalog's TOML format. */
  text: string;
}

export interface AddCustomProviderArgs {
  id: string;
  issuer: string;
  displayName?: string;
  clientId: string;
  clientSecret?: string;
  auth?: Auth;
}

// ---- Events ----------------------------------------------------------------

export interface ConnectProgress {
  provider: string;
  /**
   * `waiting_for_browser`: `url` is the sign-in page. `waiting_for_paste`: the platform sends the browser to the
   * registered https page `url`; the person pastes the address it landed on (`pasteSignInAddress`).
   */
  stage: 'waiting_for_browser' | 'waiting_for_paste';
  url: string;
  /** Whether the browser could be started; when not, the URL must be opened by hand. */
  opened: boolean;
}

export interface Attention {
  id: string;
  provider: string;
  account: string;
  message: string;
}

/** Backend events and their payloads. */
export interface AppEvents {
  'connection-status': Connection;
  'connection-removed': { id: string };
  /** The providers changed (here, or `tokenkeep providers add` while the app runs): list them again. */
  'providers-changed': null;
  attention: Attention;
  'connect-progress': ConnectProgress;
  /** The vault opened, or failed again, without a command (the keyring it waited for changed). */
  'vault-status': VaultStatus;
  /** A copied token: on the clipboard until `clearsAt`, cleared, or replaced by something the person copied. */
  clipboard: ClipboardState;
  /** Automatic refreshing was paused (from the tray, or here) or resumed. */
  'refresh-paused': Paused;
  /** The person chose an account's Reconnect in the tray menu: open it. */
  'tray-reconnect': { id: string };
}

/** The Settings panel (`settings.json` in the profile), and what this desktop allows. */
export interface SettingsView {
  startAtLogin: boolean;
  keepRunning: boolean;
  notifications: boolean;
  clipboardSeconds: number;
  /** A tray host shows Tokenkeep's icon; without one, closing the window quits. */
  trayAvailable: boolean;
  /** The autostart entry's path. */
  autostartEntry?: string;
  /** `TOKENKEEP_CLIPBOARD_SECONDS` fixes the clipboard time for this run. */
  clipboardFromEnv: boolean;
}

/** The settings to change; absent ones stay. */
export interface SettingsChange {
  startAtLogin?: boolean;
  keepRunning?: boolean;
  notifications?: boolean;
  clipboardSeconds?: number;
}

/** Until when automatic refreshing is paused (Unix seconds), or `null`: it runs. */
export interface Paused {
  until: number | null;
}

/** A token copied by `copy_token` (times in Unix seconds). */
export type ClipboardState =
  | { state: 'holding'; clearsAt: number; seconds: number }
  | { state: 'cleared' }
  | { state: 'replaced' };

export type EventName = keyof AppEvents;
export const EVENT_NAMES: readonly EventName[] = [
  'clipboard',
  'connection-status',
  'connection-removed',
  'providers-changed',
  'attention',
  'connect-progress',
  'vault-status',
  'refresh-paused',
  'tray-reconnect',
];

export type Unlisten = () => void;

// ---- Errors ----------------------------------------------------------------

/** Error codes produced on the front-end side (the backend defines its own). */
export const FRONTEND_ERROR_CODES = {
  /** The page is not running inside the Tauri webview. */
  noTauri: 'no_tauri',
  /** The rejection value was not in the backend's `{ code, message }` shape. */
  unknown: 'unknown',
} as const;

/** A failed command, normalised from the backend's `{ code, message }`. */
export class AppError extends Error {
  /** An `ErrorCode`, or one of `FRONTEND_ERROR_CODES`. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'AppError';
    this.code = code;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Turns any rejection value into an `AppError`. Pure. */
export function toAppError(raw: unknown): AppError {
  if (raw instanceof AppError) return raw;
  if (isRecord(raw) && typeof raw.code === 'string' && typeof raw.message === 'string') {
    return new AppError(raw.code, raw.message);
  }
  if (raw instanceof Error) {
    return new AppError(FRONTEND_ERROR_CODES.unknown, raw.message || raw.name);
  }
  if (typeof raw === 'string' && raw.trim() !== '') {
    return new AppError(FRONTEND_ERROR_CODES.unknown, raw);
  }
  if (isRecord(raw) && typeof raw.message === 'string') {
    return new AppError(FRONTEND_ERROR_CODES.unknown, raw.message);
  }
  return new AppError(FRONTEND_ERROR_CODES.unknown, 'Unexpected error from the app backend.');
}

interface TauriWindow {
  __TAURI_INTERNALS__?: unknown;
}

/** True when the page runs inside the Tauri webview (IPC available). */
export function hasTauri(win: unknown = globalThis): boolean {
  return isRecord(win) && (win as TauriWindow).__TAURI_INTERNALS__ !== undefined;
}

function noTauri(): AppError {
  return new AppError(
    FRONTEND_ERROR_CODES.noTauri,
    'Tokenkeep’s interface is not running inside the Tokenkeep app.',
  );
}

/** Invokes a backend command; rejects only with `AppError`. */
export async function call<T>(cmd: string, args?: InvokeArgs): Promise<T> {
  if (!hasTauri()) throw noTauri();
  try {
    return await invoke<T>(cmd, args);
  } catch (raw) {
    throw toAppError(raw);
  }
}

/** Drops `undefined` members so optional arguments are omitted, not sent as null. */
export function compact<T extends object>(args: T): T {
  return Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined)) as T;
}

// ---- Commands --------------------------------------------------------------

export const getAppInfo = (): Promise<AppInfo> => call<AppInfo>('app_info');
export const vaultStatus = (): Promise<VaultStatus> => call<VaultStatus>('vault_status');
export const retryVault = (): Promise<VaultStatus> => call<VaultStatus>('retry_vault');
/** While the store is damaged or missing: restores the newest good backup, then opens the vault. */
export const restoreBackup = (): Promise<Restored> => call<Restored>('restore_backup');
/** Opens a provider's developer console in the browser (only the address its definition names). */
export const openSetupPage = (id: string): Promise<null> => call<null>('open_setup_page', { id });
/** The master key for a backup (explicit: the window asks the person to confirm first). */
export const exportKey = (): Promise<ExportedKey> => call<ExportedKey>('export_key');
/** The person was told about the key: the notice is not shown again for it. */
export const acknowledgeKeyNotice = (): Promise<VaultStatus> => call<VaultStatus>('acknowledge_key_notice');
/** An exported key back into the keyring (only the store's own key), then the vault opens. */
export const importKey = (key: string): Promise<VaultStatus> => call<VaultStatus>('import_key', { key });
export const listProviders = (): Promise<Provider[]> => call<Provider[]>('list_providers');
export const configureProvider = (args: ConfigureProviderArgs): Promise<Provider> =>
  call<Provider>('configure_provider', { ...compact(args) });
export const addCustomProvider = (args: AddCustomProviderArgs): Promise<Provider> =>
  call<Provider>('add_custom_provider', { ...compact(args) });
/** Registers Tokenkeep at the person's server; resolves to that server's own provider. */
export const addServer = (args: AddServerArgs): Promise<Provider> =>
  call<Provider>('add_server', { ...args });
export const importProvider = (args: ImportProviderArgs): Promise<Provider> =>
  call<Provider>('import_provider', { ...args });
/**
 * Removes a custom provider, or forgets a built-in one's setup (client ID and secret). Refused (`invalid`) while
 * accounts use it, unless `withConnections`: they are disconnected first (revoked at the platform, deleted).
 */
export const removeProvider = (id: string, withConnections = false): Promise<RemovedProvider> =>
  call<RemovedProvider>('remove_provider', { id, withConnections });
/** Resolves when the flow ends (connected), rejects with declined/timeout/cancelled/busy/…. */
export const connect = (provider: string): Promise<Connected> =>
  call<Connected>('connect', { provider });
export const cancelConnect = (): Promise<null> => call<null>('cancel_connect');
/** The address the browser landed on, for a sign-in waiting for it (`connect-progress` `waiting_for_paste`). */
export const pasteSignInAddress = (address: string): Promise<null> =>
  call<null>('paste_sign_in_address', { address });
export const listConnections = (): Promise<Connection[]> =>
  call<Connection[]>('list_connections');
export const refreshNow = (id: string): Promise<Connection> =>
  call<Connection>('refresh_now', { id });
export const getSettings = (): Promise<SettingsView> => call<SettingsView>('get_settings');
export const setSettings = (change: SettingsChange): Promise<SettingsView> =>
  call<SettingsView>('set_settings', { change });
/** The account whose Reconnect was chosen in the tray and not taken yet (once), or `null`. */
export const takeTrayReconnect = (): Promise<{ id: string } | null> =>
  call<{ id: string } | null>('take_tray_reconnect');
/** Pauses automatic refreshing for `minutes`, or resumes it (`null`); returns until when it is paused. */
export const pauseRefreshing = (minutes: number | null): Promise<Paused> =>
  call<Paused>('pause_refreshing', { minutes });
export const disconnect = (id: string, ifRevocationFails: IfRevocationFails = 'keep_trying'): Promise<Disconnected> =>
  call<Disconnected>('disconnect', { id, ifRevocationFails });
export const inspect = (id: string): Promise<Inspection> => call<Inspection>('inspect', { id });
/** The account picture stored at connect, or `null`. */
export const accountPicture = (id: string): Promise<AccountPicture | null> =>
  call<AccountPicture | null>('account_picture', { id });
/** Copies a token to the clipboard from Rust (the page never holds it); cleared after a while if still there. */
export const copyToken = (id: string, kind: TokenKind): Promise<ClipboardState> =>
  call<ClipboardState>('copy_token', { id, kind });
/** Takes a copied token off the clipboard now, if it is still there. */
export const clearClipboard = (): Promise<ClipboardState> => call<ClipboardState>('clear_clipboard');
/** The only command that returns token bytes: call it only when the user presses "Reveal". */
export const reveal = (id: string, kind: TokenKind): Promise<Revealed> =>
  call<Revealed>('reveal', { id, kind });

// ---- Events ----------------------------------------------------------------

/** Subscribes to a backend event; resolves to an unsubscribe function. */
export async function onEvent<K extends EventName>(
  event: K,
  handler: (payload: AppEvents[K]) => void,
): Promise<Unlisten> {
  if (!hasTauri()) {
    throw new AppError(FRONTEND_ERROR_CODES.noTauri, 'Events need the Tokenkeep app.');
  }
  try {
    return await listen<AppEvents[K]>(event, (e) => handler(e.payload));
  } catch (raw) {
    throw toAppError(raw);
  }
}

export const onConnectionStatus = (h: (c: Connection) => void): Promise<Unlisten> =>
  onEvent('connection-status', h);
export const onConnectionRemoved = (h: (p: { id: string }) => void): Promise<Unlisten> =>
  onEvent('connection-removed', h);
export const onProvidersChanged = (h: () => void): Promise<Unlisten> => onEvent('providers-changed', () => h());
export const onAttention = (h: (p: Attention) => void): Promise<Unlisten> =>
  onEvent('attention', h);
export const onConnectProgress = (h: (p: ConnectProgress) => void): Promise<Unlisten> =>
  onEvent('connect-progress', h);
export const onVaultStatus = (h: (p: VaultStatus) => void): Promise<Unlisten> => onEvent('vault-status', h);

// ---- The backend as one object (so the dev mock can stand in for it) --------

export interface Backend {
  appInfo(): Promise<AppInfo>;
  vaultStatus(): Promise<VaultStatus>;
  retryVault(): Promise<VaultStatus>;
  restoreBackup(): Promise<Restored>;
  exportKey(): Promise<ExportedKey>;
  openSetupPage(id: string): Promise<null>;
  acknowledgeKeyNotice(): Promise<VaultStatus>;
  importKey(key: string): Promise<VaultStatus>;
  listProviders(): Promise<Provider[]>;
  configureProvider(args: ConfigureProviderArgs): Promise<Provider>;
  addCustomProvider(args: AddCustomProviderArgs): Promise<Provider>;
  addServer(args: AddServerArgs): Promise<Provider>;
  importProvider(args: ImportProviderArgs): Promise<Provider>;
  removeProvider(id: string, withConnections?: boolean): Promise<RemovedProvider>;
  connect(provider: string): Promise<Connected>;
  cancelConnect(): Promise<null>;
  pasteSignInAddress(address: string): Promise<null>;
  listConnections(): Promise<Connection[]>;
  refreshNow(id: string): Promise<Connection>;
  pauseRefreshing(minutes: number | null): Promise<Paused>;
  getSettings(): Promise<SettingsView>;
  setSettings(change: SettingsChange): Promise<SettingsView>;
  takeTrayReconnect(): Promise<{ id: string } | null>;
  disconnect(id: string, ifRevocationFails?: IfRevocationFails): Promise<Disconnected>;
  inspect(id: string): Promise<Inspection>;
  accountPicture(id: string): Promise<AccountPicture | null>;
  reveal(id: string, kind: TokenKind): Promise<Revealed>;
  copyToken(id: string, kind: TokenKind): Promise<ClipboardState>;
  clearClipboard(): Promise<ClipboardState>;
  on<K extends EventName>(event: K, handler: (payload: AppEvents[K]) => void): Promise<Unlisten>;
}

/** The real backend: Tauri IPC. */
export const tauriBackend: Backend = {
  appInfo: getAppInfo,
  vaultStatus,
  retryVault,
  restoreBackup,
  exportKey,
  openSetupPage,
  acknowledgeKeyNotice,
  importKey,
  listProviders,
  configureProvider,
  addCustomProvider,
  addServer,
  importProvider,
  removeProvider,
  connect,
  cancelConnect,
  pasteSignInAddress,
  listConnections,
  refreshNow,
  pauseRefreshing,
  getSettings,
  setSettings,
  takeTrayReconnect,
  copyToken,
  clearClipboard,
  disconnect,
  inspect,
  accountPicture,
  reveal,
  on: onEvent,
};
