"""The scalar domain is sound: every concrete result of an ALU operation on values inside two
ranges lies inside the range `alu_scalar` gives, and every pair of values that takes a branch
lies inside the ranges `refine_branch` leaves on that side.

A range that is too narrow is how a verifier kills a live path or proves an access safe that is
not; with linked copies it also spreads to every copy. This checks both widths against
concrete 64- and 32-bit arithmetic on ranges near the edges (0, 2**31, 2**32, 2**63, 2**64)."""
from __future__ import annotations

import random

from bpf_lsp.frontend import isa
from bpf_lsp.verifier.domain import S64_MAX, S64_MIN, U64, scalar_const, to_signed
from bpf_lsp.verifier.scalars import U32, alu_scalar, low32, refine_branch, scalar_bounds

EDGES = (0, 1, 7, 63, 64, 255, 65535, (1 << 31) - 1, 1 << 31, U32, U32 + 1, S64_MAX, 1 << 63, U64 - 63, U64)
ALU = (isa.ADD, isa.SUB, isa.AND, isa.OR, isa.LSH, isa.RSH, isa.MUL, isa.MOD, isa.DIV)
JUMPS = (isa.JGT, isa.JGE, isa.JLT, isa.JLE, isa.JSGT, isa.JSGE, isa.JSLT, isa.JSLE, isa.JEQ, isa.JNE)


def _contains(r, v: int) -> bool:
    v &= U64
    if r.s32 is not None and not r.s32[0] <= (v & U32) - ((v & (1 << 31)) << 1) <= r.s32[1]:
        return False
    return r.umin <= v <= r.umax and r.smin <= to_signed(v) <= r.smax


def _range(rnd: random.Random):
    pick = lambda: rnd.choice(EDGES) if rnd.random() < 0.7 else rnd.getrandbits(rnd.choice((8, 32, 64)))  # noqa: E731
    a, b = sorted((pick(), pick()))
    if rnd.random() < 0.5:
        return scalar_bounds(a, b, S64_MIN, S64_MAX)
    lo, hi = sorted((to_signed(a), to_signed(b)))
    return scalar_bounds(0, U64, lo, hi)


def _values(rnd: random.Random, r, n: int) -> list[int]:
    out = []
    for _ in range(4 * n):
        v = rnd.randint(r.umin, r.umax) if rnd.random() < 0.5 else rnd.randint(r.smin, r.smax) & U64
        if _contains(r, v):
            out.append(v)
            if len(out) == n:
                break
    return out


def _alu(op: int, a: int, b: int, bits: int) -> int:
    m = (1 << bits) - 1
    a, b = a & m, b & m
    return {isa.ADD: a + b, isa.SUB: a - b, isa.AND: a & b, isa.OR: a | b, isa.LSH: a << (b & (bits - 1)),
            isa.RSH: a >> (b & (bits - 1)), isa.MUL: a * b, isa.MOD: a % b if b else a,
            isa.DIV: a // b if b else 0}[op] & m


def _taken(op: int, a: int, b: int, bits: int) -> bool:
    m = (1 << bits) - 1
    a, b = a & m, b & m
    sa, sb = (x - (1 << bits) if x >> (bits - 1) else x for x in (a, b))
    return {isa.JGT: a > b, isa.JGE: a >= b, isa.JLT: a < b, isa.JLE: a <= b, isa.JSGT: sa > sb,
            isa.JSGE: sa >= sb, isa.JSLT: sa < sb, isa.JSLE: sa <= sb, isa.JEQ: a == b, isa.JNE: a != b}[op]


def test_alu_results_contain_every_concrete_result():
    rnd = random.Random(1)
    wrong = []
    for _ in range(6000):
        d, s = _range(rnd), _range(rnd)
        if rnd.random() < 0.4:
            s = scalar_const(rnd.choice((0, 1, 3, 8, 32, 63, U64 - 31, U64 - 7, U32 - 7, rnd.getrandbits(64))))
        op, wide = rnd.choice(ALU), rnd.random() < 0.6
        res = alu_scalar(op, d, s, wide)
        for a in _values(rnd, d, 4):
            for b in _values(rnd, s, 2):
                v = _alu(op, a, b, 64 if wide else 32)
                if not _contains(res, v) or not _contains(low32(res), v & U32):
                    wrong.append((op, wide, a, b, (res.umin, res.umax, res.smin, res.smax)))
    assert wrong[:5] == []


def test_branch_refinement_keeps_every_pair_that_takes_the_branch():
    rnd = random.Random(2)
    wrong = []
    for _ in range(1500):
        d, s = _range(rnd), _range(rnd)
        if rnd.random() < 0.4:
            s = scalar_const(rnd.choice(EDGES))
        wide = rnd.random() < 0.6
        for op in JUMPS:
            for taken in (True, False):
                rd, rs = refine_branch(op, d, s, wide, taken)
                for a in _values(rnd, d, 2):
                    for b in _values(rnd, s, 2):
                        if _taken(op, a, b, 64 if wide else 32) == taken and not (_contains(rd, a) and _contains(rs, b)):
                            wrong.append((op, wide, taken, a, b))
    assert wrong[:5] == []
