"""Which fields of the UAPI socket views a program may read (net/core/filter.c).

`struct bpf_sock` (and its `bpf_sock_common` subset) is not memory: each load is rewritten by
the kernel to a field of the real socket, so only the listed offsets and sizes are valid
(`bpf_sock_is_valid_access`, `bpf_sock_common_is_valid_access`). The offsets are UAPI ABI.
"""
from __future__ import annotations

BPF_SOCK_SIZE = 80
# fields a narrower read (1, 2 or 4 bytes) may access (bpf_ctx_narrow_access_ok)
_NARROW = [(4, 4), (8, 4), (12, 4), (24, 4), (28, 16), (44, 4), (52, 4), (56, 16), (72, 4), (76, 4)]
_DST_PORT = (48, 2)             # __be16 dst_port, then 2 bytes of padding nobody may read
_FULL_ONLY = [(0, 4), (16, 4), (20, 4)]     # bound_dev_if, mark, priority: whole u32 reads only
# bpf_sock_common_is_valid_access: fields beyond struct sock_common need a full socket
_NOT_IN_SOCK_COMMON = [(8, 4), (12, 4), (16, 4), (20, 4), (76, 4)]   # type, protocol, mark, priority, rx_queue_mapping


def _within(off: int, fields) -> tuple[int, int] | None:
    return next(((lo, n) for lo, n in fields if lo <= off < lo + n), None)


BPF_TCP_SOCK_END = 112                      # offsetofend(struct bpf_tcp_sock, icsk_retransmits)
_TCP_SOCK_U64 = (80, 88)                    # bytes_received, bytes_acked; every other field is a u32


def sock_read_ok(view: str, off: int, size: int) -> bool:
    """Whether a load of `size` bytes at `off` of a `view` ("bpf_sock" | "bpf_sock_common" |
    "bpf_tcp_sock") is valid."""
    if view == "bpf_tcp_sock":      # bpf_tcp_sock_is_valid_access: whole fields only
        return 0 <= off < BPF_TCP_SOCK_END and size in (4, 8) and not off % size and \
            (size == 8) == (off in _TCP_SOCK_U64)
    if off < 0 or off >= BPF_SOCK_SIZE or size not in (1, 2, 4, 8) or off % size:
        return False
    if view == "bpf_sock_common" and _within(off, _NOT_IN_SOCK_COMMON):
        return False
    if _within(off, _NARROW):
        return size <= 4
    if off == 48 and size == 4:
        return True
    if _within(off, [_DST_PORT]):
        return size <= 2
    if 50 <= off < 52:
        return False
    return size == 4 and _within(off, _FULL_ONLY) is not None
