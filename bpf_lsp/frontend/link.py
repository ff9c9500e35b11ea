"""Linking the object files of one multi-file BPF program, as libbpf's static linker does.

Programs such as scx_lavd are several `.bpf.c` files whose objects `bpftool gen object` (libbpf's
`bpf_linker`) joins into one, resolving calls and extern variables across files. We run that same
linker rather than reimplementing it: the result is the object the loader would see.
"""
from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tempfile

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .btf import Btf, BtfError, Kind

# libbpf before 1.2 (Debian 12's bpftool) sizes every entry of the `.ksyms` DATASEC, and an
# extern kfunc there has no size: "global 'bpf_iter_num_new': failed to resolve size of
# underlying type: -22"
_KSYMS_FUNC_BUG = "failed to resolve size of underlying type"


class LinkError(RuntimeError):
    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log      # the linker's whole output


def find_bpftool() -> str | None:
    return shutil.which("bpftool") or next((p for p in ("/usr/sbin/bpftool", "/sbin/bpftool")
                                            if os.access(p, os.X_OK)), None)


def link_objects(objects: list[tuple[str, bytes]], timeout: float = 60) -> bytes:
    """(name, ELF bytes) of each file's object -> the linked object's bytes."""
    bpftool = find_bpftool()
    if bpftool is None:
        raise LinkError("linking needs bpftool (apt-get install bpftool)")
    try:
        return _bpftool_link(bpftool, objects, timeout)
    except LinkError as e:
        if _KSYMS_FUNC_BUG not in e.log:
            raise
    # the old linker again, with each extern kfunc's `.ksyms` entry pointing at a sized type:
    # calls to kfuncs are read from relocations and FUNC types, never from that entry
    return _bpftool_link(bpftool, [(name, ksyms_funcs_sized(data)) for name, data in objects], timeout)


def ksyms_funcs_sized(data: bytes) -> bytes:
    """The object with every FUNC in its `.ksyms` DATASEC replaced by an INT of the same BTF
    (in place: type ids and sizes do not move). Unchanged where there is nothing to replace."""
    try:
        section = ELFFile(io.BytesIO(data)).get_section_by_name(".BTF")
        if section is None:
            return data
        raw = section.data()
        btf = Btf.parse(raw)
    except (ELFError, BtfError, ValueError, struct.error):
        return data
    if btf.byteorder != "little":
        return data
    ints = [t.id for t in btf.types if t is not None and t.kind == Kind.INT and t.size]
    if not ints:
        return data
    hdr_len, type_off = struct.unpack_from("<II", raw, 4)
    types_at = section["sh_offset"] + hdr_len + type_off
    out = bytearray(data)
    for t in btf.types:
        if t is None or t.kind != Kind.DATASEC or t.name != ".ksyms":
            continue
        first_word = btf.type_word_offset(t.id) + 3      # btf_type is 3 words, then the secinfos
        for j, (var_id, _off, _size) in enumerate(t.vars or ()):
            if btf[var_id].kind == Kind.FUNC:
                struct.pack_into("<I", out, types_at + 4 * (first_word + 3 * j), ints[0])
    return bytes(out)


def _bpftool_link(bpftool: str, objects: list[tuple[str, bytes]], timeout: float) -> bytes:
    with tempfile.TemporaryDirectory(prefix="bpf-lsp-link-") as tmp:
        paths = []
        for i, (name, data) in enumerate(objects):
            p = os.path.join(tmp, f"{i}-{os.path.basename(name)}.o")
            with open(p, "wb") as f:
                f.write(data)
            paths.append(p)
        out = os.path.join(tmp, "linked.o")
        try:
            r = subprocess.run([bpftool, "gen", "object", out, *paths], capture_output=True, text=True,
                               timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise LinkError(f"bpftool gen object failed: {e}") from e
        if r.returncode != 0:
            raise LinkError("bpftool gen object failed: " + (r.stderr.strip().splitlines() or ["no output"])[-1],
                            r.stderr)
        with open(out, "rb") as f:
            return f.read()
