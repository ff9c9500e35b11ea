"""BPF qdisc (struct Qdisc_ops) ownership: our verdicts against the kernel's rules.

The kernel here is built without CONFIG_NET_SCH_BPF, so these fixtures cannot be loaded; each
carries `// @expect` lines justified from net/sched/bpf_qdisc.c, kernel/bpf/verifier.c and the
selftests (see tests/fixtures/qdisc/README.md and docs/qdisc-rules.md).
"""
from __future__ import annotations

import pytest

from conftest import FIXTURES, fixture_expectations

QDISC = FIXTURES / "qdisc"
expectations = fixture_expectations()


def _expected(path):
    # `@expect` uses the `@kernel` grammar; the different word says the kernel could not check it
    return expectations.parse_expectations_text(path.read_text().replace("// @expect ", "// @kernel "), str(path))


def _cases():
    for path in sorted(QDISC.glob("*.bpf.c")):
        for prog, exp in _expected(path).items():
            yield pytest.param(path, prog, exp, id=f"{path.name[:-6]}:{prog}")


@pytest.fixture(scope="module")
def qdisc_analyzer():
    from bpf_lsp.analysis import Analyzer
    from bpf_lsp.settings import Settings
    from conftest import BUILD, corpus_include_dirs
    settings, _ = Settings().updated({"includeDirs": [*corpus_include_dirs(), str(FIXTURES / "include"),
                                                      str(QDISC / "include")],
                                      "verifierTimeoutMs": 0})   # no wall-time budget: see conftest.analyzer
    return Analyzer(settings, cache_dir=BUILD / "cache", build_pch_synchronously=True)


@pytest.fixture(scope="module")
def analyses(qdisc_analyzer):
    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = qdisc_analyzer.analyze(path.read_text(), str(path))
        return cache[path]
    return get


@pytest.mark.parametrize("path,prog,exp", list(_cases()))
def test_qdisc_fixture(analyses, path, prog, exp):
    analysis = analyses(path)
    assert not [d for d in analysis.compiler_diagnostics if d.severity == "error"], analysis.compiler_diagnostics
    report = {p.name: p for p in analysis.programs}.get(prog)
    assert report is not None, f"program {prog} not found"
    errors = [d for d in report.diagnostics if d.severity == "error"]
    assert ("reject" if errors else "accept") == exp.verdict, [(d.code, d.span.line, d.kernel_message) for d in errors]
    if exp.verdict == "reject" and exp.message:
        assert any(exp.message in d.kernel_message for d in errors), (exp.message, [d.kernel_message for d in errors])


def test_skb_leak_message_names_the_argument_and_the_fix_drops_it(qdisc_analyzer):
    from test_fixes import apply_and_check
    path = QDISC / "enqueue__skb_leak_one_path.bpf.c"
    text = path.read_text()
    analysis = qdisc_analyzer.analyze(text, str(path))
    (leak,) = [d for d in analysis.verifier_diagnostics if d.code == "reference-leak"]
    assert leak.message.startswith("'skb' acquired by the kernel as a referenced argument of Qdisc_ops.enqueue")
    assert "return NET_XMIT_DROP;" in text.splitlines()[leak.span.line - 1]
    fix, fixed = apply_and_check(qdisc_analyzer, path, text, "reference-leak")
    assert "bpf_qdisc_skb_drop(skb, to_free);" in fixed
