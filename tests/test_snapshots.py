"""What a user reads for every fixture program, as a reviewed text file per fixture.

Each fixture's rendered diagnostics (verdict per program; code, severity, range, message; related
places; quick-fix titles and edited lines) are compared with `tests/snapshots/<fixture>.txt`, so a
change of wording or range shows up as a diff in review rather than passing silently. After an
intended change, regenerate them and read the diff:

    BPF_LSP_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest -q tests/test_snapshots.py
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bpf_lsp.analysis import Analyzer
from bpf_lsp.settings import Settings
from conftest import BUILD, FIXTURES, corpus_include_dirs

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
QDISC = FIXTURES / "qdisc"
UPDATE = os.environ.get("BPF_LSP_UPDATE_SNAPSHOTS") == "1"
FILES = sorted(FIXTURES.glob("*.bpf.c")) + sorted(QDISC.glob("*.bpf.c"))


@pytest.fixture(scope="module")
def snapshot_analyzer():
    settings, problems = Settings().updated({"includeDirs": [*corpus_include_dirs(), str(FIXTURES / "include"),
                                                             str(QDISC / "include")],
                                             "verifierTimeoutMs": 0})   # no wall-time budget: see conftest.analyzer
    assert not problems
    return Analyzer(settings, cache_dir=BUILD / "cache", build_pch_synchronously=True)


def _where(span, base: Path) -> str:
    file = os.path.relpath(span.file, base) if os.path.isabs(span.file) else span.file
    place = f"{span.line}:{span.column}-{span.end_line}:{span.end_column}"
    return place if file == os.path.basename(file) and file.endswith(".bpf.c") else f"{file}:{place}"


def render_snapshot(analysis, path: Path) -> str:
    out = []
    for d in analysis.compiler_diagnostics:
        out.append(f"compiler {d.severity} {d.code} {_where(d.span, path.parent)}: {d.message}")
    for report in sorted(analysis.programs, key=lambda r: r.name):
        out.append(f"[{report.name}] {report.verdict}")
        for d in report.diagnostics:
            out.append(f"  {_where(d.span, path.parent)} {d.severity} {d.code}: {d.message}")
            for r in d.related:
                out.append(f"    related {_where(r.span, path.parent)}: {r.message}")
            for fix in d.fixes:
                out.append(f"    fix: {fix.title}")
                for e in fix.edits:
                    out.append(f"      edit {_where(e.span, path.parent)}: {e.new_text!r}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(FIXTURES).as_posix() for p in FILES])
def test_rendered_diagnostics_match_the_snapshot(snapshot_analyzer, path):
    analysis = snapshot_analyzer.analyze(path.read_text(), str(path))
    got = render_snapshot(analysis, path)
    snap = SNAPSHOTS / (path.relative_to(FIXTURES).as_posix().replace("/", "__").removesuffix(".bpf.c") + ".txt")
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        snap.write_text(got)
        return
    assert snap.exists(), f"no snapshot {snap.name}: run with BPF_LSP_UPDATE_SNAPSHOTS=1 and review it"
    assert got == snap.read_text(), f"{path.name}: rendered diagnostics changed (see the module docstring)"


def test_every_snapshot_has_its_fixture():
    names = {p.relative_to(FIXTURES).as_posix().replace("/", "__").removesuffix(".bpf.c") for p in FILES}
    stale = sorted(s.stem for s in SNAPSHOTS.glob("*.txt") if s.stem not in names)
    assert not stale, f"snapshots without a fixture: {stale}"
