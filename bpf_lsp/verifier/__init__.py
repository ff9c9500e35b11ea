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

__all__ = ["Finding", "VerifyResult", "verify_program", "verify_object", "environment_for"]


def environment_for(prog: Program, facts: KernelFacts, budget: int, records: RecordBuilder | None = None) -> Environment:
    records = records or RecordBuilder(prog.obj.btf, facts.struct_names)
    ctx_args: list[tuple[str, str]] = []
    if prog.prog_type == "tracing" and prog.section.startswith(("tp_btf/", "?tp_btf/")):
        ctx_args = list(facts.tracepoints.get(prog.attach_target, ()))
    return Environment(records=records, ctx_args=ctx_args, budget=budget, rcu_fields=facts.rcu_fields)


def verify_program(prog: Program, budget: int = 1_000_000, facts: KernelFacts | None = None,
                   records: RecordBuilder | None = None) -> VerifyResult:
    facts = facts if facts is not None else kernel_facts()
    return Interpreter(prog, environment_for(prog, facts, budget, records)).run()


def verify_object(obj: BpfObject, budget: int = 1_000_000) -> dict[str, VerifyResult]:
    facts = kernel_facts()
    records = RecordBuilder(obj.btf, facts.struct_names)
    return {p.name: verify_program(p, budget, facts, records) for p in obj.programs}
