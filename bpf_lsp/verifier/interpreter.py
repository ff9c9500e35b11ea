"""The abstract interpreter: explores every path of a linked program like the kernel's do_check.

Depth-first over paths with a stack of pending branches, states pruned at join points when an
already-explored state subsumes the current one (ranges contain, pointers equal up to id
renaming, dead registers ignored). Each violation becomes a `Finding`; the path stops there
unless continuing is sound (the bad value is then refined or marked unusable), and other
pending paths are still explored, so one program can report several independent errors.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from ..frontend import isa
from ..frontend.btf import BtfError
from ..frontend.isa import Cls, Insn
from ..frontend.objfile import (DataRef, FuncAddrRef, HelperRef, KconfigRef, KfuncRef, KsymRef, MapRef,
                                Program, SubprogRef)
from .. import codes as C
from . import kfuncs as K
from .domain import (ANY, ANYTHING, ARENA, ITER, ALLOC, BTF_ID, CTX, FUNC, MAP_PTR, MAP_VALUE, MAYBE_NULL, MEM, MISC, NON_OWN,
                     NOT_INIT, PACKET, PACKET_END, PERCPU, RCU, RINGBUF, S64_MAX, S64_MIN, SCALAR,
                     SOCKET, STACK, TRUSTED, U64, UNINIT, UNKNOWN, UNTRUSTED, ZERO, ZERO_SLOT, Frame,
                     LockState, RefState, Reg, State, Tombstone, dead_pointer, scalar_const,
                     scalar_range, to_signed)
from .findings import Finding, InsnStates, ValueSummary, finding
from .liveness import live_registers
from . import struct_ops as SO
from .btf_safety import RCU_PROTECTED_KPTRS, walked_pointer
from .records import LIST_HEAD, LIST_NODE, RB_NODE, RB_ROOT, RecordBuilder
from .scalars import alu_scalar, branch_outcome, refine_branch

MAX_FRAMES = 8
MAX_STATES_PER_INSN = 64
CALLER_SAVED = (1, 2, 3, 4, 5)

# Where packet pointers live in the context (offsets of data / data_end / data_meta).
PACKET_FIELDS = {
    "sched_cls": {76: PACKET, 80: PACKET_END, 140: PACKET},
    "sched_act": {76: PACKET, 80: PACKET_END, 140: PACKET},
    "xdp": {0: PACKET, 4: PACKET_END, 8: PACKET},
    "cgroup_skb": {76: PACKET, 80: PACKET_END},
    "sk_skb": {76: PACKET, 80: PACKET_END},
    "lwt_in": {76: PACKET, 80: PACKET_END}, "lwt_out": {76: PACKET, 80: PACKET_END},
    "lwt_xmit": {76: PACKET, 80: PACKET_END},
}
TRACING_CTX_TYPES = ("tracing", "lsm", "struct_ops")
SKB_SK_FIELD = {"sched_cls": 168, "sched_act": 168, "cgroup_skb": 168, "sk_skb": 168}
# check_map_prog_compatibility(): these may not use maps holding a list head or rbtree root
TRACING_PROG_TYPES = {"kprobe", "tracepoint", "perf_event", "raw_tracepoint", "raw_tracepoint_writable"}
SLEEPABLE_SECTIONS = ("fentry.s/", "fexit.s/", "fmod_ret.s/", "lsm.s/", "iter.s/", "uprobe.s", "uretprobe.s",
                      "struct_ops.s/", "syscall")
# bpf_cast_to_kern_ctx(): the kernel structure behind each program type's context
KERN_CTX_TYPES = {"sched_cls": "sk_buff", "sched_act": "sk_buff", "cgroup_skb": "sk_buff", "socket_filter": "sk_buff",
                  "sk_skb": "sk_buff", "lwt_in": "sk_buff", "lwt_out": "sk_buff", "lwt_xmit": "sk_buff",
                  "xdp": "xdp_buff"}
KCONFIG_PREFIX = ".kconfig:"   # MEM pointers to a `__kconfig` extern carry its name
MAP_IN_MAP_TYPES = (12, 13)   # BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS
HELPER_EXPECTED = {K.RINGBUF_MEM: "ringbuf_mem", K.SOCKET: "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_"}


class StopPath(Exception):
    """The current path cannot continue (the kernel would stop here)."""


@dataclass
class Environment:
    """What the interpreter needs besides the program: records, kernel facts, context arguments."""
    records: RecordBuilder
    ctx_args: list[tuple[str, str]] = field(default_factory=list)  # per u64 ctx slot: (kind, struct)
    ref_args: tuple[int, ...] = ()         # ctx slots that arrive holding a reference (__ref)
    budget: int = 1_000_000
    rcu_fields: frozenset = frozenset()    # (struct, member) pointers tagged __rcu in kernel BTF
    member_rules: object = None            # struct_ops.MemberRules of the member this program implements
    kernel_funcs: dict = field(default_factory=dict)  # kernel BTF FUNCs: name -> (return kind, params)
    ctx_unknown: str = ""                  # why the context's argument types are unknown ("" if known)
    deadline: float = 0.0                  # time.monotonic() after which the analysis stops (0: none)
    kconfig: dict = field(default_factory=dict)   # `__kconfig` extern values (frontend.kconfig)


@dataclass
class VerifyResult:
    findings: list[Finding]
    incomplete: bool
    visited: int
    states: dict[int, InsnStates]
    unsupported: list[str]
    gaps: list[str] = field(default_factory=list)   # unknowns that reached a check (verdict: incomplete)


class Interpreter:
    def __init__(self, prog: Program, env: Environment):
        self.prog = prog
        self.env = env
        self.btf = prog.obj.btf
        self.records = env.records
        self.findings: dict[tuple, Finding] = {}
        self.visited = 0
        self.incomplete = False
        self.unsupported: list[str] = []
        self.gaps: list[str] = []                   # what the model lacked where it mattered
        self.states: dict[int, InsnStates] = {}
        self.explored: dict[int, list[State]] = {}
        self.next_id = 1
        self.live = live_registers(prog)
        self.prune_points = self._prune_points()
        self.verified_callbacks: set[int] = set()
        self.pending: list[tuple[int, State]] = []
        self.ctx_ref_ids: dict[int, int] = {}       # ctx slot -> the reference a __ref argument carries
        self.sleepable = prog.section.lstrip("?").startswith(SLEEPABLE_SECTIONS)
        # instructions that start a source line: the last one on a path is where the kernel's log
        # (and the user) sees an exit that clang shared between several `return`s
        self.line_insns = {i for i in range(len(prog.origins)) if prog.exact_line_at(i) is not None}

    # ---------------------------------------------------------------- driver
    def run(self) -> VerifyResult:
        main = self.prog.functions[0]
        if self._load_time_checks():
            self._explore(main.start, self._entry_state())
        for fn in self.prog.functions[1:]:
            if fn.is_global and not self.incomplete:
                self._explore(fn.start, self._global_entry_state(fn))
        return VerifyResult(sorted(self.findings.values(), key=lambda f: (f.insn, f.code)), self.incomplete,
                            self.visited, self.states, self.unsupported, self.gaps)

    def in_rcu_cs(self, st: State) -> bool:
        """in_rcu_cs(): an explicit RCU section, a held lock, or any non-sleepable program."""
        return bool(st.rcu_depth or st.lock is not None or not self.sleepable)

    def _load_time_checks(self) -> bool:
        """Rules the kernel applies to the whole program before walking it (false: it is rejected)."""
        so = self.prog.struct_ops
        if so is not None and self.env.member_rules is None:
            self._report(finding(C.STRUCT_OPS_MEMBER, 0, member=so.member, type=so.type_name))
            return False
        if self.env.ref_args:
            for insn in self.prog.insns:
                m = self.prog.meanings.get(insn.idx)
                if isinstance(m, HelperRef) and m.name == "bpf_tail_call":
                    self._report(finding(C.REF_ARG_TAIL_CALL, insn.idx))
                    return False
        if self.prog.prog_type in TRACING_PROG_TYPES:
            for insn in self.prog.insns:
                meaning = self.prog.meanings.get(insn.idx)
                if isinstance(meaning, (MapRef, DataRef)):
                    rec = self.records.for_type(meaning.map.value_type_id)
                    if rec.valid and rec.roots:
                        self._report(finding(C.TRACING_GRAPH, insn.idx, prog_type=self.prog.prog_type))
                        return False
        return True

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _entry_state(self) -> State:
        regs = [UNINIT] * 11
        regs[1] = Reg(CTX)
        regs[10] = Reg(STACK, frameno=0)
        st = State([Frame(regs, {}, -1, 0)])
        for slot in self.env.ref_args:
            # struct_ops arguments marked __ref arrive holding a reference (spec §5, do_check_common)
            rid = self._new_id()
            kind, name = self.env.ctx_args[slot] if slot < len(self.env.ctx_args) else ("kernel", "")
            st.refs[rid] = RefState(rid, name or "kernel", 0, "(argument)", name)
            self.ctx_ref_ids[slot] = rid
        return st

    def _global_entry_state(self, fn) -> State:
        regs = [UNINIT] * 11
        regs[10] = Reg(STACK, frameno=0)
        for i, (kind, name, size) in enumerate(self._global_params(fn)[:5]):
            if kind == "ctx":
                regs[i + 1] = Reg(CTX)
            elif kind in ("mem", "mem_nonnull"):
                null = {MAYBE_NULL} if kind == "mem" else set()
                regs[i + 1] = Reg(MEM, flags=frozenset(null), id=self._new_id() if null else 0, mem_size=size,
                                  type_name=name)
            elif kind in ("trusted", "trusted_nullable", "untrusted"):
                flags = {"trusted": {TRUSTED}, "trusted_nullable": {TRUSTED, MAYBE_NULL}}.get(kind, {UNTRUSTED})
                regs[i + 1] = Reg(BTF_ID, type_name=name, flags=frozenset(flags),
                                  id=self._new_id() if MAYBE_NULL in flags else 0)
            elif kind == "arena":
                regs[i + 1] = Reg(ARENA)
            else:
                regs[i + 1] = UNKNOWN
        return State([Frame(regs, {}, -1, fn.start)])

    def _global_params(self, fn) -> list[tuple[str, str, int]]:
        """Global functions are verified alone against their BTF signature (btf_prepare_func_args)."""
        btf = self.btf
        out = []
        if btf is None or not fn.btf_id:
            return [("scalar", "", 0)] * 5
        try:
            proto = btf[btf[fn.btf_id].type_id]
            for i, (pname, ptype) in enumerate(proto.params or []):
                t = btf[btf.resolve(ptype)]
                # __arg_ctx, __arg_trusted, ... (btf_prepare_func_args reads these decl tags)
                tags = {tag[4:] for tag in btf.decl_tags(fn.btf_id, i) if tag.startswith("arg:")}
                if t.kind.name == "PTR":
                    target = btf[btf.resolve(t.type_id)]
                    tname = target.name or ""
                    if tname in ("__sk_buff", "xdp_md", "pt_regs", "bpf_sock_ops", "sk_msg_md",
                                 "bpf_sock_addr", "bpf_perf_event_data") or pname == "ctx" or "ctx" in tags:
                        out.append(("ctx", tname, 0))
                    elif "arena" in tags:
                        out.append(("arena", "", 0))
                    elif tags & {"trusted", "untrusted"}:
                        # a trusted kernel pointer (PTR_TRUSTED | PTR_MAYBE_NULL), or an untrusted one
                        kind = "untrusted" if "untrusted" in tags else \
                            "trusted_nullable" if "nullable" in tags else "trusted"
                        out.append((kind, tname, 0))
                    elif "nonnull" in tags:
                        out.append(("mem_nonnull", tname, btf.size_of(target.id) if target.kind.name != "VOID" else 0))
                    else:
                        out.append(("mem", tname, btf.size_of(target.id) if target.kind.name != "VOID" else 0))
                else:
                    out.append(("scalar", "", 0))
        except Exception:  # malformed BTF: treat every parameter as a scalar
            return [("scalar", "", 0)] * 5
        return out

    def _prune_points(self) -> set[int]:
        points = set()
        for insn in self.prog.insns:
            if insn.is_jump:
                points.add(insn.jump_target)
                points.add(insn.idx + 1)
            elif insn.is_call:
                points.add(insn.idx + 1)
        return points

    def _explore(self, start: int, state: State) -> None:
        self.pending = [(start, state)]
        while self.pending:
            idx, st = self.pending.pop()
            self._run_path(idx, st)

    def _run_path(self, idx: int, st: State) -> None:
        prog = self.prog
        while True:
            if self.visited >= self.env.budget or (
                    self.env.deadline and not self.visited % 512 and time.monotonic() > self.env.deadline):
                if not self.incomplete:
                    self.incomplete = True
                    detail = f"{self.env.budget} instructions" if self.visited >= self.env.budget else \
                        f"its time budget ({self.visited} instructions visited)"
                    self._report(finding(C.ANALYSIS_INCOMPLETE, idx, budget=self.env.budget, detail=detail))
                self.pending.clear()
                return
            insn = prog.insn_at(idx)
            if insn is None:
                self._unsupported(idx, f"a jump to instruction {idx}, which is not an instruction")
                return
            if idx in self.prune_points and self._prune(idx, st):
                return
            self.visited += 1
            if idx in self.line_insns:
                st.prev_line, st.path_line = st.path_line, idx
            self._record(idx, st)
            try:
                nxt = self._step(insn, st)
            except StopPath:
                return
            if nxt is None:
                return
            idx = nxt

    # ---------------------------------------------------------------- reporting
    def _report(self, f: Finding, key: tuple | None = None) -> None:
        k = key if key is not None else (f.code, f.insn)
        if k not in self.findings:
            self.findings[k] = f

    def _fail(self, f: Finding, key: tuple | None = None):
        self._report(f, key)
        raise StopPath

    def _unsupported(self, idx: int, what: str) -> None:
        self.unsupported.append(what)
        self._report(finding(C.UNSUPPORTED, idx, what=what))

    def _gap(self, idx: int, reg: Reg) -> None:
        """An unknown value reached a check: say so once per cause, never as an error."""
        what = reg.type_name or "a value"
        if what not in self.gaps:
            self.gaps.append(what)
            self._report(finding(C.MODEL_GAP, idx, gap=what), key=(C.MODEL_GAP, what))

    # ---------------------------------------------------------------- pruning
    def _prune(self, idx: int, st: State) -> bool:
        seen = self.explored.setdefault(idx, [])
        live = self.live.get(idx)
        for old in reversed(seen):   # recent states first: the likeliest match in a loop
            if _subsumes(old, st, live, self.live.get):
                return True
        # keep the most recent states: in a loop they are the ones later paths of the same
        # iteration can be pruned against (the kernel evicts rarely-hit states similarly)
        seen.append(st.copy())
        if len(seen) > MAX_STATES_PER_INSN:
            del seen[0]
        return False

    # ---------------------------------------------------------------- hover states
    def _record(self, idx: int, st: State) -> None:
        rec = self.states.get(idx)
        if rec is None:
            rec = self.states[idx] = InsnStates()
        rec.paths += 1
        if len(rec.values) > 96:
            return
        depth = len(st.frames) - 1
        fr = st.cur
        for r, reg in enumerate(fr.regs[:10]):
            s = self._summary(f"r{r}", depth, reg, st)
            if s is not None:
                rec.values.add(s)
        for slot, v in fr.stack.items():
            if isinstance(v, Reg):
                s = self._summary(f"fp{slot * 8}", depth, v, st)
                if s is not None:
                    rec.values.add(s)
        if st.lock is not None:
            rec.locks.add((st.lock.holder, st.lock.off, st.lock.at))

    def _summary(self, loc: str, frame: int, reg: Reg, st: State) -> ValueSummary | None:
        if reg.type == SCALAR:
            if reg.tomb is not None:
                return ValueSummary(loc, frame, reg.tomb.reason, reg.tomb.type_name, False, 0,
                                    reg.tomb.acquired_at, f"{reg.tomb.via}@{reg.tomb.at}")
            if reg.is_const and reg.const == 0:
                return ValueSummary(loc, frame, "null", "", False, 0, -1)
            return None
        if reg.type not in (BTF_ID, MEM, SOCKET, MAP_VALUE):
            return None
        ref = st.refs.get(reg.ref_obj_id)
        if reg.has(NON_OWN):
            kind, detail = "non-owning", f"{reg.nonown_via}@{reg.nonown_at}"
        elif ref is not None:
            kind, detail = ("owning" if reg.has(ALLOC) else "referenced"), ref.via
        elif reg.type == MAP_VALUE:
            kind, detail = "map_value", getattr(reg.map, "name", "")
        elif reg.has(UNTRUSTED):
            kind, detail = "untrusted", ""
        elif reg.has(RCU):
            kind, detail = "rcu", ""
        else:
            kind, detail = "trusted", ""
        return ValueSummary(loc, frame, kind, reg.type_name, reg.maybe_null, reg.ref_obj_id,
                            ref.acquired_at if ref else -1, detail)

    # ---------------------------------------------------------------- instructions
    def _step(self, insn: Insn, st: State) -> int | None:
        if insn.dst > 10 or insn.src > 10:
            self._fail(finding(C.INVALID_REGISTER, insn.idx, reg=max(insn.dst, insn.src)))
        cls = insn.cls
        if cls in (Cls.ALU, Cls.ALU64):
            self._alu(insn, st)
            return insn.idx + 1
        if cls == Cls.LDX:
            self._load(insn, st)
            return insn.idx + 1
        if cls in (Cls.ST, Cls.STX):
            if insn.mode == isa.MODE_ATOMIC:
                self._atomic(insn, st)
            else:
                self._store(insn, st)
            return insn.idx + 1
        if cls == Cls.LD:
            if insn.is_ld_imm64:
                self._ld_imm64(insn, st)
                return insn.idx + 2
            if insn.mode in (isa.MODE_ABS, isa.MODE_IND):
                st.cur.regs[0] = UNKNOWN
                for r in CALLER_SAVED:
                    st.cur.regs[r] = UNINIT
                return insn.idx + 1
        if cls in (Cls.JMP, Cls.JMP32):
            if insn.is_exit:
                return self._exit(insn, st)
            if insn.is_call:
                return self._call(insn, st)
            return self._jump(insn, st)
        self._unsupported(insn.idx, f"opcode 0x{insn.code:02x}")
        raise StopPath

    def _read(self, st: State, r: int, idx: int) -> Reg:
        reg = st.cur.regs[r]
        if reg.type == NOT_INIT:
            self._fail(finding(C.UNINITIALIZED_REGISTER, idx, reg=r))
        return reg

    # -- ALU
    def _alu(self, insn: Insn, st: State) -> None:
        regs = st.cur.regs
        wide = insn.cls == Cls.ALU64
        op = insn.op
        if insn.dst == 10:
            self._unsupported(insn.idx, "writes to the frame pointer r10")
            raise StopPath
        src = self._read(st, insn.src, insn.idx) if insn.uses_reg_src and op != isa.END else scalar_const(insn.imm)
        if op == isa.MOV and wide and insn.off == 1 and insn.uses_reg_src:
            # BPF_ADDR_SPACE_CAST: imm 1 makes an arena address a pointer (PTR_TO_ARENA); the
            # other direction gives a number. Arena memory is not checked by the kernel either.
            regs[insn.dst] = Reg(ARENA) if insn.imm == 1 else UNKNOWN
            return
        if op == isa.MOV:
            if insn.off in (8, 16, 32) or not wide:
                regs[insn.dst] = alu_scalar(op, scalar_const(0), src if src.type == SCALAR else UNKNOWN,
                                            wide, insn.off) if src.type == SCALAR else UNKNOWN
            else:
                regs[insn.dst] = src
            return
        dst = self._read(st, insn.dst, insn.idx)
        if dst.type == ANYTHING or src.type == ANYTHING:
            regs[insn.dst] = dst if dst.type == ANYTHING else src
            return
        if dst.type == SCALAR and src.type == SCALAR:
            regs[insn.dst] = alu_scalar(op, dst, src, wide, insn.off, insn.imm)
            return
        if wide and op in (isa.ADD, isa.SUB) and dst.is_pointer and src.type == SCALAR:
            regs[insn.dst] = self._ptr_arith(insn, dst, src, op == isa.SUB)
            return
        if wide and op == isa.ADD and src.is_pointer and dst.type == SCALAR:
            regs[insn.dst] = self._ptr_arith(insn, src, dst, False, reg=insn.src)
            return
        # pointer - pointer, or any other operation involving a pointer: an unknown number
        regs[insn.dst] = UNKNOWN

    def _ptr_arith(self, insn: Insn, ptr: Reg, delta: Reg, negate: bool, reg: int | None = None) -> Reg:
        if ptr.maybe_null:
            r = insn.dst if reg is None else reg
            self._fail(finding(C.NULL_PTR_ARITH, insn.idx, reg=r, type=ptr.type_str(),
                               related=self._acq_rel(ptr, None)))
        if delta.is_const:
            d = to_signed(delta.const)
            return replace(ptr, off=ptr.off - d if negate else ptr.off + d)
        lo, hi = (-delta.smax, -delta.smin) if negate else (delta.smin, delta.smax)
        return replace(ptr, var_off=True, vmin=ptr.vmin + lo, vmax=ptr.vmax + hi)

    # -- memory
    def _mem_base(self, insn: Insn, st: State, r: int, write: bool) -> Reg | None:
        """The pointer an access goes through; None after reporting an access through a dead pointer.

        The path goes on past a dead-pointer access (the loaded value is unknown, the store is
        dropped) so later, independent mistakes on the same path are found too.
        """
        reg = self._read(st, r, insn.idx)
        if reg.type == SCALAR:
            self._bad_deref(insn, st, r, reg, stop=False)
            return None
        if reg.maybe_null:
            self._report(finding(C.NULL_DEREF, insn.idx, reg=r, type=reg.type_str(),
                                 related=self._acq_rel(reg, st)), key=(C.NULL_DEREF, reg.id or insn.idx))
            self._mark_null_check(st, reg, is_null=False)
            reg = st.cur.regs[r]
        if reg.type in (FUNC, MAP_PTR) and write:
            self._fail(finding(C.INVALID_DEREF, insn.idx, reg=r, type=reg.type_str()))
        return reg

    def _bad_deref(self, insn: Insn, st: State, r: int, reg: Reg, stop: bool = True) -> None:
        tomb = reg.tomb
        if tomb is None:
            self._fail(finding(C.INVALID_DEREF, insn.idx, reg=r, type="scalar"))
        code = C.NON_OWNING_AFTER_UNLOCK if tomb.reason == "unlocked" else C.USE_AFTER_RELEASE
        related = {"acquired": tomb.acquired_at, "released": tomb.at, "inserted": tomb.inserted_at}
        f = finding(code, insn.idx, related=related, reg=r, type="scalar", release_call=tomb.via,
                    insert_call=tomb.inserted_via, reason=tomb.reason)
        # one report per invalidation; later uses of the same dead pointer are the same mistake
        if stop:
            self._fail(f, key=(code, tomb.at, tomb.acquired_at))
        self._report(f, key=(code, tomb.at, tomb.acquired_at))

    def _load(self, insn: Insn, st: State) -> None:
        if st.cur.regs[insn.src].type == ANYTHING:
            # through an unknown value: the kernel checks this access, we cannot; the result is
            # unknown too (same cause)
            self._gap(insn.idx, st.cur.regs[insn.src])
            st.cur.regs[insn.dst] = st.cur.regs[insn.src]
            return
        base = self._mem_base(insn, st, insn.src, write=False)
        if base is None:
            st.cur.regs[insn.dst] = UNKNOWN
            return
        off = base.off + insn.off
        size = insn.size
        value = UNKNOWN
        if base.type == STACK:
            value = self._stack_read(st, base, off, size)
        elif base.type == CTX:
            value = self._ctx_load(off, size, st, insn)
        elif base.type == MAP_VALUE and not base.var_off:
            self._special_field_access(insn, base, off, size)
            value = self._map_value_load(st, base, off, size, insn)
        elif base.type == MAP_VALUE:
            self._var_off_map_access(insn, base, size)
        elif base.type == BTF_ID:
            if base.has(ALLOC):
                self._special_field_access(insn, base, off, size)
            value = self._btf_load(insn, base, off, size, st)
        elif base.type == MEM and base.type_name.startswith(KCONFIG_PREFIX) and off == 0:
            known = self.env.kconfig.get(base.type_name[len(KCONFIG_PREFIX):])
            if known is not None:
                value = scalar_const(known & ((1 << (8 * size)) - 1))
        if insn.mode == isa.MODE_MEMSX or (size < 8 and value.type == SCALAR and not value.is_const):
            value = scalar_range(0, (1 << (8 * size)) - 1) if insn.mode != isa.MODE_MEMSX else UNKNOWN
        st.cur.regs[insn.dst] = value

    def _store(self, insn: Insn, st: State) -> None:
        if st.cur.regs[insn.dst].type == ANYTHING:
            self._gap(insn.idx, st.cur.regs[insn.dst])
            return
        base = self._mem_base(insn, st, insn.dst, write=True)
        if base is None:
            return
        off = base.off + insn.off
        if insn.cls == Cls.STX:
            value = self._read(st, insn.src, insn.idx)
        else:
            value = scalar_const(insn.imm)
        if base.type == STACK:
            self._stack_write(st, base, off, insn.size, value)
        elif base.type == MAP_VALUE and base.var_off:
            self._var_off_map_access(insn, base, insn.size)
        elif base.type == MAP_VALUE and not base.var_off:
            self._special_field_access(insn, base, off, insn.size)
            rec = self.records.for_type(base.map.value_type_id) if base.map is not None else None
            if rec is not None and rec.valid:
                kptr = rec.kptrs.get(off)
                if kptr is not None and insn.size != 8:
                    self._fail(finding(C.KPTR_SIZE, insn.idx))
                if kptr is not None and kptr.referenced and not (value.is_const and value.const == 0):
                    self._fail(finding(C.STORE_REFERENCED_KPTR, insn.idx, off=off))
        elif base.type == BTF_ID and base.has(ALLOC):
            self._special_field_access(insn, base, off, insn.size)
        elif base.type == BTF_ID:
            self._kernel_object_store(insn, base, off)

    def _atomic(self, insn: Insn, st: State) -> None:
        base = self._mem_base(insn, st, insn.dst, write=True) if st.cur.regs[insn.dst].type != ANYTHING else None
        if base is not None and base.type == STACK:
            self._stack_write(st, base, base.off + insn.off, insn.size, UNKNOWN)
        if insn.imm == isa.ATOMIC_CMPXCHG:
            st.cur.regs[0] = UNKNOWN
        elif insn.imm & isa.FETCH or insn.imm == isa.LOAD_ACQ:
            st.cur.regs[insn.src if insn.imm != isa.LOAD_ACQ else insn.dst] = UNKNOWN

    def _stack_frame(self, st: State, base: Reg) -> Frame:
        return st.frames[min(base.frameno, len(st.frames) - 1)]

    def _stack_read(self, st: State, base: Reg, off: int, size: int) -> Reg:
        if base.var_off:
            return UNKNOWN
        fr = self._stack_frame(st, base)
        slot = fr.stack.get(off // 8)
        if isinstance(slot, Reg) and size == 8 and off % 8 == 0:
            return slot
        if slot == ZERO_SLOT:
            return ZERO
        if isinstance(slot, Reg) and slot.type == SCALAR and slot.is_const and size < 8:
            return scalar_const((slot.const >> (8 * (off % 8))) & ((1 << (8 * size)) - 1))
        return UNKNOWN

    def _stack_write(self, st: State, base: Reg, off: int, size: int, value: Reg) -> None:
        fr = self._stack_frame(st, base)
        if base.var_off:
            return
        slot = off // 8
        if size == 8 and off % 8 == 0:
            fr.stack[slot] = value
        elif value.is_const and value.const == 0 and isinstance(fr.stack.get(slot), str):
            pass
        else:
            fr.stack[slot] = MISC

    def _ctx_load(self, off: int, size: int, st: State, insn: Insn) -> Reg:
        ptype = self.prog.prog_type
        if off < 0:
            self._fail(finding(C.INVALID_CTX_ACCESS, insn.idx, off=off, size=size))
        if self.env.ctx_unknown:
            return replace(ANY, type_name=self.env.ctx_unknown)
        if ptype in TRACING_CTX_TYPES and size == 8 and off % 8 == 0:
            slot = off // 8
            if slot < len(self.env.ctx_args):
                kind, name = self.env.ctx_args[slot]
                if slot in self.env.ref_args:
                    rid = self.ctx_ref_ids.get(slot)
                    if rid not in st.refs:
                        # the argument's reference was released (or never given, in a global function)
                        self._fail(finding(C.CTX_REF_RELEASED, insn.idx, off=off))
                    return Reg(BTF_ID, type_name=name, flags=frozenset({TRUSTED}), ref_obj_id=rid)
                if kind == "ptr":
                    return Reg(BTF_ID, type_name=name, flags=frozenset({TRUSTED}))
            return UNKNOWN
        kind = PACKET_FIELDS.get(ptype, {}).get(off)
        if kind is not None:
            return Reg(kind)
        if ptype in SKB_SK_FIELD and off == SKB_SK_FIELD[ptype] and size == 8:
            # __sk_buff->sk: a socket the program does not own, maybe NULL
            return Reg(SOCKET, type_name="bpf_sock", flags=frozenset({MAYBE_NULL}), id=self._new_id())
        return UNKNOWN

    def _special_field_access(self, insn: Insn, base: Reg, off: int, size: int) -> None:
        """Locks, heads and nodes belong to their kfuncs: no direct loads or stores; kptrs whole only."""
        if base.type == MAP_VALUE:
            rec = self.records.for_type(base.map.value_type_id) if base.map is not None else None
            variant = ""
            if rec is not None and rec.valid:
                for k in rec.kptrs.values():
                    if k.off < off + size and off < k.off + 8 and off != k.off:
                        self._fail(finding(C.KPTR_MISALIGNED, insn.idx, expected=k.off, off=off))
        else:
            rec = self.records.for_type(base.btf_id)
            variant = "object"
        if rec is None or not rec.valid:
            return
        for foff, (name, fsize) in rec.special.items():
            if off < foff + fsize and foff < off + size:
                self._fail(finding(C.SPECIAL_FIELD_ACCESS, insn.idx, field=name, variant=variant))

    def _kernel_object_store(self, insn: Insn, base: Reg, off: int) -> None:
        """Kernel objects are read-only, except fields a struct_ops type's btf_struct_access allows."""
        rules = self.env.member_rules
        if self.prog.prog_type == "struct_ops" and (rules is None or not rules.writable):
            return   # other struct_ops types (tcp_congestion_ops, ...) have their own write rules
        if self.prog.prog_type != "struct_ops":
            self._fail(finding(C.KERNEL_STORE, insn.idx, struct=base.type_name, off=off, variant="read_only"))
        field = ""
        if self.btf is not None:
            try:
                struct = self.btf.struct_by_name(base.type_name)
                path = self.btf.member_at(struct.id, off) if struct is not None else []
                field = path[0][0] if path else ""
            except (BtfError, KeyError, IndexError, AttributeError):
                field = ""
        if (base.type_name, field) not in rules.writable:
            self._fail(finding(C.KERNEL_STORE, insn.idx, struct=base.type_name, off=off))

    def _var_off_map_access(self, insn: Insn, base: Reg, size: int) -> None:
        rec = self.records.for_type(base.map.value_type_id) if base.map is not None else None
        if rec is None or not rec.valid or not rec.kptrs:
            return
        lo, hi = base.off + insn.off + base.vmin, base.off + insn.off + base.vmax + size
        if base.map.value_size and (lo < 0 or hi > base.map.value_size):
            return   # bounds we do not track (the kernel's own bounds check decides): unknown
        if any(k.off < hi and lo < k.off + 8 for k in rec.kptrs.values()):
            # the access may land on a kptr (check_map_kptr_access: variable offsets are refused)
            self._fail(finding(C.KPTR_VAR_OFF, insn.idx))

    def _map_value_load(self, st: State, base: Reg, off: int, size: int, insn: Insn) -> Reg:
        rec = self.records.for_type(base.map.value_type_id) if base.map is not None else None
        if rec is None or not rec.valid:
            return UNKNOWN
        kptr = rec.kptrs.get(off)
        if kptr is not None and size != 8:
            self._fail(finding(C.KPTR_SIZE, insn.idx))
        if kptr is not None and size == 8:
            flags = {MAYBE_NULL}
            protected = kptr.type_name in RCU_PROTECTED_KPTRS or (
                kptr.local and self.records.for_type(kptr.btf_id).refcount_off is not None)
            flags.add(RCU if kptr.referenced and protected and self.in_rcu_cs(st) else UNTRUSTED)
            if kptr.local:
                flags.add(ALLOC)
            return Reg(BTF_ID, type_name=kptr.type_name, btf_id=kptr.btf_id, flags=frozenset(flags),
                       id=self._new_id())
        return UNKNOWN

    def _btf_load(self, insn: Insn, base: Reg, off: int, size: int, st: State) -> Reg:
        """Loads through BTF pointers give scalars, or pointers whose trust follows check_ptr_to_btf_access."""
        btf = self.btf
        if btf is None or not base.type_name or size != 8:
            return UNKNOWN
        try:
            struct = btf.struct_by_name(base.type_name)
            if struct is None or struct.kind.name != "STRUCT":
                return UNKNOWN
            path = btf.member_at(struct.id, off)
            if not path:
                return UNKNOWN
            field_name, leaf = path[-1]
            t = btf[btf.resolve(leaf.id)] if hasattr(leaf, "id") else None
            if t is not None and t.kind.name == "PTR":
                target = btf[btf.resolve(t.type_id)]
                if target.kind.name in ("STRUCT", "UNION") and target.name:
                    return self._walked(st, base, field_name, target.name)
        except (BtfError, KeyError, IndexError, AttributeError):  # malformed BTF: a scalar is the safe answer
            return UNKNOWN
        return UNKNOWN

    def _walked(self, st: State, base: Reg, field_name: str, target: str) -> Reg:
        trusted_base = not base.maybe_null and (base.ref_obj_id or base.has(TRUSTED) or base.has(RCU)) \
            and not base.has(UNTRUSTED)
        if base.has(ALLOC) or not trusted_base:
            return Reg(BTF_ID, type_name=target, flags=frozenset({UNTRUSTED}))
        kind = walked_pointer(base.type_name, field_name, (base.type_name, field_name) in self.env.rcu_fields)
        if kind == "trusted":
            return Reg(BTF_ID, type_name=target, flags=frozenset({TRUSTED}))
        if kind == "trusted_or_null":
            return Reg(BTF_ID, type_name=target, flags=frozenset({TRUSTED, MAYBE_NULL}), id=self._new_id())
        if kind in ("rcu", "rcu_or_null") and self.in_rcu_cs(st):
            flags = {RCU} | ({MAYBE_NULL} if kind == "rcu_or_null" else set())
            return Reg(BTF_ID, type_name=target, flags=frozenset(flags), id=self._new_id() if MAYBE_NULL in flags else 0)
        # walking any other pointer gives the old, neither trusted nor untrusted PTR_TO_BTF_ID
        return Reg(BTF_ID, type_name=target)

    def _ld_imm64(self, insn: Insn, st: State) -> None:
        meaning = self.prog.meanings.get(insn.idx)
        regs = st.cur.regs
        if isinstance(meaning, MapRef):
            regs[insn.dst] = Reg(MAP_PTR, map=meaning.map)
        elif isinstance(meaning, DataRef):
            regs[insn.dst] = Reg(MAP_VALUE, map=meaning.map, off=meaning.offset)
        elif isinstance(meaning, FuncAddrRef):
            regs[insn.dst] = Reg(FUNC, target=meaning.target)
        elif isinstance(meaning, KsymRef) and not meaning.kernel:
            regs[insn.dst] = replace(ANY, type_name=f"the extern variable {meaning.name} (defined in another file)")
        elif isinstance(meaning, KsymRef):
            regs[insn.dst] = Reg(BTF_ID, type_name=meaning.name, flags=frozenset({TRUSTED}))
        elif isinstance(meaning, KconfigRef):
            regs[insn.dst] = Reg(MEM, type_name=KCONFIG_PREFIX + meaning.name, mem_size=meaning.size)
        else:
            regs[insn.dst] = scalar_const(insn.imm64)

    # -- control flow
    def _jump(self, insn: Insn, st: State) -> int | None:
        op = insn.op
        if op == isa.JA:
            return insn.jump_target
        if op == isa.JCOND:  # may_goto: bounded by the kernel; explore both ways
            self.pending.append((insn.jump_target, st.copy()))
            return insn.idx + 1
        wide = insn.cls == Cls.JMP
        dst = self._read(st, insn.dst, insn.idx)
        src = self._read(st, insn.src, insn.idx) if insn.uses_reg_src else scalar_const(insn.imm)
        # NULL checks: a maybe-NULL pointer compared with 0
        ptr, other = (dst, src) if dst.is_pointer else (src, dst)
        if ptr.is_pointer and other.type == SCALAR and other.is_const and other.const == 0 and op in (isa.JEQ, isa.JNE):
            if not ptr.maybe_null and _not_null(ptr):
                # a pointer known to be valid is never NULL: only one way is possible
                return insn.jump_target if op == isa.JNE else insn.idx + 1
            if not ptr.maybe_null:
                # e.g. an RCU or plain BTF pointer: the kernel explores both ways, unchanged
                self.pending.append((insn.jump_target, st.copy()))
                return insn.idx + 1
            taken_null = op == isa.JEQ
            other_st = st.copy()
            self._mark_null_check(other_st, ptr, is_null=not taken_null)  # fall-through state
            self._mark_null_check(st, ptr, is_null=taken_null)            # taken state
            self.pending.append((insn.jump_target, st))
            return self._continue_with(insn.idx + 1, other_st)
        if dst.type == SCALAR and src.type == SCALAR:
            outcome = branch_outcome(op, dst, src, wide)
            if outcome is True:
                return insn.jump_target
            if outcome is False:
                return insn.idx + 1
            taken = st.copy()
            t_dst, t_src = refine_branch(op, dst, src, wide, True)
            f_dst, f_src = refine_branch(op, dst, src, wide, False)
            self._set_refined(taken, insn, t_dst, t_src)
            self._set_refined(st, insn, f_dst, f_src)
            self.pending.append((insn.jump_target, taken))
            return insn.idx + 1
        self.pending.append((insn.jump_target, st.copy()))
        return insn.idx + 1

    def _continue_with(self, idx: int, new_state: State):
        """Continue the current path with a different state object (swap in place)."""
        self.pending.append((idx, new_state))
        raise StopPath

    def _set_refined(self, st: State, insn: Insn, dst: Reg, src: Reg) -> None:
        regs = st.cur.regs
        # refine only the compared registers (sound); keep why a dead pointer died
        if regs[insn.dst].tomb is not None:
            dst = replace(dst, tomb=regs[insn.dst].tomb)
        regs[insn.dst] = dst
        if insn.uses_reg_src:
            if regs[insn.src].tomb is not None:
                src = replace(src, tomb=regs[insn.src].tomb)
            regs[insn.src] = src

    def _mark_null_check(self, st: State, ptr: Reg, is_null: bool) -> None:
        """Refine every copy of a maybe-NULL pointer (same id) after a NULL check."""
        pid = ptr.id
        if not pid:
            return
        if is_null:
            ref = ptr.ref_obj_id
            st.map_values(lambda v: ZERO if v.id == pid and v.is_pointer else v)
            if ref and ref in st.refs:
                # a NULL result holds no reference (mark_ptr_or_null_regs releases it)
                del st.refs[ref]
        else:
            st.map_values(lambda v: v.with_flags(remove={MAYBE_NULL}) if v.id == pid and v.is_pointer else v)

    # -- exit
    def _exit(self, insn: Insn, st: State) -> int | None:
        fr = st.cur
        if len(st.frames) > 1:
            r0 = fr.regs[0]
            if fr.callback == "rbtree_less":
                # `less` was explored on its own branch; bpf_rbtree_add's effects are on the main path
                return None
            st.frames.pop()
            if fr.callback:
                # bpf_loop: back in the caller after the helper, with whatever the callback acquired
                self._clobber(st, UNKNOWN)
                return fr.callsite + 1
            caller = st.cur
            caller.regs[0] = r0
            for r in CALLER_SAVED:
                caller.regs[r] = UNINIT
            return fr.callsite + 1
        self._exit_checks(insn, st)
        return None

    def _exit_checks(self, insn: Insn, st: State) -> None:
        path = st.path_line
        rules = self.env.member_rules
        returned_ref = 0
        if self.prog.prog_type == "struct_ops" and rules is not None and rules.returns:
            # a pointer-returning member hands R0's reference back to the kernel (check_reference_leak)
            returned_ref = st.cur.regs[0].ref_obj_id
        # clang shares one exit between returns: its own line is the closing brace, while the
        # `return` that led here is the previous line on the path, where the user looks
        prev = st.prev_line
        if st.lock is not None:
            self._report(finding(C.LOCK_HELD_AT_EXIT, insn.idx, related={"locked": st.lock.at, "path": path, "path_prev": prev},
                                 lock=st.lock.holder, lock_off=st.lock.off))
        for ref in sorted(st.refs.values(), key=lambda r: r.acquired_at):
            if ref.id == returned_ref:
                continue
            slot = next((sl for sl, rid in self.ctx_ref_ids.items() if rid == ref.id), None)
            so = self.prog.struct_ops
            self._report(finding(C.REFERENCE_LEAK, insn.idx, related={"acquired": ref.acquired_at, "path": path, "path_prev": prev},
                                 ref=ref.id, alloc_insn=ref.acquired_at, via=ref.via, kind=ref.kind,
                                 type_name=ref.type_name, arg_slot=slot,
                                 member=f"{so.type_name}.{so.member}" if so else None),
                         key=(C.REFERENCE_LEAK, path, ref.acquired_at))
        if st.rcu_depth:
            self._report(finding(C.RCU_HELD_AT_EXIT, insn.idx, related={"rcu_locked": st.rcu_at, "path": path, "path_prev": prev}))
        if st.preempt_depth:
            self._report(finding(C.PREEMPT_AT_EXIT, insn.idx, related={"locked": st.preempt_at, "path": path,
                                                                        "path_prev": prev}))
        r0 = st.cur.regs[0]
        if self.prog.prog_type == "struct_ops":
            if rules is not None and rules.returns:
                self._struct_ops_return(insn, st, r0, rules.returns)
            return   # other members: void or int, not checked
        if r0.type == NOT_INIT:
            self._report(finding(C.UNINITIALIZED_REGISTER, insn.idx, reg=0))
        elif r0.type == ANYTHING:
            self._gap(insn.idx, r0)
        elif r0.type != SCALAR and self.prog.prog_type != "struct_ops":
            self._report(finding(C.INVALID_RETURN, insn.idx, type=r0.type_str()))

    def _struct_ops_return(self, insn: Insn, st: State, r0: Reg, want: str) -> None:
        """check_return_code: a referenced `want` pointer at offset 0, or exactly 0 (NULL)."""
        related = {"path": st.path_line, "path_prev": st.prev_line}
        if r0.type == ANYTHING:
            self._gap(insn.idx, r0)
            return
        if r0.type == SCALAR:
            if r0.is_const and r0.const == 0:
                return
            if r0.is_const:
                self._report(finding(C.STRUCT_OPS_RETURN, insn.idx, related=related, variant="const",
                                     smin=to_signed(r0.const), smax=to_signed(r0.const), want=want))
            else:
                tomb = r0.tomb
                self._report(finding(C.STRUCT_OPS_RETURN, insn.idx, related={**related, **(
                    {"released": tomb.at, "acquired": tomb.acquired_at} if tomb else {})},
                    variant="scalar", want=want))
            return
        if r0.type == BTF_ID and r0.ref_obj_id and r0.type_name == want and not r0.has(ALLOC):
            if r0.off:
                self._report(finding(C.MODIFIED_NULL_PTR, insn.idx, reg=0, type=r0.type_str(), off=r0.off))
            return
        self._report(finding(C.STRUCT_OPS_RETURN, insn.idx, related=related, type=r0.type_str(), want=want))

    # -- calls
    def _call(self, insn: Insn, st: State) -> int | None:
        meaning = self.prog.meanings.get(insn.idx)
        if isinstance(meaning, SubprogRef):
            return self._subprog_call(insn, st, meaning)
        if isinstance(meaning, KfuncRef):
            sem = K.lookup_kfunc(meaning.name)
            name = meaning.name
            if sem.generated and not self._is_kernel_function(name):
                # not a kfunc we know of: a function of another file of this program, or a
                # kfunc newer than our table; its result is unknown
                sem = None
        elif isinstance(meaning, HelperRef):
            sem = K.lookup_helper(meaning.id)
            name = meaning.name
        else:
            self._unsupported(insn.idx, "a call whose target could not be resolved")
            raise StopPath
        if st.lock is not None and not (sem is not None and (sem.graph_api or sem.effect == K.EFFECT_UNLOCK)):
            self._report(finding(C.CALL_UNDER_LOCK, insn.idx, related={"locked": st.lock.at}, func=name,
                                 lock=st.lock.holder))
            if sem is not None and sem.effect == K.EFFECT_LOCK:
                raise StopPath
        if isinstance(meaning, HelperRef) and (sem is None or sem.effect != K.EFFECT_KPTR_XCHG):
            self._no_indirect_kptr(insn, st)
        if sem is None:
            # a function outside our model: no ownership effect known, the result is unknown
            self._clobber(st, replace(ANY, type_name=f"what {name}() returns"))
            return insn.idx + 1
        allowed = SO.KFUNC_MEMBERS.get(name)
        so = self.prog.struct_ops
        if allowed is not None and (so is None or (so.type_name, so.member) not in allowed):
            self._fail(finding(C.KFUNC_NOT_ALLOWED, insn.idx, func=name, prog_type=self.prog.prog_type))
        if not sem.is_helper and self.prog.prog_type != "unknown" and not K.kfunc_allowed(sem, self.prog.prog_type):
            self._fail(finding(C.KFUNC_NOT_ALLOWED, insn.idx, func=name, prog_type=self.prog.prog_type))
        return CallChecker(self, insn, st, sem).run()

    def _is_kernel_function(self, name: str) -> bool:
        return name in K.kernel_table()["kfuncs"] or name in self.env.kernel_funcs

    def _no_indirect_kptr(self, insn: Insn, st: State) -> None:
        for r in CALLER_SAVED:
            reg = st.cur.regs[r]
            if reg.type != MAP_VALUE or reg.map is None:
                continue
            rec = self.records.for_type(reg.map.value_type_id)
            if rec.valid and any(k.off <= reg.off < k.off + 8 for k in rec.kptrs.values()):
                self._fail(finding(C.KPTR_INDIRECT, insn.idx, reg=r))

    def _subprog_call(self, insn: Insn, st: State, ref: SubprogRef) -> int | None:
        fn = self.prog.function_at(ref.target)
        if fn is not None and fn.is_global:
            if st.lock is not None:
                self._report(finding(C.CALL_UNDER_LOCK, insn.idx, related={"locked": st.lock.at},
                                     func=fn.name, lock=st.lock.holder))
            for r in range(1, 6):
                pass
            self._clobber(st, UNKNOWN)
            return insn.idx + 1
        if len(st.frames) >= MAX_FRAMES:
            # the kernel rejects the whole program here; exploring the other paths would only
            # recurse again until the budget runs out
            self._unsupported(insn.idx, "calls nested deeper than 8 frames")
            self.pending.clear()
            raise StopPath
        caller = st.cur
        regs = [UNINIT] * 11
        for r in CALLER_SAVED:
            regs[r] = caller.regs[r]
        regs[10] = Reg(STACK, frameno=len(st.frames))
        st.frames.append(Frame(regs, {}, insn.idx, ref.target))
        return ref.target

    def _clobber(self, st: State, r0: Reg) -> None:
        regs = st.cur.regs
        for r in CALLER_SAVED:
            regs[r] = UNINIT
        regs[0] = r0

    def _acq_rel(self, reg: Reg, st: State | None) -> dict[str, int]:
        """Related instruction: where the reference/maybe-NULL value was created."""
        if st is not None and reg.ref_obj_id in st.refs:
            return {"acquired": st.refs[reg.ref_obj_id].acquired_at}
        return {"acquired": self.null_origin.get(reg.id, -1)} if reg.id else {}

    @property
    def null_origin(self) -> dict[int, int]:
        if not hasattr(self, "_null_origin"):
            self._null_origin = {}
        return self._null_origin

    # -- references
    def acquire(self, st: State, kind: str, at: int, via: str, type_name: str) -> int:
        rid = self._new_id()
        st.refs[rid] = RefState(rid, kind, at, via, type_name)
        return rid

    def release(self, st: State, ref_id: int, tomb: Tombstone) -> None:
        st.refs.pop(ref_id, None)
        st.map_values(lambda v: dead_pointer(tomb) if v.ref_obj_id == ref_id and v.is_pointer else v)

    def verify_callback(self, insn: Insn, st: State, target: int, args: list[Reg], kind: str) -> None:
        """Explore a callback body on its own branch, with the caller's frames beneath it."""
        key = (target, kind)
        if key in self.verified_callbacks:
            return
        self.verified_callbacks.add(key)
        cb = st.copy()
        regs = [UNINIT] * 11
        for i, a in enumerate(args[:5]):
            regs[i + 1] = a
        regs[10] = Reg(STACK, frameno=len(cb.frames))
        cb.frames.append(Frame(regs, {}, insn.idx, target, callback=kind))
        if kind == "rbtree_less":
            cb.in_graph_callback = True
        self.pending.append((target, cb))


class CallChecker:
    """Checks one helper/kfunc call against its `Semantics` record and applies its effects."""

    def __init__(self, it: Interpreter, insn: Insn, st: State, sem: K.Semantics):
        self.it, self.insn, self.st, self.sem = it, insn, st, sem
        self.regs = st.cur.regs
        self.ref_arg: tuple[int, Reg] | None = None     # (arg index, reg) carrying a reference
        self.root_arg: tuple[int, Reg, object] | None = None   # graph root: (index, reg, GraphRoot)
        self.node_arg: tuple[int, Reg] | None = None
        self.local_type: tuple[int, str] | None = None
        self.kptr = None
        self.lock_target: tuple | None = None
        self.unknown_args = False                 # an argument was an unknown value

    def fail(self, code: str, related: dict | None = None, key=None, **args):
        self.it._fail(finding(code, self.insn.idx, related=related, func=self.sem.name, **args), key)

    def report(self, code: str, related: dict | None = None, **args):
        self.it._report(finding(code, self.insn.idx, related=related, func=self.sem.name, **args))

    def run(self) -> int | None:
        sem = self.sem
        for i, arg in enumerate(sem.args):
            self.check_arg(i, arg)
        self.check_release_target()
        self.apply_effect()
        return self.insn.idx + 1

    # ---- arguments
    def check_arg(self, i: int, arg: K.Arg) -> None:
        r = i + 1
        reg = self.regs[r]
        kind = arg.kind
        if kind in (K.IGNORED, K.ANY):
            return
        if reg.type == NOT_INIT:
            self.fail(C.UNINITIALIZED_REGISTER, reg=r)
        if reg.type == ANYTHING:
            if kind not in (K.SCALAR, K.CONST, K.MEM_SIZE, K.CALLBACK):
                self.it._gap(self.insn.idx, reg)
                self.unknown_args = True
            return
        if kind in (K.SCALAR, K.CONST, K.MEM_SIZE, K.LOCAL_TYPE_ID):
            if kind == K.LOCAL_TYPE_ID and reg.is_const:
                self.local_type = (int(reg.const), "")
            return
        if kind == K.CALLBACK:
            if reg.type == FUNC:
                self.callback_target = reg.target
            return
        trusted_checked = self.sem.has(K.TRUSTED_ARGS) or self.sem.has(K.RELEASE) or self.sem.has(K.RCU) \
            or kind in (K.ALLOC_OBJ, K.REFCOUNTED_OBJ)
        if self.sem.is_helper and kind in HELPER_EXPECTED:
            # helper release arguments are type-checked first (check_reg_type): NULL-able or dead fails here
            expected = HELPER_EXPECTED[kind]
            ok_type = (kind == K.RINGBUF_MEM and reg.type == MEM and reg.has(RINGBUF)) or \
                (kind == K.SOCKET and reg.type in (SOCKET, BTF_ID))
            if not ok_type or reg.maybe_null:
                tomb = reg.tomb
                self.fail(C.HELPER_ARG_TYPE, related=self._tomb_related(reg), reg=r, type=reg.type_str(),
                          expected=expected, state=self._state_words(reg), reason=tomb.reason if tomb else "",
                          release_call=tomb.via if tomb else "")
        if reg.is_pointer and reg.maybe_null and not arg.nullable:
            if self.sem.is_helper:
                if kind in (K.KPTR_NEW, K.MEM, K.MAP_KEY, K.MAP_VALUE_MEM):
                    variant = "local" if kind == K.KPTR_NEW and reg.has(ALLOC) else ""
                    self.it._report(finding(C.HELPER_NULL_ARG, self.insn.idx, func=self.sem.name, arg=r,
                                            variant=variant, related=self.it._acq_rel(reg, self.st)))
                    self.it._mark_null_check(self.st, reg, is_null=False)
                    reg = self.regs[r]
            elif trusted_checked or kind in (K.LIST_NODE, K.RB_NODE_ADD, K.RB_NODE_REMOVE, K.KERNEL_OBJ):
                self.it._report(finding(C.NULL_ARG, self.insn.idx, func=self.sem.name, arg=i, reg=r,
                                        related=self.it._acq_rel(reg, self.st)),
                                key=(C.NULL_ARG, reg.id or self.insn.idx))
                # keep going as if it had been checked: later findings are then independent ones
                self.it._mark_null_check(self.st, reg, is_null=False)
                reg = self.regs[r]
        # after the NULL checks: the kernel reports a possibly-NULL trusted argument first
        if not self.sem.is_helper and reg.is_pointer and reg.maybe_null and reg.off and kind not in (K.IGNORED,):
            self.fail(C.MODIFIED_NULL_PTR, related=self.it._acq_rel(reg, self.st), reg=r, type=reg.type_str(),
                      off=reg.off)
        if reg.ref_obj_id and reg.is_pointer:
            self.ref_arg = (i, reg)
        handler = getattr(self, "arg_" + kind, None)
        if handler is not None:
            handler(i, r, reg, arg, trusted_checked)

    @staticmethod
    def _tomb_related(reg: Reg) -> dict:
        tomb = reg.tomb
        if tomb is None:
            return {}
        return {"acquired": tomb.acquired_at, "released": tomb.at, "inserted": tomb.inserted_at}

    def _state_words(self, reg: Reg) -> str:
        if reg.type == SCALAR and reg.tomb is not None:
            return "released" if reg.tomb.reason != "unlocked" else "unlocked"
        if reg.has(NON_OWN):
            return "non_owning"
        if reg.type == SCALAR:
            return "scalar"
        return "untrusted"

    def _trusted(self, reg: Reg) -> bool:
        if reg.ref_obj_id:
            return True
        if reg.type in (BTF_ID,) and (reg.flags & {ALLOC, TRUSTED, NON_OWN}) and not reg.has(UNTRUSTED):
            return True
        return False

    def _need_trusted(self, r: int, reg: Reg, arg: K.Arg) -> None:
        if self._trusted(reg):
            return
        if self.sem.has(K.RCU) and reg.type == BTF_ID and reg.has(RCU):
            return
        tomb = reg.tomb
        related = {}
        if tomb is not None:
            related = {"acquired": tomb.acquired_at, "released": tomb.at, "inserted": tomb.inserted_at}
        if self.sem.has(K.RCU) and reg.type == BTF_ID:
            self.fail(C.NOT_RCU_POINTER, related=related, reg=r, state="not_rcu")
        self.fail(C.NOT_REFERENCED_OR_TRUSTED, related=related, reg=r, state=self._state_words(reg),
                  reason=tomb.reason if tomb else "", release_call=tomb.via if tomb else "",
                  key=(C.NOT_REFERENCED_OR_TRUSTED, tomb.at if tomb else self.insn.idx))

    def arg_kernel_obj(self, i, r, reg, arg, trusted_checked):
        if reg.type == SCALAR:
            # a number where a struct pointer belongs: get_kfunc_ptr_arg_type() treats it as memory
            tomb = reg.tomb
            self.fail(C.KFUNC_ARG_NOT_POINTER, related=self._tomb_related(reg), arg=i, reg=r,
                      btf_type=arg.btf_type, state=self._state_words(reg), reason=tomb.reason if tomb else "",
                      release_call=tomb.via if tomb else "",
                      key=(C.KFUNC_ARG_NOT_POINTER, tomb.at if tomb else self.insn.idx))
        if trusted_checked:
            self._need_trusted(r, reg, arg)

    def arg_alloc_obj(self, i, r, reg, arg, trusted_checked):
        self._need_trusted(r, reg, arg)
        if not (reg.type == BTF_ID and reg.has(ALLOC)) or reg.has(NON_OWN):
            related = {"inserted": reg.nonown_at} if reg.has(NON_OWN) else {}
            self.fail(C.EXPECTED_ALLOCATED_OBJECT, related=related, arg=i, reg=r, state=self._state_words(reg))
        if reg.has(PERCPU) != arg.percpu:
            expected = "bpf_percpu_obj_drop_impl" if reg.has(PERCPU) else "bpf_obj_drop_impl"
            self.fail(C.WRONG_DROP_KFUNC, arg=i, reg=r, expected=expected)
        if not reg.ref_obj_id:
            self.fail(C.ALLOCATED_NOT_REFERENCED, arg=i, reg=r)

    def arg_refcounted_obj(self, i, r, reg, arg, trusted_checked):
        if reg.type == SCALAR:
            self.fail(C.REFCOUNT_ARG_INVALID, related=self._tomb_related(reg), arg=i, reg=r,
                      state=self._state_words(reg))
        self._need_trusted(r, reg, arg)
        if not (reg.type == BTF_ID and reg.has(ALLOC)):
            self.fail(C.EXPECTED_ALLOCATED_OBJECT, arg=i, reg=r, state=self._state_words(reg))
        rec = self.it.records.for_type(reg.btf_id)
        if rec.refcount_off is None:
            self.fail(C.NO_REFCOUNT_FIELD, type=reg.type_name)

    def _graph_root(self, i, r, reg, want: str) -> None:
        if reg.type == MAP_VALUE and reg.map is not None:
            rec = self.it.records.for_type(reg.map.value_type_id)
            holder = ("map", reg.map.name, reg.id)
        elif reg.type == BTF_ID and reg.has(ALLOC):
            rec = self.it.records.for_type(reg.btf_id)
            holder = ("obj", reg.ref_obj_id or reg.id)
        else:
            self.fail(C.INVALID_DEREF, reg=r, type=reg.type_str())
            return
        root = rec.roots.get(reg.off) if rec.valid else None
        if root is None or root.kind != want:
            self.fail(C.GRAPH_FIELD_NOT_FOUND, field=want, off=reg.off)
        self.root_arg = (i, reg, root)
        lock = self.st.lock
        if lock is None or lock.holder != holder or lock.off != rec.spin_lock_off:
            name = root.name
            if lock is not None and lock.holder != holder:
                self.fail(C.WRONG_LOCK, related={"locked": lock.at}, lock_off=rec.spin_lock_off,
                          head_type=want, head=name, held=lock.holder, holder=holder)
            self.fail(C.LOCK_REQUIRED, lock_off=rec.spin_lock_off, head_type=want, head=name, holder=holder)

    def arg_list_head(self, i, r, reg, arg, trusted_checked):
        self._graph_root(i, r, reg, LIST_HEAD)

    def arg_rb_root(self, i, r, reg, arg, trusted_checked):
        self._graph_root(i, r, reg, RB_ROOT)

    def _owning_node(self, i, r, reg, want: str) -> None:
        if not (reg.type == BTF_ID and reg.has(ALLOC) and not reg.has(NON_OWN)):
            tomb = reg.tomb
            related = {"released": tomb.at, "acquired": tomb.acquired_at} if tomb else {}
            if reg.has(NON_OWN):
                related = {"inserted": reg.nonown_at}
            self.fail(C.EXPECTED_ALLOCATED_OBJECT, related=related, arg=i, reg=r, state=self._state_words(reg))
        if not reg.ref_obj_id:
            self.fail(C.EXPECTED_ALLOCATED_OBJECT, arg=i, reg=r, state="not_referenced")
        self._node_matches(i, r, reg, want)
        self.node_arg = (i, reg)

    def _node_matches(self, i, r, reg, want: str) -> None:
        rec = self.it.records.for_type(reg.btf_id)
        if rec.valid and rec.nodes.get(reg.off) != want:
            self.fail(C.GRAPH_FIELD_NOT_FOUND, field=want, off=reg.off)
        root = self.root_arg[2] if self.root_arg else None
        if root is None:
            return
        if reg.type_name != root.value_type or reg.off != root.node_off:
            self.fail(C.GRAPH_NODE_MISMATCH, head_type=root.kind, node_type=want, node_off=root.node_off,
                      value_type=root.value_type, arg_off=reg.off, arg_type=reg.type_name, head=root.name)

    def arg_list_node(self, i, r, reg, arg, trusted_checked):
        self._owning_node(i, r, reg, LIST_NODE)

    def arg_rb_node_add(self, i, r, reg, arg, trusted_checked):
        self._owning_node(i, r, reg, RB_NODE)

    def arg_rb_node_remove(self, i, r, reg, arg, trusted_checked):
        if self.st.in_graph_callback:
            self.fail(C.RBTREE_CB_REMOVE)
        if not (reg.type == BTF_ID and reg.has(ALLOC) and (reg.has(NON_OWN) or reg.ref_obj_id)):
            self.fail(C.EXPECTED_ALLOCATED_OBJECT, arg=i, reg=r, state=self._state_words(reg))
        self._node_matches(i, r, reg, RB_NODE)
        self.node_arg = (i, reg)

    def arg_spin_lock(self, i, r, reg, arg, trusted_checked):
        if self.st.in_graph_callback:
            self.fail(C.RBTREE_CB_LOCK)
        if reg.type == MAP_VALUE and reg.map is not None:
            rec = self.it.records.for_type(reg.map.value_type_id)
            holder = ("map", reg.map.name, reg.id)
            if not rec.valid or rec.spin_lock_off is None:
                self.fail(C.NO_VALID_SPIN_LOCK, map=reg.map.name, cause=rec.cause or "it has no bpf_spin_lock field",
                          variant="btf_map" if reg.map.kind == "map" else "")
        elif reg.type == BTF_ID and reg.has(ALLOC):
            rec = self.it.records.for_type(reg.btf_id)
            holder = ("obj", reg.ref_obj_id or reg.id)
            if rec.spin_lock_off is None:
                self.fail(C.INVALID_DEREF, reg=r, type=reg.type_str())
        else:
            self.fail(C.INVALID_DEREF, reg=r, type=reg.type_str())
            return
        if reg.var_off or reg.off != rec.spin_lock_off:
            self.fail(C.LOCK_OFFSET, off=reg.off, lock_off=rec.spin_lock_off)
        self.lock_target = (holder, rec.spin_lock_off)

    def arg_kptr_dest(self, i, r, reg, arg, trusted_checked):
        if reg.type == MAP_VALUE and reg.map is not None:
            rec, dest = self.it.records.for_type(reg.map.value_type_id), reg.map.name
        elif reg.type == BTF_ID and reg.has(ALLOC) and not reg.has(NON_OWN):
            # a __kptr field inside an object the program owns (bpf_obj_new)
            rec, dest = self.it.records.for_type(reg.btf_id), f"struct {reg.type_name}"
        else:
            self.fail(C.INVALID_DEREF, reg=r, type=reg.type_str())
            return
        if not rec.valid or not rec.kptrs:
            self.fail(C.NO_VALID_KPTR, reg=r, dest=dest, cause=rec.cause or "the value has no __kptr field")
        kptr = rec.kptrs.get(reg.off)
        if kptr is None or reg.var_off:
            self.fail(C.NOT_KPTR_OFFSET, off=reg.off, dest=dest)
        if not kptr.referenced:
            self.fail(C.KPTR_UNREFERENCED, off=reg.off, dest=kptr.name)
        self.kptr = kptr

    def arg_kptr_new(self, i, r, reg, arg, trusted_checked):
        if reg.type == SCALAR and reg.is_const and reg.const == 0:
            return
        kptr = self.kptr
        if kptr is not None and reg.type == BTF_ID and reg.type_name != kptr.type_name:
            self.fail(C.KPTR_TYPE_MISMATCH, reg=r, type=f"ptr_{reg.type_name}", expected=f"ptr_{kptr.type_name}",
                      got=f"struct {reg.type_name} pointer", want=f"struct {kptr.type_name} pointers")
        if not reg.ref_obj_id:
            self.fail(C.RELEASE_NON_REFERENCED, reg=r, state=self._state_words(reg))

    def arg_ringbuf_mem(self, i, r, reg, arg, trusted_checked):
        if not reg.ref_obj_id:
            self.fail(C.RELEASE_NON_REFERENCED, reg=r, state=self._state_words(reg))

    arg_socket = arg_ringbuf_mem

    def arg_map(self, i, r, reg, arg, trusted_checked):
        if reg.type != MAP_PTR:
            self.fail(C.INVALID_DEREF, reg=r, type=reg.type_str())

    def arg_map_key(self, i, r, reg, arg, trusted_checked):
        if reg.type == SCALAR:
            self.it._bad_deref(self.insn, self.st, r, reg)

    arg_mem = arg_map_key
    arg_map_value_mem = arg_map_key

    # ---- release
    def check_release_target(self) -> None:
        sem = self.sem
        if not sem.has(K.RELEASE):
            return
        idx = sem.release_arg
        reg = self.regs[idx + 1]
        if reg.type == ANYTHING or sem.generated:
            return
        want = sem.args[idx].btf_type if idx < len(sem.args) else ""
        if want and reg.type == BTF_ID and reg.type_name and reg.type_name != want and not sem.is_helper:
            self.fail(C.KFUNC_ARG_BTF_MISMATCH, arg=idx, reg=idx + 1, want=want, got=reg.type_name)
        if reg.ref_obj_id and reg.off:
            self.fail(C.NONZERO_OFFSET_RELEASE, reg=idx + 1)
        if reg.ref_obj_id:
            return
        if sem.is_helper:
            self.fail(C.RELEASE_NON_REFERENCED, reg=idx + 1, state=self._state_words(reg))
        if reg.type == BTF_ID and not reg.has(ALLOC):
            self.fail(C.RELEASE_UNACQUIRED, reg=idx + 1)
        self.fail(C.RELEASE_NON_REFERENCED, reg=idx + 1, state=self._state_words(reg))

    # ---- effects
    def apply_effect(self) -> None:
        it, st, sem, insn = self.it, self.st, self.sem, self.insn
        effect = sem.effect
        at = insn.idx
        if sem.generated and not sem.is_helper:
            self.generated_effects()
            return
        if effect == K.EFFECT_LOCK:
            # a lock the model cannot name (an unknown pointer) matches any unlock
            holder, off = self.lock_target or (("unknown", at), 0)
            self.finish(UNINIT)
            st.lock = LockState(holder, off, at)
            return
        if effect == K.EFFECT_PREEMPT_DISABLE:
            if not st.preempt_depth:
                st.preempt_at = at
            st.preempt_depth += 1
            self.finish(UNINIT)
            return
        if effect == K.EFFECT_PREEMPT_ENABLE:
            st.preempt_depth = max(st.preempt_depth - 1, 0)
            self.finish(UNINIT)
            return
        if effect == K.EFFECT_THROW:
            if st.refs:
                ref = min(st.refs.values(), key=lambda x: x.acquired_at)
                self.fail(C.THROW_LEAK, related={"acquired": ref.acquired_at}, kind=ref.kind, via=ref.via)
            raise StopPath   # an exception exit: nothing after it runs
        if effect == K.EFFECT_UNLOCK:
            holder, off = self.lock_target or (None, 0)
            if st.lock is None:
                self.fail(C.UNLOCK_WITHOUT_LOCK, lock=holder or ("unknown",))
            if holder is not None and st.lock.holder[0] != "unknown" and (st.lock.holder != holder
                                                                          or st.lock.off != off):
                self.fail(C.UNLOCK_DIFFERENT_LOCK, related={"locked": st.lock.at}, lock=holder,
                          held=st.lock.holder)
            st.lock = None
            st.map_values(lambda v: dead_pointer(Tombstone(
                "unlocked", at, -1, sem.name, v.nonown_at, v.nonown_via, v.type_name)) if v.has(NON_OWN) else v)
            self.finish(UNINIT)
            return
        if effect == K.EFFECT_RCU_LOCK:
            if st.rcu_depth:
                self.fail(C.RCU_NESTED, related={"rcu_locked": st.rcu_at})
            if not st.rcu_depth:
                st.rcu_at = at
            st.rcu_depth += 1
            self.finish(UNINIT)
            return
        if effect == K.EFFECT_RCU_UNLOCK:
            if not st.rcu_depth:
                self.fail(C.UNMATCHED_RCU_UNLOCK)
            st.rcu_depth -= 1
            if not st.rcu_depth:
                st.map_values(lambda v: v.with_flags(add={UNTRUSTED}, remove={RCU}) if v.has(RCU) else v)
            self.finish(UNINIT)
            return
        if effect == K.EFFECT_TAIL_CALL and st.refs:
            ref = min(st.refs.values(), key=lambda x: x.acquired_at)
            self.fail(C.TAIL_CALL_LEAK, related={"acquired": ref.acquired_at}, kind=ref.kind, via=ref.via)
        if effect == K.EFFECT_GRAPH_INSERT:
            self.graph_insert()
        if effect == K.EFFECT_CALLBACK_LOOP and getattr(self, "callback_target", None) is not None:
            it.verify_callback(insn, st, self.callback_target, [UNKNOWN, self.regs[3]], "bpf_loop")
        # releases
        if sem.has(K.RELEASE) and self.ref_arg is not None:
            _, reg = self.ref_arg
            ref = st.refs.get(reg.ref_obj_id)
            it.release(st, reg.ref_obj_id, Tombstone("released", at, ref.acquired_at if ref else -1, sem.name,
                                                     type_name=reg.type_name))
        kptr_old = None
        if effect == K.EFFECT_KPTR_XCHG:
            kptr_old = self.kptr_xchg()
        self.finish(self.return_value(kptr_old))

    def generated_effects(self) -> None:
        """A record from the generated table: flags only (KF_ACQUIRE, KF_RELEASE, iterators).

        Arguments are not checked (we do not know their rules), so nothing here reports an
        error except an iterator used before `_new` or after `_destroy`, which the kernel's
        iterator-state checks refuse whatever the kfunc.
        """
        it, st, sem, at = self.it, self.st, self.sem, self.insn.idx
        op = sem.iter_op
        if op:
            base = self.regs[1]
            fr = it._stack_frame(st, base) if base.type == STACK and not base.var_off else None
            slot = (base.off // 8) if fr is not None else None
            cur = fr.stack.get(slot) if fr is not None else None
            if op == K.ITER_NEW:
                if fr is not None:
                    rid = it.acquire(st, sem.ref_kind, at, sem.name, sem.ref_kind.partition(":")[2])
                    fr.stack[slot] = Reg(ITER, ref_obj_id=rid, type_name=sem.ref_kind.partition(":")[2])
                self.finish(UNKNOWN)
                return
            if op == K.ITER_DESTROY:
                if isinstance(cur, Reg) and cur.type == ITER and cur.ref_obj_id in st.refs:
                    ref = st.refs[cur.ref_obj_id]
                    it.release(st, cur.ref_obj_id, Tombstone("released", at, ref.acquired_at, sem.name,
                                                             type_name=cur.type_name))
                    fr.stack[slot] = MISC
                self.finish(UNINIT)
                return
            # next: an element or NULL; the element is trusted (RCU inside an RCU-protected iterator)
            r0 = self.proto_return(trusted=True)
            self.finish(r0)
            return
        r0 = self.proto_return(trusted=False)
        if sem.has(K.RELEASE):
            for r in CALLER_SAVED:
                reg = self.regs[r]
                if reg.is_pointer and reg.ref_obj_id in st.refs:
                    ref = st.refs[reg.ref_obj_id]
                    it.release(st, reg.ref_obj_id, Tombstone("released", at, ref.acquired_at, sem.name,
                                                             type_name=reg.type_name))
                    break
        if sem.has(K.ACQUIRE) and r0.is_pointer and r0.type != ANYTHING:
            rid = it.acquire(st, "kernel", at, sem.name, r0.type_name)
            r0 = replace(r0, ref_obj_id=rid)
        self.finish(r0)

    def proto_return(self, trusted: bool) -> Reg:
        """R0 after a kfunc, from its BTF prototype (check_kfunc_call's return-type rules)."""
        it, sem, at = self.it, self.sem, self.insn.idx
        proto = it.prog.obj.extern_protos.get(sem.name) if it.prog.obj is not None else None
        if proto is None and sem.name in it.env.kernel_funcs:
            proto = it.env.kernel_funcs[sem.name][0]
        if proto is None:
            return replace(ANY, type_name=f"what {K.spelling(sem.name)}() returns (no prototype)")
        kind, name, size = proto
        if kind == "scalar" or kind == "void":
            return UNKNOWN
        if kind == "void_ptr":
            return UNKNOWN          # a kfunc returning 'void *' returns a scalar
        flags: set[str] = set()
        vid = 0
        if sem.has(K.RET_NULL):
            flags.add(MAYBE_NULL)
            vid = it._new_id()
            it.null_origin[vid] = at
        if kind == "mem":
            return Reg(MEM, flags=frozenset(flags), id=vid, mem_size=size, type_name=name)
        if trusted:
            flags.add(RCU if sem.has(K.RCU_PROTECTED) else TRUSTED)
        return Reg(BTF_ID, type_name=name, flags=frozenset(flags), id=vid)

    def graph_insert(self) -> None:
        it, st, at = self.it, self.st, self.insn.idx
        if self.node_arg is None:
            return
        _, node = self.node_arg
        ref_id = node.ref_obj_id
        root = self.root_arg[2] if self.root_arg else None
        if getattr(self, "callback_target", None) is not None and root is not None:
            arg = Reg(BTF_ID, type_name=root.value_type, btf_id=root.value_btf_id, off=root.node_off,
                      flags=frozenset({ALLOC, NON_OWN}), nonown_at=at, nonown_via="(callback argument)")
            it.verify_callback(self.insn, st, self.callback_target, [arg, arg], "rbtree_less")
        # ownership moves to the collection: every copy becomes a non-owning reference
        st.map_values(lambda v: replace(v, ref_obj_id=0, flags=v.flags | {NON_OWN}, nonown_at=at,
                                        nonown_via=self.sem.name)
                      if v.ref_obj_id == ref_id and v.is_pointer else v)
        st.refs.pop(ref_id, None)

    def kptr_xchg(self):
        it, st, at = self.it, self.st, self.insn.idx
        new = self.regs[2]
        if new.ref_obj_id:
            ref = st.refs.get(new.ref_obj_id)
            it.release(st, new.ref_obj_id, Tombstone("moved", at, ref.acquired_at if ref else -1, self.sem.name,
                                                     type_name=new.type_name))
        return self.kptr

    def return_value(self, kptr_old) -> Reg:
        it, st, sem, at = self.it, self.st, self.sem, self.insn.idx
        ret = sem.ret
        flags: set[str] = set()
        rid = 0
        vid = 0
        if sem.has(K.RET_NULL) or ret in (K.RET_KPTR_OLD,):
            flags.add(MAYBE_NULL)
            vid = it._new_id()
            it.null_origin[vid] = at
        if ret in (K.RET_VOID, K.RET_SCALAR):
            return UNKNOWN
        if ret == K.RET_LOCAL_OBJ:
            type_id = self.local_type[0] if self.local_type else 0
            problem = it.records.prog_btf_problem()
            if problem:
                self.fail(C.PROG_BTF_REJECTED, cause=problem)
            tname = ""
            if it.btf is not None and type_id:
                try:
                    t = it.btf[it.btf.resolve(type_id)]
                    tname = t.name
                except Exception:
                    t = None
                if t is None or t.kind.name != "STRUCT":
                    self.fail(C.OBJ_NEW_NOT_STRUCT)
            if sem.ref_kind == "percpu_local":
                flags.add(PERCPU)
            rid = it.acquire(st, sem.ref_kind, at, sem.name, tname)
            return Reg(BTF_ID, type_name=tname, btf_id=type_id, flags=frozenset(flags | {ALLOC}), id=vid,
                       ref_obj_id=rid)
        if ret == K.RET_CAST_TYPE:
            # bpf_rdonly_cast: an untrusted pointer of the program-BTF type named by the constant
            type_id = self.local_type[0] if self.local_type else 0
            tname = ""
            try:
                t = it.btf[it.btf.resolve(type_id)] if it.btf is not None and type_id else None
                tname = t.name if t is not None and t.kind.name in ("STRUCT", "UNION") else ""
            except Exception:  # noqa: BLE001 - malformed BTF: untyped memory
                tname = ""
            if not tname:
                return Reg(MEM, flags=frozenset({UNTRUSTED}))
            return Reg(BTF_ID, type_name=tname, flags=frozenset({UNTRUSTED}))
        if ret == K.RET_KERN_CTX:
            tname = KERN_CTX_TYPES.get(self.it.prog.prog_type, "")
            if not tname:
                return replace(ANY, type_name=f"the kernel context of {self.it.prog.prog_type} programs")
            return Reg(BTF_ID, type_name=tname, flags=frozenset({TRUSTED}))
        if ret == K.RET_SAME_OBJ:
            src = self.regs[1]
            if sem.ret_nonnull_if_owned and src.ref_obj_id:
                flags.discard(MAYBE_NULL)
            rid = it.acquire(st, "local", at, sem.name, src.type_name)
            return Reg(BTF_ID, type_name=src.type_name, btf_id=src.btf_id, flags=frozenset(flags | {ALLOC}),
                       id=vid, ref_obj_id=rid)
        if ret == K.RET_ANYTHING or (self.unknown_args and ret not in (K.RET_SCALAR, K.RET_VOID)):
            return replace(ANY, type_name=f"what {K.spelling(sem.name)}() returns")
        if ret == K.RET_GRAPH_NODE:
            root = self.root_arg[2] if self.root_arg else None
            if root is None:
                return replace(ANY, type_name=f"what {K.spelling(sem.name)}() returns")
            if sem.effect == K.EFFECT_GRAPH_PEEK:
                return Reg(BTF_ID, type_name=root.value_type, btf_id=root.value_btf_id, off=root.node_off,
                           flags=frozenset(flags | {ALLOC, NON_OWN}), id=vid, nonown_at=at, nonown_via=sem.name)
            rid = it.acquire(st, "local", at, sem.name, root.value_type)
            return Reg(BTF_ID, type_name=root.value_type, btf_id=root.value_btf_id, off=root.node_off,
                       flags=frozenset(flags | {ALLOC}), id=vid, ref_obj_id=rid)
        if ret == K.RET_KERNEL_OBJ:
            if sem.has(K.ACQUIRE):
                rid = it.acquire(st, sem.ref_kind, at, sem.name, sem.ret_type)
            return Reg(BTF_ID, type_name=sem.ret_type, flags=frozenset(flags | {TRUSTED}), id=vid, ref_obj_id=rid)
        if ret == K.RET_MAP_VALUE:
            m = self.regs[1].map
            if m is not None and m.map_type in MAP_IN_MAP_TYPES:
                # an outer map's value is the inner map (the inner's layout is not modelled)
                return Reg(MAP_PTR, map=None, flags=frozenset(flags), id=vid)
            return Reg(MAP_VALUE, map=m, flags=frozenset(flags), id=vid)
        if ret == K.RET_BTF_PTR:
            trusted = {TRUSTED} if sem.has(K.TRUSTED_ARGS) else set()
            return Reg(BTF_ID, type_name=sem.ret_type, flags=frozenset(flags | trusted), id=vid)
        if ret == K.RET_MEM:
            return Reg(MEM, flags=frozenset(flags), id=vid)
        if ret == K.RET_CAST_SOCKET:
            src = self.regs[1]
            cast = sem.name in K.PTR_CASTS and src.is_pointer
            return Reg(SOCKET, flags=frozenset(flags), id=vid, ref_obj_id=src.ref_obj_id if cast else 0,
                       type_name=sem.ret_type or "bpf_sock")
        if ret == K.RET_RINGBUF_MEM:
            rid = it.acquire(st, "ringbuf", at, sem.name, "")
            size = self.regs[2].const if self.regs[2].is_const else 0
            return Reg(MEM, flags=frozenset(flags | {RINGBUF}), id=vid, ref_obj_id=rid, mem_size=size)
        if ret == K.RET_SOCKET:
            rid = it.acquire(st, "socket", at, sem.name, "bpf_sock")
            return Reg(SOCKET, flags=frozenset(flags), id=vid, ref_obj_id=rid, type_name="bpf_sock")
        if ret == K.RET_KPTR_OLD:
            k = kptr_old
            if k is None:
                return replace(ANY, type_name=f"what {K.spelling(sem.name)}() returns")
            kind = ("percpu_local" if k.percpu else "local") if k.local else k.type_name
            rid = it.acquire(st, kind, at, sem.name, k.type_name)
            extra = ({ALLOC, PERCPU} if k.percpu else {ALLOC}) if k.local else {TRUSTED}
            return Reg(BTF_ID, type_name=k.type_name, btf_id=k.btf_id, flags=frozenset(flags | extra), id=vid,
                       ref_obj_id=rid)
        return UNKNOWN

    def finish(self, r0: Reg) -> None:
        self.it._clobber(self.st, r0)


def _not_null(reg: Reg) -> bool:
    """reg_not_null(): pointer kinds the kernel knows cannot be NULL."""
    if reg.maybe_null:
        return False
    if reg.type in (SOCKET, MAP_VALUE, MAP_PTR):
        return True
    if reg.type == MEM:
        return not reg.has(UNTRUSTED)
    if reg.type == BTF_ID:
        return bool(reg.ref_obj_id) or bool(reg.flags & {ALLOC, TRUSTED, NON_OWN}) and not reg.has(UNTRUSTED)
    return False


def _subsumes(old: State, cur: State, live: frozenset | None, live_at) -> bool:
    """True when exploring `cur` cannot find anything `old`'s exploration did not.

    Cheap whole-state checks first, then registers from the innermost frame outwards (where
    loop counters differ), ignoring registers that are dead: in the current function by static
    liveness, in callers by liveness at their return point.
    """
    if len(old.frames) != len(cur.frames) or old.lock != cur.lock or old.rcu_depth != cur.rcu_depth \
            or old.preempt_depth != cur.preempt_depth or old.in_graph_callback != cur.in_graph_callback \
            or len(old.refs) != len(cur.refs):
        return False
    if old.refs and sorted((r.kind, r.acquired_at) for r in old.refs.values()) != \
            sorted((r.kind, r.acquired_at) for r in cur.refs.values()):
        return False
    idmap: dict[tuple[str, int], int] = {}
    depth = len(old.frames) - 1
    for d in range(depth, -1, -1):
        fo, fc = old.frames[d], cur.frames[d]
        if fo.callsite != fc.callsite or fo.callback != fc.callback:
            return False
        if d == depth:
            regs = range(10) if live is None else live
        else:
            # a caller's r0-r5 are overwritten when the call returns
            ret = old.frames[d + 1].callsite + 1
            regs = [r for r in (6, 7, 8, 9) if r in (live_at(ret) or range(10))]
        for r in regs:
            if not _reg_subsumes(fo.regs[r], fc.regs[r], idmap):
                return False
        for slot, ov in fo.stack.items():
            cv = fc.stack.get(slot)
            if isinstance(ov, Reg):
                if not isinstance(cv, Reg) or not _reg_subsumes(ov, cv, idmap):
                    if not (ov.type == SCALAR and ov.umin == 0 and ov.umax == U64 and ov.tomb is None
                            and cv is not None):
                        return False
            elif ov != cv and ov == ZERO_SLOT:
                return False
        for slot, cv in fc.stack.items():
            if slot not in fo.stack and isinstance(cv, Reg) and (cv.ref_obj_id or cv.has(NON_OWN)):
                return False
    return True


def _map_id(kind: str, old_id: int, cur_id: int, idmap: dict) -> bool:
    if not old_id and not cur_id:
        return True
    if not old_id or not cur_id:
        return False
    key = (kind, old_id)
    if key in idmap:
        return idmap[key] == cur_id
    idmap[key] = cur_id
    return True


def _reg_subsumes(o: Reg, c: Reg, idmap: dict) -> bool:
    if o.type == NOT_INIT:
        return True
    if o.type != c.type:
        return False
    if o.type == SCALAR:
        if o.tomb != c.tomb:
            return False
        return o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax
    if (o.off, o.flags, o.map, o.btf_id, o.type_name, o.var_off, o.frameno, o.target, o.nonown_at) != \
            (c.off, c.flags, c.map, c.btf_id, c.type_name, c.var_off, c.frameno, c.target, c.nonown_at) or \
            (o.var_off and not (o.vmin <= c.vmin and c.vmax <= o.vmax)):
        return False
    return _map_id("id", o.id, c.id, idmap) and _map_id("ref", o.ref_obj_id, c.ref_obj_id, idmap)
