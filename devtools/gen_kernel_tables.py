#!/usr/bin/env python3
"""Regenerate bpf_lsp/data/kernel_tables.json from a kernel source tree and libbpf's helper list.

    python devtools/gen_kernel_tables.py KERNEL_SRC BPF_HELPER_DEFS_H [-o OUT] [--newer DIR --newer-label L]

KERNEL_SRC is an unpacked kernel tree (`apt-get download linux-source-6.12`, then
`dpkg-deb -x` and untar); BPF_HELPER_DEFS_H is libbpf's generated `bpf_helper_defs.h` (the UAPI
helper ids, names and C prototypes). What it extracts, as data the verifier reads:

- helpers: for each helper id, the union over every `struct bpf_func_proto` the kernel returns
  for it (`case BPF_FUNC_x: return &proto;` in the `*_func_proto()` switches) of the return kind
  (`RET_*`, with `PTR_MAYBE_NULL` folded into `or_null`), the BTF struct of `ret_btf_id`, and
  the argument kinds (`ARG_*`);
- kfuncs: `BTF_ID_FLAGS(func, name, FLAGS)` inside `BTF_KFUNCS_START(set)..END`, and the
  program-type hooks each set is registered for (`register_btf_kfunc_id_set(BPF_PROG_TYPE_x,
  &kfunc_set)` where the id set names `.set = &set`), mapped to hooks as
  `bpf_prog_type_to_kfunc_hook()` does;
- kfunc parameter names, from the kfunc's definition (`__bpf_kfunc int f(void *mem, u32 mem__sz)`):
  the kernel reads a parameter's meaning from its name's suffix (`__sz`, `__szk`, `__k`,
  `__uninit`, `__nullable`, ...) in its BTF, which a program's extern declaration does not carry;
- with `--newer DIR`: the kfuncs of a newer tree's files in DIR (laid out as in a kernel tree; a
  few files are enough) that KERNEL_SRC lacks, marked `"since": L` (sched_ext grows fastest:
  the `*_node` idle masks, `scx_bpf_select_cpu_and`);
- iterator targets: for each `struct bpf_iter_reg` (`.target = "task"`), the register types its
  `.ctx_arg_info` gives context fields (`offsetof(struct bpf_iter__task, task)` ->
  `PTR_TO_BTF_ID_OR_NULL | PTR_TRUSTED`); fields not listed are what btf_ctx_access() makes of
  their type.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
from collections import defaultdict

# kernel/bpf/btf.c bpf_prog_type_to_kfunc_hook(): our program-type names -> hook
PROG_TYPE_HOOK = {
    "unspec": "common", "xdp": "xdp", "sched_cls": "tc", "struct_ops": "struct_ops",
    "tracing": "tracing", "tracepoint": "tracing", "perf_event": "tracing", "lsm": "tracing",
    "syscall": "syscall",
    "cgroup_skb": "cgroup", "cgroup_sock": "cgroup", "cgroup_device": "cgroup", "cgroup_sock_addr": "cgroup",
    "cgroup_sockopt": "cgroup", "cgroup_sysctl": "cgroup", "cgroup": "cgroup",
    "sched_act": "sched_act", "sk_skb": "sk_skb", "socket_filter": "socket_filter",
    "lwt_out": "lwt", "lwt_in": "lwt", "lwt_xmit": "lwt", "lwt_seg6local": "lwt",
    "netfilter": "netfilter", "kprobe": "kprobe",
}
# ret_btf_id expressions -> the struct they name (include/linux/btf_ids.h lists)
RET_BTF_STRUCTS = {
    "btf_tracing_ids[BTF_TRACING_TYPE_TASK]": "task_struct", "bpf_task_pt_regs_ids[0]": "pt_regs",
    "btf_sock_ids[BTF_SOCK_TYPE_TCP6]": "tcp6_sock", "btf_sock_ids[BTF_SOCK_TYPE_TCP]": "tcp_sock",
    "btf_sock_ids[BTF_SOCK_TYPE_TCP_TW]": "tcp_timewait_sock",
    "btf_sock_ids[BTF_SOCK_TYPE_TCP_REQ]": "tcp_request_sock",
    "btf_sock_ids[BTF_SOCK_TYPE_UDP6]": "udp6_sock", "btf_sock_ids[BTF_SOCK_TYPE_UNIX]": "unix_sock",
    "btf_sock_ids[BTF_SOCK_TYPE_MPTCP]": "mptcp_sock", "bpf_sock_from_file_btf_ids[0]": "socket",
}
SOURCE_DIRS = ("kernel", "net", "fs", "security", "mm", "drivers/hid/bpf")


def c_files(root: str):
    for d in SOURCE_DIRS:
        for dirpath, _dirs, files in os.walk(os.path.join(root, d)):
            for f in files:
                if f.endswith(".c"):
                    yield os.path.join(dirpath, f)


def strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)


PROTO_RE = re.compile(r"struct\s+bpf_func_proto\s+(\w+)\s*=\s*\{(.*?)\};", re.S)
FIELD_RE = re.compile(r"\.(\w+)\s*=\s*([^,]+?)\s*(?:,|$)", re.S)
CASE_RE = re.compile(r"case\s+BPF_FUNC_(\w+)\s*:\s*((?:case\s+BPF_FUNC_\w+\s*:\s*)*)return\s+([^;]+);", re.S)


def parse_protos(root: str):
    protos: dict[str, dict] = {}
    returns: dict[str, set[str]] = defaultdict(set)   # helper name -> proto variables
    for path in c_files(root):
        text = strip_comments(open(path, errors="replace").read())
        for m in PROTO_RE.finditer(text):
            fields = {k: " ".join(v.split()) for k, v in FIELD_RE.findall(m.group(2))}
            protos[m.group(1)] = fields
        for m in CASE_RE.finditer(text):
            names = [m.group(1)] + re.findall(r"BPF_FUNC_(\w+)", m.group(2))
            for var in re.findall(r"&(\w+)", m.group(3)):
                for n in names:
                    returns[n].add(var)
    return protos, returns


def kind_of(expr: str, prefix: str) -> tuple[str, bool, list[str]]:
    parts = [p.strip() for p in expr.split("|")]
    base = next((p for p in parts if p.startswith(prefix)), "")
    or_null = base.endswith("_OR_NULL") or "PTR_MAYBE_NULL" in parts
    base = base.removesuffix("_OR_NULL")
    mods = sorted(p for p in parts if p and not p.startswith(prefix) and p != "PTR_MAYBE_NULL")
    return base, or_null, mods


def parse_helper_defs(path: str) -> dict[int, dict]:
    out = {}
    text = open(path).read()
    # libbpf before 1.2 writes `(*name)`, later ones `(* const name)`
    for m in re.finditer(r"static\s+(.+?)\(\s*\*\s*(?:const\s+)?(\w+)\s*\)\s*\((.*?)\)\s*=\s*\(void\s*\*\)\s*(\d+);",
                         text, re.S):
        out[int(m.group(4))] = {"name": m.group(2), "c_ret": " ".join(m.group(1).split()),
                                "c_args": [" ".join(a.split()) for a in m.group(3).split(",") if a.strip()]}
    if not out:
        sys.exit(f"{path}: no helper definitions found (is it libbpf's bpf_helper_defs.h?)")
    return out


def helpers_table(root: str, defs_path: str) -> dict[str, dict]:
    protos, returns = parse_protos(root)
    by_func: dict[str, list[str]] = defaultdict(list)
    for var, f in protos.items():
        if "func" in f:
            by_func[f["func"]].append(var)
    table = {}
    for hid, d in sorted(parse_helper_defs(defs_path).items()):
        short = d["name"].removeprefix("bpf_")
        variants = sorted(returns.get(short, set()) & protos.keys()) or sorted(by_func.get(d["name"], []))
        rets, ret_structs, or_null = set(), set(), False
        args: list[set[str]] = [set() for _ in range(5)]
        for var in variants:
            f = protos[var]
            base, null, _mods = kind_of(f.get("ret_type", "RET_INTEGER"), "RET_")
            rets.add(base)
            or_null |= null
            btf = f.get("ret_btf_id", "").lstrip("&")
            if btf in RET_BTF_STRUCTS:
                ret_structs.add(RET_BTF_STRUCTS[btf])
            for i in range(5):
                a = f.get(f"arg{i + 1}_type")
                if a:
                    ab, anull, amods = kind_of(a, "ARG_")
                    args[i].add("|".join([ab] + (["MAYBE_NULL"] if anull else []) + amods))
        table[str(hid)] = {
            "name": d["name"], "c_ret": d["c_ret"], "c_args": d["c_args"], "protos": variants,
            "ret": sorted(rets), "ret_or_null": or_null, "ret_struct": sorted(ret_structs),
            "args": [sorted(a) for a in args if a],
        }
    return table


# a function definition's head: `name(params) {`; the return type and attributes before it do not
# matter, only the parameter list does
FUNC_DEF_RE = re.compile(r"\b(\w+)\s*\(([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*)\)\s*\{")


def param_names(params: str) -> list[str] | None:
    """The names in a C parameter list (`struct task_struct *p, u32 data__sz`, a function
    pointer's `bool (less)(...)`); None if one has none we can read (`...`)."""
    params = " ".join(params.split())
    if params in ("", "void"):
        return []
    out = []
    for p in re.split(r",(?![^()]*\))", params):
        m = (re.match(r"[^(]*\(\s*\*?\s*(\w+)\s*\)\s*\(", p) if "(" in p
             else re.search(r"(\w+)\s*(?:\[[^\]]*\])?\s*$", p.strip()))
        if m is None:
            return None
        out.append(m.group(1))
    return out


def kfunc_params(text: str, names: set[str]) -> dict[str, list[str]]:
    """Parameter names of the functions in `names` defined in `text` (comments stripped)."""
    out = {}
    for m in FUNC_DEF_RE.finditer(text):
        if m.group(1) in names and m.group(1) not in out:
            params = param_names(m.group(2))
            if params is not None:
                out[m.group(1)] = params
    return out


KFUNC_FLAG_RE = re.compile(r"BTF_ID_FLAGS\(\s*func\s*,\s*(\w+)\s*(?:,\s*([^)]*))?\)")


def kfuncs_table(root: str) -> dict[str, dict]:
    sets: dict[str, list[tuple[str, list[str]]]] = {}
    # (file, btf_kfunc_id_set variable) -> BTF set name: the variables are static, names repeat
    id_sets: dict[tuple[str, str], str] = {}
    filtered: set[tuple[str, str]] = set()
    registrations: dict[tuple[str, str], set[str]] = defaultdict(set)   # id-set variable -> prog types
    texts = []
    for path in c_files(root):
        raw = open(path, errors="replace").read()
        if "BTF_ID_FLAGS" not in raw and "register_btf_kfunc_id_set" not in raw:
            continue
        text = strip_comments(raw)
        texts.append(text)
        for m in re.finditer(r"BTF_(?:KFUNCS|SET8)_START\((\w+)\)(.*?)BTF_(?:KFUNCS|SET8)_END\(\1\)", text, re.S):
            body = m.group(2)
            entries = []
            for fm in KFUNC_FLAG_RE.finditer(body):
                flags = [f.strip() for f in (fm.group(2) or "").split("|") if f.strip() and f.strip() != "0"]
                entries.append((fm.group(1), flags))
            sets[m.group(1)] = entries
        for m in re.finditer(r"struct\s+btf_kfunc_id_set\s+(\w+)\s*=\s*\{(.*?)\};", text, re.S):
            sm = re.search(r"\.set\s*=\s*&(\w+)", m.group(2))
            if sm:
                id_sets[path, m.group(1)] = sm.group(1)
            if ".filter" in m.group(2):
                filtered.add((path, m.group(1)))
        for m in re.finditer(r"register_btf_kfunc_id_set\(\s*BPF_PROG_TYPE_(\w+)\s*,\s*&(\w+)\s*\)", text):
            registrations[path, m.group(2)].add(m.group(1).lower())
    kfuncs: dict[str, dict] = {}
    for idset, btfset in id_sets.items():
        hooks = sorted({PROG_TYPE_HOOK.get(p, p) for p in registrations.get(idset, ())})
        for name, flags in sets.get(btfset, []):
            k = kfuncs.setdefault(name, {"flags": sorted(set(flags)), "hooks": [], "sets": [], "filtered": False})
            k["flags"] = sorted(set(k["flags"]) | set(flags))
            k["hooks"] = sorted(set(k["hooks"]) | set(hooks))
            k["sets"] = sorted(set(k["sets"]) | {btfset})
            k["filtered"] = k["filtered"] or idset in filtered
    # sets that are never registered through a btf_kfunc_id_set (e.g. special kfuncs): flags only
    for btfset, entries in sets.items():
        for name, flags in entries:
            kfuncs.setdefault(name, {"flags": sorted(set(flags)), "hooks": [], "sets": [btfset], "filtered": False})
    # a kfunc is mostly defined in the file that lists it, else in another file of the tree
    wanted = set(kfuncs)
    others = (strip_comments(open(p, errors="replace").read()) for p in c_files(root))
    for text in itertools.chain(texts, others):
        if not wanted:
            break
        for name, params in kfunc_params(text, wanted).items():
            kfuncs[name]["params"] = params
            wanted.discard(name)
    return dict(sorted(kfuncs.items()))


ITER_REG_RE = re.compile(r"struct\s+bpf_iter_reg\s+\w+\s*=\s*\{(.*?)\n\};", re.S)
CTX_ARG_RE = re.compile(r"\{\s*offsetof\(\s*struct\s+bpf_iter__\w+\s*,\s*(\w+)\s*\)\s*,\s*([A-Z_ |]+?)\s*\}")


def iter_targets_table(root: str) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for path in c_files(root):
        raw = open(path, errors="replace").read()
        if "bpf_iter_reg" not in raw:
            continue
        for m in ITER_REG_RE.finditer(strip_comments(raw)):
            target = re.search(r'\.target\s*=\s*"(\w+)"', m.group(1))
            if target:
                out[target.group(1)] = {field: sorted(p.strip() for p in kinds.split("|"))
                                        for field, kinds in CTX_ARG_RE.findall(m.group(1))}
    return dict(sorted(out.items()))


def kernel_version(root: str) -> str:
    mk = open(os.path.join(root, "Makefile")).read() if os.path.exists(os.path.join(root, "Makefile")) else ""
    parts = [re.search(rf"^{k}\s*=\s*(\S*)", mk, re.M) for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL")]
    if all(parts):
        return ".".join(p.group(1) for p in parts)
    return os.path.basename(os.path.abspath(root))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kernel_src")
    ap.add_argument("helper_defs")
    ap.add_argument("-o", "--out", default=os.path.join(os.path.dirname(__file__), "..", "bpf_lsp", "data",
                                                        "kernel_tables.json"))
    ap.add_argument("--newer", help="files of a newer kernel tree whose kfuncs KERNEL_SRC lacks")
    ap.add_argument("--newer-label", default="", help="where --newer came from (a version or commit)")
    a = ap.parse_args()
    data = {
        "generated_by": "devtools/gen_kernel_tables.py",
        "kernel_source": kernel_version(a.kernel_src),
        "prog_type_hooks": PROG_TYPE_HOOK,
        "helpers": helpers_table(a.kernel_src, a.helper_defs),
        "kfuncs": kfuncs_table(a.kernel_src),
        "iter_targets": iter_targets_table(a.kernel_src),
    }
    if a.newer:
        data["newer_source"] = a.newer_label or os.path.basename(os.path.abspath(a.newer))
        for name, entry in kfuncs_table(a.newer).items():
            if name not in data["kfuncs"]:
                data["kfuncs"][name] = {**entry, "since": data["newer_source"]}
        data["kfuncs"] = dict(sorted(data["kfuncs"].items()))
    with open(a.out, "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"{len(data['helpers'])} helpers, {len(data['kfuncs'])} kfuncs from {data['kernel_source']} -> {a.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
