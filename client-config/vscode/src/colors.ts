/**
 * The heatmap's continuous colour scale: a colour strength in [-1, 1] (the server's robust scale, so
 * one loud word does not dim the rest, and words below an even share of the relevance are 0) becomes a
 * translucent background.
 *
 * Positive scores (the token raises the target) are warm, negative ones cool; opacity grows with
 * |score| along a gamma curve so that mid-range tokens stay visible. The palette depends on the theme
 * kind because a light editor needs darker, more saturated hues than a dark one.
 */

export type ThemeKind = 'light' | 'dark' | 'highContrast' | 'highContrastLight';

export interface Rgb { r: number; g: number; b: number }

interface Palette { positive: Rgb; negative: Rgb }

const PALETTES: Record<ThemeKind, Palette> = {
  light: { positive: { r: 255, g: 130, b: 0 }, negative: { r: 0, g: 110, b: 255 } },
  dark: { positive: { r: 255, g: 96, b: 32 }, negative: { r: 64, g: 150, b: 255 } },
  highContrast: { positive: { r: 255, g: 140, b: 0 }, negative: { r: 90, g: 170, b: 255 } },
  highContrastLight: { positive: { r: 230, g: 90, b: 0 }, negative: { r: 0, g: 90, b: 230 } },
};

/** Scores are drawn in this many opacity steps per sign: few decoration types, no visible banding. */
export const STEPS = 16;
/** |score| below this gets no background: the least important tokens keep the editor's own look. */
export const MIN_SCORE = 0.03;
const GAMMA = 0.7;

/** The opacity step of a score: 0 for none, 1..STEPS otherwise (sign kept). */
export function step(score: number): number {
  if (!Number.isFinite(score)) {
    return 0;
  }
  const magnitude = Math.min(1, Math.abs(score));
  if (magnitude < MIN_SCORE) {
    return 0;
  }
  return Math.sign(score) * Math.max(1, Math.ceil(magnitude * STEPS));
}

/** Opacity of a step: continuous in |score| through a gamma curve, at most `maxOpacity`. */
export function opacity(stepValue: number, maxOpacity: number): number {
  return maxOpacity * Math.pow(Math.abs(stepValue) / STEPS, GAMMA);
}

/** CSS colour of a step's background for a theme kind. */
export function background(stepValue: number, theme: ThemeKind, maxOpacity: number): string {
  const palette = PALETTES[theme];
  const { r, g, b } = stepValue < 0 ? palette.negative : palette.positive;
  return `rgba(${r}, ${g}, ${b}, ${opacity(stepValue, maxOpacity).toFixed(3)})`;
}

/** High-contrast themes also get a border, since a translucent fill alone may not show. */
export function border(theme: ThemeKind): string | undefined {
  return theme.startsWith('highContrast') ? '1px solid' : undefined;
}
