"""`bpf-lsp check --kernel`: the running kernel's verdict beside ours.

On every corpus case the kernel's verdict (loaded through bpf_lsp.kernel_check) must agree with
bpf-lsp's and reproduce the recorded kernel-6.18.tsv verdict, message and line; a seeded mismatch
must be reported as a disagreement without changing the exit code; where the kernel cannot be
asked, the check says why and carries on.
"""
from __future__ import annotations

import ctypes
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bpf_lsp import cli, kernel_check
from bpf_lsp.analysis import Analyzer
from bpf_lsp.diagnostics.model import SourceDiagnostic, Span
from bpf_lsp.kernel_check import Comparison, KernelResult
from conftest import CORPUS_CASES, analyze_file, corpus_cases, corpus_include_dirs, kernel_tsv, requires_kernel

BPF_LSP = Path(sys.executable).with_name("bpf-lsp")
ACCEPTED, REJECTED = "list_push_ok", "obj_leak"


def _case(name: str) -> Path:
    return CORPUS_CASES / f"{name}.bpf.c"


def _include_args() -> list[str]:
    return [arg for d in corpus_include_dirs() for arg in ("-I", d)]


def _mask_numbers(text: str) -> str:
    # reference ids and instruction numbers depend on code generation, the words do not
    return re.sub(r"\d+", "N", text)


@pytest.fixture(scope="module")
def tsv():
    return kernel_tsv()


@requires_kernel
@pytest.mark.parametrize("case", corpus_cases())
def test_kernel_agrees_with_us_on_the_corpus(case, analyzer, tsv):
    analysis = analyze_file(analyzer, _case(case))
    comparisons = kernel_check.cross_check(analysis)
    assert [c.program for c in comparisons] == [p.name for p in analysis.programs] == [case]
    (c,) = comparisons
    want_verdict, want_where, want_message = tsv[case]
    assert c.kernel.verdict == want_verdict.lower(), "the loader must reproduce the recorded kernel verdict"
    assert c.agrees is True, f"{case}: {c.summary}: {c.kernel.message}"
    if want_verdict == "REJECT":
        assert c.kernel.stage == "verifier"
        assert _mask_numbers("|".join(c.kernel.message)) == _mask_numbers(want_message)
        assert f"{c.kernel.file}:{c.kernel.line}" == want_where
    else:
        assert c.kernel.message == () and c.kernel.errno is None


@requires_kernel
def test_seeded_mismatch_is_a_disagreement(analyzer):
    """Our verdict fabricated, the kernel's real: both directions are flagged."""
    (accepted,) = kernel_check.cross_check(analyze_file(analyzer, _case(ACCEPTED)))
    (rejected,) = kernel_check.cross_check(analyze_file(analyzer, _case(REJECTED)))
    false_positive = Comparison(ACCEPTED, "reject", accepted.kernel)
    assert false_positive.agrees is False
    assert false_positive.summary == "DISAGREE: bpf-lsp rejects, kernel accepts"
    false_negative = Comparison(REJECTED, "accept", rejected.kernel)
    assert false_negative.agrees is False
    assert false_negative.summary == "DISAGREE: bpf-lsp accepts, kernel rejects"
    # nothing to compare is not a disagreement
    assert Comparison(ACCEPTED, "incomplete", accepted.kernel).agrees is None
    assert Comparison(ACCEPTED, None, accepted.kernel).agrees is None


def _force_verdict(monkeypatch, program: str, reject: bool):
    """Make our analysis of `program` reject (with a fabricated error) or accept (no findings)."""
    real = Analyzer.verify_object

    def verify_object(self, *args, **kwargs):
        analysis = real(self, *args, **kwargs)
        for p in analysis.programs:
            if p.name == program:
                p.diagnostics = [SourceDiagnostic("invalid-deref", "error", "seeded", Span(analysis.path, 1, 1, 1, 2),
                                                  program=program)] if reject else []
                p.verdict = "reject" if reject else "accept"
        return analysis

    monkeypatch.setattr(Analyzer, "verify_object", verify_object)


@requires_kernel
@pytest.mark.parametrize("case, reject, summary, exit_code", [
    (ACCEPTED, True, "DISAGREE: bpf-lsp rejects, kernel accepts", 1),
    (REJECTED, False, "DISAGREE: bpf-lsp accepts, kernel rejects", 0),
])
def test_cli_flags_disagreement_and_keeps_our_exit_code(monkeypatch, capsys, case, reject, summary, exit_code):
    _force_verdict(monkeypatch, case, reject)
    argv = ["check", "--kernel", *_include_args(), str(_case(case))]
    assert cli.main(argv) == exit_code, "the exit code stays bpf-lsp's own"
    text = capsys.readouterr().out
    assert f"{case} (tc): bpf-lsp {'reject' if reject else 'accept'}, kernel " in text
    assert summary in text

    assert cli.main(["check", "--kernel", "--format", "json", *argv[2:]]) == exit_code
    out = capsys.readouterr()
    (prog,) = json.loads(out.out)["files"][0]["programs"]
    assert prog["kernel"]["agrees"] is False
    assert prog["kernel"]["verdict"] == ("accept" if reject else "reject")
    assert summary in out.err, "json keeps stdout parseable; the comparison goes to stderr"


@requires_kernel
def test_cli_json_kernel_object():
    proc = subprocess.run([str(BPF_LSP), "check", "--kernel", "--format", "json", *_include_args(),
                           str(_case(REJECTED)), str(_case(ACCEPTED))], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    leak, ok = (f["programs"][0] for f in json.loads(proc.stdout)["files"])
    assert leak["kernel"] == {"verdict": "reject", "line": 13, "agrees": True, "stage": "verifier", "errno": 22,
                              "note": "", "message": leak["kernel"]["message"]}
    assert leak["kernel"]["message"].startswith("Unreleased reference id=")
    assert ok["kernel"]["verdict"] == "accept" and ok["kernel"]["agrees"] is True and ok["kernel"]["line"] is None


@requires_kernel
def test_nothing_stays_loaded_or_pinned(analyzer):
    bpftool = shutil.which("bpftool") or next((p for p in ("/usr/sbin/bpftool", "/sbin/bpftool") if Path(p).exists()),
                                              None)
    if bpftool is None:
        pytest.skip("bpftool is needed to list loaded programs")
    kernel_check.cross_check(analyze_file(analyzer, _case(ACCEPTED)))
    progs = json.loads(subprocess.run([bpftool, "-j", "prog", "show"], capture_output=True, text=True).stdout or "[]")
    assert ACCEPTED not in {p.get("name") for p in progs}
    pinned = [p.name for p in Path("/sys/fs/bpf").iterdir()] if Path("/sys/fs/bpf").is_dir() else []
    assert not any(ACCEPTED in name for name in pinned)


@requires_kernel
def test_unavailable_when_the_bpf_syscall_is_denied():
    """In a user namespace root has no CAP_BPF over the kernel: the check says so and carries on."""
    unshare = shutil.which("unshare")
    if not unshare or subprocess.run([unshare, "--user", "--map-root-user", "true"]).returncode != 0:
        pytest.skip("cannot create a user namespace here")
    proc = subprocess.run([unshare, "--user", "--map-root-user", str(BPF_LSP), "check", "--kernel", "--format", "json",
                           *_include_args(), str(_case(REJECTED))], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, "our verdict, not the unavailability, decides the exit code"
    assert "kernel cross-check unavailable: the bpf syscall is not permitted here" in proc.stderr
    (prog,) = json.loads(proc.stdout)["files"][0]["programs"]
    assert prog["verdict"] == "reject"
    assert prog["kernel"]["verdict"] == "unavailable" and prog["kernel"]["agrees"] is None


def test_unavailable_without_libbpf(monkeypatch, analyzer):
    def no_such_library(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    results = [(str(_case(ACCEPTED)), analyze_file(analyzer, _case(ACCEPTED)), "", 0.0)]   # before CDLL breaks
    monkeypatch.setattr(kernel_check, "_lib_cache", [])
    monkeypatch.setattr(ctypes, "CDLL", no_such_library)
    reason = kernel_check.unavailable_reason()
    assert reason.startswith("cannot load libbpf.so.1")
    with pytest.raises(kernel_check.KernelUnavailable):
        kernel_check.load_programs(b"\x7fELF")

    kernel, why = cli.kernel_cross_check(results)
    assert why == reason and kernel == {str(_case(ACCEPTED)): reason}
    out = io.StringIO()
    cli.kernel_text(kernel, why, out)
    assert out.getvalue() == f"kernel cross-check unavailable: {reason}\n"
    (prog,) = cli.check_json(results, kernel)["files"][0]["programs"]
    assert prog["kernel"] == {"verdict": "unavailable", "message": reason, "line": None, "agrees": None}


def test_parse_log_finds_message_and_line():
    log = """func#0 @0
0: R1=ctx() R10=fp0
; struct elem *e = bpf_obj_new(typeof(*e)); @ leak.bpf.c:7
0: (18) r1 = 0x3                      ; R1_w=3
2: (b7) r2 = 0                        ; R2_w=0
3: (85) call bpf_obj_new_impl#91713   ; R0_w=ptr_or_null_elem(id=2,ref_obj_id=2)
; return 0; @ leak.bpf.c:12
4: (b4) w0 = 0                        ; R0_w=0
5: (95) exit
Unreleased reference id=2 alloc_insn=3
BPF_EXIT instruction in main prog would lead to reference leak
processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""
    message, insn, file, line = kernel_check.parse_log(log)
    assert message == ("Unreleased reference id=2 alloc_insn=3",
                       "BPF_EXIT instruction in main prog would lead to reference leak")
    assert (insn, file, line) == (5, "leak.bpf.c", 12)


def test_verdicts_of_a_kernel_result():
    def result(**kw):
        return KernelResult("p", "tc", **kw)
    assert result(accepted=True, errno=None, stage="verifier").verdict == "accept"
    assert result(accepted=False, errno=22, stage="verifier").verdict == "reject"
    assert result(accepted=False, errno=2, stage="libbpf").verdict == "reject"
    # a policy EPERM before the verifier ran is no verdict on the program: never a disagreement
    eperm = result(accepted=False, errno=1, stage="kernel")
    assert eperm.verdict == "not-verified"
    assert Comparison("p", "accept", eperm).agrees is None
    assert Comparison("p", "reject", eperm).agrees is None
