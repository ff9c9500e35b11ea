"""The abstract domain: what the verifier knows about registers, stack slots and references.

Mirrors the kernel's ``bpf_reg_state`` / ``bpf_func_state`` / ``bpf_verifier_state`` closely
enough that the same programs are accepted and rejected, and records *why* a value became
unusable (a `Tombstone`) so diagnostics can name the release or unlock that killed it.
Knows nothing about source code or editors.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from operator import attrgetter

U64 = (1 << 64) - 1
S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1

# Register types (base types of the kernel's enum bpf_reg_type)
NOT_INIT = "not_init"
SCALAR = "scalar"
CTX = "ctx"
STACK = "fp"
MAP_PTR = "map_ptr"
MAP_VALUE = "map_value"
BTF_ID = "ptr_"
MEM = "mem"
FUNC = "func"
SOCKET = "sock"
PACKET = "pkt"
PACKET_END = "pkt_end"
ARENA = "arena"            # PTR_TO_ARENA: the kernel does not check arena accesses
ITER = "iter"              # an open-coded iterator's stack slot (bpf_iter_*_new .. _destroy)
DYNPTR = "dynptr"          # a bpf_dynptr: its two stack slots (off 0 and 8), or in a register a
                           # pointer to an initialized one the program may not destroy (CONST_PTR_TO_DYNPTR)
# What the model does not know: the result of a helper or kfunc we have no prototype for, an
# argument of an unknown attach target, a load through such a value. It may be a pointer or a
# number; nothing derived from it is ever reported (the kernel may well accept the program).
ANYTHING = "anything"

# Type flags
MAYBE_NULL = "maybe_null"
ALLOC = "alloc"            # MEM_ALLOC: a program-local object
NON_OWN = "non_own"        # NON_OWN_REF: valid until the lock is released
TRUSTED = "trusted"
RCU = "rcu"
UNTRUSTED = "untrusted"
PERCPU = "percpu"
RINGBUF = "ringbuf"
RDONLY = "rdonly"          # MEM_RDONLY: memory the program may read, not write (bpf_dynptr_slice)


def to_signed(v: int) -> int:
    v &= U64
    return v - (1 << 64) if v >> 63 else v


@dataclass(frozen=True)
class Tombstone:
    """Why a pointer became an unusable scalar."""
    reason: str                     # "released" | "unlocked" | "moved" | "xchg_moved"
    at: int                         # instruction that invalidated it
    acquired_at: int = -1           # instruction that created the reference
    via: str = ""                   # the call that invalidated it
    inserted_at: int = -1           # for "unlocked": where it became non-owning
    inserted_via: str = ""
    type_name: str = ""


# Not frozen: a frozen dataclass's __init__ sets each of these fields through object.__setattr__,
# five times slower than a plain slotted one, and the walk makes a register value at nearly every
# instruction. A Reg is still never changed once made (every change is a new one: evolve(),
# with_dep(), known_better()); equality and hashing stay by value.
@dataclass(slots=True, unsafe_hash=True)
class Reg:
    type: str = NOT_INIT
    off: int = 0
    # scalar bounds (also the value of a known constant)
    umin: int = 0
    umax: int = U64
    smin: int = S64_MIN
    smax: int = S64_MAX
    flags: frozenset = frozenset()
    id: int = 0                     # shared by copies: one NULL check refines all
    ref_obj_id: int = 0             # the reference this pointer carries
    btf_id: int = 0                 # program-BTF type id (local objects, map values)
    type_name: str = ""             # struct name of a BTF pointer
    map: object = None              # MapDef for MAP_PTR / MAP_VALUE
    frameno: int = 0                # STACK: whose frame
    var_off: bool = False           # pointer with an unknown variable offset
    vmin: int = 0                   # var_off: the variable part's signed bounds (added to off)
    vmax: int = 0
    target: int = -1                # FUNC: subprogram start
    mem_size: int = 0
    tomb: Tombstone | None = None
    nonown_at: int = -1             # NON_OWN: where ownership moved to a collection
    nonown_via: str = ""
    load_time: str = ""             # SCALAR: derived from this read-only global, which user space
                                    # sets before loading (the kernel sees its value; we do not)
    load_value: int | None = None   # SCALAR read straight from that global: its value in the object
                                    # (the kernel's, unless user space changes it)
    parent: int = 0                 # MEM: the dynptr (its id) this slice points into
    vague: str = ""                 # SCALAR: computed from what a call outside the model returned
                                    # (its bounds may be known to the kernel, not to us)
    lo32: tuple | None = None       # SCALAR wider than 32 bits: (umin, umax) of its low half, as a
                                    # 32-bit comparison left them (the kernel's u32 bounds)
    s32: tuple | None = None        # SCALAR: the signed range of its low 32 bits where that crosses 0,
                                    # which one unsigned range cannot say (the kernel's s32 bounds)
    # SCALAR: copies of one value share a link (the kernel's scalar id): a comparison that bounds
    # one bounds them all (sync_linked_regs()). `link_off`: this copy is the value plus it, added
    # once by a `link_add`-bit add or subtract (`r2 = r1; r2 += 4`: BPF_ADD_CONST64; 32: the sum
    # is cut to 32 bits). Not part of equality: pruning maps links itself.
    link: int = field(default=0, compare=False)
    link_off: int = field(default=0, compare=False)
    link_add: int = field(default=0, compare=False)
    # SCALAR: the value's node in the walk's precision graph (precision.Dep): which values it was
    # computed from, and whether a decision needed it; None: untracked, always compared exactly
    dep: object = field(default=None, compare=False, repr=False)

    # --- scalars ---
    @property
    def is_scalar(self) -> bool:
        return self.type == SCALAR

    @property
    def is_const(self) -> bool:
        return self.type == SCALAR and self.umin == self.umax

    @property
    def const(self) -> int:
        return self.umin

    @property
    def is_pointer(self) -> bool:
        return self.type not in (NOT_INIT, SCALAR)

    @property
    def maybe_null(self) -> bool:
        return MAYBE_NULL in self.flags

    def has(self, flag: str) -> bool:
        return flag in self.flags

    def evolve(self, **changes) -> "Reg":
        """This value with `changes`: dataclasses.replace() without its per-call walk of the
        fields (six times slower), which the interpreter's every new value would pay."""
        new = Reg(*_REG_FIELDS(self))
        for name, value in changes.items():
            setattr(new, name, value)
        return new

    def with_dep(self, dep, load_time: str | None = None, vague: str | None = None) -> "Reg":
        """This value with another precision node (and load-time or model-gap taint)."""
        new = Reg(*_REG_FIELDS(self))
        new.dep = dep
        if load_time is not None:
            new.load_time = load_time
        if vague is not None:
            new.vague = vague
        return new

    def unlinked(self) -> "Reg":
        """This value, no longer a linked copy of any other."""
        return self.evolve(link=0, link_off=0, link_add=0) if self.link else self

    def known_better(self, was: "Reg") -> "Reg":
        """`was` with these bounds (a comparison's result, bounds only): the same value, known
        better, so the rest stays: why a dead pointer died, its precision node, its link, and
        what makes its bounds less than the kernel's (`vague`) or set at load time."""
        new = Reg(*_REG_FIELDS(self))
        new.tomb, new.dep, new.link, new.link_off, new.link_add = was.tomb, was.dep, was.link, was.link_off, was.link_add
        new.load_time = self.load_time or was.load_time
        new.vague = self.vague or was.vague
        return new

    def with_flags(self, add=(), remove=()) -> "Reg":
        return self.evolve(flags=(self.flags | frozenset(add)) - frozenset(remove))

    def type_str(self) -> str:
        """The kernel's reg_type_str() spelling, used inside its messages."""
        if self.type == SCALAR:
            return "scalar"
        if self.type == NOT_INIT:
            return "?"
        null = "_or_null" if self.maybe_null else ""
        if self.type == BTF_ID:
            pre = ""
            if self.has(UNTRUSTED):
                pre = "untrusted_"
            elif self.has(RCU):
                pre = "rcu_"
            elif self.has(TRUSTED):
                pre = "trusted_"
            if self.has(PERCPU):
                pre += "percpu_"
            return f"{pre}ptr_or_null_" if null else f"{pre}ptr_"
        if self.type == DYNPTR:
            return "dynptr_ptr"
        if self.type == MEM and self.has(RINGBUF):
            return f"ringbuf_mem{null}"
        if self.type == SOCKET:
            view = {"bpf_sock_common": "sock_common", "bpf_tcp_sock": "tcp_sock"}.get(self.type_name, "sock")
            return f"{view}{null}"
        if self.type == ANYTHING:
            return "unknown"
        return f"{self.type}{null}"


_REG_NAMES = tuple(f.name for f in fields(Reg))
_REG_FIELDS = attrgetter(*_REG_NAMES)


def scalar_const(v: int) -> Reg:
    v &= U64
    s = to_signed(v)
    return Reg(SCALAR, umin=v, umax=v, smin=s, smax=s)


def scalar_range(umin: int, umax: int) -> Reg:
    umin, umax = max(0, umin), min(U64, umax)
    if umax <= S64_MAX:
        return Reg(SCALAR, umin=umin, umax=umax, smin=umin, smax=umax)
    return Reg(SCALAR, umin=umin, umax=umax)


def scalar_signed(smin: int, smax: int) -> Reg:
    if smin >= 0:
        return scalar_range(smin, smax)
    return Reg(SCALAR, smin=smin, smax=smax)


UNKNOWN = Reg(SCALAR)
ANY = Reg(ANYTHING)
UNINIT = Reg(NOT_INIT)
ZERO = scalar_const(0)


def dead_pointer(tomb: Tombstone) -> Reg:
    """What a released pointer becomes: an unknown scalar that remembers why."""
    return Reg(SCALAR, tomb=tomb)


@dataclass(frozen=True)
class RefState:
    id: int
    kind: str                      # "local", "task_struct", "ringbuf", "socket", ... (RELEASE_FOR_KIND key)
    acquired_at: int
    via: str                       # acquiring function
    type_name: str = ""


@dataclass(frozen=True)
class LockState:
    holder: tuple                  # ("map", map name) or ("obj", id)
    off: int                       # offset of the bpf_spin_lock inside the value/object
    at: int                        # instruction of bpf_spin_lock


# A stack slot (8 bytes) holds a spilled register or plain bytes.
MISC = "misc"
ZERO_SLOT = "zero"


@dataclass(frozen=True)
class KnownBytes:
    """A slot written by narrow constant stores (`int key = 1;`): the bytes known (little endian),
    None where unknown. The kernel keeps such constants too (a map key it can read back)."""
    known: tuple
    dep: object = field(default=None, compare=False, repr=False)   # as Reg.dep: what the bytes came from

    def store(self, lo: int, size: int, value: int | None, dep=None) -> "KnownBytes | str":
        b = list(self.known)
        for i in range(size):
            b[lo + i] = None if value is None else (value >> (8 * i)) & 0xFF
        return MISC if all(x is None for x in b) else KnownBytes(tuple(b), dep)

    def read(self, lo: int, size: int) -> int | None:
        part = self.known[lo:lo + size]
        if len(part) != size or any(x is None for x in part):
            return None
        return sum(x << (8 * i) for i, x in enumerate(part))


NO_BYTES = KnownBytes((None,) * 8)


@dataclass(frozen=True)
class NarrowSpill:
    """A slot whose first `size` bytes a narrow store of a number wrote (`*(u32 *)(r10 -8) = r1`):
    the kernel keeps the register there (save_register_state()), so a load of at most `size`
    bytes from the slot's start reads its bounds back. `rest`: the zeros the other bytes kept."""
    reg: Reg
    size: int
    rest: KnownBytes = NO_BYTES

    @property
    def dep(self):
        return self.reg.dep


@dataclass
class Frame:
    regs: list[Reg]
    stack: dict[int, object]       # slot index (offset // 8, negative) -> Reg | MISC | ZERO_SLOT | KnownBytes | NarrowSpill
    callsite: int = -1             # instruction in the caller (-1 for the entry frame)
    func_start: int = 0
    callback: str = ""             # "" for ordinary calls; the API that called us otherwise

    def copy(self) -> "Frame":
        return Frame(list(self.regs), dict(self.stack), self.callsite, self.func_start, self.callback)


@dataclass
class State:
    frames: list[Frame]
    refs: dict[int, RefState] = field(default_factory=dict)
    lock: LockState | None = None
    rcu_depth: int = 0
    rcu_at: int = -1
    preempt_depth: int = 0
    preempt_at: int = -1
    in_graph_callback: bool = False
    path_line: int = -1            # last instruction on this path that starts a source line
    prev_line: int = -1            # the one before it
    assumed: str = ""              # a load-time global this path exists for only some values of
    checkpoint: object = None      # the last explored state on this path (interpreter.Explored)
    # Relevance.caller_slots() answers for this state as it is now; whoever changes the state
    # after asking drops it (Interpreter._prune), a copy starts without
    slot_memo: dict | None = field(default=None, compare=False, repr=False)

    @property
    def cur(self) -> Frame:
        return self.frames[-1]

    def copy(self) -> "State":
        return State([f.copy() for f in self.frames], dict(self.refs), self.lock, self.rcu_depth,
                     self.rcu_at, self.preempt_depth, self.preempt_at, self.in_graph_callback, self.path_line,
                     self.prev_line, self.assumed, self.checkpoint)

    # --- every place a value lives: registers and spilled stack slots of all frames ---
    def map_values(self, fn) -> None:
        """Replace each register/spilled value v by fn(v) (fn returns v to keep it)."""
        for fr in self.frames:
            regs = fr.regs
            for i, r in enumerate(regs):
                if r.type != NOT_INIT:
                    nr = fn(r)
                    if nr is not r:
                        regs[i] = nr
            for k, v in fr.stack.items():
                if isinstance(v, Reg):
                    nv = fn(v)
                    if nv is not v:
                        fr.stack[k] = nv

    def forget_lone_links(self) -> None:
        """clear_singular_ids(): a link no other copy shares says nothing; dropped before the state
        is kept for pruning, so that a later state need not share it."""
        counts: dict[int, int] = {}
        for fr in self.frames:
            for r in fr.regs:
                if r.link:
                    counts[r.link] = counts.get(r.link, 0) + 1
            for v in fr.stack.values():
                if type(v) is NarrowSpill:
                    v = v.reg
                if type(v) is Reg and v.link:
                    counts[v.link] = counts.get(v.link, 0) + 1
        if counts and 1 in counts.values():
            lone = {link for link, n in counts.items() if n == 1}
            self.map_values(lambda v: v.unlinked() if v.link in lone else v)
            for fr in self.frames:
                for k, v in fr.stack.items():
                    if type(v) is NarrowSpill and v.reg.link in lone:
                        fr.stack[k] = replace(v, reg=v.reg.unlinked())

    def values(self):
        for fr in self.frames:
            for r in fr.regs:
                yield r
            for v in fr.stack.values():
                if isinstance(v, Reg):
                    yield v
