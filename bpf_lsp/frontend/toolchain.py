"""Which compiler builds BPF objects, and a report of what the machine offers.

Discovery order: the ``compilerPath`` setting, then ``BPF_LSP_CLANG``, then the
newest ``clang-N``/``clang`` on PATH whose LLVM has the BPF backend, then the
clang bundled in the ``ziglang`` pip package (always present as a dependency,
so a machine without any system clang still compiles).
"""
from __future__ import annotations

import ctypes
import errno
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpf_lsp.frontend import headers

ZIGLANG = "ziglang"
ENV_VAR = "BPF_LSP_CLANG"
KERNEL_BTF = headers.KERNEL_BTF

_CLANG_NAME = re.compile(r"^clang(?:-(\d+(?:\.\d+)*))?$")
_VERSION = re.compile(r"clang version (\d+(?:\.\d+)*)")

# zig cc defaults to a freestanding, unwind-table, DWARF 4, no-builtin, NDEBUG
# build with spell checking (typo fix-its) off. These flags undo that so its
# objects and diagnostics match what `clang -target bpf` produces, and add the
# system include dirs clang searches for BPF (libbpf's headers live there).
_ZIG_TARGET = ("-target", "bpfel-freestanding-none", "-fno-unwind-tables", "-fno-asynchronous-unwind-tables",
               "-gdwarf-5", "-fbuiltin", "-fspell-checking", "-UNDEBUG")
_SYSTEM_INCLUDE_DIRS = ("/usr/local/include", "/usr/include")


@dataclass(frozen=True)
class Compiler:
    argv: tuple[str, ...]          # command prefix: ("/usr/bin/clang-19",) or (python, "-m", "ziglang", "cc")
    target_args: tuple[str, ...]   # arguments that select the BPF target for this compiler
    kind: str                      # "setting" | "env" | "path" | "ziglang"
    version: str                   # clang version, e.g. "19.1.7"
    reason: str                    # why this one was chosen, for doctor and logs

    @property
    def is_zig(self) -> bool:
        return self.argv[1:3] == ("-m", ZIGLANG)

    def environment(self, scratch_dir: str | os.PathLike[str]) -> dict[str, str] | None:
        """Environment for running the compiler with ``scratch_dir`` as its private space.

        zig cc caches whole compiles: a repeated identical compile is served from
        its cache *without* re-emitting warnings, and every compile leaves an
        object behind in ~/.cache/zig. Pointing its caches into the scratch dir
        (deleted after the compile) keeps diagnostics complete and the disk clean.
        """
        if not self.is_zig:
            return None
        env = dict(os.environ)
        env["ZIG_GLOBAL_CACHE_DIR"] = os.path.join(scratch_dir, "zig-global-cache")
        env["ZIG_LOCAL_CACHE_DIR"] = os.path.join(scratch_dir, "zig-local-cache")
        return env


def _probe_cache_file() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bpf-lsp", "probes.json")


def _probe_key(argv: list[str]) -> str | None:
    """Probe output depends only on the executable: key it by path, size and mtime."""
    exe = argv[0]
    if os.path.basename(exe).startswith("python"):
        return None   # the ziglang probe runs through Python: not cached
    try:
        st = os.stat(exe)
    except OSError:
        return None
    return f"{' '.join(argv)}|{st.st_size}|{st.st_mtime_ns}"


def _run(argv: list[str], timeout: float = 10.0) -> str:
    """Stdout+stderr of a short probe command, or "" when it cannot run (cached on disk per executable)."""
    key = _probe_key(argv)
    cache: dict = {}
    if key is not None:
        try:
            with open(_probe_cache_file(), encoding="utf-8") as f:
                cache = json.load(f)
            if isinstance(cache, dict) and key in cache:
                return str(cache[key])
        except (OSError, ValueError):
            cache = {}
    out = _run_uncached(argv, timeout)
    if key is not None and out:
        try:
            cache = cache if isinstance(cache, dict) else {}
            cache[key] = out
            os.makedirs(os.path.dirname(_probe_cache_file()), exist_ok=True)
            tmp = f"{_probe_cache_file()}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(cache, f)
            os.replace(tmp, _probe_cache_file())
        except OSError:
            pass
    return out


def _run_uncached(argv: list[str], timeout: float) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout + proc.stderr


def _clang_version(argv: list[str]) -> str:
    match = _VERSION.search(_run([*argv, "--version"]))
    return match.group(1) if match else ""


def _has_bpf_target(executable: str) -> bool:
    targets = _run([executable, "--print-targets"])
    return re.search(r"^\s*bpf\s", targets, re.MULTILINE) is not None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _ziglang_compiler(reason: str) -> Compiler | None:
    if importlib.util.find_spec(ZIGLANG) is None:
        return None
    argv = (sys.executable, "-m", ZIGLANG, "cc")
    version = _clang_version(list(argv))
    if not version:
        return None
    system_dirs = tuple(arg for d in _SYSTEM_INCLUDE_DIRS if os.path.isdir(d) for arg in ("-idirafter", d))
    return Compiler(argv, _ZIG_TARGET + system_dirs, ZIGLANG, version, reason)


def _explicit_compiler(value: str, kind: str, origin: str) -> tuple[Compiler | None, str]:
    """A compiler named by the user (setting or env var); or None and why it was not usable."""
    if value == ZIGLANG:
        found = _ziglang_compiler(f"{origin} asks for the ziglang clang")
        return found, ("" if found else f"{origin} asks for ziglang, which is not installed")
    executable = shutil.which(value)
    if executable is None:
        return None, f"{origin} {value!r} was not found"
    version = _clang_version([executable])
    if not version:
        return None, f"{origin} {value!r} does not run as clang"
    if not _has_bpf_target(executable):
        return None, f"{origin} {value!r} (clang {version}) has no BPF target"
    return Compiler((executable,), ("-target", "bpf"), kind, version, f"{origin} names {executable}"), ""


def _clangs_on_path(search_path: str) -> list[str]:
    """Executables named clang or clang-N on PATH, first occurrence of each name."""
    seen: dict[str, str] = {}
    for directory in search_path.split(os.pathsep):
        try:
            names = os.listdir(directory or ".")
        except OSError:
            continue
        for name in names:
            full = os.path.join(directory, name)
            if _CLANG_NAME.match(name) and name not in seen and os.access(full, os.X_OK) and os.path.isfile(full):
                seen[name] = full
    return list(seen.values())


def _newest_clang_on_path(search_path: str) -> Compiler | None:
    versioned = [(version, exe) for exe in _clangs_on_path(search_path) if (version := _clang_version([exe]))]
    versioned.sort(key=lambda item: _version_key(item[0]), reverse=True)
    for version, executable in versioned:
        if _has_bpf_target(executable):
            others = len(versioned) - 1
            why = f"newest clang with the BPF target on PATH ({executable}, clang {version}"
            why += f"; {others} other candidate{'s' * (others != 1)})" if others else ")"
            return Compiler((executable,), ("-target", "bpf"), "path", version, why)
    return None


def _discover(setting: str, env_value: str, search_path: str) -> Compiler | None:
    skipped: list[str] = []
    for value, kind, origin in ((setting, "setting", "the compilerPath setting"), (env_value, "env", ENV_VAR)):
        if value:
            found, problem = _explicit_compiler(value, kind, origin)
            if found:
                return found
            skipped.append(problem)
    found = _newest_clang_on_path(search_path) or _ziglang_compiler("no clang with the BPF target is on PATH; "
                                                                     "using the clang bundled with the ziglang package")
    if found and skipped:
        return Compiler(found.argv, found.target_args, found.kind, found.version,
                        f"{found.reason} ({'; '.join(skipped)})")
    return found


_cache: dict[tuple[str, str, str], Compiler | None] = {}
_cache_lock = threading.Lock()


def discover_compiler(setting: str = "") -> Compiler | None:
    """The compiler to use, or None when there is none; cached per (setting, env, PATH)."""
    key = (setting, os.environ.get(ENV_VAR, ""), os.environ.get("PATH", os.defpath))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    found = _discover(*key)
    with _cache_lock:
        _cache[key] = found
    return found


# ---------------------------------------------------------------------------
# doctor

_BPF_SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "arm64": 280, "riscv64": 280, "s390x": 351,
                   "ppc64le": 361, "ppc64": 361, "armv7l": 386, "loongarch64": 280}
_BPF_PROG_LOAD = 5
_BPF_PROG_TYPE_SOCKET_FILTER = 1


class _ProgLoadAttr(ctypes.Structure):
    # The leading fields of union bpf_attr for BPF_PROG_LOAD; the kernel
    # zero-fills the rest when the size passed is smaller than its own.
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32)]


def probe_bpf_syscall() -> tuple[bool, str]:
    """Try loading the smallest valid program (socket filter `r0 = 0; exit`)."""
    number = _BPF_SYSCALL_NR.get(platform.machine())
    if number is None:
        return False, f"unknown bpf syscall number on {platform.machine()}"
    insns = (ctypes.c_uint8 * 16)(0xb7, 0, 0, 0, 0, 0, 0, 0,   # r0 = 0
                                  0x95, 0, 0, 0, 0, 0, 0, 0)   # exit
    license_text = ctypes.create_string_buffer(b"GPL")
    attr = _ProgLoadAttr(prog_type=_BPF_PROG_TYPE_SOCKET_FILTER, insn_cnt=2,
                         insns=ctypes.addressof(insns), license=ctypes.addressof(license_text))
    libc = ctypes.CDLL(None, use_errno=True)
    # syscall(2) is variadic and reads longs: pass longs, not ints.
    fd = libc.syscall(ctypes.c_long(number), ctypes.c_long(_BPF_PROG_LOAD), ctypes.byref(attr),
                      ctypes.c_long(ctypes.sizeof(attr)))
    if fd >= 0:
        os.close(fd)
        return True, "permitted (loaded a 2-instruction socket filter)"
    code = ctypes.get_errno()
    detail = f"denied: {errno.errorcode.get(code, code)} ({os.strerror(code)})"
    try:
        detail += f"; euid={os.geteuid()}, kernel.unprivileged_bpf_disabled=" + \
            Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text().strip()
    except OSError:
        pass
    return False, detail


def libclang_version() -> str:
    """Version of the libclang the AST features use ("" when it cannot be loaded)."""
    try:
        import clang.cindex as cindex
        function = cindex.conf.lib.clang_getClangVersion
        function.restype = cindex._CXString  # not declared by the bindings
        function.errcheck = cindex._CXString.from_result
        return str(function())
    except Exception:  # libclang missing or unloadable: the report says so
        return ""


def _find_libbpf_headers(include_dirs: tuple[str, ...]) -> str:
    for directory in (*include_dirs, *_SYSTEM_INCLUDE_DIRS):
        candidate = os.path.join(directory, "bpf", "bpf_helpers.h")
        if os.path.isfile(candidate):
            return candidate
    return ""


def doctor_facts(settings: Any = None) -> list[tuple[str, bool, str]]:
    """(what, ok, detail) for each thing bpf-lsp depends on; detail says how to fix a missing one."""
    compiler_path = getattr(settings, "compilerPath", "") or ""
    # the include dirs as a compile reads them (CompileOptions is their one interpretation)
    from bpf_lsp.frontend.compile import CompileOptions
    include_dirs = CompileOptions.from_settings(settings).include_dirs if settings is not None else ()
    facts: list[tuple[str, bool, str]] = []

    compiler = discover_compiler(compiler_path)
    if compiler:
        facts.append(("compiler", True, f"{' '.join(compiler.argv)} (clang {compiler.version}): {compiler.reason}"))
    else:
        facts.append(("compiler", False, "no clang with the BPF target; fix: apt-get install -y clang "
                                         "(or pip install ziglang, or set compilerPath)"))

    version = libclang_version()
    facts.append(("libclang", bool(version), version or "not loadable; fix: pip install libclang"))

    btf = KERNEL_BTF.exists()
    facts.append(("kernel BTF", btf, str(KERNEL_BTF) if btf else
                  f"{KERNEL_BTF} is missing; fix: boot a kernel built with CONFIG_DEBUG_INFO_BTF=y"))

    permitted, detail = probe_bpf_syscall()
    facts.append(("bpf syscall", permitted, detail if permitted else
                  f"{detail}; fix: run as root (or with CAP_BPF and CAP_PERFMON), "
                  "or sysctl -w kernel.unprivileged_bpf_disabled=0"))

    libbpf = _find_libbpf_headers(include_dirs)
    facts.append(("libbpf headers", bool(libbpf), libbpf or
                  "<bpf/bpf_helpers.h> not found; fix: apt-get install -y libbpf-dev"))

    bpftool = headers.find_bpftool()
    facts.append(("bpftool", bool(bpftool), bpftool or "not found; fix: apt-get install -y bpftool"))

    generated = headers.ensure_vmlinux_header() if (bpftool and btf) else None
    facts.append(("vmlinux.h", generated is not None,
                  f"generated in {generated}" if generated else
                  "cannot be generated (needs bpftool and kernel BTF, see above)"))
    return facts


def doctor(settings: Any = None) -> str:
    lines = ["bpf-lsp doctor"]
    for name, ok, detail in doctor_facts(settings):
        lines.append(f"  [{'ok' if ok else '!!'}] {name}: {detail}")
    return "\n".join(lines) + "\n"
