"""Scalar arithmetic and branch decisions over [umin, umax] / [smin, smax] ranges.

Enough precision to prune the branches the kernel prunes in ownership code: known constants,
NULL/zero tests, loop counters, masks. Anything else widens to "unknown", which is sound.
"""
from __future__ import annotations

from ..frontend import isa

from .domain import S64_MAX, S64_MIN, SCALAR, U64, UNKNOWN, Reg, scalar_const, scalar_range, scalar_signed, to_signed

U32 = (1 << 32) - 1
SIGNED_JUMPS = frozenset({isa.JSGT, isa.JSGE, isa.JSLT, isa.JSLE})


def low32(r: Reg) -> Reg:
    """The 32-bit subregister as a 64-bit scalar range."""
    if r.is_const:
        return scalar_const(r.const & U32)
    if r.umax <= U32:
        return r
    if r.lo32 is not None:
        view = scalar_range(*r.lo32)
    elif r.umin >> 32 == r.umax >> 32:
        view = scalar_range(r.umin & U32, r.umax & U32)     # one upper half: the low halves are in order
    else:
        view = scalar_range(0, U32)
    return view.evolve(s32=r.s32) if r.s32 is not None else view


def _withlow32(r: Reg, view: Reg) -> Reg:
    """`r` after a 32-bit comparison narrowed its low half to `view` (a zero-extended range,
    maybe with its signed range across 0)."""
    if r.is_const:
        return r     # a constant's low half is what it is (the comparison could only go one way)
    if r.umax <= U32:
        return view
    if view is r:
        return r
    lo32 = None if (view.umin, view.umax) == (0, U32) else (view.umin, view.umax)
    if lo32 == r.lo32 and view.s32 == r.s32:
        return r
    return r.evolve(lo32=lo32, s32=view.s32)


def _sext32(v: int) -> int:
    v &= U32
    return v - (1 << 32) if v >> 31 else v


def alu_scalar(op: int, dst: Reg, src: Reg, wide: bool, off: int = 0, imm: int = 0) -> Reg:
    if op == isa.END:
        return UNKNOWN if not dst.is_const else scalar_const(_byteswap(dst.const, imm, wide, off))
    if op == isa.MOV:
        if off in (8, 16, 32) and src.is_const:
            bits = off
            v = src.const & ((1 << bits) - 1)
            v = v - (1 << bits) if v >> (bits - 1) else v
            return scalar_const(v if wide else v & U32)
        if off in (8, 16, 32) and src.umax >= 1 << (off - 1):
            return UNKNOWN if wide else scalar_range(0, U32)     # the sign bit may be set
        if not wide:
            return low32(src)
        return src
    if not wide:
        dst, src = low32(dst), low32(src)
    if dst.is_const and src.is_const:
        v = _const_op(op, dst.const, src.const, wide, off)
        if v is None:
            return UNKNOWN if wide else scalar_range(0, U32)
        return scalar_const(v if wide else v & U32)
    if op == isa.ARSH and src.is_const:
        # a sign extension (`<<= 32; s>>= 32`, `(s64)(s32)x`) keeps a range that fits
        sh = src.const & (63 if wide else 31)
        if wide:
            return scalar_signed(dst.smin >> sh, dst.smax >> sh)
        if dst.umax <= 0x7FFFFFFF:
            return scalar_range(dst.umin >> sh, dst.umax >> sh)
        return scalar_range(0, U32)
    res = _range_op(op, dst, src, 64 if wide else 32)
    if not wide:
        if res.umax > U32:
            return scalar_range(0, U32)
    return res


def _byteswap(v: int, bits: int, wide: bool, off: int) -> int:
    if bits not in (16, 32, 64):
        return v
    n = bits // 8
    return int.from_bytes((v & ((1 << bits) - 1)).to_bytes(n, "little"), "big")


def _const_op(op: int, a: int, b: int, wide: bool, off: int) -> int | None:
    bits = 64 if wide else 32
    mask = (1 << bits) - 1
    a &= mask
    b &= mask
    sa = to_signed(a) if wide else _sext32(a)
    sb = to_signed(b) if wide else _sext32(b)
    if op == isa.ADD:
        return (a + b) & mask
    if op == isa.SUB:
        return (a - b) & mask
    if op == isa.MUL:
        return (a * b) & mask
    if op == isa.DIV:
        if b == 0:
            return 0
        if off == 1:
            q = abs(sa) // abs(sb)
            return (q if (sa < 0) == (sb < 0) else -q) & mask
        return a // b
    if op == isa.MOD:
        if b == 0:
            return a
        if off == 1:
            r = abs(sa) % abs(sb)
            return (r if sa >= 0 else -r) & mask
        return a % b
    if op == isa.OR:
        return a | b
    if op == isa.AND:
        return a & b
    if op == isa.XOR:
        return a ^ b
    if op == isa.LSH:
        return (a << (b & (bits - 1))) & mask
    if op == isa.RSH:
        return a >> (b & (bits - 1))
    if op == isa.ARSH:
        return (sa >> (b & (bits - 1))) & mask
    if op == isa.NEG:
        return (-a) & mask
    return None


def scalar_bounds(umin: int, umax: int, smin: int, smax: int) -> Reg:
    """A number known by both an unsigned and a signed range, each narrowed by what the other
    says where it does not cross a sign or wrap boundary (the kernel's reg_bounds_sync())."""
    if smin >= 0:
        umin, umax = max(umin, smin), min(umax, smax)
    elif smax < 0:
        umin, umax = max(umin, smin + (1 << 64)), min(umax, smax + (1 << 64))
    if umax <= S64_MAX:
        smin, smax = max(smin, umin), min(smax, umax)
    elif umin > S64_MAX:
        smin, smax = max(smin, umin - (1 << 64)), min(smax, umax - (1 << 64))
    if umin > umax or smin > smax:
        return UNKNOWN      # no value: a path the comparisons contradict; say nothing
    return Reg(SCALAR, umin=umin, umax=umax, smin=smin, smax=smax)


def _add_sub(op: int, d: Reg, s: Reg, bits: int) -> Reg:
    """`d + s` or `d - s` on `bits`-bit numbers: a range whose ends both wrap (adding -32 is
    adding 2**64 - 32) wraps whole; the signed ranges add as they are
    (scalar_min_max_add()/_sub())."""
    top = 1 << bits
    if op == isa.ADD:
        lo, hi = d.umin + s.umin, d.umax + s.umax
    else:
        lo, hi = d.umin - s.umax, d.umax - s.umin
    if lo >= top and hi >= top or lo < 0 and hi < 0:
        lo, hi = lo % top, hi % top
    elif lo < 0 or hi >= top:
        lo, hi = 0, top - 1
    if bits == 32:
        return scalar_range(lo, hi)
    if op == isa.ADD:
        slo, shi = d.smin + s.smin, d.smax + s.smax
    else:
        slo, shi = d.smin - s.smax, d.smax - s.smin
    if slo < S64_MIN or shi > S64_MAX:
        slo, shi = S64_MIN, S64_MAX
    return scalar_bounds(lo, hi, slo, shi)


def _range_op(op: int, d: Reg, s: Reg, bits: int = 64) -> Reg:
    if op in (isa.ADD, isa.SUB):
        return _add_sub(op, d, s, bits)
    if op == isa.AND:
        # a constant mask keeps only its bits below the other side's highest (`(x >> 3) & ~7` on
        # x < 512 is at most 56), as the kernel's tnum does
        hi = min(d.umax, s.umax)
        for k, other in ((s, d), (d, s)):
            if k.is_const:
                hi = min(hi, k.const & ((1 << other.umax.bit_length()) - 1))
        return scalar_range(0, hi)
    if op == isa.MOD and s.is_const and s.const:
        return scalar_range(0, min(d.umax, s.const - 1))
    if op in (isa.LSH, isa.RSH) and s.is_const and s.const >= bits:
        return UNKNOWN      # a shift by the width or more: the kernel knows nothing of the result
    if op == isa.LSH and s.is_const:
        r = scalar_range(d.umin << s.const, d.umax << s.const) if d.umax << s.const <= U64 else UNKNOWN
        # shifted past the low half, which is now all zeros (the kernel's tnum knows it)
        return r.evolve(lo32=(0, 0)) if s.const >= 32 and bits == 64 and not r.is_const else r
    if op == isa.RSH and s.is_const:
        return scalar_range(d.umin >> s.const, d.umax >> s.const)
    if op == isa.DIV and s.is_const and s.const:
        return scalar_range(d.umin // s.const, d.umax // s.const)
    if op == isa.MUL and d.umax * s.umax <= U64:
        return scalar_range(d.umin * s.umin, d.umax * s.umax)
    if op == isa.OR and d.umax <= U32 and s.umax <= U32:
        return scalar_range(max(d.umin, s.umin), (1 << max(d.umax, s.umax).bit_length()) - 1)
    return UNKNOWN


def branch_outcome(op: int, d: Reg, s: Reg, wide: bool) -> bool | None:
    """True: always taken; False: never taken; None: both possible."""
    if not wide:
        d, s = low32(d), low32(s)
        if d.is_const and s.is_const:
            return _compare(op, d.const, s.const, 32)
        if op in SIGNED_JUMPS:
            # as 32-bit signed numbers: a range that crosses 0x80000000 is every one
            (dlo, dhi), (slo, shi) = signed32(d), signed32(s)
            return _signed_outcome(op, dlo, dhi, slo, shi)
    if d.is_const and s.is_const:
        return _compare(op, d.const, s.const, 64)
    if op == isa.JEQ:
        if d.umax < s.umin or d.umin > s.umax or d.smax < s.smin or d.smin > s.smax:
            return False
    elif op == isa.JNE:
        if d.umax < s.umin or d.umin > s.umax or d.smax < s.smin or d.smin > s.smax:
            return True
    elif op == isa.JGT:
        if d.umin > s.umax:
            return True
        if d.umax <= s.umin:
            return False
    elif op == isa.JGE:
        if d.umin >= s.umax:
            return True
        if d.umax < s.umin:
            return False
    elif op == isa.JLT:
        if d.umax < s.umin:
            return True
        if d.umin >= s.umax:
            return False
    elif op == isa.JLE:
        if d.umax <= s.umin:
            return True
        if d.umin > s.umax:
            return False
    elif op in SIGNED_JUMPS:
        return _signed_outcome(op, d.smin, d.smax, s.smin, s.smax)
    elif op == isa.JSET:
        if s.is_const and d.umax < (s.const & -s.const if s.const else 1):
            return False
    return None


def _signed_outcome(op: int, dlo: int, dhi: int, slo: int, shi: int) -> bool | None:
    if op == isa.JSGT:
        return True if dlo > shi else False if dhi <= slo else None
    if op == isa.JSGE:
        return True if dlo >= shi else False if dhi < slo else None
    if op == isa.JSLT:
        return True if dhi < slo else False if dlo >= shi else None
    return True if dhi <= slo else False if dlo > shi else None    # JSLE


def signed32(r: Reg) -> tuple[int, int]:
    """The signed 32-bit range of a register holding a 32-bit value (umax <= U32)."""
    if r.umax <= 0x7FFFFFFF:
        return r.umin, r.umax
    if r.umin >= 0x80000000:
        return r.umin - (1 << 32), r.umax - (1 << 32)
    if r.s32 is not None:
        return r.s32
    return -(1 << 31), (1 << 31) - 1


def _clip_s32(r: Reg, lo: int, hi: int) -> Reg:
    """`r` (a 32-bit value) narrowed to the signed 32-bit range [lo, hi]: a range across 0 is
    kept beside the unsigned one (`Reg.s32`)."""
    rlo, rhi = signed32(r)
    lo, hi = max(lo, rlo), min(hi, rhi)
    if lo > hi:
        return r
    if lo >= 0:
        return _clip(r, lo, hi)
    if hi < 0:
        return _clip(r, lo + (1 << 32), hi + (1 << 32))
    if (lo, hi) == (rlo, rhi):
        return r
    return r.evolve(s32=(lo, hi))     # across 0: [0, hi] and [lo, -1] as unsigned, kept as such


def _compare(op: int, a: int, b: int, bits: int) -> bool | None:
    mask = (1 << bits) - 1
    a &= mask
    b &= mask
    sa = a - (1 << bits) if a >> (bits - 1) else a
    sb = b - (1 << bits) if b >> (bits - 1) else b
    return {
        isa.JEQ: a == b, isa.JNE: a != b, isa.JGT: a > b, isa.JGE: a >= b, isa.JLT: a < b,
        isa.JLE: a <= b, isa.JSGT: sa > sb, isa.JSGE: sa >= sb, isa.JSLT: sa < sb, isa.JSLE: sa <= sb,
        isa.JSET: bool(a & b),
    }.get(op)


def _clip(r: Reg, umin: int, umax: int) -> Reg:
    lo, hi = max(r.umin, umin), min(r.umax, umax)
    if lo > hi:
        return r
    if r.umin == lo and r.umax == hi:
        return r
    return scalar_bounds(lo, hi, r.smin, r.smax)     # what the signed range knew still holds


def _clip_signed(r: Reg, smin: int, smax: int) -> Reg:
    lo, hi = max(r.smin, smin), min(r.smax, smax)
    if lo > hi:
        return r
    if r.smin == lo and r.smax == hi:
        return r
    return scalar_bounds(r.umin, r.umax, lo, hi)


def refine_branch(op: int, d: Reg, s: Reg, wide: bool, taken: bool) -> tuple[Reg, Reg]:
    """Narrow both operands for the taken (or fall-through) side of a comparison."""
    if not wide:
        # on the low halves; a wider register keeps what its low half became (lo32)
        dv, sv = low32(d), low32(s)
        rd, rs = _refine(op, dv, sv, False, taken)
        return (d if rd is dv else _withlow32(d, rd)), (s if rs is sv else _withlow32(s, rs))
    return _refine(op, d, s, True, taken)


def _refine(op: int, d: Reg, s: Reg, wide: bool, taken: bool) -> tuple[Reg, Reg]:
    if not taken:
        op = {isa.JEQ: isa.JNE, isa.JNE: isa.JEQ, isa.JGT: isa.JLE, isa.JLE: isa.JGT, isa.JGE: isa.JLT,
              isa.JLT: isa.JGE, isa.JSGT: isa.JSLE, isa.JSLE: isa.JSGT, isa.JSGE: isa.JSLT,
              isa.JSLT: isa.JSGE}.get(op)
        if op is None:
            return d, s
    if op == isa.JEQ:
        if s.is_const:
            return scalar_const(s.const), s
        if d.is_const:
            return d, scalar_const(d.const)
        return d, s
    if op == isa.JNE:
        if s.is_const and d.umin == s.const and d.umax > d.umin:
            return _clip(d, s.const + 1, U64), s
        if s.is_const and d.umax == s.const and d.umax > d.umin:
            return _clip(d, 0, s.const - 1), s
        return d, s
    if op == isa.JGT:
        return _clip(d, s.umin + 1, U64), _clip(s, 0, max(d.umax - 1, 0))
    if op == isa.JGE:
        return _clip(d, s.umin, U64), _clip(s, 0, d.umax)
    if op == isa.JLT:
        return _clip(d, 0, max(s.umax - 1, 0)), _clip(s, d.umin + 1, U64)
    if op == isa.JLE:
        return _clip(d, 0, s.umax), _clip(s, d.umin, U64)
    if op in SIGNED_JUMPS:
        if wide:
            slo, shi, clip, top, bottom = s.smin, s.smax, _clip_signed, S64_MAX, S64_MIN
        else:
            (slo, shi), clip, top, bottom = signed32(s), _clip_s32, (1 << 31) - 1, -(1 << 31)
        if op == isa.JSGT:
            return clip(d, slo + 1, top), s
        if op == isa.JSGE:
            return clip(d, slo, top), s
        if op == isa.JSLT:
            return clip(d, bottom, shi - 1), s
        return clip(d, bottom, shi), s
    return d, s
