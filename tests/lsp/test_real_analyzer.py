"""End to end against the real Analyzer: corpus files opened in a VS Code-like client, the
diagnostics, quick fixes and hovers that come back.

EXPECTED is the one place that knows what the analysis says about each file; adjust it there
when codes, lines or wording change. Lines are 1-based as in the source file.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from lsprotocol import types

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness.py, fake_analyzer.py

from harness import root, session  # noqa: E402

@dataclass(frozen=True)
class Expect:
    code: str | None                      # None: the file must get no error at all
    line: int = 0                         # where the diagnostic is
    related_lines: tuple[int, ...] = ()   # relatedInformation locations, in order
    message_has: tuple[str, ...] = ()     # substrings of the message
    fix_line: int = 0                     # line the first quick fix inserts before (0: no fix)
    fix_text: str = ""                    # what it inserts
    hover: tuple[int, str, str] | None = None   # (line, text to hover on, substring of the markdown)


EXPECTED: dict[str, Expect] = {
    "obj_leak": Expect(
        code="reference-leak", line=12, related_lines=(7,), message_has=("'e'", "bpf_obj_new()"),
        fix_line=12, fix_text="\tbpf_obj_drop(e);\n"),
    "list_use_after_unlock": Expect(
        code="non-owning-after-unlock", line=21, message_has=("'e'", "bpf_spin_unlock"),
        related_lines=(20, 18), hover=(21, "e->data = 2", "struct elem *")),
    "obj_drop_ok": Expect(code=None),
    "list_push_ok": Expect(code=None),
}


def _real_analyzer_available() -> str:
    try:
        from bpf_lsp.analysis import Analyzer
        Analyzer()
    except NotImplementedError:
        return "the real Analyzer has not landed yet"
    except Exception as exc:  # pragma: no cover - reported as the skip reason
        return f"Analyzer() fails: {exc}"
    return ""


pytestmark = [pytest.mark.asyncio,
              pytest.mark.skipif(bool(_real_analyzer_available()), reason=_real_analyzer_available() or "ok")]


def init_options() -> dict:
    return {"bpfLsp": {"includeDirs": root.corpus_include_dirs()}}


def case_path(name: str) -> Path:
    return root.CORPUS_CASES / f"{name}.bpf.c"


def line_of(path: Path, needle: str) -> tuple[int, int]:
    for index, line in enumerate(path.read_text().split("\n")):
        if needle in line:
            return index, line.index(needle)
    raise AssertionError(f"{needle!r} not in {path}")


def check(expect: Expect, diagnostics, uri: str) -> types.Diagnostic | None:
    errors = [d for d in diagnostics if d.severity == types.DiagnosticSeverity.Error]
    if expect.code is None:
        assert errors == [], [d.message for d in errors]
        return None
    found = [d for d in diagnostics if d.code == expect.code]
    assert found, f"no {expect.code} among {[(d.code, d.range.start.line + 1, d.message) for d in diagnostics]}"
    diag = found[0]
    assert diag.range.start.line + 1 == expect.line
    assert diag.source == "bpf-lsp"
    assert diag.code_description and diag.code_description.href.startswith("http")
    for part in expect.message_has:
        assert part in diag.message, diag.message
    if expect.related_lines:
        assert [r.location.range.start.line + 1 for r in diag.related_information] == list(expect.related_lines)
        assert all(r.location.uri == uri for r in diag.related_information)
    assert isinstance(diag.data, dict) and diag.data.get("kernel_message")
    if expect.fix_line:
        fix = diag.data["fixes"][0]
        assert fix["edits"][0]["range"]["start"] == {"line": expect.fix_line - 1, "character": 0}
        assert fix["edits"][0]["newText"] == expect.fix_text
    return diag


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_corpus_file_push(tmp_path, name):
    async with session(tmp_path, fake=False, init_options=init_options()) as s:
        uri = s.open(case_path(name))
        await s.wait_analysed(uri, 1)
        final = s.client.publishes_for(uri)[-1]
        assert final.version == 1
        check(EXPECTED[name], final.diagnostics, uri)
        if EXPECTED[name].hover:
            line, needle, markdown = EXPECTED[name].hover
            index, column = line_of(case_path(name), needle)
            assert index + 1 == line
            hover = await s.client.text_document_hover_async(types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=index, character=column)))
            assert hover is not None and markdown in hover.contents.value
        assert not s.messages(types.MessageType.Error)


async def test_corpus_file_pull(tmp_path):
    async with session(tmp_path, fake=False, pull=True, init_options=init_options()) as s:
        uri = s.open(case_path("obj_leak"))
        report = await s.client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        check(EXPECTED["obj_leak"], report.items, uri)
        assert s.client.published == []


async def test_quick_fix_applied_removes_the_leak(tmp_path):
    source = case_path("obj_leak")
    async with session(tmp_path, fake=False, init_options=init_options()) as s:
        uri = s.open(source)
        await s.wait_analysed(uri, 1)
        diag = check(EXPECTED["obj_leak"], s.client.publishes_for(uri)[-1].diagnostics, uri)
        actions = await s.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag], trigger_kind=types.CodeActionTriggerKind.Invoked)))
        action = next(a for a in actions if a.kind == types.CodeActionKind.QuickFix)
        (edit,) = action.edit.changes[uri]
        # Apply it the way VS Code does: an incremental change with the edit's range.
        s.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(range=edit.range, text=edit.new_text)]))
        await s.wait_analysed(uri, 2)
        final = s.client.publishes_for(uri)[-1]
        assert final.version == 2
        assert [d for d in final.diagnostics if d.severity == types.DiagnosticSeverity.Error] == []


async def test_typing_a_leak_then_fixing_it(tmp_path):
    """Edits as a user makes them: delete the bpf_obj_drop of a correct program, then retype it."""
    source = case_path("obj_drop_ok")
    text = source.read_text()
    index, column = line_of(source, "bpf_obj_drop(")
    line = text.split("\n")[index]
    async with session(tmp_path, fake=False, init_options={**init_options()["bpfLsp"], "debounceMs": 50}) as s:
        uri = s.open(source)
        await s.wait_analysed(uri, 1)
        assert not [d for d in s.client.publishes_for(uri)[-1].diagnostics if d.severity == 1]
        s.edit(uri, 2, index, 0, len(line), "")
        await s.wait_analysed(uri, 2)
        leak = [d for d in s.client.publishes_for(uri)[-1].diagnostics if d.code == "reference-leak"]
        assert leak, s.client.publishes_for(uri)[-1].diagnostics
        s.edit(uri, 3, index, 0, 0, line)
        await s.wait_analysed(uri, 3)
        assert not [d for d in s.client.publishes_for(uri)[-1].diagnostics if d.severity == 1]
        reuse = [m for m in s.logs() if m.startswith("obj_drop_ok.bpf.c v3: ")]
        assert "reused 1" in reuse[0], reuse


async def test_missing_header_is_explained_once(tmp_path):
    source = tmp_path / "needs_header.bpf.c"
    source.write_text('#include "no_such_header_for_bpf_lsp.h"\nint x;\n')
    async with session(tmp_path, fake=False) as s:
        uri = s.open(source)
        await s.wait_analysed(uri, 1)
        (diag,) = [d for d in s.client.publishes_for(uri)[-1].diagnostics
                   if d.severity == types.DiagnosticSeverity.Error]
        assert diag.source == "clang" and diag.range.start.line == 0
        assert "no_such_header_for_bpf_lsp.h" in diag.message
        s.edit(uri, 2, 1, 0, 0, "int y;\n")
        await s.wait_analysed(uri, 2)
        (warning,) = s.messages(types.MessageType.Warning)
        assert "no_such_header_for_bpf_lsp.h" in warning and "includeDirs" in warning
