"""Whole-program rules for BPF exceptions and global functions, checked before any path is walked.

A main program names its exception callback with `__exception_cb(fn)` (the BTF decl tag
`exception_callback:fn`); the kernel finds it there (bpf_find_exception_callback_insn_off),
verifies it alone as an `int fn(u64 cookie)` global function that runs after `bpf_throw`, and
forbids calling it directly (check_max_stack_depth). Global functions must return a scalar
(btf_prepare_func_args).
"""
from __future__ import annotations

from ..frontend.btf import Btf, BtfError, Kind, Linkage
from ..frontend.objfile import FuncAddrRef, Function, KfuncRef, Program, SubprogRef
from .. import codes as C
from .findings import Finding, finding

TAG = "exception_callback:"


def exception_callback_names(btf: Btf | None, fn: Function) -> list[str]:
    if btf is None or not fn.btf_id:
        return []
    return [t[len(TAG):] for t in btf.decl_tags(fn.btf_id) if t.startswith(TAG)]


def returns_scalar(btf: Btf, fn: Function) -> bool:
    """An int or enum return type (void is not one: the kernel rejects a void global function)."""
    try:
        ret = btf.resolve(btf[btf[fn.btf_id].type_id].type_id)
        return ret != 0 and btf[ret].kind in (Kind.INT, Kind.ENUM, Kind.ENUM64)
    except (BtfError, KeyError, IndexError, AttributeError):
        return True     # malformed BTF: nothing to say


def load_time_findings(prog: Program, params_of) -> list[Finding]:
    """The findings that reject the whole program; `params_of(fn)` gives a global function's
    parameter kinds as the interpreter reads them from BTF."""
    btf = prog.obj.btf
    if btf is None:
        return []
    main = prog.functions[0]
    names = exception_callback_names(btf, main)
    if len(names) > 1:
        return [finding(C.EXCEPTION_CALLBACK, 0, variant="multiple", func=main.name)]
    cb = None
    if names:
        name = names[0]
        ids = [t for t in btf.find_by_name(name, Kind.FUNC)]
        if not ids:
            return [finding(C.EXCEPTION_CALLBACK, 0, variant="missing", func=name)]
        if ids[0].linkage != Linkage.GLOBAL:
            return [finding(C.EXCEPTION_CALLBACK, 0, variant="static", func=name)]
        cb = next((f for f in prog.functions[1:] if f.name == prog.exception_cb), None)
    if cb is not None:
        for insn in prog.insns:
            ref = prog.meanings.get(insn.idx) if insn.is_call else None
            if isinstance(ref, SubprogRef) and ref.target == cb.start:
                return [finding(C.EXCEPTION_CALLBACK, insn.idx, variant="direct_call", func=cb.name,
                                insn_idx=insn.idx)]
    throw = throw_in_callback(prog)
    if throw is not None:
        at, fn_index = throw
        return [finding(C.THROW_RESTRICTED, at, throw_insn=at, subprog=fn_index, where="inside a callback")]
    for fn in prog.functions[1:]:
        if fn.is_global and fn.btf_id and not returns_scalar(btf, fn):
            # the kernel says so where the program first calls it (checking the call's arguments)
            call = next((i.idx for i in prog.insns if i.is_call and isinstance(prog.meanings.get(i.idx), SubprogRef)
                         and prog.meanings[i.idx].target == fn.start), fn.start)
            return [finding(C.GLOBAL_FUNC_RETURN, call, func=fn.name)]
    if cb is not None:
        params = params_of(cb)
        if len(params) != 1 or params[0][0] != "scalar":
            return [finding(C.EXCEPTION_CALLBACK, cb.start, variant="signature", func=cb.name)]
    return []


def throw_in_callback(prog: Program) -> tuple[int, int] | None:
    """A bpf_throw reachable from a callback (check_max_stack_depth walks calls and callback
    references alike): any function whose address the program takes, and the exception callback.
    Static like the kernel's check, so it also covers callbacks we do not walk (timers)."""
    starts = {f.start: i for i, f in enumerate(prog.functions)}
    edges: dict[int, list[int]] = {}
    throws: dict[int, int] = {}
    callbacks: set[int] = set()
    for insn in prog.insns:
        fn = prog.function_at(insn.idx)
        if fn is None:
            continue
        m = prog.meanings.get(insn.idx)
        if isinstance(m, (SubprogRef, FuncAddrRef)) and m.target in starts:
            edges.setdefault(fn.start, []).append(m.target)
            if isinstance(m, FuncAddrRef):
                callbacks.add(m.target)
        elif isinstance(m, KfuncRef) and m.name == "bpf_throw":
            throws.setdefault(fn.start, insn.idx)
    callbacks |= {f.start for f in prog.functions[1:] if f.name == prog.exception_cb}
    seen: set[int] = set()
    todo = sorted(callbacks)
    while todo:
        start = todo.pop()
        if start in seen:
            continue
        seen.add(start)
        if start in throws:
            return throws[start], starts[start]
        todo.extend(edges.get(start, ()))
    return None
