"""Files of one program in one directory: a file is verified linked with the siblings that define
what it uses, and the linker runs once per set of objects (not on every keystroke)."""
from __future__ import annotations

import pytest

from bpf_lsp.frontend import link
from conftest import analyze_text

A = ('#include "fixture.h"\nstruct task_ctx { long seen; };\n'
     'extern struct task_ctx *lookup(struct task_struct *p);\n'
     'SEC("tp_btf/task_newtask")\n'
     'int BPF_PROG(linked_prog, struct task_struct *task, u64 clone_flags)\n'
     '{\n\tstruct task_ctx *t = lookup(task);\n\tif (!t)\n\t\treturn 0;\n'
     '\treturn t->seen;\n}\nchar LICENSE[] SEC("license") = "GPL";\n')
B = ('#include "fixture.h"\nstruct task_ctx { long seen; };\n'
     'struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); '
     '__type(key, int); __type(value, struct task_ctx); } stor SEC(".maps");\n'
     '__noinline struct task_ctx *lookup(struct task_struct *p)\n'
     '{\n\treturn bpf_task_storage_get(&stor, p, 0, 0);\n}\n')


@pytest.fixture
def counted_links(monkeypatch):
    calls = []
    real = link.link_objects

    def counting(objects, *a, **kw):
        calls.append([name for name, _ in objects])
        return real(objects, *a, **kw)
    monkeypatch.setattr(link, "link_objects", counting)
    return calls


def test_a_file_is_linked_with_its_sibling_once(analyzer, tmp_path, counted_links):
    if link.find_bpftool() is None:
        pytest.skip("linking needs bpftool")
    (tmp_path / "b.bpf.c").write_text(B)
    for _ in range(3):              # the server re-analyses on every change; here nothing changed
        analysis = analyze_text(analyzer, tmp_path / "a.bpf.c", A)
        (prog,) = analysis.programs
        assert (prog.name, prog.verdict) == ("linked_prog", "reject")
        # the sibling's global lookup() returns a pointer ("doesn't return scalar", at the call on line 7)
        assert {(d.code, d.span.line) for d in prog.diagnostics} == {("global-func-return", 7)}
    assert counted_links == [[str(tmp_path / "a.bpf.c"), str(tmp_path / "b.bpf.c")]]


def test_a_failed_link_is_not_retried_and_the_file_is_analysed_alone(analyzer, tmp_path, monkeypatch):
    tries = []

    def failing(objects, *a, **kw):
        tries.append(1)
        raise link.LinkError("bpftool gen object failed: Invalid argument (22)")
    monkeypatch.setattr(link, "link_objects", failing)
    (tmp_path / "b.bpf.c").write_text(B)
    for _ in range(3):
        analysis = analyze_text(analyzer, tmp_path / "a.bpf.c", A.replace("seen", "seen_count"))
        (prog,) = analysis.programs
        assert prog.verdict == "incomplete"
        assert [d.code for d in prog.diagnostics] == ["model-gap"]
    assert len(tries) == 1


# Both files call the same kfunc: its `.ksyms` entry, an extern function, is then merged across
# objects, which the static linker of libbpf < 1.2 (Debian 12's bpftool) fails at ("failed to
# resolve size of underlying type"); bpf-lsp links them all the same.
KF_A = ('#include "fixture.h"\nextern int twice(int pid);\n'
        'SEC("tp_btf/task_newtask")\n'
        'int BPF_PROG(kfunc_prog, struct task_struct *task, u64 clone_flags)\n'
        '{\n\tstruct task_struct *t = bpf_task_acquire(task);\n\tif (!t)\n\t\treturn 0;\n'
        '\treturn twice(t->pid);\n}\nchar LICENSE[] SEC("license") = "GPL";\n')
KF_B = ('#include "fixture.h"\n'
        '__noinline int twice(int pid)\n'
        '{\n\tstruct task_struct *t = bpf_task_from_pid(pid), *u;\n\tif (t) {\n'
        '\t\tu = bpf_task_acquire(t);\n\t\tif (u)\n\t\t\tbpf_task_release(u);\n\t\tbpf_task_release(t);\n\t}\n'
        '\treturn pid * 2;\n}\n')


def test_files_that_both_call_kfuncs_are_linked(analyzer, tmp_path, counted_links):
    if link.find_bpftool() is None:
        pytest.skip("linking needs bpftool")
    (tmp_path / "b.bpf.c").write_text(KF_B)
    analysis = analyze_text(analyzer, tmp_path / "a.bpf.c", KF_A)
    (prog,) = analysis.programs
    # twice() is known once linked: what is left is the task acquired on line 6, never released
    assert (prog.name, prog.verdict) == ("kfunc_prog", "reject")
    assert [(d.code, d.span.line) for d in prog.diagnostics] == [("reference-leak", 9)]
    assert len(counted_links) == 1
