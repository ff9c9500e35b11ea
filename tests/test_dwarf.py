"""DWARF variable locations (bpf_lsp/frontend/dwarf.py) against real clang-19 objects.

The oracles are independent of our reader: `llvm-dwarfdump-19 --debug-info` for what the
DWARF says (location lists, frame-base offsets), `llvm-objdump-19 -d` / `-t` for what the
code does (where a call is, which r10 offsets are addressed, where functions start).
"""
from __future__ import annotations

import io
import os
import random
import re
import shutil
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpf_lsp.frontend.dwarf import (DwarfError, FunctionRange, VarLocation, function_ranges,
                                    variable_locations)
from conftest import CORPUS_CASES, clang_object, corpus_cases

DWARFDUMP = shutil.which("llvm-dwarfdump-19")
OBJDUMP = shutil.which("llvm-objdump-19")
pytestmark = pytest.mark.skipif(not (DWARFDUMP and OBJDUMP), reason="needs llvm-dwarfdump-19 and llvm-objdump-19")


def load(obj: Path) -> list[VarLocation]:
    return variable_locations(ELFFile(io.BytesIO(obj.read_bytes())))


def ranges_of(obj: Path) -> list[FunctionRange]:
    return function_ranges(ELFFile(io.BytesIO(obj.read_bytes())))


def compile_source(tmp_path: Path, name: str, text: str, extra: list[str] | None = None) -> Path:
    src = tmp_path / f"{name}.bpf.c"
    src.write_text(text)
    return clang_object(src, tmp_path, extra)


# --------------------------------------------------------------------------------------------
# Oracle 1: llvm-dwarfdump's rendering of the DIE tree.

@dataclass
class DumpDie:
    offset: int
    tag: str
    depth: int
    attrs: dict[str, str] = field(default_factory=dict)
    parent: "DumpDie | None" = None


_DIE_RE = re.compile(r"^(0x[0-9a-f]+):( +)(DW_TAG_\w+|NULL)")
_ATTR_RE = re.compile(r"^\s+(DW_AT_\w+)\t\((.*)$")
_RANGE_RE = re.compile(r"\[(0x[0-9a-f]+), (0x[0-9a-f]+)\): (.*?)\)?$")


def dwarfdump_dies(obj: Path) -> list[DumpDie]:
    text = subprocess.run([DWARFDUMP, "--debug-info", str(obj)], capture_output=True, text=True,
                          check=True).stdout
    dies: list[DumpDie] = []
    stack: list[DumpDie] = []
    current_attr = None
    for line in text.splitlines():
        m = _DIE_RE.match(line)
        if m:
            depth = (len(m.group(2)) - 1) // 2
            current_attr = None
            if m.group(3) == "NULL":
                continue
            while stack and stack[-1].depth >= depth:
                stack.pop()
            die = DumpDie(int(m.group(1), 16), m.group(3), depth, parent=stack[-1] if stack else None)
            dies.append(die)
            stack.append(die)
            continue
        m = _ATTR_RE.match(line)
        if m and stack:
            current_attr = m.group(1)
            stack[-1].attrs[current_attr] = m.group(2)
        elif current_attr and line.strip() and stack:
            stack[-1].attrs[current_attr] += "\n" + line.strip()
    return dies


def _quoted(value: str) -> str:
    m = re.search(r'"([^"]*)"', value)
    return m.group(1) if m else ""


def _dump_name(die: DumpDie) -> str:
    if "DW_AT_name" in die.attrs:
        return _quoted(die.attrs["DW_AT_name"])
    return _quoted(die.attrs.get("DW_AT_abstract_origin", ""))


def _dump_scope_range(die: DumpDie) -> tuple[int, int]:
    while die is not None:
        if "DW_AT_low_pc" in die.attrs and "DW_AT_high_pc" in die.attrs:
            lo = int(die.attrs["DW_AT_low_pc"].rstrip(")"), 16)
            hi = int(die.attrs["DW_AT_high_pc"].rstrip(")"), 16)
            return lo // 8, hi // 8
        die = die.parent
    raise AssertionError("no enclosing scope with a pc range")


def _dump_function(die: DumpDie) -> str:
    scope = die.parent
    while scope.tag not in ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine"):
        scope = scope.parent
    return _dump_name(scope)


def dwarfdump_locations(obj: Path) -> list[tuple[str, str, int, int, str]]:
    """(function, variable, lo, hi, expression) for every location of every local/param,
    lo/hi as instruction indices; exprlocs span their enclosing scope's pc range."""
    out = []
    for die in dwarfdump_dies(obj):
        if die.tag not in ("DW_TAG_variable", "DW_TAG_formal_parameter") or "DW_AT_location" not in die.attrs:
            continue
        if die.parent is None or die.parent.tag == "DW_TAG_compile_unit":
            continue  # globals
        value = die.attrs["DW_AT_location"]
        entries = [_RANGE_RE.search(line) for line in value.splitlines()]
        entries = [m for m in entries if m]
        if entries:
            for m in entries:
                out.append((_dump_function(die), _dump_name(die), int(m.group(1), 16) // 8,
                            int(m.group(2), 16) // 8, m.group(3)))
        else:
            lo, hi = _dump_scope_range(die.parent)
            out.append((_dump_function(die), _dump_name(die), lo, hi, value.rstrip(")")))
    return out


def oracle_registers(obj: Path) -> set[tuple[str, str, int, int, int]]:
    """(function, variable, lo, hi, reg) for the locations that are exactly one register."""
    out = set()
    for fn, name, lo, hi, expr in dwarfdump_locations(obj):
        m = re.fullmatch(r"DW_OP_reg(\d+) W\d+", expr)
        if m and hi > lo:
            out.add((fn, name, lo, hi, int(m.group(1))))
    return out


def ours_registers(locs: list[VarLocation]) -> set[tuple[str, str, int, int, int]]:
    return {(v.function, v.name, v.lo, v.hi, v.reg) for v in locs if v.reg is not None}


# --------------------------------------------------------------------------------------------
# Oracle 2: llvm-objdump's disassembly and symbol table.

@dataclass
class Disasm:
    insns: dict[str, dict[int, str]]              # section -> index -> text
    functions: dict[str, tuple[str, int]]         # function -> (section, first index)
    relocs: dict[str, dict[int, str]]             # section -> index -> relocated symbol


def objdump(obj: Path) -> Disasm:
    text = subprocess.run([OBJDUMP, "-dr", "--no-show-raw-insn", str(obj)], capture_output=True,
                          text=True, check=True).stdout
    insns: dict[str, dict[int, str]] = {}
    functions: dict[str, tuple[str, int]] = {}
    relocs: dict[str, dict[int, str]] = {}
    section = pending_fn = None
    for line in text.splitlines():
        if m := re.match(r"Disassembly of section (.*):$", line):
            section = m.group(1)
            insns[section], relocs[section] = {}, {}
        elif m := re.match(r"[0-9a-f]+ <(.*)>:$", line):
            functions[m.group(1)] = (section, -1)
            pending_fn = m.group(1)
        elif m := re.match(r"\s+(\d+):\t(.*)$", line):
            idx = int(m.group(1))
            insns[section][idx] = m.group(2).strip()
            if pending_fn is not None:
                functions[pending_fn] = (section, idx)
                pending_fn = None
        elif m := re.match(r"\s+([0-9a-f]+):\s+R_BPF_\w+\s+(\S+)", line):
            relocs[section][int(m.group(1), 16) // 8] = m.group(2)
    return Disasm(insns, functions, relocs)


def symbol_ranges(obj: Path) -> set[tuple[str, str, int, int]]:
    """(function, section, lo, hi) of every FUNC symbol, from `llvm-objdump -t`."""
    text = subprocess.run([OBJDUMP, "-t", str(obj)], capture_output=True, text=True, check=True).stdout
    out = set()
    for line in text.splitlines():
        m = re.match(r"([0-9a-f]+) [lgw ]\s+F (\S+)\t([0-9a-f]+) (?:\.\w+ )?(\S+)$", line)
        if m:
            lo = int(m.group(1), 16) // 8
            out.add((m.group(4), m.group(2), lo, lo + int(m.group(3), 16) // 8))
    return out


def r10_offsets_addressed(insns: dict[int, str], lo: int, hi: int) -> set[int]:
    """Stack offsets the code in [lo, hi) touches: `(r10 - 0xN)` operands, and addresses
    made as `rX = r10` ... `rX += -0xN`."""
    out = set()
    holds_r10: set[str] = set()
    for idx in sorted(i for i in insns if lo <= i < hi):
        text = insns[idx]
        for m in re.finditer(r"\(r10 - 0x([0-9a-f]+)\)", text):
            out.add(-int(m.group(1), 16))
        if m := re.fullmatch(r"(r\d) = r10", text):
            holds_r10.add(m.group(1))
            continue
        if (m := re.fullmatch(r"(r\d) \+= -0x([0-9a-f]+)", text)) and m.group(1) in holds_r10:
            out.add(-int(m.group(2), 16))
        if m := re.match(r"([rw]\d) ", text):
            holds_r10.discard("r" + m.group(1)[1:])
    return out


def call_index(dis: Disasm, section: str, callee: str) -> int:
    hits = [i for i, sym in dis.relocs[section].items() if sym == callee and "call" in dis.insns[section][i]]
    assert len(hits) == 1, (callee, hits)
    return hits[0]


# --------------------------------------------------------------------------------------------
# Objects

class CorpusObjects:
    """Corpus cases compiled on first use (clang takes ~0.5 s a case: most of it vmlinux.h),
    so running one test compiles one case and the whole-corpus sweep compiles in parallel."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self._objs: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self._objs:
            self._objs[name] = clang_object(CORPUS_CASES / f"{name}.bpf.c", self.out_dir)
        return self._objs[name]

    def all(self) -> dict[str, Path]:
        missing = [n for n in corpus_cases() if n not in self._objs]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for name, obj in zip(missing, pool.map(lambda n: clang_object(CORPUS_CASES / f"{n}.bpf.c", self.out_dir), missing)):
                self._objs[name] = obj
        return {n: self._objs[n] for n in corpus_cases()}


@pytest.fixture(scope="session")
def corpus_objects(tmp_path_factory) -> CorpusObjects:
    return CorpusObjects(tmp_path_factory.mktemp("dwarf_corpus"))


INLINE_SRC = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, int); __type(value, long);
         __uint(max_entries, 4); } m SEC(".maps");

static __always_inline long bump(long *slot, long by)
{
	long old = *slot;
	*slot = old + by;
	return old;
}

SEC("tc")
int inl(struct __sk_buff *skb)
{
	int key = skb->len & 3;
	long *v = bpf_map_lookup_elem(&m, &key);
	if (!v)
		return 0;
	return bump(v, skb->mark) > 10;
}
char _license[] SEC("license") = "GPL";
"""

# Register pressure across helper calls forces spills (DW_OP_breg10 in location lists),
# and address-taken locals of several sizes live on the stack (DW_OP_fbreg).
STACK_SRC = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, int); __type(value, long);
         __uint(max_entries, 4); } m SEC(".maps");
struct big { long a, b, c; };

static __noinline int spill(struct __sk_buff *skb)
{
	struct big b = { .a = skb->len };
	int k1 = 1;
	char buf[20];
	long *p1 = bpf_map_lookup_elem(&m, &k1);
	long *p2 = bpf_map_lookup_elem(&m, &b);
	long *p3 = bpf_map_lookup_elem(&m, &buf);
	long *p4 = bpf_map_lookup_elem(&m, &k1);
	long *p5 = bpf_map_lookup_elem(&m, &k1);
	long *p6 = bpf_map_lookup_elem(&m, &k1);
	if (!p1 || !p2 || !p3 || !p4 || !p5 || !p6)
		return 0;
	return *p1 + *p2 + *p3 + *p4 + *p5 + *p6 + skb->len;
}

/* Leaf functions: no call, so the frame is rounded only to its objects' alignment. */
static __noinline int leaf(int a)
{
	volatile int x = a;
	volatile char c = 1;
	return x + c;
}

static __noinline int leaf2(int a)
{
	volatile char c = a;
	volatile short s = 1;
	return s + c;
}

SEC("tc")
int top(struct __sk_buff *skb)
{
	return spill(skb) + leaf(skb->len) + leaf2(skb->mark);
}
char _license[] SEC("license") = "GPL";
"""

TYPES_SRC = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct pair { int a; int b; };
enum color { RED, GREEN };
typedef unsigned int u32_t;

SEC("tc")
int types(struct __sk_buff *skb)
{
	const char *s = "x";
	char *const cp = 0;
	int (*fn)(void *, int) = 0;
	int grid[2][3] = {};
	struct pair p = {};
	struct { int x; } anon = {};
	enum color c = RED;
	u32_t u = skb->len;
	unsigned long long *ull = 0;
	volatile long vl = 1;
	const struct pair *const cpp = &p;
	return s[0] + (cp != 0) + (fn != 0) + grid[1][2] + p.a + anon.x + c + u + (ull != 0) + vl + cpp->b;
}
char _license[] SEC("license") = "GPL";
"""


# --------------------------------------------------------------------------------------------
# The cases the brief names

def test_obj_leak_e_lives_in_r0_right_after_bpf_obj_new(corpus_objects):
    obj = corpus_objects["obj_leak"]
    locs = load(obj)
    e = [v for v in locs if v.name == "e"]
    assert len(e) == 1
    e = e[0]
    assert (e.function, e.section, e.reg, e.stack_off, e.type_name) == ("obj_leak", "tc", 0, None, "struct elem *")
    # objdump: the instruction before `lo` is the call that produced r0.
    dis = objdump(obj)
    assert e.lo == call_index(dis, "tc", "bpf_obj_new_impl") + 1
    # dwarfdump: the location list of `e`, exactly.
    assert ours_registers([e]) == {t for t in oracle_registers(obj) if t[1] == "e"}
    assert e.decl_file == str(CORPUS_CASES / "obj_leak.bpf.c") and e.decl_line == 7


def test_list_push_ok_e_range_ends_at_the_call_that_clobbers_r0(corpus_objects):
    obj = corpus_objects["list_push_ok"]
    e = [v for v in load(obj) if v.name == "e"]
    dis = objdump(obj)
    new = call_index(dis, "tc", "bpf_obj_new_impl")
    assert ours_registers(e) == {t for t in oracle_registers(obj) if t[1] == "e"}
    assert [(v.reg, v.lo) for v in e] == [(0, new + 1)]
    # clang copies e to r6 (`r6 = r0`) only to turn it into &e->node (`r6 += 8`), so the
    # DWARF never says e is in r6, and neither do we. r0 stays e up to and including the
    # bpf_spin_lock call that clobbers it.
    copy = next(i for i, t in dis.insns["tc"].items() if t == "r6 = r0")
    assert dis.insns["tc"][copy + 2] == "r6 += 0x8"
    assert "call" in dis.insns["tc"][e[0].hi - 1]
    assert all(v.reg != 6 for v in e)


def test_address_taken_local_is_on_the_stack_at_its_real_r10_offset(corpus_objects):
    obj = corpus_objects["kptr_stash_ok"]
    key = [v for v in load(obj) if v.name == "key"]
    assert len(key) == 1
    key = key[0]
    dis = objdump(obj)
    start = dis.functions["kptr_stash_ok"][1]
    end = max(dis.insns["tc"]) + 1
    assert (key.reg, key.stack_off, key.type_name) == (None, -4, "int")
    assert (key.lo, key.hi) == (start, end)          # an exprloc: the whole function
    # The code stores key at r10-4 and passes r10-4 to bpf_map_lookup_elem ...
    assert "*(u32 *)(r10 - 0x4) = r1" in dis.insns["tc"].values()
    assert -4 in r10_offsets_addressed(dis.insns["tc"], start, end)
    # ... while clang-19's DWARF says fbreg +4: the frame-size bias we undo.
    raw = [expr for fn, name, _, _, expr in dwarfdump_locations(obj) if name == "key"]
    assert raw == ["DW_OP_fbreg +4"]


def test_context_parameter_is_in_r1_at_instruction_0(corpus_objects):
    obj = corpus_objects["obj_leak_one_path"]
    skb = sorted((v for v in load(obj) if v.name == "skb"), key=lambda v: v.lo)
    assert skb[0].function == "obj_leak_one_path"
    assert (skb[0].lo, skb[0].reg, skb[0].type_name) == (0, 1, "struct __sk_buff *")
    # After `r6 = r1` the context lives on in r6.
    assert objdump(obj).insns["tc"][0] == "r6 = r1"
    assert (skb[1].lo, skb[1].reg) == (skb[0].hi, 6)
    assert ours_registers(skb) == {t for t in oracle_registers(obj) if t[1] == "skb"}


def test_static_noinline_subprogram_is_in_text_with_e_in_r1(corpus_objects):
    obj = corpus_objects["subprog_release_ok"]
    locs = load(obj)
    consume = [v for v in locs if v.function == "consume"]
    assert [(v.name, v.section, v.reg, v.lo) for v in consume] == [("e", ".text", 1, 0)]
    assert consume[0].hi == call_index(objdump(obj), ".text", "bpf_obj_drop_impl") + 1
    caller = [v for v in locs if v.function == "subprog_release_ok"]
    assert {v.section for v in caller} == {"tc"}
    assert ours_registers(locs) == oracle_registers(obj)
    assert set(ranges_of(obj)) == {
        FunctionRange("consume", ".text", 0, 3, str(CORPUS_CASES / "subprog_release_ok.bpf.c"), 10),
        FunctionRange("subprog_release_ok", "tc", 0, 9, str(CORPUS_CASES / "subprog_release_ok.bpf.c"), 16),
    }


def test_variables_of_an_inlined_helper(tmp_path):
    obj = compile_source(tmp_path, "inl", INLINE_SRC)
    locs = load(obj)
    bump = {v.name: v for v in locs if v.function == "bump"}
    assert set(bump) == {"slot", "by", "old"}
    # Name, type and declaration come through DW_AT_abstract_origin.
    assert (bump["slot"].type_name, bump["slot"].decl_line) == ("long *", 8)
    assert (bump["old"].type_name, bump["old"].decl_line) == ("long", 10)
    assert bump["old"].decl_file == str(tmp_path / "inl.bpf.c")
    # The inlined copy's code is inside inl's, in section tc.
    inl = next(r for r in ranges_of(obj) if r.function == "inl")
    for v in bump.values():
        assert v.section == "tc" and inl.lo <= v.lo < v.hi <= inl.hi
    # Exactly what the DWARF says, including exprloc params spanning the inlined range.
    assert ours_registers(locs) == oracle_registers(obj)
    # `old = *slot` is the first load through v's register inside the inlined body.
    dis = objdump(obj)
    load_idx = bump["old"].lo - 1
    assert re.fullmatch(rf"r{bump['old'].reg} = \*\(u64 \*\)\(r{bump['slot'].reg} \+ 0x0\)", dis.insns["tc"][load_idx])


@pytest.mark.parametrize("opt", ["-O2", "-O0"])
def test_stack_offsets_match_the_code(tmp_path, opt):
    obj = compile_source(tmp_path, "stack", STACK_SRC, [opt])
    locs = load(obj)
    dis = objdump(obj)
    stack = [v for v in locs if v.stack_off is not None]
    assert stack
    for v in stack:
        section, start = dis.functions[v.function]
        fn = next(r for r in ranges_of(obj) if r.function == v.function)
        assert v.section == section and fn.lo == start
        assert v.stack_off in r10_offsets_addressed(dis.insns[section], fn.lo, fn.hi), v
    by_name = {(v.function, v.name): v.stack_off for v in stack}
    if opt == "-O2":
        # Spilled pointers (DW_OP_breg10 in location lists) and address-taken locals.
        assert by_name[("spill", "p1")] == -0x38 and by_name[("spill", "p2")] == -0x40
        assert by_name[("spill", "k1")] == -0x1C and by_name[("spill", "buf")] == -0x30
        # Leaves: a 5-byte frame rounds to 8 (int alignment), a 3-byte one to 4 (short).
        assert by_name[("leaf", "x")] == -4 and by_name[("leaf", "c")] == -5
        assert by_name[("leaf2", "c")] == -1 and by_name[("leaf2", "s")] == -4
    assert ours_registers(locs) == oracle_registers(obj)


def test_dwarf4_gives_the_same_answer_as_dwarf5(tmp_path):
    v5 = compile_source(tmp_path, "inl", INLINE_SRC)
    d4 = tmp_path / "d4"
    d4.mkdir()
    v4 = compile_source(d4, "inl", INLINE_SRC, ["-gdwarf-4"])
    assert b".debug_loc\0" in v4.read_bytes() and b".debug_loclists" not in v4.read_bytes()
    strip = lambda locs: [(v.function, v.name, v.type_name, v.section, v.lo, v.hi, v.reg,
                           v.stack_off, v.decl_line, Path(v.decl_file).name) for v in locs]
    assert strip(load(v4)) == strip(load(v5))
    assert [r[:4] for r in ranges_of(v4)] == [r[:4] for r in ranges_of(v5)]
    s4 = tmp_path / "s4"
    s4.mkdir()
    stack4 = compile_source(s4, "stack", STACK_SRC, ["-gdwarf-4"])
    stack5 = compile_source(tmp_path, "stack", STACK_SRC)
    assert strip(load(stack4)) == strip(load(stack5))


def test_type_names_are_c_spellings(tmp_path):
    obj = compile_source(tmp_path, "types", TYPES_SRC, ["-O0"])
    types = {v.name: v.type_name for v in load(obj)}
    assert types == {
        "skb": "struct __sk_buff *",
        "s": "const char *",
        "cp": "char *const",
        "fn": "int (*)(void *, int)",
        "grid": "int[2][3]",
        "p": "struct pair",
        "anon": "struct (anon)",
        "c": "enum color",
        "u": "u32_t",
        "ull": "unsigned long long *",
        "vl": "volatile long",
        "cpp": "const struct pair *const",
    }
    # -O0 keeps everything on the stack: each offset is one the code addresses.
    dis = objdump(obj)
    fn = ranges_of(obj)[0]
    addressed = r10_offsets_addressed(dis.insns["tc"], fn.lo, fn.hi)
    for v in load(obj):
        assert v.stack_off in addressed, v


def test_no_debug_info_means_no_locations(tmp_path):
    # (Not a corpus case: CO-RE builtins such as bpf_core_type_id_local() refuse -g0.)
    obj = compile_source(tmp_path, "nodebug", STACK_SRC, ["-g0"])
    elf = ELFFile(io.BytesIO(obj.read_bytes()))
    assert elf.get_section_by_name(".debug_info") is None
    assert variable_locations(elf) == [] and function_ranges(elf) == []


# --------------------------------------------------------------------------------------------
# The whole corpus against both oracles, and the time it takes

def test_whole_corpus_matches_the_oracles(corpus_objects, capsys):
    timings = []
    for name, obj in sorted(corpus_objects.all().items()):
        data = obj.read_bytes()
        best = float("inf")
        for _ in range(3):   # best of three: measure the code, not a busy machine's scheduler
            start = time.perf_counter()
            locs = variable_locations(ELFFile(io.BytesIO(data)))
            best = min(best, time.perf_counter() - start)
        timings.append((best, name, len(data)))
        fns = ranges_of(obj)

        assert {(f.function, f.section, f.lo, f.hi) for f in fns} == symbol_ranges(obj), name
        assert ours_registers(locs) == oracle_registers(obj), name
        dis = objdump(obj)
        for v in locs:
            assert (v.reg is None) != (v.stack_off is None), v
            assert v.lo < v.hi and v.name and v.type_name and v.decl_line > 0, v
            assert v.decl_file.endswith((".bpf.c", ".h")), v
            if v.stack_off is not None:
                fn = next(f for f in fns if f.section == v.section and f.lo <= v.lo < f.hi)
                assert v.stack_off in r10_offsets_addressed(dis.insns[v.section], fn.lo, fn.hi), v
    with capsys.disabled():
        total = sum(t for t, _, _ in timings)
        slowest = max(timings)
        print(f"\n[dwarf] {len(timings)} corpus objects: {1000 * total / len(timings):.1f} ms mean, "
              f"slowest {1000 * slowest[0]:.1f} ms ({slowest[1]}, {slowest[2] // 1024} KiB)")
    # The target is well under 100 ms; the bound leaves room for a loaded CI machine.
    assert slowest[0] < 0.5


# --------------------------------------------------------------------------------------------
# Malformed input: DwarfError and nothing else, promptly

def _section_header(data: bytes, elf: ELFFile, name: str) -> tuple[int, int, int]:
    """(header offset, section data offset, size) of section `name`."""
    for idx, sec in enumerate(elf.iter_sections()):
        if sec.name == name:
            hdr = elf["e_shoff"] + idx * elf["e_shentsize"]
            return hdr, sec["sh_offset"], sec["sh_size"]
    raise KeyError(name)


def _try(data: bytes) -> None:
    try:
        elf = ELFFile(io.BytesIO(data))
    except Exception:   # the ELF itself no longer parses: not this module's input
        return
    start = time.perf_counter()
    for fn in (variable_locations, function_ranges):
        try:
            fn(elf)
        except DwarfError:
            pass
    assert time.perf_counter() - start < 1.0


def test_garbled_dwarf_raises_only_dwarf_error(corpus_objects, tmp_path):
    rng = random.Random(1234)
    objs = [corpus_objects["subprog_release_ok"].read_bytes(), corpus_objects["kptr_stash_ok"].read_bytes(),
            compile_source(tmp_path, "inl", INLINE_SRC).read_bytes()]
    targets = [".debug_info", ".debug_abbrev", ".debug_loclists", ".debug_addr", ".debug_rnglists",
               ".debug_str_offsets", ".debug_line", ".rel.debug_addr", ".rel.debug_info"]
    mutations = 0
    for original in objs:
        elf = ELFFile(io.BytesIO(original))
        present = [t for t in targets if elf.get_section_by_name(t) is not None]
        for _ in range(130):
            data = bytearray(original)
            _, off, size = _section_header(original, elf, rng.choice(present))
            for _ in range(rng.choice([1, 1, 2, 4, 16])):
                pos = off + rng.randrange(size)
                data[pos] = rng.choice([0x00, 0xFF, 0x80, data[pos] ^ (1 << rng.randrange(8)), rng.randrange(256)])
            _try(bytes(data))
            mutations += 1
        # Truncations: shrink a section's size in its header.
        for name in present:
            hdr, _, size = _section_header(original, elf, name)
            for cut in sorted({0, 1, size // 3, size // 2, size - 1}):
                data = bytearray(original)
                struct.pack_into("<Q", data, hdr + 32, cut)   # Elf64_Shdr.sh_size
                _try(bytes(data))
                mutations += 1
    assert mutations > 400


def test_self_referencing_types_terminate(tmp_path):
    # Point every reference to `int` at `struct pair` instead: pair's own members become
    # `struct pair` (a cycle), and so do the variables. Unfolding that naively is 2**depth
    # work; we must answer (or raise DwarfError) at once.
    obj = compile_source(tmp_path, "types", TYPES_SRC, ["-O0"])
    dies = dwarfdump_dies(obj)
    int_off = next(d.offset for d in dies if d.tag == "DW_TAG_base_type" and _dump_name(d) == "int")
    pair_off = next(d.offset for d in dies if d.tag == "DW_TAG_structure_type" and _dump_name(d) == "pair")
    data = bytearray(obj.read_bytes())
    elf = ELFFile(io.BytesIO(bytes(data)))
    _, off, size = _section_header(bytes(data), elf, ".debug_info")
    info = bytes(data[off:off + size]).replace(struct.pack("<I", int_off), struct.pack("<I", pair_off))
    data[off:off + size] = info
    start = time.perf_counter()
    try:
        locs = variable_locations(ELFFile(io.BytesIO(bytes(data))))
    except DwarfError:
        locs = None
    assert time.perf_counter() - start < 1.0
    if locs is not None:   # the rewrite happens to keep the DWARF well-formed: check it took
        types = {v.name: v.type_name for v in locs}
        assert types["p"] == "struct pair" and types["grid"] == "struct pair[2][3]"


def test_dwarf_error_is_a_value_error():
    assert issubclass(DwarfError, ValueError)
