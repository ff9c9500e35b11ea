"""Instruction numbers are the kernel's: subprograms are appended the way libbpf appends them
(bpf_object__reloc_code(): at its first reference, its own references followed before the rest
of its caller's), so an index in a finding or hover is the one in the kernel's log.

The kernel's own numbering is read from its log (`func#N @START`, log level 2)."""
from __future__ import annotations

import json
import re
import subprocess
import textwrap

from conftest import FIXTURES, KVERIFY, clang_object, requires_kernel

SOURCE = textwrap.dedent("""\
    #include "fixture.h"

    static __noinline int leaf(int x) { return x * 3; }
    static __noinline int inner(int x) { return leaf(x) + 1; }
    static __noinline int other(int x) { return x ^ 5; }
    static int step(__u32 i, void *ctx) { return leaf(i) > 100; }

    SEC("tc")
    int nested_calls(struct __sk_buff *skb)
    {
        int a = inner(skb->len);        /* inner, then inner's leaf, before other */
        int b = other(skb->mark);

        bpf_loop(4, step, NULL, 0);     /* a callback reached last */
        return (a + b) & 1;
    }
    FIXTURE_LICENSE;
    """)


@requires_kernel
def test_subprograms_are_numbered_as_the_kernel_numbers_them(tmp_path):
    from bpf_lsp.frontend.objfile import load_object
    src = tmp_path / "nested_calls.bpf.c"
    src.write_text(SOURCE)
    obj = clang_object(src, tmp_path, [f"-I{FIXTURES / 'include'}"])
    (prog,) = load_object(obj.read_bytes(), str(obj)).programs
    out = subprocess.run([str(KVERIFY), str(obj), "--json", "--log-level", "2"], capture_output=True, text=True,
                         check=True).stdout
    log = json.loads(out.splitlines()[0])["log"]
    kernel_starts = [int(m.group(1)) for m in re.finditer(r"^func#\d+ @(\d+)$", log, re.M)]
    ours = [f.start for f in prog.functions]
    assert sorted(ours) == kernel_starts
    names = [f.name for f in sorted(prog.functions, key=lambda f: f.start)]
    assert names == ["nested_calls", "inner", "leaf", "other", "step"]
