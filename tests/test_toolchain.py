"""Compiler discovery and the doctor report, against the real toolchains on this machine."""
from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from bpf_lsp.frontend import toolchain
from bpf_lsp.frontend.toolchain import Compiler, discover_compiler, doctor, doctor_facts, probe_bpf_syscall
from bpf_lsp.settings import Settings

SYSTEM_CLANG = shutil.which("clang-19") or shutil.which("clang")
needs_clang = pytest.mark.skipif(SYSTEM_CLANG is None, reason="no system clang")


@pytest.fixture(autouse=True)
def fresh_discovery(monkeypatch):
    """Each test sees its own environment, not a discovery cached by another."""
    monkeypatch.delenv(toolchain.ENV_VAR, raising=False)
    monkeypatch.setattr(toolchain, "_cache", {})


def _executable(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@needs_clang
def test_setting_wins_over_everything(monkeypatch):
    monkeypatch.setenv(toolchain.ENV_VAR, "ziglang")
    compiler = discover_compiler(SYSTEM_CLANG)
    assert compiler is not None
    assert compiler.kind == "setting"
    assert compiler.argv == (SYSTEM_CLANG,)
    assert compiler.target_args == ("-target", "bpf")
    assert compiler.version.split(".")[0].isdigit()
    assert "compilerPath" in compiler.reason


@needs_clang
def test_env_var_wins_over_path(monkeypatch):
    monkeypatch.setenv(toolchain.ENV_VAR, SYSTEM_CLANG)
    compiler = discover_compiler()
    assert compiler is not None and compiler.kind == "env" and compiler.argv == (SYSTEM_CLANG,)


@needs_clang
def test_newest_clang_with_bpf_target_on_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(SYSTEM_CLANG, bin_dir / "clang-19")
    # Newer by name and by version, but its LLVM has no BPF backend: must be passed over.
    _executable(bin_dir / "clang-99", "#!/bin/sh\n"
                "case \"$1\" in --version) echo 'clang version 99.0.0';; *) echo '  x86-64 - 64-bit X86';; esac\n")
    # Not a compiler at all, though its name starts with clang-.
    _executable(bin_dir / "clang-format-99", "#!/bin/sh\necho 'clang-format version 99'\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    compiler = discover_compiler()
    assert compiler is not None
    assert compiler.kind == "path"
    assert compiler.argv == (str(bin_dir / "clang-19"),)
    assert "newest clang" in compiler.reason


def test_ziglang_when_no_clang_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    compiler = discover_compiler()
    assert compiler is not None
    assert compiler.kind == "ziglang"
    assert compiler.argv == (sys.executable, "-m", "ziglang", "cc")
    assert compiler.target_args[:2] == ("-target", "bpfel-freestanding-none")
    assert compiler.is_zig


def test_missing_setting_falls_through_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    compiler = discover_compiler(str(tmp_path / "no-such-clang"))
    assert compiler is not None and compiler.kind == "ziglang"
    assert "was not found" in compiler.reason


def test_discovery_is_cached_per_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    first = discover_compiler()
    assert discover_compiler() is first
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + str(tmp_path / "other"))
    assert discover_compiler() is not first   # a different PATH is discovered anew


def test_zig_environment_keeps_its_caches_in_the_scratch_dir(tmp_path):
    zig = Compiler((sys.executable, "-m", "ziglang", "cc"), (), "ziglang", "1", "test")
    env = zig.environment(tmp_path)
    assert env is not None and env["ZIG_LOCAL_CACHE_DIR"].startswith(str(tmp_path))
    assert Compiler(("/usr/bin/clang",), (), "path", "1", "test").environment(tmp_path) is None


def test_bpf_syscall_probe_reports_an_outcome():
    permitted, detail = probe_bpf_syscall()
    assert isinstance(permitted, bool)
    assert detail.startswith("permitted") or detail.startswith("denied") or "unknown" in detail


def test_doctor_mentions_compiler_and_btf(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))   # where doctor may generate vmlinux.h
    facts = doctor_facts(Settings())
    names = [name for name, _, _ in facts]
    assert names[:4] == ["compiler", "libclang", "kernel BTF", "bpf syscall"]
    assert {"libbpf headers", "bpftool", "vmlinux.h"} <= set(names)
    report = doctor(Settings())
    print(report)
    assert "compiler:" in report and "kernel BTF" in report
    for name, ok, detail in facts:
        assert detail, name
        if not ok and name not in ("vmlinux.h", "libclang"):
            assert "fix:" in detail, (name, detail)
