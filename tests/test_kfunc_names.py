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


SCX_UPSTREAM = textwrap.dedent("""\
    #include "fixture.h"

    struct cgroup *scx_bpf_task_cgroup___new(struct task_struct *p) __ksym __weak;
    void bpf_cgroup_release(struct cgroup *cgrp) __ksym;
    struct task_struct *scx_bpf_cpu_curr(s32 cpu) __ksym __weak;
    s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym __weak;
    void bpf_rcu_read_lock(void) __ksym;
    void bpf_rcu_read_unlock(void) __ksym;

    SEC("syscall")
    int curr_pid_ok(void *ctx)
    {
        struct task_struct *p;
        int pid = 0;

        bpf_rcu_read_lock();
        p = scx_bpf_cpu_curr(0);
        if (p)
            pid = p->pid;
        bpf_rcu_read_unlock();
        return pid;
    }

    SEC("syscall")
    int bad_curr_unchecked(void *ctx)
    {
        struct task_struct *p;
        int pid;

        bpf_rcu_read_lock();
        p = scx_bpf_cpu_curr(0);
        pid = p->pid;  /* may be NULL */
        bpf_rcu_read_unlock();
        return pid;
    }

    SEC("syscall")
    int curr_cpu_ok(void *ctx)
    {
        struct task_struct *p;
        int cpu = -1;

        bpf_rcu_read_lock();
        p = scx_bpf_cpu_curr(1);
        if (p)
            cpu = scx_bpf_task_cpu(p);
        bpf_rcu_read_unlock();
        return cpu;
    }

    SEC("tp_btf/task_newtask")
    int BPF_PROG(task_cgroup_released_ok, struct task_struct *task, u64 clone_flags)
    {
        struct cgroup *cgrp = scx_bpf_task_cgroup___new(task);

        bpf_cgroup_release(cgrp);
        return 0;
    }

    SEC("tp_btf/task_newtask")
    int BPF_PROG(bad_task_cgroup_kept, struct task_struct *task, u64 clone_flags)
    {
        struct cgroup *cgrp = scx_bpf_task_cgroup___new(task);

        return cgrp->level;  /* leaks */
    }
    FIXTURE_LICENSE;
    """)


def test_sched_ext_kfuncs_from_upstream_and_their_flavoured_declarations(analyzer, tmp_path):
    """scx_bpf_cpu_curr() (KF_RET_NULL, upstream ext.c only) may return NULL; compat.bpf.h's
    `scx_bpf_task_cgroup___new` is scx_bpf_task_cgroup(), KF_ACQUIRE, and its return type comes
    from the flavoured declaration (the running kernel has no sched_ext to take it from). Without
    either, both values were unknown and neither error was reported."""
    from bpf_lsp.verifier import kfuncs as K
    assert K.kernel_table()["kfuncs"]["scx_bpf_cpu_curr"]["since"] == K.kernel_table()["newer_source"]
    a = analyze_text(analyzer, tmp_path / "scx_upstream.bpf.c", SCX_UPSTREAM)
    progs = {p.name: p for p in a.programs}
    for ok in ("curr_pid_ok", "curr_cpu_ok", "task_cgroup_released_ok"):
        assert (ok, progs[ok].verdict, progs[ok].diagnostics) == (ok, "accept", [])
    lines = SCX_UPSTREAM.splitlines()
    (d,) = progs["bad_curr_unchecked"].diagnostics
    assert (d.code, d.severity, d.span.line) == \
        ("null-deref", "error", next(i for i, t in enumerate(lines, 1) if "/* may be NULL */" in t))
    (d,) = progs["bad_task_cgroup_kept"].diagnostics
    assert (d.code, d.severity, d.span.line) == \
        ("reference-leak", "error", next(i for i, t in enumerate(lines, 1) if "/* leaks */" in t))


HID = textwrap.dedent("""\
    #include "fixture.h"

    struct hid_bpf_ctx;
    extern __u8 *hid_bpf_get_data(struct hid_bpf_ctx *ctx, unsigned int offset, const size_t sz) __ksym;

    SEC("struct_ops/hid_device_event")
    int BPF_PROG(report_fits_ok, struct hid_bpf_ctx *hctx)
    {
        __u8 *data = hid_bpf_get_data(hctx, 0, 9);

        if (!data)
            return 0;
        data[3] = data[8];      /* 9 bytes asked for */
        return 0;
    }

    SEC("struct_ops/hid_device_event")
    int BPF_PROG(bad_report_overrun, struct hid_bpf_ctx *hctx)
    {
        __u8 *data = hid_bpf_get_data(hctx, 0, 9);

        if (!data)
            return 0;
        return data[9];         /* past the end */
    }
    FIXTURE_LICENSE;
    """)


def test_a_kfunc_buffer_is_as_long_as_its_rdwr_buf_size_argument(analyzer, tmp_path):
    """hid_bpf_get_data(ctx, offset, rdwr_buf_size) returns that many writable bytes, whatever the
    extern calls the parameter (the kernel reads the name from its own definition); HID-BPF is
    not in this kernel, so no kernel-judged fixture."""
    a = analyze_text(analyzer, tmp_path / "hid.bpf.c", HID)
    progs = {p.name: p for p in a.programs}
    assert not [d for d in progs["report_fits_ok"].diagnostics if d.severity == "error"]
    errors = [d for d in progs["bad_report_overrun"].diagnostics if d.severity == "error"]
    overrun_line = next(i for i, t in enumerate(HID.splitlines(), 1) if "past the end" in t)
    assert [(d.code, d.span.line) for d in errors] == [("mem-out-of-bounds", overrun_line)]
