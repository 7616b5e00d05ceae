// Relative times and countdowns, in words. Times are Unix seconds (docs/IPC.md). Pure.

/** "42 s", "12 min", "1 h 5 min", "5 h", "3 days". Floors, so a countdown never overstates. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) {
    const rest = min % 60;
    return h < 10 && rest > 0 ? `${h} h ${rest} min` : `${h} h`;
  }
  const days = Math.floor(h / 24);
  return days === 1 ? '1 day' : `${days} days`;
}

/** "expires in 12 min" / "expired 2 min ago" / "expires now" / "no expiry date". */
export function expiryText(expiresAt: number | null | undefined, now: number): string {
  if (expiresAt === undefined || expiresAt === null) return 'no expiry date';
  const left = expiresAt - now;
  if (left >= 1) return `expires in ${formatDuration(left)}`;
  if (left > -1) return 'expires now';
  return `expired ${formatDuration(-left)} ago`;
}

/** "refreshed 3 min ago" / "refreshed just now" / "not refreshed yet". */
export function lastRefreshText(lastRefreshAt: number | null | undefined, now: number): string {
  if (lastRefreshAt === undefined || lastRefreshAt === null) return 'not refreshed yet';
  const ago = now - lastRefreshAt;
  if (ago < 60) return 'refreshed just now';
  return `refreshed ${formatDuration(ago)} ago`;
}

/** Generic "3 min ago" / "in 3 min" / "just now". */
export function relativeText(at: number, now: number): string {
  const d = at - now;
  if (Math.abs(d) < 60) return 'just now';
  return d > 0 ? `in ${formatDuration(d)}` : `${formatDuration(-d)} ago`;
}

/**
 * Seconds until a countdown or relative time of `at` (shown as `formatDuration`) next reads differently, at the
 * granularity shown: every second within a minute of it, every minute below ten hours ("9 h 59 min"), every hour
 * below a day ("23 h"), then every day ("3 days") — a token that lives 60 days does not wake the window each
 * minute to write the same words. Never less than a twentieth of a second.
 */
export function nextTextChange(at: number, now: number): number {
  const d = Math.abs(at - now);
  const step = d < 60 ? 1 : d < 10 * 3600 ? 60 : d < 86_400 ? 3600 : 86_400;
  const into = d % step;
  // Counting down, the text changes when the floor drops; counting up, when it rises.
  const wait = at > now ? (into === 0 ? step : into) : step - into;
  return Math.max(0.05, wait);
}

/** Capitalises the first letter (for text that starts a line). */
export function capitalise(text: string): string {
  return text.length === 0 ? text : text.charAt(0).toUpperCase() + text.slice(1);
}

/** Current time in Unix seconds (fractional). */
export const nowSeconds = (): number => Date.now() / 1000;
