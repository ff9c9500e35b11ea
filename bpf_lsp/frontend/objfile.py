"""The object model: a BPF ELF object as the verifier sees it.

Each program is *linked* the way libbpf links it before BPF_PROG_LOAD: the program's own
function first, then every `.text` subprogram it reaches (BPF-to-BPF calls and callback
addresses), each appended at its first reference with its own references followed first (depth
first, as bpf_object__reloc_code() does). Indices in a `Program` are indices into that linked
array, so instruction numbers match the kernel's log. Relocations are resolved to meaning:
a kfunc or helper by name, a map, an address inside a global-data section, a subprogram.
"""
from __future__ import annotations

import io
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from functools import cached_property

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .btf import Btf, BtfError, BtfExt, Kind, LineInfo, Linkage
from .helpers_table import HELPER_NAMES
from .isa import DecodeError, Insn, decode

DATA_SECTION_PREFIXES = (".data", ".bss", ".rodata")


class ObjectError(ValueError):
    """The bytes are not a BPF object we can analyse."""


# ---- program types -------------------------------------------------------------------------

# (section prefix, program type, whether the rest of the name is the attach target), as libbpf's
# section_defs; the first match wins, so longer prefixes come first.
SECTION_TYPES: tuple[tuple[str, str, bool], ...] = (
    ("struct_ops.s/", "struct_ops", True), ("struct_ops/", "struct_ops", True),
    ("tp_btf/", "tracing", True), ("fentry.s/", "tracing", True), ("fentry/", "tracing", True),
    ("fexit.s/", "tracing", True), ("fexit/", "tracing", True), ("fmod_ret/", "tracing", True),
    ("iter.s/", "tracing", True), ("iter/", "tracing", True),
    ("lsm.s/", "lsm", True), ("lsm_cgroup/", "lsm", True), ("lsm/", "lsm", True),
    ("raw_tracepoint.w/", "raw_tracepoint_writable", True), ("raw_tp.w/", "raw_tracepoint_writable", True),
    ("raw_tracepoint/", "raw_tracepoint", True), ("raw_tp/", "raw_tracepoint", True),
    ("tracepoint/", "tracepoint", True), ("tp/", "tracepoint", True),
    ("kprobe.multi/", "kprobe", True), ("kretprobe.multi/", "kprobe", True),
    ("kprobe/", "kprobe", True), ("kretprobe/", "kprobe", True), ("uprobe", "kprobe", True),
    ("uretprobe", "kprobe", True), ("ksyscall/", "kprobe", True), ("kretsyscall/", "kprobe", True),
    ("tcx/", "sched_cls", True), ("tc/", "sched_cls", True), ("netkit/", "sched_cls", True),
    ("tc", "sched_cls", False), ("classifier", "sched_cls", False), ("action", "sched_act", False),
    ("xdp.frags/", "xdp", True), ("xdp/", "xdp", True), ("xdp", "xdp", False),
    ("socket", "socket_filter", False), ("sk_reuseport", "sk_reuseport", False),
    ("perf_event", "perf_event", False), ("cgroup_skb/", "cgroup_skb", True),
    ("cgroup/skb", "cgroup_skb", False), ("cgroup/dev", "cgroup_device", False),
    ("cgroup/sysctl", "cgroup_sysctl", False), ("cgroup/getsockopt", "cgroup_sockopt", False),
    ("cgroup/setsockopt", "cgroup_sockopt", False), ("cgroup/sock", "cgroup_sock", False),
    ("cgroup/post_bind", "cgroup_sock", False), ("cgroup/", "cgroup_sock_addr", True),
    ("sockops", "sock_ops", False), ("sk_skb", "sk_skb", True),
    ("sk_msg", "sk_msg", False), ("sk_lookup", "sk_lookup", False),
    ("flow_dissector", "flow_dissector", False), ("lirc_mode2", "lirc_mode2", False),
    ("syscall", "syscall", False), ("netfilter", "netfilter", False),
    ("lwt_in", "lwt_in", False), ("lwt_out", "lwt_out", False), ("lwt_xmit", "lwt_xmit", False),
    ("lwt_seg6local", "lwt_seg6local", False),
)


def program_type(section: str) -> tuple[str, str]:
    """(program type, attach target) for an ELF section name; ("unknown", "") if none matches."""
    name = section[1:] if section.startswith("?") else section
    for prefix, kind, has_target in SECTION_TYPES:
        if name == prefix.rstrip("/") or name.startswith(prefix):
            target = name[len(prefix):] if has_target and name.startswith(prefix) else ""
            return kind, target
    return "unknown", ""


# ---- relocation meanings ---------------------------------------------------------------------

@dataclass(frozen=True)
class KfuncRef:
    name: str


@dataclass(frozen=True)
class HelperRef:
    id: int
    name: str


@dataclass(frozen=True)
class MapDef:
    name: str
    kind: str                 # "map" (a .maps definition) or "data" (a global-data section)
    map_type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    value_type_id: int = 0    # BTF id of the value struct (or the DATASEC for global data)
    section: str = ""
    map_flags: int = 0
    inner: "MapDef | None" = None   # a map-in-map's inner map template (`__array(values, ...)`)


@dataclass(frozen=True)
class MapRef:
    map: MapDef


@dataclass(frozen=True)
class DataRef:
    """ld_imm64 of an address inside a global-data section (a map value)."""
    map: MapDef
    offset: int
    symbol: str = ""


@dataclass(frozen=True)
class SubprogRef:
    target: int               # linked index of the callee's first instruction
    name: str


@dataclass(frozen=True)
class FuncAddrRef:
    """ld_imm64 of a subprogram's address: a callback such as rbtree's `less`."""
    target: int
    name: str


@dataclass(frozen=True)
class KsymRef:
    name: str
    kernel: bool = True       # a `__ksym` (kernel symbol); False: an extern of another file


@dataclass(frozen=True)
class KconfigRef:
    """ld_imm64 of a `__kconfig` extern: libbpf fills it in from the running kernel."""
    name: str
    size: int = 0


Meaning = KfuncRef | HelperRef | MapRef | DataRef | SubprogRef | FuncAddrRef | KsymRef | KconfigRef


@dataclass(frozen=True)
class Function:
    name: str
    start: int                # linked index
    end: int                  # linked index, exclusive
    section: str
    section_start: int        # index of the first instruction inside its ELF section
    is_global: bool           # verified alone (global or weak, not hidden): see _verified_alone
    btf_id: int = 0           # BTF FUNC id, 0 when unknown


@dataclass(frozen=True)
class Origin:
    section: str
    index: int                # index inside the ELF section


@dataclass(frozen=True)
class StructOpsMember:
    """Which struct_ops member a program implements (from the .struct_ops map, as libbpf finds it)."""
    map_name: str            # the SEC(".struct_ops") variable
    type_name: str           # e.g. "Qdisc_ops", "tcp_congestion_ops"
    member: str              # e.g. "enqueue"
    proto_id: int            # BTF FUNC_PROTO of the member's function pointer (0 when unknown)


@dataclass
class Program:
    name: str
    section: str
    prog_type: str
    attach_target: str
    insns: list[Insn]
    origins: list[Origin]                  # per linked slot index (ld_imm64 takes two)
    meanings: dict[int, Meaning]
    functions: list[Function]
    obj: "BpfObject" = field(repr=False)
    struct_ops: StructOpsMember | None = None
    exception_cb: str = ""                 # the main function's __exception_cb, appended like a subprogram

    def insn_at(self, idx: int) -> Insn | None:
        return self._by_index.get(idx)

    @cached_property
    def _by_index(self) -> dict[int, Insn]:
        return {i.idx: i for i in self.insns}

    @cached_property
    def _lines(self) -> list[LineInfo | None]:
        """For each linked slot, the line info in force (the last entry at or before it)."""
        out: list[LineInfo | None] = []
        table = self.obj.line_tables
        current: dict[str, LineInfo | None] = {}
        for slot, origin in enumerate(self.origins):
            entries = table.get(origin.section, {})
            info = entries.get(origin.index)
            prev = out[-1] if out and slot and self.origins[slot - 1].section == origin.section else None
            out.append(info if info is not None else prev)
            current[origin.section] = out[-1]
        return out

    def line_at(self, idx: int) -> LineInfo | None:
        if 0 <= idx < len(self.origins):
            return self._lines[idx]
        return None

    def exact_line_at(self, idx: int) -> LineInfo | None:
        """Line info attached exactly to this instruction (not inherited from earlier ones)."""
        if 0 <= idx < len(self.origins):
            o = self.origins[idx]
            return self.obj.line_tables.get(o.section, {}).get(o.index)
        return None

    def function_at(self, idx: int) -> Function | None:
        for f in self.functions:
            if f.start <= idx < f.end:
                return f
        return None

    @property
    def main(self) -> Function:
        return self.functions[0]


@dataclass
class BpfObject:
    path: str
    elf_bytes: bytes = field(repr=False)
    btf: Btf | None
    btf_ext: BtfExt | None
    maps: dict[str, MapDef]
    programs: list[Program]
    line_tables: dict[str, dict[int, LineInfo]]   # section -> section index -> line
    problems: list[str]                           # non-fatal: what we could not read

    @cached_property
    def elf(self) -> ELFFile:
        return ELFFile(io.BytesIO(self.elf_bytes))

    @cached_property
    def license(self) -> str | None:
        """The `license` section's string, as libbpf hands it to the kernel; None without one."""
        sec = self.elf.get_section_by_name("license")
        if sec is None or sec["sh_type"] == "SHT_NOBITS":
            return None
        return sec.data().split(b"\0", 1)[0].decode(errors="replace")

    def initial_value(self, section: str, off: int, size: int) -> int | None:
        """The little-endian number at `off` of a global-data section as the object holds it
        (what the kernel sees of a `const volatile` global user space leaves alone); None where
        the section has no such bytes."""
        sec = self._data_sections.get(section)
        if sec is None or size not in (1, 2, 4, 8) or off < 0 or off + size > len(sec):
            return None
        return int.from_bytes(sec[off:off + size], "little")

    @cached_property
    def _data_sections(self) -> dict[str, bytes]:
        return {s.name: s.data() for s in self.elf.iter_sections()
                if s.name.startswith(".rodata") and s["sh_type"] == "SHT_PROGBITS"}

    @property
    def gpl_compatible(self) -> bool:
        """license_is_gpl_compatible(): what the kernel lets call GPL-only helpers and kfuncs. An
        object without a license section counts as compatible: it may be one file of a program
        whose other file carries the license (scx's libraries), which linking settles."""
        return self.license is None or self.license in GPL_COMPATIBLE

    @cached_property
    def linkage(self) -> tuple[frozenset[str], frozenset[str]]:
        """(names the object uses but does not define, global names it defines): what the static
        linker matches between the files of one program. Kernel symbols (`__ksym` functions and
        variables) are among the first; telling them apart takes the kernel's BTF."""
        symtab = self.elf.get_section_by_name(".symtab")
        undefined, defined = set(), set()
        for sym in symtab.iter_symbols() if symtab is not None else ():
            if not sym.name or sym["st_info"]["type"] in ("STT_SECTION", "STT_FILE"):
                continue
            if sym["st_shndx"] == "SHN_UNDEF":
                undefined.add(sym.name)
            elif sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK"):
                defined.add(sym.name)
        return frozenset(undefined), frozenset(defined)

    @cached_property
    def extern_protos(self) -> dict[str, tuple[str, str, int]]:
        """Return-value kinds of the functions the object declares but does not define (kfuncs,
        functions of other files), from its BTF: name -> `Btf.value_kind` of the return type. A
        flavoured declaration (`scx_bpf_task_cgroup___new`) also answers for the kernel function it
        names, unless the object declares that one itself."""
        out: dict[str, tuple[str, str, int]] = {}
        if self.btf is None:
            return out
        for t in self.btf.types:
            if t is not None and t.kind == Kind.FUNC and t.linkage == Linkage.EXTERN and t.name:
                try:
                    out[t.name] = self.btf.func_signature(t.id)[0]
                except (BtfError, KeyError, IndexError):
                    continue
        for name in [n for n in out if essential_name(n) != n]:
            out.setdefault(essential_name(name), out[name])
        return out


# include/linux/license.h license_is_gpl_compatible()
GPL_COMPATIBLE = frozenset({"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL",
                            "Dual MPL/GPL"})


def essential_name(name: str) -> str:
    """The kernel function an extern names: libbpf drops its last flavour (`foo___v2` and
    `foo___compat` are `foo`; bpf_core_essential_name_len(): X___Y, neither side an underscore)."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1:i + 4] == "___" and name[i + 4] != "_":
            return name[:i + 1]
    return name


# ---- loading ---------------------------------------------------------------------------------

@dataclass
class _Sym:
    name: str
    section: str | None       # None: undefined (an extern: kfunc or ksym)
    value: int
    kind: str                 # STT_FUNC, STT_OBJECT, STT_SECTION, ...
    bind: str
    size: int
    visibility: str = "STV_DEFAULT"


def load_object(data: bytes, path: str = "<object>") -> BpfObject:
    """Parse a BPF ELF object. Raises ObjectError when it is not one we can read."""
    try:
        return _load(data, path)
    except ObjectError:
        raise
    except (ELFError, BtfError, DecodeError, ValueError, KeyError, IndexError, AttributeError,
            TypeError, OverflowError, AssertionError, UnicodeDecodeError, RecursionError, MemoryError) as e:
        raise ObjectError(f"cannot read {path}: {type(e).__name__}: {e}") from e


def _load(data: bytes, path: str) -> BpfObject:
    elf = ELFFile(io.BytesIO(data))
    if elf["e_machine"] not in ("EM_BPF", 247):
        raise ObjectError(f"{path} is not a BPF object (machine {elf['e_machine']})")
    problems: list[str] = []
    sections = {i: s for i, s in enumerate(elf.iter_sections())}
    by_name = {s.name: s for s in sections.values()}

    btf = btf_ext = None
    if ".BTF" in by_name:
        try:
            btf = Btf.parse(by_name[".BTF"].data())
        except BtfError as e:
            problems.append(f".BTF: {e}")
    if btf is not None and ".BTF.ext" in by_name:
        try:
            btf_ext = BtfExt.parse(by_name[".BTF.ext"].data(), btf)
        except BtfError as e:
            problems.append(f".BTF.ext: {e}")

    symbols = _symbols(elf, sections)
    code_sections = {s.name: s for s in sections.values()
                     if s["sh_type"] == "SHT_PROGBITS" and s["sh_flags"] & 0x4 and s["sh_size"]}
    code = {name: decode(s.data()) for name, s in code_sections.items()}
    relocs = _relocations(elf, sections, symbols)
    if btf is not None:
        _fixup_datasecs(btf, by_name, symbols)
    maps = _maps(btf, by_name, symbols, problems)

    line_tables: dict[str, dict[int, LineInfo]] = {}
    if btf_ext is not None:
        for sec, infos in btf_ext.line_info.items():
            line_tables[sec] = {li.insn: li for li in infos}

    funcs_by_section: dict[str, list[_Sym]] = {}
    for sym in symbols:
        if sym.kind == "STT_FUNC" and sym.section in code:
            funcs_by_section.setdefault(sym.section, []).append(sym)
    for lst in funcs_by_section.values():
        lst.sort(key=lambda s: s.value)

    btf_funcs: dict[str, int] = {}
    kconfig: dict[str, int] = {}      # `__kconfig` externs (the .kconfig DATASEC): name -> size
    ksyms: set[str] = set()           # `__ksym` externs (the .ksyms DATASEC)
    if btf is not None:
        for t in btf.types:
            if t is not None and t.kind == Kind.FUNC:
                btf_funcs[t.name] = t.id
            elif t is not None and t.kind == Kind.DATASEC and t.name in (".kconfig", ".ksyms"):
                for var_id, _off, size in t.vars or ():
                    try:
                        var = btf[var_id]
                        if t.name == ".ksyms":
                            ksyms.add(var.name)
                        else:
                            kconfig[var.name] = size or btf.size_of(var.type_id)
                    except (BtfError, KeyError, IndexError):
                        continue

    struct_ops = _struct_ops_members(elf, sections, symbols, btf) if btf is not None else {}
    linker = _Linker(code, relocs, funcs_by_section, maps, btf_funcs, problems, kconfig,
                     ksyms if btf is not None else None)
    obj = BpfObject(path, data, btf, btf_ext, maps, [], line_tables, problems)
    for sec, funcs in funcs_by_section.items():
        if sec == ".text":
            continue
        for sym in funcs:
            if sym.bind != "STB_GLOBAL":
                continue
            kind, target = program_type(sec)
            prog = linker.link(sym, sec, kind, target, obj)
            prog.struct_ops = struct_ops.get(sym.name)
            obj.programs.append(prog)
    return obj


def _struct_ops_members(elf: ELFFile, sections, symbols: list[_Sym], btf: Btf) -> dict[str, StructOpsMember]:
    """program name -> member, from the relocations of SEC(".struct_ops[.link]") variables."""
    out: dict[str, StructOpsMember] = {}
    for s in sections.values():
        if s["sh_type"] != "SHT_REL":
            continue
        target = sections.get(s["sh_info"])
        if target is None or not target.name.startswith(".struct_ops"):
            continue
        datasec = next((t for t in btf.find_by_name(target.name) if t.kind == Kind.DATASEC), None)
        if datasec is None:
            continue
        for rel in s.iter_relocations():
            idx = rel["r_info_sym"]
            if idx >= len(symbols):
                continue
            prog = symbols[idx].name
            off = rel["r_offset"]
            for var_id, var_off, var_size in datasec.vars:
                if not var_off <= off < var_off + var_size:
                    continue
                var = btf[var_id]
                st = btf[btf.resolve(var.type_id)]
                path = btf.member_at(st.id, off - var_off)
                if not path:
                    continue
                member, mtype = path[0]
                proto = 0
                ptr = btf[btf.resolve(mtype.id)]
                if ptr.kind == Kind.PTR and btf[btf.resolve(ptr.type_id)].kind == Kind.FUNC_PROTO:
                    proto = btf.resolve(ptr.type_id)
                out[prog] = StructOpsMember(var.name, st.name, member, proto)
    return out


def _symbols(elf: ELFFile, sections) -> list[_Sym]:
    symtab = elf.get_section_by_name(".symtab")
    out = []
    if symtab is None:
        return out
    for s in symtab.iter_symbols():
        shndx = s["st_shndx"]
        sec = sections[shndx].name if isinstance(shndx, int) and shndx in sections else None
        name = s.name
        if s["st_info"]["type"] == "STT_SECTION" and sec is not None:
            name = sec
        out.append(_Sym(name, sec, s["st_value"], s["st_info"]["type"], s["st_info"]["bind"], s["st_size"],
                        s["st_other"]["visibility"]))
    return out


def _relocations(elf: ELFFile, sections, symbols: list[_Sym]) -> dict[str, dict[int, tuple[_Sym, int]]]:
    """section name -> insn index -> (symbol, relocation type)."""
    out: dict[str, dict[int, tuple[_Sym, int]]] = {}
    symtab = elf.get_section_by_name(".symtab")
    for s in sections.values():
        if s["sh_type"] != "SHT_REL":
            continue
        target = sections.get(s["sh_info"])
        if target is None or not (target["sh_flags"] & 0x4):
            continue
        table = out.setdefault(target.name, {})
        for rel in s.iter_relocations():
            sym_index = rel["r_info_sym"]
            if symtab is None or sym_index >= len(symbols):
                continue
            table[rel["r_offset"] // 8] = (symbols[sym_index], rel["r_info_type"])
    return out


def _fixup_datasecs(btf: Btf, by_name, symbols: list[_Sym]) -> None:
    """clang leaves DATASEC sizes and offsets 0 in objects; fill them in like libbpf does."""
    for t in btf.types:
        if t is None or t.kind != Kind.DATASEC or t.name not in by_name:
            continue
        offsets = {s.name: s.value for s in symbols if s.section == t.name and s.kind == "STT_OBJECT"}
        btf.fixup_datasec(t.id, by_name[t.name]["sh_size"], offsets)


def _maps(btf: Btf | None, by_name, symbols: list[_Sym], problems: list[str]) -> dict[str, MapDef]:
    maps: dict[str, MapDef] = {}
    if btf is None:
        return maps
    for t in btf.types:
        if t is None or t.kind != Kind.DATASEC:
            continue
        if t.name == ".maps":
            for type_id, offset, size in t.vars:
                var = btf[type_id]
                maps[var.name] = _map_from_btf(btf, var.name, btf.resolve(var.type_id), problems)
        elif t.name.startswith(DATA_SECTION_PREFIXES):
            maps[t.name] = MapDef(t.name, "data", map_type=2, key_size=4, value_size=t.size,
                                  max_entries=1, value_type_id=t.id, section=t.name)
    return maps


def _map_from_btf(btf: Btf, name: str, struct_id: int, problems: list[str]) -> MapDef:
    fields: dict[str, int] = {}
    value_type = 0
    inner = None
    st = btf[struct_id]
    for m in st.members or []:
        ptr = btf[btf.resolve(m.type_id)]
        if ptr.kind == Kind.ARRAY and m.name == "values":
            # __array(values, struct {...}): a map-in-map's inner map, whose template the kernel
            # checks the inner maps' lookups against (only its type, size and flags are kept: the
            # layout of its values is not modelled)
            elem = btf[btf.resolve(ptr.elem_type)]
            if elem.kind == Kind.PTR and btf[btf.resolve(elem.type_id)].kind == Kind.STRUCT:
                inner = replace(_map_from_btf(btf, f"{name}.values", btf.resolve(elem.type_id), problems),
                                kind="inner", value_type_id=0, section="")
            continue
        if ptr.kind != Kind.PTR:
            continue
        pointee = btf.resolve(ptr.type_id)
        if m.name in ("key", "value"):
            fields[m.name + "_size"] = btf.size_of(pointee)
            if m.name == "value":
                value_type = pointee
        elif btf[pointee].kind == Kind.ARRAY:
            fields[m.name] = btf[pointee].nelems
    return MapDef(name, "map", map_type=fields.get("type", 0),
                  key_size=fields.get("key_size", 0), value_size=fields.get("value_size", 0),
                  max_entries=fields.get("max_entries", 0), value_type_id=value_type, section=".maps",
                  map_flags=fields.get("map_flags", 0), inner=inner)


class _Linker:
    """Builds the linked instruction array of one program, like libbpf's subprogram append."""

    def __init__(self, code, relocs, funcs_by_section, maps, btf_funcs, problems, kconfig=None, ksyms=None):
        self.kconfig = kconfig or {}
        self.ksyms = ksyms           # None: no BTF to tell, every extern is taken for a kernel symbol
        self.code = code
        self.relocs = relocs
        self.funcs = funcs_by_section
        self.maps = maps
        self.btf_funcs = btf_funcs
        self.problems = problems
        self._starts_by_section: dict[str, list[int]] = {}

    def _starts(self, section: str) -> list[int]:
        """The instruction indices of a section's code, in order (for bisecting: every program
        of an object links from the same sections)."""
        starts = self._starts_by_section.get(section)
        if starts is None:
            starts = self._starts_by_section[section] = [insn.idx for insn in self.code[section]]
        return starts

    def _func_containing(self, section: str, index: int) -> _Sym | None:
        for sym in self.funcs.get(section, []):
            start = sym.value // 8
            end = min(start + max(sym.size // 8, 1), len_slots(self.code.get(section, [])))
            if start <= index < end:
                return sym
        return None

    def link(self, main: _Sym, section: str, kind: str, target: str, obj: BpfObject) -> Program:
        insns: list[Insn] = []
        origins: list[Origin] = []
        meanings: dict[int, Meaning] = {}
        functions: list[Function] = []
        placed: dict[tuple[str, int], int] = {}      # (section, start index) -> linked start
        pending: list[tuple[int, str, int, bool]] = []  # (linked idx, section, target index, is_call)
        position: dict[int, int] = {}                  # linked idx -> its place in `insns`

        def place(sec: str, sym: _Sym) -> list[tuple[str, _Sym]]:
            """Append one function; returns the functions it references, in instruction order."""
            start = sym.value // 8
            section_len = len_slots(self.code[sec])
            # a symbol claiming more than its section (a corrupt object) is clamped to it
            count = min(max(sym.size // 8, 1) if sym.size else section_len - start, section_len - start)
            if count <= 0:
                raise ObjectError(f"function {sym.name} starts outside its section {sec}")
            base = len(origins)
            placed[(sec, start)] = base
            functions.append(Function(sym.name, base, base + count, sec, start,
                                      _verified_alone(sym) and sec == ".text",
                                      self.btf_funcs.get(sym.name, 0)))
            for i in range(count):
                origins.append(Origin(sec, start + i))
            first_pending = len(pending)
            sec_relocs = self.relocs.get(sec, {})
            code = self.code[sec]
            first = bisect_left(self._starts(sec), start)
            for k in range(first, len(code)):
                insn = code[k]
                if insn.idx >= start + count:
                    break
                linked = base + insn.idx - start
                new = Insn(linked, insn.code, insn.dst, insn.src, insn.off, insn.imm, insn.imm64)
                rel = sec_relocs.get(insn.idx)
                if insn.is_call and insn.src == 0:
                    name = HELPER_NAMES.get(insn.imm, f"helper#{insn.imm}")
                    meanings[linked] = HelperRef(insn.imm, name)
                elif insn.is_call and rel is not None and rel[0].section is None:
                    meanings[linked] = KfuncRef(rel[0].name)
                    new = replace(new, src=2)
                elif insn.is_call and insn.src == 1:
                    if rel is not None:
                        tsec, tidx = rel[0].section, rel[0].value // 8 + insn.imm + 1
                    else:
                        tsec, tidx = sec, insn.idx + insn.imm + 1
                    pending.append((linked, tsec, tidx, True))
                elif insn.is_ld_imm64 and rel is not None:
                    rsym = rel[0]
                    if rsym.section is None and rsym.name in self.kconfig:
                        meanings[linked] = KconfigRef(rsym.name, self.kconfig[rsym.name])
                    elif rsym.section is None:
                        meanings[linked] = KsymRef(rsym.name, self.ksyms is None or rsym.name in self.ksyms
                                                   or rsym.name in self.btf_funcs)
                    elif rsym.section in self.code:
                        pending.append((linked, rsym.section, (rsym.value + insn.imm) // 8, False))
                    elif rsym.section == ".maps" and rsym.name in self.maps:
                        meanings[linked] = MapRef(self.maps[rsym.name])
                    elif rsym.section in self.maps:
                        off = insn.imm + (0 if rsym.kind == "STT_SECTION" else rsym.value)
                        sym_name = "" if rsym.kind == "STT_SECTION" else rsym.name
                        meanings[linked] = DataRef(self.maps[rsym.section], off, sym_name)
                    else:
                        self.problems.append(f"{sec}+{insn.idx}: relocation against {rsym.name} "
                                             f"in {rsym.section} is not understood")
                position[linked] = len(insns)
                insns.append(new)
            refs = []
            for _linked, tsec, tidx, _is_call in pending[first_pending:]:
                callee = self._func_containing(tsec, tidx) if tsec in self.code else None
                if callee is not None:
                    refs.append((tsec, callee))
            return refs

        # bpf_object__reloc_code(): a function is appended at its first reference and its own
        # references are followed at once (depth first), before the rest of its caller's, so the
        # instruction numbers are the kernel's. An explicit stack: call chains in a corrupt
        # object may be deeper than Python's recursion.
        stack = [iter(place(section, main))]
        # libbpf (1.3+) appends the function a main program names with __exception_cb (BTF decl
        # tag "exception_callback:NAME") although nothing calls it; the kernel verifies it alone
        exception_cb = self._exception_callback(main, obj)
        while stack:
            ref = next(stack[-1], None)
            if ref is None:
                stack.pop()
                if not stack and exception_cb is not None and (".text", exception_cb.value // 8) not in placed:
                    stack.append(iter(place(".text", exception_cb)))
                continue
            tsec, callee = ref
            if (tsec, callee.value // 8) not in placed:
                stack.append(iter(place(tsec, callee)))

        for linked, tsec, tidx, is_call in pending:
            callee = self._func_containing(tsec, tidx) if tsec in self.code else None
            if callee is None:
                self.problems.append(f"{section}: call target {tsec}+{tidx} is not a function")
                continue
            target_idx = placed[(tsec, callee.value // 8)] + tidx - callee.value // 8
            ref = SubprogRef(target_idx, callee.name) if is_call else FuncAddrRef(target_idx, callee.name)
            meanings[linked] = ref
            if is_call:
                pos = position[linked]
                insns[pos] = replace(insns[pos], imm=target_idx - linked - 1)
        return Program(main.name, section, kind, target, insns, origins, meanings, functions, obj,
                       exception_cb=exception_cb.name if exception_cb is not None else "")

    def _exception_callback(self, main: _Sym, obj: BpfObject) -> _Sym | None:
        btf = obj.btf
        main_id = self.btf_funcs.get(main.name, 0)
        if btf is None or not main_id:
            return None
        names = [t[len("exception_callback:"):] for t in btf.decl_tags(main_id) if t.startswith("exception_callback:")]
        if not names:
            return None
        return next((f for f in self.funcs.get(".text", []) if f.name == names[0]), None)


def _verified_alone(sym: _Sym) -> bool:
    """A global (or weak) function the kernel verifies on its own. libbpf marks the BTF of a
    hidden one (`__hidden`, STV_HIDDEN/STV_INTERNAL) static, so it is verified with its caller."""
    return sym.bind in ("STB_GLOBAL", "STB_WEAK") and sym.visibility not in ("STV_HIDDEN", "STV_INTERNAL")


def len_slots(insns: list[Insn]) -> int:
    return (insns[-1].idx + insns[-1].slots) if insns else 0
