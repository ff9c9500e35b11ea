"""Precompiled headers for a file's leading #include block.

A BPF program's includes (vmlinux.h above all) cost about half a second to
parse and never change while the user edits the code below them. The leading
run of preprocessor lines (the *preamble*) is compiled once into a PCH; each
edit then compiles with ``-include-pch`` and the preamble lines blanked, so
line numbers are unchanged.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from bpf_lsp.frontend.headers import default_cache_root
from bpf_lsp.text import split_lines as text_lines
from bpf_lsp.frontend.toolchain import Compiler

DEFAULT_MAX_ENTRIES = 16
BUILD_TIMEOUT = 120.0
RETRY_FAILED_AFTER = 30.0   # seconds before a failed preamble is tried again (the user may add the header)

_PCH = "preamble.pch"
_LOG = "build.log"
_DEPS = "dependencies.json"
# File mtimes come from the kernel's coarse clock, which lags the real time by up to one tick
# (10 ms at HZ=100): a file changed after the build started may look up to a tick older.
MTIME_SLACK_NS = 20_000_000
# Named so no user #include can refer to it by accident.
HEADER_NAME = _HEADER = "bpf-lsp-preamble.h"

_DIRECTIVE = re.compile(r"\s*#\s*([A-Za-z_]+)\s*(.*)", re.DOTALL)
_OPENERS = {"if", "ifdef", "ifndef"}
_MIDDLES = {"elif", "elifdef", "elifndef", "else"}
_SIMPLE = {"include", "define", "undef"}


def _strip_comments(line: str, in_block: bool) -> tuple[str, bool]:
    """``line`` without comments, and whether a block comment is still open after it.

    String and character literals are skipped so that "/*" inside a #define's
    string does not start a comment.
    """
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            i, in_block = end + 2, False
            out.append(" ")
            continue
        ch = line[i]
        if ch in "\"'":
            j = i + 1
            while j < n and line[j] != ch:
                j += 2 if line[j] == "\\" else 1
            out.append(line[i:j + 1])
            i = j + 1
        elif line.startswith("//", i):
            break
        elif line.startswith("/*", i):
            in_block, i = True, i + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out), in_block


def split_lines(text: str) -> list[str]:
    """Physical lines with their line ends (\\n, \\r\\n or a lone \\r, as clang ends them)."""
    return text_lines(text, keepends=True)


def preamble_line_count(text: str) -> int:
    """Number of leading lines that form the preamble.

    The preamble is the longest prefix made only of blank lines, comments,
    #include/#define/#undef, ``#pragma once`` and balanced conditionals; it
    ends after its last directive, never inside a conditional or a comment.
    """
    lines = split_lines(text)
    depth, in_block, end, i = 0, False, 0, 0
    while i < len(lines):
        logical = lines[i]
        i += 1
        while logical.rstrip("\r\n").endswith("\\") and i < len(lines):  # a directive continued on the next line
            logical = logical.rstrip("\r\n")[:-1] + lines[i]
            i += 1
        code, in_block = _strip_comments(logical.rstrip("\r\n"), in_block)
        if not code.strip():
            continue
        match = _DIRECTIVE.fullmatch(code)
        if not match:
            break
        name, rest = match.group(1), match.group(2).strip()
        if name in _OPENERS:
            depth += 1
        elif name in _MIDDLES:
            if depth == 0:
                break
        elif name == "endif":
            if depth == 0:
                break
            depth -= 1
        elif not (name in _SIMPLE or (name == "pragma" and rest == "once")):
            break
        if depth == 0 and not in_block:
            end = i
    return end


def has_includes(preamble: str) -> bool:
    """Only a preamble that includes something is worth precompiling."""
    return re.search(r"^\s*#\s*include\b", preamble, re.MULTILINE) is not None


def blank_preamble(text: str, line_count: int) -> str:
    """``text`` with its first ``line_count`` lines emptied (their line ends kept)."""
    lines = split_lines(text)
    blanked = [line[len(line.rstrip("\r\n")):] for line in lines[:line_count]]
    return "".join(blanked + lines[line_count:])


@dataclass(frozen=True)
class PreambleInputs:
    """Everything a PCH depends on besides the headers' contents (clang checks those when loading it)."""
    preamble: str               # the source text of the preamble lines
    directory: str              # the source file's directory: its quote-include path and the build's cwd
    flags: tuple[str, ...]      # everything after the compiler command (target included) that the
                                # PCH build and the main compile share
    compiler: Compiler

    @property
    def key(self) -> str:
        material = [self.preamble, self.directory, list(self.flags), list(self.compiler.argv), self.compiler.version]
        return hashlib.sha256(json.dumps(material).encode()).hexdigest()


Dependency = tuple[str, int, int]   # (absolute path, size, mtime in ns) of a file the PCH was built from


@dataclass(frozen=True)
class _Entry:
    directory: Path
    dependencies: tuple[Dependency, ...]

    @property
    def pch(self) -> Path:
        return self.directory / _PCH

    def is_current(self) -> bool:
        """Every file the PCH read is unchanged (to the nanosecond: clang itself checks mtimes in seconds)."""
        if not dependencies_current(self.dependencies):
            return False
        return self.pch.exists()


def dependencies_current(dependencies) -> bool:
    """Every (path, size, mtime_ns) still describes its file."""
    for name, size, mtime_ns in dependencies:
        try:
            stat = os.stat(name)
        except OSError:
            return False
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
            return False
    return True


class PreambleCache:
    """PCHs on disk (one directory per key) with an in-memory LRU index."""

    def __init__(self, cache_dir: Path | None = None, max_entries: int = DEFAULT_MAX_ENTRIES):
        # Real path: clang names files with symlinks resolved, and diagnostics are matched by name.
        self.cache_dir = Path(os.path.realpath(cache_dir if cache_dir else default_cache_root() / "pch"))
        self.max_entries = max_entries
        self.build_synchronously = False   # True: compile_source builds a missing PCH before compiling
        # with build_synchronously: only from a preamble's second compile on (batch runs: `check`, tests)
        self.build_on_reuse = False
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._index: OrderedDict[str, _Entry] = OrderedDict()   # oldest first
        self._building: dict[str, threading.Event] = {}
        self._failed: dict[str, float] = {}                     # key -> time of the failed build
        self._load_index()

    # -- lookup ------------------------------------------------------------

    def get(self, inputs: PreambleInputs) -> Path | None:
        """The ready PCH for ``inputs``, or None (also when a header it was built from has changed)."""
        key = inputs.key
        with self._lock:
            entry = self._index.get(key)
            if entry is None:
                return None
            if entry.is_current():
                self._index.move_to_end(key)
                return entry.pch
            del self._index[key]
        shutil.rmtree(entry.directory, ignore_errors=True)
        return None

    @staticmethod
    def header_of(pch: Path) -> Path:
        """The preamble header a PCH was built from (diagnostics may point into it)."""
        return pch.parent / _HEADER

    @staticmethod
    def build_log(pch: Path) -> str:
        """The compiler's output when building ``pch``: the preamble's own warnings, to replay."""
        try:
            return (pch.parent / _LOG).read_text()
        except OSError:
            return ""

    def seen_before(self, inputs: PreambleInputs) -> bool:
        """Whether a compile asked for this preamble before (and remember that one did now)."""
        with self._lock:
            seen = inputs.key in self._seen
            self._seen.add(inputs.key)
            return seen

    def discard(self, inputs: PreambleInputs) -> None:
        """Forget a PCH clang refused."""
        with self._lock:
            entry = self._index.pop(inputs.key, None)
        if entry is not None:
            shutil.rmtree(entry.directory, ignore_errors=True)

    def wait_idle(self, timeout: float = BUILD_TIMEOUT) -> None:
        """Wait for background builds to finish (for tests and orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                events = list(self._building.values())
            if not events:
                return
            for event in events:
                event.wait(max(0.0, deadline - time.monotonic()))

    # -- building ----------------------------------------------------------

    def ensure_async(self, inputs: PreambleInputs) -> None:
        """Start building the PCH in a background thread unless it is ready, underway or recently failed.

        One background build at a time: while the user types in the preamble, each
        keystroke would otherwise start a build of its own; the compile after the
        running build ends starts the one for the text current by then.
        """
        with self._lock:
            if self._building or not self._should_build(inputs.key):
                return
            self._building[inputs.key] = threading.Event()
        threading.Thread(target=self._build_registered, args=(inputs, BUILD_TIMEOUT),
                         name="bpf-lsp-pch", daemon=True).start()

    def build(self, inputs: PreambleInputs, timeout: float = BUILD_TIMEOUT) -> Path | None:
        """Build the PCH now (or wait for the build already underway); None when it fails."""
        key = inputs.key
        with self._lock:
            underway = self._building.get(key)
            if underway is None and self._should_build(key):
                self._building[key] = threading.Event()
        if underway is not None:
            underway.wait(timeout)
        elif key in self._building:
            self._build_registered(inputs, timeout)
        return self.get(inputs)

    def _should_build(self, key: str) -> bool:
        if key in self._index or key in self._building:
            return False
        failed_at = self._failed.get(key)
        return failed_at is None or time.monotonic() - failed_at > RETRY_FAILED_AFTER

    def _build_registered(self, inputs: PreambleInputs, timeout: float) -> None:
        key = inputs.key
        entry: _Entry | None | bool = False
        try:
            entry = self._compile(inputs, self.cache_dir / key, timeout)
        except OSError:
            entry = False
        finally:
            self._finish(key, entry)

    def _finish(self, key: str, entry: _Entry | None | bool) -> None:
        evicted: list[_Entry] = []
        with self._lock:
            if isinstance(entry, _Entry):
                self._failed.pop(key, None)
                self._index[key] = entry
                self._index.move_to_end(key)
                evicted = self._evict_locked()
            elif entry is False:
                self._failed[key] = time.monotonic()
            self._building.pop(key).set()
        if not isinstance(entry, _Entry):
            shutil.rmtree(self.cache_dir / key, ignore_errors=True)
        for old in evicted:
            shutil.rmtree(old.directory, ignore_errors=True)

    def _compile(self, inputs: PreambleInputs, directory: Path, timeout: float) -> _Entry | None | bool:
        """The built entry; False when the preamble does not compile; None when a header changed meanwhile."""
        directory.mkdir(parents=True, exist_ok=True)
        header = directory / _HEADER
        text = inputs.preamble if inputs.preamble.endswith("\n") else inputs.preamble + "\n"
        # A PCH remembers its header's mtime: rewriting identical text would invalidate PCHs in use.
        if not header.exists() or header.read_text() != text:
            _atomic_write(header, text.encode())
        compiler = inputs.compiler
        started_ns = time.time_ns()
        with tempfile.TemporaryDirectory(prefix=".build-", dir=directory) as scratch:
            partial, depfile = Path(scratch) / _PCH, Path(scratch) / "deps.d"
            argv = [*compiler.argv, *inputs.flags, "-MD", "-MF", str(depfile),
                    "-x", "c-header", str(header), "-o", str(partial)]
            cwd = inputs.directory if os.path.isdir(inputs.directory) else scratch
            try:
                proc = subprocess.run(argv, cwd=cwd, env=compiler.environment(scratch), capture_output=True,
                                      text=True, errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return False
            if proc.returncode != 0 or not partial.exists():
                return False
            dependencies = stat_dependencies(depfile, cwd)
            # A header saved while the build ran may or may not be in the PCH: build again later.
            if dependencies is None or any(mtime > started_ns - MTIME_SLACK_NS
                                           for name, _, mtime in dependencies if name != str(header)):
                return None
            _atomic_write(directory / _LOG, proc.stderr.encode())
            _atomic_write(directory / _DEPS, json.dumps(dependencies).encode())
            os.replace(partial, directory / _PCH)
        return _Entry(directory, tuple(dependencies))

    def _evict_locked(self) -> list[_Entry]:
        evicted = []
        while len(self._index) > self.max_entries:
            evicted.append(self._index.popitem(last=False)[1])
        return evicted

    def _load_index(self) -> None:
        """Adopt PCHs left by earlier runs, most recently built last."""
        try:
            directories = [d for d in self.cache_dir.iterdir() if (d / _PCH).is_file() and (d / _DEPS).is_file()]
        except OSError:
            return
        directories.sort(key=lambda d: (d / _PCH).stat().st_mtime_ns)
        for directory in directories:
            try:
                dependencies = tuple(tuple(dep) for dep in json.loads((directory / _DEPS).read_text()))
            except (OSError, ValueError):
                continue
            self._index[directory.name] = _Entry(directory, dependencies)  # type: ignore[arg-type]
        for old in self._evict_locked():
            shutil.rmtree(old.directory, ignore_errors=True)


def stat_dependencies(depfile: Path, cwd: str) -> list[Dependency] | None:
    """(path, size, mtime_ns) of each file in a make-style dependency file."""
    try:
        text = depfile.read_text()
    except OSError:
        return None
    body = text.replace("\\\n", " ").split(":", 1)[-1]
    names = [name.replace("\\ ", " ") for name in re.split(r"(?<!\\)\s+", body) if name]
    dependencies: list[Dependency] = []
    for name in names:
        full = os.path.join(cwd, name)
        try:
            stat = os.stat(full)
        except OSError:
            return None
        dependencies.append((os.path.abspath(full), stat.st_size, stat.st_mtime_ns))
    return dependencies


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
