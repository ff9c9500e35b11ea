"""Compile an editor buffer to a BPF object, with the compiler's messages as data.

The buffer is written to a private temporary directory under the file's own
base name and compiled with ``-ffile-prefix-map`` mapping that directory to the
file's real one, plus the real directory on the quote-include path. The object's
line info (DWARF and .BTF.ext) and ``__FILE__`` therefore name the real file,
which need not exist on disk (a VFS overlay would need it to: clang's driver
checks that its input exists before any overlay applies). Messages located in
the temporary copy are reported at the real path.

Compiler output is read from clang's machine-readable forms: source ranges
(``-fdiagnostics-print-source-range-info``) and fix-its
(``-fdiagnostics-parseable-fixits``).
"""
from __future__ import annotations

import io
import os
import platform
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile

from bpf_lsp.frontend import headers
from bpf_lsp.frontend.btf import Btf, Kind
from bpf_lsp.frontend.compile_db import find_compile_commands, flags_for
from bpf_lsp.frontend.preamble import (MTIME_SLACK_NS, PreambleCache, PreambleInputs, blank_preamble,
                                       has_includes, preamble_line_count, split_lines, stat_dependencies)
from bpf_lsp.frontend.toolchain import Compiler, discover_compiler

DEFAULT_CPU = "-mcpu=v3"
# bpf_tracing.h needs the architecture whose pt_regs the program reads: the host's.
_TARGET_ARCH = {"x86_64": "x86", "aarch64": "arm64", "arm64": "arm64", "s390x": "s390", "ppc64le": "powerpc",
                "ppc64": "powerpc", "riscv64": "riscv", "armv7l": "arm", "loongarch64": "loongarch",
                "mips64": "mips", "sparc64": "sparc"}
DIAGNOSTIC_FORMAT = ("-fdiagnostics-parseable-fixits", "-fdiagnostics-print-source-range-info",
                     "-fdiagnostics-absolute-paths", "-fno-color-diagnostics", "-fmessage-length=0")


@dataclass(frozen=True)
class CompileOptions:
    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()           # "NAME" or "NAME=VALUE"
    extra_args: tuple[str, ...] = ()
    compile_commands: str = ""              # file or directory; "" searches upward from the source
    compiler_path: str = ""
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> "CompileOptions":
        # the compiler runs in a private temp dir: relative directories are meant from here
        return cls(include_dirs=tuple(os.path.abspath(d) for d in settings.includeDirs),
                   extra_args=tuple(settings.extraFlags),
                   compile_commands=settings.compileCommandsDir, compiler_path=settings.compilerPath)


@dataclass(frozen=True)
class FixIt:
    line: int           # 1-based; columns are 1-based byte columns as clang counts them
    column: int
    end_line: int       # exclusive end
    end_column: int
    text: str


@dataclass(frozen=True)
class CompilerDiagnostic:
    file: str
    line: int
    column: int
    end_line: int
    end_column: int     # exclusive; columns are 1-based byte columns, as clang counts them
    severity: str       # "error" | "warning" | "note"
    message: str
    option: str | None = None               # the warning flag, e.g. "-Wint-conversion"
    fixits: tuple[FixIt, ...] = ()


@dataclass(frozen=True)
class CompileResult:
    object: bytes | None
    diagnostics: tuple[CompilerDiagnostic, ...]
    argv: tuple[str, ...]
    used_pch: bool
    seconds: float
    compiler: Compiler | None = None
    cached: bool = False        # served by the object cache: nothing was compiled

    @property
    def ok(self) -> bool:
        return self.object is not None and not any(d.severity == "error" for d in self.diagnostics)


def _file_level(path: str, severity: str, message: str) -> CompilerDiagnostic:
    """A diagnostic about the whole compile rather than a place in the code."""
    return CompilerDiagnostic(path, 1, 1, 1, 1, severity, message)


# ---------------------------------------------------------------------------
# user flags

def _xclang_refusal(value: str) -> str:
    if value == "-o" or any(word in value for word in ("load", "plugin")):
        return "loads code or writes files"
    if any(word in value for word in ("emit", "file", "dump", "output", "overlay", "trace", "print")):
        return "writes files or changes what the compiler produces"
    return ""


_WRITES = "writes files"
_LOADS = "loads code"
_OTHER_TOOL = "passes options to another tool"
_OUTPUT_KIND = "changes what the compiler produces"
# Flags followed by a separate value (refused together with it); checked before the prefixes.
_REFUSED_WITH_VALUE = {"-o": _WRITES, "-MF": _WRITES, "-MT": _WRITES, "-MQ": _WRITES, "-MJ": _WRITES,
                       "-dumpdir": _WRITES, "-dumpbase": _WRITES, "-B": "runs programs from another directory",
                       "--config": "reads more flags from a file", "-ivfsoverlay": "replaces files the compile reads",
                       "-Xlinker": _OTHER_TOOL, "-Xassembler": _OTHER_TOOL, "-Xpreprocessor": _OTHER_TOOL}
# Flags refused in any spelling that starts with these (joined values, -fplugin=..., -MD, -MMD, ...).
_REFUSED_PREFIXES = {"-M": _WRITES, "-save-temps": _WRITES, "-ftime-trace": _WRITES, "-save-stats": _WRITES,
                     "-fcrash-diagnostics": _WRITES, "-gsplit-dwarf": _WRITES, "-fprofile-generate": _WRITES,
                     "-fprofile-instr-generate": _WRITES, "-fsave-optimization-record": _WRITES,
                     "-foptimization-record-file": _WRITES, "-fproc-stat-report": _WRITES,
                     "-fmodules-cache-path": _WRITES, "-fdump-": _WRITES, "-fplugin": _LOADS,
                     "-fpass-plugin": _LOADS, "-B": "runs programs from another directory",
                     "--config": "reads more flags from a file", "--driver-mode": "changes the driver",
                     "-ccc-": "changes the driver", "-ivfsoverlay": "replaces files the compile reads",
                     "-Wl,": _OTHER_TOOL, "-Wa,": _OTHER_TOOL, "-Wp,": _OTHER_TOOL}
_REFUSED_EXACT = {"-E": _OUTPUT_KIND, "-S": _OUTPUT_KIND, "-emit-llvm": _OUTPUT_KIND, "-fsyntax-only": _OUTPUT_KIND,
                  "--analyze": _OUTPUT_KIND, "-###": _OUTPUT_KIND}


def _refusal(arg: str) -> tuple[str, bool] | None:
    """(why ``arg`` may not be passed, whether it takes the next argument), or None when it may."""
    if arg in _REFUSED_WITH_VALUE:
        return _REFUSED_WITH_VALUE[arg], True
    if arg in _REFUSED_EXACT:
        return _REFUSED_EXACT[arg], False
    if arg.startswith("-o") and not arg.startswith("-ob"):   # -ofile
        return _WRITES, False
    for prefix, reason in _REFUSED_PREFIXES.items():
        if arg.startswith(prefix):
            return reason, False
    return None


def screen_user_flags(args: tuple[str, ...] | list[str], origin: str) -> tuple[list[str], list[str]]:
    """Split user flags into those passed on and a message for each one refused.

    Flags can come from a repository's compile_commands.json or workspace
    settings, so nothing that writes files or loads code gets through.
    """
    accepted: list[str] = []
    problems: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        value = args[i + 1] if i + 1 < len(args) else ""
        i += 1
        if arg in ("-Xclang", "-mllvm"):
            i += 1
            if arg == "-Xclang":
                reason = _xclang_refusal(value)
            else:  # only the BPF backend's own options: generic LLVM ones can write files
                reason = "" if value.startswith("-bpf-") else "is not a -bpf-* backend option"
            if reason:
                problems.append(f"ignored {arg} {value} from {origin}: it {reason}")
                # `-Xclang -load -Xclang lib.so`: the refused option's value comes in its own -Xclang.
                following = list(args[i:i + 2])
                if arg == "-Xclang" and len(following) == 2 and following[0] == "-Xclang" \
                        and not following[1].startswith("-"):
                    i += 2
            else:
                accepted.extend([arg, value])
            continue
        refused = _refusal(arg)
        if refused is None:
            accepted.append(arg)
            continue
        reason, takes_value = refused
        i += takes_value
        problems.append(f"ignored {arg + ' ' + value if takes_value else arg} from {origin}: it {reason}")
    return accepted, problems


def _take_target(args: list[str]) -> tuple[list[str], str]:
    """Remove -target/--target= from ``args``; return the rest and the last target named."""
    rest: list[str] = []
    target = ""
    i = 0
    while i < len(args):
        if args[i] == "-target" and i + 1 < len(args):
            target, i = args[i + 1], i + 2
            continue
        if args[i].startswith("--target="):
            target = args[i].split("=", 1)[1]
        else:
            rest.append(args[i])
        i += 1
    return rest, target


def _target_args(compiler: Compiler, requested: str) -> tuple[str, ...]:
    """The compiler's target arguments, with the user's BPF flavour (e.g. bpfeb) if one was named."""
    args = list(compiler.target_args)
    if requested.startswith("bpf") and "-target" in args:
        position = args.index("-target") + 1
        if compiler.is_zig:
            requested = ("bpfeb" if requested.startswith("bpfeb") else "bpfel") + "-freestanding-none"
        args[position] = requested
    return tuple(args)


@dataclass(frozen=True)
class CompilePlan:
    flags: tuple[str, ...]          # everything after the compiler command except input/output
    problems: tuple[str, ...]       # refused flags, ignored targets


def plan_flags(path: str, options: CompileOptions, compiler: Compiler) -> CompilePlan:
    """The compile flags for ``path``: defaults, compile_commands.json, settings, in that order (last wins)."""
    directory = os.path.dirname(path)
    problems: list[str] = []
    db_flags: list[str] = []
    db_path = find_compile_commands(path, options.compile_commands)
    if db_path is not None:
        db_flags, problems = screen_user_flags(flags_for(path, db_path) or [], str(db_path))
    extra, extra_problems = screen_user_flags(options.extra_args, "extraFlags")
    problems += extra_problems
    user = [*db_flags, *(f"-I{d}" for d in options.include_dirs), *(f"-D{d}" for d in options.defines), *extra]
    user, target = _take_target(user)
    if target and not target.startswith("bpf"):
        problems.append(f"ignored -target {target}: BPF programs are compiled for the bpf target")

    defaults = ["-O2", "-g"]
    if not any(a.startswith("-mcpu") for a in user):
        defaults.append(DEFAULT_CPU)
    joined_defines = [a if a != "-D" else "-D" + b for a, b in zip(user, [*user[1:], ""])]
    if not any(a.startswith("-D__TARGET_ARCH_") for a in joined_defines):
        defaults.append(f"-D__TARGET_ARCH_{_TARGET_ARCH.get(platform.machine(), 'x86')}")
    fallback_headers: list[str] = []
    generated = headers.ensure_vmlinux_header()
    if generated is not None:   # after every user include dir: a project's own vmlinux.h wins
        fallback_headers = ["-idirafter", str(generated)]
    flags = (*_target_args(compiler, target), *defaults, "-iquote", directory, *user, *fallback_headers,
             *DIAGNOSTIC_FORMAT)
    return CompilePlan(tuple(flags), tuple(problems))


def planned_argv(path: str, options: CompileOptions) -> tuple[tuple[str, ...], Compiler] | None:
    """The command line a compile of `path` would start with, for a file compiled elsewhere (an
    object's sources): (compiler argv + planned flags, compiler), or None without a compiler."""
    compiler = discover_compiler(options.compiler_path)
    if compiler is None:
        return None
    return (*compiler.argv, *plan_flags(os.path.abspath(path), options, compiler).flags), compiler


# ---------------------------------------------------------------------------
# running the compiler

@dataclass
class _Run:
    argv: tuple[str, ...]
    stderr: str
    object: bytes | None
    timed_out: bool = False
    aliases: dict[str, str] = field(default_factory=dict)   # temp file -> real path
    dependencies: tuple | None = None   # (path, size, mtime_ns) of each file read besides the buffer


def _run_compiler(compiler: Compiler, flags: tuple[str, ...], text: str, path: str, timeout: float,
                  pch: Path | None) -> _Run:
    directory = os.path.dirname(path)
    with tempfile.TemporaryDirectory(prefix="bpf-lsp-") as scratch:
        # clang reports absolute paths with symlinks resolved; name the copy the same way.
        scratch = os.path.realpath(scratch)
        source_dir = os.path.join(scratch, "src")
        os.mkdir(source_dir)
        source = os.path.join(source_dir, os.path.basename(path))
        output = os.path.join(scratch, "out.o")
        depfile = os.path.join(scratch, "deps.d")
        with open(source, "wb") as handle:
            handle.write(text.encode("utf-8", errors="surrogateescape"))
        in_place = os.path.isdir(directory)
        cwd = directory if in_place else scratch
        # Debug info records the cwd as the compilation dir; name the file's own dir when the
        # compile cannot run there (passing it always would slow PCH compiles measurably).
        comp_dir = () if in_place else (f"-fdebug-compilation-dir={directory}",)
        argv = (*compiler.argv, *flags, *(("-include-pch", str(pch)) if pch else ()),
                f"-ffile-prefix-map={source_dir}={directory}", *comp_dir, "-x", "c", "-c", source, "-o", output)
        # what the compile read (for the object cache), listed by clang itself; not part of `argv`,
        # which later layers reuse as the compile's flags
        deps_args = ("-MD", "-MF", depfile)
        # A new session lets a timeout kill the compiler and anything it started.
        try:
            started_ns = time.time_ns()
            proc = subprocess.Popen((*argv, *deps_args), cwd=cwd, env=compiler.environment(scratch), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as error:   # e.g. the compiler was removed since discovery
            return _Run(argv, f"error: cannot run {argv[0]}: {error.strerror}\n", None)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            return _Run(argv, "", None, timed_out=True)
        stderr = err.decode("utf-8", errors="replace")
        data = Path(output).read_bytes() if proc.returncode == 0 and os.path.exists(output) else None
        deps = None
        if data is not None:
            listed = stat_dependencies(Path(depfile), cwd)
            if listed is not None:
                read = tuple(d for d in listed if d[0] != source)
                # a file that changed while clang read it may look unchanged afterwards: not cacheable
                if all(mtime <= started_ns - MTIME_SLACK_NS for _, _, mtime in read):
                    deps = read
        return _Run(argv, stderr, data, aliases={source: path}, dependencies=deps)


def _externs_without_btf(obj: bytes) -> bool:
    """Whether the object uses an extern that has no BTF. clang leaves out the BTF VAR of an
    extern variable declared in a precompiled preamble (a `__kconfig` value, a global another
    file defines), which the loader, the linker and our `.kconfig` reading need."""
    try:
        elf = ELFFile(io.BytesIO(obj))
        symtab, section = elf.get_section_by_name(".symtab"), elf.get_section_by_name(".BTF")
        if symtab is None or section is None:
            return False
        undefined = {sym.name for sym in symtab.iter_symbols() if sym.name and sym["st_shndx"] == "SHN_UNDEF"}
        if not undefined:
            return False
        btf = Btf.parse(section.data())
        return bool(undefined - {t.name for t in btf.types if t is not None and t.kind in (Kind.VAR, Kind.FUNC)})
    except Exception:  # noqa: BLE001 - an object we cannot read is judged later, with a diagnostic
        return False


def _pch_rejected(run: _Run, diagnostics: list[CompilerDiagnostic], pch: Path) -> bool:
    """True when the compile failed because of the PCH itself (stale, corrupt), not the user's code."""
    if run.object is not None:
        return False
    words = ("precompiled header", "PCH file", "AST file")
    return any(any(w in d.message for w in words) or d.file == str(pch) for d in diagnostics)


# ---------------------------------------------------------------------------
# reading clang's messages

_DIAGNOSTIC = re.compile(r"^(?P<file>\S.*?):(?P<line>\d+):(?P<col>\d+):(?P<ranges>(?:\{\d+:\d+-\d+:\d+\})*):? "
                         r"(?P<severity>fatal error|error|warning|note|remark): (?P<message>.*)$")
_DRIVER_MESSAGE = re.compile(r"^(?:[^\s:]+: )?(?P<severity>fatal error|error|warning): (?P<message>.*)$")
_RANGE = re.compile(r"\{(\d+):(\d+)-(\d+):(\d+)\}")
_FIXIT = re.compile(r'^fix-it:"(?P<file>(?:[^"\\]|\\.)*)":\{(\d+):(\d+)-(\d+):(\d+)\}:"(?P<text>(?:[^"\\]|\\.)*)"$')
_INCLUDED_FROM = re.compile(r"^(?:In file included from|\s+from) (?P<file>.+):(?P<line>\d+)[:,]$")
_OPTION = re.compile(r" \[(?P<options>-[WR][^\]\s]*)\]$")
_MISSING_HEADER = re.compile(r"'(?P<name>[^']+)' file not found")
_INCLUDE_NAME = re.compile(r'#\s*include(?:_next)?\s*(?P<name>"[^"]*"|<[^>]*>)')
_SEVERITY = {"fatal error": "error", "remark": "note"}
_WORD = re.compile(rb"[A-Za-z0-9_]+")


def _unescape(text: str) -> str:
    """Undo LLVM's write_escaped (used for fix-it files and texts).

    It escapes every non-printable byte, including each byte of a UTF-8
    character, as three octal digits: rebuild the bytes, then decode.
    """
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            octal = text[i + 1:i + 4]
            if len(octal) == 3 and all(c in "01234567" for c in octal):
                raw.append(int(octal, 8))
                i += 4
                continue
            raw += {"n": "\n", "t": "\t"}.get(text[i + 1], text[i + 1]).encode()
            i += 2
        else:
            raw += text[i].encode()
            i += 1
    return raw.decode("utf-8", errors="replace")


class _Sources:
    """Source lines (as bytes, for byte columns) of the files diagnostics point into."""

    def __init__(self, path: str, text: str):
        self._lines: dict[str, list[bytes]] = {path: [line.encode("utf-8", "surrogateescape")
                                                      for line in split_lines(text)]}

    def line(self, file: str, number: int) -> bytes:
        if file not in self._lines:
            try:
                self._lines[file] = Path(file).read_bytes().split(b"\n")
            except OSError:
                self._lines[file] = []
        lines = self._lines[file]
        return lines[number - 1].rstrip(b"\r\n") if 0 < number <= len(lines) else b""

    def token_end(self, file: str, line: int, column: int) -> int:
        """Exclusive end column of the token starting at ``line``:``column`` (a word or one character)."""
        match = _WORD.match(self.line(file, line), column - 1)
        return match.end() + 1 if match else column + 1


def _span(sources: _Sources, file: str, line: int, column: int, ranges: str) -> tuple[int, int, int, int]:
    """The caret's token, widened by clang's ranges on the caret's line or containing it."""
    start, end = (line, column), (line, sources.token_end(file, line, column))
    for match in _RANGE.finditer(ranges):
        sl, sc, el, ec = map(int, match.groups())
        if sl == line or (sl, sc) <= (line, column) < (el, ec):
            start, end = min(start, (sl, sc)), max(end, (el, ec))
    return (*start, *end)


def _split_option(message: str) -> tuple[str, str | None]:
    match = _OPTION.search(message)
    if not match:
        return message, None
    options = [o for o in match.group("options").split(",") if o != "-Werror"]
    return message[:match.start()], (options[0] if options else "-Werror")


def parse_diagnostics(stderr: str, path: str, text: str, aliases: dict[str, str]) -> list[CompilerDiagnostic]:
    """CompilerDiagnostics from clang's stderr; ``aliases`` maps stand-in files (temp copy, preamble) to ``path``."""
    sources = _Sources(path, text)
    diagnostics: list[CompilerDiagnostic] = []
    main_line_of: dict[str, int] = {}   # header -> line of the main file's #include that brought it in
    stack: list[tuple[str, int]] = []

    def real(file: str) -> str:
        return aliases.get(file, file)

    for raw in stderr.splitlines():
        if match := _INCLUDED_FROM.match(raw):
            stack.append((real(match.group("file")), int(match.group("line"))))
            continue
        if match := _DIAGNOSTIC.match(raw):
            file = real(match.group("file"))
            line, column = int(match.group("line")), int(match.group("col"))
            span = _span(sources, file, line, column, match.group("ranges"))
            message, option = _split_option(match.group("message"))
            severity = _SEVERITY.get(match.group("severity"), match.group("severity"))
            diagnostics.append(CompilerDiagnostic(file, *span, severity, message, option))
            main_entries = [entry_line for entry_file, entry_line in stack if entry_file == path]
            if main_entries:
                for entry_file, _ in stack[1:]:
                    main_line_of[entry_file] = main_entries[0]
                main_line_of[file] = main_entries[0]
            stack = []
            continue
        if (match := _FIXIT.match(raw)) and diagnostics:
            last = diagnostics[-1]
            if real(_unescape(match.group("file"))) == last.file:
                l1, c1, l2, c2 = (int(g) for g in match.groups()[1:5])
                fix = FixIt(l1, c1, l2, c2, _unescape(match.group("text")))
                diagnostics[-1] = CompilerDiagnostic(last.file, last.line, last.column, last.end_line,
                                                     last.end_column, last.severity, last.message, last.option,
                                                     (*last.fixits, fix))
            continue
        if match := _DRIVER_MESSAGE.match(raw):
            severity = _SEVERITY.get(match.group("severity"), match.group("severity"))
            message, option = _split_option(match.group("message"))
            diagnostics.append(CompilerDiagnostic(path, 1, 1, 1, 1, severity, message, option))
            stack = []
    diagnostics += _errors_at_include_lines(diagnostics, path, main_line_of, sources)
    return _with_vmlinux_notes(diagnostics)


def _include_span(sources: _Sources, path: str, line: int) -> tuple[int, int, int, int]:
    """The header name of the #include on ``line`` (the whole line if it is not one)."""
    source = sources.line(path, line).decode("utf-8", "replace")
    match = _INCLUDE_NAME.search(source)
    if match:
        return line, match.start("name") + 1, line, match.end("name") + 1
    return line, 1, line, len(source) + 1


def _errors_at_include_lines(diagnostics: list[CompilerDiagnostic], path: str, main_line_of: dict[str, int],
                             sources: _Sources) -> list[CompilerDiagnostic]:
    """The first error inside each included file, repeated at the main file's #include (as clangd does)."""
    reported: set[int] = set()
    added: list[CompilerDiagnostic] = []
    for diagnostic in diagnostics:
        line = main_line_of.get(diagnostic.file)
        if diagnostic.severity != "error" or diagnostic.file == path or line is None or line in reported:
            continue
        reported.add(line)
        added.append(CompilerDiagnostic(path, *_include_span(sources, path, line), "error",
                                        f"In included file: {diagnostic.message}", diagnostic.option))
    return added


def _vmlinux_advice() -> str:
    advice = (f"vmlinux.h holds the running kernel's types; generate it next to this file or in an include "
              f"directory with: {headers.GENERATE_COMMAND}")
    if not headers.find_bpftool():
        advice += " (bpftool is not installed: apt-get install -y bpftool)"
    if not headers.KERNEL_BTF.exists():
        advice += f" (this kernel has no {headers.KERNEL_BTF}: it needs CONFIG_DEBUG_INFO_BTF=y)"
    return advice


def _with_vmlinux_notes(diagnostics: list[CompilerDiagnostic]) -> list[CompilerDiagnostic]:
    result: list[CompilerDiagnostic] = []
    for diagnostic in diagnostics:
        result.append(diagnostic)
        missing = _MISSING_HEADER.search(diagnostic.message)
        if diagnostic.severity == "error" and missing and os.path.basename(missing.group("name")) == "vmlinux.h":
            result.append(CompilerDiagnostic(diagnostic.file, diagnostic.line, diagnostic.column,
                                             diagnostic.end_line, diagnostic.end_column, "note", _vmlinux_advice()))
    return result


# ---------------------------------------------------------------------------

_NO_COMPILER = ("no C compiler with the BPF target was found: install clang (apt-get install -y clang) "
                "or the ziglang package (pip install ziglang), or set bpfLsp.compilerPath")


def compile_source(text: str, path: str, options: CompileOptions,
                   cache: PreambleCache | None = None, objects: Any = None) -> CompileResult:
    """Compile the buffer ``text`` as if it were the file at ``path``; never raises for compile problems.

    ``objects`` (an ``object_cache.ObjectCache``) serves a compile of the same text with the same
    flags while nothing it read has changed."""
    started = time.monotonic()
    path = os.path.abspath(path)
    compiler = discover_compiler(options.compiler_path)
    if compiler is None:
        return CompileResult(None, (_file_level(path, "error", _NO_COMPILER),), (), False,
                             time.monotonic() - started, None)
    plan = plan_flags(path, options, compiler)
    notices = [_file_level(path, "warning", problem) for problem in plan.problems]
    key = None
    if objects is not None:
        key = objects.key(compiler.argv, plan.flags, path, text)
        hit = objects.get(key)
        if hit is not None:
            return CompileResult(hit.object, hit.diagnostics, hit.argv, hit.used_pch,
                                 time.monotonic() - started, compiler, cached=True)

    inputs, pch, preamble_lines = None, None, 0
    if cache is not None:
        preamble_lines = preamble_line_count(text)
        preamble = "".join(split_lines(text)[:preamble_lines])
        if has_includes(preamble):
            inputs = PreambleInputs(preamble, os.path.dirname(path), plan.flags, compiler)
            pch = cache.get(inputs)
            if pch is None and cache.build_synchronously:
                # a PCH costs a compile and a half to build: for a preamble seen once it is pure cost
                if not cache.build_on_reuse or cache.seen_before(inputs):
                    pch = cache.build(inputs)
            elif pch is None:   # compile now without it; the next compile finds it ready
                cache.ensure_async(inputs)

    diagnostics: list[CompilerDiagnostic] = []
    if pch is not None:
        run = _run_compiler(compiler, plan.flags, blank_preamble(text, preamble_lines), path, options.timeout, pch)
        aliases = {**run.aliases, str(PreambleCache.header_of(pch)): path}
        # The PCH build's own warnings (from the included headers) are not repeated by clang: replay them.
        replayed = PreambleCache.build_log(pch).rstrip("\n")
        diagnostics = parse_diagnostics(replayed + "\n" + run.stderr, path, text, aliases)
        if not run.timed_out and _pch_rejected(run, diagnostics, pch):
            cache.discard(inputs)
            cache.ensure_async(inputs)
            pch = None
        elif run.object is not None and _externs_without_btf(run.object):
            pch = None      # the same compile without the preamble gives the complete object
    if pch is None:
        run = _run_compiler(compiler, plan.flags, text, path, options.timeout, None)
        diagnostics = parse_diagnostics(run.stderr, path, text, run.aliases)

    if run.timed_out:
        diagnostics = [_file_level(path, "error", f"compiler timed out after {options.timeout:g} s")]
    elif run.object is None and not any(d.severity == "error" for d in diagnostics):
        tail = run.stderr.strip().splitlines()[-3:]
        diagnostics.append(_file_level(path, "error", "the compiler failed" + (": " + " / ".join(tail) if tail else "")))
    result = CompileResult(run.object, tuple(notices + diagnostics), run.argv, pch is not None,
                           time.monotonic() - started, compiler)
    if key is not None and run.dependencies is not None and not run.timed_out and result.object is not None:
        # the PCH's own files come and go with its cache; the headers it was built from are listed too
        pch_dir = str(cache.cache_dir) + os.sep if cache is not None else None
        deps = tuple(d for d in run.dependencies if not (pch_dir and d[0].startswith(pch_dir)))
        objects.put(key, result, deps)
    return result
