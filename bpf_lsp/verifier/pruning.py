"""State pruning: when an explored state subsumes the current one, the path need not go on."""
from __future__ import annotations

from dataclasses import replace

from .domain import MISC, NON_OWN, NOT_INIT, S64_MAX, S64_MIN, SCALAR, U64, ZERO_SLOT, KnownBytes, Reg, State


def state_shape(st: State) -> tuple:
    """What two states must share for one to subsume the other, besides their values: `subsumes`
    compares these first, so grouping explored states by it skips every hopeless comparison."""
    refs = tuple(sorted((r.kind, r.acquired_at) for r in st.refs.values())) if st.refs else ()
    return (tuple((f.callsite, f.callback) for f in st.frames), st.lock, st.rcu_depth, st.preempt_depth,
            st.in_graph_callback, refs)


def subsumes(old: State, cur: State, live: frozenset | None, live_at) -> bool:
    """True when exploring `cur` cannot find anything `old`'s exploration did not.

    Cheap whole-state checks first, then registers from the innermost frame outwards (where
    loop counters differ), ignoring registers that are dead: in the current function by static
    liveness, in callers by liveness at their return point.
    """
    if len(old.frames) != len(cur.frames) or old.lock != cur.lock or old.rcu_depth != cur.rcu_depth \
            or old.preempt_depth != cur.preempt_depth or old.in_graph_callback != cur.in_graph_callback \
            or len(old.refs) != len(cur.refs) or (old.assumed and not cur.assumed):
        # a path explored under a load-time assumption reported its errors as warnings: it cannot
        # stand in for one without that assumption
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
            elif ov != cv and (ov == ZERO_SLOT or isinstance(ov, KnownBytes)):
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
        if o.tomb != c.tomb or (o.load_time and not c.load_time):
            return False
        return o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax
    if (o.off, o.flags, o.map, o.btf_id, o.type_name, o.var_off, o.frameno, o.target, o.nonown_at) != \
            (c.off, c.flags, c.map, c.btf_id, c.type_name, c.var_off, c.frameno, c.target, c.nonown_at) or \
            (o.var_off and not (o.vmin <= c.vmin and c.vmax <= o.vmax)):
        return False
    return _map_id("id", o.id, c.id, idmap) and _map_id("ref", o.ref_obj_id, c.ref_obj_id, idmap)


def only_scalars_differ(old: State, cur: State, live: frozenset | None, live_at) -> bool:
    """Whether `old` would subsume `cur` if the scalars in which they differ were forgotten."""
    c = cur.copy()
    widen(old, c, to_unknown=True)
    return subsumes(_forgetting(c, old), c, live, live_at)


def _forgetting(widened: State, old: State) -> State:
    """`old` with every scalar `widened` forgot (made unknown) forgotten too."""
    o = old.copy()
    for fw, fo in zip(widened.frames, o.frames):
        for r, (w, v) in enumerate(zip(fw.regs, fo.regs)):
            if w.type == SCALAR and v.type == SCALAR and w.umin == 0 and w.umax == U64 and w.smin == S64_MIN:
                fo.regs[r] = w
        for slot, w in fw.stack.items():
            v = fo.stack.get(slot)
            if (isinstance(w, Reg) and isinstance(v, Reg) and w.type == SCALAR and v.type == SCALAR
                    and w.umin == 0 and w.umax == U64 and w.smin == S64_MIN) or (w == MISC and isinstance(v, KnownBytes)):
                fo.stack[slot] = w
    return o


def widen(old: State, cur: State, to_unknown: bool) -> bool:
    """At an iterator's `next` call, make `cur` cover `old` where only scalars differ.

    An open-coded iterator loop has no bound we could unroll to; the kernel makes it converge by
    forgetting the loop-carried scalars no check depends on (widen_imprecise_scalars). We have no
    precision marks, so a scalar that differs between two visits is joined with its old range,
    and after a few joins forgotten. Only scalars widen: pointers, references and locks must
    still match for the loop to converge. Returns whether anything changed.
    """
    changed = False
    for fo, fc in zip(old.frames, cur.frames):
        for r, (o, c) in enumerate(zip(fo.regs, fc.regs)):
            w = _widen_scalar(o, c, to_unknown)
            if w is not None:
                fc.regs[r] = w
                changed = True
        for slot, c in list(fc.stack.items()):
            o = fo.stack.get(slot)
            if isinstance(o, Reg) and isinstance(c, Reg):
                w = _widen_scalar(o, c, to_unknown)
                if w is not None:
                    fc.stack[slot] = w
                    changed = True
            elif isinstance(c, KnownBytes) and o != c:
                fc.stack[slot] = MISC
                changed = True
    return changed


def _widen_scalar(o: Reg, c: Reg, to_unknown: bool) -> Reg | None:
    if o.type != SCALAR or c.type != SCALAR or o.tomb is not None or c.tomb is not None:
        return None
    if o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax:
        return None
    if to_unknown:
        return replace(c, umin=0, umax=U64, smin=S64_MIN, smax=S64_MAX, id=0, load_time=c.load_time or o.load_time)
    return replace(c, umin=min(o.umin, c.umin), umax=max(o.umax, c.umax), smin=min(o.smin, c.smin),
                   smax=max(o.smax, c.smax), id=0, load_time=c.load_time or o.load_time)
