"""Regenerate the reproducer objects in data/ (run by hand; the tests only read the files).

Each reproducer is a corpus object compiled by the Analyzer's compile stage with one field
patched, so the owner can see exactly what is malformed:

    .venv/bin/python tests/fuzz/repro/make_repros.py

The fuzzers found these with stacked random mutations; the single patches below were derived
from the minimised mutants (devtools.fuzz.minimize_object) and trigger the same failures.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from devtools import fuzz as F  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def compiled(name: str) -> tuple[bytes, F.Layout]:
    seed = F.load_seeds(names=[name])[0]
    data = ANALYZER.compile(seed.text, seed.path).object_bytes
    assert data, name
    return data, F.object_layout(data)


def section(layout: F.Layout, name: str) -> F.Section:
    return next(s for s in layout.sections if s.name == name)


def patch(data: bytes, offset: int, new: bytes) -> bytes:
    buf = bytearray(data)
    buf[offset:offset + len(new)] = new
    return bytes(buf)


def symbol_entry(data: bytes, layout: F.Layout, name: str) -> int:
    symtab, strtab = section(layout, ".symtab"), section(layout, ".strtab")
    for off in range(symtab.offset, symtab.offset + symtab.size, 24):
        st_name, = struct.unpack_from("<I", data, off)
        end = data.index(b"\0", strtab.offset + st_name)
        if data[strtab.offset + st_name:end].decode() == name:
            return off
    raise KeyError(name)


def main() -> None:
    DATA.mkdir(exist_ok=True)
    manifest = {}

    # obj_leak's tc section: 0: r1 = 0x5 ll; 2: r2 = 0; 3: call bpf_obj_new_impl; ...; 6: *(u32 *)(r0 +0) = r1
    data, lay = compiled("obj_leak")
    tc = section(lay, "tc")
    for name, off, byte, what in [
        ("reg_ld_imm64_dst_r12.elf", tc.offset + 0 * 8 + 1, 0x0C, "insn 0 (ld_imm64) dst register r12"),
        ("reg_mov_dst_r11.elf", tc.offset + 2 * 8 + 1, 0x0B, "insn 2 (r2 = 0) dst register r11"),
        ("reg_store_src_r13.elf", tc.offset + 6 * 8 + 1, 0xD0, "insn 6 (*(u32 *)(r0 +0) = r1) src register r13"),
    ]:
        (DATA / name).write_bytes(patch(data, off, bytes([byte])))
        manifest[name] = {"seed": "obj_leak", "patch": f"byte {off}: {data[off]:#04x} -> {byte:#04x}", "what": what}

    # struct elem { int data; } made to contain itself: member 0's type id := elem's own id
    elem = next(t for t in lay.btf_types if t.kind == 4 and t.vlen == 1
                and data[lay.btf_str[0] + struct.unpack_from("<I", data, t.offset)[0]:].startswith(b"elem\0"))
    off = elem.ref_fields[0]
    old, = struct.unpack_from("<I", data, off)
    (DATA / "btf_struct_contains_itself.elf").write_bytes(patch(data, off, struct.pack("<I", elem.id)))
    manifest["btf_struct_contains_itself.elf"] = {
        "seed": "obj_leak", "patch": f"u32 at {off}: {old} -> {elem.id}",
        "what": f"BTF [{elem.id}] struct elem: member 'data' has type [{elem.id}] (itself, by value)"}

    # the program symbol's st_size: 72 -> 2**40
    sym = symbol_entry(data, lay, "obj_leak")
    old, = struct.unpack_from("<Q", data, sym + 16)
    (DATA / "symbol_huge_size.elf").write_bytes(patch(data, sym + 16, struct.pack("<Q", 1 << 40)))
    manifest["symbol_huge_size.elf"] = {"seed": "obj_leak", "patch": f"u64 at {sym + 16}: {old} -> {1 << 40}",
                                      "what": "st_size of the function symbol obj_leak is 1 TiB"}

    # data/ctx_load_negative_offset.bpf.c (tp_btf/sys_enter: regs, id):
    # 0: r1 = *(u64 *)(r1 +8)  (id)  ->  *(u64 *)(r1 -64)
    src = DATA / "ctx_load_negative_offset.bpf.c"
    data = ANALYZER.compile(src.read_text(), str(src)).object_bytes
    lay = F.object_layout(data)
    tp = section(lay, "tp_btf/sys_enter")
    old, = struct.unpack_from("<h", data, tp.offset + 2)
    (DATA / "ctx_load_negative_offset.elf").write_bytes(patch(data, tp.offset + 2, struct.pack("<h", -64)))
    manifest["ctx_load_negative_offset.elf"] = {
        "seed": "data/ctx_load_negative_offset.bpf.c", "patch": f"s16 at {tp.offset + 2}: {old} -> -64",
        "what": "insn 0 reads the tp_btf context at r1 - 64 (a negative argument slot)"}

    # refcount_acquire_no_field: .rel.BTF.ext's sh_info (the section its relocations apply to)
    # := the tc code section, so the kfunc calls are linked as calls of the program to itself
    data, lay = compiled("refcount_acquire_no_field")
    rel = section(lay, ".rel.BTF.ext")
    tc = section(lay, "tc")
    old, = struct.unpack_from("<I", data, rel.header + 44)
    (DATA / "recursive_call.elf").write_bytes(patch(data, rel.header + 44, struct.pack("<I", tc.index)))
    manifest["recursive_call.elf"] = {
        "seed": "refcount_acquire_no_field", "patch": f"u32 at {rel.header + 44}: {old} -> {tc.index}",
        "what": ".rel.BTF.ext applies to the tc section: insns 8, 12, 16 become calls of the program itself"}

    (DATA / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for k, v in manifest.items():
        print(f"{k}: {v['what']} ({v['patch']})")


if __name__ == "__main__":
    ANALYZER = F.make_analyzer()
    main()
