"""Object mutants through load_object, verify_program and Analyzer.verify_object: only ObjectError."""
from __future__ import annotations

from devtools import fuzz as F

from .conftest import assert_no_new_failures

COUNT = 150
SEEDS = ["obj_leak", "obj_leak_one_path", "list_push_ok", "list_use_after_unlock", "rbtree_add_ok",
         "refcount_two_collections_ok", "kptr_stash_ok", "kptr_unstash_ok", "task_acquire_leak",
         "subprog_release_ok", "lock_held_at_exit", "drop_non_owning"]


def test_object_mutants(fuzz_worker):
    seeds = F.load_seeds([F.CORPUS_CASES], names=SEEDS)
    assert len(seeds) >= 8, "corpus cases renamed? pick other seeds"
    report = F.object_campaign(COUNT, seed=0, seeds=seeds, worker=fuzz_worker)
    assert report.tried == COUNT
    assert report.rejected < COUNT, "every mutant was rejected: the mutators are not reaching the analysis"
    assert_no_new_failures(report)
