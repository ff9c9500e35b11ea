"""Protocol chaos: a raw JSON-RPC client that sends the server what no real client would."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpf_lsp.diagnostics.lsp import code_units
from bpf_lsp.text import split_lines
from .common import HANG_SECONDS, REPO, SERVER_CACHE, default_include_dirs
from .harness import Failure, Report, make_analyzer
from .sources import TOKENS, Seed, known_code, load_seeds, mutate_source


# =============================================================================================
# protocol chaos

class RpcClosed(Exception):
    pass


class RawClient:
    """A tiny stdio JSON-RPC client that can also send what a real client never would."""

    def __init__(self, proc: asyncio.subprocess.Process, respond_delay: float = 0.0):
        self.proc = proc
        self.respond_delay = respond_delay   # answer the server's own requests this much later
        self.sent: list[bytes] = []          # the last messages sent (truncated), for reports
        self.next_id = 1
        self.pending: dict[Any, asyncio.Future] = {}
        self.sent_at: dict[Any, float] = {}
        self.latencies: list[tuple[str, float]] = []
        self.notifications: list[tuple[float, dict]] = []
        self.server_requests: list[dict] = []
        self.unmatched: list[dict] = []     # responses for ids we never used (or used twice)
        self.protocol_errors: list[str] = []
        self.closed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    # -- writing
    def write_raw(self, body: bytes, header: bytes | None = None) -> None:
        if self.proc.stdin is None or self.proc.stdin.is_closing():
            raise RpcClosed("server stdin is closed")
        head = header if header is not None else f"Content-Length: {len(body)}\r\n\r\n".encode()
        self.proc.stdin.write(head + body)
        self.sent.append(body[:300])
        if len(self.sent) > 2000:
            del self.sent[:1000]

    def write(self, message: Any) -> None:
        self.write_raw(json.dumps(message, ensure_ascii=True).encode())

    def notify(self, method: str, params: Any = None) -> None:
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.write(msg)

    def request_nowait(self, method: str, params: Any = None, msg_id: Any = None) -> tuple[Any, asyncio.Future]:
        if msg_id is None:
            msg_id = self.next_id
            self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = fut
        self.sent_at[msg_id] = time.monotonic()
        fut.method = method  # type: ignore[attr-defined]
        fut.bare = params is None  # type: ignore[attr-defined]
        msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.write(msg)
        return msg_id, fut

    async def request(self, method: str, params: Any = None, timeout: float = 30.0) -> dict:
        _, fut = self.request_nowait(method, params)
        await self.drain()
        return await asyncio.wait_for(fut, timeout)

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, AttributeError):
            await self.proc.stdin.drain()

    # -- reading
    async def _read_loop(self) -> None:
        reader = self.proc.stdout
        try:
            while True:
                length = None
                while True:
                    line = await reader.readline()
                    if not line:
                        raise RpcClosed("eof")
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    self.protocol_errors.append("a message without Content-Length")
                    continue
                body = await reader.readexactly(length)
                try:
                    msg = json.loads(body)
                except ValueError:
                    self.protocol_errors.append(f"server sent invalid JSON: {body[:200]!r}")
                    continue
                try:
                    self._dispatch(msg)
                except Exception as exc:  # noqa: BLE001 - a message we cannot file must not stop the reader
                    self.protocol_errors.append(f"could not handle {body[:200]!r}: {type(exc).__name__}: {exc}")
        except (RpcClosed, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(RpcClosed("server closed the connection"))

    def _dispatch(self, msg: Any) -> None:
        now = time.monotonic()
        if not isinstance(msg, dict):
            self.protocol_errors.append(f"server sent a non-object message: {msg!r:.200}")
            return
        if "method" in msg and "id" in msg:          # a request from the server
            self.server_requests.append(msg)
            result = None
            if msg["method"] == "workspace/configuration":
                items = (msg.get("params") or {}).get("items") or []
                result = [None for _ in items]
            answer = {"jsonrpc": "2.0", "id": msg["id"], "result": result}
            if self.respond_delay:
                asyncio.get_running_loop().call_later(self.respond_delay, self._answer, answer)
            else:
                self._answer(answer)
        elif "method" in msg:
            self.notifications.append((now, msg))
        else:
            msg_id = msg.get("id")
            fut = self.pending.pop(msg_id, None) if isinstance(msg_id, (int, str)) else None
            if fut is None:
                self.unmatched.append(msg)
                return
            sent = self.sent_at.pop(msg_id, now)
            self.latencies.append((getattr(fut, "method", "?"), now - sent, msg.get("id"), sent))
            if not fut.done():
                fut.set_result(msg)

    def _answer(self, answer: dict) -> None:
        with contextlib.suppress(RpcClosed, Exception):
            self.write(answer)

    def notifications_of(self, method: str) -> list[dict]:
        return [m for _, m in self.notifications if m.get("method") == method]


@dataclass
class ChaosDoc:
    uri: str
    path: str
    text: str | None          # None: unknown (an edit with an invalid range was sent since the last full text)
    version: int
    open: bool = True
    head: str = ""            # huge documents: their known first lines (edits target these; the text is not tracked)


def _utf16_to_index(line: str, units: int) -> int | None:
    """index into `line` at a UTF-16 offset; None when inside a surrogate pair or past the end
    (unlike `lsp.units_to_byte_column`, which snaps: an oracle must refuse what is ambiguous)."""
    count = 0
    for i, ch in enumerate(line):
        if count == units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
        if count > units:
            return None
    return len(line) if count == units else None


def _lsp_lines(text: str) -> list[str]:
    """Lines as pygls' document model splits them (keepends), for offset arithmetic."""
    return split_lines(text, keepends=True) or [""]


EXOTIC_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]|\r(?!\n)")


def apply_lsp_edit(text: str, start: tuple[int, int], end: tuple[int, int], new: str) -> str | None:
    """Apply one ranged change as pygls does (and as the LSP spec says, for the texts where the two
    agree). None when the result is not certain: a range outside the text or inside a surrogate
    pair, an end before the start, or a text with line breaks pygls and LSP count differently
    (form feed, U+2028, a lone CR, ...)."""
    if EXOTIC_BREAKS.search(text):
        return None
    lines = split_lines(text, keepends=True)

    def offset(pos: tuple[int, int]) -> int | None:
        line, ch = pos
        if line == len(lines) and ch == 0 and (not text or text.endswith("\n")):
            return len(text)
        if line < 0 or line >= len(lines):
            return None
        idx = _utf16_to_index(lines[line].rstrip("\r\n"), ch)
        if idx is None:
            return None
        return sum(len(x) for x in lines[:line]) + idx

    a, b = offset(start), offset(end)
    if a is None or b is None or b < a:
        return None
    return text[:a] + new + text[b:]


def _random_edit(doc_text: str, rng: random.Random) -> tuple[tuple[int, int], tuple[int, int], str]:
    lines = _lsp_lines(doc_text)
    li = rng.randrange(len(lines))
    body = lines[li].rstrip("\r\n")
    n = code_units(body)
    c1 = rng.randrange(n + 1)
    if rng.random() < 0.6:
        l2, c2 = li, min(n, c1 + rng.choice((0, 0, 1, 2, 5)))
    else:
        l2 = min(len(lines) - 1, li + rng.choice((0, 1, 2)))
        b2 = lines[l2].rstrip("\r\n")
        c2 = rng.randrange(code_units(b2) + 1)
        if (l2, c2) < (li, c1):
            l2, c2 = li, c1
    r = rng.random()
    if r < 0.5:
        new = rng.choice(TOKENS)
    elif r < 0.65:
        new = ""
    elif r < 0.8:
        new = "\n"
    elif r < 0.9:
        new = rng.choice(("é", "😀", "\u200b", "a\r\nb", "\t", "/*", "*/", "}", "{"))
    else:
        src = "".join(lines)
        a = rng.randrange(len(src) + 1)
        new = src[a:a + rng.randrange(40)]
    return (li, c1), (l2, c2), new


def _diag_key(d: dict) -> tuple[str, int]:
    return (str(d.get("code")), int(d["range"]["start"]["line"]) + 1)


@dataclass
class ChaosReport(Report):
    mismatches: list[str] = field(default_factory=list)
    handler_errors: list[str] = field(default_factory=list)
    alive: bool = True
    messages: int = 0


class ChaosSession:
    """One server process, ``messages`` chaotic messages, then the convergence and liveness checks."""

    def __init__(self, messages: int, seed: int = 0, seeds: Sequence[Seed] | None = None, pull: bool = False,
                 include_dirs: Sequence[str] | None = None, workdir: Path | None = None,
                 log_file: Path | None = None, request_timeout: float = HANG_SECONDS,
                 progress: Callable[[int, int, Report], None] | None = None, huge_docs: int = 2,
                 docs: int = 4):
        self.messages = messages
        self.seed = seed
        self.rng = random.Random(f"chaos:{seed}")
        self.seeds = list(seeds) if seeds is not None else load_seeds()
        self.pull = pull
        self.include_dirs = list(include_dirs or default_include_dirs())
        self.workdir = workdir
        self.log_file = log_file
        self.request_timeout = request_timeout
        self.progress = progress
        self.huge_docs = huge_docs
        self.ndocs = docs
        self.report = ChaosReport("chaos")
        self.docs: dict[str, ChaosDoc] = {}
        self.outstanding: list[tuple[Any, asyncio.Future, float]] = []
        self.huge_sent = 0
        self.budget = 1_000_000

    # -- helpers
    def _capabilities(self) -> dict:
        text_doc = {"synchronization": {"didSave": True, "dynamicRegistration": False},
                    "hover": {"contentFormat": ["markdown", "plaintext"]},
                    "publishDiagnostics": {"relatedInformation": True, "versionSupport": True,
                                           "codeDescriptionSupport": True, "dataSupport": True},
                    "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix"]}}}}
        if self.pull:
            text_doc["diagnostic"] = {"dynamicRegistration": False, "relatedDocumentSupport": False}
        return {"textDocument": text_doc, "window": {"workDoneProgress": True},
                "workspace": {"configuration": True, "diagnostics": {"refreshSupport": True}},
                "general": {"positionEncodings": ["utf-16"]}}

    def _uri(self, path: str) -> str:
        from pygls.uris import from_fs_path
        return from_fs_path(path)

    def _new_doc_path(self, seed: Seed, n: int) -> str:
        return str(self.workdir / f"doc{n}_{seed.name}.bpf.c")

    def _track(self, msg_id: Any, fut: asyncio.Future, valid: bool = True) -> None:
        fut.valid = valid  # type: ignore[attr-defined]
        self.outstanding.append((msg_id, fut, time.monotonic()))

    def _context_of(self, msg_id: Any) -> str:
        """The request as sent and the messages just before it."""
        needle = f'"id": {json.dumps(msg_id)}'.encode()
        for i, body in enumerate(self.client.sent):
            if needle in body and b'"method"' in body:
                return "\n".join(repr(b) for b in self.client.sent[max(0, i - 3):i + 1])
        return ""

    def _unanswered(self, msg_id: Any, fut: asyncio.Future, waited: float) -> None:
        method = getattr(fut, "method", "?")
        if getattr(fut, "valid", True):
            bare = " (a request without params)" if getattr(fut, "bare", False) else ""
            self.report.failures.append(Failure(
                "chaos", f"request {msg_id}", [method], "hang",
                f"no answer to {method}{bare} within {self.request_timeout:g}s",
                f"request id {msg_id} unanswered after {waited:.1f}s; sent:\n{self._context_of(msg_id)}",
                seconds=waited))
        else:  # JSON-RPC: every request gets a response, an error one (-32602) for bad params
            self.report.failures.append(Failure(
                "chaos", f"request {msg_id}", [method], "problem",
                f"no response at all to {method} with params that do not fit the LSP schema",
                f"request id {msg_id} unanswered after {waited:.1f}s", seconds=waited))
        fut.cancel()

    async def _reap(self, final: bool = False) -> None:
        """Check answered requests; a request unanswered past the bound is a hang."""
        if final and self.outstanding:
            # valid requests get the full bound; ones with bad params are answered at once or never
            valid = [(f, sent) for _, f, sent in self.outstanding if not f.done() and getattr(f, "valid", True)]
            invalid = [(f, sent) for _, f, sent in self.outstanding if not f.done() and not getattr(f, "valid", True)]
            if valid:
                last = max(sent for _, sent in valid)
                await asyncio.wait([f for f, _ in valid], timeout=max(0.1, last + self.request_timeout - time.monotonic()))
            if invalid:   # answered at once when the server copes with them; a busy server may take longer
                last = max(sent for _, sent in invalid)
                await asyncio.wait([f for f, _ in invalid], timeout=max(0.1, last + self.request_timeout - time.monotonic()))
        now = time.monotonic()
        keep = []
        for msg_id, fut, sent in self.outstanding:
            if fut.done():
                if not fut.cancelled() and fut.exception() is None:
                    self._check_response(fut.result(), getattr(fut, "method", "?"))
                continue
            if now - sent > self.request_timeout or final:
                self._unanswered(msg_id, fut, now - sent)
                continue
            keep.append((msg_id, fut, sent))
        self.outstanding = keep

    def _check_response(self, msg: dict, method: str) -> None:
        if "error" in msg:
            code = (msg.get("error") or {}).get("code")
            # -32603 internal error: an exception escaped a handler into pygls
            if code == -32603:
                self.report.failures.append(Failure("chaos", f"id {msg.get('id')}", [method], "crash",
                                                    f"{method}: internal error response",
                                                    json.dumps(msg)[:3000]))
        if method == "textDocument/hover" and msg.get("result") is not None:
            r = msg["result"]
            if not isinstance(r, dict) or "contents" not in r:
                self.report.failures.append(Failure("chaos", f"id {msg.get('id')}", [method], "problem",
                                                    "hover: malformed result", json.dumps(r)[:500]))

    # -- the session
    async def run(self) -> ChaosReport:
        own_tmp = None
        if self.workdir is None:
            own_tmp = tempfile.TemporaryDirectory(prefix="bpf-lsp-chaos-")
            self.workdir = Path(own_tmp.name)
        started = time.monotonic()
        try:
            await self._run()
        finally:
            self.report.wall = time.monotonic() - started
            if own_tmp is not None:
                own_tmp.cleanup()
        return self.report

    async def _start(self) -> asyncio.subprocess.Process:
        argv = [sys.executable, "-m", "bpf_lsp.server"]
        if self.log_file:
            argv += ["--log-file", str(self.log_file), "--log-level", "INFO"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        env.pop("BPF_LSP_TEST_ANALYZER", None)
        env["XDG_CACHE_HOME"] = str(SERVER_CACHE)   # the chaos PCHs must not evict the user's
        self._stderr = open(self.workdir / "server.stderr", "wb")
        return await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=self._stderr,
                                                    cwd=str(self.workdir), env=env, limit=64 * 1024 * 1024)

    async def _run(self) -> None:
        started = time.monotonic()
        proc = await self._start()
        client = RawClient(proc)
        self.client = client
        report = self.report
        try:
            init = await client.request("initialize", {
                "processId": os.getpid(), "rootUri": self._uri(str(self.workdir)),
                "capabilities": self._capabilities(),
                # no wall-time budget: the final check compares with a fresh analysis, which a busy
                # machine must not make differ
                "initializationOptions": {"includeDirs": self.include_dirs, "debounceMs": 50,
                                          "verifierTimeoutMs": 0},
                "clientInfo": {"name": "bpf-lsp-chaos", "version": "0"}}, timeout=60)
            if "result" not in init:
                report.failures.append(Failure("chaos", "initialize", [], "crash", "initialize failed",
                                               json.dumps(init)[:2000]))
                return
            client.notify("initialized", {})
            for n in range(self.ndocs):
                self._open(self.rng.choice(self.seeds), n)
            await client.drain()
            for i in range(self.messages):
                if client.closed.is_set():
                    break
                action = self._pick()
                try:
                    await action()
                except RpcClosed:
                    break
                report.messages += 1
                report.tried += 1
                await asyncio.sleep(0)   # let the reader take answers as they come: latencies are the server's
                if i % 25 == 0:
                    await client.drain()
                    await self._reap()
                    await asyncio.sleep(0)
                if i % 200 == 199:  # let analyses run now and then, as a real session would
                    await asyncio.sleep(self.rng.choice((0.05, 0.2, 0.5)))
                if self.progress:
                    self.progress(i + 1, self.messages, report)
            await client.drain()
            await self._reap(final=True)
            await self._final_checks()
        except RpcClosed:
            pass
        finally:
            report.latencies = [lat[1] for lat in client.latencies]
            for method, seconds, msg_id, sent in sorted(client.latencies, key=lambda lat: -lat[1])[:3]:
                if seconds > 1.0:
                    report.notes.append(f"slow answer: {method} id {msg_id} took {seconds:.1f}s "
                                        f"(sent {sent - started:.1f}s into the session)")
            await self._shutdown(proc, client)
            self._collect_errors()
            self._check_published()

    def _open(self, seed: Seed, n: int, text: str | None = None) -> ChaosDoc:
        path = self._new_doc_path(seed, n)
        uri = self._uri(path)
        text = seed.text if text is None else text
        doc = ChaosDoc(uri, path, text, 1)
        self.docs[uri] = doc
        self.client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "c", "version": 1,
                                                                     "text": text}})
        return doc

    def _any_doc(self, open_only: bool = True) -> ChaosDoc | None:
        docs = [d for d in self.docs.values() if d.open or not open_only]
        return self.rng.choice(docs) if docs else None

    def _pick(self) -> Callable[[], Any]:
        table = [
            (30, self.a_change), (4, self.a_burst), (10, self.a_hover), (4, self.a_hover_bad),
            (4, self.a_code_action), (3, self.a_unknown_method), (2, self.a_unknown_notification),
            (3, self.a_unknown_uri), (3, self.a_cancel), (3, self.a_invalid_params), (2, self.a_invalid_json),
            (2, self.a_close_reopen), (2, self.a_closed_doc_request), (2, self.a_save), (2, self.a_full_change),
            (1, self.a_config), (1, self.a_bad_change), (1, self.a_surrogate_change),
            (2 if self.pull else 0, self.a_pull), (1 if self.huge_docs > self.huge_sent else 0, self.a_huge),
        ]
        weights = [w for w, _ in table]
        return self.rng.choices([f for _, f in table], weights)[0]

    def _send_change(self, doc: ChaosDoc, changes: list[dict], new_text: str | None) -> None:
        doc.version += 1
        doc.text = new_text
        if new_text is not None:
            doc.head = ""
        self.client.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version},
                                                      "contentChanges": changes})

    def _valid_edit(self, doc: ChaosDoc) -> tuple[dict, str | None]:
        if doc.text is None and doc.head:
            # a huge document: a small edit near the top, without the cost of tracking megabytes
            start, end, new = _random_edit(doc.head, self.rng)
            return {"range": {"start": {"line": start[0], "character": start[1]},
                              "end": {"line": end[0], "character": end[1]}}, "text": new}, None
        if doc.text is None:
            text = self.rng.choice(self.seeds).text
            doc.head = ""
            return {"text": text}, text
        start, end, new = _random_edit(doc.text, self.rng)
        after = apply_lsp_edit(doc.text, start, end, new)
        change = {"range": {"start": {"line": start[0], "character": start[1]},
                            "end": {"line": end[0], "character": end[1]}}, "text": new}
        return change, after

    async def a_change(self) -> None:
        doc = self._any_doc()
        if doc is None:
            return self._open(self.rng.choice(self.seeds), len(self.docs))
        if doc.text is not None and self.rng.random() < 0.3:   # a meaningful mutation as a full-text change
            text, _ = mutate_source(doc.text, self.rng)
            return self._send_change(doc, [{"text": text}], text)
        change, after = self._valid_edit(doc)
        self._send_change(doc, [change], after)

    async def a_burst(self) -> None:
        """100 rapid didChange in a row (typing)."""
        doc = self._any_doc()
        if doc is None:
            return
        for _ in range(100):
            change, after = self._valid_edit(doc)
            self._send_change(doc, [change], after)
        await self.client.drain()

    async def a_full_change(self) -> None:
        doc = self._any_doc()
        if doc is None:
            return
        text = self.rng.choice(self.seeds).text
        self._send_change(doc, [{"text": text}], text)

    async def a_bad_change(self) -> None:
        """Ranges out of the document, reversed, mid-surrogate: the server decides; we stop tracking the text."""
        doc = self._any_doc()
        if doc is None:
            return
        bad = self.rng.choice([((10**6, 0), (10**6, 5)), ((0, 10**6), (0, 10**6 + 1)), ((5, 3), (2, 0)),
                               ((-1, 0), (0, 0)), ((0, -5), (0, 2)), ((0, 0), (2**31, 2**31))])
        change = {"range": {"start": {"line": bad[0][0], "character": bad[0][1]},
                            "end": {"line": bad[1][0], "character": bad[1][1]}}, "text": "x"}
        self._send_change(doc, [change], None)

    async def a_surrogate_change(self) -> None:
        """Text with a lone surrogate (valid JSON: "\\ud800") and an edit splitting a surrogate pair."""
        doc = self._any_doc()
        if doc is None:
            return
        if self.rng.random() < 0.5:
            text = (doc.text or self.rng.choice(self.seeds).text) + "\n// \ud800 \udfff\n"
            self._send_change(doc, [{"text": text}], text)
        else:
            text = "// 😀😀\n" + (doc.text or "")
            self._send_change(doc, [{"text": text}], text)
            change = {"range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 5}},
                      "text": "x"}
            self._send_change(doc, [change], None)

    async def a_hover(self) -> None:
        doc = self._any_doc()
        if doc is None:
            return
        lines = _lsp_lines(doc.text if doc.text is not None else doc.head)
        li = self.rng.randrange(len(lines))
        ch = self.rng.randrange(code_units(lines[li].rstrip("\r\n")) + 1)
        msg_id, fut = self.client.request_nowait("textDocument/hover", {"textDocument": {"uri": doc.uri},
                                                                        "position": {"line": li, "character": ch}})
        self._track(msg_id, fut)

    async def a_hover_bad(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is None:
            return
        pos = self.rng.choice([{"line": 10**7, "character": 0}, {"line": 0, "character": 10**7},
                               {"line": -1, "character": -1}, {"line": 2**31 - 1, "character": 2**31 - 1},
                               {"line": 0, "character": 1}, {"line": 1.5, "character": 0},
                               {"line": "0", "character": 0}])
        msg_id, fut = self.client.request_nowait("textDocument/hover", {"textDocument": {"uri": doc.uri},
                                                                        "position": pos})
        # LSP positions are uinteger: negative, fractional or string ones are invalid params
        valid = all(isinstance(v, int) and 0 <= v < 2**31 for v in pos.values())
        self._track(msg_id, fut, valid=valid)

    async def a_code_action(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is None:
            return
        published = [m for m in self.client.notifications_of("textDocument/publishDiagnostics")
                     if (m.get("params") or {}).get("uri") == doc.uri]
        diags = published[-1]["params"]["diagnostics"] if published else []
        sub = random.Random(self.rng.random())   # what was published varies with timing: keep self.rng's sequence fixed
        if sub.random() < 0.3:   # clients echo diagnostics back; some mangle `data`
            diags = [{**d, "data": sub.choice([None, 1, "x", {"fixes": 3}, {"fixes": [{"edits": 1}]},
                                                    {"fixes": [{"title": 1, "edits": [{"range": 5}]}]}])}
                     for d in diags] or [{"range": {"start": {"line": 0, "character": 0},
                                                    "end": {"line": 0, "character": 1}},
                                          "message": "x", "data": {"fixes": [{"title": "t", "edits": [
                                              {"range": {"start": {"line": -4, "character": "a"}}}]}]}}]
        params = {"textDocument": {"uri": doc.uri},
                  "range": {"start": {"line": 0, "character": 0}, "end": {"line": 10**6, "character": 0}},
                  "context": {"diagnostics": diags, "only": sub.choice([None, ["quickfix"], ["refactor"]])}}
        if params["context"]["only"] is None:
            del params["context"]["only"]
        msg_id, fut = self.client.request_nowait("textDocument/codeAction", params)
        self._track(msg_id, fut)

    async def a_pull(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is None:
            return
        msg_id, fut = self.client.request_nowait("textDocument/diagnostic", {"textDocument": {"uri": doc.uri}})
        self._track(msg_id, fut)

    async def a_unknown_method(self) -> None:
        method = self.rng.choice(["textDocument/definition", "textDocument/completion", "foo/bar", "",
                                  "textDocument/semanticTokens/full", "workspace/symbol", "$/unknown",
                                  "textDocument/formatting", "x" * 300])
        params = self.rng.choice([None, {}, [], {"textDocument": {}}])
        msg_id, fut = self.client.request_nowait(method, params)
        # a method LSP defines, with params that do not fit its schema, is an invalid request
        lsp_defined = method.startswith(("textDocument/", "workspace/"))
        self._track(msg_id, fut, valid=not lsp_defined)

    async def a_unknown_notification(self) -> None:
        self.client.notify(self.rng.choice(["$/setTrace", "$/logTrace", "foo/bar", "textDocument/didFoo",
                                            "$/progress", "workspace/didChangeWatchedFiles"]),
                           self.rng.choice([None, {}, {"changes": []}, {"value": "verbose"}, [1, 2]]))

    async def a_unknown_uri(self) -> None:
        uri = self.rng.choice(["file:///nonexistent/x.bpf.c", "untitled:Untitled-1", "file:///", "not a uri",
                               "file:///tmp/%ZZ.bpf.c", "http://example.com/a.c", ""])
        method = self.rng.choice(["textDocument/hover", "textDocument/codeAction", "textDocument/diagnostic"])
        params: dict = {"textDocument": {"uri": uri}}
        if method == "textDocument/hover":
            params["position"] = {"line": 0, "character": 0}
        elif method == "textDocument/codeAction":
            params.update(range={"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                          context={"diagnostics": []})
        if self.rng.random() < 0.3:
            self.client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                                          "contentChanges": [{"text": "int x;"}]})
            return
        if self.rng.random() < 0.2:
            self.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            return
        msg_id, fut = self.client.request_nowait(method, params)
        self._track(msg_id, fut)

    async def a_cancel(self) -> None:
        sub = random.Random(self.rng.random())
        ids = [i for i, _, _ in self.outstanding] + [sub.randrange(-5, self.client.next_id + 50), "abc", None, 1.5]
        self.client.notify("$/cancelRequest", {"id": sub.choice(ids)})

    async def a_invalid_params(self) -> None:
        doc = self._any_doc(open_only=False)
        uri = doc.uri if doc else "file:///x.c"
        method, params = self.rng.choice([
            ("textDocument/hover", {"textDocument": uri, "position": [0, 0]}),
            ("textDocument/hover", {"position": {"line": 0, "character": 0}}),
            ("textDocument/hover", "string params"),
            ("textDocument/codeAction", {"textDocument": {"uri": uri}}),
            ("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": None, "context": 7}),
            ("textDocument/diagnostic", {"textDocument": {"uri": 5}}),
            ("textDocument/didOpen", {"textDocument": {"uri": uri}}),
            ("textDocument/didChange", {"textDocument": {"uri": uri}, "contentChanges": "x"}),
            ("textDocument/didChange", {"textDocument": {"uri": uri, "version": "v"}, "contentChanges": [{}]}),
            ("workspace/didChangeConfiguration", {"settings": {"bpfLsp": {"debounceMs": -5, "includeDirs": 3,
                                                                          "bogus": 1}}}),
            ("workspace/didChangeConfiguration", {"settings": [1, 2, 3]}),
            ("textDocument/didClose", {"textDocument": None}),
            ("textDocument/didSave", {}),
        ])
        if method.startswith(("textDocument/did", "workspace/did")):
            self.client.notify(method, params)   # rejected by pygls: the document's text stays as it was
        else:
            msg_id, fut = self.client.request_nowait(method, params)
            self._track(msg_id, fut, valid=False)

    async def a_invalid_json(self) -> None:
        body = self.rng.choice([b"{", b"{\"jsonrpc\": \"2.0\", \"method\": ", b"null", b"[]", b"[1, 2]", b"\"x\"",
                                b"42", b"{}", b"{\"jsonrpc\": \"1.0\", \"method\": \"x\"}",
                                b"{\"jsonrpc\": \"2.0\", \"id\": {}, \"method\": \"textDocument/hover\"}",
                                b"{\"jsonrpc\": \"2.0\", \"result\": 1, \"id\": 99999}",
                                b"\xff\xfe\x00garbage", "{\"jsonrpc\": \"2.0\", \"method\": \"\u00e9\"}".encode(),
                                b"{\"jsonrpc\": \"2.0\", \"id\": 1e400, \"method\": \"x\"}"])
        self.client.write_raw(body)

    async def a_close_reopen(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is None:
            return
        if doc.open:
            self.client.notify("textDocument/didClose", {"textDocument": {"uri": doc.uri}})
            doc.open = False
        else:
            text = doc.text if doc.text is not None else self.rng.choice(self.seeds).text
            doc.text, doc.version, doc.open, doc.head = text, 1, True, ""
            self.client.notify("textDocument/didOpen", {"textDocument": {"uri": doc.uri, "languageId": "c",
                                                                         "version": 1, "text": text}})

    async def a_closed_doc_request(self) -> None:
        closed = [d for d in self.docs.values() if not d.open]
        if not closed:
            return await self.a_close_reopen()
        doc = self.rng.choice(closed)
        if self.rng.random() < 0.5:
            msg_id, fut = self.client.request_nowait("textDocument/hover", {"textDocument": {"uri": doc.uri},
                                                                            "position": {"line": 1, "character": 1}})
            self._track(msg_id, fut)
        else:  # a change to a closed document must be ignored
            self.client.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": 99},
                                                          "contentChanges": [{"text": "garbage"}]})

    async def a_save(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is not None:
            self.client.notify("textDocument/didSave", {"textDocument": {"uri": doc.uri}})

    async def a_config(self) -> None:
        self.budget = self.rng.choice((1_000_000, 200_000))
        self.client.notify("workspace/didChangeConfiguration", {"settings": {"bpfLsp": {
            "includeDirs": self.include_dirs, "debounceMs": self.rng.choice((0, 50, 150)),
            "verifierBudget": self.budget, "verifierTimeoutMs": 0}}})

    async def a_huge(self) -> None:
        """A document of a few MB (analysed) or over the 4 MiB limit (refused with one diagnostic)."""
        self.huge_sent += 1
        seed = self.rng.choice(self.seeds)
        size = self.rng.choice((3 * 1024 * 1024, 5 * 1024 * 1024))
        filler = "// " + "x" * 96 + "\n"
        text = seed.text + filler * (size // len(filler))
        doc = self._open(seed, len(self.docs), text)
        doc.text, doc.head = None, seed.text
        await self.client.drain()

    # -- the end
    async def _settle_push(self, doc: ChaosDoc, quiet: float = 2.5, limit: float = 60.0) -> list[dict] | None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            pubs = [(t, m) for t, m in self.client.notifications
                    if m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("uri") == doc.uri]
            if pubs:
                t, m = pubs[-1]
                if m["params"].get("version") == doc.version and time.monotonic() - t >= quiet:
                    return m["params"]["diagnostics"]
            await asyncio.sleep(0.1)
        return None

    async def _final_diagnostics(self, doc: ChaosDoc) -> list[dict] | None:
        if self.pull:
            answer = await self.client.request("textDocument/diagnostic", {"textDocument": {"uri": doc.uri}},
                                               timeout=60)
            return (answer.get("result") or {}).get("items")
        return await self._settle_push(doc)

    async def _final_checks(self) -> None:
        from bpf_lsp.diagnostics import lsp as convert
        client = self.client
        # every open document ends with a known text: a valid mutant of a seed, sent in full
        finals = []
        for doc in self.docs.values():
            if not doc.open:
                continue
            if doc.text is None or len(doc.text) > 1_000_000 or self.rng.random() < 0.5 \
                    or re.search("[\ud800-\udfff]", doc.text):
                seed_text = self.rng.choice(self.seeds).text
                text, _ = mutate_source(seed_text, self.rng)
                if re.search("[\ud800-\udfff]", text):   # a known crash: reported on its own
                    text = seed_text
                self._send_change(doc, [{"text": text}], text)
            finals.append(doc)
        await client.drain()
        analyzer = make_analyzer(self.include_dirs)
        from bpf_lsp.settings import Settings
        analyzer.update_settings(Settings().updated({"includeDirs": self.include_dirs,
                                                     "verifierBudget": self.budget,
                                                     "verifierTimeoutMs": 0})[0])
        settled = await asyncio.gather(*(self._final_diagnostics(doc) for doc in finals), return_exceptions=True)
        for doc, got in zip(finals, settled):
            if isinstance(got, BaseException):
                got = None
            if got is None:
                self.report.failures.append(Failure("chaos", doc.uri, ["final"], "hang",
                                                    "no settled diagnostics for the final version",
                                                    f"{doc.uri} v{doc.version}"))
                continue
            want_analysis = await asyncio.get_running_loop().run_in_executor(None, analyzer.analyze, doc.text,
                                                                             doc.path)
            conv = convert.Converter(doc.path, convert.split_lines(doc.text), convert.UTF16)
            want = sorted(_diag_key(json.loads(json.dumps(_to_json(d)))) for d in
                          conv.diagnostics(want_analysis.diagnostics))
            have = sorted(_diag_key(d) for d in got)
            if self.pull is False and want != have:
                # a late verify may still publish: give it one more chance
                await asyncio.sleep(5)
                again = await self._settle_push(doc, quiet=1.0, limit=30)
                have = sorted(_diag_key(d) for d in (again or []))
            if want != have:
                detail = f"{doc.uri} v{doc.version}\nserver: {have}\nfresh:  {want}"
                self.report.mismatches.append(detail)
                self.report.failures.append(Failure("chaos", doc.uri, ["final"], "problem",
                                                    "final diagnostics differ from a fresh analysis", detail))
        self.report.notes.append(f"final check: {len(finals)} open document(s) compared with a fresh analysis, "
                                 f"{len(self.report.mismatches)} mismatch(es)")
        # still alive and answering?
        try:
            answer = await client.request("textDocument/hover", {"textDocument": {"uri": finals[0].uri if finals
                                                                                   else "file:///x"},
                                                                 "position": {"line": 0, "character": 0}},
                                          timeout=self.request_timeout)
            self.report.alive = "result" in answer or "error" in answer
        except (asyncio.TimeoutError, RpcClosed):
            self.report.alive = False
        if not self.report.alive:
            self.report.failures.append(Failure("chaos", "liveness", [], "hang", "server did not answer at the end",
                                                "no answer to a final hover"))

    async def _shutdown(self, proc, client: RawClient) -> None:
        try:
            if not client.closed.is_set():
                await client.request("shutdown", None, timeout=15)
                client.notify("exit")
                await client.drain()
            await asyncio.wait_for(proc.wait(), 15)
        except (asyncio.TimeoutError, RpcClosed, ConnectionError):
            if proc.returncode is None:
                self.report.failures.append(Failure("chaos", "shutdown", [], "hang", "no clean shutdown/exit",
                                                    "server did not exit after shutdown+exit"))
        finally:
            killed = proc.returncode is None
            if killed:
                proc.kill()
                await proc.wait()
            self._stderr.close()
        if client.closed.is_set() and proc.returncode not in (0, None) and self.report.alive:
            self.report.alive = False
        if proc.returncode not in (0, None) and not killed:   # it died on its own
            self.report.failures.append(Failure("chaos", "exit", [], "crash", f"server exited with {proc.returncode}",
                                                (self.workdir / "server.stderr").read_text(errors="replace")[-4000:]))

    # pygls' "Error in server: ..." popups caused by the malformed messages this client sends on purpose
    EXPECTED_POPUPS = ("Invalid Params", "Internal Error", "Parse error", "Invalid Request", "Expecting value",
                       "object has no attribute 'jsonrpc'",
                       "Unterminated string", "Expecting property name", "Extra data", "Invalid control character",
                       "utf-8", "codec can't decode")

    def _check_published(self) -> None:
        """Every published diagnostic is well-formed LSP: ranges in order, known severity and code."""
        seen: set[str] = set()
        for m in self.client.notifications_of("textDocument/publishDiagnostics"):
            params = m.get("params") or {}
            for d in params.get("diagnostics") or []:
                problems = []
                try:
                    r = d["range"]
                    a, b = (r["start"]["line"], r["start"]["character"]), (r["end"]["line"], r["end"]["character"])
                    if min(*a, *b) < 0 or b < a:
                        problems.append(f"published range out of order or negative: {a}-{b}")
                    if d.get("severity") not in (1, 2, 3, 4):
                        problems.append(f"published severity {d.get('severity')!r}")
                    if not known_code(str(d.get("code")), "clang" if d.get("source") == "clang" else "bpf-lsp"):
                        problems.append(f"unknown code {d.get('code')!r} (source {d.get('source')!r})")
                    if not d.get("message"):
                        problems.append("published diagnostic without a message")
                except (KeyError, TypeError) as e:
                    problems.append(f"malformed published diagnostic: {type(e).__name__} {e}")
                for problem in problems:
                    if problem in seen:
                        continue
                    seen.add(problem)
                    self.report.failures.append(Failure("chaos", params.get("uri", "?"), ["publish"], "problem",
                                                        problem, json.dumps(d)[:2000]))

    def _collect_errors(self) -> None:
        """Exceptions the server's guards caught are still exceptions escaping a handler: crashes.
        So are pygls' own "Error in server" popups, unless a deliberately malformed message caused them."""
        for m in self.client.notifications_of("window/logMessage"):
            p = m.get("params") or {}
            if p.get("type") == 1 and " failed:\n" in str(p.get("message")):
                text = p["message"]
                where = text.split(" failed:", 1)[0]
                last = [ln for ln in text.strip().splitlines() if ln.strip()][-1]
                self.report.handler_errors.append(text)
                short = re.sub(r"position \d+(-\d+)?", "position N", last[:160])
                self.report.failures.append(Failure("chaos", "server log", [where], "crash", f"{where}: {short}",
                                                    text[-6000:]))
        popups: dict[str, int] = {}
        for m in self.client.notifications_of("window/showMessage"):
            p = m.get("params") or {}
            text = str(p.get("message"))
            if p.get("type") != 1 or not text.startswith("Error in server:"):
                continue
            key = re.sub(r"0x[0-9a-f]+", "0x..", text)[:160]
            if any(e in text for e in self.EXPECTED_POPUPS):
                popups[key] = popups.get(key, 0) + 1
                continue
            self.report.failures.append(Failure("chaos", "showMessage", ["pygls"], "crash", key,
                                                text + "\n\n" + self._log_excerpt(text)))
        for key, n in sorted(popups.items(), key=lambda kv: -kv[1]):
            self.report.notes.append(f"{n} error popup(s) for deliberately malformed messages: {key!r}")
        if self.client.protocol_errors:
            self.report.notes += self.client.protocol_errors[:5]

    def _log_excerpt(self, needle: str) -> str:
        """The server log's traceback for an error (the log has it, the popup does not)."""
        for source in (self.log_file, self.workdir / "server.stderr" if self.workdir else None):
            try:
                log = Path(source).read_text(errors="replace") if source else ""
            except OSError:
                continue
            tail = needle.split(":", 1)[-1].strip()[:60]
            at = log.find(tail)
            if at >= 0:
                start = log.rfind("Traceback (most recent call last)", 0, at)
                return log[start if start >= 0 else max(0, at - 3000):at + 200][-5000:]
        return ""


def _chaos_summary(self: "ChaosReport") -> str:
    head = (f"chaos: server {'alive' if self.alive else 'DEAD'} after {self.messages} messages; "
            f"{len(self.mismatches)} final-diagnostics mismatch(es)")
    return head + "\n" + Report.summary(self)


ChaosReport.summary = _chaos_summary  # type: ignore[method-assign]


def _to_json(diag) -> dict:
    from pygls.protocol import default_converter
    return default_converter().unstructure(diag)


def chaos_session(messages: int, seed: int = 0, **kwargs) -> ChaosReport:
    return asyncio.run(ChaosSession(messages, seed, **kwargs).run())
