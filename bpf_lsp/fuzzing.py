"""Robustness harnesses: mutate inputs, run them through the whole pipeline, check nothing escapes.

Shared by the short runs in ``tests/fuzz`` and the long ones in ``bench/robustness.py``.
Three harnesses:

* **source**: mutants of corpus/fixture sources (lines deleted, duplicated, swapped; a release
  or unlock dropped or moved; random tokens; truncation; unbalanced braces; random bytes incl.
  invalid UTF-8) through ``Analyzer.analyze`` (compile -> verify -> render), then hovers at
  random positions and every diagnostic's fixes.
* **object**: byte mutants of compiled corpus objects (truncation, flips, and targeted
  corruption of ELF/section headers, symbols, relocations, instructions, .BTF header and type
  records incl. reference loops, .BTF.ext record sizes, DWARF) through ``load_object``,
  ``verify_program`` on every program and ``Analyzer.verify_object`` (render, hovers).
* **chaos**: a raw framed JSON-RPC client against ``python -m bpf_lsp.server``: unknown methods
  and URIs, out-of-range positions, bad UTF-16 offsets, huge documents, bursts of didChange,
  requests for closed documents, random ``$/cancelRequest``, malformed JSON and params; then
  checks the server is alive and that its final diagnostics equal a fresh analysis.

Cases run in a worker *process* (``Worker``) with a watchdog: a case that takes longer than
``HANG_SECONDS`` counts as a hang; one that does not answer within ``KILL_SECONDS`` is killed
and the worker restarted, so a real infinite loop (even one inside C code holding the GIL)
cannot stall a campaign; the worker's address space is capped (``WORKER_MEMORY_LIMIT``) so a
runaway allocation ends in MemoryError, not in the OOM killer. Every source/object mutant is a
pure function of (harness, seed, index): reruns with the same seed try the same inputs. The
chaos session's message sequence is fixed by its seed too; what the server answers, and when,
is not.

Outcomes: a *crash* is an exception escaping where none may (anything but ``ObjectError`` from
``load_object``; anything at all from the analysis, hovers, fixes, ``verify_program``; in the
server, an exception its guards or pygls report); a *problem* is malformed output (a span with
line < 1, an end before its start, an unknown severity or code, a request never answered); a
*hang* is a case over the time bound. ``KNOWN_ISSUES`` maps failures already reproduced in
``tests/fuzz/repro`` to their test, so short runs fail only on new ones.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS_CASES = SHARED / "corpus" / "cases"
CORPUS_INCLUDE = SHARED / "corpus" / "include"
FIXTURES = REPO / "tests" / "fixtures"
BUILD = REPO / ".build"
# A PCH cache of our own: preamble mutants would otherwise evict the test suite's PCHs.
FUZZ_CACHE = BUILD / "cache-fuzz"
SERVER_CACHE = BUILD / "cache-chaos"    # XDG_CACHE_HOME of the servers the chaos sessions start

HANG_SECONDS = 20.0      # a case slower than this is a hang
KILL_SECONDS = 60.0      # a worker silent this long is killed (and the case counted as a hang)
WORKER_MEMORY_LIMIT = 2 << 30   # address space of a worker process (clang, its child, inherits it)

SEVERITIES = {"error", "warning", "information", "hint"}
VERDICTS = {"accept", "reject", "incomplete"}
# Codes the analysis layer itself emits for the compile stage (not verifier findings).
STAGE_CODES = {"object-error"}
CLANG_OPTION_CODE = re.compile(r"^[WR][A-Za-z0-9_#=+.\-]*$")


def default_include_dirs() -> list[str]:
    return [str(BUILD), str(CORPUS_INCLUDE), str(FIXTURES / "include")]


# =============================================================================================
# seeds

@dataclass(frozen=True)
class Seed:
    name: str
    path: str      # where the mutants are analysed (the directory matters: -iquote, PCH key)
    text: str


def normalize_seed(text: str) -> str:
    """Drop the comment lines of the preamble (fixtures carry their oracle there).

    The preamble's text is the PCH key: without this, every fixture would need its own PCH; with
    it, all fixtures share one and all corpus cases another, so most mutants compile in ~0.1 s.
    """
    from .frontend.preamble import preamble_line_count, split_lines
    lines = split_lines(text)
    n = preamble_line_count(text)
    kept = [line for line in lines[:n] if line.strip() and not line.lstrip().startswith("//")]
    return "".join(kept + lines[n:])


def load_seeds(dirs: Iterable[Path] | None = None, names: Iterable[str] | None = None) -> list[Seed]:
    dirs = list(dirs) if dirs is not None else [CORPUS_CASES, FIXTURES]
    wanted = set(names) if names else None
    seeds = []
    for d in dirs:
        for p in sorted(Path(d).glob("*.bpf.c")):
            name = p.name[: -len(".bpf.c")]
            if wanted is not None and name not in wanted:
                continue
            seeds.append(Seed(name, str(p), normalize_seed(p.read_text(encoding="utf-8", errors="replace"))))
    return seeds


# =============================================================================================
# source mutators

RELEASE_CALLS = ("bpf_obj_drop", "bpf_obj_drop_impl", "bpf_task_release", "bpf_cgroup_release",
                 "bpf_cpumask_release", "bpf_spin_unlock", "bpf_rcu_read_unlock", "bpf_ringbuf_submit",
                 "bpf_ringbuf_discard", "bpf_sk_release", "bpf_ringbuf_submit_dynptr", "bpf_res_spin_unlock",
                 "bpf_percpu_obj_drop", "bpf_kptr_xchg")
RELEASE_LINE = re.compile(r"\b(" + "|".join(RELEASE_CALLS) + r")\s*\(")
UNLOCK_LINE = re.compile(r"\b(bpf_spin_unlock|bpf_rcu_read_unlock|bpf_res_spin_unlock)\s*\(")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

TOKENS = (
    # C
    "{", "}", "(", ")", "[", "]", ";", ",", "*", "&", "->", ".", "=", "==", "!", "?", ":", "+", "-", "<<",
    "if", "else", "while", "for", "do", "return", "goto out", "out:", "break;", "continue;", "switch (0) {",
    "case 0:", "default:", "struct", "union", "enum", "typedef", "static", "inline", "__always_inline",
    "const", "volatile", "void", "int", "long", "unsigned", "char", "sizeof", "typeof", "NULL", "0", "1", "-1",
    "0xffffffff", "0x7fffffffffffffff", "4096", "'a'", '"s"', "\"", "'", "/*", "*/", "//", "\\", "#", "##",
    "#define X", "#undef X", "#if 0", "#endif", "#else", "#include \"nope.h\"", "#pragma once", "#error x",
    "__attribute__((unused))", "__builtin_trap();", "__builtin_unreachable();", "asm volatile(\"r0 = 0\");",
    "while (1) {}", "for (;;);", "return 0;", "return;", "return e;", "return 1;", "_Static_assert(1, \"\");",
    # BPF
    "SEC(\"tc\")", "SEC(\"?tc\")", "SEC(\"xdp\")", "SEC(\"tp_btf/task_newtask\")", "SEC(\".maps\")",
    "SEC(\"syscall\")", "SEC(\"struct_ops/x\")", "__kptr", "__contains(elem, node)", "__arg_ctx", "__ksym",
    "__weak", "__hidden", "private(A)", "char _license[] SEC(\"license\") = \"GPL\";",
    "bpf_obj_new(typeof(*e))", "bpf_obj_drop(e);", "bpf_spin_lock(&lock);", "bpf_spin_unlock(&lock);",
    "bpf_rcu_read_lock();", "bpf_rcu_read_unlock();", "bpf_task_acquire(t)", "bpf_task_release(t);",
    "bpf_get_current_task_btf()", "bpf_kptr_xchg(&v->p, e)", "bpf_list_push_front(&head, &e->node)",
    "bpf_list_pop_front(&head)", "bpf_rbtree_add(&root, &e->node, less)", "bpf_refcount_acquire(e)",
    "bpf_ringbuf_reserve(&rb, 8, 0)", "bpf_ringbuf_submit(p, 0);", "bpf_map_lookup_elem(&m, &k)",
    "bpf_loop(4, cb, 0, 0)", "bpf_tail_call(ctx, &jmp, 0);", "bpf_throw(0);", "bpf_cpumask_create()",
    "bpf_cgroup_acquire(c)", "bpf_sk_lookup_tcp(ctx, 0, 0, 0, 0)", "bpf_probe_read_kernel(&x, 8, p)",
    "e", "t", "n", "ctx", "lock", "head", "root", "node", "struct elem *e", "e->data", "&e->node",
    "struct task_struct *", "struct bpf_list_head", "struct bpf_spin_lock", "ä", "\u200b", "\t", "\r",
    "\x00", "\x0c", "💥",
)


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _body_start(text: str) -> int:
    from .frontend.preamble import preamble_line_count
    try:
        return preamble_line_count(text)
    except Exception:  # a mutant may confuse it; mutation is best-effort
        return 0


def _pick_line(lines: list[str], rng: random.Random, lo: int) -> int:
    lo = min(lo, max(len(lines) - 1, 0))
    return rng.randrange(lo, len(lines)) if len(lines) > lo else 0


def m_delete_lines(text: str, rng: random.Random, lo: int) -> str:
    lines = _lines(text)
    if not lines:
        return text
    i = _pick_line(lines, rng, lo)
    del lines[i:i + rng.choice((1, 1, 1, 2, 3))]
    return "".join(lines)


def m_duplicate_lines(text: str, rng: random.Random, lo: int) -> str:
    lines = _lines(text)
    if not lines:
        return text
    i = _pick_line(lines, rng, lo)
    n = rng.choice((1, 1, 2, 3))
    chunk = lines[i:i + n]
    j = _pick_line(lines, rng, lo) if rng.random() < 0.5 else i
    lines[j:j] = chunk
    return "".join(lines)


def m_swap_lines(text: str, rng: random.Random, lo: int) -> str:
    lines = _lines(text)
    if len(lines) < 2:
        return text
    i, j = _pick_line(lines, rng, lo), _pick_line(lines, rng, lo)
    if rng.random() < 0.5:  # neighbours: the interesting reorderings are local
        j = min(i + 1, len(lines) - 1)
    lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def m_drop_release(text: str, rng: random.Random, lo: int) -> str:
    lines = _lines(text)
    hits = [i for i, line in enumerate(lines) if i >= lo and RELEASE_LINE.search(line)]
    if not hits:
        return m_delete_lines(text, rng, lo)
    i = rng.choice(hits)
    how = rng.random()
    if how < 0.5:
        del lines[i]
    elif how < 0.8:  # keep the line, drop only the call statement
        lines[i] = re.sub(r"\b(" + "|".join(RELEASE_CALLS) + r")\s*\([^;]*\)\s*;", ";", lines[i], count=1)
    else:            # comment it out
        lines[i] = "// " + lines[i]
    return "".join(lines)


def m_move_unlock(text: str, rng: random.Random, lo: int) -> str:
    lines = _lines(text)
    hits = [i for i, line in enumerate(lines) if i >= lo and UNLOCK_LINE.search(line)]
    if not hits:
        return m_swap_lines(text, rng, lo)
    i = rng.choice(hits)
    line = lines.pop(i)
    if rng.random() < 0.6:
        j = max(lo, min(len(lines), i + rng.choice((-3, -2, -1, 1, 2, 3))))
    else:
        j = _pick_line(lines, rng, lo) if lines else 0
    lines.insert(j, line)
    return "".join(lines)


def m_insert_tokens(text: str, rng: random.Random, lo: int) -> str:
    lines = _lines(text) or [""]
    i = _pick_line(lines, rng, lo)
    line = lines[i]
    col = rng.randrange(0, len(line) + 1)
    toks = " ".join(rng.choice(TOKENS) for _ in range(rng.choice((1, 1, 2, 3, 5))))
    lines[i] = line[:col] + (" " + toks + " " if rng.random() < 0.7 else toks) + line[col:]
    return "".join(lines)


POINTER_DECL = re.compile(r"\bstruct\s+\w+\s*\*\s*([A-Za-z_]\w*)")
CALL_ARG = re.compile(r"\b(bpf_spin_lock|bpf_spin_unlock|bpf_obj_drop|bpf_task_release|bpf_cgroup_release"
                      r"|bpf_cpumask_release|bpf_ringbuf_submit|bpf_ringbuf_discard|bpf_sk_release)\s*\(([^;]*?)\)\s*;")
STATEMENTS = ("return 0;", "return 1;", "if (!{v}) return 0;", "if ({v}) return 0;", "bpf_obj_drop({v});",
              "{v} = 0;", "bpf_spin_lock({lock});", "bpf_spin_unlock({lock});", "bpf_rcu_read_lock();",
              "bpf_rcu_read_unlock();", "{call}({arg});", "{call}({v});", "bpf_task_release({v});",
              "bpf_cpumask_release((void *){v});", "(void){v};", "goto out;", "{{", "}}", "barrier_var({v});")


def m_insert_statement(text: str, rng: random.Random, lo: int) -> str:
    """A whole plausible statement naming the file's own variables and locks: mutants that still build."""
    lines = _lines(text)
    spots = [i for i, line in enumerate(lines) if i >= lo and line.rstrip().endswith((";", "{", "}"))
             and line.startswith((" ", "\t"))]
    if not spots:
        return m_insert_tokens(text, rng, lo)
    variables = POINTER_DECL.findall(text) or ["ctx"]
    calls = CALL_ARG.findall(text)
    locks = [arg for call, arg in calls if call.startswith("bpf_spin")] or ["&lock"]
    call, arg = rng.choice(calls) if calls else ("bpf_obj_drop", rng.choice(variables))
    stmt = rng.choice(STATEMENTS).format(v=rng.choice(variables), lock=rng.choice(locks), call=call, arg=arg)
    i = rng.choice(spots) + 1
    indent = re.match(r"[ \t]*", lines[i - 1]).group(0)
    lines.insert(i, indent + stmt + "\n")
    return "".join(lines)


def m_replace_identifier(text: str, rng: random.Random, lo: int) -> str:
    lines = _lines(text)
    body = "".join(lines[lo:])
    offset = len("".join(lines[:lo]))
    words = list(IDENT.finditer(body))
    if not words:
        return m_insert_tokens(text, rng, lo)
    target = rng.choice(words)
    pool = [w.group(0) for w in words] + list(RELEASE_CALLS) + ["bpf_obj_new", "bpf_task_acquire", "NULL", "0"]
    a, b = offset + target.start(), offset + target.end()
    return text[:a] + rng.choice(pool) + text[b:]


def m_truncate(text: str, rng: random.Random, lo: int) -> str:
    start = len("".join(_lines(text)[:lo]))
    if len(text) <= start:
        return text[: rng.randrange(0, len(text) + 1)]
    return text[: rng.randrange(start, len(text) + 1)]


def m_unbalance_braces(text: str, rng: random.Random, lo: int) -> str:
    start = len("".join(_lines(text)[:lo]))
    braces = [i for i, c in enumerate(text) if c in "{}()" and i >= start]
    how = rng.random()
    if braces and how < 0.6:
        i = rng.choice(braces)
        return text[:i] + text[i + 1:]
    i = rng.randrange(start, len(text) + 1) if len(text) >= start else len(text)
    return text[:i] + rng.choice(("{", "}", "{{", "}}", "(", ")", "{ {", "} }")) + text[i:]


def m_random_bytes(text: str, rng: random.Random, lo: int) -> str:
    """Random bytes (often invalid UTF-8) decoded with replacement, spliced in or overwriting."""
    raw = text.encode("utf-8", errors="replace")
    start = len("".join(_lines(text)[:lo]).encode("utf-8", errors="replace"))
    n = rng.choice((1, 2, 4, 8, 16, 64))
    junk = bytes(rng.choice((0x00, 0x0a, 0x0d, 0x22, 0x5c, 0x7b, 0x7d, 0x80, 0xc0, 0xc3, 0xe2, 0xed, 0xf0,
                             0xf8, 0xfe, 0xff, rng.randrange(256))) for _ in range(n))
    i = rng.randrange(start, len(raw) + 1) if len(raw) >= start else len(raw)
    if rng.random() < 0.5:
        raw = raw[:i] + junk + raw[i:]
    else:
        raw = raw[:i] + junk + raw[i + n:]
    return raw.decode("utf-8", errors="replace")


def m_lone_surrogates(text: str, rng: random.Random, lo: int) -> str:
    """Invalid UTF-8 decoded with surrogateescape: what an LSP client's JSON can carry ("\\udc80")."""
    raw = text.encode("utf-8", errors="replace")
    start = len("".join(_lines(text)[:lo]).encode("utf-8", errors="replace"))
    i = rng.randrange(start, len(raw) + 1) if len(raw) >= start else len(raw)
    if rng.random() < 0.5:
        junk = bytes(rng.choice((0x80, 0xc3, 0xed, 0xff)) for _ in range(rng.choice((1, 2, 3))))
        return (raw[:i] + junk + raw[i:]).decode("utf-8", errors="surrogateescape")
    # what json.loads makes of "\ud800" / "\udfff": lone surrogates outside surrogateescape's range
    text_i = len(raw[:i].decode("utf-8", errors="ignore"))
    return text[:text_i] + rng.choice(("\ud800", "\udfff", "\ud83d", "// \ud800\n")) + text[text_i:]


def m_crlf(text: str, rng: random.Random, lo: int) -> str:
    """Line-ending chaos: CRLF, lone CR, form feeds, a missing final newline."""
    how = rng.random()
    if how < 0.4:
        return text.replace("\n", "\r\n")
    if how < 0.7:
        lines = _lines(text)
        if lines:
            i = _pick_line(lines, rng, lo)
            lines[i] = lines[i].replace("\n", "\r")
        return "".join(lines)
    return text.rstrip("\n") if how < 0.85 else text.replace("\t", "\f")


SOURCE_MUTATORS: dict[str, Callable[[str, random.Random, int], str]] = {
    "delete_lines": m_delete_lines,
    "duplicate_lines": m_duplicate_lines,
    "swap_lines": m_swap_lines,
    "drop_release": m_drop_release,
    "move_unlock": m_move_unlock,
    "insert_tokens": m_insert_tokens,
    "insert_statement": m_insert_statement,
    "replace_identifier": m_replace_identifier,
    "truncate": m_truncate,
    "unbalance_braces": m_unbalance_braces,
    "random_bytes": m_random_bytes,
    "lone_surrogates": m_lone_surrogates,
    "crlf": m_crlf,
}
# How often each is picked: the ownership-relevant edits dominate.
SOURCE_WEIGHTS = {"delete_lines": 10, "duplicate_lines": 7, "swap_lines": 7, "drop_release": 14, "move_unlock": 8,
                  "insert_tokens": 7, "insert_statement": 16, "replace_identifier": 7, "truncate": 5, "unbalance_braces": 6,
                  "random_bytes": 6, "lone_surrogates": 2, "crlf": 3}
PREAMBLE_TOUCH_RATE = 0.04   # mutants allowed to edit the #include block (each costs a PCH build)


def mutate_source(text: str, rng: random.Random) -> tuple[str, list[str]]:
    """One mutant of ``text``: 1 to 3 stacked mutations; returns (mutant, mutator names)."""
    names = list(SOURCE_WEIGHTS)
    weights = [SOURCE_WEIGHTS[n] for n in names]
    applied = []
    lo = 0 if rng.random() < PREAMBLE_TOUCH_RATE else _body_start(text)
    for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3))):
        name = rng.choices(names, weights)[0]
        text = SOURCE_MUTATORS[name](text, rng, lo)
        applied.append(name if lo else name + "@preamble")
    return text, applied


# =============================================================================================
# checking an analysis

def span_problems(span, what: str) -> list[str]:
    out = []
    try:
        if not isinstance(span.line, int) or not isinstance(span.column, int) \
                or not isinstance(span.end_line, int) or not isinstance(span.end_column, int):
            return [f"{what}: non-integer span {span!r}"]
        if span.line < 1 or span.column < 1:
            out.append(f"{what}: span starts before 1:1 ({span.line}:{span.column})")
        if (span.end_line, span.end_column) < (span.line, span.column):
            out.append(f"{what}: span ends before it starts ({span.line}:{span.column}-"
                       f"{span.end_line}:{span.end_column})")
        if not isinstance(span.file, str):
            out.append(f"{what}: span file is {type(span.file).__name__}")
    except AttributeError as e:
        out.append(f"{what}: not a span: {e}")
    return out


def known_code(code: str, source: str) -> bool:
    from .codes import CODES
    if code in CODES or code in STAGE_CODES:
        return True
    return source == "clang" and (code == "clang" or bool(CLANG_OPTION_CODE.match(code)))


def check_diagnostics(diags: Sequence, path: str, text: str | None) -> list[str]:
    """Well-formedness of every diagnostic, related place and fix edit."""
    problems = []
    # clang counts a lone CR as a line break too
    nlines = len(re.split(r"\r\n|\r|\n", text)) if text is not None else None
    for d in diags:
        label = f"[{getattr(d, 'code', '?')}]"
        problems += span_problems(d.span, label)
        if nlines is not None and isinstance(d.span.line, int) and d.span.line > nlines + 1 \
                and os.path.abspath(d.span.file or path) == os.path.abspath(path):
            problems.append(f"{label}: span at line {d.span.line} is past the end ({nlines} lines)")
        if d.severity not in SEVERITIES:
            problems.append(f"{label}: severity {d.severity!r} is not one of {sorted(SEVERITIES)}")
        if not known_code(d.code, d.source):
            problems.append(f"{label}: unknown code {d.code!r} (source {d.source!r})")
        if not isinstance(d.message, str) or not d.message:
            problems.append(f"{label}: empty message")
        for r in d.related:
            problems += span_problems(r.span, f"{label} related")
        for fix in d.fixes:
            if not isinstance(fix.title, str) or not fix.title:
                problems.append(f"{label}: fix without a title")
            for e in fix.edits:
                problems += span_problems(e.span, f"{label} fix {fix.title!r}")
                if not isinstance(e.new_text, str):
                    problems.append(f"{label}: fix edit text is {type(e.new_text).__name__}")
                if nlines is not None and os.path.abspath(e.span.file or path) == os.path.abspath(path) \
                        and e.span.line > nlines + 1:
                    problems.append(f"{label}: fix edit at line {e.span.line} is past the end ({nlines} lines)")
    return problems


def _hover_positions(text: str, rng: random.Random, n: int) -> list[tuple[int, int]]:
    lines = text.split("\n")
    out = [(0, 0), (1, 0), (-1, 5), (len(lines) + 3, 1), (1, 10**6)]
    words = [(i + 1, m.start() + 1) for i, line in enumerate(lines) for m in IDENT.finditer(line)]
    for _ in range(n):
        if words and rng.random() < 0.7:
            line, col = rng.choice(words)
            out.append((line, col + rng.choice((0, 0, 1, 2))))
        else:
            line = rng.randrange(1, len(lines) + 1)
            out.append((line, rng.randrange(1, len(lines[line - 1].encode("utf-8", "surrogatepass")) + 3)))
    return out


def exercise_analysis(analysis, path: str, text: str | None, rng: random.Random, hovers: int = 8) -> list[str]:
    """Hover at random places and read every fix: raises whatever escapes; returns problems."""
    problems = check_diagnostics(analysis.diagnostics, path, text)
    for report in analysis.programs:
        if report.verdict not in VERDICTS:
            problems.append(f"program {report.name}: verdict {report.verdict!r}")
    for line, col in _hover_positions(text or "", rng, hovers):
        answer = analysis.hover(line, col)
        if answer is not None and not isinstance(answer, str):
            problems.append(f"hover({line}, {col}) returned {type(answer).__name__}")
    return problems


# =============================================================================================
# ELF / BTF layout, for targeted object corruption

@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int
    header: int        # file offset of this section's header


@dataclass(frozen=True)
class BtfTypeRec:
    id: int
    offset: int        # file offset of the record
    kind: int
    vlen: int
    ref_fields: tuple[int, ...]   # file offsets of u32 fields holding type ids
    name_fields: tuple[int, ...]  # file offsets of u32 fields holding string offsets


@dataclass
class Layout:
    """Where things are in one pristine ELF64 little-endian object."""
    size: int
    shoff: int
    shnum: int
    shstrndx: int
    sections: list[Section]
    btf: Section | None = None
    btf_types: list[BtfTypeRec] = field(default_factory=list)
    btf_str: tuple[int, int] = (0, 0)              # (file offset, length) of the string section
    ext: Section | None = None
    ext_fields: dict[str, int] = field(default_factory=dict)   # name -> file offset of a u32

    def named(self, prefix: str) -> list[Section]:
        return [s for s in self.sections if s.name.startswith(prefix)]


SHT_PROGBITS, SHT_SYMTAB, SHT_REL = 1, 2, 9
REF_KINDS = {2, 8, 9, 10, 11, 12, 13, 14, 17, 18}   # PTR TYPEDEF VOLATILE CONST RESTRICT FUNC PROTO VAR DECL_TAG TYPE_TAG


def _btf_records(data: bytes, base: int, hdr: dict) -> tuple[list[BtfTypeRec], tuple[int, int]]:
    t0 = base + hdr["hdr_len"] + hdr["type_off"]
    end = t0 + hdr["type_len"]
    recs = []
    off, tid = t0, 1
    while off + 12 <= end:
        _, info, _ = struct.unpack_from("<III", data, off)
        kind, vlen = (info >> 24) & 0x1f, info & 0xffff
        extra = {1: 4, 3: 12, 4: 12 * vlen, 5: 12 * vlen, 6: 8 * vlen, 13: 8 * vlen, 14: 4,
                 15: 12 * vlen, 17: 4, 19: 12 * vlen}.get(kind, 0)
        refs, names = [], [off]
        if kind in REF_KINDS:
            refs.append(off + 8)
        if kind == 3:
            refs += [off + 12, off + 16]
        elif kind in (4, 5):
            for m in range(vlen):
                names.append(off + 12 + 12 * m)
                refs.append(off + 12 + 12 * m + 4)
        elif kind == 13:
            for m in range(vlen):
                names.append(off + 12 + 8 * m)
                refs.append(off + 12 + 8 * m + 4)
        elif kind == 15:
            refs += [off + 12 + 12 * m for m in range(vlen)]
        recs.append(BtfTypeRec(tid, off, kind, vlen, tuple(refs), tuple(names)))
        off += 12 + extra
        tid += 1
    return recs, (base + hdr["hdr_len"] + hdr["str_off"], hdr["str_len"])


def object_layout(data: bytes) -> Layout | None:
    """The layout of a well-formed ELF64 LE object, or None (then only blind mutations apply)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    if shentsize != 64 or shoff + 64 * shnum > len(data):
        return None
    raw = []
    for i in range(shnum):
        h = shoff + 64 * i
        name, typ, flags, _, off, size, link, info, _, ent = struct.unpack_from("<IIQQQQIIQQ", data, h)
        raw.append((i, name, typ, flags, off, size, link, info, ent, h))
    stroff, strsize = raw[shstrndx][4], raw[shstrndx][5]

    def cstr(o: int) -> str:
        a = stroff + o
        b = data.find(b"\0", a, stroff + strsize)
        return data[a:b if b >= 0 else a].decode("latin-1")

    sections = [Section(i, cstr(n), t, f, o, s, lk, inf, e, h) for i, n, t, f, o, s, lk, inf, e, h in raw]
    layout = Layout(len(data), shoff, shnum, shstrndx, sections)
    for s in sections:
        if s.name == ".BTF" and s.size >= 24:
            layout.btf = s
            keys = ("hdr_len", "type_off", "type_len", "str_off", "str_len")
            hdr = dict(zip(keys, struct.unpack_from("<IIIII", data, s.offset + 4)))
            with contextlib.suppress(struct.error):
                layout.btf_types, layout.btf_str = _btf_records(data, s.offset, hdr)
        elif s.name == ".BTF.ext" and s.size >= 24:
            layout.ext = s
            names = ["hdr_len", "func_info_off", "func_info_len", "line_info_off", "line_info_len",
                     "core_relo_off", "core_relo_len"]
            hdr_len, = struct.unpack_from("<I", data, s.offset + 4)
            for k, name in enumerate(names):
                if 4 + 4 * k + 4 <= min(hdr_len, s.size):
                    layout.ext_fields[name] = s.offset + 4 + 4 * k
            for sub in ("func_info", "line_info", "core_relo"):
                if sub + "_off" in layout.ext_fields:
                    rel, = struct.unpack_from("<I", data, layout.ext_fields[sub + "_off"])
                    length, = struct.unpack_from("<I", data, layout.ext_fields[sub + "_len"])
                    at = s.offset + hdr_len + rel
                    if length >= 4 and at + 12 <= s.offset + s.size:
                        layout.ext_fields[sub + ".rec_size"] = at
                        layout.ext_fields[sub + ".sec_name_off"] = at + 4
                        layout.ext_fields[sub + ".num_info"] = at + 8
                        if at + 16 <= s.offset + s.size:
                            layout.ext_fields[sub + ".insn_off"] = at + 12
    return layout


# =============================================================================================
# object mutators: each takes (bytearray, rng, layout) and edits in place

INTERESTING_32 = (0, 1, 2, 3, 4, 7, 8, 12, 16, 24, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
                  0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff)
INTERESTING_64 = INTERESTING_32 + (0x100000000, 0x7fffffffffffffff, 0xffffffffffffffff)


def _put32(buf: bytearray, off: int, value: int) -> None:
    if 0 <= off and off + 4 <= len(buf):
        struct.pack_into("<I", buf, off, value & 0xffffffff)


def _put64(buf: bytearray, off: int, value: int) -> None:
    if 0 <= off and off + 8 <= len(buf):
        struct.pack_into("<Q", buf, off, value & 0xffffffffffffffff)


def _get32(buf: bytearray, off: int) -> int:
    return struct.unpack_from("<I", buf, off)[0] if 0 <= off and off + 4 <= len(buf) else 0


def _near(value: int, rng: random.Random, wide: Sequence[int] = INTERESTING_32) -> int:
    r = rng.random()
    if r < 0.4:
        return rng.choice(wide)
    if r < 0.8:
        return value + rng.choice((-8, -4, -3, -2, -1, 1, 2, 3, 4, 8, 12, 24, 100))
    return value ^ (1 << rng.randrange(32))


def _section_or_any(layout: Layout | None, rng: random.Random, names: Sequence[str]) -> Section | None:
    if layout is None:
        return None
    cands = [s for s in layout.sections if any(s.name.startswith(n) for n in names) and s.size]
    return rng.choice(cands) if cands else None


def o_truncate(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    r = rng.random()
    if r < 0.3:
        n = rng.randrange(0, min(len(buf), 256) + 1)
    elif r < 0.6 and layout is not None and layout.sections:
        s = rng.choice(layout.sections)
        n = s.offset + rng.randrange(0, max(s.size, 1))
    else:
        n = rng.randrange(0, len(buf) + 1)
    del buf[n:]


def o_flip_bytes(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    for _ in range(rng.choice((1, 1, 2, 4, 8, 16))):
        if not buf:
            return
        i = rng.randrange(len(buf))
        buf[i] = rng.randrange(256) if rng.random() < 0.5 else buf[i] ^ (1 << rng.randrange(8))


def _flip_in(buf: bytearray, rng: random.Random, sec: Section | None, n: int | None = None) -> None:
    if sec is None or not sec.size:
        return o_flip_bytes(buf, rng, None)
    for _ in range(n or rng.choice((1, 1, 2, 4, 8))):
        i = sec.offset + rng.randrange(sec.size)
        if i < len(buf):
            buf[i] = rng.randrange(256) if rng.random() < 0.5 else buf[i] ^ (1 << rng.randrange(8))


def o_elf_header(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    field_ = rng.choice(("class", "data", "machine", "shoff", "shnum", "shstrndx", "shentsize", "type", "version"))
    if field_ == "class" and len(buf) > 4:
        buf[4] = rng.choice((0, 1, 3, 0xff))
    elif field_ == "data" and len(buf) > 5:
        buf[5] = rng.choice((0, 2, 3))
    elif field_ == "machine" and len(buf) >= 0x14:
        struct.pack_into("<H", buf, 0x12, rng.choice((0, 3, 62, 0xf6, 0xffff)))
    elif field_ == "shoff":
        _put64(buf, 0x28, _near(layout.shoff if layout else 0, rng, INTERESTING_64))
    elif field_ in ("shnum", "shstrndx", "shentsize") and len(buf) >= 0x40:
        at = {"shentsize": 0x3a, "shnum": 0x3c, "shstrndx": 0x3e}[field_]
        old = struct.unpack_from("<H", buf, at)[0]
        struct.pack_into("<H", buf, at, _near(old, rng) & 0xffff)
    elif field_ == "type" and len(buf) >= 0x12:
        struct.pack_into("<H", buf, 0x10, rng.choice((0, 2, 3, 4, 0xfe00, 0xffff)))
    else:
        _put32(buf, 0x14, rng.choice((0, 2, 0xffffffff)))


def o_section_header(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or not layout.sections:
        return o_flip_bytes(buf, rng, layout)
    s = rng.choice(layout.sections)
    what = rng.choice(("offset", "size", "size", "link", "info", "type", "flags", "entsize", "name", "swap"))
    h = s.header
    if what == "offset":
        _put64(buf, h + 24, _near(s.offset, rng, INTERESTING_64 + (layout.size, layout.size - 1)))
    elif what == "size":
        _put64(buf, h + 32, _near(s.size, rng, INTERESTING_64 + (layout.size, layout.size + 1)))
    elif what == "link":
        _put32(buf, h + 40, _near(s.link, rng, tuple(range(layout.shnum + 2)) + (0xffff, 0xffffffff)))
    elif what == "info":
        _put32(buf, h + 44, _near(s.info, rng, tuple(range(layout.shnum + 2)) + (0xffff, 0xffffffff)))
    elif what == "type":
        _put32(buf, h + 4, rng.choice((0, 1, 2, 3, 4, 8, 9, 11, 0x6fff4c03, 0x6ffffff6, 0xffffffff)))
    elif what == "flags":
        # SHF_COMPRESSED (0x800) makes pyelftools try to inflate the section
        _put64(buf, h + 8, s.flags ^ rng.choice((0x1, 0x2, 0x4, 0x800, 0x40)))
    elif what == "entsize":
        _put64(buf, h + 56, rng.choice((0, 1, 3, 8, 16, 23, 24, 25, 0xffffffff, 0xffffffffffffffff)))
    elif what == "name":
        _put32(buf, h, _near(_get32(buf, h), rng))
    else:  # two sections trade places (the names stay)
        t = rng.choice(layout.sections)
        a, b = bytes(buf[h + 4:h + 64]), bytes(buf[t.header + 4:t.header + 64])
        if t.header + 64 <= len(buf) and h + 64 <= len(buf):
            buf[h + 4:h + 64], buf[t.header + 4:t.header + 64] = b, a


def o_symbols(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    sec = _section_or_any(layout, rng, (".symtab",))
    if sec is None or sec.size < 24:
        return o_flip_bytes(buf, rng, layout)
    for _ in range(rng.choice((1, 1, 2, 3))):
        e = sec.offset + 24 * rng.randrange(sec.size // 24)
        what = rng.choice(("name", "info", "shndx", "shndx", "value", "value", "size", "size"))
        if what == "name":
            _put32(buf, e, _near(_get32(buf, e), rng))
        elif what == "info":
            buf[e + 4] = rng.randrange(256)
        elif what == "shndx":
            struct.pack_into("<H", buf, e + 6, rng.choice((0, 1, 2, 3, layout.shnum - 1, layout.shnum,
                                                            layout.shnum + 5, 0xfff1, 0xfff2, 0xffff)))
        elif what == "value":
            _put64(buf, e + 8, _near(struct.unpack_from("<Q", buf, e + 8)[0], rng, INTERESTING_64))
        else:
            _put64(buf, e + 16, _near(struct.unpack_from("<Q", buf, e + 16)[0], rng, INTERESTING_64))


def o_relocations(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    cands = [s for s in (layout.sections if layout else []) if s.type == SHT_REL and s.size >= 16]
    if not cands:
        return o_flip_bytes(buf, rng, layout)
    # code relocations matter most to the linker; debug ones to DWARF
    code = [s for s in cands if not s.name.startswith((".rel.debug", ".rel.BTF"))]
    sec = rng.choice(code) if code and rng.random() < 0.6 else rng.choice(cands)
    for _ in range(rng.choice((1, 1, 2, 3))):
        e = sec.offset + 16 * rng.randrange(sec.size // 16)
        off, info = struct.unpack_from("<QQ", buf, e)
        sym, typ = info >> 32, info & 0xffffffff
        what = rng.choice(("sym", "sym", "type", "offset", "offset"))
        if what == "sym":
            sym = _near(sym, rng, (0, 1, 2, 3, 1000, 0xffffffff))
        elif what == "type":
            typ = rng.choice((0, 1, 2, 3, 4, 8, 10, 0xffffffff))
        else:
            off = _near(off, rng, INTERESTING_64)
        struct.pack_into("<QQ", buf, e, off & (2**64 - 1), ((sym & 0xffffffff) << 32) | (typ & 0xffffffff))


def o_instructions(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    cands = [s for s in (layout.sections if layout else []) if s.type == SHT_PROGBITS and s.flags & 0x4
             and s.size >= 8]
    if not cands:
        return o_flip_bytes(buf, rng, layout)
    sec = rng.choice(cands)
    for _ in range(rng.choice((1, 1, 2, 3))):
        e = sec.offset + 8 * rng.randrange(sec.size // 8)
        what = rng.choice(("opcode", "regs", "off", "imm", "imm", "call", "jump", "exit", "ld64"))
        if e + 8 > len(buf):
            return
        if what == "opcode":
            buf[e] = rng.randrange(256)
        elif what == "regs":
            buf[e + 1] = rng.randrange(256)
        elif what == "off":
            struct.pack_into("<h", buf, e + 2, rng.choice((-32768, -2, -1, 0, 1, 2, 1000, 32767)))
        elif what == "imm":
            struct.pack_into("<I", buf, e + 4, rng.choice(INTERESTING_32))
        elif what == "call":       # call helper/kfunc/subprog with a random imm
            buf[e] = 0x85
            buf[e + 1] = rng.choice((0x00, 0x10, 0x20, 0x30))
            struct.pack_into("<i", buf, e + 4, rng.choice((-1, 0, 1, 2, 3, 12, 35, 131, 212, 1000, -1000)))
        elif what == "jump":       # ja / jeq with a wild offset
            buf[e] = rng.choice((0x05, 0x15, 0x06, 0x1d))
            struct.pack_into("<h", buf, e + 2, rng.choice((-32768, -3, -2, -1, 0, 1, 50, 32767)))
        elif what == "exit":
            buf[e:e + 8] = b"\x95" + b"\0" * 7
        else:                      # half of an ld_imm64, or one with a bad pseudo src
            buf[e] = 0x18
            buf[e + 1] = rng.randrange(256)


def o_btf_header(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or layout.btf is None:
        return o_flip_bytes(buf, rng, layout)
    s = layout.btf
    what = rng.choice(("magic", "version", "flags", "hdr_len", "type_off", "type_len", "str_off", "str_len"))
    if what == "magic":
        struct.pack_into("<H", buf, s.offset, rng.choice((0, 0x9feb, 0xeb9e, 0xffff)))
    elif what == "version":
        buf[s.offset + 2] = rng.choice((0, 2, 0xff))
    elif what == "flags":
        buf[s.offset + 3] = rng.choice((1, 0xff))
    else:
        at = s.offset + 4 + 4 * ("hdr_len", "type_off", "type_len", "str_off", "str_len").index(what)
        _put32(buf, at, _near(_get32(buf, at), rng, INTERESTING_32 + (s.size, s.size - 24)))


def o_btf_types(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or not layout.btf_types:
        return o_btf_header(buf, rng, layout)
    recs = layout.btf_types
    n = len(recs)
    for _ in range(rng.choice((1, 1, 2, 3))):
        t = rng.choice(recs)
        what = rng.choice(("ref", "ref", "ref", "kind", "vlen", "kind_flag", "name", "size", "member_offset",
                           "int_bits", "array"))
        if what == "ref" and t.ref_fields:
            at = rng.choice(t.ref_fields)
            _put32(buf, at, rng.choice((0, t.id, n, n + 1, rng.randrange(n + 1), 0x7fffffff, 0xffffffff)))
        elif what == "kind":
            info = _get32(buf, t.offset + 4)
            _put32(buf, t.offset + 4, (info & ~(0x1f << 24)) | (rng.choice(range(0, 32)) << 24))
        elif what == "vlen":
            info = _get32(buf, t.offset + 4)
            _put32(buf, t.offset + 4, (info & ~0xffff) | rng.choice((0, 1, 2, t.vlen + 1, 0xffff)))
        elif what == "kind_flag":
            _put32(buf, t.offset + 4, _get32(buf, t.offset + 4) ^ 0x80000000)
        elif what == "name":
            at = rng.choice(t.name_fields)
            _put32(buf, at, rng.choice((0, 1, layout.btf_str[1] - 1, layout.btf_str[1], layout.btf_str[1] + 1,
                                        0xffffffff, rng.randrange(max(layout.btf_str[1], 1)))))
        elif what == "size":
            _put32(buf, t.offset + 8, rng.choice(INTERESTING_32))
        elif what == "member_offset" and t.kind in (4, 5) and t.vlen:
            m = rng.randrange(t.vlen)
            _put32(buf, t.offset + 12 + 12 * m + 8, rng.choice(INTERESTING_32))
        elif what == "int_bits" and t.kind == 1:
            _put32(buf, t.offset + 12, rng.choice((0, 0x01000000, 0x0f000040, 0xffffffff, 0x00000080)))
        elif what == "array" and t.kind == 3:
            _put32(buf, t.offset + 20, rng.choice(INTERESTING_32))
        else:
            _put32(buf, t.offset + 8, rng.randrange(n + 2))


def o_btf_loop(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    """Make the type graph loop: a modifier chain back onto itself, a struct containing itself."""
    if layout is None or not layout.btf_types:
        return o_btf_header(buf, rng, layout)
    refs = [t for t in layout.btf_types if t.kind in (2, 8, 9, 10, 11, 18)]
    structs = [t for t in layout.btf_types if t.kind in (4, 5) and t.vlen]
    how = rng.random()
    if how < 0.3 and refs:                       # t -> t
        t = rng.choice(refs)
        _put32(buf, t.offset + 8, t.id)
    elif how < 0.6 and len(refs) >= 2:          # a -> b -> a
        a, b = rng.sample(refs, 2)
        _put32(buf, a.offset + 8, b.id)
        _put32(buf, b.offset + 8, a.id)
    elif structs:                                # a struct member of the struct's own type (or a typedef to it)
        t = rng.choice(structs)
        m = rng.randrange(t.vlen)
        target = t.id
        if refs and rng.random() < 0.5:
            r = rng.choice(refs)
            _put32(buf, r.offset + 8, t.id)
            target = r.id
        _put32(buf, t.ref_fields[m], target)
    elif refs:
        t = rng.choice(refs)
        _put32(buf, t.offset + 8, t.id)


def o_btf_strings(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or layout.btf is None or not layout.btf_str[1]:
        return o_flip_bytes(buf, rng, layout)
    off, length = layout.btf_str
    for _ in range(rng.choice((1, 2, 4))):
        i = off + rng.randrange(length)
        if i < len(buf):
            buf[i] = rng.choice((0, 0x80, 0xff, ord("?"), rng.randrange(256)))


def o_btf_ext(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or layout.ext is None or not layout.ext_fields:
        return o_btf_header(buf, rng, layout)
    name = rng.choice(sorted(layout.ext_fields))
    at = layout.ext_fields[name]
    if name.endswith("rec_size"):
        value = rng.choice((0, 1, 3, 4, 7, 8, 12, 15, 16, 17, 24, 0x10000, 0xffffffff))
    elif name.endswith("num_info"):
        value = rng.choice((0, 1, 2, 1000, 0x7fffffff, 0xffffffff))
    else:
        value = _near(_get32(buf, at), rng, INTERESTING_32 + (layout.ext.size,))
    _put32(buf, at, value)
    if rng.random() < 0.3:
        _flip_in(buf, rng, layout.ext, 2)


def o_dwarf(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    sec = _section_or_any(layout, rng, (".debug_info", ".debug_info", ".debug_abbrev", ".debug_abbrev",
                                        ".debug_line", ".debug_loclists", ".debug_rnglists", ".debug_str_offsets",
                                        ".debug_addr", ".debug_str", ".debug_line_str", ".debug_frame"))
    if sec is None:
        return o_flip_bytes(buf, rng, layout)
    how = rng.random()
    if how < 0.15 and sec.size >= 4:       # the unit length
        _put32(buf, sec.offset, _near(_get32(buf, sec.offset), rng))
    elif how < 0.3 and sec.size >= 6:      # the version
        struct.pack_into("<H", buf, sec.offset + 4, rng.choice((0, 1, 2, 3, 4, 5, 6, 0xffff)))
    elif how < 0.45:                       # LEB128 chaos: a run of continuation bytes
        i = sec.offset + rng.randrange(sec.size)
        n = rng.choice((1, 4, 12))
        buf[i:i + n] = b"\xff" * min(n, len(buf) - i)
    else:
        _flip_in(buf, rng, sec)


def o_section_bytes(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    """Flip bytes inside one section (any), so the header stays intact and the content is read."""
    if layout is None or not layout.sections:
        return o_flip_bytes(buf, rng, layout)
    _flip_in(buf, rng, rng.choice([s for s in layout.sections if s.size] or layout.sections))


OBJECT_MUTATORS: dict[str, Callable[[bytearray, random.Random, Layout | None], None]] = {
    "truncate": o_truncate, "flip_bytes": o_flip_bytes, "elf_header": o_elf_header,
    "section_header": o_section_header, "symbols": o_symbols, "relocations": o_relocations,
    "instructions": o_instructions, "btf_header": o_btf_header, "btf_types": o_btf_types,
    "btf_loop": o_btf_loop, "btf_strings": o_btf_strings, "btf_ext": o_btf_ext, "dwarf": o_dwarf,
    "section_bytes": o_section_bytes,
}
OBJECT_WEIGHTS = {"truncate": 4, "flip_bytes": 5, "elf_header": 3, "section_header": 9, "symbols": 9,
                  "relocations": 9, "instructions": 12, "btf_header": 5, "btf_types": 14, "btf_loop": 8,
                  "btf_strings": 3, "btf_ext": 9, "dwarf": 10, "section_bytes": 5}


def mutate_object(data: bytes, rng: random.Random, layout: Layout | None) -> tuple[bytes, list[str]]:
    buf = bytearray(data)
    names = list(OBJECT_WEIGHTS)
    weights = [OBJECT_WEIGHTS[n] for n in names]
    applied = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        name = rng.choices(names, weights)[0]
        try:
            OBJECT_MUTATORS[name](buf, rng, layout)
        except (struct.error, IndexError, ValueError):
            pass  # an earlier truncation moved things out of reach: the mutant is what it is
        applied.append(name)
    return bytes(buf), applied


# =============================================================================================
# running one case (in the worker process)

def make_analyzer(include_dirs: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None):
    from .analysis import Analyzer
    from .settings import Settings
    settings, problems = Settings().updated({"includeDirs": list(include_dirs or default_include_dirs())})
    assert not problems, problems
    analyzer = Analyzer(settings, cache_dir=cache_dir or FUZZ_CACHE, build_pch_synchronously=True)
    analyzer.pch.max_entries = max(analyzer.pch.max_entries, 64)
    return analyzer


def _where(exc: BaseException) -> str:
    """file:line of the innermost frame inside bpf_lsp (or the innermost frame), for deduplication."""
    tb = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in tb if "bpf_lsp" in f.filename and not f.filename.endswith("fuzzing.py")]
    frame = (ours or tb or [None])[-1]
    if isinstance(exc, RecursionError) and ours:   # the frame that recursed, not where the stack ran out
        counts: dict[tuple[str, int], int] = {}
        for f in ours:
            counts[(f.filename, f.lineno)] = counts.get((f.filename, f.lineno), 0) + 1
        (name, line), _ = max(counts.items(), key=lambda kv: kv[1])
        return f"{os.path.relpath(name, REPO)}:{line} (recursion)"
    if frame is None:
        return "?"
    return f"{os.path.relpath(frame.filename, REPO)}:{frame.lineno}"


def _crash(stage: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, MemoryError):
        # the frames still hold whatever exhausted memory: drop their locals before formatting anything
        traceback.clear_frames(exc.__traceback__)
        import gc
        gc.collect()
    return {"stage": stage, "type": type(exc).__name__, "where": _where(exc),
            "message": str(exc)[:500], "traceback": "".join(traceback.format_exception(exc))[-6000:]}


def run_source_case(analyzer, text: str, path: str, rng_seed: int | str, hovers: int = 8) -> dict[str, Any]:
    rng = random.Random(rng_seed)
    out: dict[str, Any] = {"crash": None, "problems": [], "codes": []}
    t0 = time.monotonic()
    try:
        stage = "analyze"
        analysis = analyzer.analyze(text, path)
        out["analyze_seconds"] = time.monotonic() - t0
        out["codes"] = sorted({d.code for d in analysis.diagnostics})
        out["built"] = analysis.obj is not None
        stage = "hover/fixes"
        out["problems"] = exercise_analysis(analysis, os.path.abspath(path), text, rng, hovers)
    except BaseException as exc:  # noqa: BLE001 - the point is to see everything
        if isinstance(exc, KeyboardInterrupt):
            raise
        out["crash"] = _crash(stage, exc)
    out["seconds"] = time.monotonic() - t0
    return out


def run_object_case(analyzer, data: bytes, path: str, text: str | None, rng_seed: int | str,
                    hovers: int = 4) -> dict[str, Any]:
    """load_object (only ObjectError may escape), verify_program on every program, then the
    analysis path (``Analyzer.verify_object``: records, verification, rendering) and hovers.
    Each stage is checked on its own: a crash in one does not hide one in the next."""
    from .analysis import Analysis
    from .frontend.kernel_btf import kernel_facts
    from .frontend.objfile import ObjectError, load_object
    from .verifier import verify_program
    from .verifier.records import RecordBuilder
    rng = random.Random(rng_seed)
    path = os.path.abspath(path)
    out: dict[str, Any] = {"crash": None, "crashes": [], "problems": [], "rejected": False, "programs": 0}
    t0 = time.monotonic()

    def crashed(stage: str, exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        out["crashes"].append(_crash(stage, exc))

    obj = None
    try:
        obj = load_object(data, path)
    except ObjectError:
        out["rejected"] = True
    except BaseException as exc:  # noqa: BLE001
        crashed("load_object", exc)
    if obj is not None:
        out["programs"] = len(obj.programs)
        facts = kernel_facts()
        try:
            records = RecordBuilder(obj.btf, facts.struct_names)
        except BaseException as exc:  # noqa: BLE001
            crashed("RecordBuilder", exc)
            records = None
        for prog in obj.programs if records is not None else ():
            try:
                verify_program(prog, analyzer.settings.verifierBudget, facts, records)
            except BaseException as exc:  # noqa: BLE001
                crashed(f"verify_program({prog.name})", exc)
    stage = "Analyzer.verify_object"
    try:
        analysis = analyzer.verify_object(data, path, Analysis(path), {path: text} if text is not None else {})
        out["codes"] = sorted({d.code for d in analysis.diagnostics})
        stage = "hover/fixes"
        out["problems"] = exercise_analysis(analysis, path, text, rng, hovers)
    except BaseException as exc:  # noqa: BLE001
        crashed(stage, exc)
    out["crash"] = out["crashes"][0] if out["crashes"] else None
    out["seconds"] = time.monotonic() - t0
    return out


def _handle(analyzer, msg: tuple) -> dict[str, Any]:
    kind = msg[0]
    if kind == "source":
        _, text, path, seed = msg
        return run_source_case(analyzer, text, path, seed)
    if kind == "object":
        _, data, path, text, seed = msg
        return run_object_case(analyzer, data, path, text, seed)
    if kind == "compile":
        _, text, path = msg
        stage = analyzer.compile(text, path)
        return {"object": stage.object_bytes,
                "diagnostics": [(d.code, d.severity, d.message) for d in stage.compiler_diagnostics]}
    return {"error": f"unknown request {kind!r}"}


def _read_exact(stream, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def worker_stdio() -> None:
    """The worker process: length-prefixed pickles on stdin/stdout (stdout is kept for the protocol;
    anything the analysis prints goes to stderr)."""
    import pickle
    import resource
    # A corrupt object can make the loader allocate without bound (see tests/fuzz/repro): fail with
    # MemoryError in this worker rather than wake the OOM killer on a shared machine.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
    # the protocol gets private copies of fds 0/1: anything in-process that reads stdin or writes
    # stdout (libclang does, for an #include "/dev/stdin") must not touch it
    proto_out = os.fdopen(os.dup(1), "wb")
    proto_in = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    config = pickle.loads(_read_exact(proto_in, struct.unpack("<Q", _read_exact(proto_in, 8))[0]))
    analyzer = make_analyzer(config["include_dirs"], config["cache_dir"])
    while True:
        head = _read_exact(proto_in, 8)
        if head is None:
            return
        body = _read_exact(proto_in, struct.unpack("<Q", head)[0])
        if body is None:
            return
        msg = pickle.loads(body)
        if msg[0] == "stop":
            return
        try:
            result = _handle(analyzer, msg)
        except BaseException as exc:  # noqa: BLE001 - the harness itself must survive
            result = {"crash": _crash("worker", exc), "problems": [], "seconds": 0.0}
        out = pickle.dumps(result)
        proto_out.write(struct.pack("<Q", len(out)) + out)
        proto_out.flush()


class Worker:
    """One analysis process with a watchdog (see the module docstring).

    A plain subprocess (``python -c 'from bpf_lsp.fuzzing import worker_stdio; ...'``) rather than
    multiprocessing, so callers need no ``if __name__ == "__main__"`` guard.
    """

    def __init__(self, include_dirs: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None,
                 kill_seconds: float = KILL_SECONDS):
        self.include_dirs = list(include_dirs or default_include_dirs())
        self.cache_dir = str(cache_dir or FUZZ_CACHE)
        self.kill_seconds = kill_seconds
        self._proc: subprocess.Popen | None = None
        self._log = None           # the workers' stderr (what the analysis prints, MemoryError noise)
        self.restarts = 0

    def _send(self, obj: Any) -> None:
        import pickle
        body = pickle.dumps(obj)
        self._proc.stdin.write(struct.pack("<Q", len(body)) + body)
        self._proc.stdin.flush()

    def _start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        if self._log is None:
            self._log = tempfile.NamedTemporaryFile(prefix="bpf-lsp-fuzz-worker-", suffix=".log", delete=False)
        self._proc = subprocess.Popen([sys.executable, "-c", "from bpf_lsp.fuzzing import worker_stdio; worker_stdio()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env,
                                      cwd=str(REPO))
        self._send({"include_dirs": self.include_dirs, "cache_dir": self.cache_dir})

    def request(self, msg: tuple, timeout: float | None = None) -> dict[str, Any]:
        """The worker's answer; ``{"dead": True, ...}`` when it died or did not answer within the
        timeout (it is then killed, and restarted by the next request)."""
        import pickle
        import select
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        started = time.monotonic()
        try:
            self._send(msg)
            ready, _, _ = select.select([self._proc.stdout], [], [], timeout or self.kill_seconds)
            if ready:
                head = _read_exact(self._proc.stdout, 8)
                if head is not None:
                    body = _read_exact(self._proc.stdout, struct.unpack("<Q", head)[0])
                    if body is not None:
                        return pickle.loads(body)
        except (BrokenPipeError, ConnectionResetError, OSError, EOFError):
            pass
        seconds = time.monotonic() - started
        exit_code = self._proc.poll()
        self.kill()
        self.restarts += 1
        return {"dead": True, "exitcode": exit_code, "seconds": seconds, "stderr": self.stderr_tail()}

    def kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            with contextlib.suppress(Exception):
                self._proc.wait(10)
            for stream in (self._proc.stdin, self._proc.stdout):
                with contextlib.suppress(Exception):
                    stream.close()
        self._proc = None

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(Exception):
                self._send(("stop",))
                self._proc.wait(10)
        self.kill()
        if self._log is not None:
            self._log.close()
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
            self._log = None

    def stderr_tail(self, n: int = 4000) -> str:
        if self._log is None:
            return ""
        try:
            with open(self._log.name, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# =============================================================================================
# campaigns

# Failures already reproduced in tests/fuzz/repro/test_repro.py (signature regex -> that test).
# The short fuzz runs in tests/fuzz fail only on failures *not* listed here; the bench marks them.
# Most of what the fuzzers found (invalid registers, negative ctx offsets, self-containing BTF,
# oversized symbols, lone surrogates, unanswered requests, the progress-create race, the
# unregistered file-too-large code) was fixed in 5a1f789; the open reproducers for form feeds
# and lone-CR preambles produce wrong lines, which no harness signature matches. Add an entry
# with each new reproducer.
KNOWN_ISSUES: tuple[tuple[str, str], ...] = (
    # recursive calls explored until the budget runs out (~60 s): object mutants only, rare
    (r"^worker:killed after no answer$|^over \d+s$", "test_recursive_calls_end_quickly"),
)


def known_issue(signature: str) -> str | None:
    for pattern, test in KNOWN_ISSUES:
        if re.search(pattern, signature):
            return test
    return None

@dataclass
class Failure:
    harness: str
    case: str                       # "<seed name>#<index>"
    mutators: list[str]
    kind: str                       # crash | hang | problem
    signature: str                  # for deduplication: stage, exception type, where
    detail: str                     # traceback, or the problems
    input_file: str = ""            # where the input was saved (when an output dir was given)
    seconds: float = 0.0


@dataclass
class Report:
    harness: str
    tried: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    rejected: int = 0               # objects: clean ObjectError; sources: mutants that did not compile
    wall: float = 0.0
    notes: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Failure]:
        return [f for f in self.failures if f.kind == kind]

    @property
    def crashes(self) -> list[Failure]:
        return self.of("crash")

    @property
    def hangs(self) -> list[Failure]:
        return self.of("hang")

    @property
    def problems(self) -> list[Failure]:
        return self.of("problem")

    def unique(self, kind: str) -> dict[str, list[Failure]]:
        out: dict[str, list[Failure]] = {}
        for f in self.of(kind):
            out.setdefault(f.signature, []).append(f)
        return out

    def new_failures(self) -> list[Failure]:
        """Failures no reproducer in tests/fuzz/repro covers yet."""
        return [f for f in self.failures if known_issue(f.signature) is None]

    def summary(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) if lat else 0.0
        worst = lat[-1] if lat else 0.0
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] if lat else 0.0
        lines = [f"{self.harness}: tried {self.tried}, crashes {len(self.crashes)} "
                 f"({len(self.unique('crash'))} unique), hangs {len(self.hangs)}, malformed output "
                 f"{len(self.problems)} ({len(self.unique('problem'))} unique), worst latency {worst:.3f}s, "
                 f"p50 {p50:.3f}s, p95 {p95:.3f}s, wall {self.wall:.0f}s"
                 + (f", rejected/failed-to-build {self.rejected}" if self.rejected else "")]
        for kind in ("crash", "hang", "problem"):
            for sig, fs in self.unique(kind).items():
                first = fs[0]
                where = f" -> {first.input_file}" if first.input_file else ""
                known = known_issue(sig)
                tag = f" [known: {known}]" if known else " [NEW]"
                lines.append(f"  {kind} x{len(fs)}: {sig}{tag}  (first: {first.case} "
                             f"{'+'.join(first.mutators)}{where})")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _save(out_dir: Path | None, name: str, data: bytes | str) -> str:
    if out_dir is None:
        return ""
    out_dir.mkdir(parents=True, exist_ok=True)
    p = out_dir / name
    if isinstance(data, str):
        p.write_bytes(data.encode("utf-8", errors="surrogatepass"))  # lone surrogates round-trip
    else:
        p.write_bytes(data)
    return str(p)


def _record(report: Report, result: dict[str, Any], case: str, mutators: list[str], save: Callable[[], str],
            hang_seconds: float) -> None:
    seconds = float(result.get("seconds", 0.0))
    report.latencies.append(seconds)
    if result.get("dead"):
        what = "killed after no answer" if result.get("exitcode") is None else f"worker died (exit {result['exitcode']})"
        kind = "hang" if result.get("exitcode") is None else "crash"
        report.failures.append(Failure(report.harness, case, mutators, kind, f"worker:{what}",
                                       f"{what} after {seconds:.1f}s\n{result.get('stderr', '')[-2000:]}",
                                       save(), seconds))
        return
    for crash in result.get("crashes") or ([result["crash"]] if result.get("crash") else []):
        sig = f"{crash['stage'].split('(')[0]}: {crash['type']} at {crash['where']}"
        report.failures.append(Failure(report.harness, case, mutators, "crash", sig, crash["traceback"],
                                       save(), seconds))
    if seconds > hang_seconds:
        report.failures.append(Failure(report.harness, case, mutators, "hang", f"over {hang_seconds:g}s",
                                       f"took {seconds:.1f}s", save(), seconds))
    for problem in result.get("problems") or ():
        sig = re.sub(r"\d+", "N", problem)
        report.failures.append(Failure(report.harness, case, mutators, "problem", sig, problem, save(), seconds))


def _progress_printer(label: str, every: int, stream=None) -> Callable[[int, int, Report], None]:
    stream = stream or sys.stdout
    start = time.monotonic()

    def show(i: int, total: int, report: Report) -> None:
        if i % every and i != total:
            return
        elapsed = time.monotonic() - start
        eta = elapsed / max(i, 1) * (total - i)
        print(f"[{label}] {i}/{total}  crashes {len(report.crashes)}  hangs {len(report.hangs)}  "
              f"problems {len(report.problems)}  {elapsed:.0f}s elapsed, ~{eta:.0f}s left", file=stream, flush=True)
    return show


def source_campaign(count: int, seed: int = 0, seeds: Sequence[Seed] | None = None, worker: Worker | None = None,
                    out_dir: Path | None = None, progress: Callable[[int, int, Report], None] | None = None,
                    hang_seconds: float = HANG_SECONDS) -> Report:
    """``count`` source mutants, spread round-robin over the seeds (in a seed order fixed by ``seed``)."""
    seeds = list(seeds) if seeds is not None else load_seeds()
    order = list(range(len(seeds)))
    random.Random(f"source-order:{seed}").shuffle(order)
    report = Report("source")
    own = worker is None
    worker = worker or Worker()
    started = time.monotonic()
    try:
        for i in range(count):
            s = seeds[order[i % len(order)]]
            rng = random.Random(f"source:{seed}:{i}")
            text, mutators = mutate_source(s.text, rng)
            case = f"{s.name}#{i}"
            result = worker.request(("source", text, s.path, f"hover:{seed}:{i}"))
            report.tried += 1
            if result.get("built") is False:
                report.rejected += 1
            _record(report, result, case, mutators,
                    lambda: _save(out_dir, f"source-{s.name}-{seed}-{i}.bpf.c", text), hang_seconds)
            if progress:
                progress(i + 1, count, report)
    finally:
        report.wall = time.monotonic() - started
        if own:
            worker.close()
    return report


def compile_seed_objects(seeds: Sequence[Seed], worker: Worker) -> list[tuple[Seed, bytes]]:
    out = []
    for s in seeds:
        result = worker.request(("compile", s.text, s.path), timeout=300)
        if result and result.get("object"):
            out.append((s, result["object"]))
    return out


def object_campaign(count: int, seed: int = 0, seeds: Sequence[Seed] | None = None, worker: Worker | None = None,
                    out_dir: Path | None = None, progress: Callable[[int, int, Report], None] | None = None,
                    hang_seconds: float = HANG_SECONDS, objects: Sequence[tuple[Seed, bytes]] | None = None) -> Report:
    """``count`` object mutants over the compiled seeds (compiled once, by the worker's Analyzer)."""
    report = Report("object")
    own = worker is None
    worker = worker or Worker()
    started = time.monotonic()
    try:
        if objects is None:
            seeds = list(seeds) if seeds is not None else load_seeds([CORPUS_CASES])
            objects = compile_seed_objects(seeds, worker)
        if not objects:
            report.notes.append("no seed compiled: nothing to mutate")
            return report
        layouts = [object_layout(data) for _, data in objects]
        order = list(range(len(objects)))
        random.Random(f"object-order:{seed}").shuffle(order)
        for i in range(count):
            k = order[i % len(order)]
            s, data = objects[k]
            rng = random.Random(f"object:{seed}:{i}")
            mutant, mutators = mutate_object(data, rng, layouts[k])
            case = f"{s.name}#{i}"
            result = worker.request(("object", mutant, s.path, s.text, f"hover:{seed}:{i}"))
            report.tried += 1
            if result.get("rejected"):
                report.rejected += 1
            _record(report, result, case, mutators,
                    lambda: _save(out_dir, f"object-{s.name}-{seed}-{i}.o", mutant), hang_seconds)
            if progress:
                progress(i + 1, count, report)
    finally:
        report.wall = time.monotonic() - started
        if own:
            worker.close()
    return report


# =============================================================================================
# minimising a failing input (used by hand when writing tests/fuzz/repro/ cases)

def minimize_lines(text: str, still_fails: Callable[[str], bool], max_rounds: int = 200) -> str:
    """Delta debugging over lines: the smallest text (by whole lines) that still fails."""
    lines = text.splitlines(keepends=True)
    n = 2
    rounds = 0
    while len(lines) >= 2 and rounds < max_rounds:
        rounds += 1
        chunk = max(len(lines) // n, 1)
        reduced = False
        for start in range(0, len(lines), chunk):
            candidate = lines[:start] + lines[start + chunk:]
            if candidate and still_fails("".join(candidate)):
                lines = candidate
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(n * 2, len(lines))
    return "".join(lines)


def diff_bytes(a: bytes, b: bytes) -> list[tuple[int, int, int]]:
    """(offset, old, new) for every byte that differs in the common prefix (for reproducer notes)."""
    return [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]


def minimize_object(pristine: bytes, mutant: bytes, still_fails: Callable[[bytes], bool]) -> bytes:
    """Revert as many changed bytes (and as much of a truncation) as possible while it still fails."""
    cur = bytearray(mutant)
    if len(mutant) < len(pristine):   # try restoring the truncated tail in halves
        lo, hi = len(mutant), len(pristine)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            cand = bytes(cur) + pristine[len(cur):mid]
            if still_fails(cand):
                lo = mid
                cur = bytearray(cand)
                break
            hi = mid - 1
    changed = [i for i, _, _ in diff_bytes(pristine, bytes(cur))]
    chunk = max(len(changed) // 2, 1)
    while changed and chunk >= 1:
        kept = []
        for start in range(0, len(changed), chunk):
            group = changed[start:start + chunk]
            cand = bytearray(cur)
            for i in group:
                cand[i] = pristine[i]
            if still_fails(bytes(cand)):
                cur = cand
            else:
                kept += group
        changed = kept
        if chunk == 1:
            break
        chunk //= 2
    return bytes(cur)


# =============================================================================================
# protocol chaos

class RpcClosed(Exception):
    pass


class RawClient:
    """A tiny stdio JSON-RPC client that can also send what a real client never would."""

    def __init__(self, proc: asyncio.subprocess.Process, respond_delay: float = 0.0):
        self.proc = proc
        self.respond_delay = respond_delay   # answer the server's own requests this much later
        self.sent: list[bytes] = []          # the last messages sent (truncated), for reports
        self.next_id = 1
        self.pending: dict[Any, asyncio.Future] = {}
        self.sent_at: dict[Any, float] = {}
        self.latencies: list[tuple[str, float]] = []
        self.notifications: list[tuple[float, dict]] = []
        self.server_requests: list[dict] = []
        self.unmatched: list[dict] = []     # responses for ids we never used (or used twice)
        self.protocol_errors: list[str] = []
        self.closed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    # -- writing
    def write_raw(self, body: bytes, header: bytes | None = None) -> None:
        if self.proc.stdin is None or self.proc.stdin.is_closing():
            raise RpcClosed("server stdin is closed")
        head = header if header is not None else f"Content-Length: {len(body)}\r\n\r\n".encode()
        self.proc.stdin.write(head + body)
        self.sent.append(body[:300])
        if len(self.sent) > 2000:
            del self.sent[:1000]

    def write(self, message: Any) -> None:
        self.write_raw(json.dumps(message, ensure_ascii=True).encode())

    def notify(self, method: str, params: Any = None) -> None:
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.write(msg)

    def request_nowait(self, method: str, params: Any = None, msg_id: Any = None) -> tuple[Any, asyncio.Future]:
        if msg_id is None:
            msg_id = self.next_id
            self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = fut
        self.sent_at[msg_id] = time.monotonic()
        fut.method = method  # type: ignore[attr-defined]
        fut.bare = params is None  # type: ignore[attr-defined]
        msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.write(msg)
        return msg_id, fut

    async def request(self, method: str, params: Any = None, timeout: float = 30.0) -> dict:
        _, fut = self.request_nowait(method, params)
        await self.drain()
        return await asyncio.wait_for(fut, timeout)

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, AttributeError):
            await self.proc.stdin.drain()

    # -- reading
    async def _read_loop(self) -> None:
        reader = self.proc.stdout
        try:
            while True:
                length = None
                while True:
                    line = await reader.readline()
                    if not line:
                        raise RpcClosed("eof")
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    self.protocol_errors.append("a message without Content-Length")
                    continue
                body = await reader.readexactly(length)
                try:
                    msg = json.loads(body)
                except ValueError:
                    self.protocol_errors.append(f"server sent invalid JSON: {body[:200]!r}")
                    continue
                try:
                    self._dispatch(msg)
                except Exception as exc:  # noqa: BLE001 - a message we cannot file must not stop the reader
                    self.protocol_errors.append(f"could not handle {body[:200]!r}: {type(exc).__name__}: {exc}")
        except (RpcClosed, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(RpcClosed("server closed the connection"))

    def _dispatch(self, msg: Any) -> None:
        now = time.monotonic()
        if not isinstance(msg, dict):
            self.protocol_errors.append(f"server sent a non-object message: {msg!r:.200}")
            return
        if "method" in msg and "id" in msg:          # a request from the server
            self.server_requests.append(msg)
            result = None
            if msg["method"] == "workspace/configuration":
                items = (msg.get("params") or {}).get("items") or []
                result = [None for _ in items]
            answer = {"jsonrpc": "2.0", "id": msg["id"], "result": result}
            if self.respond_delay:
                asyncio.get_running_loop().call_later(self.respond_delay, self._answer, answer)
            else:
                self._answer(answer)
        elif "method" in msg:
            self.notifications.append((now, msg))
        else:
            msg_id = msg.get("id")
            fut = self.pending.pop(msg_id, None) if isinstance(msg_id, (int, str)) else None
            if fut is None:
                self.unmatched.append(msg)
                return
            sent = self.sent_at.pop(msg_id, now)
            self.latencies.append((getattr(fut, "method", "?"), now - sent, msg.get("id"), sent))
            if not fut.done():
                fut.set_result(msg)

    def _answer(self, answer: dict) -> None:
        with contextlib.suppress(RpcClosed, Exception):
            self.write(answer)

    def notifications_of(self, method: str) -> list[dict]:
        return [m for _, m in self.notifications if m.get("method") == method]


@dataclass
class ChaosDoc:
    uri: str
    path: str
    text: str | None          # None: unknown (an edit with an invalid range was sent since the last full text)
    version: int
    open: bool = True
    head: str = ""            # huge documents: their known first lines (edits target these; the text is not tracked)


def _utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le", errors="surrogatepass")) // 2


def _utf16_to_index(line: str, units: int) -> int | None:
    """index into `line` at a UTF-16 offset; None when inside a surrogate pair or past the end."""
    count = 0
    for i, ch in enumerate(line):
        if count == units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
        if count > units:
            return None
    return len(line) if count == units else None


def _lsp_lines(text: str) -> list[str]:
    """Lines as pygls' document model splits them (keepends), for offset arithmetic."""
    return text.splitlines(keepends=True) or [""]


EXOTIC_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]|\r(?!\n)")


def apply_lsp_edit(text: str, start: tuple[int, int], end: tuple[int, int], new: str) -> str | None:
    """Apply one ranged change as pygls does (and as the LSP spec says, for the texts where the two
    agree). None when the result is not certain: a range outside the text or inside a surrogate
    pair, an end before the start, or a text with line breaks pygls and LSP count differently
    (form feed, U+2028, a lone CR, ...)."""
    if EXOTIC_BREAKS.search(text):
        return None
    lines = text.splitlines(keepends=True)

    def offset(pos: tuple[int, int]) -> int | None:
        line, ch = pos
        if line == len(lines) and ch == 0 and (not text or text.endswith("\n")):
            return len(text)
        if line < 0 or line >= len(lines):
            return None
        idx = _utf16_to_index(lines[line].rstrip("\r\n"), ch)
        if idx is None:
            return None
        return sum(len(x) for x in lines[:line]) + idx

    a, b = offset(start), offset(end)
    if a is None or b is None or b < a:
        return None
    return text[:a] + new + text[b:]


def _random_edit(doc_text: str, rng: random.Random) -> tuple[tuple[int, int], tuple[int, int], str]:
    lines = _lsp_lines(doc_text)
    li = rng.randrange(len(lines))
    body = lines[li].rstrip("\r\n")
    n = _utf16_len(body)
    c1 = rng.randrange(n + 1)
    if rng.random() < 0.6:
        l2, c2 = li, min(n, c1 + rng.choice((0, 0, 1, 2, 5)))
    else:
        l2 = min(len(lines) - 1, li + rng.choice((0, 1, 2)))
        b2 = lines[l2].rstrip("\r\n")
        c2 = rng.randrange(_utf16_len(b2) + 1)
        if (l2, c2) < (li, c1):
            l2, c2 = li, c1
    r = rng.random()
    if r < 0.5:
        new = rng.choice(TOKENS)
    elif r < 0.65:
        new = ""
    elif r < 0.8:
        new = "\n"
    elif r < 0.9:
        new = rng.choice(("é", "😀", "\u200b", "a\r\nb", "\t", "/*", "*/", "}", "{"))
    else:
        src = "".join(lines)
        a = rng.randrange(len(src) + 1)
        new = src[a:a + rng.randrange(40)]
    return (li, c1), (l2, c2), new


def _diag_key(d: dict) -> tuple[str, int]:
    return (str(d.get("code")), int(d["range"]["start"]["line"]) + 1)


@dataclass
class ChaosReport(Report):
    mismatches: list[str] = field(default_factory=list)
    handler_errors: list[str] = field(default_factory=list)
    alive: bool = True
    messages: int = 0


class ChaosSession:
    """One server process, ``messages`` chaotic messages, then the convergence and liveness checks."""

    def __init__(self, messages: int, seed: int = 0, seeds: Sequence[Seed] | None = None, pull: bool = False,
                 include_dirs: Sequence[str] | None = None, workdir: Path | None = None,
                 log_file: Path | None = None, request_timeout: float = HANG_SECONDS,
                 progress: Callable[[int, int, Report], None] | None = None, huge_docs: int = 2,
                 docs: int = 4):
        self.messages = messages
        self.seed = seed
        self.rng = random.Random(f"chaos:{seed}")
        self.seeds = list(seeds) if seeds is not None else load_seeds()
        self.pull = pull
        self.include_dirs = list(include_dirs or default_include_dirs())
        self.workdir = workdir
        self.log_file = log_file
        self.request_timeout = request_timeout
        self.progress = progress
        self.huge_docs = huge_docs
        self.ndocs = docs
        self.report = ChaosReport("chaos")
        self.docs: dict[str, ChaosDoc] = {}
        self.outstanding: list[tuple[Any, asyncio.Future, float]] = []
        self.huge_sent = 0
        self.budget = 1_000_000

    # -- helpers
    def _capabilities(self) -> dict:
        text_doc = {"synchronization": {"didSave": True, "dynamicRegistration": False},
                    "hover": {"contentFormat": ["markdown", "plaintext"]},
                    "publishDiagnostics": {"relatedInformation": True, "versionSupport": True,
                                           "codeDescriptionSupport": True, "dataSupport": True},
                    "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix"]}}}}
        if self.pull:
            text_doc["diagnostic"] = {"dynamicRegistration": False, "relatedDocumentSupport": False}
        return {"textDocument": text_doc, "window": {"workDoneProgress": True},
                "workspace": {"configuration": True, "diagnostics": {"refreshSupport": True}},
                "general": {"positionEncodings": ["utf-16"]}}

    def _uri(self, path: str) -> str:
        from pygls.uris import from_fs_path
        return from_fs_path(path)

    def _new_doc_path(self, seed: Seed, n: int) -> str:
        return str(self.workdir / f"doc{n}_{seed.name}.bpf.c")

    def _track(self, msg_id: Any, fut: asyncio.Future, valid: bool = True) -> None:
        fut.valid = valid  # type: ignore[attr-defined]
        self.outstanding.append((msg_id, fut, time.monotonic()))

    def _context_of(self, msg_id: Any) -> str:
        """The request as sent and the messages just before it."""
        needle = f'"id": {json.dumps(msg_id)}'.encode()
        for i, body in enumerate(self.client.sent):
            if needle in body and b'"method"' in body:
                return "\n".join(repr(b) for b in self.client.sent[max(0, i - 3):i + 1])
        return ""

    def _unanswered(self, msg_id: Any, fut: asyncio.Future, waited: float) -> None:
        method = getattr(fut, "method", "?")
        if getattr(fut, "valid", True):
            bare = " (a request without params)" if getattr(fut, "bare", False) else ""
            self.report.failures.append(Failure(
                "chaos", f"request {msg_id}", [method], "hang",
                f"no answer to {method}{bare} within {self.request_timeout:g}s",
                f"request id {msg_id} unanswered after {waited:.1f}s; sent:\n{self._context_of(msg_id)}",
                seconds=waited))
        else:  # JSON-RPC: every request gets a response, an error one (-32602) for bad params
            self.report.failures.append(Failure(
                "chaos", f"request {msg_id}", [method], "problem",
                f"no response at all to {method} with params that do not fit the LSP schema",
                f"request id {msg_id} unanswered after {waited:.1f}s", seconds=waited))
        fut.cancel()

    async def _reap(self, final: bool = False) -> None:
        """Check answered requests; a request unanswered past the bound is a hang."""
        if final and self.outstanding:
            # valid requests get the full bound; ones with bad params are answered at once or never
            valid = [(f, sent) for _, f, sent in self.outstanding if not f.done() and getattr(f, "valid", True)]
            invalid = [(f, sent) for _, f, sent in self.outstanding if not f.done() and not getattr(f, "valid", True)]
            if valid:
                last = max(sent for _, sent in valid)
                await asyncio.wait([f for f, _ in valid], timeout=max(0.1, last + self.request_timeout - time.monotonic()))
            if invalid:   # answered at once when the server copes with them; a busy server may take longer
                last = max(sent for _, sent in invalid)
                await asyncio.wait([f for f, _ in invalid], timeout=max(0.1, last + self.request_timeout - time.monotonic()))
        now = time.monotonic()
        keep = []
        for msg_id, fut, sent in self.outstanding:
            if fut.done():
                if not fut.cancelled() and fut.exception() is None:
                    self._check_response(fut.result(), getattr(fut, "method", "?"))
                continue
            if now - sent > self.request_timeout or final:
                self._unanswered(msg_id, fut, now - sent)
                continue
            keep.append((msg_id, fut, sent))
        self.outstanding = keep

    def _check_response(self, msg: dict, method: str) -> None:
        if "error" in msg:
            code = (msg.get("error") or {}).get("code")
            # -32603 internal error: an exception escaped a handler into pygls
            if code == -32603:
                self.report.failures.append(Failure("chaos", f"id {msg.get('id')}", [method], "crash",
                                                    f"{method}: internal error response",
                                                    json.dumps(msg)[:3000]))
        if method == "textDocument/hover" and msg.get("result") is not None:
            r = msg["result"]
            if not isinstance(r, dict) or "contents" not in r:
                self.report.failures.append(Failure("chaos", f"id {msg.get('id')}", [method], "problem",
                                                    "hover: malformed result", json.dumps(r)[:500]))

    # -- the session
    async def run(self) -> ChaosReport:
        own_tmp = None
        if self.workdir is None:
            own_tmp = tempfile.TemporaryDirectory(prefix="bpf-lsp-chaos-")
            self.workdir = Path(own_tmp.name)
        started = time.monotonic()
        try:
            await self._run()
        finally:
            self.report.wall = time.monotonic() - started
            if own_tmp is not None:
                own_tmp.cleanup()
        return self.report

    async def _start(self) -> asyncio.subprocess.Process:
        argv = [sys.executable, "-m", "bpf_lsp.server"]
        if self.log_file:
            argv += ["--log-file", str(self.log_file), "--log-level", "INFO"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        env.pop("BPF_LSP_TEST_ANALYZER", None)
        env["XDG_CACHE_HOME"] = str(SERVER_CACHE)   # the chaos PCHs must not evict the user's
        self._stderr = open(self.workdir / "server.stderr", "wb")
        return await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=self._stderr,
                                                    cwd=str(self.workdir), env=env, limit=64 * 1024 * 1024)

    async def _run(self) -> None:
        started = time.monotonic()
        proc = await self._start()
        client = RawClient(proc)
        self.client = client
        report = self.report
        try:
            init = await client.request("initialize", {
                "processId": os.getpid(), "rootUri": self._uri(str(self.workdir)),
                "capabilities": self._capabilities(),
                "initializationOptions": {"includeDirs": self.include_dirs, "debounceMs": 50},
                "clientInfo": {"name": "bpf-lsp-chaos", "version": "0"}}, timeout=60)
            if "result" not in init:
                report.failures.append(Failure("chaos", "initialize", [], "crash", "initialize failed",
                                               json.dumps(init)[:2000]))
                return
            client.notify("initialized", {})
            for n in range(self.ndocs):
                self._open(self.rng.choice(self.seeds), n)
            await client.drain()
            for i in range(self.messages):
                if client.closed.is_set():
                    break
                action = self._pick()
                try:
                    await action()
                except RpcClosed:
                    break
                report.messages += 1
                report.tried += 1
                await asyncio.sleep(0)   # let the reader take answers as they come: latencies are the server's
                if i % 25 == 0:
                    await client.drain()
                    await self._reap()
                    await asyncio.sleep(0)
                if i % 200 == 199:  # let analyses run now and then, as a real session would
                    await asyncio.sleep(self.rng.choice((0.05, 0.2, 0.5)))
                if self.progress:
                    self.progress(i + 1, self.messages, report)
            await client.drain()
            await self._reap(final=True)
            await self._final_checks()
        except RpcClosed:
            pass
        finally:
            report.latencies = [lat[1] for lat in client.latencies]
            for method, seconds, msg_id, sent in sorted(client.latencies, key=lambda lat: -lat[1])[:3]:
                if seconds > 1.0:
                    report.notes.append(f"slow answer: {method} id {msg_id} took {seconds:.1f}s "
                                        f"(sent {sent - started:.1f}s into the session)")
            await self._shutdown(proc, client)
            self._collect_errors()
            self._check_published()

    def _open(self, seed: Seed, n: int, text: str | None = None) -> ChaosDoc:
        path = self._new_doc_path(seed, n)
        uri = self._uri(path)
        text = seed.text if text is None else text
        doc = ChaosDoc(uri, path, text, 1)
        self.docs[uri] = doc
        self.client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "c", "version": 1,
                                                                     "text": text}})
        return doc

    def _any_doc(self, open_only: bool = True) -> ChaosDoc | None:
        docs = [d for d in self.docs.values() if d.open or not open_only]
        return self.rng.choice(docs) if docs else None

    def _pick(self) -> Callable[[], Any]:
        table = [
            (30, self.a_change), (4, self.a_burst), (10, self.a_hover), (4, self.a_hover_bad),
            (4, self.a_code_action), (3, self.a_unknown_method), (2, self.a_unknown_notification),
            (3, self.a_unknown_uri), (3, self.a_cancel), (3, self.a_invalid_params), (2, self.a_invalid_json),
            (2, self.a_close_reopen), (2, self.a_closed_doc_request), (2, self.a_save), (2, self.a_full_change),
            (1, self.a_config), (1, self.a_bad_change), (1, self.a_surrogate_change),
            (2 if self.pull else 0, self.a_pull), (1 if self.huge_docs > self.huge_sent else 0, self.a_huge),
        ]
        weights = [w for w, _ in table]
        return self.rng.choices([f for _, f in table], weights)[0]

    def _send_change(self, doc: ChaosDoc, changes: list[dict], new_text: str | None) -> None:
        doc.version += 1
        doc.text = new_text
        if new_text is not None:
            doc.head = ""
        self.client.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version},
                                                      "contentChanges": changes})

    def _valid_edit(self, doc: ChaosDoc) -> tuple[dict, str | None]:
        if doc.text is None and doc.head:
            # a huge document: a small edit near the top, without the cost of tracking megabytes
            start, end, new = _random_edit(doc.head, self.rng)
            return {"range": {"start": {"line": start[0], "character": start[1]},
                              "end": {"line": end[0], "character": end[1]}}, "text": new}, None
        if doc.text is None:
            text = self.rng.choice(self.seeds).text
            doc.head = ""
            return {"text": text}, text
        start, end, new = _random_edit(doc.text, self.rng)
        after = apply_lsp_edit(doc.text, start, end, new)
        change = {"range": {"start": {"line": start[0], "character": start[1]},
                            "end": {"line": end[0], "character": end[1]}}, "text": new}
        return change, after

    async def a_change(self) -> None:
        doc = self._any_doc()
        if doc is None:
            return self._open(self.rng.choice(self.seeds), len(self.docs))
        if doc.text is not None and self.rng.random() < 0.3:   # a meaningful mutation as a full-text change
            text, _ = mutate_source(doc.text, self.rng)
            return self._send_change(doc, [{"text": text}], text)
        change, after = self._valid_edit(doc)
        self._send_change(doc, [change], after)

    async def a_burst(self) -> None:
        """100 rapid didChange in a row (typing)."""
        doc = self._any_doc()
        if doc is None:
            return
        for _ in range(100):
            change, after = self._valid_edit(doc)
            self._send_change(doc, [change], after)
        await self.client.drain()

    async def a_full_change(self) -> None:
        doc = self._any_doc()
        if doc is None:
            return
        text = self.rng.choice(self.seeds).text
        self._send_change(doc, [{"text": text}], text)

    async def a_bad_change(self) -> None:
        """Ranges out of the document, reversed, mid-surrogate: the server decides; we stop tracking the text."""
        doc = self._any_doc()
        if doc is None:
            return
        bad = self.rng.choice([((10**6, 0), (10**6, 5)), ((0, 10**6), (0, 10**6 + 1)), ((5, 3), (2, 0)),
                               ((-1, 0), (0, 0)), ((0, -5), (0, 2)), ((0, 0), (2**31, 2**31))])
        change = {"range": {"start": {"line": bad[0][0], "character": bad[0][1]},
                            "end": {"line": bad[1][0], "character": bad[1][1]}}, "text": "x"}
        self._send_change(doc, [change], None)

    async def a_surrogate_change(self) -> None:
        """Text with a lone surrogate (valid JSON: "\\ud800") and an edit splitting a surrogate pair."""
        doc = self._any_doc()
        if doc is None:
            return
        if self.rng.random() < 0.5:
            text = (doc.text or self.rng.choice(self.seeds).text) + "\n// \ud800 \udfff\n"
            self._send_change(doc, [{"text": text}], text)
        else:
            text = "// 😀😀\n" + (doc.text or "")
            self._send_change(doc, [{"text": text}], text)
            change = {"range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 5}},
                      "text": "x"}
            self._send_change(doc, [change], None)

    async def a_hover(self) -> None:
        doc = self._any_doc()
        if doc is None:
            return
        lines = _lsp_lines(doc.text if doc.text is not None else doc.head)
        li = self.rng.randrange(len(lines))
        ch = self.rng.randrange(_utf16_len(lines[li].rstrip("\r\n")) + 1)
        msg_id, fut = self.client.request_nowait("textDocument/hover", {"textDocument": {"uri": doc.uri},
                                                                        "position": {"line": li, "character": ch}})
        self._track(msg_id, fut)

    async def a_hover_bad(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is None:
            return
        pos = self.rng.choice([{"line": 10**7, "character": 0}, {"line": 0, "character": 10**7},
                               {"line": -1, "character": -1}, {"line": 2**31 - 1, "character": 2**31 - 1},
                               {"line": 0, "character": 1}, {"line": 1.5, "character": 0},
                               {"line": "0", "character": 0}])
        msg_id, fut = self.client.request_nowait("textDocument/hover", {"textDocument": {"uri": doc.uri},
                                                                        "position": pos})
        # LSP positions are uinteger: negative, fractional or string ones are invalid params
        valid = all(isinstance(v, int) and 0 <= v < 2**31 for v in pos.values())
        self._track(msg_id, fut, valid=valid)

    async def a_code_action(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is None:
            return
        published = [m for m in self.client.notifications_of("textDocument/publishDiagnostics")
                     if (m.get("params") or {}).get("uri") == doc.uri]
        diags = published[-1]["params"]["diagnostics"] if published else []
        sub = random.Random(self.rng.random())   # what was published varies with timing: keep self.rng's sequence fixed
        if sub.random() < 0.3:   # clients echo diagnostics back; some mangle `data`
            diags = [{**d, "data": sub.choice([None, 1, "x", {"fixes": 3}, {"fixes": [{"edits": 1}]},
                                                    {"fixes": [{"title": 1, "edits": [{"range": 5}]}]}])}
                     for d in diags] or [{"range": {"start": {"line": 0, "character": 0},
                                                    "end": {"line": 0, "character": 1}},
                                          "message": "x", "data": {"fixes": [{"title": "t", "edits": [
                                              {"range": {"start": {"line": -4, "character": "a"}}}]}]}}]
        params = {"textDocument": {"uri": doc.uri},
                  "range": {"start": {"line": 0, "character": 0}, "end": {"line": 10**6, "character": 0}},
                  "context": {"diagnostics": diags, "only": sub.choice([None, ["quickfix"], ["refactor"]])}}
        if params["context"]["only"] is None:
            del params["context"]["only"]
        msg_id, fut = self.client.request_nowait("textDocument/codeAction", params)
        self._track(msg_id, fut)

    async def a_pull(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is None:
            return
        msg_id, fut = self.client.request_nowait("textDocument/diagnostic", {"textDocument": {"uri": doc.uri}})
        self._track(msg_id, fut)

    async def a_unknown_method(self) -> None:
        method = self.rng.choice(["textDocument/definition", "textDocument/completion", "foo/bar", "",
                                  "textDocument/semanticTokens/full", "workspace/symbol", "$/unknown",
                                  "textDocument/formatting", "x" * 300])
        params = self.rng.choice([None, {}, [], {"textDocument": {}}])
        msg_id, fut = self.client.request_nowait(method, params)
        # a method LSP defines, with params that do not fit its schema, is an invalid request
        lsp_defined = method.startswith(("textDocument/", "workspace/"))
        self._track(msg_id, fut, valid=not lsp_defined)

    async def a_unknown_notification(self) -> None:
        self.client.notify(self.rng.choice(["$/setTrace", "$/logTrace", "foo/bar", "textDocument/didFoo",
                                            "$/progress", "workspace/didChangeWatchedFiles"]),
                           self.rng.choice([None, {}, {"changes": []}, {"value": "verbose"}, [1, 2]]))

    async def a_unknown_uri(self) -> None:
        uri = self.rng.choice(["file:///nonexistent/x.bpf.c", "untitled:Untitled-1", "file:///", "not a uri",
                               "file:///tmp/%ZZ.bpf.c", "http://example.com/a.c", ""])
        method = self.rng.choice(["textDocument/hover", "textDocument/codeAction", "textDocument/diagnostic"])
        params: dict = {"textDocument": {"uri": uri}}
        if method == "textDocument/hover":
            params["position"] = {"line": 0, "character": 0}
        elif method == "textDocument/codeAction":
            params.update(range={"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                          context={"diagnostics": []})
        if self.rng.random() < 0.3:
            self.client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                                          "contentChanges": [{"text": "int x;"}]})
            return
        if self.rng.random() < 0.2:
            self.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            return
        msg_id, fut = self.client.request_nowait(method, params)
        self._track(msg_id, fut)

    async def a_cancel(self) -> None:
        sub = random.Random(self.rng.random())
        ids = [i for i, _, _ in self.outstanding] + [sub.randrange(-5, self.client.next_id + 50), "abc", None, 1.5]
        self.client.notify("$/cancelRequest", {"id": sub.choice(ids)})

    async def a_invalid_params(self) -> None:
        doc = self._any_doc(open_only=False)
        uri = doc.uri if doc else "file:///x.c"
        method, params = self.rng.choice([
            ("textDocument/hover", {"textDocument": uri, "position": [0, 0]}),
            ("textDocument/hover", {"position": {"line": 0, "character": 0}}),
            ("textDocument/hover", "string params"),
            ("textDocument/codeAction", {"textDocument": {"uri": uri}}),
            ("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": None, "context": 7}),
            ("textDocument/diagnostic", {"textDocument": {"uri": 5}}),
            ("textDocument/didOpen", {"textDocument": {"uri": uri}}),
            ("textDocument/didChange", {"textDocument": {"uri": uri}, "contentChanges": "x"}),
            ("textDocument/didChange", {"textDocument": {"uri": uri, "version": "v"}, "contentChanges": [{}]}),
            ("workspace/didChangeConfiguration", {"settings": {"bpfLsp": {"debounceMs": -5, "includeDirs": 3,
                                                                          "bogus": 1}}}),
            ("workspace/didChangeConfiguration", {"settings": [1, 2, 3]}),
            ("textDocument/didClose", {"textDocument": None}),
            ("textDocument/didSave", {}),
        ])
        if method.startswith(("textDocument/did", "workspace/did")):
            self.client.notify(method, params)   # rejected by pygls: the document's text stays as it was
        else:
            msg_id, fut = self.client.request_nowait(method, params)
            self._track(msg_id, fut, valid=False)

    async def a_invalid_json(self) -> None:
        body = self.rng.choice([b"{", b"{\"jsonrpc\": \"2.0\", \"method\": ", b"null", b"[]", b"[1, 2]", b"\"x\"",
                                b"42", b"{}", b"{\"jsonrpc\": \"1.0\", \"method\": \"x\"}",
                                b"{\"jsonrpc\": \"2.0\", \"id\": {}, \"method\": \"textDocument/hover\"}",
                                b"{\"jsonrpc\": \"2.0\", \"result\": 1, \"id\": 99999}",
                                b"\xff\xfe\x00garbage", "{\"jsonrpc\": \"2.0\", \"method\": \"\u00e9\"}".encode(),
                                b"{\"jsonrpc\": \"2.0\", \"id\": 1e400, \"method\": \"x\"}"])
        self.client.write_raw(body)

    async def a_close_reopen(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is None:
            return
        if doc.open:
            self.client.notify("textDocument/didClose", {"textDocument": {"uri": doc.uri}})
            doc.open = False
        else:
            text = doc.text if doc.text is not None else self.rng.choice(self.seeds).text
            doc.text, doc.version, doc.open, doc.head = text, 1, True, ""
            self.client.notify("textDocument/didOpen", {"textDocument": {"uri": doc.uri, "languageId": "c",
                                                                         "version": 1, "text": text}})

    async def a_closed_doc_request(self) -> None:
        closed = [d for d in self.docs.values() if not d.open]
        if not closed:
            return await self.a_close_reopen()
        doc = self.rng.choice(closed)
        if self.rng.random() < 0.5:
            msg_id, fut = self.client.request_nowait("textDocument/hover", {"textDocument": {"uri": doc.uri},
                                                                            "position": {"line": 1, "character": 1}})
            self._track(msg_id, fut)
        else:  # a change to a closed document must be ignored
            self.client.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": 99},
                                                          "contentChanges": [{"text": "garbage"}]})

    async def a_save(self) -> None:
        doc = self._any_doc(open_only=False)
        if doc is not None:
            self.client.notify("textDocument/didSave", {"textDocument": {"uri": doc.uri}})

    async def a_config(self) -> None:
        self.budget = self.rng.choice((1_000_000, 200_000))
        self.client.notify("workspace/didChangeConfiguration", {"settings": {"bpfLsp": {
            "includeDirs": self.include_dirs, "debounceMs": self.rng.choice((0, 50, 150)),
            "verifierBudget": self.budget}}})

    async def a_huge(self) -> None:
        """A document of a few MB (analysed) or over the 4 MiB limit (refused with one diagnostic)."""
        self.huge_sent += 1
        seed = self.rng.choice(self.seeds)
        size = self.rng.choice((3 * 1024 * 1024, 5 * 1024 * 1024))
        filler = "// " + "x" * 96 + "\n"
        text = seed.text + filler * (size // len(filler))
        doc = self._open(seed, len(self.docs), text)
        doc.text, doc.head = None, seed.text
        await self.client.drain()

    # -- the end
    async def _settle_push(self, doc: ChaosDoc, quiet: float = 2.5, limit: float = 60.0) -> list[dict] | None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            pubs = [(t, m) for t, m in self.client.notifications
                    if m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("uri") == doc.uri]
            if pubs:
                t, m = pubs[-1]
                if m["params"].get("version") == doc.version and time.monotonic() - t >= quiet:
                    return m["params"]["diagnostics"]
            await asyncio.sleep(0.1)
        return None

    async def _final_diagnostics(self, doc: ChaosDoc) -> list[dict] | None:
        if self.pull:
            answer = await self.client.request("textDocument/diagnostic", {"textDocument": {"uri": doc.uri}},
                                               timeout=60)
            return (answer.get("result") or {}).get("items")
        return await self._settle_push(doc)

    async def _final_checks(self) -> None:
        from .diagnostics import lsp as convert
        client = self.client
        # every open document ends with a known text: a valid mutant of a seed, sent in full
        finals = []
        for doc in self.docs.values():
            if not doc.open:
                continue
            if doc.text is None or len(doc.text) > 1_000_000 or self.rng.random() < 0.5 \
                    or re.search("[\ud800-\udfff]", doc.text):
                seed_text = self.rng.choice(self.seeds).text
                text, _ = mutate_source(seed_text, self.rng)
                if re.search("[\ud800-\udfff]", text):   # a known crash: reported on its own
                    text = seed_text
                self._send_change(doc, [{"text": text}], text)
            finals.append(doc)
        await client.drain()
        analyzer = make_analyzer(self.include_dirs)
        from .settings import Settings
        analyzer.update_settings(Settings().updated({"includeDirs": self.include_dirs,
                                                     "verifierBudget": self.budget})[0])
        settled = await asyncio.gather(*(self._final_diagnostics(doc) for doc in finals), return_exceptions=True)
        for doc, got in zip(finals, settled):
            if isinstance(got, BaseException):
                got = None
            if got is None:
                self.report.failures.append(Failure("chaos", doc.uri, ["final"], "hang",
                                                    "no settled diagnostics for the final version",
                                                    f"{doc.uri} v{doc.version}"))
                continue
            want_analysis = await asyncio.get_running_loop().run_in_executor(None, analyzer.analyze, doc.text,
                                                                             doc.path)
            conv = convert.Converter(doc.path, convert.split_lines(doc.text), convert.UTF16)
            want = sorted(_diag_key(json.loads(json.dumps(_to_json(d)))) for d in
                          conv.diagnostics(want_analysis.diagnostics))
            have = sorted(_diag_key(d) for d in got)
            if self.pull is False and want != have:
                # a late verify may still publish: give it one more chance
                await asyncio.sleep(5)
                again = await self._settle_push(doc, quiet=1.0, limit=30)
                have = sorted(_diag_key(d) for d in (again or []))
            if want != have:
                detail = f"{doc.uri} v{doc.version}\nserver: {have}\nfresh:  {want}"
                self.report.mismatches.append(detail)
                self.report.failures.append(Failure("chaos", doc.uri, ["final"], "problem",
                                                    "final diagnostics differ from a fresh analysis", detail))
        self.report.notes.append(f"final check: {len(finals)} open document(s) compared with a fresh analysis, "
                                 f"{len(self.report.mismatches)} mismatch(es)")
        # still alive and answering?
        try:
            answer = await client.request("textDocument/hover", {"textDocument": {"uri": finals[0].uri if finals
                                                                                   else "file:///x"},
                                                                 "position": {"line": 0, "character": 0}},
                                          timeout=self.request_timeout)
            self.report.alive = "result" in answer or "error" in answer
        except (asyncio.TimeoutError, RpcClosed):
            self.report.alive = False
        if not self.report.alive:
            self.report.failures.append(Failure("chaos", "liveness", [], "hang", "server did not answer at the end",
                                                "no answer to a final hover"))

    async def _shutdown(self, proc, client: RawClient) -> None:
        try:
            if not client.closed.is_set():
                await client.request("shutdown", None, timeout=15)
                client.notify("exit")
                await client.drain()
            await asyncio.wait_for(proc.wait(), 15)
        except (asyncio.TimeoutError, RpcClosed, ConnectionError):
            if proc.returncode is None:
                self.report.failures.append(Failure("chaos", "shutdown", [], "hang", "no clean shutdown/exit",
                                                    "server did not exit after shutdown+exit"))
        finally:
            killed = proc.returncode is None
            if killed:
                proc.kill()
                await proc.wait()
            self._stderr.close()
        if client.closed.is_set() and proc.returncode not in (0, None) and self.report.alive:
            self.report.alive = False
        if proc.returncode not in (0, None) and not killed:   # it died on its own
            self.report.failures.append(Failure("chaos", "exit", [], "crash", f"server exited with {proc.returncode}",
                                                (self.workdir / "server.stderr").read_text(errors="replace")[-4000:]))

    # pygls' "Error in server: ..." popups caused by the malformed messages this client sends on purpose
    EXPECTED_POPUPS = ("Invalid Params", "Internal Error", "Parse error", "Invalid Request", "Expecting value",
                       "object has no attribute 'jsonrpc'",
                       "Unterminated string", "Expecting property name", "Extra data", "Invalid control character",
                       "utf-8", "codec can't decode")

    def _check_published(self) -> None:
        """Every published diagnostic is well-formed LSP: ranges in order, known severity and code."""
        seen: set[str] = set()
        for m in self.client.notifications_of("textDocument/publishDiagnostics"):
            params = m.get("params") or {}
            for d in params.get("diagnostics") or []:
                problems = []
                try:
                    r = d["range"]
                    a, b = (r["start"]["line"], r["start"]["character"]), (r["end"]["line"], r["end"]["character"])
                    if min(*a, *b) < 0 or b < a:
                        problems.append(f"published range out of order or negative: {a}-{b}")
                    if d.get("severity") not in (1, 2, 3, 4):
                        problems.append(f"published severity {d.get('severity')!r}")
                    if not known_code(str(d.get("code")), "clang" if d.get("source") == "clang" else "bpf-lsp"):
                        problems.append(f"unknown code {d.get('code')!r} (source {d.get('source')!r})")
                    if not d.get("message"):
                        problems.append("published diagnostic without a message")
                except (KeyError, TypeError) as e:
                    problems.append(f"malformed published diagnostic: {type(e).__name__} {e}")
                for problem in problems:
                    if problem in seen:
                        continue
                    seen.add(problem)
                    self.report.failures.append(Failure("chaos", params.get("uri", "?"), ["publish"], "problem",
                                                        problem, json.dumps(d)[:2000]))

    def _collect_errors(self) -> None:
        """Exceptions the server's guards caught are still exceptions escaping a handler: crashes.
        So are pygls' own "Error in server" popups, unless a deliberately malformed message caused them."""
        for m in self.client.notifications_of("window/logMessage"):
            p = m.get("params") or {}
            if p.get("type") == 1 and " failed:\n" in str(p.get("message")):
                text = p["message"]
                where = text.split(" failed:", 1)[0]
                last = [ln for ln in text.strip().splitlines() if ln.strip()][-1]
                self.report.handler_errors.append(text)
                short = re.sub(r"position \d+(-\d+)?", "position N", last[:160])
                self.report.failures.append(Failure("chaos", "server log", [where], "crash", f"{where}: {short}",
                                                    text[-6000:]))
        popups: dict[str, int] = {}
        for m in self.client.notifications_of("window/showMessage"):
            p = m.get("params") or {}
            text = str(p.get("message"))
            if p.get("type") != 1 or not text.startswith("Error in server:"):
                continue
            key = re.sub(r"0x[0-9a-f]+", "0x..", text)[:160]
            if any(e in text for e in self.EXPECTED_POPUPS):
                popups[key] = popups.get(key, 0) + 1
                continue
            self.report.failures.append(Failure("chaos", "showMessage", ["pygls"], "crash", key,
                                                text + "\n\n" + self._log_excerpt(text)))
        for key, n in sorted(popups.items(), key=lambda kv: -kv[1]):
            self.report.notes.append(f"{n} error popup(s) for deliberately malformed messages: {key!r}")
        if self.client.protocol_errors:
            self.report.notes += self.client.protocol_errors[:5]

    def _log_excerpt(self, needle: str) -> str:
        """The server log's traceback for an error (the log has it, the popup does not)."""
        for source in (self.log_file, self.workdir / "server.stderr" if self.workdir else None):
            try:
                log = Path(source).read_text(errors="replace") if source else ""
            except OSError:
                continue
            tail = needle.split(":", 1)[-1].strip()[:60]
            at = log.find(tail)
            if at >= 0:
                start = log.rfind("Traceback (most recent call last)", 0, at)
                return log[start if start >= 0 else max(0, at - 3000):at + 200][-5000:]
        return ""


def _chaos_summary(self: "ChaosReport") -> str:
    head = (f"chaos: server {'alive' if self.alive else 'DEAD'} after {self.messages} messages; "
            f"{len(self.mismatches)} final-diagnostics mismatch(es)")
    return head + "\n" + Report.summary(self)


ChaosReport.summary = _chaos_summary  # type: ignore[method-assign]


def _to_json(diag) -> dict:
    from pygls.protocol import default_converter
    return default_converter().unstructure(diag)


def chaos_session(messages: int, seed: int = 0, **kwargs) -> ChaosReport:
    return asyncio.run(ChaosSession(messages, seed, **kwargs).run())
