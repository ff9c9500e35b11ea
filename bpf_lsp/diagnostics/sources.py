"""What the diagnostics layer knows about a program's source: lines, columns, variable names.

Joins the object's line info (instruction -> file:line:col) and DWARF variable locations
(instruction range -> register/stack slot) with the source text, so findings can be placed on
expressions and speak of `e`, not `R6`.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..frontend.dwarf import DwarfError, VarLocation, variable_locations
from ..frontend.objfile import BpfObject, Program
from ..text import split_lines
from .model import Span

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# BPF_LSP_AST_RANGES=0 turns the libclang ranges off (the lexical heuristic only)
AST_RANGES = os.environ.get("BPF_LSP_AST_RANGES", "1") != "0"


class SourceFiles:
    """Source text by path: the editor buffer for the main file, the disk for the rest.

    With `units` (the analyzer's `ranges.TranslationUnits`) and `parse_args` (a translation unit's
    path -> the flags its compile used, or None when unknown), `ast(path)` parses a file with
    libclang, lazily (only when a finding needs a range in it), for ranges that cover whole
    expressions. Without them only the lexical heuristic below is used.
    """

    def __init__(self, overrides: dict[str, str] | None = None, units=None,
                 parse_args: Callable[[str], tuple[str, ...] | None] | None = None):
        self._text: dict[str, list[str] | None] = {}
        self._raw: dict[str, str | None] = {}
        self._ast: dict[str, object] = {}
        self._main: list[str] = []
        self.units = units
        self.parse_args = parse_args
        for path, text in (overrides or {}).items():
            key = os.path.abspath(path)
            self._text[key] = split_lines(text)
            self._raw[key] = text
            self._main.append(key)

    @property
    def main_files(self) -> list[str]:
        """The files given as text (the program's own sources, as the editor holds them)."""
        return list(self._main)

    def text(self, path: str) -> str | None:
        key = os.path.abspath(path)
        if key not in self._raw:
            try:
                with open(key, encoding="utf-8", errors="replace") as f:
                    self._raw[key] = f.read()
            except OSError:
                self._raw[key] = None
        return self._raw[key]

    def lines(self, path: str) -> list[str] | None:
        key = os.path.abspath(path)
        if key not in self._text:
            text = self.text(key)
            self._text[key] = split_lines(text) if text is not None else None
        return self._text[key]

    def ast(self, path: str):
        """The libclang view of a file (`file_ast.FileAst`), or None: no units or flags, no libclang,
        a failed parse."""
        if self.units is None or self.parse_args is None or not AST_RANGES:
            return None
        key = os.path.abspath(path)
        if key not in self._ast:
            self._ast[key] = None
            text = self.text(key)
            main = next((m for m in self._main if m != key and m.endswith(".c")), None) \
                if not key.endswith(".c") else None
            args = self.parse_args(main or key)
            if text is not None and args is not None:
                self._ast[key] = self.units.file_ast(key, text, args, main, self.text(main) if main else None)
        return self._ast[key]

    def release_asts(self) -> None:
        """Let go of the libclang views (the TU cache keeps what it keeps); `ast()` finds them again."""
        self._ast.clear()

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
        r = self._ast_range(p.file, p.line, p.col, whole_statement)
        if r is not None:
            return Span(p.file, *r)
        text = self.files.line(p.file, p.line)
        if whole_statement or not text:
            c0, c1 = statement_span(text) if text else (max(p.col, 1), max(p.col, 1) + 1)
        else:
            c0, c1 = expression_span(text, p.col)
        return Span(p.file, p.line, c0, p.line, c1)

    def _ast_range(self, file: str, line: int, col: int, statement: bool):
        try:
            ast = self.files.ast(file)
            if ast is None:
                return None
            return ast.statement(line, col) if statement else ast.expression(line, col)
        except Exception:  # noqa: BLE001 - the lexical heuristic is always there
            return None

    def statement_span(self, file: str, line: int, col: int = 0) -> Span:
        """The statement at a column (with its `;`), or the one a line starts (a `return` first)."""
        r = self._ast_range(file, line, col, True)
        if r is not None:
            return Span(file, *r)
        text = self.files.line(file, line)
        c0, c1 = expression_span(text, col) if col > 0 and text[_byte_col_to_index(text, col):].startswith(
            "return") else statement_span(text)
        return Span(file, line, c0, line, c1)

    def statement_info(self, file: str, line: int, col: int = 0):
        """`file_ast.StatementInfo` for the statement at a place, or None without libclang."""
        try:
            ast = self.files.ast(file)
            return ast.statement_info(line, col) if ast is not None else None
        except Exception:  # noqa: BLE001
            return None

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

    def declared_variable(self, name: str, file: str, line: int) -> VarLocation | None:
        """The DWARF variable called `name` declared closest above `line` in `file` (its scope)."""
        best = None
        for v in self.variables:
            if v.name != name or v.decl_line > line:
                continue
            if v.decl_file and os.path.basename(v.decl_file) != os.path.basename(file):
                continue
            if best is None or v.decl_line > best.decl_line:
                best = v
        return best

    def base_variable(self, span: Span) -> VarLocation | None:
        """The variable an access at `span` goes through: `e` in `e->data = 2`, `*p = 1`, `a[i]`.

        For when DWARF has no location for it at the instruction (optimised code often keeps a
        pointer in a callee-saved register its location list does not cover)."""
        text = self.files.line(span.file, span.line)
        i = _byte_col_to_index(text, span.column)
        m = re.match(r"\(*\s*\*?\s*\(*\s*([A-Za-z_]\w*)\s*(->|\[|\.|\)|=|;|,|$)", text[i:])
        if m is None:
            return None
        return self.declared_variable(m.group(1), span.file, span.line)

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


_PARAM_NAME = re.compile(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*$")


def parameter_names(src: "ProgramSources") -> list[str]:
    """The program's parameters as written in its header: `BPF_PROG(name, struct sk_buff *skb, ...)`
    gives ["skb", ...]; a plain `int f(struct __sk_buff *skb)` gives ["skb"]."""
    place = src.place(src.prog.main.start)
    if place is None:
        return []
    lines = src.files.lines(place.file) or []
    text = " ".join(lines[place.line - 1: place.line + 5])
    m = re.search(rf"\b(BPF_PROG\s*\(\s*{re.escape(src.prog.name)}\s*,|{re.escape(src.prog.name)}\s*\()", text)
    if m is None:
        return []
    depth, j, start = 1, m.end(), m.end()
    while j < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[j], 0)
        j += 1
    names = []
    for part in text[start:j - 1].split(","):
        pm = _PARAM_NAME.search(part.strip())
        names.append(pm.group(1) if pm else "")
    return names

