// Stable `data-testid` hooks for the end-to-end (WebDriver) tests. The code uses these constants, so the
// names here are the ones in the DOM. Select with `[data-testid="…"]`.
//
//   Header         vault-indicator (data-tone: ok|bad|pending), #profile-badge (id, existing)
//   Vault          vault-banner (data-code: the error code), vault-retry
//   List           connections (the list), connection-card (data-connection-id, data-provider, data-status = backend
//                  status, data-pill = shown pill: connected|refreshing|expiring_soon|expired|retrying|
//                  needs_reconnect|interrupted|error|damaged), and inside each card: status-pill,
//                  provider-name, account-name, expiry, last-refresh, scopes, last-error, card-error,
//                  refresh-button, reconnect-button (hidden unless offered:
//                  needs_reconnect / interrupted / error), inspect-button,
//                  disconnect-button
//                  attention (a notice from the `attention` event; data-connection-id)
//   Empty state    #empty-title (id, existing), empty-connect-button, demo-hint
//   Disconnect     disconnect-dialog, confirm-disconnect, cancel-disconnect,
//                  disconnect-result (data-revocation: revoked|not_supported|failed|skipped), manage-url
//   Connect        add-account-button, connect-panel (dialog), provider-row (data-provider-id),
//                  provider-<id>-connect, provider-<id>-setup (opens the form), configure-form
//                  (data-provider-id; a paste platform's has input[name=redirectUri]), configure-save,
//                  server-form (a platform of many servers: input[name=server]), server-save,
//                  custom-provider-form, custom-provider-save, import-toggle, import-form
//                  (textarea[name=text]), import-file, import-save,
//                  connect-waiting, connect-url (the sign-in address, selectable), connect-cancel,
//                  connect-outcome (data-outcome: ok|neutral|warn|bad), connect-close
//   Inspect        inspect-dialog, inspect-close, api-command, api-command-copy, token-binding, token-row (data-kind, data-present), reveal-<kind>
//                  (reveal-access_token, reveal-refresh_token, reveal-id_token), revealed-value
//                  (only in the DOM while shown), reveal-countdown, reveal-copy, reveal-hide, jwt-claims

import type { TokenKind } from './api';

export const TID = {
  vaultIndicator: 'vault-indicator',
  vaultBanner: 'vault-banner',
  vaultRetry: 'vault-retry',
  vaultRestore: 'vault-restore',
  /** "Tokenkeep continues by itself…" while the app watches the keyring. */
  vaultWatching: 'vault-watching',
  /** The banner's "Import key…" while the keyring lacks the vault's key. */
  vaultImportKey: 'vault-import-key',
  /** The once-only notice that the vault key was created, its Export and "Got it". */
  keyNotice: 'key-notice',
  keyExport: 'key-export',
  keyNoticeDismiss: 'key-notice-dismiss',
  /** The export dialog: "Show the key", the key, "Done — I saved it". */
  keyDialog: 'key-dialog',
  keyShow: 'key-show',
  keyValue: 'key-value',
  keySaved: 'key-saved',
  /** The import dialog, its input and button. */
  keyImportDialog: 'key-import-dialog',
  keyImportInput: 'key-import-input',
  keyImportSave: 'key-import-save',

  connections: 'connections',
  /** The list's filter (Ctrl+F) and what it says when nothing matches. */
  filter: 'filter',
  filterEmpty: 'filter-empty',
  /** "Group by platform" (aria-pressed), and each group's heading (data-group: the platform). */
  groupToggle: 'group-toggle',
  /** "Compact" (aria-pressed): one row per account. */
  compactToggle: 'compact-toggle',
  groupHead: 'group-head',
  connectionCard: 'connection-card',
  statusPill: 'status-pill',
  providerName: 'provider-name',
  accountName: 'account-name',
  expiry: 'expiry',
  lastRefresh: 'last-refresh',
  scopes: 'scopes',
  /** A card's short confirmation of the last action ("Refreshed — …"), for a few seconds. */
  cardNote: 'card-note',
  cardError: 'card-error',
  refreshButton: 'refresh-button',
  reconnectButton: 'reconnect-button',
  inspectButton: 'inspect-button',
  disconnectButton: 'disconnect-button',
  attention: 'attention',
  /** The one summary of every notice ("2 accounts need you — Review"), a <details> that expands. */
  attentionSummary: 'attention-summary',

  emptyConnectButton: 'empty-connect-button',
  demoHint: 'demo-hint',

  disconnectDialog: 'disconnect-dialog',
  confirmDisconnect: 'confirm-disconnect',
  cancelDisconnect: 'cancel-disconnect',
  disconnectResult: 'disconnect-result',
  manageUrl: 'manage-url',
  /** After a failed revoke: "Keep trying" / "Delete now instead". */
  keepRevoking: 'keep-revoking',
  deleteNow: 'delete-now',
  /** The "still revoking" section: one revocation[data-connection-id] row each, with its buttons. */
  revocations: 'revocations',
  revocation: 'revocation',
  revocationRetry: 'revocation-retry',
  revocationDelete: 'revocation-delete',
  /** The clipboard notice[data-state=holding|cleared|replaced] and its "Clear now". */
  clipboardNotice: 'clipboard-notice',
  clipboardClear: 'clipboard-clear',
  /** "Copy" in a token row of Inspect (copies without showing the token). */
  tokenCopy: 'token-copy',

  addAccountButton: 'add-account-button',
  connectPanel: 'connect-panel',
  /** The setup form's "Open the … developer console" and the custom form's redirect URI. */
  setupOpen: 'setup-open',
  customRedirectUri: 'custom-redirect-uri',
  providerRow: 'provider-row',
  configureForm: 'configure-form',
  configureSave: 'configure-save',
  /** In a set-up provider's form: "Remove…", then the confirmation and its button. */
  providerRemove: 'provider-remove',
  providerRemoveConfirm: 'provider-remove-confirm',
  customProviderForm: 'custom-provider-form',
  customProviderSave: 'custom-provider-save',
  serverForm: 'server-form',
  serverSave: 'server-save',
  importToggle: 'import-toggle',
  importForm: 'import-form',
  importFile: 'import-file',
  importSave: 'import-save',
  connectWaiting: 'connect-waiting',
  connectUrl: 'connect-url',
  connectCancel: 'connect-cancel',
  connectPasteInput: 'connect-paste-input',
  connectPasteSend: 'connect-paste-send',
  connectOutcome: 'connect-outcome',
  connectClose: 'connect-close',

  inspectDialog: 'inspect-dialog',
  /** In Inspect: the `tokenkeep api` command line for this connection, and its Copy button. */
  apiCommand: 'api-command',
  tokenBinding: 'token-binding',
  apiCommandCopy: 'api-command-copy',
  inspectClose: 'inspect-close',
  tokenRow: 'token-row',
  revealedValue: 'revealed-value',
  revealCountdown: 'reveal-countdown',
  revealCopy: 'reveal-copy',
  revealHide: 'reveal-hide',
  jwtClaims: 'jwt-claims',
  settingsButton: 'settings-button',
  settingsDialog: 'settings-dialog',
  settingsStatus: 'settings-status',
  settingKeepRunning: 'setting-keep-running',
  settingStartAtLogin: 'setting-start-at-login',
  settingNotifications: 'setting-notifications',
  settingClipboardSeconds: 'setting-clipboard-seconds',
  trayMissingNote: 'tray-missing-note',
} as const;

export const providerConnectId = (id: string): string => `provider-${id}-connect`;
export const providerSetupId = (id: string): string => `provider-${id}-setup`;
/** "Edit" on a provider that is set up: opens its setup form, with "Remove…" in it. */
export const providerEditId = (id: string): string => `provider-${id}-edit`;
export const revealId = (kind: TokenKind): string => `reveal-${kind}`;
