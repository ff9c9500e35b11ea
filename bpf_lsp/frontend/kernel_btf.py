"""Facts about the running kernel, read from its BTF (/sys/kernel/btf/vmlinux).

Only what the verifier model needs: which struct names are kernel types (a `__kptr` to one is a
kernel kptr, not a program-local one) and the argument types of BTF tracepoints (`tp_btf/X`
programs read them from their context). Parsing vmlinux BTF takes a few hundred ms, so the
facts are cached on disk per kernel (keyed by the BTF file's size and mtime) and in memory.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .btf import Btf, BtfError, Kind

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
FACTS_VERSION = 6


@dataclass(frozen=True)
class KernelFacts:
    available: bool
    struct_names: frozenset[str] = frozenset()
    # tracepoint name -> per argument: ("ptr", struct name) or ("scalar", "")
    tracepoints: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    rcu_fields: frozenset[tuple[str, str]] = frozenset()   # (struct, member) tagged __rcu
    # (struct_ops type, member) -> argument positions named *__ref in the kernel's cfi stub
    struct_ops_refs: dict[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)
    # every FUNC (kernel functions and kfuncs): name -> (return kind, parameter kinds), as
    # `Btf.func_signature` spells them; fentry/fexit/lsm arguments and kfunc returns come from here
    funcs: dict[str, tuple] = field(default_factory=dict)
    # kfunc -> parameter positions named *__uninit (is_kfunc_arg_uninit: a dynptr it creates)
    uninit_args: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # an iterator target's function (bpf_iter_task) -> its parameter names: an iter/ program's
    # context fields, in order, as the target's ctx_arg_info names them
    iter_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bpf-lsp"


_lock = threading.Lock()
_memo: dict[str, KernelFacts] = {}


def kernel_facts(path: str = VMLINUX_BTF) -> KernelFacts:
    with _lock:
        if path in _memo:
            return _memo[path]
        facts = _load(path)
        _memo[path] = facts
        return facts


def _load(path: str) -> KernelFacts:
    try:
        st = os.stat(path)
    except OSError:
        return KernelFacts(False, source=f"{path} not found")
    key = hashlib.sha256(f"{FACTS_VERSION}:{path}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:20]
    cached = cache_dir() / f"kernel-facts-{key}.pickle"
    try:
        with open(cached, "rb") as f:
            facts = pickle.load(f)
        if isinstance(facts, KernelFacts):
            return facts
    except (OSError, pickle.PickleError, EOFError, AttributeError, ValueError):
        pass
    try:
        with open(path, "rb") as f:
            btf = Btf.parse(f.read())
        facts = _extract(btf, path)
    except (OSError, BtfError) as e:
        return KernelFacts(False, source=f"{path}: {e}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(facts, f)
        tmp.replace(cached)
    except OSError:
        pass
    return facts


def _extract(btf: Btf, path: str) -> KernelFacts:
    names = set()
    rcu: set[tuple[str, str]] = set()
    stub_refs: dict[tuple[str, str], tuple[int, ...]] = {}
    tps: dict[str, tuple[tuple[str, str], ...]] = {}
    funcs: dict[str, tuple] = {}
    uninit_args: dict[str, tuple[int, ...]] = {}
    iter_args: dict[str, tuple[str, ...]] = {}
    for t in btf.types:
        if t is None:
            continue
        if t.kind == Kind.STRUCT and t.name:
            names.add(t.name)
            for m in t.members or ():
                if not m.name:
                    continue
                try:
                    if "rcu" in btf.pointee_tags(m.type_id):
                        rcu.add((t.name, m.name))
                except BtfError:
                    pass
        if t.kind == Kind.FUNC and t.name:
            try:
                funcs[t.name] = btf.func_signature(t.id)
                uninit = tuple(i for i, (pname, _) in enumerate(btf[t.type_id].params or [])
                               if pname.endswith("__uninit"))
                if uninit:
                    uninit_args[t.name] = uninit
                if t.name.startswith("bpf_iter_"):
                    iter_args[t.name] = tuple(pname for pname, _ in btf[t.type_id].params or [])
            except BtfError:
                pass
        if t.kind == Kind.FUNC and "__" in t.name.strip("_"):
            try:
                proto = btf[t.type_id]
                refs = tuple(i for i, (pname, _) in enumerate(proto.params or []) if pname.endswith("__ref"))
            except BtfError:
                refs = ()
            if refs:
                stype, _, member = t.name.partition("__")
                stub_refs[(stype, member)] = refs
        elif t.kind == Kind.TYPEDEF and t.name.startswith("btf_trace_"):
            try:
                ptr = btf[btf.resolve(t.type_id)]
                proto = btf[ptr.type_id] if ptr.kind == Kind.PTR else None
                if proto is None or proto.kind != Kind.FUNC_PROTO:
                    continue
                args = []
                for _pname, ptype in (proto.params or [])[1:]:   # the first is the void *__data
                    at = btf[btf.resolve(ptype)]
                    if at.kind == Kind.PTR:
                        target = btf[btf.resolve(at.type_id)]
                        args.append(("ptr", target.name if target.kind in (Kind.STRUCT, Kind.UNION) else ""))
                    else:
                        args.append(("scalar", ""))
                tps[t.name[len("btf_trace_"):]] = tuple(args)
            except BtfError:
                continue
    return KernelFacts(True, frozenset(names), tps, frozenset(rcu), stub_refs, source=path, funcs=funcs,
                       uninit_args=uninit_args, iter_args=iter_args)
