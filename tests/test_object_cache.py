"""The object cache: a source compiles once while nothing it read changes, in memory and on disk."""
from __future__ import annotations

import os
import time

from bpf_lsp.frontend.compile import CompileOptions, compile_source
from bpf_lsp.frontend.object_cache import ObjectCache

PROGRAM = '#include "helper.h"\nint f(void) { return VALUE; }\nint g(void) { int x; return 1 }\n'


def _options(tmp_path) -> CompileOptions:
    return CompileOptions(include_dirs=(str(tmp_path),))


def _header(tmp_path, value: int) -> None:
    header = tmp_path / "helper.h"
    header.write_text(f"#define VALUE {value}\n")
    old = time.time() - 60     # well before any compile: an mtime a compile can trust
    os.utime(header, (old, old))


def _compile(tmp_path, text: str, cache: ObjectCache):
    return compile_source(text, str(tmp_path / "prog.bpf.c"), _options(tmp_path), objects=cache)


def test_same_text_is_served_from_the_cache_with_its_diagnostics(tmp_path):
    _header(tmp_path, 1)
    text = PROGRAM.replace("int g(void) { int x; return 1 }\n", "int g(void) { return 1 / 0; }\n")
    cache = ObjectCache(tmp_path / "objects")
    first, second = _compile(tmp_path, text, cache), _compile(tmp_path, text, cache)
    assert first.object is not None and not first.cached
    assert second.cached and second.object == first.object
    assert [d.message for d in second.diagnostics] == [d.message for d in first.diagnostics]
    assert any("division by zero" in d.message for d in second.diagnostics)


def test_a_changed_header_is_compiled_again(tmp_path):
    _header(tmp_path, 1)
    text = PROGRAM.replace("int g(void) { int x; return 1 }\n", "")
    cache = ObjectCache(tmp_path / "objects")
    first = _compile(tmp_path, text, cache)
    _header(tmp_path, 22)
    again = _compile(tmp_path, text, cache)
    assert not again.cached and again.object != first.object


def test_the_disk_cache_is_shared_between_processes(tmp_path):
    _header(tmp_path, 3)
    text = PROGRAM.replace("int g(void) { int x; return 1 }\n", "")
    first = _compile(tmp_path, text, ObjectCache(tmp_path / "objects"))
    fresh = ObjectCache(tmp_path / "objects")      # another process: nothing in memory
    hit = _compile(tmp_path, text, fresh)
    assert hit.cached and hit.object == first.object and fresh.hits == 1


def test_a_failed_compile_is_not_cached(tmp_path):
    _header(tmp_path, 1)
    cache = ObjectCache(tmp_path / "objects")
    first, second = _compile(tmp_path, PROGRAM, cache), _compile(tmp_path, PROGRAM, cache)
    assert first.object is None and not second.cached
    assert any(d.severity == "error" for d in second.diagnostics)
