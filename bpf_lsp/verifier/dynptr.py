"""Dynptrs: `struct bpf_dynptr` objects on the stack, their references and their slices.

A dynptr occupies two 8-byte stack slots, both holding `Reg(DYNPTR)` (offsets 0 and 8 of the
object) with one id; a ring-buffer dynptr also holds a reference (`bpf_ringbuf_reserve_dynptr`
acquires one even when the reservation fails) that `bpf_ringbuf_submit_dynptr`/`_discard_dynptr`
release. Slices (`bpf_dynptr_data`, `bpf_dynptr_slice`) are memory of the requested size that
remember their dynptr (`Reg.parent`) and die with it. Which argument of which function is a dynptr,
and whether it is created, used or released there, is data: the helpers' `ARG_PTR_TO_DYNPTR`
flags from the generated kernel table, and the kfuncs' `struct bpf_dynptr *` parameters from
kernel BTF (`__uninit` names the one a kfunc creates), as check_func_arg/check_kfunc_args read them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import codes as C
from . import kfuncs as K
from .domain import (ANYTHING, DYNPTR, MAYBE_NULL, MEM, MISC, RDONLY, PACKET, PACKET_END, STACK, Reg, State, Tombstone,
                     dead_pointer)
from .findings import finding

if TYPE_CHECKING:
    from .interpreter import Interpreter

INIT, USE, RELEASE = "init", "use", "release"
CLONE = "clone"
RINGBUF = "ringbuf"
# the dynptr type a kfunc constructor gives (check_kfunc_args' special_kfunc_list cases)
KFUNC_INIT_TYPES = {"bpf_dynptr_from_skb": "skb", "bpf_dynptr_from_skb_rdonly": "skb",
                    "bpf_dynptr_from_skb_meta": "skb_meta", "bpf_dynptr_from_xdp": "xdp",
                    "bpf_dynptr_clone": CLONE}
SLICE_PREFIX = "slice of a dynptr: "    # a slice's type_name, then its dynptr's type
PACKET_DYNPTRS = ("skb", "xdp", "skb_meta")
# functions returning a slice: the register holding its constant size
SLICE_SIZE_REG = {"bpf_dynptr_data": 3, "bpf_dynptr_slice": 4, "bpf_dynptr_slice_rdwr": 4}
RDONLY_SLICES = {"bpf_dynptr_slice"}
# the slice kfuncs' optional stack buffer (buffer__opt), which they read for as many bytes as the
# next argument says (buffer__szk)
SLICE_BUFFER_ARGS = {name: (K.MemArg(2, "size", raw=False, rdonly=True),)
                     for name in ("bpf_dynptr_slice", "bpf_dynptr_slice_rdwr")}
# may_access_direct_pkt_data(BPF_WRITE): program types that may write packet data
PACKET_WRITERS = {"sched_cls", "sched_act", "xdp", "lwt_xmit", "sk_skb", "sk_msg", "cgroup_sockopt", "unknown"}
# helpers that write through a dynptr: on a packet dynptr they may move the packet
DYNPTR_WRITERS = {"bpf_dynptr_write"}


@dataclass(frozen=True)
class DynptrParam:
    index: int          # argument position (0-based)
    mode: str           # INIT | USE | RELEASE
    dtype: str = ""     # the type a constructor creates ("ringbuf", "local", "skb", CLONE)


def dynptr_params(sem: K.Semantics, kernel_funcs: dict, uninit_args: dict) -> tuple[DynptrParam, ...]:
    if sem.is_helper:
        entry = K.kernel_table()["helpers"].get(str(sem.helper_id))
        out = []
        for i, kinds in enumerate((entry or {}).get("args", ())):
            flags = set("|".join(kinds).split("|"))
            if "ARG_PTR_TO_DYNPTR" not in flags:
                continue
            mode = INIT if "MEM_UNINIT" in flags else RELEASE if "OBJ_RELEASE" in flags else USE
            dtype = RINGBUF if "DYNPTR_TYPE_RINGBUF" in flags else "local" if "DYNPTR_TYPE_LOCAL" in flags else ""
            out.append(DynptrParam(i, mode, dtype))
        return tuple(out)
    sig = kernel_funcs.get(sem.name)
    if sig is None:
        return ()
    uninit = uninit_args.get(sem.name, ())
    return tuple(DynptrParam(i, INIT if i in uninit else USE, KFUNC_INIT_TYPES.get(sem.name, "") if i in uninit
                             else "")
                 for i, p in enumerate(sig[1]) if p[:2] == ("ptr", "bpf_dynptr"))


def slots(it: Interpreter, st: State, reg: Reg):
    """(frame, low slot index) of the dynptr a stack pointer points at."""
    fr = it._stack_frame(st, reg)
    return fr, reg.off // 8


def at(fr, lo: int) -> Reg | None:
    """The dynptr whose two slots start at `lo`, or None when there is no whole one there."""
    a, b = fr.stack.get(lo), fr.stack.get(lo + 1)
    if isinstance(a, Reg) and isinstance(b, Reg) and a.type == DYNPTR == b.type and a.id == b.id \
            and a.off == 0 and b.off == 8:
        return a
    return None


def destroy(st: State, fr, dyn: Reg, tomb: Tombstone) -> None:
    """An unreferenced dynptr overwritten: its slots become plain bytes, its slices die."""
    for k, v in list(fr.stack.items()):
        if isinstance(v, Reg) and v.type == DYNPTR and v.id == dyn.id:
            fr.stack[k] = MISC
    kill_slices(st, {dyn.id}, tomb)


def kill_slices(st: State, ids: set[int], tomb: Tombstone) -> None:
    st.map_values(lambda v: dead_pointer(tomb) if v.type == MEM and v.parent in ids else v)


def overwrite_check(it: Interpreter, st: State, fr, slot: int, idx: int) -> None:
    """A plain store into slot `slot`: forbidden on a referenced dynptr, else destroys it."""
    v = fr.stack.get(slot)
    if not (isinstance(v, Reg) and v.type == DYNPTR):
        return
    if v.ref_obj_id and v.ref_obj_id in st.refs:
        it._fail(finding(C.DYNPTR_OVERWRITE, idx, related={"acquired": st.refs[v.ref_obj_id].acquired_at}))
    destroy(st, fr, v, Tombstone("overwritten", idx, via=""))


class DynptrCall:
    """The dynptr arguments of one call: checked before its effects, applied after."""

    def __init__(self, it: Interpreter, st: State, insn_idx: int, sem: K.Semantics,
                 params: tuple[DynptrParam, ...]):
        self.it, self.st, self.idx, self.sem = it, st, insn_idx, sem
        self.params = params
        self.source: Reg | None = None     # the initialized dynptr a USE argument passed
        self.args = list(st.cur.regs[:6])   # R1-R5 as passed (the call clobbers them)
        r = SLICE_SIZE_REG.get(sem.name)
        size = st.cur.regs[r] if r is not None else None
        self.slice_size = size.const if size is not None and size.is_const else 0

    def fail(self, code: str, **args) -> None:
        self.it._fail(finding(code, self.idx, func=self.sem.name, **args))

    def check(self) -> bool:
        """False when an argument is unknown (then nothing is checked or applied)."""
        regs = self.st.cur.regs
        for p in self.params:
            r = p.index + 1
            reg = regs[r]
            if reg.type == ANYTHING:
                self.it._gap(self.idx, reg)
                return False
            if reg.type == DYNPTR:          # a const dynptr (a callback's or global function's argument)
                if reg.off < 0:
                    self.fail(C.DYNPTR_ARG, variant="negative", reg=r, off=reg.off, arg=p.index)
                if reg.off or reg.var_off:
                    self.fail(C.DYNPTR_ARG, variant="modified", reg=r, off=reg.off, arg=p.index)
                if p.mode == RELEASE:
                    self.fail(C.DYNPTR_RELEASE_UNACQUIRED, variant="const", regno=r)
                if p.mode == INIT:
                    self.fail(C.DYNPTR_ARG, variant="const_init", reg=r, arg=p.index)
                self.source = self.source or reg
                continue
            if reg.type != STACK:
                if self.sem.is_helper:
                    self.fail(C.DYNPTR_ARG, variant="helper", reg=r, type=reg.type_str(), arg=p.index)
                self.fail(C.DYNPTR_ARG, arg=p.index, reg=r, type=reg.type_str())
            if reg.var_off:
                self.fail(C.DYNPTR_ARG, variant="var_off", arg=p.index, reg=r, type=reg.type_str())
            if reg.off % 8 or reg.off > -16:
                self.fail(C.DYNPTR_ARG, variant="offset", off=reg.off, arg=p.index, reg=r, type=reg.type_str())
            fr, lo = slots(self.it, self.st, reg)
            dyn = at(fr, lo)
            if p.mode == RELEASE:
                if dyn is None or not dyn.ref_obj_id or dyn.ref_obj_id not in self.st.refs:
                    self.fail(C.DYNPTR_RELEASE_UNACQUIRED, regno=r)
            elif p.mode == USE:
                if dyn is None:
                    self.fail(C.DYNPTR_UNINIT, arg=p.index)
                self.source = self.source or dyn
            else:
                for s in (lo, lo + 1):
                    v = fr.stack.get(s)
                    if isinstance(v, Reg) and v.type == DYNPTR and v.ref_obj_id and v.ref_obj_id in self.st.refs:
                        self.fail(C.DYNPTR_OVERWRITE, related={"acquired": self.st.refs[v.ref_obj_id].acquired_at})
        if self.sem.name == "bpf_dynptr_slice_rdwr" and self.source is not None and \
                self.source.type_name in PACKET_DYNPTRS and self.it.prog.prog_type not in PACKET_WRITERS:
            self.it._fail(finding(C.RDONLY_WRITE, self.idx, variant="prog", func=self.sem.name,
                                  prog_type=self.it.prog.prog_type))
        return True

    def moves_packet(self) -> bool:
        """A write through a packet dynptr (clear_all_pkt_pointers after bpf_dynptr_write)."""
        return self.sem.name in DYNPTR_WRITERS and self.source is not None and \
            self.source.type_name in PACKET_DYNPTRS

    def apply(self) -> None:
        """After the call's own effects (R0 is set): create and release dynptrs, type slices."""
        it, st = self.it, self.st
        for p in self.params:
            reg = self.args[p.index + 1] if p.index + 1 < 6 else None
            if reg is None or reg.type != STACK:
                continue
            fr, lo = slots(it, st, reg)
            if p.mode == INIT:
                for s in (lo, lo + 1):
                    v = fr.stack.get(s)
                    if isinstance(v, Reg) and v.type == DYNPTR:
                        destroy(st, fr, v, Tombstone("overwritten", self.idx, via=self.sem.name))
                dtype, ref = p.dtype, 0
                if dtype == CLONE and self.source is not None:
                    dtype, ref = self.source.type_name, self.source.ref_obj_id
                elif dtype == RINGBUF:
                    ref = it.acquire(st, RINGBUF, self.idx, self.sem.name, "")
                did = it._new_id()
                fr.stack[lo] = Reg(DYNPTR, type_name=dtype, id=did, ref_obj_id=ref)
                fr.stack[lo + 1] = Reg(DYNPTR, off=8, type_name=dtype, id=did, ref_obj_id=ref)
            elif p.mode == RELEASE:
                dyn = at(fr, lo)
                if dyn is None:
                    continue
                ref = dyn.ref_obj_id
                clones = {v.id for f in st.frames for v in f.stack.values()
                          if isinstance(v, Reg) and v.type == DYNPTR and v.ref_obj_id == ref}
                tomb = Tombstone("released", self.idx, st.refs[ref].acquired_at if ref in st.refs else -1,
                                 self.sem.name)
                it.release(st, ref, tomb)     # every clone's slots die with the reference
                kill_slices(st, clones, tomb)
        if self.sem.name in SLICE_SIZE_REG and self.source is not None:
            vid = it._new_id()
            it.null_origin[vid] = self.idx
            flags = {MAYBE_NULL, RDONLY} if self.sem.name in RDONLY_SLICES else {MAYBE_NULL}
            st.cur.regs[0] = Reg(MEM, flags=frozenset(flags), id=vid, parent=self.source.id,
                                 mem_size=self.slice_size, type_name=SLICE_PREFIX + self.source.type_name)


def invalidate_packet_pointers(st: State, tomb: Tombstone) -> None:
    """clear_all_pkt_pointers(): packet pointers and slices of packet dynptrs die."""
    packet_slices = tuple(SLICE_PREFIX + t for t in PACKET_DYNPTRS)
    st.map_values(lambda v: dead_pointer(tomb) if v.type in (PACKET, PACKET_END)
                  or (v.type == MEM and v.type_name in packet_slices) else v)
