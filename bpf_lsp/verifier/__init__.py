"""The ownership verifier: BPF object in, findings and per-instruction states out.

Invariant: nothing here imports pygls, lsprotocol or clang; nothing here writes English
(messages live in `bpf_lsp.codes`).
"""
from __future__ import annotations

import time
from dataclasses import replace

from ..frontend.kconfig import kernel_kconfig
from ..frontend.kernel_btf import KernelFacts, kernel_facts
from ..frontend.objfile import BpfObject, Program
from .findings import Finding
from . import kfuncs as K
from .interpreter import Environment, Interpreter, VerifyResult
from .liveness import Relevance
from .records import RecordBuilder
from .struct_ops import rules_for

__all__ = ["Finding", "VerifyResult", "verify_program", "verify_object", "environment_for"]


def _proto_args(prog: Program) -> list[tuple[str, str]]:
    """Context slots of a struct_ops program: its member's parameters, pointers trusted."""
    btf = prog.obj.btf
    out: list[tuple[str, str]] = []
    if btf is None or prog.struct_ops is None or not prog.struct_ops.proto_id:
        return out
    try:
        for _name, ptype in btf[prog.struct_ops.proto_id].params or []:
            t = btf[btf.resolve(ptype)]
            if t.kind.name == "PTR":
                target = btf[btf.resolve(t.type_id)]
                out.append(("ptr", target.name if target.kind.name in ("STRUCT", "UNION") else ""))
            else:
                out.append(("scalar", ""))
    except Exception:  # noqa: BLE001 - malformed BTF: no argument types
        return []
    return out


# sections whose context is the attach target's arguments, and the kernel function it names
_TRAMPOLINE_PREFIXES = (("fentry.s/", ""), ("fentry/", ""), ("fexit.s/", ""), ("fexit/", ""),
                        ("fmod_ret.s/", ""), ("fmod_ret/", ""), ("lsm.s/", "bpf_lsm_"), ("lsm/", "bpf_lsm_"),
                        ("lsm_cgroup/", "bpf_lsm_"))


def _ctx_args_kinds(kinds) -> list[tuple[str, str]]:
    # btf_ctx_access(): a pointer to a struct is a BTF pointer; any other argument is a number
    return [("ptr", name) if kind == "ptr" else ("scalar", "") for kind, name, _size in kinds]


def _context(prog: Program, facts: KernelFacts) -> tuple[list[tuple[str, str]], str]:
    """The context's argument slots and, when they cannot be known, why."""
    section = prog.section.lstrip("?")
    if prog.prog_type == "unknown":
        # a section libbpf maps to no program type: user space sets one before loading
        return [], f"the context of section {section} (no program type libbpf knows)"
    if prog.prog_type == "tracing" and section.startswith("tp_btf/"):
        if prog.attach_target in facts.tracepoints or not facts.available:
            return list(facts.tracepoints.get(prog.attach_target, ())), ""
        return [], f"the arguments of {section} (no such tracepoint in this kernel's BTF)"
    for prefix, func_prefix in _TRAMPOLINE_PREFIXES:
        if section.startswith(prefix):
            target = func_prefix + section[len(prefix):]
            sig = facts.funcs.get(target)
            if sig is None:
                # often a placeholder that user space retargets before loading
                return [], f"the arguments of {section} ({target} is not in this kernel's BTF)"
            args = _ctx_args_kinds(sig[1])
            if prefix.startswith("fexit"):
                args += _ctx_args_kinds([sig[0]])    # the return value follows the arguments
            return args, ""
    if section.startswith(("iter/", "iter.s/")):
        return _iter_context(section.split("/", 1)[1], facts)
    return [], ""


def _iter_context(target: str, facts: KernelFacts) -> tuple[list[tuple[str, str]], str]:
    """An iterator program's context: its target function's arguments (`bpf_iter_task(meta, task)`,
    one u64 slot each, as btf_ctx_access() reads them), typed by the target's ctx_arg_info where
    it names them (the object, or NULL at the end of the walk; a map element's key and value
    buffers) and trusted struct pointers elsewhere (the meta)."""
    func = "bpf_iter_" + target
    sig, names = facts.funcs.get(func), facts.iter_args.get(func)
    info = K.kernel_table().get("iter_targets", {}).get(target)
    if sig is None or names is None or info is None:
        return [], f"the context of iter/{target} (no such iterator target in this kernel)"
    args = []
    for (kind, struct, _size), name in zip(sig[1], names):
        reg_type = set(info.get(name, ()))
        if not reg_type:
            args.append(("ptr", struct) if kind == "ptr" and struct else ("unknown", ""))
        elif "PTR_TO_BUF" in reg_type:
            args.append(("rdonly_buf_or_null" if "MEM_RDONLY" in reg_type else "buf_or_null", ""))
        elif "PTR_TO_BTF_ID_OR_NULL" in reg_type and struct:
            args.append(("trusted_or_null" if "PTR_TRUSTED" in reg_type else "ptr_or_null", struct))
        else:
            args.append(("unknown", ""))
    return args, ""


def environment_for(prog: Program, facts: KernelFacts, budget: int, records: RecordBuilder | None = None,
                    deadline: float = 0.0, kconfig: dict[str, int] | None = None) -> Environment:
    records = records or RecordBuilder(prog.obj.btf, facts.struct_names)
    rules = None
    if prog.struct_ops is not None:
        ctx_args, ctx_unknown = _proto_args(prog), ""
        rules = rules_for(prog.struct_ops.type_name, prog.struct_ops.member, facts.struct_ops_refs)
    else:
        ctx_args, ctx_unknown = _context(prog, facts)
    return Environment(records=records, ctx_args=ctx_args, budget=budget, rcu_fields=facts.rcu_fields,
                       ref_args=rules.ref_args if rules else (), member_rules=rules, kernel_funcs=facts.funcs,
                       kernel_uninit_args=facts.uninit_args,
                       ctx_unknown=ctx_unknown, deadline=deadline,
                       kconfig=kconfig if kconfig is not None else kernel_kconfig())


def verify_program(prog: Program, budget: int = 1_000_000, facts: KernelFacts | None = None,
                   records: RecordBuilder | None = None, seconds: float = 0.0,
                   kconfig: dict[str, int] | None = None, per_state: bool = True) -> VerifyResult:
    """Verify one program; `seconds` > 0 bounds the wall time (the result is then `incomplete`).

    `per_state=False` prunes with the static precision only (precision.py's walk off): for
    benchmarks and tests that compare the two.

    `facts` (kernel BTF) and `kconfig` (`__kconfig` values) default to the running kernel's.
    """
    facts = facts if facts is not None else kernel_facts()
    deadline = time.monotonic() + seconds if seconds > 0 else 0.0
    env = environment_for(prog, facts, budget, records, deadline, kconfig)
    # Precision, like the kernel's, counts only the branches a value decided; which those are
    # shows only while walking (Interpreter.count_decided). A walk whose earlier prunes a newly
    # counted branch undoes is made again from the start, counting it.
    strict = Relevance.of(prog)
    relevance = base = strict.with_decided(prog, frozenset())
    visited = 0
    widen_loops, widened_errors = True, []
    while True:
        interp = Interpreter(prog, env, relevance, strict, base if per_state else None, widen_loops)
        result = interp.run()
        visited += result.visited
        if interp.restart_with is not None and not result.incomplete and visited < budget:
            relevance = relevance.with_decided(prog, interp.restart_with)
        elif interp.widened and any(f.severity == "error" for f in result.findings) and visited < budget:
            # a may_goto loop's widening, made with our precision marks, may forget a number the
            # kernel's marks keep: an error found so stands only if the walk finds it again
            # without widening; if that walk cannot finish, it is a warning
            widen_loops = False
            widened_errors = [f for f in result.findings if f.severity == "error"]
        else:
            result.visited = visited
            if result.incomplete and widened_errors:
                result.findings = sorted([*result.findings, *(_unconfirmed(f) for f in widened_errors)],
                                         key=lambda f: (f.insn, f.code))
            return result
        env.budget, env.spent = budget - visited, visited


def _unconfirmed(f: Finding) -> Finding:
    """An error the widened walk found and the exact walk ran out of budget before confirming."""
    return replace(f, args=tuple(sorted((*f.args, ("widened", True)))))


def verify_object(obj: BpfObject, budget: int = 1_000_000) -> dict[str, VerifyResult]:
    facts = kernel_facts()
    records = RecordBuilder(obj.btf, facts.struct_names)
    return {p.name: verify_program(p, budget, facts, records) for p in obj.programs}
