"""Precision marks of explored states, found by the walk (the kernel's mark_chain_precision()).

The static analysis in `liveness` says which scalars *may* decide something later; on its own it
must assume that every branch a value could decide, it does. The kernel knows better for a state
whose exploration is over: only the values that did decide something on one of its paths (a
branch that could go one way only, a pointer's offset) are precise, and a later state may differ
from it in all the others. So does the walk here, with a small dependency graph instead of the
kernel's backtracking over instruction histories:

- each tracked scalar carries a `Dep` node naming the nodes it was computed from (an ALU result
  depends on its operands, a copy, a spill or a fill on what it copies; a refined range is the
  same node), and so do the known bytes narrow stores leave in a stack slot;
- a decision marks the nodes of the values it read as needed by the explored states made before
  it, and what each was computed from as needed by those made before that value was (a later
  state holds the value itself, or a copy: the kernel's backtracking follows registers the same
  way);
- a state whose exploration is complete (`Explored.branches == 0`) then needs exactly its marked
  scalars precise, and a prune against it passes its marks on to the pruned path's values, as
  propagate_precision() does.

A value made from nothing the state holds (a load from memory, a call's result, a constant) gets
a node of its own. A scalar without one (the entry state's, a pointer's number, a zero slot) is
*untracked* and compared as precise wherever the static analysis says it may be: the graph is an
improvement, never a requirement. The one rule that keeps it sound: a value computed from a
tracked value is tracked, or its source is marked where the link is lost (an unplaced store,
whose cell the static analysis did not follow).
"""
from __future__ import annotations


class Dep:
    """A scalar value's place in the precision graph: made when `born` explored states existed;
    `needed_before`: the explored states made before this count needed the value;
    `decided_before`: the same counting only what the kernel's precise flags would hold now
    (decisions, and prunes' propagate_precision()), not what a prune against a state still in
    progress marks in advance (see `mark`); `read_at`: the last decision that read the value
    itself (not a value made from it), counted the same way: the kernel's precise flag on the
    register the decision read."""
    __slots__ = ("parents", "born", "needed_before", "decided_before", "read_at")

    def __init__(self, parents: tuple = (), born: int = 0):
        self.parents = parents
        self.born = born
        self.needed_before = 0
        self.decided_before = 0
        self.read_at = 0


def derived(born: int, *values) -> Dep:
    """The node of a value computed, when `born` explored states existed, from `values`
    (registers or known stack bytes; untracked ones have nothing to pass on: they are compared
    exactly wherever they are)."""
    return Dep(tuple(d for v in values if (d := getattr(v, "dep", None)) is not None), born)


def needed(value, seq: int) -> bool:
    """Whether explored state number `seq`'s scalar may have decided something on a path from it."""
    return value.dep is None or value.dep.needed_before > seq


def decided(value, seq: int) -> bool:
    """Whether explored state number `seq`'s scalar is precise as the kernel's marks stand now,
    which is what its widening of loop-carried scalars reads (untracked: always)."""
    dep = getattr(value, "dep", None)
    return dep is None or dep.decided_before > seq


def read_since(value, seq: int) -> bool:
    """Whether a decision read this very value after explored state number `seq` was made
    (untracked: assume so)."""
    dep = getattr(value, "dep", None)
    return dep is None or dep.read_at > seq


def mark(values, now: int, decision: bool = True) -> bool:
    """A decision, made after `now` explored states, read these values: they are precise in the
    explored states before it, and what each was computed from in those made before it was (an
    explored state made later holds the value itself: mark_chain_precision() follows registers
    back along the path the same way). `decision` false: a prune against a state still in
    progress marks, in advance, what that state's later paths may need; the kernel marks those
    only when they do (`decided_before` stays). False if the graph was too deep to walk (the
    caller must then stop trusting it)."""
    def behind(d: Dep, stamp: int) -> bool:
        return d.needed_before < stamp or (decision and d.decided_before < stamp)
    values = [d for v in values if (d := getattr(v, "dep", None)) is not None]
    if decision:
        for d in values:
            d.read_at = now
    work = [(d, now) for d in values if behind(d, now)]
    budget = MAX_WALK
    while work:
        d, stamp = work.pop()
        if not behind(d, stamp):
            continue
        budget -= 1
        if budget < 0:
            return False
        if d.needed_before < stamp:
            d.needed_before = stamp
        if decision and d.decided_before < stamp:
            d.decided_before = stamp
        upto = min(stamp, d.born)
        work.extend((p, upto) for p in d.parents if behind(p, upto))
    return True


MAX_WALK = 20_000      # nodes one decision may mark
