import assert from 'node:assert/strict';
import { test } from 'node:test';

import { background, border, MIN_SCORE, opacity, step, STEPS } from '../colors';
import { APART, contrast, deltaE, hex, over, READABLE, Rgb } from './contrast';

function alpha(css: string): number {
  return Number(css.match(/rgba\(\d+, \d+, \d+, ([\d.]+)\)/)![1]);
}

function rgb(css: string): string {
  return css.replace(/, [\d.]+\)$/, ')');
}

test('steps keep the sign and grow with |score|', () => {
  assert.equal(step(1), STEPS);
  assert.equal(step(-1), -STEPS);
  assert.equal(step(0), 0);
  assert.equal(step(MIN_SCORE / 2), 0);
  assert.equal(step(MIN_SCORE), 1);
  assert.equal(step(2), STEPS, 'scores beyond 1 are clamped');
  assert.equal(step(Number.NaN), 0);
  let previous = 0;
  for (let s = MIN_SCORE; s <= 1; s += 0.01) {
    assert.ok(step(s) >= previous, `step(${s}) decreased`);
    previous = step(s);
  }
});

test('opacity is continuous, monotone and capped at maxOpacity', () => {
  assert.equal(opacity(STEPS, 0.5), 0.5);
  for (let s = 1; s < STEPS; s++) {
    assert.ok(opacity(s, 0.5) < opacity(s + 1, 0.5));
    assert.ok(opacity(s + 1, 0.5) - opacity(s, 0.5) < 0.1, 'no visible jump between neighbouring steps');
  }
  assert.equal(opacity(-4, 0.5), opacity(4, 0.5));
  assert.equal(alpha(background(STEPS, 'dark', 0.3)), 0.3, 'a maxOpacity setting overrides the theme\'s own');
});

// The editor's background and text in VS Code's default themes (Dark Modern, Light Modern).
const THEMES = { dark: { page: hex('#1f1f1f'), text: hex('#cccccc') }, light: { page: hex('#ffffff'), text: hex('#3b3b3b') } };

test('every level stands out from the background and its neighbours, with readable text, in both themes', () => {
  const problems: string[] = [];
  for (const [theme, { page, text }] of Object.entries(THEMES) as [keyof typeof THEMES, { page: Rgb; text: Rgb }][]) {
    const ladders = [1, -1].map((sign) => [1, 2, 3, 4, 5].map((level) => over(background(step(sign * level / 5), theme, null), page)));
    ladders.forEach((ladder, i) => ladder.forEach((colour, level) => {
      const name = `${theme}${i ? ' negative' : ''} level ${level + 1}`;
      const gap = deltaE(level ? ladder[level - 1] : page, colour);
      if (gap < APART) problems.push(`${name}: ΔE ${gap.toFixed(1)} from ${level ? 'the level below' : 'the background'}`);
      if (contrast(text, colour) < READABLE) problems.push(`${name}: text contrast ${contrast(text, colour).toFixed(2)}`);
      if (i && deltaE(ladders[0][level], colour) < 2 * APART) problems.push(`${name}: too close to the positive hue`);
    }));
  }
  assert.deepEqual(problems, []);
});

test('positive and negative scores get different hues, in every theme', () => {
  for (const theme of ['light', 'dark', 'highContrast', 'highContrastLight'] as const) {
    assert.notEqual(rgb(background(8, theme, 0.5)), rgb(background(-8, theme, 0.5)));
    assert.equal(alpha(background(STEPS, theme, 0.4)), 0.4);
  }
  assert.notEqual(rgb(background(8, 'light', 0.5)), rgb(background(8, 'dark', 0.5)), 'light and dark palettes differ');
});

test('only high-contrast themes get borders', () => {
  assert.equal(border('dark'), undefined);
  assert.equal(border('light'), undefined);
  assert.ok(border('highContrast'));
});
