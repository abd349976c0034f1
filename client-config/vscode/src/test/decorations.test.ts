import assert from 'node:assert/strict';
import { test } from 'node:test';

import { STEPS } from '../colors';
import { currentMethod, methodItems, planDecorations, ScoresPayload, shortModel, statusText } from '../decorations';

function payload(overrides: Partial<ScoresPayload> = {}): ScoresPayload {
  return {
    uri: 'file:///a.prompt', version: 3, computedVersion: 3,
    ranges: [[0, 0, 0, 2], [0, 3, 0, 5], [1, 0, 1, 4], [2, 1, 2, 3]],
    scores: [1.0, -0.5, 0.01, 0.25], levels: [5, 4, 0, 3],
    method: 'input_x_gradient', previewOf: null, explained: ' 7733.',
    model: '/home/u/.cache/salience/SmolLM2-135M-Instruct', seconds: 0.614, cached: false,
    ...overrides,
  };
}

test('each range lands in the step of its score; tiny scores get nothing', () => {
  const plan = planDecorations(payload(), 3)!;
  assert.deepEqual(plan.get(STEPS), [[0, 0, 0, 2]]);
  assert.deepEqual(plan.get(-STEPS / 2), [[0, 3, 0, 5]]);
  assert.deepEqual(plan.get(STEPS / 4), [[2, 1, 2, 3]]);
  const drawn = [...plan.values()].flat();
  assert.equal(drawn.length, 3);
  assert.ok(!drawn.some(([line]) => line === 1), 'a score of 0.01 is below the threshold');
});

test('every step is in the plan, so applying it clears the old ranges', () => {
  const plan = planDecorations(payload({ ranges: [], scores: [], levels: [] }), 3)!;
  assert.equal(plan.size, 2 * STEPS);
  assert.ok([...plan.values()].every((ranges) => ranges.length === 0));
});

test('a payload for another document version draws nothing', () => {
  assert.equal(planDecorations(payload({ version: 2 }), 3), undefined);
  assert.ok(planDecorations(payload({ version: null }), 3), 'an unversioned payload applies');
});

test('malformed ranges are skipped, not drawn', () => {
  const plan = planDecorations(payload({
    ranges: [[0, 5, 0, 1], [-1, 0, 0, 1], [0, 0, 0, 1]] as [number, number, number, number][],
    scores: [1, 1, 1], levels: [5, 5, 5],
  }), 3)!;
  assert.deepEqual([...plan.values()].flat(), [[0, 0, 0, 1]]);
});

test('the status bar shows method, model and run time', () => {
  const { text, tooltip } = statusText(payload(), false);
  assert.equal(text, '$(flame) input_x_gradient · SmolLM2-135M-Instruct · 0.61 s');
  assert.match(tooltip, /switch method/);
  assert.match(statusText(payload({ previewOf: 'occlusion' }), false).text, /preview; occlusion running/);
  assert.match(statusText(payload({ cached: true }), false).text, /\(cached\)/);
  assert.match(statusText(undefined, false).text, /salience/);
});

test('model ids shorten to their last path component', () => {
  assert.equal(shortModel('C:\\models\\tiny.gguf'), 'tiny');
  assert.equal(shortModel('/a/b/'), 'b');
  assert.equal(shortModel(null), 'model');
});

test('the method picker marks the current method and keeps every description whole', () => {
  const methods = [
    { name: 'attention', description: 'last-layer attention; a baseline, not faithful', cost: 'cheap' },
    { name: 'integrated_gradients', description: 'path integral of gradients from a baseline', cost: 'moderate' },
    { name: 'sequential_integrated_gradients', description: 'integrated gradients per word', cost: 'expensive' },
  ];
  const items = methodItems(methods, 'integrated_gradients');
  assert.deepEqual(items.filter((i) => i.current).map((i) => i.name), ['integrated_gradients']);
  assert.equal(items[1].label, '$(check) integrated_gradients');
  assert.equal(items[1].description, 'moderate · current');
  assert.deepEqual(items.map((i) => i.detail), methods.map((m) => m.description));
  assert.ok(!items[2].current, 'a name that ends like the current one is not current');
  assert.equal(currentMethod(payload({ method: 'attnlrp', previewOf: 'reagent' })), 'reagent', 'a preview stands in');
  assert.equal(currentMethod(payload({ method: 'occlusion', previewOf: null })), 'occlusion');
  assert.equal(currentMethod(undefined), undefined);
});
