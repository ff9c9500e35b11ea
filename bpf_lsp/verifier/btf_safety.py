"""Which pointer fields of kernel structs stay trusted or RCU-protected when walked.

Facts from kernel/bpf/verifier.c (BTF_TYPE_SAFE_TRUSTED / _TRUSTED_OR_NULL / _RCU / _RCU_OR_NULL
blocks, Linux 6.18): loading such a field through a trusted or RCU pointer gives a trusted or
RCU pointer; any other pointer field gives a plain (neither trusted nor RCU) pointer, which
KF_RCU and trusted kfunc arguments refuse. Fields tagged `__rcu` in kernel BTF count as RCU too.
"""
from __future__ import annotations

from ..frontend.btf import Btf, BtfError, Kind

SAFE_TRUSTED = {
    ("bpf_iter_meta", "seq"), ("bpf_iter__task", "task"), ("linux_binprm", "file"),
    ("file", "f_inode"), ("file", "f_path"), ("dentry", "d_inode"),
}
SAFE_TRUSTED_OR_NULL = {("socket", "sk"), ("vm_area_struct", "vm_mm"), ("vm_area_struct", "vm_file")}
SAFE_RCU = {
    ("task_struct", "cgroups"), ("task_struct", "cpus_ptr"), ("task_struct", "real_parent"),
    ("task_struct", "group_leader"), ("cgroup", "kn"), ("css_set", "dfl_cgrp"),
    ("cgroup_subsys_state", "cgroup"),
}
SAFE_RCU_OR_NULL = {("mm_struct", "exe_file"), ("sk_buff", "sk"), ("request_sock", "sk")}

# Kptr pointee types whose plain loads are RCU-protected (rcu_protected_types) rather than untrusted.
RCU_PROTECTED_KPTRS = {"task_struct", "cgroup", "bpf_cpumask"}


def walked_pointer(struct: str, field: str, rcu_tagged: bool) -> str:
    """'trusted', 'trusted_or_null', 'rcu', 'rcu_or_null' or 'plain' for a field walked from a trusted base."""
    key = (struct, field)
    if key in SAFE_TRUSTED:
        return "trusted"
    if key in SAFE_TRUSTED_OR_NULL:
        return "trusted_or_null"
    if key in SAFE_RCU:
        return "rcu"
    if key in SAFE_RCU_OR_NULL or rcu_tagged:
        return "rcu_or_null"
    return "plain"


def member_overrun(btf: Btf, struct: str, off: int, size: int) -> tuple[str, int, str] | None:
    """(member, its end, the struct holding it) when `size` bytes at `off` of `struct` run past the
    end of the number (or array of numbers) they start in: btf_struct_walk's mtrue_end. Nested
    structs are descended; unions, arrays of structs and bitfields are left to the kernel (None)."""
    try:
        t = btf.struct_by_name(struct)
        base = 0
        for _ in range(16):
            if t is None or t.kind != Kind.STRUCT:
                return None
            rel = off - base
            child = next(((n, mt, mo, ms) for n, mt, mo, ms in btf._children(t) if mo <= rel < mo + ms), None)
            if child is None:
                return None
            name, mtype, moff, msize = child
            m = btf[btf.resolve(mtype)]
            if m.kind == Kind.STRUCT:
                t, base = m, base + moff
                continue
            leaf = m
            if m.kind == Kind.ARRAY:
                leaf = btf[btf.resolve(m.elem_type)]
            if leaf.kind not in (Kind.INT, Kind.ENUM, Kind.ENUM64) or msize != btf.size_of(mtype):
                return None
            end = base + moff + msize
            return (name, end, t.name) if off + size > end else None
    except (BtfError, KeyError, IndexError, AttributeError):
        return None
    return None
