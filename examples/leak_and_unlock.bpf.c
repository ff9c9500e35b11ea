// Two ownership mistakes bpf-lsp catches before the kernel does.
#include "own.h"

struct elem {
	int data;
	struct bpf_list_node node;
};

private(A) struct bpf_spin_lock glock;
private(A) struct bpf_list_head ghead __contains(elem, node);

SEC("tc")
int leak_on_one_path(struct __sk_buff *skb)
{
	struct elem *e = bpf_obj_new(typeof(*e));

	if (!e)
		return 0;
	e->data = skb->len;
	if (skb->len > 100)
		return 1;		/* e leaks here */
	bpf_obj_drop(e);
	return 0;
}

SEC("tc")
int use_after_unlock(void *ctx)
{
	struct elem *e = bpf_obj_new(typeof(*e));

	if (!e)
		return 0;
	bpf_spin_lock(&glock);
	bpf_list_push_back(&ghead, &e->node);
	bpf_spin_unlock(&glock);
	e->data = 2;		/* e is non-owning and died at the unlock */
	return 0;
}

char _license[] SEC("license") = "GPL";
