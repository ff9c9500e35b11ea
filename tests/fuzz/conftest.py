"""Short runs of the robustness harnesses (devtools/fuzz/); bench/robustness.py runs them long."""
from __future__ import annotations

import pytest

from devtools import fuzz as F


@pytest.fixture(scope="session")
def fuzz_worker():
    """One analysis worker process (with its Analyzer and PCH cache) for the source and object runs."""
    with F.Worker() as worker:
        yield worker


def assert_no_new_failures(report: F.Report) -> None:
    """Fail on anything no reproducer in tests/fuzz/repro covers; show the known ones."""
    print(report.summary())
    new = report.new_failures()
    details = "\n\n".join(f"{f.kind} {f.case} {'+'.join(f.mutators)}: {f.signature}\n{f.detail[-3000:]}"
                          for f in new[:5])
    assert not new, f"{len(new)} new failure(s):\n{report.summary()}\n\n{details}"
