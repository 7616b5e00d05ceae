// Typed wrappers around Tokenkeep's Tauri commands and events.
//
// Every command goes through `call`, which turns whatever the backend rejects
// with into an `AppError`. The backend's error shape is `{ code, message }`;
// Tauri itself may also reject with a plain string (e.g. unknown command).
//
// Adding a command: declare its result type, then a one-line wrapper:
//   export const listConnections = () => call<Connection[]>('list_connections');
// Adding an event: add it to `AppEvents`, then `onEvent('connection-status', …)`.

import { invoke, type InvokeArgs } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

/** Result of the `app_info` command. */
export interface AppInfo {
  name: string;
  version: string;
  profile: string;
  dataDir: string;
  headless: boolean;
}

/** Error codes produced on the front-end side (the backend defines its own). */
export const FRONTEND_ERROR_CODES = {
  /** The page is not running inside the Tauri webview. */
  noTauri: 'no_tauri',
  /** The rejection value was not in the backend's `{ code, message }` shape. */
  unknown: 'unknown',
} as const;

/** A failed command, normalised from the backend's `{ code, message }`. */
export class AppError extends Error {
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

/** Invokes a backend command; rejects only with `AppError`. */
export async function call<T>(cmd: string, args?: InvokeArgs): Promise<T> {
  if (!hasTauri()) {
    throw new AppError(
      FRONTEND_ERROR_CODES.noTauri,
      'Tokenkeep’s interface is not running inside the Tokenkeep app.',
    );
  }
  try {
    return await invoke<T>(cmd, args);
  } catch (raw) {
    throw toAppError(raw);
  }
}

// ---- Commands ---------------------------------------------------------------

export const getAppInfo = (): Promise<AppInfo> => call<AppInfo>('app_info');

// ---- Events -----------------------------------------------------------------

/** Backend events and their payloads. None are emitted yet. */
export interface AppEvents {}

/** Subscribes to a backend event; resolves to an unsubscribe function. */
export async function onEvent<K extends keyof AppEvents & string>(
  event: K,
  handler: (payload: AppEvents[K]) => void,
): Promise<() => void> {
  if (!hasTauri()) {
    throw new AppError(FRONTEND_ERROR_CODES.noTauri, 'Events need the Tokenkeep app.');
  }
  try {
    return await listen<AppEvents[K]>(event, (e) => handler(e.payload));
  } catch (raw) {
    throw toAppError(raw);
  }
}
