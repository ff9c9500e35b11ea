"""Hovers: a variable's ownership state at a line, or a kfunc's ownership contract.

A variable hover reads only what verification stored (per-instruction state summaries joined
over the paths that reached each instruction): no re-analysis. It shows, in a few lines of
Markdown, the variable's type; its ownership state (owning / non-owning and until which unlock /
referenced kernel object / untrusted / released or invalidated, and by what); NULL-checked or
maybe NULL; which reference it is (acquired by what, where); the lock held; and, when paths
disagree at the line, each state and the number of paths that reached it.

The state shown is the one at the first instruction of the line where the variable lives (what
the variable is when the line starts); on a line where it is not live yet (its declaration),
the state just after the line.
"""
from __future__ import annotations

import os
import re
from typing import Protocol

from ..verifier import kfuncs as K


class Verified(Protocol):
    """What a hover reads from an analysis (no import of the analysis layer: it calls us)."""
    path: str
    results: dict       # program name -> (Program, VerifyResult, ProgramSources)

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FLAG_TEXT = {K.ACQUIRE: "acquires a reference", K.RELEASE: "releases its argument", K.RET_NULL: "may return NULL",
             K.TRUSTED_ARGS: "needs trusted arguments", K.RCU: "accepts RCU-protected pointers",
             K.RCU_PROTECTED: "only inside an RCU read section", K.DESTRUCTIVE: "destructive",
             K.SLEEPABLE: "sleepable programs only"}
# kept for callers that show a state kind alone
KIND_TEXT = {"owning": "owning reference", "non-owning": "non-owning reference", "referenced": "referenced kernel object",
             "trusted": "trusted pointer", "untrusted": "untrusted pointer", "rcu": "RCU-protected pointer",
             "released": "released (unusable)", "unlocked": "invalidated at unlock (unusable)",
             "moved": "moved into a map (unusable)", "null": "NULL", "map_value": "map value",
             "overwritten": "its dynptr was overwritten (unusable)",
             "packet_moved": "invalidated: the packet may have moved (unusable)"}
LOOKAHEAD = 4       # instructions after a line where a variable declared on it becomes live


def _word_at(text: str, column: int) -> str | None:
    i = len(text.encode("utf-8")[: max(column - 1, 0)].decode("utf-8", errors="ignore"))
    for m in WORD.finditer(text):
        if m.start() <= i <= m.end():
            return m.group(0)
    return None


def _semantics(name: str):
    sem = K.known_kfunc(name) or K.HELPERS_BY_NAME.get(name)
    if sem is None:
        sem = K.known_kfunc(name + "_impl")
    return sem


def _contract(name: str) -> str | None:
    sem = _semantics(name)
    if sem is None:
        return None
    kind = "helper" if sem.is_helper else "kfunc"
    flags = [FLAG_TEXT.get(f, f) for f in sorted(sem.flags)]
    head = f"**{K.spelling(sem.name)}** ({kind}" + (f"; {', '.join(flags)}" if flags else "") + ")"
    extra = []
    if sem.releases:
        extra.append(f"releases: {sem.releases} references")
    if sem.graph_api:
        extra.append("allowed under `bpf_spin_lock`")
    return head + "\n\n" + sem.summary + ("\n\n" + "; ".join(extra) if extra else "")


# ---------------------------------------------------------------------------
# variables

def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.abspath(a) == os.path.abspath(b) or \
        (not os.path.isabs(b) and a.endswith(os.sep + b))


def _line_index(src) -> dict[tuple[str, int], list[int]]:
    """(file, line) -> the instructions whose line info (in force) is that line, in index order."""
    index = getattr(src, "_hover_lines", None)
    if index is None:
        index = {}
        prog = src.prog
        for i in range(len(prog.origins)):
            li = prog.line_at(i)
            if li is not None:
                index.setdefault((li.file, li.line), []).append(i)
        src._hover_lines = index
    return index


def _insns_on_line(src, path: str, line: int) -> list[int]:
    out: list[int] = []
    for (file, ln), insns in _line_index(src).items():
        if ln == line and _same_file(path, file):
            out += insns
    return sorted(out)


def _values(states) -> list:
    """The value summaries recorded at an instruction (joined over the paths that reached it)."""
    return [v[1] if isinstance(v, tuple) and len(v) == 2 else v for v in states.values]


def _split(detail: str) -> tuple[str, int | None]:
    if "@" in detail:
        name, _, at = detail.rpartition("@")
        try:
            return name, int(at)
        except ValueError:
            return detail, None
    return detail, None


def _where(src, insn: int | None) -> str:
    if insn is None or insn < 0:
        return ""
    p = src.place(insn)
    return f" on line {p.line}" if p else ""


def _lock_call(src, locks) -> str:
    for holder, off, at in sorted(locks, key=repr):
        text = src.call_text(at, "bpf_spin_lock")
        if text != "bpf_spin_lock()":
            return text
    return ""


def _nullness(s, acquired_call: str) -> str:
    if s.maybe_null:
        return "maybe NULL: check it before use"
    sem = _semantics(acquired_call) if acquired_call else None
    return "NULL-checked" if sem is not None and sem.has(K.RET_NULL) else "not NULL"


def _describe(s, src, locks, static_type: str = "") -> str:
    """One state of one variable, as a short sentence."""
    kind = s.kind
    if kind in ("owning", "referenced"):
        via = s.detail if kind == "owning" or s.detail else ""
        head = "owning reference" if kind == "owning" else "referenced kernel object"
        if s.type_name and not re.search(rf"\b{re.escape(s.type_name)}\b", static_type):
            head += f" to a `struct {s.type_name}`"     # a node pointer into a bigger object
        acquired = f"acquired by `{K.spelling(via)}()`{_where(src, s.acquired_at)}" if via else \
            f"acquired{_where(src, s.acquired_at)}"
        release = K.RELEASE_FOR_KIND.get(_ref_kind(via)) if kind == "referenced" else None
        tail = f"; release with `{K.spelling(release)}()`" if release else ""
        return f"{head}, {_nullness(s, via)}; {acquired}{tail}"
    if kind == "non-owning":
        via, at = _split(s.detail)
        lock = _lock_call(src, locks)
        until = f"`{lock.replace('bpf_spin_lock', 'bpf_spin_unlock', 1)}`" if lock else "`bpf_spin_unlock`"
        given = f"; `{K.spelling(via)}()`{_where(src, at)} gave the object to the collection" if via else ""
        return f"non-owning reference, valid until {until}{given}"
    if kind in ("unlocked", "released", "moved", "overwritten", "packet_moved"):
        via, at = _split(s.detail)
        call = src.call_text(at, K.spelling(via)) if at is not None and via else (K.spelling(via) + "()" if via else "")
        what = {"unlocked": "invalidated: a non-owning reference that died at",
                "released": "released by", "moved": "moved into a map by",
                "overwritten": "its dynptr overwritten by", "packet_moved": "invalidated (the packet may move) by"}[kind]
        return f"{what} `{call}`{_where(src, at)}; unusable" if call else f"{KIND_TEXT[kind]}"
    if kind == "null":
        return "NULL"
    if kind == "map_value":
        return f"pointer to a value of map `{s.detail}`, {_nullness(s, '')}" if s.detail else \
            f"pointer to a map value, {_nullness(s, '')}"
    if kind == "untrusted":
        return "untrusted pointer: reads only, no kfunc arguments"
    if kind == "rcu":
        return f"RCU-protected pointer, valid inside the RCU read section, {_nullness(s, '')}"
    if kind == "trusted":
        return f"trusted pointer, {_nullness(s, '')}"
    return KIND_TEXT.get(kind, kind)


def _ref_kind(via: str) -> str:
    sem = _semantics(via) if via else None
    return sem.ref_kind if sem is not None else ""


def _location(v) -> str:
    return f"r{v.reg}" if v.reg is not None else f"fp{v.stack_off}"


def _at_line(src, result, insns: list[int], word: str, made_on: list[int] | None = None):
    """(type, [summary], locks, path count) of `word` at the first instruction where it lives.

    With `made_on` (the instructions of the line a variable is declared on), only the states that
    line produced: the instruction after it may be a join with paths that never ran the line.
    """
    for insn in insns:
        states = result.states.get(insn)
        if states is None:
            continue
        for v in src.variables_at(insn):
            if v.name != word:
                continue
            loc = _location(v)
            vals = [s for s in _values(states) if s.loc == loc]
            if made_on:
                mine = [s for s in vals if s.acquired_at in made_on]
                return v.type_name, mine or vals, states.locks, len(mine) if mine else states.paths
            return v.type_name, vals, states.locks, states.paths
    return None


def hover_markdown(analysis: Verified, line: int, column: int) -> str | None:
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
    type_name = ""
    states: dict[str, None] = {}     # the sentences, in the order found
    locks_text: list[str] = []
    after = False
    paths = 0
    for prog, result, src in results.values():
        insns = _insns_on_line(src, path, line)
        if not insns:
            continue
        # the line's own instructions first: one inheriting the line's info may be a join of paths
        # that never ran the line (the target of a jump over it)
        exact = [i for i in insns if prog.exact_line_at(i) is not None]
        found = _at_line(src, result, exact, word) or _at_line(src, result, insns, word, made_on=insns)
        if found is None:
            nxt = [i for i in range(insns[-1] + 1, min(insns[-1] + 1 + LOOKAHEAD, len(prog.origins)))]
            found = _at_line(src, result, nxt, word, made_on=insns)
            after = found is not None
        if found is None:
            continue
        tname, vals, locks, n = found
        type_name = type_name or tname
        paths += n
        for s in vals:
            states[_describe(s, src, locks, tname)] = None
        lock = _lock_call(src, locks)
        if lock:
            p = next((src.place(at) for _, _, at in sorted(locks, key=repr)), None)
            locks_text.append(f"`{lock}`" + (f" (line {p.line})" if p else ""))
    if not type_name and not states:
        return None
    parts = [f"**{word}**" + (f" `{type_name}`" if type_name else "")]
    if not states:
        parts.append("no ownership state here (not a tracked pointer at this line)")
    elif len(states) == 1:
        parts.append(("after this line: " if after else "") + next(iter(states)))
    else:
        # paths are joined where verification stored states: their number is known, not who is in which
        head = "after this line, " if after else ""
        alternatives = list(dict.fromkeys(_short(k) for k in sorted(states)))
        parts.append(head + f"differs across the {paths} paths reaching this line"
                     + (f" ({' or '.join(alternatives)})" if len(alternatives) > 1 else "") + ":")
        parts.append("\n".join(f"- {k}" for k in sorted(states)))
    if locks_text:
        parts.append("lock held: " + ", ".join(sorted(set(locks_text))))
    return "\n\n".join(parts)


def _short(sentence: str) -> str:
    """`owning reference, NULL-checked; acquired ...` -> `owning`, for the per-path summary line."""
    head = sentence.split(";")[0].split(",")[0]
    return {"owning reference": "owning", "non-owning reference": "non-owning",
            "referenced kernel object": "referenced"}.get(head, head)
