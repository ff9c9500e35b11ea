"""The abstract interpreter: explores every path of a linked program like the kernel's do_check.

Depth-first over paths with a stack of pending branches, states pruned at join points when an
already-explored state subsumes the current one (ranges contain, pointers equal up to id
renaming, dead registers ignored). Each violation becomes a `Finding`; the path stops there
unless continuing is sound (the bad value is then refined or marked unusable), and other
pending paths are still explored, so one program can report several independent errors.
"""
from __future__ import annotations

import time
from functools import cache, cached_property
from dataclasses import dataclass, field, replace

from ..frontend import isa
from ..frontend.btf import BtfError, Kind
from ..frontend.isa import Cls, Insn
from ..frontend.objfile import (DataRef, FuncAddrRef, HelperRef, KconfigRef, KfuncRef, KsymRef, MapRef,
                                Program, SubprogRef)
from .. import codes as C
from . import kfuncs as K
from .domain import (ANY, ANYTHING, ARENA, DYNPTR, ITER, ALLOC, BTF_ID, CTX, FUNC, MAP_PTR, MAP_VALUE, MAYBE_NULL, MEM,
                     MISC, NON_OWN, NOT_INIT, PACKET, PACKET_END, RCU, RDONLY, SCALAR, SOCKET, STACK, TRUSTED,
                     UNINIT, UNKNOWN, UNTRUSTED, ZERO, ZERO_SLOT, NO_BYTES, Frame, KnownBytes, NarrowSpill, RefState, Reg, State, Tombstone,
                     S64_MAX, S64_MIN, U64, dead_pointer, scalar_const, scalar_range, scalar_signed, to_signed)
from .findings import Finding, InsnStates, ValueSummary, finding
from .liveness import ANY_SLOT, FOREIGN, Relevance, stack_cells
from . import struct_ops as SO
from .btf_safety import RCU_PROTECTED_KPTRS, member_overrun, walked_pointer
from .records import RecordBuilder
from .scalars import U32, alu_scalar, branch_outcome, low32, refine_branch
from . import calls
from .calls import CALLER_SAVED, CallChecker, StopPath
from . import dynptr, exceptions
from .sock_access import sock_read_ok
from .pruning import only_scalars_differ, precise_values, register_signature, state_shape, values_subsume, widen
from . import precision
from .precision import derived

MAX_FRAMES = 8
MAX_STACK = 512             # bytes of stack a frame has (MAX_BPF_STACK)
MAX_VAR_SIZE = 1 << 29      # a variable size must stay below it (BPF_MAX_VAR_SIZ)
MAX_ERRNO = 4095
# callbacks whose return value must lie in [0, 1] (callback_ret_range), and the API calling them
BOOLEAN_CALLBACKS = {"bpf_loop": "bpf_loop", "user_ringbuf": "bpf_user_ringbuf_drain", "rbtree_less": "bpf_rbtree_add"}
MAX_STATES_PER_INSN = 256
EVICT_AFTER_MISSES = 3       # an explored state that misses more than 3 * hits + this is dropped (Explored.stale)
KEEP_AFTER_JUMPS, KEEP_AFTER_INSNS = 2, 8   # a new explored state is kept only after this many of each
MAX_JOINS = 2              # joins of a loop-carried scalar at an iterator's `next` before it is forgotten
MAX_RECORDED_PATHS = 32     # paths whose values a hover shows, per instruction (the rest are counted)
SATURATED_AFTER = 8         # ... or until this many in a row showed nothing new there
# bpf_alu_string[], as the kernel names an operator in its messages
ALU_OP_NAMES = {isa.ADD: "+=", isa.SUB: "-=", isa.MUL: "*=", isa.OR: "|=", isa.AND: "&=", isa.LSH: "<<=",
                isa.RSH: ">>=", isa.NEG: "neg", isa.DIV: "/=", isa.MOD: "%=", isa.XOR: "^=", isa.MOV: "=",
                isa.ARSH: "s>>=", isa.END: "endian"}
# adjust_ptr_min_max_vals(): the pointer kinds a number may move (a map pointer only by 0)
POINTER_ARITH_TYPES = frozenset({CTX, MAP_VALUE, STACK, PACKET, BTF_ID, MEM, FUNC, DYNPTR})

# Where packet pointers live in the context (offsets of data / data_end / data_meta).
PACKET_META_FIELDS = {"sched_cls": (140,), "sched_act": (140,), "xdp": (8,)}
MAX_PACKET_OFF = 0xFFFF
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
# Pointer fields of the UAPI contexts (their offsets are ABI), as the *_is_valid_access()
# functions of net/core/filter.c type them: offset -> (register type, maybe NULL, struct).
# A pointer field we do not model is unknown, never a scalar.
_SKB_SK = {168: (SOCKET, True, "bpf_sock_common")}    # PTR_TO_SOCK_COMMON_OR_NULL
CTX_POINTERS: dict[str, dict[int, tuple[str, bool, str]]] = {
    **{t: _SKB_SK for t in ("sched_cls", "sched_act", "cgroup_skb", "sk_skb", "socket_filter")},
    "flow_dissector": {144: (ANYTHING, False, "the flow keys")},
    "sk_lookup": {0: (SOCKET, True, "bpf_sock")},
    "sock_ops": {184: (SOCKET, True, "bpf_sock"), 192: (PACKET, False, ""), 200: (PACKET_END, False, "")},
    "sk_msg": {0: (PACKET, False, ""), 8: (PACKET_END, False, ""), 72: (SOCKET, False, "bpf_sock")},
    "sk_reuseport": {0: (PACKET, False, ""), 8: (PACKET_END, False, ""), 40: (SOCKET, False, "bpf_sock"),
                     48: (SOCKET, True, "bpf_sock_common")},
    "cgroup_sockopt": {0: (SOCKET, False, "bpf_sock"), 8: (PACKET, False, ""), 16: (PACKET_END, False, "")},
    "cgroup_sock_addr": {64: (SOCKET, False, "bpf_sock")},
    "netfilter": {0: (ANYTHING, False, "the netfilter hook state"), 8: (ANYTHING, False, "the packet")},
}
# check_map_prog_compatibility(): these may not use maps holding a list head or rbtree root
TRACING_PROG_TYPES = {"kprobe", "tracepoint", "perf_event", "raw_tracepoint", "raw_tracepoint_writable"}
# check_return_code(): program types whose return value the kernel checks (a range); for the others a
# privileged program may return anything, a pointer too (only an unprivileged one "leaks addr")
RANGE_CHECKED_RETURNS = frozenset({"cgroup_sock_addr", "cgroup_skb", "cgroup_sock", "sock_ops", "cgroup_device",
                                   "cgroup_sysctl", "cgroup_sockopt", "sk_lookup", "netfilter", "lsm"})
RANGE_CHECKED_TRACING = ("fentry/", "fentry.s/", "fexit/", "fexit.s/", "iter/", "iter.s/")

SLEEPABLE_SECTIONS = ("fentry.s/", "fexit.s/", "fmod_ret.s/", "lsm.s/", "iter.s/", "uprobe.s", "uretprobe.s",
                      "struct_ops.s/", "syscall")
# ordered comparisons: a branch of one on a load-time global is a bounds check
BOUND_CHECKS = frozenset({isa.JGT, isa.JGE, isa.JLT, isa.JLE, isa.JSGT, isa.JSGE, isa.JSLT, isa.JSLE})
KCONFIG_PREFIX = ".kconfig:"   # MEM pointers to a `__kconfig` extern carry its name


@dataclass
class Environment:
    """What the interpreter needs besides the program: records, kernel facts, context arguments."""
    records: RecordBuilder
    ctx_args: list[tuple[str, str]] = field(default_factory=list)  # per u64 ctx slot: (kind, struct)
    ref_args: tuple[int, ...] = ()         # ctx slots that arrive holding a reference (__ref)
    budget: int = 1_000_000
    spent: int = 0                         # instructions earlier walks of the same program visited
    rcu_fields: frozenset = frozenset()    # (struct, member) pointers tagged __rcu in kernel BTF
    member_rules: object = None            # struct_ops.MemberRules of the member this program implements
    kernel_funcs: dict = field(default_factory=dict)  # kernel BTF FUNCs: name -> (return kind, params)
    kernel_uninit_args: dict = field(default_factory=dict)  # kfunc -> its *__uninit parameter positions
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


@dataclass(slots=True)
class Explored:
    """A state pruning compares later ones against, with how often it matched and did not, and
    how many paths from it are still to be walked (the kernel's `branches`): at 0 its precision
    marks are final (precision.py)."""
    state: State
    parent: "Explored | None" = None     # the explored state before it on its path
    seq: int = 0                          # how many explored states were made before it
    idx: int = -1                         # the instruction it was made at
    branches: int = 1
    hits: int = 0
    misses: int = 0
    witness: list = field(default_factory=lambda: [None])   # where the last comparison failed (pruning)

    @property
    def stale(self) -> bool:
        """It keeps failing to match (the kernel's miss_cnt > 3 * hit_cnt + 3): drop it."""
        return self.misses > 3 * self.hits + EVICT_AFTER_MISSES


class Interpreter:
    def __init__(self, prog: Program, env: Environment, relevance: Relevance | None = None,
                 strict: Relevance | None = None, base: Relevance | None = None, widen_loops: bool = True):
        self.prog = prog
        self.env = env
        self.btf = prog.obj.btf
        self.records = env.records
        self.findings: dict[tuple, Finding] = {}
        self.path_state: State | None = None
        self.visited = 0
        self.incomplete = False
        self.unsupported: list[str] = []
        self.gaps: list[str] = []                   # what the model lacked where it mattered
        self.states: dict[int, InsnStates] = {}
        self._pointer_summaries: dict[tuple, tuple] = {}    # (loc, frame, id) -> (Reg, its summary)
        self.explored: dict[tuple, list[Explored]] = {}
        self.next_id = 1
        self.relevance = relevance or Relevance.of(prog)
        # Precision that counts only some branches (`relevance.decided`) is checked as the walk
        # goes: branches a scalar's value decided that it did not count wait in `newly_decided`;
        # prunes that would not have happened had every branch counted (`strict`) are kept, and
        # before the next such prune all of them must hold with the new branches counted, else
        # the walk stops and `restart_with` says which branches the next walk must count.
        self.strict = strict or self.relevance
        # Against an explored state whose paths are all walked, precision is the walk's own
        # (precision.py): what `base` (no decided event counted) holds, and of the rest of
        # `strict` the scalars a path from it needed
        self.base = base
        self.checkpoints = 0
        self.newly_decided: set[int] = set()
        self.imprecise_prunes: list[tuple[int, State, State]] = []
        self.restart_with: frozenset | None = None
        self.iter_next_calls = self._iter_next_calls()
        # stack stores precision took for ones at an unknown offset (Dataflow.unplaced_stores)
        self.unplaced_stores = self.relevance.unplaced_stores
        self._dynptr_params: dict[tuple, tuple] = {}
        self._params_cache: dict[int, list[tuple[str, str, int]]] = {}
        self.widenings: dict[int, int] = {}         # iterator `next` call -> times its state was widened
        self.widen_loops = widen_loops              # may_goto loops forget imprecise scalars (_widen_imprecise)
        self.widened = False                        # and some did
        self.may_goto_insns = frozenset(i.idx for i in prog.insns if i.is_jump and i.op == isa.JCOND)
        self.prune_points = self._prune_points()
        # is_force_checkpoint(): where a state is always kept (an iterator's next, may_goto)
        self.forced_points = self.iter_next_calls | self.may_goto_insns
        # jump-class instructions walked (calls and exits included: the kernel's jmps_processed),
        # and both counters when the last explored state was kept
        self.jump_insns = frozenset(i.idx for i in prog.insns if i.is_jump or i.is_call or i.is_exit)
        self.jumps = 0
        self.kept_at = (0, 0)
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
        if self._load_time_checks():     # else the kernel rejects the program before walking any of it
            self._explore(main.start, self._entry_state())
            for fn in self.prog.functions[1:]:
                if fn.is_global and not self.incomplete and self.restart_with is None:
                    self._explore(fn.start, self._global_entry_state(fn))
            if self.newly_decided and self.restart_with is None:
                self.count_decided()
        return VerifyResult(sorted(self._unconditional_first(), key=lambda f: (f.insn, f.code)), self.incomplete,
                            self.visited, self.states, self.unsupported, self.gaps)

    def count_decided(self) -> bool:
        """Count the branches found decided since the last time; false if a prune made so far
        does not hold with them counted (the walk then stops, to be made again)."""
        decided = self.relevance.decided | self.newly_decided
        self.newly_decided = set()
        relevance = self.relevance.with_decided(self.prog, decided)
        if all(values_subsume(old, cur, relevance.at(idx), relevance) for idx, old, cur in self.imprecise_prunes):
            self.relevance = relevance
            return True
        self.restart_with = decided
        self.pending.clear()
        return False

    def in_rcu_cs(self, st: State) -> bool:
        """in_rcu_cs(): an explicit RCU section, a held lock, or any non-sleepable program."""
        return bool(st.rcu_depth or st.lock is not None or not self.sleepable)

    def _load_time_checks(self) -> bool:
        """Rules the kernel applies to the whole program before walking it (false: it is rejected)."""
        for f in exceptions.load_time_findings(self.prog, self._global_params):
            self._report(f)
            return False
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
        if not self.prog.obj.gpl_compatible:
            # add_kfunc_call(): before any of the program is walked, a kfunc call anywhere
            for insn in self.prog.insns:
                m = self.prog.meanings.get(insn.idx)
                if isinstance(m, KfuncRef) and insn.is_call and self._is_kernel_function(m.name):
                    self._report(finding(C.GPL_ONLY, insn.idx, variant="kfunc", func=m.name,
                                         license=self.prog.obj.license))
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
            elif kind == "dynptr":
                regs[i + 1] = Reg(DYNPTR, type_name="local", id=self._new_id())
            else:
                regs[i + 1] = UNKNOWN
        # the exception callback runs like a callback (bpf_throw may not be called in it)
        return State([Frame(regs, {}, -1, fn.start, callback="exception" if fn.name == self.prog.exception_cb else "")])

    def _global_params(self, fn) -> list[tuple[str, str, int]]:
        """Global functions are verified alone against their BTF signature (btf_prepare_func_args);
        read once per function (every call visited checks its arguments against them)."""
        if fn.start not in self._params_cache:
            self._params_cache[fn.start] = self._read_global_params(fn)
        return self._params_cache[fn.start]

    def _read_global_params(self, fn) -> list[tuple[str, str, int]]:
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
                    elif tname == "bpf_dynptr":
                        out.append(("dynptr", tname, 0))   # ARG_PTR_TO_DYNPTR: an initialized local dynptr
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

    def dynptr_params(self, sem: K.Semantics) -> tuple:
        """The dynptr arguments of a helper or kfunc (read once per function, not per call visited)."""
        key = (sem.is_helper, sem.helper_id if sem.is_helper else sem.name)
        if key not in self._dynptr_params:
            self._dynptr_params[key] = dynptr.dynptr_params(sem, self.env.kernel_funcs, self.env.kernel_uninit_args)
        return self._dynptr_params[key]

    @cached_property
    def packet_changing_funcs(self) -> frozenset[int]:
        """Functions (by start) that call a packet-changing helper, directly or through their
        callees (the kernel's changes_pkt_data of subprograms)."""
        prog = self.prog
        calls: dict[int, set[int]] = {}
        changing: set[int] = set()
        for insn in prog.insns:
            m = prog.meanings.get(insn.idx) if insn.is_call else None
            fn = prog.function_at(insn.idx) if m is not None else None
            if fn is None:
                continue
            if isinstance(m, HelperRef) and m.name in K.PACKET_CHANGING_HELPERS:
                changing.add(fn.start)
            elif isinstance(m, SubprogRef):
                calls.setdefault(fn.start, set()).add(m.target)
        grew = True
        while grew:
            grew = False
            for caller, callees in calls.items():
                if caller not in changing and callees & changing:
                    changing.add(caller)
                    grew = True
        return frozenset(changing)

    def _iter_next_calls(self) -> set[int]:
        calls = set()
        for insn in self.prog.insns:
            meaning = self.prog.meanings.get(insn.idx) if insn.is_call else None
            if isinstance(meaning, KfuncRef):
                sem = K.known_kfunc(meaning.name)
                if sem is not None and sem.iter_op == K.ITER_NEXT:
                    calls.add(insn.idx)
        return calls

    def _prune_points(self) -> set[int]:
        points = set(self.iter_next_calls)   # is_iter_next_insn(): a forced checkpoint
        points.update(self.may_goto_insns)   # and may_goto
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
            # update_branch_counts(): the path is over; explored states with no path left are complete
            ex = st.checkpoint
            while ex is not None:
                ex.branches -= 1
                if ex.branches:
                    break
                ex = ex.parent

    def _push(self, idx: int, st: State) -> None:
        """Queue another path; the explored state it starts from has one more to wait for."""
        if st.checkpoint is not None:
            st.checkpoint.branches += 1
        self.pending.append((idx, st))

    def _run_path(self, idx: int, st: State) -> None:
        prog = self.prog
        self.path_state = st        # what a finding reported now is conditioned on (`assumed`)
        while True:
            if self.visited >= self.env.budget or (
                    self.env.deadline and not self.visited % 512 and time.monotonic() > self.env.deadline):
                if not self.incomplete:
                    self.incomplete = True
                    # the program's whole budget and visits, earlier walks of it included
                    budget, visited = self.env.spent + self.env.budget, self.env.spent + self.visited
                    detail = f"{budget} instructions" if self.visited >= self.env.budget else \
                        f"its time budget ({visited} instructions visited)"
                    self._report(finding(C.ANALYSIS_INCOMPLETE, idx, budget=budget, detail=detail))
                self.pending.clear()
                return
            insn = prog.insn_at(idx)
            if insn is None:
                self._unsupported(idx, f"a jump to instruction {idx}, which is not an instruction")
                return
            if idx in self.prune_points and self._prune(idx, st):
                return
            self.visited += 1
            if idx in self.jump_insns:
                self.jumps += 1
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
        assumed = self.path_state.assumed if self.path_state is not None else ""
        if assumed and f.severity == "error":
            # this path exists only for some values of a global user space sets at load time: the
            # kernel will know which; we do not, so it is no error of ours (a warning, saying so)
            f = Finding(f.code, f.insn, tuple(sorted((*f.args, ("load_time", assumed)))), f.related)
        k = key if key is not None else (f.code, f.insn)
        if k not in self.findings:
            self.findings[k] = f

    def _unconditional_first(self) -> list[Finding]:
        """The findings, without those made on a path under a load-time assumption where a path
        without one found the same problem at the same instruction: that one stands."""
        found = list(self.findings.values())
        plain = {(f.code, f.insn) for f in found if not f.arg("load_time")}
        return [f for f in found if not (f.arg("load_time") and (f.code, f.insn) in plain)]

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
        # states can only subsume others of the same shape (frames, locks, sections, references)
        # and the same pointers in live registers: keep them apart so a check never walks the
        # registers of a state that cannot match
        here = self.relevance.at(idx)
        st.slot_memo = None     # the state has moved on since it was last compared
        seen = self.explored.setdefault((idx, state_shape(st), register_signature(st, here[0], self.relevance)), [])
        # like the kernel, keep a new state only after 2 jumps and 8 instructions since the last
        # one kept, or where forced (is_state_visited()'s add_new_state: in the kernel half the
        # states and a fifth of the time; here fewer copies and comparisons for more visits,
        # measured about even on scx's largest programs, 2 more selftests judged as the kernel
        # judges them, whose verdicts depend on where states are kept)
        jumps, visited = self.kept_at
        keep = idx in self.forced_points or (self.jumps - jumps >= KEEP_AFTER_JUMPS and
                                             self.visited - visited >= KEEP_AFTER_INSNS)
        stale = False
        for k in range(len(seen) - 1, -1, -1):   # recent states first: the likeliest match in a loop
            ex = seen[k]
            if self._subsumed_by(ex, idx, st):
                ex.hits += 1
                return True
            if self.restart_with is not None:
                return True     # the walk is over
            if keep:
                ex.misses += 1  # a miss counts only where a new state is kept (miss_cnt)
                stale = stale or ex.stale
        if not keep:
            return False
        if stale:
            # like the kernel, forget states that keep failing to match: every later check would
            # walk them again (the newest stays, for an iterator loop's widening below)
            seen[:-1] = [ex for ex in seen[:-1] if not ex.stale]
        if idx in self.iter_next_calls and seen and only_scalars_differ(seen[-1].state, st, idx, self.relevance):
            # an iterator loop converges only when its loop-carried scalars stop mattering; where
            # anything else differs (a pointer found in one iteration), states stay exact
            n = self.widenings[idx] = self.widenings.get(idx, 0) + 1
            widen(seen[-1].state, st, to_unknown=n > MAX_JOINS)
        # keep the most recent states: in a loop they are the ones later paths of the same
        # iteration can be pruned against
        st.forget_lone_links()
        kept = st.copy()
        kept.slot_memo = st.slot_memo     # the same state: what was found of it holds for the copy
        st.checkpoint = Explored(kept, st.checkpoint, self.checkpoints, idx)
        self.checkpoints += 1
        self.kept_at = (self.jumps, self.visited)
        seen.append(st.checkpoint)
        if len(seen) > MAX_STATES_PER_INSN:
            del seen[0]
        return False

    def _subsumed_by(self, ex: Explored, idx: int, st: State) -> bool:
        old = ex.state
        if self.base is not None and not ex.branches:
            marks: list[tuple] = []
            if values_subsume(old, st, self.strict.at(idx), self.strict, self.base, self.base.at(idx), marks,
                              ex.seq, ex.witness):
                # propagate_precision(): what `old`'s paths needed, this path's values fed too
                self._propagate(marks, ex.seq)
                return True
            return False
        if not values_subsume(old, st, self.relevance.at(idx), self.relevance, witness=ex.witness):
            return False
        if self.strict is self.relevance or values_subsume(old, st, self.strict.at(idx), self.strict):
            self._needs_all(idx, st, ex)
            return True
        # the match needs a scalar imprecise that only a branch that went both ways compared
        if self.newly_decided and (not self.count_decided() or
                                   not values_subsume(old, st, self.relevance.at(idx), self.relevance)):
            return False
        self.imprecise_prunes.append((idx, old, st))
        self._needs_all(idx, st, ex)
        return True

    def _needs_all(self, idx: int, st: State, ex: Explored) -> None:
        """A prune against `ex`, whose paths are not all walked, with the static analysis's
        precision: which of this path's values the rest of the walk needs is not known yet, so
        all it may need are marked (of those `ex` holds too, the ones its paths needed so far;
        the marks they make later reach this path's explored states by themselves)."""
        if self.base is not None:
            self._propagate(list(precise_values(st, self.strict.at(idx), self.strict, ex.state, ex.seq)), ex.seq)

    def _propagate(self, pairs: list[tuple], seq: int) -> None:
        """A prune against explored state `seq`: mark the current values of `pairs` (each with
        what the old state holds in its place) needed; as decided (the kernel's precise flags,
        which propagate_precision() copies) only those whose old value is decided there."""
        self._mark([c for c, _ in pairs], decision=False)
        self._mark([c for c, o in pairs if precision.decided(o, seq)])

    def _node(self, *values) -> precision.Dep:
        """The precision node of a value made now from `values` (none: from nothing the state holds)."""
        return derived(self.checkpoints, *values)

    def _mark(self, values, decision: bool = True) -> None:
        """Values a decision read (or a prune relies on) are precise in the explored states so far."""
        if self.base is not None and not precision.mark(values, self.checkpoints, decision):
            self.base = None    # too deep a graph to keep walking: static precision from here on

    # ---------------------------------------------------------------- hover states
    def _record(self, idx: int, st: State) -> None:
        rec = self.states.get(idx)
        if rec is None:
            rec = self.states[idx] = InsnStates()
        rec.paths += 1
        if len(rec.values) > 96 or rec.paths > MAX_RECORDED_PATHS or rec.unchanged >= SATURATED_AFTER:
            return
        before = len(rec.values), len(rec.locks)
        depth = len(st.frames) - 1
        fr = st.cur
        for r, reg in enumerate(fr.regs[:10]):
            if _summarised(reg):
                s = self._summary(_REG_NAMES[r], depth, reg, st)
                if s is not None:
                    rec.values.add(s)
        for slot, v in fr.stack.items():
            if type(v) is Reg and _summarised(v):
                s = self._summary(_slot_name(slot), depth, v, st)
                if s is not None:
                    rec.values.add(s)
        if st.lock is not None:
            rec.locks.add((st.lock.holder, st.lock.off, st.lock.at))
        rec.unchanged = rec.unchanged + 1 if (len(rec.values), len(rec.locks)) == before else 0

    def _summary(self, loc: str, frame: int, reg: Reg, st: State) -> ValueSummary | None:
        if reg.type == SCALAR:
            if reg.tomb is not None:
                return ValueSummary(loc, frame, reg.tomb.reason, reg.tomb.type_name, False, 0,
                                    reg.tomb.acquired_at, f"{reg.tomb.via}@{reg.tomb.at}")
            return _null_summary(loc, frame) if reg.umin == reg.umax == 0 else None
        if reg.type not in (BTF_ID, MEM, SOCKET, MAP_VALUE):
            return None
        if not reg.ref_obj_id:
            # a pointer holding no reference says the same wherever the very same value is: paths
            # carry their pointers along unchanged (the context, a map value) from visit to visit
            key = (loc, frame, id(reg))
            hit = self._pointer_summaries.get(key)
            if hit is not None and hit[0] is reg:
                return hit[1]
            if len(self._pointer_summaries) > 4096:
                self._pointer_summaries.clear()
            found = self._pointer_summaries[key] = (reg, self._pointer_summary(loc, frame, reg, None))
            return found[1]
        return self._pointer_summary(loc, frame, reg, st.refs.get(reg.ref_obj_id))

    @staticmethod
    def _pointer_summary(loc: str, frame: int, reg: Reg, ref) -> ValueSummary:
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
                self._ld_abs_checks(insn, st)
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

    def _ld_abs_checks(self, insn: Insn, st: State) -> None:
        """check_ld_abs: the packet load may end the program, so nothing may be held across it."""
        problems = (
            ("prog_type", self.prog.prog_type not in ("socket_filter", "sched_cls", "sched_act", "unknown"), None),
            ("callback", any(f.callback for f in st.frames), None),
            # check_reference_leak() skips subprogram frames
            ("refs", bool(st.refs) and len(st.frames) == 1,
             {"acquired": min(r.acquired_at for r in st.refs.values())} if st.refs else None),
            ("lock", st.lock is not None, {"locked": st.lock.at} if st.lock is not None else None),
            ("rcu", bool(st.rcu_depth), {"rcu_locked": st.rcu_at}),
            ("preempt", bool(st.preempt_depth), {"locked": st.preempt_at}),
            ("ctx", st.cur.regs[6].type not in (CTX, ANYTHING), None),
        )
        for variant, broken, related in problems:
            if broken:
                self._fail(finding(C.LD_ABS_RESTRICTED, insn.idx, related=related, variant=variant))

    def _linked(self, st: State, r: int) -> Reg:
        """Register `r`'s number, given a link if it has none, so that a copy made now shares it."""
        reg = st.cur.regs[r]
        if not reg.link:
            reg = st.cur.regs[r] = reg.evolve(link=self._new_id(), link_off=0)
        return reg

    def _sync_links(self, st: State, known: Reg) -> None:
        """sync_linked_regs(): a comparison bounded `known`; every other copy of its value is
        bounded alike (moved by the difference of their offsets, in 32 bits where a 32-bit add
        made either), and its bounds now come from `known` too (precision: a decision on a copy
        needs the compared value)."""
        link = known.link
        for fr in st.frames:
            regs = fr.regs
            for i, v in enumerate(regs):
                if v.link == link and v is not known:
                    regs[i] = self._synced(v, known)
            stack = fr.stack
            for k, v in stack.items():
                if type(v) is Reg and v.link == link and v is not known:
                    stack[k] = self._synced(v, known)
                elif type(v) is NarrowSpill and v.reg.link == link:
                    stack[k] = replace(v, reg=self._synced(v.reg, known))

    def _synced(self, v: Reg, known: Reg) -> Reg:
        """Copy `v` of the value a comparison bounded `known` to."""
        off = known.link_off
        if v.type != SCALAR or v.tomb is not None:
            return v
        if v.link_off == off and v.link_add == known.link_add or not (v.link_add or known.link_add):
            new = known
        elif v.link_add == 32 or known.link_add == 32 and not v.link_add:
            new = alu_scalar(isa.ADD, known, scalar_const(v.link_off - off), False)
        elif known.link_add == 32:
            return v     # a 64-bit offset from a value another copy holds cut to 32 bits: left alone
        else:
            new = alu_scalar(isa.ADD, known.evolve(lo32=None), scalar_const(v.link_off - off), True)
        if (new.umin, new.umax, new.smin, new.smax) == (v.umin, v.umax, v.smin, v.smax):
            return v     # nothing new for this copy: it keeps its own precision node
        dep = None if v.dep is None and known.dep is None else self._node(v, known)
        return new.evolve(link=v.link, link_off=v.link_off, link_add=v.link_add, dep=dep, tomb=None,
                       load_time=v.load_time or known.load_time, vague=v.vague or known.vague)

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
        if not insn.uses_reg_src:
            # check_alu_op(): constants the instruction itself carries
            if op in (isa.DIV, isa.MOD) and insn.imm == 0:
                self._fail(finding(C.ALU_IMMEDIATE, insn.idx))
            if op in (isa.LSH, isa.RSH, isa.ARSH) and not 0 <= insn.imm < (64 if wide else 32):
                self._fail(finding(C.ALU_IMMEDIATE, insn.idx, variant="shift", imm=insn.imm))
        src = self._read(st, insn.src, insn.idx) if insn.uses_reg_src and op != isa.END else scalar_const(insn.imm)
        if op == isa.MOV and wide and insn.off == 1 and insn.uses_reg_src:
            # BPF_ADDR_SPACE_CAST: imm 1 makes an arena address a pointer (PTR_TO_ARENA); the
            # other direction gives a number. Arena memory is not checked by the kernel either.
            regs[insn.dst] = Reg(ARENA) if insn.imm == 1 else UNKNOWN
            return
        if op == isa.MOV:
            if insn.uses_reg_src and insn.off == 0 and src.type == SCALAR and not src.is_const and \
                    (wide or src.umax <= U32):
                # a copy shares the value's link, a 32-bit one while the value fits in 32 bits
                # (assign_scalar_id_before_mov())
                src = self._linked(st, insn.src)
            if insn.off in (8, 16, 32) or not wide:
                value = alu_scalar(op, scalar_const(0), src, wide, insn.off)
                if insn.off or value is not src:
                    value = value.unlinked()     # a sign extension is another value
                regs[insn.dst] = value.with_dep(self._node(src), src.load_time, src.vague) \
                    if src.type == SCALAR else UNKNOWN
            else:
                # a copy or a constant is a new value (precision.py); a pointer stays itself
                regs[insn.dst] = src.with_dep(self._node(src)) if src.type == SCALAR and (
                    src.dep is not None or not insn.uses_reg_src) else src
            return
        dst = self._read(st, insn.dst, insn.idx)
        if dst.type == ANYTHING or src.type == ANYTHING:
            regs[insn.dst] = dst if dst.type == ANYTHING else src
            return
        if ARENA in (dst.type, src.type) and op not in (isa.NEG, isa.END):
            # adjust_reg_min_max_vals(): any arithmetic with an arena pointer, 32-bit too, gives an
            # arena pointer (the kernel does not follow arena memory)
            regs[insn.dst] = dst if dst.type == ARENA else src
            return
        if dst.type == SCALAR and src.type == SCALAR:
            result = alu_scalar(op, dst, src, wide, insn.off, insn.imm)
            if result.type == SCALAR:
                result = result.with_dep(self._node(dst, src), dst.load_time or src.load_time or result.load_time,
                                         dst.vague or src.vague or result.vague or _widened(result, dst, src, wide))
                if result.load_value is not None:    # a number computed from the global, not the global
                    result = result.evolve(load_value=None)
                off = _link_offset(op, dst, src, wide)
                if off is not None:
                    # adjust_reg_min_max_vals(): `rX += c` (or -= c, once) keeps the link, c apart
                    result = result.evolve(link=dst.link, link_off=off, link_add=64 if wide else 32)
                else:
                    result = result.unlinked()
            regs[insn.dst] = result
            return
        if op not in (isa.NEG, isa.END):
            self._pointer_op_allowed(insn, dst, src, wide)
        if wide and op in (isa.ADD, isa.SUB) and dst.is_pointer and src.type == SCALAR:
            if insn.uses_reg_src:
                self._decided(insn.idx, src)     # the number is a pointer's offset here
            regs[insn.dst] = self._ptr_arith(insn, dst, src, op == isa.SUB)
            return
        if wide and op == isa.ADD and src.is_pointer and dst.type == SCALAR:
            self._decided(insn.idx, dst)
            regs[insn.dst] = self._ptr_arith(insn, src, dst, False)
            return
        # pointer - pointer (root may), a 32-bit subtraction, a unary operation: an unknown number
        regs[insn.dst] = UNKNOWN

    def _pointer_op_allowed(self, insn: Insn, dst: Reg, src: Reg, wide: bool) -> None:
        """adjust_reg_min_max_vals() / adjust_ptr_min_max_vals(): what arithmetic a pointer allows
        (to a privileged program): a number added to or subtracted from it in 64 bits, a pointer
        subtracted from another; nothing else."""
        op = insn.op
        name = ALU_OP_NAMES.get(op, "?")
        if dst.is_pointer and src.is_pointer:
            if op != isa.SUB:
                self._fail(finding(C.POINTER_ARITH, insn.idx, variant="ptr_ptr", reg=insn.dst, op=name))
            return
        ptr = dst if dst.is_pointer else src
        if not ptr.is_pointer:
            return
        if not wide:
            if op != isa.SUB:
                self._fail(finding(C.POINTER_ARITH, insn.idx, variant="alu32", reg=insn.dst))
            return
        if ptr.maybe_null:
            self._fail(finding(C.NULL_PTR_ARITH, insn.idx, reg=insn.dst, type=ptr.type_str(),
                               related=self._acq_rel(ptr, None)))
        offset = src if ptr is dst else dst
        if ptr.type not in POINTER_ARITH_TYPES and not (
                ptr.type == MAP_PTR and op == isa.ADD and offset.is_const and offset.const == 0):
            self._fail(finding(C.POINTER_ARITH, insn.idx, variant="type", reg=insn.dst, type=ptr.type_str()))
        if op == isa.SUB and ptr is src:
            self._fail(finding(C.POINTER_ARITH, insn.idx, reg=insn.dst))
        if op == isa.SUB and ptr.type == STACK:
            self._fail(finding(C.POINTER_ARITH, insn.idx, variant="stack_sub", reg=insn.dst))
        if op in (isa.AND, isa.OR, isa.XOR):
            self._fail(finding(C.POINTER_ARITH, insn.idx, variant="bitwise", reg=insn.dst, op=name))
        if op not in (isa.ADD, isa.SUB):
            self._fail(finding(C.POINTER_ARITH, insn.idx, variant="op", reg=insn.dst, op=name))

    def _ptr_arith(self, insn: Insn, ptr: Reg, delta: Reg, negate: bool) -> Reg:
        """A pointer moved by a number (_pointer_op_allowed() said it may be)."""
        if delta.is_const:
            d = to_signed(delta.const)
            return ptr.evolve(off=ptr.off - d if negate else ptr.off + d)
        if ptr.type == MAP_VALUE and delta.smin <= S64_MIN and not (delta.vague or delta.load_time) and \
                ptr.map is not None and ptr.map.kind == "map":
            # check_reg_sane_offset(): a number with no lower bound moves no pointer
            self._fail(finding(C.MAP_VALUE_OUT_OF_BOUNDS, insn.idx, variant="math", off=ptr.off, size=0,
                               value_size=ptr.map.value_size, map=ptr.map.name, reg=insn.dst))
        lo, hi = (-delta.smax, -delta.smin) if negate else (delta.smin, delta.smax)
        # a packet pointer moved by a number starts with nothing proven (a new id, range 0); one
        # moved by a number the model does not follow exactly is not bounds-checked
        return ptr.evolve(var_off=True, vmin=ptr.vmin + lo, vmax=ptr.vmax + hi,
                       mem_size=0 if ptr.type == PACKET else ptr.mem_size,
                       vague=ptr.vague or delta.vague or delta.load_time or ("" if not negate else "a subtracted number"))

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
        if reg.type == DYNPTR:
            # a callback's const dynptr is read through the bpf_dynptr_* functions only
            self._fail(finding(C.INVALID_DEREF, insn.idx, reg=r, type=reg.type_str()))
        if reg.type in (FUNC, MAP_PTR) and write:
            self._fail(finding(C.INVALID_DEREF, insn.idx, reg=r, type=reg.type_str()))
        if write and reg.type == MEM and reg.has(RDONLY):
            self._fail(finding(C.RDONLY_WRITE, insn.idx, reg=r))
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
        self._mem_bounds(insn, base, off, size)
        if base.type == STACK:
            value = self._stack_read(st, base, off, size, insn.idx)
            if value.type == SCALAR and value.dep is not None:
                value = value.with_dep(self._node(value))     # a fill is a copy (precision.py)
        elif base.type == CTX:
            self._ctx_pointer_unmoved(insn, base, insn.src)
            value = self._ctx_load(off, size, st, insn)
        elif base.type == MAP_VALUE and not base.var_off:
            self._map_value_bounds(insn, base, off, size)
            self._special_field_access(insn, base, off, size)
            value = self._map_value_load(st, base, off, size, insn)
        elif base.type == MAP_VALUE:
            self._var_off_map_access(insn, base, size)
        elif base.type == BTF_ID:
            if base.has(ALLOC):
                self._special_field_access(insn, base, off, size)
            else:
                self._kernel_btf_access(insn, base)
            value = self._btf_load(insn, base, off, size, st)
        elif base.type == SOCKET and base.type_name in ("bpf_sock", "bpf_sock_common", "bpf_tcp_sock") \
                and not base.var_off:
            if not sock_read_ok(base.type_name, off, size):
                self._fail(finding(C.INVALID_SOCK_ACCESS, insn.idx, reg=insn.src, off=off, size=size,
                                   view=base.type_name, variant={"bpf_sock_common": "common",
                                                                 "bpf_tcp_sock": "tcp"}.get(base.type_name, "")))
        elif base.type == MEM and base.type_name.startswith(KCONFIG_PREFIX) and off == 0:
            known = self.env.kconfig.get(base.type_name[len(KCONFIG_PREFIX):])
            if known is not None:
                value = scalar_const(known & ((1 << (8 * size)) - 1))
        # coerce_reg_to_size(): a narrow load keeps the bounds that fit its size (a sign-extending
        # one, those that fit its positive half)
        top = (1 << (8 * size)) - 1 if insn.mode != isa.MODE_MEMSX else (1 << (8 * size - 1)) - 1
        fits = value.type == SCALAR and (value.is_const and insn.mode != isa.MODE_MEMSX or
                                         0 <= value.smin and value.umax <= top)
        if (insn.mode == isa.MODE_MEMSX or size < 8 and value.type == SCALAR) and not fits:
            narrowed = scalar_range(0, top) if insn.mode != isa.MODE_MEMSX else UNKNOWN
            value = narrowed.with_dep(value.dep, value.load_time, value.vague) if value.type == SCALAR else narrowed
        if value.type == SCALAR and value.dep is None:
            # read from memory, or a spill of a value compared exactly wherever it is: a new value
            value = value.with_dep(self._node())
        st.cur.regs[insn.dst] = value

    def _store(self, insn: Insn, st: State) -> None:
        if st.cur.regs[insn.dst].type == ANYTHING:
            self._gap(insn.idx, st.cur.regs[insn.dst])
            return
        base = self._mem_base(insn, st, insn.dst, write=True)
        if base is None:
            return
        off = base.off + insn.off
        self._mem_bounds(insn, base, off, insn.size)
        if base.type == CTX:
            self._ctx_pointer_unmoved(insn, base, insn.dst)
        if insn.cls == Cls.STX:
            value = self._read(st, insn.src, insn.idx)
        else:
            value = scalar_const(insn.imm).with_dep(self._node())
        if base.type == STACK:
            if insn.cls == Cls.STX and off % 8 == 0 and not base.var_off and value.type == SCALAR and \
                    not value.is_const and value.tomb is None and (insn.size == 8 or 0 <= value.smin and
                                                                   value.umax >> (8 * insn.size) == 0):
                # a spill is a copy that shares the link, a narrow one if the value fits
                # (check_stack_write_fixed_off())
                value = self._linked(st, insn.src)
            self._stack_write(st, base, off, insn.size, value, insn.idx)
        elif base.type == MAP_VALUE and base.var_off:
            self._var_off_map_access(insn, base, insn.size)
        elif base.type == MAP_VALUE and not base.var_off:
            self._map_value_bounds(insn, base, off, insn.size)
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
            self._stack_write(st, base, base.off + insn.off, insn.size, UNKNOWN, insn.idx)
        elif base is not None and base.type == MAP_VALUE and not base.var_off:
            self._map_value_bounds(insn, base, base.off + insn.off, insn.size)
        if insn.imm == isa.ATOMIC_CMPXCHG:
            st.cur.regs[0] = UNKNOWN
        elif insn.imm & isa.FETCH or insn.imm == isa.LOAD_ACQ:
            st.cur.regs[insn.src if insn.imm != isa.LOAD_ACQ else insn.dst] = UNKNOWN

    def _mem_bounds(self, insn: Insn, base: Reg, off: int, size: int) -> None:
        """check_mem_region_access(): memory whose size the verifier knows (a ring-buffer record, a
        dynptr slice, a global function's pointer argument) is accessed inside it only."""
        if base.type == MEM and base.mem_size and not base.var_off and (off < 0 or off + size > base.mem_size):
            self._fail(finding(C.MEM_OUT_OF_BOUNDS, insn.idx, mem_size=base.mem_size, off=off, size=size))
        if base.type == PACKET:
            self._packet_bounds(insn, base, off, size, insn.src if insn.cls == Cls.LDX else insn.dst)

    def _packet_bounds(self, insn: Insn, base: Reg, off: int, size: int, reg: int) -> None:
        """check_packet_access(): only bytes a comparison with data_end proved (`mem_size`, the
        range) are read or written, by the program or by a helper given the pointer."""
        if not base.var_off and base.type_name != "data_meta" and (off < 0 or off + size > base.mem_size):
            self._fail(finding(C.PACKET_OUT_OF_BOUNDS, insn.idx, off=off, size=size, last=off + size - 1,
                               range=base.mem_size, reg=reg))

    def _map_value_bounds(self, insn: Insn, base: Reg, off: int, size: int) -> None:
        """check_map_access(): an access through a map value pointer lies inside the value.

        Only where the size the kernel will see is the one declared: not an inner map's value
        (its layout is not modelled), not global data (user space may resize a section before
        loading, as scx's resizable arrays do), not a map whose value is declared as a pointer (a
        placeholder for a map user space hands over with bpf_map__reuse_fd())."""
        m = base.map
        if m is None or m.kind != "map" or m.value_size <= 0 or self._size_set_at_load(m):
            return
        if off < 0 or off + size > m.value_size:
            self._fail(finding(C.MAP_VALUE_OUT_OF_BOUNDS, insn.idx, value_size=m.value_size, off=off, size=size,
                               map=m.name))

    def _size_set_at_load(self, m) -> bool:
        """Whether the value's declared size may not be the one the kernel sees (see above)."""
        if self.btf is None or not m.value_type_id:
            return True     # no declared type to trust
        try:
            return self.btf[self.btf.resolve(m.value_type_id)].kind == Kind.PTR
        except BtfError:
            return True

    def _stack_frame(self, st: State, base: Reg) -> Frame:
        return st.frames[min(base.frameno, len(st.frames) - 1)]

    def _stack_read(self, st: State, base: Reg, off: int, size: int, idx: int = -1) -> Reg:
        if base.var_off:
            return UNKNOWN
        fr = self._stack_frame(st, base)
        slot = fr.stack.get(off // 8)
        for v in (slot, fr.stack.get((off + size - 1) // 8)):
            if idx >= 0 and isinstance(v, Reg) and v.type in (DYNPTR, ITER):
                self._fail(finding(C.STACK_OBJECT_ACCESS, idx, off=off, size=size,
                                   object="a bpf_dynptr" if v.type == DYNPTR else "an iterator"))
        if isinstance(slot, Reg) and size == 8 and off % 8 == 0:
            return slot
        if slot == ZERO_SLOT:
            return ZERO
        spilled = slot.reg if isinstance(slot, NarrowSpill) else slot if isinstance(slot, Reg) and \
            slot.type == SCALAR and not slot.is_const else None
        if spilled is not None and off % 8 == 0 and size <= (slot.size if isinstance(slot, NarrowSpill) else 8):
            # check_stack_read_fixed_off(): a narrow fill at the spill's start copies the register,
            # cut to the load's size
            top = (1 << (8 * size)) - 1
            if 0 <= spilled.smin and spilled.umax <= top:
                return spilled
            cut = low32(spilled) if size == 4 else scalar_range(0, top)     # a u32 fill reads the low half
            return cut.with_dep(spilled.dep)
        if isinstance(slot, NarrowSpill):
            known = slot.rest.read(off % 8, size) if off % 8 >= slot.size else None
            return UNKNOWN if known is None else scalar_const(known).with_dep(slot.dep)
        if isinstance(slot, Reg) and slot.type == SCALAR and slot.is_const and size < 8:
            return scalar_const((slot.const >> (8 * (off % 8))) & ((1 << (8 * size)) - 1)).with_dep(slot.dep)
        if isinstance(slot, KnownBytes):
            known = slot.read(off % 8, size)
            return UNKNOWN if known is None else scalar_const(known).with_dep(slot.dep)
        return UNKNOWN

    def _stack_write(self, st: State, base: Reg, off: int, size: int, value: Reg, idx: int = -1) -> None:
        fr = self._stack_frame(st, base)
        if base.var_off:
            lo, hi = off + base.vmin, off + base.vmax + size - 1
            if hi - lo < 512:
                for s in self._stack_write_var_off(st, fr, lo, hi, value, idx):
                    self._stored_at(st, base, idx, 8 * s, 8, value)
            return
        # a store precision took for one at an unknown offset: here its slot is known, so the
        # value matters like any spill's
        self._stored_at(st, base, idx, off, size, value)
        for s in {off // 8, (off + size - 1) // 8}:
            dynptr.overwrite_check(self, st, fr, s, idx)
        slot = off // 8
        if size == 8 and off % 8 == 0:
            # a spill is a copy (precision.py)
            fr.stack[slot] = value.with_dep(self._node(value)) if value.type == SCALAR and value.dep is not None else value
            return
        old = fr.stack.get(slot)
        if not isinstance(old, KnownBytes):
            old = KnownBytes((0,) * 8) if old == ZERO_SLOT else NO_BYTES
        if off % 8 + size > 8:
            fr.stack[slot] = MISC
            return
        top = (1 << (8 * size)) - 1
        if off % 8 == 0 and value.type == SCALAR and value.tomb is None and not value.is_const and \
                0 <= value.smin and value.umax <= top and (value.umin, value.umax) != (0, top):
            # save_register_state(): a number stored at a slot's start stays a register there (the
            # bytes after it keep only their zeros). One that says nothing its size does not (any
            # u32 in a u32) stays bytes nobody knows, which is what a load would make of it.
            rest = KnownBytes(tuple(0 if i >= size and b == 0 else None for i, b in enumerate(old.known)))
            fr.stack[slot] = NarrowSpill(value.with_dep(self._node(value)) if value.dep is not None else value,
                                         size, rest)
            return
        # check_stack_write_fixed_off(): zeroes are known wherever they are stored (STACK_ZERO); another
        # constant only when stored at the start of the slot (an imprecise spilled register)
        known = value.const if value.is_const and (value.const == 0 or off % 8 == 0) else None
        fr.stack[slot] = old.store(off % 8, size, known, self._node(old, value))

    def _stored_at(self, st: State, base: Reg, idx: int, off: int, size: int, value: Reg) -> None:
        """Precision learns where an unplaced store (Dataflow.unplaced_stores) put its value. The
        static analysis counted none of it, so where the cell feeds what always needs a value
        exactly (a map key, a call's size), that does not reach the value either: it is marked
        here (a caller's stack: always)."""
        if idx not in self.unplaced_stores:
            return
        if base.frameno < len(st.frames) - 1:
            self._decided((idx, FOREIGN), value)
            return
        after = self.base.precise.get(idx + 1) if self.base is not None else None
        for cell in stack_cells(off, size):
            always = after is None or cell in after or ANY_SLOT in after
            self._decided((idx, cell), *((value,) if always else ()))

    def _stack_write_var_off(self, st: State, fr: Frame, lo: int, hi: int, value: Reg, idx: int) -> list[int]:
        """check_stack_write_var_off(): the bytes fp+lo..fp+hi may be written, so what they held
        is lost (STACK_MISC), spilled values included; a zero written where zeros were keeps
        them. Returns the slots it kept, where the value's exact zero matters."""
        zero = value.type == SCALAR and value.is_const and value.const == 0
        kept = []
        for s in range(lo // 8, hi // 8 + 1):
            dynptr.overwrite_check(self, st, fr, s, idx)
            old = fr.stack.get(s)
            if old is None:
                continue
            if zero and isinstance(old, Reg) and old.type == SCALAR and old.is_const and old.const == 0:
                kept.append(s)      # a spilled zero stays one, as long as the value is zero
                fr.stack[s] = old.with_dep(self._node(old, value))
                continue
            if isinstance(old, Reg) and (old.type in (ITER, DYNPTR) or old.ref_obj_id):
                continue    # objects with a lifetime of their own are checked where they are used
            if old == ZERO_SLOT:
                old = KnownBytes((0,) * 8)
            if isinstance(old, KnownBytes):
                # per byte: those it may write are lost, but for zeros written over zeros
                first, last = max(lo, 8 * s) - 8 * s, min(hi, 8 * s + 7) - 8 * s
                known = tuple(b if not first <= k <= last or (zero and b == 0) else None
                              for k, b in enumerate(old.known))
                if zero and any(old.known[k] == 0 for k in range(first, last + 1)):
                    kept.append(s)
                fr.stack[s] = MISC if all(b is None for b in known) else KnownBytes(known, self._node(old, value))
            else:
                fr.stack[s] = MISC
        return kept

    def _ctx_pointer_unmoved(self, insn: Insn, base: Reg, reg: int) -> None:
        """check_ptr_off_reg(): the context is accessed through the pointer the program was given,
        the field's offset in the instruction; a moved one is refused (a variable move is not
        followed here)."""
        if base.var_off or not base.off:
            return
        self._fail(finding(C.CTX_POINTER_MOVED, insn.idx, variant="negative" if base.off < 0 else "",
                           reg=reg, off=base.off))

    def _ctx_load(self, off: int, size: int, st: State, insn: Insn) -> Reg:
        ptype = self.prog.prog_type
        if off < 0:
            self._fail(finding(C.INVALID_CTX_ACCESS, insn.idx, off=off, size=size))
        if self.env.ctx_unknown:
            return ANY.evolve(type_name=self.env.ctx_unknown)
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
                if kind in ("trusted_or_null", "ptr_or_null"):
                    # an iterator's object: NULL when the walk is over (ctx_arg_info)
                    flags = {MAYBE_NULL} | ({TRUSTED} if kind == "trusted_or_null" else set())
                    return Reg(BTF_ID, type_name=name, flags=frozenset(flags), id=self._read_maybe_null(insn))
                if kind in ("buf_or_null", "rdonly_buf_or_null"):
                    # PTR_TO_BUF: a map element's key or value, of a size fixed when it is attached
                    flags = {MAYBE_NULL} | ({RDONLY} if kind == "rdonly_buf_or_null" else set())
                    return Reg(MEM, flags=frozenset(flags), id=self._read_maybe_null(insn))
                if kind == "unknown":
                    return ANY.evolve(type_name="an iterator context field")
            return UNKNOWN
        kind = PACKET_FIELDS.get(ptype, {}).get(off)
        if kind is not None:
            # data_meta is PTR_TO_PACKET_META, whose bounds come from comparisons with data: not followed
            return Reg(kind, type_name="data_meta" if off in PACKET_META_FIELDS.get(ptype, ()) else "")
        pointer = CTX_POINTERS.get(ptype, {}).get(off)
        if pointer is not None and size == 8:
            rtype, maybe_null, tname = pointer
            if rtype == ANYTHING:
                return ANY.evolve(type_name=tname)
            # a socket the program does not own (no reference to release)
            return Reg(rtype, type_name=tname, flags=frozenset({MAYBE_NULL} if maybe_null else ()),
                       id=self._read_maybe_null(insn) if maybe_null else 0)
        return UNKNOWN

    def _read_maybe_null(self, insn: Insn) -> int:
        """The id of a maybe-NULL pointer read from the context, remembered as its origin."""
        nid = self._new_id()
        self.null_origin[nid] = insn.idx
        return nid

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
        self._var_off_map_bounds(insn, base, size)
        rec = self.records.for_type(base.map.value_type_id) if base.map is not None else None
        if rec is None or not rec.valid or not rec.kptrs:
            return
        lo, hi = base.off + insn.off + base.vmin, base.off + insn.off + base.vmax + size
        if base.map.value_size and (lo < 0 or hi > base.map.value_size):
            return   # bounds we do not track (the kernel's own bounds check decides): unknown
        if any(k.off < hi and lo < k.off + 8 for k in rec.kptrs.values()):
            # the access may land on a kptr (check_map_kptr_access: variable offsets are refused)
            self._fail(finding(C.KPTR_VAR_OFF, insn.idx))

    def _var_off_map_bounds(self, insn: Insn, base: Reg, size: int) -> None:
        """check_mem_region_access(): at a variable offset, the access lies inside the value for
        the offset's smallest and largest value. Only where the model follows the offset as the
        kernel does (not through arithmetic it widens, nor a load-time or unknown number)."""
        m = base.map
        if m is None or base.vague or m.kind != "map" or m.value_size <= 0 or self._size_set_at_load(m):
            return
        reg = insn.src if insn.cls == Cls.LDX else insn.dst
        off = base.off + insn.off
        args = dict(value_size=m.value_size, size=size, map=m.name, reg=reg)
        if base.vmin < 0 and (base.vmin <= S64_MIN or off + base.vmin < 0):
            self._fail(finding(C.MAP_VALUE_OUT_OF_BOUNDS, insn.idx, variant="negative", off=off + base.vmin, **args))
        if base.vmax >= MAX_VAR_SIZE:
            self._fail(finding(C.MAP_VALUE_OUT_OF_BOUNDS, insn.idx, variant="unbounded", off=off, **args))
        if off + base.vmin + size > m.value_size or off + base.vmax + size > m.value_size:
            last = off + base.vmax if off + base.vmin + size <= m.value_size else off + base.vmin
            self._fail(finding(C.MAP_VALUE_OUT_OF_BOUNDS, insn.idx, variant="max", off=last, **args))

    def _map_value_load(self, st: State, base: Reg, off: int, size: int, insn: Insn) -> Reg:
        name = self._load_time_global(base.map, off)
        if name:
            # bounded by its size already, so a narrow load keeps the value the object holds
            whole = UNKNOWN if size >= 8 else scalar_range(0, (1 << (8 * size)) - 1)
            return whole.evolve(load_time=name, load_value=self.prog.obj.initial_value(base.map.section, off, size))
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

    def _load_time_global(self, m, off: int) -> str:
        """The name of the read-only global at `off` of a `.rodata` section: a `const volatile`
        that user space fills in before loading (libbpf's skeleton); "" for any other memory."""
        if m is None or m.kind != "data" or not m.section.startswith(".rodata") or \
                m.section.startswith((".rodata.str", ".rodata.cst")):
            return ""
        try:
            sec = self.btf[m.value_type_id] if self.btf is not None and m.value_type_id else None
            for type_id, var_off, size in (sec.vars or ()) if sec is not None else ():
                if var_off <= off < var_off + size:
                    return self.btf[type_id].name or m.section
        except (BtfError, IndexError, KeyError, TypeError):
            pass
        return m.section

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
            regs[insn.dst] = ANY.evolve(type_name=f"the extern variable {meaning.name} (defined in another file)")
        elif isinstance(meaning, KsymRef):
            regs[insn.dst] = Reg(BTF_ID, type_name=meaning.name, flags=frozenset({TRUSTED}))
        elif isinstance(meaning, KconfigRef):
            regs[insn.dst] = Reg(MEM, type_name=KCONFIG_PREFIX + meaning.name, mem_size=meaning.size)
        else:
            regs[insn.dst] = scalar_const(insn.imm64).with_dep(self._node())

    # -- control flow
    def _jump(self, insn: Insn, st: State) -> int | None:
        op = insn.op
        if op == isa.JA:
            return insn.jump_target
        if op == isa.JCOND:
            # may_goto, bounded by the kernel: both ways, the loop's exit first and the next
            # iteration queued, as check_cond_jmp_op() does. The order matters: a state leaving
            # a loop early (its later slots never written) covers the ones that leave it later.
            body = st.copy()
            prev = self._loop_entry(insn.idx, st)
            if prev is not None:
                self._widen_imprecise(prev, body)
            self._push(insn.idx + 1, body)
            return insn.jump_target
        wide = insn.cls == Cls.JMP
        dst = self._read(st, insn.dst, insn.idx)
        src = self._read(st, insn.src, insn.idx) if insn.uses_reg_src else scalar_const(insn.imm)
        # NULL checks: a maybe-NULL pointer compared with 0
        ptr, other = (dst, src) if dst.is_pointer else (src, dst)
        if ptr.is_pointer and other.type == SCALAR and other.is_const and other.const == 0 and op in (isa.JEQ, isa.JNE):
            if insn.uses_reg_src:
                self._decided(insn.idx, other)     # a register's zero made this a NULL check
            if not ptr.maybe_null and _not_null(ptr):
                # a pointer known to be valid is never NULL: only one way is possible
                return insn.jump_target if op == isa.JNE else insn.idx + 1
            if not ptr.maybe_null:
                # e.g. an RCU or plain BTF pointer: the kernel explores both ways, unchanged
                self._push(insn.jump_target, st.copy())
                return insn.idx + 1
            taken_null = op == isa.JEQ
            other_st = st.copy()
            self._mark_null_check(other_st, ptr, is_null=not taken_null)  # fall-through state
            self._mark_null_check(st, ptr, is_null=taken_null)            # taken state
            self._push(insn.jump_target, st)
            return self._continue_with(insn.idx + 1, other_st)
        if (wide and insn.uses_reg_src and op in (isa.JEQ, isa.JNE) and dst.is_pointer and src.is_pointer
                and dst.maybe_null != src.maybe_null and BTF_ID not in (dst.type, src.type)):
            # check_cond_jmp_op(): equal to a pointer that is not NULL, a maybe-NULL one is not NULL
            maybe = dst if dst.maybe_null else src
            taken = st.copy()
            self._mark_null_check(taken if op == isa.JEQ else st, maybe, is_null=False)
            self._push(insn.jump_target, taken)
            return insn.idx + 1
        if dst.type == SCALAR and src.type == SCALAR:
            outcome = branch_outcome(op, dst, src, wide)
            if outcome is not None:
                self._decided(insn.idx, dst, src)
                return insn.jump_target if outcome else insn.idx + 1
            if (dst.load_time or src.load_time) and op in BOUND_CHECKS:
                # a bound set at load time (a CPU count, a table size) decides the way: the paths
                # past it are, by design, for values user space never gives
                st.assumed = st.assumed or dst.load_time or src.load_time
            # a filter or feature switch (`if (targ_pid)`): the way the object's own value of the
            # global takes is the one the kernel walks; the other exists only if user space sets
            # it, so what is found there is a warning naming the global
            object_way = None if op in BOUND_CHECKS else _object_way(op, dst, src, wide)
            taken = st.copy()
            if object_way is not None:
                other = st if object_way[0] else taken
                other.assumed = other.assumed or object_way[1]
            t_dst, t_src = refine_branch(op, dst, src, wide, True)
            f_dst, f_src = refine_branch(op, dst, src, wide, False)
            if (dst.load_time or src.load_time) and op in BOUND_CHECKS:
                # the bound is one user space sets: what it leaves of the other number is not
                # known here (the kernel knows it), so no bounds check may rely on it
                why = f"a bound set at load time ({dst.load_time or src.load_time})"
                t_dst, t_src, f_dst, f_src = (r.with_dep(r.dep, vague=r.vague or why) if r.type == SCALAR else r
                                              for r in (t_dst, t_src, f_dst, f_src))
            self._set_refined(taken, insn, t_dst, t_src)
            self._set_refined(st, insn, f_dst, f_src)
            if object_way is not None and object_way[0]:
                # the object's way first, as the kernel walks it: a path under an assumption may
                # make later ones (under another, from a bound) prune against it
                self._push(insn.idx + 1, st)
                self._continue_with(insn.jump_target, taken)
            self._push(insn.jump_target, taken)
            return insn.idx + 1
        if wide and insn.uses_reg_src and {dst.type, src.type} == {PACKET, PACKET_END}:
            taken = st.copy()
            good = _PACKET_CHECKS.get((op, dst.type == PACKET))
            if good is not None:
                on_taken, right_open = good
                _prove_packet(taken if on_taken else st, dst if dst.type == PACKET else src, right_open)
            self._push(insn.jump_target, taken)
            return insn.idx + 1
        self._push(insn.jump_target, st.copy())
        return insn.idx + 1

    def _decided(self, idx, *values: Reg) -> None:
        """`values` decided what instruction `idx` did (a branch's way, a pointer's offset), or
        (store, cell): an unplaced store put its value in that stack cell."""
        self._mark(values)
        decided = self.relevance.decided
        if decided is not None and idx not in decided:
            self.newly_decided.add(idx)

    def _continue_with(self, idx: int, new_state: State):
        """Continue the current path with a different state object (swap in place)."""
        self._push(idx, new_state)
        raise StopPath

    def _loop_entry(self, idx: int, st: State) -> Explored | None:
        """find_prev_entry(): the explored state this path made at `idx` one iteration ago (not
        the one it made there just now), in the same frames."""
        ex = st.checkpoint
        if ex is not None and ex.idx == idx:
            ex = ex.parent
        shape = [(f.callsite, f.callback) for f in st.frames]
        while ex is not None:
            if ex.idx == idx and [(f.callsite, f.callback) for f in ex.state.frames] == shape:
                return ex
            ex = ex.parent
        return None

    def _widen_imprecise(self, prev: Explored, body: State) -> None:
        """widen_imprecise_scalars(): a may_goto loop converges because the kernel forgets, in
        the next iteration's state, every scalar that changed since the last one and that no
        decision needed so far: imprecise in the last iteration's state (precision.decided) and
        not read by a decision since (precision.read_since, the current register's precise flag).
        Without the walk's own precision, or with `widen_loops` off, nothing is widened.

        The widened number is unknown, as the kernel's is. Where our marks are fewer than the
        kernel's we forget more than it does, so an error found on such a walk is checked by
        walking again without widening (verify_program)."""
        if self.base is None or not self.widen_loops:
            return
        seq = prev.seq
        for fo, fb in zip(prev.state.frames, body.frames):
            for r, (o, c) in enumerate(zip(fo.regs, fb.regs)):
                if _imprecise_change(o, c, seq):
                    fb.regs[r] = self._forgotten(o, c)
            for slot, c in fb.stack.items():
                o = fo.stack.get(slot)
                if isinstance(o, Reg) and isinstance(c, Reg) and _imprecise_change(o, c, seq):
                    fb.stack[slot] = self._forgotten(o, c)

    def _forgotten(self, o: Reg, c: Reg) -> Reg:
        self.widened = True
        return UNKNOWN.evolve(load_time=c.load_time or o.load_time, vague=c.vague or o.vague).with_dep(self._node())

    def _set_refined(self, st: State, insn: Insn, dst: Reg, src: Reg) -> None:
        regs = st.cur.regs
        # the compared registers, then the other copies of their values (sync_linked_regs())
        dst = regs[insn.dst] = _refined(dst, regs[insn.dst])
        if dst.link:
            self._sync_links(st, dst)
        if insn.uses_reg_src:
            src = regs[insn.src] = _refined(src, regs[insn.src])
            if src.link and src.link != dst.link:
                self._sync_links(st, src)

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
            if fr.callback in BOOLEAN_CALLBACKS and r0.type == SCALAR and (r0.smax < 0 or r0.smin > 1):
                # only a range that excludes [0, 1] entirely: the kernel's may be tighter than ours
                self._fail(finding(C.CALLBACK_RETURN, insn.idx, smin=r0.smin, smax=r0.smax,
                                   func=BOOLEAN_CALLBACKS[fr.callback]))
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
        elif r0.type != SCALAR and _return_value_checked(self.prog):
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
        if isinstance(meaning, HelperRef):
            # check_helper_call(): the program type's get_func_proto() is asked before the arguments
            if not K.helper_allowed(meaning.id, self.prog.prog_type, self.sleepable):
                self._fail(finding(C.HELPER_NOT_ALLOWED, insn.idx, func=name, helper_id=meaning.id,
                                   prog_type=self.prog.prog_type))
            if K.helper_gpl_only(meaning.id) and not self.prog.obj.gpl_compatible:
                self._fail(finding(C.GPL_ONLY, insn.idx, func=name, license=self.prog.obj.license))
            if K.helper_might_sleep(meaning.id):
                self._may_sleep(insn.idx, st, name, meaning.id)
            self._no_indirect_kptr(insn, st, K.helper_memory_args(meaning.id))
            self._helper_memory(insn, st, K.helper_mem_args(meaning.id), meaning.name)
            self._helper_fills(st, K.helper_mem_args(meaning.id))
            for i in K.helper_map_args(meaning.id):
                m = st.cur.regs[i + 1].map if st.cur.regs[i + 1].type == MAP_PTR else None
                if m is not None and m.kind == "inner":
                    m = None    # an inner map template: which helpers suit it is not followed
                allowed = K.MAP_TYPE_FUNCS.get(m.map_type) if m is not None else None
                if allowed is not None and name not in allowed:
                    self._fail(finding(C.MAP_FUNC_MISMATCH, insn.idx, map_type=m.map_type, func=name,
                                       helper_id=meaning.id, map=m.name))
        if sem is None:
            # a function outside our model: no ownership effect known, the result is unknown,
            # but a number where its prototype returns one and it is given nothing but numbers
            # (`u64 scx_bpf_now(void)`): nothing there could hold or drop a reference
            self._clobber(st, UNKNOWN.evolve(vague=f"what {name}() returns")
                          if self._returns_number_from_numbers(name, st) else
                          ANY.evolve(type_name=f"what {name}() returns"))
            return insn.idx + 1
        allowed = SO.KFUNC_MEMBERS.get(name)
        so = self.prog.struct_ops
        # bpf_qdisc_kfunc_filter only filters Qdisc_ops programs; elsewhere the hooks decide, and a
        # qdisc kfunc the table does not know is allowed to no other program type
        if allowed is not None and (
                (so is not None and so.type_name == "Qdisc_ops" and (so.type_name, so.member) not in allowed)
                or (so is None and name not in K.kernel_table()["kfuncs"])):
            self._fail(finding(C.KFUNC_NOT_ALLOWED, insn.idx, func=name, prog_type=self.prog.prog_type))
        if not sem.is_helper and self.prog.prog_type != "unknown" and not K.kfunc_allowed(sem, self.prog.prog_type):
            self._fail(finding(C.KFUNC_NOT_ALLOWED, insn.idx, func=name, prog_type=self.prog.prog_type))
        if not sem.is_helper and K.kfunc_sleepable(name):
            self._may_sleep(insn.idx, st, name)
        if name in dynptr.SLICE_BUFFER_ARGS:
            # the optional buffer is memory of the constant size the kfunc reads (__szk)
            self._helper_memory(insn, st, dynptr.SLICE_BUFFER_ARGS[name], name)
            size = st.cur.regs[4]
            # a value user space sets before loading (a `const volatile`) is a constant to the kernel
            if size.type == SCALAR and not size.is_const and not size.load_time:
                self._fail(finding(C.SIZE_NOT_CONSTANT, insn.idx, reg=4, func=name))
        r1 = st.cur.regs[1]
        bounded_by = K.RET_BOUNDED_BY_SIZE.get(name) if isinstance(meaning, HelperRef) else None
        size = st.cur.regs[bounded_by + 1] if bounded_by is not None else None
        nxt = CallChecker(self, insn, st, sem).run()
        if size is not None and _sized(size) and st.cur.regs[0].type == SCALAR:
            # do_refine_retval_range(): a string or stack read returns at most the size it was given
            # (or a negative error)
            st.cur.regs[0] = scalar_signed(-MAX_ERRNO, min(size.umax, S64_MAX)).with_dep(st.cur.regs[0].dep)
        if isinstance(meaning, HelperRef) and name == "bpf_dynptr_from_mem" and \
                r1.type not in (MAP_VALUE, ANYTHING, SCALAR):
            # check_helper_call(), after the arguments: a local dynptr's memory is a map value
            # (scalars already failed the prototype)
            self._fail(finding(C.HELPER_ARG_TYPE, insn.idx, variant="from_mem", reg=1, func=name,
                               type=r1.type_str(), expected="map_value", state="not_map_value",
                               reason="", release_call=""))
        if isinstance(meaning, HelperRef) and name in K.PACKET_CHANGING_HELPERS:
            dynptr.invalidate_packet_pointers(st, Tombstone("packet_moved", insn.idx, via=name))
        return nxt

    def _is_kernel_function(self, name: str) -> bool:
        name = K.essential_name(name)
        return name in K.kernel_table()["kfuncs"] or name in self.env.kernel_funcs

    def _no_indirect_kptr(self, insn: Insn, st: State, memory_args: tuple[int, ...]) -> None:
        """A map value covering a kptr, passed where the helper accesses memory."""
        for i in memory_args:
            r = i + 1
            reg = st.cur.regs[r]
            if reg.type != MAP_VALUE or reg.map is None:
                continue
            rec = self.records.for_type(reg.map.value_type_id)
            if rec.valid and any(k.off <= reg.off < k.off + 8 for k in rec.kptrs.values()):
                self._fail(finding(C.KPTR_INDIRECT, insn.idx, reg=r))

    def _helper_memory(self, insn: Insn, st: State, mem_args, func: str) -> None:
        """A helper's (or slice kfunc's) memory arguments: stack memory lies inside the frame, for as
        many bytes as the size says (check_stack_access_within_bounds), and may not cover a dynptr's or
        iterator's slots (check_stack_range_initialized: only plain bytes and spilled registers may
        be read); a trusted kernel object is read within its field only (_btf_mem_arg)."""
        regs = st.cur.regs
        for a in mem_args:
            if a.source == "size":
                self._size_range(insn, a, regs[a.index + 2], func)
            reg = regs[a.index + 1]
            if reg.type == BTF_ID and not reg.var_off and not reg.has(ALLOC) and not reg.has(UNTRUSTED) \
                    and (reg.has(TRUSTED) or reg.ref_obj_id) and self.btf is not None:
                self._btf_mem_arg(insn, st, a, reg)
                continue
            if reg.type not in (STACK, MAP_VALUE, PACKET) or reg.var_off:
                continue
            size = _mem_arg_size(regs, a)
            if size <= 0:
                continue
            if reg.type == MAP_VALUE:
                self._map_value_bounds(insn, reg, reg.off, size)
                continue
            if reg.type == PACKET:
                self._packet_bounds(insn, reg, reg.off, size, a.index + 1)
                continue
            if reg.off < -MAX_STACK or reg.off + size > 0:
                # check_stack_access_within_bounds(): the helper's bytes run past the frame
                self._fail(finding(C.STACK_OUT_OF_BOUNDS, insn.idx, reg=a.index + 1, off=reg.off, size=size,
                                   func=func, direction="write to" if a.raw else "read from",
                                   verb="writes" if a.raw else "reads"))
            fr = self._stack_frame(st, reg)
            for off in range(reg.off, reg.off + size):
                v = fr.stack.get(off // 8)
                if not (isinstance(v, Reg) and v.type in (DYNPTR, ITER)):
                    continue
                if a.raw and v.type == DYNPTR:
                    self._fail(finding(C.STACK_OBJECT_ACCESS, insn.idx, variant="write", off=off, size=size,
                                       object="a bpf_dynptr"))
                if a.raw:
                    # the helper's bytes overwrite the iterator: what is left is no iterator
                    fr.stack[off // 8] = MISC
                else:
                    self._fail(finding(C.STACK_OBJECT_ACCESS, insn.idx, variant="helper_read", reg=a.index + 1,
                                       off=reg.off, size=size,
                                       object="a bpf_dynptr" if v.type == DYNPTR else "an iterator"))

    def _kernel_btf_access(self, insn: Insn, base: Reg) -> None:
        """check_ptr_to_btf_access(): kernel structures are read through BTF by GPL-compatible
        programs only (an object of the program's own types is not the kernel's)."""
        if not self.prog.obj.gpl_compatible:
            self._fail(finding(C.GPL_ONLY, insn.idx, variant="btf", type=base.type_name or "?",
                               license=self.prog.obj.license))

    def _may_sleep(self, idx: int, st: State, func: str, helper_id: int | None = None) -> None:
        """check_helper_call() / check_kfunc_call(): a call that may sleep needs a sleepable
        program, outside bpf_rcu_read_lock() and with preemption enabled. Inside a callback the
        kernel decides sleepability by the callback's kind (a bpf_wq's may sleep): not followed."""
        if any(fr.callback for fr in st.frames):
            return
        kind = "helper" if helper_id is not None else "kfunc"
        if not self.sleepable:
            variant = "" if kind == "helper" else "kfunc"
        elif st.rcu_depth:
            variant = f"{kind}_rcu"
        elif st.preempt_depth:
            variant = f"{kind}_preempt"
        else:
            return
        args = {"helper_id": helper_id} if helper_id is not None else {}
        self._fail(finding(C.SLEEPABLE_CALL, idx, variant=variant, func=func, **args))

    def _helper_fills(self, st: State, mem_args) -> None:
        """check_helper_call(): the stack bytes a helper fills (MEM_UNINIT: bpf_probe_read_kernel's
        destination, a popped map value) hold what nobody knows once it returns, as the kernel
        writes each one (STACK_MISC); a spilled register there is gone, zeros outside stay. Only
        a size the model knows is followed (the kernel's access size is its largest value); with
        a variable offset the kernel marks nothing (raw mode is off there)."""
        regs = st.cur.regs
        for a in mem_args:
            reg = regs[a.index + 1]
            if not a.raw or reg.type != STACK or reg.var_off:
                continue
            size = _mem_arg_size(regs, a)
            lo, hi = reg.off, min(reg.off + size, 0)
            if size <= 0 or lo < -MAX_STACK:
                continue
            fr = self._stack_frame(st, reg)
            for slot in range(lo // 8, (hi - 1) // 8 + 1):
                first, last = max(lo, 8 * slot) - 8 * slot, min(hi, 8 * slot + 8) - 8 * slot
                old = fr.stack.get(slot)
                if old == ZERO_SLOT:
                    old = KnownBytes((0,) * 8)
                if isinstance(old, KnownBytes) and all(b in (0, None) for b in old.known):
                    # STACK_ZERO bytes the helper does not reach stay zeros
                    known = tuple(None if first <= k < last else b for k, b in enumerate(old.known))
                    fr.stack[slot] = MISC if all(b is None for b in known) else KnownBytes(known, self._node(old))
                else:
                    fr.stack[slot] = MISC       # a spill (narrow ones too) is scrubbed whole

    def _size_range(self, insn: Insn, a, n: Reg, func: str) -> None:
        """check_mem_size_reg(): a size counts by its range (a constant's is itself); its largest
        value is what the memory must hold (the caller's bounds checks). Only a number the model
        knows as the kernel does (_sized) is checked."""
        if not _sized(n):
            return
        reg = a.index + 2
        variant = "negative" if n.smin < 0 else "zero" if n.umin == 0 and not a.zero_ok else \
            "" if n.umax >= MAX_VAR_SIZE else None
        if variant is not None:
            self._fail(finding(C.SIZE_OUT_OF_RANGE, insn.idx, variant=variant, reg=reg, func=func,
                               umin=n.umin, umax=n.umax, smin=n.smin))

    def _global_call_args(self, insn: Insn, st: State, fn) -> None:
        """btf_check_subprog_call: the caller's side of a global function's BTF-typed arguments."""
        for i, (kind, _name, _size) in enumerate(self._global_params(fn)[:5]):
            reg = st.cur.regs[i + 1]
            if reg.type == ANYTHING:
                continue
            null = reg.type == SCALAR and reg.is_const and reg.const == 0
            if kind in ("trusted", "trusted_nullable"):
                nullable = kind == "trusted_nullable"
                if null and nullable:
                    continue
                state = "null" if null else "scalar" if reg.type == SCALAR else \
                    "maybe_null" if reg.maybe_null and not nullable else ""
                if state in ("null", "scalar"):     # 6.18 checks the trust first
                    self._fail(finding(C.NOT_REFERENCED_OR_TRUSTED, insn.idx, reg=i + 1, func=fn.name, state=state))
                if state:
                    self._fail(finding(C.HELPER_ARG_TYPE, insn.idx, reg=i + 1, func=fn.name, state=state,
                                       type="ptr_or_null_" if state == "maybe_null" else reg.type_str(),
                                       expected="ptr_, trusted_ptr_, rcu_ptr_", reason="", release_call=""))
                continue
            if kind in ("mem", "mem_nonnull"):
                if reg.type == SCALAR and not (null and kind == "mem"):
                    self._fail(finding(C.HELPER_ARG_TYPE, insn.idx, reg=i + 1, func=fn.name,
                                       state="null" if null else "scalar",
                                       type=reg.type_str(), expected=calls.MEM_TYPES, reason="", release_call=""))
                if reg.type == CTX:
                    # check_mem_reg(): the context is no memory of the argument's size
                    self._fail(finding(C.HELPER_ARG_TYPE, insn.idx, reg=i + 1, func=fn.name, state="ctx",
                                       type=reg.type_str(), expected=calls.MEM_TYPES, reason="", release_call=""))
                continue
            if kind != "dynptr" or reg.type == DYNPTR:
                continue
            if reg.type != STACK or reg.var_off or reg.off % 8:
                self._fail(finding(C.DYNPTR_ARG, insn.idx, arg=i, reg=i + 1, type=reg.type_str(), func=fn.name))
            if dynptr.at(self._stack_frame(st, reg), reg.off // 8) is None:
                self._fail(finding(C.DYNPTR_UNINIT, insn.idx, arg=i, func=fn.name))

    def _btf_mem_arg(self, insn: Insn, st: State, a, reg: Reg) -> None:
        """A trusted kernel object as helper memory: read within its field only, never written."""
        func = self.prog.meanings[insn.idx].name
        if not a.rdonly:
            # check_reg_type: memory a helper may write takes no kernel object (whatever it does)
            self._fail(finding(C.BTF_MEM_ACCESS, insn.idx, variant="write", func=func, reg=a.index + 1,
                               type="trusted_ptr_", struct=reg.type_name))
        n = st.cur.regs[a.index + 2] if a.source == "size" else None
        if n is None or n.type != SCALAR or not n.is_const:
            return
        over = member_overrun(self.btf, reg.type_name, reg.off, int(n.const))
        if over is not None:
            member, end, struct = over
            self._fail(finding(C.BTF_MEM_ACCESS, insn.idx, func=func, member=member, mend=end, struct=struct,
                               off=reg.off, size=int(n.const)))

    def _subprog_call(self, insn: Insn, st: State, ref: SubprogRef) -> int | None:
        fn = self.prog.function_at(ref.target)
        if fn is not None and fn.is_global:
            if st.lock is not None:
                self._report(finding(C.CALL_UNDER_LOCK, insn.idx, related={"locked": st.lock.at},
                                     func=fn.name, lock=st.lock.holder))
            self._global_call_args(insn, st, fn)
            if fn.start in self.packet_changing_funcs:
                # a global function is verified alone: its caller only learns that it may move the packet
                dynptr.invalidate_packet_pointers(st, Tombstone("packet_moved", insn.idx, via=fn.name))
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

    def _returns_number_from_numbers(self, name: str, st: State) -> bool:
        obj = self.prog.obj
        proto = obj.extern_protos.get(name) if obj is not None else None
        params = self.btf.func_params(name) if self.btf is not None else None
        if proto is None or proto[0] not in ("scalar", "void") or params is None:
            return False
        regs = st.cur.regs
        return len(params) <= 5 and all(regs[i + 1].type == SCALAR and regs[i + 1].tomb is None
                                        for i in range(len(params)))

    def _clobber(self, st: State, r0: Reg) -> None:
        regs = st.cur.regs
        for r in CALLER_SAVED:
            regs[r] = UNINIT
        # a call's number comes from nothing the program holds: a new value (precision.py)
        regs[0] = r0.with_dep(self._node()) if r0.type == SCALAR and r0.dep is None else r0

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
        self._push(target, cb)


# try_match_pkt_pointers(): (op, whether the packet pointer is the first operand) -> (whether the
# bytes up to it are there on the taken side, whether the comparison leaves the range open at it)
_PACKET_CHECKS = {
    (isa.JGT, True): (False, False), (isa.JLT, True): (True, True),
    (isa.JGE, True): (False, True), (isa.JLE, True): (True, False),
    (isa.JGT, False): (True, True), (isa.JLT, False): (False, False),
    (isa.JGE, False): (True, False), (isa.JLE, False): (False, True),
}


def _prove_packet(st: State, ptr: Reg, right_open: bool) -> None:
    """find_good_pkt_pointers(): `ptr.off` bytes (one more when the comparison was strict the
    other way) are there, for every packet pointer of the same group: those at a fixed offset
    from the packet's start. A pointer moved by a number is not followed."""
    if ptr.var_off or ptr.type_name == "data_meta" or ptr.off < 0 or (ptr.off == 0 and right_open) \
            or ptr.off > MAX_PACKET_OFF:
        return
    new = ptr.off + (1 if right_open else 0)
    st.map_values(lambda v: v.evolve(mem_size=new) if v.type == PACKET and not v.var_off and
                  v.type_name != "data_meta" and v.mem_size < new else v)


def _return_value_checked(prog: Program) -> bool:
    """Whether the kernel requires a number in R0 at this program's exit."""
    if prog.prog_type == "tracing":
        return prog.section.lstrip("?").startswith(RANGE_CHECKED_TRACING)
    return prog.prog_type in RANGE_CHECKED_RETURNS


def _link_offset(op: int, dst: Reg, src: Reg, wide: bool) -> int | None:
    """The offset `dst op= src` leaves a linked copy at, or None where the link breaks: only a
    first add or subtract of a constant that fits in 32 bits, and a 32-bit one only on a value
    that fits in 32 bits (adjust_reg_min_max_vals())."""
    if op not in (isa.ADD, isa.SUB) or not dst.link or dst.link_add or not src.is_const:
        return None
    val = src.const if wide else src.const & U32
    if wide and not -(1 << 31) <= to_signed(val) < 1 << 31 or not wide and dst.umax > U32:
        return None
    off = val & U32
    off = off - (1 << 32) if off >> 31 else off
    if op == isa.SUB:
        if off == -(1 << 31):
            return None
        off = -off
    return off


def _refined(new: Reg, was: Reg) -> Reg:
    """`was` with the bounds a comparison left it (`new`)."""
    if new is was or new.type != SCALAR:
        return was if new is was else new
    return new.known_better(was)


def _imprecise_change(o: Reg, c: Reg, seq: int) -> bool:
    """maybe_widen_reg(): a scalar that differs from explored state `seq`'s and is precise in neither."""
    if o is c or o.type != SCALAR or c.type != SCALAR or o.tomb is not None or c.tomb is not None:
        return False
    return not (precision.decided(o, seq) or precision.read_since(c, seq) or
                (o.umin, o.umax, o.smin, o.smax, o.lo32, o.s32) == (c.umin, c.umax, c.smin, c.smax, c.lo32, c.s32))


def _widened(result: Reg, dst: Reg, src: Reg, wide: bool) -> str:
    """Why a result is vague: bounded operands gave a number the model knows nothing of, where the
    kernel's tnums may know more."""
    full = (0, U64) if wide else (0, U32)
    if (result.umin, result.umax) != full or (wide and result.smin > S64_MIN):
        return ""

    def bounded(r: Reg) -> bool:
        return r.umax < full[1] if not wide else (r.umin, r.umax) != (0, U64)
    return "arithmetic bpf-lsp does not follow exactly" if bounded(dst) and bounded(src) else ""


def _mem_arg_size(regs: list[Reg], a) -> int:
    """The bytes a helper's memory argument covers: its size argument's largest value (where the
    model knows it as the kernel does), or the key or value size of the map it goes with; 0 when
    not known."""
    if a.source == "size":
        n = regs[a.index + 2]
        return n.umax if _sized(n) else 0
    m = regs[a.map_arg + 1].map if regs[a.map_arg + 1].type == MAP_PTR else None
    return (m.key_size if a.source == "key" else m.value_size) if m is not None else 0


def _sized(n: Reg) -> bool:
    """A size argument whose range the model knows as the kernel does (not one computed from a
    load-time global or from what a call outside the model returned)."""
    return n.type == SCALAR and n.tomb is None and not n.load_time and not n.vague


_REG_NAMES = tuple(f"r{r}" for r in range(11))


@cache
def _slot_name(slot: int) -> str:
    return f"fp{slot * 8}"


@cache
def _null_summary(loc: str, frame: int) -> ValueSummary:
    """A NULL's summary: the same for every path, and a path may hold many (a zeroed struct)."""
    return ValueSummary(loc, frame, "null", "", False, 0, -1)


def _object_way(op: int, dst: Reg, src: Reg, wide: bool) -> tuple[bool, str] | None:
    """(whether the branch is taken, the global) where a `const volatile` global read straight
    from `.rodata` decides it with the value the object holds; None elsewhere."""
    def known(r: Reg) -> Reg | None:
        v = r.load_value
        return scalar_const(v) if r.load_time and v is not None and r.umin <= v <= r.umax else None
    d, s = known(dst), known(src)
    if d is None and s is None:
        return None
    outcome = branch_outcome(op, d or dst, s or src, wide)
    return None if outcome is None else (outcome, (dst if d is not None else src).load_time)


def _summarised(reg: Reg) -> bool:
    """Whether a hover may say something of this value (`_summary`'s cheap part: most values
    a path carries are plain numbers)."""
    if reg.type == SCALAR:
        return reg.tomb is not None or reg.umin == reg.umax == 0
    return reg.type in (BTF_ID, MEM, SOCKET, MAP_VALUE)


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
