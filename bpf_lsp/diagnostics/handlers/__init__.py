"""One home per diagnostic family: the related places a finding shows and the quick fix it offers.

`render.py` computes what every finding needs (its span, the rendered template arguments) and
dispatches the rest here by code. A family module lists its codes once; a code whose table entry
in `codes.py` claims a fix (`fix_kind`) must have a handler that overrides `fix` (a test checks
it, and that each one produces an edit on a real program).
"""
from __future__ import annotations

from .base import Context, Handler
from . import graph, leaks, license, locks, nullness

HANDLERS: dict[str, Handler] = {}
for _family in (leaks, locks, graph, nullness, license):
    for _handler in _family.HANDLERS:
        for _code in _handler.codes:
            assert _code not in HANDLERS, f"{_code} has two handlers"
            HANDLERS[_code] = _handler

_DEFAULT = Handler()


def handler_for(code: str) -> Handler:
    return HANDLERS.get(code, _DEFAULT)


__all__ = ["Context", "Handler", "HANDLERS", "handler_for"]
