"""`bpf-lsp check --format sarif` against the official SARIF 2.1.0 schema and the code registry.

The CLI runs as a subprocess, as a CI job runs it; the schema is the OASIS one (tests/data),
validated with the draft it declares (draft-04) plus checks of its `uri`/`uri-reference` formats,
which jsonschema only enforces with optional packages.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest

from bpf_lsp.codes import CODES
from conftest import CORPUS_CASES, REPO, corpus_include_dirs

SCHEMA = json.loads((REPO / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
BPF_LSP = Path(sys.executable).with_name("bpf-lsp")

LEAK, UNLOCK, OK = "obj_leak", "list_use_after_unlock", "list_push_ok"
# (ruleId, level, start line, related lines) each case must produce; lines are where bpf-lsp puts
# the finding (the leaking `return`, the access), see docs/diagnostics.md "Where findings sit"
EXPECTED = {
    LEAK: [("reference-leak", "error", 12, [7])],
    UNLOCK: [("non-owning-after-unlock", "error", 21, [20, 18])],
    OK: [],
}

# RFC 3986: the characters a URI may hold, and a scheme
_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
formats = jsonschema.FormatChecker(formats=())


@formats.checks("uri")
def _is_uri(value) -> bool:
    return not isinstance(value, str) or bool(_URI_CHARS.match(value) and _SCHEME.match(value))


@formats.checks("uri-reference")
def _is_uri_reference(value) -> bool:
    # a relative reference's first segment may not hold ':' (it would read as a scheme)
    if not isinstance(value, str) or _SCHEME.match(value):
        return not isinstance(value, str) or _is_uri(value)
    return bool(_URI_CHARS.match(value)) and ":" not in value.split("/")[0]


def schema_errors(log: dict) -> list[str]:
    validator_class = jsonschema.validators.validator_for(SCHEMA)
    assert validator_class is jsonschema.Draft4Validator   # what the schema's "$schema" declares
    validator = validator_class(SCHEMA, format_checker=formats)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]


def run_check(paths: list[str], cwd: Path) -> tuple[int, dict]:
    if not BPF_LSP.exists():
        pytest.skip(f"{BPF_LSP} is not installed (pip install -e .)")
    includes = [arg for d in corpus_include_dirs() for arg in ("-I", d)]
    proc = subprocess.run([str(BPF_LSP), "check", "--format", "sarif", *includes, *paths], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def corpus_run():
    paths = [str(CORPUS_CASES / f"{case}.bpf.c") for case in EXPECTED]
    return run_check(paths, REPO)


def results_by_case(log: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {case: [] for case in EXPECTED}
    for res in log["runs"][0]["results"]:
        uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        out[Path(unquote(uri)).name[: -len(".bpf.c")]].append(res)
    return out


def test_log_validates_against_the_sarif_schema(corpus_run):
    code, log = corpus_run
    assert code == 1, "a leak is an error finding: exit 1"
    assert log["version"] == "2.1.0"
    assert schema_errors(log) == []


def test_the_validator_does_catch_invalid_logs(corpus_run):
    # guard against a validator that accepts everything (wrong draft, formats not checked)
    log = json.loads(json.dumps(corpus_run[1]))
    res = log["runs"][0]["results"][0]
    res["level"] = "fatal"
    res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "a dir/x.c"
    res["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    errors = "\n".join(schema_errors(log))
    assert "'fatal' is not one of" in errors
    assert "is not a 'uri-reference'" in errors
    assert "less than the minimum of 1" in errors


def test_rules_carry_help_from_the_registry(corpus_run):
    driver = corpus_run[1]["runs"][0]["tool"]["driver"]
    assert driver["name"] == "bpf-lsp"
    rules = {r["id"]: r for r in driver["rules"]}
    assert set(rules) == {"reference-leak", "non-owning-after-unlock"}
    for name, rule in rules.items():
        code = CODES[name]
        assert code.fix in rule["help"]["text"]
        assert code.fix in rule["help"]["markdown"]
        assert rule["shortDescription"]["text"] == code.summary
        assert rule["fullDescription"]["text"] == code.why
        assert rule["helpUri"] == code.doc_url
        assert rule["defaultConfiguration"]["level"] == "error"


def test_results_have_rule_level_and_line(corpus_run):
    log = corpus_run[1]
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    got = results_by_case(log)
    for case, expected in EXPECTED.items():
        actual = []
        for res in got[case]:
            assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
            region = res["locations"][0]["physicalLocation"]["region"]
            related = [r["physicalLocation"]["region"]["startLine"] for r in res.get("relatedLocations", [])]
            actual.append((res["ruleId"], res["level"], region["startLine"], related))
        assert actual == expected, case


def test_leak_points_at_the_acquiring_call(corpus_run):
    (leak,) = results_by_case(corpus_run[1])[LEAK]
    (acquired,) = leak["relatedLocations"]
    assert "acquired" in acquired["message"]["text"]
    assert acquired["physicalLocation"]["artifactLocation"] == leak["locations"][0]["physicalLocation"]["artifactLocation"]
    assert leak["properties"]["kernelMessage"].startswith("Unreleased reference")
    assert leak["properties"]["program"] == LEAK


def test_uris_are_relative_to_the_working_directory(corpus_run):
    for res in corpus_run[1]["runs"][0]["results"]:
        uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not _SCHEME.match(uri)
        assert (REPO / unquote(uri)).resolve().is_file()
    (invocation,) = corpus_run[1]["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is True


def test_awkward_file_names_and_missing_files(tmp_path):
    """Spaces and '#' must be percent-encoded; a missing file is a tool notification, not silence."""
    src = tmp_path / "odd dir" / "leak #1.bpf.c"
    src.parent.mkdir()
    shutil.copy(CORPUS_CASES / f"{LEAK}.bpf.c", src)
    code, log = run_check([str(src), str(tmp_path / "absent.bpf.c")], tmp_path)
    assert code == 2, "a missing file is a usage error"
    assert schema_errors(log) == []
    run = log["runs"][0]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert uris == {"odd%20dir/leak%20%231.bpf.c"}
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "absent.bpf.c" in note["message"]["text"]


def test_ci_doc_uploads_the_sarif_log():
    text = (REPO / "docs" / "ci.md").read_text()
    (workflow,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    for needle in ("bpf-lsp check --format sarif", "github/codeql-action/upload-sarif@",
                   "security-events: write", "sarif_file: bpf-lsp.sarif", "*.bpf.c"):
        assert needle in workflow, needle
    assert "\t" not in workflow, "YAML forbids tabs for indentation"
