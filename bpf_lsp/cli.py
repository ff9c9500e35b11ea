"""Command line: `bpf-lsp [serve] | check | dump | doctor`."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import urllib.parse

from . import __version__
from .codes import CODES


def _settings(args):
    from .settings import Settings
    s = Settings()
    # relative -I directories are meant from here, as CompileOptions reads every includeDirs entry
    raw = {"includeDirs": list(args.include or []), "extraFlags": list(args.clang_arg or [])}
    if getattr(args, "budget", None):
        raw["verifierBudget"] = args.budget
    if getattr(args, "timeout_ms", None) is not None:
        raw["verifierTimeoutMs"] = args.timeout_ms
    if getattr(args, "target_kernel", None):
        raw["targetKernel"] = args.target_kernel
    if getattr(args, "compiler", None):
        raw["compilerPath"] = args.compiler
    s, _ = s.updated(raw)
    return s


def _analyze_paths(args):
    from .analysis import Analyzer
    analyzer = Analyzer(_settings(args), build_pch_synchronously=True)
    out = []
    if getattr(args, "link", False):
        missing = [p for p in args.paths if not os.path.exists(p)]
        if missing:
            return [(p, None, f"{p}: no such file", 0.0) for p in missing]
        start = time.monotonic()
        return [(args.paths[0], analyzer.analyze_linked(args.paths), "", time.monotonic() - start)]
    for path in args.paths:
        if not os.path.exists(path):
            out.append((path, None, f"{path}: no such file", 0.0))
            continue
        if os.path.isdir(path):
            out.append((path, None, f"{path}: is a directory (give its .bpf.c files; -I DIR adds an include "
                                    "directory)", 0.0))
            continue
        start = time.monotonic()
        if path.endswith(".o"):
            analysis = analyzer.analyze_object_file(path)
        else:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError as e:
                out.append((path, None, f"{path}: {e.strerror}", 0.0))
                continue
            analysis = analyzer.analyze(text, path)
        out.append((path, analysis, "", time.monotonic() - start))
    return out


def check_summary(results, out) -> None:
    """Per file: programs, accepted, rejected, incomplete and seconds, then the totals."""
    rows = [("file", "programs", "accepted", "rejected", "incomplete", "seconds")]
    totals = [0, 0, 0, 0, 0.0]
    for path, analysis, problem, seconds in results:
        progs = analysis.programs if analysis else []
        counts = [len(progs)] + [sum(p.verdict == v for p in progs) for v in ("accept", "reject", "incomplete")]
        note = "" if analysis and (analysis.obj or not progs) else " (not compiled)"
        rows.append((os.path.relpath(path) + note, *map(str, counts), f"{seconds:.2f}"))
        totals = [t + c for t, c in zip(totals, counts + [seconds])]
    rows.append(("total", *map(str, totals[:4]), f"{totals[4]:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)), file=out)


def _finding_json(d):
    return {"code": d.code, "severity": d.severity, "message": d.message, "kernel_message": d.kernel_message,
            "line": d.span.line, "column": d.span.column, "end_line": d.span.end_line,
            "end_column": d.span.end_column,
            "related": [{"line": r.span.line, "column": r.span.column, "message": r.message} for r in d.related]}


def _kernel_json(c) -> dict:
    k = c.kernel
    if k is None:
        return {"verdict": "unavailable", "message": c.summary, "line": None, "agrees": None}
    return {"verdict": k.verdict, "message": "\n".join(k.message), "line": k.line, "agrees": c.agrees,
            "stage": k.stage, "errno": k.errno, "note": k.note}


def check_json(results, kernel: dict | None = None) -> dict:
    """`kernel`: from `kernel_cross_check`, adds a "kernel" object to every program."""
    files = []
    for path, analysis, problem, _seconds in results:
        entry = {"path": path, "programs": []}
        checked = (kernel or {}).get(path)
        if analysis is not None:
            if analysis.compiler_diagnostics:
                entry["compiler"] = [_finding_json(d) for d in analysis.compiler_diagnostics]
            for p in analysis.programs:
                entry["programs"].append({"name": p.name, "section": p.section, "verdict": p.verdict,
                                          "findings": [_finding_json(d) for d in p.diagnostics]})
        if isinstance(checked, str):   # the kernel could not be asked: say why on every program
            for prog in entry["programs"]:
                prog["kernel"] = {"verdict": "unavailable", "message": checked, "line": None, "agrees": None}
        elif checked:
            by_name = {prog["name"]: prog for prog in entry["programs"]}
            for c in checked:
                if c.program not in by_name:   # a program libbpf loads but we produced no report for
                    by_name[c.program] = {"name": c.program, "section": c.kernel.section, "verdict": "incomplete",
                                          "findings": []}
                    entry["programs"].append(by_name[c.program])
                by_name[c.program]["kernel"] = _kernel_json(c)
        if problem:
            entry["error"] = problem
        files.append(entry)
    return {"files": files}


def _artifact_uri(path: str) -> str:
    """SARIF wants a URI reference (RFC 3986), not a path: '/'-separated and percent-encoded,
    relative to the working directory (a CI job's checkout root) so code scanning can map it."""
    return urllib.parse.quote(os.path.relpath(path).replace(os.sep, "/"))


def _sarif_region(span) -> dict:
    # SARIF lines/columns are 1-based with an exclusive endColumn, as ours are; only keep the
    # region well-formed (end not before start on the same line, nothing below 1)
    line, column = max(span.line, 1), max(span.column, 1)
    end_line = max(span.end_line, line)
    end_column = max(span.end_column, column) if end_line == line else max(span.end_column, 1)
    return {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column}


def check_sarif(results) -> dict:
    rules, rule_index, sarif_results, notifications = [], {}, [], []

    def rule_id(code: str) -> int:
        if code not in rule_index:
            c = CODES.get(code)
            rule_index[code] = len(rules)
            rule = {"id": code, "name": code}
            if c is not None:
                rule.update({"shortDescription": {"text": c.summary}, "fullDescription": {"text": c.why},
                             "help": {"text": f"{c.summary}\n\nFix: {c.fix}", "markdown": f"{c.summary}\n\n**Fix:** {c.fix}"},
                             "helpUri": c.doc_url,
                             "defaultConfiguration": {"level": {"error": "error", "warning": "warning"}.get(c.severity, "note")}})
            rules.append(rule)
        return rule_index[code]

    for path, analysis, problem, _seconds in results:
        if problem:   # e.g. a missing file: a tool failure, not a finding, but never silently dropped
            notifications.append({"level": "error", "message": {"text": problem},
                                  "locations": [{"physicalLocation": {"artifactLocation": {"uri": _artifact_uri(path)}}}]})
        if analysis is None:
            continue
        for d in analysis.diagnostics:
            level = {"error": "error", "warning": "warning"}.get(d.severity, "note")
            res = {"ruleId": d.code, "ruleIndex": rule_id(d.code), "level": level, "message": {"text": d.message},
                   "locations": [{"physicalLocation": {
                       "artifactLocation": {"uri": _artifact_uri(d.span.file)}, "region": _sarif_region(d.span)}}]}
            if d.related:
                res["relatedLocations"] = [{"id": i, "message": {"text": r.message}, "physicalLocation": {
                    "artifactLocation": {"uri": _artifact_uri(r.span.file)}, "region": _sarif_region(r.span)}}
                    for i, r in enumerate(d.related)]
            if d.kernel_message:
                res["properties"] = {"kernelMessage": d.kernel_message, "program": d.program}
            sarif_results.append(res)
    return {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "bpf-lsp", "version": __version__,
                                          "informationUri": "https://github.com/bpf-lsp/bpf-lsp", "rules": rules}},
                      "invocations": [{"executionSuccessful": not notifications,
                                       "toolExecutionNotifications": notifications}],
                      "results": sarif_results}]}


def check_text(results, out) -> None:
    from .diagnostics.sources import SourceFiles
    files = SourceFiles()
    for path, analysis, problem, _seconds in results:
        if problem:
            print(f"{path}: error: {problem}", file=out)
        if analysis is None:
            continue
        for d in analysis.diagnostics:
            rel = os.path.relpath(d.span.file)
            print(f"{rel}:{d.span.line}:{d.span.column}: {d.severity}: {d.message} [{d.code}]", file=out)
            text = files.line(d.span.file, d.span.line)
            if text and "\0" not in text and not text.startswith("\x7fELF"):   # no excerpt of an object file
                width = max(1, (d.span.end_column - d.span.column) if d.span.end_line == d.span.line else 1)
                prefix = text.encode()[: d.span.column - 1].decode(errors="ignore")
                caret = "".join("\t" if ch == "\t" else " " for ch in prefix) + "^" + "~" * (width - 1)
                print(f"  {text}\n  {caret}", file=out)
            if d.kernel_message:
                print(f"  kernel: {d.kernel_message.splitlines()[0]}", file=out)
            for r in d.related:
                print(f"  {os.path.relpath(r.span.file)}:{r.span.line}:{r.span.column}: note: {r.message}", file=out)
        for p in analysis.programs:
            if not p.diagnostics:
                print(f"{os.path.relpath(path)}: {p.name} ({p.section}): {p.verdict}", file=out)


def kernel_cross_check(results) -> tuple[dict, str | None]:
    """({path: [Comparison] or the reason that file could not be loaded}, reason the kernel cannot be asked at all)."""
    from .kernel_check import KernelUnavailable, cross_check, unavailable_reason
    reason = unavailable_reason()
    out = {}
    for path, analysis, _, _seconds in results:
        if analysis is None or analysis.obj is None:
            continue   # nothing compiled: there is no object to load
        try:
            out[path] = reason or cross_check(analysis)
        except KernelUnavailable as e:
            out[path] = str(e)
    return out, reason


def kernel_text(kernel: dict, reason: str | None, out) -> None:
    """Per program: our verdict, the kernel's, where and why, and whether they agree."""
    if reason:
        print(f"kernel cross-check unavailable: {reason}", file=out)
        return
    print(f"kernel cross-check (Linux {platform.release()}):", file=out)
    for path, checked in kernel.items():
        rel = os.path.relpath(path)
        if isinstance(checked, str):
            print(f"{rel}: kernel cross-check unavailable: {checked}", file=out)
            continue
        for c in checked:
            k = c.kernel
            theirs = "no verdict" if k is None else k.verdict + (f" at line {k.line}" if k.line else "")
            section = f" ({k.section})" if k else ""
            print(f"{rel}: {c.program}{section}: bpf-lsp {c.ours or 'no verdict'}, kernel {theirs}: {c.summary}",
                  file=out)
            for line in (k.message if k else ()):
                print(f"  kernel: {line}", file=out)
            if k and k.note:
                print(f"  note: {k.note}", file=out)


def cmd_check(args) -> int:
    results = _analyze_paths(args)
    # the cross-check only informs: the exit code below stays bpf-lsp's own verdict
    kernel, reason = kernel_cross_check(results) if args.kernel else (None, None)
    if args.format == "json":
        json.dump(check_json(results, kernel), sys.stdout, indent=2)
        print()
    elif args.format == "sarif":
        json.dump(check_sarif(results), sys.stdout, indent=2)
        print()
    else:
        check_text(results, sys.stdout)
    if args.summary:
        check_summary(results, sys.stdout if args.format == "text" else sys.stderr)
    if kernel is not None:
        # keep json/sarif on stdout parseable: the comparison goes to stderr there
        kernel_text(kernel, reason, sys.stdout if args.format == "text" else sys.stderr)
    compile_failed = any(a is None or (a.obj is None and any(d.severity == "error" for d in a.compiler_diagnostics))
                         for _, a, _, _ in results)
    if compile_failed:
        return 2
    # the verdicts come from the verifier's findings (a finding is never lost to rendering)
    errors = any(p.verdict == "reject" for _, a, _, _ in results if a for p in a.programs) or \
        any(d.severity == "error" for _, a, _, _ in results if a for d in a.compiler_diagnostics)
    return 1 if errors else 0


def cmd_dump(args) -> int:
    from .dump import dump
    results = []
    from .analysis import Analyzer
    analyzer = Analyzer(_settings(args), build_pch_synchronously=True)
    for path in args.paths:
        if path.endswith(".o"):
            with open(path, "rb") as f:
                data, texts = f.read(), {}
        else:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            stage = analyzer.compile(text, path)
            for d in stage.compiler_diagnostics:
                print(f"{d.span.file}:{d.span.line}:{d.span.column}: {d.severity}: {d.message}")
            if stage.object_bytes is None:
                return 2
            data, texts = stage.object_bytes, {os.path.abspath(path): text}
        results.append(dump(data, os.path.abspath(path), texts, sys.stdout))
    return 0 if all(results) else 2


def cmd_doctor(args) -> int:
    from .frontend.toolchain import doctor
    print(doctor(_settings(args)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("serve", "--stdio") or argv[0].startswith("--log"):
        from .server import serve
        return serve(argv[1:] if argv and argv[0] == "serve" else argv)
    ap = argparse.ArgumentParser(prog="bpf-lsp", description="Language server and checker for BPF C ownership rules")
    ap.add_argument("--version", action="version", version=f"bpf-lsp {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("-I", dest="include", action="append", metavar="DIR", help="include directory")
        p.add_argument("--clang-arg", action="append", metavar="ARG", help="extra compiler argument")
        p.add_argument("--compiler", metavar="PATH", help="clang to use")

    c = sub.add_parser("check", help="verify files and print findings like a compiler")
    c.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    c.add_argument("--budget", type=int, help="verifier instruction budget per program")
    c.add_argument("--timeout-ms", type=int, help="verifier wall-time budget per program (0: none; default 2000)")
    c.add_argument("--target-kernel", metavar="RELEASE", help="kernel release __kconfig externs are resolved for")
    c.add_argument("--link", action="store_true",
                   help="the sources are the files of one BPF program: compile each, link them with libbpf's "
                        "static linker (bpftool gen object), verify the result")
    c.add_argument("--summary", action="store_true",
                   help="per file: programs, accepted, rejected, incomplete and seconds, then totals")
    c.add_argument("--kernel", action="store_true",
                   help="also load each program into the running kernel (root or CAP_BPF) and show its verdict "
                        "beside ours; informational: the exit code stays bpf-lsp's own")
    common(c)
    c.add_argument("paths", nargs="+", metavar="PATH", help="BPF C sources or .o objects")
    c.set_defaults(func=cmd_check)
    d = sub.add_parser("dump", help="instructions with source lines, relocations and variables")
    common(d)
    d.add_argument("paths", nargs="+", metavar="PATH")
    d.set_defaults(func=cmd_dump)
    doc = sub.add_parser("doctor", help="what bpf-lsp found on this machine and what is missing")
    common(doc)
    doc.set_defaults(func=cmd_doctor)
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
