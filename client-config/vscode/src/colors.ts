/**
 * The heatmap's continuous colour scale: a colour strength in [-1, 1] (the server's robust scale, so
 * one loud word does not dim the rest, and words below an even share of the relevance are 0) becomes a
 * translucent background.
 *
 * Positive scores (the word raises the target) are warm, negative ones cool; opacity grows in
 * proportion to the strength. The palette depends on the theme kind because a light editor needs
 * other hues and opacities than a dark one.
 */

export type ThemeKind = 'light' | 'dark' | 'highContrast' | 'highContrastLight';

export interface Rgb { r: number; g: number; b: number }

/** A theme's hues and the opacity of each at full strength. */
interface Palette { positive: Rgb; negative: Rgb; alpha: { positive: number; negative: number } }

/**
 * Chosen by measured contrast on Dark Modern (#1f1f1f, text #cccccc) and Light Modern (#ffffff, text
 * #3b3b3b), src/test/colors.test.ts: the five levels of the server's scale are each at least 10 CIELAB ΔE
 * from the background and from their neighbours, the text on them keeps WCAG contrast 4.5, and a
 * negative level is at least 20 ΔE from the positive one.
 */
const PALETTES: Record<ThemeKind, Palette> = {
  light: { positive: { r: 255, g: 130, b: 20 }, negative: { r: 30, g: 140, b: 255 }, alpha: { positive: 1, negative: 0.75 } },
  dark: { positive: { r: 200, g: 30, b: 0 }, negative: { r: 0, g: 80, b: 255 }, alpha: { positive: 0.8, negative: 0.8 } },
  highContrast: { positive: { r: 255, g: 140, b: 0 }, negative: { r: 90, g: 170, b: 255 }, alpha: { positive: 0.55, negative: 0.55 } },
  highContrastLight: { positive: { r: 230, g: 90, b: 0 }, negative: { r: 0, g: 90, b: 230 }, alpha: { positive: 0.55, negative: 0.55 } },
};

/** Scores are drawn in this many opacity steps per sign: few decoration types, no visible banding. */
export const STEPS = 16;
/** |score| below this gets no background: the least important tokens keep the editor's own look. */
export const MIN_SCORE = 0.03;

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

/** Opacity of a step: proportional to the colour strength, `maxOpacity` at full strength. */
export function opacity(stepValue: number, maxOpacity: number): number {
  return maxOpacity * Math.abs(stepValue) / STEPS;
}

/** The opacity at full strength: the user's `maxOpacity`, or (null) the theme's own for this sign. */
export function fullOpacity(stepValue: number, theme: ThemeKind, maxOpacity: number | null): number {
  const alpha = PALETTES[theme].alpha;
  return maxOpacity ?? (stepValue < 0 ? alpha.negative : alpha.positive);
}

/** The hue of a step's sign in a theme. */
export function hue(stepValue: number, theme: ThemeKind): Rgb {
  return stepValue < 0 ? PALETTES[theme].negative : PALETTES[theme].positive;
}

/** CSS colour of a step's background for a theme kind (`maxOpacity` null: the theme's own). */
export function background(stepValue: number, theme: ThemeKind, maxOpacity: number | null): string {
  const { r, g, b } = hue(stepValue, theme);
  return `rgba(${r}, ${g}, ${b}, ${opacity(stepValue, fullOpacity(stepValue, theme, maxOpacity)).toFixed(3)})`;
}

/** High-contrast themes also get a border, since a translucent fill alone may not show. */
export function border(theme: ThemeKind): string | undefined {
  return theme.startsWith('highContrast') ? '1px solid' : undefined;
}
