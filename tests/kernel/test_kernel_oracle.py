"""The fixtures' @kernel annotations, checked against the real kernel verifier.

Every tests/fixtures/*.bpf.c is compiled exactly like the corpus (clang-19 -O2 -g -mcpu=v3) and
loaded program by program with kverify; for each program the verdict must equal the
annotation, and a rejection must carry the annotated message (substring of the kernel's error
text) at the annotated source line. Compilation and loading of all selected fixtures run in a
thread pool on first use (against a precompiled fixture.h; FIXTURE_NO_PCH=1 compiles each fixture
from scratch exactly like the corpus), so the module takes well under a minute.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import FIXTURES, KVERIFY, clang_object, corpus_include_dirs, requires_kernel, vmlinux_dir


def _load_expectations_module():
    spec = importlib.util.spec_from_file_location("fixture_expectations", FIXTURES / "expectations.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


expectations = _load_expectations_module()
parse_expectations = expectations.parse_expectations
parse_expectations_text = expectations.parse_expectations_text

FIXTURE_FILES = sorted(FIXTURES.glob("*.bpf.c"))
FIXTURE_IDS = [p.name[: -len(".bpf.c")] for p in FIXTURE_FILES]
NAME_RE = re.compile(r"^[a-z0-9_]+__[a-z0-9_]+\.bpf\.c$")


def _build_pch(out_dir: Path) -> Path | None:
    """Precompile include/fixture.h (vmlinux.h and all) once, with exactly the fixtures' flags.

    Parsing the 2.8 MB vmlinux.h is ~90% of each compilation; with the PCH the generated code,
    line info and BTF content are the same (only the numbering of BTF types may differ).
    Set FIXTURE_NO_PCH=1 to compile every fixture from scratch exactly like the corpus.
    """
    clang = shutil.which("clang-19") or shutil.which("clang")
    if os.environ.get("FIXTURE_NO_PCH") or not clang:
        return None
    pch = out_dir / "fixture.h.pch"
    cmd = [clang, "-target", "bpf", "-O2", "-g", "-mcpu=v3", "-D__TARGET_ARCH_x86",
           *[f"-I{d}" for d in corpus_include_dirs()], f"-I{FIXTURES / 'include'}",
           "-x", "c-header", str(FIXTURES / "include" / "fixture.h"), "-o", str(pch)]
    ok = subprocess.run(cmd, capture_output=True).returncode == 0
    return pch if ok else None


def _verify(source: Path, workdir: Path, pch: Path | None) -> list[dict]:
    """Compile one fixture and return kverify's JSON records (one per program)."""
    extra = [f"-I{FIXTURES / 'include'}"] + (["-include-pch", str(pch)] if pch else [])
    obj = clang_object(source, workdir, extra=extra)
    # run kverify with this interpreter: its shebang may go through a slow pyenv shim
    proc = subprocess.run([sys.executable, str(KVERIFY), str(obj), "--json"], capture_output=True, text=True, timeout=300)
    if proc.returncode == 3:
        pytest.skip(f"kverify cannot use the bpf syscall: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"kverify failed on {source.name}: {proc.stderr}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def kernel_verdicts(request, tmp_path_factory):
    """{fixture id: Future[list of kverify records]}, computed in parallel for the selected tests."""
    vmlinux_dir()  # generate vmlinux.h once, before the workers start
    wanted = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec and item.module is request.module and "fixture_id" in callspec.params:
            wanted.add(callspec.params["fixture_id"])
    base = tmp_path_factory.mktemp("fixtures")
    pch = _build_pch(base) if wanted else None
    pool = ThreadPoolExecutor(max_workers=max(2, min(16, (os.cpu_count() or 2) * 2)))
    futures: dict[str, Future] = {}
    for fid in FIXTURE_IDS:
        if fid in wanted:
            work = Path(tempfile.mkdtemp(prefix=fid + ".", dir=base))
            futures[fid] = pool.submit(_verify, FIXTURES / f"{fid}.bpf.c", work, pch)
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def test_there_are_enough_fixtures():
    assert len(FIXTURE_FILES) >= 70
    for p in FIXTURE_FILES:
        assert NAME_RE.match(p.name), f"{p.name}: expected <rule_area>__<name>.bpf.c"


@pytest.mark.parametrize("fixture_id", FIXTURE_IDS)
def test_fixture_is_annotated(fixture_id):
    src = FIXTURES / f"{fixture_id}.bpf.c"
    text = src.read_text()
    exp = parse_expectations(src)
    kernel = {p: e for p, e in exp.items() if e.verdict is not None}
    assert kernel, f"{src.name}: no // @kernel line"
    assert re.search(r"^// why: \S", text, re.M), f"{src.name}: no // why: line"
    for prog, e in kernel.items():
        assert re.search(rf"\b{prog}\b\s*[,(]", text), f"{src.name}: @kernel names {prog}, not a function here"
        if e.verdict == "reject":
            assert e.line is not None and e.message


@requires_kernel
@pytest.mark.kernel
@pytest.mark.parametrize("fixture_id", FIXTURE_IDS)
def test_kernel_agrees(fixture_id, kernel_verdicts):
    src = FIXTURES / f"{fixture_id}.bpf.c"
    exp = parse_expectations(src)
    records = kernel_verdicts[fixture_id].result()
    progs = {r["prog"]: r for r in records}
    assert progs, f"{src.name}: kverify found no programs"
    unannotated = sorted(p for p in progs if p not in exp or exp[p].verdict is None)
    assert not unannotated, f"{src.name}: programs without a // @kernel line: {unannotated}"
    unknown = sorted(p for p, e in exp.items() if e.verdict is not None and p not in progs)
    assert not unknown, f"{src.name}: @kernel lines for programs not in the object: {unknown}"

    problems = []
    for prog, r in progs.items():
        e = exp[prog]
        got = "accept" if r["accepted"] else "reject"
        if got != e.verdict:
            problems.append(f"{prog}: expected {e.verdict}, kernel says {got}"
                            f" ({r.get('stage')}: {r.get('error')!r} at {r.get('line')})")
            continue
        if got == "accept":
            continue
        error = r.get("error") or ""
        if e.message not in error:
            problems.append(f"{prog}: kernel message {error!r} lacks {e.message!r}")
        kline = r.get("line")
        if e.line == 0:
            if kline is not None:
                problems.append(f"{prog}: annotated no line (line=0), kernel reports {kline}")
        else:
            want_file = e.line_file or src.name
            if kline is None:
                problems.append(f"{prog}: annotated line {e.line}, kernel reports no line")
            else:
                kfile, _, knum = kline.rpartition(":")
                if (Path(kfile).name, int(knum)) != (Path(want_file).name, e.line):
                    problems.append(f"{prog}: annotated line {want_file}:{e.line}, kernel reports {kline}")
    assert not problems, f"{src.name}:\n  " + "\n  ".join(problems)


def test_parser_reads_kernel_and_ours_lines():
    text = "\n".join([
        "// why: example",
        "// @kernel a: accept",
        '// @kernel b: reject line=12 "R1 must be referenced or trusted"',
        '// @kernel c: reject line=0 "map \'x\' has no valid bpf_spin_lock"',
        '// @kernel d: reject line=fixture.h:7 "function calls are not allowed while holding a lock"',
        "// @ours b: OWN-USE-AFTER-RELEASE line=12",
        "// @ours b: OWN-DOUBLE-RELEASE",
        "// @ours e: OWN-LEAK line=3",
    ])
    exp = parse_expectations_text(text, "t.bpf.c")
    assert exp["a"].verdict == "accept" and exp["a"].accepted and exp["a"].line is None
    assert exp["a"].ours == []
    assert (exp["b"].verdict, exp["b"].line, exp["b"].message) == (
        "reject", 12, "R1 must be referenced or trusted")
    assert exp["b"].ours == [("OWN-USE-AFTER-RELEASE", 12), ("OWN-DOUBLE-RELEASE", None)]
    assert exp["c"].line == 0 and exp["c"].message == "map 'x' has no valid bpf_spin_lock"
    assert (exp["d"].line_file, exp["d"].line) == ("fixture.h", 7)
    assert exp["e"].verdict is None and exp["e"].ours == [("OWN-LEAK", 3)]


@pytest.mark.parametrize("bad", [
    "// @kernel a: maybe",
    '// @kernel a: reject "no line"',
    "// @kernel a: reject line=3",
    "// @kernel a: accept\n// @kernel a: accept",
])
def test_parser_rejects_malformed_lines(bad):
    with pytest.raises(expectations.ExpectationError):
        parse_expectations_text(bad, "bad.bpf.c")
