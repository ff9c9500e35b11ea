"""A chaotic LSP session against the real server: it stays up, answers, and converges."""
from __future__ import annotations

import asyncio

from devtools import fuzz as F

from .conftest import assert_no_new_failures

MESSAGES = 300


def test_chaos_session(tmp_path):
    seeds = F.load_seeds(names=["obj_leak", "obj_leak_one_path", "list_use_after_unlock", "task_acquire_leak",
                                "list__peek_after_unlock", "kptr__task_use_after_stash"])
    session = F.ChaosSession(MESSAGES, seed=0, seeds=seeds, workdir=tmp_path, log_file=tmp_path / "server.log",
                             huge_docs=1, docs=3, request_timeout=10)
    report = asyncio.run(session.run())
    assert report.messages == MESSAGES, report.summary()
    assert report.alive, report.summary()
    assert not report.mismatches, "\n".join(report.mismatches)
    assert_no_new_failures(report)
