"""Ranges of findings: line info widened to the offending expression with the libclang AST.

Columns are 1-based byte columns, end exclusive, as in `bpf_lsp.diagnostics.model`.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bpf_lsp.diagnostics import libclang, ranges, sources
from bpf_lsp.diagnostics.sources import SourceFiles
from conftest import CORPUS_CASES, clang_object

pytestmark = pytest.mark.skipif(not libclang.available(), reason="libclang is not loadable")


@pytest.fixture(scope="module")
def wired(analyzer):
    """The analyzer: its libclang units and its compiles' flags reach `SourceFiles` by themselves."""
    return analyzer


def file_ast(analyzer, path, text: str, units=None):
    """The analyzer's libclang view of `path` at `text`, parsed with the flags a compile would use."""
    return (units or analyzer.units).file_ast(str(path), text, analyzer.planned_parse_args(str(path)))


def rng(span) -> tuple[int, int, int, int]:
    return (span.line, span.column, span.end_line, span.end_column)


def text_of(path: Path, r: tuple[int, int, int, int]) -> str:
    lines = path.read_text().split("\n")
    assert r[0] == r[2], r
    return lines[r[0] - 1].encode()[r[1] - 1:r[3] - 1].decode()


def only(analysis, code: str):
    (d,) = [d for d in analysis.diagnostics if d.code == code]
    return d


def source_files(analysis):
    (prog, result, src), *_ = analysis.results.values()
    return src.files


# -- the corpus, through the analyzer

def test_leak_is_the_return_statement(wired):
    path = CORPUS_CASES / "obj_leak.bpf.c"
    analysis = wired.analyze(path.read_text(), str(path))
    assert source_files(analysis).ast(str(path)) is not None, "libclang did not parse the file"
    d = only(analysis, "reference-leak")
    assert rng(d.span) == (12, 2, 12, 11)
    assert text_of(path, rng(d.span)) == "return 0;"


def test_related_acquiring_call_is_the_macro_invocation(wired):
    path = CORPUS_CASES / "obj_leak.bpf.c"
    d = only(wired.analyze(path.read_text(), str(path)), "reference-leak")
    (r,) = d.related
    assert rng(r.span) == (7, 19, 7, 42)
    assert text_of(path, rng(r.span)) == "bpf_obj_new(typeof(*e))"


def test_use_after_unlock_is_the_whole_assignment(wired):
    path = CORPUS_CASES / "list_use_after_unlock.bpf.c"
    d = only(wired.analyze(path.read_text(), str(path)), "non-owning-after-unlock")
    assert rng(d.span) == (21, 2, 21, 13)
    assert text_of(path, rng(d.span)) == "e->data = 2"     # not the trailing comment
    related = {text_of(path, rng(r.span)) for r in d.related}
    assert related == {"bpf_spin_unlock(&glock);", "bpf_list_push_back(&ghead, &e->node)"}


def test_double_drop_is_the_second_call(wired):
    path = CORPUS_CASES / "obj_double_drop.bpf.c"
    assert path.read_text().split("\n")[11] == "\tbpf_obj_drop(e);"
    d = only(wired.analyze(path.read_text(), str(path)), "not-referenced-or-trusted")
    assert rng(d.span) == (12, 2, 12, 17)
    assert text_of(path, rng(d.span)) == "bpf_obj_drop(e)"
    (r,) = d.related
    assert rng(r.span) == (11, 2, 11, 18)           # the release, as a statement


def test_null_arg_is_the_release_call(wired):
    path = CORPUS_CASES / "task_from_pid_no_null_check.bpf.c"
    d = only(wired.analyze(path.read_text(), str(path)), "null-arg")
    assert rng(d.span) == (8, 2, 8, 21)
    assert text_of(path, rng(d.span)) == "bpf_task_release(t)"
    (r,) = d.related
    assert text_of(path, rng(r.span)) == "bpf_task_from_pid(1)"


def test_leak_under_brace_less_if_in_a_bpf_prog_function(wired):
    """BPF_PROG() declares the function in a macro: libclang finds its body all the same."""
    path = CORPUS_CASES / "ringbuf_reserve_leak.bpf.c"
    d = only(wired.analyze(path.read_text(), str(path)), "reference-leak")
    assert rng(d.span) == (17, 3, 17, 12)
    assert {text_of(path, rng(r.span)) for r in d.related} == {"bpf_ringbuf_reserve(&rb, sizeof(int), 0)"}


# -- what only the AST gets right

MULTILINE = """\
#include "own.h"
struct elem {
	int data;
	struct bpf_list_node node;
};

private(A) struct bpf_spin_lock glock;
private(A) struct bpf_list_head ghead __contains(elem, node);

SEC("tc")
int multiline(void *ctx)
{
	struct elem *e = bpf_obj_new(typeof(*e));

	if (!e)
		return 0;
	bpf_spin_lock(&glock);
	bpf_list_push_back(&ghead,
			   &e->node);
	bpf_spin_unlock(&glock);
	e->data = 2;
	return 0;
}
char _license[] SEC("license") = "GPL";
"""


def test_multi_line_call_is_covered_whole(wired, tmp_path, monkeypatch):
    path = tmp_path / "multiline.bpf.c"
    path.write_text(MULTILINE)
    d = only(wired.analyze(MULTILINE, str(path)), "non-owning-after-unlock")
    inserted = [r for r in d.related if "non-owning here" in r.message][0]
    assert rng(inserted.span) == (18, 2, 19, 16)     # through `&e->node)`
    # the lexical fallback can only see one line of it
    monkeypatch.setattr(sources, "AST_RANGES", False)
    lexical = only(wired.analyze(MULTILINE, str(path)), "non-owning-after-unlock")
    assert rng(lexical.span) == rng(d.span) == (21, 2, 21, 13)
    assert [rng(r.span)[2] for r in lexical.related if "non-owning here" in r.message] == [18]


def test_file_ast_queries(analyzer):
    path = CORPUS_CASES / "list_pop_leak.bpf.c"
    ast = file_ast(analyzer, path, path.read_text())
    assert ast is not None
    # member access through a macro: the macro invocation and the member
    assert ast.expression(26, 45) == (26, 9, 26, 49)
    assert ast.statement(26, 45) == (26, 2, 26, 50)
    # the call on the right of an assignment is the call, not the assignment
    assert ast.expression(22, 6) == (22, 6, 22, 32)
    # on a closing brace there is no expression: the caller falls back
    assert ast.expression(27, 1) is None
    info = ast.statement_info(25, 0)
    assert info.kind == "RETURN_STMT" and info.braceless_body and info.range == (25, 3, 25, 12)


def test_object_file_input_reads_the_source_from_disk(wired, tmp_path):
    obj = clang_object(CORPUS_CASES / "list_use_after_unlock.bpf.c", tmp_path)
    analysis = wired.analyze_object_file(str(obj))
    d = only(analysis, "non-owning-after-unlock")
    assert d.span.file.endswith("list_use_after_unlock.bpf.c")
    assert rng(d.span) == (21, 2, 21, 13)
    assert source_files(analysis).ast(d.span.file) is not None


def test_fallback_when_libclang_is_unavailable(analyzer, monkeypatch):
    """No libclang (or no options): the lexical heuristic gives the same corpus ranges."""
    monkeypatch.setattr(libclang, "load", lambda: None)
    files = SourceFiles(units=analyzer.units, parse_args=analyzer.planned_parse_args)
    assert files.ast(str(CORPUS_CASES / "obj_leak.bpf.c")) is None
    for case, code, want in (("obj_leak", "reference-leak", (12, 2, 12, 11)),
                             ("list_use_after_unlock", "non-owning-after-unlock", (21, 2, 21, 13)),
                             ("obj_double_drop", "not-referenced-or-trusted", (12, 2, 12, 17)),
                             ("task_from_pid_no_null_check", "null-arg", (8, 2, 8, 21))):
        path = CORPUS_CASES / f"{case}.bpf.c"
        assert rng(only(analyzer.analyze(path.read_text(), str(path)), code).span) == want


def test_a_parse_that_disagrees_with_the_compile_is_not_used(tmp_path):
    """Without the include dirs own.h is missing: errors in the file, so no AST (and no exception)."""
    from bpf_lsp.frontend.compile import CompileOptions, planned_argv
    path = tmp_path / "obj_leak.bpf.c"
    path.write_text((CORPUS_CASES / "obj_leak.bpf.c").read_text())
    units = ranges.TranslationUnits()
    for options in (CompileOptions(), CompileOptions(extra_args=("-fno-such-flag",))):
        args = ranges.parse_args(*planned_argv(str(path), options))
        assert units.file_ast(str(path), path.read_text(), args) is None


def test_parse_and_reparse_times(analyzer, tmp_path, monkeypatch):
    """Printed, not asserted. A one-shot process (`check`) parses each file once, without building a
    preamble; once edits are seen (an editor), a new file's first parse precompiles its preamble
    (vmlinux.h) so that its edits re-parse in milliseconds."""
    text = (CORPUS_CASES / "obj_leak.bpf.c").read_text()
    for mode, edits_seen in (("one-shot", False), ("editor", True)):
        units = ranges.TranslationUnits()
        units.edits_seen = edits_seen
        path = tmp_path / f"{mode}.bpf.c"
        path.write_text(text)
        times = []
        for i in range(4):
            edited = text.replace("e->data = 1;", f"e->data = {i + 1};")
            started = time.perf_counter()
            ast = file_ast(analyzer, path, edited, units)
            assert ast.expression(11, 10) == (11, 2, 11, 13)
            times.append(time.perf_counter() - started)
        print(f"\nlibclang, {mode}: cold parse {times[0]:.3f} s, first reparse {times[1]:.3f} s, "
              f"then {times[2] * 1e3:.1f} ms, {times[3] * 1e3:.1f} ms")


def test_concurrent_queries_are_serialised(analyzer):
    """libclang TUs are not thread-safe: queries from many threads (as the server's workers make)."""
    cases = ["obj_leak", "obj_double_drop", "list_use_after_unlock", "task_from_pid_no_null_check"]
    want = {"obj_leak": (11, 10, (11, 2, 11, 13)), "obj_double_drop": (12, 2, (12, 2, 12, 17)),
            "list_use_after_unlock": (21, 10, (21, 2, 21, 13)),
            "task_from_pid_no_null_check": (8, 2, (8, 2, 8, 21))}
    failures: list = []

    def work(case: str, round_: int) -> None:
        path = CORPUS_CASES / f"{case}.bpf.c"
        try:
            text = path.read_text() + "\n" * (round_ % 2)
            ast = file_ast(analyzer, path, text)
            line, col, expected = want[case]
            got = ast.expression(line, col)
            if got != expected:
                failures.append((case, got))
        except Exception as e:  # noqa: BLE001
            failures.append((case, e))

    threads = [threading.Thread(target=work, args=(c, r)) for r in range(3) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(analyzer.units) <= ranges.MAX_TUS


def test_byte_columns_after_non_ascii_text(wired, tmp_path):
    """Line info and libclang both count bytes: a UTF-8 comment before the expression shifts both."""
    text = MULTILINE.replace("\te->data = 2;", "\t/* ünïcödé */ e->data = 2;")
    path = tmp_path / "utf8.bpf.c"
    path.write_text(text)
    raw = text.split("\n")[20].encode()
    start = raw.index(b"e->") + 1
    want = (21, start, 21, start + len(b"e->data = 2"))
    ast = file_ast(wired, path, text)
    assert ast.expression(21, raw.index(b"=") + 1) == want
    assert rng(only(wired.analyze(text, str(path)), "non-owning-after-unlock").span) == want


def test_batch_parses_share_a_precompiled_preamble_on_disk(analyzer, tmp_path):
    """In batch runs a preamble seen before is parsed from a PCH on disk (libclang's own), which
    gives the same ranges as a plain parse; a header changed since then makes clang refuse the PCH,
    and the parse is plain again (the next one builds it anew)."""
    header = tmp_path / "mine.h"
    header.write_text('#include "own.h"\n')
    text = (CORPUS_CASES / "obj_leak.bpf.c").read_text().replace('#include "own.h"', '#include "mine.h"')
    units = ranges.TranslationUnits(preamble_dir=tmp_path / "pch")
    args = (*analyzer.planned_parse_args(str(tmp_path / "a.bpf.c")), "-I", str(tmp_path))

    def parse(name: str) -> tuple:
        path = tmp_path / name
        path.write_text(text)
        units.clear()
        ast = units.file_ast(str(path), text, args)
        return ast.expression(11, 10), [p.name for p in (tmp_path / "pch").glob("*/preamble.pch")]

    assert parse("a.bpf.c") == ((11, 2, 11, 13), [])                  # seen once: plain
    assert parse("b.bpf.c") == ((11, 2, 11, 13), ["preamble.pch"])    # seen again: built and used
    plain, built = units.stats["parse"][-2:]
    assert parse("c.bpf.c") == ((11, 2, 11, 13), ["preamble.pch"])
    fast = units.stats["parse"][-1]
    header.write_text('#include "own.h"\n/* changed */\n')
    assert parse("d.bpf.c") == ((11, 2, 11, 13), [])                  # stale: refused, plain parse
    print(f"\nlibclang first parse: plain {plain:.3f} s, building the PCH {built:.3f} s, with it {fast * 1e3:.1f} ms")
