"""BPF instruction decoding and formatting (ISA v1-v4, as in Documentation/bpf/standardization).

An instruction occupies one 8-byte slot, except ``ld_imm64`` which takes two; indices are
slot numbers, the unit jumps, line info and the kernel's log all use.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum


class Cls(IntEnum):
    LD = 0
    LDX = 1
    ST = 2
    STX = 3
    ALU = 4
    JMP = 5
    JMP32 = 6
    ALU64 = 7


# ALU operations (opcode & 0xf0)
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR, MOV, ARSH, END = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0)
# Jump operations (opcode & 0xf0)
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, CALL, EXIT, JLT, JLE, JSLT, JSLE, JCOND = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0)
# Memory modes (opcode & 0xe0) and sizes (opcode & 0x18)
MODE_IMM, MODE_ABS, MODE_IND, MODE_MEM, MODE_MEMSX, MODE_ATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0
SIZE_BYTES = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}
# Atomic operations (imm of STX|ATOMIC)
FETCH = 0x01
ATOMIC_XCHG, ATOMIC_CMPXCHG = 0xE1, 0xF1
LOAD_ACQ, STORE_REL = 0x100, 0x110

# src_reg of CALL and LD_IMM64: what the immediate means
PSEUDO_CALL = 1          # call: BPF-to-BPF call, imm = relative slot offset
PSEUDO_KFUNC_CALL = 2    # call: kernel function, imm = BTF id (a relocation in objects)
PSEUDO_MAP_FD = 1        # ld_imm64: map
PSEUDO_MAP_VALUE = 2     # ld_imm64: address inside a map value (global data)
PSEUDO_BTF_ID = 3        # ld_imm64: kernel variable (__ksym)
PSEUDO_FUNC = 4          # ld_imm64: address of a subprogram (callbacks)

ALU_NAMES = {ADD: "+=", SUB: "-=", MUL: "*=", DIV: "/=", OR: "|=", AND: "&=", LSH: "<<=",
             RSH: ">>=", MOD: "%=", XOR: "^=", MOV: "=", ARSH: "s>>="}
JMP_NAMES = {JEQ: "==", JGT: ">", JGE: ">=", JSET: "&", JNE: "!=", JSGT: "s>", JSGE: "s>=",
             JLT: "<", JLE: "<=", JSLT: "s<", JSLE: "s<="}
SIZE_NAMES = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}


class DecodeError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Insn:
    idx: int
    code: int
    dst: int
    src: int
    off: int
    imm: int
    imm64: int = 0          # full 64-bit immediate of ld_imm64

    @property
    def cls(self) -> int:
        return self.code & 0x07

    @property
    def op(self) -> int:
        return self.code & 0xF0

    @property
    def uses_reg_src(self) -> bool:
        return bool(self.code & 0x08)

    @property
    def mode(self) -> int:
        return self.code & 0xE0

    @property
    def size(self) -> int:
        """Access size in bytes of a load or store."""
        return SIZE_BYTES[self.code & 0x18]

    @property
    def slots(self) -> int:
        return 2 if self.is_ld_imm64 else 1

    @property
    def is_ld_imm64(self) -> bool:
        return self.code == 0x18

    @property
    def is_call(self) -> bool:
        return self.cls == Cls.JMP and self.op == CALL

    @property
    def is_exit(self) -> bool:
        return self.cls == Cls.JMP and self.op == EXIT

    @property
    def is_helper_call(self) -> bool:
        return self.is_call and self.src == 0

    @property
    def is_subprog_call(self) -> bool:
        return self.is_call and self.src == PSEUDO_CALL

    @property
    def is_kfunc_call(self) -> bool:
        return self.is_call and self.src == PSEUDO_KFUNC_CALL

    @property
    def is_jump(self) -> bool:
        """Any control transfer other than call and exit."""
        return self.cls in (Cls.JMP, Cls.JMP32) and self.op not in (CALL, EXIT)

    @property
    def is_cond_jump(self) -> bool:
        return self.is_jump and self.op not in (JA,) and not (self.op == JCOND)

    @property
    def jump_target(self) -> int:
        """Slot index a jump goes to (gotol keeps its offset in imm)."""
        if self.cls == Cls.JMP32 and self.op == JA:
            return self.idx + self.imm + 1
        return self.idx + self.off + 1


def decode(data: bytes, first_index: int = 0) -> list[Insn]:
    """Decode a section's bytes. The second slot of ld_imm64 produces no Insn."""
    if len(data) % 8:
        raise DecodeError(f"code size {len(data)} is not a multiple of 8")
    out: list[Insn] = []
    raw = list(struct.iter_unpack("<BBhi", data))
    i = 0
    while i < len(raw):
        code, regs, off, imm = raw[i]
        dst, src = regs & 0x0F, regs >> 4
        if code == 0x18:
            if i + 1 >= len(raw):
                raise DecodeError(f"insn {first_index + i}: ld_imm64 is missing its second half")
            imm64 = (imm & 0xFFFFFFFF) | ((raw[i + 1][3] & 0xFFFFFFFF) << 32)
            out.append(Insn(first_index + i, code, dst, src, off, imm, imm64))
            i += 2
            continue
        out.append(Insn(first_index + i, code, dst, src, off, imm))
        i += 1
    return out


def _reg(n: int, wide: bool) -> str:
    return f"r{n}" if wide else f"w{n}"


def format_insn(insn: Insn, target_name: str | None = None) -> str:
    """Human form close to llvm-objdump's, e.g. ``*(u32 *)(r0 + 0) = r1``."""
    c, cls = insn.code, insn.cls
    if insn.is_ld_imm64:
        return f"r{insn.dst} = {target_name or hex(insn.imm64)} ll"
    if cls in (Cls.ALU, Cls.ALU64):
        wide = cls == Cls.ALU64
        d = _reg(insn.dst, wide)
        s = _reg(insn.src, wide) if insn.uses_reg_src else str(insn.imm)
        op = insn.op
        if op == NEG:
            return f"{d} = -{d}"
        if op == END:
            if wide:
                return f"{d} = bswap{insn.imm}({d})"
            return f"{d} = {'be' if insn.uses_reg_src else 'le'}{insn.imm} {d}"
        if op == MOV and insn.off in (8, 16, 32):
            return f"{d} = (s{insn.off}){s}"
        if op in (DIV, MOD) and insn.off == 1:
            return f"{d} s{ALU_NAMES[op]} {s}"
        name = ALU_NAMES.get(op)
        if name is None:
            return f"<invalid alu 0x{c:02x}>"
        return f"{d} {name} {s}"
    if cls in (Cls.JMP, Cls.JMP32):
        op = insn.op
        if op == CALL:
            if insn.is_kfunc_call or insn.is_helper_call:
                return f"call {target_name or insn.imm}"
            return f"call {target_name or f'pc{insn.imm:+d}'}"
        if op == EXIT:
            return "exit"
        if op == JA:
            word = "gotol" if cls == Cls.JMP32 else "goto"
            return f"{word} {insn.jump_target - insn.idx - 1:+d}"
        if op == JCOND:
            return f"may_goto {insn.off:+d}"
        wide = cls == Cls.JMP
        d = _reg(insn.dst, wide)
        s = _reg(insn.src, wide) if insn.uses_reg_src else str(insn.imm)
        name = JMP_NAMES.get(op)
        if name is None:
            return f"<invalid jmp 0x{c:02x}>"
        return f"if {d} {name} {s} goto {insn.off:+d}"
    if cls == Cls.LDX:
        sz = SIZE_NAMES[insn.size]
        if insn.mode == MODE_MEMSX:
            sz = "s" + sz[1:]
        return f"r{insn.dst} = *({sz} *)(r{insn.src} {insn.off:+d})"
    if cls == Cls.ST:
        return f"*({SIZE_NAMES[insn.size]} *)(r{insn.dst} {insn.off:+d}) = {insn.imm}"
    if cls == Cls.STX:
        sz = SIZE_NAMES[insn.size]
        wide = insn.size == 8
        if insn.mode == MODE_ATOMIC:
            mem = f"*({sz} *)(r{insn.dst} {insn.off:+d})"
            s = _reg(insn.src, wide)
            if insn.imm == ATOMIC_XCHG:
                return f"{s} = xchg({mem}, {s})"
            if insn.imm == ATOMIC_CMPXCHG:
                return f"r0 = cmpxchg({mem}, r0, {s})"
            if insn.imm == LOAD_ACQ:
                return f"{_reg(insn.dst, wide)} = load_acquire(({sz} *)(r{insn.src} {insn.off:+d}))"
            if insn.imm == STORE_REL:
                return f"store_release({mem}, {s})"
            base = insn.imm & ~FETCH
            name = ALU_NAMES.get(base, "?=")
            if insn.imm & FETCH:
                return f"{s} = atomic_fetch_{name[:-1]}({mem}, {s})"
            return f"lock {mem} {name} {s}"
        return f"*({sz} *)(r{insn.dst} {insn.off:+d}) = r{insn.src}"
    if cls == Cls.LD:
        if insn.mode in (MODE_ABS, MODE_IND):
            sz = SIZE_NAMES[insn.size]
            where = f"r{insn.src} + {insn.imm}" if insn.mode == MODE_IND else str(insn.imm)
            return f"r0 = *({sz} *)skb[{where}]"
    return f"<unknown opcode 0x{c:02x}>"
