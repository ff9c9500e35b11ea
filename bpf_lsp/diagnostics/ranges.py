"""Source ranges from the libclang AST: widen a line-info position to the offending expression.

BTF/DWARF line info gives a line and a byte column: the callee of a call, the operator of an
assignment, the member name of `e->data`, the start of a macro invocation. A user thinks in whole
expressions, so a finding's range is the innermost call / member access / operator / `return`
covering that position, widened to

* the whole call when the position is its callee (`bpf_obj_drop(e)`; for a macro such as
  `bpf_obj_new(typeof(*e))`, the macro invocation: libclang reports macro-expanded nodes at their
  expansion range),
* the whole assignment when the position is on its target or operator (`e->data = 2`),
* the whole statement, with its `;`, for statements (`return 0;`).

The buffer is parsed with the compile's own flags (include dirs, defines, target) as an unsaved
file. Translation units are cached per path (LRU) and re-parsed on later edits, which with a
precompiled preamble takes milliseconds once the preamble exists; libclang is not thread-safe,
so every call into it holds one lock (`libclang.py`); the queries on one file's AST are
`file_ast.py`. Nothing here raises: when libclang is missing, the parse
fails or the parse disagrees with the compile (errors in the file), callers get None and use the
lexical heuristic in `sources.py`.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import subprocess
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..frontend import preamble
from . import libclang
from .file_ast import FileAst

log = logging.getLogger("bpf_lsp.ranges")

MAX_TUS = 4                            # a TU with vmlinux.h holds ~60-100 MB
# libclang's CXTranslationUnit_* flags (the bindings lack the newer ones)
_PRECOMPILED_PREAMBLE = 0x04
_CACHE_COMPLETION_RESULTS = 0x08
_INCOMPLETE = 0x02
_CREATE_PREAMBLE_ON_FIRST_PARSE = 0x100
_KEEP_GOING = 0x200
PARSE_OPTIONS = _PRECOMPILED_PREAMBLE | _CACHE_COMPLETION_RESULTS | _KEEP_GOING
# flags of the compile that mean nothing to a parse (or that libclang would reject)
_DROP_PREFIXES = ("-fdiagnostics-", "-fno-color-diagnostics", "-fmessage-length", "-ffile-prefix-map",
                  "-fdebug-compilation-dir")


# ---------------------------------------------------------------------------
# flags

@functools.lru_cache(maxsize=8)
def _resource_dir(argv: tuple[str, ...]) -> str:
    """The compiler's resource dir (builtin headers: stddef.h, stdbool.h), which the pip libclang lacks."""
    try:
        out = subprocess.run([*argv, "-print-resource-dir"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return out if out and os.path.isdir(os.path.join(out, "include")) else ""


# flags a compile passes that a parse has no use for, with the value that follows each
_COMPILE_ONLY_WITH_VALUE = frozenset({"-include-pch", "-c", "-o", "-x", "-MF", "-MT", "-MQ"})
_COMPILE_ONLY = frozenset({"-MD", "-MMD"})


def parse_args(argv: tuple[str, ...], compiler: Any) -> tuple[str, ...]:
    """The flags a parse of the compiled file needs, from the compile's own command line
    (`CompileResult.argv`, made by `compiler`): its target, defines and include paths, without
    what only a compile uses (its input and output, the PCH, dependency files, diagnostic format)."""
    rest = list(argv[len(compiler.argv):] if compiler is not None and argv[:len(compiler.argv)] == tuple(compiler.argv)
                else argv[1:])
    args: list[str] = []
    skip = False
    for i, a in enumerate(rest):
        if skip:
            skip = False
            continue
        if a in _COMPILE_ONLY_WITH_VALUE:
            skip = True
            continue
        if a in _COMPILE_ONLY or a.startswith(_DROP_PREFIXES) or i == len(rest) - 1 and not a.startswith("-"):
            continue
        args.append(a)
    if compiler is not None and not compiler.is_zig:
        resource = _resource_dir(tuple(compiler.argv))
        if resource:
            args += ["-resource-dir", resource]
    # as `.h` or unknown suffixes would otherwise be parsed as headers
    return (*args, "-x", "c")


# ---------------------------------------------------------------------------
# translation units

@dataclass
class _Entry:
    path: str
    args: tuple[str, ...]
    tu: Any = None
    digest: str = ""
    text: str = ""
    failed: str = ""                   # digest of the text whose parse failed
    asts: dict[tuple[str, str], "FileAst"] = field(default_factory=dict)   # (file, digest) -> view


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()


class TranslationUnits:
    """An analyzer's parsed files: an LRU of translation units, one per main file, re-parsed on
    later edits (with a precompiled preamble, milliseconds once the preamble exists)."""

    def __init__(self, max_units: int = MAX_TUS, preamble_dir: Path | None = None):
        self.max_units = max_units
        # batch runs (`check`, tests): first parses share precompiled preambles on disk
        self.preambles = DiskPreambles(preamble_dir) if preamble_dir is not None else None
        self._units: OrderedDict[str, _Entry] = OrderedDict()
        # When the preamble (the #include block: vmlinux.h) is precompiled. Measured on the corpus
        # (analysis overhead per file): built by the first parse, ~0.6 s to open + ~0.2 s for the
        # first edit; built by the first reparse (libclang's default), ~0.2 s to open + ~0.7 s for
        # the first edit; ms after either. A one-shot `check` never re-parses, so the default suits
        # it; an editor re-parses on every edit, so once these units have seen an edit, new files
        # get their preamble with their first parse.
        self.edits_seen = False
        self.stats: dict[str, list[float]] = {"parse": [], "reparse": []}   # seconds, for tests and logs
        libclang.register(self)

    def __len__(self) -> int:
        return len(self._units)

    def file_ast(self, path: str, text: str, args: tuple[str, ...], main: str | None = None,
                 main_text: str | None = None) -> "FileAst | None":
        """The AST view of `path` whose current text is `text`, parsed with `args` (`parse_args`),
        or None when libclang cannot give one.

        `path` is parsed as its own translation unit, unless `main` (a file that includes it) is
        given: then `main_text` is parsed and `path` is looked at inside it (a header's inline
        functions)."""
        try:
            with libclang.LOCK:
                if libclang.load() is None:
                    return None
                unit = os.path.abspath(main or path)
                unit_text = main_text if main is not None else text
                entry = self._entry_for(unit, tuple(args))
                digest = _digest(unit_text)
                if not self._ensure(entry, unit_text, digest, shared_preamble=main is None):
                    return None
                key = (os.path.abspath(path), digest)
                ast = entry.asts.get(key)
                if ast is None:
                    ast = FileAst(self, entry, os.path.abspath(path), text, unit_text)
                    entry.asts[key] = ast
                return ast if ast.usable else None
        except Exception as e:  # noqa: BLE001 - ranges are a nicety: never fail an analysis for them
            log.info("libclang ranges unavailable for %s: %s", path, e)
            return None

    def clear(self) -> None:
        with libclang.LOCK:
            for entry in self._units.values():
                entry.tu = None
                entry.asts.clear()
            self._units.clear()

    def _stat(self, kind: str, seconds: float) -> None:
        sample = self.stats[kind]
        sample.append(seconds)
        del sample[:-100]
        log.debug("libclang %s: %.3f s", kind, seconds)

    def _ensure(self, entry: _Entry, text: str, digest: str, shared_preamble: bool = False) -> bool:
        """Make the entry's TU reflect `text` (parse or reparse); under the lock. `shared_preamble`:
        a first parse may use the preamble PCH on disk (`DiskPreambles`)."""
        if entry.failed == digest:
            return False
        if entry.tu is not None and entry.digest == digest:
            return True
        unsaved = [(entry.path, text)]
        started = time.perf_counter()
        try:
            if entry.tu is None:
                if shared_preamble and self.preambles is not None:
                    entry.tu = self.preambles.parse(entry.path, entry.args, text)
                if entry.tu is None:
                    options = PARSE_OPTIONS | (_CREATE_PREAMBLE_ON_FIRST_PARSE if self.edits_seen else 0)
                    entry.tu = libclang.index().parse(entry.path, args=list(entry.args), unsaved_files=unsaved,
                                                      options=options)
                self._stat("parse", time.perf_counter() - started)
            else:
                self.edits_seen = True
                entry.tu.reparse(unsaved_files=unsaved, options=PARSE_OPTIONS)
                self._stat("reparse", time.perf_counter() - started)
        except Exception as e:  # noqa: BLE001 - TranslationUnitLoadError and whatever ctypes raises
            entry.failed = digest       # not retried for this text
            entry.tu = None
            log.info("libclang could not parse %s: %s", entry.path, e)
            return False
        entry.digest, entry.text = digest, text
        entry.asts.clear()
        return True

    def _entry_for(self, path: str, args: tuple[str, ...]) -> _Entry:
        entry = self._units.get(path)
        if entry is None or entry.args != args:
            if entry is not None:
                _evict(entry)
            entry = _Entry(path, args)
            self._units[path] = entry
        self._units.move_to_end(path)
        while len(self._units) > self.max_units:
            _evict(self._units.popitem(last=False)[1])
        return entry


def _library_identity() -> tuple:
    """Which libclang this is (a PCH is read only by the libclang that wrote it)."""
    name = getattr(libclang.cindex().conf.lib, "_name", "") or ""
    try:
        st = os.stat(name)
        return name, st.st_size, st.st_mtime_ns
    except OSError:
        return (name,)


class DiskPreambles:
    """Precompiled preambles for libclang's first parses, on disk, shared by the processes of
    batch runs: a `check` of many files with the same #include block (vmlinux.h) parses it once.
    Measured on the corpus: a parse with vmlinux.h takes 0.47 s, with the PCH 6 ms; building
    one costs 1.1 s, so a preamble gets its PCH the second time it is seen (as `preamble.py`
    does for compiles). The PCH is libclang's own (`TranslationUnit.save`), the one format it
    surely reads; clang refuses it once a header it holds has changed, and it is built again."""

    def __init__(self, directory: Path):
        self.directory = directory

    def parse(self, path: str, args: tuple[str, ...], text: str) -> Any:
        """A translation unit of `text` parsed with its preamble's PCH, or None (no preamble, not
        seen before, or the PCH cannot be used): the caller parses as usual."""
        count = preamble.preamble_line_count(text)
        head = "".join(preamble.split_lines(text)[:count])
        if not count or not preamble.has_includes(head):
            return None
        key = hashlib.sha256(repr((head, args, os.path.dirname(path), _library_identity())).encode(
            "utf-8", errors="surrogateescape")).hexdigest()[:32]
        where = self.directory / key
        pch = where / "preamble.pch"
        seen, failed = where / "seen", where / "failed"
        try:
            if not pch.exists():
                if not seen.exists():
                    where.mkdir(parents=True, exist_ok=True)
                    seen.touch()
                    return None
                if failed.exists() and time.time() - failed.stat().st_mtime < preamble.RETRY_FAILED_AFTER:
                    return None
                try:
                    self._build(where, pch, args, head)
                except Exception:
                    failed.touch()
                    raise
            tu = libclang.index().parse(path, args=[*args, "-include-pch", str(pch)],
                                        unsaved_files=[(path, preamble.blank_preamble(text, count))],
                                        options=PARSE_OPTIONS)
            if any(d.severity >= 4 for d in tu.diagnostics):
                raise ValueError("a fatal error with the PCH")
        except Exception as e:  # noqa: BLE001 - the plain parse stays
            # libclang refuses a PCH whose headers changed since it was built: next time, anew
            log.info("libclang preamble for %s not used: %s", path, e)
            pch.unlink(missing_ok=True)
            return None
        return tu

    @staticmethod
    def _build(where: Path, pch: Path, args: tuple[str, ...], head: str) -> None:
        header = where / preamble.HEADER_NAME      # on disk: clang checks it when loading the PCH
        header.write_text(head, encoding="utf-8", errors="surrogateescape")
        header_args = [*args[:-2], "-x", "c-header"] if args[-2:] == ("-x", "c") else [*args, "-x", "c-header"]
        tu = libclang.index().parse(str(header), args=header_args, options=_INCOMPLETE | _KEEP_GOING)
        errors = [d.spelling for d in tu.diagnostics if d.severity >= 3]
        if errors:
            raise ValueError(f"the preamble does not parse: {errors[0]}")
        tmp = pch.with_name(f"{pch.name}.{os.getpid()}.tmp")
        tu.save(str(tmp))
        os.replace(tmp, pch)     # atomically: other workers may be reading it


def _evict(entry: _Entry) -> None:
    # A view being queried (a render in progress in another thread) keeps the TU alive until it is
    # done; SourceFiles lets go of its views once a program's diagnostics are rendered, so the TU's
    # memory goes with the last of them.
    entry.asts.clear()
