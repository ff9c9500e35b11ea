"""Our own BTF and .BTF.ext parser.

Format references: the kernel's include/uapi/linux/btf.h and Documentation/bpf/btf.rst,
libbpf's btf.c / libbpf_internal.h for .BTF.ext.

Design notes
------------
* Every field of every BTF type record is a 32-bit word, so the whole type section is read
  into one list of ints (byte-swapped once if the data is of the other endianness). A single
  pass finds each type's start word and validates what can be checked locally: record
  bounds, known kinds, type ids and string offsets in range. `BtfType` objects are built
  lazily on first access, and the name / decl-tag indexes are built on first query: a
  client usually touches a few hundred of vmlinux's ~130k types.
* Reference loops (a typedef naming itself, a struct containing itself by value) are not
  searched for at parse time; every walk along references is bounded instead and raises
  `BtfError` when the bound is hit, as the kernel's own resolver does (MAX_RESOLVE_DEPTH).
* Split BTF (kernel module BTF on top of vmlinux): type ids and string offsets continue
  after the base's, and lookups below `start_id` / `start_str_off` are delegated to it.
"""
from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass, field
from enum import IntEnum
from collections.abc import Iterator, Mapping, Sequence

__all__ = [
    "BtfError", "Kind", "IntEncoding", "Linkage", "Member", "BtfType", "Btf",
    "FuncInfo", "LineInfo", "CoreRelocKind", "CoreReloc", "BtfExt",
]

BTF_MAGIC = 0xEB9F
# The kernel's limit on typedef/modifier/pointer chains (kernel/bpf/btf.c); valid BTF never
# needs more, so hitting it means a loop.
MAX_RESOLVE_DEPTH = 32
# Nesting of structs inside structs / arrays when walking layouts (fields_of, member_at).
MAX_NESTING = 64
# fields_of() result cap: the kernel accepts at most a handful of special fields per value
# (BTF_FIELDS_MAX); this only guards against a malicious array of a billion locks.
MAX_FIELDS = 1 << 16
# Work limits for type_name() and find_member() walks (real types need a few dozen steps).
_SPELL_BUDGET = 4096
_WALK_BUDGET = 4096
# BPF is a 64-bit target, and vmlinux BTF is only ever read on 64-bit hosts here.
POINTER_SIZE = 8


class BtfError(ValueError):
    """Malformed BTF / .BTF.ext data, or a query that the data cannot answer."""


class Kind(IntEnum):
    """BTF_KIND_* from include/uapi/linux/btf.h."""
    VOID = 0
    UNKN = 0  # the kernel's name for kind 0 (an alias of VOID)
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


_KIND_MAX = 19


class IntEncoding(IntEnum):
    """BTF_INT_* bits of an INT's encoding nibble."""
    SIGNED = 1
    CHAR = 2
    BOOL = 4


class Linkage(IntEnum):
    """FUNC linkage (btf_func_linkage) and VAR linkage (BTF_VAR_*) share these values."""
    STATIC = 0
    GLOBAL = 1  # BTF_VAR_GLOBAL_ALLOCATED for variables
    EXTERN = 2


# Kinds resolve() looks through: they change how a type is spelled, not what it is.
_MODIFIERS = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
# Kinds whose third header word is a type id rather than a size.
_REF_KINDS = frozenset({Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT,
                        Kind.FUNC, Kind.FUNC_PROTO, Kind.VAR, Kind.DECL_TAG, Kind.TYPE_TAG})
_SIZED_KINDS = frozenset({Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.DATASEC,
                          Kind.FLOAT, Kind.ENUM64})

# Words following the 3-word btf_type header: a fixed part plus a per-vlen-item part.
_EXTRA = [0] * (_KIND_MAX + 1)
_PER_ITEM = [0] * (_KIND_MAX + 1)
_EXTRA[Kind.INT] = 1                # u32 encoding/offset/bits
_EXTRA[Kind.ARRAY] = 3              # struct btf_array
_EXTRA[Kind.VAR] = 1                # struct btf_var (linkage)
_EXTRA[Kind.DECL_TAG] = 1           # struct btf_decl_tag (component_idx)
_PER_ITEM[Kind.STRUCT] = 3          # struct btf_member
_PER_ITEM[Kind.UNION] = 3
_PER_ITEM[Kind.ENUM] = 2            # struct btf_enum
_PER_ITEM[Kind.FUNC_PROTO] = 2      # struct btf_param
_PER_ITEM[Kind.DATASEC] = 3         # struct btf_var_secinfo
_PER_ITEM[Kind.ENUM64] = 3          # struct btf_enum64
# Kinds whose vlen must be 0 (FUNC is absent: its vlen holds the linkage).
_NO_VLEN = frozenset(k for k in Kind if _PER_ITEM[k] == 0 and k not in (Kind.VOID, Kind.FUNC))


def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


@dataclass(frozen=True, slots=True)
class Member:
    """A STRUCT/UNION member. bit_offset is from the start of the enclosing type."""
    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int = 0

    @property
    def offset(self) -> int:
        """Byte offset (of the byte holding the first bit, for bitfields)."""
        return self.bit_offset // 8


@dataclass(slots=True, eq=False)
class BtfType:
    """One decoded BTF type. Only the fields meaningful for `kind` are filled in."""
    id: int
    kind: Kind
    name: str = ""
    kind_flag: bool = False
    size: int = 0                     # INT, STRUCT, UNION, ENUM, DATASEC, FLOAT, ENUM64
    type_id: int = 0                  # PTR, TYPEDEF, modifiers, FUNC, VAR, DECL_TAG, TYPE_TAG;
                                      # FUNC_PROTO: the return type
    members: list[Member] = field(default_factory=list)             # STRUCT, UNION
    params: list[tuple[str, int]] = field(default_factory=list)     # FUNC_PROTO
    vals: list[tuple[str, int]] = field(default_factory=list)       # ENUM, ENUM64
    elem_type: int = 0                # ARRAY
    index_type: int = 0
    nelems: int = 0
    linkage: int = 0                  # FUNC, VAR (see Linkage)
    vars: list[tuple[int, int, int]] = field(default_factory=list)  # DATASEC: (type_id, offset, size)
    component_idx: int = -1           # DECL_TAG: -1 for the target itself, else member/param index
    is_union: bool = False            # FWD
    int_encoding: int = 0             # INT (IntEncoding bits)
    int_bits: int = 0
    int_offset: int = 0

    @property
    def is_signed(self) -> bool:
        """INT with the SIGNED bit; ENUM/ENUM64 with kind_flag (btf.rst: signed values)."""
        if self.kind == Kind.INT:
            return bool(self.int_encoding & IntEncoding.SIGNED)
        return self.kind in (Kind.ENUM, Kind.ENUM64) and self.kind_flag

    def __repr__(self) -> str:
        return f"BtfType(id={self.id}, kind={self.kind.name}, name={self.name!r})"


class Btf:
    """Parsed BTF. Type ids are 0 (void) .. len(self)-1, base types included for split BTF."""

    def __init__(self) -> None:  # use Btf.parse()
        self.base: Btf | None = None
        self.start_id = 1          # first type id defined by this BTF (not the base)
        self.start_str_off = 0     # first string offset defined by this BTF
        self.byteorder = "little"
        self._w: list[int] = []    # the type section as 32-bit words
        self._offs: list[int] = []  # word index of each own type, in id order
        self._kinds = bytearray()  # kind of each own type, for scans that need no decoding
        self._strs = b""
        self._str_cache: dict[int, str] = {}
        self._types: list[BtfType | None] = []
        self._count = 1
        self._name_index: dict[str, list[int]] | None = None
        self._decl_tag_index: dict[tuple[int, int], list[str]] | None = None
        self._fields_cache: dict[tuple[int, frozenset[str]], list[tuple[int, str, str]]] = {}

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, data: bytes, base: Btf | None = None) -> Btf:
        """Parse a `.BTF` section or a raw BTF blob (/sys/kernel/btf/*).

        `base` is given for split BTF (kernel modules): ids and string offsets then
        continue after the base's. Raises BtfError on malformed input.
        """
        self = cls()
        mv = memoryview(data)
        if len(mv) < 24:
            raise BtfError(f"BTF data is {len(mv)} bytes, shorter than the 24-byte header")
        if bytes(mv[:2]) == b"\x9f\xeb":
            bo, self.byteorder = "<", "little"
        elif bytes(mv[:2]) == b"\xeb\x9f":
            bo, self.byteorder = ">", "big"
        else:
            raise BtfError(f"bad BTF magic {bytes(mv[:2]).hex()} (expected 0xeb9f in either byte order)")
        _magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = \
            struct.unpack_from(bo + "HBBIIIII", mv, 0)
        if version != 1:
            raise BtfError(f"unsupported BTF version {version}")
        if hdr_len < 24 or hdr_len > len(mv):
            raise BtfError(f"BTF header length {hdr_len} is out of range (data is {len(mv)} bytes)")
        if type_off % 4 or type_len % 4:
            raise BtfError(f"BTF type section (offset {type_off}, length {type_len}) is not 4-byte aligned")
        t_start, s_start = hdr_len + type_off, hdr_len + str_off
        if t_start + type_len > len(mv):
            raise BtfError(f"BTF type section [{t_start}, {t_start + type_len}) runs past the end "
                           f"of the data ({len(mv)} bytes): truncated?")
        if s_start + str_len > len(mv):
            raise BtfError(f"BTF string section [{s_start}, {s_start + str_len}) runs past the end "
                           f"of the data ({len(mv)} bytes): truncated?")
        if t_start < s_start + str_len and s_start < t_start + type_len:
            raise BtfError("BTF type and string sections overlap")

        self.base = base
        if base is not None:
            self.start_id = len(base)
            self.start_str_off = base.start_str_off + len(base._strs)
        strs = bytes(mv[s_start:s_start + str_len])
        if base is None and (not strs or strs[0] != 0):
            raise BtfError("BTF string section must start with an empty string")
        if strs and strs[-1] != 0:
            raise BtfError("BTF string section is not NUL-terminated")
        self._strs = strs

        words = array("I")
        if words.itemsize != 4:  # pragma: no cover - every CPython platform we run on
            raise RuntimeError("array('I') is not 32-bit here")
        words.frombytes(mv[t_start:t_start + type_len])
        if self.byteorder != sys.byteorder:
            words.byteswap()
        self._w = words.tolist()
        self._scan()
        return self

    def _scan(self) -> None:
        """Find every type's start and check bounds, kinds, vlen, ids and string offsets."""
        w, n = self._w, len(self._w)
        offs: list[int] = []
        kinds = bytearray()
        extra, per_item, no_vlen = _EXTRA, _PER_ITEM, frozenset(int(k) for k in _NO_VLEN)
        # Words that are type ids / string offsets, collected with C-speed slicing and
        # range-checked once at the end instead of one comparison per word.
        type_refs: list[int] = []
        name_refs: list[int] = []
        STRUCT, UNION, FUNC_PROTO, DATASEC, ARRAY = \
            Kind.STRUCT, Kind.UNION, Kind.FUNC_PROTO, Kind.DATASEC, Kind.ARRAY
        ENUM, ENUM64, FUNC, VAR, INT = Kind.ENUM, Kind.ENUM64, Kind.FUNC, Kind.VAR, Kind.INT
        DECL_TAG = Kind.DECL_TAG
        ref_kinds = frozenset(int(k) for k in _REF_KINDS)
        i = 0
        while i < n:
            if i + 3 > n:
                raise BtfError(f"type [{self.start_id + len(offs)}] header is truncated")
            info = w[i + 1]
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            if kind > _KIND_MAX or kind == 0:
                raise BtfError(f"type [{self.start_id + len(offs)}] has unknown kind {kind}")
            end = i + 3 + extra[kind] + per_item[kind] * vlen
            if end > n:
                raise BtfError(f"type [{self.start_id + len(offs)}] ({Kind(kind).name}, vlen {vlen}) "
                               f"runs past the end of the type section")
            if kind in ref_kinds:
                type_refs.append(w[i + 2])
            if kind == STRUCT or kind == UNION:
                type_refs.extend(w[i + 4:end:3])
                name_refs.extend(w[i + 3:end:3])
            elif kind == FUNC_PROTO:
                type_refs.extend(w[i + 4:end:2])
                name_refs.extend(w[i + 3:end:2])
            elif kind == ENUM:
                name_refs.extend(w[i + 3:end:2])
            elif kind == ENUM64:
                name_refs.extend(w[i + 3:end:3])
            elif kind == DATASEC:
                type_refs.extend(w[i + 3:end:3])
            elif kind == ARRAY:
                type_refs.append(w[i + 3])
                type_refs.append(w[i + 4])
            elif kind == FUNC:
                if vlen > Linkage.EXTERN:
                    raise BtfError(f"FUNC [{self.start_id + len(offs)}] has bad linkage {vlen}")
            elif kind in no_vlen and vlen:
                raise BtfError(f"type [{self.start_id + len(offs)}] ({Kind(kind).name}) has vlen {vlen}, "
                               f"which its kind does not allow")
            elif kind == VAR and w[i + 3] > Linkage.EXTERN:
                raise BtfError(f"VAR [{self.start_id + len(offs)}] has bad linkage {w[i + 3]}")
            elif kind == INT and w[i + 3] & 0xF0000000:
                raise BtfError(f"INT [{self.start_id + len(offs)}] has reserved bits set")
            elif kind == DECL_TAG and _s32(w[i + 3]) < -1:
                raise BtfError(f"DECL_TAG [{self.start_id + len(offs)}] has bad component_idx {_s32(w[i + 3])}")
            offs.append(i)
            kinds.append(kind)
            i = end
        self._offs, self._kinds = offs, kinds
        self._types = [None] * len(offs)
        self._count = self.start_id + len(offs)
        name_refs.extend(w[o] for o in offs)

        if type_refs and max(type_refs) >= self._count:
            bad = max(type_refs)
            owner = next(self.start_id + k for k, o in enumerate(offs) if bad in self._type_words(o, kinds[k]))
            raise BtfError(f"type [{owner}] refers to type id {bad}, but only ids < {self._count} exist")
        limit = self.start_str_off + len(self._strs)
        if name_refs and max(name_refs) >= limit:
            raise BtfError(f"string offset {max(name_refs)} is past the end of the string section ({limit})")

    def _type_words(self, o: int, kind: int) -> list[int]:
        """The type-id words of the record at word `o` (only used to name a bad type)."""
        w = self._w
        vlen = w[o + 1] & 0xFFFF
        end = o + 3 + _EXTRA[kind] + _PER_ITEM[kind] * vlen
        if kind in (Kind.STRUCT, Kind.UNION):
            return w[o + 4:end:3]
        if kind == Kind.FUNC_PROTO:
            return [w[o + 2], *w[o + 4:end:2]]
        if kind == Kind.DATASEC:
            return w[o + 3:end:3]
        if kind == Kind.ARRAY:
            return [w[o + 3], w[o + 4]]
        return [w[o + 2]] if kind in _REF_KINDS else []

    # ------------------------------------------------------------------ strings
    def string(self, off: int) -> str:
        """The NUL-terminated string at `off` in the string section (base's first)."""
        if off < self.start_str_off:
            assert self.base is not None
            return self.base.string(off)
        s = self._str_cache.get(off)
        if s is None:
            local = off - self.start_str_off
            if local >= len(self._strs):
                raise BtfError(f"string offset {off} is past the end of the string section "
                               f"({self.start_str_off + len(self._strs)})")
            end = self._strs.index(b"\0", local)  # the section is NUL-terminated (checked)
            s = self._strs[local:end].decode("utf-8", "replace")
            self._str_cache[off] = s
        return s

    # ------------------------------------------------------------------ types
    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[BtfType]:
        """Every type, void and base types included, in id order (decodes them all)."""
        return (self[i] for i in range(self._count))

    def __getitem__(self, type_id: int) -> BtfType:
        local = type_id - self.start_id
        if local >= 0:
            try:
                t = self._types[local]
            except (IndexError, TypeError):
                raise BtfError(f"type id {type_id!r} is out of range (0..{self._count - 1})") from None
            if t is None:
                t = self._types[local] = self._decode(type_id)
            return t
        if self.base is not None:
            if type_id < 0:
                raise BtfError(f"type id {type_id} is out of range (0..{self._count - 1})")
            return self.base[type_id]
        if type_id == 0:
            return _VOID
        raise BtfError(f"type id {type_id!r} is out of range (0..{self._count - 1})")

    def kind_of(self, type_id: int) -> Kind:
        """The kind of a type without decoding it."""
        local = type_id - self.start_id
        if local >= 0:
            if local >= len(self._kinds):
                raise BtfError(f"type id {type_id} is out of range (0..{self._count - 1})")
            return Kind(self._kinds[local])
        if self.base is not None and type_id >= 0:
            return self.base.kind_of(type_id)
        if type_id == 0:
            return Kind.VOID
        raise BtfError(f"type id {type_id} is out of range (0..{self._count - 1})")

    def _ref(self, type_id: int) -> int:
        """The referenced type id of a PTR/TYPEDEF/modifier type, without decoding it."""
        local = type_id - self.start_id
        if local >= 0:
            return self._w[self._offs[local] + 2]
        assert self.base is not None
        return self.base._ref(type_id)

    def _decode(self, type_id: int) -> BtfType:
        w = self._w
        o = self._offs[type_id - self.start_id]
        name_off, info, size_or_type = w[o], w[o + 1], w[o + 2]
        kind = Kind((info >> 24) & 0x1F)
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        string = self.string
        t = BtfType(type_id, kind, string(name_off) if name_off else "", kflag)
        if kind in _SIZED_KINDS:
            t.size = size_or_type
        elif kind in _REF_KINDS:
            t.type_id = size_or_type
        p = o + 3
        if kind == Kind.INT:
            enc = w[p]
            t.int_encoding, t.int_offset, t.int_bits = (enc >> 24) & 0x0F, (enc >> 16) & 0xFF, enc & 0xFF
        elif kind in (Kind.STRUCT, Kind.UNION):
            ms = []
            for k in range(vlen):
                m_name, m_type, m_off = w[p + 3 * k:p + 3 * k + 3]
                if kflag:  # bitfield-aware encoding: size in the top 8 bits
                    ms.append(Member(string(m_name) if m_name else "", m_type, m_off & 0xFFFFFF, m_off >> 24))
                else:
                    ms.append(Member(string(m_name) if m_name else "", m_type, m_off, 0))
            t.members = ms
        elif kind == Kind.ARRAY:
            t.elem_type, t.index_type, t.nelems = w[p], w[p + 1], w[p + 2]
        elif kind == Kind.ENUM:
            conv = _s32 if kflag else int
            t.vals = [(string(w[p + 2 * k]), conv(w[p + 2 * k + 1])) for k in range(vlen)]
        elif kind == Kind.ENUM64:
            vals = []
            for k in range(vlen):
                v = (w[p + 3 * k + 2] << 32) | w[p + 3 * k + 1]
                if kflag and v >> 63:
                    v -= 1 << 64
                vals.append((string(w[p + 3 * k]), v))
            t.vals = vals
        elif kind == Kind.FWD:
            t.is_union = kflag
        elif kind == Kind.FUNC:
            t.linkage = vlen
        elif kind == Kind.FUNC_PROTO:
            t.params = [(string(w[p + 2 * k]) if w[p + 2 * k] else "", w[p + 2 * k + 1]) for k in range(vlen)]
        elif kind == Kind.VAR:
            t.linkage = w[p]
        elif kind == Kind.DATASEC:
            t.vars = [(w[p + 3 * k], w[p + 3 * k + 1], w[p + 3 * k + 2]) for k in range(vlen)]
        elif kind == Kind.DECL_TAG:
            t.component_idx = _s32(w[p])  # >= -1, checked by _scan()
        return t

    @property
    def types(self) -> Sequence[BtfType]:
        """All types by id (void and base types included), decoded as they are touched:
        `btf.types[i] is btf[i]`, `for t in btf.types` walks ids 0..len-1."""
        return _TypeView(self, range(self._count))

    @property
    def own_types(self) -> Sequence[BtfType]:
        """The types this BTF itself defines (not a split BTF's base), by id."""
        return _TypeView(self, range(self.start_id, self._count))

    # ------------------------------------------------------------------ indexes
    def _names(self) -> dict[str, list[int]]:
        if self._name_index is None:
            index: dict[str, list[int]] = {}
            if self.base is not None:
                index = {k: list(v) for k, v in self.base._names().items()}
            w, string = self._w, self.string
            for local, o in enumerate(self._offs):
                if w[o]:
                    index.setdefault(string(w[o]), []).append(self.start_id + local)
            self._name_index = index
        return self._name_index

    def find_by_name(self, name: str, kind: Kind | None = None) -> list[BtfType]:
        """All types called `name` (of `kind` if given), lowest id first."""
        ids = self._names().get(name, ())
        if kind is not None:
            ids = [i for i in ids if self.kind_of(i) == kind]
        return [self[i] for i in ids]

    def struct_by_name(self, name: str) -> BtfType | None:
        """The complete STRUCT `name`; else its struct FWD declaration; else None."""
        fwd = None
        for i in self._names().get(name, ()):
            k = self.kind_of(i)
            if k == Kind.STRUCT:
                return self[i]
            if k == Kind.FWD and fwd is None and not self[i].is_union:
                fwd = self[i]
        return fwd

    def type_word_offset(self, type_id: int) -> int:
        """Where an own type starts in the type section, in 4-byte words."""
        return self._offs[type_id - self.start_id]

    def func_by_name(self, name: str) -> BtfType | None:
        found = self.find_by_name(name, Kind.FUNC)
        return found[0] if found else None

    def func_params(self, name: str) -> list[tuple[str, int]] | None:
        """The parameters of the function named `name` (a FUNC here), None if there is none."""
        func = self.func_by_name(name)
        if func is None:
            return None
        try:
            return list(self.func_proto(func.id).params or ())
        except BtfError:
            return None

    def func_proto(self, func_id: int) -> BtfType:
        """The FUNC_PROTO of a FUNC (or of a pointer to a function, or the proto itself)."""
        t = self[self.resolve(func_id)]
        if t.kind == Kind.FUNC:
            t = self[t.type_id]
        elif t.kind == Kind.PTR:
            t = self[self.resolve(t.type_id)]
        if t.kind != Kind.FUNC_PROTO:
            raise BtfError(f"type [{func_id}] is not a function (found {t.kind.name})")
        return t

    def value_kind(self, type_id: int) -> tuple[str, str, int]:
        """How the verifier sees a value of this type: ("scalar"|"void"|"void_ptr"|"ptr"|"mem", struct, size).

        "ptr" is a pointer to a struct or union (a BTF pointer, named by the struct); "mem" a
        pointer to anything else of known size; "void_ptr" a `void *`.
        """
        if not type_id:
            return ("void", "", 0)
        t = self[self.resolve(type_id)]
        if t.kind != Kind.PTR:
            return ("scalar", "", 0)
        target = self[self.resolve(t.type_id)] if t.type_id else None
        if target is None or target.kind == Kind.UNKN:
            return ("void_ptr", "", 0)
        if target.kind in (Kind.STRUCT, Kind.UNION, Kind.FWD):
            return ("ptr", target.name, 0)
        try:
            return ("mem", "", self.size_of(target.id))
        except BtfError:
            return ("mem", "", 0)

    def func_signature(self, func_id: int) -> tuple[tuple[str, str, int], tuple[tuple[str, str, int], ...]]:
        """(return value kind, parameter value kinds) of a FUNC, as `value_kind` spells them."""
        proto = self.func_proto(func_id)
        return self.value_kind(proto.type_id), tuple(self.value_kind(pt) for _n, pt in proto.params or ())

    def _decl_tags(self) -> dict[tuple[int, int], list[str]]:
        if self._decl_tag_index is None:
            index: dict[tuple[int, int], list[str]] = {}
            if self.base is not None:
                index = {k: list(v) for k, v in self.base._decl_tags().items()}
            kinds, tag = self._kinds, Kind.DECL_TAG
            local = kinds.find(tag)
            while local >= 0:
                t = self[self.start_id + local]
                index.setdefault((t.type_id, t.component_idx), []).append(t.name)
                local = kinds.find(tag, local + 1)
            self._decl_tag_index = index
        return self._decl_tag_index

    def decl_tags(self, type_id: int, component_idx: int = -1) -> list[str]:
        """btf_decl_tag strings attached to `type_id` itself (-1) or to its member/param."""
        return list(self._decl_tags().get((type_id, component_idx), ()))

    # ------------------------------------------------------------------ chains
    def resolve(self, type_id: int) -> int:
        """Skip typedef/const/volatile/restrict/type_tag; returns the underlying type id."""
        for _ in range(MAX_RESOLVE_DEPTH):
            if self.kind_of(type_id) not in _MODIFIERS:
                return type_id
            type_id = self._ref(type_id)
        raise BtfError(f"type chain from [{type_id}] is longer than {MAX_RESOLVE_DEPTH}: a reference loop?")

    def type_tags(self, type_id: int) -> list[str]:
        """TYPE_TAG names on the modifier chain starting at `type_id`, outermost first.

        For `struct elem __kptr *stash` the member's type is PTR -> TYPE_TAG "kptr" ->
        STRUCT elem, so type_tags(<the PTR's type_id>) == ["kptr"].
        """
        tags = []
        for _ in range(MAX_RESOLVE_DEPTH):
            kind = self.kind_of(type_id)
            if kind not in _MODIFIERS:
                return tags
            if kind == Kind.TYPE_TAG:
                tags.append(self[type_id].name)
            type_id = self._ref(type_id)
        raise BtfError(f"type chain from [{type_id}] is longer than {MAX_RESOLVE_DEPTH}: a reference loop?")

    def pointee_tags(self, ptr_type_id: int) -> list[str]:
        """TYPE_TAGs of what a pointer type points to ([] if it is not a pointer)."""
        t = self[self.resolve(ptr_type_id)]
        return self.type_tags(t.type_id) if t.kind == Kind.PTR else []

    def size_of(self, type_id: int) -> int:
        """sizeof() in bytes. Raises BtfError for void, functions and incomplete types."""
        mult = 1
        for _ in range(MAX_RESOLVE_DEPTH * 2):
            t = self[type_id]
            k = t.kind
            if k in _SIZED_KINDS:
                return mult * t.size
            if k == Kind.PTR:
                return mult * POINTER_SIZE
            if k == Kind.ARRAY:
                mult *= t.nelems
                type_id = t.elem_type
            elif k in _MODIFIERS or k == Kind.VAR:
                type_id = t.type_id
            else:
                what = "an incomplete (forward-declared) type" if k == Kind.FWD else k.name
                raise BtfError(f"type [{type_id}] is {what} and has no size")
        raise BtfError(f"type chain from [{type_id}] is too long: a reference loop?")

    # ------------------------------------------------------------------ C spelling
    def type_name(self, type_id: int) -> str:
        """C spelling of a type: "struct elem *", "const char *", "int (*)(void *)", "u32".

        Typedef names are kept (not resolved); TYPE_TAGs are not spelled (see type_tags()).
        A FUNC is spelled as its declaration ("int f(void *ctx)"), a VAR as its type.
        """
        t = self[type_id]
        if t.kind == Kind.FUNC:
            return self._decl(t.type_id, t.name, 0, [_SPELL_BUDGET], with_param_names=True)
        if t.kind == Kind.VAR:
            return self._decl(t.type_id, "", 0, [_SPELL_BUDGET])
        if t.kind == Kind.DATASEC:
            return f"SEC(\"{t.name}\")"
        if t.kind == Kind.DECL_TAG:
            return f"__attribute__((btf_decl_tag(\"{t.name}\")))"
        return self._decl(type_id, "", 0, [_SPELL_BUDGET])

    def c_decl(self, type_id: int, name: str) -> str:
        """A C declaration of `name` with this type: "struct elem *e", "int a[4]"."""
        return self._decl(type_id, name, 0, [_SPELL_BUDGET])

    def _decl(self, type_id: int, inner: str, depth: int, budget: list[int],
              with_param_names: bool = False) -> str:
        # Classic inside-out declarator printing: `inner` is what has been built so far
        # around the name ("*p", "(*p)[4]"), and each level wraps it. `depth` catches
        # loops; `budget` (shared by all branches) catches prototypes whose parameters
        # are prototypes whose parameters are... which would spell exponentially long.
        budget[0] -= 1
        if depth > MAX_RESOLVE_DEPTH * 2 or budget[0] < 0:
            raise BtfError(f"type [{type_id}] nests too deeply to spell: a reference loop?")
        t = self[type_id]
        k = t.kind
        if k == Kind.PTR:
            return self._decl(t.type_id, "*" + inner, depth + 1, budget)
        if k in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
            q = {Kind.CONST: "const", Kind.VOLATILE: "volatile", Kind.RESTRICT: "restrict"}[k]
            if self.kind_of(self.resolve_quals(t.type_id)) == Kind.PTR:
                # A qualified pointer: the qualifier goes after the '*' ("char *const p").
                return self._decl(t.type_id, q + (" " + inner if inner else ""), depth + 1, budget)
            return q + " " + self._decl(t.type_id, inner, depth + 1, budget)
        if k == Kind.TYPE_TAG:
            return self._decl(t.type_id, inner, depth + 1, budget)
        if k == Kind.ARRAY:
            inner = f"({inner})" if inner.startswith("*") else inner
            return self._decl(t.elem_type, f"{inner}[{t.nelems}]", depth + 1, budget)
        if k == Kind.FUNC_PROTO:
            params = []
            for i, (pname, ptype) in enumerate(t.params):
                if ptype == 0 and i == len(t.params) - 1:
                    params.append("...")
                else:
                    params.append(self._decl(ptype, pname if with_param_names else "", depth + 1, budget))
            inner = f"({inner})" if inner.startswith("*") else inner
            return self._decl(t.type_id, f"{inner}({', '.join(params) or 'void'})", depth + 1, budget)
        return f"{self._leaf_name(t)} {inner}" if inner else self._leaf_name(t)

    def resolve_quals(self, type_id: int) -> int:
        """Like resolve() but keeps typedefs: skips only const/volatile/restrict/type_tag."""
        for _ in range(MAX_RESOLVE_DEPTH):
            k = self.kind_of(type_id)
            if k not in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG):
                return type_id
            type_id = self._ref(type_id)
        raise BtfError(f"type chain from [{type_id}] is longer than {MAX_RESOLVE_DEPTH}: a reference loop?")

    @staticmethod
    def _leaf_name(t: BtfType) -> str:
        k = t.kind
        if k == Kind.VOID:
            return "void"
        name = t.name or "(anon)"
        if k == Kind.STRUCT or (k == Kind.FWD and not t.is_union):
            return f"struct {name}"
        if k == Kind.UNION or k == Kind.FWD:
            return f"union {name}"
        if k in (Kind.ENUM, Kind.ENUM64):
            return f"enum {name}"
        return name  # INT, FLOAT, TYPEDEF, and anything named only

    # ------------------------------------------------------------------ layouts
    def _aggregate(self, type_id: int) -> BtfType:
        t = self[self.resolve(type_id)]
        if t.kind not in (Kind.STRUCT, Kind.UNION):
            raise BtfError(f"type [{type_id}] is {t.kind.name}, not a struct or union")
        return t

    def find_member(self, struct_id: int, name: str) -> Member | None:
        """Member `name` of a struct/union, looking into anonymous struct/union members as C
        does; the returned Member's bit_offset is relative to `struct_id`."""
        return self._find_member(struct_id, name, 0, [_WALK_BUDGET])

    def _find_member(self, struct_id: int, name: str, depth: int, budget: list[int]) -> Member | None:
        # The budget bounds the whole search: anonymous members that share an anonymous
        # type (a DAG) would otherwise be searched exponentially often.
        budget[0] -= 1
        if depth > MAX_NESTING or budget[0] < 0:
            raise BtfError(f"struct [{struct_id}] nests too deeply: a struct containing itself?")
        for m in self._aggregate(struct_id).members:
            if m.name == name:
                return m
            if not m.name and self.kind_of(self.resolve(m.type_id)) in (Kind.STRUCT, Kind.UNION):
                inner = self._find_member(m.type_id, name, depth + 1, budget)
                if inner is not None:
                    return Member(inner.name, inner.type_id, m.bit_offset + inner.bit_offset,
                                  inner.bitfield_size)
        return None

    def _children(self, t: BtfType) -> list[tuple[str, int, int, int]]:
        """(name, type_id, byte offset, byte size) of what a struct/union/datasec contains."""
        if t.kind == Kind.DATASEC:
            return [(self[v].name, self[v].type_id, off, size) for v, off, size in t.vars]
        out = []
        for m in t.members:
            if m.bitfield_size:
                size = (m.bit_offset % 8 + m.bitfield_size + 7) // 8
            else:
                try:
                    size = self.size_of(m.type_id)
                except BtfError:
                    size = 0  # flexible array of incomplete type, etc.: covers nothing
            out.append((m.name, m.type_id, m.offset, size))
        return out

    def member_at(self, struct_id: int, byte_offset: int) -> list[tuple[str, BtfType]]:
        """The chain of members covering `byte_offset`, outermost first, as (name, type).

        Descends through nested structs/unions and arrays: an array element appears as
        ("a[2]", element type). Anonymous struct/union members are looked through without
        an entry, as C names them. `struct_id` may also be a DATASEC (names the variable)
        or a VAR. [] when the offset falls in padding or outside the type.
        """
        path: list[tuple[str, BtfType]] = []
        type_id, off = struct_id, byte_offset
        t = self[type_id]
        if t.kind == Kind.VAR:
            type_id = t.type_id
        for _ in range(MAX_NESTING):
            t = self[self.resolve(type_id)]
            if t.kind == Kind.ARRAY:
                name, type_id, off = self._array_step(t, off)
                if name is None:
                    return path
                if path:
                    path[-1] = (path[-1][0] + name, self[type_id])
                else:
                    path.append((name, self[type_id]))
                continue
            if t.kind not in (Kind.STRUCT, Kind.UNION, Kind.DATASEC):
                return path
            for name, mtype, moff, msize in self._children(t):
                if moff <= off < moff + msize:
                    if name:
                        path.append((name, self[mtype]))
                    type_id, off = mtype, off - moff
                    break
            else:
                return path
        raise BtfError(f"type [{struct_id}] nests more than {MAX_NESTING} levels deep: a loop?")

    def _array_step(self, t: BtfType, off: int) -> tuple[str | None, int, int]:
        try:
            esize = self.size_of(t.elem_type)
        except BtfError:
            return None, 0, 0
        if esize <= 0 or off < 0 or off >= esize * t.nelems:
            return None, 0, 0
        return f"[{off // esize}]", t.elem_type, off % esize

    def fields_of(self, struct_id: int, wanted: set[str] | frozenset[str]) -> list[tuple[int, str, str]]:
        """(byte offset, dotted path, struct name) of every member, at any nesting level and
        array element, whose resolved type is a STRUCT named in `wanted`.

        Finds the bpf_spin_lock / bpf_list_head / bpf_rb_root / bpf_list_node / bpf_rb_node /
        bpf_refcount fields of a map value, an allocated object, or a DATASEC of globals
        (paths then start with the variable name; see fixup_datasec()).
        """
        return self._fields(struct_id, frozenset(wanted), 0)

    def _fields(self, type_id: int, wanted: frozenset[str], depth: int) -> list[tuple[int, str, str]]:
        if depth > MAX_NESTING:
            raise BtfError(f"type [{type_id}] nests more than {MAX_NESTING} levels deep: a loop?")
        t = self[type_id]
        if t.kind == Kind.VAR:
            type_id = t.type_id
        elif t.kind != Kind.DATASEC:
            type_id = self.resolve(type_id)
        key = (type_id, wanted)
        cached = self._fields_cache.get(key)
        if cached is not None:
            return cached
        t = self[type_id]
        out: list[tuple[int, str, str]] = []
        if t.kind == Kind.STRUCT and t.name in wanted:
            out.append((0, "", t.name))
        elif t.kind in (Kind.STRUCT, Kind.UNION, Kind.DATASEC):
            children = t.vars if t.kind == Kind.DATASEC else t.members
            for child in children:
                if t.kind == Kind.DATASEC:
                    var = self[child[0]]
                    name, ctype, coff = var.name, var.type_id, child[1]
                else:
                    if child.bitfield_size:
                        continue  # an integer bitfield cannot be a struct
                    name, ctype, coff = child.name, child.type_id, child.offset
                for off, path, sname in self._fields(ctype, wanted, depth + 1):
                    out.append((coff + off, _join(name, path), sname))
        elif t.kind == Kind.ARRAY and t.nelems:
            elem = self._fields(t.elem_type, wanted, depth + 1)
            if elem:
                if len(elem) * t.nelems > MAX_FIELDS:
                    raise BtfError(f"array [{type_id}] holds more than {MAX_FIELDS} special fields")
                esize = self.size_of(t.elem_type)
                for k in range(t.nelems):
                    for off, path, sname in elem:
                        out.append((k * esize + off, _join(f"[{k}]", path), sname))
        if len(out) > MAX_FIELDS:
            raise BtfError(f"type [{type_id}] holds more than {MAX_FIELDS} special fields")
        out.sort(key=lambda f: f[0])
        self._fields_cache[key] = out
        return out

    def fixup_datasec(self, datasec_id: int, size: int, var_offsets: Mapping[str, int]) -> None:
        """Fill in a DATASEC's section size and variable offsets from the ELF symbol table.

        clang leaves them 0 in an object's .BTF; libbpf patches them the same way before
        loading (btf_fixup_datasec). Variables not in `var_offsets` keep their offset.
        """
        t = self[datasec_id]
        if t.kind != Kind.DATASEC:
            raise BtfError(f"type [{datasec_id}] is {t.kind.name}, not a DATASEC")
        t.size = size
        t.vars = [(v, var_offsets.get(self[v].name, off), vsize) for v, off, vsize in t.vars]
        self._fields_cache.clear()


class _TypeView(Sequence):
    """A read-only sequence of types over a range of ids, decoding lazily."""

    __slots__ = ("_btf", "_ids")

    def __init__(self, btf: Btf, ids: range) -> None:
        self._btf, self._ids = btf, ids

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return _TypeView(self._btf, self._ids[index])
        return self._btf[self._ids[index]]

    def __iter__(self) -> Iterator[BtfType]:
        btf = self._btf
        return (btf[i] for i in self._ids)


def _join(name: str, path: str) -> str:
    if not path:
        return name
    if not name or path.startswith("["):
        return name + path
    return f"{name}.{path}"


_VOID = BtfType(0, Kind.VOID)


# ====================================================================== .BTF.ext

@dataclass(frozen=True, slots=True)
class FuncInfo:
    insn: int      # instruction index in the ELF section
    type_id: int   # a FUNC


@dataclass(frozen=True, slots=True)
class LineInfo:
    insn: int
    file: str
    line: int      # 1-based
    col: int       # 1-based, 0 when unknown
    text: str      # the source line, as clang saw it


class CoreRelocKind(IntEnum):
    """enum bpf_core_relo_kind (include/uapi/linux/bpf.h)."""
    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


@dataclass(frozen=True, slots=True)
class CoreReloc:
    insn: int
    type_id: int
    access_str: str   # "0:1:0": member indices from the root type
    kind: CoreRelocKind


# Minimum record sizes (struct bpf_func_info, bpf_line_info, bpf_core_relo).
_FUNC_INFO_MIN, _LINE_INFO_MIN, _CORE_RELO_MIN = 8, 16, 16


class BtfExt:
    """A parsed `.BTF.ext` section, keyed by ELF section name, instruction indices."""

    def __init__(self) -> None:  # use BtfExt.parse()
        self.func_info: dict[str, list[FuncInfo]] = {}
        self.line_info: dict[str, list[LineInfo]] = {}
        self.core_relos: dict[str, list[CoreReloc]] = {}

    @classmethod
    def parse(cls, data: bytes, btf: Btf) -> BtfExt:
        """Parse `.BTF.ext`; strings and type ids refer to `btf`. Raises BtfError."""
        self = cls()
        mv = memoryview(data)
        if len(mv) < 8:
            raise BtfError(f".BTF.ext is {len(mv)} bytes, shorter than its header")
        if bytes(mv[:2]) == b"\x9f\xeb":
            bo = "<"
        elif bytes(mv[:2]) == b"\xeb\x9f":
            bo = ">"
        else:
            raise BtfError(f"bad .BTF.ext magic {bytes(mv[:2]).hex()}")
        _magic, version, _flags, hdr_len = struct.unpack_from(bo + "HBBI", mv, 0)
        if version != 1:
            raise BtfError(f"unsupported .BTF.ext version {version}")
        # func_info and line_info are mandatory header fields; core_relo came later.
        if hdr_len < 24 or hdr_len > len(mv):
            raise BtfError(f".BTF.ext header length {hdr_len} is out of range (data is {len(mv)} bytes)")
        fi_off, fi_len, li_off, li_len = struct.unpack_from(bo + "IIII", mv, 8)
        cr_off = cr_len = 0
        if hdr_len >= 32:
            cr_off, cr_len = struct.unpack_from(bo + "II", mv, 24)

        def block(off: int, length: int, what: str) -> memoryview:
            start = hdr_len + off
            if start + length > len(mv):
                raise BtfError(f".BTF.ext {what} [{start}, {start + length}) runs past the end of the "
                               f"data ({len(mv)} bytes): truncated?")
            return mv[start:start + length]

        def insn(byte_off: int, what: str) -> int:
            if byte_off % 8:
                raise BtfError(f".BTF.ext {what} instruction offset {byte_off} is not a multiple of 8")
            return byte_off // 8

        def type_id(tid: int, what: str) -> int:
            if tid >= len(btf):
                raise BtfError(f".BTF.ext {what} names type id {tid}, but only ids < {len(btf)} exist")
            return tid

        for sec, recs in _info_sections(block(fi_off, fi_len, "func_info"), bo, _FUNC_INFO_MIN,
                                        "func_info", btf):
            out = []
            for r in recs:
                tid = type_id(r[1], "func_info")
                if btf.kind_of(tid) != Kind.FUNC:
                    raise BtfError(f".BTF.ext func_info names type [{tid}], a {btf.kind_of(tid).name}, not a FUNC")
                out.append(FuncInfo(insn(r[0], "func_info"), tid))
            self.func_info[sec] = out
        for sec, recs in _info_sections(block(li_off, li_len, "line_info"), bo, _LINE_INFO_MIN,
                                        "line_info", btf):
            string = btf.string
            self.line_info[sec] = [
                LineInfo(insn(r[0], "line_info"), string(r[1]), r[3] >> 10, r[3] & 0x3FF, string(r[2]))
                for r in recs]
        if cr_len:
            for sec, recs in _info_sections(block(cr_off, cr_len, "core_relo"), bo, _CORE_RELO_MIN,
                                            "core_relo", btf):
                out_r = []
                for r in recs:
                    try:
                        kind = CoreRelocKind(r[3])
                    except ValueError:
                        raise BtfError(f".BTF.ext CO-RE relocation has unknown kind {r[3]}") from None
                    out_r.append(CoreReloc(insn(r[0], "core_relo"), type_id(r[1], "core_relo"),
                                           btf.string(r[2]), kind))
                self.core_relos[sec] = out_r
        return self


def _info_sections(blk: memoryview, bo: str, min_rec: int, what: str,
                   btf: Btf) -> Iterator[tuple[str, list[tuple[int, ...]]]]:
    """Yield (ELF section name, records as u32 tuples) of one .BTF.ext info block.

    Layout (libbpf btf_ext_setup_info): u32 rec_size, then per ELF section
    {u32 sec_name_off; u32 num_info; rec_size * num_info bytes}.
    """
    if len(blk) == 0:
        return
    if len(blk) < 4:
        raise BtfError(f".BTF.ext {what} block is {len(blk)} bytes, too short for its record size")
    (rec_size,) = struct.unpack_from(bo + "I", blk, 0)
    # Records may grow in later versions (so rec_size may exceed what we know); shorter or
    # unaligned ones are malformed.
    if rec_size < min_rec or rec_size % 4:
        raise BtfError(f".BTF.ext {what} record size {rec_size} is invalid (at least {min_rec}, multiple of 4)")
    fmt = f"{bo}{rec_size // 4}I"
    pos = 4
    while pos < len(blk):
        if pos + 8 > len(blk):
            raise BtfError(f".BTF.ext {what} section header at byte {pos} is truncated")
        name_off, num = struct.unpack_from(bo + "II", blk, pos)
        pos += 8
        end = pos + num * rec_size
        if end > len(blk):
            raise BtfError(f".BTF.ext {what}: {num} records of {rec_size} bytes run past the end of the block")
        yield btf.string(name_off), list(struct.iter_unpack(fmt, blk[pos:end]))
        pos = end
