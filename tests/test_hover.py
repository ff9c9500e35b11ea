"""Hovers: a variable's ownership state at a line (from stored states only), a kfunc's contract."""
from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import pytest

from conftest import CORPUS_CASES


def analysis_of(analyzer, path: Path, text: str | None = None):
    return analyzer.analyze(text if text is not None else path.read_text(), str(path))


def hover(analysis, line: int, word: str, nth: int = 0) -> str | None:
    """Hover on the `nth` whole-word occurrence of `word` on a 1-based line."""
    text = Path(analysis.path).read_text().split("\n")[line - 1] if Path(analysis.path).exists() else ""
    matches = list(re.finditer(rf"\b{re.escape(word)}\b", text))
    assert len(matches) > nth, (word, text)
    column = len(text[: matches[nth].start()].encode("utf-8")) + 1
    return analysis.hover(line, column)


@pytest.fixture(scope="module")
def obj_leak(analyzer):
    return analysis_of(analyzer, CORPUS_CASES / "obj_leak.bpf.c")


@pytest.fixture(scope="module")
def list_use_after_unlock(analyzer):
    return analysis_of(analyzer, CORPUS_CASES / "list_use_after_unlock.bpf.c")


def test_owning_reference_with_type_and_acquisition(obj_leak):
    md = hover(obj_leak, 11, "e")
    assert md.startswith("**e** `struct elem *`"), md
    assert "owning reference" in md and "non-owning" not in md
    assert "NULL-checked" in md
    assert "acquired by `bpf_obj_new()` on line 7" in md
    assert "differs" not in md and "lock held" not in md


def test_before_the_null_check_it_may_be_null(obj_leak):
    md = hover(obj_leak, 9, "e")
    assert "owning reference, maybe NULL" in md


def test_declaration_line_shows_the_state_after_it(obj_leak):
    md = hover(obj_leak, 7, "e", nth=0)
    assert md.startswith("**e** `struct elem *`")
    assert "after this line: owning reference, maybe NULL" in md
    assert "acquired by `bpf_obj_new()` on line 7" in md


def test_non_owning_inside_the_critical_section(list_use_after_unlock):
    md = hover(list_use_after_unlock, 19, "e")
    assert "`struct elem *`" in md
    assert "non-owning reference, valid until `bpf_spin_unlock(&glock)`" in md
    assert "`bpf_list_push_back()` on line 18 gave the object to the collection" in md
    assert "lock held: `bpf_spin_lock(&glock)` (line 17)" in md


def test_invalidated_after_unlock(list_use_after_unlock):
    md = hover(list_use_after_unlock, 21, "e")
    assert "`struct elem *`" in md
    assert "invalidated: a non-owning reference that died at `bpf_spin_unlock(&glock)` on line 20" in md
    assert "lock held" not in md


def test_released_after_drop(analyzer):
    md = hover(analysis_of(analyzer, CORPUS_CASES / "obj_double_drop.bpf.c"), 12, "e")
    assert "released by `bpf_obj_drop(e)` on line 11; unusable" in md


def test_referenced_kernel_object(analyzer):
    md = hover(analysis_of(analyzer, CORPUS_CASES / "task_from_pid_no_null_check.bpf.c"), 8, "t")
    assert md.startswith("**t** `struct task_struct *`")
    assert "referenced kernel object, maybe NULL" in md
    assert "acquired by `bpf_task_from_pid()` on line 6" in md
    assert "release with `bpf_task_release()`" in md


def test_node_pointer_names_the_object(analyzer):
    md = hover(analysis_of(analyzer, CORPUS_CASES / "list_pop_leak.bpf.c"), 26, "n")
    assert "`struct bpf_list_node *`" in md
    assert "owning reference to a `struct elem`, NULL-checked" in md


def test_obj_leak_one_path_single_state_lines(analyzer):
    """Every path reaching lines 11 and 14 agrees; the hover says so without path counts."""
    analysis = analysis_of(analyzer, CORPUS_CASES / "obj_leak_one_path.bpf.c")
    for line in (11, 14):
        md = hover(analysis, line, "e")
        assert "owning reference, NULL-checked" in md and "differs" not in md, md
    assert "maybe NULL" in hover(analysis, 9, "e")


NULL_OR_OWNING = """\
#include "own.h"
struct elem { int data; };

SEC("tc")
int null_or_owning(struct __sk_buff *skb)
{
	struct elem *e = NULL;

	if (skb->len > 100)
		e = bpf_obj_new(typeof(*e));
	bpf_printk("len %d", skb->len);
	if (e)
		bpf_obj_drop(e);
	return 0;
}
char _license[] SEC("license") = "GPL";
"""


def test_differences_across_paths(analyzer, tmp_path):
    path = tmp_path / "null_or_owning.bpf.c"
    path.write_text(NULL_OR_OWNING)
    analysis = analysis_of(analyzer, path)
    md = hover(analysis, 12, "e")
    assert "differs across the 2 paths reaching this line (NULL or owning):" in md, md
    assert "- NULL" in md
    assert "- owning reference, maybe NULL: check it before use; acquired by `bpf_obj_new()` on line 10" in md
    # inside the `if (e)`: one state again
    md = hover(analysis, 13, "e")
    assert "differs" not in md and "owning reference, NULL-checked" in md
    # on the assignment line, the join after it is not this line's state
    md = hover(analysis, 10, "e")
    assert "differs" not in md and "acquired by `bpf_obj_new()` on line 10" in md


@pytest.mark.parametrize("line,word,contract", [
    (18, "bpf_list_push_back", "takes ownership of `node`; `node` becomes non-owning until `bpf_spin_unlock`"),
    (20, "bpf_spin_unlock", "releases the lock: every non-owning reference taken under it dies"),
    (17, "bpf_spin_lock", "takes the lock"),
    (13, "bpf_obj_new", "allocates an object of the given type"),
])
def test_kfunc_contracts(list_use_after_unlock, line, word, contract):
    md = hover(list_use_after_unlock, line, word)
    assert md.startswith(f"**{word}** ("), md
    assert contract in md


def test_bpf_obj_drop_contract(obj_leak, analyzer):
    md = hover(analysis_of(analyzer, CORPUS_CASES / "obj_double_drop.bpf.c"), 11, "bpf_obj_drop")
    assert md.startswith("**bpf_obj_drop** (kfunc; releases its argument)")
    assert "frees an object: takes an owning reference" in md


def test_no_hover_on_plain_words(obj_leak):
    assert hover(obj_leak, 12, "return") is None


def test_hover_latency_uses_stored_states_only(analyzer, obj_leak, list_use_after_unlock):
    """Every identifier of a few files hovered: p50 (printed) from stored states, no re-analysis."""
    analyses = [obj_leak, list_use_after_unlock,
                analysis_of(analyzer, CORPUS_CASES / "obj_leak_one_path.bpf.c"),
                analysis_of(analyzer, CORPUS_CASES / "list_pop_leak.bpf.c")]
    compiles = analyzer.reuse_log[:]
    times, shown = [], []
    for analysis in analyses:
        for number, text in enumerate(Path(analysis.path).read_text().split("\n"), start=1):
            for m in re.finditer(r"[A-Za-z_]\w*", text):
                started = time.perf_counter()
                md = analysis.hover(number, m.start() + 1)
                elapsed = time.perf_counter() - started
                times.append(elapsed)
                if md:
                    shown.append(elapsed)
    assert analyzer.reuse_log == compiles
    for label, sample in (("all identifiers", times), ("with a hover", shown)):
        p50 = statistics.median(sample)
        p95 = sorted(sample)[int(len(sample) * 0.95)]
        print(f"\nhover, {label}: {len(sample)} hovers, p50 {p50 * 1e3:.3f} ms, p95 {p95 * 1e3:.3f} ms, "
              f"max {max(sample) * 1e3:.3f} ms")
