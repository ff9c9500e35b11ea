"""A kfunc extern with a ___flavour is the kernel function without it (libbpf's essential name,
bpf_core_essential_name_len(): only the last flavour goes), as compat headers use it to probe for
a kernel function: `bpf_task_acquire___compat` acquires a task like `bpf_task_acquire`.

libbpf resolves flavoured kfuncs from 1.2 on; the system's 1.1 cannot load this object, so it is
no kernel-judged fixture. Loaded with libbpf 1.5 (built from the 6.12 tree) the kernel accepts
the first program and rejects the second at its `return` ("BPF_EXIT instruction in main prog would
lead to reference leak").
"""
from __future__ import annotations

import textwrap

from conftest import analyze_text

SOURCE = textwrap.dedent("""\
    #include "fixture.h"

    extern struct task_struct *bpf_task_acquire___compat(struct task_struct *p) __ksym;
    extern void bpf_task_release___compat(struct task_struct *p) __ksym;

    SEC("tp_btf/task_newtask")
    int BPF_PROG(acquire_release_flavoured_ok, struct task_struct *task, u64 clone_flags)
    {
        struct task_struct *t = bpf_task_acquire___compat(task);

        if (!t)
            return 0;
        bpf_task_release___compat(t);
        return 0;
    }

    SEC("tp_btf/task_newtask")
    int BPF_PROG(bad_flavoured_acquire_leaked, struct task_struct *task, u64 clone_flags)
    {
        struct task_struct *t = bpf_task_acquire___compat(task);

        return t != 0;  /* leaks */
    }
    FIXTURE_LICENSE;
    """)


def test_a_flavoured_kfunc_is_the_kernel_function(analyzer, tmp_path):
    from bpf_lsp.verifier.kfuncs import essential_name
    assert essential_name("scx_bpf_task_cgroup___new") == "scx_bpf_task_cgroup"
    assert essential_name("scx_bpf_dsq_insert___v2___compat") == "scx_bpf_dsq_insert___v2"
    assert essential_name("__scx_bpf_select_cpu_and") == "__scx_bpf_select_cpu_and"
    a = analyze_text(analyzer, tmp_path / "flavoured.bpf.c", SOURCE)
    progs = {p.name: p for p in a.programs}
    assert (progs["acquire_release_flavoured_ok"].verdict, progs["acquire_release_flavoured_ok"].diagnostics) == \
        ("accept", [])
    leak = progs["bad_flavoured_acquire_leaked"]
    (d,) = leak.diagnostics
    leak_line = next(i for i, t in enumerate(SOURCE.splitlines(), 1) if "/* leaks */" in t)
    assert (leak.verdict, d.code, d.severity, d.span.line) == ("reject", "reference-leak", "error", leak_line)


NEWER = textwrap.dedent("""\
    #include "fixture.h"

    const struct cpumask *scx_bpf_get_idle_cpumask_node(int node) __ksym __weak;
    void scx_bpf_put_idle_cpumask(const struct cpumask *cpumask) __ksym __weak;

    SEC("syscall")
    int node_mask_put_ok(void *ctx)
    {
        const struct cpumask *idle = scx_bpf_get_idle_cpumask_node(0);

        scx_bpf_put_idle_cpumask(idle);
        return 0;
    }

    SEC("syscall")
    int bad_node_mask_kept(void *ctx)
    {
        const struct cpumask *idle = scx_bpf_get_idle_cpumask_node(0);

        return idle != 0;  /* leaks */
    }
    FIXTURE_LICENSE;
    """)


def test_a_kfunc_newer_than_the_table_s_tree_has_its_flags(analyzer, tmp_path):
    """sched_ext's per-node idle masks (6.15+) come from a newer tree's kfunc sets
    (`gen_kernel_tables.py --newer`): KF_ACQUIRE, released by scx_bpf_put_idle_cpumask()."""
    from bpf_lsp.verifier import kfuncs as K
    entry = K.kernel_table()["kfuncs"]["scx_bpf_get_idle_cpumask_node"]
    assert "KF_ACQUIRE" in entry["flags"] and entry["since"] == K.kernel_table()["newer_source"]
    a = analyze_text(analyzer, tmp_path / "node_mask.bpf.c", NEWER)
    progs = {p.name: p for p in a.programs}
    assert (progs["node_mask_put_ok"].verdict, progs["node_mask_put_ok"].diagnostics) == ("accept", [])
    (d,) = progs["bad_node_mask_kept"].diagnostics
    assert (d.code, d.severity) == ("reference-leak", "error")
