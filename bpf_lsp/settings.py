"""User settings shared by the server, the CLI and the editor extensions.

One table is the source of truth for names, types and defaults. The VS Code
extension contributes the same names under the ``bpfLsp.`` prefix in its
``package.json`` (a test checks the two agree); the server takes them from
``initializationOptions`` and ``workspace/didChangeConfiguration``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

# name -> (python type, default, description)
SETTINGS: dict[str, tuple[type, Any, str]] = {
    "compilerPath": (str, "", "Clang used to build BPF objects; empty: BPF_LSP_CLANG, then the newest clang on PATH with the BPF target, then the bundled ziglang."),
    "extraFlags": (list, [], "Extra compiler arguments (e.g. -DDEBUG, -mcpu=v4). Flags that write files (-o, -MF, plugins) are refused."),
    "includeDirs": (list, [], "Directories added with -I."),
    "compileCommandsDir": (str, "", "Directory (or file) holding compile_commands.json; empty: searched upward from each file."),
    "debounceMs": (int, 150, "Delay after the last keystroke before analysis starts."),
    "verifierBudget": (int, 1_000_000, "Instructions the ownership verifier may visit per program before it reports an incomplete analysis."),
    "targetKernel": (str, "", "Kernel release the programs are for (e.g. 6.12.0): `LINUX_KERNEL_VERSION` and `CONFIG_*` `__kconfig` externs take its values; empty: the running kernel's."),
    "verifierTimeoutMs": (int, 2000, "Wall time the ownership verifier may spend on one program before it reports an incomplete analysis (0: no limit)."),
}


@dataclass(frozen=True)
class Settings:
    compilerPath: str = ""
    extraFlags: tuple[str, ...] = ()
    includeDirs: tuple[str, ...] = ()
    compileCommandsDir: str = ""
    debounceMs: int = 150
    verifierBudget: int = 1_000_000
    targetKernel: str = ""
    verifierTimeoutMs: int = 2000

    def updated(self, raw: Any) -> tuple["Settings", list[str]]:
        """Return settings with ``raw`` (a client's JSON object) applied, and a list of problems.

        Unknown keys and values of the wrong type are reported, never fatal.
        A ``{"bpfLsp": {...}}`` wrapper is accepted as sent by VS Code.
        """
        problems: list[str] = []
        if not isinstance(raw, dict):
            return self, ([] if raw is None else [f"settings must be an object, got {type(raw).__name__}"])
        if isinstance(raw.get("bpfLsp"), dict):
            raw = raw["bpfLsp"]
        changes: dict[str, Any] = {}
        for key, value in raw.items():
            spec = SETTINGS.get(key)
            if spec is None:
                problems.append(f"unknown setting {key!r}")
                continue
            kind = spec[0]
            if kind is list:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    problems.append(f"{key} must be a list of strings")
                    continue
                value = tuple(value)
            elif kind is int:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    problems.append(f"{key} must be a non-negative number")
                    continue
                value = int(value)
            elif not isinstance(value, kind):
                problems.append(f"{key} must be a {kind.__name__}")
                continue
            changes[key] = value
        return replace(self, **changes), problems


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]
