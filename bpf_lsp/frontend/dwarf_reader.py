"""A DWARF reader for BPF objects: units, DIEs and their attributes, line-table file names,
address and location lists, with addresses resolved through the debug sections' relocations.

Only what `dwarf.py` needs to find variable locations is read, and types are decoded on demand
(see `dwarf.py` for why this is not pyelftools' DWARF layer). Malformed or truncated input raises
`DwarfError` and nothing else; every loop is bounded by the size of the data it walks.
"""
from __future__ import annotations

import bisect
import posixpath
from typing import Iterator, NamedTuple

from elftools.elf.elffile import ELFFile


class DwarfError(ValueError):
    """The object's DWARF is malformed, truncated or uses an encoding we cannot read."""


# --------------------------------------------------------------------------------------------
# Constants: only what we read. Names follow the DWARF 5 standard.

INSN_SIZE = 8
BPF_NUM_REGS = 11           # r0..r10; BPF's DWARF register numbers are the same numbers
BPF_FRAME_REG = 10
BPF_MAX_STACK = 512         # the kernel's MAX_BPF_STACK: no r10 offset is ever below this
MAX_REF_HOPS = 16           # abstract_origin / specification chains
MAX_TYPE_DEPTH = 48         # nesting of pointer/array/typedef/... when spelling a type
MAX_INDIRECT = 4            # DW_FORM_indirect chains
MAX_SPELL_STEPS = 2000      # work spent spelling one type: corrupt input can make a type
                            # graph whose unfolding is exponential in MAX_TYPE_DEPTH

TAG_array_type, TAG_class_type, TAG_enumeration_type, TAG_formal_parameter = 0x01, 0x02, 0x04, 0x05
TAG_lexical_block, TAG_member, TAG_pointer_type, TAG_reference_type = 0x0B, 0x0D, 0x0F, 0x10
TAG_compile_unit, TAG_structure_type, TAG_subroutine_type, TAG_typedef = 0x11, 0x13, 0x15, 0x16
TAG_union_type, TAG_unspecified_parameters, TAG_inlined_subroutine = 0x17, 0x18, 0x1D
TAG_subrange_type, TAG_base_type, TAG_const_type, TAG_subprogram = 0x21, 0x24, 0x26, 0x2E
TAG_variable, TAG_volatile_type, TAG_restrict_type, TAG_rvalue_reference_type = 0x34, 0x35, 0x37, 0x42
TAG_atomic_type = 0x47

AT_location, AT_name, AT_byte_size, AT_stmt_list, AT_low_pc, AT_high_pc = 0x02, 0x03, 0x0B, 0x10, 0x11, 0x12
AT_comp_dir, AT_lower_bound, AT_upper_bound, AT_abstract_origin = 0x1B, 0x22, 0x2F, 0x31
AT_count, AT_decl_file, AT_decl_line, AT_declaration, AT_frame_base = 0x37, 0x3A, 0x3B, 0x3C, 0x40
AT_specification, AT_type, AT_ranges, AT_str_offsets_base, AT_addr_base = 0x47, 0x49, 0x55, 0x72, 0x73
AT_rnglists_base, AT_alignment, AT_loclists_base, AT_GNU_addr_base = 0x74, 0x88, 0x8C, 0x2133

FORM_addr, FORM_block2, FORM_block4, FORM_data2, FORM_data4, FORM_data8 = 0x01, 0x03, 0x04, 0x05, 0x06, 0x07
FORM_string, FORM_block, FORM_block1, FORM_data1, FORM_flag, FORM_sdata = 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D
FORM_strp, FORM_udata, FORM_ref_addr, FORM_ref1, FORM_ref2, FORM_ref4 = 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13
FORM_ref8, FORM_ref_udata, FORM_indirect, FORM_sec_offset, FORM_exprloc = 0x14, 0x15, 0x16, 0x17, 0x18
FORM_flag_present, FORM_strx, FORM_addrx, FORM_ref_sup4, FORM_strp_sup = 0x19, 0x1A, 0x1B, 0x1C, 0x1D
FORM_data16, FORM_line_strp, FORM_ref_sig8, FORM_implicit_const = 0x1E, 0x1F, 0x20, 0x21
FORM_loclistx, FORM_rnglistx, FORM_ref_sup8 = 0x22, 0x23, 0x24
FORM_strx1, FORM_strx2, FORM_strx3, FORM_strx4 = 0x25, 0x26, 0x27, 0x28
FORM_addrx1, FORM_addrx2, FORM_addrx3, FORM_addrx4 = 0x29, 0x2A, 0x2B, 0x2C
FORM_GNU_addr_index, FORM_GNU_str_index, FORM_GNU_ref_alt, FORM_GNU_strp_alt = 0x1F01, 0x1F02, 0x1F20, 0x1F21

_ULEB_FORMS = {FORM_udata, FORM_ref_udata, FORM_strx, FORM_addrx, FORM_loclistx, FORM_rnglistx,
               FORM_GNU_addr_index, FORM_GNU_str_index}
_BLOCK_FORMS = {FORM_block, FORM_block1, FORM_block2, FORM_block4, FORM_exprloc}
_CONST_FORMS = {FORM_data1, FORM_data2, FORM_data4, FORM_data8, FORM_udata, FORM_sdata,
                FORM_implicit_const}
_ADDRX_FORMS = {FORM_addrx, FORM_addrx1, FORM_addrx2, FORM_addrx3, FORM_addrx4, FORM_GNU_addr_index}
_STRX_FORMS = {FORM_strx, FORM_strx1, FORM_strx2, FORM_strx3, FORM_strx4, FORM_GNU_str_index}
_LOCAL_REF_FORMS = {FORM_ref1, FORM_ref2, FORM_ref4, FORM_ref8, FORM_ref_udata}

DW_LNCT_path, DW_LNCT_directory_index = 1, 2
DW_UT_compile, DW_UT_partial = 1, 3

DW_OP_reg0, DW_OP_reg31 = 0x50, 0x6F
DW_OP_breg10 = 0x70 + BPF_FRAME_REG
DW_OP_regx, DW_OP_fbreg, DW_OP_bregx = 0x90, 0x91, 0x92

# Location list (.debug_loclists, DW_LLE_*) and range list (.debug_rnglists, DW_RLE_*) entry
# kinds. The first five coincide; after that the two encodings differ by one (ranges have no
# default_location), which is why _v5_list takes the kind table as a parameter.
_LLE = {"end": 0, "base_addressx": 1, "startx_endx": 2, "startx_length": 3, "offset_pair": 4,
        "default_location": 5, "base_address": 6, "start_end": 7, "start_length": 8}
_RLE = {"end": 0, "base_addressx": 1, "startx_endx": 2, "startx_length": 3, "offset_pair": 4,
        "default_location": -1, "base_address": 5, "start_end": 6, "start_length": 7}

# Debug sections whose contents hold code addresses (and so carry relocations we resolve).
_ADDRESS_SECTIONS = (".debug_info", ".debug_addr", ".debug_loclists", ".debug_rnglists",
                     ".debug_loc", ".debug_ranges")

# A resolved address: (ELF section name, or None when nothing relocates it; byte offset).
Addr = tuple[str | None, int]
# A code range: (section or None, lo byte, hi byte).
Range = tuple[str | None, int, int]


# --------------------------------------------------------------------------------------------
# Byte-level reading. Every overrun is a DwarfError: never an IndexError, never a short read.

def _leb128(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """(value bits, bit count, last byte, position after) of the LEB128 number at `pos`."""
    result = shift = 0
    # 10 bytes encode any 64-bit value; allow slack for padded encodings, then call it garbage.
    for _ in range(16):
        if pos >= len(data):
            raise DwarfError(f"LEB128 number runs off the end of its section at {pos:#x}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, shift, byte, pos
    raise DwarfError(f"LEB128 number longer than 16 bytes before {pos:#x}")


def uleb(data: bytes, pos: int) -> tuple[int, int]:
    result, _, _, pos = _leb128(data, pos)
    return result, pos


def sleb(data: bytes, pos: int) -> tuple[int, int]:
    result, shift, last, pos = _leb128(data, pos)
    return (result - (1 << shift) if last & 0x40 else result), pos


class _Cursor:
    """Sequential reads from one section, for lists and headers."""
    __slots__ = ("data", "pos", "order", "what")

    def __init__(self, data: bytes, pos: int, order: str, what: str):
        if not 0 <= pos <= len(data):
            raise DwarfError(f"{what}: offset {pos:#x} is outside the section ({len(data):#x} bytes)")
        self.data, self.pos, self.order, self.what = data, pos, order, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DwarfError(f"{self.what} at {self.pos:#x}: needs {n} bytes, "
                             f"{len(self.data) - self.pos} left")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), self.order)

    def sint(self, n: int) -> int:
        return int.from_bytes(self.take(n), self.order, signed=True)

    def uleb(self) -> int:
        value, self.pos = uleb(self.data, self.pos)
        return value

    def sleb(self) -> int:
        value, self.pos = sleb(self.data, self.pos)
        return value

    def cstring(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DwarfError(f"{self.what} at {self.pos:#x}: unterminated string")
        s = self.data[self.pos:end]
        self.pos = end + 1
        return s

    def initial_length(self) -> tuple[int, int]:
        """(unit length, offset size) of a DWARF unit header."""
        length = self.uint(4)
        if length == 0xFFFFFFFF:
            return self.uint(8), 8
        if length >= 0xFFFFFFF0:
            raise DwarfError(f"{self.what}: reserved unit length {length:#x}")
        return length, 4


# --------------------------------------------------------------------------------------------
# Relocations: which section an address stored in a debug section points into.

class _Relocations:
    """Per debug section: offset -> (target section name | None, symbol value, RELA addend)."""

    def __init__(self, elf: ELFFile):
        self._by_section: dict[str, dict[int, tuple[str | None, int, int | None]]] = {}
        wanted = {}
        for idx, sec in enumerate(elf.iter_sections()):
            if sec.name in _ADDRESS_SECTIONS:
                wanted[idx] = sec.name
        for sec in elf.iter_sections():
            if sec["sh_type"] in ("SHT_REL", "SHT_RELA") and sec["sh_info"] in wanted:
                self._load(elf, sec, wanted[sec["sh_info"]])

    def _load(self, elf: ELFFile, rel, target: str) -> None:
        is_rela = rel["sh_type"] == "SHT_RELA"
        is64 = elf.elfclass == 64
        word = 8 if is64 else 4
        entsize = word * (3 if is_rela else 2)
        symtab = elf.get_section(rel["sh_link"])
        if not hasattr(symtab, "get_symbol"):
            raise DwarfError(f"relocation section {rel.name} does not link to a symbol table")
        data = rel.data()
        order = "little" if elf.little_endian else "big"
        table = self._by_section.setdefault(target, {})
        symbols: dict[int, tuple[str | None, int] | None] = {}
        for start in range(0, len(data) - entsize + 1, entsize):
            r_offset = int.from_bytes(data[start:start + word], order)
            r_info = int.from_bytes(data[start + word:start + 2 * word], order)
            addend = (int.from_bytes(data[start + 2 * word:start + 3 * word], order, signed=True)
                      if is_rela else None)
            sym_index = r_info >> 32 if is64 else r_info >> 8
            # We accept any relocation type: in debug sections they are all absolute data
            # relocations (for BPF R_BPF_64_ABS64 / ABS32 / NODYLD32), i.e. value = S + A.
            if sym_index not in symbols:
                symbols[sym_index] = self._symbol_target(elf, symtab, sym_index)
            target_sym = symbols[sym_index]
            if target_sym is not None:
                table[r_offset] = (target_sym[0], target_sym[1], addend)

    @staticmethod
    def _symbol_target(elf: ELFFile, symtab, index: int) -> tuple[str | None, int] | None:
        if index == 0 or index >= symtab.num_symbols():
            return None
        sym = symtab.get_symbol(index)
        shndx = sym["st_shndx"]
        if shndx == "SHN_ABS":
            return (None, sym["st_value"])
        if not isinstance(shndx, int) or not 0 < shndx < elf.num_sections():
            return None  # undefined (an extern) or a special index: no section to point into
        # SECTION symbols (value 0, the offset is the addend) and FUNC/OBJECT symbols (the
        # value is the symbol's offset in its section) alike.
        return (elf.get_section(shndx).name, sym["st_value"])

    def resolve(self, section: str, offset: int, raw: int) -> Addr:
        """The address stored at `offset` of debug section `section` whose bytes read `raw`."""
        hit = self._by_section.get(section, {}).get(offset)
        if hit is None:
            return (None, raw)
        target, value, addend = hit
        # REL keeps the addend in place (that is `raw`); RELA has it in the entry.
        return (target, value + (raw if addend is None else addend))


# --------------------------------------------------------------------------------------------
# Debugging information entries

class _Abbrev(NamedTuple):
    tag: int
    has_children: bool
    specs: tuple[tuple[int, int, int], ...]   # (attribute, form, implicit_const value)
    fixed_size: int | None                    # bytes of attribute data when no form varies


class Die:
    """One DIE, decoded: attrs maps attribute -> (form, value, offset of the value)."""
    __slots__ = ("unit", "offset", "tag", "attrs", "has_children", "end", "children")

    def __init__(self, unit: "Unit", offset: int, tag: int, attrs: dict, has_children: bool, end: int):
        self.unit, self.offset, self.tag, self.attrs = unit, offset, tag, attrs
        self.has_children, self.end = has_children, end
        self.children: list[Die] | None = None

    def int_attr(self, attr: int, default: int | None = None) -> int | None:
        a = self.attrs.get(attr)
        return a[1] if a is not None and isinstance(a[1], int) else default


class Unit:
    """A compile unit: header, abbreviations, and the bases its indexed forms are relative to."""

    def __init__(self, dw: "DwarfReader", offset: int):
        c = _Cursor(dw.info, offset, dw.order, ".debug_info")
        length, self.offset_size = c.initial_length()
        self.offset = offset
        self.end = c.pos + length
        if self.end > len(dw.info):
            raise DwarfError(f"unit at {offset:#x} claims {length:#x} bytes, past the section end")
        self.version = c.uint(2)
        self.unit_type = DW_UT_compile
        if self.version >= 5:
            self.unit_type = c.uint(1)
            self.addr_size = c.uint(1)
            abbrev_offset = c.uint(self.offset_size)
            if self.unit_type in (4, 5):               # skeleton / split_compile: dwo_id
                c.take(8)
            elif self.unit_type in (2, 6):             # type / split_type units
                c.take(8 + self.offset_size)
        elif 2 <= self.version <= 4:
            abbrev_offset = c.uint(self.offset_size)
            self.addr_size = c.uint(1)
        else:
            raise DwarfError(f"unit at {offset:#x}: DWARF version {self.version} is not supported")
        if self.addr_size not in (4, 8):
            raise DwarfError(f"unit at {offset:#x}: address size {self.addr_size}")
        self.die_start = c.pos
        if self.die_start > self.end:
            raise DwarfError(f"unit at {offset:#x}: header is longer than the unit")
        self.form_sizes = _fixed_form_sizes(self)
        self.abbrevs = dw.abbrev_table(abbrev_offset, self.form_sizes)
        self.top: Die | None = None
        # Defaults are the header sizes of the v5 tables, which is where the first unit's
        # entries start when a producer leaves the base attribute out.
        header = 8 if self.offset_size == 4 else 16
        self.addr_base = header
        self.str_offsets_base = header
        self.loclists_base = self.rnglists_base = header + 4
        self.base: Addr = (None, 0)
        self.files: list[str] | None = None    # from the line table header, on first use


def _fixed_form_sizes(unit: Unit) -> dict[int, int]:
    osz, asz = unit.offset_size, unit.addr_size
    return {
        FORM_addr: asz, FORM_data1: 1, FORM_data2: 2, FORM_data4: 4, FORM_data8: 8, FORM_data16: 16,
        FORM_flag: 1, FORM_flag_present: 0, FORM_implicit_const: 0,
        FORM_strp: osz, FORM_line_strp: osz, FORM_strp_sup: osz, FORM_sec_offset: osz,
        FORM_ref_addr: osz if unit.version >= 3 else asz,
        FORM_ref1: 1, FORM_ref2: 2, FORM_ref4: 4, FORM_ref8: 8, FORM_ref_sig8: 8,
        FORM_ref_sup4: 4, FORM_ref_sup8: 8,
        FORM_strx1: 1, FORM_strx2: 2, FORM_strx3: 3, FORM_strx4: 4,
        FORM_addrx1: 1, FORM_addrx2: 2, FORM_addrx3: 3, FORM_addrx4: 4,
        FORM_GNU_ref_alt: osz, FORM_GNU_strp_alt: osz,
    }


class DwarfReader:
    """The debug sections of one object, read on demand."""

    def __init__(self, elf: ELFFile):
        self.elf = elf
        self.little = elf.little_endian
        self.order = "little" if self.little else "big"
        self.units: list[Unit] = []
        self._unit_offsets: list[int] = []
        self.subprograms: list[Die] = []
        info = elf.get_section_by_name(".debug_info")
        if info is None:
            return
        self.info = info.data()
        self._sections: dict[str, bytes] = {}
        self._abbrev_tables: dict[tuple, dict[int, _Abbrev]] = {}
        self._dies: dict[int, Die] = {}
        self._type_names: dict[int, str] = {}
        self._layouts: dict[int, tuple[int, int] | None] = {}   # None: being computed
        self._spell_budget = 0
        self.relocs = _Relocations(elf)
        self._load_units()

    def section_bytes(self, name: str) -> bytes:
        if name not in self._sections:
            sec = self.elf.get_section_by_name(name)
            if sec is None:
                raise DwarfError(f"the DWARF refers to {name}, which the object does not have")
            self._sections[name] = sec.data()
        return self._sections[name]

    # ---- units and the walk over all DIEs ---------------------------------------------------
    def _load_units(self) -> None:
        offset = 0
        # Each unit is at least its 11-byte header, so this bound is never the one that stops.
        for _ in range(len(self.info) // 11 + 1):
            if offset >= len(self.info):
                return
            unit = Unit(self, offset)
            self.units.append(unit)
            self._unit_offsets.append(unit.offset)
            if unit.unit_type in (DW_UT_compile, DW_UT_partial) and unit.die_start < unit.end:
                self._read_top(unit)
                self._find_subprograms(unit)
            offset = unit.end
        raise DwarfError(".debug_info: too many units")

    def _read_top(self, unit: Unit) -> None:
        top = self.die_at(unit, unit.die_start)
        if top is None:
            return
        unit.top = top
        unit.addr_base = top.int_attr(AT_addr_base, top.int_attr(AT_GNU_addr_base, unit.addr_base))
        unit.str_offsets_base = top.int_attr(AT_str_offsets_base, unit.str_offsets_base)
        unit.loclists_base = top.int_attr(AT_loclists_base, unit.loclists_base)
        unit.rnglists_base = top.int_attr(AT_rnglists_base, unit.rnglists_base)
        # The default base address of the unit's lists: (None, 0) when the unit spans several
        # sections (clang then writes low_pc 0, unrelocated, plus DW_AT_ranges).
        if AT_low_pc in top.attrs:
            unit.base = self.address_attr(top, AT_low_pc)

    def _find_subprograms(self, unit: Unit) -> None:
        # The hot loop over every DIE of the unit. Clang emits no DW_AT_sibling, so there is no
        # skipping whole type subtrees: we step over each DIE, in O(1) when its abbreviation
        # has only fixed-size forms (members, pointers, typedefs: nearly all of them), and
        # decode nothing but subprograms.
        data, end, abbrevs = self.info, unit.end, unit.abbrevs
        pos = unit.die_start
        while pos < end:
            start = pos
            code = data[pos]
            if code < 0x80:
                pos += 1
            else:
                code, pos = uleb(data, pos)
            if code == 0:
                continue                    # end of a sibling list
            ab = abbrevs.get(code)
            if ab is None:
                raise DwarfError(f"DIE at {start:#x}: abbreviation code {code} is not defined")
            if ab.tag == TAG_subprogram:
                die = self.die_at(unit, start)
                self.subprograms.append(die)
                pos = die.end
            elif ab.fixed_size is not None:
                pos += ab.fixed_size
            else:
                pos = self._skip_attributes(unit, ab, pos)
        if pos > end:
            raise DwarfError(f"the last DIE of the unit at {unit.offset:#x} runs past its end")

    def abbrev_table(self, offset: int, form_sizes: dict[int, int]) -> dict[int, _Abbrev]:
        """The abbreviation table at `offset`, with each declaration's fixed attribute size
        (which depends on the unit's address and offset sizes, hence the key)."""
        key = (offset, tuple(sorted(form_sizes.items())))
        table = self._abbrev_tables.get(key)
        if table is not None:
            return table
        data = self.section_bytes(".debug_abbrev")
        c = _Cursor(data, offset, self.order, ".debug_abbrev")
        table = {}
        for _ in range(len(data) + 1):   # every declaration takes at least 4 bytes
            code = c.uleb()
            if code == 0:
                break
            tag = c.uleb()
            has_children = c.uint(1) != 0
            specs = []
            for _ in range(len(data) + 1):
                attr, form = c.uleb(), c.uleb()
                if attr == 0 and form == 0:
                    break
                implicit = c.sleb() if form == FORM_implicit_const else 0
                specs.append((attr, form, implicit))
            sizes = [form_sizes.get(form) for _, form, _ in specs]
            fixed = None if None in sizes else sum(sizes)
            table[code] = _Abbrev(tag, has_children, tuple(specs), fixed)
        self._abbrev_tables[key] = table
        return table

    def _skip_attributes(self, unit: Unit, ab: _Abbrev, pos: int) -> int:
        for _, form, _ in ab.specs:
            pos = self._skip_form(unit, form, pos, 0)
        return pos

    def _skip_form(self, unit: Unit, form: int, pos: int, depth: int) -> int:
        size = unit.form_sizes.get(form)
        if size is not None:
            return pos + size
        data = self.info
        if form in _ULEB_FORMS:
            return uleb(data, pos)[1]
        if form == FORM_sdata:
            return sleb(data, pos)[1]
        if form in (FORM_exprloc, FORM_block):
            n, pos = uleb(data, pos)
            return pos + n
        if form == FORM_block1:
            return pos + 1 + _read_uint(data, pos, 1, self.order)
        if form == FORM_block2:
            return pos + 2 + _read_uint(data, pos, 2, self.order)
        if form == FORM_block4:
            return pos + 4 + _read_uint(data, pos, 4, self.order)
        if form == FORM_string:
            end = data.find(b"\0", pos)
            if end < 0:
                raise DwarfError(f"unterminated string at {pos:#x} in .debug_info")
            return end + 1
        if form == FORM_indirect and depth < MAX_INDIRECT:
            real, pos = uleb(data, pos)
            return self._skip_form(unit, real, pos, depth + 1)
        raise DwarfError(f"attribute form {form:#x} at {pos:#x} is not supported")

    def _form_value(self, unit: Unit, form: int, pos: int, implicit: int, depth: int = 0):
        """(value, next position): ints for constants, references, indices and offsets,
        bytes for blocks and inline strings."""
        data = self.info
        size = unit.form_sizes.get(form)
        if form == FORM_implicit_const:
            return implicit, pos
        if form == FORM_flag_present:
            return 1, pos
        if size is not None:
            if form == FORM_data16:
                return data[pos:pos + 16], pos + 16
            return _read_uint(data, pos, size, self.order), pos + size
        if form in _ULEB_FORMS:
            return uleb(data, pos)
        if form == FORM_sdata:
            return sleb(data, pos)
        if form in _BLOCK_FORMS:
            if form in (FORM_exprloc, FORM_block):
                n, pos = uleb(data, pos)
            else:
                width = {FORM_block1: 1, FORM_block2: 2, FORM_block4: 4}[form]
                n = _read_uint(data, pos, width, self.order)
                pos += width
            if pos + n > len(data):
                raise DwarfError(f"block of {n} bytes at {pos:#x} runs past .debug_info")
            return data[pos:pos + n], pos + n
        if form == FORM_string:
            end = data.find(b"\0", pos)
            if end < 0:
                raise DwarfError(f"unterminated string at {pos:#x} in .debug_info")
            return data[pos:end], end + 1
        if form == FORM_indirect and depth < MAX_INDIRECT:
            real, pos = uleb(data, pos)
            return self._form_value(unit, real, pos, implicit, depth + 1)
        raise DwarfError(f"attribute form {form:#x} at {pos:#x} is not supported")

    def die_at(self, unit: Unit, offset: int) -> Die | None:
        """The DIE at `offset` (decoded once), or None for a null entry."""
        die = self._dies.get(offset)
        if die is not None:
            return die
        if not unit.die_start <= offset < unit.end:
            raise DwarfError(f"DIE offset {offset:#x} is outside its unit")
        code, pos = uleb(self.info, offset)
        if code == 0:
            return None
        ab = unit.abbrevs.get(code)
        if ab is None:
            raise DwarfError(f"DIE at {offset:#x}: abbreviation code {code} is not defined")
        attrs = {}
        for attr, form, implicit in ab.specs:
            value, next_pos = self._form_value(unit, form, pos, implicit)
            attrs[attr] = (form, value, pos)
            pos = next_pos
        if pos > unit.end:
            raise DwarfError(f"DIE at {offset:#x} runs past the end of its unit")
        die = Die(unit, offset, ab.tag, attrs, ab.has_children, pos)
        self._dies[offset] = die
        return die

    def children(self, die: Die) -> list[Die]:
        """Direct children, decoded; their own subtrees are stepped over, not decoded."""
        if die.children is not None:
            return die.children
        out: list[Die] = []
        if die.has_children:
            unit, data = die.unit, self.info
            pos, depth = die.end, 0
            while True:
                if pos >= unit.end:
                    raise DwarfError(f"children of the DIE at {die.offset:#x} run past the unit")
                start = pos
                code, pos = uleb(data, pos)
                if code == 0:
                    if depth == 0:
                        break
                    depth -= 1
                    continue
                ab = unit.abbrevs.get(code)
                if ab is None:
                    raise DwarfError(f"DIE at {start:#x}: abbreviation code {code} is not defined")
                if depth == 0:
                    child = self.die_at(unit, start)
                    out.append(child)
                    pos = child.end
                elif ab.fixed_size is not None:
                    pos += ab.fixed_size
                else:
                    pos = self._skip_attributes(unit, ab, pos)
                if ab.has_children:
                    depth += 1
        die.children = out
        return out

    # ---- attributes -------------------------------------------------------------------------
    def ref(self, die: Die, attr: int) -> Die | None:
        a = die.attrs.get(attr)
        if a is None:
            return None
        form, value, _ = a
        if form in _LOCAL_REF_FORMS:
            target = die.unit.offset + value
            unit = die.unit
        elif form == FORM_ref_addr:
            target = value
            unit = self._unit_containing(target)
        else:
            return None   # type-unit signatures, supplementary files: nothing we can follow
        if unit is None or not unit.die_start <= target < unit.end:
            return None   # a dangling reference: treat the attribute as absent
        return self.die_at(unit, target)

    def _unit_containing(self, offset: int) -> Unit | None:
        i = bisect.bisect_right(self._unit_offsets, offset) - 1
        return self.units[i] if i >= 0 and offset < self.units[i].end else None

    def string(self, die: Die, attr: int) -> str:
        a = die.attrs.get(attr)
        if a is None:
            return ""
        return self._string(die.unit, a[0], a[1])

    def _string(self, unit: Unit, form: int, value) -> str:
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        if form in (FORM_strp, FORM_line_strp):
            data = self.section_bytes(".debug_line_str" if form == FORM_line_strp else ".debug_str")
        elif form in _STRX_FORMS:
            # An index into the unit's slice of .debug_str_offsets, which holds .debug_str
            # offsets (relocated against .debug_str's section symbol, value 0: the in-place
            # addend already is the offset).
            table = self.section_bytes(".debug_str_offsets")
            at = unit.str_offsets_base + value * unit.offset_size
            value = _read_uint(table, at, unit.offset_size, self.order)
            data = self.section_bytes(".debug_str")
        else:
            return ""
        if not 0 <= value < len(data):
            raise DwarfError(f"string offset {value:#x} is outside its section")
        end = data.find(b"\0", value)
        if end < 0:
            raise DwarfError(f"unterminated string at {value:#x}")
        return data[value:end].decode("utf-8", errors="replace")

    def origin_chain(self, die: Die) -> Iterator[Die]:
        """The DIE, then the abstract instance or declaration it completes, and so on."""
        seen = set()
        for _ in range(MAX_REF_HOPS):
            if die is None or die.offset in seen:
                return
            seen.add(die.offset)
            yield die
            die = self.ref(die, AT_abstract_origin) or self.ref(die, AT_specification)

    def inherited(self, die: Die, attr: int) -> Die | None:
        """The first DIE along the origin chain that has `attr`."""
        for d in self.origin_chain(die):
            if attr in d.attrs:
                return d
        return None

    def name_of(self, die: Die) -> str:
        d = self.inherited(die, AT_name)
        return self.string(d, AT_name) if d is not None else ""

    def decl_of(self, die: Die) -> tuple[str, int]:
        d = self.inherited(die, AT_decl_file)
        decl_file = self.file_name(d.unit, d.int_attr(AT_decl_file, -1)) if d is not None else ""
        d = self.inherited(die, AT_decl_line)
        return decl_file, (d.int_attr(AT_decl_line, 0) if d is not None else 0)

    # ---- file names from the line table header ----------------------------------------------
    def file_name(self, unit: Unit, index: int) -> str:
        if unit.files is None:
            unit.files = self._line_table_files(unit)
        if unit.version < 5:
            index -= 1   # DWARF <= 4 numbers files from 1; 0 means "no file"
        return unit.files[index] if 0 <= index < len(unit.files) else ""

    def _line_table_files(self, unit: Unit) -> list[str]:
        top = unit.top
        if top is None or AT_stmt_list not in top.attrs:
            return []
        comp_dir = self.string(top, AT_comp_dir)
        c = _Cursor(self.section_bytes(".debug_line"), top.int_attr(AT_stmt_list, 0), self.order,
                    ".debug_line")
        length, offset_size = c.initial_length()
        end = c.pos + length
        version = c.uint(2)
        if not 2 <= version <= 5:
            raise DwarfError(f".debug_line: version {version} is not supported")
        if version >= 5:
            c.take(2)                                   # address_size, segment_selector_size
        c.take(offset_size)                             # header_length
        c.take(1 + (1 if version >= 4 else 0) + 3)      # min_inst_length [max_ops] is_stmt base range
        opcode_base = c.uint(1)
        c.take(max(opcode_base - 1, 0))                 # standard_opcode_lengths
        if version >= 5:
            dirs = [self._path(e, unit) for e in self._v5_entries(c, unit, offset_size, end)]
            files = self._v5_entries(c, unit, offset_size, end)
            pairs = [(self._path(f, unit), f.get(DW_LNCT_directory_index, (0, 0))[1]) for f in files]
        else:
            dirs = [comp_dir]                           # directory 0: the compilation directory
            for _ in range(end - c.pos + 1):
                d = c.cstring()
                if not d:
                    break
                dirs.append(d.decode("utf-8", errors="replace"))
            pairs = []
            for _ in range(end - c.pos + 1):
                name = c.cstring()
                if not name:
                    break
                dir_index = c.uleb()
                c.uleb(), c.uleb()                      # modification time, length
                pairs.append((name.decode("utf-8", errors="replace"), dir_index))
        out = []
        for name, dir_index in pairs:
            base = dirs[dir_index] if isinstance(dir_index, int) and 0 <= dir_index < len(dirs) else ""
            if base and not posixpath.isabs(base) and comp_dir:
                base = posixpath.join(comp_dir, base)
            out.append(posixpath.join(base, name) if base and not posixpath.isabs(name) else name)
        return out

    def _v5_entries(self, c: _Cursor, unit: Unit, offset_size: int, end: int) -> list[dict]:
        """A DWARF 5 directory or file name table: {content type: (form, value)} per entry."""
        fmt = [(c.uleb(), c.uleb()) for _ in range(c.uint(1))]
        count = c.uleb()
        if count > end - c.pos:
            raise DwarfError(f".debug_line: {count} entries cannot fit in the header")
        entries = []
        for _ in range(count):
            entry = {}
            for content, form in fmt:
                entry[content] = (form, self._line_form_value(c, unit, form, offset_size))
            entries.append(entry)
        return entries

    def _line_form_value(self, c: _Cursor, unit: Unit, form: int, offset_size: int):
        if form == FORM_string:
            return c.cstring()
        if form in (FORM_line_strp, FORM_strp, FORM_sec_offset):
            return c.uint(offset_size)
        if form in (FORM_udata, FORM_strx):
            return c.uleb()
        fixed = {FORM_data1: 1, FORM_data2: 2, FORM_data4: 4, FORM_data8: 8, FORM_strx1: 1,
                 FORM_strx2: 2, FORM_strx3: 3, FORM_strx4: 4}
        if form in fixed:
            return c.uint(fixed[form])
        if form == FORM_data16:
            return c.take(16)
        if form == FORM_block:
            return c.take(c.uleb())
        raise DwarfError(f".debug_line: form {form:#x} in a file table is not supported")

    def _path(self, entry: dict, unit: Unit) -> str:
        form, value = entry.get(DW_LNCT_path, (FORM_string, b""))
        return self._string(unit, form, value)

    # ---- addresses --------------------------------------------------------------------------
    def indexed_address(self, unit: Unit, index: int) -> Addr:
        data = self.section_bytes(".debug_addr")
        off = unit.addr_base + index * unit.addr_size
        raw = _read_uint(data, off, unit.addr_size, self.order)
        return self.relocs.resolve(".debug_addr", off, raw)

    def address_attr(self, die: Die, attr: int) -> Addr:
        form, value, pos = die.attrs[attr]
        if form == FORM_addr:
            return self.relocs.resolve(".debug_info", pos, value)
        if form in _ADDRX_FORMS:
            return self.indexed_address(die.unit, value)
        raise DwarfError(f"DIE at {die.offset:#x}: address attribute in form {form:#x}")

    def pc_ranges(self, die: Die) -> list[Range] | None:
        """The DIE's code as (section, lo_byte, hi_byte) ranges; None when it has none."""
        attrs = die.attrs
        if AT_low_pc in attrs and AT_high_pc in attrs:
            sec, lo = self.address_attr(die, AT_low_pc)
            form, value, _ = attrs[AT_high_pc]
            if form in _CONST_FORMS:
                hi = lo + value          # DWARF 4+: high_pc is the length
            else:
                hi_sec, hi = self.address_attr(die, AT_high_pc)
                sec = sec or hi_sec
            return [(sec, lo, hi)]
        if AT_ranges in attrs:
            form, value, _ = attrs[AT_ranges]
            unit = die.unit
            if unit.version >= 5:
                if form == FORM_rnglistx:
                    value = self._list_offset(".debug_rnglists", unit.rnglists_base, value, unit)
                entries = self._v5_list(unit, ".debug_rnglists", value, _RLE)
            else:
                entries = self._v4_list(unit, ".debug_ranges", value, False)
            return [(s, lo, hi) for s, lo, hi, _ in entries]
        return None

    def location_list(self, die: Die) -> list[tuple[str | None, int, int, bytes]]:
        form, value, _ = die.attrs[AT_location]
        unit = die.unit
        if unit.version >= 5:
            if form == FORM_loclistx:
                value = self._list_offset(".debug_loclists", unit.loclists_base, value, unit)
            return self._v5_list(unit, ".debug_loclists", value, _LLE)
        return self._v4_list(unit, ".debug_loc", value, True)

    def _list_offset(self, section: str, base: int, index: int, unit: Unit) -> int:
        # DW_FORM_{loc,rng}listx: an index into the offset array that follows the list
        # table's header; those offsets are relative to the same base.
        data = self.section_bytes(section)
        return base + _read_uint(data, base + index * unit.offset_size, unit.offset_size, self.order)

    def _v5_list(self, unit: Unit, section: str, offset: int, kinds: dict[str, int]):
        """DWARF 5 location or range list -> [(section, lo, hi, expression bytes)]."""
        data = self.section_bytes(section)
        c = _Cursor(data, offset, self.order, section)
        with_expr = kinds is _LLE
        base: Addr = unit.base
        out: list[tuple[str | None, int, int, bytes]] = []
        # Each entry consumes at least one byte, so the section size bounds the loop.
        for _ in range(len(data) + 1):
            kind = c.uint(1)
            if kind == kinds["end"]:
                return out
            if kind == kinds["base_addressx"]:
                base = self.indexed_address(unit, c.uleb())
                continue
            if kind == kinds["base_address"]:
                pos = c.pos
                base = self.relocs.resolve(section, pos, c.uint(unit.addr_size))
                continue
            if kind == kinds["startx_endx"]:
                start = self.indexed_address(unit, c.uleb())
                end = self.indexed_address(unit, c.uleb())[1]
            elif kind == kinds["startx_length"]:
                start = self.indexed_address(unit, c.uleb())
                end = start[1] + c.uleb()
            elif kind == kinds["offset_pair"]:           # relative to the current base
                a = c.uleb()
                b = c.uleb()
                start, end = (base[0], base[1] + a), base[1] + b
            elif kind == kinds["start_end"]:
                pos = c.pos
                start = self.relocs.resolve(section, pos, c.uint(unit.addr_size))
                pos = c.pos
                end = self.relocs.resolve(section, pos, c.uint(unit.addr_size))[1]
            elif kind == kinds["start_length"]:
                pos = c.pos
                start = self.relocs.resolve(section, pos, c.uint(unit.addr_size))
                end = start[1] + c.uleb()
            elif kind == kinds["default_location"]:
                c.take(c.uleb())   # "wherever no other entry applies": no range to report
                continue
            else:
                raise DwarfError(f"{section} at {c.pos - 1:#x}: unknown entry kind {kind}")
            expr = c.take(c.uleb()) if with_expr else b""
            out.append((start[0], start[1], end, expr))
        raise DwarfError(f"{section} at {offset:#x}: list does not end")

    def _v4_list(self, unit: Unit, section: str, offset: int, with_expr: bool):
        """DWARF 2-4 .debug_loc / .debug_ranges list -> [(section, lo, hi, expression)]."""
        data = self.section_bytes(section)
        c = _Cursor(data, offset, self.order, section)
        size = unit.addr_size
        max_addr = (1 << (8 * size)) - 1
        base: Addr = unit.base
        out: list[tuple[str | None, int, int, bytes]] = []
        for _ in range(len(data) // (2 * size) + 1):
            pos = c.pos
            raw_lo, raw_hi = c.uint(size), c.uint(size)
            lo_sec, lo = self.relocs.resolve(section, pos, raw_lo)
            hi_sec, hi = self.relocs.resolve(section, pos + size, raw_hi)
            if raw_lo == 0 and raw_hi == 0 and lo_sec is None and hi_sec is None:
                return out                                   # end of list
            if raw_lo == max_addr and lo_sec is None:        # base address selection
                base = (hi_sec, hi)
                continue
            if lo_sec is None:
                # An offset from the base address (clang's way); producers that relocate
                # each entry instead carry their own section and need no base.
                lo_sec, lo, hi = base[0], base[1] + lo, base[1] + hi
            expr = c.take(c.uint(2)) if with_expr else b""
            out.append((lo_sec, lo, hi, expr))
        raise DwarfError(f"{section} at {offset:#x}: list does not end")

    # ---- functions --------------------------------------------------------------------------


def _read_uint(data: bytes, pos: int, n: int, order: str) -> int:
    if pos < 0 or pos + n > len(data):
        raise DwarfError(f"reading {n} bytes at {pos:#x} runs past the section ({len(data):#x} bytes)")
    return int.from_bytes(data[pos:pos + n], order)
