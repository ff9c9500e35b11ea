"""Findings -> source-level diagnostics: ranges, variable names, related places, quick fixes."""
from __future__ import annotations

import logging
import re

from .. import codes as C
from ..codes import CODES
from ..verifier import kfuncs as K
from ..verifier.findings import Finding
from .handlers import Context, handler_for
from .handlers.base import NULL_READ
from .model import Related, SourceDiagnostic, Span
from .sources import ProgramSources, parameter_names

log = logging.getLogger("bpf_lsp.render")

EXIT_CODES = {C.REFERENCE_LEAK, C.LOCK_HELD_AT_EXIT, C.RCU_HELD_AT_EXIT}
# findings on a memory access through a register: the variable can be read off the expression
BASE_VARIABLE_CODES = {C.NON_OWNING_AFTER_UNLOCK, C.USE_AFTER_RELEASE, C.NULL_DEREF, C.INVALID_DEREF}
KIND_WORDS = {"local": "the object", "percpu_local": "the per-CPU object", "ringbuf": "the ring-buffer record",
              "socket": "the socket reference", "task_struct": "the task reference",
              "cgroup": "the cgroup reference", "bpf_cpumask": "the cpumask"}
STATE_WORDS = {"released": "was already released", "unlocked": "is a non-owning reference that died at unlock",
               "non_owning": "is a non-owning reference (its object belongs to a collection)",
               "scalar": "is not a pointer", "untrusted": "is not a trusted pointer",
               "not_rcu": "is not an RCU-protected or trusted pointer", "not_referenced": "carries no reference",
               "not_percpu": "is not a per-CPU pointer", "maybe_null": "may be NULL here",
               "not_map_value": "does not point into a map value", "null": "is NULL",
               "ctx": "is the context pointer, not memory of the argument's type"}


# how a dead pointer died (its Tombstone's reason), after "is used after <call> on line N"
RELEASED_WORDS = {"overwritten": "overwrote its dynptr",
                  "packet_moved": "invalidated it (the call may move the packet, so packet pointers die)"}
# what a helper argument needed (helper-arg-type's `expected`, the kernel's spelling) in words
EXPECTED_WORDS = {"ringbuf_mem": "a ring-buffer record from bpf_ringbuf_reserve()",
                  "percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_": "a per-CPU kernel variable or object",
                  "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_": "a socket reference",
                  "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_": "a pointer to memory",
                  "ctx": "the program's context pointer",
                  "ptr_, trusted_ptr_, rcu_ptr_": "a trusted kernel pointer",
                  "map_value": "memory of a map value",
                  "map_ptr": "a map",
                  "map_value, ptr_": "the map value or object holding the __kptr"}
# the template arguments `render` fills for every finding; the rest come from the finding's own args
# (tests/test_codes_render.py checks every template against these and its emitters)
RENDERED_ARGS = frozenset({"var", "call", "acquire_call", "null_source", "acquire_line", "what", "release_call", "release_line",
                           "insert_call", "insert_line", "unlock_call", "unlock_line", "lock", "lock_line", "held",
                           "held_line", "rcu_line", "state", "expected_words", "problem", "released_words",
                           "license_words"})
UNKNOWN_LINE = "?"


class _Args(dict):
    def __missing__(self, key):
        # never shown: a test fails for any template argument nothing fills
        return ""


def _lock_name(src: ProgramSources, lock_insn: int | None, holder) -> str:
    if lock_insn is not None and lock_insn >= 0:
        text = src.call_text(lock_insn, "bpf_spin_lock")
        if text.startswith("bpf_spin_lock(") and text.endswith(")"):
            return f"'{text[len('bpf_spin_lock('):-1]}'"
    if isinstance(holder, tuple) and holder and holder[0] == "inner":
        return "the lock of an inner map's value"
    if isinstance(holder, tuple) and len(holder) == 2:
        return f"the lock of {holder[1]}"
    return "the lock"


def _call_name(src: ProgramSources, insn: int | None) -> str:
    if insn is None or insn < 0:
        return ""
    from ..frontend.objfile import HelperRef, KfuncRef
    m = src.prog.meanings.get(insn)
    if isinstance(m, (KfuncRef, HelperRef)):
        return K.spelling(m.name)
    return ""


def _line(src: ProgramSources, insn: int | None) -> str:
    if insn is None or insn < 0:
        return UNKNOWN_LINE
    p = src.place(insn)
    return str(p.line) if p else UNKNOWN_LINE


def _null_check(var: str | None) -> re.Pattern | None:
    """`if (!e)`, `if (e == NULL)`, `if (NULL == e)`, `if (e == 0)`: the branch where `var` is NULL."""
    if not var:
        return None
    v = re.escape(var)
    return re.compile(rf"^(\}}\s*)?(else\s+)?if\s*\(\s*(!\s*{v}|{v}\s*==\s*(NULL|0)|(NULL|0)\s*==\s*{v})\s*\)")


_INLINE_RETURN = re.compile(r"^((\}\s*)?(else\s+)?if\s*\(.*\)|(\}\s*)?else)\s*(?P<ret>return\b.*)$")


def _exit_statement(src: ProgramSources, path: int, prev: int | None,
                    var: str | None = None) -> int | tuple[str, int, int]:
    """Where a leaking path returns, when clang merged its `return` into a shared exit.

    The shared exit's own line is the closing brace (or a BPF_PROG()-style macro line). The path's
    previous line is the last statement it executed; the first `return` written after it (before
    the function's closing brace) is the one the path took, even when clang hoisted its value and
    left it no instruction -- except a `return` under a NULL check of the leaked variable
    (`if (!t) return 0;`): on the leaking path the reference is not NULL, so it went on.
    Returns the instruction, or (file, line, column of the `return`).
    """
    here, before = src.place(path), src.place(prev) if prev is not None and prev >= 0 else None
    if here is None or before is None:
        return path
    own = src.files.line(here.file, here.line).strip()
    if own.startswith("return") or before.file != here.file or before.line == here.line:
        return path
    lines = src.files.lines(here.file) or []
    null_check = _null_check(var)
    skip_depth = None       # inside `if (!var) { ... }`: the depth its block closes at
    depth = 0
    prev_code = ""
    for line in range(before.line, min(len(lines), before.line + 40) + 1):
        text = lines[line - 1]
        if text.startswith("}"):
            break
        if line == before.line:
            # the line the path executed last is itself a return (`return f(e);`, `if (c) return 1;`)
            code = text.split("//")[0].strip()
            m = _INLINE_RETURN.match(code)
            if code.startswith("return"):
                return (here.file, line, len(text[:text.index("return")].encode("utf-8")) + 1)
            if m and not (null_check is not None and null_check.match(code)):
                col = len(text) - len(text.lstrip()) + m.start("ret")
                return (here.file, line, len(text[:col].encode("utf-8")) + 1)
            continue
        code = text.split("//")[0].strip()
        guarded = null_check is not None and bool(null_check.match(code) or null_check.match(prev_code))
        opens, closes = code.count("{"), code.count("}")
        if skip_depth is None and null_check is not None and null_check.match(code) and opens > closes:
            skip_depth = depth
        depth += opens - closes
        if skip_depth is not None:
            if depth <= skip_depth:
                skip_depth = None
            prev_code = code
            continue
        col = None
        if code.startswith("return"):
            col = text.index("return")
        else:
            m = _INLINE_RETURN.match(code)
            if m:
                col = len(text) - len(text.lstrip()) + m.start("ret")
        if col is not None and not guarded:
            return (here.file, line, len(text[:col].encode("utf-8")) + 1)
        if code:
            prev_code = code
    return prev


def _iterator_variable(src: ProgramSources, insn: int | None) -> str | None:
    """The iterator a `bpf_iter_*_new(&it, ...)` call initialises: its first argument."""
    if insn is None or insn < 0:
        return None
    m = re.match(r"\w+\(\s*&\s*([A-Za-z_]\w*)", src.call_text(insn, _call_name(src, insn) or "bpf_iter"))
    return m.group(1) if m else None


def _unplaced_span(src: ProgramSources, fallback_path: str) -> Span:
    """Where a finding without a source line is shown: the program's first line, else the file's."""
    p = src.place(src.prog.main.start)
    if p is not None:
        return src.statement_span(p.file, p.line)
    return Span(fallback_path, 1, 1, 1, 1)


def render(f: Finding, src: ProgramSources, program: str, fallback_path: str = "") -> SourceDiagnostic:
    """One finding as a diagnostic. Every finding is shown: one the line info cannot place sits on
    the program's first line (or the file's), naming its instruction."""
    code = CODES[f.code]
    args = _Args({k: v for k, v in f.args})
    acquired = f.related_insn("acquired")
    released = f.related_insn("released")
    inserted = f.related_insn("inserted")
    locked = f.related_insn("locked")
    path = f.related_insn("path")
    reg = f.arg("reg")

    # where: exits sit on the statement of the leaking path; the rest on the offending expression
    where = path if f.code in EXIT_CODES and path is not None else f.insn
    if f.code in EXIT_CODES:
        leaked = src.acquired_variable(acquired) if f.code == C.REFERENCE_LEAK and acquired is not None \
            and acquired >= 0 and not str(f.arg("kind", "")).startswith("iter:") else None
        where = _exit_statement(src, where, f.related_insn("path_prev"), leaked)
    if isinstance(where, tuple):
        span = src.statement_span(*where)
    else:
        span = src.span(where, whole_statement=f.code in EXIT_CODES)
    unplaced = span is None
    if unplaced:
        span = _unplaced_span(src, fallback_path)

    var = None
    if str(f.arg("kind", "")).startswith("iter:") and acquired is not None:
        var = _iterator_variable(src, acquired)
    if var is None and isinstance(reg, int):
        v = src.variable(f.insn, reg=reg)
        var = v.name if v else None
    if var is None and acquired is not None and acquired >= 0:
        var = src.acquired_variable(acquired)
    if var is None and isinstance(reg, int) and f.code in BASE_VARIABLE_CODES:
        v = src.base_variable(span)
        var = v.name if v else None
    slot = f.arg("arg_slot")
    if isinstance(slot, int):
        # a struct_ops argument the kernel passed in holding a reference (`__ref`)
        params = parameter_names(src)
        var = params[slot] if slot < len(params) and params[slot] else var
    args["var"] = f"'{var}'" if var else "the pointer"
    args["call"] = f"{K.spelling(f.arg('func', ''))}()" if f.arg("func") else "the call"
    acquire_call = _call_name(src, acquired)
    args["acquire_call"] = f"{acquire_call}()" if acquire_call else "the call"
    # a maybe-NULL pointer no call returned was read (from the context: an iterator's object)
    args["null_source"] = args["acquire_call"] if acquire_call or acquired is None or acquired < 0 \
        or not src.place(acquired) else NULL_READ
    if isinstance(slot, int):
        args["acquire_call"] = f"the kernel as a referenced argument of {f.arg('member') or 'this member'}"
    args["acquire_line"] = _line(src, acquired)
    args["what"] = (f"'{var}'" if var else KIND_WORDS.get(f.arg("kind", ""), "the reference"))
    release_name = K.spelling(f.arg("release_call", "") or _call_name(src, released))
    args["release_call"] = src.call_text(released, release_name) if released is not None and release_name else \
        (release_name + "()" if release_name else "the release")
    args["release_line"] = _line(src, released)
    insert_name = K.spelling(f.arg("insert_call", "") or _call_name(src, inserted))
    args["insert_call"] = f"{insert_name}()" if insert_name else "the insertion"
    args["insert_line"] = _line(src, inserted)
    args["unlock_call"] = src.call_text(released, "bpf_spin_unlock") if released is not None else "bpf_spin_unlock()"
    args["unlock_line"] = _line(src, released)
    args["lock"] = _lock_name(src, locked, f.arg("lock") or f.arg("holder"))
    args["lock_line"] = _line(src, locked)
    args["held"] = _lock_name(src, locked, f.arg("held"))
    args["held_line"] = _line(src, locked)
    args["rcu_line"] = _line(src, f.related_insn("rcu_locked"))
    args["state"] = STATE_WORDS.get(f.arg("state", ""), "is not an owning reference")
    for k in ("head_type", "head", "map", "cause", "dest", "type", "off", "budget", "detail", "prog_type",
              "node_type", "node_off", "value_type", "arg_off", "arg_type", "lock_off", "gap", "imm"):
        if f.arg(k) is not None:
            args[k] = f.arg(k)
    if f.code == C.UNSUPPORTED:
        args["what"] = f.arg("what", "this construct")
    if f.arg("license") is not None:
        args["license_words"] = f"'{f.arg('license')}' is not GPL-compatible" if f.arg("license") else \
            "is empty"
    args["expected_words"] = EXPECTED_WORDS.get(f.arg("expected", ""), "another kind of value")
    args["released_words"] = RELEASED_WORDS.get(f.arg("reason", ""), "released it")
    if f.code in C.PROBLEMS:
        args["problem"] = C.PROBLEMS[f.code].get(f.arg("variant", ""), "breaks a rule").format_map(args)
    message = code.message.format_map(args)
    # a place the object cannot name (no line info for it) is left out rather than shown as "?"
    message = re.sub(rf" (on|from) line {re.escape(UNKNOWN_LINE)}\b", "", message)
    message = message.replace(f"line {UNKNOWN_LINE}", "an earlier line")
    if f.code == C.REFERENCE_LEAK and f.arg("kind") and not var:
        message = message.replace("the reference", KIND_WORDS.get(f.arg("kind"), "the reference"))
    if f.arg("load_time"):
        message += (f" (only if '{f.arg('load_time')}' is set at load time to a value that takes this path: "
                    "user space sets it, so bpf-lsp cannot tell; the kernel will check the value it gets)")
    if f.arg("widened"):
        message += (" (found after a may_goto loop forgot numbers no check had needed yet, as the kernel's "
                    "widening does; walking the loop without forgetting them ran out of budget, so bpf-lsp "
                    "cannot confirm that the kernel forgets the same ones)")
    if unplaced:
        message += f" (instruction {f.insn} of {program}; the object has no source line for it)"

    # the family's related places and quick fix (handlers/): the code's one home
    handler = handler_for(f.code)
    draft = SourceDiagnostic(code=f.code, severity=f.severity, message=message, span=span,
                             kernel_message=f.kernel_message, program=program, doc_url=code.doc_url)
    ctx = Context(f, src, args, draft)
    related: list[Related] = []
    for insn, text, statement in handler.related(ctx):
        if insn is not None and insn >= 0:
            s = src.span(insn, whole_statement=statement)
            if s is not None and (s.line, s.column) != (span.line, span.column):
                related.append(Related(s, text))
    fixes: tuple = ()
    if code.fix_kind:
        try:
            fix = handler.fix(ctx)
        except Exception:  # noqa: BLE001 - a fix is an offer: never lose the diagnostic over one
            log.exception("the quick fix for %s failed", f.code)
            fix = None
        fixes = (fix,) if fix is not None else ()
    diag = SourceDiagnostic(**{**draft.__dict__, "related": tuple(related), "fixes": fixes})
    return diag


def render_all(findings: list[Finding], src: ProgramSources, program: str,
               fallback_path: str = "") -> list[SourceDiagnostic]:
    out: list[SourceDiagnostic] = []
    seen: set[tuple] = set()
    try:
        for f in findings:
            d = render(f, src, program, fallback_path)
            # the kernel has one exit per function; several acquire sites leaking on the same path and
            # source line (an unrolled loop) are one mistake to the user
            key = (d.code, d.span.line, d.span.column, d.message)
            if key in seen:
                continue
            seen.add(key)
            out.append(d)
    finally:
        # the analysis outlives rendering (hovers, code actions): it must not pin libclang's TUs
        release = getattr(src.files, "release_asts", None)
        if release is not None:
            release()
    return out

