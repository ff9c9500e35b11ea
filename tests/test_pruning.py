"""Pruning's static analyses (bpf_lsp.verifier.liveness) on a fixture's object: what they must
agree with, since a wrong set there lets pruning skip a path the kernel walks."""
from __future__ import annotations

import random

import pytest

from conftest import FIXTURES, clang_object

FIXTURE = FIXTURES / "prune__precision.bpf.c"
VAR_OFF_FIXTURE = FIXTURES / "stack__var_off_write.bpf.c"


def _programs(path, tmp):
    from bpf_lsp.frontend.objfile import load_object
    obj = clang_object(path, tmp, [f"-I{FIXTURES / 'include'}"])
    return {p.name: p for p in load_object(obj.read_bytes(), str(obj)).programs}


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    return _programs(FIXTURE, tmp_path_factory.mktemp("prune"))


@pytest.fixture(scope="module")
def var_off_programs(tmp_path_factory):
    return _programs(VAR_OFF_FIXTURE, tmp_path_factory.mktemp("var_off"))


def _decidable(flow) -> list:
    """What a walk may find decided: branches, register additions, and the cells unplaced stores
    put their value in."""
    found = sorted(flow.compares) + sorted(flow.pointer_adds)
    return found + [(idx, cell) for idx in sorted(flow.unplaced_stores) for cell in (-4, -3, -2, -1)]


def test_counting_more_decided_from_a_solution_equals_solving_afresh(programs, var_off_programs):
    # the interpreter extends precision as it finds what values decided (Relevance.with_decided)
    from bpf_lsp.verifier.liveness import Dataflow, Relevance
    rng = random.Random(7)
    for prog in [*programs.values(), *var_off_programs.values()]:
        flow = Dataflow(prog)
        events = _decidable(flow)
        assert events, prog.name
        relevance, decided = Relevance.of(prog, frozenset()), frozenset()
        for _ in range(3):
            decided |= frozenset(rng.sample(events, min(3, len(events))))
            relevance = relevance.with_decided(prog, decided)
            assert relevance.precise == flow.precise(decided), prog.name
        everything = frozenset(events)
        assert relevance.with_decided(prog, everything).precise == flow.precise(everything), prog.name
    # the var-off fixture has all three kinds
    assert any(Dataflow(p).unplaced_stores and Dataflow(p).pointer_adds for p in var_off_programs.values())


def test_calls_read_only_the_arguments_their_prototype_has(programs):
    from bpf_lsp.frontend.objfile import HelperRef, SubprogRef
    from bpf_lsp.verifier.liveness import call_arguments

    def args_of(prog, kind, name):
        found = call_arguments(prog)
        return [found[i] for i, m in prog.meanings.items() if isinstance(m, kind) and m.name == name]

    # a helper without parameters reads no register: a stale r1-r5 decides nothing there
    assert args_of(programs["bad_when_set_spilled"], HelperRef, "bpf_get_prandom_u32") == [frozenset()]
    assert args_of(programs["counter_decides_nothing_ok"], HelperRef, "bpf_map_lookup_elem") == [frozenset({1, 2})]
    # a subprogram may have lost parameters its BTF still lists: all five count (for the stack
    # memory it may be given; its registers are those its callee reads, below)
    assert args_of(programs["bad_in_subprog"], SubprogRef, "use") == [frozenset({1, 2, 3, 4, 5})]


def test_a_call_reads_what_its_callee_reads(programs):
    # liveness and precision follow a BPF-to-BPF call into its callee and back, as the kernel's
    # marks do: a register the callee never reads (or never branches on) cannot tell paths apart
    from bpf_lsp.frontend.objfile import SubprogRef
    from bpf_lsp.verifier.liveness import CALL_USES, Dataflow
    prog = programs["bad_in_subprog_arg_set"]
    flow = Dataflow(prog)
    call, callee = next((i, m.target) for i, m in prog.meanings.items() if isinstance(m, SubprogRef))
    live = flow.live_registers()
    assert live[call] & CALL_USES == live[callee] & CALL_USES == {1, 2}
    assert 2 in flow.precise(None)[call]            # x decides the callee's branch
    assert 2 not in flow.precise(frozenset())[call]  # while that branch goes both ways, x decides nothing
    assert 2 in flow.precise(frozenset({max(flow.compares)}))[call]


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
