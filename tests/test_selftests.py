"""The kernel's own BPF selftests as a differential suite (tests/selftests/).

`make test` builds them first (tests/selftests/build.py: linux-source-6.12 fetched with apt-get,
compiled with the selftests' own flags, every program judged by this machine's kernel with
kverify). Here each program judged by the kernel is one test: our verdict on the very object the
kernel loaded must equal the kernel's. Known disagreements are strict xfails with their reason
(tests/selftests/disagreements.txt), so the list can only shrink.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "selftests"))
import judge  # noqa: E402

MANIFEST = judge.load_manifest()
KNOWN = judge.known_disagreements()
PROGRAMS = judge.judged_programs(MANIFEST) if MANIFEST["status"] == "ok" else []
_analyses: dict[str, object] = {}


def _params():
    if not PROGRAMS:
        yield pytest.param(None, marks=pytest.mark.skip(reason=f"selftests not built: {MANIFEST.get('reason')}"),
                           id="not-built")
        return
    for kv in PROGRAMS:
        marks = [pytest.mark.xdist_group(kv.file)]
        if kv.key in KNOWN:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[kv.key]))
        yield pytest.param(kv, marks=marks, id=kv.key)


def _analysis(analyzer, file: str):
    if file not in _analyses:
        _analyses[file] = analyzer.analyze_object_file(MANIFEST["objects"][file]["object"])
    return _analyses[file]


@pytest.mark.parametrize("kv", _params())
def test_verdict_equals_the_kernels(analyzer, kv):
    analysis = _analysis(analyzer, kv.file)
    assert not analysis.error, analysis.error
    ours = {p.name: p for p in analysis.programs}
    assert kv.program in ours, f"we found no program {kv.program}"
    program = ours[kv.program]
    want = "accept" if kv.accepted else "reject"
    assert judge.our_verdict(program) == want, (
        f"kernel: {want} {kv.message!r} at {kv.line}; ours: "
        + "; ".join(f"{d.code} line {d.span.line}: {d.message}" for d in program.diagnostics
                    if d.severity == "error"))


def test_every_known_disagreement_names_a_judged_program():
    if not PROGRAMS:
        pytest.skip(f"selftests not built: {MANIFEST.get('reason')}")
    judged = {kv.key for kv in PROGRAMS}
    assert not [k for k in KNOWN if k not in judged]
