import { describe, expect, it } from 'vitest';
import { MARKED_PLATFORMS, circle, markFor } from './marks';

// The shipped presets themselves, read at test time.
const PRESETS = import.meta.glob<string>('../../../crates/core/providers/*.toml', {
  query: '?raw',
  import: 'default',
  eager: true,
});

/** The `platform = "…"` of every shipped preset. */
function presetPlatforms(): string[] {
  return Object.values(PRESETS)
    .map((text) => /^platform\s*=\s*"([^"]+)"/m.exec(text)?.[1])
    .filter((p): p is string => p !== undefined);
}

/** WCAG 2 relative luminance of `#rrggbb`. */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

describe('platform marks', () => {
  it('every shipped preset names a platform that has a mark', () => {
    const platforms = presetPlatforms();
    expect(platforms.length).toBeGreaterThanOrEqual(14);
    for (const p of platforms) expect(MARKED_PLATFORMS, `preset platform ${p}`).toContain(p);
  });

  it('a custom provider, or a name that is not a platform, gets no mark (the initial is shown)', () => {
    for (const p of [null, undefined, '', 'my-company', '__proto__', 'constructor', 'toString']) {
      expect(markFor(p)).toBeNull();
    }
  });

  it.each(MARKED_PLATFORMS)('%s: its glyph stands out from its colour (WCAG 1.4.11, 3:1)', (p) => {
    const mark = markFor(p)!;
    const backgrounds = mark.background.match(/#[0-9a-f]{6}/g) ?? [];
    expect(backgrounds.length, mark.background).toBeGreaterThan(0);
    expect(mark.background.replace(/#[0-9a-f]{6}/g, '')).toMatch(/^(linear-gradient\(45deg, ( \d+%)?(, ( \d+%)?)*\))?$/);
    for (const bg of backgrounds) {
      expect(contrast(mark.foreground, bg), `${mark.foreground} on ${bg}`).toBeGreaterThanOrEqual(3);
    }
  });

  it.each(MARKED_PLATFORMS)('%s: its shapes are plain path data inside the 24×24 box', (p) => {
    const mark = markFor(p)!;
    expect(mark.shapes.length).toBeGreaterThan(0);
    for (const shape of mark.shapes) {
      expect(shape.d).toMatch(/^[MmLlHhVvCcSsQqTtAaZz0-9.,\s-]+$/);
      // Absolute coordinates after M stay inside the box.
      for (const m of shape.d.matchAll(/M(-?[\d.]+)[ ,](-?[\d.]+)/g)) {
        expect(Number(m[1])).toBeGreaterThanOrEqual(0);
        expect(Number(m[1])).toBeLessThanOrEqual(24);
        expect(Number(m[2])).toBeGreaterThanOrEqual(0);
        expect(Number(m[2])).toBeLessThanOrEqual(24);
      }
      if (shape.colour !== undefined) expect(shape.colour).toMatch(/^#[0-9a-f]{6}$/);
    }
  });

  it('circle() draws a closed circle of the given radius', () => {
    expect(circle(12, 12, 3)).toBe('M9 12a3 3 0 1 0 6 0a3 3 0 1 0 -6 0z');
  });
});
