"""struct_ops members as data: which arguments arrive referenced, what a member must return,
which kfuncs each member may call, which members exist at all.

The kernel marks referenced arguments by naming them `*__ref` in its cfi stub functions
(`Qdisc_ops__enqueue(struct sk_buff *skb__ref, ...)`); when the running kernel's BTF has the
stub we read it from there (`kernel_btf.KernelFacts.struct_ops_refs`). Linux 6.18 here is built
without CONFIG_NET_SCH_BPF, so the qdisc table below (from net/sched/bpf_qdisc.c) is used when
kernel BTF lacks it. Pointer-returning members must return a reference they own, or NULL.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemberRules:
    ref_args: tuple[int, ...] = ()        # argument positions that arrive holding a reference
    returns: str = ""                     # struct a pointer-returning member must return (owned) or ""
    writable: tuple[tuple[str, str], ...] = ()   # (struct, first member) a program may store to


QDISC_WRITABLE = (("sk_buff", "tstamp"), ("sk_buff", "cb"), ("Qdisc", "limit"), ("Qdisc", "q"),
                  ("Qdisc", "qstats"))

# (struct_ops type, member) -> rules. Types listed here have exactly these members
# (bpf_struct_ops_supported: a member needs a cfi stub).
MEMBERS: dict[tuple[str, str], MemberRules] = {
    ("Qdisc_ops", "enqueue"): MemberRules(ref_args=(0,), writable=QDISC_WRITABLE),
    ("Qdisc_ops", "dequeue"): MemberRules(returns="sk_buff", writable=QDISC_WRITABLE),
    ("Qdisc_ops", "init"): MemberRules(writable=QDISC_WRITABLE),
    ("Qdisc_ops", "reset"): MemberRules(writable=QDISC_WRITABLE),
    ("Qdisc_ops", "destroy"): MemberRules(writable=QDISC_WRITABLE),
}
TABLE_TYPES = {t for t, _ in MEMBERS}

# kfunc -> the struct_ops members allowed to call it (bpf_qdisc_kfunc_filter); absent: no restriction
KFUNC_MEMBERS: dict[str, frozenset[tuple[str, str]]] = {
    "bpf_qdisc_skb_drop": frozenset({("Qdisc_ops", "enqueue")}),
    "bpf_qdisc_bstats_update": frozenset({("Qdisc_ops", "dequeue")}),
    "bpf_qdisc_watchdog_schedule": frozenset({("Qdisc_ops", "enqueue"), ("Qdisc_ops", "dequeue")}),
    "bpf_kfree_skb": frozenset(m for m in MEMBERS if m[0] == "Qdisc_ops"),
    "bpf_skb_get_hash": frozenset(m for m in MEMBERS if m[0] == "Qdisc_ops"),
    "bpf_dynptr_from_skb": frozenset(m for m in MEMBERS if m[0] == "Qdisc_ops"),
}


def rules_for(type_name: str, member: str, kernel_refs: dict | None = None) -> MemberRules | None:
    """The member's rules; None when the type is known here and has no such member."""
    rules = MEMBERS.get((type_name, member))
    if kernel_refs and (type_name, member) in kernel_refs:
        refs = tuple(kernel_refs[(type_name, member)])
        rules = MemberRules(refs, rules.returns if rules else "", rules.writable if rules else ())
    if rules is None and type_name in TABLE_TYPES:
        return None
    return rules or MemberRules()
