// What the vault key means to a creator, in words. Pure.

/** The once-only notice after a key was created in the keyring (or replaced by a rotation). */
export const KEY_NOTICE = {
  title: 'Your vault key was created in your keyring',
  text:
    'Tokenkeep seals your tokens with a key it keeps in your keyring. If that keyring is lost — a new computer, a ' +
    'reinstall, a reset password — your connections are lost with it: the platforms keep nothing for you, and ' +
    'every account has to be connected again. Export the key and keep it offline to be safe.',
} as const;

/** Whether the closed vault's banner offers "Import key…": the keyring lacks (or holds another) key, not headless. */
export function offersKeyImport(v: { headless: boolean; error?: { code: string } | null }): boolean {
  return !v.headless && (v.error?.code === 'key_missing' || v.error?.code === 'wrong_key');
}
