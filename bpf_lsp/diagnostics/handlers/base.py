"""What a handler receives, and the handler interface."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from ...verifier.findings import Finding
from ..model import Fix, SourceDiagnostic
from ..sources import ProgramSources, parameter_names

GRAPH_NODE_TYPES = ("bpf_list_node", "bpf_rb_node")
NULL_READ = "it is read"    # the `null_source` of a maybe-NULL pointer read, not returned by a call


@dataclass(frozen=True)
class Context:
    """One finding being rendered: the finding, its program's sources, the rendered template
    arguments (`var`, `lock`, `release_call`, ...) and the diagnostic as far as it is built."""
    finding: Finding
    src: ProgramSources
    args: Mapping[str, str]
    diag: SourceDiagnostic

    def insn(self, role: str) -> int | None:
        i = self.finding.related_insn(role)
        return i if i is not None and i >= 0 else None

    def line_of(self, role: str) -> int | None:
        i = self.insn(role)
        p = self.src.place(i) if i is not None else None
        return p.line if p is not None and p.file == self.diag.span.file else None

    def reference_variable(self) -> str | None:
        """The variable that holds the finding's reference: the acquiring statement's target, or
        the struct_ops parameter the kernel passed it in."""
        f = self.finding
        acquired = self.insn("acquired")
        var = self.src.acquired_variable(acquired) if acquired is not None else None
        slot = f.arg("arg_slot")
        if isinstance(slot, int):
            params = parameter_names(self.src)
            var = params[slot] if slot < len(params) and params[slot] else var
        return var


class Handler:
    """The default: no related places beyond the generic ones, no fix."""
    codes: tuple[str, ...] = ()

    def related(self, ctx: Context) -> list[tuple[int | None, str, bool]]:
        """(instruction, message, whole statement?) for each related place."""
        return []

    def fix(self, ctx: Context) -> Fix | None:
        return None


# ---------------------------------------------------------------------------
# types of variables and structs, as the object's DWARF and BTF spell them

def var_type(src: ProgramSources, var: str, near: int | None) -> str:
    """The declared type of a variable, from DWARF ("struct bpf_list_node *")."""
    if near is not None and near >= 0:
        for step in range(near, min(near + 12, len(src.prog.origins))):
            for v in src.variables_at(step):
                if v.name == var:
                    return v.type_name
    for v in src.variables:
        if v.name == var:
            return v.type_name
    return ""


def struct_members(src: ProgramSources, struct: str) -> list[tuple[str, str]]:
    btf = src.prog.obj.btf
    if btf is None or not struct:
        return []
    t = btf.struct_by_name(struct)
    if t is None:
        return []
    return [(m.name, btf.type_name(m.type_id)) for m in t.members or ()]


def normal_type(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("const ", "").replace("volatile ", "")).replace(" *", "*").strip()
