"""docs/diagnostics.md is generated from bpf_lsp/codes.py and must not go stale.

CI runs this module, so a registry edit without `python -m bpf_lsp.docs_gen` fails the build.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bpf_lsp import docs_gen
from bpf_lsp.codes import CODES, DOCS_URL
from conftest import REPO

DOC = REPO / "docs" / "diagnostics.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def sections(doc: str) -> dict[str, str]:
    """{anchor id: text up to the next anchor} for every explicit `<a id>` in the file."""
    parts = re.split(r'^<a id="([^"]+)"></a>\n', doc, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_committed_file_is_what_the_generator_produces(doc):
    assert doc == docs_gen.generate(), "docs/diagnostics.md is stale: run `python -m bpf_lsp.docs_gen`"


def test_check_mode_passes_on_the_committed_file():
    proc = subprocess.run([sys.executable, "-m", "bpf_lsp.docs_gen", "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_mode_fails_with_a_diff_on_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "diagnostics.md"
    stale.write_text(docs_gen.generate().replace("**Severity:** error", "**Severity:** warning", 1))
    assert docs_gen.main(["--check", "--output", str(stale)]) == 1
    out = capsys.readouterr().out
    assert "-**Severity:** warning" in out and "+**Severity:** error" in out
    # --check never writes
    assert "**Severity:** warning" in stale.read_text()
    assert docs_gen.main(["--output", str(stale)]) == 0
    assert docs_gen.main(["--check", "--output", str(stale)]) == 0


def test_check_mode_fails_when_the_file_is_missing(tmp_path):
    assert docs_gen.main(["--check", "--output", str(tmp_path / "absent.md")]) == 1


def test_every_code_has_one_complete_section(doc):
    found = sections(doc)
    assert list(found) == list(CODES), "one section per code, in registry order"
    for name, code in CODES.items():
        body = found[name]
        heading = body.splitlines()[0]
        assert heading == f"### {name}"
        assert f"**Severity:** {code.severity}" in body
        assert code.summary in body
        assert code.why in body
        assert code.fix in body
        if code.kernel:
            assert f"```text\n{code.kernel}\n```" in body
        if code.example:
            assert f"```c\n{code.example}\n```" in body


def test_every_doc_url_resolves_to_an_anchor_in_the_file(doc):
    assert DOCS_URL.endswith("/docs/diagnostics.md"), "doc_url must point at this generated file"
    ids = re.findall(r'<a id="([^"]+)"></a>', doc)
    assert len(ids) == len(set(ids)), "duplicate anchors"
    for code in CODES.values():
        url, _, fragment = code.doc_url.partition("#")
        assert url == DOCS_URL
        assert fragment in ids, f"{code.doc_url} has no anchor"


def test_headings_produce_the_same_anchors_on_github(doc):
    # links keep working even where a renderer drops the raw <a id> (e.g. a sanitising viewer)
    headings = [h for h in re.findall(r"^#{1,6} (.+)$", doc, flags=re.M)]
    slugs = [github_slug(h) for h in headings]
    for name in CODES:
        assert name in slugs
    assert len(slugs) == len(set(slugs)), "two headings would get the same GitHub anchor"
    assert "where-findings-sit" in slugs


def test_index_links_every_code(doc):
    for name in CODES:
        assert f"[`{name}`](#{name})" in doc


def test_code_fences_are_balanced(doc):
    # an example containing backticks must not close its block early
    fences = re.findall(r"^(`{3,})", doc, flags=re.M)
    assert len(fences) % 2 == 0
    assert docs_gen._fenced("a ```b``` c", "c").startswith("````c\n")
