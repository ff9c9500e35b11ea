"""The ownership verifier: BPF object in, findings and per-instruction states out.

Invariant: nothing here imports pygls, lsprotocol or clang; nothing here writes English
(messages live in `bpf_lsp.codes`).
"""
from __future__ import annotations

from ..frontend.kernel_btf import KernelFacts, kernel_facts
from ..frontend.objfile import BpfObject, Program
from .findings import Finding
from .interpreter import Environment, Interpreter, VerifyResult
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


def environment_for(prog: Program, facts: KernelFacts, budget: int, records: RecordBuilder | None = None) -> Environment:
    records = records or RecordBuilder(prog.obj.btf, facts.struct_names)
    ctx_args: list[tuple[str, str]] = []
    rules = None
    if prog.prog_type == "tracing" and prog.section.startswith(("tp_btf/", "?tp_btf/")):
        ctx_args = list(facts.tracepoints.get(prog.attach_target, ()))
    elif prog.struct_ops is not None:
        ctx_args = _proto_args(prog)
        rules = rules_for(prog.struct_ops.type_name, prog.struct_ops.member, facts.struct_ops_refs)
    return Environment(records=records, ctx_args=ctx_args, budget=budget, rcu_fields=facts.rcu_fields,
                       ref_args=rules.ref_args if rules else (), member_rules=rules)


def verify_program(prog: Program, budget: int = 1_000_000, facts: KernelFacts | None = None,
                   records: RecordBuilder | None = None) -> VerifyResult:
    facts = facts if facts is not None else kernel_facts()
    return Interpreter(prog, environment_for(prog, facts, budget, records)).run()


def verify_object(obj: BpfObject, budget: int = 1_000_000) -> dict[str, VerifyResult]:
    facts = kernel_facts()
    records = RecordBuilder(obj.btf, facts.struct_names)
    return {p.name: verify_program(p, budget, facts, records) for p in obj.programs}
