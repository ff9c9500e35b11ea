"""State pruning: when an explored state subsumes the current one, the path need not go on."""
from __future__ import annotations

from .domain import (ARENA, DYNPTR, ITER, MISC, NO_BYTES, NON_OWN, NOT_INIT, PACKET, S64_MAX, S64_MIN, SCALAR, U64,
                     ZERO_SLOT, KnownBytes, NarrowSpill, Reg, State)
from .liveness import ANY_SLOT, CALLEE_SAVED, Relevance
from .precision import needed
from .scalars import low32, signed32


def state_shape(st: State) -> tuple:
    """What two states must share for one to subsume the other, besides their values: `subsumes`
    compares these first, so grouping explored states by it skips every hopeless comparison."""
    refs = tuple(sorted((r.kind, r.acquired_at) for r in st.refs.values())) if st.refs else ()
    return (tuple((f.callsite, f.callback) for f in st.frames), st.lock, st.rcu_depth, st.preempt_depth,
            st.in_graph_callback, refs)


def subsumes(old: State, cur: State, idx: int, rel: Relevance) -> bool:
    """True when exploring `cur` at instruction `idx` cannot find anything `old`'s exploration did not.

    Cheap whole-state checks first, then frames from the innermost outwards (where loop counters
    differ), looking only at what may still matter (`rel`): live registers, and of those the
    scalars whose value may decide something exactly (an imprecise old scalar covers any
    scalar), and stack slots that may be read again.
    """
    return state_shape(old) == state_shape(cur) and values_subsume(old, cur, rel.at(idx), rel)


def values_subsume(old: State, cur: State, here: tuple, rel: Relevance, base: Relevance | None = None,
                   base_here: tuple = (), marks: list | None = None, seq: int = 0,
                   witness: list | None = None) -> bool:
    """`subsumes` for two states of the same shape; `here` is `rel.at(idx)`.

    With `base` (precision counting no decided event; `base_here` is `base.at(idx)`), `old` is a
    complete explored state (number `seq`) and `rel` the upper bound: a scalar precise in `rel`
    but not in `base` is compared only if the walk found it needed on a path from `old`
    (precision.needed), and the current state's values so compared go to `marks` (each with
    `old`'s), to be marked if the prune is made.

    `witness` (a one-item list kept with `old`) holds where the last comparison against `old`
    failed. It is checked first, for in a loop the states reaching `old` differ where the last
    one did (the counter), and it is set to where this comparison fails. The answer is the
    same with or without it.
    """
    if old.assumed and not cur.assumed:
        # a path explored under a load-time assumption reported its errors as warnings: it cannot
        # stand in for one without that assumption
        return False
    depth = len(old.frames) - 1
    if witness is not None and witness[0] is not None and \
            _differs_at(old, cur, witness[0], depth, here, rel, base, base_here, seq):
        return False
    idmap: dict[tuple[str, int], int] = {}
    for d in range(depth, -1, -1):
        fo, fc = old.frames[d], cur.frames[d]
        if fo.callsite != fc.callsite or fo.callback != fc.callback:
            return False
        live, precise, slots, sure = _frame_sets(old, cur, d, depth, here, rel, base, base_here)
        oregs, cregs = fo.regs, fc.regs
        for r in live:
            o, c = oregs[r], cregs[r]
            if o is c and not o.id and not o.ref_obj_id and not o.link:
                continue     # the very value both paths inherited (ids must still map consistently)
            if _reg_differs(o, c, r in precise, r in sure, idmap, marks, seq):
                if witness is not None:
                    witness[0] = (d, True, r)
                return False
        every, every_precise, every_sure = ANY_SLOT in slots, ANY_SLOT in precise, ANY_SLOT in sure
        ostack, cstack = fo.stack, fc.stack
        for slot, ov in ostack.items():
            cv = cstack.get(slot)
            if ov is cv and _inherited(ov):
                continue
            if _slot_differs(ov, cv, every or slot in slots, every_precise or slot in precise,
                             base is not None and not every_sure and slot not in sure, idmap, marks, seq):
                if witness is not None:
                    witness[0] = (d, False, slot)
                return False
        for slot, cv in cstack.items():
            if _holds_object(cv) and slot not in ostack:
                if witness is not None:
                    witness[0] = (d, False, slot)
                return False
    return True


def _frame_sets(old: State, cur: State, d: int, depth: int, here: tuple, rel: Relevance, base: Relevance | None,
                base_here: tuple) -> tuple:
    """(live registers, precise ones and slots, live slots, those precise whatever the walk finds)
    of frame `d`: the innermost's at the instruction, a caller's after its call returns (its
    slots: those it reads then, or the frames above it may still read, in either state)."""
    if d == depth:
        live, precise, slots = here[:3]
        return live, precise, slots, (base_here[1] if base is not None else precise)
    callsite = old.frames[d + 1].callsite
    live, precise, whole = rel.at_call(callsite)[:3]
    slots = rel.caller_slots(old, d, here[3])
    if cur is not old and slots is not whole:
        slots = slots | rel.caller_slots(cur, d, here[3])
    sure = base.at_call(callsite)[1] if base is not None else precise
    # a caller's r0-r5 are overwritten when the call returns
    return rel.caller_live(callsite), precise, slots, sure


def _reg_differs(o: Reg, c: Reg, precise: bool, sure: bool, idmap: dict, marks: list | None, seq: int) -> bool:
    """A live register `old` holds as `o` fails to cover the current state's `c`."""
    exact = precise
    if exact and not sure and o.type == SCALAR:
        exact = needed(o, seq)
        if exact and marks is not None:
            marks.append((c, o))
    return not _reg_subsumes(o, c, idmap, exact)


def _slot_differs(ov, cv, live: bool, precise: bool, walked: bool, idmap: dict, marks: list | None,
                  seq: int) -> bool:
    """A stack slot `old` holds as `ov` fails to cover the current state's `cv`. `live`: it may be
    read again; `precise`: into a value that may decide something; `walked`: only if the walk
    found that value needed (precision.needed)."""
    if not live and _plain(ov) and _plain(cv):
        return False     # nobody reads this slot again before writing it
    if _data(ov) and _data(cv):
        if not precise:
            return False     # read again, but only into values that decide nothing
        if walked and isinstance(ov, (Reg, KnownBytes, NarrowSpill)):
            if not needed(ov, seq):
                return False     # no path from `old` needed it
            if marks is not None:
                marks.append((cv, ov))
    if isinstance(ov, Reg):
        if not isinstance(cv, Reg) or not _reg_subsumes(ov, cv, idmap):
            return not (ov.type == SCALAR and ov.umin == 0 and ov.umax == U64 and ov.tomb is None
                        and cv is not None)
        return False
    if isinstance(ov, NarrowSpill):
        # the same spill size (the bytes a fill reads back), a covering range, the zeros after it
        return not (isinstance(cv, NarrowSpill) and cv.size == ov.size and _reg_subsumes(ov.reg, cv.reg, idmap)
                    and (ov.rest == cv.rest or ov.rest == NO_BYTES))
    return ov != cv and (ov == ZERO_SLOT or isinstance(ov, KnownBytes))


def _inherited(v) -> bool:
    """A slot value both states hold as the very same object needs no comparison, unless ids or
    links in it must still map like the others' (a linked copy, a pointer with an id)."""
    t = type(v)
    if t is Reg:
        return not v.link and not v.id and not v.ref_obj_id
    return t is not NarrowSpill or not v.reg.link


def _holds_object(v) -> bool:
    """A slot value that holds a reference or a non-owning pointer: a state without it cannot
    stand in for one with it."""
    return type(v) is Reg and bool(v.ref_obj_id or NON_OWN in v.flags)


def _differs_at(old: State, cur: State, where: tuple, depth: int, here: tuple, rel: Relevance,
                base: Relevance | None, base_here: tuple, seq: int) -> bool:
    """`values_subsume`'s check of one register or slot (`where`: frame, is a register, which),
    alone: ids map afresh, which can only make it pass where the whole check would fail, and it
    marks nothing."""
    d, is_reg, key = where
    if d > depth:
        return False
    fo, fc = old.frames[d], cur.frames[d]
    if fo.callsite != fc.callsite or fo.callback != fc.callback:
        return True
    live, precise, slots, sure = _frame_sets(old, cur, d, depth, here, rel, base, base_here)
    if is_reg:
        if key not in live:
            return False
        o, c = fo.regs[key], fc.regs[key]
        return not (o is c and not o.id and not o.ref_obj_id and not o.link) and \
            _reg_differs(o, c, key in precise, key in sure, {}, None, seq)
    ov, cv = fo.stack.get(key), fc.stack.get(key)
    if ov is None:
        return _holds_object(cv)
    if ov is cv and _inherited(ov):
        return False
    every_sure = ANY_SLOT in sure
    return _slot_differs(ov, cv, ANY_SLOT in slots or key in slots, ANY_SLOT in precise or key in precise,
                         base is not None and not every_sure and key not in sure, {}, None, seq)


def precise_values(st: State, here: tuple, rel: Relevance, old: State, seq: int):
    """The tracked values of `st` that may decide something after the instruction `here` is of
    (`rel`): what a prune of `st` against `old` (explored state number `seq`), whose exploration
    is still going on, must mark, not knowing which of them that exploration will need. A value
    both hold (the same precision node) needs only the marks `old`'s paths made on it so far:
    those they make from now on reach `st`'s explored states by themselves. Each comes with what
    `old` holds in its place."""
    depth = len(st.frames) - 1
    for d in range(depth, -1, -1):
        fr, fo = st.frames[d], old.frames[d]
        if d == depth:
            live, precise, _slots = here[:3]
        else:
            live, precise, _slots = rel.at_call(st.frames[d + 1].callsite)[:3]
            live = [r for r in live if r in CALLEE_SAVED]
        for r in live:
            dep = fr.regs[r].dep
            if r in precise and dep is not None and (dep is not fo.regs[r].dep or dep.needed_before > seq):
                yield fr.regs[r], fo.regs[r]
        every = ANY_SLOT in precise
        for slot, v in fr.stack.items():
            dep = getattr(v, "dep", None)
            if dep is not None and (every or slot in precise) and (
                    dep is not getattr(fo.stack.get(slot), "dep", None) or dep.needed_before > seq):
                yield v, fo.stack.get(slot)


def register_signature(st: State, live: tuple, rel: Relevance) -> tuple:
    """What the live registers of every frame (the innermost's are `live`, in order) must share
    between two states for one to subsume the other: pointers' types and offsets, scalars as
    scalars. Explored states are grouped by it, so a lookup compares only states that might match."""
    frames = st.frames
    regs = frames[-1].regs
    sig = [_reg_key(regs[r]) for r in live]
    for d in range(len(frames) - 2, -1, -1):
        regs = frames[d].regs
        sig.append(None)    # frame boundary
        sig.extend(_reg_key(regs[r]) for r in rel.caller_live(frames[d + 1].callsite))
    return tuple(sig)


def _reg_key(o: Reg):
    if o.type == SCALAR:
        return "s" if o.tomb is None else o.tomb
    if o.type == NOT_INIT:
        return "u"      # an old uninitialized register covers anything: such states just match less often
    if o.type == ARENA:
        return "a"
    return (o.type, o.off, o.flags, id(o.map), o.btf_id, o.type_name, o.var_off, o.frameno, o.target, o.nonown_at,
            o.mem_size if o.type != PACKET else 0)


def _data(v) -> bool:
    """A slot holding a number (spilled or as bytes), not a pointer or a dead pointer's story."""
    return v is not None and (not isinstance(v, Reg) or (v.type == SCALAR and v.tomb is None))


def _plain(v) -> bool:
    """A slot value that means nothing once nobody reads it: data, or a pointer holding no
    reference (iterators and dynptrs are objects with a lifetime of their own, checked at exit)."""
    if not isinstance(v, Reg):
        return True
    return v.type not in (ITER, DYNPTR) and not v.ref_obj_id and not v.has(NON_OWN)


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


def _map_link(o: Reg, c: Reg, idmap: dict) -> bool:
    """check_scalar_ids(): copies of one value in `old` (a comparison on one bounded all) are
    copies of one value now, at the same offsets. A value `old` did not link may be linked now:
    `old` explored it knowing less."""
    if not c.link or (o.link_add, o.link_off) != (c.link_add, c.link_off):
        return False
    return idmap.setdefault(("link", o.link), c.link) == c.link


def _reg_subsumes(o: Reg, c: Reg, idmap: dict, precise: bool = True) -> bool:
    if o.type == NOT_INIT:
        return True
    if o.type != c.type:
        return False
    if o.type == ARENA:
        return True     # regsafe(): arena pointers are not followed, any one covers another
    if o.type == SCALAR:
        if o.tomb != c.tomb:     # a dead pointer's story still shows if it is used
            return False
        if not precise:
            return True
        if (o.load_time and not c.load_time) or (o.vague and not c.vague):
            return False     # checks skipped for the old value would apply to the current one
        if not (o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax):
            return False
        if o.link and not _map_link(o, c, idmap):
            return False
        if o.s32 is not None:     # a 32-bit signed range across 0
            (olo, ohi), (clo, chi) = signed32(low32(o)), signed32(low32(c))
            if not (olo <= clo and chi <= ohi):
                return False
        if o.lo32 is not None or c.lo32 is not None:    # what a 32-bit comparison left of the low half
            lo, lc = low32(o), low32(c)
            return lo.umin <= lc.umin and lc.umax <= lo.umax
        return True
    # regsafe(): pointers match exactly; a memory pointer's size too (the record a ring buffer
    # reserved, a slice), or an access in bounds of the old one's could be out of the new one's
    if (o.off, o.flags, o.map, o.btf_id, o.type_name, o.var_off, o.frameno, o.target, o.nonown_at) != \
            (c.off, c.flags, c.map, c.btf_id, c.type_name, c.var_off, c.frameno, c.target, c.nonown_at) or \
            (o.var_off and not (o.vmin <= c.vmin and c.vmax <= o.vmax)):
        return False
    # a packet pointer's proven range may be larger now (regsafe(): rold->range > rcur->range fails)
    if (o.mem_size > c.mem_size) if o.type == PACKET else o.mem_size != c.mem_size:
        return False
    return _map_id("id", o.id, c.id, idmap) and _map_id("ref", o.ref_obj_id, c.ref_obj_id, idmap)


def only_scalars_differ(old: State, cur: State, idx: int, rel: Relevance) -> bool:
    """Whether `old` would subsume `cur` if the scalars in which they differ were forgotten."""
    c = cur.copy()
    widen(old, c, to_unknown=True)
    return subsumes(_forgetting(c, old), c, idx, rel)


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
                    and w.umin == 0 and w.umax == U64 and w.smin == S64_MIN) or (w == MISC and isinstance(v, (KnownBytes, NarrowSpill))):
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
            elif isinstance(c, (KnownBytes, NarrowSpill)) and o != c:
                fc.stack[slot] = MISC
                changed = True
    return changed


def _widen_scalar(o: Reg, c: Reg, to_unknown: bool) -> Reg | None:
    if o.type != SCALAR or c.type != SCALAR or o.tomb is not None or c.tomb is not None:
        return None
    if o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax:
        return None
    # the kernel widens only what no check needed exactly: a bounds check must not use ours
    vague = c.vague or o.vague or "a number an iterator loop carries, which bpf-lsp widened"
    if to_unknown:
        return c.evolve(umin=0, umax=U64, smin=S64_MIN, smax=S64_MAX, id=0, load_time=c.load_time or o.load_time,
                       vague=vague, lo32=None, s32=None, link=0, link_off=0, link_add=0)
    return c.evolve(umin=min(o.umin, c.umin), umax=max(o.umax, c.umax), smin=min(o.smin, c.smin),
                   smax=max(o.smax, c.smax), id=0, load_time=c.load_time or o.load_time, vague=vague, lo32=None,
                   s32=None, link=0, link_off=0, link_add=0)
