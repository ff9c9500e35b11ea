"""End-to-end harness (a plain module: both tests/conftest.py and this would be `conftest`): the real server as a subprocess (`python -m bpf_lsp.server`), driven by
pytest-lsp's LanguageClient with VS Code's capabilities.

`session(...)` starts one server; with `fake=True` it runs against tests/lsp/fake_analyzer.py
(injected through BPF_LSP_TEST_ANALYZER) and records the fake's calls in `session.fake_log`.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import default_converter
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # clients.py, fake_analyzer.py

from clients import client_info, vscode_capabilities  # noqa: E402

REPO = HERE.parents[1]
SERVER_COMMAND = [sys.executable, "-m", "bpf_lsp.server"]


def _root_conftest():
    """tests/conftest.py (corpus paths, vmlinux.h), loaded by path: both files are 'conftest'."""
    spec = importlib.util.spec_from_file_location("bpf_lsp_tests_root_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


root = _root_conftest()


class RecordingClient(LanguageClient):
    """pytest-lsp's client, also keeping every publishDiagnostics with its arrival time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.published: list[tuple[float, types.PublishDiagnosticsParams]] = []

    def publishes_for(self, uri: str) -> list[types.PublishDiagnosticsParams]:
        return [p for _, p in self.published if p.uri == uri]


def _record_publish(client: RecordingClient, params: types.PublishDiagnosticsParams):
    client.published.append((time.monotonic(), params))
    client.diagnostics[params.uri] = params.diagnostics


def make_client() -> RecordingClient:
    client = RecordingClient(converter_factory=default_converter)
    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: _record_publish})
    return client


async def until(predicate, timeout: float = 10.0, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Session:
    client: RecordingClient
    workdir: Path
    fake_log_path: Path | None
    initialize_result: types.InitializeResult

    def fake_log(self, event: str | None = None) -> list[dict[str, Any]]:
        if self.fake_log_path is None or not self.fake_log_path.exists():
            return []
        rows = [json.loads(line) for line in self.fake_log_path.read_text().splitlines() if line]
        return [r for r in rows if event is None or r["event"] == event]

    def uri(self, name: str) -> str:
        return from_fs_path(str(self.workdir / name))

    def open(self, name_or_path: str | Path, text: str | None = None, version: int = 1) -> str:
        path = Path(name_or_path) if Path(name_or_path).is_absolute() else self.workdir / name_or_path
        if text is None:
            text = path.read_text()
        uri = from_fs_path(str(path))
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="c", version=version, text=text)))
        return uri

    def replace_all(self, uri: str, version: int, text: str) -> None:
        """An incremental change covering the whole document (VS Code sends ranges, never full text)."""
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=0, character=0),
                                  end=types.Position(line=100000, character=0)),
                text=text)]))

    def edit(self, uri: str, version: int, line: int, start: int, end: int, text: str) -> None:
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=line, character=start),
                                  end=types.Position(line=line, character=end)),
                text=text)]))

    def messages(self, kind: types.MessageType | None = None) -> list[str]:
        return [m.message for m in self.client.messages if kind is None or m.type == kind]

    def logs(self, kind: types.MessageType | None = None) -> list[str]:
        return [m.message for m in self.client.log_messages if kind is None or m.type == kind]

    async def wait_analysed(self, uri: str, version: int, timeout: float = 120.0) -> str:
        """Wait for the server's end-of-analysis log line for `version` of `uri` (its results
        are then published, or ready for a pull)."""
        name = Path(from_fs_path(uri) and uri.rsplit("/", 1)[-1]).name
        prefix = f"{name} v{version}: "
        return await until(lambda: next((m for m in self.logs() if m.startswith(prefix)), None), timeout,
                           f"the analysis of {name} v{version}")

    async def wait_published(self, uri: str, predicate=lambda p: True, timeout: float = 10.0):
        return await until(lambda: next((p for p in reversed(self.client.publishes_for(uri)) if predicate(p)), None),
                           timeout, f"publishDiagnostics for {uri}")


@contextlib.asynccontextmanager
async def session(workdir: Path, *, pull: bool = False, init_options: Any = None, fake: bool = True,
                  env: dict[str, str] | None = None, capabilities: types.ClientCapabilities | None = None):
    server_env = {**os.environ, **(env or {})}
    log_path = None
    if fake:
        log_path = workdir / "fake-analyzer.jsonl"
        server_env.update({
            "BPF_LSP_TEST_ANALYZER": "fake_analyzer:FakeAnalyzer",
            "FAKE_ANALYZER_LOG": str(log_path),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")])),
        })
    config = ClientServerConfig(server_command=SERVER_COMMAND, server_env=server_env, client_factory=make_client)
    client = await config.start()
    try:
        result = await client.initialize_session(types.InitializeParams(
            capabilities=capabilities or vscode_capabilities(pull=pull),
            client_info=client_info(),
            root_uri=from_fs_path(str(workdir)),
            workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(workdir)), name=workdir.name)],
            initialization_options=init_options,
            locale="en",
        ))
        yield Session(client, workdir, log_path, result)
        # A clean shutdown is part of every test: the server must answer it and exit.
        await asyncio.wait_for(client.shutdown_session(), 15)
    finally:
        await _stop(client)


async def _stop(client: RecordingClient) -> None:
    """Stop the client; after a failed test, make sure the server subprocess goes too
    (pygls' stop() waits for it to exit, which it only does after shutdown/exit)."""
    server = client._server
    if server is not None and server.returncode is None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), 5)
    if server is not None and server.returncode is None:
        server.kill()
    await asyncio.wait_for(client.stop(), 15)
