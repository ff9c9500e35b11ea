"""`bpf-lsp check --kernel`: ask the running kernel's verifier about each program and compare.

Only ever run on request: loading programs needs root (or CAP_BPF) and really runs
BPF_PROG_LOAD. The approach is the one of the corpus's `kverify` tool: libbpf (`libbpf.so.1`,
via ctypes, so no build step) opens the compiled object afresh for every program, marks only
that program for autoload (so `SEC("?...")` programs load too), gives it a private log buffer and
calls `bpf_object__load`; the object is closed straight away, so nothing stays loaded and
nothing is pinned (every map's pin path is cleared first). struct_ops programs load together
with their `.struct_ops` map, which libbpf creates but never registers.

Where the kernel cannot be asked (no libbpf, no bpf syscall) `KernelUnavailable` carries the
reason; the caller reports it and carries on.
"""
from __future__ import annotations

import ctypes
import errno as errno_mod
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field

LOG_START, LOG_MAX = 1 << 22, 1 << 29     # log buffer per load; grown on ENOSPC
LOG_LEVEL = 1                              # the failing path only, as a user's loader would see it


class KernelUnavailable(Exception):
    """The kernel cannot be asked here; str(e) says why."""


@dataclass(frozen=True)
class KernelResult:
    program: str
    section: str
    accepted: bool
    errno: int | None
    stage: str                      # verifier | kernel (failed before the verifier wrote a log) | libbpf
    message: tuple[str, ...] = ()   # the lines explaining a rejection
    line: int | None = None         # source line of the last '; ... @ file:line' before the error
    file: str | None = None
    insn: int | None = None         # last instruction the log printed before the error
    note: str = ""                  # caveats about the verdict itself (BTF dropped, stub kfunc)

    @property
    def verdict(self) -> str:
        """accept | reject | not-verified (the load failed before the verifier judged it, e.g. EPERM)."""
        if self.accepted:
            return "accept"
        return "not-verified" if self.stage == "kernel" else "reject"


# ---- libbpf through ctypes -------------------------------------------------------------------

_P, _S, _I = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
_SIGNATURES = {
    "bpf_object__open_file": (_P, [_S, _P]), "bpf_object__load": (_I, [_P]),
    "bpf_object__close": (None, [_P]), "bpf_object__next_program": (_P, [_P, _P]),
    "bpf_object__next_map": (_P, [_P, _P]), "bpf_map__set_pin_path": (_I, [_P, _S]),
    "bpf_program__name": (_S, [_P]), "bpf_program__section_name": (_S, [_P]),
    "bpf_program__set_autoload": (_I, [_P, ctypes.c_bool]),
    "bpf_program__set_log_buf": (_I, [_P, _P, ctypes.c_size_t]),
    "bpf_program__set_log_level": (_I, [_P, ctypes.c_uint32]),
    "bpf_prog_load": (_I, [_I, _S, _S, _P, ctypes.c_size_t, _P]),
}
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_BPF_PROG_TYPE_SOCKET_FILTER = 1
_PROBE_INSNS = bytes.fromhex("b700000000000000" "9500000000000000")   # r0 = 0; exit

_lock = threading.Lock()       # libbpf's print callback is process-global
_lib_cache: list = []


def _libbpf():
    """(libbpf, libc), loaded once; raises KernelUnavailable when libbpf.so.1 is missing or too old."""
    if _lib_cache:
        return _lib_cache[0]
    try:
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
        libc = ctypes.CDLL(None)
    except OSError as e:
        raise KernelUnavailable(f"cannot load libbpf.so.1 ({e}); install libbpf1") from None
    try:
        for name, (res, args) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        lib.libbpf_set_print.restype = ctypes.c_void_p
        lib.libbpf_set_print.argtypes = [_PRINT_FN]
        libc.vsnprintf.argtypes = [_S, ctypes.c_size_t, _S, _P]
    except AttributeError as e:
        raise KernelUnavailable(f"libbpf.so.1 is too old: {e}") from None
    _lib_cache.append((lib, libc))
    return lib, libc


class _Session:
    """libbpf with our print callback installed, so its warnings land in `messages`, not stderr."""

    def __init__(self):
        self.lib, self.libc = _libbpf()
        self.messages: list[str] = []
        self._buf = ctypes.create_string_buffer(1 << 16)
        self._callback = _PRINT_FN(self._print)   # kept referenced while installed

    def _print(self, level, fmt, ap):
        if level <= 1:   # LIBBPF_WARN, LIBBPF_INFO; debug chatter is not wanted
            self.libc.vsnprintf(self._buf, len(self._buf), fmt, ap)
            self.messages.append(self._buf.value.decode(errors="replace").rstrip())
        return 0

    def __enter__(self):
        _lock.acquire()
        self._previous = self.lib.libbpf_set_print(self._callback)
        return self

    def __exit__(self, *exc):
        # put back whatever printer was installed before (libbpf's default one writes to stderr)
        previous = ctypes.cast(ctypes.c_void_p(self._previous), _PRINT_FN) if self._previous else _PRINT_FN()
        self.lib.libbpf_set_print(previous)
        _lock.release()

    def probe(self) -> None:
        """Load the smallest socket filter; raises KernelUnavailable when bpf() is not permitted."""
        fd = self.lib.bpf_prog_load(_BPF_PROG_TYPE_SOCKET_FILTER, b"bpf_lsp_probe", b"GPL",
                                    _PROBE_INSNS, len(_PROBE_INSNS) // 8, None)
        if fd < 0:
            raise KernelUnavailable(f"the bpf syscall is not permitted here: {os.strerror(-fd)} "
                                    "(loading programs needs root or CAP_BPF)")
        os.close(fd)

    def _programs(self, obj):
        p = self.lib.bpf_object__next_program(obj, None)
        while p:
            yield p
            p = self.lib.bpf_object__next_program(obj, p)

    def _open(self, path: str):
        ctypes.set_errno(0)
        obj = self.lib.bpf_object__open_file(path.encode(), None)
        if not obj:
            detail = "; ".join(self.messages[-3:]) or os.strerror(ctypes.get_errno() or errno_mod.EINVAL)
            raise KernelUnavailable(f"libbpf cannot open the object: {detail}")
        m = self.lib.bpf_object__next_map(obj, None)
        while m:   # never pin anything, whatever the object's maps ask for
            self.lib.bpf_map__set_pin_path(m, None)
            m = self.lib.bpf_object__next_map(obj, m)
        return obj

    def list_programs(self, path: str) -> list[tuple[str, str]]:
        obj = self._open(path)
        try:
            return [(self.lib.bpf_program__name(p).decode(), self.lib.bpf_program__section_name(p).decode())
                    for p in self._programs(obj)]
        finally:
            self.lib.bpf_object__close(obj)

    def load_one(self, path: str, name: str) -> tuple[int, str, list[str]]:
        """(errno, verifier log, libbpf messages) for loading only program `name`."""
        size = LOG_START
        while True:
            self.messages.clear()
            obj = self._open(path)
            buf = ctypes.create_string_buffer(size)
            try:
                for p in self._programs(obj):
                    mine = self.lib.bpf_program__name(p).decode() == name
                    self.lib.bpf_program__set_autoload(p, mine)
                    if mine:
                        self.lib.bpf_program__set_log_buf(p, buf, size)
                        self.lib.bpf_program__set_log_level(p, LOG_LEVEL)
                ret = self.lib.bpf_object__load(obj)
            finally:
                self.lib.bpf_object__close(obj)   # unloads the program and frees its maps
            log = buf.value.decode(errors="replace")
            # a full buffer makes the kernel fail a program that would pass: retry larger
            if ret == -errno_mod.ENOSPC and len(log) >= size // 2 and size < LOG_MAX:
                size *= 8
                continue
            return (-ret if ret < 0 else 0), log, list(self.messages)


# ---- reading the verifier log ----------------------------------------------------------------

_PROCESSED = re.compile(r"processed \d+ insns \(limit")
_INSN = re.compile(r"^(\d+): \([0-9a-f]{2}\)")
_SOURCE = re.compile(r"^; .*@ (\S+):(\d+)\s*$")
_NOISE = re.compile(r"^(\d+: (R\d|frame)|from \d+ to \d+|mark_precise|verification time"
                    r"|stack depth|last_idx|regs=|parent |\s|func#\d+ @|-- |Validating |Func#\d+ .* is safe for any args)")


def parse_log(log: str) -> tuple[tuple[str, ...], int | None, str | None, int | None]:
    """(message lines, last instruction, file, line) of a rejection, from a level-1 verifier log.

    The message is what follows the last instruction the log printed, minus register-state
    dumps; the line is the nearest `; source @ file:line` annotation before it.
    """
    # some kernel messages lack a trailing newline: cut at the statistics wherever they start
    lines = _PROCESSED.split(log, maxsplit=1)[0].splitlines()
    insn = line = file = None
    last = -1
    for i, text in enumerate(lines):
        if m := _INSN.match(text):
            insn, last = int(m.group(1)), i
        elif m := _SOURCE.match(text):
            file, line = m.group(1), int(m.group(2))
    tail = [t for t in lines[last + 1:] if t.strip() and not _SOURCE.match(t) and not _NOISE.match(t)]
    if not tail:   # rejected before any instruction was walked (BTF, program type, ...)
        tail = [t for t in lines if t.strip() and not _NOISE.match(t)][-1:]
    return tuple(tail[-4:]), insn, file, line


def _result(name: str, section: str, err: int, log: str, messages: list[str]) -> KernelResult:
    notes = []
    if any("Error loading .BTF into kernel" in m for m in messages):
        notes.append("the kernel rejected the object's BTF; libbpf loaded the program without it")
    if re.search(r"^\d+: \(85\) call #0\b", log, re.M):
        notes.append("calls an unresolved __weak kfunc (libbpf emitted 'call #0')")
    note = "; ".join(notes)
    if not err:
        return KernelResult(name, section, True, None, "verifier", note=note)
    if log.strip():
        message, insn, file, line = parse_log(log)
        return KernelResult(name, section, False, err, "verifier", message, line, file, insn, note)
    if any(f"prog '{name}': BPF program load failed" in m for m in messages):
        # BPF_PROG_LOAD itself failed with an empty log: a policy (LSM, lockdown), not the verifier
        text = f"{errno_mod.errorcode.get(err, err)} from BPF_PROG_LOAD before verification (empty log)"
        return KernelResult(name, section, False, err, "kernel", (text,), note=note)
    # libbpf gave up before BPF_PROG_LOAD: a kfunc or struct_ops type this kernel lacks, ...
    warnings = [m.removeprefix("libbpf: ") for m in messages if m.startswith("libbpf: ") and "BEGIN" not in m]
    return KernelResult(name, section, False, err, "libbpf", tuple(warnings[-3:]) or (os.strerror(err),), note=note)


def load_programs(elf_bytes: bytes, object_name: str = "prog", only: list[str] | None = None) -> list[KernelResult]:
    """The kernel's verdict on each program of an ELF object (or the ones named in `only`).

    `object_name` becomes the file's base name, which libbpf turns into the object name that
    prefixes internal map names (`.data`, `.bss`): the same name a user's loader would give.
    Raises KernelUnavailable when libbpf or the bpf syscall cannot be used.
    """
    with _Session() as session, tempfile.TemporaryDirectory(prefix="bpf-lsp-kernel-") as tmp:
        session.probe()
        path = os.path.join(tmp, f"{object_name.split('.')[0] or 'prog'}.o")
        with open(path, "wb") as f:
            f.write(elf_bytes)
        results = []
        for name, section in session.list_programs(path):
            if only is not None and name not in only:
                continue
            err, log, messages = session.load_one(path, name)
            results.append(_result(name, section, err, log, messages))
        return results


def unavailable_reason() -> str | None:
    """Why the kernel cannot be asked here, or None when it can."""
    try:
        with _Session() as session:
            session.probe()
    except KernelUnavailable as e:
        return str(e)
    return None


# ---- comparison with our verdict -------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    program: str
    ours: str | None                # accept | reject | incomplete | None (no verdict of ours)
    kernel: KernelResult | None     # None: libbpf does not know this program
    agrees: bool | None = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "agrees", agreement(self.ours, self.kernel))

    @property
    def summary(self) -> str:
        """'agree', 'DISAGREE: bpf-lsp rejects, kernel accepts', or why there is nothing to compare."""
        if self.agrees:
            return "agree"
        if self.agrees is False:
            theirs = "accepts" if self.kernel.accepted else "rejects"
            return f"DISAGREE: bpf-lsp {self.ours}s, kernel {theirs}"
        if self.kernel is None:
            return "no kernel verdict: libbpf does not list this program"
        if self.kernel.verdict == "not-verified":
            return "no comparison: the load failed before the verifier ran"
        return "no comparison: bpf-lsp has no complete verdict"


def agreement(ours: str | None, kernel: KernelResult | None) -> bool | None:
    """True/False when both sides judged the program; None when either has no verdict to compare."""
    if kernel is None or ours not in ("accept", "reject") or kernel.verdict == "not-verified":
        return None
    return (ours == "accept") == kernel.accepted


def cross_check(analysis) -> list[Comparison]:
    """Our verdict beside the kernel's for every program of an `analysis.Analysis` with an object.

    Raises KernelUnavailable (also when the analysis has no object to load).
    """
    if analysis.obj is None:
        raise KernelUnavailable("the file did not compile to an object")
    ours = {p.name: p.verdict for p in analysis.programs}
    kernel = {r.program: r for r in load_programs(analysis.obj.elf_bytes, os.path.basename(analysis.path))}
    names = list(kernel) + [n for n in ours if n not in kernel]
    return [Comparison(n, ours.get(n), kernel.get(n)) for n in names]
