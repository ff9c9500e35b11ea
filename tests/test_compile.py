"""The compile frontend against real compilers: the system clang and the ziglang fallback."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from bpf_lsp.frontend import compile as compile_module
from bpf_lsp.frontend import headers, toolchain
from bpf_lsp.frontend.compile import CompileOptions, FixIt, compile_source, parse_diagnostics, screen_user_flags
from bpf_lsp.frontend.compile_db import find_compile_commands, flags_for
from bpf_lsp.frontend.preamble import PreambleCache, blank_preamble, preamble_line_count
from bpf_lsp.settings import Settings
from conftest import CORPUS_CASES, CORPUS_INCLUDE, corpus_cases, vmlinux_dir

SYSTEM_CLANG = shutil.which("clang-19") or shutil.which("clang")
OBJDUMP = shutil.which("llvm-objdump-19") or shutil.which("llvm-objdump")
needs_clang = pytest.mark.skipif(SYSTEM_CLANG is None, reason="no system clang")
BOTH_COMPILERS = pytest.mark.parametrize("compiler_path", [pytest.param(SYSTEM_CLANG, marks=needs_clang), "ziglang"])

PROGRAM_WITH_TYPO = """#include "own.h"

int count_things(int counter)
{
	return countr + 1;
}
char _license[] SEC("license") = "GPL";
"""

PROGRAM_MISSING_SEMICOLON = """#include "own.h"

SEC("xdp")
int prog(struct xdp_md *ctx)
{
	int x = 1
	return x;
}
"""


@pytest.fixture(scope="module", autouse=True)
def private_cache_home(tmp_path_factory):
    """Generated headers go to a throwaway cache, not the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(scope="module")
def pch_cache(tmp_path_factory) -> PreambleCache:
    """One cache for the module: every corpus case shares the preamble `#include "own.h"`."""
    cache = PreambleCache(tmp_path_factory.mktemp("pch"))
    cache.build_synchronously = True
    return cache


def corpus_options(**overrides) -> CompileOptions:
    return CompileOptions(include_dirs=(str(vmlinux_dir()), str(CORPUS_INCLUDE)), **overrides)


def corpus_source(name: str) -> tuple[str, str]:
    path = CORPUS_CASES / f"{name}.bpf.c"
    return path.read_text(), str(path)


def write_settled(path: Path, text: str) -> Path:
    """Write a header dated an hour ago: a PCH is not trusted with a file changed while it was built."""
    path.write_text(text)
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    return path


def errors(result) -> list:
    return [d for d in result.diagnostics if d.severity == "error"]


# ---------------------------------------------------------------------------
# the corpus through both compilers


@needs_clang
@pytest.mark.parametrize("name", corpus_cases())
def test_corpus_case_compiles_with_system_clang(name, pch_cache):
    text, path = corpus_source(name)
    result = compile_source(text, path, corpus_options(compiler_path=SYSTEM_CLANG), pch_cache)
    assert result.ok, result.diagnostics
    assert result.object[:4] == b"\x7fELF"
    assert result.used_pch
    assert result.compiler.kind == "setting"


@pytest.fixture(scope="module")
def zig_path(tmp_path_factory):
    """A PATH with no clang on it, so discovery must fall back to ziglang."""
    return str(tmp_path_factory.mktemp("no-clang-bin"))


@pytest.mark.parametrize("name", corpus_cases())
def test_corpus_case_compiles_with_ziglang_fallback(name, pch_cache, zig_path, monkeypatch):
    monkeypatch.setenv("PATH", zig_path)
    monkeypatch.delenv(toolchain.ENV_VAR, raising=False)
    assert toolchain.discover_compiler().kind == "ziglang"
    text, path = corpus_source(name)
    result = compile_source(text, path, corpus_options(), pch_cache)
    assert result.ok, result.diagnostics
    assert result.compiler.kind == "ziglang"
    assert result.used_pch


# ---------------------------------------------------------------------------
# line info names the real file


def _btf_ext_file_names(obj: bytes) -> set[str]:
    """Strings of the object that look like source paths (BTF.ext line info and DWARF name files)."""
    return {m.decode() for m in re.findall(rb"/[\w./-]+\.(?:bpf\.c|c|h)", obj)}


@BOTH_COMPILERS
def test_line_info_names_the_real_path(compiler_path, pch_cache, tmp_path):
    text, _ = corpus_source("cpumask_leak")
    # A path that does not exist on disk: the buffer of a file never saved.
    path = str(tmp_path / "unsaved" / "leak.bpf.c")
    result = compile_source(text, path, corpus_options(compiler_path=compiler_path), pch_cache)
    assert result.ok, result.diagnostics
    names = _btf_ext_file_names(result.object)
    assert path in names
    assert not any("bpf-lsp-" in name for name in names), names   # no temp copy or preamble header
    if OBJDUMP:
        obj = tmp_path / "leak.o"
        obj.write_bytes(result.object)
        listing = subprocess.run([OBJDUMP, "-dl", str(obj)], capture_output=True, text=True, check=True).stdout
        assert f"; {path}:6" in listing   # `bpf_cpumask_create()` is on line 6


# ---------------------------------------------------------------------------
# diagnostics


@BOTH_COMPILERS
def test_syntax_error_has_exact_range_and_fixit(compiler_path, pch_cache):
    path = str(CORPUS_CASES / "typo.bpf.c")
    result = compile_source(PROGRAM_MISSING_SEMICOLON, path, corpus_options(compiler_path=compiler_path), pch_cache)
    assert not result.ok and result.object is None
    (error,) = errors(result)
    assert error.file == path
    assert error.message == "expected ';' at end of declaration"
    # "\tint x = 1": the ';' is missing at column 11, just past the `1`.
    assert (error.line, error.column, error.end_line, error.end_column) == (6, 11, 6, 12)
    assert error.fixits == (FixIt(6, 11, 6, 11, ";"),)


@BOTH_COMPILERS
def test_undeclared_identifier_comes_with_its_fixit(compiler_path, pch_cache):
    path = str(CORPUS_CASES / "typo.bpf.c")
    result = compile_source(PROGRAM_WITH_TYPO, path, corpus_options(compiler_path=compiler_path), pch_cache)
    (error,) = errors(result)
    assert error.message == "use of undeclared identifier 'countr'; did you mean 'counter'?"
    assert (error.line, error.column, error.end_line, error.end_column) == (5, 9, 5, 15)
    assert error.fixits == (FixIt(5, 9, 5, 15, "counter"),)
    notes = [d for d in result.diagnostics if d.severity == "note"]
    assert any(n.message == "'counter' declared here" and (n.line, n.column, n.end_column) == (3, 22, 29)
               for n in notes), notes


@needs_clang
def test_warning_carries_its_option(tmp_path):
    text = "int f(void) { int unused; return 0; }\n"
    result = compile_source(text, str(tmp_path / "warn.bpf.c"), CompileOptions(extra_args=("-Wall",)))
    assert result.ok
    (warning,) = [d for d in result.diagnostics if d.severity == "warning"]
    assert warning.option == "-Wunused-variable"
    assert warning.message == "unused variable 'unused'"
    assert (warning.line, warning.column, warning.end_column) == (1, 19, 25)


@needs_clang
def test_missing_header_is_an_error_at_the_include_line(tmp_path):
    text = '// a program\n#include "not_there.h"\nint x;\n'
    path = str(tmp_path / "missing-header.bpf.c")
    result = compile_source(text, path, CompileOptions())
    (error,) = errors(result)
    assert error.file == path and error.message == "'not_there.h' file not found"
    assert (error.line, error.column, error.end_line, error.end_column) == (2, 10, 2, 23)


@needs_clang
def test_missing_vmlinux_h_is_reported_at_the_main_files_include_with_advice(monkeypatch, pch_cache):
    # No generated fallback and no vmlinux.h on the include path: own.h's #include fails.
    monkeypatch.setattr(headers, "ensure_vmlinux_header", lambda cache_dir=None: None)
    text, path = corpus_source("cpumask_leak")
    result = compile_source(text, path, CompileOptions(include_dirs=(str(CORPUS_INCLUDE),)), pch_cache)
    assert not result.ok
    at_include = [d for d in result.diagnostics if d.file == path]
    error = next(d for d in at_include if d.severity == "error")
    assert error.message == "In included file: 'vmlinux.h' file not found"
    assert (error.line, error.column, error.end_column) == (1, 10, 17)   # the "own.h" of `#include "own.h"`
    note = next(d for d in at_include if d.severity == "note")
    assert "bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h" in note.message
    in_header = next(d for d in errors(result) if d.file.endswith("own.h"))
    assert in_header.line == 6


@needs_clang
@pytest.mark.skipif(not headers.find_bpftool() or not headers.KERNEL_BTF.exists(), reason="needs bpftool and BTF")
def test_generated_vmlinux_h_stands_in_for_a_missing_one(pch_cache):
    text, path = corpus_source("obj_leak")
    result = compile_source(text, path, CompileOptions(include_dirs=(str(CORPUS_INCLUDE),)), pch_cache)
    assert result.ok, result.diagnostics
    generated = headers.ensure_vmlinux_header()
    assert generated is not None and (generated / "vmlinux.h").stat().st_size > 100_000
    assert "-idirafter" in result.argv


def test_parse_maps_include_chains_and_escaped_fixits(tmp_path):
    """clang's text, as captured from a real run, with a temp copy standing in for the file."""
    path = str(tmp_path / "main.bpf.c")
    copy = "/tmp/bpf-lsp-x/src/main.bpf.c"
    header = tmp_path / "inner.h"
    header.write_text("int a = 1 +;\n")
    stderr = (f"In file included from {copy}:2:\n"
              f"In file included from {tmp_path}/outer.h:1:\n"
              f"{header}:1:12: error: expected expression\n"
              "    1 | int a = 1 +;\n"
              "      |            ^\n"
              f'{copy}:3:5:{{3:5-3:8}}: warning: caf\u00e9 [-Wfoo,-Werror]\n'
              f'fix-it:"{copy}":{{3:5-3:8}}:"caf\\303\\251 \\"x\\""\n'
              "clang-19: warning: argument unused during compilation: '-Q' [-Wunused-command-line-argument]\n"
              "2 errors generated.\n")
    text = '#include "a.h"\n#include "outer.h"\n    abc;\n'
    diagnostics = parse_diagnostics(stderr, path, text, {copy: path})
    in_header, warning, driver, at_include = diagnostics
    assert (in_header.file, in_header.line, in_header.column, in_header.end_column) == (str(header), 1, 12, 13)
    assert (warning.file, warning.option, warning.message) == (path, "-Wfoo", "caf\u00e9")
    assert warning.fixits == (FixIt(3, 5, 3, 8, 'café "x"'),)
    assert (driver.line, driver.option) == (1, "-Wunused-command-line-argument")
    assert (at_include.file, at_include.line, at_include.column, at_include.end_column) == (path, 2, 10, 19)
    assert at_include.message == "In included file: expected expression"


def test_no_compiler_is_a_diagnostic(monkeypatch, tmp_path):
    monkeypatch.setattr(compile_module, "discover_compiler", lambda setting="": None)
    result = compile_source("int x;\n", str(tmp_path / "x.bpf.c"), CompileOptions())
    assert result.object is None and not result.ok and result.compiler is None
    (error,) = result.diagnostics
    assert error.severity == "error" and "apt-get install -y clang" in error.message


# ---------------------------------------------------------------------------
# safety: timeouts, refused flags, temp dirs


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch) -> Path:
    """Point tempfile at an empty dir so a test can see what the compile left behind."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


@needs_clang
def test_temp_dir_is_removed_after_compile(private_tempdir, tmp_path):
    result = compile_source("int x;\n", str(tmp_path / "cleanup.bpf.c"), CompileOptions())
    assert result.ok
    assert list(private_tempdir.iterdir()) == []


@needs_clang
def test_timeout_is_a_diagnostic_and_cleans_up(private_tempdir):
    text, path = corpus_source("cpumask_leak")
    result = compile_source(text, path, corpus_options(timeout=0.001))
    assert result.object is None
    (error,) = errors(result)
    assert error.message == "compiler timed out after 0.001 s"
    assert (error.file, error.line, error.column) == (path, 1, 1)
    assert list(private_tempdir.iterdir()) == []


@needs_clang
def test_refused_flags_become_diagnostics_and_are_not_passed(tmp_path):
    sneaky = tmp_path / "written.d"
    flags = ("-o", str(tmp_path / "out.o"), "-MD", "-MF", str(sneaky), "-fplugin=/x.so", "-Xclang", "-load",
             "-Xclang", "/x.so", "-B/evil", "--config=/evil.cfg", "-ivfsoverlay", "/o.yaml", "-save-temps",
             "-mllvm", "-debug-pass=Structure", "-DKEPT=1")
    result = compile_source("#ifndef KEPT\n#error no\n#endif\nint x;\n", str(tmp_path / "f.bpf.c"),
                            CompileOptions(extra_args=flags))
    assert result.ok, result.diagnostics
    refused = [d.message for d in result.diagnostics if d.message.startswith("ignored ")]
    for flag in ("-o", "-MD", "-MF", "-fplugin=/x.so", "-Xclang -load", "-B/evil", "--config=/evil.cfg",
                 "-ivfsoverlay", "-save-temps", "-mllvm -debug-pass=Structure"):
        assert any(m.startswith(f"ignored {flag}") for m in refused), (flag, refused)
    assert all(d.severity == "warning" for d in result.diagnostics)
    for forbidden in ("-MD", "-fplugin=/x.so", "/x.so", "-B/evil", "/o.yaml", "-save-temps", "-debug-pass=Structure"):
        assert forbidden not in result.argv
    assert not sneaky.exists()


def test_screen_user_flags_keeps_harmless_ones():
    accepted, problems = screen_user_flags(["-I", "inc", "-mcpu=v4", "-Xclang", "-target-feature", "-Xclang",
                                            "+alu32", "-mllvm", "-bpf-stack-size=1024", "-Wall"], "test")
    assert accepted == ["-I", "inc", "-mcpu=v4", "-Xclang", "-target-feature", "-Xclang", "+alu32",
                        "-mllvm", "-bpf-stack-size=1024", "-Wall"]
    assert problems == []


@needs_clang
def test_user_mcpu_replaces_the_default(tmp_path):
    result = compile_source("int x;\n", str(tmp_path / "cpu.bpf.c"), CompileOptions(extra_args=("-mcpu=v4",)))
    assert result.ok
    assert "-mcpu=v4" in result.argv and "-mcpu=v3" not in result.argv


# ---------------------------------------------------------------------------
# compile_commands.json


def _project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "proj"
    (root / "src" / "deep").mkdir(parents=True)
    (root / "inc").mkdir()
    (root / "inc" / "fromdb.h").write_text("#define FROM_DB_HEADER 1\n")
    source = root / "src" / "deep" / "prog.bpf.c"
    source.write_text("int x;\n")
    return root, source


def test_compile_commands_found_upward_and_in_build_dirs(tmp_path):
    root, source = _project(tmp_path)
    assert find_compile_commands(source) is None
    (root / "build").mkdir()
    in_build = root / "build" / "compile_commands.json"
    in_build.write_text("[]")
    assert find_compile_commands(source) == in_build
    nearer = root / "src" / "compile_commands.json"
    nearer.write_text("[]")
    assert find_compile_commands(source) == nearer
    assert find_compile_commands(source, explicit=str(root / "build")) == in_build
    assert find_compile_commands(source, explicit=str(in_build)) == in_build
    assert find_compile_commands(source, explicit=str(root / "nowhere")) is None


def test_flags_from_command_string(tmp_path):
    root, source = _project(tmp_path)
    db = root / "compile_commands.json"
    db.write_text(json.dumps([
        {"directory": str(root / "other"), "file": "unrelated.c", "command": "clang -DWRONG -c unrelated.c"},
        {"directory": str(root), "file": "src/deep/prog.bpf.c",
         "command": "clang -target bpf -O2 -g -Iinc -I /abs/inc -isystem sys -iquote q -DNAME=\"a b\" -UOLD "
                    "-std=gnu11 -mcpu=v4 -Wall -Wno-unused -Wl,-z -Wp,-MD,deps.d -MD -MF out.d -MT t "
                    "-include inc/fromdb.h -Xclang -load -Xclang plug.so -mllvm -x -c src/deep/prog.bpf.c "
                    "-o prog.o"},
    ]))
    assert flags_for(source, db) == [
        "-target", "bpf", f"-I{root}/inc", "-I/abs/inc", "-isystem", f"{root}/sys", "-iquote", f"{root}/q",
        "-DNAME=a b", "-UOLD", "-std=gnu11", "-mcpu=v4", "-Wall", "-Wno-unused",
        "-include", f"{root}/inc/fromdb.h",
    ]
    assert flags_for(root / "src" / "other.c", db) is None


def test_flags_from_arguments_list(tmp_path):
    root, source = _project(tmp_path)
    db = root / "build" / "compile_commands.json"
    db.parent.mkdir()
    db.write_text(json.dumps([{"directory": str(root / "build"), "file": str(source),
                               "arguments": ["/usr/bin/clang", "--target=bpf", "-I../inc", "-D", "X=1",
                                             "-c", str(source), "-o", "prog.o"]}]))
    assert flags_for(source, db) == ["--target=bpf", f"-I{root}/inc", "-D", "X=1"]


@needs_clang
def test_compile_uses_the_database_for_the_file(tmp_path):
    root, source = _project(tmp_path)
    (root / "compile_commands.json").write_text(json.dumps([{
        "directory": str(root), "file": "src/deep/prog.bpf.c",
        "command": "clang -target bpf -Iinc -DFROM_DB=1 -c src/deep/prog.bpf.c -o prog.o"}]))
    text = ('#include "fromdb.h"\n#if !defined(FROM_DB) || !defined(FROM_DB_HEADER)\n#error no db flags\n#endif\n'
            'int x;\n')
    result = compile_source(text, str(source), CompileOptions())
    assert result.ok, result.diagnostics
    assert "-DFROM_DB=1" in result.argv


def test_options_from_settings():
    settings = Settings(compilerPath="/c", extraFlags=("-DX",), includeDirs=("/i",), compileCommandsDir="/db")
    options = CompileOptions.from_settings(settings)
    assert options == CompileOptions(include_dirs=("/i",), extra_args=("-DX",), compile_commands="/db",
                                     compiler_path="/c")


# ---------------------------------------------------------------------------
# the preamble and its PCH


@pytest.mark.parametrize("text, lines", [
    ('#include "a.h"\nint x;\n', 1),
    ('// c\n\n#include "a.h"\n/* multi\n line */\n#include <b.h>\n\nint x;\n', 6),
    ('#ifndef G\n#define G\n#include "a.h"\n#endif\nint x;\n', 4),
    ('#ifndef G\n#define G\n#include "a.h"\nint x;\n#endif\n', 0),          # never balanced before code
    ('#include "a.h"\n#ifdef X\nint y;\n#endif\n', 1),                      # stops before the open #ifdef
    ('#define LONG(a) \\\n  ((a) + 1)\n#include "a.h"\nint x;\n', 3),
    ('#define S "/*"\n#include "a.h"\nint x;\n', 2),                        # "/*" in a string opens no comment
    ('#include "a.h" /* trailing\n comment */ int x;\n', 0),
    ('#pragma once\n#include "a.h"\n#pragma pack(1)\n', 2),
])
def test_preamble_boundary(text, lines):
    assert preamble_line_count(text) == lines


def test_blanked_preamble_keeps_line_numbers():
    text = '#include "a.h"\r\n#include "b.h"\nint x;\n'
    assert blank_preamble(text, 2) == "\r\n\nint x;\n"
    # a lone CR ends a line for clang too: the line stays a line
    text = '#include "a.h"\r#include "b.h"\nint x;\n'
    assert blank_preamble(text, 2) == "\r\nint x;\n"


@needs_clang
def test_pch_is_reused_for_edits_below_the_preamble(tmp_path):
    cache = PreambleCache(tmp_path / "pch")   # asynchronous, as in the server
    text, path = corpus_source("cpumask_leak")
    options = corpus_options()
    first = compile_source(text, path, options, cache)
    assert first.ok and not first.used_pch          # the first compile does not wait for the PCH
    cache.wait_idle()
    edited = text.replace("bpf_cpumask_set_cpu(0, mask);", "bpf_cpumask_set_cpu(1, mask);")
    second = compile_source(edited, path, options, cache)
    assert second.ok and second.used_pch
    third = compile_source(edited.replace("(1, mask)", "(2, mask)"), path, options, cache)
    assert third.used_pch
    print(f"\nplain compile {first.seconds:.3f} s; with PCH {second.seconds:.3f} s, {third.seconds:.3f} s")


@needs_clang
def test_preamble_warnings_are_replayed_with_the_pch(tmp_path):
    cache = PreambleCache(tmp_path / "pch")
    cache.build_synchronously = True
    write_settled(tmp_path / "local.h", "int local;\n")
    text = '#define TWICE 1\n#define TWICE 2\n#include "local.h"\nint x = TWICE;\n'
    path = str(tmp_path / "w.bpf.c")
    for _ in range(2):
        result = compile_source(text, path, CompileOptions(), cache)
        assert result.used_pch
        (warning,) = [d for d in result.diagnostics if d.severity == "warning"]
        assert (warning.file, warning.line, warning.option) == (path, 2, "-Wmacro-redefined")


@needs_clang
def test_changed_header_invalidates_the_pch(tmp_path):
    cache = PreambleCache(tmp_path / "pch")
    cache.build_synchronously = True
    header = write_settled(tmp_path / "value.h", "#define VALUE 1\n")
    text = '#include "value.h"\nint value(void) { return VALUE; }\n'
    path = str(tmp_path / "v.bpf.c")
    assert compile_source(text, path, CompileOptions(), cache).used_pch
    header.write_text("#define VALUE 2\n")        # same size, same second as far as clang can tell
    result = compile_source(text, path, CompileOptions(), cache)
    assert result.ok
    assert b"\xb4\x00\x00\x00\x02\x00\x00\x00" in result.object   # w0 = 2: the new header was read


@needs_clang
def test_cache_keeps_a_bounded_number_of_pchs(tmp_path):
    cache = PreambleCache(tmp_path / "pch", max_entries=2)
    cache.build_synchronously = True
    write_settled(tmp_path / "a.h", "int a;\n")
    path = str(tmp_path / "p.bpf.c")
    texts = [f'#include "a.h"\n#define VARIANT {n}\nint x;\n' for n in range(3)]
    for text in texts:
        assert compile_source(text, path, CompileOptions(), cache).used_pch
    assert len([d for d in (tmp_path / "pch").iterdir() if not d.name.startswith(".")]) == 2
    # The oldest was evicted; a new cache adopts the two left on disk.
    reopened = PreambleCache(tmp_path / "pch", max_entries=2)
    reopened.build_synchronously = False
    assert compile_source(texts[2], path, CompileOptions(), reopened).used_pch
    assert not compile_source(texts[0], path, CompileOptions(), reopened).used_pch
    reopened.wait_idle()
