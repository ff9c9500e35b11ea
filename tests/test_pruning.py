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
    """What a walk may find decided: branches, register additions, array lookups' constant keys,
    and the cells unplaced stores put their value in."""
    found = sorted(flow.compares) + sorted(flow.pointer_adds) + sorted(flow.key_lookups)
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


SIZED_FIXTURE = FIXTURES / "prune__sized_helper_reads.bpf.c"


def test_a_helper_reads_the_stack_bytes_its_size_says_and_none_it_only_fills(tmp_path):
    # check_helper_mem_access(): bpf_ringbuf_output(&events, &ev.head, 8, 0) reads head, not the
    # tail after it; bpf_probe_read_kernel(&ev, 32, src) reads nothing of ev (MEM_UNINIT)
    from bpf_lsp.frontend.objfile import HelperRef
    from bpf_lsp.verifier.liveness import Dataflow, Relevance, _stack_pointers
    programs = _programs(SIZED_FIXTURE, tmp_path)

    def at_call(name, helper):
        prog = programs[name]
        call = next(i for i, m in prog.meanings.items() if isinstance(m, HelperRef) and m.name == helper)
        flow = Dataflow(prog)
        where = _stack_pointers(prog, flow.succ)[call]
        return Relevance.of(prog).at(call)[2], where

    live, where = at_call("sized_output_ok", "bpf_ringbuf_output")
    head = where[2] // 8
    assert head in live and head + 1 not in live, (sorted(map(str, live)), head)
    # the same layout where tail[0] is loaded after the call: it stays live across it
    live, where = at_call("tail_read_after_output", "bpf_ringbuf_output")
    assert {where[2] // 8, where[2] // 8 + 1} <= live, (sorted(map(str, live)), where[2])
    live, where = at_call("uninit_destination_ok", "bpf_probe_read_kernel")
    first = where[1] // 8
    # tail[1] (what the two paths stored) is dead at the call; head and tail[2], read after it,
    # stay live (the call's writes kill nothing: the analysis stays on the safe side there)
    assert first + 2 not in live and first + 1 not in live, (sorted(map(str, live)), first)
    assert {first, first + 3} <= live, (sorted(map(str, live)), first)


SIZED_KFUNC_FIXTURE = FIXTURES / "prune__sized_kfunc_reads.bpf.c"


def test_a_kfunc_reads_the_stack_bytes_its_mem_sz_pair_says(tmp_path):
    # check_kfunc_mem_size_reg(): bpf_copy_from_user_str(ev.name, 8, ...) is given 8 bytes; the
    # parameter names saying so (dst, dst__sz) come from the kernel's definition in the
    # generated table, not from the program's extern, whose BTF names no parameter
    from bpf_lsp.frontend.objfile import KfuncRef
    from bpf_lsp.verifier import kfuncs as K
    from bpf_lsp.verifier.liveness import Dataflow, Relevance, _stack_pointers
    assert K.kfunc_sized_args("bpf_copy_from_user_str") == ((0, 1),)
    assert K.kfunc_sized_args("scx_bpf_error_bstr___compat") == ((1, 2),)
    assert K.kfunc_param_names("bpf_obj_new_impl") == ("local_type_id__k", "meta__ign")
    programs = _programs(SIZED_KFUNC_FIXTURE, tmp_path)

    def at_call(name):
        prog = programs[name]
        call = next(i for i, m in prog.meanings.items() if isinstance(m, KfuncRef))
        where = _stack_pointers(prog, Dataflow(prog).succ)[call]
        return Relevance.of(prog).at(call)[2], where[1] // 8

    live, name = at_call("name_only_ok")
    assert name in live and name + 1 not in live, (sorted(map(str, live)), name)
    # tail[0] is read back after the call: it stays live across it
    live, name = at_call("tail_read_after_copy")
    assert {name, name + 1} <= live, (sorted(map(str, live)), name)


CALLEE_FIXTURE = FIXTURES / "prune__callee_reads.bpf.c"


def test_a_callee_keeps_alive_only_the_caller_slots_it_may_still_read(tmp_path, monkeypatch):
    # read_early() reads p->seed before its branch and never p->t: at the branch's join the
    # caller's p.t (a table on one path, NULL on the other) is dead, and the paths merge;
    # read_late() reads p->t after its join, so there it stays live
    from bpf_lsp.frontend.objfile import SubprogRef
    from bpf_lsp.verifier import verify_program
    from bpf_lsp.verifier.liveness import Dataflow, Relevance
    programs = _programs(CALLEE_FIXTURE, tmp_path)

    def summary(name):
        prog = programs[name]
        callee = next(m.target for m in prog.meanings.values() if isinstance(m, SubprogRef))
        fn = prog.function_at(callee)
        reads = Dataflow(prog).callee_reads
        return [reads[i] for i in range(fn.start, fn.end) if i in reads]

    early, late = summary("early_read_ok"), summary("late_read_rejects")
    assert early[0] == {(1, 0, 8)} and early[-1] == frozenset()   # seed, then nothing
    # p->t until its load, and what the pointer loaded from there reaches
    assert late[0] == {(1, 8, 16), ("loaded", 1)} and late[-1] == frozenset(), late

    merged = verify_program(programs["early_read_ok"]).visited
    # the same walk with the whole caller's frame live while the callee runs, as before
    monkeypatch.setattr(Relevance, "caller_slots", lambda self, st, d, idx: self.at_call(st.frames[d + 1].callsite)[2])
    assert verify_program(programs["early_read_ok"]).visited > merged
    late_result = verify_program(programs["late_read_rejects"])
    assert [f.code for f in late_result.findings if f.severity == "error"] == ["invalid-deref"]


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


PER_STATE_FIXTURE = FIXTURES / "prune__per_state.bpf.c"


@pytest.fixture(scope="module")
def per_state_programs(tmp_path_factory):
    return _programs(PER_STATE_FIXTURE, tmp_path_factory.mktemp("per_state"))


def test_precision_found_per_explored_state_verifies_a_loop_nest_the_kernel_does(per_state_programs):
    # the kernel: ~19k instructions (its first path leaves both loops at once; every later one
    # prunes against states that needed none of the loop-carried values). With precision only
    # from the static analysis, the walk ran out of 1M instructions here.
    from bpf_lsp.verifier import verify_program
    result = verify_program(per_state_programs["find_empty"], budget=100_000)
    assert not result.incomplete, result.visited
    assert not [f for f in result.findings if f.severity == "error"], result.findings
    assert result.visited < 50_000, result.visited


def test_calls_need_exactly_only_the_arguments_whose_value_the_kernel_checks(per_state_programs):
    # bpf_ringbuf_reserve(map, size, flags): the size (ARG_CONST_ALLOC_SIZE_OR_ZERO) decides the
    # record's bounds; the flags (ARG_ANYTHING) decide nothing the verifier checks
    from bpf_lsp.frontend.objfile import HelperRef
    from bpf_lsp.verifier.liveness import call_arguments, precise_arguments
    prog = per_state_programs["reserve_size_ok"]
    args = call_arguments(prog)
    precise = precise_arguments(prog, args)
    reserve = next(i for i, m in prog.meanings.items() if isinstance(m, HelperRef) and m.name == "bpf_ringbuf_reserve")
    assert args[reserve] == {1, 2, 3}
    assert precise[reserve] == {1, 2}


def test_without_the_walks_own_precision_the_loop_nest_runs_out(per_state_programs):
    # the same program with the static precision alone: every loop-carried value stays precise
    from bpf_lsp.verifier import verify_program
    result = verify_program(per_state_programs["find_empty"], budget=100_000, per_state=False)
    assert result.incomplete and result.visited >= 100_000


def test_a_struct_ops_return_value_is_precise_only_where_the_kernel_checks_it(tmp_path):
    # check_return_code(): of struct_ops members, only one returning a pointer (a qdisc's
    # .dequeue: its skb or NULL) has its R0 checked, and marked precise; tcp_congestion_ops'
    # u32 ssthresh is not, so two states differing only in what they will return are one
    from bpf_lsp.verifier.liveness import Dataflow
    tcp = _programs(FIXTURES / "structops__tcp_cc_ownership.bpf.c", tmp_path)["cc_undo_ok"]
    qdisc_obj = clang_object(FIXTURES / "qdisc" / "design__fifo_ok.bpf.c", tmp_path,
                             [f"-I{FIXTURES / 'include'}", f"-I{FIXTURES / 'qdisc' / 'include'}"])
    from bpf_lsp.frontend.objfile import load_object
    dequeue = next(p for p in load_object(qdisc_obj.read_bytes(), str(qdisc_obj)).programs if p.name == "fifo_dequeue")
    for prog, precise in ((tcp, False), (dequeue, True)):
        sets = Dataflow(prog).precise(frozenset())
        exits = [i.idx for i in prog.insns if i.is_exit]
        assert exits, prog.name
        assert all((0 in sets.get(idx, ())) == precise for idx in exits), (prog.name, precise)


def test_where_the_last_comparison_failed_is_checked_first_without_changing_any_answer():
    # a loop's states at a prune point differ where the last one did (its counter): the
    # comparison looks there first, and remembers where it fails; a stale place changes nothing
    from bpf_lsp.verifier.domain import MISC, UNINIT, Frame, State, scalar_const, scalar_range
    from bpf_lsp.verifier.liveness import EXACT
    from bpf_lsp.verifier.pruning import values_subsume

    def state(counter, other, slot):
        regs = [UNINIT] * 11
        regs[6], regs[7] = counter, other
        return State([Frame(regs, {-1: slot})])
    old = state(scalar_const(1), scalar_range(0, 9), scalar_const(5))
    here = EXACT.at(0)
    witness = [None]
    assert not values_subsume(old, state(scalar_const(2), scalar_range(0, 9), scalar_const(5)), here, EXACT,
                              witness=witness)
    assert witness == [(0, True, 6)]
    # the remembered register differs again: the same answer
    assert not values_subsume(old, state(scalar_const(3), scalar_range(0, 9), scalar_const(5)), here, EXACT,
                              witness=witness)
    # now only the slot differs: found there, and remembered
    assert not values_subsume(old, state(scalar_const(1), scalar_range(0, 9), MISC), here, EXACT, witness=witness)
    assert witness == [(0, False, -1)]
    # a covered state passes whatever is remembered
    for stale in ([(0, True, 6)], [(0, False, -1)], [(0, True, 7)], [None]):
        assert values_subsume(old, state(scalar_const(1), scalar_range(2, 3), scalar_const(5)), here, EXACT,
                              witness=stale)


MAY_GOTO_FIXTURE = FIXTURES / "prune__may_goto_widening.bpf.c"


@pytest.fixture(scope="module")
def may_goto_programs(tmp_path_factory):
    return _programs(MAY_GOTO_FIXTURE, tmp_path_factory.mktemp("may_goto"))


def test_a_may_goto_loop_converges_by_forgetting_what_no_decision_needed(may_goto_programs, monkeypatch):
    # the kernel: 2088 instructions. The walk keeps the heap index exact (it decides
    # `next == ind`) and forgets the children; without the widening every path down the tree
    # is a different state
    from bpf_lsp.verifier import interpreter, verify_program
    prog = may_goto_programs["heap_walk"]
    result = verify_program(prog, budget=100_000)
    assert not result.incomplete and not result.findings, result.findings
    assert result.visited < 10_000, result.visited
    monkeypatch.setattr(interpreter.Interpreter, "_widen_imprecise", lambda self, prev, body: None)
    assert verify_program(prog, budget=100_000).incomplete


def _forgetting_everything(monkeypatch) -> list:
    """Make the widening forget every loop-carried number (as if our precision marks missed
    what the kernel's hold); returns the list each walk's (widened, error codes) goes to."""
    from bpf_lsp.verifier import interpreter, precision
    monkeypatch.setattr(precision, "decided", lambda value, seq: False)
    monkeypatch.setattr(precision, "read_since", lambda value, seq: False)
    walks = []
    run = interpreter.Interpreter.run

    def spy(self):
        result = run(self)
        walks.append((self.widened, sorted({f.code for f in result.findings})))
        return result
    monkeypatch.setattr(interpreter.Interpreter, "run", spy)
    return walks


def test_an_error_found_only_after_widening_is_not_reported_if_the_exact_walk_disagrees(may_goto_programs,
                                                                                          monkeypatch):
    # a count the kernel keeps precise (the first path leaves the loop and indexes with it)
    # but a widening forgot: the index is unbounded on the widened walk only
    from bpf_lsp.verifier import verify_program
    walks = _forgetting_everything(monkeypatch)
    result = verify_program(may_goto_programs["count_indexes"], budget=100_000)
    assert walks == [(True, ["map-value-out-of-bounds"]), (False, [])]
    assert not result.incomplete and not result.findings, result.findings


def test_an_error_the_exact_walk_cannot_confirm_in_its_budget_is_a_warning(may_goto_programs, monkeypatch):
    from bpf_lsp.diagnostics.render import render
    from bpf_lsp.diagnostics.sources import ProgramSources, SourceFiles, object_variables
    from bpf_lsp.verifier import verify_program
    walks = _forgetting_everything(monkeypatch)
    prog = may_goto_programs["count_indexes"]
    result = verify_program(prog, budget=60)
    assert walks[0] == (True, ["map-value-out-of-bounds"]) and walks[1][0] is False
    assert result.incomplete
    (stopped,) = [f for f in result.findings if f.code == "analysis-incomplete"]
    assert stopped.arg("budget") == 60 and stopped.arg("detail") == "60 instructions"   # both walks count
    (oob,) = [f for f in result.findings if f.code == "map-value-out-of-bounds"]
    assert oob.severity == "warning"
    shown = render(oob, ProgramSources(prog, SourceFiles({}), object_variables(prog.obj)), prog.name)
    assert (shown.severity, shown.span.line) == ("warning", 61)
    assert "as the kernel's widening does" in shown.message and "cannot confirm" in shown.message
