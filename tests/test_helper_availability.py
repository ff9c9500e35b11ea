"""Which helpers a program type may call: data the running kernel gave (devtools/probe_helpers.py),
checked at every helper call; where the kernel could not be asked, every helper is allowed."""
from __future__ import annotations

import json
from importlib import resources

from conftest import requires_kernel

from bpf_lsp.verifier import kfuncs as K

GET_SOCKET_COOKIE, SKB_STORE_BYTES, GET_CURRENT_PID_TGID, COPY_FROM_USER, PROBE_READ_KERNEL = 46, 9, 14, 148, 113


def _data() -> dict:
    return json.loads(resources.files("bpf_lsp").joinpath("data/helper_availability.json").read_text())


def test_the_table_says_which_kernel_it_came_from_and_covers_the_loadable_types():
    data = _data()
    assert data["generated_by"] == "devtools/probe_helpers.py" and data["kernel"]
    assert {"socket_filter", "kprobe", "sched_cls", "xdp", "tracepoint", "raw_tracepoint", "syscall",
            "cgroup_skb", "sk_lookup", "netfilter"} <= set(data["prog_types"])


def test_a_helper_the_type_does_not_offer_is_refused_and_one_it_offers_is_not():
    assert not K.helper_allowed(GET_SOCKET_COOKIE, "raw_tracepoint", False)
    assert K.helper_allowed(GET_SOCKET_COOKIE, "sched_cls", False)
    assert not K.helper_allowed(SKB_STORE_BYTES, "socket_filter", False)
    assert K.helper_allowed(SKB_STORE_BYTES, "sched_cls", False)
    assert K.helper_allowed(GET_CURRENT_PID_TGID, "kprobe", False)
    # a syscall program is only ever loaded sleepable: either way of asking reads that answer
    assert K.helper_allowed(COPY_FROM_USER, "syscall", False) == K.helper_allowed(COPY_FROM_USER, "syscall", True)


def test_a_helper_may_sleep_where_every_type_offering_it_said_so():
    assert K.helper_might_sleep(COPY_FROM_USER)
    assert not K.helper_might_sleep(GET_CURRENT_PID_TGID) and not K.helper_might_sleep(10_000)
    assert K.kfunc_sleepable("bpf_copy_from_user_str") and not K.kfunc_sleepable("bpf_task_from_pid")


def test_gpl_only_helpers_are_the_ones_the_kernel_named():
    assert K.helper_gpl_only(PROBE_READ_KERNEL) and not K.helper_gpl_only(GET_CURRENT_PID_TGID)


def test_where_the_kernel_could_not_be_asked_every_helper_is_allowed():
    # tracing, lsm and struct_ops programs do not load without an attach target: not probed
    for prog_type in ("tracing", "lsm", "struct_ops", "ext", "unknown"):
        assert K.helper_allowed(GET_SOCKET_COOKIE, prog_type, False), prog_type
    # a helper newer than the probe
    assert K.helper_allowed(10_000, "socket_filter", False)


@requires_kernel
def test_the_table_agrees_with_the_running_kernel():
    # a few answers asked again, as the probe asks them: a stale table shows here
    from devtools.probe_helpers import PROG_TYPES, UNAVAILABLE, Loader
    loader = Loader()
    for prog_type, helper in (("raw_tracepoint", GET_SOCKET_COOKIE), ("sched_cls", GET_SOCKET_COOKIE),
                              ("socket_filter", SKB_STORE_BYTES), ("xdp", SKB_STORE_BYTES),
                              ("kprobe", GET_CURRENT_PID_TGID), ("cgroup_skb", GET_SOCKET_COOKIE)):
        ptype, attaches, _sleepable = PROG_TYPES[prog_type]
        answers = set()
        for attach in attaches:
            err, log = loader.load(ptype, attach, 0, helper)
            if not err or "(85) call" in log:
                answers.add(not err or not UNAVAILABLE.search(log))
        assert answers, prog_type
        assert K.helper_allowed(helper, prog_type, False) == any(answers), (prog_type, helper)
    # and what may sleep says so to a program that is not sleepable
    from devtools.probe_helpers import MIGHT_SLEEP
    _err, log = loader.load(PROG_TYPES["kprobe"][0], 0, 0, COPY_FROM_USER)
    assert (MIGHT_SLEEP in log) == K.helper_might_sleep(COPY_FROM_USER)
    from devtools.probe_helpers import GPL_ONLY
    for helper in (PROBE_READ_KERNEL, GET_CURRENT_PID_TGID):
        _err, log = loader.load(PROG_TYPES["kprobe"][0], 0, 0, helper, license=b"Proprietary")
        assert (GPL_ONLY in log) == K.helper_gpl_only(helper), helper
