#!/usr/bin/env python3
"""How far bpf-lsp agrees with the kernel on the built selftests (run build.py first).

    .venv/bin/python tests/selftests/report.py [-v] [--update-disagreements]

Prints, per file and in total: programs judged by the kernel, agreements, false positives (we
reject, the kernel accepts), false negatives, rejections whose reason differs from the kernel's,
and the seconds each object took. `--update-disagreements` rewrites disagreements.txt to the
current disagreements, keeping the reason already written for each one that remains.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
import judge  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-v", action="store_true", help="list every disagreement")
    ap.add_argument("--update-disagreements", action="store_true")
    args = ap.parse_args()
    manifest = judge.load_manifest()
    if manifest["status"] != "ok":
        print(f"selftests not built: {manifest.get('reason')}")
        return 2
    from bpf_lsp.analysis import Analyzer
    from bpf_lsp.settings import Settings
    analyzer = Analyzer(Settings(), cache_dir=judge.REPO / ".build" / "cache")
    by_file = defaultdict(list)
    for kv in judge.judged_programs(manifest):
        by_file[kv.file].append(kv)
    totals, seconds, lines = Counter(), {}, []
    known = judge.known_disagreements()
    current: dict[str, str] = {}
    for file, kvs in sorted(by_file.items()):
        t0 = time.monotonic()
        analysis = analyzer.analyze_object_file(manifest["objects"][file]["object"])
        seconds[file] = time.monotonic() - t0
        ours = {p.name: p for p in analysis.programs}
        counts = Counter()
        for kv in kvs:
            p = ours.get(kv.program)
            verdict = judge.our_verdict(p) if p is not None else "missing"
            errors = [d for d in p.diagnostics if d.severity == "error"] if p is not None else []
            if verdict == ("accept" if kv.accepted else "reject"):
                kind = "agree"
                if not kv.accepted and not judge.same_reason(kv.message, [d.kernel_message for d in errors]):
                    counts["reason differs"] += 1
            else:
                kind = "FP" if kv.accepted else "FN"
                ours_text = "; ".join(f"{d.code}@{d.span.line}" for d in errors) or verdict
                current[kv.key] = known.get(kv.key) or (
                    f"{kind}: kernel {'accepts' if kv.accepted else 'rejects: ' + kv.message.splitlines()[0]}"
                    f"; ours: {ours_text}")
                lines.append(f"{kind} {kv.key}: kernel [{kv.message.splitlines()[0] if kv.message else 'accept'}"
                             f" @{kv.line}] ours [{ours_text}]")
            counts[kind] += 1
        totals.update(counts)
        print(f"{file:45} {len(kvs):4} judged  {counts['agree']:4} agree  {counts['FP']:3} FP  {counts['FN']:3} FN"
              f"  {counts['reason differs']:3} reason differs  {seconds[file]:6.2f} s")
    n = sum(len(v) for v in by_file.values())
    print(f"\ntotal: {n} judged, {totals['agree']} agree ({100 * totals['agree'] / n:.1f}%), {totals['FP']} FP, "
          f"{totals['FN']} FN, {totals['reason differs']} rejected for a different reason; "
          f"slowest object {max(seconds.values()):.2f} s ({max(seconds, key=seconds.get)}), "
          f"all {sum(seconds.values()):.1f} s")
    if args.v:
        print("\n".join(lines))
    if args.update_disagreements:
        header = [ln for ln in judge.DISAGREEMENTS.read_text().splitlines() if ln.startswith("#")]
        body = [f"{k}  {v}" for k, v in sorted(current.items())]
        judge.DISAGREEMENTS.write_text("\n".join(header + body) + "\n")
        print(f"{judge.DISAGREEMENTS}: {len(body)} disagreements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
