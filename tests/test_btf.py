"""BTF / .BTF.ext parser tests against independent oracles.

* bpftool's raw dump (`bpftool btf dump file X`) for every type's kind, name and layout,
  in corpus objects, a purpose-written type zoo, a big-endian object, split BTF and the
  running kernel's vmlinux;
* llvm-objdump's `-dl` line annotations for .BTF.ext line_info, the ELF symbol table for
  func_info and for the offsets of global variables, instruction immediates for CO-RE;
* hand-built and mutilated BTF for robustness: only BtfError may escape.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpf_lsp.frontend.btf import (
    Btf, BtfError, BtfExt, BtfType, CoreRelocKind, Kind, Member,
)
from conftest import CORPUS_CASES, clang_object

VMLINUX = Path("/sys/kernel/btf/vmlinux")
needs_bpftool = pytest.mark.skipif(not shutil.which("bpftool"), reason="bpftool not installed")
needs_vmlinux = pytest.mark.skipif(not VMLINUX.exists(), reason="no /sys/kernel/btf/vmlinux")

LOCK_FIELDS = {"bpf_spin_lock", "bpf_list_head", "bpf_rb_root", "bpf_list_node", "bpf_rb_node",
               "bpf_refcount"}

# A program exercising every spelling type_name() must get right; compiled with clang
# directly (no kernel headers needed).
TYPE_ZOO = r"""
typedef unsigned int u32;
struct fwd_only;
union fwd_u;
enum sgn { NEG = -1, POS = 1 };
enum big { SMALL = 1, BIG = 0x100000000ULL };
struct bits { unsigned a:3; unsigned b:5; int c; u32 d:7; };
struct inner {
	int x;
	struct { int y; long z; };
	union { char u1; short u2; };
};
struct all {
	const char *s;
	char *const cp;
	volatile int vi;
	int *restrict rp;
	int (*fp)(void *, const char *);
	int arr[4][2];
	struct inner in[3];
	struct fwd_only *fo;
	union fwd_u *fu;
	float f;
	double d;
	enum sgn e;
	enum big eb;
	struct bits bf;
	u32 u;
	void *vp;
	const volatile long cvl;
};
struct all g_all;
int use(struct all *a, u32 n) { return a ? a->u + n : 0; }
"""


# --------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(case, extra=None) -> Path of the compiled corpus object (compiled once)."""
    cache: dict[tuple, Path] = {}

    def _build(case: str, extra: list[str] | None = None) -> Path:
        key = (case, tuple(extra or ()))
        if key not in cache:
            out = tmp_path_factory.mktemp(case)
            cache[key] = clang_object(CORPUS_CASES / f"{case}.bpf.c", out, extra)
        return cache[key]
    return _build


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    clang = shutil.which("clang-19") or shutil.which("clang")
    if not clang:
        pytest.skip("no clang")
    d = tmp_path_factory.mktemp("zoo")
    (d / "zoo.c").write_text(TYPE_ZOO)
    subprocess.run([clang, "-target", "bpf", "-O2", "-g", "-c", str(d / "zoo.c"), "-o", str(d / "zoo.o")],
                   check=True, capture_output=True)
    return d / "zoo.o"


def sections(obj: Path) -> tuple[bytes, bytes | None]:
    with obj.open("rb") as f:
        elf = ELFFile(f)
        ext = elf.get_section_by_name(".BTF.ext")
        return elf.get_section_by_name(".BTF").data(), ext.data() if ext else None


def load(obj: Path) -> tuple[Btf, BtfExt | None]:
    btf_data, ext_data = sections(obj)
    btf = Btf.parse(btf_data)
    return btf, (BtfExt.parse(ext_data, btf) if ext_data else None)


def one(btf: Btf, name: str, kind: Kind) -> BtfType:
    found = btf.find_by_name(name, kind)
    assert len(found) == 1, (name, kind, found)
    return found[0]


_LINKAGE = ["static", "global", "extern"]
_INT_ENC = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}


def bpftool_raw(btf: Btf, ids) -> str:
    """Render types the way `bpftool btf dump file X` (format raw) does."""
    out = []
    for i in ids:
        t = btf[i]
        k = t.kind
        s = f"[{i}] {k.name} '{t.name or '(anon)'}'"
        if k == Kind.INT:
            s += (f" size={t.size} bits_offset={t.int_offset} nr_bits={t.int_bits}"
                  f" encoding={_INT_ENC.get(t.int_encoding, 'UNKN')}")
        elif k in (Kind.PTR, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF, Kind.TYPE_TAG):
            s += f" type_id={t.type_id}"
        elif k == Kind.ARRAY:
            s += f" type_id={t.elem_type} index_type_id={t.index_type} nr_elems={t.nelems}"
        elif k in (Kind.STRUCT, Kind.UNION):
            s += f" size={t.size} vlen={len(t.members)}"
            for m in t.members:
                s += f"\n\t'{m.name or '(anon)'}' type_id={m.type_id} bits_offset={m.bit_offset}"
                if m.bitfield_size:
                    s += f" bitfield_size={m.bitfield_size}"
        elif k in (Kind.ENUM, Kind.ENUM64):
            s += f" encoding={'SIGNED' if t.is_signed else 'UNSIGNED'} size={t.size} vlen={len(t.vals)}"
            suffix = ("LL" if t.is_signed else "ULL") if k == Kind.ENUM64 else ""
            for name, val in t.vals:
                s += f"\n\t'{name}' val={val}{suffix}"
        elif k == Kind.FWD:
            s += f" fwd_kind={'union' if t.is_union else 'struct'}"
        elif k == Kind.FUNC:
            s += f" type_id={t.type_id} linkage={_LINKAGE[t.linkage]}"
        elif k == Kind.FUNC_PROTO:
            s += f" ret_type_id={t.type_id} vlen={len(t.params)}"
            for name, ptype in t.params:
                s += f"\n\t'{name or '(anon)'}' type_id={ptype}"
        elif k == Kind.VAR:
            s += f" type_id={t.type_id}, linkage={_LINKAGE[t.linkage]}"
        elif k == Kind.DATASEC:
            s += f" size={t.size} vlen={len(t.vars)}"
            for tid, off, size in t.vars:
                s += f"\n\ttype_id={tid} offset={off} size={size} ({btf[tid].kind.name} '{btf[tid].name}')"
        elif k == Kind.FLOAT:
            s += f" size={t.size}"
        elif k == Kind.DECL_TAG:
            s += f" type_id={t.type_id} component_idx={t.component_idx}"
        out.append(s)
    return "\n".join(out) + "\n"


def bpftool_dump(path: Path, base: Path | None = None) -> str:
    argv = ["bpftool", *(["-B", str(base)] if base else []), "btf", "dump", "file", str(path)]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def datasec_fixed(btf: Btf, obj: Path, section: str) -> BtfType:
    """The DATASEC of `section` with offsets from the ELF symbol table (as libbpf does)."""
    with obj.open("rb") as f:
        elf = ELFFile(f)
        idx = next(i for i, s in enumerate(elf.iter_sections()) if s.name == section)
        offsets = {sym.name: sym["st_value"] for sym in elf.get_section_by_name(".symtab").iter_symbols()
                   if sym["st_shndx"] == idx and sym["st_info"]["type"] == "STT_OBJECT"}
        size = elf.get_section(idx)["sh_size"]
    ds = one(btf, section, Kind.DATASEC)
    btf.fixup_datasec(ds.id, size, offsets)
    return ds


# --------------------------------------------------------------------------- bpftool oracle

@needs_bpftool
@pytest.mark.parametrize("case", ["list_push_ok", "kptr_stash_ok", "refcount_two_collections_ok",
                                  "rbtree_add_ok", "kptr_unstash_fwd_type"])
def test_every_type_matches_bpftool(build, case):
    obj = build(case)
    btf, _ = load(obj)
    assert bpftool_raw(btf, range(1, len(btf))) == bpftool_dump(obj)
    assert [t.id for t in btf.types] == list(range(len(btf))) and btf.types[0].kind == Kind.VOID
    assert list(btf) == list(btf.types) == [btf[0], *btf.own_types]


@needs_bpftool
def test_type_zoo_matches_bpftool_and_spells_c(zoo):
    btf, _ = load(zoo)
    assert bpftool_raw(btf, range(1, len(btf))) == bpftool_dump(zoo)

    all_ = btf.struct_by_name("all")
    spelled = {m.name: btf.type_name(m.type_id) for m in all_.members}
    assert spelled == {
        "s": "const char *", "cp": "char *const", "vi": "volatile int", "rp": "int *restrict",
        "fp": "int (*)(void *, const char *)", "arr": "int [4][2]", "in": "struct inner [3]",
        "fo": "struct fwd_only *", "fu": "union fwd_u *", "f": "float", "d": "double",
        "e": "enum sgn", "eb": "enum big", "bf": "struct bits", "u": "u32", "vp": "void *",
        "cvl": "const volatile long",
    }
    member = {m.name: m for m in all_.members}
    assert btf.c_decl(member["arr"].type_id, "arr") == "int arr[4][2]"
    assert btf.c_decl(member["fp"].type_id, "fp") == "int (*fp)(void *, const char *)"
    assert btf.type_name(btf.func_by_name("use").id) == "int use(struct all *a, u32 n)"
    assert btf.type_name(one(btf, "g_all", Kind.VAR).id) == "struct all"
    # Sizes: C's sizeof as clang computed it for the target (the STRUCT's own size).
    assert btf.size_of(member["arr"].type_id) == 32
    assert btf.size_of(member["in"].type_id) == 3 * btf.struct_by_name("inner").size
    assert btf.size_of(member["u"].type_id) == 4 and btf.size_of(member["s"].type_id) == 8
    assert btf.size_of(one(btf, "g_all", Kind.VAR).id) == all_.size
    with pytest.raises(BtfError, match="incomplete"):
        btf.size_of(btf[member["fo"].type_id].type_id)
    assert btf[btf.resolve(member["u"].type_id)].name == "unsigned int"
    assert btf.resolve(member["cvl"].type_id) == btf.find_by_name("long", Kind.INT)[0].id

    # Bitfields use the kind_flag member encoding.
    bits = btf.struct_by_name("bits")
    assert bits.kind_flag
    assert [(m.name, m.bit_offset, m.bitfield_size, m.offset) for m in bits.members] == [
        ("a", 0, 3, 0), ("b", 3, 5, 0), ("c", 32, 0, 4), ("d", 64, 7, 8)]
    # Enums: signedness from kind_flag, 64-bit values from ENUM64.
    assert one(btf, "sgn", Kind.ENUM).vals == [("NEG", -1), ("POS", 1)]
    assert one(btf, "big", Kind.ENUM64).vals == [("SMALL", 1), ("BIG", 1 << 32)]
    assert btf.struct_by_name("fwd_only").kind == Kind.FWD
    assert btf.struct_by_name("fwd_u") is None  # a union FWD is not a struct
    assert one(btf, "fwd_u", Kind.FWD).is_union

    # Anonymous members are looked through, with offsets relative to the outer struct.
    inner = btf.struct_by_name("inner")
    y, z, u2 = (btf.find_member(inner.id, n) for n in ("y", "z", "u2"))
    assert (y.offset, z.offset, u2.offset) == (8, 16, 24)
    assert btf.find_member(inner.id, "nope") is None
    assert [n for n, _ in btf.member_at(inner.id, 17)] == ["z"]
    assert [n for n, _ in btf.member_at(inner.id, 4)] == []  # padding
    # Arrays: element index folded into the member name, descending into the element.
    in_off = member["in"].offset
    path = btf.member_at(all_.id, in_off + inner.size + 16)
    assert [n for n, _ in path] == ["in[1]", "z"] and path[0][1].id == inner.id
    assert [n for n, _ in btf.member_at(all_.id, member["arr"].offset + 20)] == ["arr[2][1]"]


@needs_bpftool
def test_big_endian_object(build):
    le, be = build("list_push_ok"), build("list_push_ok", ["-target", "bpfeb"])
    with be.open("rb") as f:
        assert not ELFFile(f).little_endian
    btf_le, ext_le = load(le)
    btf_be, ext_be = load(be)
    assert btf_be.byteorder == "big" and btf_le.byteorder == "little"
    assert bpftool_raw(btf_be, range(1, len(btf_be))) == bpftool_dump(be) == bpftool_dump(le)
    assert ext_be.line_info == ext_le.line_info and ext_be.func_info == ext_le.func_info


# --------------------------------------------------------------------------- vmlinux / split

@pytest.fixture(scope="module")
def vmlinux() -> tuple[Btf, bytes, float]:
    if not VMLINUX.exists():
        pytest.skip("no /sys/kernel/btf/vmlinux")
    data = VMLINUX.read_bytes()
    t0 = time.perf_counter()
    btf = Btf.parse(data)
    return btf, data, time.perf_counter() - t0


@needs_bpftool
def test_vmlinux_matches_bpftool(vmlinux, capsys):
    btf, data, seconds = vmlinux
    with capsys.disabled():
        print(f"\n[btf] parsed {VMLINUX} ({len(data) / 1e6:.1f} MB, {len(btf)} types) in {seconds:.3f} s")
    assert bpftool_raw(btf, range(1, len(btf))) == bpftool_dump(VMLINUX)


@needs_vmlinux
def test_vmlinux_queries(vmlinux):
    btf, _, _ = vmlinux
    task = btf.struct_by_name("task_struct")
    assert task.kind == Kind.STRUCT and btf.size_of(task.id) == task.size
    pid = btf.find_member(task.id, "pid")
    assert btf.type_name(pid.type_id) == "pid_t"
    assert btf.member_at(task.id, pid.offset)[0][0] == "pid"
    # The kernel's own bpf_list_head layout, seen through a kfunc prototype.
    push = btf.func_by_name("bpf_list_push_front_impl")
    if push is not None:
        proto = btf.func_proto(push.id)
        assert btf.type_name(proto.params[0][1]) == "struct bpf_list_head *"
        assert "bpf_kfunc" in btf.decl_tags(push.id)
    assert btf.size_of(btf.struct_by_name("bpf_spin_lock").id) == 4
    assert btf.find_by_name("task_struct", Kind.STRUCT) == [task]


def _vmlinux_strings(data: bytes) -> tuple[bytes, int]:
    """vmlinux's string section and length, read with a header parse of our own."""
    hdr_len, _, _, str_off, str_len = struct.unpack_from("<IIIII", data, 4)
    return data[hdr_len + str_off:hdr_len + str_off + str_len], str_len


def raw_btf(types: list[list[int]], strings: bytes = b"\0", order: str = "<") -> bytes:
    """A BTF blob from type records given as 32-bit words."""
    tsec = b"".join(struct.pack(f"{order}{len(t)}I", *t) for t in types)
    hdr = struct.pack(order + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(tsec), len(tsec), len(strings))
    return hdr + tsec + strings


def info(kind: Kind, vlen: int = 0, kflag: int = 0) -> int:
    return kflag << 31 | int(kind) << 24 | vlen


@needs_bpftool
def test_split_btf_on_vmlinux(vmlinux, tmp_path):
    base, data, _ = vmlinux
    if sys.byteorder != "little":
        pytest.skip("the split blob below is built in the byte order of vmlinux on x86")
    base_strs, base_str_len = _vmlinux_strings(data)
    n = len(base)
    task = base.struct_by_name("task_struct").id
    int_id = base.find_by_name("int", Kind.INT)[0].id
    own = b"\0split_s\0owner\0split_t\0tagged\0"
    s = {name: base_str_len + own.index(name.encode() + b"\0") for name in ("split_s", "owner", "split_t", "tagged")}
    pid_off = base_strs.index(b"\0pid\0") + 1  # a member name shared with the base's strings
    types = [
        [0, info(Kind.PTR), task],                                           # n
        [s["split_s"], info(Kind.STRUCT, 2), 16, s["owner"], n, 0, pid_off, int_id, 64],  # n+1
        [s["split_t"], info(Kind.TYPEDEF), n + 1],                           # n+2
        [s["tagged"], info(Kind.DECL_TAG), task, 0xFFFFFFFF],               # n+3
    ]
    blob = raw_btf(types, own)
    (tmp_path / "split.btf").write_bytes(blob)
    split = Btf.parse(blob, base=base)
    assert (split.start_id, len(split)) == (n, n + 4)
    assert bpftool_raw(split, range(n, len(split))) in bpftool_dump(tmp_path / "split.btf", VMLINUX)
    assert [m.name for m in split[n + 1].members] == ["owner", "pid"]
    assert split.type_name(split[n + 1].members[0].type_id) == "struct task_struct *"
    assert split.type_name(n + 2) == "split_t" and split.size_of(n + 2) == 16
    assert split.struct_by_name("task_struct").id == task  # found in the base
    assert split.find_by_name("split_s")[0].id == n + 1
    assert [t.id for t in split.own_types] == [n, n + 1, n + 2, n + 3]
    assert len(split.types) == n + 4 and split.types[task] is base[task]
    assert split.decl_tags(task) == base.decl_tags(task) + ["tagged"]
    assert "tagged" not in base.decl_tags(task)  # the base's index is not modified
    with pytest.raises(BtfError):
        split[n + 4]


# --------------------------------------------------------------------------- corpus facts

def test_contains_decl_tag_on_datasec_var(build):
    obj = build("list_push_ok")
    btf, _ = load(obj)
    ghead = one(btf, "ghead", Kind.VAR)
    assert btf.decl_tags(ghead.id) == ["contains:elem:node"]
    assert btf.decl_tags(one(btf, "glock", Kind.VAR).id) == []
    ds = one(btf, ".data.A", Kind.DATASEC)
    assert ghead.id in [v for v, _, _ in ds.vars]
    assert btf.type_name(ghead.id) == "struct bpf_list_head"


def test_kptr_type_tag(build):
    btf, _ = load(build("kptr_stash_ok"))
    mv = btf.struct_by_name("map_value")
    stash = btf.find_member(mv.id, "stash")
    ptr = btf[stash.type_id]
    assert ptr.kind == Kind.PTR
    assert btf.type_tags(ptr.type_id) == ["kptr"]
    assert btf.pointee_tags(stash.type_id) == ["kptr"]
    assert btf.type_tags(stash.type_id) == []  # the PTR itself carries no tag
    assert btf.type_name(stash.type_id) == "struct elem *"
    assert btf[btf.resolve(ptr.type_id)].name == "elem"
    # Naming `v->stash` from the offset the program writes through.
    assert [(n, t.kind) for n, t in btf.member_at(mv.id, 0)] == [("stash", Kind.PTR)]
    assert btf.member_at(mv.id, 8) == []


def test_fwd_vs_complete_struct(build):
    fwd_btf, _ = load(build("kptr_unstash_fwd_type"))
    elem = fwd_btf.struct_by_name("elem")
    assert elem.kind == Kind.FWD and not elem.is_union
    with pytest.raises(BtfError):
        fwd_btf.size_of(elem.id)
    ok_btf, _ = load(build("kptr_unstash_ok"))
    elem = ok_btf.struct_by_name("elem")
    assert elem.kind == Kind.STRUCT and elem.size == 8


def test_fields_of_datasec_and_structs(build):
    obj = build("list_push_ok")
    btf, _ = load(obj)
    ds = one(btf, ".data.A", Kind.DATASEC)
    assert [off for _, off, _ in ds.vars] == [0, 0]  # clang leaves them for libbpf to fill in
    ds = datasec_fixed(btf, obj, ".data.A")
    # The ELF symbol table is the oracle: glock at 0, ghead after it at 8 (aligned(8)).
    assert btf.fields_of(ds.id, LOCK_FIELDS) == [(0, "glock", "bpf_spin_lock"), (8, "ghead", "bpf_list_head")]
    assert btf.member_at(ds.id, 12)[0][0] == "ghead"
    elem = btf.struct_by_name("elem")
    assert btf.fields_of(elem.id, LOCK_FIELDS) == [(8, "node", "bpf_list_node")]

    obj = build("refcount_two_collections_ok")
    btf, _ = load(obj)
    rnode = btf.struct_by_name("rnode")
    assert btf.fields_of(rnode.id, LOCK_FIELDS) == [
        (8, "rb", "bpf_rb_node"), (40, "ln", "bpf_list_node"), (64, "ref", "bpf_refcount")]
    assert btf.fields_of(rnode.id, {"bpf_refcount"}) == [(64, "ref", "bpf_refcount")]
    ds = datasec_fixed(btf, obj, ".data.R")
    assert btf.fields_of(ds.id, LOCK_FIELDS) == [
        (0, "rlock", "bpf_spin_lock"), (8, "rroot", "bpf_rb_root"), (24, "rlist", "bpf_list_head")]
    assert btf.decl_tags(one(btf, "rroot", Kind.VAR).id) == ["contains:rnode:rb"]
    assert [n for n, _ in btf.member_at(rnode.id, 48)] == ["ln", "__opaque[1]"]


def test_fields_of_nested_and_arrays(zoo):
    btf, _ = load(zoo)
    all_ = btf.struct_by_name("all")
    inner_off = btf.find_member(all_.id, "in").offset
    isize = btf.struct_by_name("inner").size
    # Treat `struct bits` as special: found in nested arrays of structs too.
    assert btf.fields_of(all_.id, {"bits"}) == [(btf.find_member(all_.id, "bf").offset, "bf", "bits")]
    assert btf.fields_of(all_.id, {"inner"}) == [(inner_off + k * isize, f"in[{k}]", "inner") for k in range(3)]


# --------------------------------------------------------------------------- .BTF.ext

def objdump_lines(obj: Path) -> dict[str, dict[int, int]]:
    """{section: {insn index: line}} from llvm-objdump -dl, the current line at each insn."""
    objdump = shutil.which("llvm-objdump-19") or shutil.which("llvm-objdump")
    if not objdump:
        pytest.skip("no llvm-objdump")
    text = subprocess.run([objdump, "-dl", str(obj)], check=True, capture_output=True, text=True).stdout
    out: dict[str, dict[int, int]] = {}
    section, line = None, None
    for row in text.splitlines():
        if m := re.match(r"Disassembly of section (\S+):", row):
            section, line = m.group(1), None
            out[section] = {}
        elif m := re.match(r"; (/\S+):(\d+)", row):
            line = int(m.group(2))
        elif (m := re.match(r"\s+(\d+):\t", row)) and section and line is not None:
            out[section][int(m.group(1))] = line
    return out


@pytest.mark.parametrize("case", ["obj_leak", "subprog_release_ok", "refcount_two_collections_ok"])
def test_line_info_matches_objdump(build, case):
    obj = build(case)
    btf, ext = load(obj)
    oracle = objdump_lines(obj)
    assert set(ext.line_info) == set(oracle)
    src = (CORPUS_CASES / f"{case}.bpf.c").read_text().splitlines()
    for sec, infos in ext.line_info.items():
        assert [li.insn for li in infos] == sorted(li.insn for li in infos)
        for insn, line in oracle[sec].items():
            current = [li for li in infos if li.insn <= insn][-1]
            assert current.line == line, (sec, insn)
            assert current.file.endswith(f"{case}.bpf.c")
            assert current.text == src[current.line - 1]
            assert 1 <= current.col <= len(current.text) + 1


def test_obj_new_call_line(build):
    obj = build("obj_leak")
    _, ext = load(obj)
    # The `call` of bpf_obj_new_impl: the first call instruction in objdump's listing.
    objdump = shutil.which("llvm-objdump-19") or shutil.which("llvm-objdump")
    text = subprocess.run([objdump, "-d", str(obj)], check=True, capture_output=True, text=True).stdout
    call_insn = int(re.search(r"^\s+(\d+):\t85 .*call", text, re.M).group(1))
    line = [li for li in ext.line_info["tc"] if li.insn <= call_insn][-1]
    assert "bpf_obj_new" in line.text and line.line == oracle_line(obj, "tc", call_insn)


def oracle_line(obj: Path, section: str, insn: int) -> int:
    return objdump_lines(obj)[section][insn]


def test_func_info_names_programs_and_subprograms(build):
    obj = build("refcount_two_collections_ok")
    btf, ext = load(obj)
    with obj.open("rb") as f:
        elf = ELFFile(f)
        want = {}
        for sym in elf.get_section_by_name(".symtab").iter_symbols():
            if sym["st_info"]["type"] == "STT_FUNC":
                sec = elf.get_section(sym["st_shndx"]).name
                want.setdefault(sec, set()).add((sym["st_value"] // 8, sym.name))
    got = {sec: {(fi.insn, btf[fi.type_id].name) for fi in infos} for sec, infos in ext.func_info.items()}
    assert got == want == {"tc": {(0, "refcount_two_collections_ok")}, ".text": {(0, "rless")}}
    rless = btf[next(iter(ext.func_info[".text"])).type_id]
    assert btf.type_name(rless.id) == "bool rless(struct bpf_rb_node *a, const struct bpf_rb_node *b)"


def test_core_relo_type_id_local(build):
    obj = build("obj_leak")
    btf, ext = load(obj)
    (relo,) = ext.core_relos["tc"]
    assert relo.kind == CoreRelocKind.TYPE_ID_LOCAL and relo.access_str == "0"
    assert btf[relo.type_id].name == "elem"
    # clang puts the local type id in the ld_imm64's immediate: an independent oracle.
    with obj.open("rb") as f:
        code = ELFFile(f).get_section_by_name("tc").data()
    (imm,) = struct.unpack_from("<i", code, relo.insn * 8 + 4)
    assert imm == relo.type_id


# --------------------------------------------------------------------------- robustness

def exercise(btf: Btf) -> None:
    """Call every query on every type; only BtfError may come out."""
    def quiet(fn, *args):
        try:
            fn(*args)
        except BtfError:
            pass
    for i in range(len(btf)):
        try:
            t = btf[i]
        except BtfError:
            continue
        for fn in (btf.resolve, btf.type_name, btf.size_of, btf.type_tags, btf.pointee_tags,
                   btf.decl_tags, btf.func_proto):
            quiet(fn, i)
        quiet(btf.find_by_name, t.name)
        quiet(btf.struct_by_name, t.name)
        quiet(btf.fields_of, i, LOCK_FIELDS | {t.name})
        quiet(btf.c_decl, i, "x")
        for off in (0, 4, 8, 16, 1 << 20):
            quiet(btf.member_at, i, off)
        for m in t.members[:4]:
            quiet(btf.find_member, i, m.name)
        quiet(btf.find_member, i, "nope")


def only_btf_error(fn, *args):
    try:
        return fn(*args)
    except BtfError:
        return None


def test_truncation_and_byte_flips(build, zoo):
    for obj in (build("list_push_ok"), zoo):
        btf_data, ext_data = sections(obj)
        good = Btf.parse(btf_data)
        for cut in range(0, len(btf_data), 97):
            with pytest.raises(BtfError):
                Btf.parse(btf_data[:cut])
        for cut in range(0, len(ext_data), 97):
            with pytest.raises(BtfError):
                BtfExt.parse(ext_data[:cut], good)
        # Every byte of the type section (ids, kinds, vlens, offsets), every 7th of the
        # strings (which are only ever looked up, never followed).
        t_end = 24 + struct.unpack_from("<I", btf_data, 12)[0]
        for pos in [*range(t_end), *range(t_end, len(btf_data), 7)]:
            for mask in (0xFF, 0x01) if obj == zoo else (0x80,):
                bad = bytearray(btf_data)
                bad[pos] ^= mask
                btf = only_btf_error(Btf.parse, bytes(bad))
                if btf is not None:
                    exercise(btf)
        for pos in range(len(ext_data)):
            bad = bytearray(ext_data)
            bad[pos] ^= 0xFF
            only_btf_error(BtfExt.parse, bytes(bad), good)


def test_malformed_headers():
    ok = raw_btf([[0, info(Kind.PTR), 0]])
    Btf.parse(ok)
    cases = {
        "short": ok[:10],
        "magic": b"\x00\x00" + ok[2:],
        "version": ok[:2] + b"\x02" + ok[3:],
        "hdr_len": ok[:4] + struct.pack("<I", 1 << 20) + ok[8:],
        "type_len": ok[:12] + struct.pack("<I", 1 << 20) + ok[16:],
        "misaligned": ok[:12] + struct.pack("<I", 10) + ok[16:],
        "str_start": raw_btf([[0, info(Kind.PTR), 0]], b"x\0"),
        "str_end": raw_btf([[0, info(Kind.PTR), 0]], b"\0x"),
        "no_strings": raw_btf([[0, info(Kind.PTR), 0]], b""),
    }
    for what, data in cases.items():
        with pytest.raises(BtfError):
            Btf.parse(data)
            pytest.fail(what)


@pytest.mark.parametrize("types, strings", [
    ([[0, info(Kind.PTR), 5]], b"\0"),                                 # type id out of range
    ([[100, info(Kind.INT), 4, 32]], b"\0"),                           # name past the strings
    ([[0, info(Kind.STRUCT, 0xFFFF), 8]], b"\0"),                      # absurd vlen
    ([[0, info(Kind.STRUCT, 1), 8, 0, 9, 0]], b"\0"),                 # member type out of range
    ([[0, 25 << 24, 0]], b"\0"),                                       # unknown kind
    ([[0, 0, 0]], b"\0"),                                              # kind UNKN record
    ([[0, info(Kind.PTR, 3), 0]], b"\0"),                              # vlen on a PTR
    ([[1, info(Kind.FUNC, 7), 0]], b"\0f\0"),                          # bad FUNC linkage
    ([[0, info(Kind.PTR), 0], [1, info(Kind.DECL_TAG), 1, (-7) & 0xFFFFFFFF]], b"\0t\0"),
    ([[0, info(Kind.ARRAY), 0, 1, 0]], b"\0"),                         # truncated ARRAY
    ([[0, info(Kind.PTR)]], b"\0"),                                    # truncated header
])
def test_malformed_types(types, strings):
    with pytest.raises(BtfError):
        Btf.parse(raw_btf(types, strings))


def test_reference_loops_terminate():
    # [1] typedef t -> [1]: the kernel rejects it; we parse and refuse to follow it.
    btf = Btf.parse(raw_btf([[1, info(Kind.TYPEDEF), 1]], b"\0t\0"))
    for fn in (btf.resolve, btf.size_of, btf.type_tags):
        with pytest.raises(BtfError, match="loop"):
            fn(1)
    assert btf.type_name(1) == "t"  # spelling keeps typedef names, so never follows this one
    exercise(btf)
    # Two-step modifier loop and a pointer to itself (printing "****..." forever).
    btf = Btf.parse(raw_btf([[0, info(Kind.CONST), 2], [0, info(Kind.VOLATILE), 1],
                             [0, info(Kind.PTR), 3]], b"\0"))
    with pytest.raises(BtfError):
        btf.resolve(1)
    with pytest.raises(BtfError):
        btf.type_name(3)
    assert btf.size_of(3) == 8
    exercise(btf)
    # A struct containing itself by value through an anonymous member; an array of itself.
    s = b"\0s\0"
    btf = Btf.parse(raw_btf([[1, info(Kind.STRUCT, 1), 8, 0, 1, 0],
                             [0, info(Kind.ARRAY), 0, 2, 1, 2]], s))
    for call in (lambda: btf.fields_of(1, {"x"}), lambda: btf.member_at(1, 0),
                 lambda: btf.find_member(1, "x"), lambda: btf.size_of(2)):
        with pytest.raises(BtfError):
            call()
    exercise(btf)
    # A DAG that doubles at every level: spelling it would take 2**40 steps.
    types = [[0, info(Kind.FUNC_PROTO, 0), 0]]
    for k in range(2, 42):
        types.append([0, info(Kind.FUNC_PROTO, 2), 0, 0, k - 1, 0, k - 1])
    btf = Btf.parse(raw_btf(types))
    with pytest.raises(BtfError):
        btf.type_name(41)
    anon = [[1, info(Kind.STRUCT, 0), 0]]
    for k in range(2, 42):
        anon.append([1, info(Kind.STRUCT, 2), 0, 0, k - 1, 0, 0, k - 1, 0])
    btf = Btf.parse(raw_btf(anon, s))
    with pytest.raises(BtfError):
        btf.find_member(41, "missing")
    assert btf.fields_of(41, {"nothing"}) == []


def test_big_endian_hand_built():
    le = Btf.parse(raw_btf([[1, info(Kind.INT), 4, 1 << 24 | 32], [0, info(Kind.PTR), 1]], b"\0int\0", "<"))
    be = Btf.parse(raw_btf([[1, info(Kind.INT), 4, 1 << 24 | 32], [0, info(Kind.PTR), 1]], b"\0int\0", ">"))
    assert be.byteorder == "big"
    assert [bpftool_raw(b, range(1, 3)) for b in (le, be)] == [
        "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED\n[2] PTR '(anon)' type_id=1\n"] * 2
    assert be.type_name(2) == "int *"


def test_btf_ext_malformed(build):
    btf, _ = load(build("obj_leak"))
    _, ext = sections(build("obj_leak"))
    hdr_len = struct.unpack_from("<I", ext, 4)[0]
    fi_off = struct.unpack_from("<I", ext, 8)[0]
    bad_rec = bytearray(ext)
    struct.pack_into("<I", bad_rec, hdr_len + fi_off, 3)  # func_info record size 3
    with pytest.raises(BtfError, match="record size"):
        BtfExt.parse(bytes(bad_rec), btf)
    bad_type = bytearray(ext)
    # First func_info record: rec_size, sec_name_off, num_info, then insn_off, type_id.
    struct.pack_into("<I", bad_type, hdr_len + fi_off + 16, 999)
    with pytest.raises(BtfError, match="type id 999|999"):
        BtfExt.parse(bytes(bad_type), btf)
    with pytest.raises(BtfError, match="magic"):
        BtfExt.parse(b"\0\0" + ext[2:], btf)


def test_member_dataclass():
    m = Member("x", 1, 70, 3)
    assert m.offset == 8
    with pytest.raises(AttributeError):
        m.name = "y"  # frozen
    assert Kind(0) is Kind.VOID and Kind.UNKN is Kind.VOID
