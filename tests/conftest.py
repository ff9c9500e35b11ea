"""Shared test fixtures: where the corpus lives, a generated vmlinux.h, and kernel access."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
CORPUS_CASES = CORPUS / "cases"
CORPUS_INCLUDE = CORPUS / "include"
KVERIFY = SHARED / "tools" / "kverify"
BUILD = REPO / ".build"
FIXTURES = REPO / "tests" / "fixtures"


def vmlinux_dir() -> Path:
    """A directory holding vmlinux.h for the running kernel (generated with bpftool once)."""
    header = BUILD / "vmlinux.h"
    if not header.exists():
        BUILD.mkdir(exist_ok=True)
        if not shutil.which("bpftool"):
            pytest.skip("bpftool is needed to generate vmlinux.h (apt-get install -y bpftool)")
        out = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                             capture_output=True, text=True, check=True).stdout
        tmp = header.with_suffix(".tmp")
        tmp.write_text(out)
        tmp.replace(header)
    return BUILD


def corpus_include_dirs() -> list[str]:
    return [str(vmlinux_dir()), str(CORPUS_INCLUDE)]


def bpf_syscall_permitted() -> bool:
    """True when this process may load BPF programs (root and an unrestricted bpf())."""
    if os.geteuid() != 0 or not KVERIFY.exists():
        return False
    return Path("/sys/kernel/btf/vmlinux").exists()


requires_kernel = pytest.mark.skipif(not bpf_syscall_permitted(), reason="the bpf syscall is not permitted here")


def corpus_cases() -> list[str]:
    return sorted(p.name[: -len(".bpf.c")] for p in CORPUS_CASES.glob("*.bpf.c"))


def clang_object(source: Path, out_dir: Path, extra: list[str] | None = None, debug: bool = True) -> Path:
    """Compile with the system clang exactly as the corpus's kernel-verdicts.sh does (`debug`: -g)."""
    clang = shutil.which("clang-19") or shutil.which("clang")
    if not clang:
        pytest.skip("no system clang")
    obj = out_dir / (source.name.replace(".bpf.c", "") + ".o")
    argv = [clang, "-target", "bpf", "-O2", *(["-g"] if debug else []), "-mcpu=v3", "-D__TARGET_ARCH_x86",
            *[f"-I{d}" for d in corpus_include_dirs()], *(extra or []), "-c", str(source), "-o", str(obj)]
    try:
        subprocess.run(argv, check=True, capture_output=True)
    except OSError:
        # seen once under heavy parallel load: execve failing with EFAULT; a second try succeeds
        subprocess.run(argv, check=True, capture_output=True)
    return obj


@pytest.fixture(scope="session")
def analyzer():
    """One Analyzer (and preamble cache) for the whole run, as the server keeps one. Without the
    editor's wall-time budget: a verdict asserted here must not depend on how busy the machine is
    (the instruction budget still bounds every program)."""
    from bpf_lsp.analysis import Analyzer
    from bpf_lsp.settings import Settings
    settings, problems = Settings().updated({"includeDirs": [*corpus_include_dirs(), str(FIXTURES / "include")],
                                             "verifierTimeoutMs": 0})
    assert not problems
    return Analyzer(settings, cache_dir=BUILD / "cache", build_pch_synchronously=True)


def analyze_file(analyzer, path: Path):
    return analyzer.analyze(path.read_text(), str(path))


def analyze_text(analyzer, path: Path, text: str):
    """Analyse a buffer as if it were the file at `path` (written there too, for the AST layer)."""
    path.write_text(text)
    return analyzer.analyze(text, str(path))


def kernel_tsv() -> dict[str, tuple[str, str, str]]:
    out = {}
    for row in (CORPUS / "kernel-6.18.tsv").read_text().splitlines():
        parts = row.split("\t") + [""] * 4
        out[parts[0]] = (parts[1], parts[2], parts[3])
    return out


def fixture_expectations():
    """tests/fixtures/expectations.py as a module (the annotation parser every fixture test uses)."""
    import importlib.util
    import sys
    name = "fixture_expectations"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FIXTURES / "expectations.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod   # dataclasses look their module up there
        spec.loader.exec_module(mod)
    return sys.modules[name]


# Layers of the suite, selectable with -m (CI runs them all): by where a test lives or what it needs.
_LAYER_BY_DIR = {"kernel": "kernel", "fuzz": "chaos", "lsp": "lsp"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if rel[0] in _LAYER_BY_DIR:
            item.add_marker(_LAYER_BY_DIR[rel[0]])
        if rel[-1] == "test_neovim.py":
            item.add_marker("neovim")
        if "zig" in item.name:
            item.add_marker("zig")
        if any(m.name == "skipif" and "bpf syscall" in str(m.kwargs.get("reason", "")) for m in item.iter_markers()):
            item.add_marker("kernel")
