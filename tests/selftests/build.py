#!/usr/bin/env python3
"""Build the kernel's BPF selftests we compare against, and have the running kernel judge them.

    python3 tests/selftests/build.py [--out .build/selftests] [--force]

Nothing of the kernel tree is committed: the Debian package `linux-source-6.12` is fetched with
`apt-get download`, and only `tools/testing/selftests/bpf`, libbpf and the UAPI headers are
unpacked from it. Each file of FILES is compiled as the selftests' Makefile compiles it
(BPF_CFLAGS + CLANG_SYS_INCLUDES, `-O2 --target=bpf -mcpu=v3`) against this machine's vmlinux.h
and a bpf_helper_defs.h generated from the tree's UAPI, and every program of it is loaded by
`../shared/tools/kverify --json`: the kernel's verdict is the expectation.

The result is `manifest.json` in the output directory: {"status": "ok" | "skipped", "reason",
"objects": {file: {"source", "object", "programs": {name: kverify's record}}}}. The script never
fails the build: when a step cannot run (no network, no bpf syscall) the manifest says why and
the tests skip with that reason. It is cached: a second run with the same inputs does nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "linux-source-6.12"
STAMP_VERSION = 2
FILES = """
cgrp_kfunc_failure.c cgrp_kfunc_success.c cpumask_failure.c cpumask_success.c exceptions_fail.c
linked_list.c linked_list_fail.c local_kptr_stash.c local_kptr_stash_fail.c map_kptr_fail.c
percpu_alloc_array.c percpu_alloc_fail.c preempt_lock.c rbtree.c rbtree_btf_fail__add_wrong_type.c
rbtree_btf_fail__wrong_node_type.c rbtree_fail.c rcu_read_lock.c refcounted_kptr.c
refcounted_kptr_fail.c task_kfunc_failure.c task_kfunc_success.c test_spin_lock_fail.c
verifier_ref_tracking.c verifier_sock.c test_sk_lookup.c vrf_socket_lookup.c cb_refs.c
verifier_kfunc_prog_types.c verifier_global_subprogs.c verifier_global_ptr_args.c
nested_trust_failure.c verifier_spin_lock.c test_spin_lock.c verifier_ringbuf.c test_ringbuf.c
test_ringbuf_multi.c test_ringbuf_write.c test_ringbuf_map_key.c dynptr_fail.c dynptr_success.c
user_ringbuf_fail.c test_kfunc_dynptr_param.c kptr_xchg_inline.c percpu_alloc_cgrp_local_storage.c
cgrp_ls_sleepable.c iters.c iters_state_safety.c iters_task_failure.c iters_task_vma.c iters_css.c
verifier_bits_iter.c verifier_bounds.c verifier_bounds_deduction.c verifier_bounds_deduction_non_const.c
verifier_bounds_mix_sign_unsign.c verifier_linked_scalars.c verifier_movsx.c verifier_reg_equal.c
verifier_scalar_ids.c verifier_spill_fill.c verifier_subreg.c verifier_var_off.c verifier_sdiv.c
""".split()
LIBBPF_HEADERS = ("bpf_helpers.h", "bpf_tracing.h", "bpf_core_read.h", "bpf_endian.h", "usdt.bpf.h")
TREE_PARTS = ("tools/testing/selftests/bpf", "tools/lib/bpf", "tools/include", "include/uapi",
              "scripts/bpf_doc.py")

REPO = Path(__file__).resolve().parents[2]
KVERIFY = REPO.parent / "shared" / "tools" / "kverify"


class Skip(Exception):
    """A step that cannot run on this machine; the reason goes into the manifest."""


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def fetch_tree(out: Path) -> Path:
    """The unpacked parts of the kernel tree (downloaded once)."""
    tree = out / "linux"
    if (tree / ".complete").exists():
        return tree
    debs = sorted(out.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        got = run(["apt-get", "download", PACKAGE], cwd=out)
        if got.returncode != 0:
            # a fresh machine may have no package lists yet
            run(["apt-get", "update", "-qq"])
            got = run(["apt-get", "download", PACKAGE], cwd=out)
        debs = sorted(out.glob(f"{PACKAGE}_*.deb"))
        if got.returncode != 0 or not debs:
            raise Skip(f"apt-get download {PACKAGE} failed: {(got.stderr or got.stdout).strip()[-300:]}")
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        got = run(["dpkg-deb", "-x", str(debs[-1]), tmp])
        tarballs = list(Path(tmp).glob("usr/src/linux-source-*.tar.xz"))
        if got.returncode != 0 or not tarballs:
            raise Skip(f"could not unpack {debs[-1].name}: {got.stderr.strip()[-300:]}")
        top = tarballs[0].name[: -len(".tar.xz")]
        got = run(["tar", "-xJf", str(tarballs[0]), "-C", tmp, *[f"{top}/{p}" for p in TREE_PARTS]])
        if got.returncode != 0:
            raise Skip(f"could not untar the kernel tree: {got.stderr.strip()[-300:]}")
        if tree.exists():
            shutil.rmtree(tree)
        (Path(tmp) / top).rename(tree)
    (tree / ".complete").write_text(debs[-1].name + "\n")
    return tree


def make_includes(out: Path, tree: Path) -> Path:
    """INCLUDE_DIR of the selftests: vmlinux.h of this kernel and libbpf's headers."""
    inc = out / "include"
    (inc / "bpf").mkdir(parents=True, exist_ok=True)
    for h in LIBBPF_HEADERS:
        shutil.copy(tree / "tools/lib/bpf" / h, inc / "bpf" / h)
    defs = run([sys.executable, str(tree / "scripts/bpf_doc.py"), "--header", "--file",
                str(tree / "include/uapi/linux/bpf.h")])
    if defs.returncode != 0:
        raise Skip(f"bpf_doc.py failed: {defs.stderr.strip()[-300:]}")
    (inc / "bpf" / "bpf_helper_defs.h").write_text(defs.stdout)
    vmlinux = REPO / ".build" / "vmlinux.h"
    if not vmlinux.exists():
        got = run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"])
        if got.returncode != 0:
            raise Skip(f"bpftool could not dump the kernel's BTF: {got.stderr.strip()[-300:]}")
        vmlinux.parent.mkdir(exist_ok=True)
        vmlinux.write_text(got.stdout)
    shutil.copy(vmlinux, inc / "vmlinux.h")
    return inc


def compiler() -> str:
    for name in ("clang-19", "clang"):
        path = shutil.which(name)
        if path:
            return path
    raise Skip("no clang on PATH (make setup installs clang-19)")


def cflags(clang: str, tree: Path, inc: Path) -> list[str]:
    """BPF_CFLAGS, CLANG_SYS_INCLUDES and the test_progs runner's define, as the Makefile has them."""
    selftests = tree / "tools/testing/selftests/bpf"
    probe = run([clang, "-v", "-E", "-"], input="")
    sys_includes, inside = [], False
    for line in probe.stderr.splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            inside = False
        elif inside and line.startswith(" /"):
            sys_includes += ["-idirafter", line.strip()]
    return ["-g", "-Wall", "-Werror", "-D__TARGET_ARCH_x86", "-mlittle-endian", f"-I{inc}", f"-I{selftests}",
            f"-I{tree / 'tools/include/uapi'}", "-Wno-compare-distinct-pointer-types", *sys_includes,
            "-DENABLE_ATOMICS_TESTS", "-O2", "--target=bpf", "-mcpu=v3"]


def judge(obj: Path) -> dict[str, dict]:
    got = run([str(KVERIFY), str(obj), "--json"], timeout=600)
    programs = {}
    for line in got.stdout.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        programs[record["prog"]] = record
    return programs


def build(out: Path, force: bool) -> dict:
    manifest_path = out / "manifest.json"
    release = os.uname().release
    if manifest_path.exists() and not force:
        old = json.loads(manifest_path.read_text())
        if old.get("version") == STAMP_VERSION and old.get("kernel") == release and old.get("status") == "ok":
            return old
    if not KVERIFY.exists():
        raise Skip(f"{KVERIFY} is missing")
    if os.geteuid() != 0:
        raise Skip("the kernel can judge the selftests only as root (the bpf syscall)")
    tree = fetch_tree(out)
    inc = make_includes(out, tree)
    clang = compiler()
    flags = cflags(clang, tree, inc)
    progs_dir = tree / "tools/testing/selftests/bpf/progs"
    objects, problems = {}, []
    (out / "obj").mkdir(exist_ok=True)
    for name in FILES:
        src = progs_dir / name
        obj = out / "obj" / (name[:-2] + ".o")
        got = run([clang, *flags, "-c", str(src), "-o", str(obj)], cwd=progs_dir)
        if got.returncode != 0:
            problems.append(f"{name}: {got.stderr.strip()[-300:]}")
            continue
        programs = judge(obj)
        if not programs:
            problems.append(f"{name}: kverify judged no program")
        objects[name] = {"source": str(src), "object": str(obj), "flags": flags, "programs": programs}
    if not any(p.get("stage") == "verifier" for o in objects.values() for p in o["programs"].values()):
        raise Skip("the kernel verified no program (is the bpf syscall permitted?)")
    return {"version": STAMP_VERSION, "status": "ok", "kernel": release, "package": PACKAGE,
            "problems": problems, "objects": objects}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / ".build" / "selftests"))
    ap.add_argument("--force", action="store_true", help="rebuild and re-judge even when cached")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        manifest = build(out, args.force)
    except (Skip, OSError, subprocess.SubprocessError) as e:
        manifest = {"version": STAMP_VERSION, "status": "skipped", "reason": str(e), "objects": {}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    judged = sum(len(o["programs"]) for o in manifest["objects"].values())
    print(f"selftests: {manifest['status']}" + (f" ({manifest['reason']})" if manifest.get("reason") else
                                                f", {len(manifest['objects'])} objects, {judged} programs"))
    for p in manifest.get("problems", []):
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
