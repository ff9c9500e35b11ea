"""The analysis entry points every front end shares: text in, source-level results out.

Pure functions of (text, path, options), with caches keyed by content: the preamble PCH
(`frontend.preamble`), and per-program verification results keyed by a hash of the linked
instructions, their relocation meanings, the object's BTF and the semantics table's version.
The LSP server, `bpf-lsp check` and the tests all go through `Analyzer`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from . import codes as C
from .diagnostics.hover import hover_markdown
from .diagnostics.model import ProgramReport, SourceDiagnostic, Span
from .diagnostics.render import render_all
from .diagnostics.sources import ProgramSources, SourceFiles, object_variables
from .diagnostics.ranges import TranslationUnits, parse_args
from .frontend.compile import CompileOptions, CompileResult, compile_source, planned_argv
from .frontend.kconfig import kernel_kconfig, kernel_version_code
from .frontend.headers import default_cache_root
from .frontend.kernel_btf import KernelFacts, kernel_facts
from .frontend.object_cache import ObjectCache
from .frontend.objfile import BpfObject, ObjectError, Program, load_object
from .frontend.preamble import PreambleCache
from .settings import Settings
from .text import clean_text
from .verifier import VerifyResult, verify_program
from .verifier.kfuncs import SEMANTICS_VERSION, kernel_table
from .verifier.records import RecordBuilder

log = logging.getLogger("bpf_lsp.analysis")

MAX_SOURCE_BYTES = 4 * 1024 * 1024
MAX_LINKED_SIBLINGS = 32    # `.bpf.c` files of a directory looked at for what a file leaves undefined


def program_verdict(result: VerifyResult) -> str:
    """From the verifier's findings, never from what could be rendered: any error rejects; a
    program the model could not fully check (budget, unsupported construct, an unknown that
    reached a check, an error only for some values of a load-time global) is incomplete."""
    if any(f.severity == "error" for f in result.findings):
        return "reject"
    if result.incomplete or result.unsupported or result.gaps or any(f.arg("load_time") for f in result.findings):
        return "incomplete"
    return "accept"


@dataclass
class Analysis:
    path: str
    compiler_diagnostics: list[SourceDiagnostic] = field(default_factory=list)
    programs: list[ProgramReport] = field(default_factory=list)
    error: str = ""
    obj: BpfObject | None = None
    results: dict[str, tuple[Program, VerifyResult, ProgramSources]] = field(default_factory=dict)

    @property
    def verifier_diagnostics(self) -> list[SourceDiagnostic]:
        return [d for p in self.programs for d in p.diagnostics]

    @property
    def diagnostics(self) -> list[SourceDiagnostic]:
        return self.compiler_diagnostics + self.verifier_diagnostics

    def hover(self, line: int, column: int) -> str | None:
        """Markdown for the hover at a 1-based line and byte column, or None."""
        return hover_markdown(self, line, column)


@dataclass
class CompileStage:
    """The first, fast half of an analysis: compiler diagnostics are known once this exists."""
    path: str
    text: str
    compiler_diagnostics: list[SourceDiagnostic]
    object_bytes: bytes | None
    used_pch: bool = False
    seconds: float = 0.0
    parse_args: tuple[str, ...] | None = None   # the compile's flags as a libclang parse needs them


def compiler_diagnostics(result: CompileResult, path: str) -> list[SourceDiagnostic]:
    out = []
    for d in result.diagnostics:
        if d.severity == "note":
            continue
        from .diagnostics.model import Fix, TextEdit
        fixes = tuple(Fix(f"Apply clang's fix: replace with '{fx.text}'",
                          (TextEdit(Span(d.file, fx.line, fx.column, fx.end_line, fx.end_column), fx.text),), "clang")
                      for fx in d.fixits)
        out.append(SourceDiagnostic(code=d.option.lstrip("-") if d.option else "clang", severity=d.severity,
                                    message=d.message, span=Span(d.file, d.line, d.column, d.end_line, d.end_column),
                                    source="clang", fixes=fixes))
    return out


class Analyzer:
    """Holds the caches (PCH, per-program verification) for one process: server or CLI.

    Thread-safe: the server runs `compile`/`verify` in worker threads.
    """

    def __init__(self, settings: Settings | None = None, cache_dir: str | os.PathLike | None = None,
                 build_pch_synchronously: bool = False, facts: KernelFacts | None = None):
        """`facts`: what is known of the target kernel (its BTF's structs, functions, tracepoints);
        by default the running kernel's, read once. Part of every verification cache key."""
        self.settings = settings or Settings()
        self._facts = facts
        # libclang's parses of the files findings sit in (batch runs share their preambles on disk)
        self.units = TranslationUnits(preamble_dir=((Path(cache_dir) if cache_dir else default_cache_root())
                                                    / "libclang-pch") if build_pch_synchronously else None)
        self.pch = PreambleCache(Path(cache_dir) / "pch" if cache_dir else None)
        # on disk only in batch runs (`check`, tests): in the server each keystroke's text is new and
        # never compiled again, so writing every object out would be I/O for nothing
        self.objects = ObjectCache((Path(cache_dir) if cache_dir else default_cache_root()) / "objects"
                                   if build_pch_synchronously else None)
        self.pch.build_synchronously = build_pch_synchronously
        self.pch.build_on_reuse = build_pch_synchronously
        self._lock = threading.Lock()
        self._verified: OrderedDict[str, VerifyResult] = OrderedDict()
        self._links: OrderedDict[str, bytes | None] = OrderedDict()   # linked objects by their inputs
        self.reuse_log: list[str] = []

    def update_settings(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def options(self) -> CompileOptions:
        return CompileOptions.from_settings(self.settings)

    # -- stage 1
    def compile(self, text: str, path: str) -> CompileStage:
        path = os.path.abspath(path)
        text = clean_text(text)
        if len(text.encode("utf-8", errors="replace")) > MAX_SOURCE_BYTES:
            diag = SourceDiagnostic(C.FILE_TOO_LARGE, "error",
                                    f"the file is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB; bpf-lsp does "
                                    "not analyse it", Span(path, 1, 1, 1, 1))
            return CompileStage(path, text, [diag], None)
        result = compile_source(text, path, self.options, self.pch, self.objects)
        return CompileStage(path, text, compiler_diagnostics(result, path),
                            result.object if result.ok else None, result.used_pch, result.seconds,
                            parse_args(result.argv, result.compiler) if result.argv else None)

    # -- stage 2
    def verify(self, stage: CompileStage) -> Analysis:
        """Verify a compiled file; when it uses functions or variables that sibling `.bpf.c` files
        of its directory define (one program in several files), as linked with them."""
        analysis = Analysis(stage.path, list(stage.compiler_diagnostics))
        if stage.object_bytes is None:
            return analysis
        linked = self._link_with_siblings(stage)
        if linked is not None:
            data, texts, args, own = linked
            return self.verify_object(data, stage.path, analysis, texts, args, only_programs=own)
        return self.verify_object(stage.object_bytes, stage.path, analysis, {stage.path: stage.text},
                                  {stage.path: stage.parse_args})

    def _link_with_siblings(self, stage: CompileStage):
        """(linked object, texts, parse args, the file's own program names) when sibling files
        define what the file's object leaves undefined, else None. Siblings come from disk and
        through the object cache, so an unchanged one costs a hash; one that does not mention a
        missing name is not compiled at all."""
        try:
            obj = load_object(stage.object_bytes, stage.path)
        except ObjectError:
            return None
        undefined, defined = obj.linkage
        missing = {n for n in undefined if not self._kernel_symbol(n)}
        if not missing:
            return None
        directory = os.path.dirname(stage.path)
        try:
            siblings = sorted(os.path.join(directory, n) for n in os.listdir(directory)
                              if n.endswith(".bpf.c") and os.path.join(directory, n) != stage.path)
        except OSError:
            return None
        objects = [(stage.path, stage.object_bytes)]
        texts, args = {stage.path: stage.text}, {stage.path: stage.parse_args}
        have = set(defined)
        grew = True
        while missing and grew:
            grew = False
            for sibling in siblings[:MAX_LINKED_SIBLINGS]:
                if sibling in texts:
                    continue
                try:
                    with open(sibling, encoding="utf-8", errors="replace") as f:
                        text = f.read()
                except OSError:
                    continue
                if not _may_define(text, missing):
                    continue
                other = self.compile(text, sibling)
                if other.object_bytes is None:
                    continue
                try:
                    their_undefined, theirs = load_object(other.object_bytes, sibling).linkage
                except ObjectError:
                    continue
                if not theirs & missing:
                    continue
                objects.append((sibling, other.object_bytes))
                texts[sibling], args[sibling] = text, other.parse_args
                have |= theirs
                missing = (missing - theirs) | {n for n in their_undefined - have if not self._kernel_symbol(n)}
                grew = True
        if len(objects) == 1:
            return None
        data = self._linked(objects, stage.path)
        if data is None:
            return None
        return data, texts, args, frozenset(p.name for p in obj.programs)

    def _linked(self, objects: list[tuple[str, bytes]], path: str) -> bytes | None:
        """The linker's output for these objects, remembered by their content (an editor asks on
        every keystroke; a link that failed is not retried until an object changes)."""
        from .frontend.link import LinkError, link_objects
        h = hashlib.sha256()
        for name, data in objects:
            h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        key = h.hexdigest()
        with self._lock:
            if key in self._links:
                self._links.move_to_end(key)
                return self._links[key]
        try:
            data = link_objects(objects)
        except LinkError as e:
            log.info("linking %s with %s failed: %s", path, [p for p, _ in objects[1:]], e)
            data = None
        with self._lock:
            self._links[key] = data
            while len(self._links) > 32:
                self._links.popitem(last=False)
        return data

    def _kernel_symbol(self, name: str) -> bool:
        """A name the kernel resolves (a kfunc, a kernel function or variable, a `__kconfig`)."""
        return (name in self.facts.funcs or name in kernel_table()["kfuncs"]
                or name.startswith(("CONFIG_", "LINUX_")))

    def analyze(self, text: str, path: str) -> Analysis:
        return self.verify(self.compile(text, path))

    def analyze_linked(self, paths: list[str]) -> Analysis:
        """Several files of one BPF program: each compiled (through the caches), then linked by
        libbpf's static linker, then verified as the one object the loader would see."""
        from .frontend.link import LinkError, link_objects
        paths = [os.path.abspath(p) for p in paths]
        analysis = Analysis(paths[0])
        texts, objects, args = {}, [], {}
        for p in paths:
            with open(p, encoding="utf-8", errors="replace") as f:
                texts[p] = f.read()
            stage = self.compile(texts[p], p)
            analysis.compiler_diagnostics.extend(stage.compiler_diagnostics)
            if stage.object_bytes is None:
                return analysis
            objects.append((p, stage.object_bytes))
            args[p] = stage.parse_args
        try:
            linked = link_objects(objects)
        except LinkError as e:
            analysis.error = str(e)
            analysis.compiler_diagnostics.append(SourceDiagnostic(C.OBJECT_ERROR, "error", str(e),
                                                                  Span(paths[0], 1, 1, 1, 1)))
            return analysis
        return self.verify_object(linked, paths[0], analysis, texts, args)

    def analyze_object_file(self, path: str) -> Analysis:
        path = os.path.abspath(path)
        with open(path, "rb") as f:
            data = f.read()
        return self.verify_object(data, path, Analysis(path), {})

    def verify_object(self, data: bytes, path: str, analysis: Analysis, texts: dict[str, str],
                      parse_args: dict[str, tuple[str, ...] | None] | None = None,
                      only_programs: frozenset[str] | None = None) -> Analysis:
        """Verify and render an object; `parse_args`: the flags each compiled file was compiled
        with (for libclang ranges); other files' flags are planned from the settings."""
        try:
            obj = load_object(data, path)
        except ObjectError as e:
            analysis.error = str(e)
            analysis.compiler_diagnostics.append(SourceDiagnostic(
                C.OBJECT_ERROR, "error", f"the compiled object could not be analysed: {e}", Span(path, 1, 1, 1, 1)))
            return analysis
        analysis.obj = obj
        facts = self.facts
        kconfig = self.kconfig()
        records = RecordBuilder(obj.btf, facts.struct_names)
        compiled = {os.path.abspath(p): a for p, a in (parse_args or {}).items()}
        files = SourceFiles(texts, self.units, lambda unit: compiled[unit] if unit in compiled
                            else self.planned_parse_args(unit))
        variables = object_variables(obj)
        btf_hash = _btf_fingerprint(obj)
        for prog in obj.programs:
            if only_programs is not None and prog.name not in only_programs:
                continue    # a program of a linked sibling file: shown when that file is analysed
            src = ProgramSources(prog, files, variables)
            key = self._program_key(prog, obj, btf_hash + facts.source + repr(sorted(kconfig.items())))
            reused = False
            with self._lock:
                result = self._verified.get(key)
                if result is not None:
                    self._verified.move_to_end(key)
                    reused = True
            if result is None:
                try:
                    result = verify_program(prog, self.settings.verifierBudget, facts, records,
                                            seconds=self.settings.verifierTimeoutMs / 1000, kconfig=kconfig)
                except Exception as e:  # noqa: BLE001 - a bug of ours must not hide the program
                    log.exception("verifying %s failed", prog.name)
                    analysis.programs.append(ProgramReport(prog.name, prog.section, "incomplete", [SourceDiagnostic(
                        C.INTERNAL_ERROR, "warning", f"bpf-lsp could not analyse {prog.name}: "
                        f"{type(e).__name__}: {e}", Span(path, 1, 1, 1, 1), program=prog.name)]))
                    continue
                with self._lock:
                    self._verified[key] = result
                    while len(self._verified) > 256:
                        self._verified.popitem(last=False)
            else:
                self.reuse_log.append(f"{prog.name}: verification reused")
            diags = render_all(result.findings, src, prog.name, path)
            analysis.programs.append(ProgramReport(prog.name, prog.section, program_verdict(result), diags, reused))
            analysis.results[prog.name] = (prog, result, src)
        return analysis

    def planned_parse_args(self, path: str) -> tuple[str, ...] | None:
        """libclang flags for a file this analyzer did not compile (an object's sources, on disk)."""
        planned = planned_argv(path, self.options)
        return parse_args(*planned) if planned is not None else None

    @property
    def facts(self) -> KernelFacts:
        if self._facts is None:
            self._facts = kernel_facts()
        return self._facts

    def kconfig(self) -> dict[str, int]:
        """`__kconfig` values: the running kernel's, or the `targetKernel` release's version alone."""
        if self.settings.targetKernel:
            code = kernel_version_code(self.settings.targetKernel)
            return {"LINUX_KERNEL_VERSION": code} if code is not None else {}
        return kernel_kconfig()

    def _program_key(self, prog: Program, obj: BpfObject, btf_hash: str) -> str:
        h = hashlib.sha256()
        h.update(f"{SEMANTICS_VERSION}:{self.settings.verifierBudget}:{self.settings.verifierTimeoutMs}:"
                 f"{prog.prog_type}:{prog.section}".encode())
        for insn in prog.insns:
            h.update(f"{insn.code},{insn.dst},{insn.src},{insn.off},{insn.imm},{insn.imm64};".encode())
        for idx in sorted(prog.meanings):
            h.update(f"{idx}={prog.meanings[idx]!r};".encode())
        # the same instructions verify differently under another BTF signature (global functions
        # are checked against their prototypes), and findings name the functions
        for fn in prog.functions:
            h.update(f"{fn.name}@{fn.start}:{fn.btf_id}:{fn.is_global};".encode())
        h.update(f"exception_cb={prog.exception_cb};".encode())
        h.update(btf_hash.encode())
        # line info changes where findings land, not what they are: rendering is redone each time,
        # so positions are keyed separately by the caller
        return h.hexdigest()


def _may_define(text: str, names: set[str]) -> bool:
    """Whether a source may define one of `names`: one of them on a line of its own at file scope
    (a definition starts at column 0 in C as people write it), not an `extern` declaration. A cheap
    filter before compiling a sibling; the object's symbols decide."""
    pattern = re.compile(r"^(?!extern\b|#|\s|//|/\*).*\b(" + "|".join(map(re.escape, sorted(names))) + r")\b", re.M)
    return pattern.search(text) is not None


def _btf_fingerprint(obj: BpfObject) -> str:
    """A hash of the object's BTF types, ignoring the source-line strings line info adds to it.

    Line info lives in the same string table, so the raw section changes on every edit; the
    types (names, kinds, layouts, tags) are what verification depends on.
    """
    h = hashlib.sha256()
    btf = obj.btf
    if btf is None:
        return ""
    for t in btf.types:
        if t is None:
            continue
        h.update(f"{t.kind}:{t.name}:{t.size}:{t.type_id}:{t.nelems}:{t.component_idx}:".encode())
        for m in t.members or ():
            h.update(f"{m.name},{m.type_id},{m.bit_offset};".encode())
        for v in t.vars or ():
            h.update(f"{v};".encode())
        for prm in t.params or ():
            h.update(f"{prm};".encode())
    return h.hexdigest()
