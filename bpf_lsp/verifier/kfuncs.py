"""Ownership semantics of kfuncs and helpers, as data.

One record per function. Flags mirror the kernel's ``BTF_ID_FLAGS`` tables
(kernel/bpf/helpers.c ``generic_btf_ids`` / ``common_btf_ids``, kernel/bpf/cpumask.c,
net/core/filter.c, net/sched/bpf_qdisc.c); argument kinds mirror what ``get_kfunc_ptr_arg_type``
derives from each argument's BTF type and name suffix (``__alloc``, ``__ign``, ``__k``,
``__nullable``). Helper records mirror the ``bpf_func_proto``s (``ARG_PTR_TO_*``, ``RET_*``,
``OBJ_RELEASE``). The interpreter reads only this table: no function names in its code paths.

Bump ``SEMANTICS_VERSION`` whenever a record changes: cached verification results key on it.
"""
from __future__ import annotations


import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..frontend.objfile import essential_name

SEMANTICS_VERSION = 26

# kfunc flags (include/linux/btf.h)
ACQUIRE = "acquire"
RELEASE = "release"
RET_NULL = "ret_null"
TRUSTED_ARGS = "trusted_args"
RCU = "rcu"
RCU_PROTECTED = "rcu_protected"
DESTRUCTIVE = "destructive"
SLEEPABLE = "sleepable"
ITER_NEW = "iter_new"            # KF_ITER_NEW: initialises the iterator its first argument points to
ITER_NEXT = "iter_next"
ITER_DESTROY = "iter_destroy"

# Argument kinds
SCALAR = "scalar"                # any scalar
CONST = "const"                  # a known constant (``__k``)
LOCAL_TYPE_ID = "local_type_id"  # BTF id of a program-local struct (bpf_obj_new)
IGNORED = "ignored"              # ``meta__ign``: filled in by the verifier
ALLOC_OBJ = "alloc_obj"          # pointer to a program-local object (``p__alloc``)
REFCOUNTED_OBJ = "refcounted_obj"  # refcount_acquire: owning or non-owning local object
KERNEL_OBJ = "kernel_obj"        # PTR_TO_BTF_ID of a kernel type (type in ``btf_type``)
LIST_HEAD = "list_head"
LIST_NODE = "list_node"          # an owning node: ownership moves into the collection
RB_ROOT = "rb_root"
RB_NODE_ADD = "rb_node_add"      # an owning node for bpf_rbtree_add
RB_NODE_REMOVE = "rb_node_remove"  # non-owning, or an owning refcounted node
CALLBACK = "callback"
MAP = "map"                      # const pointer to a map
MAP_KEY = "map_key"              # pointer to stack/map memory holding a key
MAP_VALUE_MEM = "map_value_mem"  # pointer to memory of value size
MEM = "mem"                      # pointer to readable memory (size in the next arg)
MEM_SIZE = "mem_size"
SPIN_LOCK = "spin_lock"          # pointer to a struct bpf_spin_lock in a map value / object
KPTR_DEST = "kptr_dest"          # map value field declared __kptr
KPTR_NEW = "kptr_new"            # referenced pointer or NULL moved into the field
RINGBUF_MEM = "ringbuf_mem"      # memory from bpf_ringbuf_reserve (released)
SOCKET = "socket"                # a socket reference (released)
CTX = "ctx"
ANY = "any"                      # not checked by our model

# Return kinds
RET_VOID = "void"
RET_SCALAR = "scalar"
RET_LOCAL_OBJ = "local_obj"      # the type named by the LOCAL_TYPE_ID argument
RET_SAME_OBJ = "same_obj"        # the local object type of the first pointer argument
RET_GRAPH_NODE = "graph_node"    # the value type of the head/root argument, at the node offset
RET_KERNEL_OBJ = "kernel_obj"    # PTR_TO_BTF_ID of ``ret_type``
RET_MAP_VALUE = "map_value"
RET_RINGBUF_MEM = "ringbuf_mem"
RET_SOCKET = "socket"
RET_KPTR_OLD = "kptr_old"        # the previous content of a kptr field
RET_CAST_TYPE = "cast_type"      # bpf_rdonly_cast: untrusted pointer of the type named by ``__k``
RET_KERN_CTX = "kern_ctx"        # bpf_cast_to_kern_ctx: the kernel object behind the context
RET_PROTO = "proto"              # whatever the function's BTF prototype returns (generated records)
RET_ANYTHING = "anything"        # a function we know nothing about: the result is unknown
# helper return kinds from the kernel's bpf_func_proto (RET_*), for generated helper records
RET_BTF_PTR = "btf_ptr"          # PTR_TO_BTF_ID of ``ret_type`` (trusted when TRUSTED is in flags)
RET_MEM = "mem"                  # memory of unknown size (per-CPU pointers, dynptr slices)
RET_CAST_SOCKET = "cast_socket"  # bpf_sk_fullsock/bpf_tcp_sock: a view of the argument's socket

# Special behaviour, beyond flags: what the call does to the abstract state.
EFFECT_OBJ_NEW = "obj_new"
EFFECT_GRAPH_INSERT = "graph_insert"    # owning node becomes non-owning; ref released
EFFECT_GRAPH_REMOVE = "graph_remove"
EFFECT_GRAPH_PEEK = "graph_peek"        # returns a non-owning reference
EFFECT_LOCK = "spin_lock"
EFFECT_UNLOCK = "spin_unlock"
EFFECT_RCU_LOCK = "rcu_lock"
EFFECT_RCU_UNLOCK = "rcu_unlock"
EFFECT_KPTR_XCHG = "kptr_xchg"
EFFECT_CALLBACK_LOOP = "callback_loop"  # bpf_loop: callback(index, ctx)
EFFECT_CALLBACK_DRAIN = "callback_drain"  # bpf_user_ringbuf_drain: callback(const dynptr, ctx)
EFFECT_TAIL_CALL = "tail_call"
EFFECT_PREEMPT_DISABLE = "preempt_disable"
EFFECT_PREEMPT_ENABLE = "preempt_enable"
EFFECT_THROW = "throw"                  # bpf_throw: an exception exit

# Program types a kfunc set is registered for (register_btf_kfunc_id_set calls).
# kernel/bpf/helpers.c kfunc_init(): generic_kfunc_set is registered for these hooks only
# (LSM programs share the tracing hook; the cgroup hook covers the BPF_PROG_TYPE_CGROUP_* types).
GENERIC_PROGS = frozenset({"tracing", "lsm", "sched_cls", "xdp", "struct_ops", "syscall", "cgroup_skb",
                           "cgroup", "cgroup_sock", "cgroup_sock_addr", "cgroup_sockopt", "cgroup_sysctl",
                           "cgroup_device"})
TASK_PROGS = GENERIC_PROGS
CPUMASK_PROGS = frozenset({"tracing", "lsm", "struct_ops", "syscall"})   # kernel/bpf/cpumask.c
ANY_PROGS = frozenset()          # empty: not restricted by our model


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str
    btf_type: str = ""           # struct name for KERNEL_OBJ args
    nullable: bool = False
    percpu: bool = False         # ALLOC_OBJ: the object must come from bpf_percpu_obj_new


@dataclass(frozen=True)
class Semantics:
    name: str
    args: tuple[Arg, ...]
    ret: str = RET_VOID
    flags: frozenset[str] = frozenset()
    effect: str = ""
    ret_type: str = ""           # struct name for RET_KERNEL_OBJ
    releases: str = ""           # what a RELEASE function discharges, for quick fixes ("task_struct")
    ref_kind: str = ""           # the reference kind an ACQUIRE function creates
    graph_api: bool = False      # allowed inside a bpf_spin_lock critical section
    prog_types: frozenset[str] = ANY_PROGS
    summary: str = ""            # the ownership contract, shown on hover
    is_helper: bool = False
    helper_id: int = 0
    ret_nonnull_if_owned: bool = False   # never NULL when its argument is an owning reference
    generated: bool = False      # derived from the generated kernel table, not written by hand:
                                 # arguments are not checked, only flags (acquire/release/iterators)

    @property
    def iter_op(self) -> str:
        return next((f for f in (ITER_NEW, ITER_NEXT, ITER_DESTROY) if f in self.flags), "")

    def has(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def release_arg(self) -> int | None:
        """Index of the argument a RELEASE function releases."""
        if RELEASE not in self.flags:
            return None
        for i, a in enumerate(self.args):
            if a.kind not in (SCALAR, CONST, IGNORED, MEM_SIZE):
                return i
        return 0


def _f(*flags: str) -> frozenset[str]:
    return frozenset(flags)


_KFUNCS: list[Semantics] = [
    # --- program-local objects (kernel/bpf/helpers.c) ---
    Semantics("bpf_obj_new_impl", (Arg("local_type_id__k", LOCAL_TYPE_ID), Arg("meta__ign", IGNORED)),
              RET_LOCAL_OBJ, _f(ACQUIRE, RET_NULL), EFFECT_OBJ_NEW, ref_kind="local",
              prog_types=GENERIC_PROGS,
              summary="allocates an object of the given type; returns an owning reference or NULL that must be "
                      "dropped, added to a collection or stashed with `bpf_kptr_xchg` on every path"),
    Semantics("bpf_percpu_obj_new_impl", (Arg("local_type_id__k", LOCAL_TYPE_ID), Arg("meta__ign", IGNORED)),
              RET_LOCAL_OBJ, _f(ACQUIRE, RET_NULL), EFFECT_OBJ_NEW, ref_kind="percpu_local",
              prog_types=GENERIC_PROGS,
              summary="allocates a per-CPU object; returns an owning reference or NULL, released with "
                      "`bpf_percpu_obj_drop`"),
    Semantics("bpf_obj_drop_impl", (Arg("p__alloc", ALLOC_OBJ), Arg("meta__ign", IGNORED)),
              RET_VOID, _f(RELEASE), releases="local", prog_types=GENERIC_PROGS,
              summary="frees an object: takes an owning reference; every copy of it becomes invalid"),
    Semantics("bpf_percpu_obj_drop_impl", (Arg("p__alloc", ALLOC_OBJ, percpu=True), Arg("meta__ign", IGNORED)),
              RET_VOID, _f(RELEASE), releases="percpu_local", prog_types=GENERIC_PROGS,
              summary="frees a per-CPU object: takes an owning reference"),
    Semantics("bpf_refcount_acquire_impl", (Arg("p__refcounted_kptr", REFCOUNTED_OBJ), Arg("meta__ign", IGNORED)),
              RET_SAME_OBJ, _f(ACQUIRE, RET_NULL, RCU), ref_kind="local", graph_api=True,
              prog_types=GENERIC_PROGS, ret_nonnull_if_owned=True,
              summary="takes a new owning reference (or NULL) to a refcounted object; accepts an owning or "
                      "non-owning reference, so it keeps an object alive past `bpf_spin_unlock`"),
    # --- linked lists ---
    Semantics("bpf_list_push_front_impl", (Arg("head", LIST_HEAD), Arg("node", LIST_NODE),
                                           Arg("meta__ign", IGNORED), Arg("off", CONST)),
              RET_SCALAR, _f(), EFFECT_GRAPH_INSERT, graph_api=True, prog_types=GENERIC_PROGS,
              summary="takes ownership of `node`; `node` becomes non-owning until `bpf_spin_unlock`"),
    Semantics("bpf_list_push_back_impl", (Arg("head", LIST_HEAD), Arg("node", LIST_NODE),
                                          Arg("meta__ign", IGNORED), Arg("off", CONST)),
              RET_SCALAR, _f(), EFFECT_GRAPH_INSERT, graph_api=True, prog_types=GENERIC_PROGS,
              summary="takes ownership of `node`; `node` becomes non-owning until `bpf_spin_unlock`"),
    Semantics("bpf_list_pop_front", (Arg("head", LIST_HEAD),), RET_GRAPH_NODE, _f(ACQUIRE, RET_NULL),
              EFFECT_GRAPH_REMOVE, ref_kind="local", graph_api=True, prog_types=GENERIC_PROGS,
              summary="removes the first node; returns an owning reference (or NULL) to drop or re-add"),
    Semantics("bpf_list_pop_back", (Arg("head", LIST_HEAD),), RET_GRAPH_NODE, _f(ACQUIRE, RET_NULL),
              EFFECT_GRAPH_REMOVE, ref_kind="local", graph_api=True, prog_types=GENERIC_PROGS,
              summary="removes the last node; returns an owning reference (or NULL) to drop or re-add"),
    Semantics("bpf_list_front", (Arg("head", LIST_HEAD),), RET_GRAPH_NODE, _f(RET_NULL),
              EFFECT_GRAPH_PEEK, graph_api=True, prog_types=GENERIC_PROGS,
              summary="peeks at the first node: a non-owning reference (or NULL), valid until `bpf_spin_unlock`"),
    Semantics("bpf_list_back", (Arg("head", LIST_HEAD),), RET_GRAPH_NODE, _f(RET_NULL),
              EFFECT_GRAPH_PEEK, graph_api=True, prog_types=GENERIC_PROGS,
              summary="peeks at the last node: a non-owning reference (or NULL), valid until `bpf_spin_unlock`"),
    # --- red-black trees ---
    Semantics("bpf_rbtree_add_impl", (Arg("root", RB_ROOT), Arg("node", RB_NODE_ADD), Arg("less", CALLBACK),
                                      Arg("meta__ign", IGNORED), Arg("off", CONST)),
              RET_SCALAR, _f(), EFFECT_GRAPH_INSERT, graph_api=True, prog_types=GENERIC_PROGS,
              summary="takes ownership of `node`; `node` becomes non-owning until `bpf_spin_unlock`; "
                      "`less` is verified as a callback"),
    Semantics("bpf_rbtree_remove", (Arg("root", RB_ROOT), Arg("node", RB_NODE_REMOVE)), RET_GRAPH_NODE,
              _f(ACQUIRE, RET_NULL), EFFECT_GRAPH_REMOVE, ref_kind="local", graph_api=True,
              prog_types=GENERIC_PROGS,
              summary="removes `node` (a non-owning reference); returns an owning reference (or NULL)"),
    Semantics("bpf_rbtree_first", (Arg("root", RB_ROOT),), RET_GRAPH_NODE, _f(RET_NULL), EFFECT_GRAPH_PEEK,
              graph_api=True, prog_types=GENERIC_PROGS,
              summary="peeks at the leftmost node: a non-owning reference (or NULL), valid until `bpf_spin_unlock`"),
    Semantics("bpf_rbtree_root", (Arg("root", RB_ROOT),), RET_GRAPH_NODE, _f(RET_NULL), EFFECT_GRAPH_PEEK,
              graph_api=True, prog_types=GENERIC_PROGS,
              summary="peeks at the root node: a non-owning reference (or NULL), valid until `bpf_spin_unlock`"),
    Semantics("bpf_rbtree_left", (Arg("root", RB_ROOT), Arg("node", RB_NODE_REMOVE)), RET_GRAPH_NODE,
              _f(RET_NULL), EFFECT_GRAPH_PEEK, graph_api=True, prog_types=GENERIC_PROGS,
              summary="peeks at the left child: a non-owning reference (or NULL)"),
    Semantics("bpf_rbtree_right", (Arg("root", RB_ROOT), Arg("node", RB_NODE_REMOVE)), RET_GRAPH_NODE,
              _f(RET_NULL), EFFECT_GRAPH_PEEK, graph_api=True, prog_types=GENERIC_PROGS,
              summary="peeks at the right child: a non-owning reference (or NULL)"),
    # --- tasks and cgroups (kernel/bpf/helpers.c) ---
    Semantics("bpf_task_acquire", (Arg("p", KERNEL_OBJ, "task_struct"),), RET_KERNEL_OBJ,
              _f(ACQUIRE, RCU, RET_NULL), ret_type="task_struct", ref_kind="task_struct", prog_types=TASK_PROGS,
              summary="takes a reference on a task (or NULL); release it with `bpf_task_release`"),
    Semantics("bpf_task_release", (Arg("p", KERNEL_OBJ, "task_struct"),), RET_VOID, _f(RELEASE),
              releases="task_struct", prog_types=TASK_PROGS,
              summary="drops a task reference taken with `bpf_task_acquire`/`bpf_task_from_pid`"),
    Semantics("bpf_task_from_pid", (Arg("pid", SCALAR),), RET_KERNEL_OBJ, _f(ACQUIRE, RET_NULL),
              ret_type="task_struct", ref_kind="task_struct", prog_types=TASK_PROGS,
              summary="looks a task up by pid: a referenced task (or NULL) to release with `bpf_task_release`"),
    Semantics("bpf_task_from_vpid", (Arg("vpid", SCALAR),), RET_KERNEL_OBJ, _f(ACQUIRE, RET_NULL),
              ret_type="task_struct", ref_kind="task_struct", prog_types=TASK_PROGS,
              summary="looks a task up by pid in the caller's namespace: release with `bpf_task_release`"),
    Semantics("bpf_task_get_cgroup1", (Arg("task", KERNEL_OBJ, "task_struct"), Arg("hierarchy_id", SCALAR)),
              RET_KERNEL_OBJ, _f(ACQUIRE, RCU, RET_NULL), ret_type="cgroup", ref_kind="cgroup",
              prog_types=TASK_PROGS, summary="a referenced cgroup (or NULL): release with `bpf_cgroup_release`"),
    Semantics("bpf_cgroup_acquire", (Arg("cgrp", KERNEL_OBJ, "cgroup"),), RET_KERNEL_OBJ,
              _f(ACQUIRE, RCU, RET_NULL), ret_type="cgroup", ref_kind="cgroup", prog_types=TASK_PROGS,
              summary="takes a reference on a cgroup (or NULL); release it with `bpf_cgroup_release`"),
    Semantics("bpf_cgroup_release", (Arg("cgrp", KERNEL_OBJ, "cgroup"),), RET_VOID, _f(RELEASE),
              releases="cgroup", prog_types=TASK_PROGS, summary="drops a cgroup reference"),
    Semantics("bpf_cgroup_from_id", (Arg("cgid", SCALAR),), RET_KERNEL_OBJ, _f(ACQUIRE, RET_NULL),
              ret_type="cgroup", ref_kind="cgroup", prog_types=TASK_PROGS,
              summary="looks a cgroup up by id: a referenced cgroup (or NULL) to release with `bpf_cgroup_release`"),
    Semantics("bpf_cgroup_ancestor", (Arg("cgrp", KERNEL_OBJ, "cgroup"), Arg("level", SCALAR)), RET_KERNEL_OBJ,
              _f(ACQUIRE, RCU, RET_NULL), ret_type="cgroup", ref_kind="cgroup", prog_types=TASK_PROGS,
              summary="a referenced ancestor cgroup (or NULL): release with `bpf_cgroup_release`"),
    # --- cpumasks (kernel/bpf/cpumask.c) ---
    Semantics("bpf_cpumask_create", (), RET_KERNEL_OBJ, _f(ACQUIRE, RET_NULL), ret_type="bpf_cpumask",
              ref_kind="bpf_cpumask", prog_types=CPUMASK_PROGS,
              summary="allocates a cpumask: a reference (or NULL) to release with `bpf_cpumask_release`"),
    Semantics("bpf_cpumask_acquire", (Arg("cpumask", KERNEL_OBJ, "bpf_cpumask"),), RET_KERNEL_OBJ,
              _f(ACQUIRE, TRUSTED_ARGS), ret_type="bpf_cpumask", ref_kind="bpf_cpumask", prog_types=CPUMASK_PROGS,
              summary="takes another reference on a cpumask; release it with `bpf_cpumask_release`"),
    Semantics("bpf_cpumask_release", (Arg("cpumask", KERNEL_OBJ, "bpf_cpumask"),), RET_VOID, _f(RELEASE),
              releases="bpf_cpumask", prog_types=CPUMASK_PROGS, summary="drops a cpumask reference"),
]

# cpumask operations that take RCU-protected or trusted cpumasks and return scalars.
for _name, _args in (
    ("bpf_cpumask_set_cpu", (Arg("cpu", SCALAR), Arg("cpumask", KERNEL_OBJ, "bpf_cpumask"))),
    ("bpf_cpumask_clear_cpu", (Arg("cpu", SCALAR), Arg("cpumask", KERNEL_OBJ, "bpf_cpumask"))),
    ("bpf_cpumask_test_cpu", (Arg("cpu", SCALAR), Arg("cpumask", KERNEL_OBJ, "cpumask"))),
    ("bpf_cpumask_setall", (Arg("cpumask", KERNEL_OBJ, "bpf_cpumask"),)),
    ("bpf_cpumask_clear", (Arg("cpumask", KERNEL_OBJ, "bpf_cpumask"),)),
    ("bpf_cpumask_first", (Arg("cpumask", KERNEL_OBJ, "cpumask"),)),
    ("bpf_cpumask_empty", (Arg("cpumask", KERNEL_OBJ, "cpumask"),)),
    ("bpf_cpumask_weight", (Arg("cpumask", KERNEL_OBJ, "cpumask"),)),
):
    _KFUNCS.append(Semantics(_name, _args, RET_SCALAR, _f(RCU), prog_types=CPUMASK_PROGS,
                             summary="works on a trusted or RCU-protected cpumask; takes no ownership"))

_KFUNCS += [
    # --- casts (kernel/bpf/helpers.c common set; special-cased in check_kfunc_call) ---
    Semantics("bpf_rdonly_cast", (Arg("obj__ign", IGNORED), Arg("btf_id__k", LOCAL_TYPE_ID)), RET_CAST_TYPE,
              summary="reinterprets a pointer as the given type: an untrusted, read-only pointer (what "
                      "`bpf_core_cast` expands to); takes no ownership"),
    Semantics("bpf_cast_to_kern_ctx", (Arg("obj", CTX),), RET_KERN_CTX,
              summary="the kernel object behind the program's context (e.g. `struct sk_buff`), trusted"),
    # --- RCU and preemption ---
    Semantics("bpf_rcu_read_lock", (), RET_VOID, _f(), EFFECT_RCU_LOCK,
              summary="opens an RCU read-side critical section; close it with `bpf_rcu_read_unlock` on every path"),
    Semantics("bpf_rcu_read_unlock", (), RET_VOID, _f(), EFFECT_RCU_UNLOCK,
              summary="closes the RCU read-side critical section; RCU-protected pointers become untrusted"),
    Semantics("bpf_preempt_disable", (), RET_VOID, _f(), EFFECT_PREEMPT_DISABLE,
              summary="disables preemption until `bpf_preempt_enable`"),
    Semantics("bpf_preempt_enable", (), RET_VOID, _f(), EFFECT_PREEMPT_ENABLE,
              summary="re-enables preemption"),
    Semantics("bpf_throw", (Arg("cookie", SCALAR),), RET_VOID, _f(), EFFECT_THROW, prog_types=GENERIC_PROGS,
              summary="throws a BPF exception: the program ends here, so no reference may be held"),
    # --- BPF qdisc (net/sched/bpf_qdisc.c) ---
    Semantics("bpf_qdisc_skb_drop", (Arg("skb", KERNEL_OBJ, "sk_buff"), Arg("to_free_list", ANY)), RET_VOID,
              _f(RELEASE), releases="sk_buff", prog_types=frozenset({"struct_ops"}),
              summary="drops the skb: takes the reference `.enqueue` received"),
    Semantics("bpf_kfree_skb", (Arg("skb", KERNEL_OBJ, "sk_buff"),), RET_VOID, _f(RELEASE),
              releases="sk_buff", prog_types=frozenset({"struct_ops"}),
              summary="frees an skb reference (e.g. one taken back from a kptr)"),
    Semantics("bpf_qdisc_bstats_update", (Arg("sch", KERNEL_OBJ, "Qdisc"), Arg("skb", KERNEL_OBJ, "sk_buff")),
              RET_VOID, _f(TRUSTED_ARGS), prog_types=frozenset({"struct_ops"}),
              summary="updates byte/packet counters; takes no ownership"),
    Semantics("bpf_qdisc_watchdog_schedule", (Arg("sch", KERNEL_OBJ, "Qdisc"), Arg("expire", SCALAR),
                                              Arg("delta_ns", SCALAR)),
              RET_VOID, _f(TRUSTED_ARGS), prog_types=frozenset({"struct_ops"}),
              summary="arms the qdisc watchdog; takes no ownership"),
    Semantics("bpf_skb_get_hash", (Arg("skb", KERNEL_OBJ, "sk_buff"),), RET_SCALAR, _f(TRUSTED_ARGS),
              prog_types=frozenset({"struct_ops"}), summary="the skb's flow hash; takes no ownership"),
]

_HELPERS: list[Semantics] = [
    Semantics("bpf_map_lookup_elem", (Arg("map", MAP), Arg("key", MAP_KEY)), RET_MAP_VALUE, _f(RET_NULL),
              is_helper=True, helper_id=1, summary="returns a pointer into the map value, or NULL"),
    Semantics("bpf_map_update_elem", (Arg("map", MAP), Arg("key", MAP_KEY), Arg("value", MAP_VALUE_MEM),
                                      Arg("flags", SCALAR)), RET_SCALAR, is_helper=True, helper_id=2,
              summary="copies a value into the map"),
    Semantics("bpf_map_delete_elem", (Arg("map", MAP), Arg("key", MAP_KEY)), RET_SCALAR, is_helper=True,
              helper_id=3, summary="deletes an element; kptrs inside it are released by the map"),
    Semantics("bpf_tail_call", (Arg("ctx", CTX), Arg("map", MAP), Arg("index", SCALAR)), RET_SCALAR,
              effect=EFFECT_TAIL_CALL, is_helper=True, helper_id=12,
              summary="jumps to another program; no reference or lock may be held"),
    Semantics("bpf_spin_lock", (Arg("lock", SPIN_LOCK),), RET_VOID, effect=EFFECT_LOCK, is_helper=True,
              helper_id=93, summary="takes the lock: only graph kfuncs, `bpf_refcount_acquire` and "
                                    "`bpf_spin_unlock` may be called until it is released"),
    Semantics("bpf_spin_unlock", (Arg("lock", SPIN_LOCK),), RET_VOID, effect=EFFECT_UNLOCK, is_helper=True,
              helper_id=94, summary="releases the lock: every non-owning reference taken under it dies"),
    Semantics("bpf_ringbuf_reserve", (Arg("ringbuf", MAP), Arg("size", CONST), Arg("flags", SCALAR)),
              RET_RINGBUF_MEM, _f(ACQUIRE, RET_NULL), ref_kind="ringbuf", is_helper=True, helper_id=131,
              summary="reserves ring-buffer space (or NULL): submit or discard it on every path"),
    Semantics("bpf_ringbuf_submit", (Arg("data", RINGBUF_MEM), Arg("flags", SCALAR)), RET_VOID, _f(RELEASE),
              releases="ringbuf", is_helper=True, helper_id=132, summary="publishes the reserved record"),
    Semantics("bpf_ringbuf_discard", (Arg("data", RINGBUF_MEM), Arg("flags", SCALAR)), RET_VOID, _f(RELEASE),
              releases="ringbuf", is_helper=True, helper_id=133, summary="drops the reserved record"),
    Semantics("bpf_sk_lookup_tcp", (Arg("ctx", CTX), Arg("tuple", MEM), Arg("tuple_size", MEM_SIZE),
                                    Arg("netns", SCALAR), Arg("flags", SCALAR)),
              RET_SOCKET, _f(ACQUIRE, RET_NULL), ref_kind="socket", is_helper=True, helper_id=84,
              summary="a referenced socket (or NULL): release it with `bpf_sk_release`"),
    Semantics("bpf_sk_lookup_udp", (Arg("ctx", CTX), Arg("tuple", MEM), Arg("tuple_size", MEM_SIZE),
                                    Arg("netns", SCALAR), Arg("flags", SCALAR)),
              RET_SOCKET, _f(ACQUIRE, RET_NULL), ref_kind="socket", is_helper=True, helper_id=85,
              summary="a referenced socket (or NULL): release it with `bpf_sk_release`"),
    Semantics("bpf_skc_lookup_tcp", (Arg("ctx", CTX), Arg("tuple", MEM), Arg("tuple_size", MEM_SIZE),
                                     Arg("netns", SCALAR), Arg("flags", SCALAR)),
              RET_SOCKET, _f(ACQUIRE, RET_NULL), ref_kind="socket", is_helper=True, helper_id=99,
              summary="a referenced socket (or NULL): release it with `bpf_sk_release`"),
    Semantics("bpf_sk_release", (Arg("sock", SOCKET),), RET_SCALAR, _f(RELEASE), releases="socket",
              is_helper=True, helper_id=86, summary="drops a socket reference"),
    Semantics("bpf_kptr_xchg", (Arg("dst", KPTR_DEST), Arg("ptr", KPTR_NEW)), RET_KPTR_OLD, _f(),
              EFFECT_KPTR_XCHG, is_helper=True, helper_id=194,
              summary="moves `ptr` (owned, or NULL) into the map's kptr field and returns the previous "
                      "content, which the program now owns (or NULL)"),
    Semantics("bpf_loop", (Arg("nr_loops", SCALAR), Arg("callback_fn", CALLBACK), Arg("callback_ctx", ANY),
                           Arg("flags", SCALAR)), RET_SCALAR, effect=EFFECT_CALLBACK_LOOP, is_helper=True,
              helper_id=181, summary="calls `callback_fn(index, ctx)` up to `nr_loops` times"),
    Semantics("bpf_user_ringbuf_drain", (Arg("map", ANY), Arg("callback_fn", CALLBACK), Arg("ctx", ANY),
                                         Arg("flags", SCALAR)), RET_SCALAR, effect=EFFECT_CALLBACK_DRAIN,
              is_helper=True, helper_id=209,
              summary="calls `callback_fn(dynptr, ctx)` for each sample user space wrote; the dynptr is const: "
                      "the callback may read it, not release or re-create it"),
]

KFUNCS: dict[str, Semantics] = {s.name: s for s in _KFUNCS}
HELPERS: dict[int, Semantics] = {s.helper_id: s for s in _HELPERS}
HELPERS_BY_NAME: dict[str, Semantics] = {s.name: s for s in _HELPERS}

# Which function releases what an acquire produced (for quick fixes): ref_kind -> releasing call.
RELEASE_FOR_KIND: dict[str, str] = {}
for _s in _KFUNCS + _HELPERS:
    if _s.releases and _s.releases not in RELEASE_FOR_KIND:
        RELEASE_FOR_KIND[_s.releases] = _s.name
# The user-facing spelling of *_impl kfuncs (bpf_experimental.h wraps them in macros).
MACRO_SPELLING = {"bpf_obj_new_impl": "bpf_obj_new", "bpf_percpu_obj_new_impl": "bpf_percpu_obj_new",
                  "bpf_obj_drop_impl": "bpf_obj_drop", "bpf_percpu_obj_drop_impl": "bpf_percpu_obj_drop",
                  "bpf_refcount_acquire_impl": "bpf_refcount_acquire",
                  "bpf_list_push_front_impl": "bpf_list_push_front",
                  "bpf_list_push_back_impl": "bpf_list_push_back", "bpf_rbtree_add_impl": "bpf_rbtree_add"}


# ---- the generated kernel table (bpf_lsp/data/kernel_tables.json, devtools/gen_kernel_tables.py)

_KF_FLAGS = {"KF_ACQUIRE": ACQUIRE, "KF_RELEASE": RELEASE, "KF_RET_NULL": RET_NULL,
             "KF_TRUSTED_ARGS": TRUSTED_ARGS, "KF_RCU": RCU, "KF_RCU_PROTECTED": RCU_PROTECTED,
             "KF_SLEEPABLE": SLEEPABLE, "KF_DESTRUCTIVE": DESTRUCTIVE, "KF_ITER_NEW": ITER_NEW,
             "KF_ITER_NEXT": ITER_NEXT, "KF_ITER_DESTROY": ITER_DESTROY}
# kernel RET_* kinds -> our return kinds; anything else is unknown to the model
_HELPER_RETS = {"RET_INTEGER": RET_SCALAR, "RET_VOID": RET_VOID, "RET_PTR_TO_MAP_VALUE": RET_MAP_VALUE,
                "RET_PTR_TO_BTF_ID": RET_BTF_PTR, "RET_PTR_TO_BTF_ID_TRUSTED": RET_BTF_PTR,
                "RET_PTR_TO_MEM_OR_BTF_ID": RET_MEM, "RET_PTR_TO_DYNPTR_MEM": RET_MEM,
                "RET_PTR_TO_SOCKET": RET_CAST_SOCKET, "RET_PTR_TO_TCP_SOCK": RET_CAST_SOCKET,
                "RET_PTR_TO_SOCK_COMMON": RET_CAST_SOCKET}
# check_map_func_compatibility(), first half: map types usable only with these helpers (by name)
_RINGBUF_FUNCS = frozenset({"bpf_ringbuf_output", "bpf_ringbuf_reserve", "bpf_ringbuf_query",
                            "bpf_ringbuf_reserve_dynptr", "bpf_ringbuf_submit_dynptr", "bpf_ringbuf_discard_dynptr"})
_PERF_FUNCS = frozenset({"bpf_perf_event_read", "bpf_perf_event_output", "bpf_skb_output",
                         "bpf_perf_event_read_value", "bpf_xdp_output"})
MAP_TYPE_FUNCS: dict[int, frozenset[str]] = {
    3: frozenset({"bpf_tail_call"}), 4: _PERF_FUNCS, 27: _RINGBUF_FUNCS,
    31: frozenset({"bpf_user_ringbuf_drain"}), 7: frozenset({"bpf_get_stackid"}),
    8: frozenset({"bpf_skb_under_cgroup", "bpf_current_task_under_cgroup"}),
    19: frozenset({"bpf_get_local_storage"}), 21: frozenset({"bpf_get_local_storage"}),
    14: frozenset({"bpf_redirect_map", "bpf_map_lookup_elem"}), 25: frozenset({"bpf_redirect_map", "bpf_map_lookup_elem"}),
    16: frozenset({"bpf_redirect_map"}), 17: frozenset({"bpf_redirect_map", "bpf_map_lookup_elem"}),
    12: frozenset({"bpf_map_lookup_elem"}), 13: frozenset({"bpf_map_lookup_elem"}),
    20: frozenset({"bpf_sk_select_reuseport"}),
    22: frozenset({"bpf_map_peek_elem", "bpf_map_pop_elem", "bpf_map_push_elem"}),
    23: frozenset({"bpf_map_peek_elem", "bpf_map_pop_elem", "bpf_map_push_elem"}),
    24: frozenset({"bpf_sk_storage_get", "bpf_sk_storage_delete", "bpf_kptr_xchg"}),
    28: frozenset({"bpf_inode_storage_get", "bpf_inode_storage_delete", "bpf_kptr_xchg"}),
    29: frozenset({"bpf_task_storage_get", "bpf_task_storage_delete", "bpf_kptr_xchg"}),
    32: frozenset({"bpf_cgrp_storage_get", "bpf_cgrp_storage_delete", "bpf_kptr_xchg"}),
    30: frozenset({"bpf_map_peek_elem", "bpf_map_push_elem"}),
}


# bpf_helper_changes_pkt_data() (net/core/filter.c): after these, every packet pointer and every
# slice of an skb/xdp dynptr is invalid (clear_all_pkt_pointers)
PACKET_CHANGING_HELPERS = frozenset(f"bpf_{n}" for n in (
    "clone_redirect l3_csum_replace l4_csum_replace lwt_push_encap lwt_seg6_action lwt_seg6_adjust_srh "
    "lwt_seg6_store_bytes msg_pop_data msg_pull_data msg_push_data skb_adjust_room skb_change_head "
    "skb_change_proto skb_change_tail skb_pull_data skb_store_bytes skb_vlan_pop skb_vlan_push "
    "store_hdr_opt xdp_adjust_head xdp_adjust_meta xdp_adjust_tail tail_call").split())


def helper_map_args(helper_id: int) -> tuple[int, ...]:
    """Argument positions where the helper takes a map (ARG_CONST_MAP_PTR)."""
    entry = kernel_table()["helpers"].get(str(helper_id))
    return tuple(i for i, kinds in enumerate((entry or {}).get("args", ())) if "ARG_CONST_MAP_PTR" in kinds)


# the UAPI struct a socket return is read as (its fields have per-struct access rules)
SOCKET_VIEWS = {"RET_PTR_TO_SOCKET": "bpf_sock", "RET_PTR_TO_TCP_SOCK": "bpf_tcp_sock",
                "RET_PTR_TO_SOCK_COMMON": "bpf_sock_common"}
# is_ptr_cast_function(): the result carries the argument's reference
PTR_CASTS = {"bpf_sk_fullsock", "bpf_tcp_sock", "bpf_skc_to_tcp_sock", "bpf_skc_to_tcp6_sock",
              "bpf_skc_to_udp6_sock", "bpf_skc_to_udp_sock", "bpf_skc_to_tcp_timewait_sock",
              "bpf_skc_to_tcp_request_sock", "bpf_skc_to_mptcp_sock", "bpf_skc_to_unix_sock"}


@lru_cache(maxsize=1)
def kernel_table() -> dict:
    """The generated table: helper prototypes, kfunc flags and hooks (empty when missing)."""
    try:
        text = resources.files("bpf_lsp").joinpath("data/kernel_tables.json").read_text()
        return json.loads(text)
    except (OSError, ValueError):
        return {"helpers": {}, "kfuncs": {}, "prog_type_hooks": {}, "kernel_source": ""}


@lru_cache(maxsize=None)
def _generated_kfunc(name: str) -> Semantics:
    entry = kernel_table()["kfuncs"].get(name)
    flags = frozenset(_KF_FLAGS[f] for f in (entry or {}).get("flags", ()) if f in _KF_FLAGS)
    kind = name.removeprefix("bpf_iter_").rsplit("_", 1)[0] if flags & {ITER_NEW, ITER_NEXT, ITER_DESTROY} else ""
    return Semantics(name, (), RET_PROTO, flags,
                     ref_kind=f"iter:{kind}" if ITER_NEW in flags else ("kernel" if ACQUIRE in flags else ""),
                     releases="kernel" if RELEASE in flags else "", generated=True,
                     summary=_generated_summary(flags))


def _generated_summary(flags: frozenset[str]) -> str:
    if ITER_NEW in flags:
        return "initialises an open-coded iterator: destroy it with the matching `_destroy` on every path"
    if ITER_NEXT in flags:
        return "advances the iterator: returns the next element, or NULL when it is exhausted"
    if ITER_DESTROY in flags:
        return "destroys the iterator"
    if ACQUIRE in flags:
        return "returns a reference" + (" (or NULL)" if RET_NULL in flags else "") + \
            " that must be released on every path"
    if RELEASE in flags:
        return "releases the reference passed to it"
    return "takes no ownership"


@lru_cache(maxsize=None)
def _generated_helper(helper_id: int) -> Semantics | None:
    entry = kernel_table()["helpers"].get(str(helper_id))
    if entry is None:
        return None
    rets = {_HELPER_RETS.get(r, RET_ANYTHING) for r in entry["ret"]}
    ret = rets.pop() if len(rets) == 1 else RET_ANYTHING   # variants that disagree: unknown
    flags = {RET_NULL} if entry["ret_or_null"] else set()
    if "RET_PTR_TO_BTF_ID_TRUSTED" in entry["ret"]:
        flags.add(TRUSTED_ARGS)   # read by the interpreter as "the returned pointer is trusted"
    if ret == RET_CAST_SOCKET and entry["name"] not in PTR_CASTS:
        ret = RET_SOCKET if entry["ret"] == ["RET_PTR_TO_SOCKET"] else RET_CAST_SOCKET
    structs = entry.get("ret_struct") or []
    sockets = {SOCKET_VIEWS[r] for r in entry["ret"] if r in SOCKET_VIEWS}
    if len(sockets) == 1 and not structs:
        structs = list(sockets)
    return Semantics(entry["name"], (), ret, frozenset(flags), ret_type=structs[0] if len(structs) == 1 else "",
                     is_helper=True, helper_id=helper_id, generated=True,
                     summary="prototype from the kernel's helper definitions; no ownership effect")


def lookup_kfunc(name: str) -> Semantics:
    """The hand-written record, else one derived from the generated table (flags only)."""
    name = essential_name(name)
    return KFUNCS.get(name) or _generated_kfunc(name)


def kfunc_param_names(name: str) -> tuple[str, ...] | None:
    """A kfunc's parameter names as the kernel defines it (the generated table), None when not
    known. The kernel reads a parameter's meaning from its name's suffix (`__sz`, `__k`, ...);
    the extern declaration a program calls through keeps no names in its BTF."""
    params = _table_kfunc(name).get("params")
    return tuple(params) if params is not None else None


def _table_kfunc(name: str) -> dict:
    """The generated table's entry for the kfunc an extern names ({} if none)."""
    return kernel_table()["kfuncs"].get(essential_name(name)) or {}


# is_kfunc_arg_mem_size() / is_kfunc_arg_const_mem_size(): the parameter before one so named is
# memory of that many bytes
_SIZE_SUFFIXES = ("__sz", "__szk")


def kfunc_sized_args(name: str) -> tuple[tuple[int, int], ...]:
    """(memory parameter, its size parameter) positions, 0-based, of a kfunc's `mem, mem__sz`
    pairs."""
    params = kfunc_param_names(name) or ()
    return tuple((i - 1, i) for i, p in enumerate(params) if i > 0 and p.endswith(_SIZE_SUFFIXES))


def known_kfunc(name: str) -> Semantics | None:
    """The record of a kfunc we know of (hand-written or in the generated table), else None."""
    name = essential_name(name)
    if name in KFUNCS or name in kernel_table()["kfuncs"]:
        return lookup_kfunc(name)
    return None


# argument kinds through which a helper reads or writes memory (check_helper_mem_access): a map
# value passed there must not cover a kptr ("kptr cannot be accessed indirectly by helper")
_MEMORY_ARG_KINDS = ("ARG_PTR_TO_MAP_KEY", "ARG_PTR_TO_MAP_VALUE", "ARG_PTR_TO_MEM", "ARG_PTR_TO_FIXED_SIZE_MEM",
                     "ARG_PTR_TO_UNINIT_MEM")


@lru_cache(maxsize=None)
def helper_memory_args(helper_id: int) -> tuple[int, ...]:
    """Indices of the arguments a helper accesses as memory, from its kernel prototypes (an
    argument counts when any variant of the prototype takes memory there); () when unknown."""
    entry = kernel_table()["helpers"].get(str(helper_id))
    if entry is None:
        return ()
    return tuple(i for i, kinds in enumerate(entry["args"])
                 if any(k.split("|")[0] in _MEMORY_ARG_KINDS for k in kinds))


# helpers whose result do_refine_retval_range() bounds by their size argument (its index)
RET_BOUNDED_BY_SIZE = {"bpf_probe_read_str": 1, "bpf_get_stack": 2, "bpf_probe_read_user_str": 1,
                       "bpf_probe_read_kernel_str": 1, "bpf_get_task_stack": 2}


@dataclass(frozen=True)
class MemArg:
    """A helper argument through which it reads (or, `raw`, only writes) memory, and its size."""
    index: int
    source: str              # "key" | "value" (of the map in `map_arg`) | "size" (the next argument)
    raw: bool                # MEM_UNINIT: written, never read (check_stack_range_initialized raw_mode)
    map_arg: int = -1
    rdonly: bool = False     # MEM_RDONLY: the only kind a kernel object may be passed as
    zero_ok: bool = True     # "size": ARG_CONST_SIZE_OR_ZERO (ARG_CONST_SIZE needs a byte at least)


@lru_cache(maxsize=None)
def helper_mem_args(helper_id: int) -> tuple[MemArg, ...]:
    """The memory arguments of a helper whose every prototype agrees on them."""
    entry = kernel_table()["helpers"].get(str(helper_id))
    if entry is None:
        return ()
    args = entry["args"]
    map_arg = next((i for i, kinds in enumerate(args) if "ARG_CONST_MAP_PTR" in kinds), -1)
    out = []
    for i, kinds in enumerate(args):
        if len(set(kinds)) != 1:
            continue
        base, *flags = kinds[0].split("|")
        raw = "MEM_UNINIT" in flags or base == "ARG_PTR_TO_UNINIT_MEM"
        if base == "ARG_PTR_TO_MAP_KEY" and map_arg >= 0:
            out.append(MemArg(i, "key", raw, map_arg, "MEM_RDONLY" in flags))
        elif base == "ARG_PTR_TO_MAP_VALUE" and map_arg >= 0:
            out.append(MemArg(i, "value", raw, map_arg, "MEM_RDONLY" in flags))
        elif base in ("ARG_PTR_TO_MEM", "ARG_PTR_TO_UNINIT_MEM") and i + 1 < len(args) and \
                all(k.startswith("ARG_CONST_SIZE") for k in args[i + 1]):
            out.append(MemArg(i, "size", raw, rdonly="MEM_RDONLY" in flags,
                              zero_ok=all(k.split("|")[0].endswith("_OR_ZERO") for k in args[i + 1])))
    return tuple(out)


def lookup_helper(helper_id: int) -> Semantics | None:
    return HELPERS.get(helper_id) or _generated_helper(helper_id)


# what the probe says of a helper's prototype rather than of a program type's offer
HELPER_PROPERTIES = ("might_sleep", "gpl_only")


@lru_cache(maxsize=1)
def _helper_availability() -> dict[str, dict[str, frozenset[int]]]:
    try:
        data = json.loads(resources.files("bpf_lsp").joinpath("data/helper_availability.json").read_text())
        probed = int(str(data.get("helper_ids", "1..0")).rpartition(".")[2])
        table = {ptype: {variant: frozenset(ids) for variant, ids in variants.items()}
                 for ptype, variants in data["prog_types"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    # a property is the helper's where every probed type that offers it says so alike
    agreed = {}
    for prop in HELPER_PROPERTIES:
        said = frozenset().union(*(t.get(prop, frozenset()) for t in table.values()))
        agreed[prop] = frozenset(h for h in said if all(h in t.get(prop, frozenset()) for t in table.values()
                                                        if h in t.get("plain", frozenset())))
    return table | {"": {"probed": frozenset(range(probed + 1)), **agreed}}


def helper_allowed(helper_id: int, prog_type: str, sleepable: bool) -> bool:
    """Whether a program of this type (sleepable or not) may call the helper: what the kernel's
    get_func_proto() for it returned when devtools/probe_helpers.py asked (bpf_lsp/data/
    helper_availability.json). Allowed where the kernel could not be asked: a program type that
    does not load without an attach target (tracing, lsm, struct_ops, ext) or a helper newer
    than the probe."""
    table = _helper_availability()
    variants = table.get(prog_type)
    if variants is None or helper_id not in table[""]["probed"]:
        return True
    ids = variants.get("sleepable" if sleepable else "plain")
    if ids is None:     # a type only ever loaded one way (syscall programs are always sleepable)
        ids = frozenset().union(*(v for k, v in variants.items() if k not in HELPER_PROPERTIES))
    return helper_id in ids


def _helper_property(prop: str, helper_id: int) -> bool:
    """A HELPER_PROPERTIES entry of the helper's prototype, as every program type the kernel
    offered it to said when asked; False where that is not known."""
    return helper_id in _helper_availability().get("", {}).get(prop, frozenset())


def helper_gpl_only(helper_id: int) -> bool:
    """The helper is for GPL-compatible programs only (`gpl_only`: bpf_probe_read_kernel())."""
    return _helper_property("gpl_only", helper_id)


def kfunc_sleepable(name: str) -> bool:
    """KF_SLEEPABLE: the kfunc may sleep (the generated table's flags)."""
    return "KF_SLEEPABLE" in _table_kfunc(name).get("flags", ())


def helper_might_sleep(helper_id: int) -> bool:
    """The helper's prototype may sleep (`might_sleep`: bpf_copy_from_user())."""
    return _helper_property("might_sleep", helper_id)


# kfuncs returning a pointer to a number whose pointee the program may write (check_kfunc_call()
# makes any other such buffer without a rdwr_buf_size argument read-only)
WRITABLE_POINTEE_RETURNS = frozenset({"bpf_session_cookie"})


def kfunc_allowed(sem: Semantics, prog_type: str) -> bool:
    """Whether a program of this type may call the kfunc (register_btf_kfunc_id_set hooks).

    Unknown is allowed: a kfunc missing from the table, one whose sets are registered in a way
    the generator could not read (no hooks), or a program whose section names no type. A type
    without a hook of its own (bpf_prog_type_to_kfunc_hook()'s default) gets the common set only.
    """
    table = kernel_table()
    entry = table["kfuncs"].get(sem.name)
    if prog_type == "unknown":
        return True     # a section without a program type: user space chooses it
    if entry is not None and entry.get("hooks"):
        hooks = set(entry["hooks"])
        hook = table["prog_type_hooks"].get(prog_type, "")
        return "common" in hooks or hook in hooks
    if sem.prog_types and not sem.generated:
        return prog_type in sem.prog_types
    return True


def spelling(name: str) -> str:
    return MACRO_SPELLING.get(name, name)
