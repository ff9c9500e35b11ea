"""Paths and limits every harness shares."""
from __future__ import annotations

import re
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CORPUS_CASES = SHARED / "corpus" / "cases"
CORPUS_INCLUDE = SHARED / "corpus" / "include"
FIXTURES = REPO / "tests" / "fixtures"
BUILD = REPO / ".build"
# A PCH cache of our own: preamble mutants would otherwise evict the test suite's PCHs.
FUZZ_CACHE = BUILD / "cache-fuzz"
SERVER_CACHE = BUILD / "cache-chaos"    # XDG_CACHE_HOME of the servers the chaos sessions start

HANG_SECONDS = 20.0      # a case slower than this is a hang
KILL_SECONDS = 60.0      # a worker silent this long is killed (and the case counted as a hang)
WORKER_MEMORY_LIMIT = 2 << 30   # address space of a worker process (clang, its child, inherits it)

SEVERITIES = {"error", "warning", "information", "hint"}
VERDICTS = {"accept", "reject", "incomplete"}
# Codes the analysis layer itself emits for the compile stage (not verifier findings).
STAGE_CODES = {"object-error"}
CLANG_OPTION_CODE = re.compile(r"^[WR][A-Za-z0-9_#=+.\-]*$")


def default_include_dirs() -> list[str]:
    return [str(BUILD), str(CORPUS_INCLUDE), str(FIXTURES / "include")]
