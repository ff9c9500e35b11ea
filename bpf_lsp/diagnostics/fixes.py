"""Quick fixes, computed with the diagnostic (they travel in `Diagnostic.data`).

Each fix is a text edit in the file's own indentation (tabs or spaces, as the file uses). A
statement inserted before a `return` that is the body of a brace-less `if`/`else`/loop is
wrapped in braces with it, so the fix does not change which statements the condition guards.
Statement boundaries come from the libclang AST when the file parsed (`ranges.py`), else from
the lines.

| code | fix |
|---|---|
| reference-leak | release on the leaking path: `bpf_obj_drop(e)` (through `container_of` when the variable is a list/rbtree node pointer), `bpf_task_release(t)`, `bpf_cpumask_release(m)`, `bpf_ringbuf_discard(p, 0)`, ...; a `return` that still reads the object keeps its value in a temporary first |
| lock-held-at-exit | `bpf_spin_unlock(&lock);` before the return |
| rcu-held-at-exit | `bpf_rcu_read_unlock();` before the return |
| null-deref, null-arg, ... | `if (!e) return 0;` after the acquiring statement |
| non-owning-after-unlock | for a type with a `struct bpf_refcount` field: `struct T *ref = bpf_refcount_acquire(e);` after the insertion (inside the critical section), and the later uses go through `ref` under `if (ref) { ...; bpf_obj_drop(ref); }` |
"""
from __future__ import annotations

import re

from ..codes import CODES
from ..verifier import kfuncs as K
from ..verifier.findings import Finding
from .model import Fix, SourceDiagnostic, Span, TextEdit
from .sources import ProgramSources, parameter_names

# Per program type, the "nothing happened" return value for an inserted NULL check.
NEUTRAL_RETURN = {"xdp": "XDP_PASS", "sched_cls": "0", "sched_act": "0", "cgroup_skb": "1",
                  "socket_filter": "0"}
# The release to insert on a leaking path, where it differs from the semantics table's first releaser:
# a record reserved and then abandoned is discarded, not submitted.
RELEASE_OVERRIDE = {"ringbuf": "bpf_ringbuf_discard"}
RELEASE_CALL = {"ringbuf": "{fn}({var}, 0);"}
GRAPH_NODE_TYPES = ("bpf_list_node", "bpf_rb_node")
CONTROL = re.compile(r"\b(return|goto|break|continue)\b")


def _indent_of(text: str) -> str:
    return text[: len(text) - len(text.lstrip())]


def _unit(lines: list[str]) -> str:
    for ln in lines:
        if ln.startswith("\t"):
            return "\t"
        if ln.startswith("    "):
            return "    "
    return "\t"


def _code(text: str) -> str:
    return text.split("//")[0].rstrip()


def _prev_code_line(lines: list[str], line: int) -> str:
    for j in range(line - 2, -1, -1):
        s = _code(lines[j]).strip()
        if s and not s.startswith(("/*", "*")):
            return s
    return ""


def _byte_slice(text: str, c0: int, c1: int) -> str:
    return text.encode("utf-8")[c0 - 1:c1 - 1].decode("utf-8", errors="replace")


def _span_text(lines: list[str], span: Span) -> str:
    if span.line == span.end_line:
        return _byte_slice(lines[span.line - 1], span.column, span.end_column)
    parts = [lines[span.line - 1].encode("utf-8")[span.column - 1:].decode("utf-8", errors="replace")]
    parts += lines[span.line:span.end_line - 1]
    parts.append(_byte_slice(lines[span.end_line - 1], 1, span.end_column))
    return "\n".join(parts)


def _function_lines(lines: list[str], line: int) -> list[str]:
    """The lines of the function around `line`: from its unindented header to its closing brace."""
    start = line
    while start > 1 and not (lines[start - 1][:1].isalpha() or lines[start - 1][:1] == "_"):
        start -= 1
    return lines[start - 1:_function_end(lines, line)]


def _words(lines: list[str]) -> set[str]:
    """Identifiers used in `lines`, leaving out member names after `.` and `->`."""
    return set(re.findall(r"(?<![.>\w])[A-Za-z_]\w*", "\n".join(_code(ln) for ln in lines)))


def _fresh_name(lines: list[str], base: str, line: int, src: ProgramSources | None = None) -> str:
    used = _words(_function_lines(lines, line))
    if src is not None:
        used |= {v.name for v in src.variables}
    if base not in used:
        return base
    for i in range(2, 100):
        if f"{base}{i}" not in used:
            return f"{base}{i}"
    return base + "_"


def _braceless(src: ProgramSources, span: Span, lines: list[str]) -> bool:
    """Is the statement at `span` the body of an if/else/loop written without braces?"""
    info = src.statement_info(span.file, span.line, span.column)
    if info is not None and info.range[:2] == (span.line, span.column):
        return info.braceless_body
    prev = _prev_code_line(lines, span.line)
    return bool(re.match(r"^(\}\s*)?(if|else|for|while)\b", prev)) and not prev.endswith(("{", ";", "}"))


def _statement_span(src: ProgramSources, span: Span) -> Span:
    """The whole statement (with its `;`) that a diagnostic's span starts."""
    info = src.statement_info(span.file, span.line, span.column)
    if info is not None and info.range[:2] == (span.line, span.column):
        return Span(span.file, *info.range)
    return span


def insert_before(src: ProgramSources, span: Span, statements: list[str], title: str, code: str,
                  replacement: str | None = None) -> Fix | None:
    """Insert `statements` before the statement at `span` (optionally replacing it), keeping the
    control flow: a brace-less body is braced together with what is inserted."""
    lines = src.files.lines(span.file)
    if not lines or not 1 <= span.line <= len(lines) or not statements:
        return None
    text = lines[span.line - 1]
    indent = _indent_of(text)
    unit = _unit(lines)
    stmt = _statement_span(src, span)
    body = replacement if replacement is not None else _span_text(lines, stmt)
    own_line = stmt.column == len(indent.encode("utf-8")) + 1
    whole = Span(stmt.file, stmt.line, stmt.column, stmt.end_line, stmt.end_column)
    if not own_line:
        # `if (x) return 1;` on one line: brace the body where it is
        if not _braceless(src, span, lines) and not re.match(r"^\s*(\}\s*)?(if\s*\(.*\)|else)\s", text):
            return None
        return Fix(title, (TextEdit(whole, "{ " + " ".join([*statements, body]) + " }"),), code)
    if _braceless(src, span, lines):
        inner = "".join(f"{indent}{s}\n" for s in [*statements, body])
        head = span.line - 1
        head_text = lines[head - 1] if head >= 1 else ""
        if head >= 1 and head_text.strip() and "//" not in head_text and "/*" not in head_text:
            # `if (c)\n\treturn 1;` -> `if (c) {\n\t...\n\treturn 1;\n}`: the brace goes on the if's line
            end = len(head_text.rstrip().encode("utf-8")) + 1
            new = " {\n" + inner + f"{_indent_of(head_text)}}}"
            return Fix(title, (TextEdit(Span(span.file, head, end, stmt.end_line, stmt.end_column), new),), code)
        outer = indent[: -len(unit)] if indent.endswith(unit) else ""
        return Fix(title, (TextEdit(whole, "{\n" + inner + f"{outer}}}"),), code)
    if replacement is None:
        return Fix(title, (TextEdit(Span(span.file, span.line, 1, span.line, 1),
                                    "".join(f"{indent}{s}\n" for s in statements)),), code)
    return Fix(title, (TextEdit(whole, f"\n{indent}".join([*statements, replacement])),), code)


# kept for callers of the previous name
def insert_before_statement(src: ProgramSources, span: Span, statement: str, title: str, code: str) -> Fix | None:
    return insert_before(src, span, [statement], title, code)


def _statement_end_line(src: ProgramSources, file: str, line: int, col: int, lines: list[str]) -> int | None:
    info = src.statement_info(file, line, col)
    if info is not None:
        if info.kind in ("IF_STMT", "WHILE_STMT", "FOR_STMT", "SWITCH_STMT", "DO_STMT") or info.braceless_body:
            return None     # the call sits in a condition or a brace-less body: no place for a statement
        return info.range[2]
    end = line
    while end <= len(lines) and not _code(lines[end - 1]).endswith(";"):
        end += 1
    return end if end <= len(lines) else None


def insert_after_statement(src: ProgramSources, line: int, file: str, statement_lines: list[str],
                           title: str, code: str, col: int = 0) -> Fix | None:
    lines = src.files.lines(file)
    if not lines or not 1 <= line <= len(lines):
        return None
    # the acquiring statement may span lines: insert after the line that ends it
    end = _statement_end_line(src, file, line, col, lines)
    if end is None:
        return None
    indent = _indent_of(lines[line - 1])
    unit = _unit(lines)
    body = "".join(f"{indent}{unit * (1 if i else 0)}{s}\n" for i, s in enumerate(statement_lines))
    return Fix(title, (TextEdit(Span(file, end + 1, 1, end + 1, 1), body),), code)


# ---------------------------------------------------------------------------
# what to release, and how

def _var_type(src: ProgramSources, var: str, near: int | None) -> str:
    """The declared type of a variable, from DWARF ("struct bpf_list_node *")."""
    if near is not None and near >= 0:
        for step in range(near, min(near + 12, len(src.prog.origins))):
            for v in src.variables_at(step):
                if v.name == var:
                    return v.type_name
    for v in src.variables:
        if v.name == var:
            return v.type_name
    return ""


def _struct_members(src: ProgramSources, struct: str) -> list[tuple[str, str]]:
    btf = src.prog.obj.btf
    if btf is None or not struct:
        return []
    t = btf.struct_by_name(struct)
    if t is None:
        return []
    return [(m.name, btf.type_name(m.type_id)) for m in t.members or ()]


def _normal_type(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("const ", "").replace("volatile ", "")).replace(" *", "*").strip()


def release_argument(src: ProgramSources, f: Finding, var: str, acquired: int | None, file: str) -> str | None:
    """`var`, or the expression for the object it points into when its static type is a graph node:
    `container_of(n, struct elem, node)` for `struct bpf_list_node *n` holding a `struct elem`."""
    obj = f.arg("type_name", "")
    vtype = _normal_type(_var_type(src, var, acquired))
    if f.arg("kind") != "local" or not obj or not vtype or vtype == f"struct {obj}*":
        return var
    node = next((t for t in GRAPH_NODE_TYPES if vtype == f"struct {t}*"), None)
    if node is None:
        return var
    members = [m for m, t in _struct_members(src, obj) if _normal_type(t) == f"struct {node}"]
    if len(members) != 1:
        return None     # which node it is depends on the collection: no guess
    text = src.files.text(file) or ""
    if "container_of" in text or "bpf_helpers.h" in text:
        return f"container_of({var}, struct {obj}, {members[0]})"
    return f"(struct {obj} *)((void *){var} - __builtin_offsetof(struct {obj}, {members[0]}))"


def _return_type(lines: list[str], line: int) -> str:
    """The return type of the function around `line`, from its header (`int BPF_PROG(...)` -> int)."""
    for j in range(line - 1, 0, -1):
        text = lines[j - 1]
        if not text or text[0] in " \t{}#/*":
            continue
        m = re.match(r"^((?:\w+[\s*]+)+?)\**\s*\w+\s*\(", text)
        if m:
            words = [w for w in m.group(1).replace("*", " * ").split()
                     if w not in ("static", "inline", "__always_inline", "__noinline", "__hidden", "extern",
                                  "__weak")]
            ret = " ".join(words).replace(" *", "*")
            return ret if ret and ret != "void" else "long"
        if text.startswith("SEC("):
            continue
    return "long"


def _leak_fix(f: Finding, diag: SourceDiagnostic, src: ProgramSources, var: str, acquired: int | None) -> Fix | None:
    kind = f.arg("kind", "")
    fn = RELEASE_OVERRIDE.get(kind) or K.RELEASE_FOR_KIND.get(kind)
    if fn is None or not var:
        return None
    arg = release_argument(src, f, var, acquired, diag.span.file)
    if arg is None:
        return None
    name = K.spelling(fn)
    call = RELEASE_CALL.get(kind, "{fn}({var});").format(fn=name, var=arg)
    if kind == "sk_buff":
        # a qdisc's skb: .enqueue drops it onto its to_free list; other members may only free it
        params = parameter_names(src)
        if f.arg("member") == "Qdisc_ops.enqueue" and len(params) > 2 and params[2]:
            name, call = "bpf_qdisc_skb_drop", f"bpf_qdisc_skb_drop({arg}, {params[2]});"
        else:
            name, call = "bpf_kfree_skb", f"bpf_kfree_skb({arg});"
    title = f"Release '{var}' with {name}() before returning"
    lines = src.files.lines(diag.span.file) or []
    stmt = _statement_span(src, diag.span)
    text = _span_text(lines, stmt) if lines else ""
    m = re.match(r"^return\b\s*(.*?);?\s*$", text, re.S)
    if m and m.group(1) and re.search(rf"\b{re.escape(var)}\b", m.group(1)):
        # the return value still reads the object: compute it before releasing
        tmp = _fresh_name(lines, "ret", stmt.line, src)
        rtype = _return_type(lines, stmt.line)
        return insert_before(src, diag.span, [f"{rtype} {tmp} = {m.group(1).strip()};", call], title, f.code,
                             replacement=f"return {tmp};")
    return insert_before(src, diag.span, [call], title, f.code)


# ---------------------------------------------------------------------------
# a non-owning reference used after unlock: take a reference in the critical section

def _block_statements(src: ProgramSources, span: Span, lines: list[str]) -> list[Span] | None:
    """The statement at `span` and the ones after it in the same block, each on its own lines."""
    indent = _indent_of(lines[span.line - 1])
    out: list[Span] = []
    ln = span.line
    while ln <= len(lines):
        text = lines[ln - 1]
        code = _code(text)
        if not code.strip() or code.strip().startswith(("/*", "*")):
            ln += 1
            continue
        if _indent_of(text) != indent or code.strip().startswith("}"):
            if len(_indent_of(text)) < len(indent) or code.strip().startswith("}"):
                break
            return None     # a continuation or a nested line we do not understand
        info = src.statement_info(span.file, ln, len(indent.encode("utf-8")) + 1)
        if info is not None:
            if info.range[0] != ln:
                return None
            end_line, end_col = info.range[2], info.range[3]
        else:
            end_line = ln
            while end_line <= len(lines) and not _code(lines[end_line - 1]).endswith((";", "}")):
                end_line += 1
            if end_line > len(lines):
                return None
            end_col = len(_code(lines[end_line - 1]).encode("utf-8")) + 1
        out.append(Span(span.file, ln, len(indent.encode("utf-8")) + 1, end_line, end_col))
        ln = end_line + 1
    return out


def _refcount_fix(f: Finding, diag: SourceDiagnostic, src: ProgramSources) -> Fix | None:
    inserted = f.related_insn("inserted")
    released = f.related_insn("released")
    reg = f.arg("reg")
    if inserted is None or released is None or not isinstance(reg, int):
        return None
    v = src.variable(f.insn, reg=reg) or src.base_variable(diag.span)
    if v is None:
        return None
    var = v.name
    vtype = _normal_type(v.type_name)
    m = re.fullmatch(r"struct (\w+)\*", vtype)
    if m is None:
        return None
    struct = m.group(1)
    if not any(_normal_type(t) == "struct bpf_refcount" for _, t in _struct_members(src, struct)):
        return None     # without a refcount field the object cannot be referenced past the unlock
    file = diag.span.file
    lines = src.files.lines(file)
    p_ins, p_unl = src.place(inserted), src.place(released)
    if not lines or p_ins is None or p_unl is None or p_ins.file != file or p_unl.file != file:
        return None
    # where the reference is taken: after the insertion statement, before the unlock
    ins_end = _statement_end_line(src, file, p_ins.line, p_ins.col, lines)
    if ins_end is None or not ins_end < p_unl.line or not ins_end < diag.span.line:
        return None
    use = _statement_span(src, diag.span)
    if use.line <= p_unl.line:
        return None
    stmts = _block_statements(src, Span(file, use.line, use.column, use.end_line, use.end_column), lines)
    if not stmts:
        return None
    word = re.compile(rf"(?<![\w.>]){re.escape(var)}\b")
    texts = [_span_text(lines, s) for s in stmts]
    last = max(i for i, t in enumerate(texts) if word.search(t) or i == 0)
    # every later mention goes through the new reference; none may leave the block early
    if any(CONTROL.search(t) for t in texts[:last + 1]):
        return None
    if any(word.search(_code(ln)) for ln in lines[stmts[last].end_line:_function_end(lines, stmts[last].end_line)]):
        return None
    ref = _fresh_name(lines, "ref", use.line, src)
    indent = _indent_of(lines[use.line - 1])
    unit = _unit(lines)
    ins_indent = _indent_of(lines[p_ins.line - 1])
    take = TextEdit(Span(file, ins_end + 1, 1, ins_end + 1, 1),
                    f"{ins_indent}struct {struct} *{ref} = bpf_refcount_acquire({var});\n")
    first, end = stmts[0], stmts[last]
    # the statements as written (comments between them included), through `ref`, one level deeper
    end_col = end.end_column
    tail = lines[end.end_line - 1].encode("utf-8")[end_col - 1:].decode("utf-8", errors="replace")
    if tail.strip().startswith(("/*", "//")) and "*/" not in tail.strip()[2:-2]:
        end_col = len(lines[end.end_line - 1].rstrip().encode("utf-8")) + 1    # its trailing comment too
    whole = Span(file, first.line, first.column, end.end_line, end_col)
    body = word.sub(ref, _span_text(lines, whole)).replace("\n", "\n" + unit)
    new = f"if ({ref}) {{\n{indent}{unit}{body}\n{indent}{unit}bpf_obj_drop({ref});\n{indent}}}"
    rewrite = TextEdit(whole, new)
    return Fix(f"Take a reference to '{var}' with bpf_refcount_acquire() before unlocking", (take, rewrite),
               f.code)


def _function_end(lines: list[str], line: int) -> int:
    """The line of the function's closing brace (an unindented `}`) at or after `line`."""
    for j in range(line, len(lines) + 1):
        if lines[j - 1].startswith("}"):
            return j
    return len(lines)


def fixes_for(f: Finding, diag: SourceDiagnostic, src: ProgramSources, args: dict) -> list[Fix]:
    kind = CODES[f.code].fix_kind
    if not kind:
        return []
    try:
        fix = _fix(kind, f, diag, src, args)
    except Exception:  # noqa: BLE001 - a fix is an offer: never lose the diagnostic over one
        fix = None
    return [fix] if fix else []


def _fix(kind: str, f: Finding, diag: SourceDiagnostic, src: ProgramSources, args: dict) -> Fix | None:
    acquired = f.related_insn("acquired")
    var = src.acquired_variable(acquired) if acquired is not None and acquired >= 0 else None
    if isinstance(f.arg("arg_slot"), int):
        params = parameter_names(src)
        slot = f.arg("arg_slot")
        var = params[slot] if slot < len(params) and params[slot] else var
    if kind == "release" and f.code == "reference-leak":
        return _leak_fix(f, diag, src, var or "", acquired)
    if kind == "unlock" and f.code == "lock-held-at-exit":
        lock = args.get("lock", "")
        if not (lock.startswith("'") and lock.endswith("'")):
            return None
        call = f"bpf_spin_unlock({lock[1:-1]});"
        return insert_before(src, diag.span, [call], f"Call {call[:-1]} before returning", f.code)
    if kind == "rcu_unlock" and f.code == "rcu-held-at-exit":
        return insert_before(src, diag.span, ["bpf_rcu_read_unlock();"],
                             "Call bpf_rcu_read_unlock() before returning", f.code)
    if kind == "null_check" and acquired is not None and acquired >= 0 and var:
        place = src.place(acquired)
        if place is None:
            return None
        ret = NEUTRAL_RETURN.get(src.prog.prog_type, "0")
        return insert_after_statement(src, place.line, place.file, [f"if (!{var})", f"return {ret};"],
                                      f"Check '{var}' for NULL after the call", f.code, col=place.col)
    if kind == "refcount" and f.code == "non-owning-after-unlock":
        return _refcount_fix(f, diag, src)
    return None
