// Real VS Code end to end: code-server with the packaged extension, driven by puppeteer-core in Debian's
// chromium. Opens an example prompt, waits for the heatmap decorations and the status bar, hovers the
// strongest token and checks the score is shown, switches to a light theme; saves screenshots.
//
// node run.mjs --vsix salience.vsix --prompt examples/door-codes.prompt --out build/vscode-e2e --server .venv/bin/salience
// (--server becomes the salience.serverCommand setting: code-server's extension host takes PATH from a login
// shell, not from this process. Without it, the extension looks for `salience` on that PATH.)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

import puppeteer from 'puppeteer-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    vsix: { type: 'string' }, prompt: { type: 'string' }, out: { type: 'string' }, server: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' }, timeout: { type: 'string', default: '240' },
  },
});
for (const required of ['vsix', 'prompt', 'out']) {
  if (!opts[required]) {
    console.error(`usage: node run.mjs --vsix FILE --prompt FILE --out DIR [--server SALIENCE]; missing --${required}`);
    process.exit(2);
  }
}
const timeoutMs = Number(opts.timeout) * 1000;
const out = path.resolve(opts.out);
fs.mkdirSync(out, { recursive: true });
const codeServer = path.join(here, 'node_modules', '.bin', 'code-server');
const report = { steps: [] };

function step(name, detail = {}) {
  const entry = { name, seconds: Number(process.uptime().toFixed(1)), ...detail };
  report.steps.push(entry);
  console.log(`[${entry.seconds}s] ${name}`, Object.keys(detail).length ? JSON.stringify(detail) : '');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function run(command, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}`))));
  });
}

/** A fresh profile: user settings, a workspace holding the prompt, and code-server's own config. */
function makeProfile(root, port) {
  const dirs = { user: path.join(root, 'user-data'), extensions: path.join(root, 'extensions'),
    workspace: path.join(root, 'workspace'), chrome: path.join(root, 'chrome') };
  Object.values(dirs).forEach((dir) => fs.mkdirSync(dir, { recursive: true }));
  fs.mkdirSync(path.join(dirs.user, 'User'), { recursive: true });
  const settingsFile = path.join(dirs.user, 'User', 'settings.json');
  writeSettings(settingsFile);
  // salience.serverCommand is machine-scoped (a workspace must not choose what runs): code-server reads
  // such settings from its Machine settings, the remote side of VS Code.
  fs.mkdirSync(path.join(dirs.user, 'Machine'), { recursive: true });
  // Without --server the extension finds `salience` on PATH, as after `make install-user`.
  const machine = opts.server ? { 'salience.serverCommand': [path.resolve(opts.server), 'serve'] } : {};
  fs.writeFileSync(path.join(dirs.user, 'Machine', 'settings.json'), JSON.stringify(machine, null, 2));
  const config = path.join(root, 'config.yaml');
  fs.writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const prompt = path.join(dirs.workspace, path.basename(opts.prompt));
  fs.copyFileSync(opts.prompt, prompt);
  return { ...dirs, settingsFile, config, prompt };
}

function writeSettings(file) {
  fs.writeFileSync(file, JSON.stringify({
    'workbench.colorTheme': 'Default Dark Modern', 'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off', 'update.mode': 'none', 'extensions.autoCheckUpdates': false,
    'workbench.tips.enabled': false, 'chat.disableAIFeatures': true, 'editor.minimap.enabled': false,
    'window.commandCenter': false, 'editor.hover.delay': 200, 'editor.fontSize': 15,
    'editor.occurrencesHighlight': 'off',  // VS Code's grey boxes on the word under the cursor are not the heatmap
  }, null, 2));
}

async function waitForListening(child) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('code-server did not start in 60 s')), 60000);
    const onData = (data) => {
      process.stdout.write(`[code-server] ${data}`);
      if (String(data).includes('HTTP server listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`code-server exited with ${code}`)));
  });
}

/** Background decorations drawn by the extension: VS Code puts them in the view overlays as `.cdr`. */
async function heatmapCells(page) {
  return page.$$eval('.monaco-editor .view-overlays .cdr[class*="TextEditorDecorationType"]', (nodes) => nodes.map((node) => {
    const box = node.getBoundingClientRect();
    return { background: getComputedStyle(node).backgroundColor, x: box.x, y: box.y, width: box.width,
      height: box.height };
  }).filter((cell) => /^rgba?\(/.test(cell.background) && !/, 0\)$/.test(cell.background) && cell.width > 0));
}

function alphaOf(css) {
  return css.startsWith('rgb(') ? 1 : Number(css.match(/, ([\d.]+)\)$/)?.[1] ?? 0);
}

/** The code lenses' text over line 1. */
async function codeLenses(page) {
  return page.$$eval('.codelens-decoration', (nodes) => nodes.map((n) => n.textContent ?? '').join(' | '));
}

async function waitFor(what, check, ms = timeoutMs) {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) {
      return value;
    }
    if (Date.now() - started > ms) {
      throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function main() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'salience-vscode-'));
  const port = await freePort();
  const profile = makeProfile(root, port);
  const env = { ...process.env };
  const common = ['--config', profile.config, '--user-data-dir', profile.user, '--extensions-dir', profile.extensions];
  await run(codeServer, [...common, '--install-extension', path.resolve(opts.vsix)], env);
  step('extension installed');
  const server = spawn(codeServer, [...common, '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--disable-getting-started-override', profile.workspace], { env });
  let browser;
  try {
    await waitForListening(server);
    step('code-server listening', { port });
    browser = await puppeteer.launch({
      executablePath: opts.chromium, headless: true, userDataDir: profile.chrome,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-quic', '--window-size=1400,900'],
      defaultViewport: { width: 1400, height: 900 },
    });
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(profile.workspace)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 120000 });
    step('workbench loaded');
    await openFile(page, path.basename(profile.prompt));
    step('prompt opened', { file: path.basename(profile.prompt) });
    const cells = await waitFor('heatmap decorations', async () => {
      const found = await heatmapCells(page);
      return found.length >= 3 ? found : undefined;
    });
    const status = await waitFor('the status bar item', () => page.$$eval('.statusbar-item',
      (items) => items.map((i) => i.textContent?.trim() ?? '').find((t) => /(^|\s)attnlrp · /.test(t))));
    step('heatmap drawn', { cells: cells.length, colours: new Set(cells.map((c) => c.background)).size, status });
    // The code lens follows the result: it names what is explained, no longer "running…".
    const drawnAt = Date.now();
    const lens = await waitFor('the code lens to show the result', async () => {
      const text = await codeLenses(page);
      return text.includes("salience: '") && !text.includes('running') ? text : undefined;
    }, 20000);
    step('code lens updated', { lens, secondsAfterHeatmap: (Date.now() - drawnAt) / 1000 });
    await page.mouse.move(5, 5);
    await page.screenshot({ path: path.join(out, 'vscode-heatmap-dark.png') });

    const strongest = cells.reduce((a, b) => (alphaOf(b.background) > alphaOf(a.background) ? b : a));
    await page.mouse.move(strongest.x + strongest.width / 2, strongest.y + strongest.height / 2);
    const hover = await waitFor('a hover with the score', () => page.$$eval('.monaco-hover-content',
      (nodes) => nodes.map((n) => n.textContent ?? '').find((t) => t.includes('relevance to'))), 30000);
    step('hover shown', { hover: hover.slice(0, 200), strongest: strongest.background });
    await page.screenshot({ path: path.join(out, 'vscode-hover.png') });

    await page.mouse.move(5, 5);
    await page.keyboard.press('Escape');
    // Click the status bar item: the method picker lists the server's methods; choose occlusion.
    // (ours reads "attnlrp · model · time"; VS Code's progress item "salience: attnlrp: …" is another)
    await page.evaluate(() => [...document.querySelectorAll('.statusbar-item')]
      .find((item) => /(^|\s)attnlrp · /.test(item.textContent ?? ''))
      ?.querySelector('a, .statusbar-item-label')?.click());
    await waitFor('the method picker', () => page.$$eval('.quick-input-list .monaco-list-row',
      (rows) => rows.some((r) => r.textContent?.includes('occlusion'))), 15000);
    // It opens on the document's current method, marked as such.
    const focused = await waitFor('the picker on the current method', () => page.$$eval(
      '.quick-input-list .monaco-list-row.focused', (rows) => rows.map((r) => r.textContent ?? '')
        .find((t) => t.includes('attnlrp') && t.includes('current'))), 10000);
    step('method picker on the current method', { focused: focused.slice(0, 160) });
    await page.screenshot({ path: path.join(out, 'vscode-method-picker.png') });
    await page.keyboard.type('occlusion', { delay: 10 });
    await page.keyboard.press('Enter');
    const switched = await waitFor('occlusion in the status bar', () => page.$$eval('.statusbar-item',
      (items) => items.map((i) => i.textContent?.trim() ?? '').find((t) => /(^|\s)occlusion ·/.test(t))));
    step('method switched from the status bar', { status: switched });

    await runCommand(page, 'Preferences: Toggle between Light/Dark Themes');
    const light = await waitFor('light-theme colours', async () => {
      const now = await heatmapCells(page);
      const colours = new Set(now.map((c) => c.background.replace(/, [\d.]+\)$/, '')));
      const before = new Set(cells.map((c) => c.background.replace(/, [\d.]+\)$/, '')));
      return now.length >= 3 && [...colours].some((c) => !before.has(c)) ? now : undefined;
    }, 30000);
    step('light theme redrawn', { cells: light.length });
    await page.screenshot({ path: path.join(out, 'vscode-heatmap-light.png') });
    report.ok = true;
  } catch (err) {
    report.ok = false;
    report.error = String(err?.stack ?? err);
    console.error(report.error);
    const pages = browser ? await browser.pages() : [];
    if (pages.length) {
      await pages[pages.length - 1].screenshot({ path: path.join(out, 'vscode-failure.png') }).catch(() => {});
    }
  } finally {
    await browser?.close().catch(() => {});
    server.kill('SIGTERM');
    fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(report, null, 2));
    if (!report.ok) {  // keep VS Code's logs (extension host, the salience output channel) for the failure
      fs.cpSync(path.join(profile.user, 'logs'), path.join(out, 'logs'), { recursive: true });
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
  process.exit(report.ok ? 0 : 1);
}

/** Run a command by its palette title, as a user would (F1, type, Enter). */
async function runCommand(page, title) {
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget input', { visible: true, timeout: 10000 });
  await page.keyboard.type(title, { delay: 10 });
  await waitFor(`"${title}" in the command palette`, () => page.$$eval('.quick-input-list .monaco-list-row',
    (rows, wanted) => rows.some((r) => r.textContent?.includes(wanted)), title), 15000);
  await page.keyboard.press('Enter');
}

/** Quick Open (Ctrl+P), type the file name, Enter; then wait for its editor. */
async function openFile(page, name) {
  await waitFor('the workbench to accept Quick Open', async () => {
    await page.keyboard.down('Control');
    await page.keyboard.press('KeyP');
    await page.keyboard.up('Control');
    return page.waitForSelector('.quick-input-widget input', { visible: true, timeout: 3000 }).catch(() => undefined);
  }, 60000);
  await page.keyboard.type(name, { delay: 20 });
  await waitFor('the file in Quick Open', () => page.$$eval('.quick-input-list .monaco-list-row',
    (rows, wanted) => rows.some((r) => r.textContent?.includes(wanted)), name), 30000);
  await page.keyboard.press('Enter');
  await page.waitForSelector(`.tab[data-resource-name="${name}"], .tab[aria-label*="${name}"]`, { timeout: 30000 });
}

main();
