"""Calls: every helper and kfunc call checked and applied as its semantics record says."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..frontend.isa import Insn
from ..frontend.btf import BtfError
from .. import codes as C
from . import kfuncs as K
from .domain import (ANY, ANYTHING, CTX, DYNPTR, ITER, PACKET, ALLOC, BTF_ID, FUNC, MAP_PTR, MAP_VALUE, MAYBE_NULL, MEM, MISC,
                     NON_OWN, NOT_INIT, PERCPU, RCU, RDONLY, RINGBUF, SCALAR, SOCKET, STACK, TRUSTED, UNINIT,
                     UNKNOWN, UNTRUSTED, LockState, Reg, State, Tombstone, dead_pointer)
from .dynptr import SLICE_SIZE_REG, DynptrCall, invalidate_packet_pointers
from .findings import finding
from .records import LIST_HEAD, LIST_NODE, RB_NODE, RB_ROOT

if TYPE_CHECKING:
    from .interpreter import Interpreter

CALLER_SAVED = (1, 2, 3, 4, 5)
# registers check_helper_mem_access() reads as memory, a kfunc's struct pointer among them
PLAIN_MEMORY = (MAP_VALUE, STACK, MEM, PACKET)
SCALAR_KINDS = ("INT", "ENUM", "ENUM64")    # btf_type_is_scalar()
BPF_F_INNER_MAP = 1 << 12
# bpf_cast_to_kern_ctx(): the kernel structure behind each program type's context
KERN_CTX_TYPES = {"sched_cls": "sk_buff", "sched_act": "sk_buff", "cgroup_skb": "sk_buff", "socket_filter": "sk_buff",
                  "sk_skb": "sk_buff", "lwt_in": "sk_buff", "lwt_out": "sk_buff", "lwt_xmit": "sk_buff",
                  "xdp": "xdp_buff"}
MAP_IN_MAP_TYPES = (12, 13)   # BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS
SOCK_MAP_TYPES = (15, 18)     # BPF_MAP_TYPE_SOCKMAP, BPF_MAP_TYPE_SOCKHASH
XSKMAP_TYPE = 17
ARRAY_MAP_TYPES = (2, 6)      # BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY
HELPER_EXPECTED = {K.RINGBUF_MEM: "ringbuf_mem", K.SOCKET: "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_"}
# compatible_reg_types of the helper argument kinds that take memory, in the kernel's spelling
MEM_TYPES = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"
POINTER_ARG_EXPECTED = {"ARG_PTR_TO_MAP_KEY": MEM_TYPES, "ARG_PTR_TO_MAP_VALUE": MEM_TYPES, "ARG_PTR_TO_MEM": MEM_TYPES,
                        "ARG_PTR_TO_UNINIT_MEM": MEM_TYPES, "ARG_PTR_TO_FIXED_SIZE_MEM": MEM_TYPES,
                        "ARG_PTR_TO_CTX": "ctx", "ARG_PTR_TO_BTF_ID_SOCK_COMMON": HELPER_EXPECTED[K.SOCKET],
                        "ARG_PTR_TO_PERCPU_BTF_ID": "percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_"}


class StopPath(Exception):
    """The current path cannot continue (the kernel would stop here)."""


def _scalar_members(btf, t, depth: int) -> bool:
    for m in t.members:
        mt = btf[btf.resolve(m.type_id)]
        if mt.kind.name in ("STRUCT", "UNION"):
            if depth >= 3 or not _scalar_members(btf, mt, depth + 1):
                return False
        elif mt.kind.name == "ARRAY":
            if not mt.nelems or btf[btf.resolve(mt.elem_type)].kind.name not in SCALAR_KINDS:
                return False
        elif mt.kind.name not in SCALAR_KINDS:
            return False
    return True


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
        if sem.is_helper:
            self.check_helper_scalar_args()
            self.check_helper_map_args()
        if sem.generated and sem.is_helper:
            self.check_generated_helper_args()
        params = self.it.dynptr_params(sem)
        dynptrs = DynptrCall(self.it, self.st, self.insn.idx, sem, params) if params else None
        known = dynptrs.check() if dynptrs is not None else False
        for i, arg in enumerate(sem.args):
            self.check_arg(i, arg)
        self.check_release_target()
        self.apply_effect()
        if known:
            dynptrs.apply()
            if dynptrs.moves_packet():
                invalidate_packet_pointers(self.st, Tombstone("packet_moved", self.insn.idx, via=sem.name))
        elif dynptrs is not None and sem.name in SLICE_SIZE_REG:
            self.regs[0] = ANY.evolve(type_name=f"a slice of an unknown dynptr from {sem.name}()")
        return self.insn.idx + 1

    # ---- arguments
    def _helper_arg_kinds(self) -> list:
        """The kinds each argument of the helper's kernel prototypes takes (the generated table)."""
        entry = K.kernel_table()["helpers"].get(str(self.sem.helper_id)) or {}
        return entry.get("args", ())[:5]

    def check_helper_scalar_args(self) -> None:
        """A number where every prototype of the helper takes a pointer (check_reg_type); only
        NULL passes where a variant takes NULL."""
        for i, kinds in enumerate(self._helper_arg_kinds()):
            reg = self.regs[i + 1]
            if reg.type != SCALAR or not kinds:
                continue
            bases = {k.split("|")[0] for k in kinds}
            if len(bases) != 1 or not all(k.startswith("ARG_PTR_TO_") for k in kinds):
                continue
            if reg.is_const and reg.const == 0 and any("MAYBE_NULL" in k for k in kinds):
                continue
            expected = POINTER_ARG_EXPECTED.get(bases.pop())
            if expected is not None:
                tomb = reg.tomb
                self.fail(C.HELPER_ARG_TYPE, related=self._tomb_related(reg), reg=i + 1, type=reg.type_str(),
                          expected=expected, state=self._state_words(reg), reason=tomb.reason if tomb else "",
                          release_call=tomb.via if tomb else "")

    def check_helper_map_args(self) -> None:
        """A map argument (ARG_CONST_MAP_PTR) that may be NULL: an outer map's lookup, unchecked
        (an inner map, or NULL: check_reg_type() finds map_ptr_or_null no map)."""
        for i, kinds in enumerate(self._helper_arg_kinds()):
            reg = self.regs[i + 1]
            if reg.type == MAP_PTR and reg.maybe_null and kinds and \
                    all(k.split("|")[0] == "ARG_CONST_MAP_PTR" for k in kinds):
                self.fail(C.HELPER_ARG_TYPE, reg=i + 1, type=reg.type_str(), expected="map_ptr",
                          state="maybe_null", reason="", release_call="")

    def check_generated_helper_args(self) -> None:
        """From the kernel's prototypes: a maybe-NULL pointer where no variant of the helper takes
        NULL (check_reg_type finds no compatible type). Nothing else is known of these arguments."""
        for i, kinds in enumerate(self._helper_arg_kinds()):
            reg = self.regs[i + 1]
            if kinds == ["ARG_PTR_TO_PERCPU_BTF_ID"] and reg.type in (MAP_VALUE, STACK, CTX, PACKET):
                # a per-CPU kernel variable or per-CPU object only; plain memory has no per-CPU copies
                self.fail(C.HELPER_ARG_TYPE, reg=i + 1, type=reg.type_str(), state="not_percpu",
                          expected="percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_", reason="", release_call="")
            if not (reg.is_pointer and reg.maybe_null and reg.type != ANYTHING):
                continue
            if kinds and all(k.startswith("ARG_PTR_TO_") and "NULL" not in k for k in kinds):
                self.it._report(finding(C.HELPER_NULL_ARG, self.insn.idx, func=self.sem.name, arg=i + 1,
                                        variant="", related=self.it._acq_rel(reg, self.st)),
                                key=(C.HELPER_NULL_ARG, reg.id or self.insn.idx))
                self.it._mark_null_check(self.st, reg, is_null=False)

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
                      variant="memory" if self._scalar_struct(arg.btf_type) and not self.sem.has(K.RELEASE) else "",
                      key=(C.KFUNC_ARG_NOT_POINTER, tomb.at if tomb else self.insn.idx))
        if reg.type in PLAIN_MEMORY and not self.sem.has(K.RELEASE) and self._scalar_struct(arg.btf_type):
            # get_kfunc_ptr_arg_type(): memory that is no kernel object, where the struct holds only
            # numbers (a struct bpf_cpumask in a map value), is plain memory (KF_ARG_PTR_TO_MEM),
            # which needs no trust
            return
        if trusted_checked:
            self._need_trusted(r, reg, arg)
        if reg.type == BTF_ID and arg.btf_type and reg.type_name and not reg.off and not reg.has(ALLOC) \
                and not self._struct_is_or_starts_with(reg.type_name, arg.btf_type):
            self.fail(C.KFUNC_ARG_BTF_MISMATCH, arg=i, reg=r, want=arg.btf_type, got=reg.type_name)

    def _scalar_struct(self, name: str) -> bool:
        """__btf_type_is_scalar_struct(): every member a number, an array of numbers or such a
        struct (three levels deep at most). A struct the object does not describe: nothing known."""
        btf = self.it.btf
        t = btf.struct_by_name(name.split("___")[0]) if btf is not None and name else None
        if t is None:
            return True
        try:
            return _scalar_members(btf, t, 0)
        except (BtfError, KeyError, IndexError):
            return True

    def _struct_is_or_starts_with(self, got: str, want: str) -> bool:
        """btf_struct_ids_match() without strictness: `got` is `want`, or begins with it (its first
        member, recursively). Flavours (`task_struct___old`) are the kernel type; unknown is a match."""
        got, want = got.split("___")[0], want.split("___")[0]
        btf = self.it.btf
        for _ in range(8):
            if got == want:
                return True
            t = btf.struct_by_name(got) if btf is not None else None
            if t is None or t.kind.name != "STRUCT":
                return t is None      # a struct the object does not describe: nothing known
            first = t.members[0] if t.members else None
            if first is None or first.offset:
                return False
            try:
                m = btf[btf.resolve(first.type_id)]
            except (BtfError, KeyError, IndexError):
                return True
            if m.kind.name != "STRUCT" or not m.name:
                return False
            got = m.name.split("___")[0]
        return True

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

    def _inner_map_value(self, reg: Reg) -> bool:
        """A value of an inner map (an outer map's lookup): its layout is not modelled, so what
        needs its record is unknown, never an error."""
        if reg.type == MAP_VALUE and reg.map is None:
            self.it._gap(self.insn.idx, ANY.evolve(type_name="a value of an inner map"))
            self.unknown_args = True
            return True
        return False

    def _graph_root(self, i, r, reg, want: str) -> None:
        if self._inner_map_value(reg):
            return
        if reg.type == MAP_VALUE and reg.map is not None:
            rec = self.it.records.for_type(reg.map.value_type_id)
            holder = ("map", reg.map.name, reg.id)
        elif reg.type == BTF_ID and reg.has(ALLOC):
            rec = self.it.records.for_type(reg.btf_id)
            holder = ("obj", reg.ref_obj_id or reg.id)
        else:
            self.fail(C.INVALID_DEREF, reg=r, type=reg.type_str())
            return
        if reg.var_off:
            self.fail(C.GRAPH_FIELD_NOT_FOUND, variant="var_off_root", reg=r, field=want, off=reg.off)
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
        if reg.var_off:
            self.fail(C.GRAPH_FIELD_NOT_FOUND, variant="var_off_node", reg=r, field=want, off=reg.off)
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
        if reg.type == MAP_VALUE and reg.map is None:
            # an inner map's value: its layout is not modelled, but which lookup it came from is
            # (the kernel tells locks apart by map_uid and the lookup's id): lock and unlock must agree
            self.lock_target = (("inner", reg.id), reg.off)
            return
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
        if self._inner_map_value(reg):
            return
        if reg.type in (MAP_VALUE, BTF_ID) and reg.maybe_null:
            # a lookup's value, unchecked: check_reg_type() finds no map value in map_value_or_null
            self.fail(C.HELPER_ARG_TYPE, reg=r, type=reg.type_str(), expected="map_value, ptr_",
                      state="maybe_null", reason="", release_call="")
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
            callback = next((i for i, f in enumerate(st.frames) if f.callback), None)
            if callback is not None:
                self.fail(C.THROW_RESTRICTED, throw_insn=at, subprog=callback, where="inside a callback")
            for variant, held, words in (("preempt", st.preempt_depth, "preemption is disabled"),
                                         ("rcu", st.rcu_depth, "inside an RCU read-side section")):
                if held:
                    self.fail(C.THROW_RESTRICTED, variant=variant, throw_insn=at, subprog=0, where=words)
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
        if effect == K.EFFECT_CALLBACK_DRAIN and getattr(self, "callback_target", None) is not None:
            sample = Reg(DYNPTR, type_name="user", id=it._new_id())   # CONST_PTR_TO_DYNPTR
            it.verify_callback(insn, st, self.callback_target, [sample, self.regs[3]], "user_ringbuf")
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
            live = isinstance(cur, Reg) and cur.type == ITER and cur.ref_obj_id in st.refs
            iter_name = "iter_" + sem.ref_kind.partition(":")[2] if sem.ref_kind else \
                sem.name.removeprefix("bpf_").rsplit("_", 1)[0]
            if fr is not None and op == K.ITER_NEW and live:
                self.fail(C.ITER_UNINIT, variant="new", iter=iter_name)
            if fr is not None and op != K.ITER_NEW and not live:
                self.fail(C.ITER_UNINIT, iter=iter_name)
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
            r0 = r0.evolve(ref_obj_id=rid)
        self.finish(r0)

    def proto_return(self, trusted: bool) -> Reg:
        """R0 after a kfunc, from its BTF prototype (check_kfunc_call's return-type rules)."""
        it, sem, at = self.it, self.sem, self.insn.idx
        proto = it.prog.obj.extern_protos.get(sem.name) if it.prog.obj is not None else None
        if proto is None and sem.name in it.env.kernel_funcs:
            proto = it.env.kernel_funcs[sem.name][0]
        if proto is None:
            return ANY.evolve(type_name=f"what {K.spelling(sem.name)}() returns (no prototype)")
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
            size, rdonly = self._returned_buffer(size)
            if rdonly:
                flags.add(RDONLY)
            return Reg(MEM, flags=frozenset(flags), id=vid, mem_size=size, type_name=name)
        if trusted:
            flags.add(RCU if sem.has(K.RCU_PROTECTED) else TRUSTED)
        return Reg(BTF_ID, type_name=name, flags=frozenset(flags), id=vid)

    def _returned_buffer(self, pointee_size: int) -> tuple[int, bool]:
        """(size, read-only) of the memory a kfunc returning a pointer to a number gives: as
        many bytes as its `rdonly_buf_size` or `rdwr_buf_size` argument says (a constant the
        kernel requires), else its pointee's, read-only (check_kfunc_call(); but for
        K.WRITABLE_POINTEE_RETURNS). A size that is not a constant is the kernel's error, not one we
        model: the size is then unknown (0: no access is checked)."""
        name = self.sem.name
        params = K.kfunc_param_names(name) or ()
        for i, param in enumerate(params[:5]):
            if param in ("rdonly_buf_size", "rdwr_buf_size"):
                reg = self.regs[i + 1]
                known = reg.type == SCALAR and reg.umin == reg.umax and not reg.vague
                return (reg.umin if known else 0), param == "rdonly_buf_size"
        return pointee_size, K.essential_name(name) not in K.WRITABLE_POINTEE_RETURNS

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
        st.map_values(lambda v: v.evolve(ref_obj_id=0, flags=v.flags | {NON_OWN}, nonown_at=at,
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
                return ANY.evolve(type_name=f"the kernel context of {self.it.prog.prog_type} programs")
            return Reg(BTF_ID, type_name=tname, flags=frozenset({TRUSTED}))
        if ret == K.RET_SAME_OBJ:
            src = self.regs[1]
            if sem.ret_nonnull_if_owned and src.ref_obj_id:
                flags.discard(MAYBE_NULL)
            rid = it.acquire(st, "local", at, sem.name, src.type_name)
            return Reg(BTF_ID, type_name=src.type_name, btf_id=src.btf_id, flags=frozenset(flags | {ALLOC}),
                       id=vid, ref_obj_id=rid)
        if ret == K.RET_ANYTHING or (self.unknown_args and ret not in (K.RET_SCALAR, K.RET_VOID)):
            return ANY.evolve(type_name=f"what {K.spelling(sem.name)}() returns")
        if ret == K.RET_GRAPH_NODE:
            root = self.root_arg[2] if self.root_arg else None
            if root is None:
                return ANY.evolve(type_name=f"what {K.spelling(sem.name)}() returns")
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
            if m is not None and m.kind == "inner":
                # an inner map's value: its layout is not modelled (map None); whether it may be
                # NULL is the template's to say: an array's element at a constant in-range key is
                # there, unless BPF_F_INNER_MAP lets the inner maps be of other sizes
                if m.map_type in ARRAY_MAP_TYPES and not m.map_flags & BPF_F_INNER_MAP and \
                        sem.name == "bpf_map_lookup_elem" and self._key_in_range(m):
                    flags.discard(MAYBE_NULL)
                return Reg(MAP_VALUE, map=None, flags=frozenset(flags), id=vid)
            if m is not None and m.map_type in MAP_IN_MAP_TYPES:
                # an outer map's value is the inner map, known by its template where declared
                return Reg(MAP_PTR, map=m.inner, flags=frozenset(flags), id=vid)
            if m is not None and m.map_type in SOCK_MAP_TYPES:
                # is_acquire_function(): a sockmap/sockhash lookup takes a socket reference
                rid = it.acquire(st, "socket", at, sem.name, "bpf_sock")
                return Reg(SOCKET, flags=frozenset(flags), id=vid, ref_obj_id=rid, type_name="bpf_sock")
            if m is not None and m.map_type == XSKMAP_TYPE:
                return ANY.evolve(type_name="an XDP socket")
            if m is not None and m.map_type in ARRAY_MAP_TYPES and sem.name == "bpf_map_lookup_elem" and self._key_in_range(m):
                # can_elide_value_nullness(): an array element at a constant in-range key exists
                flags.discard(MAYBE_NULL)
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
            # only the lookups acquire (is_acquire_function); bpf_get_listener_sock's socket is not the program's
            rid = it.acquire(st, "socket", at, sem.name, "bpf_sock") if sem.has(K.ACQUIRE) else 0
            return Reg(SOCKET, flags=frozenset(flags), id=vid, ref_obj_id=rid, type_name=sem.ret_type or "bpf_sock")
        if ret == K.RET_KPTR_OLD:
            k = kptr_old
            if k is None:
                return ANY.evolve(type_name=f"what {K.spelling(sem.name)}() returns")
            kind = ("percpu_local" if k.percpu else "local") if k.local else k.type_name
            rid = it.acquire(st, kind, at, sem.name, k.type_name)
            extra = ({ALLOC, PERCPU} if k.percpu else {ALLOC}) if k.local else {TRUSTED}
            return Reg(BTF_ID, type_name=k.type_name, btf_id=k.btf_id, flags=frozenset(flags | extra), id=vid,
                       ref_obj_id=rid)
        return UNKNOWN

    def _key_in_range(self, m) -> bool:
        key = self.regs[2]
        if key.type != STACK or key.var_off or m.key_size not in (1, 2, 4, 8):
            return False
        value = self.it._stack_read(self.st, key, key.off, m.key_size)
        if not value.is_const:
            return False
        # get_constant_map_key(): the constant decided that the value is there (Dataflow.key_lookups)
        self.it._decided(self.insn.idx, value)
        return 0 <= value.const < m.max_entries

    def finish(self, r0: Reg) -> None:
        self.it._clobber(self.st, r0)
