"""DWARF variable locations for BPF objects: which variable is in which register or stack slot
at which instruction.

The verifier works on registers and stack slots; diagnostics want to say "`e`" instead of
"R0". This module reads the DWARF that `clang -g` emits and answers, for every formal
parameter and local variable (including those of inlined functions), the instruction ranges
where its value is known to live in a register `rN` or at `r10 + off` on the stack.

Why this is more than "call pyelftools":

* BPF objects are relocatable (ET_REL) and every program lives in its own section (`tc`,
  `tp_btf/task_newtask`, static subprograms in `.text`), all starting at address 0. A DWARF
  address therefore only means something together with the section it points into, and that
  is recorded solely by the relocation against the debug section (`.rel.debug_addr` etc.).
  pyelftools knows no BPF relocation types, and its location/range list parsers return bare
  numbers that have lost the slot the relocation was attached to. So we resolve addresses
  ourselves: an address read at offset X of debug section S is `symbol.value + addend` in
  the section of the symbol that the relocation at S+X names.
* Speed. An object that touches `struct task_struct` carries ~25k DIEs of kernel types;
  pyelftools needs over a second to parse them, and we need almost none of them. Our reader
  walks the DIEs once with precomputed sizes, decodes only subprograms, and decodes types
  on demand when a variable refers to one. pyelftools is still what reads the ELF.
* clang (at least through 19) emits wrong `DW_OP_fbreg` / `DW_OP_breg10` offsets for BPF:
  the generic `getFrameIndexReference` adds the frame size, so a slot the code addresses as
  `r10 - 4` is described as `fbreg +4` (fixed upstream in llvm/llvm-project#204722, which
  emits the true negative offset). `_StackFrame` recovers the real offset.

Units: `lo`/`hi` are instruction indices (8-byte slots) within the function's ELF section,
`[lo, hi)`; `stack_off` is r10-relative and negative.

Failure policy: malformed or truncated DWARF raises `DwarfError` (a ValueError) and nothing
else; every loop is bounded by the size of the data it walks. Things that are well-formed but
outside what we model are skipped silently: a location that is a constant or computed value
(`DW_OP_lit*`, `DW_OP_constu ... DW_OP_stack_value`), a composite of `DW_OP_piece`s, an entry
value, a register other than r0..r10. They are not wrong, just not a "this variable *is* rN /
the slot at r10-K" fact the verifier can attach a name to.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, TypeVar

from elftools.elf.elffile import ELFFile

from . import isa
from .dwarf_reader import (AT_alignment, AT_byte_size, AT_count, AT_declaration, AT_frame_base, AT_location,
                           AT_lower_bound, AT_name, AT_type, AT_upper_bound, BPF_FRAME_REG, BPF_MAX_STACK,
                           BPF_NUM_REGS, DW_OP_breg10, DW_OP_bregx, DW_OP_fbreg, DW_OP_reg0, DW_OP_reg31,
                           DW_OP_regx, Die, DwarfError, DwarfReader, FORM_data4, FORM_data8, FORM_loclistx,
                           FORM_sec_offset, INSN_SIZE, MAX_SPELL_STEPS, MAX_TYPE_DEPTH, Range,
                           TAG_array_type, TAG_atomic_type, TAG_base_type, TAG_class_type, TAG_const_type,
                           TAG_enumeration_type, TAG_formal_parameter, TAG_inlined_subroutine,
                           TAG_lexical_block, TAG_member, TAG_pointer_type, TAG_reference_type,
                           TAG_restrict_type, TAG_rvalue_reference_type, TAG_structure_type,
                           TAG_subrange_type, TAG_subroutine_type, TAG_union_type,
                           TAG_unspecified_parameters, TAG_variable, TAG_volatile_type, sleb, uleb)

__all__ = ["DwarfError", "VarLocation", "FunctionRange", "variable_locations", "function_ranges"]


@dataclass(frozen=True)
class VarLocation:
    """One address range over which a variable's value lives in one register or stack slot.

    `function` is the function that *declares* the variable: for a variable of an inlined
    helper it is the helper's name, while `section`/`lo`/`hi` are where the inlined copy's
    code sits (inside the caller). To find what a register holds at an instruction, filter by
    section and range, not by `function`.
    """
    function: str
    name: str
    type_name: str        # C spelling: "struct elem *", "int", "char[20]"
    section: str          # ELF section holding the code: "tc", ".text", ...
    lo: int               # [lo, hi) instruction indices in `section`
    hi: int
    reg: int | None       # 0..10 for r0..r10; exactly one of reg / stack_off is set
    stack_off: int | None  # r10-relative offset of the variable's first byte, negative
    decl_line: int        # 0 when the DWARF does not say
    decl_file: str        # path as the line table names it, "" when unknown


class FunctionRange(NamedTuple):
    """One contiguous piece of a function's code (BPF functions have exactly one)."""
    function: str
    section: str
    lo: int               # [lo, hi) instruction indices in `section`
    hi: int
    decl_file: str
    decl_line: int


def variable_locations(elf: ELFFile) -> list[VarLocation]:
    """Every known register/stack home of every parameter and local, in DIE order.

    An object without `.debug_info` has none. Raises only DwarfError.
    """
    return _guarded(lambda: _Dwarf(elf).variable_locations())


def function_ranges(elf: ELFFile) -> list[FunctionRange]:
    """(name, section, lo, hi, decl_file, decl_line) of every DW_TAG_subprogram with code."""
    return _guarded(lambda: _Dwarf(elf).function_ranges())


_T = TypeVar("_T")


def _guarded(compute: Callable[[], _T]) -> _T:
    # Our own reader raises DwarfError, but pyelftools (ELF sections, symbols, decompression)
    # reports malformed input with its own exceptions, and a bug of ours on garbage must not
    # escape as an IndexError either. Callers get one type, with the original chained.
    try:
        return compute()
    except DwarfError:
        raise
    except Exception as e:  # noqa: BLE001 - deliberately total, see above
        raise DwarfError(f"malformed DWARF: {type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------------------------
# Location expressions

class _Loc(NamedTuple):
    kind: str   # "reg": in register `value`; "fbreg": at frame base + value; "r10": at r10 + value
    value: int


def _decode_location(expr: bytes) -> _Loc | None:
    """A single-operation register or frame-relative memory location, else None.

    Anything longer is skipped on purpose: `DW_OP_piece` composites (a struct split over
    registers and slots), `DW_OP_stack_value` (the value is computed: a constant, `r6 + 8`),
    `DW_OP_deref`, `DW_OP_entry_value`, `DW_OP_addr[x]` (a static local: a fixed address, not
    a per-instruction home). None of them says "the variable *is* rN / the slot at r10-K".
    """
    if not expr:
        return None  # an empty location: optimized out over this range
    op = expr[0]
    pos = 1
    if DW_OP_reg0 <= op <= DW_OP_reg31:
        loc = _Loc("reg", op - DW_OP_reg0)
    elif op == DW_OP_regx:
        reg, pos = uleb(expr, pos)
        loc = _Loc("reg", reg)
    elif op == DW_OP_fbreg:
        off, pos = sleb(expr, pos)
        loc = _Loc("fbreg", off)
    elif op == DW_OP_breg10:
        off, pos = sleb(expr, pos)
        loc = _Loc("r10", off)
    elif op == DW_OP_bregx:
        reg, pos = uleb(expr, pos)
        off, pos = sleb(expr, pos)
        if reg != BPF_FRAME_REG:
            return None  # memory at rN + off through a pointer: not the variable's own home
        loc = _Loc("r10", off)
    else:
        return None
    if pos != len(expr):
        return None
    if loc.kind == "reg" and loc.value >= BPF_NUM_REGS:
        return None  # not a BPF register: some other target's DWARF, nothing to say
    return loc


# --------------------------------------------------------------------------------------------
# Stack frames: undoing clang's frame-size bias in DW_OP_fbreg / DW_OP_breg10 offsets.

class _StackFrame:
    """Recovers true r10 offsets for one function's stack variables.

    clang (at least through 19) describes a stack object as `fbreg (ObjectOffset + StackSize)`
    while the code addresses it as `r10 + ObjectOffset`; ObjectOffset is in [-StackSize, 0),
    so these biased offsets are always >= 0, while fixed compilers emit the true, always
    negative, offset. The sign tells the two apart. Biased offsets need StackSize, which the
    object records nowhere. LLVM computes it as the deepest frame object rounded up to
    max(alignment of every frame object, 8 if the function makes calls). We recover:

    * the deepest object from the code: the lowest r10-relative offset any instruction loads,
      stores, or materializes as an address (`rX = r10; rX += -K`). Objects live on the stack
      because their address is taken or a register is spilled, so the deepest one's first
      byte is practically always addressed;
    * the alignment from the calls in the code and the DWARF types of the function's stack
      variables (spill slots are 8-byte and only appear in functions with calls, which force
      8 anyway).

    The result is checked against the variables themselves: each must fit below r10.
    """

    def __init__(self, code: bytes):
        self.depth, self.has_call = _scan_stack_depth(code)

    def stack_size(self, biased_vars: list[tuple[int, int, int]]) -> int:
        """`biased_vars`: (biased offset, byte size, alignment) of each stack variable."""
        align = 8 if self.has_call else 1
        for _, _, a in biased_vars:
            align = max(align, a)
        size = _align_up(self.depth, align)
        # A variable at biased offset K occupies [K - size, K - size + its size), which must
        # end at or below r10; if the code scan came up short, grow to make that true.
        need = max((k + s for k, s, _ in biased_vars), default=0)
        if need > size:
            size = _align_up(need, align)
        return size


def _align_up(n: int, align: int) -> int:
    return -(-n // align) * align


def _code_insns(code: bytes) -> list[isa.Insn]:
    """The instructions of a code section, as `isa.decode` reads them (the whole-slot prefix of a
    truncated section; a final ld_imm64 missing its second half is left out)."""
    usable = code[:len(code) // INSN_SIZE * INSN_SIZE]
    try:
        return isa.decode(usable)
    except isa.DecodeError:
        return isa.decode(usable[:-INSN_SIZE])


def _scan_stack_depth(code: bytes) -> tuple[int, bool]:
    """(deepest r10-relative byte offset addressed, as a positive number; any call?).

    A straight-line scan, not a data-flow analysis: it tracks registers holding r10 + K
    through the instructions that make them (`mov rX, r10`, `add rX, imm`, `mov rY, rX`),
    which is how clang materializes stack addresses. Branches are ignored: the pattern is
    always local, and a stale entry can only make the depth deeper, never shallower than an
    access that really happens.
    """
    frame: dict[int, int] = {}   # register -> the r10 offset it holds
    depth = 0
    has_call = False
    for insn in _code_insns(code):
        dst, src, off, imm, cls = insn.dst, insn.src, insn.off, insn.imm, insn.cls
        addressed = None
        if insn.is_ld_imm64:
            frame.pop(dst, None)
        elif cls == isa.Cls.LDX:            # dst = *(src + off)
            if src == BPF_FRAME_REG:
                addressed = off
            elif src in frame:
                addressed = frame[src] + off
            frame.pop(dst, None)
        elif cls in (isa.Cls.ST, isa.Cls.STX):   # *(dst + off) = ...
            if dst == BPF_FRAME_REG:
                addressed = off
            elif dst in frame:
                addressed = frame[dst] + off
            if cls == isa.Cls.STX and insn.mode == isa.MODE_ATOMIC:
                frame.pop(src, None)        # atomics with BPF_FETCH write back into src
                frame.pop(0, None)          # cmpxchg writes r0
        elif cls == isa.Cls.ALU64:
            if insn.op == isa.MOV and insn.uses_reg_src and off == 0:   # mov64 dst, src
                if src == BPF_FRAME_REG:
                    frame[dst] = 0
                elif src in frame:
                    frame[dst] = frame[src]
                else:
                    frame.pop(dst, None)
            elif insn.op == isa.ADD and not insn.uses_reg_src and dst in frame:   # add64 dst, imm
                frame[dst] += imm
                addressed = frame[dst]
            elif insn.op == isa.SUB and not insn.uses_reg_src and dst in frame:   # sub64 dst, imm
                frame[dst] -= imm
                addressed = frame[dst]
            else:
                frame.pop(dst, None)
        elif cls == isa.Cls.ALU:            # 32-bit ALU writes dst
            frame.pop(dst, None)
        elif insn.is_call:                  # call / callx clobber r0..r5
            has_call = True
            for r in range(6):
                frame.pop(r, None)
        elif cls == isa.Cls.LD:             # legacy packet loads clobber r0..r5
            for r in range(6):
                frame.pop(r, None)
        if addressed is not None and addressed < 0:
            depth = max(depth, -addressed)
    return depth, has_call


# --------------------------------------------------------------------------------------------
# The reader

class _Scope(NamedTuple):
    ranges: list[Range]
    function: str          # the function that declares what is in this scope


class _Raw(NamedTuple):
    """A location before stack offsets are un-biased (which needs the whole function)."""
    function: str
    name: str
    type_name: str
    section: str
    lo: int
    hi: int
    loc: _Loc
    decl_line: int
    decl_file: str
    size: int
    align: int


class _Function(NamedTuple):
    die: Die
    name: str
    section: str
    ranges: list[tuple[str, int, int]]   # byte ranges within `section`


class _Dwarf(DwarfReader):
    """Variable locations and type names over the reader."""

    def concrete_functions(self) -> Iterator[_Function]:
        """DW_TAG_subprogram DIEs with code, each with its ELF section."""
        for die in self.subprograms:
            if AT_declaration in die.attrs:
                continue
            ranges = self.pc_ranges(die)
            if not ranges:
                continue   # an abstract instance of an inline function, or a declaration
            placed = []
            for sec, lo, hi in ranges:
                sec = sec if sec is not None else self._code_section_for(lo)
                if sec is not None and hi > lo:
                    placed.append((sec, lo, hi))
            if placed:
                yield _Function(die, self.name_of(die), placed[0][0], placed)

    def _code_section_for(self, address: int) -> str | None:
        """Section of an address nothing relocates: linked objects have real section
        addresses, and a relocatable object with a single code section is unambiguous."""
        code = [s for s in self.elf.iter_sections()
                if s["sh_flags"] & 0x4 and s["sh_size"] > 0]  # SHF_EXECINSTR
        if self.elf["e_type"] == "ET_REL":
            return code[0].name if len(code) == 1 else None
        for s in code:
            if s["sh_addr"] <= address < s["sh_addr"] + s["sh_size"]:
                return s.name
        return None

    def function_ranges(self) -> list[FunctionRange]:
        out = []
        for fn in self.concrete_functions():
            decl_file, decl_line = self.decl_of(fn.die)
            for sec, lo, hi in fn.ranges:
                out.append(FunctionRange(fn.name, sec, lo // INSN_SIZE, -(-hi // INSN_SIZE),
                                         decl_file, decl_line))
        return out

    # ---- variables --------------------------------------------------------------------------
    def variable_locations(self) -> list[VarLocation]:
        out: list[VarLocation] = []
        for fn in self.concrete_functions():
            out.extend(self._function_variables(fn))
        return out

    def _function_variables(self, fn: _Function) -> list[VarLocation]:
        frame_base = self._frame_base(fn.die)
        raws: list[_Raw] = []
        # Walk the function's scopes: lexical blocks and inlined calls narrow the code over
        # which a plain (non-list) location holds, and inlined calls change the function the
        # variables belong to. Depth-first in DIE order, so the output follows the source.
        pending = [(fn.die, _Scope(fn.ranges, fn.name))]
        visited = 0
        while pending:
            visited += 1
            if visited > len(self.info):
                raise DwarfError(f"scopes of {fn.name} do not end")
            scope_die, scope = pending.pop()
            nested = []
            for child in self.children(scope_die):
                tag = child.tag
                if tag in (TAG_variable, TAG_formal_parameter):
                    raws.extend(self._variable(fn, child, scope, frame_base))
                elif tag in (TAG_lexical_block, TAG_inlined_subroutine):
                    ranges = self.pc_ranges(child) or scope.ranges
                    name = self.name_of(child) if tag == TAG_inlined_subroutine else ""
                    nested.append((child, _Scope(ranges, name or scope.function)))
            pending.extend(reversed(nested))
        return self._finish(fn, raws)

    def _frame_base(self, die: Die) -> int | None:
        """K such that the frame base is r10 + K; None if it is not r10-based."""
        a = die.attrs.get(AT_frame_base)
        if a is None or not isinstance(a[1], bytes):
            return None
        loc = _decode_location(a[1])
        if loc == _Loc("reg", BPF_FRAME_REG):
            return 0
        if loc is not None and loc.kind == "r10":
            return loc.value
        return None

    def _variable(self, fn: _Function, die: Die, scope: _Scope, frame_base: int | None) -> list[_Raw]:
        if AT_declaration in die.attrs:
            return []  # `extern int x;` inside a function: no storage here
        # The location belongs to this concrete DIE; name, type and declaration may come from
        # the abstract instance (inlined functions, out-of-line copies of inline functions).
        attr = die.attrs.get(AT_location)
        if attr is None:
            return []
        form, value, _ = attr
        if isinstance(value, bytes):          # exprloc (or a DWARF 2/3 block)
            entries = [(sec, lo, hi, value) for sec, lo, hi in scope.ranges]
        elif form in (FORM_sec_offset, FORM_loclistx) or (
                die.unit.version < 4 and form in (FORM_data4, FORM_data8)):
            entries = self.location_list(die)
        else:
            raise DwarfError(f"DIE at {die.offset:#x}: DW_AT_location in form {form:#x}")
        name = self.name_of(die)
        type_die = self._type_die(die)
        type_name = self.type_name(type_die)
        decl_file, decl_line = self.decl_of(die)
        size, align = self._size_align(type_die, 0)
        out = []
        for sec, lo, hi, expr in entries:
            loc = _decode_location(expr)
            if loc is None:
                continue
            if loc.kind == "fbreg":
                if frame_base is None:
                    continue
                loc = _Loc("r10", frame_base + loc.value)
            sec = sec if sec is not None else fn.section
            if sec != fn.section:
                continue  # an entry outside the function's own section cannot be its code
            lo_i, hi_i = lo // INSN_SIZE, -(-hi // INSN_SIZE)
            if hi_i <= lo_i:
                continue
            out.append(_Raw(scope.function, name, type_name, sec, lo_i, hi_i, loc,
                            decl_line, decl_file, size, align))
        return out

    def _finish(self, fn: _Function, raws: list[_Raw]) -> list[VarLocation]:
        biased = [(r.loc.value, r.size, r.align) for r in raws
                  if r.loc.kind == "r10" and r.loc.value >= 0]
        stack_size = 0
        if biased:
            sec, lo, hi = fn.ranges[0]
            code = self.section_bytes(sec)[lo:hi]
            stack_size = _StackFrame(code).stack_size(biased)
        out = []
        for r in raws:
            reg = stack_off = None
            if r.loc.kind == "reg":
                reg = r.loc.value
            else:
                stack_off = r.loc.value - stack_size if r.loc.value >= 0 else r.loc.value
                if not -BPF_MAX_STACK <= stack_off < 0:
                    continue  # not a BPF stack slot: we misread the frame, so say nothing
            out.append(VarLocation(r.function, r.name, r.type_name, r.section, r.lo, r.hi,
                                   reg, stack_off, r.decl_line, r.decl_file))
        return out

    # ---- types ------------------------------------------------------------------------------
    def _type_die(self, die: Die) -> Die | None:
        d = self.inherited(die, AT_type)
        return self.ref(d, AT_type) if d is not None else None

    def type_name(self, die: Die | None) -> str:
        if die is None:
            return "void"
        name = self._type_names.get(die.offset)
        if name is None:
            self._spell_budget = MAX_SPELL_STEPS
            name = self._spell(die, "", 0)
            self._type_names[die.offset] = name
        return name

    def _spell(self, die: Die | None, inner: str, depth: int) -> str:
        """C declarator spelling, inside out: `inner` is the declarator built so far."""
        self._spell_budget -= 1
        if depth > MAX_TYPE_DEPTH or self._spell_budget < 0:
            return "?"
        if die is None:
            return _join("void", inner)
        tag = die.tag
        target = self.ref(die, AT_type)
        if tag in (TAG_pointer_type, TAG_reference_type, TAG_rvalue_reference_type):
            sigil = {TAG_pointer_type: "*", TAG_reference_type: "&"}.get(tag, "&&")
            return self._spell(target, sigil + inner, depth + 1)
        qual = {TAG_const_type: "const", TAG_volatile_type: "volatile",
                TAG_restrict_type: "restrict", TAG_atomic_type: "_Atomic"}.get(tag)
        if qual is not None:
            if target is not None and target.tag == TAG_pointer_type:
                # A qualified pointer: the qualifier follows the '*' ("char *const").
                return self._spell(target, qual + (" " + inner if inner else ""), depth + 1)
            return qual + " " + self._spell(target, inner, depth + 1)
        if tag == TAG_array_type:
            dims = ""
            for sub in self.children(die):
                if sub.tag == TAG_subrange_type:
                    n = self._subrange_count(sub)
                    dims += f"[{n}]" if n is not None else "[]"
            inner = f"({inner})" if inner.startswith(("*", "&")) else inner
            return self._spell(target, inner + (dims or "[]"), depth + 1)
        if tag == TAG_subroutine_type:
            params = []
            for p in self.children(die):
                if p.tag == TAG_formal_parameter:
                    params.append(self._spell(self.ref(p, AT_type), "", depth + 1))
                elif p.tag == TAG_unspecified_parameters:
                    params.append("...")
            inner = f"({inner})" if inner.startswith(("*", "&")) else inner
            return self._spell(target, f"{inner}({', '.join(params) or 'void'})", depth + 1)
        keyword = {TAG_structure_type: "struct", TAG_union_type: "union",
                   TAG_enumeration_type: "enum", TAG_class_type: "class"}.get(tag)
        name = self.string(die, AT_name)
        if keyword is not None:
            return _join(f"{keyword} {name or '(anon)'}", inner)
        if name:   # base types, typedefs, unspecified types
            return _join(name, inner)
        if target is not None:  # an unnamed wrapper we do not spell: see through it
            return self._spell(target, inner, depth + 1)
        return _join("void", inner)

    @staticmethod
    def _subrange_count(sub: Die) -> int | None:
        count = sub.int_attr(AT_count)
        if count is not None:
            return count
        upper = sub.int_attr(AT_upper_bound)
        if upper is not None:
            return upper - sub.int_attr(AT_lower_bound, 0) + 1
        return None

    def _size_align(self, die: Die | None, depth: int) -> tuple[int, int]:
        """Byte size and alignment of a type as far as the DWARF says (for _StackFrame).

        Memoized per DIE, which also keeps corrupt, self-referencing types from fanning out:
        a type met again while it is being computed counts as (0, 1)."""
        if die is None or depth > MAX_TYPE_DEPTH:
            return 0, 1
        if die.offset in self._layouts:
            return self._layouts[die.offset] or (0, 1)
        self._layouts[die.offset] = None
        layout = self._compute_size_align(die, depth)
        self._layouts[die.offset] = layout
        return layout

    def _compute_size_align(self, die: Die, depth: int) -> tuple[int, int]:
        size = die.int_attr(AT_byte_size)
        tag = die.tag
        target = self.ref(die, AT_type)
        if tag in (TAG_pointer_type, TAG_reference_type, TAG_rvalue_reference_type):
            size = size or die.unit.addr_size
            align = size
        elif tag in (TAG_structure_type, TAG_union_type, TAG_class_type):
            align = 1
            for m in self.children(die):
                if m.tag == TAG_member:
                    align = max(align, self._size_align(self.ref(m, AT_type), depth + 1)[1])
        elif tag == TAG_array_type:
            elem_size, align = self._size_align(target, depth + 1)
            if size is None:
                count = 1
                for sub in self.children(die):
                    if sub.tag == TAG_subrange_type:
                        count *= max(self._subrange_count(sub) or 0, 0)
                size = elem_size * count
        elif tag == TAG_enumeration_type and target is not None:
            align = self._size_align(target, depth + 1)[1]
        elif tag in (TAG_base_type, TAG_enumeration_type):
            align = size if size and size & (size - 1) == 0 else 1
        elif target is not None:   # typedef, cv-qualifiers: the underlying type's layout
            inner_size, align = self._size_align(target, depth + 1)
            size = size if size is not None else inner_size
        else:
            align = 1
        explicit = die.int_attr(AT_alignment)
        if explicit:
            align = explicit
        return (size or 0), max(1, min(align or 1, 4096))


def _join(base: str, declarator: str) -> str:
    if not declarator:
        return base
    if declarator.startswith("["):
        return base + declarator
    return f"{base} {declarator}"
