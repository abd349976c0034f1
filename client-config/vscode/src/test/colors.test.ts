import assert from 'node:assert/strict';
import { test } from 'node:test';

import { background, border, MIN_SCORE, opacity, step, STEPS } from '../colors';

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
