"""The harness's own parts: mutators, object layout, the client's model of pygls' edits."""
from __future__ import annotations

import random

import pytest
from lsprotocol import types
from pygls.workspace import TextDocument

from devtools import fuzz as F

SAMPLE = '#include "own.h"\nstruct elem { int data; };\n\nSEC("tc")\nint f(void *ctx)\n{\n' \
         '\tstruct elem *e = bpf_obj_new(typeof(*e));\n\tif (!e)\n\t\treturn 0;\n\tbpf_obj_drop(e);\n\treturn 0;\n}\n'


@pytest.mark.parametrize("name", sorted(F.SOURCE_MUTATORS))
def test_source_mutators_total(name):
    fn = F.SOURCE_MUTATORS[name]
    for text in (SAMPLE, "", "x", "\n\n", "{", SAMPLE.replace("\n", "\r\n")):
        for i in range(10):
            out = fn(text, random.Random(i), F._body_start(text))
            assert isinstance(out, str)


def test_drop_release_removes_a_release():
    out = F.m_drop_release(SAMPLE, random.Random(0), F._body_start(SAMPLE))
    assert SAMPLE.count("bpf_obj_drop") - out.count("bpf_obj_drop") == 1 or "// " in out


@pytest.mark.parametrize("name", sorted(F.OBJECT_MUTATORS))
def test_object_mutators_total(name):
    fn = F.OBJECT_MUTATORS[name]
    for data in (b"", b"\x7fELF", bytes(64), bytes(range(256)) * 4):
        for i in range(10):
            buf = bytearray(data)
            try:
                fn(buf, random.Random(i), F.object_layout(data))
            except (IndexError, ValueError):
                pass  # mutate_object tolerates these; the mutator must only not loop or hang


def test_object_layout_of_a_compiled_object(fuzz_worker):
    seed = F.load_seeds([F.CORPUS_CASES], names=["obj_leak"])[0]
    data = fuzz_worker.request(("compile", seed.text, seed.path), timeout=300)["object"]
    layout = F.object_layout(data)
    assert layout is not None and layout.btf is not None and layout.ext is not None
    names = {s.name for s in layout.sections}
    assert {"tc", ".symtab", ".BTF", ".BTF.ext", ".debug_info"} <= names
    assert any(t.kind == 4 for t in layout.btf_types)          # struct elem
    assert {"func_info.rec_size", "line_info.rec_size"} <= set(layout.ext_fields)
    for i in range(50):
        mutant, names_ = F.mutate_object(data, random.Random(i), layout)
        assert names_ and isinstance(mutant, bytes)
        assert F.mutate_object(data, random.Random(i), layout) == (mutant, names_)  # deterministic


def test_client_applies_edits_like_pygls():
    """The chaos client predicts the server's text after each valid edit; it must agree with pygls."""
    rng = random.Random(1)
    texts = [SAMPLE, SAMPLE.replace("int data", "int daté 😀 data"), "", "a", "a\n", "x\r\ny\r\n"]
    for text in texts:
        for _ in range(200):
            start, end, new = F._random_edit(text, rng)
            ours = F.apply_lsp_edit(text, start, end, new)
            if ours is None:
                continue
            doc = TextDocument("file:///x.c", text, sync_kind=types.TextDocumentSyncKind.Incremental)
            doc.apply_change(types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=start[0], character=start[1]),
                                  end=types.Position(line=end[0], character=end[1])), text=new))
            assert doc.source == ours, (text, start, end, new)
            text = ours


def test_minimize_lines():
    text = "".join(f"line {i}\n" for i in range(40))
    out = F.minimize_lines(text, lambda t: "line 17\n" in t and "line 3\n" in t)
    assert out == "line 3\nline 17\n"


def test_known_issue_lookup(monkeypatch):
    from devtools.fuzz import harness
    monkeypatch.setattr(harness, "KNOWN_ISSUES", ((r"IndexError at bpf_lsp/verifier/", "test_x"),))
    assert F.known_issue("verify_program: IndexError at bpf_lsp/verifier/interpreter.py:644") == "test_x"
    assert F.known_issue("brand new: KeyError at bpf_lsp/verifier/interpreter.py:1") is None
    monkeypatch.undo()
    for pattern, test in F.KNOWN_ISSUES:
        assert test.startswith("test_")
