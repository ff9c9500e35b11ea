"""Arena pointers (PTR_TO_ARENA): the kernel does not follow arena memory, so any arithmetic on an
arena pointer gives an arena pointer (adjust_reg_min_max_vals(): "Any arithmetic operations are
allowed on arena pointers"), 32-bit operations and masks included.

Arena maps cannot be created on this machine (BPF_MAP_TYPE_ARENA fails with EPERM before any
verification), so these expectations come from the kernel's source, not from its verdict.
"""
from __future__ import annotations

import textwrap

from conftest import analyze_text

SOURCE = textwrap.dedent("""\
    #include "fixture.h"
    #define __arena __attribute__((address_space(1)))

    struct {
        __uint(type, BPF_MAP_TYPE_ARENA);
        __uint(map_flags, BPF_F_MMAPABLE);
        __uint(max_entries, 1);
    } arena SEC(".maps");

    void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt, int node_id,
                                        __u64 flags) __ksym __weak;

    struct arena_slab { __u64 used; __u64 next; };

    SEC("syscall")
    int arena_masked_pointer(void *ctx)
    {
        struct arena_slab __arena *s = bpf_arena_alloc_pages(&arena, NULL, 1, -1, 0);
        void *p;

        if (!s)
            return 0;
        p = (void *)s;                          /* cast_kern: an arena pointer in a register */
        p = (void *)((unsigned long)p & ~15UL); /* masked: still one */
        return ((struct arena_slab *)p)->next;
    }

    SEC("syscall")
    int bad_number_after_all(void *ctx)
    {
        struct arena_slab __arena *s = bpf_arena_alloc_pages(&arena, NULL, 1, -1, 0);
        unsigned long x;

        if (!s)
            return 0;
        x = s->next;                            /* a number read from the arena */
        return *(int *)x;                       /* is no pointer */
    }
    FIXTURE_LICENSE;
    """)


def line_of(marker: str) -> int:
    return next(i for i, text in enumerate(SOURCE.splitlines(), 1) if marker in text)


def test_arithmetic_on_an_arena_pointer_keeps_it_one(analyzer, tmp_path):
    a = analyze_text(analyzer, tmp_path / "arena_alu.bpf.c", SOURCE)
    progs = {p.name: p for p in a.programs}
    assert progs, [d.message for d in a.compiler_diagnostics]
    masked = progs["arena_masked_pointer"]
    assert (masked.verdict, masked.diagnostics) == ("accept", [])
    # a number loaded from arena memory is still a number: dereferencing it is the usual error
    bad = progs["bad_number_after_all"]
    assert bad.verdict == "reject"
    (d,) = [d for d in bad.diagnostics if d.severity == "error"]
    assert (d.code, d.span.line) == ("invalid-deref", line_of("is no pointer"))
