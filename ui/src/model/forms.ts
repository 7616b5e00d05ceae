// Validation of the provider forms (configure a built-in provider, add an OpenID provider). Pure.

import {
  AUTH_METHODS,
  type AddCustomProviderArgs,
  type AddServerArgs,
  type Auth,
  type ConfigureProviderArgs,
  type ImportProviderArgs,
  type Provider,
} from '../api';

/** `''` = let Tokenkeep choose (the argument is omitted). */
export type AuthChoice = Auth | '';

export const AUTH_LABELS: Record<Auth, string> = {
  none: 'None — public client, no secret',
  basic: 'HTTP Basic — secret in a header',
  post: 'Form post — secret in the request body',
  'basic-id': 'HTTP Basic with the client id only — no secret (Reddit installed apps)',
};

export type FieldErrors<F extends string> = Partial<Record<F, string>>;

export type Validation<A, F extends string> =
  | { ok: true; args: A }
  | { ok: false; errors: FieldErrors<F> };

export interface ConfigureForm {
  clientId: string;
  clientSecret: string;
  auth: AuthChoice;
  /** For a `paste` provider: the https page registered as its redirect (ignored for the others). */
  redirectUri: string;
}
export type ConfigureField = keyof ConfigureForm;

export interface CustomForm {
  id: string;
  issuer: string;
  displayName: string;
  clientId: string;
  clientSecret: string;
  auth: AuthChoice;
}
export type CustomField = keyof CustomForm;

const PROVIDER_ID = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

function clientIdError(raw: string): string | undefined {
  const v = raw.trim();
  if (v === '') return 'Enter the client ID from the platform’s developer console.';
  if (/\s/.test(v)) return 'A client ID has no spaces — check that it was copied whole.';
  if (v.length > 512) return 'That is too long to be a client ID.';
  return undefined;
}

function authError(auth: AuthChoice, hasSecret: boolean): string | undefined {
  if (auth !== '' && !AUTH_METHODS.includes(auth)) return 'Choose how Tokenkeep sends the secret.';
  if ((auth === 'basic' || auth === 'post') && !hasSecret) {
    return 'This method sends a client secret — enter one, or choose “None”.';
  }
  return undefined;
}

function secretError(secret: string, auth: AuthChoice): string | undefined {
  if (secret !== '' && secret.trim() !== secret) {
    return 'The secret starts or ends with a space — check that it was copied exactly.';
  }
  if (secret !== '' && (auth === 'none' || auth === 'basic-id')) {
    return 'With this method no secret is sent. Clear the secret, or choose Basic or Form post.';
  }
  return undefined;
}

type RawErrors<F extends string> = Partial<Record<F, string | undefined>>;

function done<A, F extends string>(errors: RawErrors<F>, args: () => A): Validation<A, F> {
  const clean = Object.fromEntries(
    Object.entries(errors).filter(([, v]) => v !== undefined),
  ) as FieldErrors<F>;
  return Object.keys(clean).length > 0 ? { ok: false, errors: clean } : { ok: true, args: args() };
}

function pastePageError(raw: string): string | undefined {
  const v = raw.trim();
  if (v === '') return 'Enter the https page you registered as the app’s redirect URI.';
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return 'That is not a web address. It should look like https://your.site/tokenkeep.';
  }
  if (url.protocol !== 'https:') return 'This platform redirects only to https:// pages.';
  if (url.hash !== '') return 'Leave out the “#” part.';
  return undefined;
}

/** The form shown under a built-in provider that needs a client ID (and maybe a secret, or its https page). */
export function validateConfigure(
  provider: Pick<Provider, 'id' | 'needsSecret' | 'hasSecret' | 'redirect'>,
  form: ConfigureForm,
): Validation<ConfigureProviderArgs, ConfigureField> {
  const secret = form.clientSecret;
  const haveSecret = secret !== '' || provider.hasSecret;
  const errors: RawErrors<ConfigureField> = {
    clientId: clientIdError(form.clientId),
    clientSecret:
      secretError(secret, form.auth) ??
      (provider.needsSecret && !haveSecret
        ? 'This platform also needs the client secret.'
        : undefined),
    // A platform that needs a secret is told once, at the secret (not again at the method, with a "None" it lacks).
    auth: provider.needsSecret ? undefined : authError(form.auth, haveSecret),
    redirectUri: provider.redirect === 'paste' ? pastePageError(form.redirectUri) : undefined,
  };
  return done(errors, () => {
    const args: ConfigureProviderArgs = { id: provider.id, clientId: form.clientId.trim() };
    if (secret !== '') args.clientSecret = secret;
    if (form.auth !== '') args.auth = form.auth;
    if (provider.redirect === 'paste') args.redirectUri = form.redirectUri.trim();
    return args;
  });
}

export interface ServerForm {
  server: string;
}
export type ServerField = keyof ServerForm;

/** "Your server" under a platform of many servers (Mastodon): a host or an https address. */
export function validateServer(template: string, form: ServerForm): Validation<AddServerArgs, ServerField> {
  const v = form.server.trim();
  let error: string | undefined;
  if (v === '') {
    error = 'Enter your server, for example mastodon.social.';
  } else {
    try {
      const url = new URL(v.includes('://') ? v : `https://${v}`);
      const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
        error = 'Tokenkeep signs in over https:// only.';
      } else if (url.username !== '' || url.password !== '') {
        error = 'Leave the user name and password out.';
      } else if (!url.hostname.includes('.') && !loopback) {
        error = 'Give the server’s full name, for example mastodon.social.';
      }
    } catch {
      error = 'That is not a server’s address. It should look like mastodon.social.';
    }
  }
  return done({ server: error }, () => ({ template, server: v }));
}

export interface ImportForm {
  name: string;
  text: string;
}
export type ImportField = keyof ImportForm;

/** "Import a definition": the file's text (checked by Tokenkeep, which names the field and line). */
export function validateImport(form: ImportForm): Validation<ImportProviderArgs, ImportField> {
  const text = form.text;
  const errors: RawErrors<ImportField> = {
    text:
      text.trim() === ''
        ? 'Choose a definition file, or paste its text.'
        : text.length > 64 * 1024
          ? 'That is too long for a provider definition (64 KiB at most).'
          : undefined,
  };
  return done(errors, () => ({ name: form.name.trim() === '' ? 'pasted-definition.toml' : form.name.trim(), text }));
}

function issuerError(raw: string): string | undefined {
  const v = raw.trim();
  if (v === '') return 'Enter the issuer URL, for example https://auth.example.com.';
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return 'That is not a web address. It should look like https://auth.example.com.';
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    return 'The issuer must use https:// (plain http:// only for this computer).';
  }
  if (url.username !== '' || url.password !== '') return 'Leave the user name and password out of the URL.';
  if (url.search !== '' || url.hash !== '') return 'The issuer URL has no “?” or “#” part.';
  return undefined;
}

/** "Add an OpenID provider". `existingIds`: ids already in use. */
export function validateCustom(
  form: CustomForm,
  existingIds: readonly string[],
): Validation<AddCustomProviderArgs, CustomField> {
  const id = form.id.trim();
  const secret = form.clientSecret;
  const errors: RawErrors<CustomField> = {
    id:
      id === ''
        ? 'Choose a short id, for example my-forum.'
        : !PROVIDER_ID.test(id)
          ? 'Use 1–32 lowercase letters, digits and dashes (not at the start or end).'
          : existingIds.includes(id)
            ? 'A provider with this id already exists.'
            : undefined,
    issuer: issuerError(form.issuer),
    displayName: form.displayName.trim().length > 64 ? 'Keep the name under 64 characters.' : undefined,
    clientId: clientIdError(form.clientId),
    clientSecret: secretError(secret, form.auth),
    auth: authError(form.auth, secret !== ''),
  };
  return done(errors, () => {
    const args: AddCustomProviderArgs = { id, issuer: form.issuer.trim(), clientId: form.clientId.trim() };
    const name = form.displayName.trim();
    if (name !== '') args.displayName = name;
    if (secret !== '') args.clientSecret = secret;
    if (form.auth !== '') args.auth = form.auth;
    return args;
  });
}
