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
    "unknown_iter_target": ("""
        SEC("iter/no_such_target")
        int unknown_iter_target(void *ctx)
        {
            struct bpf_iter_meta *meta = *(struct bpf_iter_meta **)ctx;

            return meta->seq_num & 1;
        }
        """, "the context of iter/no_such_target"),
    "unknown_section": ("""
        SEC("filter")       /* no program type: the loader sets one (samples/bpf does) */
        int unknown_section(struct __sk_buff *skb)
        {
            void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
            struct ethhdr *eth = data;
            struct task_struct *t;

            if (data + sizeof(*eth) > end)
                return 0;
            t = bpf_task_from_pid(1);       /* a kfunc not every program type may call */
            if (t)
                bpf_task_release(t);
            return eth->h_proto == 8;
        }
        """, "the context of section filter"),
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


def test_an_error_only_for_some_load_time_values_is_a_warning_naming_the_global(analyzer):
    """A `const volatile` global is set by user space before loading: a path that exists only for
    some of its values gets a warning that names it (and the verdict is incomplete); the same
    mistake on a run-time value is still an error."""
    from conftest import FIXTURES
    path = FIXTURES / "realworld__load_time_bound_ok.bpf.c"
    analysis = analyzer.analyze(path.read_text(), str(path))
    by_name = {p.name: p for p in analysis.programs}
    (warned,) = by_name["load_time_bound_ok"].diagnostics
    assert (warned.code, warned.severity, warned.span.line) == ("invalid-deref", "warning", 31)
    assert "only if 'nr_slots' is set at load time" in warned.message
    assert warned.kernel_message == "R1 invalid mem access 'scalar'"
    assert by_name["load_time_bound_ok"].verdict == "incomplete"
    (error,) = by_name["runtime_bound"].diagnostics
    assert (error.code, error.severity) == ("invalid-deref", "error") and "load time" not in error.message
    assert by_name["runtime_bound"].verdict == "reject"


def test_a_load_time_branch_does_not_hide_a_leak_on_every_path(analyzer, tmp_path):
    """The assumption belongs to the paths that branched on the global: a leak on a path that never
    did stays an error."""
    text = HEADER + textwrap.dedent("""
        struct elem { long data; };
        const volatile u32 verbose = 0;

        SEC("tc")
        int leak_after_config(struct __sk_buff *skb)
        {
            struct elem *e = bpf_obj_new(typeof(*e));

            if (!e)
                return 0;
            if (skb->len > 100)
                return 1;               /* leaks: no load-time value involved */
            if (verbose)
                e->data = 1;
            bpf_obj_drop(e);
            return 0;
        }
        char _license[] SEC("license") = "GPL";
        """)
    analysis = analyze_text(analyzer, tmp_path / "leak_after_config.bpf.c", text)
    (prog,) = analysis.programs
    assert prog.verdict == "reject"
    assert [(d.code, d.severity) for d in prog.diagnostics] == [("reference-leak", "error")]


def test_a_leak_only_where_a_filter_is_set_is_a_warning_naming_it(analyzer, tmp_path):
    """An equality test on a `const volatile` (a pid filter, a feature switch) is verified by the
    kernel with the object's value (here 0: the filter is off, the kernel accepts): a leak only on
    the way user space must set the filter for is a warning naming the global, not an error."""
    text = HEADER + textwrap.dedent("""
        struct elem { long data; };
        const volatile u32 targ_pid = 0;

        SEC("tc")
        int leak_behind_filter(struct __sk_buff *skb)
        {
            struct elem *e = bpf_obj_new(typeof(*e));

            if (!e)
                return 0;
            if (targ_pid && skb->mark != targ_pid)
                return 0;               /* leaks whenever the filter is set */
            bpf_obj_drop(e);
            return 0;
        }
        char _license[] SEC("license") = "GPL";
        """)
    analysis = analyze_text(analyzer, tmp_path / "leak_behind_filter.bpf.c", text)
    (prog,) = analysis.programs
    assert prog.verdict == "incomplete"
    assert [(d.code, d.severity, d.span.line) for d in prog.diagnostics] == [("reference-leak", "warning", 14)]
    assert "'targ_pid'" in prog.diagnostics[0].message


def test_a_kconfig_extern_declared_in_an_included_header_is_a_constant(analyzer, tmp_path):
    # the header goes into the precompiled preamble, whose externs clang gives no BTF: the
    # object is compiled again without it, so the version check still decides the branch
    (tmp_path / "kver.h").write_text("extern unsigned int LINUX_KERNEL_VERSION __kconfig;\n")
    src = ('#include "fixture.h"\n#include "kver.h"\n\nSEC("tc")\nint version_gate(struct __sk_buff *skb)\n{\n'
           '\tif (LINUX_KERNEL_VERSION < KERNEL_VERSION(5, 0, 0))\n'
           '\t\treturn *(volatile int *)(long)skb->len;\n\treturn 0;\n}\nchar LICENSE[] SEC("license") = "GPL";\n')
    analyze_text(analyzer, tmp_path / "gate.bpf.c", src.replace("return 0;", "return 1;"))
    analysis = analyze_text(analyzer, tmp_path / "gate.bpf.c", src)   # an edit: the preamble is precompiled now
    (prog,) = analysis.programs
    assert (prog.verdict, [d.code for d in prog.diagnostics]) == ("accept", [])


def test_map_values_whose_size_user_space_may_change_are_not_bounds_checked(analyzer, tmp_path):
    # a value declared as a pointer is a placeholder for a map user space hands over
    # (bpf_map__reuse_fd(), as scxtop does with scx_layered's task storage); global data may be
    # resized before loading. A map declared with its real value type is checked.
    src = HEADER + textwrap.dedent("""
        struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, int);
                 __type(value, void *); } reused SEC(".maps");
        struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, int);
                 __type(value, __u64); } declared SEC(".maps");
        __u32 counters[2];

        SEC("tc")
        int placeholder(struct __sk_buff *skb)
        {
            int key = 0;
            __u32 *v = bpf_map_lookup_elem(&reused, &key);
            return v ? v[2] : 0;
        }

        SEC("tc")
        int real_type(struct __sk_buff *skb)
        {
            int key = 0;
            __u32 *v = bpf_map_lookup_elem(&declared, &key);
            return v ? v[2] : 0;
        }

        SEC("tc")
        int global_data(struct __sk_buff *skb)
        {
            return ((volatile __u32 *)counters)[1];
        }
        """)
    got = verdicts(analyze_text(analyzer, tmp_path / "value_sizes.bpf.c", src))
    assert got["placeholder"] == ("accept", [])
    assert got["global_data"] == ("accept", [])
    assert got["real_type"][0] == "reject" and ("map-value-out-of-bounds", "error") in got["real_type"][1]


def test_a_size_the_model_does_not_know_is_never_out_of_range(analyzer, tmp_path):
    # check_mem_size_reg() refuses a size with no bound; a size returned by a function of another
    # file, or read from a global user space sets at load time, is one the kernel may well know
    # bounded: no error. A random number is unbounded wherever it comes from.
    src = HEADER + textwrap.dedent("""
        extern __u32 record_len(void);   /* defined in another file */
        const volatile __u32 snap_len = 64;

        SEC("tp/syscalls/sys_enter_kill")
        int other_file_size(void *ctx)
        {
            char buf[64];
            bpf_probe_read_kernel(buf, record_len(), (void *)bpf_get_current_task());
            return buf[0];
        }

        SEC("tp/syscalls/sys_enter_kill")
        int load_time_size(void *ctx)
        {
            char buf[64];
            bpf_probe_read_kernel(buf, snap_len, (void *)bpf_get_current_task());
            return buf[0];
        }

        SEC("tp/syscalls/sys_enter_kill")
        int random_size(void *ctx)
        {
            char buf[64];
            bpf_probe_read_kernel(buf, bpf_get_prandom_u32(), (void *)bpf_get_current_task());
            return buf[0];
        }
        """)
    got = verdicts(analyze_text(analyzer, tmp_path / "sizes.bpf.c", src))
    assert all(sev != "error" for _c, sev in got["other_file_size"][1]), got["other_file_size"]
    assert all(sev != "error" for _c, sev in got["load_time_size"][1]), got["load_time_size"]
    assert got["random_size"][0] == "reject" and ("size-out-of-range", "error") in got["random_size"][1]


def test_an_index_the_model_does_not_know_is_never_out_of_bounds(analyzer, tmp_path):
    # check_mem_region_access() wants an index into a map value bounded; one returned by a
    # function of another file, or read from a load-time global, may be bounded for the kernel
    src = HEADER + textwrap.dedent("""
        struct slots { __u64 slot[8]; };
        struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32);
                 __type(value, struct slots); } table SEC(".maps");
        extern __u32 pick_slot(void);   /* defined in another file */
        const volatile __u32 fixed_slot = 3;

        static __always_inline struct slots *lookup(void)
        {
            __u32 key = 0;
            return bpf_map_lookup_elem(&table, &key);
        }

        SEC("tp/syscalls/sys_enter_kill")
        int other_file_index(void *ctx)
        {
            struct slots *s = lookup();
            __u32 i = pick_slot();
            return s ? s->slot[i] : 0;
        }

        SEC("tp/syscalls/sys_enter_kill")
        int load_time_index(void *ctx)
        {
            struct slots *s = lookup();
            return s ? s->slot[fixed_slot] : 0;
        }

        SEC("tp/syscalls/sys_enter_kill")
        int random_index(void *ctx)
        {
            struct slots *s = lookup();
            __u32 i = bpf_get_prandom_u32();
            return s ? s->slot[i] : 0;
        }
        """)
    got = verdicts(analyze_text(analyzer, tmp_path / "indexes.bpf.c", src))
    assert all(sev != "error" for _c, sev in got["other_file_index"][1]), got["other_file_index"]
    assert all(sev != "error" for _c, sev in got["load_time_index"][1]), got["load_time_index"]
    assert got["random_index"][0] == "reject" and ("map-value-out-of-bounds", "error") in got["random_index"][1]


def test_a_file_without_a_license_may_be_one_file_of_a_gpl_program(analyzer, tmp_path):
    # a library file of a multi-file program (scx's lib/*.bpf.c) has no `license` section: the
    # file that carries it is linked in later, so GPL-only helpers and kfuncs are no error here;
    # a license that is there and not GPL-compatible is
    body = textwrap.dedent("""
        SEC("kprobe/do_nanosleep")
        int read_kernel(void *ctx)
        {
            __u64 v = 0;
            bpf_probe_read_kernel(&v, sizeof(v), ctx);
            return v;
        }
        """)
    got = verdicts(analyze_text(analyzer, tmp_path / "lib.bpf.c", HEADER + body))
    assert got["read_kernel"] == ("accept", []), got
    licensed = HEADER + body + 'char LICENSE[] SEC("license") = "Proprietary";\n'
    got = verdicts(analyze_text(analyzer, tmp_path / "own.bpf.c", licensed))
    assert got["read_kernel"] == ("reject", [("gpl-only", "error")]), got
