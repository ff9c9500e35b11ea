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


def test_a_directory_or_a_missing_file_is_an_error_not_a_traceback(tmp_path):
    p = run("check", str(tmp_path), str(tmp_path / "gone.bpf.c"))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr + p.stdout
    assert f"{tmp_path}: error: {tmp_path}: is a directory" in p.stdout + p.stderr
    assert "gone.bpf.c: no such file" in p.stdout + p.stderr


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


def _leak_findings(p):
    progs = json.loads(p.stdout)["files"][0]["programs"]
    return [f for pr in progs for f in pr["findings"] if f["code"] == "reference-leak"], progs


def test_an_object_without_debug_info_still_reports_its_leak(tmp_path):
    """The verdict comes from the verifier's findings: a finding with no source line is shown on
    the file's first line with its instruction, never dropped."""
    from conftest import clang_object
    obj = clang_object(CORPUS_CASES / "task_acquire_leak.bpf.c", tmp_path, debug=False)
    p = run("check", "--format", "json", str(obj))
    assert p.returncode == 1, p.stdout
    leaks, progs = _leak_findings(p)
    assert progs[0]["verdict"] == "reject"
    (leak,) = leaks
    assert leak["severity"] == "error" and (leak["line"], leak["column"]) == (1, 1)
    assert "no source line" in leak["message"] and "instruction" in leak["message"]
    assert leak["kernel_message"].startswith("Unreleased reference")
    assert "?" not in leak["message"]


def test_a_stripped_object_and_one_whose_sources_are_gone(tmp_path):
    import shutil
    from conftest import clang_object
    src = tmp_path / "src"
    src.mkdir()
    copy = src / "task_acquire_leak.bpf.c"
    shutil.copy(CORPUS_CASES / "task_acquire_leak.bpf.c", copy)
    obj = clang_object(copy, tmp_path)
    stripped = tmp_path / "stripped.o"
    llvm_strip = shutil.which("llvm-strip-19") or shutil.which("llvm-strip")
    if llvm_strip:
        subprocess.run([llvm_strip, "-g", str(obj), "-o", str(stripped)], check=True)
        p = run("check", "--format", "json", str(stripped))
        assert p.returncode == 1 and _leak_findings(p)[0]
    shutil.rmtree(src)            # the object's line info now names a file that does not exist
    p = run("check", "--format", "json", str(obj))
    assert p.returncode == 1
    (leak,) = _leak_findings(p)[0]
    assert leak["line"] > 1 and "?" not in leak["message"]


def test_summary_counts_programs_per_file_and_in_total(tmp_path):
    leak, ok = CORPUS_CASES / "task_acquire_leak.bpf.c", CORPUS_CASES / "task_acquire_release_ok.bpf.c"
    p = run("check", "--summary", str(leak), str(ok))
    assert p.returncode == 1
    rows = [line.split() for line in p.stdout.splitlines()[-3:]]
    assert rows[0][1:5] == ["1", "0", "1", "0"] and rows[0][0].endswith("task_acquire_leak.bpf.c")
    assert rows[1][1:5] == ["1", "1", "0", "0"]
    assert rows[2][:5] == ["total", "2", "1", "1", "0"] and float(rows[2][5]) > 0


def test_link_verifies_the_files_of_one_program_together(tmp_path):
    """Alone, a.bpf.c calls a function it does not have (unknown: incomplete, no error); linked with
    b.bpf.c the call resolves, and the kernel's rule applies: a global function must return a
    scalar (this kernel says "Global function lookup() doesn't return scalar"), so the pointer
    it returns cannot be dereferenced."""
    from conftest import FIXTURES
    (tmp_path / "a.bpf.c").write_text('#include "fixture.h"\nstruct task_ctx { long seen; };\n'
                                      'extern struct task_ctx *lookup(struct task_struct *p);\n'
                                      'SEC("tp_btf/task_newtask")\n'
                                      'int BPF_PROG(linked_prog, struct task_struct *task, u64 clone_flags)\n'
                                      '{\n\tstruct task_ctx *t = lookup(task);\n\tif (!t)\n\t\treturn 0;\n'
                                      '\treturn t->seen;\n}\nchar LICENSE[] SEC("license") = "GPL";\n')
    (tmp_path / "b.bpf.c").write_text('#include "fixture.h"\nstruct task_ctx { long seen; };\n'
                                      'struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); '
                                      '__uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); '
                                      '__type(value, struct task_ctx); } stor SEC(".maps");\n'
                                      '__noinline struct task_ctx *lookup(struct task_struct *p)\n'
                                      '{\n\treturn bpf_task_storage_get(&stor, p, 0, 0);\n}\n')
    inc = ["-I", str(FIXTURES / "include")]
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "a.bpf.c").write_text((tmp_path / "a.bpf.c").read_text())
    alone = run("check", "--format", "json", *inc, str(tmp_path / "alone" / "a.bpf.c"))
    (prog,) = json.loads(alone.stdout)["files"][0]["programs"]
    assert alone.returncode == 0 and prog["verdict"] == "incomplete"
    assert [f["code"] for f in prog["findings"]] == ["model-gap"]
    linked = run("check", "--link", "--format", "json", *inc, str(tmp_path / "a.bpf.c"), str(tmp_path / "b.bpf.c"))
    progs = json.loads(linked.stdout)["files"][0]["programs"]
    assert linked.returncode == 1
    assert {p["name"]: p["verdict"] for p in progs}["linked_prog"] == "reject"
    found = {(f["code"], f["line"]) for p in progs if p["name"] == "linked_prog" for f in p["findings"]}
    # b.bpf.c's global function returns a pointer: the kernel rejects the program at the call (line 7)
    assert found == {("global-func-return", 7)}
    # a sibling that defines what a file leaves undefined is linked without being asked (as the
    # editor does it); the sibling's own programs are not reported with the file
    sibling = run("check", "--format", "json", *inc, str(tmp_path / "a.bpf.c"))
    (prog,) = json.loads(sibling.stdout)["files"][0]["programs"]
    assert sibling.returncode == 1 and prog["name"] == "linked_prog" and prog["verdict"] == "reject"
    assert {(f["code"], f["line"]) for f in prog["findings"]} == found
    # the sibling changed on disk (it no longer defines lookup()): rebuilt, and no longer linked
    (tmp_path / "b.bpf.c").write_text('#include "fixture.h"\nint unrelated(void) { return 0; }\n')
    changed = run("check", "--format", "json", *inc, str(tmp_path / "a.bpf.c"))
    (prog,) = json.loads(changed.stdout)["files"][0]["programs"]
    assert changed.returncode == 0 and prog["verdict"] == "incomplete"
