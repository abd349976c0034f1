/**
 * From the server's `salience/scores` notification to decoration ranges, grouped by colour step.
 *
 * Pure: no `vscode` import, so it runs under node's test runner. The extension turns each group into
 * one decoration type (one per step and theme) and sets its ranges on the editor.
 */

import { step, STEPS } from './colors';

/** The `salience/scores` notification's parameters (see salience/server/layers/heatmap.py). */
export interface ScoresPayload {
  uri: string;
  version: number | null;
  computedVersion: number | null;
  ranges: [number, number, number, number][];
  /** Each range's colour strength in [-1, 1] on the server's robust scale (0: drawn plain). */
  scores: number[];
  levels: number[];
  method: string | null;
  previewOf: string | null;
  explained: string | null;
  model?: string | null;
  seconds?: number | null;
  cached?: boolean;
}

export type RangeTuple = [number, number, number, number];

/** Ranges per non-zero step: every step from -STEPS..STEPS appears, empty ones clear old ranges. */
export type DecorationPlan = Map<number, RangeTuple[]>;

/** All steps a plan can hold, so that applying a plan also clears the steps it leaves empty. */
export function allSteps(): number[] {
  const steps: number[] = [];
  for (let s = 1; s <= STEPS; s++) {
    steps.push(-s, s);
  }
  return steps;
}

/**
 * The decorations for a document at `documentVersion`, or undefined when the payload is for another
 * version (the text has changed since; the server publishes again for the current one).
 */
export function planDecorations(payload: ScoresPayload, documentVersion: number): DecorationPlan | undefined {
  if (payload.version !== null && payload.version !== documentVersion) {
    return undefined;
  }
  const plan: DecorationPlan = new Map(allSteps().map((s) => [s, []]));
  const count = Math.min(payload.ranges.length, payload.scores.length);
  for (let i = 0; i < count; i++) {
    const s = step(payload.scores[i]);
    const range = payload.ranges[i];
    if (s !== 0 && isRange(range)) {
      plan.get(s)!.push(range);
    }
  }
  return plan;
}

function isRange(range: unknown): range is RangeTuple {
  return Array.isArray(range) && range.length === 4 && range.every((n) => Number.isInteger(n) && n >= 0)
    && (range[0] < range[2] || (range[0] === range[2] && range[1] <= range[3]));
}

/** The status bar's text and tooltip for a document's latest payload. */
export function statusText(payload: ScoresPayload | undefined, running: boolean): { text: string; tooltip: string } {
  if (!payload || !payload.method) {
    return { text: running ? '$(sync~spin) salience' : '$(flame) salience', tooltip: 'salience: no result yet; click to choose the method' };
  }
  const model = shortModel(payload.model);
  const time = payload.seconds == null ? '' : ` · ${payload.seconds.toFixed(2)} s${payload.cached ? ' (cached)' : ''}`;
  const preview = payload.previewOf ? ` (preview; ${payload.previewOf} running)` : '';
  const icon = running || payload.previewOf ? '$(sync~spin)' : '$(flame)';
  return {
    text: `${icon} ${payload.method}${preview} · ${model}${time}`,
    tooltip: `salience: ${payload.method} on ${payload.model ?? 'the model'}, explaining ${JSON.stringify(payload.explained ?? '')}; click to switch method`,
  };
}

/** A model id for the status bar: the last path component of a directory or file. */
export function shortModel(model: string | null | undefined): string {
  if (!model) {
    return 'model';
  }
  const parts = model.split(/[\\/]/).filter((p) => p.length > 0);
  return (parts[parts.length - 1] ?? model).replace(/\.gguf$/i, '');
}

/** A method as the server's `salience.methods` command lists it. */
export interface MethodInfo { name: string; description: string; cost: string }

/** An entry of the method picker. */
export interface MethodItem { name: string; label: string; description: string; detail: string; current: boolean }

/** The method the document's heatmap is for (while a preview stands in, the method it stands in for). */
export function currentMethod(payload: ScoresPayload | undefined): string | undefined {
  return payload?.previewOf ?? payload?.method ?? undefined;
}

/**
 * The picker's entries: every method with its cost and its whole description (on a line of its own), the
 * current one marked. The picker opens on the current method, so Enter keeps it.
 */
export function methodItems(methods: MethodInfo[], current: string | undefined): MethodItem[] {
  return methods.map((m) => ({
    name: m.name,
    label: m.name === current ? `$(check) ${m.name}` : m.name,
    description: m.name === current ? `${m.cost} · current` : m.cost,
    detail: m.description,
    current: m.name === current,
  }));
}
