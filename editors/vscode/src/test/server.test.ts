/**
 * BpfLanguageServer against a fake language server process: the command line,
 * the initializationOptions, the pushed and pulled settings, and a failed start.
 * `vscode` is the stub in ./stub/vscode (see the `test` script).
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BpfLanguageServer } from "../server";
import { DEFAULT_SERVER_SETTINGS } from "../settings";
import type { Recorded } from "./fake-server";
import { configuration, log, window } from "./stub/vscode";

const output = window.createOutputChannel("BPF LSP");

function setConfiguration(values: Record<string, unknown>): void {
  for (const key of Object.keys(configuration)) {
    delete configuration[key];
  }
  Object.assign(configuration, values);
}

function recorded(file: string): Recorded[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Recorded);
}

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("BpfLanguageServer", { skip: process.platform === "win32" && "needs a shell script" }, () => {
  let dir = "";
  let executable = "";
  let record = "";

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "bpf-lsp-client-"));
    executable = join(dir, "fake-bpf-lsp");
    record = join(dir, "messages.jsonl");
    const script = join(__dirname, "fake-server.js");
    writeFileSync(executable, `#!/bin/sh\nexec "${process.execPath}" "${script}" "$@"\n`);
    chmodSync(executable, 0o755);
    process.env.FAKE_SERVER_RECORD = record;
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it("starts `<server.path> serve` over stdio with the server settings as initializationOptions", async () => {
    writeFileSync(record, "");
    setConfiguration({
      "server.path": executable,
      "server.pythonPath": "",
      documentSelector: ["**/*.bpf.c"],
      "trace.server": "off",
      extraFlags: ["-DDEBUG"],
      debounceMs: 40,
    });
    const server = new BpfLanguageServer(output);
    await server.start();
    assert.ok(server.running);
    const expected = { ...DEFAULT_SERVER_SETTINGS, extraFlags: ["-DDEBUG"], debounceMs: 40 };

    // The fake asks for the section once initialized; the answer must hold server settings only.
    const pulled = await waitFor(
      () => recorded(record).find((message) => message.kind === "response"),
      "the workspace/configuration answer",
    );
    assert.deepEqual(pulled.result, [expected]);

    configuration.includeDirs = ["/opt/include"];
    await server.sendSettings();
    const pushed = await waitFor(
      () => recorded(record).find((message) => message.method === "workspace/didChangeConfiguration"),
      "workspace/didChangeConfiguration",
    );
    await server.stop();
    assert.ok(!server.running);
    // `exit` is a notification: stop() may return before the fake has read it.
    await waitFor(() => recorded(record).find((message) => message.method === "exit"), "exit");

    const messages = recorded(record);
    const initialize = messages.find((message) => message.method === "initialize");
    assert.ok(initialize);
    assert.deepEqual(initialize.argv, ["serve"]);
    assert.deepEqual(initialize.params, { initializationOptions: expected });
    assert.deepEqual(pushed.params, { settings: { bpfLsp: { ...expected, includeDirs: ["/opt/include"] } } });
    assert.deepEqual(
      messages.filter((message) => message.kind !== "response").map((message) => message.method),
      ["initialize", "initialized", "workspace/didChangeConfiguration", "shutdown", "exit"],
    );
  });

  it("reports a server that cannot be started, and stays stopped", async () => {
    setConfiguration({ "server.path": join(dir, "missing") });
    log.length = 0;
    const server = new BpfLanguageServer(output);
    await server.start();
    assert.ok(!server.running);
    assert.ok(log.some((line) => line.startsWith("error message: BPF LSP: could not start the language server")));
  });
});
