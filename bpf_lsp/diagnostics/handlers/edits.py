"""Text edits in the file's own terms: statements found with the libclang AST when the file parsed
(`ranges.py`), else from the lines; the file's indentation (tabs or spaces); a statement inserted
before the body of a brace-less `if`/`else`/loop is braced together with it, so the edit never
changes which statements a condition guards. Positions: 1-based lines, 1-based byte columns.
"""
from __future__ import annotations

import re

from ..model import Fix, Span, TextEdit
from ..sources import ProgramSources

CONTROL = re.compile(r"\b(return|goto|break|continue)\b")


def indent_of(text: str) -> str:
    return text[: len(text) - len(text.lstrip())]


def indent_unit(lines: list[str]) -> str:
    for ln in lines:
        if ln.startswith("\t"):
            return "\t"
        if ln.startswith("    "):
            return "    "
    return "\t"


def code_part(text: str) -> str:
    return text.split("//")[0].rstrip()


def _prev_code_line(lines: list[str], line: int) -> str:
    for j in range(line - 2, -1, -1):
        s = code_part(lines[j]).strip()
        if s and not s.startswith(("/*", "*")):
            return s
    return ""


def _byte_slice(text: str, c0: int, c1: int) -> str:
    return text.encode("utf-8")[c0 - 1:c1 - 1].decode("utf-8", errors="replace")


def span_text(lines: list[str], span: Span) -> str:
    if span.line == span.end_line:
        return _byte_slice(lines[span.line - 1], span.column, span.end_column)
    parts = [lines[span.line - 1].encode("utf-8")[span.column - 1:].decode("utf-8", errors="replace")]
    parts += lines[span.line:span.end_line - 1]
    parts.append(_byte_slice(lines[span.end_line - 1], 1, span.end_column))
    return "\n".join(parts)


def function_lines(lines: list[str], line: int) -> list[str]:
    """The lines of the function around `line`: from its unindented header to its closing brace."""
    start = line
    while start > 1 and not (lines[start - 1][:1].isalpha() or lines[start - 1][:1] == "_"):
        start -= 1
    return lines[start - 1:function_end(lines, line)]


def words_in(lines: list[str]) -> set[str]:
    """Identifiers used in `lines`, leaving out member names after `.` and `->`."""
    return set(re.findall(r"(?<![.>\w])[A-Za-z_]\w*", "\n".join(code_part(ln) for ln in lines)))


def fresh_name(lines: list[str], base: str, line: int, src: ProgramSources | None = None) -> str:
    used = words_in(function_lines(lines, line))
    if src is not None:
        used |= {v.name for v in src.variables}
    if base not in used:
        return base
    for i in range(2, 100):
        if f"{base}{i}" not in used:
            return f"{base}{i}"
    return base + "_"


def _braceless(src: ProgramSources, span: Span, lines: list[str]) -> bool:
    """Is the statement at `span` the body of an if/else/loop written without braces?"""
    info = src.statement_info(span.file, span.line, span.column)
    if info is not None and info.range[:2] == (span.line, span.column):
        return info.braceless_body
    prev = _prev_code_line(lines, span.line)
    return bool(re.match(r"^(\}\s*)?(if|else|for|while)\b", prev)) and not prev.endswith(("{", ";", "}"))


def statement_span(src: ProgramSources, span: Span) -> Span:
    """The whole statement (with its `;`) that a diagnostic's span starts."""
    info = src.statement_info(span.file, span.line, span.column)
    if info is not None and info.range[:2] == (span.line, span.column):
        return Span(span.file, *info.range)
    return span


def insert_before(src: ProgramSources, span: Span, statements: list[str], title: str, code: str,
                  replacement: str | None = None) -> Fix | None:
    """Insert `statements` before the statement at `span` (optionally replacing it), keeping the
    control flow: a brace-less body is braced together with what is inserted."""
    lines = src.files.lines(span.file)
    if not lines or not 1 <= span.line <= len(lines) or not statements:
        return None
    text = lines[span.line - 1]
    indent = indent_of(text)
    unit = indent_unit(lines)
    stmt = statement_span(src, span)
    body = replacement if replacement is not None else span_text(lines, stmt)
    own_line = stmt.column == len(indent.encode("utf-8")) + 1
    whole = Span(stmt.file, stmt.line, stmt.column, stmt.end_line, stmt.end_column)
    if not own_line:
        # `if (x) return 1;` on one line: brace the body where it is
        if not _braceless(src, span, lines) and not re.match(r"^\s*(\}\s*)?(if\s*\(.*\)|else)\s", text):
            return None
        return Fix(title, (TextEdit(whole, "{ " + " ".join([*statements, body]) + " }"),), code)
    if _braceless(src, span, lines):
        inner = "".join(f"{indent}{s}\n" for s in [*statements, body])
        head = span.line - 1
        head_text = lines[head - 1] if head >= 1 else ""
        if head >= 1 and head_text.strip() and "//" not in head_text and "/*" not in head_text:
            # `if (c)\n\treturn 1;` -> `if (c) {\n\t...\n\treturn 1;\n}`: the brace goes on the if's line
            end = len(head_text.rstrip().encode("utf-8")) + 1
            new = " {\n" + inner + f"{indent_of(head_text)}}}"
            return Fix(title, (TextEdit(Span(span.file, head, end, stmt.end_line, stmt.end_column), new),), code)
        outer = indent[: -len(unit)] if indent.endswith(unit) else ""
        return Fix(title, (TextEdit(whole, "{\n" + inner + f"{outer}}}"),), code)
    if replacement is None:
        return Fix(title, (TextEdit(Span(span.file, span.line, 1, span.line, 1),
                                    "".join(f"{indent}{s}\n" for s in statements)),), code)
    return Fix(title, (TextEdit(whole, f"\n{indent}".join([*statements, replacement])),), code)


def statement_end_line(src: ProgramSources, file: str, line: int, col: int, lines: list[str]) -> int | None:
    info = src.statement_info(file, line, col)
    if info is not None:
        if info.kind in ("IF_STMT", "WHILE_STMT", "FOR_STMT", "SWITCH_STMT", "DO_STMT") or info.braceless_body:
            return None     # the call sits in a condition or a brace-less body: no place for a statement
        return info.range[2]
    end = line
    while end <= len(lines) and not code_part(lines[end - 1]).endswith(";"):
        end += 1
    return end if end <= len(lines) else None


def insert_after_statement(src: ProgramSources, line: int, file: str, statement_lines: list[str],
                           title: str, code: str, col: int = 0) -> Fix | None:
    lines = src.files.lines(file)
    if not lines or not 1 <= line <= len(lines):
        return None
    # the acquiring statement may span lines: insert after the line that ends it
    end = statement_end_line(src, file, line, col, lines)
    if end is None:
        return None
    indent = indent_of(lines[line - 1])
    unit = indent_unit(lines)
    body = "".join(f"{indent}{unit * (1 if i else 0)}{s}\n" for i, s in enumerate(statement_lines))
    return Fix(title, (TextEdit(Span(file, end + 1, 1, end + 1, 1), body),), code)


def block_statements(src: ProgramSources, span: Span, lines: list[str]) -> list[Span] | None:
    """The statement at `span` and the ones after it in the same block, each on its own lines."""
    indent = indent_of(lines[span.line - 1])
    out: list[Span] = []
    ln = span.line
    while ln <= len(lines):
        text = lines[ln - 1]
        code = code_part(text)
        if not code.strip() or code.strip().startswith(("/*", "*")):
            ln += 1
            continue
        if indent_of(text) != indent or code.strip().startswith("}"):
            if len(indent_of(text)) < len(indent) or code.strip().startswith("}"):
                break
            return None     # a continuation or a nested line we do not understand
        info = src.statement_info(span.file, ln, len(indent.encode("utf-8")) + 1)
        if info is not None:
            if info.range[0] != ln:
                return None
            end_line, end_col = info.range[2], info.range[3]
        else:
            end_line = ln
            while end_line <= len(lines) and not code_part(lines[end_line - 1]).endswith((";", "}")):
                end_line += 1
            if end_line > len(lines):
                return None
            end_col = len(code_part(lines[end_line - 1]).encode("utf-8")) + 1
        out.append(Span(span.file, ln, len(indent.encode("utf-8")) + 1, end_line, end_col))
        ln = end_line + 1
    return out


def function_end(lines: list[str], line: int) -> int:
    """The line of the function's closing brace (an unindented `}`) at or after `line`."""
    for j in range(line, len(lines) + 1):
        if lines[j - 1].startswith("}"):
            return j
    return len(lines)


_ASSIGNED = re.compile(r"(?<![.>\w])([A-Za-z_]\w*)\s*(?:[-+*/%&|^]|<<|>>)?=(?!=)")
_STEPPED = re.compile(r"(?:\+\+|--)\s*([A-Za-z_]\w*)|(?<![.>\w])([A-Za-z_]\w*)\s*(?:\+\+|--)")
_ADDRESS_TAKEN = re.compile(r"&\s*([A-Za-z_]\w*)")


def _assigned(lines: list[str]) -> set[str]:
    """Identifiers `lines` may change: assigned, incremented, or passed by address."""
    text = "\n".join(code_part(ln) for ln in lines)
    out = set(_ASSIGNED.findall(text)) | set(_ADDRESS_TAKEN.findall(text))
    out |= {w for pair in _STEPPED.findall(text) for w in pair if w}
    return out


_CONTROL_STATEMENTS = ("IF_STMT", "WHILE_STMT", "FOR_STMT", "SWITCH_STMT", "DO_STMT", "RETURN_STMT")


def enclosing_statement(src: ProgramSources, span: Span) -> Span | None:
    """The simple statement (an expression or a declaration, on lines of its own) that contains
    `span`; None when `span` is in a condition, a brace-less body or a control statement."""
    lines = src.files.lines(span.file) or []
    if not 1 <= span.line <= len(lines):
        return None
    info = src.statement_info(span.file, span.line, span.column)
    if info is not None:
        if info.kind in _CONTROL_STATEMENTS or info.braceless_body or info.parent_range is None:
            return None
        return Span(span.file, *info.range)
    text = code_part(lines[span.line - 1])
    if not text.rstrip().endswith(";") or re.match(r"^\s*(\}\s*)?(if|else|for|while|do|switch|return)\b", text):
        return None
    indent = indent_of(text)
    return Span(span.file, span.line, len(indent.encode("utf-8")) + 1, span.line, len(text.encode("utf-8")) + 1)


def move_before(src: ProgramSources, span: Span, anchor_line: int, title: str, code: str) -> Fix | None:
    """Move the statement containing `span` up to just before the statement on `anchor_line` (same
    block, same indentation), when nothing between them changes what it reads and it transfers no
    control."""
    lines = src.files.lines(span.file)
    if not lines or not 1 <= anchor_line < span.line <= len(lines):
        return None
    stmt = enclosing_statement(src, span)
    if stmt is None:
        return None
    indent = indent_of(lines[stmt.line - 1])
    if stmt.column != len(indent.encode("utf-8")) + 1 or indent_of(lines[anchor_line - 1]) != indent:
        return None     # shares its line with other code, or sits in another block
    tail = lines[stmt.end_line - 1].encode("utf-8")[stmt.end_column - 1:].decode("utf-8", errors="replace")
    if code_part(tail).strip():
        return None
    text = span_text(lines, stmt)
    if CONTROL.search(code_part(text)) or "{" in text or "}" in text:
        return None
    between = lines[anchor_line - 1:stmt.line - 1]
    if any(indent_of(ln) != indent and ln.strip() and len(indent_of(ln)) < len(indent) for ln in between) or \
            any(code_part(ln).strip().startswith("}") for ln in between):
        return None     # the anchor is not in the statement's own block
    if words_in([text]) & _assigned(between):
        return None     # it reads something the lines it jumps over write
    own = "".join(ln + "\n" for ln in lines[stmt.line - 1:stmt.end_line])
    delete = TextEdit(Span(span.file, stmt.line, 1, stmt.end_line + 1, 1), "")
    insert = TextEdit(Span(span.file, anchor_line, 1, anchor_line, 1), own)
    return Fix(title, (insert, delete), code)
