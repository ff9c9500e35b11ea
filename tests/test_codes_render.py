"""Every message template is filled: by the renderer, or by the arguments each emitter passes.

A template argument nobody fills used to render as "?" ("bpf_ringbuf_submit() needs ?, but ...").
The emitters are read from the verifier's source, so a new `finding(...)` call that forgets an
argument its code's message needs fails here.
"""
from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from bpf_lsp import codes as C
from bpf_lsp.codes import CODES
from bpf_lsp.diagnostics.render import RENDERED_ARGS

VERIFIER = Path(__file__).resolve().parents[1] / "bpf_lsp" / "verifier"
EMITTERS = {"finding", "fail", "report", "_fail", "_report"}


def _placeholders(template: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(template) if name}


def emission_sites() -> list[tuple[str, str, frozenset[str]]]:
    """(code, "file:line", keyword arguments) for every call that raises a finding."""
    sites = []
    for path in sorted(VERIFIER.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            first = node.args[0]
            if name in EMITTERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                raise AssertionError(f"{path.name}:{node.lineno}: emit {first.value!r} through its "
                                     "constant in bpf_lsp.codes, not a string literal")
            if name in EMITTERS and isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name) \
                    and first.value.id == "C":
                kwargs = {k.arg for k in node.keywords if k.arg}
                if name in ("fail", "report"):      # CallChecker adds the function it checks
                    kwargs.add("func")
                sites.append((getattr(C, first.attr), f"{path.name}:{node.lineno}", frozenset(kwargs)))
    return sites


SITES = emission_sites()


def test_the_scan_finds_the_emitters():
    codes = {code for code, _, _ in SITES}
    assert {"reference-leak", "helper-arg-type", "model-gap", "kfunc-not-allowed"} <= codes
    assert codes <= set(CODES), f"emitted codes missing from codes.py: {codes - set(CODES)}"


def test_every_code_has_its_constant():
    constants = {v for k, v in vars(C).items() if k.isupper() and isinstance(v, str) and v in CODES}
    assert constants == set(CODES)
    for name in CODES:
        assert getattr(C, name.upper().replace("-", "_")) == name


@pytest.mark.parametrize("code,where,kwargs", SITES, ids=[f"{c}@{w}" for c, w, _ in SITES])
def test_every_message_argument_is_filled(code, where, kwargs):
    missing = _placeholders(CODES[code].message) - RENDERED_ARGS - kwargs
    assert not missing, f"{where}: {code}'s message needs {sorted(missing)}, which nothing fills"


@pytest.mark.parametrize("code,where,kwargs", SITES, ids=[f"{c}@{w}" for c, w, _ in SITES])
def test_every_kernel_message_argument_is_passed(code, where, kwargs):
    # a code with variants picks one template at run time: the site must fill at least one whole
    c = CODES[code]
    templates = [c.kernel, *(t for _v, t in c.variants)]
    missing = [_placeholders(t) - kwargs for t in templates]
    assert any(not m for m in missing), f"{where}: {code}'s kernel message needs {sorted(min(missing, key=len))}"

