// The avatar of a card or a provider row: the account's picture (with the platform's mark as a badge), else the
// platform's mark, else the provider's initial on one of five colours. Rebuilt only when what it shows changes.

import { markFor, type Mark } from '../model/marks';
import { setModifier, setText } from './dom';

const SVG = 'http://www.w3.org/2000/svg';

/** The mark as an SVG element (hidden from screen readers: the platform's name is always written beside it). */
export function markSvg(mark: Mark): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.classList.add('mark-glyph');
  for (const shape of mark.shapes) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', shape.d);
    const colour = shape.colour ?? mark.foreground;
    if (shape.paint === 'stroke') {
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke', colour);
      path.setAttribute('stroke-width', String(shape.width ?? 2));
      path.setAttribute('stroke-linecap', 'round');
      path.setAttribute('stroke-linejoin', 'round');
    } else {
      path.setAttribute('fill', colour);
    }
    if (shape.offset) path.setAttribute('transform', `translate(${shape.offset[0]} ${shape.offset[1]})`);
    svg.append(path);
  }
  return svg;
}

export interface AvatarContent {
  /** The platform, for its mark; absent for a custom provider. */
  platform?: string | null | undefined;
  /** Shown when there is no mark: the provider's initial, or `?` for a damaged record. */
  letter: string;
  /** Which of the five letter colours (see `colourSlot`). */
  slot: number;
  /** The account picture, as a `data:` address, with its tag; absent while not loaded or when there is none. */
  picture?: { tag: string; dataUrl: string } | null | undefined;
}

/** Brings `host` (an `.avatar`) up to date. Touches the DOM only when the content differs from what it shows. */
export function setAvatar(host: HTMLElement, content: AvatarContent): void {
  const mark = markFor(content.platform);
  const key = `${mark ? content.platform : ''}|${content.letter}|${content.slot}|${content.picture?.tag ?? ''}`;
  if (host.dataset.avatar === key) return;
  host.dataset.avatar = key;
  host.replaceChildren();
  host.style.background = '';
  delete host.dataset.mark;
  delete host.dataset.picture;
  setModifier(host, 'avatar', `c${content.slot}`);

  if (content.picture) {
    host.dataset.picture = '';
    const img = document.createElement('img');
    img.className = 'avatar-img';
    img.alt = '';
    img.decoding = 'async';
    img.src = content.picture.dataUrl;
    host.append(img);
    if (mark) {
      const badge = document.createElement('span');
      badge.className = 'avatar-badge';
      badge.style.background = mark.background;
      badge.append(markSvg(mark));
      host.append(badge);
    }
    return;
  }
  if (mark) {
    host.dataset.mark = content.platform!;
    host.style.background = mark.background;
    host.append(markSvg(mark));
    return;
  }
  setText(host, content.letter);
}
