// The same list, used correctly: accepted.
#include "own.h"

struct elem {
	int data;
	struct bpf_list_node node;
};

private(A) struct bpf_spin_lock glock;
private(A) struct bpf_list_head ghead __contains(elem, node);

SEC("tc")
int push_then_pop(void *ctx)
{
	struct elem *e = bpf_obj_new(typeof(*e));
	struct bpf_list_node *n;

	if (!e)
		return 0;
	e->data = 42;
	bpf_spin_lock(&glock);
	bpf_list_push_front(&ghead, &e->node);
	n = bpf_list_pop_back(&ghead);
	bpf_spin_unlock(&glock);
	if (n)
		bpf_obj_drop(container_of(n, struct elem, node));
	return 0;
}

char _license[] SEC("license") = "GPL";
