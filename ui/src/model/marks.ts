// Platform marks, drawn by us: a simple glyph per platform in its brand colour, so twenty accounts on five platforms
// can be told apart at a glance. They are our own drawings (a play triangle, a crossed X, a note…), not copies of the
// platforms' logos, whose brand guidelines restrict redrawing and recolouring; each one only evokes its platform, and
// the card always names the platform in text as well.
//
// A glyph is data (paths in a 24×24 box), so this file is pure and tested; views/mark.ts turns it into SVG.

/** One shape of a glyph, in a 24×24 box. `fill` or `stroke` with the mark's foreground, unless `colour` says. */
export interface Shape {
  d: string;
  /** `fill` (the default) or `stroke` (then `width`, round caps and joins). */
  paint?: 'fill' | 'stroke';
  width?: number;
  /** A colour other than the foreground (TikTok's two offset notes, Reddit's eyes). */
  colour?: string;
  /** Moved by this much (x, y). */
  offset?: readonly [number, number];
}

export interface Mark {
  /** What a screen reader would be told, were the mark not hidden beside the platform's name. */
  label: string;
  /** A CSS background: a colour, or a gradient. */
  background: string;
  foreground: string;
  shapes: Shape[];
}

/** A full circle as a path (SVG paths have no circle command). */
export function circle(cx: number, cy: number, r: number): string {
  return `M${cx - r} ${cy}a${r} ${r} 0 1 0 ${2 * r} 0a${r} ${r} 0 1 0 ${-2 * r} 0z`;
}

const stroke = (d: string, width = 2, colour?: string): Shape =>
  colour === undefined ? { d, paint: 'stroke', width } : { d, paint: 'stroke', width, colour };
const fill = (d: string, colour?: string): Shape => (colour === undefined ? { d } : { d, colour });

const NOTE = 'M13 5v9.5a3 3 0 1 1-3-3M13 5c.6 2.1 2.1 3.3 4.2 3.5';

const MARKS: Record<string, Mark> = {
  youtube: { label: 'YouTube', background: '#ff0033', foreground: '#ffffff', shapes: [fill('M9.5 7.5v9l7.5-4.5z')] },
  x: {
    label: 'X',
    background: '#0f1419',
    foreground: '#ffffff',
    shapes: [stroke('M6.5 5.5l11 13', 2.8), stroke('M17.5 5.5l-11 13', 1.4)],
  },
  tiktok: {
    label: 'TikTok',
    background: '#0f1419',
    foreground: '#ffffff',
    shapes: [
      { ...stroke(NOTE, 2.2, '#25f4ee'), offset: [-0.8, -0.8] },
      { ...stroke(NOTE, 2.2, '#fe2c55'), offset: [0.8, 0.8] },
      stroke(NOTE, 2.2),
    ],
  },
  instagram: {
    label: 'Instagram',
    background: 'linear-gradient(45deg, #d62976, #962fbf 55%, #4f5bd5)',
    foreground: '#ffffff',
    shapes: [
      stroke('M8 4.5h8a3.5 3.5 0 0 1 3.5 3.5v8a3.5 3.5 0 0 1-3.5 3.5h-8A3.5 3.5 0 0 1 4.5 16V8A3.5 3.5 0 0 1 8 4.5z', 1.8),
      stroke(circle(12, 12, 3.4), 1.8),
      fill(circle(16.4, 7.6, 1)),
    ],
  },
  facebook: {
    label: 'Facebook',
    background: '#0866ff',
    foreground: '#ffffff',
    shapes: [stroke('M15 6.5h-1.6a2.4 2.4 0 0 0-2.4 2.4V20M8.5 12.5h6', 2.4)],
  },
  threads: {
    label: 'Threads',
    background: '#0f1419',
    foreground: '#ffffff',
    shapes: [stroke('M15 12a3 3 0 1 1-3-3 3 3 0 0 1 3 3v1.3a2 2 0 0 0 4 0V12a7 7 0 1 0-2.8 5.6', 1.9)],
  },
  linkedin: {
    label: 'LinkedIn',
    background: '#0a66c2',
    foreground: '#ffffff',
    shapes: [fill(circle(7.5, 7, 1.4)), stroke('M7.5 10.5V17M11 17v-6.5M11 13.6a3 3 0 0 1 6 0V17', 2.2)],
  },
  reddit: {
    label: 'Reddit',
    background: '#ff4500',
    foreground: '#ffffff',
    shapes: [
      fill(circle(12, 14, 5.6)),
      fill(circle(6.6, 11.2, 1.6)),
      fill(circle(17.4, 11.2, 1.6)),
      stroke('M12 8.5l1.1-4.2 3.4.9', 1.3),
      fill(circle(17.4, 5.4, 1.3)),
      fill(circle(9.8, 13.4, 1), '#ff4500'),
      fill(circle(14.2, 13.4, 1), '#ff4500'),
      stroke('M9.8 16.3c1.3.9 3.1.9 4.4 0', 1.1, '#ff4500'),
    ],
  },
  twitch: {
    label: 'Twitch',
    background: '#9146ff',
    foreground: '#ffffff',
    shapes: [stroke('M6 4.5h13v9l-3.5 3.5h-3l-2.5 2.5v-2.5H6z', 1.8), stroke('M11 8.5v4M15 8.5v4', 1.8)],
  },
  pinterest: {
    label: 'Pinterest',
    background: '#e60023',
    foreground: '#ffffff',
    shapes: [
      stroke(
        'M10.4 19.5l2.1-8.8M10.9 14.6c4.6.9 6.6-1.7 6.6-4.2 0-2.6-2.3-4.6-5.3-4.6-3.4 0-5.7 2.3-5.7 5.1 0 1.2.4 2.1 1.1 2.6',
        2,
      ),
    ],
  },
  mastodon: {
    label: 'Mastodon',
    background: '#6364ff',
    foreground: '#ffffff',
    shapes: [stroke('M7.5 16v-5.5a2.25 2.25 0 0 1 4.5 0V14M12 14v-3.5a2.25 2.25 0 0 1 4.5 0V16', 2)],
  },
  bluesky: {
    label: 'Bluesky',
    background: '#1185fe',
    foreground: '#ffffff',
    shapes: [
      fill(
        'M12 11c-1.5-3-4.5-5.5-6.5-5.5-1 0-1.5.8-1.5 2 0 1 .4 4 1.2 4.8 1.2 1.2 3.3 1 4.8.7-2.5.5-4.7 1.6-3 3.8 1.8 2.2 3.8.6 5-2.6 1.2 3.2 3.2 4.8 5 2.6 1.7-2.2-.5-3.3-3-3.8 1.5.3 3.6.5 4.8-.7.8-.8 1.2-3.8 1.2-4.8 0-1.2-.5-2-1.5-2-2 0-5 2.5-6.5 5.5z',
      ),
    ],
  },
  kick: {
    label: 'Kick',
    background: '#53fc18',
    foreground: '#0b0e0f',
    shapes: [fill('M7 5h3v5h2V8h2V5h3v4h-2v2h-2v2h2v2h2v4h-3v-3h-2v-2h-2v5H7z')],
  },
  spotify: {
    label: 'Spotify',
    background: '#1db954',
    foreground: '#0b0e0f',
    shapes: [stroke('M6.5 9.5c3.8-1.2 8-.9 11 .9M7.3 12.8c3-.9 6.2-.6 8.7.8M8 15.8c2.3-.6 4.6-.4 6.4.6', 1.8)],
  },
  // Tokenkeep's own local demo provider: a key.
  demo: {
    label: 'Demo',
    background: '#475569',
    foreground: '#ffffff',
    shapes: [stroke(circle(8.5, 12, 3.2), 2), stroke('M11.7 12H19M16.3 12v2.6M19 12v2', 2)],
  },
};

/** The mark for a platform, or `null` (a custom provider): then the card shows the provider's initial. */
export function markFor(platform: string | null | undefined): Mark | null {
  if (!platform) return null;
  return Object.prototype.hasOwnProperty.call(MARKS, platform) ? MARKS[platform]! : null;
}

/** Every platform that has a mark. */
export const MARKED_PLATFORMS: readonly string[] = Object.keys(MARKS);
