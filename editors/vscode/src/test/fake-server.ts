/**
 * A minimal language server over stdio for server.test.ts. It records every
 * message it receives (one JSON line each, in $FAKE_SERVER_RECORD), answers
 * `initialize` and `shutdown`, asks for the `bpfLsp` section once initialized,
 * and exits on `exit`.
 */
import { appendFileSync } from "node:fs";

export interface Recorded {
  argv: string[];
  kind: "request" | "notification" | "response";
  method?: string;
  params?: unknown;
  result?: unknown;
}

interface Message {
  id?: number | string;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
}

function send(message: object): void {
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...message }), "utf8");
  process.stdout.write(`Content-Length: ${body.length}\r\n\r\n`);
  process.stdout.write(body);
}

function record(message: Message): void {
  const kind = message.method === undefined ? "response" : message.id === undefined ? "notification" : "request";
  const params =
    message.method === "initialize" ? { initializationOptions: message.params?.initializationOptions } : message.params;
  const entry: Recorded = { argv: process.argv.slice(2), kind, method: message.method, params, result: message.result };
  appendFileSync(process.env.FAKE_SERVER_RECORD ?? "/dev/null", JSON.stringify(entry) + "\n");
}

function handle(message: Message): void {
  record(message);
  switch (message.method) {
    case "initialize":
      send({ id: message.id, result: { capabilities: { textDocumentSync: 1 } } });
      break;
    case "initialized":
      send({ id: "configuration", method: "workspace/configuration", params: { items: [{ section: "bpfLsp" }] } });
      break;
    case "shutdown":
      send({ id: message.id, result: null });
      break;
    case "exit":
      process.exit(0);
  }
}

let pending = Buffer.alloc(0);
process.stdin.on("data", (chunk: Buffer) => {
  pending = Buffer.concat([pending, chunk]);
  for (;;) {
    const headerEnd = pending.indexOf("\r\n\r\n");
    if (headerEnd < 0) {
      return;
    }
    const length = Number(/Content-Length: (\d+)/i.exec(pending.subarray(0, headerEnd).toString())?.[1]);
    const start = headerEnd + 4;
    if (pending.length < start + length) {
      return;
    }
    const body = pending.subarray(start, start + length).toString("utf8");
    pending = pending.subarray(start + length);
    handle(JSON.parse(body) as Message);
  }
});
