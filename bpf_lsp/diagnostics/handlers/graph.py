"""Collections (`bpf_list_*`, `bpf_rbtree_*`) and the non-owning references they leave behind.

| code | fix |
|---|---|
| non-owning-after-unlock | for a type with a `struct bpf_refcount` field: `struct T *ref = bpf_refcount_acquire(e);` after the insertion (inside the critical section), and the later uses go through `ref` under `if (ref) { ...; bpf_obj_drop(ref); }` |
| refcount-arg-invalid | the `bpf_refcount_acquire()` statement moves before the `bpf_spin_unlock()` that invalidated its argument |
"""
from __future__ import annotations

import re

from ... import codes as C
from ..model import Fix, Span, TextEdit
from .base import Context, Handler, normal_type, struct_members
from .edits import (CONTROL, block_statements, code_part, fresh_name, function_end, indent_of, indent_unit,
                    move_before, span_text, statement_end_line, statement_span)


class NonOwningAfterUnlock(Handler):
    codes = (C.NON_OWNING_AFTER_UNLOCK,)

    def related(self, ctx):
        return [(ctx.insn("released"), f"{ctx.args['unlock_call']} invalidated {ctx.args['var']} here", True),
                (ctx.insn("inserted"), f"{ctx.args['insert_call']} made {ctx.args['var']} non-owning here", False)]

    def fix(self, ctx):
        return _refcount_fix(ctx)


class RefcountArgInvalid(Handler):
    codes = (C.REFCOUNT_ARG_INVALID,)

    def related(self, ctx):
        return [(ctx.insn("released"), f"{ctx.args['release_call']} invalidated it here", True),
                (ctx.insn("inserted"), "ownership moved to the collection here", False)]

    def fix(self, ctx):
        unlock_line = ctx.line_of("released")
        if unlock_line is None:
            return None
        lines = ctx.src.files.lines(ctx.diag.span.file) or []
        if not 1 <= unlock_line <= len(lines) or "bpf_spin_unlock" not in lines[unlock_line - 1]:
            return None     # released by something else: taking the reference earlier is not enough
        return move_before(ctx.src, ctx.diag.span, unlock_line,
                           "Take the reference with bpf_refcount_acquire() before bpf_spin_unlock()",
                           ctx.finding.code)


def _refcount_fix(ctx: Context) -> Fix | None:
    f, src, diag = ctx.finding, ctx.src, ctx.diag
    inserted = f.related_insn("inserted")
    released = f.related_insn("released")
    reg = f.arg("reg")
    if inserted is None or released is None or not isinstance(reg, int):
        return None
    v = src.variable(f.insn, reg=reg) or src.base_variable(diag.span)
    if v is None:
        return None
    var = v.name
    vtype = normal_type(v.type_name)
    m = re.fullmatch(r"struct (\w+)\*", vtype)
    if m is None:
        return None
    struct = m.group(1)
    if not any(normal_type(t) == "struct bpf_refcount" for _, t in struct_members(src, struct)):
        return None     # without a refcount field the object cannot be referenced past the unlock
    file = diag.span.file
    lines = src.files.lines(file)
    p_ins, p_unl = src.place(inserted), src.place(released)
    if not lines or p_ins is None or p_unl is None or p_ins.file != file or p_unl.file != file:
        return None
    # where the reference is taken: after the insertion statement, before the unlock
    ins_end = statement_end_line(src, file, p_ins.line, p_ins.col, lines)
    if ins_end is None or not ins_end < p_unl.line or not ins_end < diag.span.line:
        return None
    use = statement_span(src, diag.span)
    if use.line <= p_unl.line:
        return None
    stmts = block_statements(src, Span(file, use.line, use.column, use.end_line, use.end_column), lines)
    if not stmts:
        return None
    word = re.compile(rf"(?<![\w.>]){re.escape(var)}\b")
    texts = [span_text(lines, s) for s in stmts]
    last = max(i for i, t in enumerate(texts) if word.search(t) or i == 0)
    # every later mention goes through the new reference; none may leave the block early
    if any(CONTROL.search(t) for t in texts[:last + 1]):
        return None
    if any(word.search(code_part(ln)) for ln in lines[stmts[last].end_line:function_end(lines, stmts[last].end_line)]):
        return None
    ref = fresh_name(lines, "ref", use.line, src)
    indent = indent_of(lines[use.line - 1])
    unit = indent_unit(lines)
    ins_indent = indent_of(lines[p_ins.line - 1])
    take = TextEdit(Span(file, ins_end + 1, 1, ins_end + 1, 1),
                    f"{ins_indent}struct {struct} *{ref} = bpf_refcount_acquire({var});\n")
    first, end = stmts[0], stmts[last]
    # the statements as written (comments between them included), through `ref`, one level deeper
    end_col = end.end_column
    tail = lines[end.end_line - 1].encode("utf-8")[end_col - 1:].decode("utf-8", errors="replace")
    if tail.strip().startswith(("/*", "//")) and "*/" not in tail.strip()[2:-2]:
        end_col = len(lines[end.end_line - 1].rstrip().encode("utf-8")) + 1    # its trailing comment too
    whole = Span(file, first.line, first.column, end.end_line, end_col)
    body = word.sub(ref, span_text(lines, whole)).replace("\n", "\n" + unit)
    new = f"if ({ref}) {{\n{indent}{unit}{body}\n{indent}{unit}bpf_obj_drop({ref});\n{indent}}}"
    rewrite = TextEdit(whole, new)
    return Fix(f"Take a reference to '{var}' with bpf_refcount_acquire() before unlocking", (take, rewrite),
               f.code)


HANDLERS = (NonOwningAfterUnlock(), RefcountArgInvalid())
