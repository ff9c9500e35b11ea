"""One file's AST as libclang sees it: nodes of the functions queried so far, and the queries
ranges need (the innermost expression or statement at a position, what a statement is)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from ..text import split_lines
from . import libclang

log = logging.getLogger("bpf_lsp.ranges")

Range = tuple[int, int, int, int]      # line, column, end_line, end_column: 1-based, byte columns, end exclusive
Pos = tuple[int, int]

CANDIDATES = frozenset({"CALL_EXPR", "MEMBER_REF_EXPR", "DECL_REF_EXPR", "UNARY_OPERATOR", "BINARY_OPERATOR",
                        "COMPOUND_ASSIGNMENT_OPERATOR", "ARRAY_SUBSCRIPT_EXPR", "RETURN_STMT",
                        "CONDITIONAL_OPERATOR", "CSTYLE_CAST_EXPR"})
WRAPPERS = frozenset({"UNEXPOSED_EXPR", "PAREN_EXPR"})
LVALUE_CHAIN = frozenset({"MEMBER_REF_EXPR", "ARRAY_SUBSCRIPT_EXPR", "UNEXPOSED_EXPR", "PAREN_EXPR",
                          "CSTYLE_CAST_EXPR"})
COMPOUND_LIKE = frozenset({"COMPOUND_STMT", "IF_STMT", "WHILE_STMT", "FOR_STMT", "SWITCH_STMT", "DO_STMT",
                           "LABEL_STMT", "CASE_STMT", "DEFAULT_STMT"})
NO_SEMICOLON = frozenset({"COMPOUND_STMT", "IF_STMT", "WHILE_STMT", "FOR_STMT", "SWITCH_STMT", "LABEL_STMT",
                          "CASE_STMT", "DEFAULT_STMT", "NULL_STMT"})
BODY_PARENTS = frozenset({"IF_STMT", "WHILE_STMT", "FOR_STMT", "DO_STMT", "SWITCH_STMT", "LABEL_STMT",
                          "CASE_STMT", "DEFAULT_STMT"})


# ---------------------------------------------------------------------------
# one file's nodes

@dataclass
class Node:
    kind: str
    start: Pos
    end: Pos
    parent: int
    depth: int
    children: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.end <= self.start

    def covers(self, pos: Pos) -> bool:
        return self.start <= pos < self.end

    @property
    def range(self) -> Range:
        return (*self.start, *self.end)


@dataclass(frozen=True)
class StatementInfo:
    range: Range
    kind: str
    braceless_body: bool        # the then/else/loop body of a statement without braces
    parent_range: Range | None  # the if/loop it is the body of, or the enclosing block


class FileAst:
    """The AST of one version of one file, as nodes of the functions queried so far."""

    def __init__(self, owner: Any, entry: Any, path: str, text: str, unit_text: str):
        self._owner = owner
        self._entry = entry
        self.path = path
        self._unit_digest = entry.digest
        self._unit_text = unit_text
        self.lines = [ln.encode("utf-8", errors="surrogateescape") for ln in split_lines(text)]
        self._decls: dict[Range, list[Node]] = {}
        self._all_decls: list[Range] | None = None
        self._file = None
        self.usable = False
        self.errors: list[str] = []
        ci = libclang.cindex()
        tu = entry.tu
        self._file = tu.get_file(path)
        for d in tu.diagnostics:
            if d.severity >= ci.Diagnostic.Error:
                loc = d.location
                if loc.file is not None and os.path.abspath(loc.file.name) == path:
                    self.errors.append(f"{loc.line}:{loc.column}: {d.spelling}")
        self.usable = self._file is not None and not self.errors
        if self.errors:
            log.info("libclang disagrees with the compile on %s (%s): lexical ranges", path, self.errors[0])

    # -- libclang access (under the lock, with the TU at this version)
    def _tu(self):
        entry = self._entry
        if entry.tu is None:
            return None     # cleared: only the nodes walked so far remain
        if entry.digest != self._unit_digest:
            # another version was parsed since (another buffer state): go back to ours; milliseconds
            if not self._owner._ensure(entry, self._unit_text, self._unit_digest):
                return None
        return entry.tu

    def _location(self, tu, line: int, col: int):
        ci = libclang.cindex()
        return ci.SourceLocation.from_position(tu, self._file, line, col)

    def _refresh_file(self, tu) -> bool:
        # file handles belong to one parse: a reparse (another version, another thread) replaces them
        self._file = tu.get_file(self.path)
        return self._file is not None

    def _top_decl(self, tu, line: int, col: int):
        """The top-level declaration whose extent covers (line, col)."""
        ci = libclang.cindex()
        TU = ci.CursorKind.TRANSLATION_UNIT

        def top(cursor):
            if cursor is None or cursor.kind.is_invalid() or cursor.kind == TU:
                return None
            for _ in range(64):
                parent = cursor.semantic_parent
                if parent is None or parent.kind == TU or parent.kind.is_invalid():
                    break
                cursor = parent
            return cursor

        def covers(cursor) -> bool:
            if cursor is None:
                return False
            e = cursor.extent
            if not (e.start.line, e.start.column) <= (line, col) < (e.end.line, e.end.column):
                return False
            f = e.start.file
            return f is not None and os.path.abspath(f.name) == self.path

        found = top(ci.Cursor.from_location(tu, self._location(tu, line, max(col, 1))))
        if covers(found):
            return found
        # a function whose declaration comes from a macro (BPF_PROG(name, ...)): clang_getCursor finds
        # nothing in its body, but finds it from its name; probe the unindented lines above
        probes = 0
        for ln in range(line, max(line - 2000, 0), -1):
            raw = self.lines[ln - 1] if ln - 1 < len(self.lines) else b""
            if not raw or raw[:1] in b" \t{}#/*":
                continue
            for c, ch in enumerate(raw, start=1):
                if probes > 64:
                    break
                if (chr(ch).isalpha() or ch == 95) and (c == 1 or not (chr(raw[c - 2]).isalnum() or raw[c - 2] == 95)):
                    probes += 1
                    cand = top(ci.Cursor.from_location(tu, self._location(tu, ln, c)))
                    if covers(cand):
                        return cand
            if probes > 64:
                break
        # last resort: every top-level declaration in the file (~0.1 s with vmlinux.h)
        for cursor in self._file_decls(tu):
            if covers(cursor):
                return cursor
        return None

    def _file_decls(self, tu) -> list:
        ci = libclang.cindex()
        lib = ci.conf.lib
        out = []
        main = os.path.abspath(tu.spelling) == self.path

        def visit(child, parent, data):
            loc = lib.clang_getCursorLocation(child)
            if main:
                if lib.clang_Location_isFromMainFile(loc):
                    child._tu = tu
                    out.append(child)
            else:
                f = loc.file
                if f is not None and os.path.abspath(f.name) == self.path:
                    child._tu = tu
                    out.append(child)
            return 1  # CXChildVisit_Continue

        lib.clang_visitChildren(tu.cursor, ci.callbacks["cursor_visit"](visit), [])
        return out

    def _walk(self, decl) -> list[Node]:
        nodes: list[Node] = []
        stack = [(decl, -1, 0)]
        while stack:
            cursor, parent, depth = stack.pop()
            e = cursor.extent
            s, t = e.start, e.end
            node = Node(cursor.kind.name, (s.line, s.column), (t.line, t.column), parent, depth)
            idx = len(nodes)
            nodes.append(node)
            if parent >= 0:
                nodes[parent].children.append(idx)
            kids = list(cursor.get_children())
            for child in reversed(kids):
                stack.append((child, idx, depth + 1))
        return nodes

    def nodes_at(self, line: int, col: int) -> list[Node] | None:
        """The nodes of the top-level declaration covering (line, col)."""
        for rng, nodes in self._decls.items():
            if (rng[0], rng[1]) <= (line, col) < (rng[2], rng[3]):
                return nodes
        with libclang.LOCK:
            tu = self._tu()
            if tu is None or not self._refresh_file(tu):
                return None
            try:
                decl = self._top_decl(tu, line, col)
                nodes = self._walk(decl) if decl is not None else []
            except Exception as e:  # noqa: BLE001 - e.g. a cursor kind these bindings do not know
                log.info("libclang walk failed in %s: %s", self.path, e)
                return None
        if not nodes:
            return None
        self._decls[nodes[0].range] = nodes
        return nodes

    # -- queries (pure Python over the nodes)
    def _deepest(self, nodes: list[Node], pos: Pos) -> int | None:
        best, best_depth = None, -1
        for i, n in enumerate(nodes):
            if not n.empty and n.covers(pos) and n.depth > best_depth:
                best, best_depth = i, n.depth
        return best

    def _is_statement(self, nodes: list[Node], i: int) -> bool:
        n = nodes[i]
        if n.parent < 0:
            return False
        p = nodes[n.parent]
        if p.kind == "COMPOUND_STMT":
            return True
        if p.kind not in BODY_PARENTS:
            return False
        k = p.children.index(i)
        if p.kind == "IF_STMT":
            return k >= 1
        if p.kind == "DO_STMT":
            return k == 0
        return k == len(p.children) - 1

    def _operator(self, nodes: list[Node], i: int) -> str:
        """The operator token of a binary operator, read between its operands."""
        n = nodes[i]
        if len(n.children) != 2:
            return ""
        lhs, rhs = nodes[n.children[0]], nodes[n.children[1]]
        if lhs.end[0] != rhs.start[0] or lhs.empty or rhs.empty or lhs.end > rhs.start:
            return ""
        raw = self.lines[lhs.end[0] - 1] if lhs.end[0] - 1 < len(self.lines) else b""
        return raw[lhs.end[1] - 1:rhs.start[1] - 1].decode("utf-8", "replace").strip()

    def _is_assignment(self, nodes: list[Node], i: int) -> bool:
        k = nodes[i].kind
        return k == "COMPOUND_ASSIGNMENT_OPERATOR" or (k == "BINARY_OPERATOR" and self._operator(nodes, i) == "=")

    def _semicolon_end(self, end: Pos) -> Pos:
        line, col = end
        for ln in range(line, min(line + 2, len(self.lines)) + 1):
            raw = self.lines[ln - 1]
            j = col - 1 if ln == line else 0
            while j < len(raw) and raw[j:j + 1] in b" \t":
                j += 1
            if j < len(raw):
                return (ln, j + 2) if raw[j:j + 1] == b";" else end
        return end

    def _statement_range(self, nodes: list[Node], i: int) -> Range:
        n = nodes[i]
        end = n.end
        raw = self.lines[end[0] - 1] if 0 < end[0] <= len(self.lines) else b""
        if n.kind not in NO_SEMICOLON and raw[end[1] - 2:end[1] - 1] != b";":
            end = self._semicolon_end(end)
        return (*n.start, *end)

    def expression(self, line: int, col: int) -> Range | None:
        """The offending expression at a line-info position."""
        if col <= 0:
            return None
        nodes = self.nodes_at(line, col)
        if not nodes:
            return None
        pos = (line, col)
        i = self._deepest(nodes, pos)
        if i is None:
            return None
        # up to the nearest expression worth pointing at
        j = i
        while j >= 0 and nodes[j].kind not in CANDIDATES:
            if self._is_statement(nodes, j) or nodes[j].kind in COMPOUND_LIKE:
                break
            j = nodes[j].parent
        if j < 0:
            return None
        if nodes[j].kind not in CANDIDATES:
            if self._is_statement(nodes, j) and nodes[j].kind not in COMPOUND_LIKE:
                return self._statement_range(nodes, j)
            return None
        if nodes[j].kind == "RETURN_STMT":
            return self._statement_range(nodes, j)
        # the callee of a call: the whole call
        k, child = nodes[j].parent, j
        while k >= 0 and nodes[k].kind in WRAPPERS and nodes[k].children and nodes[k].children[0] == child:
            k, child = nodes[k].parent, k
        if k >= 0 and nodes[k].kind == "CALL_EXPR" and nodes[k].children and nodes[k].children[0] == child:
            j = k
        # the target of an assignment (through member / subscript / deref chains): the whole assignment
        k, child = nodes[j].parent, j
        while k >= 0:
            pk = nodes[k]
            if self._is_assignment(nodes, k) and pk.children and pk.children[0] == child:
                j = k
                break
            base = pk.children[0] == child if pk.children else False
            if pk.kind in LVALUE_CHAIN and base or (pk.kind == "UNARY_OPERATOR" and base):
                k, child = pk.parent, k
                continue
            break
        n = nodes[j]
        if n.empty or n.start[0] > line:
            return None
        return n.range

    def statement(self, line: int, col: int = 0) -> Range | None:
        """The statement at a position (with its `;`), or, with no column, the one the line starts.

        With no column, a `return` starting on the line wins (`if (x) return 1;` is the return).
        """
        info = self.statement_info(line, col)
        return info.range if info else None

    def statement_info(self, line: int, col: int = 0) -> StatementInfo | None:
        nodes = None
        if col > 0:
            nodes = self.nodes_at(line, col)
        if nodes is None:
            raw = self.lines[line - 1] if 0 < line <= len(self.lines) else b""
            first = len(raw) - len(raw.lstrip()) + 1
            nodes = self.nodes_at(line, first)
            col = 0
        if not nodes:
            return None
        if col > 0:
            i = self._deepest(nodes, (line, col))
            while i is not None and i >= 0 and not self._is_statement(nodes, i):
                i = nodes[i].parent
            if i is None or i < 0:
                return None
            if nodes[i].kind in COMPOUND_LIKE:
                # the position is in a condition: the expression there is what is meant
                rng = self.expression(line, col)
                return StatementInfo(rng, nodes[i].kind, False, nodes[i].range) if rng else None
        else:
            starting = [k for k, n in enumerate(nodes) if n.start[0] == line and self._is_statement(nodes, k)]
            if not starting:
                return None
            returns = [k for k in starting if nodes[k].kind == "RETURN_STMT"]
            i = returns[0] if returns else min(starting, key=lambda k: (nodes[k].start, nodes[k].depth))
        n = nodes[i]
        parent = nodes[n.parent] if n.parent >= 0 else None
        return StatementInfo(self._statement_range(nodes, i), n.kind,
                             parent is not None and parent.kind != "COMPOUND_STMT",
                             parent.range if parent is not None else None)

    def node_range(self, line: int, col: int, kinds: frozenset[str]) -> Range | None:
        """The innermost node of one of `kinds` covering a position."""
        nodes = self.nodes_at(line, col)
        if not nodes:
            return None
        i = self._deepest(nodes, (line, col))
        while i is not None and i >= 0 and nodes[i].kind not in kinds:
            i = nodes[i].parent
        return nodes[i].range if i is not None and i >= 0 else None
