"""Critical sections: `bpf_spin_lock` and RCU read-side sections held too long or misused.

| code | fix |
|---|---|
| lock-held-at-exit | `bpf_spin_unlock(&lock);` before the return |
| rcu-held-at-exit | `bpf_rcu_read_unlock();` before the return |
| call-under-lock | the statement making the call moves out of the critical section: a release (`bpf_obj_drop(e)`) after the `bpf_spin_unlock`, anything else before the `bpf_spin_lock` |
"""
from __future__ import annotations

import re

from ... import codes as C
from ...verifier import kfuncs as K
from ..model import Fix, Span, TextEdit
from .base import Context, Handler
from .edits import (CONTROL, code_part, enclosing_statement, indent_of, insert_before, move_before, span_text,
                    words_in)


def _quoted_lock(ctx: Context) -> str | None:
    lock = ctx.args.get("lock", "")
    return lock[1:-1] if lock.startswith("'") and lock.endswith("'") else None


class LockHeldAtExit(Handler):
    codes = (C.LOCK_HELD_AT_EXIT,)

    def related(self, ctx):
        return [(ctx.insn("locked"), f"{ctx.args['lock']} taken here", True)]

    def fix(self, ctx):
        lock = _quoted_lock(ctx)
        if lock is None:
            return None
        call = f"bpf_spin_unlock({lock});"
        return insert_before(ctx.src, ctx.diag.span, [call], f"Call {call[:-1]} before returning", ctx.finding.code)


class LockMisuse(Handler):
    codes = (C.WRONG_LOCK, C.UNLOCK_DIFFERENT_LOCK)

    def related(self, ctx):
        return [(ctx.insn("locked"), f"{ctx.args['lock']} taken here", True)]


class CallUnderLock(Handler):
    codes = (C.CALL_UNDER_LOCK,)

    def related(self, ctx):
        return [(ctx.insn("locked"), f"{ctx.args['lock']} taken here", True)]

    def fix(self, ctx):
        lock_line = ctx.line_of("locked")
        if lock_line is None:
            return None
        func = ctx.finding.arg("func", "")
        sem = K.known_kfunc(func) if func else None
        name = ctx.args.get("call", "the call")
        if sem is not None and sem.has(K.RELEASE):
            # a release moves down: the critical section may still use the object
            return self._move_after_unlock(ctx, f"Move {name} after the bpf_spin_unlock()")
        return move_before(ctx.src, ctx.diag.span, lock_line, f"Move {name} before the bpf_spin_lock()",
                           ctx.finding.code)

    @staticmethod
    def _move_after_unlock(ctx: Context, title: str) -> Fix | None:
        src, span = ctx.src, ctx.diag.span
        lines = src.files.lines(span.file) or []
        stmt = enclosing_statement(src, span)
        if stmt is None:
            return None
        indent = indent_of(lines[stmt.line - 1])
        if stmt.column != len(indent.encode("utf-8")) + 1:
            return None
        text = span_text(lines, stmt)
        if CONTROL.search(code_part(text)) or "{" in text:
            return None
        unlock = re.compile(r"^\s*bpf_spin_unlock\s*\(.*\)\s*;\s*$")
        mentioned = {w for w in words_in([text]) if not re.search(rf"\b{w}\s*\(", text)}
        for ln in range(stmt.end_line + 1, len(lines) + 1):
            code = code_part(lines[ln - 1])
            if unlock.match(code) and indent_of(code) == indent:
                own = "".join(x + "\n" for x in lines[stmt.line - 1:stmt.end_line])
                return Fix(title, (TextEdit(Span(span.file, stmt.line, 1, stmt.end_line + 1, 1), ""),
                                   TextEdit(Span(span.file, ln + 1, 1, ln + 1, 1), own)), ctx.finding.code)
            if code.strip() and (len(indent_of(code)) < len(indent) or code.strip().startswith("}")
                                 or CONTROL.search(code) or mentioned & words_in([code])):
                return None     # the object is still used, or the block ends, before the unlock
        return None


class RcuHeldAtExit(Handler):
    codes = (C.RCU_HELD_AT_EXIT,)

    def related(self, ctx):
        return [(ctx.insn("rcu_locked"), "RCU read-side section opened here", True)]

    def fix(self, ctx):
        return insert_before(ctx.src, ctx.diag.span, ["bpf_rcu_read_unlock();"],
                             "Call bpf_rcu_read_unlock() before returning", ctx.finding.code)


HANDLERS = (LockHeldAtExit(), LockMisuse(), CallUnderLock(), RcuHeldAtExit())
