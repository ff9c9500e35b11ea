/**
 * One bpf-lsp language client per window: created from the current
 * configuration, started lazily (when the first matching document is open),
 * recreated on restart or when a client-only setting changes.
 */
import * as os from "node:os";
import * as vscode from "vscode";
import type { ConfigurationParams, LanguageClientOptions, ServerOptions } from "vscode-languageclient/node";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  ResponseError,
} from "vscode-languageclient/node";
import type { Expansion, Mapped, ServerSettings } from "./settings";
import { toDocumentSelector, toServerCommand, toServerSettings } from "./settings";

export const SECTION = "bpfLsp";
const CLIENT_ID = "bpfLsp"; // makes the client honour `bpfLsp.trace.server`
const CLIENT_NAME = "BPF LSP";

function expansion(): Expansion {
  return {
    workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    home: os.homedir(),
    env: process.env,
  };
}

function configuration(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

export class BpfLanguageServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly output: vscode.OutputChannel) {}

  /** Settings for the server, with any problems reported in the output channel. */
  serverSettings(): ServerSettings {
    return this.report(toServerSettings(configuration(), expansion()));
  }

  /** Whether `document` is one the server should handle. */
  matches(document: vscode.TextDocument): boolean {
    const selector = toDocumentSelector(configuration()).value;
    return selector.length > 0 && vscode.languages.match(selector, document) > 0;
  }

  /** Whether a client has been started and not stopped since (it may have given up after crashes). */
  get running(): boolean {
    return this.client !== undefined;
  }

  /** Start the server if it is not running. Calls are serialized. */
  start(): Promise<void> {
    return this.enqueue(async () => {
      if (this.client === undefined) {
        await this.launch();
      }
    });
  }

  /** Stop the server if running, then start it with the current configuration. */
  restart(): Promise<void> {
    return this.enqueue(async () => {
      await this.shutdown();
      await this.launch();
    });
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.shutdown());
  }

  /** Push the current server settings (`workspace/didChangeConfiguration`). */
  async sendSettings(): Promise<void> {
    const client = this.client;
    if (client?.isRunning()) {
      await client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { [SECTION]: this.serverSettings() },
      });
    }
  }

  dispose(): void {
    void this.stop();
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.pending.then(step, step);
    this.pending = next.catch(() => undefined);
    return next;
  }

  private report<T>(mapped: Mapped<T>): T {
    for (const problem of mapped.problems) {
      this.output.appendLine(`[settings] ${problem}`);
    }
    return mapped.value;
  }

  private async launch(): Promise<void> {
    const { command, args } = this.report(toServerCommand(configuration(), expansion()));
    // No `transport`: the client then speaks over the child's stdio without appending `--stdio`.
    const serverOptions: ServerOptions = { command, args };
    const clientOptions: LanguageClientOptions = {
      documentSelector: this.report(toDocumentSelector(configuration())),
      initializationOptions: this.serverSettings(),
      outputChannel: this.output,
      middleware: {
        workspace: {
          // Pull model: answer `workspace/configuration` for the section with the server settings only.
          configuration: async (params: ConfigurationParams, token, next) => {
            const answer = await next(params, token);
            if (answer instanceof ResponseError) {
              return answer;
            }
            return params.items.map((item, index): unknown =>
              item.section === SECTION ? this.serverSettings() : answer[index],
            );
          },
        },
      },
    };
    const client = new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
    this.output.appendLine(`[client] starting: ${[command, ...args].join(" ")}`);
    try {
      await client.start();
      this.client = client;
    } catch (error) {
      await client.dispose().catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      this.output.appendLine(`[client] could not start the server: ${message}`);
      void this.offerSettings(`BPF LSP: could not start the language server (${message}).`);
    }
  }

  private async shutdown(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      try {
        await client.dispose(2000);
      } catch (error) {
        this.output.appendLine(`[client] error while stopping the server: ${String(error)}`);
      }
    }
  }

  private async offerSettings(message: string): Promise<void> {
    const open = "Open Settings";
    const choice = await vscode.window.showErrorMessage(message, open);
    if (choice === open) {
      await vscode.commands.executeCommand("workbench.action.openSettings", `${SECTION}.server`);
    }
  }
}
