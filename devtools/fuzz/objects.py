"""Targeted corruption of compiled objects: ELF, BTF and DWARF layout, and the byte mutators."""
from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bpf_lsp.frontend.btf import Kind


# =============================================================================================
# ELF / BTF layout, for targeted object corruption

@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int
    header: int        # file offset of this section's header


@dataclass(frozen=True)
class BtfTypeRec:
    id: int
    offset: int        # file offset of the record
    kind: int
    vlen: int
    ref_fields: tuple[int, ...]   # file offsets of u32 fields holding type ids
    name_fields: tuple[int, ...]  # file offsets of u32 fields holding string offsets


@dataclass
class Layout:
    """Where things are in one pristine ELF64 little-endian object."""
    size: int
    shoff: int
    shnum: int
    shstrndx: int
    sections: list[Section]
    btf: Section | None = None
    btf_types: list[BtfTypeRec] = field(default_factory=list)
    btf_str: tuple[int, int] = (0, 0)              # (file offset, length) of the string section
    ext: Section | None = None
    ext_fields: dict[str, int] = field(default_factory=dict)   # name -> file offset of a u32

    def named(self, prefix: str) -> list[Section]:
        return [s for s in self.sections if s.name.startswith(prefix)]


SHT_PROGBITS, SHT_SYMTAB, SHT_REL = 1, 2, 9
# kinds whose `type` field refers to another type (the ones a reference loop can be made of)
REF_KINDS = {Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.FUNC, Kind.FUNC_PROTO, Kind.VAR,
             Kind.DECL_TAG, Kind.TYPE_TAG}
# bytes after the 12-byte common header, per kind (n: vlen)
_EXTRA = {Kind.INT: lambda n: 4, Kind.ARRAY: lambda n: 12, Kind.STRUCT: lambda n: 12 * n, Kind.UNION: lambda n: 12 * n,
          Kind.ENUM: lambda n: 8 * n, Kind.FUNC_PROTO: lambda n: 8 * n, Kind.VAR: lambda n: 4,
          Kind.DATASEC: lambda n: 12 * n, Kind.DECL_TAG: lambda n: 4, Kind.ENUM64: lambda n: 12 * n}


def _btf_records(data: bytes, base: int, hdr: dict) -> tuple[list[BtfTypeRec], tuple[int, int]]:
    t0 = base + hdr["hdr_len"] + hdr["type_off"]
    end = t0 + hdr["type_len"]
    recs = []
    off, tid = t0, 1
    while off + 12 <= end:
        _, info, _ = struct.unpack_from("<III", data, off)
        kind, vlen = (info >> 24) & 0x1f, info & 0xffff
        extra = _EXTRA[kind](vlen) if kind in _EXTRA else 0
        refs, names = [], [off]
        if kind in REF_KINDS:
            refs.append(off + 8)
        if kind == Kind.ARRAY:
            refs += [off + 12, off + 16]
        elif kind in (Kind.STRUCT, Kind.UNION):
            for m in range(vlen):
                names.append(off + 12 + 12 * m)
                refs.append(off + 12 + 12 * m + 4)
        elif kind == Kind.FUNC_PROTO:
            for m in range(vlen):
                names.append(off + 12 + 8 * m)
                refs.append(off + 12 + 8 * m + 4)
        elif kind == Kind.DATASEC:
            refs += [off + 12 + 12 * m for m in range(vlen)]
        recs.append(BtfTypeRec(tid, off, kind, vlen, tuple(refs), tuple(names)))
        off += 12 + extra
        tid += 1
    return recs, (base + hdr["hdr_len"] + hdr["str_off"], hdr["str_len"])


def object_layout(data: bytes) -> Layout | None:
    """The layout of a well-formed ELF64 LE object, or None (then only blind mutations apply)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    if shentsize != 64 or shoff + 64 * shnum > len(data):
        return None
    raw = []
    for i in range(shnum):
        h = shoff + 64 * i
        name, typ, flags, _, off, size, link, info, _, ent = struct.unpack_from("<IIQQQQIIQQ", data, h)
        raw.append((i, name, typ, flags, off, size, link, info, ent, h))
    stroff, strsize = raw[shstrndx][4], raw[shstrndx][5]

    def cstr(o: int) -> str:
        a = stroff + o
        b = data.find(b"\0", a, stroff + strsize)
        return data[a:b if b >= 0 else a].decode("latin-1")

    sections = [Section(i, cstr(n), t, f, o, s, lk, inf, e, h) for i, n, t, f, o, s, lk, inf, e, h in raw]
    layout = Layout(len(data), shoff, shnum, shstrndx, sections)
    for s in sections:
        if s.name == ".BTF" and s.size >= 24:
            layout.btf = s
            keys = ("hdr_len", "type_off", "type_len", "str_off", "str_len")
            hdr = dict(zip(keys, struct.unpack_from("<IIIII", data, s.offset + 4)))
            with contextlib.suppress(struct.error):
                layout.btf_types, layout.btf_str = _btf_records(data, s.offset, hdr)
        elif s.name == ".BTF.ext" and s.size >= 24:
            layout.ext = s
            names = ["hdr_len", "func_info_off", "func_info_len", "line_info_off", "line_info_len",
                     "core_relo_off", "core_relo_len"]
            hdr_len, = struct.unpack_from("<I", data, s.offset + 4)
            for k, name in enumerate(names):
                if 4 + 4 * k + 4 <= min(hdr_len, s.size):
                    layout.ext_fields[name] = s.offset + 4 + 4 * k
            for sub in ("func_info", "line_info", "core_relo"):
                if sub + "_off" in layout.ext_fields:
                    rel, = struct.unpack_from("<I", data, layout.ext_fields[sub + "_off"])
                    length, = struct.unpack_from("<I", data, layout.ext_fields[sub + "_len"])
                    at = s.offset + hdr_len + rel
                    if length >= 4 and at + 12 <= s.offset + s.size:
                        layout.ext_fields[sub + ".rec_size"] = at
                        layout.ext_fields[sub + ".sec_name_off"] = at + 4
                        layout.ext_fields[sub + ".num_info"] = at + 8
                        if at + 16 <= s.offset + s.size:
                            layout.ext_fields[sub + ".insn_off"] = at + 12
    return layout


# =============================================================================================
# object mutators: each takes (bytearray, rng, layout) and edits in place

INTERESTING_32 = (0, 1, 2, 3, 4, 7, 8, 12, 16, 24, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
                  0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff)
INTERESTING_64 = INTERESTING_32 + (0x100000000, 0x7fffffffffffffff, 0xffffffffffffffff)


def _put32(buf: bytearray, off: int, value: int) -> None:
    if 0 <= off and off + 4 <= len(buf):
        struct.pack_into("<I", buf, off, value & 0xffffffff)


def _put64(buf: bytearray, off: int, value: int) -> None:
    if 0 <= off and off + 8 <= len(buf):
        struct.pack_into("<Q", buf, off, value & 0xffffffffffffffff)


def _get32(buf: bytearray, off: int) -> int:
    return struct.unpack_from("<I", buf, off)[0] if 0 <= off and off + 4 <= len(buf) else 0


def _near(value: int, rng: random.Random, wide: Sequence[int] = INTERESTING_32) -> int:
    r = rng.random()
    if r < 0.4:
        return rng.choice(wide)
    if r < 0.8:
        return value + rng.choice((-8, -4, -3, -2, -1, 1, 2, 3, 4, 8, 12, 24, 100))
    return value ^ (1 << rng.randrange(32))


def _section_or_any(layout: Layout | None, rng: random.Random, names: Sequence[str]) -> Section | None:
    if layout is None:
        return None
    cands = [s for s in layout.sections if any(s.name.startswith(n) for n in names) and s.size]
    return rng.choice(cands) if cands else None


def o_truncate(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    r = rng.random()
    if r < 0.3:
        n = rng.randrange(0, min(len(buf), 256) + 1)
    elif r < 0.6 and layout is not None and layout.sections:
        s = rng.choice(layout.sections)
        n = s.offset + rng.randrange(0, max(s.size, 1))
    else:
        n = rng.randrange(0, len(buf) + 1)
    del buf[n:]


def o_flip_bytes(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    for _ in range(rng.choice((1, 1, 2, 4, 8, 16))):
        if not buf:
            return
        i = rng.randrange(len(buf))
        buf[i] = rng.randrange(256) if rng.random() < 0.5 else buf[i] ^ (1 << rng.randrange(8))


def _flip_in(buf: bytearray, rng: random.Random, sec: Section | None, n: int | None = None) -> None:
    if sec is None or not sec.size:
        return o_flip_bytes(buf, rng, None)
    for _ in range(n or rng.choice((1, 1, 2, 4, 8))):
        i = sec.offset + rng.randrange(sec.size)
        if i < len(buf):
            buf[i] = rng.randrange(256) if rng.random() < 0.5 else buf[i] ^ (1 << rng.randrange(8))


def o_elf_header(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    field_ = rng.choice(("class", "data", "machine", "shoff", "shnum", "shstrndx", "shentsize", "type", "version"))
    if field_ == "class" and len(buf) > 4:
        buf[4] = rng.choice((0, 1, 3, 0xff))
    elif field_ == "data" and len(buf) > 5:
        buf[5] = rng.choice((0, 2, 3))
    elif field_ == "machine" and len(buf) >= 0x14:
        struct.pack_into("<H", buf, 0x12, rng.choice((0, 3, 62, 0xf6, 0xffff)))
    elif field_ == "shoff":
        _put64(buf, 0x28, _near(layout.shoff if layout else 0, rng, INTERESTING_64))
    elif field_ in ("shnum", "shstrndx", "shentsize") and len(buf) >= 0x40:
        at = {"shentsize": 0x3a, "shnum": 0x3c, "shstrndx": 0x3e}[field_]
        old = struct.unpack_from("<H", buf, at)[0]
        struct.pack_into("<H", buf, at, _near(old, rng) & 0xffff)
    elif field_ == "type" and len(buf) >= 0x12:
        struct.pack_into("<H", buf, 0x10, rng.choice((0, 2, 3, 4, 0xfe00, 0xffff)))
    else:
        _put32(buf, 0x14, rng.choice((0, 2, 0xffffffff)))


def o_section_header(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or not layout.sections:
        return o_flip_bytes(buf, rng, layout)
    s = rng.choice(layout.sections)
    what = rng.choice(("offset", "size", "size", "link", "info", "type", "flags", "entsize", "name", "swap"))
    h = s.header
    if what == "offset":
        _put64(buf, h + 24, _near(s.offset, rng, INTERESTING_64 + (layout.size, layout.size - 1)))
    elif what == "size":
        _put64(buf, h + 32, _near(s.size, rng, INTERESTING_64 + (layout.size, layout.size + 1)))
    elif what == "link":
        _put32(buf, h + 40, _near(s.link, rng, tuple(range(layout.shnum + 2)) + (0xffff, 0xffffffff)))
    elif what == "info":
        _put32(buf, h + 44, _near(s.info, rng, tuple(range(layout.shnum + 2)) + (0xffff, 0xffffffff)))
    elif what == "type":
        _put32(buf, h + 4, rng.choice((0, 1, 2, 3, 4, 8, 9, 11, 0x6fff4c03, 0x6ffffff6, 0xffffffff)))
    elif what == "flags":
        # SHF_COMPRESSED (0x800) makes pyelftools try to inflate the section
        _put64(buf, h + 8, s.flags ^ rng.choice((0x1, 0x2, 0x4, 0x800, 0x40)))
    elif what == "entsize":
        _put64(buf, h + 56, rng.choice((0, 1, 3, 8, 16, 23, 24, 25, 0xffffffff, 0xffffffffffffffff)))
    elif what == "name":
        _put32(buf, h, _near(_get32(buf, h), rng))
    else:  # two sections trade places (the names stay)
        t = rng.choice(layout.sections)
        a, b = bytes(buf[h + 4:h + 64]), bytes(buf[t.header + 4:t.header + 64])
        if t.header + 64 <= len(buf) and h + 64 <= len(buf):
            buf[h + 4:h + 64], buf[t.header + 4:t.header + 64] = b, a


def o_symbols(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    sec = _section_or_any(layout, rng, (".symtab",))
    if sec is None or sec.size < 24:
        return o_flip_bytes(buf, rng, layout)
    for _ in range(rng.choice((1, 1, 2, 3))):
        e = sec.offset + 24 * rng.randrange(sec.size // 24)
        what = rng.choice(("name", "info", "shndx", "shndx", "value", "value", "size", "size"))
        if what == "name":
            _put32(buf, e, _near(_get32(buf, e), rng))
        elif what == "info":
            buf[e + 4] = rng.randrange(256)
        elif what == "shndx":
            struct.pack_into("<H", buf, e + 6, rng.choice((0, 1, 2, 3, layout.shnum - 1, layout.shnum,
                                                            layout.shnum + 5, 0xfff1, 0xfff2, 0xffff)))
        elif what == "value":
            _put64(buf, e + 8, _near(struct.unpack_from("<Q", buf, e + 8)[0], rng, INTERESTING_64))
        else:
            _put64(buf, e + 16, _near(struct.unpack_from("<Q", buf, e + 16)[0], rng, INTERESTING_64))


def o_relocations(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    cands = [s for s in (layout.sections if layout else []) if s.type == SHT_REL and s.size >= 16]
    if not cands:
        return o_flip_bytes(buf, rng, layout)
    # code relocations matter most to the linker; debug ones to DWARF
    code = [s for s in cands if not s.name.startswith((".rel.debug", ".rel.BTF"))]
    sec = rng.choice(code) if code and rng.random() < 0.6 else rng.choice(cands)
    for _ in range(rng.choice((1, 1, 2, 3))):
        e = sec.offset + 16 * rng.randrange(sec.size // 16)
        off, info = struct.unpack_from("<QQ", buf, e)
        sym, typ = info >> 32, info & 0xffffffff
        what = rng.choice(("sym", "sym", "type", "offset", "offset"))
        if what == "sym":
            sym = _near(sym, rng, (0, 1, 2, 3, 1000, 0xffffffff))
        elif what == "type":
            typ = rng.choice((0, 1, 2, 3, 4, 8, 10, 0xffffffff))
        else:
            off = _near(off, rng, INTERESTING_64)
        struct.pack_into("<QQ", buf, e, off & (2**64 - 1), ((sym & 0xffffffff) << 32) | (typ & 0xffffffff))


def o_instructions(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    cands = [s for s in (layout.sections if layout else []) if s.type == SHT_PROGBITS and s.flags & 0x4
             and s.size >= 8]
    if not cands:
        return o_flip_bytes(buf, rng, layout)
    sec = rng.choice(cands)
    for _ in range(rng.choice((1, 1, 2, 3))):
        e = sec.offset + 8 * rng.randrange(sec.size // 8)
        what = rng.choice(("opcode", "regs", "off", "imm", "imm", "call", "jump", "exit", "ld64"))
        if e + 8 > len(buf):
            return
        if what == "opcode":
            buf[e] = rng.randrange(256)
        elif what == "regs":
            buf[e + 1] = rng.randrange(256)
        elif what == "off":
            struct.pack_into("<h", buf, e + 2, rng.choice((-32768, -2, -1, 0, 1, 2, 1000, 32767)))
        elif what == "imm":
            struct.pack_into("<I", buf, e + 4, rng.choice(INTERESTING_32))
        elif what == "call":       # call helper/kfunc/subprog with a random imm
            buf[e] = 0x85
            buf[e + 1] = rng.choice((0x00, 0x10, 0x20, 0x30))
            struct.pack_into("<i", buf, e + 4, rng.choice((-1, 0, 1, 2, 3, 12, 35, 131, 212, 1000, -1000)))
        elif what == "jump":       # ja / jeq with a wild offset
            buf[e] = rng.choice((0x05, 0x15, 0x06, 0x1d))
            struct.pack_into("<h", buf, e + 2, rng.choice((-32768, -3, -2, -1, 0, 1, 50, 32767)))
        elif what == "exit":
            buf[e:e + 8] = b"\x95" + b"\0" * 7
        else:                      # half of an ld_imm64, or one with a bad pseudo src
            buf[e] = 0x18
            buf[e + 1] = rng.randrange(256)


def o_btf_header(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or layout.btf is None:
        return o_flip_bytes(buf, rng, layout)
    s = layout.btf
    what = rng.choice(("magic", "version", "flags", "hdr_len", "type_off", "type_len", "str_off", "str_len"))
    if what == "magic":
        struct.pack_into("<H", buf, s.offset, rng.choice((0, 0x9feb, 0xeb9e, 0xffff)))
    elif what == "version":
        buf[s.offset + 2] = rng.choice((0, 2, 0xff))
    elif what == "flags":
        buf[s.offset + 3] = rng.choice((1, 0xff))
    else:
        at = s.offset + 4 + 4 * ("hdr_len", "type_off", "type_len", "str_off", "str_len").index(what)
        _put32(buf, at, _near(_get32(buf, at), rng, INTERESTING_32 + (s.size, s.size - 24)))


def o_btf_types(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or not layout.btf_types:
        return o_btf_header(buf, rng, layout)
    recs = layout.btf_types
    n = len(recs)
    for _ in range(rng.choice((1, 1, 2, 3))):
        t = rng.choice(recs)
        what = rng.choice(("ref", "ref", "ref", "kind", "vlen", "kind_flag", "name", "size", "member_offset",
                           "int_bits", "array"))
        if what == "ref" and t.ref_fields:
            at = rng.choice(t.ref_fields)
            _put32(buf, at, rng.choice((0, t.id, n, n + 1, rng.randrange(n + 1), 0x7fffffff, 0xffffffff)))
        elif what == "kind":
            info = _get32(buf, t.offset + 4)
            _put32(buf, t.offset + 4, (info & ~(0x1f << 24)) | (rng.choice(range(0, 32)) << 24))
        elif what == "vlen":
            info = _get32(buf, t.offset + 4)
            _put32(buf, t.offset + 4, (info & ~0xffff) | rng.choice((0, 1, 2, t.vlen + 1, 0xffff)))
        elif what == "kind_flag":
            _put32(buf, t.offset + 4, _get32(buf, t.offset + 4) ^ 0x80000000)
        elif what == "name":
            at = rng.choice(t.name_fields)
            _put32(buf, at, rng.choice((0, 1, layout.btf_str[1] - 1, layout.btf_str[1], layout.btf_str[1] + 1,
                                        0xffffffff, rng.randrange(max(layout.btf_str[1], 1)))))
        elif what == "size":
            _put32(buf, t.offset + 8, rng.choice(INTERESTING_32))
        elif what == "member_offset" and t.kind in (Kind.STRUCT, Kind.UNION) and t.vlen:
            m = rng.randrange(t.vlen)
            _put32(buf, t.offset + 12 + 12 * m + 8, rng.choice(INTERESTING_32))
        elif what == "int_bits" and t.kind == Kind.INT:
            _put32(buf, t.offset + 12, rng.choice((0, 0x01000000, 0x0f000040, 0xffffffff, 0x00000080)))
        elif what == "array" and t.kind == Kind.ARRAY:
            _put32(buf, t.offset + 20, rng.choice(INTERESTING_32))
        else:
            _put32(buf, t.offset + 8, rng.randrange(n + 2))


def o_btf_loop(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    """Make the type graph loop: a modifier chain back onto itself, a struct containing itself."""
    if layout is None or not layout.btf_types:
        return o_btf_header(buf, rng, layout)
    refs = [t for t in layout.btf_types if t.kind in (Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG)]
    structs = [t for t in layout.btf_types if t.kind in (Kind.STRUCT, Kind.UNION) and t.vlen]
    how = rng.random()
    if how < 0.3 and refs:                       # t -> t
        t = rng.choice(refs)
        _put32(buf, t.offset + 8, t.id)
    elif how < 0.6 and len(refs) >= 2:          # a -> b -> a
        a, b = rng.sample(refs, 2)
        _put32(buf, a.offset + 8, b.id)
        _put32(buf, b.offset + 8, a.id)
    elif structs:                                # a struct member of the struct's own type (or a typedef to it)
        t = rng.choice(structs)
        m = rng.randrange(t.vlen)
        target = t.id
        if refs and rng.random() < 0.5:
            r = rng.choice(refs)
            _put32(buf, r.offset + 8, t.id)
            target = r.id
        _put32(buf, t.ref_fields[m], target)
    elif refs:
        t = rng.choice(refs)
        _put32(buf, t.offset + 8, t.id)


def o_btf_strings(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or layout.btf is None or not layout.btf_str[1]:
        return o_flip_bytes(buf, rng, layout)
    off, length = layout.btf_str
    for _ in range(rng.choice((1, 2, 4))):
        i = off + rng.randrange(length)
        if i < len(buf):
            buf[i] = rng.choice((0, 0x80, 0xff, ord("?"), rng.randrange(256)))


def o_btf_ext(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    if layout is None or layout.ext is None or not layout.ext_fields:
        return o_btf_header(buf, rng, layout)
    name = rng.choice(sorted(layout.ext_fields))
    at = layout.ext_fields[name]
    if name.endswith("rec_size"):
        value = rng.choice((0, 1, 3, 4, 7, 8, 12, 15, 16, 17, 24, 0x10000, 0xffffffff))
    elif name.endswith("num_info"):
        value = rng.choice((0, 1, 2, 1000, 0x7fffffff, 0xffffffff))
    else:
        value = _near(_get32(buf, at), rng, INTERESTING_32 + (layout.ext.size,))
    _put32(buf, at, value)
    if rng.random() < 0.3:
        _flip_in(buf, rng, layout.ext, 2)


def o_dwarf(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    sec = _section_or_any(layout, rng, (".debug_info", ".debug_info", ".debug_abbrev", ".debug_abbrev",
                                        ".debug_line", ".debug_loclists", ".debug_rnglists", ".debug_str_offsets",
                                        ".debug_addr", ".debug_str", ".debug_line_str", ".debug_frame"))
    if sec is None:
        return o_flip_bytes(buf, rng, layout)
    how = rng.random()
    if how < 0.15 and sec.size >= 4:       # the unit length
        _put32(buf, sec.offset, _near(_get32(buf, sec.offset), rng))
    elif how < 0.3 and sec.size >= 6:      # the version
        struct.pack_into("<H", buf, sec.offset + 4, rng.choice((0, 1, 2, 3, 4, 5, 6, 0xffff)))
    elif how < 0.45:                       # LEB128 chaos: a run of continuation bytes
        i = sec.offset + rng.randrange(sec.size)
        n = rng.choice((1, 4, 12))
        buf[i:i + n] = b"\xff" * min(n, len(buf) - i)
    else:
        _flip_in(buf, rng, sec)


def o_section_bytes(buf: bytearray, rng: random.Random, layout: Layout | None) -> None:
    """Flip bytes inside one section (any), so the header stays intact and the content is read."""
    if layout is None or not layout.sections:
        return o_flip_bytes(buf, rng, layout)
    _flip_in(buf, rng, rng.choice([s for s in layout.sections if s.size] or layout.sections))


OBJECT_MUTATORS: dict[str, Callable[[bytearray, random.Random, Layout | None], None]] = {
    "truncate": o_truncate, "flip_bytes": o_flip_bytes, "elf_header": o_elf_header,
    "section_header": o_section_header, "symbols": o_symbols, "relocations": o_relocations,
    "instructions": o_instructions, "btf_header": o_btf_header, "btf_types": o_btf_types,
    "btf_loop": o_btf_loop, "btf_strings": o_btf_strings, "btf_ext": o_btf_ext, "dwarf": o_dwarf,
    "section_bytes": o_section_bytes,
}
OBJECT_WEIGHTS = {"truncate": 4, "flip_bytes": 5, "elf_header": 3, "section_header": 9, "symbols": 9,
                  "relocations": 9, "instructions": 12, "btf_header": 5, "btf_types": 14, "btf_loop": 8,
                  "btf_strings": 3, "btf_ext": 9, "dwarf": 10, "section_bytes": 5}


def mutate_object(data: bytes, rng: random.Random, layout: Layout | None) -> tuple[bytes, list[str]]:
    buf = bytearray(data)
    names = list(OBJECT_WEIGHTS)
    weights = [OBJECT_WEIGHTS[n] for n in names]
    applied = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        name = rng.choices(names, weights)[0]
        try:
            OBJECT_MUTATORS[name](buf, rng, layout)
        except (struct.error, IndexError, ValueError):
            pass  # an earlier truncation moved things out of reach: the mutant is what it is
        applied.append(name)
    return bytes(buf), applied
