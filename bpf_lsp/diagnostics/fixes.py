"""Quick fixes, computed with the diagnostic (they travel in `Diagnostic.data`).

Each fix is a text edit in the file's own indentation. A statement inserted before a `return`
that is the body of a brace-less `if`/`else`/loop is wrapped in braces with it, so the fix does
not change which statements the condition guards.
"""
from __future__ import annotations

import re

from ..codes import CODES
from ..verifier import kfuncs as K
from ..verifier.findings import Finding
from .model import Fix, SourceDiagnostic, Span, TextEdit
from .sources import ProgramSources

# Per program type, the "nothing happened" return value for an inserted NULL check.
NEUTRAL_RETURN = {"xdp": "XDP_PASS", "sched_cls": "0", "sched_act": "0", "cgroup_skb": "1",
                  "socket_filter": "0"}
RELEASE_CALL = {"ringbuf": "{fn}({var}, 0);"}


def _indent_of(text: str) -> str:
    return text[: len(text) - len(text.lstrip())]


def _unit(lines: list[str]) -> str:
    for ln in lines:
        if ln.startswith("\t"):
            return "\t"
        if ln.startswith("    "):
            return "    "
    return "\t"


def _prev_code_line(lines: list[str], line: int) -> str:
    for j in range(line - 2, -1, -1):
        s = lines[j].split("//")[0].strip()
        if s:
            return s
    return ""


def insert_before_statement(src: ProgramSources, span: Span, statement: str, title: str, code: str) -> Fix | None:
    lines = src.files.lines(span.file)
    if not lines or not 1 <= span.line <= len(lines):
        return None
    text = lines[span.line - 1]
    indent = _indent_of(text)
    prev = _prev_code_line(lines, span.line)
    body = text.strip()
    braceless = bool(re.match(r"^(\}\s*)?(if|else|for|while)\b", prev)) and not prev.endswith(("{", ";", "}"))
    inline_if = re.match(r"^(if\s*\(.*\)|else)\s+(return\b.*;)\s*$", body)
    if inline_if:
        # `if (x) return 1;` on one line: brace the body
        start = len(indent) + inline_if.start(2)
        new = f"{{ {statement} {inline_if.group(2)} }}"
        edit = TextEdit(Span(span.file, span.line, start + 1, span.line, len(text.rstrip()) + 1), new)
    elif braceless:
        outer = indent[: -len(_unit(lines))] if indent.endswith(_unit(lines)) else ""
        new = f"{{\n{indent}{statement}\n{indent}{body}\n{outer}}}"
        # replace from the end of the previous code line to the end of this statement
        edit = TextEdit(Span(span.file, span.line, len(indent) + 1, span.line, len(text.rstrip()) + 1), new)
    else:
        edit = TextEdit(Span(span.file, span.line, 1, span.line, 1), f"{indent}{statement}\n")
    return Fix(title, (edit,), code)


def insert_after_statement(src: ProgramSources, line: int, file: str, statement_lines: list[str],
                           title: str, code: str) -> Fix | None:
    lines = src.files.lines(file)
    if not lines or not 1 <= line <= len(lines):
        return None
    # the acquiring statement may span lines: insert after the line that ends it
    end = line
    while end <= len(lines) and not lines[end - 1].split("//")[0].rstrip().endswith(";"):
        end += 1
    if end > len(lines):
        return None
    indent = _indent_of(lines[line - 1])
    unit = _unit(lines)
    body = "".join(f"{indent}{unit * (1 if i else 0)}{s}\n" for i, s in enumerate(statement_lines))
    return Fix(title, (TextEdit(Span(file, end + 1, 1, end + 1, 1), body),), code)


def fixes_for(f: Finding, diag: SourceDiagnostic, src: ProgramSources, args: dict) -> list[Fix]:
    kind = CODES[f.code].fix_kind
    if not kind:
        return []
    acquired = f.related_insn("acquired")
    var = src.acquired_variable(acquired) if acquired is not None and acquired >= 0 else None
    if kind == "release" and f.code == "reference-leak":
        fn = K.RELEASE_FOR_KIND.get(f.arg("kind", ""))
        if fn is None or var is None:
            return []
        call = RELEASE_CALL.get(f.arg("kind", ""), "{fn}({var});").format(fn=K.spelling(fn), var=var)
        fix = insert_before_statement(src, diag.span, call, f"Release '{var}' with {K.spelling(fn)}() before returning",
                                      f.code)
        return [fix] if fix else []
    if kind == "unlock" and f.code == "lock-held-at-exit":
        lock = args.get("lock", "")
        if not (lock.startswith("'") and lock.endswith("'")):
            return []
        call = f"bpf_spin_unlock({lock[1:-1]});"
        fix = insert_before_statement(src, diag.span, call, f"Call {call[:-1]} before returning", f.code)
        return [fix] if fix else []
    if kind == "rcu_unlock" and f.code == "rcu-held-at-exit":
        fix = insert_before_statement(src, diag.span, "bpf_rcu_read_unlock();",
                                      "Call bpf_rcu_read_unlock() before returning", f.code)
        return [fix] if fix else []
    if kind == "null_check" and acquired is not None and acquired >= 0 and var:
        place = src.place(acquired)
        if place is None:
            return []
        ret = NEUTRAL_RETURN.get(src.prog.prog_type, "0")
        fix = insert_after_statement(src, place.line, place.file, [f"if (!{var})", f"return {ret};"],
                                     f"Check '{var}' for NULL after the call", f.code)
        return [fix] if fix else []
    return []
