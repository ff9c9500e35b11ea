"""Source mutants through Analyzer.analyze, hovers and fixes: nothing escapes, output well-formed."""
from __future__ import annotations

from devtools import fuzz as F

from .conftest import assert_no_new_failures

COUNT = 40


def test_source_mutants(fuzz_worker):
    report = F.source_campaign(COUNT, seed=0, worker=fuzz_worker)
    assert report.tried == COUNT
    assert_no_new_failures(report)
    assert max(report.latencies) < F.HANG_SECONDS


def test_source_mutants_are_deterministic():
    seeds = F.load_seeds(names=["obj_leak", "list__peek_after_unlock"])
    import random
    for s in seeds:
        for i in range(20):
            a = F.mutate_source(s.text, random.Random(f"t:{i}"))
            b = F.mutate_source(s.text, random.Random(f"t:{i}"))
            assert a == b
