import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import { chooseServerCommand, findOnPath, serverSettings, userSettings } from '../serverCommand';

test('the setting wins, then PATH, then the Python interpreter', () => {
  assert.deepEqual(chooseServerCommand(['/v/bin/salience', 'serve'], '/usr/bin/salience', '/py'),
    { command: '/v/bin/salience', args: ['serve'] });
  assert.deepEqual(chooseServerCommand('salience  serve --log-file /tmp/s.log', undefined, undefined),
    { command: 'salience', args: ['serve', '--log-file', '/tmp/s.log'] });
  assert.deepEqual(chooseServerCommand([], '/usr/bin/salience', '/py'), { command: '/usr/bin/salience', args: ['serve'] });
  assert.deepEqual(chooseServerCommand([], undefined, '/venv/bin/python'),
    { command: '/venv/bin/python', args: ['-m', 'salience', 'serve'] });
  assert.deepEqual(chooseServerCommand(undefined, undefined, undefined),
    { command: 'python3', args: ['-m', 'salience', 'serve'] });
});

test('findOnPath finds executables only', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salience-path-'));
  const plain = path.join(dir, 'salience');
  fs.writeFileSync(plain, '#!/bin/sh\n');
  assert.equal(findOnPath('salience', dir), undefined, 'not executable yet');
  fs.chmodSync(plain, 0o755);
  assert.equal(findOnPath('salience', ['/nonexistent', dir].join(path.delimiter)), plain);
  assert.equal(findOnPath('salience', undefined), undefined);
  fs.rmSync(dir, { recursive: true });
});

test('server settings drop client-only keys, nulls and functions', () => {
  const section = {
    serverCommand: ['x'], heatmap: { enabled: true }, trace: { server: 'off' },
    method: 'occlusion', model: null, debounceMs: 0, get: () => 1,
  };
  assert.deepEqual(serverSettings(section), { method: 'occlusion', debounceMs: 0 });
  assert.deepEqual(serverSettings(null), {});
});

test('initializationOptions carry only the values of the user settings', () => {
  const scopes: Record<string, { globalValue?: unknown; workspaceValue?: unknown }> = {
    model: { globalValue: '/models/mine', workspaceValue: '/repo/evil' },
    models: { workspaceValue: { big: '/repo/big.gguf' } },
    allowWorkspaceModels: { workspaceValue: true },
    serverCommand: { globalValue: ['salience', 'serve'] },
    debounceMs: { globalValue: 100 },
  };
  assert.deepEqual(userSettings(Object.keys(scopes), (key) => scopes[key]), { model: '/models/mine', debounceMs: 100 });
});
