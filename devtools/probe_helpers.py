#!/usr/bin/env python3
"""Regenerate bpf_lsp/data/helper_availability.json: which helpers each program type may call,
asked of the running kernel.

    sudo python devtools/probe_helpers.py [-o OUT]

Which helpers a program type may call is what its `get_func_proto()` returns, a chain of C
switches with conditions (capabilities, the attach type, sleepable or not) that differs between
kernel versions; the kernel answers it exactly. For every program type that loads without an
attach target, every attach type it may have, sleepable or not where that is allowed, and every
helper id, this loads `call helper; r0 = 0; exit` and reads the verifier's answer:
check_helper_call() asks the program type for the helper's prototype before it looks at any
argument, so "program of this type cannot use helper" (or "unknown func") means unavailable and
any other answer means available; a prototype that may sleep says so to a program that is not
sleepable ("helper call might sleep in a non-sleepable prog": `might_sleep`), and one only for
GPL-compatible programs to one whose license is not (`gpl_only`). A variant counts only where
the verifier reached the call (it loaded, or its log shows the call); a program type is recorded
only if some variant did. Needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN) and the bpf syscall.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import re
import struct
import sys

BPF_PROG_LOAD = 5
BPF_F_SLEEPABLE = 1 << 4
SYS_BPF = {"x86_64": 321, "aarch64": 280}

# our program-type names (frontend/objfile.py) -> (uapi enum value, attach types to try, sleepable allowed)
PROG_TYPES = {
    "socket_filter": (1, [0], False),
    "kprobe": (2, [0, 42, 48, 56, 57], True),      # kprobe, kprobe.multi, uprobe.multi, sessions
    "sched_cls": (3, [0, 46, 47, 54, 55], False),  # tc, tcx, netkit
    "sched_act": (4, [0], False),
    "tracepoint": (5, [0], False),
    "xdp": (6, [0, 33, 35], False),                # xdp, devmap, cpumap
    "perf_event": (7, [0], False),
    "cgroup_skb": (8, [0, 1], False),
    "cgroup_sock": (9, [2, 12, 13, 34], False),
    "lwt_in": (10, [0], False),
    "lwt_out": (11, [0], False),
    "lwt_xmit": (12, [0], False),
    "sock_ops": (13, [0], False),
    "sk_skb": (14, [4, 5, 38], False),
    "cgroup_device": (15, [6], False),
    "sk_msg": (16, [7], False),
    "raw_tracepoint": (17, [0], False),
    "cgroup_sock_addr": (18, [8, 9, 10, 11, 14, 15, 19, 20, 29, 30, 31, 32, 49, 50, 51, 52, 53], False),
    "lwt_seg6local": (19, [0], False),
    "sk_reuseport": (21, [39, 40], False),
    "flow_dissector": (22, [17], False),
    "cgroup_sysctl": (23, [18], False),
    "raw_tracepoint_writable": (24, [0], False),
    "cgroup_sockopt": (25, [21, 22], False),
    "sk_lookup": (30, [36], False),
    "syscall": (31, [0], True),
    "netfilter": (32, [45], False),
}
UNAVAILABLE = re.compile(r"cannot use helper|unknown func")
MIGHT_SLEEP = "helper call might sleep in a non-sleepable prog"    # fn->might_sleep, where not sleepable
GPL_ONLY = "cannot call GPL-restricted function"                  # fn->gpl_only, to a non-GPL program


def helper_names() -> dict[int, str]:
    path = os.path.join(os.path.dirname(__file__), "..", "bpf_lsp", "data", "kernel_tables.json")
    with open(path) as f:
        return {int(k): v["name"] for k, v in json.load(f)["helpers"].items()}


class Loader:
    def __init__(self):
        nr = SYS_BPF.get(platform.machine())
        if nr is None:
            sys.exit(f"no bpf syscall number known for {platform.machine()}")
        self.nr = nr
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.log = ctypes.create_string_buffer(1 << 16)

    def load(self, prog_type: int, attach: int, flags: int, helper: int, license: bytes = b"GPL") -> tuple[int, str]:
        """(errno or 0, the verifier's log) for `call helper; r0 = 0; exit`."""
        lic = ctypes.create_string_buffer(license)
        insns = struct.pack("<BBhi", 0x85, 0, 0, helper) + struct.pack("<BBhi", 0xB7, 0, 0, 0) + \
            struct.pack("<BBhi", 0x95, 0, 0, 0)
        code = ctypes.create_string_buffer(insns, len(insns))
        self.log[0] = b"\0"
        attr = bytearray(128)
        struct.pack_into("<IIQQIIQII", attr, 0, prog_type, 3, ctypes.addressof(code),
                         ctypes.addressof(lic), 1, len(self.log), ctypes.addressof(self.log), 0, flags)
        struct.pack_into("<I", attr, 68, attach)    # expected_attach_type
        buf = (ctypes.c_char * len(attr)).from_buffer(attr)
        fd = self.libc.syscall(self.nr, BPF_PROG_LOAD, buf, len(attr))
        err = ctypes.get_errno() if fd < 0 else 0
        if fd >= 0:
            os.close(fd)
        return err, self.log.value.decode(errors="replace")


def probe(loader: Loader, helpers: dict[int, str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, (ptype, attaches, can_sleep) in PROG_TYPES.items():
        variants = {"plain": [(a, 0) for a in attaches]}
        if can_sleep:
            variants["sleepable"] = [(a, BPF_F_SLEEPABLE) for a in attaches]
        found: dict[str, list[int]] = {}
        for variant, loads in variants.items():
            available: set[int] = set()
            sleeps: set[int] = set()
            gpl_only: set[int] = set()
            reached = False
            for attach, flags in loads:
                for hid in helpers:
                    err, log = loader.load(ptype, attach, flags, hid)
                    if err and "(85) call" not in log:
                        break      # refused before the verifier reached the call: not to be asked so
                    reached = True
                    if not err or not UNAVAILABLE.search(log):
                        available.add(hid)
                    if MIGHT_SLEEP in log:
                        sleeps.add(hid)
                    if variant == "plain" and attach == attaches[0] and hid in available and \
                            GPL_ONLY in loader.load(ptype, attach, flags, hid, license=b"Proprietary")[1]:
                        gpl_only.add(hid)
            if reached:
                found[variant] = sorted(available)
                if variant == "plain":
                    found["might_sleep"] = sorted(sleeps)
                    found["gpl_only"] = sorted(gpl_only)
        if found:
            out[name] = found
        print(f"{name:24} " + ", ".join(f"{v}: {len(h)}" for v, h in found.items()) if found
              else f"{name:24} not loadable here", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default=os.path.join(os.path.dirname(__file__), "..", "bpf_lsp", "data",
                                                        "helper_availability.json"))
    a = ap.parse_args()
    helpers = helper_names()
    data = {
        "generated_by": "devtools/probe_helpers.py",
        "kernel": platform.release(),
        "helper_ids": f"1..{max(helpers)}",
        "prog_types": probe(Loader(), helpers),
    }
    with open(a.out, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"{len(data['prog_types'])} program types -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
