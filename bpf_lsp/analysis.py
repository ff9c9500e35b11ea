"""The analysis entry points every front end shares: text in, source-level results out.

Pure functions of (text, path, options), with caches keyed by content: the preamble PCH
(in `frontend.preamble`), and per-program verification results keyed by a hash of the
linked instructions, the BTF they use and the semantics table's version.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .diagnostics.model import ProgramReport, SourceDiagnostic


@dataclass
class Analysis:
    path: str
    compiler_diagnostics: list[SourceDiagnostic] = field(default_factory=list)
    programs: list[ProgramReport] = field(default_factory=list)
    error: str = ""                  # a whole-file problem (object unreadable, ...) also in diagnostics

    @property
    def verifier_diagnostics(self) -> list[SourceDiagnostic]:
        return [d for p in self.programs for d in p.diagnostics]

    def hover(self, line: int, column: int) -> str | None:
        """Markdown for the hover at a 1-based line and byte column, or None."""
        raise NotImplementedError  # landed by the lead together with the verifier


@dataclass
class CompileStage:
    """The first, fast half of an analysis: compiler diagnostics are known once this exists."""
    path: str
    text: str
    compiler_diagnostics: list[SourceDiagnostic]
    object_bytes: bytes | None
    used_pch: bool = False
    seconds: float = 0.0


class Analyzer:
    """Holds the caches (PCH, per-program verification) for one process: server or CLI.

    Thread-safe: the server runs `compile`/`verify` in worker threads.
    """

    def __init__(self, settings=None, cache_dir=None, build_pch_synchronously: bool = False):
        raise NotImplementedError  # landed by the lead together with the verifier

    def update_settings(self, settings) -> None: ...

    def compile(self, text: str, path: str) -> CompileStage: ...

    def verify(self, stage: CompileStage) -> Analysis: ...

    def analyze(self, text: str, path: str) -> Analysis:
        return self.verify(self.compile(text, path))
