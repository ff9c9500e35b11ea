"""Each diagnostic family's handler: every code whose table entry claims a quick fix has one, and
it produces an edit on a real program that removes the diagnostic without bringing a new error."""
from __future__ import annotations

import pytest

from bpf_lsp.codes import CODES
from bpf_lsp.diagnostics.handlers import Handler, handler_for
from conftest import FIXTURES
from test_fixes import apply_edits, wired  # noqa: F401 - the module fixture is shared

FIX_CLAIMING = sorted(name for name, c in CODES.items() if c.fix_kind)


@pytest.mark.parametrize("code", FIX_CLAIMING)
def test_every_code_that_claims_a_fix_has_a_handler_with_one(code):
    assert type(handler_for(code)).fix is not Handler.fix, f"{code} claims a {CODES[code].fix_kind} fix"


def _program_errors(analysis, program):
    return [(d.code, d.message) for d in analysis.diagnostics if d.severity == "error" and d.program == program]


def fix_program(analyzer, path, code: str, program: str) -> str:
    """Apply the first fix of `program`'s `code` diagnostic; the code must leave that program and no
    new error may appear in it."""
    text = path.read_text()
    before = analyzer.analyze(text, str(path))
    diags = [d for d in before.diagnostics if d.code == code and d.program == program]
    assert diags, [(d.code, d.program, d.span.line) for d in before.diagnostics]
    assert diags[0].fixes, f"no quick fix for {code} in {program} (line {diags[0].span.line})"
    fixed = apply_edits(text, diags[0].fixes[0].edits)
    after = analyzer.analyze(fixed, str(path))
    assert not [d for d in after.diagnostics if d.code == code and d.program == program], fixed
    new = [e for e in _program_errors(after, program) if e not in _program_errors(before, program)]
    assert new == [], (fixed, new)
    assert not [d for d in after.compiler_diagnostics if d.severity == "error"], fixed
    return fixed


# (fixture, program, code, text the fixed file contains)
CASES = [
    ("lock__calls_under_lock", "lock_helper_under_lock", "call-under-lock",
     "\tif (!e)\n\t\treturn 0;\n\te->data = bpf_ktime_get_ns();\n\tbpf_spin_lock(&glock);\n"
     "\tbpf_list_push_front(&ghead, &e->node);\n"),
    ("lock__calls_under_lock", "lock_obj_new_under_lock", "call-under-lock",
     "\te = bpf_obj_new(typeof(*e));\n\tbpf_spin_lock(&glock);\n\tif (e)\n"),
    ("tailcall__with_reference", "tailcall_with_reference", "tail-call-leak",
     "\tbpf_obj_drop(e);\n\tbpf_tail_call(skb, &jmp_table, 0);\n\treturn 0;\n"),
    ("exc__throw_with_reference", "exc_throw_with_reference", "throw-leak",
     "\tif (skb->len > 1000) {\n\t\tbpf_obj_drop(e);\n\t\tbpf_throw(0);\n\t}\n\tbpf_obj_drop(e);\n"),
    ("dynptr__ringbuf_dynptr", "dynptr_leak", "reference-leak",
     "\tbpf_ringbuf_reserve_dynptr(&rb, 8, 0, &ptr);\n\tbpf_ringbuf_discard_dynptr(&ptr, 0);\n\treturn 0;\n"),
    ("refcount__acquire_after_unlock", "refcount_acquire_after_unlock", "refcount-arg-invalid",
     "\tbpf_list_push_back(&ghead, &n->l);\n\tm = bpf_refcount_acquire(n);\n\tbpf_spin_unlock(&glock);\n"
     "\tif (m)\n"),
]


@pytest.mark.parametrize("fixture,program,code,expected", CASES, ids=[c[1] for c in CASES])
def test_fix_removes_the_diagnostic(wired, fixture, program, code, expected):  # noqa: F811
    fixed = fix_program(wired, FIXTURES / f"{fixture}.bpf.c", code, program)
    assert expected in fixed, fixed


def test_call_under_lock_moves_a_release_after_the_unlock(wired, tmp_path):  # noqa: F811
    """A drop inside the critical section moves down, not up: the section may still use the object."""
    src = (FIXTURES / "lock__calls_under_lock.bpf.c").read_text()
    text = src.replace("\tbpf_spin_lock(&glock);\n\te->data = bpf_ktime_get_ns();\n"
                       "\tbpf_list_push_front(&ghead, &e->node);\n\tbpf_spin_unlock(&glock);\n",
                       "\tbpf_spin_lock(&glock);\n\te->data = 1;\n\tbpf_obj_drop(e);\n\tbpf_spin_unlock(&glock);\n")
    assert text != src
    path = tmp_path / "lock__calls_under_lock.bpf.c"
    path.write_text(text)
    fixed = fix_program(wired, path, "call-under-lock", "lock_helper_under_lock")
    assert "\tbpf_spin_lock(&glock);\n\te->data = 1;\n\tbpf_spin_unlock(&glock);\n\tbpf_obj_drop(e);\n" in fixed


def test_no_move_over_a_write_of_what_the_call_reads(wired, tmp_path):  # noqa: F811
    """`e->data = f(x)` cannot move above the lock when the critical section computes `x` first."""
    src = (FIXTURES / "lock__calls_under_lock.bpf.c").read_text()
    text = src.replace("\te->data = bpf_ktime_get_ns();\n",
                       "\tlong x = e->data;\n\tx = x + 1;\n\te->data = bpf_get_prandom_u32() + x;\n")
    path = tmp_path / "lock__calls_under_lock.bpf.c"
    path.write_text(text)
    analysis = wired.analyze(text, str(path))
    (d,) = [d for d in analysis.diagnostics if d.code == "call-under-lock" and d.program == "lock_helper_under_lock"]
    assert d.fixes == ()
