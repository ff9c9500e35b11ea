"""References that are never released, released twice, or used after release.

| code | fix |
|---|---|
| reference-leak | release on the leaking path: `bpf_obj_drop(e)` (through `container_of` when the variable is a list/rbtree node pointer), `bpf_task_release(t)`, `bpf_cpumask_release(m)`, `bpf_ringbuf_discard(p, 0)`, `bpf_ringbuf_discard_dynptr(&ptr, 0)` for a reserved dynptr, ...; a `return` that still reads the object keeps its value in a temporary first |
| tail-call-leak | the release that follows the tail call moves before it; else the release is inserted before it |
| throw-leak | the release before `bpf_throw()` (which never returns) |
"""
from __future__ import annotations

import re

from ... import codes as C
from ...verifier import kfuncs as K
from ..model import Fix, Span
from ..sources import parameter_names
from .base import GRAPH_NODE_TYPES, Context, Handler, normal_type, struct_members, var_type
from .edits import code_part, fresh_name, indent_of, insert_before, move_before, span_text, statement_span

# The release to insert on a leaking path, where it differs from the semantics table's first releaser:
# a record reserved and then abandoned is discarded, not submitted.
RELEASE_OVERRIDE = {"ringbuf": "bpf_ringbuf_discard"}
RELEASE_CALL = {"ringbuf": "{fn}({var}, 0);"}


def release_argument(ctx: Context, var: str) -> str | None:
    """`var`, or the expression for the object it points into when its static type is a graph node:
    `container_of(n, struct elem, node)` for `struct bpf_list_node *n` holding a `struct elem`."""
    f, src = ctx.finding, ctx.src
    obj = f.arg("type_name", "")
    vtype = normal_type(var_type(src, var, ctx.insn("acquired")))
    if f.arg("kind") != "local" or not obj or not vtype or vtype == f"struct {obj}*":
        return var
    node = next((t for t in GRAPH_NODE_TYPES if vtype == f"struct {t}*"), None)
    if node is None:
        return var
    members = [m for m, t in struct_members(src, obj) if normal_type(t) == f"struct {node}"]
    if len(members) != 1:
        return None     # which node it is depends on the collection: no guess
    text = src.files.text(ctx.diag.span.file) or ""
    if "container_of" in text or "bpf_helpers.h" in text:
        return f"container_of({var}, struct {obj}, {members[0]})"
    return f"(struct {obj} *)((void *){var} - __builtin_offsetof(struct {obj}, {members[0]}))"


def release_statement(ctx: Context, var: str) -> tuple[str, str] | None:
    """(release function, statement) that releases `var` as the finding's reference kind needs."""
    f = ctx.finding
    kind = f.arg("kind", "")
    fn = RELEASE_OVERRIDE.get(kind) or K.RELEASE_FOR_KIND.get(kind)
    if fn is None or not var:
        return None
    arg = release_argument(ctx, var)
    if arg is None:
        return None
    name = K.spelling(fn)
    call = RELEASE_CALL.get(kind, "{fn}({var});").format(fn=name, var=arg)
    if kind == "sk_buff":
        # a qdisc's skb: .enqueue drops it onto its to_free list; other members may only free it
        params = parameter_names(ctx.src)
        if f.arg("member") == "Qdisc_ops.enqueue" and len(params) > 2 and params[2]:
            name, call = "bpf_qdisc_skb_drop", f"bpf_qdisc_skb_drop({arg}, {params[2]});"
        else:
            name, call = "bpf_kfree_skb", f"bpf_kfree_skb({arg});"
    return name, call


def leaked_iterator(ctx: Context) -> tuple[str, str] | None:
    """(iterator variable, its `_destroy` kfunc) when the reference is an open-coded iterator
    (`bpf_iter_num_new(&it, ...)`): the destroy takes the iterator's address."""
    kind = str(ctx.finding.arg("kind", ""))
    if not kind.startswith("iter:"):
        return None
    var = ctx.args.get("var", "").strip("'")
    destroy = f"bpf_iter_{kind[len('iter:'):]}_destroy"
    if not re.fullmatch(r"[A-Za-z_]\w*", var) or K.known_kfunc(destroy) is None:
        return None
    return var, destroy


def reserved_dynptr(ctx: Context) -> str | None:
    """`&ptr` when the reference is a ring-buffer dynptr (`bpf_ringbuf_reserve_dynptr(&rb, n, 0, &ptr)`):
    what the discard takes is the dynptr's address, the reserve's last argument."""
    name = "bpf_ringbuf_reserve_dynptr"
    acquired = ctx.insn("acquired")
    if acquired is None or ctx.finding.arg("kind") != "ringbuf":
        return None
    text = ctx.src.call_text(acquired, name)
    inner = text[len(name):].strip()[1:-1] if text.startswith(name + "(") else ""
    args, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
            continue
        depth += ch in "([{"
        depth -= ch in ")]}"
        cur += ch
    args.append(cur.strip())
    return args[3] if len(args) == 4 and args[3] else None


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


class _HeldReference(Handler):
    """A reference still held where it may not be: shows where it was acquired; fixes release it."""

    def related(self, ctx):
        return [(ctx.insn("acquired"), f"{ctx.args['what']} acquired here by {ctx.args['acquire_call']}", False)]

    def fix(self, ctx):
        dynptr = reserved_dynptr(ctx)
        if dynptr is not None:
            name = "bpf_ringbuf_discard_dynptr"
            return self.release(ctx, dynptr, name, f"{name}({dynptr}, 0);")
        iterator = leaked_iterator(ctx)
        if iterator is not None:
            var, name = iterator
            return self.release(ctx, var, name, f"{name}(&{var});")
        var = ctx.reference_variable() or ""
        release = release_statement(ctx, var)
        return self.release(ctx, var, *release) if release is not None else None

    def release(self, ctx: Context, var: str, name: str, call: str) -> Fix | None:
        raise NotImplementedError


class ReferenceLeak(_HeldReference):
    codes = (C.REFERENCE_LEAK,)

    def release(self, ctx, var, name, call):
        src, diag = ctx.src, ctx.diag
        title = f"Release '{var}' with {name}() before returning"
        lines = src.files.lines(diag.span.file) or []
        stmt = statement_span(src, diag.span)
        text = span_text(lines, stmt) if lines else ""
        m = re.match(r"^return\b\s*(.*?);?\s*$", text, re.S)
        if m and m.group(1) and re.search(rf"\b{re.escape(var)}\b", m.group(1)):
            # the return value still reads the object: compute it before releasing
            tmp = fresh_name(lines, "ret", stmt.line, src)
            rtype = _return_type(lines, stmt.line)
            return insert_before(src, diag.span, [f"{rtype} {tmp} = {m.group(1).strip()};", call], title,
                                 ctx.finding.code, replacement=f"return {tmp};")
        return insert_before(src, diag.span, [call], title, ctx.finding.code)


class LeakAtCall(_HeldReference):
    """A call that does not come back (`bpf_tail_call` on success, `bpf_throw`) with a reference held."""
    codes = (C.TAIL_CALL_LEAK, C.THROW_LEAK)
    WHAT = {C.TAIL_CALL_LEAK: "the tail call", C.THROW_LEAK: "bpf_throw()"}

    def release(self, ctx, var, name, call):
        src, diag, code = ctx.src, ctx.diag, ctx.finding.code
        title = f"Release '{var}' with {name}() before {self.WHAT[code]}"
        if code == C.TAIL_CALL_LEAK:
            # a failed tail call falls through: a release written right after it moves up instead
            moved = self._move_following_release(ctx, name, var, title)
            if moved is not None:
                return moved
        return insert_before(src, diag.span, [call], title, code)

    @staticmethod
    def _move_following_release(ctx: Context, name: str, var: str, title: str) -> Fix | None:
        src, diag = ctx.src, ctx.diag
        lines = src.files.lines(diag.span.file) or []
        stmt = statement_span(src, diag.span)
        nxt = stmt.end_line + 1
        while nxt <= len(lines) and not code_part(lines[nxt - 1]).strip():
            nxt += 1
        if nxt > len(lines):
            return None
        text = code_part(lines[nxt - 1])
        if not re.fullmatch(rf"\s*{re.escape(name)}\s*\(\s*{re.escape(var)}\s*(,[^;]*)?\)\s*;", text):
            return None
        col = len(indent_of(text).encode("utf-8")) + 1
        return move_before(src, Span(diag.span.file, nxt, col, nxt, len(text.encode("utf-8")) + 1), stmt.line,
                           title, ctx.finding.code)


class UseAfterRelease(Handler):
    codes = (C.USE_AFTER_RELEASE,)

    def related(self, ctx):
        return [(ctx.insn("released"), f"{ctx.args['release_call']} {ctx.args['released_words']} here", True),
                (ctx.insn("acquired"), f"acquired here by {ctx.args['acquire_call']}", False)]


class ReleasedOrMoved(Handler):
    codes = (C.NOT_REFERENCED_OR_TRUSTED, C.EXPECTED_ALLOCATED_OBJECT)

    def related(self, ctx):
        return [(ctx.insn("released"), f"{ctx.args['release_call']} released it here", True),
                (ctx.insn("inserted"), "ownership moved to the collection here", False)]


HANDLERS = (ReferenceLeak(), LeakAtCall(), UseAfterRelease(), ReleasedOrMoved())
