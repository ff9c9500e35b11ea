"""Pointers that may be NULL where the kernel needs them checked.

| code | fix |
|---|---|
| null-deref, null-arg, null-ptr-arith, helper-null-arg, modified-null-ptr | `if (!e) return 0;` after the acquiring statement (the program type's neutral return value) |
"""
from __future__ import annotations

from ... import codes as C
from .base import NULL_READ, Handler
from .edits import insert_after_statement

# Per program type, the "nothing happened" return value for an inserted NULL check.
NEUTRAL_RETURN = {"xdp": "XDP_PASS", "sched_cls": "0", "sched_act": "0", "cgroup_skb": "1",
                  "socket_filter": "0"}


class MaybeNull(Handler):
    codes = (C.NULL_DEREF, C.NULL_ARG, C.NULL_PTR_ARITH, C.HELPER_NULL_ARG, C.MODIFIED_NULL_PTR)

    def related(self, ctx):
        if ctx.args.get("null_source") == NULL_READ:
            return [(ctx.insn("acquired"), "read here, it may be NULL", False)]
        return [(ctx.insn("acquired"), f"{ctx.args['acquire_call']} may return NULL", False)]

    def fix(self, ctx):
        acquired = ctx.insn("acquired")
        var = ctx.reference_variable()
        if acquired is None or not var:
            return None
        place = ctx.src.place(acquired)
        if place is None:
            return None
        ret = NEUTRAL_RETURN.get(ctx.src.prog.prog_type, "0")
        return insert_after_statement(ctx.src, place.line, place.file, [f"if (!{var})", f"return {ret};"],
                                      f"Check '{var}' for NULL after "
                                      + ("reading it" if ctx.args.get("null_source") == NULL_READ else "the call"),
                                      ctx.finding.code, col=place.col)


HANDLERS = (MaybeNull(),)
