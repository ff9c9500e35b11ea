"""Protocol behaviour of the server, against the scripted fake analyzer (see fake_analyzer.py):
sync, debounce, cancellation, versions, the two diagnostic sources, push and pull, hovers,
code actions, settings, progress, toolchain messages and isolation of failures."""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness.py, fake_analyzer.py

from harness import session, until  # noqa: E402

pytestmark = pytest.mark.asyncio

LEAK_TEXT = """\
int prog(void *ctx)
{
\tstruct elem *e = new();
\t/* é😀 */ return 0; LEAK(e)
}
"""


def codes(diagnostics) -> list[str]:
    return sorted(str(d.code) for d in diagnostics)


def stamps(diagnostics) -> list[str]:
    return [d.message.removeprefix("stamp ") for d in diagnostics if d.code == "stamp"]


async def test_capabilities_advertised(tmp_path):
    async with session(tmp_path) as s:
        caps = s.initialize_result.capabilities
        assert s.initialize_result.server_info.name == "bpf-lsp"
        sync = caps.text_document_sync
        assert sync.change == types.TextDocumentSyncKind.Incremental and sync.open_close
        assert caps.hover_provider
        assert list(caps.code_action_provider.code_action_kinds) == [types.CodeActionKind.QuickFix]
        assert caps.diagnostic_provider.identifier == "bpf-lsp"
        assert caps.position_encoding == types.PositionEncodingKind.Utf16


async def test_push_diagnostic_fields(tmp_path):
    async with session(tmp_path) as s:
        uri = s.open("leak.bpf.c", LEAK_TEXT)
        params = await s.wait_published(uri, lambda p: any(d.code == "reference-leak" for d in p.diagnostics))
        assert params.version == 1
        (diag,) = [d for d in params.diagnostics if d.code == "reference-leak"]
        line = LEAK_TEXT.split("\n")[3]
        start = len(line[: line.index("LEAK")].encode("utf-16-le")) // 2   # 😀 is two UTF-16 units
        assert diag.range == types.Range(start=types.Position(line=3, character=start),
                                         end=types.Position(line=3, character=start + len("LEAK(e)")))
        assert diag.severity == types.DiagnosticSeverity.Error
        assert diag.source == "bpf-lsp"
        assert diag.message == "'e' is never released on this path"
        assert diag.code_description.href == "https://example.invalid/docs/reference-leak"
        (related,) = diag.related_information
        assert related.location.uri == uri
        assert related.location.range.start == types.Position(line=0, character=0)
        assert related.message == "'e' acquired here"
        assert diag.data["kernel_message"] == "Unreleased reference id=2 alloc_insn=3"
        (fix,) = diag.data["fixes"]
        assert fix["edits"] == [{"range": {"start": {"line": 3, "character": 0}, "end": {"line": 3, "character": 0}},
                                 "newText": "\tbpf_obj_drop(e);\n"}]


async def test_code_action_built_from_data_without_reanalysis(tmp_path):
    async with session(tmp_path) as s:
        uri = s.open("leak.bpf.c", LEAK_TEXT)
        params = await s.wait_published(uri, lambda p: any(d.code == "reference-leak" for d in p.diagnostics))
        compiles = len(s.fake_log("compile"))
        actions = await s.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=params.diagnostics[0].range,
            context=types.CodeActionContext(diagnostics=list(params.diagnostics),
                                            trigger_kind=types.CodeActionTriggerKind.Invoked)))
        (action,) = actions
        assert action.kind == types.CodeActionKind.QuickFix
        assert action.is_preferred
        assert action.title == "Release 'e' with bpf_obj_drop() before this point"
        assert [d.code for d in action.diagnostics] == ["reference-leak"]
        (edit,) = action.edit.changes[uri]
        assert edit.new_text == "\tbpf_obj_drop(e);\n"
        assert edit.range.start == types.Position(line=3, character=0)
        assert len(s.fake_log("compile")) == compiles

        # `only` without quickfix, foreign diagnostics and malformed data: nothing, no error.
        empty = await s.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=params.diagnostics[0].range,
            context=types.CodeActionContext(diagnostics=list(params.diagnostics),
                                            only=[types.CodeActionKind.Refactor])))
        assert not empty
        junk = [types.Diagnostic(range=params.diagnostics[0].range, message="x", data=data)
                for data in (None, "text", {"fixes": "no"}, {"fixes": [{"title": "t"}]}, {"fixes": [{"edits": 3}]})]
        assert await s.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri="file:///nowhere.c"), range=junk[0].range,
            context=types.CodeActionContext(diagnostics=junk))) in ([], (), None)
        assert not s.messages(types.MessageType.Error)


async def test_compiler_diagnostics_published_before_verifier(tmp_path):
    text = "int x; CWARN\nint y; LEAK(e) VSLEEP(0.6)\n"
    async with session(tmp_path) as s:
        uri = s.open("two.bpf.c", text)
        first = await s.wait_published(uri)
        assert codes(first.diagnostics) == ["clang"]
        assert first.diagnostics[0].source == "clang"
        assert first.diagnostics[0].severity == types.DiagnosticSeverity.Warning
        final = await s.wait_published(uri, lambda p: len(p.diagnostics) == 2)
        assert codes(final.diagnostics) == ["clang", "reference-leak"]
        assert [p.version for p in s.client.publishes_for(uri)] == [1, 1]


async def test_new_compile_replaces_only_the_compiler_part(tmp_path):
    async with session(tmp_path, init_options={"debounceMs": 0}) as s:
        uri = s.open("two.bpf.c", "LEAK(e)\n")
        await s.wait_published(uri, lambda p: codes(p.diagnostics) == ["reference-leak"])
        s.replace_all(uri, 2, "CWARN\nLEAK(e) VSLEEP(0.6)\nSTAMP(2)\n")
        # While verify of v2 runs, v2's compiler result is shown with v1's verifier result.
        mixed = await s.wait_published(uri, lambda p: p.version == 2)
        assert codes(mixed.diagnostics) == ["clang", "reference-leak"]
        assert stamps(mixed.diagnostics) == []
        final = await s.wait_published(uri, lambda p: p.version == 2 and stamps(p.diagnostics) == ["2"])
        assert codes(final.diagnostics) == ["clang", "reference-leak", "stamp"]


async def test_failed_compile_clears_verifier_part(tmp_path):
    async with session(tmp_path, init_options={"debounceMs": 0}) as s:
        uri = s.open("cerr.bpf.c", "LEAK(e)\n")
        await s.wait_published(uri, lambda p: codes(p.diagnostics) == ["reference-leak"])
        s.replace_all(uri, 2, "LEAK(e) CERR\n")
        final = await s.wait_published(uri, lambda p: p.version == 2)
        assert codes(final.diagnostics) == ["clang"]
        assert final.diagnostics[0].severity == types.DiagnosticSeverity.Error
        await asyncio.sleep(0.3)
        assert s.client.publishes_for(uri)[-1] is final, "nothing may follow the failed compile's publish"


async def test_hundred_rapid_changes_publish_only_the_final_version(tmp_path):
    async with session(tmp_path) as s:   # default debounce, 150 ms
        uri = s.open("rapid.bpf.c", "STAMP(0)\n")
        await s.wait_published(uri, lambda p: stamps(p.diagnostics) == ["0"])
        opened = len(s.client.publishes_for(uri))
        await asyncio.sleep(0.3)           # a pause, so the first edit starts at once and is superseded
        for n in range(1, 101):
            s.edit(uri, n + 1, 0, 6, 6 + len(str(n - 1)), str(n))
        final = await s.wait_published(uri, lambda p: p.version == 101 and stamps(p.diagnostics) == ["100"])
        await asyncio.sleep(0.5)
        later = s.client.publishes_for(uri)[opened:]
        assert {p.version for p in later} == {101}
        # The compile of v101 is shown with the verifier part still from v1 ("0"); nothing
        # computed for versions 2..100 is ever shown.
        assert all(stamps(p.diagnostics) in (["0"], ["100"]) for p in later)
        assert later[-1] is final
        compiled = [r["stamps"] for r in s.fake_log("compile")]
        assert compiled[0] == ["0"] and compiled[-1] == ["100"]
        assert len(compiled) <= 4, f"debounce should collapse the burst, compiled {compiled}"


async def test_debounce_and_lone_edit_after_pause(tmp_path):
    async with session(tmp_path, init_options={"bpfLsp": {"debounceMs": 600}}) as s:
        uri = s.open("debounce.bpf.c", "STAMP(a)\n")
        await s.wait_published(uri, lambda p: stamps(p.diagnostics) == ["a"])
        await asyncio.sleep(0.8)

        sent = time.monotonic()             # a lone edit after a pause: starts right away
        s.replace_all(uri, 2, "STAMP(b)\n")
        await s.wait_published(uri, lambda p: p.version == 2 and stamps(p.diagnostics) == ["b"])
        assert time.monotonic() - sent < 0.45

        await asyncio.sleep(0.8)
        s.replace_all(uri, 3, "STAMP(c)\n")  # starts at once, then is superseded
        await asyncio.sleep(0.01)
        s.replace_all(uri, 4, "STAMP(d)\n")  # typed within the window: debounced
        await asyncio.sleep(0.05)
        sent = time.monotonic()
        s.replace_all(uri, 5, "STAMP(e)\n")
        await s.wait_published(uri, lambda p: p.version == 5 and stamps(p.diagnostics) == ["e"])
        assert time.monotonic() - sent >= 0.55
        compiled = [r["stamps"] for r in s.fake_log("compile")]
        assert ["d"] not in compiled
        assert compiled[-1] == ["e"]
        assert {p.version for p in s.client.publishes_for(uri)} == {1, 2, 5}


async def test_pull_diagnostics(tmp_path):
    async with session(tmp_path, pull=True, init_options={"debounceMs": 200}) as s:
        uri = s.open("pull.bpf.c", "LEAK(e) VSLEEP(0.3)\nSTAMP(1)\n")
        report = await s.client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        assert report.kind == "full"
        assert codes(report.items) == ["reference-leak", "stamp"]
        assert report.items[0].data["fixes"]

        # A pull right after a change waits for that version's analysis (debounce included).
        s.replace_all(uri, 2, "CWARN\nSTAMP(2)\n")
        s.replace_all(uri, 3, "CWARN\nSTAMP(3)\n")
        report = await s.client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        assert codes(report.items) == ["clang", "stamp"]
        assert stamps(report.items) == ["3"]

        unknown = await s.client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=s.uri("closed.c"))))
        assert not unknown.items
        await asyncio.sleep(0.2)
        assert s.client.published == [], "a pull client gets no pushes"


async def test_did_close_clears_diagnostics(tmp_path):
    async with session(tmp_path) as s:
        uri = s.open("close.bpf.c", "LEAK(e)\n")
        await s.wait_published(uri, lambda p: p.diagnostics)
        s.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        await s.wait_published(uri, lambda p: not p.diagnostics and p is s.client.publishes_for(uri)[-1])
        hover = await s.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=1)))
        assert hover is None


async def test_hover(tmp_path):
    async with session(tmp_path) as s:
        uri = s.open("hover.bpf.c", LEAK_TEXT)
        await s.wait_published(uri, lambda p: any(d.code == "reference-leak" for d in p.diagnostics))

        def at(line, character, target=uri):
            return s.client.text_document_hover_async(types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=target),
                position=types.Position(line=line, character=character)))

        line = LEAK_TEXT.split("\n")[3]
        utf16 = len(line[: line.index("LEAK")].encode("utf-16-le")) // 2
        hover = await at(3, utf16)
        assert hover.contents.kind == types.MarkupKind.Markdown
        byte_col = len(line[: line.index("LEAK")].encode()) + 1
        assert hover.contents.value == f"**fake hover** at 4:{byte_col}"
        assert await at(999, 0) is None
        assert await at(3, 500) is None
        assert await at(0, 0, target=s.uri("unknown.bpf.c")) is None
        assert not s.messages(types.MessageType.Error)


async def test_analyzer_exceptions_do_not_kill_the_server(tmp_path):
    async with session(tmp_path, init_options={"debounceMs": 0}) as s:
        uri = s.open("boom.bpf.c", "BOOM\n")
        await until(lambda: s.messages(types.MessageType.Error), what="an error message")
        assert "fake compile exploded" in s.messages(types.MessageType.Error)[0]
        assert any("Traceback" in m and "fake compile exploded" in m for m in s.logs(types.MessageType.Error))

        s.replace_all(uri, 2, "LEAK(e)\n")
        await s.wait_published(uri, lambda p: p.version == 2 and codes(p.diagnostics) == ["reference-leak"])

        s.replace_all(uri, 3, "VBOOM\n")
        await until(lambda: any("fake verify exploded" in m for m in s.messages(types.MessageType.Error)))
        s.replace_all(uri, 4, "STAMP(4) HOVERBOOM\n")
        await s.wait_published(uri, lambda p: p.version == 4 and stamps(p.diagnostics) == ["4"])
        hover = await s.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=0)))
        assert hover is None
        await until(lambda: any("fake hover exploded" in m for m in s.messages(types.MessageType.Error)))

        # The same failure again: logged, but no second popup.
        errors = len(s.messages(types.MessageType.Error))
        s.replace_all(uri, 5, "BOOM\n")
        await until(lambda: len([m for m in s.logs(types.MessageType.Error) if "fake compile exploded" in m]) == 2)
        assert len(s.messages(types.MessageType.Error)) == errors

        s.replace_all(uri, 6, "STAMP(6)\n")
        await s.wait_published(uri, lambda p: p.version == 6 and stamps(p.diagnostics) == ["6"])


async def test_initialization_options(tmp_path):
    options = {"bpfLsp": {"includeDirs": ["/opt/include"], "debounceMs": 75, "bogus": 1, "extraFlags": "-DX"}}
    async with session(tmp_path, init_options=options) as s:
        uri = s.open("init.bpf.c", "STAMP(1)\n")
        await s.wait_published(uri, lambda p: stamps(p.diagnostics) == ["1"])
        (init,) = s.fake_log("init")
        assert init["settings"]["includeDirs"] == ["/opt/include"]
        assert init["settings"]["debounceMs"] == 75
        assert init["build_pch_synchronously"] is False
        warnings = s.messages(types.MessageType.Warning)
        assert any("'bogus'" in m for m in warnings)
        assert any("extraFlags" in m for m in warnings)


async def test_did_change_configuration(tmp_path):
    async with session(tmp_path) as s:
        uri = s.open("config.bpf.c", "STAMP(1)\n")
        await s.wait_published(uri, lambda p: stamps(p.diagnostics) == ["1"])
        compiles = len(s.fake_log("compile"))

        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"bpfLsp": {"includeDirs": ["/new"]}, "editor": {"tabSize": 8}}))
        await until(lambda: s.fake_log("update_settings"), what="update_settings")
        assert s.fake_log("update_settings")[-1]["settings"]["includeDirs"] == ["/new"]
        await until(lambda: len(s.fake_log("compile")) > compiles, what="re-analysis after a settings change")

        # Flat settings, with a bad value: reported, the good one applied.
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"debounceMs": -3, "compilerPath": "/usr/bin/clang-19"}))
        await until(lambda: any("debounceMs" in m for m in s.messages(types.MessageType.Warning)))
        await until(lambda: s.fake_log("update_settings")[-1]["settings"]["compilerPath"] == "/usr/bin/clang-19")

        # `settings: null`: the server asks for its section with workspace/configuration.
        s.client.set_configuration({"verifierBudget": 1234}, section="bpfLsp")
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await until(lambda: s.fake_log("update_settings")[-1]["settings"]["verifierBudget"] == 1234)

        # Unchanged settings: no re-analysis.
        await asyncio.sleep(0.3)
        compiles = len(s.fake_log("compile"))
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"bpfLsp": {"verifierBudget": 1234}}))
        await asyncio.sleep(0.3)
        assert len(s.fake_log("compile")) == compiles


async def test_progress_around_first_slow_build(tmp_path):
    async with session(tmp_path, init_options={"debounceMs": 0}) as s:
        uri = s.open("slow.bpf.c", "SLEEP(1.0) STAMP(1)\n")
        await s.wait_published(uri, lambda p: stamps(p.diagnostics) == ["1"])
        await until(lambda: s.client.progress_reports and
                    any(isinstance(r, types.WorkDoneProgressEnd) for r in next(iter(s.client.progress_reports.values()))),
                    what="progress end")
        (reports,) = s.client.progress_reports.values()
        assert [type(r) for r in reports] == [types.WorkDoneProgressBegin, types.WorkDoneProgressEnd]
        assert reports[0].title == "bpf-lsp"

        s.replace_all(uri, 2, "SLEEP(1.0) STAMP(2)\n")   # slow again, but no longer the first build
        await s.wait_published(uri, lambda p: stamps(p.diagnostics) == ["2"])
        assert len(s.client.progress_reports) == 1

        fast = s.open("fast.bpf.c", "STAMP(f)\n")     # a fast first build: no progress bar
        await s.wait_published(fast, lambda p: stamps(p.diagnostics) == ["f"])
        await asyncio.sleep(0.4)
        assert len(s.client.progress_reports) == 1


async def test_toolchain_problems_shown_once_per_cause(tmp_path):
    async with session(tmp_path, init_options={"debounceMs": 0}) as s:
        uri = s.open("hdr.bpf.c", '#include "vmlinux.h" MISSING(vmlinux.h)\n')
        await s.wait_published(uri)
        await until(lambda: s.messages(types.MessageType.Warning), what="a warning")
        (message,) = s.messages(types.MessageType.Warning)
        assert "vmlinux.h" in message and "bpftool" in message and "includeDirs" in message

        s.replace_all(uri, 2, '#include "vmlinux.h" MISSING(vmlinux.h) STAMP(2)\n')
        await s.wait_published(uri, lambda p: p.version == 2)
        s.replace_all(uri, 3, "#include <bpf/bpf_helpers.h> MISSING(bpf/bpf_helpers.h)\n")
        await s.wait_published(uri, lambda p: p.version == 3)
        s.replace_all(uri, 4, "NOCC\n")
        await s.wait_published(uri, lambda p: p.version == 4)
        await asyncio.sleep(0.1)
        warnings = s.messages(types.MessageType.Warning)
        assert len(warnings) == 3, warnings
        assert "libbpf-dev" in warnings[1]
        assert "clang" in warnings[2] and "compilerPath" in warnings[2]


async def test_reuse_is_logged(tmp_path):
    async with session(tmp_path, init_options={"debounceMs": 0}) as s:
        uri = s.open("reuse.bpf.c", "STAMP(1)\n")
        await s.wait_published(uri, lambda p: p.version == 1 and stamps(p.diagnostics) == ["1"])
        s.replace_all(uri, 2, "STAMP(2)\n")
        await s.wait_published(uri, lambda p: p.version == 2 and stamps(p.diagnostics) == ["2"])
        s.replace_all(uri, 3, "STAMP(1)\n")
        await s.wait_published(uri, lambda p: p.version == 3 and stamps(p.diagnostics) == ["1"])
        logs = await until(lambda: [m for m in s.logs(types.MessageType.Log) if "reuse.bpf.c v3" in m])
        assert "reused 1 cached verification(s): prog" in logs[0]
        assert any("reuse.bpf.c v1" in m and "reused 0" in m for m in s.logs(types.MessageType.Log))


async def test_save_reanalyses_and_reopen(tmp_path):
    async with session(tmp_path, init_options={"debounceMs": 0}) as s:
        uri = s.open("save.bpf.c", "STAMP(1)\n")
        await s.wait_published(uri, lambda p: stamps(p.diagnostics) == ["1"])
        compiles = len(s.fake_log("compile"))
        s.client.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        await until(lambda: len(s.fake_log("compile")) > compiles)
        # Notifications for documents that are not open are ignored quietly.
        s.replace_all(s.uri("never-opened.c"), 7, "CERR\n")
        s.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=s.uri("never-opened.c"))))
        await asyncio.sleep(0.2)
        assert not s.client.publishes_for(s.uri("never-opened.c"))
        assert not s.messages(types.MessageType.Error)


async def test_pull_client_asked_to_refresh_when_an_answer_goes_stale(tmp_path):
    async with session(tmp_path, pull=True, init_options={"debounceMs": 0}) as s:
        uri = s.open("refresh.bpf.c", "FLAGS\n")
        pull = types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
        report = await s.client.text_document_diagnostic_async(pull)
        assert [d.message for d in report.items] == ["flags"]
        assert s.client.diagnostic_refresh_count == 0

        # New settings change the results of the same text: the client is told to pull again.
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"bpfLsp": {"extraFlags": ["-DX"]}}))
        await until(lambda: s.client.diagnostic_refresh_count == 1, what="workspace/diagnostic/refresh")
        report = await s.client.text_document_diagnostic_async(pull)
        assert [d.message for d in report.items] == ["flags -DX"]

        # Same settings again: same results, no refresh.
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"bpfLsp": {"extraFlags": ["-DX"], "verifierBudget": 5}}))
        await until(lambda: s.fake_log("update_settings") and
                    s.fake_log("update_settings")[-1]["settings"]["verifierBudget"] == 5)
        await asyncio.sleep(0.3)
        assert s.client.diagnostic_refresh_count == 1
