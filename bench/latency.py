"""Latency of bpf-lsp as an editor sees it, next to what a plain build and a kernel load cost.

Starts the server (`python -m bpf_lsp.server`) over stdio with pytest-lsp's client, opens
corpus files and replays edits the way a user makes them:

  lone edit      one change after a pause (starts at once, no debounce)
  typing burst   ` /* edited */` typed a character at a time, 35 ms apart; timed from the
                 last keystroke (so the remaining debounce is included)
  delete/restore a release or unlock line deleted, then put back (the diagnostic appears,
                 then goes away)

and after each settled result hovers over a few identifiers. For every edit it measures the
time from sending didChange to the end of that version's analysis (the server logs one line
per analysed version right after publishing its diagnostics). In the same run, for the same
texts: (a) a plain clang compile without PCH (`clang -target bpf -O2 -g -mcpu=v3 ...`) and
(b) that compile plus the kernel's own verification (/work/shared/tools/kverify OBJ.o, when
the bpf syscall is permitted). Prints p50/p95 and the ratios; asserts nothing.

    .venv/bin/python bench/latency.py [--files obj_leak,list_use_after_unlock] [--all] [--rounds 2]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import make_test_lsp_client

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CASES = SHARED / "corpus" / "cases"
INCLUDE_DIRS = [str(REPO / ".build"), str(SHARED / "corpus" / "include")]
KVERIFY = SHARED / "tools" / "kverify"
DEFAULT_FILES = ["obj_leak", "obj_drop_ok", "list_use_after_unlock", "list_pop_drop_ok", "rbtree_remove_leak",
                 "task_acquire_release_ok", "kptr_stash_ok", "loop_drain_ok"]
RELEASE_CALL = re.compile(r"\b(bpf_obj_drop|bpf_spin_unlock|bpf_task_release|bpf_cpumask_release|bpf_rcu_read_unlock"
                          r"|bpf_ringbuf_submit|bpf_ringbuf_discard|bpf_kptr_xchg)\s*\(")
IDENT = re.compile(r"[A-Za-z_]\w*")
PAUSE = 0.4          # between scenarios: longer than the default 150 ms debounce
KEYSTROKE = 0.035    # fast typing


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, kind: str, seconds: float) -> None:
        self.values.setdefault(kind, []).append(seconds)

    def all(self, *kinds: str) -> list[float]:
        return [v for k in kinds for v in self.values.get(k, [])]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


class Editor:
    """One open document: the local copy of its text, its version, and the edits to send."""

    def __init__(self, client, path: Path):
        self.client, self.path, self.uri = client, path, from_fs_path(str(path))
        self.lines = path.read_text().split("\n")
        self.version = 1

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def open(self) -> None:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=self.uri, language_id="c", version=1, text=self.text)))

    def change(self, line: int, start: int, end: int, new: str) -> int:
        """Replace characters [start, end) of `line` (ASCII corpus: columns are characters)."""
        self.version += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=line, character=start),
                                  end=types.Position(line=line, character=end)), text=new)]))
        text = self.lines[line]
        self.lines[line:line + 1] = (text[:start] + new + text[end:]).split("\n")
        return self.version

    def delete_line(self, line: int) -> tuple[int, str]:
        removed = self.lines[line]
        self.version += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=line, character=0),
                                  end=types.Position(line=line + 1, character=0)), text="")]))
        del self.lines[line]
        return self.version, removed

    def insert_line(self, line: int, text: str) -> int:
        return self.change(line, 0, 0, text + "\n")


async def settled(client, name: str, version: int, timeout: float = 120.0) -> None:
    prefix = f"{name} v{version}: "
    deadline = time.perf_counter() + timeout
    while not any(m.message.startswith(prefix) for m in client.log_messages):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no analysis of {name} v{version} within {timeout}s")
        await asyncio.sleep(0.002)


async def timed_edit(client, ed: Editor, samples: Samples, kind: str, send) -> None:
    start = time.perf_counter()
    version = send()
    await settled(client, ed.path.name, version)
    samples.add(kind, time.perf_counter() - start)


async def hover_round(client, ed: Editor, samples: Samples, body: list[int]) -> None:
    for line in body[:3]:
        match = IDENT.search(ed.lines[line])
        if not match:
            continue
        start = time.perf_counter()
        await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=ed.uri),
            position=types.Position(line=line, character=match.start())))
        samples.add("hover", time.perf_counter() - start)


def body_lines(lines: list[str]) -> list[int]:
    return [i for i, l in enumerate(lines) if l.startswith("\t") and l.rstrip().endswith(";")
            and "return" not in l and not l.lstrip().startswith("/")]


async def replay(client, path: Path, samples: Samples, rounds: int) -> str:
    ed = Editor(client, path)
    start = time.perf_counter()
    ed.open()
    await settled(client, path.name, 1)
    samples.add("open", time.perf_counter() - start)
    body = body_lines(ed.lines)
    if not body:
        return ed.text
    target = body[len(body) // 2]
    for _ in range(rounds):
        await asyncio.sleep(PAUSE)
        end = len(ed.lines[target])
        await timed_edit(client, ed, samples, "lone edit", lambda: ed.change(target, end, end, " "))
        await hover_round(client, ed, samples, body)
        await asyncio.sleep(PAUSE)
        await timed_edit(client, ed, samples, "lone edit", lambda: ed.change(target, end, end + 1, ""))

        await asyncio.sleep(PAUSE)
        typed = " /* edited */"
        for char in typed[:-1]:
            col = len(ed.lines[target])
            ed.change(target, col, col, char)
            await asyncio.sleep(KEYSTROKE)
        col = len(ed.lines[target])
        await timed_edit(client, ed, samples, "typing burst", lambda: ed.change(target, col, col, typed[-1]))
        await hover_round(client, ed, samples, body)
        await asyncio.sleep(PAUSE)
        await timed_edit(client, ed, samples, "lone edit",
                         lambda: ed.change(target, len(ed.lines[target]) - len(typed), len(ed.lines[target]), ""))

        release = next((i for i, l in enumerate(ed.lines) if RELEASE_CALL.search(l)), None)
        if release is not None:
            await asyncio.sleep(PAUSE)
            removed: list[str] = []

            def delete():
                version, text = ed.delete_line(release)
                removed.append(text)
                return version
            await timed_edit(client, ed, samples, "delete/restore", delete)
            await hover_round(client, ed, samples, body)
            await asyncio.sleep(PAUSE)
            await timed_edit(client, ed, samples, "delete/restore", lambda: ed.insert_line(release, removed[0]))
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=ed.uri)))
    return ed.text


def clang() -> str | None:
    return shutil.which("clang-19") or shutil.which("clang")


def baseline(text: str, name: str, repeats: int) -> tuple[list[float], list[float]]:
    """(clang compile seconds, clang + kverify seconds) for `text`, `repeats` times each."""
    compiler = clang()
    if compiler is None:
        return [], []
    compile_times, load_times = [], []
    with tempfile.TemporaryDirectory(prefix="bpf-lsp-bench-") as tmp:
        src, obj = Path(tmp) / f"{name}.bpf.c", Path(tmp) / f"{name}.o"
        src.write_text(text)
        argv = [compiler, "-target", "bpf", "-O2", "-g", "-mcpu=v3", "-D__TARGET_ARCH_x86",
                *[f"-I{d}" for d in INCLUDE_DIRS], "-c", str(src), "-o", str(obj)]
        for _ in range(repeats):
            start = time.perf_counter()
            if subprocess.run(argv, capture_output=True).returncode != 0:
                return compile_times, load_times
            compiled = time.perf_counter() - start
            compile_times.append(compiled)
            if KVERIFY.exists() and os.geteuid() == 0:
                start = time.perf_counter()
                proc = subprocess.run([sys.executable, str(KVERIFY), str(obj)], capture_output=True, text=True)
                if proc.returncode == 0 and "errno 1)" not in proc.stdout:
                    load_times.append(compiled + time.perf_counter() - start)
    return compile_times, load_times


async def run(files: list[Path], rounds: int, repeats: int) -> None:
    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "bpf_lsp.server")
    caps = types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True),
        text_document=types.TextDocumentClientCapabilities(
            publish_diagnostics=types.PublishDiagnosticsClientCapabilities(related_information=True),
            hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown])))
    await client.initialize_session(types.InitializeParams(
        capabilities=caps, initialization_options={"bpfLsp": {"includeDirs": INCLUDE_DIRS}}))
    samples, compile_times, load_times = Samples(), [], []
    try:
        for path in files:
            final_text = await replay(client, path, samples, rounds)
            c, l = baseline(final_text, path.name.removesuffix(".bpf.c"), repeats)
            compile_times += c
            load_times += l
            print(f"  {path.name}: {len(samples.all('lone edit', 'typing burst', 'delete/restore'))} edits so far",
                  file=sys.stderr)
    finally:
        await client.shutdown_session()
        await client.stop()
    report(samples, compile_times, load_times, len(files))


def report(samples: Samples, compile_times: list[float], load_times: list[float], nfiles: int) -> None:
    print(f"\nbpf-lsp latency, {nfiles} corpus file(s) (ms)")
    print(f"{'measure':46} {'n':>4} {'p50':>8} {'p95':>8}")
    edits = samples.all("lone edit", "typing burst", "delete/restore")
    rows = [(f"edit -> verifier diagnostics: {k}", samples.values.get(k, []))
            for k in ("lone edit", "typing burst", "delete/restore")]
    rows += [("edit -> verifier diagnostics: all edits", edits),
             ("open -> verifier diagnostics (first build)", samples.values.get("open", [])),
             ("hover request -> response", samples.values.get("hover", [])),
             ("(a) clang -O2 -g, no PCH", compile_times),
             ("(b) clang + kernel verifier (kverify)", load_times)]
    for label, values in rows:
        if values:
            print(f"{label:46} {len(values):4} {ms(pct(values, 0.5))} {ms(pct(values, 0.95))}")
        else:
            print(f"{label:46} {0:4} {'n/a':>8} {'n/a':>8}")
    if edits and compile_times:
        server = statistics.median(edits)
        print(f"\nratio edit->diagnostics p50 / (a) clang p50:           {server / statistics.median(compile_times):.2f}")
        if load_times:
            print(f"ratio edit->diagnostics p50 / (b) clang+kverify p50:   {server / statistics.median(load_times):.2f}")
        else:
            print("(b) not measured: kverify needs root and a permitted bpf syscall")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default=",".join(DEFAULT_FILES), help="comma-separated corpus case names")
    parser.add_argument("--all", action="store_true", help="every corpus case")
    parser.add_argument("--rounds", type=int, default=2, help="edit rounds per file")
    parser.add_argument("--repeats", type=int, default=3, help="baseline compiles/loads per file")
    args = parser.parse_args(argv)
    names = sorted(p.name.removesuffix(".bpf.c") for p in CASES.glob("*.bpf.c")) if args.all \
        else [n for n in args.files.split(",") if n]
    files = [CASES / f"{n}.bpf.c" for n in names]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        parser.error(f"no such corpus file: {', '.join(missing)}")
    asyncio.run(run(files, args.rounds, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
