"""Hovers: a variable's ownership state at a point, or a kfunc's ownership contract."""
from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from ..verifier import kfuncs as K

if TYPE_CHECKING:
    from ..analysis import Analysis

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KIND_TEXT = {"owning": "owning reference", "non-owning": "non-owning reference", "referenced": "referenced kernel object",
             "trusted": "trusted pointer", "untrusted": "untrusted pointer", "rcu": "RCU-protected pointer",
             "released": "released (unusable)", "unlocked": "invalidated at unlock (unusable)",
             "moved": "moved into a map (unusable)", "null": "NULL", "map_value": "map value"}


def _word_at(text: str, column: int) -> str | None:
    i = len(text.encode("utf-8")[: max(column - 1, 0)].decode("utf-8", errors="ignore"))
    for m in WORD.finditer(text):
        if m.start() <= i <= m.end():
            return m.group(0)
    return None


def _contract(name: str) -> str | None:
    sem = K.lookup_kfunc(name) or K.HELPERS_BY_NAME.get(name)
    if sem is None:
        impl = name + "_impl"
        sem = K.lookup_kfunc(impl)
        if sem is None:
            return None
    flags = ", ".join(sorted(sem.flags)) or "no ownership flags"
    kind = "helper" if sem.is_helper else "kfunc"
    return f"**{K.spelling(sem.name)}** ({kind}; {flags})\n\n{sem.summary}"


def _line_of(analysis: "Analysis", prog, insn: int):
    li = prog.exact_line_at(insn) or prog.line_at(insn)
    return li


def hover_markdown(analysis: "Analysis", line: int, column: int) -> str | None:
    path = analysis.path
    results = analysis.results
    text = ""
    for prog, result, src in results.values():
        text = src.files.line(path, line)
        break
    if not text:
        return None
    word = _word_at(text, column)
    if word is None:
        return None
    contract = _contract(word)
    if contract is not None:
        return contract
    summaries = Counter()
    locks = set()
    type_name = ""
    acquired_lines = set()
    for prog, result, src in results.values():
        for insn, states in result.states.items():
            li = _line_of(analysis, prog, insn)
            if li is None or li.line != line or li.file != path and not path.endswith(li.file):
                continue
            for v in src.variables_at(insn):
                if v.name != word:
                    continue
                type_name = v.type_name
                loc = f"r{v.reg}" if v.reg is not None else f"fp{v.stack_off}"
                for s in states.values:
                    if s.loc == loc and s.frame == 0:
                        state = KIND_TEXT.get(s.kind, s.kind)
                        if s.maybe_null:
                            state += ", maybe NULL"
                        summaries[state] += 1
                        if s.acquired_at >= 0:
                            p = src.place(s.acquired_at)
                            if p:
                                acquired_lines.add(p.line)
            for holder, off, at in states.locks:
                p = src.place(at)
                locks.add(src.call_text(at, "bpf_spin_lock") + (f" (line {p.line})" if p else ""))
    if not summaries and not type_name:
        return None
    parts = [f"**{word}**" + (f": `{type_name}`" if type_name else "")]
    if summaries:
        if len(summaries) == 1:
            parts.append(next(iter(summaries)))
        else:
            parts.append(", ".join(f"{k} on {n} path{'s' if n > 1 else ''}" for k, n in summaries.most_common()))
    else:
        parts.append("no ownership state here (a plain value)")
    if acquired_lines:
        parts.append("acquired on line " + ", ".join(str(x) for x in sorted(acquired_lines)))
    if locks:
        parts.append("lock held: " + ", ".join(sorted(locks)))
    return "\n\n".join(parts)
