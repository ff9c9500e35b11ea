"""Static register liveness, so state pruning can ignore registers nobody reads again.

A backward dataflow over each function of the linked program. Calls read r1-r5 and write
r0-r5; exit reads r0; a BPF-to-BPF call is treated like a helper call (its callee's reads are
its own function's business), which is what the kernel's per-frame liveness does too.
"""
from __future__ import annotations

from ..frontend import isa
from ..frontend.isa import Cls, Insn
from ..frontend.objfile import Program

ALL = frozenset(range(10))
CALL_USES = frozenset({1, 2, 3, 4, 5})
CALL_DEFS = frozenset({0, 1, 2, 3, 4, 5})


def _uses_defs(insn: Insn) -> tuple[frozenset, frozenset]:
    cls = insn.cls
    if cls in (Cls.ALU, Cls.ALU64):
        uses = set()
        if insn.op != isa.MOV:
            uses.add(insn.dst)
        if insn.uses_reg_src and insn.op not in (isa.END, isa.NEG):
            uses.add(insn.src)
        return frozenset(uses), frozenset({insn.dst})
    if cls == Cls.LDX:
        return frozenset({insn.src}), frozenset({insn.dst})
    if cls == Cls.ST:
        return frozenset({insn.dst}), frozenset()
    if cls == Cls.STX:
        if insn.mode == isa.MODE_ATOMIC:
            defs = {insn.src} if insn.imm & isa.FETCH else set()
            if insn.imm == isa.ATOMIC_CMPXCHG:
                return frozenset({insn.dst, insn.src, 0}), frozenset({0})
            return frozenset({insn.dst, insn.src}), frozenset(defs)
        return frozenset({insn.dst, insn.src}), frozenset()
    if cls == Cls.LD:
        if insn.is_ld_imm64:
            return frozenset(), frozenset({insn.dst})
        return frozenset({6} | ({insn.src} if insn.mode == isa.MODE_IND else set())), CALL_DEFS
    if insn.is_call:
        return CALL_USES, CALL_DEFS
    if insn.is_exit:
        return frozenset({0}), frozenset()
    if insn.is_jump and insn.op not in (isa.JA, isa.JCOND):
        uses = {insn.dst}
        if insn.uses_reg_src:
            uses.add(insn.src)
        return frozenset(uses), frozenset()
    return frozenset(), frozenset()


def live_registers(prog: Program) -> dict[int, frozenset]:
    """Instruction index -> registers live on entry to it."""
    insns = {i.idx: i for i in prog.insns}
    succ: dict[int, list[int]] = {}
    for i in prog.insns:
        fn = prog.function_at(i.idx)
        end = fn.end if fn else len(prog.origins)
        nxt = i.idx + i.slots
        if i.is_exit:
            succ[i.idx] = []
        elif i.is_jump and i.op == isa.JA:
            succ[i.idx] = [i.jump_target]
        elif i.is_jump:
            succ[i.idx] = [i.jump_target, nxt]
        else:
            succ[i.idx] = [nxt] if nxt < end else []
    ud = {idx: _uses_defs(i) for idx, i in insns.items()}
    live_in: dict[int, frozenset] = {idx: frozenset() for idx in insns}
    order = sorted(insns, reverse=True)
    changed = True
    rounds = 0
    while changed and rounds < 200:
        changed = False
        rounds += 1
        for idx in order:
            out = frozenset().union(*(live_in.get(s, ALL) for s in succ[idx])) if succ[idx] else frozenset()
            uses, defs = ud[idx]
            new = uses | (out - defs)
            if new != live_in[idx]:
                live_in[idx] = new
                changed = True
    if changed:  # did not converge: everything is live (safe)
        return {idx: ALL for idx in insns}
    return live_in
