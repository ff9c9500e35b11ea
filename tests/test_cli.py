"""`bpf-lsp check`, `dump` and `doctor` as a user runs them: output shapes and exit codes."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import CORPUS_CASES, corpus_include_dirs


def run(*args, cwd=None):
    flags = [a for d in corpus_include_dirs() for a in ("-I", d)]
    cmd = [sys.executable, "-m", "bpf_lsp", *args[:1], *(flags if args[0] in ("check", "dump") else []), *args[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_check_json_has_the_documented_shape():
    p = run("check", "--format", "json", str(CORPUS_CASES / "obj_leak.bpf.c"), str(CORPUS_CASES / "obj_drop_ok.bpf.c"))
    assert p.returncode == 1, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == {"files"}
    leak, ok = out["files"]
    assert leak["path"].endswith("obj_leak.bpf.c")
    (prog,) = leak["programs"]
    assert (prog["name"], prog["section"], prog["verdict"]) == ("obj_leak", "tc", "reject")
    (f,) = prog["findings"]
    assert set(f) == {"code", "severity", "message", "kernel_message", "line", "column", "end_line",
                      "end_column", "related"}
    assert (f["code"], f["severity"], f["line"]) == ("reference-leak", "error", 12)
    assert f["kernel_message"].startswith("Unreleased reference id=")
    assert f["related"] == [{"line": 7, "column": f["related"][0]["column"], "message": "'e' acquired here by bpf_obj_new()"}]
    assert ok["programs"][0]["verdict"] == "accept" and ok["programs"][0]["findings"] == []


def test_check_text_is_compiler_style_with_caret():
    p = run("check", str(CORPUS_CASES / "list_use_after_unlock.bpf.c"))
    assert p.returncode == 1
    first = p.stdout.splitlines()[0]
    assert first.endswith("[non-owning-after-unlock]") and ":21:2: error: 'e' is a non-owning reference" in first
    assert "\te->data = 2;" in p.stdout and "^~~" in p.stdout


def test_exit_codes_clean_and_usage_and_compile_failure(tmp_path):
    assert run("check", str(CORPUS_CASES / "list_push_ok.bpf.c")).returncode == 0
    assert run("check", "--format", "nope", "x.c").returncode == 2
    broken = tmp_path / "broken.bpf.c"
    broken.write_text('#include "own.h"\nint f(void) { return undeclared_thing; }\n')
    p = run("check", "--format", "json", str(broken))
    assert p.returncode == 2
    (entry,) = json.loads(p.stdout)["files"]
    (diag,) = [d for d in entry["compiler"] if d["severity"] == "error"]
    assert diag["line"] == 2 and "undeclared_thing" in diag["message"]


def test_check_takes_prebuilt_objects(tmp_path):
    from conftest import clang_object
    obj = clang_object(CORPUS_CASES / "obj_double_drop.bpf.c", tmp_path)
    p = run("check", "--format", "json", str(obj))
    assert p.returncode == 1
    (f,) = json.loads(p.stdout)["files"][0]["programs"][0]["findings"]
    assert f["code"] == "not-referenced-or-trusted" and f["line"] == 12   # mapped back to the source on disk


def test_dump_shows_lines_relocations_and_variables():
    p = run("dump", str(CORPUS_CASES / "obj_leak.bpf.c"))
    assert p.returncode == 0, p.stderr
    assert "program obj_leak  section tc  type sched_cls" in p.stdout
    assert "; kfunc bpf_obj_new_impl" in p.stdout
    assert "obj_leak.bpf.c:7:" in p.stdout and "[e=r0]" in p.stdout


def test_doctor_names_the_compiler_and_kernel_btf():
    p = run("doctor")
    assert p.returncode == 0
    assert "clang" in p.stdout and "/sys/kernel/btf/vmlinux" in p.stdout
