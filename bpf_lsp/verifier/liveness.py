"""What of a state can still matter at each instruction, so state pruning can ignore the rest.

Backward dataflows over each function of the linked program (`Dataflow`): which registers are
read again (liveness), which 4-byte stack cells are (stack liveness), and which scalars' values
may still decide something (precision); a forward one finds the registers and spilled values
that point into the stack. A call reads the arguments its prototype has (all five when it has
none we know) and writes r0-r5; exit reads r0. A BPF-to-BPF call reads the argument registers
live (or precise) on entry to its callee, as the kernel's liveness and precision marks follow a
call into the callee and back: the functions are solved together, callees' entries feeding
their call sites.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..frontend import isa
from ..frontend.btf import BtfError
from ..frontend.helpers_table import HELPER_IDS
from ..frontend.isa import Cls, Insn
from ..frontend.objfile import FuncAddrRef, HelperRef, KfuncRef, Program, SubprogRef
from . import kfuncs as K
from . import struct_ops as SO
from .domain import STACK, Reg
from .dynptr import SLICE_BUFFER_ARGS

ALL = frozenset(range(10))
ALL_ORDERED = tuple(range(10))
CALL_USES = frozenset({1, 2, 3, 4, 5})
CALL_DEFS = frozenset({0, 1, 2, 3, 4, 5})


def call_arguments(prog: Program) -> dict[int, frozenset]:
    """Call instruction -> the argument registers the callee may read: as many as a helper's or a
    kfunc's prototype has; all five for a subprogram (clang may drop a static function's unused
    parameters, its BTF still lists them; `Dataflow` narrows its registers to those the callee
    reads) and for whatever we have no prototype of."""
    btf = prog.obj.btf
    helpers = K.kernel_table()["helpers"]
    out: dict[int, frozenset] = {}
    for insn in prog.insns:
        if not insn.is_call:
            continue
        m = prog.meanings.get(insn.idx)
        n = None
        if isinstance(m, HelperRef) and str(m.id) in helpers:
            c_args = helpers[str(m.id)]["c_args"]
            n = 5 if "..." in c_args else len([a for a in c_args if a != "void"])
        elif isinstance(m, KfuncRef) and btf is not None:
            params = btf.func_params(m.name)
            n = None if params is None else len(params)
        out[insn.idx] = CALL_USES if n is None or n > 5 else frozenset(range(1, n + 1))
    return out


CALLEE_SAVED = frozenset({6, 7, 8, 9})   # what a call leaves of the caller's registers

# helper arguments of no pointer kind whose value the kernel still needs exactly: a tail call's
# index (record_func_key() marks it precise when constant)
_KEY_ARGS = {"bpf_tail_call": 3}
# kfunc parameter names the kernel needs a constant for (is_kfunc_arg_constant(), mem_size, the
# dynptr slice's buffer size): mark_chain_precision() on each
_CONST_SUFFIXES = ("__k", "__sz", "__szk")
_CONST_NAMES = ("rdonly_buf_size", "rdwr_buf_size")


def precise_arguments(prog: Program, args: dict[int, frozenset]) -> dict[int, frozenset]:
    """Call instruction -> the argument registers whose scalar value the call needs exactly (a
    subset of `args`). The kernel marks a scalar argument precise only where it checks its value:
    a helper's ARG_CONST_SIZE* size, a kfunc's `__k`/`__sz` constant; a number passed as
    ARG_ANYTHING, as a kfunc's plain integer or to a global function (btf_check_func_arg_match())
    decides nothing. Pointer arguments stay (they are compared as pointers anyway; a number where
    a pointer goes is checked for NULL). A kfunc is read from the declaration the program calls it
    by; calls with no prototype at all keep every argument."""
    btf = prog.obj.btf
    helpers = K.kernel_table()["helpers"]
    out = dict(args)
    for idx, regs in args.items():
        m = prog.meanings.get(idx)
        loose: set[int] = set()
        if isinstance(m, HelperRef) and str(m.id) in helpers:
            entry = helpers[str(m.id)]
            for i, kinds in enumerate(entry.get("args", ())[:5]):
                if kinds and all(k == "ARG_ANYTHING" for k in kinds) and _KEY_ARGS.get(entry["name"]) != i + 1:
                    loose.add(i + 1)
        elif isinstance(m, KfuncRef):
            sem = K.known_kfunc(m.name)
            if sem is not None and sem.args:
                loose = {i + 1 for i, a in enumerate(sem.args[:5]) if a.kind in (K.SCALAR, K.IGNORED)}
            else:
                # the table's flags only, or a kfunc newer than it: the declaration the program
                # links against types the parameters, the kernel's definition names them
                loose = _scalar_params(btf, m.name, K.kfunc_param_names(m.name) or ())
        elif isinstance(m, SubprogRef) and (fn := prog.function_at(m.target)) is not None and fn.is_global:
            loose = _scalar_params(btf, fn.name)
        if loose:
            out[idx] = regs - loose
    return out


def _scalar_params(btf, func: str, kfunc_names: tuple[str, ...] | None = None) -> set[int]:
    """The argument registers of `func`'s number parameters; of a kfunc's (`kfunc_names`: its
    parameter names, where known), except those the kernel wants constant."""
    params = btf.func_params(func) if btf is not None else None
    out = set()
    for i, (_name, type_id) in enumerate((params or [])[:5]):
        try:
            scalar = btf.value_kind(type_id)[0] == "scalar"
        except BtfError:     # a malformed type: keep the argument precise
            scalar = False
        name = kfunc_names[i] if kfunc_names is not None and i < len(kfunc_names) else ""
        if scalar and not (name.endswith(_CONST_SUFFIXES) or name in _CONST_NAMES):
            out.add(i + 1)
    return out


def _uses_defs(insn: Insn, args: dict[int, frozenset]) -> tuple[frozenset, frozenset]:
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
        return args.get(insn.idx, CALL_USES), CALL_DEFS
    if insn.is_exit:
        return frozenset({0}), frozenset()
    if insn.is_jump and insn.op not in (isa.JA, isa.JCOND):
        uses = {insn.dst}
        if insn.uses_reg_src:
            uses.add(insn.src)
        return frozenset(uses), frozenset()
    return frozenset(), frozenset()


def _successors(prog: Program) -> dict[int, list[int]]:
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
    return succ


def _solve_backward(prog: Program, succ: dict[int, list[int]], transfer, top: frozenset = ALL) -> dict[int, frozenset]:
    """The set on entry to each instruction: `transfer(idx, out, sets)` gives an instruction's set
    from the union of its successors' (and, at a call, its callee's entry in `sets`). Where the
    fixpoint is not reached, every set is `top` (the safe answer for the analyses here)."""
    sets: dict[int, frozenset] = {i.idx: frozenset() for i in prog.insns}
    order = sorted(sets, reverse=True)    # callees follow their callers: solved first in a round
    for _ in range(200):
        changed = False
        for idx in order:
            out = frozenset().union(*(sets.get(s, top) for s in succ[idx])) if succ[idx] else frozenset()
            new = transfer(idx, out, sets)
            if new != sets[idx]:
                sets[idx] = new
                changed = True
        if not changed:
            return sets
    return {idx: top for idx in sets}


ANY_SLOT = "any"    # in a set of stack slots: every slot (an access we cannot place)
EVERY_SLOT = frozenset({ANY_SLOT})
FP = 10
MAP_LOOKUP_ELEM = HELPER_IDS["bpf_map_lookup_elem"]
# helpers that hand the callback they are given stack memory of their caller (its `ctx`: an
# ARG_PTR_TO_FUNC and an ARG_PTR_TO_STACK in the kernel's prototype, as bpf_loop has)
STACK_CALLBACK_HELPERS = frozenset(
    int(num) for num, entry in K.kernel_table()["helpers"].items()
    if {"ARG_PTR_TO_FUNC", "ARG_PTR_TO_STACK"} <= {k.split("|")[0] for kinds in entry["args"] for k in kinds})
UNPLACED = "unplaced"   # a pointer into this frame's stack at an offset we do not know
OTHER = "other"         # a pointer into a caller's stack (an argument): never this frame's slots
FOREIGN = "foreign"     # in a decided (store, cell): the store went to a caller's stack
ALWAYS_NEEDED, NEVER_NEEDED = "always", "never"   # whether a function's return value is precise
SPILL = "spill"         # in the forward state, (SPILL, slot): a stack pointer spilled there;
                        # SPILL alone: one spilled at a slot we do not know


def _stack_pointers(prog: Program, succ: dict[int, list[int]]) -> dict[int, dict[int, object]]:
    """Instruction index -> {register: where it may point in the stack} on entry to it: an fp
    offset, UNPLACED or OTHER; registers absent point nowhere into a stack. A forward dataflow
    (r10, its copies and offsets, spills of them read back, the arguments of a subprogram);
    (SPILL, slot) keys say which slots may hold such a pointer."""
    main = prog.functions[0].start
    entries = {f.start: {FP: 0} if f.start == main else {FP: 0, 1: OTHER, 2: OTHER, 3: OTHER, 4: OTHER, 5: OTHER}
               for f in prog.functions}
    stack_returning = _stack_returning_calls(prog)
    return _solve_forward(prog, succ, entries, lambda insn, ptrs: _stack_pointer_transfer(insn, ptrs, stack_returning),
                          _join_pointers)


def _solve_forward(prog: Program, succ: dict[int, list[int]], entries: dict[int, object], transfer, join) -> dict:
    """The fact on entry to each instruction reached from `entries` (instruction -> fact there):
    `transfer(insn, fact)` gives the fact after an instruction, `join(a, b)` the one where two
    paths meet."""
    insns = {i.idx: i for i in prog.insns}
    sets = dict(entries)
    work = list(entries)
    while work:
        idx = work.pop()
        insn = insns.get(idx)
        if insn is None:
            continue
        out = transfer(insn, sets[idx])
        for t in succ.get(idx, ()):
            old = sets.get(t)
            new = out if old is None else join(old, out)
            if new != old:
                sets[t] = new
                work.append(t)
    return sets


def _join_where(a, b):
    """Where a value may point, given it points where `a` or `b` says (None: not into a stack)."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    return UNPLACED     # two places in this frame, or this frame's and a caller's


def _join_pointers(a: dict, b: dict) -> dict:
    out = dict(a)
    for r, v in b.items():
        out[r] = _join_where(out.get(r), v)
    return out


def _stack_returning_calls(prog: Program) -> dict[int, int]:
    """Calls that may return memory one of their arguments points to -> that argument's register."""
    out = {}
    for idx, m in prog.meanings.items():
        if isinstance(m, KfuncRef):
            sem = K.known_kfunc(m.name)
            if m.name in SLICE_BUFFER_ARGS:
                out[idx] = SLICE_BUFFER_ARGS[m.name][0].index + 1
            elif sem is not None and sem.iter_op == K.ITER_NEXT:
                out[idx] = 1        # the number lives in the iterator's own state
    return out


def _stack_pointer_transfer(insn: Insn, ptrs: dict, stack_returning: dict[int, int]) -> dict:
    cls = insn.cls
    out = dict(ptrs)
    if cls in (Cls.ALU, Cls.ALU64):
        where = None
        if cls == Cls.ALU64 and insn.op == isa.MOV and insn.uses_reg_src and insn.off == 0:
            where = ptrs.get(insn.src)
        elif cls == Cls.ALU64 and insn.op in (isa.ADD, isa.SUB) and insn.dst in ptrs:
            base = ptrs[insn.dst]
            if insn.uses_reg_src or not isinstance(base, int):
                where = OTHER if base == OTHER else UNPLACED
            else:
                where = base + (insn.imm if insn.op == isa.ADD else -insn.imm)
        elif cls == Cls.ALU64 and insn.op == isa.ADD and insn.uses_reg_src and insn.src in ptrs:
            where = OTHER if ptrs[insn.src] == OTHER else UNPLACED
        out.pop(insn.dst, None)
        if where is not None:
            out[insn.dst] = where
        return out
    if cls == Cls.LDX:
        out.pop(insn.dst, None)
        where = ptrs.get(insn.src)
        if where == OTHER:      # what a caller spilled points into a caller's stack, if anywhere
            out[insn.dst] = OTHER
        elif where is not None:  # a spilled stack pointer read back
            if isinstance(where, int):
                # what was spilled at this slot, or at a slot we do not know
                found = _join_where(ptrs.get((SPILL, (where + insn.off) // 8)), ptrs.get(SPILL))
            else:   # any slot: whatever was spilled anywhere
                found = None
                for k, v in ptrs.items():
                    if k == SPILL or isinstance(k, tuple):
                        found = _join_where(found, v)
            if found is not None:
                out[insn.dst] = found
        return out
    if cls in (Cls.ST, Cls.STX) and insn.mode != isa.MODE_ATOMIC and insn.dst in ptrs:
        where = ptrs[insn.dst]
        value = ptrs.get(insn.src) if cls == Cls.STX and insn.size == 8 else None
        if isinstance(where, int):
            slot = (SPILL, (where + insn.off) // 8)
            out.pop(slot, None)
            if value is not None:
                out[slot] = value
        elif value is not None and where != OTHER:
            # a stack pointer spilled we do not know where: one into a caller's stack stays
            # one (reading it back never names this frame's slots)
            out[SPILL] = _join_where(out.get(SPILL), value if value == OTHER else UNPLACED)
        return out
    if cls == Cls.LD:
        for r in ({insn.dst} if insn.is_ld_imm64 else CALL_DEFS):
            out.pop(r, None)
        return out
    if insn.is_call:
        # only a kfunc that returns its argument's memory hands back a stack pointer
        # (bpf_dynptr_slice's buffer, an iterator's number): subprograms may not (the kernel's
        # "cannot return stack pointer to the caller"), helpers do not
        given = ptrs.get(stack_returning.get(insn.idx, -1))
        for r in CALL_DEFS:
            out.pop(r, None)
        if given is not None:
            out[0] = given
        return out
    if cls == Cls.STX and insn.mode == isa.MODE_ATOMIC and (insn.imm & isa.FETCH):
        out.pop(insn.src, None)
    return out


UNNAMED = ("?", None)    # in _param_pointers: may point into a caller's stack, from no parameter we can name
LOADED = "loaded"       # (LOADED, j): a value loaded from the memory parameter j points to, or from memory a
                        # value so loaded points to: a stack pointer only if a caller's stack holds one
TOP = "top"             # in a callee's read summary: it may read its callers' stacks anywhere
TOP_SET = frozenset({TOP})


def _param_pointers(prog: Program, succ: dict[int, list[int]], ptrs: dict[int, dict],
                    stack_returning: dict[int, int]) -> dict[int, dict]:
    """Instruction index (of a function other than the program's entry) -> {register, or (SPILL,
    slot) / SPILL as in _stack_pointers: (parameter register, byte offset or None)} on entry to
    it: the values that are one of the function's parameters r1-r5 plus a known offset, so what
    it reads of memory a caller passed is named relative to the call's arguments. A value loaded
    from a parameter's memory is ((LOADED, j), None): a stack pointer only if a caller's stack
    holds one; one we cannot trace to a parameter is UNNAMED. Every parameter counts, pointer
    or not: at a prune the caller's registers tell which ones point into which frame
    (Relevance.caller_slots)."""
    main = prog.functions[0].start
    entries = {f.start: {r: (r, 0) for r in CALL_USES} for f in prog.functions if f.start != main}
    return _solve_forward(prog, succ, entries,
                          lambda insn, pp: _param_pointer_transfer(insn, pp, ptrs.get(insn.idx, {}), stack_returning),
                          _join_param_pointers)


def _join_param_pointers(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        o = out.get(k)
        if o is None or o == v:
            out[k] = v
        elif o[0] == v[0]:
            out[k] = (v[0], None)
        else:
            out[k] = UNNAMED
    return out


def _param_pointer_transfer(insn: Insn, pp: dict, own: dict, stack_returning: dict[int, int]) -> dict:
    cls = insn.cls
    out = dict(pp)
    if cls in (Cls.ALU, Cls.ALU64):
        v = None
        if cls == Cls.ALU64 and insn.op == isa.MOV and insn.uses_reg_src and insn.off == 0:
            v = pp.get(insn.src)
        elif cls == Cls.ALU64 and insn.op in (isa.ADD, isa.SUB) and insn.dst in pp:
            j, o = pp[insn.dst]
            if insn.uses_reg_src or o is None:
                v = (j, None)
            else:
                v = (j, o + insn.imm if insn.op == isa.ADD else o - insn.imm)
        elif cls == Cls.ALU64 and insn.op == isa.ADD and insn.uses_reg_src and insn.src in pp:
            v = (pp[insn.src][0], None)
        out.pop(insn.dst, None)
        if v is not None:
            out[insn.dst] = v
        return out
    if cls == Cls.LDX:
        out.pop(insn.dst, None)
        where = own.get(insn.src)
        if insn.src in pp:
            root = pp[insn.src][0]
            out[insn.dst] = ((LOADED, root) if isinstance(root, int) else root, None)
        elif isinstance(where, int):
            found = pp.get((SPILL, (where + insn.off) // 8)) or pp.get(SPILL)
            if found is not None:
                out[insn.dst] = found
        elif where is not None and any(k == SPILL or isinstance(k, tuple) for k in pp):
            out[insn.dst] = UNNAMED     # our stack at an offset we do not know: any spill
        return out
    if cls in (Cls.ST, Cls.STX) and insn.mode != isa.MODE_ATOMIC:
        where = own.get(insn.dst)
        value = pp.get(insn.src) if cls == Cls.STX else None
        if insn.dst in pp:
            return out      # into a caller's memory: read back only as UNNAMED
        if isinstance(where, int):
            slot = (SPILL, (where + insn.off) // 8)
            out.pop(slot, None)
            if value is not None:
                out[slot] = value
        elif where is not None and value is not None:
            out[SPILL] = UNNAMED
        return out
    if cls == Cls.LD:
        for r in ({insn.dst} if insn.is_ld_imm64 else CALL_DEFS):
            out.pop(r, None)
        return out
    if insn.is_call:
        given = pp.get(stack_returning.get(insn.idx, -1))
        for r in CALL_DEFS:
            out.pop(r, None)
        if given is not None:
            out[0] = (given[0], None)
        return out
    if cls == Cls.STX and insn.mode == isa.MODE_ATOMIC and (insn.imm & isa.FETCH):
        out.pop(insn.src, None)
    return out


CELL = 4    # the stack analyses follow 4-byte cells (cell c is fp+4c..fp+4c+3, in slot c // 2):
            # a u32 stored in half a slot ends what that half held, not what the other half does


def stack_cells(off: int, size: int) -> frozenset:
    """The cells an access of `size` bytes at fp+`off` touches (a frame's own stack is below fp;
    anything else we cannot place)."""
    if off >= 0 or off + size > 0:
        return EVERY_SLOT
    return frozenset(range(off // CELL, (off + size - 1) // CELL + 1))


def _in_slots(cells: frozenset) -> frozenset:
    """A set of registers and cells as the state sees it: registers and 8-byte slots."""
    return frozenset(x // 2 if isinstance(x, int) and x < 0 else x for x in cells)


def _placed(where, off: int, size: int) -> frozenset:
    """Cells of this frame an access through a stack pointer at `where` may touch."""
    if where == OTHER:
        return frozenset()
    if isinstance(where, int):
        return stack_cells(where + off, size)
    return EVERY_SLOT


class _StackAccess:
    """How one instruction touches its frame's stack cells: the cells it reads, those it
    overwrites whole, those it writes, and the register the value comes from or goes to."""
    __slots__ = ("reads", "kills", "writes", "value", "foreign", "decides")

    def __init__(self, reads=frozenset(), kills=frozenset(), writes=frozenset(), value: int | None = None,
                 foreign: bool = False, decides: frozenset = frozenset()):
        self.reads, self.kills, self.writes, self.value = reads, kills, writes, value
        self.foreign = foreign      # it writes a caller's stack, whose slots this frame cannot follow
        self.decides = decides      # slots a call reads whose values may decide what happens next


def _stack_access(insn: Insn, ptrs: dict, args: dict[int, frozenset],
                  sized: dict[int, int | None] | None = None) -> _StackAccess | None:
    """`sized`: of a helper's or kfunc's memory arguments, those whose size is a constant at the
    call (-> bytes), or that it only writes (-> None)."""
    cls = insn.cls
    if cls == Cls.LDX and insn.src in ptrs:
        return _StackAccess(reads=_placed(ptrs[insn.src], insn.off, insn.size), value=insn.dst)
    if cls in (Cls.ST, Cls.STX) and insn.dst in ptrs:
        where = ptrs[insn.dst]
        slots = _placed(where, insn.off, insn.size)
        value = insn.src if cls == Cls.STX else None
        if where == OTHER:
            return _StackAccess(value=value, foreign=True)
        if insn.mode == isa.MODE_ATOMIC:
            return _StackAccess(reads=slots, writes=slots, value=value)
        whole = slots if insn.size >= CELL and isinstance(where, int) and (where + insn.off) % CELL == 0 \
            and ANY_SLOT not in slots else frozenset()
        return _StackAccess(kills=whole, writes=slots, value=value)
    if insn.is_call:
        reads: set = set()
        writes: set = set()
        for r in args.get(insn.idx, CALL_USES):
            where = ptrs.get(r)
            if where is None or where == OTHER:
                continue
            if not isinstance(where, int) or where >= 0:
                return _StackAccess(reads=EVERY_SLOT, writes=EVERY_SLOT, decides=EVERY_SLOT)
            if sized and r in sized:
                # check_helper_mem_access(): the bytes its size argument says; memory it only
                # fills (MEM_UNINIT) is written, never read
                size = sized[r]
                if size is None:
                    writes |= set(range(where // CELL, 0))
                elif size:
                    reads |= stack_cells(where, size)
                    writes |= stack_cells(where, size)
                continue
            # the callee reads (and writes) from the pointer upwards, within the frame: memory
            # below a pointer it was given is no C object it could reach
            cells = set(range(where // CELL, 0))
            reads |= cells
            writes |= cells
        if not reads and not writes:
            return None
        if insn.is_subprog_call or (insn.is_helper_call and insn.imm in STACK_CALLBACK_HELPERS):
            decides = frozenset(reads)      # a subprogram (or a callback handed this memory) may branch on it
        elif insn.is_helper_call and insn.imm == MAP_LOOKUP_ELEM and isinstance(ptrs.get(2), int):
            # an array lookup at a constant key the kernel reads back is never NULL (an array's
            # key is a u32)
            decides = stack_cells(ptrs[2], 4)
        else:
            # what else a helper or kfunc reads of the stack is data it checks nothing of (its
            # objects, iterators and dynptrs, are compared exactly anyway)
            decides = frozenset()
        return _StackAccess(reads=frozenset(reads), writes=frozenset(writes), decides=decides & frozenset(reads))
    return None


def sized_memory_args(prog: Program, preds: dict[int, list[int]]) -> dict[int, dict[int, int | None]]:
    """Helper and kfunc calls -> {pointer argument register: bytes} for the memory arguments
    whose size argument (ARG_CONST_SIZE after ARG_PTR_TO_MEM; a kfunc's `mem, mem__sz` pair) is
    a constant where the call is made, or None for those a helper only writes (MEM_UNINIT)."""
    insns = {i.idx: i for i in prog.insns}
    out: dict[int, dict[int, int | None]] = {}
    for insn in prog.insns:
        m = prog.meanings.get(insn.idx)
        if not insn.is_call:
            continue
        pairs: list[tuple[int, bool]] = []     # (pointer register, only written)
        if isinstance(m, HelperRef):
            pairs = [(arg.index + 1, arg.raw) for arg in K.helper_mem_args(m.id) if arg.source == "size"]
        elif isinstance(m, KfuncRef):
            pairs = [(mem + 1, False) for mem, _size in K.kfunc_sized_args(m.name)]
        sizes: dict[int, int | None] = {}
        for reg, raw in pairs:
            if reg > 4:
                continue
            if raw:
                sizes[reg] = None
            else:
                size = _constant_before(insns, preds, insn.idx, reg + 1)
                if size is not None and 0 <= size < 1 << 16:
                    sizes[reg] = size
        if sizes:
            out[insn.idx] = sizes
    return out


def _constant_before(insns: dict[int, Insn], preds: dict[int, list[int]], idx: int, reg: int) -> int | None:
    """The value `reg` holds on entry to `idx` when the straight line of code leading there (one
    predecessor each) sets it to a constant; None otherwise."""
    for _ in range(64):
        before = preds.get(idx, ())
        if len(before) != 1:
            return None
        idx = before[0]
        insn = insns[idx]
        _uses, defs = _uses_defs(insn, {})
        if reg not in defs:
            continue
        if insn.cls in (Cls.ALU, Cls.ALU64) and insn.op == isa.MOV and not insn.uses_reg_src and insn.off == 0:
            return insn.imm & 0xFFFFFFFF if insn.cls == Cls.ALU else insn.imm
        return None
    return None


def _is_arena_cast(insn: Insn) -> bool:
    """BPF_ADDR_SPACE_CAST from the arena's address space: its result is a PTR_TO_ARENA."""
    return insn.cls == Cls.ALU64 and insn.op == isa.MOV and insn.uses_reg_src and insn.off == 1 and insn.imm == 1


def _arena_operand(insn: Insn, arena: frozenset) -> bool:
    """An ALU instruction the kernel treats as arena arithmetic (adjust_reg_min_max_vals(): an
    operand is PTR_TO_ARENA, the result is one, no scalar's value matters)."""
    return insn.cls in (Cls.ALU, Cls.ALU64) and insn.op not in (isa.MOV, isa.NEG, isa.END) and \
        (insn.dst in arena or (insn.uses_reg_src and insn.src in arena))


def _arena_registers(prog: Program, succ: dict[int, list[int]], ptrs: dict[int, dict]) -> dict[int, frozenset]:
    """Instruction index -> registers that hold an arena pointer on entry to it on every path (a
    forward must-analysis: an address-space cast, its copies, arithmetic on them, and spills of
    them read back, as the kernel keeps a spilled PTR_TO_ARENA's type)."""
    empty = (frozenset(), frozenset())
    sets = _solve_forward(prog, succ, {f.start: empty for f in prog.functions},
                          lambda insn, fact: _arena_transfer(insn, *fact, ptrs.get(insn.idx, {FP: 0})),
                          lambda a, b: (a[0] & b[0], a[1] & b[1]))
    return {idx: regs for idx, (regs, _slots) in sets.items()}


def _arena_transfer(insn: Insn, regs: frozenset, slots: frozenset, ptrs: dict) -> tuple[frozenset, frozenset]:
    """`_arena_registers`' step: (registers, 8-byte stack slots) holding an arena pointer after `insn`."""
    cls = insn.cls
    if cls in (Cls.ALU, Cls.ALU64):
        copy = cls == Cls.ALU64 and insn.op == isa.MOV and insn.uses_reg_src and insn.off == 0 and insn.src in regs
        if _is_arena_cast(insn) or _arena_operand(insn, regs) or copy:
            return regs | {insn.dst}, slots
        return regs - {insn.dst}, slots
    if cls == Cls.LDX:
        where = ptrs.get(insn.src)
        spilled = isinstance(where, int) and insn.size == 8 and (where + insn.off) % 8 == 0 and \
            (where + insn.off) // 8 in slots
        return (regs | {insn.dst}) if spilled else (regs - {insn.dst}), slots
    if cls in (Cls.ST, Cls.STX):
        where = ptrs.get(insn.dst)
        if cls == Cls.STX and insn.mode == isa.MODE_ATOMIC:
            regs = regs - {0, insn.src}
        if where is None or where == OTHER:
            return regs, slots
        if not isinstance(where, int):
            return regs, frozenset()
        off = where + insn.off
        touched = {off // 8, (off + insn.size - 1) // 8}
        slots = slots - touched
        if cls == Cls.STX and insn.mode != isa.MODE_ATOMIC and insn.size == 8 and off % 8 == 0 and insn.src in regs:
            slots = slots | {off // 8}
        return regs, slots
    if cls == Cls.LD:
        return regs - ({insn.dst} if insn.is_ld_imm64 else CALL_DEFS), slots
    if insn.is_call:
        # a callee given this frame's stack may write it, from the pointer upwards
        lowest = [w for r in CALL_USES if (w := ptrs.get(r)) is not None and w != OTHER]
        if lowest:
            slots = frozenset() if any(not isinstance(w, int) for w in lowest) else \
                frozenset(x for x in slots if x < min(lowest) // 8)
        return regs - CALL_DEFS, slots
    return regs, slots


def _maybe_pointer_add(insn: Insn) -> bool:
    return insn.cls == Cls.ALU64 and insn.op in (isa.ADD, isa.SUB) and insn.uses_reg_src


def _precision_flow(insn: Insn, args: dict[int, frozenset], arena: frozenset = frozenset()
                    ) -> tuple[frozenset, frozenset, frozenset]:
    """(always, if_dst_precise, defs) for registers: those whose scalar value an instruction needs
    exactly whatever follows; those it needs when its destination's value is needed later; those
    it overwrites. `arena`: the registers holding an arena pointer there."""
    cls = insn.cls
    if cls in (Cls.ALU, Cls.ALU64):
        src = {insn.src} if insn.uses_reg_src and insn.op not in (isa.END, isa.NEG) else set()
        if _arena_operand(insn, arena):
            return frozenset(), frozenset(), frozenset({insn.dst})
        if insn.op == isa.MOV:
            return frozenset(), frozenset(src), frozenset({insn.dst})
        if cls == Cls.ALU64 and insn.op in (isa.ADD, isa.SUB) and src:
            # either side may be a pointer: the other is then its offset, checked now
            return frozenset(src | {insn.dst}), frozenset(), frozenset({insn.dst})
        return frozenset(), frozenset(src | {insn.dst}), frozenset({insn.dst})
    if cls == Cls.LDX or (cls == Cls.LD and insn.is_ld_imm64):
        return frozenset(), frozenset(), frozenset({insn.dst})
    if cls == Cls.STX and insn.mode == isa.MODE_ATOMIC:
        if insn.imm == isa.ATOMIC_CMPXCHG:
            return frozenset({0}), frozenset(), frozenset({0})
        return frozenset(), frozenset(), frozenset({insn.src} if insn.imm & isa.FETCH else ())
    if cls == Cls.LD:   # LD_ABS / LD_IND: the offset register decides what is read
        return frozenset({insn.src} if insn.mode == isa.MODE_IND else ()), frozenset(), CALL_DEFS
    if insn.is_call:
        return args.get(insn.idx, CALL_USES), frozenset(), CALL_DEFS
    if insn.is_exit:
        return frozenset({0}), frozenset(), frozenset()
    if insn.is_jump and insn.op not in (isa.JA, isa.JCOND):
        return frozenset({insn.dst, insn.src} if insn.uses_reg_src else {insn.dst}), frozenset(), frozenset()
    return frozenset(), frozenset(), frozenset()


def _has_slot(s: frozenset) -> bool:
    return any(not isinstance(x, int) or x < 0 for x in s)


class Dataflow:
    """The facts of one program the analyses share (control flow, call arguments, what each
    instruction reads and writes of its frame's stack), worked out once, and the analyses."""

    def __init__(self, prog: Program):
        self.prog = prog
        self.succ = _successors(prog)
        self.insns = {i.idx: i for i in prog.insns}
        self.args = call_arguments(prog)
        ptrs = self.ptrs = _stack_pointers(prog, self.succ)
        arena = _arena_registers(prog, self.succ, ptrs)
        precise_args = precise_arguments(prog, self.args)
        self.flow = {idx: _precision_flow(i, precise_args, arena.get(idx, frozenset())) for idx, i in self.insns.items()}
        self.preds: dict[int, list[int]] = {}
        for idx, targets in self.succ.items():
            for t in targets:
                self.preds.setdefault(t, []).append(idx)
        self.sized = sized_memory_args(prog, self.preds)
        self.access = {idx: _stack_access(i, ptrs.get(idx, {FP: 0}), self.args, self.sized.get(idx))
                       for idx, i in self.insns.items()}
        # a conditional jump -> the registers it compares
        self.compares = {idx: f[0] for idx, f in self.flow.items() if self.insns[idx].is_jump and f[0]}
        # stores into the stack at an offset we do not know: where the offset really varies, the
        # kernel forgets what the bytes held (check_stack_write_var_off()), so the value counts
        # only in the cells the walk finds it stored at, a known offset or zeros kept: those
        # are "decided" as (store, cell), or (store, FOREIGN) for a caller's stack
        self.unplaced_stores = frozenset(
            idx for idx, acc in self.access.items()
            if acc is not None and ANY_SLOT in acc.writes and not acc.foreign and acc.value is not None
            and self.insns[idx].cls in (Cls.ST, Cls.STX) and self.insns[idx].mode != isa.MODE_ATOMIC)
        # register + register where either may be a pointer: a pointer's offset only where the
        # walk finds a pointer there ("decided"); else numbers added (an arena pointer's offset
        # is not followed either)
        self.pointer_adds = frozenset(idx for idx, i in self.insns.items() if _maybe_pointer_add(i)
                                      and self.flow[idx][0])
        # array lookups at a key on the stack: the kernel reads the key back and marks it only
        # where it is a constant (get_constant_map_key(), to call the value never NULL)
        self.key_lookups = frozenset(idx for idx, acc in self.access.items()
                                     if acc is not None and acc.decides and self.insns[idx].is_helper_call
                                     and self.insns[idx].imm == MAP_LOOKUP_ELEM)
        self.decidable = frozenset(self.compares) | self.unplaced_stores | self.pointer_adds | self.key_lookups
        # BPF-to-BPF calls -> their callee's first instruction, and back: what a callee reads of
        # its argument registers is what its caller's call reads
        self.callee = {idx: m.target for idx, m in prog.meanings.items()
                       if isinstance(m, SubprogRef) and idx in self.insns and self.insns[idx].is_call
                       and m.target in self.insns}
        # a global function is verified on its own, its arguments checked against its BTF
        # prototype at the call: there every argument register counts
        self.static_callee = {idx: t for idx, t in self.callee.items()
                              if (fn := prog.function_at(t)) is not None and not fn.is_global}
        self.callsites: dict[int, list[int]] = {}
        for idx, target in self.callee.items():
            self.callsites.setdefault(target, []).append(idx)
        self._foreign_uses(ptrs)
        self._exit_demands()
        self._callee_reads: dict[int, frozenset] | None = None
        self.pointers_stored_to_callers = False

    def _exit_demands(self) -> None:
        """Whether each function's return value is precise at its `exit` (check_return_code()):
        a static function's when a caller needs it after the call (the kernel's marks cross
        back from the callee); a callback's always (its range is checked); a global function's
        never (its callers get a number); the program's only where the value is checked (a
        struct_ops member that must return a referenced pointer or NULL; the kernel checks no
        other member's value, so it marks nothing there)."""
        prog = self.prog
        so = prog.struct_ops
        rules = SO.MEMBERS.get((so.type_name, so.member)) if so is not None else None
        callbacks = {m.target for m in prog.meanings.values() if isinstance(m, FuncAddrRef)}
        main = prog.functions[0].start
        self.exit_demand: dict[int, object] = {}
        for fn in prog.functions:
            if fn.start == main:
                demand = ALWAYS_NEEDED if rules is not None and rules.returns else NEVER_NEEDED
            elif fn.start in callbacks or fn.start not in self.callsites:
                demand = ALWAYS_NEEDED
            elif fn.is_global:
                demand = NEVER_NEEDED
            else:
                demand = frozenset(c + self.insns[c].slots for c in self.callsites[fn.start])
            self.exit_demand[fn.start] = demand
        self.exit_fn = {}
        self.return_watch: dict[int, list[int]] = {}   # a call's successor -> its callee's exits
        for idx, insn in self.insns.items():
            fn = prog.function_at(idx)
            if insn.is_exit and fn is not None:
                self.exit_fn[idx] = fn.start
                demand = self.exit_demand.get(fn.start)
                if isinstance(demand, frozenset):
                    for after in demand:
                        self.return_watch.setdefault(after, []).append(idx)

    def _returns(self, idx: int, sets: dict[int, frozenset]) -> frozenset:
        demand = self.exit_demand.get(self.exit_fn.get(idx), ALWAYS_NEEDED)
        if isinstance(demand, frozenset):
            return frozenset({0}) if any(0 in sets.get(after, ALL) for after in demand) else frozenset()
        return frozenset({0}) if demand is ALWAYS_NEEDED else frozenset()

    def _foreign_uses(self, ptrs: dict) -> None:
        """What each function does with stack memory its callers gave it: a caller's slots a call
        passes decide something only if the callee (or one it passes them on to) reads a value
        from them that is precise, as the kernel's marks reach a caller's frame only that way."""
        self.foreign_loads: dict[int, list[tuple[int, int]]] = {}   # function -> (load's successor, register)
        self.foreign_passes: dict[int, set[int]] = {}   # function -> callees it hands such memory on to
        self.foreign_decides: set[int] = set()          # functions handing it to a helper that branches on it
        for idx, insn in self.insns.items():
            fn = self.prog.function_at(idx)
            if fn is None or fn.start == self.prog.functions[0].start:
                continue
            here = ptrs.get(idx, {})
            if insn.cls == Cls.LDX and here.get(insn.src) in (OTHER, UNPLACED):
                self.foreign_loads.setdefault(fn.start, []).append((idx + insn.slots, insn.dst))
            elif insn.is_call and any(here.get(r) in (OTHER, UNPLACED) for r in self.args.get(idx, CALL_USES)):
                if idx in self.callee:
                    self.foreign_passes.setdefault(fn.start, set()).add(self.callee[idx])
                elif not insn.is_kfunc_call and insn.imm in STACK_CALLBACK_HELPERS | {MAP_LOOKUP_ELEM}:
                    self.foreign_decides.add(fn.start)
        # a load whose value becomes precise: the call sites of its function (and of those handing
        # the memory on to it) read their slots precisely
        self.foreign_watch: dict[int, set[int]] = {}
        handed_by: dict[int, set[int]] = {}
        for f, callees in self.foreign_passes.items():
            for g in callees:
                handed_by.setdefault(g, set()).add(f)
        for f, loads in self.foreign_loads.items():
            reached, todo = set(), [f]
            while todo:
                g = todo.pop()
                if g not in reached:
                    reached.add(g)
                    todo.extend(handed_by.get(g, ()))
            sites = {c for g in reached for c in self.callsites.get(g, ())}
            for succ, _reg in loads:
                self.foreign_watch.setdefault(succ, set()).update(sites)

    def _reads_foreign(self, fn: int, sets: dict[int, frozenset], depth: int = 0) -> bool:
        if depth > 8 or fn in self.foreign_decides:
            return True
        if any(reg in sets.get(succ, ALL) for succ, reg in self.foreign_loads.get(fn, ())):
            return True
        return any(self._reads_foreign(g, sets, depth + 1) for g in self.foreign_passes.get(fn, ()))

    def _call_reads(self, idx: int, sets: dict[int, frozenset], default: frozenset) -> frozenset:
        """The argument registers a call reads: its callee's, on entry, for a call of a static
        function."""
        target = self.static_callee.get(idx)
        return default if target is None else sets.get(target, CALL_USES) & CALL_USES

    @property
    def callee_reads(self) -> dict[int, frozenset]:
        """Instruction index (of a function other than the entry) -> what the function, and those
        it calls, may still read before it returns of stack memory its callers gave it:
        (parameter register, lo, hi) for bytes [lo, hi) from that parameter's value on entry,
        (parameter, ANY_SLOT) for anywhere from there up, TOP for anywhere at all. The part of
        the kernel's stack liveness (mark_stack_read() of a caller's frame) a static walk of the
        callee can place: a caller's struct the callee is done with is dead while it runs."""
        if self._callee_reads is None:
            pp = _param_pointers(self.prog, self.succ, self.ptrs, _stack_returning_calls(self.prog))
            # a stack pointer stored into a caller's memory may be what a callee loads back from
            # any slot: then no loaded pointer is known not to point into a stack
            self.pointers_stored_to_callers = self._stores_stack_pointers_to_callers(pp)
            self._callee_reads = _solve_backward(self.prog, self.succ, self._callee_read_transfer(pp), TOP_SET)
        return self._callee_reads

    def _stores_stack_pointers_to_callers(self, pp: dict[int, dict]) -> bool:
        """Whether a function may store a stack pointer into memory a caller gave it: one into
        its own stack, or a parameter some call may pass a stack pointer in (a pointer it
        loaded from a caller's memory is one only if a caller's stack holds one already, which
        a prune sees in the state)."""
        prog = self.prog
        callbacks = {m.target for m in prog.meanings.values() if isinstance(m, FuncAddrRef)}
        may: dict[int, set[int]] = {f.start: set(CALL_USES) if f.start in callbacks else set()
                                    for f in prog.functions}

        def maybe_stack(idx: int, reg: int, fn: int) -> bool:
            where = self.ptrs.get(idx, {}).get(reg)
            if where is None:
                return False
            if where != OTHER:
                return True     # into its own stack
            p = pp.get(idx, {}).get(reg)
            return p is None or not isinstance(p[0], int) or p[0] in may[fn]

        changed = True
        while changed:
            changed = False
            for idx, target in self.static_callee.items():
                caller = prog.function_at(idx)
                if caller is None or target not in may:
                    continue
                for r in CALL_USES - may[target]:
                    if maybe_stack(idx, r, caller.start):
                        may[target].add(r)
                        changed = True
        for idx, insn in self.insns.items():
            if insn.cls != Cls.STX or insn.dst not in pp.get(idx, {}):
                continue
            fn = prog.function_at(idx)
            if fn is None or fn.is_global:
                continue
            where = self.ptrs.get(idx, {}).get(insn.src)
            p = pp[idx].get(insn.src)
            if where is None:
                continue
            if where != OTHER or p is None or p[0] == UNNAMED[0] or (isinstance(p[0], int) and p[0] in may[fn.start]):
                return True
        return False

    def _callee_read_transfer(self, pp: dict[int, dict]):
        insns = self.insns

        def transfer(idx: int, out: frozenset, sets: dict[int, frozenset]) -> frozenset:
            insn = insns[idx]
            if insn.is_exit:
                return frozenset()
            if TOP in out:
                return TOP_SET
            here = pp.get(idx, {})
            reads: set = set()

            def via(reg: int, lo: int, hi: int | None) -> None:
                p = here.get(reg)
                if p is None:
                    return
                j, o = p
                if j == UNNAMED[0]:
                    reads.add(TOP)
                elif not isinstance(j, int):
                    # through a loaded pointer: anywhere, if what was loaded is a stack pointer
                    reads.add(TOP if self.pointers_stored_to_callers else j)
                elif o is None or hi is None:
                    reads.add((j, ANY_SLOT))
                else:
                    reads.add((j, o + lo, o + hi))

            if insn.cls == Cls.LDX or (insn.cls == Cls.STX and insn.mode == isa.MODE_ATOMIC):
                base = insn.src if insn.cls == Cls.LDX else insn.dst
                via(base, insn.off, insn.off + insn.size)
            elif insn.is_call:
                target = self.static_callee.get(idx)
                if target is not None:
                    own = self.ptrs.get(idx, {})
                    for item in sets.get(target, TOP_SET):
                        if item == TOP:
                            reads.add(TOP)
                        elif item[0] == LOADED:
                            # pointers the callee loads from what its argument points to: ours to
                            # trace if that is a caller's memory; our own stack may hold a spilled
                            # pointer into a caller's
                            p = here.get(item[1])
                            if p is None:
                                if own.get(item[1]) is not None:
                                    reads.add(TOP)
                            elif p[0] == UNNAMED[0] or self.pointers_stored_to_callers:
                                reads.add(TOP)
                            else:
                                reads.add((LOADED, p[0]) if isinstance(p[0], int) else p[0])
                        elif item[1] == ANY_SLOT:
                            via(item[0], 0, None)
                        else:
                            via(item[0], item[1], item[2])
                else:
                    sized = self.sized.get(idx, {})
                    for r in self.args.get(idx, CALL_USES):
                        if r not in sized:
                            via(r, 0, None)
                        elif sized[r]:
                            via(r, 0, sized[r])
            if TOP in reads:
                return TOP_SET
            return out | reads if reads else out
        return transfer

    def live_registers(self) -> dict[int, frozenset]:
        """Instruction index -> registers live on entry to it."""
        ud = {idx: _uses_defs(i, self.args) for idx, i in self.insns.items()}

        def transfer(idx: int, out: frozenset, sets: dict[int, frozenset]) -> frozenset:
            uses, defs = ud[idx]
            return self._call_reads(idx, sets, uses) | (out - defs)
        return _solve_backward(self.prog, self.succ, transfer)

    def live_stack_cells(self) -> dict[int, frozenset]:
        """Instruction index -> stack cells of its own frame that may be read later (ANY_SLOT in
        the set: all of them). The kernel's stack liveness: a slot nobody reads again before it
        is overwritten (a loop counter spilled for a call's arguments, say) cannot tell two
        states apart."""
        access = self.access

        def transfer(idx: int, out: frozenset, _sets) -> frozenset:
            acc = access[idx]
            return out if acc is None else (out - acc.kills) | acc.reads
        return _solve_backward(self.prog, self.succ, transfer, EVERY_SLOT)

    def _transfer(self, undecided: dict):
        flow, access, insns = self.flow, self.access, self.insns

        def transfer(idx: int, out: frozenset, sets: dict[int, frozenset]) -> frozenset:
            compared = undecided.get(idx)
            if compared is not None and idx not in self.key_lookups:
                if idx in self.unplaced_stores:
                    # only where the walk found it stored does the value count
                    hit = FOREIGN in compared or ANY_SLOT in out or bool(compared & out)
                    return out | {access[idx].value} if hit else out
                if idx in self.pointer_adds:
                    dst = insns[idx].dst    # numbers added: the sum needs what it adds
                    return (out - {dst}) | compared if dst in out else out
                return out | compared if out & compared else out
            always, if_dst, defs = flow[idx]
            if insns[idx].is_exit:
                always = self._returns(idx, sets)
            else:
                always = self._call_reads(idx, sets, always)
            needed = always | (out - defs)
            if defs & out and if_dst:
                needed |= if_dst
            acc = access[idx]
            if acc is None:
                return needed
            insn = insns[idx]
            if insn.cls == Cls.LDX:
                return needed | acc.reads if acc.value in out else needed
            stored_needed = acc.foreign or ANY_SLOT in out or bool(acc.writes & out) or \
                (ANY_SLOT in acc.writes and _has_slot(out))
            needed = needed - acc.kills
            if stored_needed and acc.value is not None:
                needed |= {acc.value}
            if acc.decides and idx not in undecided and (
                    idx not in self.callee or self._reads_foreign(self.callee[idx], sets)):
                needed |= acc.decides
            if stored_needed and insn.mode == isa.MODE_ATOMIC:
                needed |= acc.reads
            return needed
        return transfer

    def _undecided(self, decided: frozenset | None) -> dict:
        """The instructions whose precision waits on a walk (`decidable`) that `decided` lacks ->
        what they read: the branches' registers, the register additions' registers, the keys of
        array lookups, and for each unplaced store the cells the walk found it storing to."""
        if decided is None:
            return {}
        out = {idx: c for idx, c in self.compares.items() if idx not in decided}
        stored: dict[int, set] = {idx: set() for idx in self.unplaced_stores}
        for x in decided:
            if isinstance(x, tuple) and x[0] in stored:
                stored[x[0]].add(x[1])
        out.update((idx, frozenset(cells)) for idx, cells in stored.items())
        out.update((idx, self.flow[idx][0]) for idx in self.pointer_adds if idx not in decided)
        out.update((idx, self.access[idx].decides) for idx in self.key_lookups if idx not in decided)
        return out

    def precise(self, decided: frozenset | None = None) -> dict[int, frozenset]:
        """Instruction index -> registers (0-10) and stack cells (negative, or ANY_SLOT) whose scalar
        value may still decide something.

        The static counterpart of the kernel's precision marks (mark_chain_precision): a scalar
        matters only if it, or a value computed from it, later reaches a branch, a pointer's
        offset, a call's argument or the return value, directly or through a stack slot. Elsewhere
        (a counter only ever stored to a map, a field read and never compared) two states differing
        in it verify the same, and pruning may treat any old scalar there as covering the current
        one. A branch counts only if it is in `decided` (None: every branch), the jumps whose outcome
        a path's values fixed (check_cond_jmp_op() marks only those): a branch that went both ways
        explored both, whatever the value; it passes precision between its two operands, whose
        ranges it narrows. Conservative where the kernel is exact: stack memory a call is given is
        all precise; a value stored anywhere but the stack is forgotten (loads from maps and
        contexts give unknown scalars).
        """
        return _solve_backward(self.prog, self.succ, self._transfer(self._undecided(decided)), ALL | EVERY_SLOT)

    def extend(self, sets: dict[int, frozenset], decided: frozenset, added) -> dict[int, frozenset]:
        """`precise(decided)` from `sets`, the one for `decided` without `added`: counting
        more decided events only adds precision, so the work starts at them and flows backwards
        (and across calls: into callers, callees' exits, and callers whose stack a callee reads)."""
        transfer = self._transfer(self._undecided(decided))
        sets = dict(sets)
        work = sorted({x[0] if isinstance(x, tuple) else x for x in added} & self.decidable)
        budget = 200 * len(sets)
        while work:
            budget -= 1
            if budget < 0:
                return {idx: ALL | EVERY_SLOT for idx in sets}
            idx = work.pop()
            targets = self.succ[idx]
            out = frozenset().union(*(sets.get(t, ALL | EVERY_SLOT) for t in targets)) if targets else frozenset()
            new = transfer(idx, out, sets)
            if new != sets[idx]:
                sets[idx] = new
                work.extend(self.preds.get(idx, ()))
                work.extend(self.callsites.get(idx, ()))
                work.extend(self.foreign_watch.get(idx, ()))
                work.extend(self.return_watch.get(idx, ()))
        return sets


@dataclass(frozen=True)
class Relevance:
    """What of a state may still matter at each instruction: the three analyses of `Dataflow`, looked up
    the way pruning needs them (the current frame at the instruction, a caller's frame at its
    call: registers as they are when the call returns, stack slots as the callee may read them)."""
    live: dict[int, tuple]           # registers, in order
    precise: dict[int, frozenset]    # registers and stack cells (`at` turns cells into slots)
    slots: dict[int, frozenset]      # stack cells
    decided: frozenset | None = None   # the walk's decided events precision counts (None: all)
    _flow: "Dataflow | None" = field(default=None, compare=False)
    _callers: dict = field(default_factory=dict, compare=False)
    _caller_live: dict = field(default_factory=dict, compare=False)
    _here: dict = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, prog: Program, decided: frozenset | None = None) -> "Relevance":
        flow = Dataflow(prog)
        live = {idx: tuple(sorted(r for r in regs if r < 10)) for idx, regs in flow.live_registers().items()}
        return cls(live, flow.precise(decided), flow.live_stack_cells(), decided, flow)

    @property
    def unplaced_stores(self) -> frozenset:
        """The stores whose cells the walk reports as decided events (Dataflow.unplaced_stores)."""
        return self._flow.unplaced_stores if self._flow is not None else frozenset()

    def with_decided(self, prog: Program, decided: frozenset) -> "Relevance":
        """The same liveness, precision for another set of decided events (from this one's
        when that only adds events)."""
        flow = self._flow or Dataflow(prog)
        if self.decided is not None and self.decided <= decided:
            precise = flow.extend(self.precise, decided, decided - self.decided)
        else:
            precise = flow.precise(decided)
        return Relevance(self.live, precise, self.slots, decided, flow)

    def at(self, idx: int) -> tuple[tuple, frozenset, frozenset]:
        found = self._here.get(idx)
        if found is None:
            precise, slots = self.precise.get(idx), self.slots.get(idx)
            found = self._here[idx] = (self.live.get(idx, ALL_ORDERED),
                                       ALL | EVERY_SLOT if precise is None else _in_slots(precise),
                                       EVERY_SLOT if slots is None else _in_slots(slots), idx)
        return found

    def at_call(self, callsite: int) -> tuple[tuple, frozenset, frozenset]:
        found = self._callers.get(callsite)
        if found is None:
            ret = callsite + 1
            regs = {x for x in self.at(ret)[1] if isinstance(x, int) and x >= 0}
            live, precise, slots = self.at(callsite)[:3]
            found = self._callers[callsite] = (self.live.get(ret, ALL_ORDERED),
                                               frozenset(regs | {x for x in precise if not isinstance(x, int) or x < 0}),
                                               slots)
        return found

    def caller_live(self, callsite: int) -> tuple[int, ...]:
        """The caller's live registers once the call at `callsite` returns that the call keeps
        (r6-r9: r0-r5 are overwritten then), in at_call's order."""
        found = self._caller_live.get(callsite)
        if found is None:
            found = self._caller_live[callsite] = tuple(r for r in self.at_call(callsite)[0] if r in CALLEE_SAVED)
        return found

    def caller_slots(self, st, d: int, idx: int) -> frozenset:
        """The stack slots of frame `d` of `st` (a caller of the innermost frame, which is at
        instruction `idx`) that may be read again: what `d` reads once its call returns, and
        what the frames above it may still read through the pointers into its stack their calls
        were given (Dataflow.callee_reads, placed by the callers' registers at each call)."""
        memo = st.slot_memo
        key = (id(self.slots), d, idx)      # every Relevance of one program shares its slots
        if memo is not None and key in memo:
            return memo[key]
        found = self._caller_slots(st, d, idx)
        if memo is None:
            memo = st.slot_memo = {}
        memo[key] = found
        return found

    def _caller_slots(self, st, d: int, idx: int) -> frozenset:
        frames = st.frames
        callsite = frames[d + 1].callsite
        whole = self.at_call(callsite)[2]
        flow = self._flow
        if flow is None or ANY_SLOT in whole:
            return whole
        after = self.at(callsite + 1)[2]
        reads_of = flow.callee_reads
        depth = len(frames) - 1
        extra: set = set()
        for k in range(d + 1, depth + 1):
            reads = reads_of.get(idx if k == depth else frames[k + 1].callsite + 1, TOP_SET)
            if not reads:
                continue
            if TOP in reads or frames[k].callback:
                return whole
            regs = frames[k - 1].regs
            for item in reads:
                if item[0] == LOADED:
                    if regs[item[1]].type == STACK and _spills_stack_pointer(frames[:k]):
                        return whole    # a pointer loaded from a stack may point into any frame
                    continue
                p = regs[item[0]]
                if p.type != STACK or p.frameno != d:
                    continue
                if p.var_off:
                    return whole
                extra.update(range(p.off // CELL, 0) if item[1] == ANY_SLOT else
                             stack_cells(p.off + item[1], item[2] - item[1]))
        return after | _in_slots(frozenset(extra)) if extra else after


def _spills_stack_pointer(frames) -> bool:
    """Whether one of these frames holds a stack pointer in its stack: the only way a pointer a
    callee loads from its callers' memory can point into a stack, unless the program stores one
    there (Dataflow.pointers_stored_to_callers)."""
    return any(type(v) is Reg and v.type == STACK for fr in frames for v in fr.stack.values())


EXACT = Relevance({}, {}, {})    # everything matters everywhere: no liveness or precision pruning
