import './styles.css';
import { AppError, getAppInfo, hasTauri, type AppInfo } from './api';
import { describeLoadError, formatVersion, mockRequested, profileBadge } from './view-model';

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from index.html`);
  return el as T;
}

function cloneTemplate(id: string): DocumentFragment {
  return byId<HTMLTemplateElement>(id).content.cloneNode(true) as DocumentFragment;
}

async function loadAppInfo(): Promise<AppInfo> {
  if (mockRequested(window.location.search, hasTauri())) {
    // DEV ONLY (plain browser + ?mock): never reached inside the app.
    const { mockAppInfo } = await import('./dev-mock');
    return mockAppInfo(window.location.search);
  }
  return getAppInfo();
}

function renderReady(info: AppInfo): void {
  const badge = profileBadge(info.profile);
  const badgeEl = byId('profile-badge');
  badgeEl.className = badge.className;
  badgeEl.textContent = badge.text;
  badgeEl.title = badge.description;
  byId('app-version').textContent = formatVersion(info.version);
  byId('app-meta').hidden = false;

  byId('data-dir').textContent = info.dataDir;
  byId('footer').hidden = false;

  byId('content').replaceChildren(cloneTemplate('tpl-empty'));
  if (info.name.trim() !== '') document.title = info.name;
}

function renderError(err: unknown): void {
  const view = describeLoadError(err);
  const frag = cloneTemplate('tpl-error');
  const q = <T extends Element>(sel: string): T => {
    const el = frag.querySelector<T>(sel);
    if (!el) throw new Error(`${sel} missing from #tpl-error`);
    return el;
  };
  q('.notice-title').textContent = view.title;
  q('.notice-text').textContent = view.detail;
  if (view.code !== null) {
    q('.notice-code code').textContent = view.code;
    q<HTMLElement>('.notice-code').hidden = false;
  }
  byId('content').replaceChildren(frag);
}

async function start(): Promise<void> {
  const content = byId('content');
  try {
    renderReady(await loadAppInfo());
    document.body.dataset.state = 'ready';
  } catch (err) {
    if (!(err instanceof AppError)) console.error(err);
    renderError(err);
    document.body.dataset.state = 'error';
  } finally {
    content.setAttribute('aria-busy', 'false');
    document.body.dataset.ready = 'true';
  }
}

void start();
