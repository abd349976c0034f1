/** CIELAB ΔE (CIE76) and WCAG contrast, to check the heatmap's levels against a theme (as tests/contrast.py). */

export type Rgb = [number, number, number];

/** Colours at least this ΔE apart are told apart at a glance. */
export const APART = 10;
/** WCAG AA contrast for text. */
export const READABLE = 4.5;

export function hex(value: string): Rgb {
  const n = parseInt(value.replace('#', ''), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** A CSS rgba() colour drawn over an opaque background. */
export function over(css: string, background: Rgb): Rgb {
  const [r, g, b, a] = css.match(/[\d.]+/g)!.map(Number);
  return [r, g, b].map((c, i) => Math.round(a * c + (1 - a) * background[i])) as Rgb;
}

export function deltaE(a: Rgb, b: Rgb): number {
  const [p, q] = [lab(a), lab(b)];
  return Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);
}

export function contrast(a: Rgb, b: Rgb): number {
  const [low, high] = [luminance(a), luminance(b)].sort((x, y) => x - y);
  return (high + 0.05) / (low + 0.05);
}

function linear(channel: number): number {
  const c = channel / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

function luminance(colour: Rgb): number {
  const [r, g, b] = colour.map(linear);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function lab(colour: Rgb): Rgb {
  const [r, g, b] = colour.map(linear);
  const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116);
  const fx = f((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047);
  const fy = f(0.2126 * r + 0.7152 * g + 0.0722 * b);
  const fz = f((0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883);
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}
