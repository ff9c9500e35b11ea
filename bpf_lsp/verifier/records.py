"""BTF records: where a map value or a local object keeps its special fields.

The kernel builds a ``btf_record`` for each map value and each program-local struct
(``btf_parse_fields``): the ``bpf_spin_lock``, list heads / rb roots with the type and node
field they contain (``__contains(T, field)``), nodes, ``bpf_refcount`` and ``__kptr`` fields.
If any part cannot be resolved, map creation with BTF fails and libbpf retries without BTF:
the map then has no record at all, and the kernel's later messages ("map '.data.A' has no
valid bpf_spin_lock", "R1 has no valid kptr") point far from the cause. We keep the cause.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..frontend.btf import Btf, BtfError, Kind

LOCK, LIST_HEAD, RB_ROOT, LIST_NODE, RB_NODE, REFCOUNT = (
    "bpf_spin_lock", "bpf_list_head", "bpf_rb_root", "bpf_list_node", "bpf_rb_node", "bpf_refcount")
MAX_FIELD_DEPTH = 32      # nesting of structs inside structs before we call it a loop
MAX_REPEAT = 1024         # array elements whose kptrs and roots we track
BTF_FIELDS_MAX = 11       # special fields (kptrs, locks, heads, nodes, ...) one value may hold
SPECIAL_STRUCTS = {LOCK, LIST_HEAD, RB_ROOT, LIST_NODE, RB_NODE, REFCOUNT, "bpf_res_spin_lock"}


@dataclass(frozen=True)
class GraphRoot:
    kind: str              # LIST_HEAD | RB_ROOT
    name: str              # the field / variable name, for messages
    value_type: str        # struct named in __contains
    value_btf_id: int
    node_name: str
    node_off: int


@dataclass(frozen=True)
class Kptr:
    off: int
    name: str
    type_name: str
    referenced: bool       # __kptr (referenced) vs __kptr_untrusted
    local: bool            # a program-local type (not a kernel one)
    percpu: bool = False
    btf_id: int = 0


@dataclass
class Record:
    valid: bool = True
    cause: str = ""                                  # why the record is invalid
    spin_lock_off: int | None = None
    roots: dict[int, GraphRoot] = field(default_factory=dict)
    nodes: dict[int, str] = field(default_factory=dict)       # offset -> LIST_NODE | RB_NODE
    refcount_off: int | None = None
    kptrs: dict[int, Kptr] = field(default_factory=dict)
    special: dict[int, tuple[str, int]] = field(default_factory=dict)  # off -> (struct, size)

    @property
    def has_graph(self) -> bool:
        return bool(self.roots)


def _merge(rec: Record, part: Record, off: int, kptrs_and_roots_only: bool) -> None:
    """Adds the fields of `part` (built at offset 0) to `rec`, shifted to `off`."""
    if not part.valid:
        rec.valid, rec.cause = False, part.cause
        return
    for o, k in part.kptrs.items():
        rec.kptrs[o + off] = replace(k, off=o + off)
    for o, r in part.roots.items():
        rec.roots[o + off] = r
    for o, sp in part.special.items():
        if not kptrs_and_roots_only or sp[0] in (LIST_HEAD, RB_ROOT):
            rec.special[o + off] = sp
    if kptrs_and_roots_only:
        return
    if part.spin_lock_off is not None:
        if rec.spin_lock_off is not None:
            rec.valid, rec.cause = False, "it has more than one bpf_spin_lock"
        rec.spin_lock_off = part.spin_lock_off + off
    for o, n in part.nodes.items():
        rec.nodes[o + off] = n
    if part.refcount_off is not None:
        rec.refcount_off = part.refcount_off + off


def _contains_tag(tags: list[str]) -> tuple[str, str] | None:
    for t in tags:
        if t.startswith("contains:"):
            parts = t.split(":")
            if len(parts) == 3:
                return parts[1], parts[2]
    return None


class RecordBuilder:
    """Computes (and caches) records for one object's BTF."""

    def __init__(self, btf: Btf | None, kernel_struct_names: frozenset[str] = frozenset()):
        self.btf = btf
        self.kernel_names = kernel_struct_names
        self._cache: dict[int, Record] = {}
        self._btf_problem: str | None = None

    def prog_btf_problem(self) -> str:
        """Why the kernel would refuse this object's BTF as a whole ("" when it accepts it).

        btf_parse_struct_metas() validates every struct with graph fields when the BTF is loaded:
        a head/root needs a bpf_spin_lock in the same struct, a node type used by both a list and
        an rbtree needs a bpf_refcount, `__contains` must name a complete type.
        """
        if self._btf_problem is not None:
            return self._btf_problem
        self._btf_problem = ""
        btf = self.btf
        if btf is None:
            return ""
        try:
            for t in btf.types:
                if t is None or t.kind != Kind.STRUCT or t.name in SPECIAL_STRUCTS or not t.members:
                    continue
                names = {btf[btf.resolve(m.type_id)].name for m in t.members}
                if not names & SPECIAL_STRUCTS:
                    continue
                rec = self.for_type(t.id)
                if not rec.valid:
                    self._btf_problem = f"struct {t.name}: {rec.cause}"
                elif rec.roots and rec.spin_lock_off is None:
                    self._btf_problem = f"struct {t.name} has a list head or rbtree root but no bpf_spin_lock"
                elif LIST_NODE in rec.nodes.values() and RB_NODE in rec.nodes.values() and rec.refcount_off is None:
                    self._btf_problem = (f"struct {t.name} has both a bpf_list_node and a bpf_rb_node but no "
                                         "struct bpf_refcount")
                if self._btf_problem:
                    break
        except (BtfError, KeyError, IndexError):
            pass
        return self._btf_problem

    def for_type(self, type_id: int) -> Record:
        if type_id in self._cache:
            return self._cache[type_id]
        rec = Record()
        self._cache[type_id] = rec
        if self.btf is None or not type_id:
            return rec
        try:
            self._build(rec, type_id)
        except (BtfError, KeyError, IndexError) as e:
            rec.valid, rec.cause = False, f"its BTF could not be read ({e})"
        if rec.valid and len(rec.kptrs) + len(set(rec.special) - set(rec.kptrs)) > BTF_FIELDS_MAX:
            # btf_parse_fields() fails with -E2BIG, and the map is created without BTF
            rec.valid, rec.cause = False, f"it has more than {BTF_FIELDS_MAX} special fields"
        if not rec.valid:
            # libbpf retries without BTF: nothing of the record survives
            self._cache[type_id] = Record(valid=False, cause=rec.cause)
        return self._cache[type_id]

    # -- construction --
    def _build(self, rec: Record, type_id: int) -> None:
        btf = self.btf
        t = btf[btf.resolve(type_id)]
        if t.kind == Kind.DATASEC:
            for var_id, off, _size in t.vars:
                var = btf[var_id]
                self._field(rec, var.name, var.type_id, off, btf.decl_tags(var_id))
        elif t.kind in (Kind.STRUCT, Kind.UNION):
            for idx, m in enumerate(t.members or []):
                self._field(rec, m.name, m.type_id, m.offset, btf.decl_tags(t.id, idx))

    def _field(self, rec: Record, name: str, type_id: int, off: int, tags: list[str], depth: int = 0) -> None:
        btf = self.btf
        if depth > MAX_FIELD_DEPTH:
            # a struct that (indirectly) contains itself: the kernel rejects such BTF ("Loop detected")
            rec.valid, rec.cause = False, f"the type of '{name}' contains itself"
            return
        rid = btf.resolve(type_id)
        t = btf[rid]
        if t.kind == Kind.ARRAY:
            elem = btf[btf.resolve(t.elem_type)]
            if elem.kind not in (Kind.STRUCT, Kind.PTR, Kind.ARRAY):
                return
            first = Record()
            self._field(first, name, t.elem_type, 0, tags, depth + 1)
            _merge(rec, first, off, kptrs_and_roots_only=False)
            # btf_repeat_fields(): kptrs, list heads and rbtree roots repeat in every element
            esize = btf.size_of(t.elem_type)
            for i in range(1, min(t.nelems, MAX_REPEAT) if esize else 1):
                _merge(rec, first, off + i * esize, kptrs_and_roots_only=True)
            return
        if t.kind == Kind.PTR:
            ptags = btf.type_tags(t.type_id)
            kinds = {"kptr": (True, False), "kptr_untrusted": (False, False), "percpu_kptr": (True, True)}
            for tag in ptags:
                if tag in kinds:
                    referenced, percpu = kinds[tag]
                    self._kptr(rec, name, t.type_id, off, referenced, percpu)
            return
        if t.kind != Kind.STRUCT:
            return
        if t.name in SPECIAL_STRUCTS:
            rec.special[off] = (t.name, t.size)
            if t.name == LOCK:
                if rec.spin_lock_off is not None:
                    rec.valid, rec.cause = False, "it has more than one bpf_spin_lock"
                rec.spin_lock_off = off
            elif t.name in (LIST_HEAD, RB_ROOT):
                self._root(rec, name, t.name, off, tags)
            elif t.name in (LIST_NODE, RB_NODE):
                rec.nodes[off] = t.name
            elif t.name == REFCOUNT:
                rec.refcount_off = off
            return
        # nested plain struct: its special fields count too
        for idx, m in enumerate(t.members or []):
            self._field(rec, f"{name}.{m.name}", m.type_id, off + m.offset, btf.decl_tags(t.id, idx), depth + 1)
            if not rec.valid:
                return

    def _root(self, rec: Record, name: str, kind: str, off: int, tags: list[str]) -> None:
        btf = self.btf
        contains = _contains_tag(tags)
        if contains is None:
            rec.valid, rec.cause = False, f"{kind} '{name}' has no __contains(T, field) annotation"
            return
        value_name, node_name = contains
        value = btf.struct_by_name(value_name)
        if value is None or value.kind != Kind.STRUCT:
            what = "only forward-declared" if value is not None else "missing"
            rec.valid = False
            rec.cause = (f"'struct {value_name}' named in __contains({value_name}, {node_name}) of '{name}' is "
                         f"{what} in the object's BTF (clang emits the full type only when the object uses it, "
                         f"e.g. through bpf_obj_new or a function taking 'struct {value_name} *')")
            return
        member = btf.find_member(value.id, node_name)
        want = LIST_NODE if kind == LIST_HEAD else RB_NODE
        if member is None or btf[btf.resolve(member.type_id)].name != want:
            rec.valid = False
            rec.cause = f"'struct {value_name}' has no {want} field '{node_name}'"
            return
        rec.roots[off] = GraphRoot(kind, name, value_name, value.id, node_name, member.offset)

    def _kptr(self, rec: Record, name: str, pointee: int, off: int, referenced: bool, percpu: bool) -> None:
        btf = self.btf
        target = btf[btf.resolve(pointee)]
        tname = target.name
        local = tname not in self.kernel_names
        if local and target.kind != Kind.STRUCT:
            complete = btf.struct_by_name(tname)
            if complete is None or complete.kind != Kind.STRUCT:
                rec.valid = False
                rec.cause = (f"the __kptr field '{name}' points to 'struct {tname}', which is only "
                             f"forward-declared in the object's BTF")
                return
            target = complete
        rec.kptrs[off] = Kptr(off, name, tname, referenced, local, percpu, target.id)
