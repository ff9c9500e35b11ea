"""Our verdict on every fixture equals the kernel's, as each fixture's @kernel lines record it.

tests/kernel/test_kernel_oracle.py keeps those annotations true against the running kernel, so
together they are the differential check. Known gaps are listed with the reason, not hidden.
"""
from __future__ import annotations

import pytest

from conftest import FIXTURES, analyze_file, fixture_expectations

expectations = fixture_expectations()

FILES = sorted(FIXTURES.glob("*.bpf.c"))

# Programs where our verdict still differs from the kernel's: each is a modelling gap to close.
# Programs where our verdict still differs from the kernel's (strict xfail: closing one makes the
# test pass and the entry must go). Empty: every fixture agrees with the kernel.
KNOWN_GAPS: dict[str, str] = {}


def _cases():
    for path in FILES:
        for prog, exp in expectations.parse_expectations(path).items():
            if exp.verdict is not None:
                yield pytest.param(path, prog, exp, id=f"{path.name[:-6]}:{prog}",
                                   marks=[pytest.mark.xfail(reason=KNOWN_GAPS[prog], strict=True)]
                                   if prog in KNOWN_GAPS else [])


@pytest.fixture(scope="module")
def analyses(analyzer):
    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = analyze_file(analyzer, path)
        return cache[path]
    return get


@pytest.mark.parametrize("path,prog,exp", list(_cases()))
def test_fixture_verdict_matches_kernel(analyses, path, prog, exp):
    analysis = analyses(path)
    assert not [d for d in analysis.compiler_diagnostics if d.severity == "error"], analysis.compiler_diagnostics
    report = {p.name: p for p in analysis.programs}.get(prog)
    assert report is not None, f"program {prog} not found"
    errors = [d for d in report.diagnostics if d.severity == "error"]
    ours = "reject" if errors else "accept"
    assert ours == exp.verdict, [(d.code, d.span.line, d.kernel_message) for d in errors]
    if exp.verdict == "reject" and exp.message:
        assert any(exp.message in d.kernel_message or d.kernel_message in exp.message for d in errors), \
            (exp.message, [d.kernel_message for d in errors])
    for code, line in exp.ours:
        assert any(d.code == code and (line is None or d.span.line == line) for d in report.diagnostics), \
            (code, line, [(d.code, d.span.line) for d in report.diagnostics])
