// What the window says about a token copied to the clipboard. Pure.

import type { ClipboardState } from '../api';
import { formatDuration } from './time';

/** The notice's sentence, or null when there is nothing to say. */
export function clipboardText(c: ClipboardState | null, now: number): string | null {
  if (c === null) return null;
  switch (c.state) {
    case 'holding': {
      const left = c.clearsAt - now;
      return left >= 1
        ? `Token copied. Tokenkeep clears it from the clipboard in ${formatDuration(left)}.`
        : 'Token copied. Tokenkeep is clearing it from the clipboard.';
    }
    case 'cleared':
      return 'The copied token was cleared from the clipboard.';
    case 'replaced':
      return 'You copied something else since, so Tokenkeep left the clipboard alone.';
  }
}
