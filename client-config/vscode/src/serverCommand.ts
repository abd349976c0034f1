/** How the extension starts `salience serve`: the setting, else PATH, else the Python extension's interpreter. */

import * as fs from 'fs';
import * as path from 'path';

export interface ServerCommand { command: string; args: string[] }

/** An executable called `name` on `searchPath` (PATHEXT on Windows), or undefined. */
export function findOnPath(name: string, searchPath: string | undefined, pathExt = ''): string | undefined {
  const extensions = pathExt ? ['', ...pathExt.split(';').filter(Boolean)] : [''];
  for (const dir of (searchPath ?? '').split(path.delimiter).filter(Boolean)) {
    for (const ext of extensions) {
      const candidate = path.join(dir, name + ext);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) {
          return candidate;
        }
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/**
 * The server command line: a non-empty `configured` setting wins; then `salience` found on PATH;
 * then `python -m salience` with `python` (the Python extension's interpreter, else python3).
 */
export function chooseServerCommand(configured: string[] | string | undefined, salienceOnPath: string | undefined,
  python: string | undefined): ServerCommand {
  const words = typeof configured === 'string' ? configured.trim().split(/\s+/).filter(Boolean) : configured ?? [];
  if (words.length > 0) {
    return { command: words[0], args: words.slice(1) };
  }
  if (salienceOnPath) {
    return { command: salienceOnPath, args: ['serve'] };
  }
  return { command: python || 'python3', args: ['-m', 'salience', 'serve'] };
}

/** Keys of the `salience` section that configure this extension, not the server. */
export const CLIENT_KEYS = ['serverCommand', 'heatmap', 'trace'];

/** The server's settings out of the `salience` section: client-only keys removed, nulls dropped. */
export function serverSettings(section: Record<string, unknown> | null | undefined): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(section ?? {})) {
    if (!CLIENT_KEYS.includes(key) && value !== null && value !== undefined && typeof value !== 'function') {
      settings[key] = value;
    }
  }
  return settings;
}

/** What `inspect(key)` tells of a setting: the user's own (global) value among others. */
export interface Inspected { globalValue?: unknown }

/**
 * The user's own values of `keys` (their global settings, not a workspace's): the server trusts only these
 * to name models (initializationOptions), so opening a repository cannot make it load files the repository names.
 */
export function userSettings(keys: string[], inspect: (key: string) => Inspected | undefined): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const key of keys) {
    const value = inspect(key)?.globalValue;
    if (value !== undefined) {
      settings[key] = value;
    }
  }
  return serverSettings(settings);
}
