"""A scripted stand-in for `bpf_lsp.analysis.Analyzer`, for the server's protocol tests.

The server loads it through BPF_LSP_TEST_ANALYZER=fake_analyzer:FakeAnalyzer (with this
directory on PYTHONPATH). Its behaviour is written in the document itself, one directive per
line, so a test says what should happen by what it types:

    CERR            compiler error on this line; no object (so no verification)
    CWARN           compiler warning on this line; the object is still built
    MISSING(x.h)    clang's fatal "'x.h' file not found" here; no object
    NOCC            "no compiler found" (the frontend's message when there is no clang)
    LEAK(v)         verifier error "reference-leak" on the LEAK token, related to line 1,
                    with a fix inserting `bpf_obj_drop(v);` before this line
    STAMP(s)        verifier hint whose message is "stamp s" (lets a test tell versions apart)
    FLAGS           verifier hint "flags <extraFlags>": results that depend on the settings
    BOOM / VBOOM    compile / verify raises
    SLEEP(s)        compile takes s seconds; VSLEEP(s): verify does
    HOVERBOOM       hover raises

Columns are computed in UTF-8 bytes like the real frontend's. Every call is appended as a
JSON line to the file named by FAKE_ANALYZER_LOG (when set) so tests can see what ran.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import asdict, is_dataclass

from bpf_lsp.analysis import Analysis, CompileStage
from bpf_lsp.diagnostics.model import Fix, ProgramReport, Related, SourceDiagnostic, Span, TextEdit

DIRECTIVE = re.compile(r"\b(CERR|CWARN|NOCC|BOOM|VBOOM|HOVERBOOM|FLAGS|(MISSING|LEAK|STAMP|SLEEP|VSLEEP)\(([^)]*)\))")
_log_lock = threading.Lock()


def record(event: str, **fields) -> None:
    path = os.environ.get("FAKE_ANALYZER_LOG")
    if not path:
        return
    with _log_lock, open(path, "a") as out:
        out.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")


def directives(text: str):
    """(name, argument, 1-based line, 1-based byte column, byte length) of each directive."""
    for index, line in enumerate(text.split("\n")):
        for m in DIRECTIVE.finditer(line):
            name = m.group(2) or m.group(1)
            column = len(line[: m.start()].encode()) + 1
            yield name, m.group(3) or "", index + 1, column, len(m.group(0).encode()), line


def _settings_json(settings):
    return asdict(settings) if is_dataclass(settings) else repr(settings)


class FakeAnalysis(Analysis):
    def __init__(self, *args, text: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.text = text

    def hover(self, line: int, column: int) -> str | None:
        lines = self.text.split("\n")
        if "HOVERBOOM" in self.text:
            raise RuntimeError("fake hover exploded")
        if not 1 <= line <= len(lines) or not 1 <= column <= len(lines[line - 1].encode()) + 1:
            return None
        return f"**fake hover** at {line}:{column}"


class FakeAnalyzer:
    def __init__(self, settings=None, cache_dir=None, build_pch_synchronously: bool = False):
        self.settings = settings
        self._verified: set[str] = set()
        self._lock = threading.Lock()
        record("init", settings=_settings_json(settings), cache_dir=cache_dir,
               build_pch_synchronously=build_pch_synchronously)

    def update_settings(self, settings) -> None:
        self.settings = settings
        record("update_settings", settings=_settings_json(settings))

    def compile(self, text: str, path: str) -> CompileStage:
        record("compile", path=path, sha=_sha(text), stamps=_stamps(text))
        diags, built = [], True
        for name, arg, line, col, length, _ in directives(text):
            span = Span(path, line, col, line, col + length)
            if name == "SLEEP":
                time.sleep(float(arg))
            elif name == "BOOM":
                raise RuntimeError("fake compile exploded")
            elif name == "CERR":
                diags.append(SourceDiagnostic("clang", "error", "expected ';' after expression", span, source="clang"))
                built = False
            elif name == "CWARN":
                diags.append(SourceDiagnostic("clang", "warning", "unused variable 'x'", span, source="clang"))
            elif name == "MISSING":
                diags.append(SourceDiagnostic("clang", "error", f"'{arg}' file not found", span, source="clang"))
                built = False
            elif name == "NOCC":
                diags.append(SourceDiagnostic("no-compiler", "error",
                                              "no compiler found: install clang or set compilerPath", span,
                                              source="bpf-lsp"))
                built = False
        time.sleep(0.02)
        return CompileStage(path, text, diags, b"\x7fELF" if built else None, used_pch=True, seconds=0.02)

    def verify(self, stage: CompileStage) -> Analysis:
        sha = _sha(stage.text)
        record("verify", sha=sha, stamps=_stamps(stage.text))
        diags = []
        for name, arg, line, col, length, text in directives(stage.text):
            span = Span(stage.path, line, col, line, col + length)
            if name == "VSLEEP":
                time.sleep(float(arg))
            elif name == "VBOOM":
                raise RuntimeError("fake verify exploded")
            elif name == "LEAK":
                indent = text[: len(text) - len(text.lstrip())]
                fix = Fix(f"Release '{arg}' with bpf_obj_drop() before this point",
                          (TextEdit(Span(stage.path, line, 1, line, 1), f"{indent}bpf_obj_drop({arg});\n"),),
                          "reference-leak")
                diags.append(SourceDiagnostic(
                    "reference-leak", "error", f"'{arg}' is never released on this path", span,
                    kernel_message="Unreleased reference id=2 alloc_insn=3", program="prog",
                    related=(Related(Span(stage.path, 1, 1, 1, 2), f"'{arg}' acquired here"),),
                    fixes=(fix,), doc_url="https://example.invalid/docs/reference-leak"))
            elif name == "STAMP":
                diags.append(SourceDiagnostic("stamp", "hint", f"stamp {arg}", span))
            elif name == "FLAGS":
                flags = " ".join(getattr(self.settings, "extraFlags", ()) or ())
                diags.append(SourceDiagnostic("flags", "hint", f"flags {flags}".strip(), span))
        time.sleep(0.02)
        with self._lock:
            reused = sha in self._verified
            self._verified.add(sha)
        report = ProgramReport("prog", "tc", "reject" if diags else "accept", diags, reused=reused)
        return FakeAnalysis(stage.path, stage.compiler_diagnostics, [report], text=stage.text)

    def analyze(self, text: str, path: str) -> Analysis:
        return self.verify(self.compile(text, path))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _stamps(text: str) -> list[str]:
    return [arg for name, arg, *_ in directives(text) if name == "STAMP"]
