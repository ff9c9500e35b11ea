/**
 * From the `bpfLsp` VS Code configuration section to what the server and the
 * client need: the server settings (sent as `initializationOptions` and in
 * `workspace/didChangeConfiguration`), the server command line and the
 * document selector.
 *
 * Pure: no `vscode` import, so it runs under `node --test`.
 * The server settings mirror `bpf_lsp/settings.py` (SETTINGS); the parity
 * tests check package.json against that table and this module against
 * package.json.
 */

export type SettingKind = "string" | "array" | "number";

export interface ServerSettings {
  compilerPath: string;
  extraFlags: string[];
  includeDirs: string[];
  compileCommandsDir: string;
  debounceMs: number;
  verifierBudget: number;
  targetKernel: string;
  verifierTimeoutMs: number;
}

export type ServerSettingName = keyof ServerSettings;

/** Type of each server setting, as declared in package.json. */
export const SERVER_SETTING_KINDS: Readonly<Record<ServerSettingName, SettingKind>> = {
  compilerPath: "string",
  extraFlags: "array",
  includeDirs: "array",
  compileCommandsDir: "string",
  debounceMs: "number",
  verifierBudget: "number",
  targetKernel: "string",
  verifierTimeoutMs: "number",
};

export const DEFAULT_SERVER_SETTINGS: Readonly<ServerSettings> = {
  compilerPath: "",
  extraFlags: [],
  includeDirs: [],
  compileCommandsDir: "",
  debounceMs: 150,
  verifierBudget: 1_000_000,
  targetKernel: "",
  verifierTimeoutMs: 2000,
};

/** Settings that hold paths: a leading `~` is expanded in them (besides the variables). */
const PATH_SETTINGS: ReadonlySet<string> = new Set(["compilerPath", "includeDirs", "compileCommandsDir"]);

/** Client-only keys of the `bpfLsp` section; never sent to the server. */
export const CLIENT_SETTING_NAMES = [
  "server.path",
  "server.pythonPath",
  "documentSelector",
  "trace.server",
] as const;

export const DEFAULT_SERVER_PATH = "bpf-lsp";
export const DEFAULT_DOCUMENT_SELECTOR: readonly string[] = ["**/*.bpf.c"];

/** The part of `vscode.WorkspaceConfiguration` used here (for the `bpfLsp` section). */
export interface ConfigurationReader {
  get<T>(key: string): T | undefined;
}

/** Values for `${workspaceFolder}`, `${userHome}`, `${env:NAME}` and a leading `~`. */
export interface Expansion {
  workspaceFolder?: string;
  home?: string;
  env?: Readonly<Record<string, string | undefined>>;
}

export interface Mapped<T> {
  value: T;
  /** Human-readable notes about values that were ignored. */
  problems: string[];
}

/** Replace VS Code-style variables; with `path`, also a leading `~`. Unknown variables are kept. */
export function expandVariables(text: string, expansion: Expansion, path = false): string {
  let result = text.replace(/\$\{(workspaceFolder|userHome|env:([A-Za-z_][A-Za-z0-9_]*))\}/g, (whole, name: string, envName?: string) => {
    if (envName !== undefined) {
      return expansion.env?.[envName] ?? "";
    }
    const value = name === "workspaceFolder" ? expansion.workspaceFolder : expansion.home;
    return value ?? whole;
  });
  if (path && expansion.home !== undefined && (result === "~" || result.startsWith("~/"))) {
    result = expansion.home + result.slice(1);
  }
  return result;
}

function readString(config: ConfigurationReader, key: string, fallback: string, problems: string[]): string {
  const raw = config.get<unknown>(key);
  if (raw === undefined || raw === null) {
    return fallback;
  }
  if (typeof raw !== "string") {
    problems.push(`bpfLsp.${key} must be a string; using ${JSON.stringify(fallback)}`);
    return fallback;
  }
  return raw;
}

function readStringArray(config: ConfigurationReader, key: string, fallback: readonly string[], problems: string[]): string[] {
  const raw = config.get<unknown>(key);
  if (raw === undefined || raw === null) {
    return [...fallback];
  }
  if (!Array.isArray(raw)) {
    problems.push(`bpfLsp.${key} must be an array of strings; using ${JSON.stringify(fallback)}`);
    return [...fallback];
  }
  const strings = raw.filter((item): item is string => typeof item === "string");
  if (strings.length !== raw.length) {
    problems.push(`bpfLsp.${key}: ignored ${raw.length - strings.length} item(s) that are not strings`);
  }
  return strings;
}

function readCount(config: ConfigurationReader, key: string, fallback: number, problems: string[]): number {
  const raw = config.get<unknown>(key);
  if (raw === undefined || raw === null) {
    return fallback;
  }
  if (typeof raw !== "number" || !Number.isFinite(raw) || raw < 0) {
    problems.push(`bpfLsp.${key} must be a non-negative number; using ${fallback}`);
    return fallback;
  }
  return Math.trunc(raw);
}

/** The server settings, keyed as in bpf_lsp/settings.py (no `bpfLsp.` prefix). */
export function toServerSettings(config: ConfigurationReader, expansion: Expansion = {}): Mapped<ServerSettings> {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, kind] of Object.entries(SERVER_SETTING_KINDS) as [ServerSettingName, SettingKind][]) {
    const isPath = PATH_SETTINGS.has(name);
    const fallback = DEFAULT_SERVER_SETTINGS[name];
    if (kind === "string") {
      values[name] = expandVariables(readString(config, name, fallback as string, problems), expansion, isPath);
    } else if (kind === "array") {
      values[name] = readStringArray(config, name, fallback as string[], problems).map((item) =>
        expandVariables(item, expansion, isPath),
      );
    } else {
      values[name] = readCount(config, name, fallback as number, problems);
    }
  }
  return { value: values as unknown as ServerSettings, problems };
}

export interface ServerCommand {
  command: string;
  args: string[];
}

/** `<python> -m bpf_lsp serve` when `server.pythonPath` is set, else `<server.path> serve`. */
export function toServerCommand(config: ConfigurationReader, expansion: Expansion = {}): Mapped<ServerCommand> {
  const problems: string[] = [];
  const python = readString(config, "server.pythonPath", "", problems).trim();
  if (python !== "") {
    return { value: { command: expandVariables(python, expansion, true), args: ["-m", "bpf_lsp", "serve"] }, problems };
  }
  let path = readString(config, "server.path", DEFAULT_SERVER_PATH, problems).trim();
  if (path === "") {
    path = DEFAULT_SERVER_PATH;
  }
  return { value: { command: expandVariables(path, expansion, true), args: ["serve"] }, problems };
}

export interface CDocumentFilter {
  language: "c";
  pattern: string;
}

/** One `{language: "c", pattern}` filter per glob of `bpfLsp.documentSelector`. */
export function toDocumentSelector(config: ConfigurationReader): Mapped<CDocumentFilter[]> {
  const problems: string[] = [];
  const globs = readStringArray(config, "documentSelector", DEFAULT_DOCUMENT_SELECTOR, problems)
    .map((glob) => glob.trim())
    .filter((glob) => glob !== "");
  if (globs.length === 0) {
    problems.push("bpfLsp.documentSelector is empty: no file will be analysed");
  }
  return { value: globs.map((pattern) => ({ language: "c", pattern })), problems };
}
