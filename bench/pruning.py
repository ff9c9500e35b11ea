#!/usr/bin/env python3
"""Pruning: how much the walk's own precision (per explored state, bpf_lsp/verifier/precision.py)
saves over the static analysis alone, on our fixtures (or any objects given).

For each program, in this same process: instruction visits and seconds with per-state precision
(the default) and with static precision only, and the ratio of visits. Programs that run out of
the budget either way say so. No assertions: figures only.

    .venv/bin/python bench/pruning.py [--budget N] [--only SUBSTRING] [OBJ.o ...]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from conftest import FIXTURES, clang_object  # noqa: E402

from bpf_lsp.frontend.kernel_btf import kernel_facts  # noqa: E402
from bpf_lsp.frontend.objfile import load_object  # noqa: E402
from bpf_lsp.verifier import verify_program  # noqa: E402
from bpf_lsp.verifier.records import RecordBuilder  # noqa: E402


def objects(paths: list[str], tmp: Path):
    if paths:
        for p in paths:
            yield Path(p).name, Path(p).read_bytes()
        return
    for src in sorted(FIXTURES.glob("*.bpf.c")):
        obj = clang_object(src, tmp, [f"-I{FIXTURES / 'include'}"])
        yield src.name, obj.read_bytes()


def run(prog, facts, records, budget: int, per_state: bool) -> tuple[int, float, bool]:
    t0 = time.perf_counter()
    r = verify_program(prog, budget, facts, records, per_state=per_state)
    return r.visited, time.perf_counter() - t0, r.incomplete


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=200_000)
    ap.add_argument("--only", default="", help="programs whose file or name contains this")
    ap.add_argument("objects", nargs="*")
    args = ap.parse_args()
    facts = kernel_facts()
    rows, totals = [], [0, 0.0, 0, 0.0]
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in objects(args.objects, Path(tmp)):
            obj = load_object(data, name)
            records = RecordBuilder(obj.btf, facts.struct_names)
            for prog in obj.programs:
                if args.only and args.only not in name and args.only not in prog.name:
                    continue
                s_vis, s_sec, s_inc = run(prog, facts, records, args.budget, per_state=False)
                d_vis, d_sec, d_inc = run(prog, facts, records, args.budget, per_state=True)
                rows.append((f"{name}:{prog.name}", s_vis, s_sec, s_inc, d_vis, d_sec, d_inc))
                totals = [totals[0] + s_vis, totals[1] + s_sec, totals[2] + d_vis, totals[3] + d_sec]
    rows.sort(key=lambda r: r[1] - r[4], reverse=True)
    print(f"{'program':60} {'static':>16} {'per state':>16} {'visits ratio':>12}")
    for name, s_vis, s_sec, s_inc, d_vis, d_sec, d_inc in rows:
        def cell(v, sec, inc):
            return f"{v}{'+' if inc else ''} {sec:.2f}s"
        print(f"{name[:60]:60} {cell(s_vis, s_sec, s_inc):>16} {cell(d_vis, d_sec, d_inc):>16} "
              f"{s_vis / max(d_vis, 1):>11.2f}x")
    print(f"{len(rows)} programs; visits {totals[0]} static, {totals[2]} per state "
          f"({totals[0] / max(totals[2], 1):.2f}x); seconds {totals[1]:.1f} static, {totals[3]:.1f} per state "
          f"('+': the budget of {args.budget} instructions ran out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
