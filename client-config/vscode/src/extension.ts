/**
 * The salience VS Code extension: starts `salience serve`, draws the background heatmap from the
 * `salience/scores` notification, shows the run in the status bar and fills in server commands'
 * arguments when they come from the command palette.
 */

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification, ExecuteCommandRequest, LanguageClient, LanguageClientOptions,
  Middleware, ServerOptions,
} from 'vscode-languageclient/node';

import { currentMethod, MethodInfo, MethodItem, methodItems, ScoresPayload, statusText } from './decorations';
import { Heatmap } from './heatmap';
import { chooseServerCommand, findOnPath, serverSettings, ServerCommand, userSettings } from './serverCommand';

const LANGUAGE = 'prompt';
const SCORES = 'salience/scores';

let client: LanguageClient | undefined;
/** The heatmap's latest payloads: the method picker opens on a document's current method. */
let heatmapOf: Heatmap | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const config = () => vscode.workspace.getConfiguration('salience');
  const heatmap = new Heatmap(() => config().get<number | null>('heatmap.maxOpacity', null),
    () => config().get<boolean>('heatmap.enabled', true));
  heatmapOf = heatmap;
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  status.command = 'salience.setMethod';
  const refreshStatus = () => showStatus(status, heatmap);
  context.subscriptions.push(heatmap, status);

  client = await createClient(context, heatmap, refreshStatus);
  context.subscriptions.push(
    vscode.commands.registerCommand('salience.restartServer', async () => {
      await client?.stop();
      client = await createClient(context, heatmap, refreshStatus);
    }),
    vscode.commands.registerCommand('salience.toggleHeatmap', () =>
      config().update('heatmap.enabled', !config().get<boolean>('heatmap.enabled', true),
        vscode.ConfigurationTarget.Global)),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration('salience.serverCommand')) {
        await vscode.commands.executeCommand('salience.restartServer');
      } else if (event.affectsConfiguration('salience.heatmap')) {
        heatmap.rebuildTypes();
      } else if (event.affectsConfiguration('salience')) {
        // The server pulls its section again; the configuration middleware filters it.
        await client?.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
      }
    }),
    vscode.window.onDidChangeActiveColorTheme(() => heatmap.rebuildTypes()),
    vscode.window.onDidChangeVisibleTextEditors((editors) => editors.forEach((e) => heatmap.draw(e))),
    vscode.window.onDidChangeActiveTextEditor(refreshStatus),
    vscode.workspace.onDidCloseTextDocument((doc) => heatmap.forget(doc.uri.toString())),
  );
  refreshStatus();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

async function createClient(context: vscode.ExtensionContext, heatmap: Heatmap,
  refreshStatus: () => void): Promise<LanguageClient | undefined> {
  const server = await serverCommand();
  const serverOptions: ServerOptions = { command: server.command, args: server.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ language: LANGUAGE }],
    initializationOptions: userLevel(vscode.workspace.getConfiguration('salience')),
    outputChannelName: 'salience',
    middleware: middleware(),
  };
  const created = new LanguageClient('salience', 'salience', serverOptions, clientOptions);
  context.subscriptions.push(created.onNotification(SCORES, (payload: ScoresPayload) => {
    heatmap.update(payload);
    refreshStatus();
  }));
  try {
    await created.start();
  } catch (err) {
    const line = [server.command, ...server.args].join(' ');
    const choice = await vscode.window.showErrorMessage(
      `salience: could not start the server with "${line}": ${err}. Install salience (pip install salience) `
      + 'or set salience.serverCommand.', 'Open settings');
    if (choice) {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'salience.serverCommand');
    }
    return undefined;
  }
  return created;
}

/** The command line from the setting, PATH or the Python extension's interpreter. */
async function serverCommand(): Promise<ServerCommand> {
  // User settings only: a workspace's command line would run whatever a repository names.
  const configured = vscode.workspace.getConfiguration('salience')
    .inspect<string[] | string>('serverCommand')?.globalValue;
  const onPath = findOnPath('salience', process.env.PATH, process.platform === 'win32' ? process.env.PATHEXT : '');
  const needsPython = !onPath && !(Array.isArray(configured) ? configured.length : configured);
  return chooseServerCommand(configured, onPath, needsPython ? await pythonInterpreter() : undefined);
}

/** The interpreter the Python extension has chosen, if it is installed. */
async function pythonInterpreter(): Promise<string | undefined> {
  const python = vscode.extensions.getExtension('ms-python.python');
  if (!python) {
    return undefined;
  }
  try {
    const api = python.isActive ? python.exports : await python.activate();
    const chosen = api?.environments?.getActiveEnvironmentPath?.();
    const resolved = chosen ? await api.environments.resolveEnvironment?.(chosen) : undefined;
    return resolved?.executable?.uri?.fsPath ?? chosen?.path;
  } catch {
    return undefined;
  }
}

function middleware(): Middleware {
  return {
    // Palette and status-bar invocations carry no arguments: name the active prompt and ask for the rest.
    executeCommand: async (command, args, next) => {
      if (command === 'salience.methods') {
        return next(command, args);
      }
      const filled = await commandArguments(command, args);
      return filled ? next(command, filled) : undefined;
    },
    workspace: {
      configuration: async (params, token, next) => {
        const result = await next(params, token);
        return Array.isArray(result) ? result.map((section) => serverSettings(section)) : result;
      },
    },
  };
}

async function commandArguments(command: string, args: unknown[]): Promise<unknown[] | undefined> {
  const editor = vscode.window.activeTextEditor;
  const uri = args[0] ?? (editor?.document.languageId === LANGUAGE ? editor.document.uri.toString() : undefined);
  if (!uri) {
    void vscode.window.showWarningMessage('salience: open a prompt file first');
    return undefined;
  }
  const rest = args.slice(1);
  if (command === 'salience.setMethod' && rest.length === 0) {
    const method = await pickMethod(currentMethod(heatmapOf?.payload(String(uri))));
    return method === undefined ? undefined : [uri, method];
  }
  if (command === 'salience.setTarget' && rest.length === 0) {
    const selected = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : '';
    const text = await vscode.window.showInputBox({
      title: 'salience: text to explain', value: selected,
      prompt: 'The model is scored on producing this text; leave empty to explain its own continuation.',
    });
    return text === undefined ? undefined : text ? [uri, text] : [uri];
  }
  return [uri, ...rest];
}

/** The method picker: every method with its cost and description, opened on the document's current one. */
async function pickMethod(current: string | undefined): Promise<string | undefined> {
  const methods = (await client?.sendRequest(ExecuteCommandRequest.type,
    { command: 'salience.methods', arguments: [] })) as MethodInfo[] | undefined;
  const items = methodItems(methods ?? [], current);
  const pick = vscode.window.createQuickPick<MethodItem>();
  pick.title = 'salience: attribution method for this document';
  pick.placeholder = current ? `now: ${current}` : 'choose a method';
  pick.matchOnDescription = true;
  pick.matchOnDetail = true;
  pick.items = items;
  pick.activeItems = items.filter((item) => item.current);
  const chosen = await new Promise<MethodItem | undefined>((resolve) => {
    pick.onDidAccept(() => resolve(pick.selectedItems[0] ?? pick.activeItems[0]));
    pick.onDidHide(() => resolve(undefined));
    pick.show();
  });
  pick.dispose();
  return chosen?.name;
}

function showStatus(status: vscode.StatusBarItem, heatmap: Heatmap): void {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.languageId !== LANGUAGE) {
    status.hide();
    return;
  }
  const { text, tooltip } = statusText(heatmap.payload(editor.document.uri.toString()), false);
  status.text = text;
  status.tooltip = tooltip;
  status.show();
}

/** The section's values from the user's own settings (what the server trusts to name models). */
function userLevel(section: vscode.WorkspaceConfiguration): Record<string, unknown> {
  return userSettings(Object.keys(toPlain(section)), (key) => section.inspect(key));
}

/** A configuration section as plain JSON (WorkspaceConfiguration also carries methods). */
function toPlain(section: vscode.WorkspaceConfiguration): Record<string, unknown> {
  return JSON.parse(JSON.stringify(section)) as Record<string, unknown>;
}
