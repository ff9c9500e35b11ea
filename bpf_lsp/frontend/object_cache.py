"""Compiled objects by content, so a source compiles once however often it is analysed.

The key is the compiler, the planned flags, the file's path and its text. An entry stays valid
while every file the compile read (clang's own `-MD` list: headers, the PCH's inputs) still has the
size and mtime it had, the way the PCH cache checks its inputs. Entries live in memory, and on disk
when the cache has a directory (batch runs), so `bpf-lsp check` run after run and the test suite's
worker processes share them. The disk format is JSON plus the object bytes: nothing is
unpickled from the cache directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

from .compile import CompileResult, CompilerDiagnostic, FixIt
from .preamble import Dependency, dependencies_current

FORMAT = 2   # 2: objects compiled with a preamble that dropped an extern's BTF are compiled again without it
DEFAULT_MAX_ENTRIES = 512


def object_key(compiler_argv: tuple[str, ...], flags: tuple[str, ...], path: str, text: str) -> str:
    """The cache key of compiling `text` as `path` with `flags` by the compiler `compiler_argv`."""
    h = hashlib.sha256(f"{FORMAT}\0".encode())
    for part in (*compiler_argv, "\0", *flags, "\0", path, "\0"):
        h.update(part.encode("utf-8", errors="surrogateescape") + b"\1")
    try:    # a rebuilt compiler at the same path is another compiler
        st = os.stat(compiler_argv[0])
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    except (OSError, IndexError):
        pass
    h.update(text.encode("utf-8", errors="surrogateescape"))
    return h.hexdigest()


def _diagnostic(d: dict) -> CompilerDiagnostic:
    return CompilerDiagnostic(**{**d, "fixits": tuple(FixIt(**f) for f in d.get("fixits", ()))})


class ObjectCache:
    def __init__(self, directory: str | os.PathLike | None = None, max_entries: int = DEFAULT_MAX_ENTRIES):
        self.directory = Path(directory) if directory else None
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, tuple[CompileResult, tuple[Dependency, ...]]] = OrderedDict()
        self.hits = 0
        self._puts = 0

    key = staticmethod(object_key)

    def get(self, key: str) -> CompileResult | None:
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                self._memory.move_to_end(key)
        if entry is None:
            entry = self._load(key)
        if entry is None:
            return None
        result, deps = entry
        if not dependencies_current(deps):
            with self._lock:
                self._memory.pop(key, None)
            return None
        with self._lock:
            self._memory[key] = entry
            self._evict()
            self.hits += 1
        return result

    def put(self, key: str, result: CompileResult, deps: tuple[Dependency, ...]) -> None:
        with self._lock:
            self._memory[key] = (result, deps)
            self._evict()
        if self.directory is None or result.object is None:
            return
        meta = {"diagnostics": [asdict(d) for d in result.diagnostics], "argv": list(result.argv),
                "used_pch": result.used_pch, "dependencies": [list(d) for d in deps]}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for suffix, data in ((".o", result.object), (".json", json.dumps(meta).encode())):
                tmp = self.directory / f"{key}{suffix}.{os.getpid()}.tmp"
                tmp.write_bytes(data)
                tmp.replace(self.directory / f"{key}{suffix}")
        except OSError:
            return  # a cache that cannot be written is only slower
        self._prune_disk()

    def _prune_disk(self) -> None:
        """Keep the newest `max_entries` objects on disk (checked every so often, not on each put)."""
        with self._lock:
            self._puts += 1
            if self._puts % 32 != 1:
                return
        try:
            entries = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        except OSError:
            return
        for meta in entries[:-self.max_entries] if len(entries) > self.max_entries else ():
            for suffix in (".json", ".o"):
                try:
                    meta.with_suffix(suffix).unlink()
                except OSError:
                    pass

    def _load(self, key: str) -> tuple[CompileResult, tuple[Dependency, ...]] | None:
        if self.directory is None:
            return None
        try:
            meta = json.loads((self.directory / f"{key}.json").read_text())
            data = (self.directory / f"{key}.o").read_bytes()
            result = CompileResult(data, tuple(_diagnostic(d) for d in meta["diagnostics"]), tuple(meta["argv"]),
                                   bool(meta["used_pch"]), 0.0)
            deps = tuple((str(p), int(s), int(m)) for p, s, m in meta["dependencies"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return result, deps

    def _evict(self) -> None:
        while len(self._memory) > self.max_entries:
            self._memory.popitem(last=False)
