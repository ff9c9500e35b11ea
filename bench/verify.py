#!/usr/bin/env python3
"""Verification speed: bpf-lsp's ownership verifier against the kernel's, on the shared corpus.

For each corpus case (compiled once through the shared preamble cache), prints our verification
time (object parse + every program, best of --repeat runs, no caches), the kernel's time for
loading the same programs (bpf_lsp.kernel_check, measured in this same run), the ratio, and our
instruction visits per second; then the totals. No assertions: figures only.

    .venv/bin/python bench/verify.py [--repeat N] [--cases GLOB]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from conftest import CORPUS_CASES, BUILD, corpus_include_dirs  # noqa: E402

from bpf_lsp.analysis import Analyzer  # noqa: E402
from bpf_lsp.frontend.kernel_btf import kernel_facts  # noqa: E402
from bpf_lsp.frontend.objfile import load_object  # noqa: E402
from bpf_lsp.settings import Settings  # noqa: E402
from bpf_lsp.verifier import verify_program  # noqa: E402
from bpf_lsp.verifier.records import RecordBuilder  # noqa: E402


def ours(data: bytes, path: str, repeat: int) -> tuple[float, int]:
    facts = kernel_facts()
    best, visits = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        obj = load_object(data, path)
        records = RecordBuilder(obj.btf, facts.struct_names)
        visits = sum(verify_program(p, 1_000_000, facts, records).visited for p in obj.programs)
        best = min(best, time.perf_counter() - t0)
    return best, visits


def kernels(data: bytes, name: str, repeat: int) -> float | None:
    try:
        from bpf_lsp.kernel_check import KernelUnavailable, load_programs
    except ImportError:
        return None
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            load_programs(data, name)
        except KernelUnavailable:
            return None
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default="*.bpf.c")
    args = ap.parse_args()
    settings, _ = Settings().updated({"includeDirs": corpus_include_dirs()})
    analyzer = Analyzer(settings, cache_dir=BUILD / "cache", build_pch_synchronously=True)
    rows = []
    print(f"{'case':34} {'ours ms':>9} {'kernel ms':>10} {'ratio':>7} {'visits':>8} {'visits/s':>10}")
    for path in sorted(CORPUS_CASES.glob(args.cases)):
        stage = analyzer.compile(path.read_text(), str(path))
        if stage.object_bytes is None:
            print(f"{path.name}: does not compile")
            continue
        t_ours, visits = ours(stage.object_bytes, str(path), args.repeat)
        t_kernel = kernels(stage.object_bytes, path.name[:-6], args.repeat)
        rows.append((t_ours, t_kernel, visits))
        ratio = f"{t_ours / t_kernel:6.2f}x" if t_kernel else "    n/a"
        kern = f"{t_kernel * 1e3:10.2f}" if t_kernel else "       n/a"
        print(f"{path.name[:-6]:34} {t_ours * 1e3:9.2f} {kern} {ratio} {visits:8d} {visits / t_ours:10.0f}")
    total_ours = sum(r[0] for r in rows)
    judged = [r for r in rows if r[1]]
    total_kernel = sum(r[1] for r in judged)
    visits = sum(r[2] for r in rows)
    print(f"\ntotal: {len(rows)} cases, ours {total_ours * 1e3:.1f} ms, kernel {total_kernel * 1e3:.1f} ms"
          + (f" (ratio {sum(r[0] for r in judged) / total_kernel:.2f}x ours/kernel)" if total_kernel else "")
          + f", {visits} instruction visits, {visits / total_ours:.0f} visits/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
