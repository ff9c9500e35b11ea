"""bpf_lsp.diagnostics.lsp: model (1-based, UTF-8 byte columns) <-> LSP (0-based, UTF-16 by default)."""
from __future__ import annotations

from lsprotocol import types

from bpf_lsp.diagnostics import lsp
from bpf_lsp.diagnostics.model import Fix, Related, SourceDiagnostic, Span, TextEdit

LINE = "\tx = \"é😀\"; y;"      # é: 2 bytes/1 unit, 😀: 4 bytes/2 UTF-16 units/1 code point
Y_BYTES = len(LINE[: LINE.index("y")].encode())


def pos(line, character):
    return types.Position(line=line, character=character)


def test_byte_columns_to_each_encoding():
    y = LINE.index("y")
    assert lsp.byte_column_to_units(LINE, Y_BYTES, lsp.UTF16) == y + 1   # the emoji counts twice
    assert lsp.byte_column_to_units(LINE, Y_BYTES, lsp.UTF8) == Y_BYTES
    assert lsp.byte_column_to_units(LINE, Y_BYTES, lsp.UTF32) == y
    assert lsp.byte_column_to_units(LINE, 10_000) == len(LINE) + 1           # clamped to the end
    inside_emoji = len(LINE[: LINE.index("😀")].encode()) + 2
    assert lsp.byte_column_to_units(LINE, inside_emoji) == LINE.index("😀")  # snaps to its start


def test_positions_round_trip():
    lines = ["int a;", LINE]
    p = lsp.to_position(lines, 2, Y_BYTES + 1)
    assert p == pos(1, LINE.index("y") + 1)
    assert lsp.from_position(lines, p) == (2, Y_BYTES + 1)
    assert lsp.from_position(lines, lsp.to_position(lines, 2, Y_BYTES + 1, lsp.UTF8), lsp.UTF8) == (2, Y_BYTES + 1)


def test_out_of_range_positions():
    lines = ["int a;", ""]
    assert lsp.from_position(lines, pos(5, 0)) is None
    assert lsp.from_position(lines, pos(0, 7)) is None
    assert lsp.from_position(lines, pos(0, 6)) == (1, 7)      # end of line is a position
    assert lsp.to_position(lines, 40, 3) == pos(1, 0)          # past the text: its end
    assert lsp.to_position([], 1, 1) == pos(0, 0)


def test_ranges():
    lines = ["int f(void)", "{", "\treturn 0;", "}"]
    assert lsp.to_range(Span("f.c", 3, 2, 3, 11), lines) == types.Range(start=pos(2, 1), end=pos(2, 10))
    # Unknown column: the line's text, not column 0.
    assert lsp.to_range(Span("f.c", 3, 0, 3, 0), lines) == types.Range(start=pos(2, 1), end=pos(2, 10))
    # Missing or inverted end: an empty range at the start.
    assert lsp.to_range(Span("f.c", 3, 2, 0, 0), lines) == types.Range(start=pos(2, 1), end=pos(2, 1))
    assert lsp.split_lines("a\r\nb\n") == ["a", "b", ""]


def _diag(**kw):
    base = dict(code="reference-leak", severity="error", message="'e' leaks",
                span=Span("/src/p.bpf.c", 2, 2, 2, 11), kernel_message="Unreleased reference id=2",
                related=(Related(Span("/src/p.bpf.c", 1, 1, 1, 4), "acquired here"),),
                fixes=(Fix("Drop it", (TextEdit(Span("/src/p.bpf.c", 2, 1, 2, 1), "\tbpf_obj_drop(e);\n"),)),),
                doc_url="https://example.invalid/reference-leak")
    base.update(kw)
    return SourceDiagnostic(**base)


def test_diagnostic_conversion():
    conv = lsp.Converter("/src/p.bpf.c", ["int f() { e = new();", "\treturn 0;"])
    d = conv.diagnostic(_diag())
    assert d.range == types.Range(start=pos(1, 1), end=pos(1, 10))
    assert d.severity == types.DiagnosticSeverity.Error
    assert (d.code, d.source, d.message) == ("reference-leak", "bpf-lsp", "'e' leaks")
    assert d.code_description.href == "https://example.invalid/reference-leak"
    assert d.related_information[0].location.uri == "file:///src/p.bpf.c"
    assert d.related_information[0].location.range == types.Range(start=pos(0, 0), end=pos(0, 3))
    assert d.data == {"kernel_message": "Unreleased reference id=2", "fixes": [
        {"title": "Drop it", "edits": [{"range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
                                        "newText": "\tbpf_obj_drop(e);\n"}]}]}
    plain = conv.diagnostic(_diag(doc_url="", related=(), fixes=(), severity="warning", source="clang", code="clang"))
    assert plain.code_description is None and plain.related_information is None
    assert plain.severity == types.DiagnosticSeverity.Warning and plain.source == "clang"


def test_diagnostic_in_a_header_lands_on_its_include():
    conv = lsp.Converter("/src/p.bpf.c", ["#include <stdio.h>", '#include "own.h"', "int x;"],
                         lines_of=lambda path: ["struct a {", "  int b c;", "};"])
    d = conv.diagnostic(_diag(span=Span("/inc/own.h", 2, 9, 2, 10), message="expected ';'", fixes=(), related=()))
    assert d.range.start.line == 1
    assert d.message == "In included file own.h:2: expected ';'"
    assert d.related_information[0].location.uri == "file:///inc/own.h"
    assert d.related_information[0].location.range.start == pos(1, 8)


def test_code_actions_from_data():
    conv = lsp.Converter("/src/p.bpf.c", ["int f() { e = new();", "\treturn 0;"])
    d = conv.diagnostic(_diag(fixes=(Fix("first", (TextEdit(Span("/src/p.bpf.c", 2, 1, 2, 1), "a"),)),
                                     Fix("second", (TextEdit(Span("/src/p.bpf.c", 2, 1, 2, 1), "b"),)),
                                     Fix("elsewhere", (TextEdit(Span("/other.h", 1, 1, 1, 1), "c"),)))))
    actions = lsp.code_actions("file:///src/p.bpf.c", [d])
    assert [(a.title, a.is_preferred, a.kind) for a in actions] == [
        ("first", True, types.CodeActionKind.QuickFix), ("second", False, types.CodeActionKind.QuickFix)]
    assert actions[0].edit.changes["file:///src/p.bpf.c"][0].new_text == "a"
    junk = types.Diagnostic(range=d.range, message="m", data={"fixes": [{"title": 1, "edits": [{"range": "x"}]}]})
    assert lsp.code_actions("file:///x", [junk]) == []
