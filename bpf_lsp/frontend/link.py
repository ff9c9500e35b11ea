"""Linking the object files of one multi-file BPF program, as libbpf's static linker does.

Programs such as scx_lavd are several `.bpf.c` files whose objects `bpftool gen object` (libbpf's
`bpf_linker`) joins into one, resolving calls and extern variables across files. We run that same
linker rather than reimplementing it: the result is the object the loader would see.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile


class LinkError(RuntimeError):
    pass


def find_bpftool() -> str | None:
    return shutil.which("bpftool") or next((p for p in ("/usr/sbin/bpftool", "/sbin/bpftool")
                                            if os.access(p, os.X_OK)), None)


def link_objects(objects: list[tuple[str, bytes]], timeout: float = 60) -> bytes:
    """(name, ELF bytes) of each file's object -> the linked object's bytes."""
    bpftool = find_bpftool()
    if bpftool is None:
        raise LinkError("linking needs bpftool (apt-get install bpftool)")
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
            raise LinkError("bpftool gen object failed: " + (r.stderr.strip().splitlines() or ["no output"])[-1])
        with open(out, "rb") as f:
            return f.read()
