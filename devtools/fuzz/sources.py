"""Seeds, source mutators, and the checks every analysis result must pass."""
from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bpf_lsp.text import split_lines
from .common import CLANG_OPTION_CODE, CORPUS_CASES, FIXTURES, SEVERITIES, STAGE_CODES, VERDICTS


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
    from bpf_lsp.frontend.preamble import preamble_line_count, split_lines
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
    return split_lines(text, keepends=True)


def _body_start(text: str) -> int:
    from bpf_lsp.frontend.preamble import preamble_line_count
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
    from bpf_lsp.codes import CODES
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
