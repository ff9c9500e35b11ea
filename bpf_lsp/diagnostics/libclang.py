"""The libclang library: loaded once per process, because that is what libclang is.

The shared library is not thread-safe, so every call into it holds `LOCK`. Everything else (the
parsed units) belongs to the `ranges.TranslationUnits` of an analyzer.
"""
from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import Any

log = logging.getLogger("bpf_lsp.ranges")

LOCK = threading.RLock()
_index: Any = None
_cindex: Any = None
_unavailable = ""                      # why libclang cannot be used, once known


def load() -> Any:
    """The clang.cindex module with an Index, or None (and a reason in `_unavailable`)."""
    global _index, _cindex, _unavailable
    if _cindex is not None or _unavailable:
        return _cindex
    try:
        import clang.cindex as cindex
        _index = cindex.Index.create()
        lib = cindex.conf.lib
        import ctypes
        lib.clang_Location_isFromMainFile.argtypes = [cindex.SourceLocation]
        lib.clang_Location_isFromMainFile.restype = ctypes.c_int
        _cindex = cindex
    except Exception as e:  # noqa: BLE001 - no libclang: the lexical heuristic stays
        _unavailable = f"libclang unavailable: {e}"
        log.info(_unavailable)
    return _cindex


# what holds libclang objects: disposed at exit, while the bindings still work (their finalizers
# call into the library, which module teardown would already have unbound)
_holders: "weakref.WeakSet" = weakref.WeakSet()


def register(holder: Any) -> None:
    """`holder.clear()` is called at interpreter exit, before the Index goes."""
    _holders.add(holder)


@atexit.register
def _dispose() -> None:
    global _index
    with LOCK:
        for holder in list(_holders):
            holder.clear()
        _index = None


def available() -> bool:
    with LOCK:
        return load() is not None


def index() -> Any:
    """The process's `clang.cindex.Index` (after `load()` succeeded)."""
    return _index


def cindex() -> Any:
    """The `clang.cindex` module (after `load()` succeeded)."""
    return _cindex
