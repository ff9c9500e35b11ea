"""bpf-lsp's language server: a thin protocol shell around `bpf_lsp.analysis.Analyzer`.

What lives here is scheduling and protocol, never analysis:

* Documents sync incrementally. Each open/change/save (re)schedules one analysis task per
  document: debounced by the ``debounceMs`` setting, except a lone edit after a pause, which
  starts at once (waiting only pays off while the user keeps typing). A newer version cancels
  the task of the older one, and nothing computed for an older version is ever published:
  the version is re-checked after every worker-thread step.
* An analysis is two steps in worker threads, ``Analyzer.compile`` then ``Analyzer.verify``.
  Each document keeps its compiler and verifier diagnostics apart; whatever is published is
  their union, so compiler errors show as soon as clang is done and the verifier's once it
  is. A failed compile clears the verifier part (there is no object to verify).
* Diagnostics are pushed (``textDocument/publishDiagnostics``) unless the client declares pull
  support (``textDocument.diagnostic``); then ``textDocument/diagnostic`` answers with the
  results for the current version, waiting a bounded time for an analysis in flight.
* Every handler is guarded: an exception is logged with its traceback, the client gets an
  empty result and one short error message, and the server keeps running.

Testing hook: when the environment variable ``BPF_LSP_TEST_ANALYZER`` is set to
``module:callable``, that callable replaces `Analyzer` (same keyword arguments: settings,
cache_dir, build_pch_synchronously). It exists only so the protocol tests in ``tests/lsp`` can
drive the server with a scripted fake; nothing else should set it.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import itertools
import logging
import math
import os
import re
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams, JsonRpcMethodNotFound
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from .diagnostics import lsp as convert
from .settings import Settings

log = logging.getLogger("bpf_lsp.server")

ANALYZER_ENV = "BPF_LSP_TEST_ANALYZER"
SETTINGS_SECTION = "bpfLsp"
PULL_WAIT_SECONDS = 10.0        # how long textDocument/diagnostic waits for an analysis in flight
PROGRESS_AFTER_SECONDS = 0.3    # a first build slower than this gets a $/progress bar
WORKERS = max(2, min(4, os.cpu_count() or 1))


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("bpf-lsp")
    except Exception:  # running from a source tree without metadata
        return "0.0.0"


@dataclass
class Document:
    """What the server remembers about one open document."""
    uri: str
    path: str
    compiler: list[types.Diagnostic] = field(default_factory=list)
    verifier: list[types.Diagnostic] = field(default_factory=list)
    analysis: Any = None                   # latest complete Analysis, for hovers
    task: asyncio.Task | None = None       # the scheduled/in-flight analysis
    last_edit: float = -math.inf           # monotonic time of the last (re)schedule
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # results for the current version are complete
    built_once: bool = False               # the first build (maybe a slow PCH build) is done
    last_pull_answer: list[types.Diagnostic] | None = None

    @property
    def diagnostics(self) -> list[types.Diagnostic]:
        return [*self.compiler, *self.verifier]


def guarded(default: Callable[[], Any] = lambda: None):
    """Wrap a handler: any exception is reported (see `report_exception`) and the client gets
    `default()`, so one bad request never takes the server or the editor session down."""
    def wrap(method):
        if asyncio.iscoroutinefunction(method):
            @functools.wraps(method)
            async def run_async(self, *args):
                try:
                    return await method(self, *args)
                except asyncio.CancelledError:
                    raise  # a cancelled request or superseded analysis: not an error
                except Exception as exc:
                    self.report_exception(method.__name__, exc)
                    return default()
            return run_async

        @functools.wraps(method)
        def run(self, *args):
            try:
                return method(self, *args)
            except Exception as exc:
                self.report_exception(method.__name__, exc)
                return default()
        return run
    return wrap


def _empty_report() -> types.RelatedFullDocumentDiagnosticReport:
    return types.RelatedFullDocumentDiagnosticReport(items=[])


# "no C compiler with the BPF target was found" (frontend.compile), "no compiler found", ...
_NO_COMPILER = re.compile(r"\bno\b.{0,20}\b(?:compiler|clang)\b|\b(?:compiler|clang)\b.{0,30}\bnot found\b")


def toolchain_hints(diagnostics) -> list[tuple[str, str]]:
    """(cause, advice) for compiler diagnostics that mean the machine lacks a compiler or a
    header rather than that the code is wrong; the advice says what to install or configure."""
    hints = []
    for diag in diagnostics:
        text = diag.message.lower()
        if "file not found" in text and diag.message.count("'") >= 2:   # clang: 'foo.h' file not found
            header = diag.message.split("'")[1]
            hints.append((f"header:{header}", _header_advice(header)))
        elif _NO_COMPILER.search(text):
            hints.append(("compiler", "bpf-lsp found no clang with the BPF target: install clang "
                          "(apt-get install -y clang), or pip install ziglang, or set bpfLsp.compilerPath."))
    return hints


def _header_advice(header: str) -> str:
    if header.endswith("vmlinux.h"):
        how = ("generate it with `bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h` "
               "(apt-get install -y bpftool) and add its directory to bpfLsp.includeDirs")
    elif header.startswith("bpf/"):
        how = "install libbpf's headers (apt-get install -y libbpf-dev) or add their directory to bpfLsp.includeDirs"
    else:
        how = "add its directory to bpfLsp.includeDirs, or set bpfLsp.compileCommandsDir to a compile_commands.json"
    return f"bpf-lsp: header '{header}' was not found: {how}."


def _factory_from_env() -> Callable[..., Any] | None:
    spec = os.environ.get(ANALYZER_ENV, "")
    if not spec:
        return None
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "Analyzer")


def _default_factory(**kwargs):
    # Imported late so a broken analysis stack is reported through the protocol, not as a crash.
    from .analysis import Analyzer
    return Analyzer(**kwargs)


class _Unanswerable:
    """Stands for a request pygls could not structure; it has been answered with an error."""
    jsonrpc = None


class _Protocol(LanguageServerProtocol):
    """pygls' protocol, except that:
    - a change to a document that is not open is dropped with a log line instead of a KeyError
      popup (clients do send them, e.g. after a failed didOpen);
    - a request whose params do not fit the LSP schema, or a request for an unknown method
      without params, gets a JSON-RPC error response (pygls 2.1 logs it and never answers,
      leaving the client waiting forever)."""

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except (JsonRpcInvalidParams, JsonRpcInternalError):
            if not (isinstance(data, dict) and "id" in data and "method" in data and "result" not in data):
                raise
            known = self.get_message_type(data["method"]) is not None or data["method"] in self.fm.features
            error = JsonRpcInvalidParams() if known else JsonRpcMethodNotFound(message=f"Method Not Found: {data['method']}")
            self._send_response(data["id"], error=error.to_response_error())
            return _Unanswerable()

    def handle_message(self, message):
        if isinstance(message, _Unanswerable):
            return
        if not hasattr(message, "jsonrpc"):
            # valid JSON that is not a JSON-RPC object (a list, a string, a number): nothing to answer
            log.warning("ignoring a message that is not a JSON-RPC object: %.200r", message)
            return
        return super().handle_message(message)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        if unquote(params.text_document.uri) not in self.workspace.text_documents:
            log.warning("didChange for a document that is not open: %s", params.text_document.uri)
            return
        yield from super().lsp_text_document__did_change(params)


class BpfLanguageServer(LanguageServer):
    def __init__(self, analyzer_factory: Callable[..., Any] | None = None):
        super().__init__("bpf-lsp", _version(), text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         protocol_cls=_Protocol)
        self.settings = Settings()
        self.analyzer_factory = analyzer_factory or _factory_from_env() or _default_factory
        self._analyzer = None
        self._analyzer_settings: Settings | None = None   # what the analyzer was last given
        self._analyzer_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="bpf-lsp-analysis")
        self.documents: dict[str, Document] = {}
        self.pull = False
        self._told: set[str] = set()            # messages already shown: each cause once
        self._progress_ids = itertools.count(1)

    # ----------------------------------------------------------------- plumbing

    def report_exception(self, where: str, exc: BaseException) -> None:
        detail = "".join(traceback.format_exception(exc))
        log.error("%s failed:\n%s", where, detail)
        self.log_to_client(f"{where} failed:\n{detail}", types.MessageType.Error)
        self.tell(f"bpf-lsp: {where} failed: {type(exc).__name__}: {exc} (details in the log)",
                  types.MessageType.Error, cause=f"{where}:{type(exc).__name__}:{exc}")

    def log_to_client(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        try:
            self.window_log_message(types.LogMessageParams(type=kind, message=message))
        except Exception:  # no writer yet, or the client is gone: the server log has it
            log.debug("could not send log message", exc_info=True)

    def tell(self, message: str, kind: types.MessageType, cause: str | None = None) -> None:
        """window/showMessage, at most once per cause: a popup per keystroke helps nobody."""
        cause = cause or message
        if cause in self._told:
            return
        self._told.add(cause)
        try:
            self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        except Exception:
            log.debug("could not show message", exc_info=True)

    def supports(self, dotted: str) -> bool:
        return bool(get_capability(self.client_capabilities, dotted, None))

    @property
    def encoding(self) -> str:
        return self.workspace.position_encoding or convert.UTF16

    async def in_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def analyzer(self):
        """The one Analyzer (its caches are the point of a long-lived server), made on first use
        in a worker thread: construction may probe compilers."""
        with self._analyzer_lock:
            settings = self.settings
            if self._analyzer is None:
                self._analyzer = self.analyzer_factory(settings=settings, cache_dir=None,
                                                       build_pch_synchronously=False)
            elif self._analyzer_settings != settings:
                # Settings are handed over here, in the worker and under the lock, so a change
                # that lands while the analyzer is being built is not lost.
                self._analyzer.update_settings(settings)
            self._analyzer_settings = settings
            return self._analyzer

    def text_of(self, uri: str) -> tuple[str, int | None]:
        doc = self.workspace.get_text_document(uri)
        return doc.source, doc.version

    def doc(self, uri: str) -> Document | None:
        # Keyed like pygls' workspace (unquoted), so differently escaped spellings of a URI agree.
        return self.documents.get(unquote(uri))

    def is_current(self, doc: Document, version: int | None) -> bool:
        return self.doc(doc.uri) is doc and self.workspace.get_text_document(doc.uri).version == version

    # ----------------------------------------------------------------- lifecycle and settings

    @guarded()
    def on_initialize(self, params: types.InitializeParams) -> None:
        # Pull when the client can: it then decides when it wants diagnostics (VS Code 1.7x+).
        self.pull = get_capability(params.capabilities, "text_document.diagnostic", None) is not None
        self.apply_settings(params.initialization_options, "initializationOptions")

    @guarded()
    def on_initialized(self, params: types.InitializedParams) -> None:
        mode = "pull" if self.pull else "push"
        self.log_to_client(f"bpf-lsp {self.version} ready ({mode} diagnostics, {self.encoding}); settings: {self.settings}")

    @guarded()
    async def on_did_change_configuration(self, params: types.DidChangeConfigurationParams) -> None:
        raw = params.settings
        if not raw and self.supports("workspace.configuration"):
            # `settings: null` is the pull-configuration style: ask for our section.
            answer = await self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SETTINGS_SECTION)]))
            raw = answer[0] if answer else None
        if self.apply_settings(raw, "workspace/didChangeConfiguration"):
            # The analyzer gets the new settings (update_settings) before its next compile.
            for doc in list(self.documents.values()):
                self.schedule(doc, immediate=True)

    def apply_settings(self, raw: Any, origin: str) -> bool:
        """Apply a client's settings object; report problems; True when anything changed."""
        settings, problems = self.settings.updated(raw)
        for problem in problems:
            self.tell(f"bpf-lsp: ignored a setting from {origin}: {problem}", types.MessageType.Warning)
        changed = settings != self.settings
        self.settings = settings
        if changed:
            self.log_to_client(f"settings from {origin}: {settings}")
        return changed

    @guarded()
    def on_shutdown(self, params: None) -> None:
        for doc in self.documents.values():
            if doc.task:
                doc.task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ----------------------------------------------------------------- document sync

    @guarded()
    def on_did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        old = self.doc(uri)
        if old and old.task:
            old.task.cancel()
        doc = Document(uri=uri, path=self.workspace.get_text_document(uri).path)
        self.documents[unquote(uri)] = doc
        self.schedule(doc, immediate=True)

    @guarded()
    def on_did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        # pygls has already applied the edits to the workspace copy before calling us.
        doc = self.doc(params.text_document.uri)
        if doc is not None:
            self.schedule(doc)

    @guarded()
    def on_did_save(self, params: types.DidSaveTextDocumentParams) -> None:
        # Headers on disk may have changed with the save: analyse again without waiting.
        doc = self.doc(params.text_document.uri)
        if doc is not None:
            self.schedule(doc, immediate=True)

    @guarded()
    def on_did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        doc = self.documents.pop(unquote(params.text_document.uri), None)
        if doc is None:
            return
        if doc.task:
            doc.task.cancel()
        doc.settled.set()  # release pull requests waiting on it; they answer empty
        if not self.pull:
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=doc.uri, diagnostics=[]))

    def schedule(self, doc: Document, immediate: bool = False) -> None:
        now = time.monotonic()
        debounce = self.settings.debounceMs / 1000
        delay = 0.0 if immediate or now - doc.last_edit >= debounce else debounce
        doc.last_edit = now
        doc.settled.clear()
        if doc.task and not doc.task.done():
            doc.task.cancel()  # superseded: its worker step may finish, its result is dropped
        doc.task = asyncio.get_running_loop().create_task(self.analyze(doc, delay))

    # ----------------------------------------------------------------- analysis

    async def analyze(self, doc: Document, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        # Text and version are read together, after the debounce: whatever the workspace holds now.
        text, version = self.text_of(doc.uri)
        try:
            async with self.first_build_progress(doc):
                await self.run_analysis(doc, text, version)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.report_exception("analysis", exc)
        if self.is_current(doc, version):
            doc.settled.set()

    async def run_analysis(self, doc: Document, text: str, version: int | None) -> None:
        analyzer = await self.in_worker(self.analyzer)
        stage = await self.in_worker(analyzer.compile, text, doc.path)
        if not self.is_current(doc, version):
            return
        doc.built_once = True
        converter = convert.Converter(doc.path, convert.split_lines(text), self.encoding)
        doc.compiler = converter.diagnostics(stage.compiler_diagnostics)
        for cause, advice in toolchain_hints(stage.compiler_diagnostics):
            self.tell(advice, types.MessageType.Warning, cause=cause)
        if stage.object_bytes is None:
            doc.verifier = []  # nothing was built, so nothing was verified
            self.publish(doc, version, final=True)
            # Logged after publishing, so a client that sees this line already has the results.
            self.log_to_client(f"{os.path.basename(doc.path)} v{version}: compile failed in {stage.seconds:.3f}s "
                               f"({len(stage.compiler_diagnostics)} compiler diagnostic(s)), nothing to verify")
            return
        self.publish(doc, version, final=False)
        analysis = await self.in_worker(analyzer.verify, stage)
        if not self.is_current(doc, version):
            return
        doc.verifier = converter.diagnostics(analysis.verifier_diagnostics)
        doc.analysis = analysis
        self.publish(doc, version, final=True)
        self.log_analysis(doc, version, stage, analysis)  # after publishing: see above

    def log_analysis(self, doc: Document, version, stage, analysis) -> None:
        reused = [p.name for p in analysis.programs if getattr(p, "reused", False)]
        pch = " with the preamble PCH" if stage.used_pch else ""
        line = (f"{os.path.basename(doc.path)} v{version}: compiled in {stage.seconds:.3f}s{pch}; "
                f"{len(analysis.programs)} program(s), reused {len(reused)} cached verification(s)")
        if reused:
            line += f": {', '.join(reused)}"
        log.info("%s", line)
        self.log_to_client(line)

    def publish(self, doc: Document, version: int | None, final: bool) -> None:
        if not self.pull:
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=doc.uri, version=version, diagnostics=doc.diagnostics))
        elif final and doc.last_pull_answer is not None and doc.last_pull_answer != doc.diagnostics \
                and self.supports("workspace.diagnostics.refresh_support"):
            # The client already holds an answer that is now out of date (a pull that timed out,
            # or a re-analysis after a settings change): ask it to pull again.
            self.workspace_diagnostic_refresh(None)

    def first_build_progress(self, doc: Document) -> "_FirstBuildProgress":
        return _FirstBuildProgress(self, doc)

    # ----------------------------------------------------------------- requests

    @guarded(_empty_report)
    async def on_diagnostic(self, params: types.DocumentDiagnosticParams):
        doc = self.doc(params.text_document.uri)
        if doc is None:
            return _empty_report()
        if not doc.settled.is_set():
            try:
                await asyncio.wait_for(doc.settled.wait(), PULL_WAIT_SECONDS)
            except TimeoutError:
                pass  # answer with what exists; `publish` sends a refresh when the rest lands
        if self.doc(doc.uri) is not doc:
            return _empty_report()
        doc.last_pull_answer = doc.diagnostics
        return types.RelatedFullDocumentDiagnosticReport(items=doc.diagnostics)

    @guarded()
    async def on_hover(self, params: types.HoverParams) -> types.Hover | None:
        doc = self.doc(params.text_document.uri)
        if doc is None or doc.analysis is None:
            return None
        text, _ = self.text_of(doc.uri)
        where = convert.from_position(convert.split_lines(text), params.position, self.encoding)
        if where is None:
            return None
        markdown = await self.in_worker(doc.analysis.hover, *where)
        if not markdown:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=markdown))

    @guarded(list)
    def on_code_action(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        only = params.context.only
        if only and not any(types.CodeActionKind.QuickFix.value.startswith(kind) for kind in only):
            return []
        return convert.code_actions(params.text_document.uri, params.context.diagnostics)


class _FirstBuildProgress:
    """$/progress around a document's first build, but only once it has proved slow
    (PROGRESS_AFTER_SECONDS): a bar that flashes for 50 ms is noise."""

    def __init__(self, server: BpfLanguageServer, doc: Document):
        self.server = server
        self.doc = doc
        self.token = ""
        self.begun = False
        self.starter: asyncio.Task | None = None
        self.starter_created = False     # the window/workDoneProgress/create request was sent

    async def __aenter__(self):
        if not self.doc.built_once and self.server.supports("window.work_done_progress"):
            self.starter = asyncio.get_running_loop().create_task(self._begin_later())
        return self

    async def _begin_later(self) -> None:
        await asyncio.sleep(PROGRESS_AFTER_SECONDS)
        progress = self.server.work_done_progress
        token = f"bpf-lsp/build/{next(self.server._progress_ids)}"
        self.starter_created = True
        try:
            await progress.create_async(token)
        except Exception:  # the client refused the token: no progress bar, nothing else changes
            log.debug("window/workDoneProgress/create failed", exc_info=True)
            return
        progress.begin(token, types.WorkDoneProgressBegin(
            title="bpf-lsp", message=f"first build of {os.path.basename(self.doc.path)} (compiling the preamble)"))
        self.token, self.begun = token, True

    async def __aexit__(self, *exc_info):
        if self.starter is not None and not self.starter.done():
            if self.starter_created:
                # the create request is in flight: cancelling its future would make the client's
                # answer land on a cancelled future (a pygls error popup); let it finish instead
                try:
                    await asyncio.wait_for(asyncio.shield(self.starter), 5)
                except Exception:  # noqa: BLE001 - no answer: no progress bar, nothing else changes
                    pass
            else:
                self.starter.cancel()
        if self.begun:
            self.server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message="done"))
        return False


def create_server(analyzer_factory: Callable[..., Any] | None = None) -> BpfLanguageServer:
    server = BpfLanguageServer(analyzer_factory)
    handlers = [
        (types.INITIALIZE, "on_initialize", None),
        (types.INITIALIZED, "on_initialized", None),
        (types.SHUTDOWN, "on_shutdown", None),
        (types.WORKSPACE_DID_CHANGE_CONFIGURATION, "on_did_change_configuration", None),
        (types.TEXT_DOCUMENT_DID_OPEN, "on_did_open", None),
        (types.TEXT_DOCUMENT_DID_CHANGE, "on_did_change", None),
        (types.TEXT_DOCUMENT_DID_SAVE, "on_did_save", None),
        (types.TEXT_DOCUMENT_DID_CLOSE, "on_did_close", None),
        (types.TEXT_DOCUMENT_HOVER, "on_hover", None),
        (types.TEXT_DOCUMENT_CODE_ACTION, "on_code_action",
         types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix])),
        (types.TEXT_DOCUMENT_DIAGNOSTIC, "on_diagnostic",
         types.DiagnosticOptions(identifier="bpf-lsp", inter_file_dependencies=False, workspace_diagnostics=False)),
    ]
    for method, name, options in handlers:
        server.feature(method, options)(_bind(server, name))
    return server


def _bind(server: BpfLanguageServer, name: str):
    """A plain function calling `server.<name>`: pygls tags handlers with attributes, which
    bound methods do not accept."""
    method = getattr(server, name)
    if asyncio.iscoroutinefunction(method):
        async def handler(params):
            return await method(params)
    else:
        def handler(params):
            return method(params)
    handler.__name__ = name
    return handler


def serve(argv: list[str] | None = None) -> int:
    """Run the language server on stdin/stdout until the client says exit."""
    parser = argparse.ArgumentParser(prog="bpf-lsp serve", description="Run the bpf-lsp language server on stdio.")
    parser.add_argument("--log-file", help="write the server's log (with tracebacks) to this file")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--stdio", action="store_true", help="accepted for clients that pass it; stdio is the only transport")
    args = parser.parse_args(argv)
    handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    # stderr is the client's log pane: keep pygls' per-message chatter out of it.
    root.setLevel(args.log_level if args.log_file else logging.WARNING)
    create_server().start_io()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
