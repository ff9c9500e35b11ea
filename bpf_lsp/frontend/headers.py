"""A vmlinux.h generated from the running kernel's BTF, for users who have none.

Nearly every CO-RE program includes "vmlinux.h", which projects generate with
bpftool and often do not commit. The compile adds the generated copy's
directory with -idirafter, so a project's own vmlinux.h still wins.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")
HEADER_NAME = "vmlinux.h"
GENERATE_COMMAND = f"bpftool btf dump file {KERNEL_BTF} format c > {HEADER_NAME}"

# bpftool lives in sbin, which is not on an ordinary user's PATH.
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bpf-lsp"


def find_bpftool() -> str:
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN_DIRS])
    return shutil.which("bpftool", path=search) or ""


def _btf_digest(btf: Path) -> str:
    return hashlib.sha256(btf.read_bytes()).hexdigest()[:20]


_generated: dict[tuple[str, int, int], Path] = {}   # (cache dir, BTF size, BTF mtime) -> header dir
_lock = threading.Lock()


def ensure_vmlinux_header(cache_dir: Path | None = None) -> Path | None:
    """Directory holding a vmlinux.h for the running kernel, generating it once per kernel BTF.

    None when bpftool or the kernel's BTF is missing, or bpftool fails.
    """
    bpftool = find_bpftool()
    try:
        stat = KERNEL_BTF.stat()
    except OSError:
        return None
    if not bpftool:
        return None
    root = Path(cache_dir) if cache_dir else default_cache_root() / "vmlinux"
    memo_key = (str(root), stat.st_size, stat.st_mtime_ns)
    with _lock:  # one generation at a time; later callers find the result
        if memo_key in _generated and (_generated[memo_key] / HEADER_NAME).exists():
            return _generated[memo_key]
        # The content hash names the directory, so a different kernel gets its own header.
        directory = root / _btf_digest(KERNEL_BTF)
        if not (directory / HEADER_NAME).exists() and not _generate(bpftool, directory):
            return None
        _generated[memo_key] = directory
        return directory


def _generate(bpftool: str, directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: readers never see a partial header.
        fd, tmp_name = tempfile.mkstemp(prefix=".vmlinux-", suffix=".h.tmp", dir=directory)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as out:
            proc = subprocess.run([bpftool, "btf", "dump", "file", str(KERNEL_BTF), "format", "c"],
                                  stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=120)
        if proc.returncode != 0:
            return False
        os.replace(tmp_name, directory / HEADER_NAME)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
