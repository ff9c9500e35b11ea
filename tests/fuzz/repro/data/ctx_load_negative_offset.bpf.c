#include "own.h"

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_id, struct pt_regs *regs, long id)
{
	return id == 0;
}
char _license[] SEC("license") = "GPL";
