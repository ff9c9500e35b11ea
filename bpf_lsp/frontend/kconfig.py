"""Values of `__kconfig` externs, resolved as libbpf resolves them at load time.

libbpf fills `extern ... __kconfig` variables from the running kernel before the verifier sees
the program: `LINUX_KERNEL_VERSION` from the release string, `CONFIG_*` from /proc/config.gz (or
/boot/config-<release>). The verifier then sees constants and never walks the dead side of a
`if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(6, 1, 0))` branch, so neither may we.
"""
from __future__ import annotations

import gzip
import os
import re
import threading

_lock = threading.Lock()
_memo: dict[str, dict[str, int]] = {}


def kernel_version_code(release: str) -> int | None:
    """KERNEL_VERSION(a, b, c) of a release string such as "6.18.44-fc" (patch capped at 255)."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if m is None:
        return None
    a, b, c = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    return (a << 16) + (b << 8) + min(c, 255)


def parse_config(text: str) -> dict[str, int]:
    """`CONFIG_X=y|m|n|number` lines -> values as libbpf gives them to bool/tristate/int externs
    (y: 1, m: 2, n: 0); strings are left out (they are char arrays, not constants)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"(CONFIG_\w+)=(.*)$", line.strip())
        if m:
            name, value = m.groups()
            if value in ("y", "m", "n"):
                out[name] = {"y": 1, "m": 2, "n": 0}[value]
            else:
                try:
                    out[name] = int(value, 0)
                except ValueError:
                    continue
        else:
            m = re.match(r"# (CONFIG_\w+) is not set", line.strip())
            if m:
                out[m.group(1)] = 0
    return out


def kernel_kconfig(release: str | None = None, config_text: str | None = None) -> dict[str, int]:
    """The running kernel's values (or those of `release`/`config_text` when given)."""
    release = release if release is not None else os.uname().release
    key = f"{release}:{hash(config_text)}"
    with _lock:
        if key in _memo:
            return _memo[key]
    values: dict[str, int] = {}
    if config_text is None:
        for path in ("/proc/config.gz", f"/boot/config-{release}"):
            try:
                opener = gzip.open if path.endswith(".gz") else open
                with opener(path, "rt", errors="replace") as f:
                    config_text = f.read()
                break
            except OSError:
                continue
    if config_text:
        values.update(parse_config(config_text))
    code = kernel_version_code(release)
    if code is not None:
        values["LINUX_KERNEL_VERSION"] = code
    with _lock:
        _memo[key] = values
    return values
