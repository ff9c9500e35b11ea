"""What the diagnostics layer knows about a program's source: lines, columns, variable names.

Joins the object's line info (instruction -> file:line:col) and DWARF variable locations
(instruction range -> register/stack slot) with the source text, so findings can be placed on
expressions and speak of `e`, not `R6`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property

from ..frontend.dwarf import DwarfError, VarLocation, variable_locations
from ..frontend.objfile import BpfObject, Program
from .model import Span

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SourceFiles:
    """Source text by path: the editor buffer for the main file, the disk for the rest."""

    def __init__(self, overrides: dict[str, str] | None = None):
        self._text: dict[str, list[str] | None] = {}
        for path, text in (overrides or {}).items():
            self._text[os.path.abspath(path)] = text.splitlines()

    def lines(self, path: str) -> list[str] | None:
        key = os.path.abspath(path)
        if key not in self._text:
            try:
                with open(key, encoding="utf-8", errors="replace") as f:
                    self._text[key] = f.read().splitlines()
            except OSError:
                self._text[key] = None
        return self._text[key]

    def line(self, path: str, number: int) -> str:
        lines = self.lines(path)
        if lines is None or not 1 <= number <= len(lines):
            return ""
        return lines[number - 1]


def _byte_col_to_index(text: str, col: int) -> int:
    """1-based byte column -> index into the str."""
    b = text.encode("utf-8")[: max(col - 1, 0)]
    return len(b.decode("utf-8", errors="ignore"))


def _index_to_byte_col(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8")) + 1


def expression_span(text: str, col: int) -> tuple[int, int]:
    """Widen a line-info column to the whole expression there, in 1-based byte columns.

    The compiler's column points at the operator or callee; the user thinks in whole
    expressions: a call with its arguments, a member chain `e->data`, a `return ...;`.
    """
    if not text.strip():
        return 1, 1
    i = _byte_col_to_index(text, col) if col > 0 else len(text) - len(text.lstrip())
    i = min(max(i, 0), max(len(text) - 1, 0))
    stripped = text[i:]
    if stripped.startswith("return"):
        end = text.find(";", i)
        return _index_to_byte_col(text, i), _index_to_byte_col(text, end + 1 if end >= 0 else len(text.rstrip()))
    # on an assignment operator: the target is the expression to its left
    if text[i] == "=" or text[i:i + 2] in ("+=", "-=", "|=", "&="):
        while i > 0 and text[i - 1] in " \t+-|&":
            i -= 1
        i = max(i - 1, 0)
    # walk left over a member chain / identifier
    start = i
    while start > 0:
        if text[start - 1].isalnum() or text[start - 1] == "_":
            start -= 1
        elif text[start - 2:start] == "->" and start >= 2:
            start -= 2
        elif text[start - 1] == "." or text[start - 1] == "&" or text[start - 1] == "*":
            start -= 1
        else:
            break
    end = i
    # walk right over identifiers, member accesses and balanced call parentheses
    while end < len(text):
        c = text[end]
        if c.isalnum() or c == "_" or c == ".":
            end += 1
        elif text[end:end + 2] == "->":
            end += 2
        elif c == "(":
            depth = 0
            while end < len(text):
                if text[end] == "(":
                    depth += 1
                elif text[end] == ")":
                    depth -= 1
                    if depth == 0:
                        end += 1
                        break
                end += 1
            break
        else:
            break
    if end <= start:
        end = start + 1
    # an assignment target: include "= value" so the whole store is covered
    rest = text[end:]
    m = re.match(r"\s*(=|\+=|-=|\|=|&=)\s*[^;]*", rest)
    if m and not rest.lstrip().startswith("=="):
        end += m.end()
    return _index_to_byte_col(text, start), _index_to_byte_col(text, end)


def statement_span(text: str) -> tuple[int, int]:
    """The statement on a line, without indentation and trailing comments."""
    code = text.split("//")[0].split("/*")[0].rstrip()
    start = len(code) - len(code.lstrip())
    return _index_to_byte_col(text, start), _index_to_byte_col(text, max(len(code), start + 1))


@dataclass(frozen=True)
class Place:
    file: str
    line: int
    col: int


class ProgramSources:
    """Line and variable lookups for one program of an object."""

    def __init__(self, prog: Program, files: SourceFiles, variables: list[VarLocation]):
        self.prog = prog
        self.files = files
        self.variables = variables

    def place(self, insn: int) -> Place | None:
        li = self.prog.exact_line_at(insn) or self.prog.line_at(insn)
        if li is None:
            return None
        return Place(li.file, li.line, li.col)

    def span(self, insn: int, whole_statement: bool = False) -> Span | None:
        p = self.place(insn)
        if p is None:
            return None
        text = self.files.line(p.file, p.line)
        if whole_statement or not text:
            c0, c1 = statement_span(text) if text else (max(p.col, 1), max(p.col, 1) + 1)
        else:
            c0, c1 = expression_span(text, p.col)
        return Span(p.file, p.line, c0, p.line, c1)

    def call_text(self, insn: int, name: str) -> str:
        """The source spelling of a call at an instruction, e.g. `bpf_spin_unlock(&glock)`."""
        p = self.place(insn)
        if p is None:
            return f"{name}()"
        text = self.files.line(p.file, p.line)
        m = re.search(rf"\b{re.escape(name)}\s*\(", text)
        if m is None:
            return f"{name}()"
        depth, j = 0, m.end() - 1
        while j < len(text):
            if text[j] == "(":
                depth += 1
            elif text[j] == ")":
                depth -= 1
                if depth == 0:
                    return text[m.start():j + 1]
            j += 1
        return f"{name}()"

    def variable(self, insn: int, reg: int | None = None, stack_off: int | None = None) -> VarLocation | None:
        """The source variable living in a register (or stack slot) at an instruction."""
        if not 0 <= insn < len(self.prog.origins):
            return None
        origin = self.prog.origins[insn]
        for v in self.variables:
            if v.section != origin.section or not v.lo <= origin.index < v.hi:
                continue
            if reg is not None and v.reg == reg:
                return v
            if stack_off is not None and v.stack_off == stack_off:
                return v
        return None

    def variables_at(self, insn: int) -> list[VarLocation]:
        if not 0 <= insn < len(self.prog.origins):
            return []
        origin = self.prog.origins[insn]
        return [v for v in self.variables if v.section == origin.section and v.lo <= origin.index < v.hi]

    def acquired_variable(self, insn: int) -> str | None:
        """The variable that receives the result of the call at `insn` (r0, or a register it moves to)."""
        reg = 0
        for step in range(insn + 1, min(insn + 8, len(self.prog.origins))):
            v = self.variable(step, reg=reg)
            if v is not None:
                return v.name
            ins = self.prog.insn_at(step)
            if ins is not None and ins.cls == 7 and ins.op == 0xB0 and ins.uses_reg_src and ins.src == reg:
                reg = ins.dst
        # the statement itself may name it: "struct elem *e = bpf_obj_new(...)" / "e = ..."
        p = self.place(insn)
        if p is not None:
            m = re.search(r"([A-Za-z_]\w*)\s*=\s*[^=]", self.files.line(p.file, p.line))
            if m:
                return m.group(1)
        return None


def object_variables(obj: BpfObject) -> list[VarLocation]:
    try:
        return variable_locations(obj.elf)
    except (DwarfError, Exception):  # noqa: BLE001 - names are a nicety; never fail analysis for them
        return []
