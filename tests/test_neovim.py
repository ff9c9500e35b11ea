"""A real Neovim (headless) with editors/neovim/minimal_init.lua runs the server on a corpus
file; the diagnostics it receives are read from the JSON record the config writes."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CORPUS_CASES, REPO, corpus_include_dirs

MINIMAL_INIT = REPO / "editors" / "neovim" / "minimal_init.lua"
NVIM = shutil.which("nvim")
TIMEOUT = 120.0   # a cold first build (no PCH yet) takes a few seconds; this is the outer bound

pytestmark = [
    pytest.mark.skipif(NVIM is None, reason="nvim is not installed"),
    pytest.mark.skipif(not MINIMAL_INIT.exists(), reason="editors/neovim/minimal_init.lua is missing"),
]


def _real_analyzer_available() -> bool:
    try:
        from bpf_lsp.analysis import Analyzer
        Analyzer()
    except NotImplementedError:
        return False
    return True


def _read(out: Path) -> dict | None:
    try:
        return json.loads(out.read_text())
    except (OSError, ValueError):   # not written yet (it is replaced atomically, never partial)
        return None


def _wait_for(out: Path, proc: subprocess.Popen, done) -> dict:
    deadline = time.monotonic() + TIMEOUT
    record = None
    while time.monotonic() < deadline:
        record = _read(out) or record
        if record and done(record):
            return record
        if proc.poll() is not None:
            pytest.fail(f"nvim exited early ({proc.returncode}); last record: {record}")
        time.sleep(0.1)
    pytest.fail(f"no matching diagnostics from Neovim within {TIMEOUT}s; last record: {record}")


@pytest.mark.skipif(not _real_analyzer_available(), reason="the real Analyzer has not landed yet")
def test_neovim_receives_the_leak(tmp_path):
    source = tmp_path / "obj_leak.bpf.c"
    shutil.copy(CORPUS_CASES / "obj_leak.bpf.c", source)
    out = tmp_path / "diagnostics.json"
    env = {
        **__import__("os").environ,
        "BPF_LSP_CMD": json.dumps([sys.executable, "-m", "bpf_lsp.server"]),
        "BPF_LSP_SETTINGS": json.dumps({"includeDirs": corpus_include_dirs()}),
        "BPF_LSP_DIAG_OUT": str(out),
        "BPF_LSP_QUIT_AFTER_MS": str(int(TIMEOUT * 1000) + 30_000),   # safety net if we are killed
        "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    proc = subprocess.Popen([NVIM, "--headless", "--clean", "-u", str(MINIMAL_INIT), str(source)],
                            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def leak_arrived(record):
            got = record.get("received", {}).get(str(source))
            return got and any(d.get("code") == "reference-leak" for d in got["diagnostics"])

        record = _wait_for(out, proc, leak_arrived)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    received = record["received"][str(source)]
    assert received["model"] == "push"          # Neovim 0.7-0.9: no pull support declared
    (leak,) = [d for d in received["diagnostics"] if d["code"] == "reference-leak"]
    assert leak["range"]["start"]["line"] == 11   # 0-based: line 12, the `return 0;`
    assert leak["source"] == "bpf-lsp"
    assert leak["relatedInformation"][0]["location"]["range"]["start"]["line"] == 6
    assert leak["data"]["fixes"][0]["edits"][0]["newText"] == "\tbpf_obj_drop(e);\n"
    # vim.diagnostic's view of the buffer: the same place, in Neovim's own terms.
    shown = [d for d in record["diagnostics"][str(source)] if d["code"] == "reference-leak"]
    assert shown and shown[0]["lnum"] == 11 and shown[0]["severity"] == "error"
    assert not [m for m in record["messages"] if m["type"] == 1], record["messages"]
