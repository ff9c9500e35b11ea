"""Source-level results (`model.py`) to and from LSP's types.

The model counts 1-based lines and 1-based columns in UTF-8 bytes (as clang and BTF line
info do); LSP counts 0-based lines and columns in the negotiated position encoding, UTF-16
unless the client offered another. Converting needs the text of the line, so every function
here takes the lines of the document the positions refer to. No analysis logic: the server
calls these and nothing else to shape what it sends.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path

from ..text import split_lines
from ..text import utf8
from .model import Fix, Span, SourceDiagnostic

UTF8 = types.PositionEncodingKind.Utf8
UTF16 = types.PositionEncodingKind.Utf16
UTF32 = types.PositionEncodingKind.Utf32

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "fatal": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "note": types.DiagnosticSeverity.Information,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}

LinesOf = Callable[[str], Sequence[str] | None]


def code_units(text: str, encoding: str = UTF16) -> int:
    """How many code units of `encoding` (an LSP position encoding) `text` takes."""
    if encoding == UTF8:
        return len(utf8(text))
    if encoding == UTF32:
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def byte_column_to_units(line: str, byte_col0: int, encoding: str = UTF16) -> int:
    """0-based byte offset in `line` -> 0-based offset in `encoding`'s code units (clamped)."""
    raw = utf8(line)
    byte_col0 = max(0, min(byte_col0, len(raw)))
    # back off to a character boundary: a column inside a character snaps to its start
    while byte_col0 > 0 and byte_col0 < len(raw) and (raw[byte_col0] & 0xC0) == 0x80:
        byte_col0 -= 1
    return code_units(raw[:byte_col0].decode("utf-8", "surrogatepass"), encoding)


def units_to_byte_column(line: str, unit_col0: int, encoding: str = UTF16) -> int | None:
    """0-based code-unit offset -> 0-based byte offset; None when past the end of the line."""
    if unit_col0 < 0:
        return None
    units = 0
    for index, char in enumerate(line):
        if units >= unit_col0:
            return len(utf8(line[:index]))
        units += code_units(char, encoding)
    return len(utf8(line)) if units >= unit_col0 else None


def to_position(lines: Sequence[str], line1: int, byte_col1: int, encoding: str = UTF16) -> types.Position:
    """1-based line and byte column -> LSP Position; positions past the text clamp to its end."""
    if not lines:
        return types.Position(line=0, character=0)
    index = line1 - 1
    if index >= len(lines):
        return types.Position(line=len(lines) - 1, character=code_units(lines[-1], encoding))
    index = max(index, 0)
    return types.Position(line=index, character=byte_column_to_units(lines[index], byte_col1 - 1, encoding))


def to_range(span: Span, lines: Sequence[str], encoding: str = UTF16) -> types.Range:
    """A span -> LSP Range. An unknown column (<= 0) covers the line's text, so the squiggle
    lands somewhere visible instead of on column 0."""
    if span.column <= 0 and 0 < span.line <= len(lines):
        text = lines[span.line - 1]
        indent = len(text) - len(text.lstrip())
        start = types.Position(line=span.line - 1, character=code_units(text[:indent], encoding))
        return types.Range(start=start, end=types.Position(line=span.line - 1, character=code_units(text, encoding)))
    start = to_position(lines, span.line, span.column, encoding)
    if span.end_line <= 0 or (span.end_line, span.end_column) < (span.line, span.column):
        return types.Range(start=start, end=start)
    return types.Range(start=start, end=to_position(lines, span.end_line, span.end_column, encoding))


def from_position(lines: Sequence[str], position: types.Position, encoding: str = UTF16) -> tuple[int, int] | None:
    """LSP Position -> (1-based line, 1-based byte column); None when outside the text."""
    if position.line < 0 or position.line >= len(lines):
        return None
    byte_col0 = units_to_byte_column(lines[position.line], position.character, encoding)
    return None if byte_col0 is None else (position.line + 1, byte_col0 + 1)


def _same_file(a: str, b: str) -> bool:
    if not a or not b:
        return not a  # a span without a file belongs to the document it came with
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def _lines_from_disk(path: str) -> Sequence[str] | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return split_lines(handle.read())
    except OSError:
        return None


class Converter:
    """Converts the results of one analysis of one document.

    `lines` is the analysed text; spans in other files (headers, related locations) are
    converted with that file's text read from disk, or byte-for-character when unreadable.
    """

    def __init__(self, path: str, lines: Sequence[str], encoding: str = UTF16,
                 lines_of: LinesOf = _lines_from_disk):
        self.path = path
        self.lines = lines
        self.encoding = encoding
        self._lines_of = lines_of
        self._other: dict[str, Sequence[str]] = {}

    def _lines_for(self, file: str) -> Sequence[str]:
        if _same_file(file, self.path):
            return self.lines
        if file not in self._other:
            self._other[file] = self._lines_of(file) or []
        return self._other[file]

    def range(self, span: Span) -> types.Range:
        lines = self._lines_for(span.file)
        if not lines:  # unreadable file: assume one byte per code unit rather than drop it
            return types.Range(start=types.Position(line=max(span.line - 1, 0), character=max(span.column - 1, 0)),
                               end=types.Position(line=max(span.end_line - 1, 0), character=max(span.end_column - 1, 0)))
        return to_range(span, lines, self.encoding)

    def location(self, span: Span) -> types.Location:
        return types.Location(uri=from_fs_path(span.file or self.path) or "", range=self.range(span))

    def fix(self, fix: Fix) -> dict[str, Any]:
        """A fix as JSON for Diagnostic.data: code actions are built from it without re-analysis."""
        edits = [{"range": _range_json(self.range(edit.span)), "newText": edit.new_text}
                 for edit in fix.edits if _same_file(edit.span.file, self.path)]
        return {"title": fix.title, "edits": edits}

    def diagnostic(self, diag: SourceDiagnostic) -> types.Diagnostic:
        message, range_, related = diag.message, None, [
            types.DiagnosticRelatedInformation(location=self.location(r.span), message=r.message)
            for r in diag.related]
        if not _same_file(diag.span.file, self.path):
            # A problem inside an included header: show it on the #include that brings the header
            # in (as clangd does) and point at the real place with relatedInformation.
            range_ = self._include_line_range(diag.span.file)
            message = f"In included file {os.path.basename(diag.span.file)}:{diag.span.line}: {message}"
            related.insert(0, types.DiagnosticRelatedInformation(location=self.location(diag.span),
                                                                 message=diag.message))
        fixes = [f for f in (self.fix(fix) for fix in diag.fixes) if f["edits"]]
        return types.Diagnostic(
            range=range_ or self.range(diag.span),
            severity=_SEVERITY.get(diag.severity, types.DiagnosticSeverity.Error),
            code=diag.code or None,
            code_description=types.CodeDescription(href=diag.doc_url) if diag.doc_url else None,
            source=diag.source or "bpf-lsp",
            message=message,
            related_information=related or None,
            data={"kernel_message": diag.kernel_message, "fixes": fixes},
        )

    def _include_line_range(self, header: str) -> types.Range:
        name = os.path.basename(header)
        for index, text in enumerate(self.lines):
            stripped = text.lstrip()
            if stripped.startswith("#") and "include" in stripped and name in stripped:
                return to_range(Span(self.path, index + 1, 0, index + 1, 0), self.lines, self.encoding)
        return types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))

    def diagnostics(self, diags: Iterable[SourceDiagnostic]) -> list[types.Diagnostic]:
        return [self.diagnostic(d) for d in diags]


def _range_json(range_: types.Range) -> dict[str, Any]:
    return {"start": {"line": range_.start.line, "character": range_.start.character},
            "end": {"line": range_.end.line, "character": range_.end.character}}


def _range_from_json(raw: Any) -> types.Range:
    start, end = raw["start"], raw["end"]
    return types.Range(start=types.Position(line=int(start["line"]), character=int(start["character"])),
                       end=types.Position(line=int(end["line"]), character=int(end["character"])))


def fixes_of(diagnostic: types.Diagnostic) -> list[tuple[str, list[types.TextEdit]]]:
    """The (title, edits) our diagnostics carry in `data`; [] for anything else (other
    servers' diagnostics, a client that dropped `data`, malformed payloads)."""
    data = diagnostic.data
    if not isinstance(data, dict) or not isinstance(data.get("fixes"), list):
        return []
    found = []
    for raw in data["fixes"]:
        try:
            edits = [types.TextEdit(range=_range_from_json(e["range"]), new_text=str(e["newText"]))
                     for e in raw["edits"]]
            title = str(raw["title"])
        except (KeyError, TypeError, ValueError):
            continue
        if edits:
            found.append((title, edits))
    return found


def code_actions(uri: str, diagnostics: Iterable[types.Diagnostic]) -> list[types.CodeAction]:
    """One quick fix per fix carried by each diagnostic; the first of a diagnostic is preferred
    so "auto fix" picks it."""
    actions = []
    for diagnostic in diagnostics:
        for index, (title, edits) in enumerate(fixes_of(diagnostic)):
            actions.append(types.CodeAction(
                title=title,
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                is_preferred=index == 0,
                edit=types.WorkspaceEdit(changes={uri: edits}),
            ))
    return actions
