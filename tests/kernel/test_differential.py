"""Differential suite: for every fixture and corpus case, our verdict equals the running kernel's.

Compiles through the shared Analyzer (the server's preamble cache), loads each program into the
kernel with `bpf_lsp.kernel_check` (libbpf via ctypes; nothing stays loaded) and compares per
program. Programs the kernel cannot judge here (EPERM before verification) are skipped. The
fixtures' `@kernel` annotations are checked against the kernel by test_kernel_oracle.py; this
suite needs no annotation at all, so a new fixture is covered the moment it is added.
"""
from __future__ import annotations

import pytest

from conftest import CORPUS_CASES, FIXTURES, analyze_file, requires_kernel

pytestmark = [requires_kernel, pytest.mark.kernel]

SOURCES = sorted(FIXTURES.glob("*.bpf.c")) + sorted(CORPUS_CASES.glob("*.bpf.c"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name[:-6]}")
def test_our_verdict_equals_the_kernels(analyzer, path):
    from bpf_lsp.kernel_check import cross_check
    analysis = analyze_file(analyzer, path)
    assert analysis.obj is not None, analysis.compiler_diagnostics
    disagreements = []
    judged = 0
    for c in cross_check(analysis):
        if c.kernel is None or c.kernel.verdict == "not-verified":
            continue
        judged += 1
        if c.agrees is False:
            disagreements.append((c.program, c.ours, c.kernel.verdict, c.kernel.message))
    assert not disagreements
    assert judged, "the kernel judged no program of this object"
