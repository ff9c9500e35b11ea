"""Precision marks of explored states, found by the walk (the kernel's mark_chain_precision()).

The static analysis in `liveness` says which scalars *may* decide something later; on its own it
must assume that every branch a value could decide, it does. The kernel knows better for a state
whose exploration is over: only the values that did decide something on one of its paths (a
branch that could go one way only, a pointer's offset) are precise, and a later state may differ
from it in all the others. So does the walk here, with a small dependency graph instead of the
kernel's backtracking over instruction histories:

- each tracked scalar carries a `Dep` node naming the nodes it was computed from (an ALU result
  depends on its operands; a copy, a spill and its fill, a refined range are the same node), and
  so do the known bytes narrow stores leave in a stack slot;
- a decision marks the nodes of the values it read, and everything they came from, as needed by
  the explored states made before it (those after it that hold the same value do not need it);
- a state whose exploration is complete (`Explored.branches == 0`) then needs exactly its marked
  scalars precise, and a prune against it passes its marks on to the pruned path's values, as
  propagate_precision() does.

A scalar without a node (a constant from memory, a helper's result) is *untracked* and compared
as precise wherever the static analysis says it may be: the graph is an improvement, never a
requirement. The one rule that keeps it sound: a value computed from a tracked value is tracked
(or its source marked where the link is lost, as when a number is stored as bytes).
"""
from __future__ import annotations

from .domain import Reg


class Dep:
    """A scalar value's place in the precision graph. `needed_before`: the explored states made
    before this count (`Explored.seq`) needed the value; a decision needs a value only in the
    states before it on its path, not in those it holds the same value in later."""
    __slots__ = ("parents", "needed_before")

    def __init__(self, parents: tuple = ()):
        self.parents = parents
        self.needed_before = 0


def derived(*values) -> Dep:
    """The node of a value computed from `values` (registers or known stack bytes; untracked
    ones have nothing to pass on: they are compared exactly wherever they are)."""
    return Dep(tuple(d for v in values if (d := getattr(v, "dep", None)) is not None))


def needed(value, seq: int) -> bool:
    """Whether explored state number `seq`'s scalar may have decided something on a path from it."""
    return value.dep is None or value.dep.needed_before > seq


def mark(values, now: int) -> bool:
    """A decision, made after `now` explored states, read these values: they, and all they were
    computed from, are precise in the states before it. False if the graph was too deep to walk
    (the caller must then stop trusting it)."""
    work = [d for v in values if (d := getattr(v, "dep", None)) is not None and d.needed_before < now]
    budget = MAX_WALK
    while work:
        d = work.pop()
        if d.needed_before >= now:
            continue
        budget -= 1
        if budget < 0:
            return False
        d.needed_before = now
        work.extend(p for p in d.parents if p.needed_before < now)
    return True


MAX_WALK = 20_000      # nodes one decision may mark
