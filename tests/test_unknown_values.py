"""The rule that keeps correct programs clean: what the model does not know never becomes an error.

Each program here uses something bpf-lsp cannot know (a function of another file, an attach
target missing from the kernel's BTF, an extern variable defined elsewhere). Nothing may be
reported as an error; the verdict is `incomplete`, and an information diagnostic names the gap.
The same programs with a real mistake added still get the error.
"""
from __future__ import annotations

import textwrap

import pytest

from conftest import analyze_text

HEADER = '#include "fixture.h"\n'


def verdicts(analysis):
    return {p.name: (p.verdict, [(d.code, d.severity) for d in p.diagnostics]) for p in analysis.programs}


CASES = {
    "other_file_function": ("""
        struct task_ctx { long seen; };
        extern struct task_ctx *lookup_task_ctx(struct task_struct *p);   /* defined in another file */

        SEC("tp_btf/task_newtask")
        int BPF_PROG(other_file_function, struct task_struct *task, u64 clone_flags)
        {
            struct task_ctx *tctx = lookup_task_ctx(task);
            tctx->seen++;
            return tctx->seen > 1;
        }
        """, "what lookup_task_ctx() returns"),
    "placeholder_fentry": ("""
        SEC("fentry/dummy_file_read")
        int BPF_PROG(placeholder_fentry, struct file *file)
        {
            return file->f_flags != 0;
        }
        """, "the arguments of fentry/dummy_file_read"),
    "extern_variable": ("""
        extern volatile struct { long hits; } stats;   /* defined in another file */

        SEC("tc")
        int extern_variable(struct __sk_buff *skb)
        {
            stats.hits++;
            return 0;
        }
        """, "the extern variable stats"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_unknown_values_are_never_errors(analyzer, tmp_path, name):
    body, gap = CASES[name]
    a = analyze_text(analyzer, tmp_path / f"{name}.bpf.c", HEADER + textwrap.dedent(body))
    (verdict, diags), = [v for k, v in verdicts(a).items() if k == name]
    assert all(sev != "error" for _c, sev in diags), diags
    assert verdict == "incomplete"
    gaps = [d for d in a.verifier_diagnostics if d.code == "model-gap"]
    assert gaps and gap in gaps[0].message and gaps[0].severity == "information"


def test_a_real_leak_next_to_an_unknown_is_still_reported(analyzer, tmp_path):
    src = HEADER + textwrap.dedent("""
        extern long other_file_score(struct task_struct *p);

        SEC("tp_btf/task_newtask")
        int BPF_PROG(leak_beside_unknown, struct task_struct *task, u64 clone_flags)
        {
            struct task_struct *t = bpf_task_acquire(task);

            if (!t)
                return 0;
            if (other_file_score(t) > 3)
                return 1;          /* t leaks here */
            bpf_task_release(t);
            return 0;
        }
        """)
    a = analyze_text(analyzer, tmp_path / "leak.bpf.c", src)
    (prog,) = a.programs
    assert prog.verdict == "reject"
    assert [d.code for d in prog.diagnostics if d.severity == "error"] == ["reference-leak"]
