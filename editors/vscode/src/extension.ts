/**
 * Entry point: an output channel, the restart command, lazy start on the
 * first matching C document, and configuration changes forwarded to the
 * server (server settings) or applied by restarting (client-only settings).
 */
import * as vscode from "vscode";
import { BpfLanguageServer, SECTION } from "./server";
import { SERVER_SETTING_KINDS } from "./settings";

/** Client-only settings whose change needs a new client. `trace.server` is handled by the client itself. */
const RESTART_ON = [`${SECTION}.server`, `${SECTION}.documentSelector`];
const SERVER_KEYS = Object.keys(SERVER_SETTING_KINDS).map((name) => `${SECTION}.${name}`);

let server: BpfLanguageServer | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("BPF LSP");
  server = new BpfLanguageServer(output);
  const current = server;
  context.subscriptions.push(output, current);

  context.subscriptions.push(
    vscode.commands.registerCommand("bpfLsp.restartServer", async () => {
      output.appendLine("[client] restart requested");
      await current.restart();
    }),
  );

  const startIfMatching = (document: vscode.TextDocument): void => {
    if (!current.running && current.matches(document)) {
      void current.start();
    }
  };
  context.subscriptions.push(vscode.workspace.onDidOpenTextDocument(startIfMatching));
  vscode.workspace.textDocuments.forEach(startIfMatching);

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (RESTART_ON.some((key) => event.affectsConfiguration(key))) {
        if (current.running) {
          output.appendLine("[client] client settings changed; restarting");
          void current.restart();
        } else {
          vscode.workspace.textDocuments.forEach(startIfMatching);
        }
      } else if (SERVER_KEYS.some((key) => event.affectsConfiguration(key))) {
        void current.sendSettings();
      }
    }),
  );
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}
