/**
 * A stand-in for the `vscode` module (resolved through NODE_PATH=out/test/stub
 * by `npm test`), enough for vscode-languageclient to start a server process
 * and for server.ts to run outside VS Code.
 *
 * Real: Disposable, EventEmitter, the `bpfLsp` configuration (from
 * `configuration`), output channels and error messages (recorded in `log`).
 * Everything else is an inert object: any property is another inert object,
 * any call returns one.
 */

type Inert = ((...args: unknown[]) => Inert) & { [key: string | symbol]: Inert };

function inert(name: string): Inert {
  const properties = new Map<string | symbol, Inert>();
  const target = function () {
    /* inert */
  };
  return new Proxy(target, {
    get(_target, key) {
      if (key === "then") {
        return undefined; // not a thenable: `await inert` must not hang
      }
      if (key === Symbol.toPrimitive) {
        return () => name;
      }
      if (key === Symbol.iterator) {
        return function* () {
          /* empty */
        };
      }
      if (key === "length") {
        return 0;
      }
      let value = properties.get(key);
      if (value === undefined) {
        value = inert(`${name}.${String(key)}`);
        properties.set(key, value);
      }
      return value;
    },
    apply: () => inert(`${name}()`),
    construct: () => inert(`new ${name}`),
  }) as unknown as Inert;
}

/** Values of the `bpfLsp` section, keyed without the prefix; tests assign to it. */
export const configuration: Record<string, unknown> = {};

/** Output channel lines and error messages, in order. */
export const log: string[] = [];

export class Disposable {
  constructor(private readonly onDispose?: () => void) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item.dispose()));
  }
  dispose(): void {
    this.onDispose?.();
  }
}

export class EventEmitter<T> {
  private listeners: ((event: T) => void)[] = [];
  readonly event = (listener: (event: T) => void): Disposable => {
    this.listeners.push(listener);
    return new Disposable(() => {
      this.listeners = this.listeners.filter((other) => other !== listener);
    });
  };
  fire(event: T): void {
    this.listeners.forEach((listener) => listener(event));
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class CancellationError extends Error {}

export const version = "1.82.0";
export const env = { language: "en", appName: "stub", appRoot: "", machineId: "stub", sessionId: "stub", uiKind: 1 };

function extend<T extends object>(base: Inert, extra: T): T & Inert {
  return new Proxy(base, {
    get: (target, key) => (key in extra ? (extra as Record<string | symbol, unknown>)[key] : target[key]),
  }) as T & Inert;
}

const root = inert("vscode");

export const workspace = extend(root.workspace, {
  getConfiguration: () => ({ get: (key: string): unknown => configuration[key] }),
  workspaceFolders: undefined,
  textDocuments: [],
});

export const window = extend(root.window, {
  createOutputChannel: (name: string) => ({
    name,
    append: (text: string) => log.push(text),
    appendLine: (line: string) => log.push(line),
    replace() {},
    clear() {},
    show() {},
    hide() {},
    dispose() {},
  }),
  showErrorMessage: (message: string) => {
    log.push(`error message: ${message}`);
    return Promise.resolve(undefined);
  },
});


// Whatever else the client touches (vscode.CompletionItem, vscode.Range, ...) is inert.
const exported = module.exports as Record<string | symbol, unknown>;
module.exports = new Proxy(exported, {
  get: (target, key) => (key in target ? target[key] : root[key]),
});
