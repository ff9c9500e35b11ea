"""Source-level results: what every front end (LSP server, `check`, tests) shows a user.

Positions are 1-based lines and 1-based columns counted in UTF-8 bytes as clang and BTF line
info count them; `end_column` is exclusive. The server converts to LSP's 0-based UTF-16.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    file: str
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class TextEdit:
    span: Span
    new_text: str


@dataclass(frozen=True)
class Fix:
    title: str
    edits: tuple[TextEdit, ...]
    diagnostic_code: str = ""


@dataclass(frozen=True)
class Related:
    span: Span
    message: str


@dataclass(frozen=True)
class SourceDiagnostic:
    code: str                       # registry code, e.g. "reference-leak"; compiler: "clang"
    severity: str                   # "error" | "warning" | "information" | "hint"
    message: str                    # in source terms: variable names and calls, not registers
    span: Span
    source: str = "bpf-lsp"         # "bpf-lsp" for verifier findings, "clang" for the compiler
    kernel_message: str = ""        # what the kernel verifier would print for this
    program: str = ""               # BPF program the finding belongs to
    related: tuple[Related, ...] = ()
    fixes: tuple[Fix, ...] = ()
    doc_url: str = ""


@dataclass
class ProgramReport:
    name: str
    section: str
    verdict: str                    # "accept" | "reject" | "incomplete"
    diagnostics: list[SourceDiagnostic] = field(default_factory=list)
    reused: bool = False            # verification result came from the cache
