// The header's vault indicator and the banner shown while the vault is not open.

import type { VaultStatus } from '../api';
import { canRestore, vaultIndicator, vaultProblem } from '../model/errors';
import { offersKeyImport } from '../model/keys';
import { TID } from '../testids';
import { button, el, setModifier, setText } from './dom';

export function renderVaultIndicator(target: HTMLElement, v: VaultStatus | null): void {
  const ind = vaultIndicator(v);
  target.dataset.testid = TID.vaultIndicator;
  target.dataset.tone = ind.tone;
  setText(target, ind.text);
  setModifier(target, 'vault-ind', ind.tone);
  target.title = ind.description;
  target.hidden = false;
}

export interface BannerState {
  retrying: boolean;
  /** A restore from backup is running. */
  restoring?: boolean;
  /** An error from the retry itself (e.g. the command failed outright). */
  retryError: string | null;
}

/** Fills `region` with the banner, or empties it when the vault is ready. */
export function renderVaultBanner(
  region: HTMLElement,
  v: VaultStatus | null,
  state: BannerState,
  onRetry: () => void,
  onRestore: () => void = () => {},
  onImportKey: () => void = () => {},
): void {
  if (v === null || v.ready) {
    region.replaceChildren();
    return;
  }
  const p = vaultProblem(v);
  const existing = region.querySelector<HTMLElement>('.banner');
  const retry = existing?.querySelector<HTMLButtonElement>('.banner-retry') ?? null;
  const hadFocus = retry !== null && document.activeElement === retry;

  const retryBtn = button(state.retrying ? 'Retrying…' : 'Retry', {
    class: 'banner-retry',
    variant: 'primary',
    testid: TID.vaultRetry,
  }, onRetry);
  retryBtn.disabled = state.retrying || state.restoring === true;
  retryBtn.hidden = !p.retry;
  const restoreBtn = canRestore(v.error)
    ? button(state.restoring === true ? 'Restoring…' : 'Restore from backup', {
        class: 'banner-restore',
        variant: 'primary',
        testid: TID.vaultRestore,
      }, onRestore)
    : null;
  if (restoreBtn !== null) {
    restoreBtn.disabled = state.retrying || state.restoring === true;
    // One primary action: restoring is what helps here; Retry stays for a passing cause.
    retryBtn.classList.replace('btn-primary', 'btn-secondary');
  }

  const importBtn = offersKeyImport(v)
    ? button('Import key…', { class: 'banner-import', testid: TID.vaultImportKey }, onImportKey)
    : null;

  const banner = el(
    'section',
    {
      class: 'banner',
      testid: TID.vaultBanner,
      attrs: { role: 'alert', 'aria-labelledby': 'vault-banner-title' },
    },
    [
      el('div', { class: 'banner-icon', text: '!', attrs: { 'aria-hidden': 'true' } }),
      el('div', { class: 'banner-main' }, [
        el('h2', { class: 'banner-title', text: p.title, attrs: { id: 'vault-banner-title' } }),
        el('p', { class: 'banner-text', text: p.text }),
        p.watching === null ? null : el('p', { class: 'banner-watching', testid: TID.vaultWatching, text: p.watching }),
        p.detail === null
          ? null
          : el('p', { class: 'banner-detail' }, [
              el('span', { class: 'banner-detail-label', text: 'Details: ' }),
              p.detail,
            ]),
        state.retryError === null
          ? null
          : el('p', { class: 'inline-error', text: state.retryError }),
      ]),
      el('div', { class: 'banner-actions' }, [restoreBtn, importBtn, retryBtn]),
    ],
  );
  banner.dataset.code = p.code;
  setModifier(banner, 'banner', 'bad');
  region.replaceChildren(banner);
  if (hadFocus) retryBtn.focus();
}
