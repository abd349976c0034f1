/** The background heatmap: one decoration type per colour step, rebuilt when the theme changes. */

import * as vscode from 'vscode';

import { background, border, ThemeKind } from './colors';
import { allSteps, planDecorations, RangeTuple, ScoresPayload } from './decorations';

export class Heatmap implements vscode.Disposable {
  private types = new Map<number, vscode.TextEditorDecorationType>();
  private latest = new Map<string, ScoresPayload>();

  constructor(private maxOpacity: () => number | null, private enabled: () => boolean) {
    this.rebuildTypes();
  }

  /** Keep a document's latest scores and draw them in its visible editors. */
  update(payload: ScoresPayload): void {
    this.latest.set(payload.uri, payload);
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document.uri.toString() === payload.uri) {
        this.draw(editor);
      }
    }
  }

  payload(uri: string): ScoresPayload | undefined {
    return this.latest.get(uri);
  }

  forget(uri: string): void {
    this.latest.delete(uri);
  }

  /** Draw an editor's document from its latest payload (nothing when the payload is for another version). */
  draw(editor: vscode.TextEditor): void {
    const payload = this.latest.get(editor.document.uri.toString());
    if (!payload) {
      return;
    }
    const plan = this.enabled() ? planDecorations(payload, editor.document.version) : new Map<number, RangeTuple[]>();
    if (!plan) {
      return;
    }
    for (const [step, type] of this.types) {
      const ranges = (plan.get(step) ?? []).map(([l1, c1, l2, c2]) => new vscode.Range(l1, c1, l2, c2));
      editor.setDecorations(type, ranges);
    }
  }

  /** New decoration types for the current theme (and opacity), then redraw every visible editor. */
  rebuildTypes(): void {
    this.disposeTypes();
    const theme = themeKind(vscode.window.activeColorTheme.kind);
    for (const step of allSteps()) {
      const edge = border(theme);
      this.types.set(step, vscode.window.createTextEditorDecorationType({
        backgroundColor: background(step, theme, this.maxOpacity()),
        border: edge,
        borderColor: edge ? background(step, theme, 1) : undefined,
        borderRadius: '2px',
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      }));
    }
    vscode.window.visibleTextEditors.forEach((editor) => this.draw(editor));
  }

  dispose(): void {
    this.disposeTypes();
    this.latest.clear();
  }

  private disposeTypes(): void {
    this.types.forEach((type) => type.dispose());
    this.types.clear();
  }
}

function themeKind(kind: vscode.ColorThemeKind): ThemeKind {
  switch (kind) {
    case vscode.ColorThemeKind.Light: return 'light';
    case vscode.ColorThemeKind.HighContrast: return 'highContrast';
    case vscode.ColorThemeKind.HighContrastLight: return 'highContrastLight';
    default: return 'dark';
  }
}
