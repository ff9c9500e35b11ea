"""Pruning's static analyses (bpf_lsp.verifier.liveness) on a fixture's object: what they must
agree with, since a wrong set there lets pruning skip a path the kernel walks."""
from __future__ import annotations

import random

import pytest

from conftest import FIXTURES, clang_object

FIXTURE = FIXTURES / "prune__precision.bpf.c"


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    from bpf_lsp.frontend.objfile import load_object
    obj = clang_object(FIXTURE, tmp_path_factory.mktemp("prune"), [f"-I{FIXTURES / 'include'}"])
    return {p.name: p for p in load_object(obj.read_bytes(), str(obj)).programs}


def test_counting_more_branches_from_a_solution_equals_solving_afresh(programs):
    # the interpreter extends precision as it finds decided branches (Relevance.with_decided)
    from bpf_lsp.verifier.liveness import Dataflow, Relevance
    rng = random.Random(7)
    for prog in programs.values():
        flow = Dataflow(prog)
        branches = sorted(flow.compares)
        assert branches, prog.name
        relevance, decided = Relevance.of(prog, frozenset()), frozenset()
        for _ in range(3):
            decided |= frozenset(rng.sample(branches, min(2, len(branches))))
            relevance = relevance.with_decided(prog, decided)
            assert relevance.precise == flow.precise(decided), prog.name
        assert relevance.with_decided(prog, frozenset(branches)).precise == flow.precise(frozenset(branches))


def test_calls_read_only_the_arguments_their_prototype_has(programs):
    from bpf_lsp.frontend.objfile import HelperRef, SubprogRef
    from bpf_lsp.verifier.liveness import call_arguments

    def args_of(prog, kind, name):
        found = call_arguments(prog)
        return [found[i] for i, m in prog.meanings.items() if isinstance(m, kind) and m.name == name]

    # a helper without parameters reads no register: a stale r1-r5 decides nothing there
    assert args_of(programs["bad_when_set_spilled"], HelperRef, "bpf_get_prandom_u32") == [frozenset()]
    assert args_of(programs["counter_decides_nothing_ok"], HelperRef, "bpf_map_lookup_elem") == [frozenset({1, 2})]
    # a subprogram may have lost parameters its BTF still lists: all five count
    assert args_of(programs["bad_in_subprog"], SubprogRef, "use") == [frozenset({1, 2, 3, 4, 5})]


def test_an_arena_pointer_covers_any_other():
    # regsafe(): PTR_TO_ARENA is not followed, so a loop walking arena memory converges
    from bpf_lsp.verifier.domain import ARENA, MAP_VALUE, UNINIT, Frame, Reg, State
    from bpf_lsp.verifier.liveness import EXACT
    from bpf_lsp.verifier.pruning import subsumes

    def state(reg):
        regs = [UNINIT] * 11
        regs[1] = reg
        return State([Frame(regs, {})])
    assert subsumes(state(Reg(ARENA, off=8)), state(Reg(ARENA, off=16)), 0, EXACT)
    assert not subsumes(state(Reg(MAP_VALUE, off=8)), state(Reg(MAP_VALUE, off=16)), 0, EXACT)
