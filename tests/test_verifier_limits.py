"""Bounds: a verifier budget that runs out gives an 'incomplete' verdict and an information
diagnostic, never a hang; unreadable objects give a clear error diagnostic."""
from __future__ import annotations

from conftest import BUILD, CORPUS_CASES, FIXTURES, corpus_include_dirs


def _analyzer(budget):
    from bpf_lsp.analysis import Analyzer
    from bpf_lsp.settings import Settings
    settings, _ = Settings().updated({"includeDirs": [*corpus_include_dirs(), str(FIXTURES / "include")],
                                      "verifierBudget": budget})
    return Analyzer(settings, cache_dir=BUILD / "cache", build_pch_synchronously=True)


def test_budget_exhausted_is_reported_as_incomplete():
    path = CORPUS_CASES / "loop_drain_ok.bpf.c"
    analysis = _analyzer(20).analyze(path.read_text(), str(path))
    (prog,) = analysis.programs
    assert prog.verdict == "incomplete"
    (d,) = prog.diagnostics
    assert d.code == "analysis-incomplete" and d.severity == "information"
    assert "20 instructions" in d.message


def test_enough_budget_gives_the_verdict():
    path = CORPUS_CASES / "loop_drain_ok.bpf.c"
    analysis = _analyzer(1_000_000).analyze(path.read_text(), str(path))
    assert [p.verdict for p in analysis.programs] == ["accept"]


def test_garbage_object_is_an_error_diagnostic(tmp_path):
    obj = tmp_path / "garbage.o"
    obj.write_bytes(b"\x7fELF" + bytes(range(256)) * 4)
    analysis = _analyzer(1000).analyze_object_file(str(obj))
    (d,) = analysis.compiler_diagnostics
    assert d.code == "object-error" and d.severity == "error"
    assert "could not be analysed" in d.message
