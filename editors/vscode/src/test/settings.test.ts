import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import type { ConfigurationReader } from "../settings";
import {
  CLIENT_SETTING_NAMES,
  DEFAULT_SERVER_SETTINGS,
  SERVER_SETTING_KINDS,
  expandVariables,
  toDocumentSelector,
  toServerCommand,
  toServerSettings,
} from "../settings";

/** A `bpfLsp` section holding only what the user set (unset keys read as undefined). */
function section(values: Record<string, unknown>): ConfigurationReader {
  return { get: <T>(key: string) => values[key] as T | undefined };
}

interface ContributedSetting {
  type: string;
  default: unknown;
}

function contributed(): Record<string, ContributedSetting> {
  const manifest = JSON.parse(readFileSync(resolve(__dirname, "../../package.json"), "utf8")) as {
    contributes: { configuration: { properties: Record<string, ContributedSetting> } };
  };
  return manifest.contributes.configuration.properties;
}

/** The `bpfLsp` section as VS Code returns it when the user set nothing: the package.json defaults. */
function packageDefaults(): ConfigurationReader {
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(contributed())) {
    values[key.replace(/^bpfLsp\./, "")] = spec.default;
  }
  return section(values);
}

describe("package.json", () => {
  it("declares exactly the server settings of settings.ts plus the client-only ones", () => {
    const names = Object.keys(contributed()).map((key) => key.replace(/^bpfLsp\./, ""));
    const expected = [...Object.keys(SERVER_SETTING_KINDS), ...CLIENT_SETTING_NAMES];
    assert.deepEqual([...names].sort(), [...expected].sort());
  });

  it("declares each server setting with the type and default of settings.ts", () => {
    const properties = contributed();
    for (const [name, kind] of Object.entries(SERVER_SETTING_KINDS)) {
      const spec = properties[`bpfLsp.${name}`];
      assert.equal(spec.type, kind, name);
      assert.deepEqual(spec.default, DEFAULT_SERVER_SETTINGS[name as keyof typeof DEFAULT_SERVER_SETTINGS], name);
    }
  });
});

describe("toServerSettings", () => {
  it("maps the package.json defaults to the server defaults, with no prefix and no client keys", () => {
    const { value, problems } = toServerSettings(packageDefaults());
    assert.deepEqual(value, DEFAULT_SERVER_SETTINGS);
    assert.deepEqual(problems, []);
    for (const name of CLIENT_SETTING_NAMES) {
      assert.ok(!(name in value), name);
    }
  });

  it("passes user values through", () => {
    const { value, problems } = toServerSettings(
      section({
        compilerPath: "/usr/bin/clang-19",
        extraFlags: ["-DDEBUG", "-mcpu=v4"],
        includeDirs: ["/opt/include"],
        compileCommandsDir: "/src/build",
        debounceMs: 300,
        verifierBudget: 5000,
        targetKernel: "6.12.0",
        verifierTimeoutMs: 500,
      }),
    );
    assert.deepEqual(value, {
      compilerPath: "/usr/bin/clang-19",
      extraFlags: ["-DDEBUG", "-mcpu=v4"],
      includeDirs: ["/opt/include"],
      compileCommandsDir: "/src/build",
      debounceMs: 300,
      verifierBudget: 5000,
      targetKernel: "6.12.0",
      verifierTimeoutMs: 500,
    });
    assert.deepEqual(problems, []);
  });

  it("falls back to the default for values of the wrong type and says so", () => {
    const { value, problems } = toServerSettings(
      section({ compilerPath: 42, extraFlags: "-DDEBUG", debounceMs: -1, verifierBudget: "many" }),
    );
    assert.equal(value.compilerPath, "");
    assert.deepEqual(value.extraFlags, []);
    assert.equal(value.debounceMs, 150);
    assert.equal(value.verifierBudget, 1_000_000);
    assert.equal(problems.length, 4);
    assert.match(problems.join("\n"), /bpfLsp\.extraFlags must be an array of strings/);
  });

  it("drops non-string array items and truncates numbers to integers", () => {
    const { value, problems } = toServerSettings(section({ includeDirs: ["a", 1, null, "b"], debounceMs: 99.7 }));
    assert.deepEqual(value.includeDirs, ["a", "b"]);
    assert.equal(value.debounceMs, 99);
    assert.equal(problems.length, 1);
  });

  it("expands variables everywhere and ~ in path settings only", () => {
    const { value } = toServerSettings(
      section({
        compilerPath: "~/llvm/bin/clang",
        includeDirs: ["${workspaceFolder}/include", "~/vmlinux"],
        extraFlags: ["-I${workspaceFolder}/gen", "-DHOME=${userHome}", "~"],
        compileCommandsDir: "${env:BUILD_DIR}",
      }),
      { workspaceFolder: "/ws", home: "/home/u", env: { BUILD_DIR: "/ws/build" } },
    );
    assert.equal(value.compilerPath, "/home/u/llvm/bin/clang");
    assert.deepEqual(value.includeDirs, ["/ws/include", "/home/u/vmlinux"]);
    assert.deepEqual(value.extraFlags, ["-I/ws/gen", "-DHOME=/home/u", "~"]);
    assert.equal(value.compileCommandsDir, "/ws/build");
  });
});

describe("expandVariables", () => {
  it("keeps variables it cannot resolve and empties unset environment variables", () => {
    assert.equal(expandVariables("${workspaceFolder}/x", {}), "${workspaceFolder}/x");
    assert.equal(expandVariables("${config:foo}", { workspaceFolder: "/ws" }), "${config:foo}");
    assert.equal(expandVariables("a${env:NOPE}b", { env: {} }), "ab");
  });

  it("expands ~ only as a whole first path component", () => {
    assert.equal(expandVariables("~user/x", { home: "/h" }, true), "~user/x");
    assert.equal(expandVariables("~", { home: "/h" }, true), "/h");
  });
});

describe("toServerCommand", () => {
  it("runs `bpf-lsp serve` by default", () => {
    assert.deepEqual(toServerCommand(packageDefaults()).value, { command: "bpf-lsp", args: ["serve"] });
  });

  it("uses server.path", () => {
    const { value } = toServerCommand(section({ "server.path": "~/.local/bin/bpf-lsp" }), { home: "/h" });
    assert.deepEqual(value, { command: "/h/.local/bin/bpf-lsp", args: ["serve"] });
  });

  it("treats a blank server.path as the default", () => {
    assert.equal(toServerCommand(section({ "server.path": "  " })).value.command, "bpf-lsp");
  });

  it("prefers `<python> -m bpf_lsp serve` when server.pythonPath is set", () => {
    const { value } = toServerCommand(
      section({ "server.path": "/ignored", "server.pythonPath": "${workspaceFolder}/.venv/bin/python" }),
      { workspaceFolder: "/ws" },
    );
    assert.deepEqual(value, { command: "/ws/.venv/bin/python", args: ["-m", "bpf_lsp", "serve"] });
  });
});

describe("toDocumentSelector", () => {
  it("defaults to *.bpf.c files in the C language", () => {
    assert.deepEqual(toDocumentSelector(packageDefaults()).value, [{ language: "c", pattern: "**/*.bpf.c" }]);
  });

  it("makes one filter per glob", () => {
    const { value, problems } = toDocumentSelector(section({ documentSelector: ["**/*.c", " src/bpf/*.h "] }));
    assert.deepEqual(value, [
      { language: "c", pattern: "**/*.c" },
      { language: "c", pattern: "src/bpf/*.h" },
    ]);
    assert.deepEqual(problems, []);
  });

  it("reports an empty selector", () => {
    const { value, problems } = toDocumentSelector(section({ documentSelector: [] }));
    assert.deepEqual(value, []);
    assert.equal(problems.length, 1);
  });
});
