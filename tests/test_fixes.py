"""Every quick fix, applied: the edit removes its diagnostic and brings no new error.

Each case applies the first fix of the diagnostic (TextEdits: 1-based lines, byte columns, end
exclusive), re-analyses the edited text as the same file, and checks that the diagnostic's code is
gone and that no compiler or verifier error appeared that was not there before.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from bpf_lsp.diagnostics.model import Fix, TextEdit
from bpf_lsp.diagnostics import sources
from conftest import CORPUS_CASES, KVERIFY, clang_object, requires_kernel


@pytest.fixture(scope="module")
def wired(analyzer):
    """The analyzer: its compiles' flags reach `SourceFiles` (libclang statement ranges) by
    themselves, so the fixes are computed as the server computes them."""
    return analyzer


def apply_edits(text: str, edits: tuple[TextEdit, ...]) -> str:
    """Apply edits given in 1-based lines and 1-based byte columns (end exclusive) to `text`."""
    data = text.encode("utf-8")
    starts = [0]
    for i, b in enumerate(data):
        if b == 0x0A:
            starts.append(i + 1)

    def offset(line: int, col: int) -> int:
        if line > len(starts):      # one past the last line: the end of the text
            return len(data)
        return starts[line - 1] + col - 1

    spans = sorted(((offset(e.span.line, e.span.column), offset(e.span.end_line, e.span.end_column), e.new_text)
                    for e in edits), reverse=True)
    for (a, b, _), (c, _, _) in zip(spans, spans[1:]):
        assert c <= a, "overlapping edits"
    for a, b, new in spans:
        data = data[:a] + new.encode("utf-8") + data[b:]
    return data.decode("utf-8")


def errors(analysis) -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in analysis.diagnostics if d.severity == "error"]


def apply_and_check(analyzer, path, text: str, code: str) -> tuple[Fix, str]:
    before = analyzer.analyze(text, str(path))
    diags = [d for d in before.diagnostics if d.code == code]
    assert diags, [(d.code, d.span.line, d.message) for d in before.diagnostics]
    assert diags[0].fixes, f"no quick fix for {code} at line {diags[0].span.line}"
    fix = diags[0].fixes[0]
    assert fix.diagnostic_code == code
    fixed = apply_edits(text, fix.edits)
    after = analyzer.analyze(fixed, str(path))
    assert not [d for d in after.diagnostics if d.code == code], (fixed, errors(after))
    new = [e for e in errors(after) if e not in errors(before)]
    assert new == [], (fixed, new)
    return fix, fixed


# case -> (code, text the fix inserts, one line of the fixed file it must contain)
CASES = {
    "obj_leak": ("reference-leak", "\tbpf_obj_drop(e);\n\treturn 0;\n"),
    "obj_leak_one_path": ("reference-leak", "\tif (skb->len > 100) {\n\t\tbpf_obj_drop(e);\n\t\treturn 1;\n\t}\n"),
    "task_acquire_leak": ("reference-leak", "\tif (!t)\n\t\treturn 0;\n\tbpf_task_release(t);\n\treturn 0;\n"),
    "cpumask_leak": ("reference-leak", "\tbpf_cpumask_release(mask);\n\treturn 0;\n"),
    "ringbuf_reserve_leak": ("reference-leak",
                             "\tif (task->pid == 1) {\n\t\tbpf_ringbuf_discard(slot, 0);\n\t\treturn 0;\n\t}\n"),
    "list_pop_leak": ("reference-leak",
                      "\tint ret = container_of(n, struct elem, node)->data;\n"
                      "\tbpf_obj_drop(container_of(n, struct elem, node));\n\treturn ret;\n"),
    "lock_held_at_exit": ("lock-held-at-exit",
                          "\tif (skb->len > 64) {\n\t\tbpf_spin_unlock(&glock);\n\t\treturn 1;\n\t}\n"),
    "rcu_unlock_missing": ("rcu-held-at-exit",
                           "\tif (task->pid == 1) {\n\t\tbpf_rcu_read_unlock();\n\t\treturn 0;\n\t}\n"),
    "obj_no_null_check": ("null-deref", "\tstruct elem *e = bpf_obj_new(typeof(*e));\n\tif (!e)\n\t\treturn 0;\n"),
    "obj_drop_maybe_null": ("null-arg", "\tstruct elem *e = bpf_obj_new(typeof(*e));\n\tif (!e)\n\t\treturn 0;\n"),
    "task_from_pid_no_null_check": ("null-arg",
                                    "\tstruct task_struct *t = bpf_task_from_pid(1);\n\tif (!t)\n\t\treturn 0;\n"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_fix_removes_the_diagnostic(wired, case):
    code, expected = CASES[case]
    path = CORPUS_CASES / f"{case}.bpf.c"
    fix, fixed = apply_and_check(wired, path, path.read_text(), code)
    assert expected in fixed, fixed


def test_leak_fix_skips_the_null_branch(wired):
    """task_acquire_leak: clang merged both `return 0;` and dropped the `if (!t)`; the leaking path is the
    one where `t` is not NULL, so the release goes before the second return, not into the `if (!t)`."""
    path = CORPUS_CASES / "task_acquire_leak.bpf.c"
    analysis = wired.analyze(path.read_text(), str(path))
    (d,) = [d for d in analysis.diagnostics if d.code == "reference-leak"]
    assert (d.span.line, d.span.column, d.span.end_line, d.span.end_column) == (10, 2, 10, 11)
    (edit,) = d.fixes[0].edits
    assert (edit.span.line, edit.span.column, edit.new_text) == (10, 1, "\tbpf_task_release(t);\n")


def test_fixes_follow_the_file_indentation(wired, tmp_path):
    """A file indented with four spaces gets four-space fixes."""
    text = (CORPUS_CASES / "obj_leak_one_path.bpf.c").read_text().replace("\t", "    ")
    path = tmp_path / "obj_leak_one_path.bpf.c"
    path.write_text(text)
    fix, fixed = apply_and_check(wired, path, text, "reference-leak")
    assert "    if (skb->len > 100) {\n        bpf_obj_drop(e);\n        return 1;\n    }\n" in fixed
    assert "\t" not in fixed


def test_inline_if_body_is_braced_on_its_line(wired, tmp_path):
    text = (CORPUS_CASES / "lock_held_at_exit.bpf.c").read_text().replace(
        "\tif (skb->len > 64)\n\t\treturn 1;\n", "\tif (skb->len > 64) return 1;\n")
    path = tmp_path / "lock_held_at_exit.bpf.c"
    path.write_text(text)
    fix, fixed = apply_and_check(wired, path, text, "lock-held-at-exit")
    assert "\tif (skb->len > 64) { bpf_spin_unlock(&glock); return 1; }\n" in fixed


def test_fixes_without_libclang_are_the_same(wired, monkeypatch):
    """The lexical fallback (libclang off or unavailable) gives the same edits on the corpus."""
    monkeypatch.setattr(sources, "AST_RANGES", False)
    for case in sorted(CASES):
        path = CORPUS_CASES / f"{case}.bpf.c"
        code = CASES[case][0]
        fix, fixed = apply_and_check(wired, path, path.read_text(), code)
        assert CASES[case][1] in fixed, (case, fixed)


REFCOUNTED = """\
#include "own.h"
struct elem {
	int data;
	struct bpf_list_node node;
	struct bpf_refcount ref;
};

private(A) struct bpf_spin_lock glock;
private(A) struct bpf_list_head ghead __contains(elem, node);

SEC("tc")
int refcount_use_after_unlock(void *ctx)
{
	struct elem *e = bpf_obj_new(typeof(*e));
	int v = 0;

	if (!e)
		return 0;
	e->data = 1;
	bpf_spin_lock(&glock);
	bpf_list_push_back(&ghead, &e->node);
	bpf_spin_unlock(&glock);
	e->data = 2;	/* non-owning: died at unlock */
	v = e->data;
	return v;
}
char _license[] SEC("license") = "GPL";
"""

REFCOUNTED_FIXED = """\
	bpf_list_push_back(&ghead, &e->node);
	struct elem *ref = bpf_refcount_acquire(e);
	bpf_spin_unlock(&glock);
	if (ref) {
		ref->data = 2;	/* non-owning: died at unlock */
		v = ref->data;
		bpf_obj_drop(ref);
	}
	return v;
"""


def test_refcount_fix_takes_a_reference_inside_the_critical_section(wired, tmp_path):
    path = tmp_path / "refcount_use_after_unlock.bpf.c"
    path.write_text(REFCOUNTED)
    fix, fixed = apply_and_check(wired, path, REFCOUNTED, "non-owning-after-unlock")
    assert REFCOUNTED_FIXED in fixed, fixed
    after = wired.analyze(fixed, str(path))
    assert [p.verdict for p in after.programs] == ["accept"], errors(after)


def test_no_refcount_fix_without_a_refcount_field(wired):
    """list_use_after_unlock's struct elem has no bpf_refcount: nothing to offer but moving the use."""
    path = CORPUS_CASES / "list_use_after_unlock.bpf.c"
    analysis = wired.analyze(path.read_text(), str(path))
    (d,) = [d for d in analysis.diagnostics if d.code == "non-owning-after-unlock"]
    assert d.fixes == ()


def kernel_verdicts(text: str, name: str, out_dir) -> list[dict]:
    """Compile `text` like the corpus and load every program with kverify."""
    source = out_dir / f"{name}.bpf.c"
    source.write_text(text)
    obj = clang_object(source, out_dir)
    out = subprocess.run([str(KVERIFY), "--json", str(obj)], capture_output=True, text=True, timeout=120).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@requires_kernel
@pytest.mark.parametrize("case", sorted(CASES))
def test_fixed_corpus_file_loads_in_the_kernel(wired, case, tmp_path):
    code, _ = CASES[case]
    path = CORPUS_CASES / f"{case}.bpf.c"
    fix, fixed = apply_and_check(wired, path, path.read_text(), code)
    verdicts = kernel_verdicts(fixed, case, tmp_path)
    assert verdicts and all(v["accepted"] for v in verdicts), verdicts


@requires_kernel
def test_refcount_fix_loads_in_the_kernel(wired, tmp_path):
    path = tmp_path / "refcount_use_after_unlock.bpf.c"
    path.write_text(REFCOUNTED)
    before = kernel_verdicts(REFCOUNTED, "before", tmp_path)
    assert [v["accepted"] for v in before] == [False], before
    fix, fixed = apply_and_check(wired, path, REFCOUNTED, "non-owning-after-unlock")
    verdicts = kernel_verdicts(fixed, "after", tmp_path)
    assert [v["accepted"] for v in verdicts] == [True], verdicts


def test_leaked_iterator_fix_destroys_it(wired, tmp_path):
    """An open-coded iterator left open is destroyed through its address before the return."""
    text = ('#include "fixture.h"\n'
            'extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;\n'
            'extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;\n'
            'extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;\n'
            'SEC("tc")\nint iter_left_open(struct __sk_buff *skb)\n{\n\tstruct bpf_iter_num it;\n'
            '\tint *v;\n\n\tbpf_iter_num_new(&it, 0, 4);\n\tv = bpf_iter_num_next(&it);\n'
            '\treturn v ? *v : 0;\n}\nchar LICENSE[] SEC("license") = "GPL";\n')
    path = tmp_path / "iter_left_open.bpf.c"
    path.write_text(text)
    fix, fixed = apply_and_check(wired, path, text, "reference-leak")
    assert "bpf_iter_num_destroy(&it);" in fixed


def test_license_fix_makes_the_license_gpl_compatible(wired, tmp_path):
    # gpl-only: the fix rewrites the `license` string, keeping the other half of a dual license
    text = ('#include "fixture.h"\n'
            'SEC("kprobe/do_nanosleep")\n'
            'int read_kernel(void *ctx)\n'
            '{\n'
            '\t__u64 v = 0;\n'
            '\tbpf_probe_read_kernel(&v, sizeof(v), ctx);\n'
            '\treturn v;\n'
            '}\n'
            'char LICENSE[] SEC("license") = "Dual BSD";\n')
    fix, fixed = apply_and_check(wired, tmp_path / "bsd.bpf.c", text, "gpl-only")
    assert fix.title == 'Make the license "Dual BSD/GPL"'
    assert fixed.endswith('char LICENSE[] SEC("license") = "Dual BSD/GPL";\n')
