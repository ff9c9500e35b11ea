"""What the verifier reports: codes with structured arguments, never English."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..codes import CODES, kernel_message


@dataclass(frozen=True)
class Finding:
    code: str
    insn: int                                   # linked instruction index
    args: tuple[tuple[str, object], ...] = ()   # structured arguments (sorted by name)
    related: tuple[tuple[str, int], ...] = ()   # (role, instruction): "acquired", "unlock", "insert", ...

    @property
    def severity(self) -> str:
        # on a path that exists only for some values of a global set at load time, an error of
        # the kernel's is only a possibility to us
        # so is one found only after a may_goto loop's widening forgot numbers (verify_program)
        if (self.arg("load_time") or self.arg("widened")) and CODES[self.code].severity == "error":
            return "warning"
        return CODES[self.code].severity

    def arg(self, name: str, default=None):
        for k, v in self.args:
            if k == name:
                return v
        return default

    @property
    def kernel_message(self) -> str:
        return kernel_message(self.code, dict(self.args))

    def related_insn(self, role: str) -> int | None:
        for r, i in self.related:
            if r == role:
                return i
        return None


def finding(code: str, insn: int, related: dict[str, int] | None = None, **args) -> Finding:
    rel = tuple(sorted((k, v) for k, v in (related or {}).items() if v is not None and v >= 0))
    return Finding(code, insn, tuple(sorted(args.items())), rel)


class ValueSummary(NamedTuple):
    """What one register or stack slot held at an instruction, for hovers (a tuple: a path
    records several per instruction, into a set)."""
    loc: str                    # "r6", "fp-8"
    frame: int
    kind: str                   # "owning", "non-owning", "referenced", "trusted", "untrusted", "released", "null", ...
    type_name: str
    maybe_null: bool
    ref_id: int
    acquired_at: int
    detail: str = ""            # e.g. the insert instruction for non-owning


@dataclass
class InsnStates:
    """The join of states seen at one instruction: a set of value summaries per path, plus locks."""
    paths: int = 0
    values: set = field(default_factory=set)     # {(path_class, ValueSummary)}
    locks: set = field(default_factory=set)      # {(lock holder description, at)}
    unchanged: int = 0       # paths in a row that added nothing (recording stops after a few)
