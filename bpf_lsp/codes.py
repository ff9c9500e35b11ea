"""Every diagnostic code, in one place: severity, the kernel's message, our message, docs, example, fix.

The verifier raises ``Finding(code, insn, args)``; it never writes English. The kernel's message
(``kernel``) is a template over the finding's args, so users can match a real load log; our
message (``message``) is a template over the *rendered* args (variable names, call names, lines),
filled in by ``bpf_lsp.diagnostics.render``. ``docs/diagnostics.md`` is generated from this table.
"""
from __future__ import annotations

from dataclasses import dataclass

DOCS_URL = "https://github.com/bpf-lsp/bpf-lsp/blob/main/docs/diagnostics.md"


@dataclass(frozen=True)
class Code:
    name: str
    severity: str          # error | warning | information
    kernel: str            # kernel verifier message template ({reg}, {arg}, {func}, {off}, ...)
    message: str           # our message template over rendered args
    summary: str           # one line: what it means
    why: str               # why the kernel rejects it
    example: str           # a minimal program showing it
    fix: str               # how to fix it
    fix_kind: str = ""     # quick fix offered: release | unlock | null_check | refcount | license | ""
    variants: tuple[tuple[str, str], ...] = ()   # (variant arg value, kernel template) alternatives

    @property
    def doc_url(self) -> str:
        return f"{DOCS_URL}#{self.name}"


_CODES = [
    Code("reference-leak", "error",
         "Unreleased reference id={ref} alloc_insn={alloc_insn}\nBPF_EXIT instruction in main prog would lead to reference leak",
         "{what} acquired by {acquire_call} on line {acquire_line} is never released on this path",
         "A reference (allocated object, acquired kernel object, ring-buffer record, socket) is still held "
         "when the program returns.",
         "Every reference must be released exactly once on every path before `exit`; otherwise the object "
         "would leak. The kernel reports it at the exit (`check_reference_leak`).",
         "struct elem *e = bpf_obj_new(typeof(*e));\nif (!e)\n\treturn 0;\nreturn 0;   /* e leaks */",
         "Release it on this path (`bpf_obj_drop`, the matching release kfunc, `bpf_ringbuf_discard`, "
         "`bpf_sk_release`), add it to a collection, or stash it in a map with `bpf_kptr_xchg`.", "release"),
    Code("use-after-release", "error",
         "R{reg} invalid mem access 'scalar'",
         "{var} is used after {release_call} on line {release_line} {released_words}",
         "A pointer is dereferenced after the reference it carried was released.",
         "Releasing a reference invalidates every copy of the pointer (`release_reference`): they all become "
         "unknown scalars.",
         "bpf_obj_drop(e);\ne->data = 1;",
         "Use the object before releasing it, or keep a reference (`bpf_refcount_acquire`)."),
    Code("non-owning-after-unlock", "error",
         "R{reg} invalid mem access 'scalar'",
         "{var} is a non-owning reference: {insert_call} gave the object to the collection on line "
         "{insert_line}, and {unlock_call} on line {unlock_line} invalidated {var}",
         "A non-owning reference is used after the lock protecting its collection was released.",
         "After an object is added to a list or rbtree, the program only has a non-owning reference, valid "
         "while the collection's `bpf_spin_lock` is held. `bpf_spin_unlock` invalidates all of them "
         "(`invalidate_non_owning_refs`).",
         "bpf_spin_lock(&lock);\nbpf_list_push_back(&head, &e->node);\nbpf_spin_unlock(&lock);\ne->data = 2;",
         "Finish using the object inside the critical section, or take a reference with "
         "`bpf_refcount_acquire` (the type needs a `struct bpf_refcount` field) before unlocking.", "refcount"),
    Code("invalid-deref", "error",
         "R{reg} invalid mem access '{type}'",
         "{var} is not a pointer the program may dereference here ({type})",
         "Memory is accessed through a value that is not a valid pointer.",
         "Only pointers the verifier can prove valid may be dereferenced.",
         "long x = 0;\n*(long *)x = 1;",
         "Dereference only pointers obtained from the context, a map lookup, an allocation or a kfunc."),
    Code("null-deref", "error",
         "R{reg} invalid mem access '{type}'",
         "{var} may be NULL here: check it after {null_source} on line {acquire_line}",
         "A pointer that may be NULL is dereferenced without a check.",
         "Functions marked KF_RET_NULL / RET_PTR_TO_*_OR_NULL may return NULL; the verifier requires a "
         "comparison with 0 before any access (all copies share an id, so one check refines them all).",
         "struct elem *e = bpf_obj_new(typeof(*e));\ne->data = 1;",
         "Add `if (!e) return 0;` right after the call.", "null_check"),
    Code("null-arg", "error",
         "Possibly NULL pointer passed to trusted arg{arg}",
         "{var} may be NULL when passed to {call}: check it after {null_source} on line {acquire_line}",
         "A pointer that may be NULL is passed to a kfunc argument that must not be NULL.",
         "Trusted and release arguments of kfuncs must be non-NULL (`check_kfunc_args`).",
         "struct task_struct *t = bpf_task_from_pid(1);\nbpf_task_release(t);",
         "Check the pointer for NULL before the call.", "null_check"),
    Code("null-ptr-arith", "error",
         "R{reg} pointer arithmetic on {type} prohibited, null-check it first",
         "{var} may be NULL: check it before computing addresses from it",
         "Pointer arithmetic on a pointer that may be NULL.",
         "The verifier cannot track a NULL pointer plus an offset, so it refuses the arithmetic.",
         "struct elem *e = bpf_obj_new(typeof(*e));\nstruct bpf_list_node *n = &e->node;",
         "Check for NULL first.", "null_check"),
    Code("not-referenced-or-trusted", "error",
         "R{reg} must be referenced or trusted",
         "{call} needs an owning reference, but {var} {state}",
         "A kfunc that takes ownership (or needs a trusted pointer) got a released, non-owning or "
         "untrusted pointer.",
         "Release kfuncs and kfuncs with trusted arguments accept only referenced or trusted pointers. A "
         "released pointer is a scalar; a non-owning reference cannot be dropped.",
         "bpf_obj_drop(e);\nbpf_obj_drop(e);",
         "Release each reference exactly once, and only references the program owns."),
    Code("release-unacquired", "error",
         "release kernel function {func} expects refcounted PTR_TO_BTF_ID",
         "{call} releases a reference, but {var} was never acquired by this program",
         "A release kfunc is called on a pointer the program holds no reference to.",
         "Only references taken by an acquire kfunc (or received as a `__ref` argument) may be released.",
         "SEC(\"tp_btf/task_newtask\")\nint BPF_PROG(p, struct task_struct *task)\n{\n\tbpf_task_release(task);\n}",
         "Release only what you acquired (`bpf_task_acquire` first), or drop the release."),
    Code("expected-allocated-object", "error",
         "arg#{arg} expected pointer to allocated object",
         "{call} needs an owning reference to a local object, but {var} {state}",
         "A collection insert (or drop) got a pointer that is not an owning reference to a program-local "
         "object, e.g. one already added to a collection.",
         "Adding a node moves ownership into the collection; afterwards the program holds only a non-owning "
         "reference, which cannot be added again.",
         "bpf_list_push_front(&head, &e->node);\nbpf_list_push_back(&head, &e->node);",
         "Add each owned object once; to put one object in two collections, take a second reference with "
         "`bpf_refcount_acquire`."),
    Code("allocated-not-referenced", "error",
         "allocated object must be referenced",
         "{call} needs an owning reference, but {var} carries none",
         "A local object pointer without a reference is passed where ownership is taken.",
         "Only owning references can be dropped or inserted.",
         "", "Pass the pointer returned by `bpf_obj_new` (or a collection removal)."),
    Code("lock-required", "error",
         "bpf_spin_lock at off={lock_off} must be held for {head_type}",
         "{call} needs {lock} held: the {head_type} {head} is protected by it",
         "A list/rbtree operation runs without the `bpf_spin_lock` that protects the head or root.",
         "Every graph operation needs the lock that sits beside the head/root in the same map value, global "
         "section or object (`check_reg_allocation_locked`).",
         "bpf_list_push_front(&ghead, &e->node);   /* glock not held */",
         "Wrap the operation in `bpf_spin_lock(&lock)` / `bpf_spin_unlock(&lock)`."),
    Code("wrong-lock", "error",
         "held lock and object are not in the same allocation\nbpf_spin_lock at off={lock_off} must be held for {head_type}",
         "{call} needs {lock}, but the lock held is {held} (taken on line {held_line})",
         "A graph operation runs while a different lock is held.",
         "The held lock must be the one in the same allocation as the head/root.",
         "bpf_spin_lock(&other_lock);\nbpf_list_push_front(&head, &e->node);",
         "Take the lock that protects this head/root."),
    Code("call-under-lock", "error",
         "function calls are not allowed while holding a lock",
         "{call} cannot be called while {lock} is held (taken on line {lock_line})",
         "A helper or kfunc other than the graph API, `bpf_refcount_acquire` and `bpf_spin_unlock` is "
         "called inside a `bpf_spin_lock` critical section (a second `bpf_spin_lock` included).",
         "Critical sections must be short and cannot sleep or take other locks; the verifier allows only "
         "the collection kfuncs there.",
         "bpf_spin_lock(&lock);\nbpf_obj_drop(obj);\nbpf_spin_unlock(&lock);",
         "Move the call after `bpf_spin_unlock`.", "unlock"),
    Code("lock-held-at-exit", "error",
         "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region",
         "the program returns while {lock} is held (taken on line {lock_line})",
         "A path returns without releasing the `bpf_spin_lock`.",
         "Locks must be released on every path before the program exits.",
         "bpf_spin_lock(&lock);\nif (cond)\n\treturn 1;\nbpf_spin_unlock(&lock);",
         "Call `bpf_spin_unlock` before this return.", "unlock"),
    Code("rcu-held-at-exit", "error",
         "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region",
         "the program returns inside the RCU read-side section opened on line {rcu_line}",
         "A path returns without `bpf_rcu_read_unlock`.",
         "RCU read-side sections must be closed on every path.",
         "bpf_rcu_read_lock();\nif (cond)\n\treturn 0;\nbpf_rcu_read_unlock();",
         "Call `bpf_rcu_read_unlock()` before this return.", "rcu_unlock"),
    Code("unlock-without-lock", "error",
         "bpf_spin_unlock without taking a lock",
         "{call} releases {lock}, but no lock is held here",
         "`bpf_spin_unlock` without a matching `bpf_spin_lock` on this path.",
         "The verifier tracks the one held lock per path.",
         "bpf_spin_unlock(&lock);",
         "Take the lock first, or remove the unlock."),
    Code("unlock-different-lock", "error",
         "bpf_spin_unlock of different lock",
         "{call} releases {lock}, but the lock held is {held} (taken on line {held_line})",
         "`bpf_spin_unlock` names a different lock than the one held.",
         "Lock and unlock must name the same lock.",
         "bpf_spin_lock(&a);\nbpf_spin_unlock(&b);",
         "Unlock the lock that was taken."),
    Code("unmatched-rcu-unlock", "error",
         "unmatched rcu read unlock",
         "bpf_rcu_read_unlock() without a matching bpf_rcu_read_lock()",
         "`bpf_rcu_read_unlock` outside an RCU read-side section.",
         "RCU sections must nest properly.",
         "bpf_rcu_read_unlock();",
         "Remove the unlock or add the lock."),
    Code("no-valid-spin-lock", "error",
         "map '{map}' has no valid bpf_spin_lock",
         "{map} has no usable bpf_spin_lock: {cause}",
         "The kernel could not build the BTF record of the map value or global section holding the lock.",
         "The kernel parses the object's BTF to find locks, list heads and their node types. When the type "
         "named in `__contains(T, field)` is only forward-declared in the object's BTF, the whole record is "
         "rejected and the lock is no longer known.",
         "private(A) struct bpf_spin_lock lock;\nprivate(A) struct bpf_list_head head __contains(elem, node);\n"
         "/* struct elem is never allocated, so its BTF is a forward declaration */",
         "Make the contained type complete in the object's BTF: allocate it with `bpf_obj_new`, or reference "
         "it from a function that takes `T *`.",
         variants=(("btf_map", "map '{map}' has to have BTF in order to use bpf_spin_lock"),)),
    Code("no-valid-kptr", "error",
         "R{reg} has no valid kptr",
         "{dest} is not a usable kptr field: {cause}",
         "`bpf_kptr_xchg` names a field the kernel does not know as a referenced kptr.",
         "The kernel records `__kptr` fields from the map value's BTF; a field whose pointee is only "
         "forward-declared (or not a kptr at all) is not in the record.",
         "struct map_value { struct elem __kptr *stash; };   /* struct elem only forward-declared */",
         "Make the pointee type complete in the object's BTF (e.g. a function taking `struct elem *`)."),
    Code("not-kptr-offset", "error",
         "off={off} doesn't point to kptr",
         "{dest} does not point at a `__kptr` field",
         "`bpf_kptr_xchg`'s first argument is not the address of a kptr field.",
         "The destination must be a `__kptr` field of a map value.",
         "bpf_kptr_xchg(&v->counter, e);",
         "Pass the address of the `__kptr` field."),
    Code("store-referenced-kptr", "error",
         "store to referenced kptr disallowed",
         "a referenced kptr field can only be written with bpf_kptr_xchg()",
         "A plain store into a `__kptr` field.",
         "Ownership of a referenced kptr must move atomically.",
         "v->stash = e;",
         "Use `old = bpf_kptr_xchg(&v->stash, e);` and release `old`."),
    Code("no-refcount-field", "error",
         "verifier bug: Couldn't find btf_record",
         "bpf_refcount_acquire() needs a struct bpf_refcount field in {type}",
         "`bpf_refcount_acquire` on a type without a `struct bpf_refcount` field.",
         "Only refcounted objects can have more than one owning reference.",
         "struct plain { long key; };\nm = bpf_refcount_acquire(n);",
         "Add `struct bpf_refcount ref;` to the type."),
    Code("graph-node-mismatch", "error",
         "operation on {head_type} expects arg#1 {node_type} at offset={node_off} in struct {value_type}, "
         "but arg is at offset={arg_off} in struct {arg_type}",
         "{head} holds {value_type} linked through its {node_type} at offset {node_off}, but {var} points "
         "at offset {arg_off} of {arg_type}",
         "The node passed to a collection is not the field named in `__contains`.",
         "The head's `__contains(T, field)` fixes which node field the collection links.",
         "bpf_list_push_back(&head, &e->other_node);",
         "Pass the node field named in the head's `__contains`."),
    Code("kfunc-not-allowed", "error",
         "calling kernel function {func} is not allowed",
         "{call} is not available to {prog_type} programs",
         "The kfunc is not registered for this program type.",
         "Kfunc sets are registered per program type.",
         "SEC(\"xdp\") ... bpf_cpumask_create();",
         "Use the kfunc from a program type that allows it."),
    Code("helper-not-allowed", "error",
         "program of this type cannot use helper {func}#{helper_id}",
         "{call} is not available to {prog_type} programs",
         "The helper is not one this program type may call.",
         "Each program type offers its own set of helpers (its get_func_proto()): packet helpers to "
         "packet programs, socket helpers to socket programs, and so on.",
         "SEC(\"raw_tp/tcp_probe\") ... bpf_get_socket_cookie(sk);",
         "Use a program type that offers the helper (a `tp_btf/` or `fentry/` program for a BTF "
         "pointer), or a helper this type offers."),
    Code("pointer-arith", "error",
         "R{reg} tried to subtract pointer from scalar",
         "{problem}",
         "Arithmetic on a pointer that the kernel does not allow.",
         "The verifier follows a pointer through additions and subtractions of numbers only, in 64 bits; "
         "any other operation would give an address it can no longer check.",
         "long n = 100 - (long)data;",
         "Do the arithmetic on offsets (numbers) and add the result to the pointer.", "",
         (("stack_sub", "R{reg} subtraction from stack pointer prohibited"),
          ("bitwise", "R{reg} bitwise operator {op} on pointer prohibited"),
          ("op", "R{reg} pointer arithmetic with {op} operator prohibited"),
          ("alu32", "R{reg} 32-bit pointer arithmetic prohibited"),
          ("ptr_ptr", "R{reg} pointer {op} pointer prohibited"),
          ("type", "R{reg} pointer arithmetic on {type} prohibited"))),
    Code("gpl-only", "error",
         "cannot call GPL-restricted function from non-GPL compatible program",
         "{problem}, and this program's license {license_words}",
         "A helper, kfunc or kernel type only GPL-compatible programs may use, in a program whose license "
         "is not.",
         "The kernel lets only programs whose `license` section is GPL-compatible (\"GPL\", \"Dual BSD/GPL\", "
         "...) call GPL-only helpers, call any kfunc or read kernel structures through BTF.",
         "char LICENSE[] SEC(\"license\") = \"Dual BSD\";\n... bpf_probe_read_kernel(&v, 8, ptr);",
         "Give the program a GPL-compatible license (`char LICENSE[] SEC(\"license\") = \"Dual BSD/GPL\";`), "
         "or use what does not need one.", "license",
         (("kfunc", "cannot call kernel function from non-GPL compatible program"),
          ("btf", "Cannot access kernel 'struct {type}' from non-GPL compatible program"))),
    Code("sleepable-call", "error",
         "helper call might sleep in a non-sleepable prog",
         "{call} may sleep, and {problem}",
         "A helper or kfunc that may sleep is called where the program must not sleep.",
         "Only a sleepable program (`uprobe.s/`, `fentry.s/`, `lsm.s/`, `syscall`, ...) may call a helper "
         "or kfunc that can sleep (a page fault while copying from user memory, an allocation), and "
         "never inside bpf_rcu_read_lock() or with preemption disabled.",
         "SEC(\"kprobe/do_sys_openat2\") ... bpf_copy_from_user(buf, sizeof(buf), ptr);",
         "Load the program as sleepable (its `.s` section), read user memory with bpf_probe_read_user() "
         "instead, or move the call out of the RCU or non-preemptible region.", "",
         (("helper_rcu", "sleepable helper {func}#{helper_id} in rcu_read_lock region"),
          ("helper_preempt", "sleepable helper {func}#{helper_id} in non-preemptible region"),
          ("kfunc", "program must be sleepable to call sleepable kfunc {func}"),
          ("kfunc_rcu", "kernel func {func} is sleepable within rcu_read_lock region"),
          ("kfunc_preempt", "kernel func {func} is sleepable within non-preemptible region"))),
    Code("helper-null-arg", "error",
         "Possibly NULL pointer passed to helper arg{arg}",
         "{var} may be NULL when passed to {call}",
         "A pointer that may be NULL is passed to a helper argument that must not be NULL.",
         "Helper arguments of pointer type must be non-NULL unless declared otherwise.",
         "bpf_ringbuf_submit(maybe_null, 0);",
         "Check the pointer for NULL before the call.", "null_check",
         # 6.18 trips an internal check first when the NULL-able pointer is a local object
         variants=(("local", "verifier bug: invalid PTR_TO_BTF_ID register for type match"),)),
    Code("release-non-referenced", "error",
         "R{reg} must be referenced when passed to release function",
         "{call} releases a reference, but {var} {state}",
         "A helper that releases a reference got a pointer that carries none.",
         "Release helpers need the pointer returned by the matching acquire.",
         "bpf_ringbuf_submit(ptr_from_elsewhere, 0);",
         "Release only what was acquired."),
    Code("tail-call-leak", "error",
         "tail_call would lead to reference leak",
         "bpf_tail_call() while {what} from line {acquire_line} is still held",
         "A tail call while a reference is held.",
         "The tail-called program cannot release the caller's references.",
         "e = bpf_obj_new(...); bpf_tail_call(ctx, &jmp, 0);",
         "Release references before the tail call.", "release"),
    Code("invalid-return", "error",
         "At program exit the register R0 is not a known value ({type})",
         "the program must return a number here, not {type}",
         "The return value of the program is not a scalar.",
         "Program return values are checked by type.",
         "return (long)ptr;",
         "Return an integer."),
    Code("uninitialized-register", "error",
         "R{reg} !read_ok",
         "a register is read before it is written (R{reg})",
         "A register is read before any value was written to it.",
         "The verifier rejects reads of uninitialized registers.",
         "", "Usually a compiler or inline-assembly problem."),
    Code("analysis-incomplete", "information",
         "",
         "the ownership analysis stopped after {detail}; results for this program are incomplete",
         "The verifier budget was exhausted before every path was explored.",
         "The kernel stops at 1,000,000 processed instructions; bpf-lsp has a configurable budget.",
         "", "Raise `verifierBudget` or `verifierTimeoutMs`, or simplify loops."),
    Code("unsupported", "information",
         "",
         "bpf-lsp does not model {what}; the rest of this program was not analysed",
         "An instruction or construct outside the modelled subset.",
         "bpf-lsp reports it instead of guessing.",
         "", "Run `bpf-lsp check --kernel` for the kernel's verdict."),
    Code("model-gap", "information",
         "",
         "bpf-lsp does not know {gap}, so it cannot check what this line does with it; "
         "nothing here is reported as an error",
         "A value comes from something outside bpf-lsp's model (a function without a prototype, a call "
         "into another file, an attach target missing from the kernel's BTF, the context of a section "
         "that names no program type); it is treated as unknown.",
         "bpf-lsp never turns what it does not know into an error: correct programs must stay clean. The "
         "program's verdict is `incomplete` when such a value reaches a check.",
         "SEC(\"fentry/not_a_kernel_function\")\nint BPF_PROG(f, struct file *file)\n{\n\treturn file->f_flags;\n}",
         "Link the program's other files (`bpf-lsp check --link`), or run `bpf-lsp check --kernel` for the "
         "kernel's verdict."),
    Code("file-too-large", "error",
         "",
         "the file is larger than bpf-lsp analyses ({detail})",
         "The document exceeds bpf-lsp's size bound.",
         "Huge files would make every keystroke slow; BPF sources are small.",
         "", "Split the file, or check it with `bpf-lsp check` if it really is one program."),
    Code("internal-error", "warning",
         "",
         "bpf-lsp could not analyse this program: {detail}",
         "bpf-lsp failed on this program; the rest of the file was analysed.",
         "This is a bug in bpf-lsp, not in your program.",
         "", "Please report it with the file; `bpf-lsp check --kernel` gives the kernel's verdict meanwhile."),
    Code("invalid-register", "error",
         "R{reg} is invalid",
         "the instruction names register r{reg}; BPF has r0 to r10",
         "An instruction uses a register number above 10.",
         "The kernel checks every register field (check_reg_arg).",
         "", "The object is corrupt or was not produced for BPF."),
    Code("invalid-ctx-access", "error",
         "invalid bpf_context access off={off} size={size}",
         "the program reads its context at offset {off}, outside the context",
         "A context access at an offset the program type does not have.",
         "Context accesses are checked per program type (is_valid_access).",
         "", "Access only the context's fields."),
    Code("alu-immediate", "error",
         "div by zero",
         "{problem}",
         "A division by the constant 0, or a shift by a constant the register does not have bits for.",
         "The kernel checks the constants an instruction carries: dividing by 0 or shifting a 64-bit "
         "register by 64 or more (a 32-bit one by 32) has no meaning.",
         "asm volatile(\"r0 /= 0\");",
         "Divide by a number that is not 0, shift by less than the register's width.", "",
         (("shift", "invalid shift {imm}"),)),
    Code("ctx-pointer-moved", "error",
         "dereference of modified ctx ptr R{reg} off={off} disallowed",
         "the context is read or written through a pointer moved {off} bytes from where the program got it",
         "A context access through a context pointer that was moved.",
         "The kernel rewrites each context access for the field it names, which it can only do when the "
         "instruction's own offset names it: the pointer must be the one the program was given.",
         "char *p = (char *)skb + 8;\nreturn *(__u32 *)p;",
         "Access the field directly (`skb->mark`), so the offset stays in the instruction.", "",
         (("negative", "negative offset ctx ptr R{reg} off={off} disallowed"),)),
    Code("object-error", "error",
         "",
         "the compiled object could not be analysed: {detail}",
         "The BPF object is malformed or uses a format bpf-lsp cannot read.",
         "", "", "Check the compiler and flags."),
]

_CODES += [
    Code("not-rcu-pointer", "error",
         "R{reg} must be a rcu pointer",
         "{call} needs a trusted or RCU-protected pointer, but {var} {state}",
         "A KF_RCU kfunc got a pointer that is neither trusted nor RCU-protected.",
         "Pointers loaded from arbitrary kernel struct fields are not known to stay alive; only trusted "
         "pointers and RCU-protected ones (inside an RCU read-side section) may be passed.",
         "bpf_task_acquire(task->last_wakee);",
         "Pass a trusted pointer (a program argument, a referenced object) or an RCU-protected field."),
    Code("helper-arg-type", "error",
         "R{reg} type={type} expected={expected}",
         "{call} needs {expected_words}, but {var} {state}",
         "A helper argument has the wrong kind of value (e.g. a released or maybe-NULL pointer).",
         "Helper arguments are checked against the helper's prototype (`check_reg_type`).",
         "bpf_ringbuf_submit(p, 0);\nbpf_ringbuf_submit(p, 0);",
         "Pass the value the helper expects: the pointer returned by the acquiring helper, checked for NULL.", "",
         (("from_mem", "Unsupported reg type {type} for bpf_dynptr_from_mem data"),)),
    Code("kfunc-arg-not-pointer", "error",
         "arg#{arg} pointer type STRUCT {btf_type} must point to scalar, or struct with scalar",
         "{call} needs a pointer to struct {btf_type}, but {var} {state}",
         "A kfunc argument that must be a kernel object pointer got a plain number, typically a "
         "pointer that was already released.",
         "Releasing a reference turns every copy of the pointer into an unknown scalar.",
         "bpf_task_release(t);\nbpf_task_release(t);",
         "Release each reference once; do not use a pointer after releasing or stashing it.",
         # a struct of numbers only is taken as plain memory (KF_ARG_PTR_TO_MEM), which a number is not
         variants=(("memory", "R{reg} type=scalar expected=fp"),)),
    Code("refcount-arg-invalid", "error",
         "arg#{arg} is neither owning or non-owning ref",
         "bpf_refcount_acquire() needs an owning or non-owning reference, but {var} {state}",
         "`bpf_refcount_acquire` on a pointer that is no longer a reference.",
         "Non-owning references die at `bpf_spin_unlock`; released pointers are scalars.",
         "bpf_spin_unlock(&lock);\nm = bpf_refcount_acquire(n);",
         "Take the new reference inside the critical section.", "refcount"),
    Code("modified-null-ptr", "error",
         "dereference of modified {type} ptr R{reg} off={off} disallowed",
         "{var} may be NULL: check it before taking the address of a field",
         "A maybe-NULL pointer with an offset is passed on.",
         "The verifier cannot NULL-check a pointer that was moved off its base.",
         "n = bpf_rbtree_first(&root);\nbpf_rbtree_remove(&root, n);",
         "Check the pointer for NULL first.", "null_check"),
    Code("nonzero-offset-release", "error",
         "R{reg} must have zero offset when passed to release func or trusted arg to kfunc",
         "{call} needs the object's own address, but {var} points into the middle of it",
         "A release function got an interior pointer.",
         "Releases need the pointer the acquire returned.",
         "bpf_obj_drop(&e->node);",
         "Pass the object pointer (use container_of)."),
    Code("wrong-drop-kfunc", "error",
         "arg#{arg} expected for {expected}()",
         "{var} must be released with {expected}()",
         "A per-CPU object released with bpf_obj_drop, or a plain one with bpf_percpu_obj_drop.",
         "Per-CPU and plain local objects come from different allocators.",
         "p = bpf_percpu_obj_new(T);\nbpf_obj_drop(p);",
         "Use the drop that matches the allocation."),
    Code("obj-new-not-struct", "error",
         "bpf_obj_new/bpf_percpu_obj_new type ID argument must be of a struct",
         "bpf_obj_new() can only allocate structs",
         "bpf_obj_new of a non-struct type.",
         "Local objects are structs.",
         "long *p = bpf_obj_new(long);",
         "Wrap the value in a struct."),
    Code("kptr-size", "error",
         "kptr access size must be BPF_DW",
         "a __kptr field must be read or written as a whole 8-byte pointer",
         "A partial load or store of a kptr field.",
         "kptr fields are accessed only as whole pointers.",
         "u32 low = *(u32 *)&v->stash;",
         "Access the field as a pointer."),
    Code("kptr-misaligned", "error",
         "kptr access misaligned expected={expected} off={off}",
         "the access touches the middle of a __kptr field (it starts at offset {expected})",
         "A load or store overlaps a kptr field without starting at it.",
         "kptr fields are accessed only as whole, aligned pointers.",
         "*(u32 *)((void *)&v->stash + 4);", "Access the kptr field as a whole pointer."),
    Code("kptr-var-off", "error",
         "kptr access cannot have variable offset",
         "a map value holding __kptr fields is accessed at a variable offset",
         "A variable-offset access into a map value that contains kptrs.",
         "The verifier must know the access does not touch a kptr.",
         "*(u8 *)((void *)v + (len & 7));", "Use constant offsets in values that hold kptrs."),
    Code("kptr-indirect", "error",
         "kptr cannot be accessed indirectly by helper",
         "a __kptr field cannot be passed to a helper as memory",
         "A helper gets a pointer to a kptr field.",
         "Only bpf_kptr_xchg may touch a kptr field's memory.",
         "bpf_probe_read_kernel(&v->stash, 8, src);", "Use bpf_kptr_xchg."),
    Code("kptr-unreferenced", "error",
         "off={off} kptr isn't referenced kptr",
         "{dest} is an untrusted kptr (__kptr_untrusted): bpf_kptr_xchg() needs a referenced __kptr field",
         "`bpf_kptr_xchg` on an unreferenced kptr field.",
         "Only referenced kptrs hold ownership.",
         "struct map_value { struct task_struct __kptr_untrusted *t; };",
         "Declare the field `__kptr`."),
    Code("kptr-type-mismatch", "error",
         "invalid kptr access, R{reg} type={type} expected={expected}",
         "{var} is a {got}, but the kptr field holds {want}",
         "The pointer moved into a kptr field has the wrong type.",
         "A kptr field holds objects of one type.",
         "bpf_kptr_xchg(&v->elem_field, other_obj);",
         "Stash an object of the field's type."),
    Code("special-field-access", "error",
         "{field} cannot be accessed directly by load/store",
         "{field} fields may only be used through their kfuncs/helpers, not read or written directly",
         "A direct load or store touches a bpf_spin_lock, list/rbtree head or node.",
         "The kernel owns these fields' contents.",
         "v->lock.val = 0;",
         "Use bpf_spin_lock/unlock and the list/rbtree kfuncs.",
         variants=(("object", "direct access to {field} is disallowed"),)),
    Code("prog-btf-rejected", "error",
         "bpf_obj_new/bpf_percpu_obj_new requires prog BTF",
         "the kernel will reject this object's BTF ({cause}), and without BTF bpf_obj_new() cannot work",
         "The object's BTF has a struct the kernel refuses, so it loads without BTF.",
         "The kernel validates every struct with graph fields when the BTF is loaded "
         "(btf_parse_struct_metas): a head without a lock, or a node for both a list and an rbtree "
         "without a bpf_refcount, rejects the whole BTF; libbpf then loads the program without it.",
         "struct node { struct bpf_list_node l; struct bpf_rb_node r; };   /* no bpf_refcount */",
         "Fix the struct named in the message."),
    Code("struct-ops-member", "error",
         "attach to unsupported member {member} of struct {type}",
         "struct {type} has no BPF-implementable member '{member}'",
         "A struct_ops program implements a member the kernel does not let BPF implement.",
         "Only members with a cfi stub in the kernel can be BPF programs (bpf_struct_ops_supported).",
         "SEC(\".struct_ops\") struct Qdisc_ops q = { .peek = (void *)my_peek };",
         "Remove the member; the kernel provides it."),
    Code("ref-arg-tail-call", "error",
         "program with __ref argument cannot tail call",
         "a struct_ops member that receives a referenced argument cannot use bpf_tail_call()",
         "bpf_tail_call in a program whose member has a `__ref` argument.",
         "The referenced argument could not be released by the tail-called program "
         "(check_struct_ops_btf_id).",
         "bpf_tail_call(ctx, &jmp_table, 0);   /* in .enqueue */", "Remove the tail call."),
    Code("ctx-ref-released", "error",
         "invalid bpf_context access off={off}. Reference may already be released",
         "the referenced argument is read from the context after its reference was released "
         "(or in a global function, which never receives it)",
         "A `__ref` struct_ops argument is read again after it was dropped or stashed.",
         "Each read of the argument carries its one reference; once released it cannot come back "
         "(__check_ctx_access).",
         "bpf_qdisc_skb_drop(skb, to_free);\nreturn ctx[0]->len;",
         "Keep using the pointer you read before releasing it, or do not release it yet."),
    Code("struct-ops-return", "error",
         "At program exit the register R0 is not a known value ({type})",
         "this member must return a {want} pointer it owns, or NULL; it returns something else",
         "A pointer-returning struct_ops member returns a pointer it does not own.",
         "The kernel takes over the returned reference (check_return_code): it must be a referenced "
         "pointer of the member's return type, or 0.",
         "return bpf_list_front(&q)->skb;   /* not owned */",
         "Return a pointer taken with bpf_kptr_xchg / a removal kfunc, or NULL.",
         variants=(("scalar", "At program exit the register R0 has unknown scalar value should have been in [0, 0]"),
                   ("const", "At program exit the register R0 has smin={smin} smax={smax} should have been in [0, 0]"))),
    Code("kfunc-arg-btf-mismatch", "error",
         "kernel function {func} args#{arg} expected pointer to STRUCT {want} but R{reg} has a pointer to STRUCT {got}",
         "{call} takes a struct {want}, but {var} is a struct {got}",
         "A release kfunc for one type is called on another.",
         "Release kfuncs match their argument type strictly.",
         "bpf_task_release(skb);", "Use the release kfunc for this type."),
    Code("kernel-store", "error",
         "no write support to {struct} at off {off}",
         "this field of struct {struct} cannot be written by BPF programs",
         "A store into a kernel object field the kernel does not let BPF write.",
         "Kernel objects are read-only except fields a struct_ops type whitelists (btf_struct_access).",
         "skb->mark = 1;   /* in a qdisc */", "Write only the allowed fields.",
         variants=(("read_only", "only read is supported"),)),
    Code("graph-field-not-found", "error",
         "{field} not found at offset={off}",
         "the argument does not point at a {field} (offset {off} of its value is something else)",
         "A list/rbtree kfunc got a pointer that is not at a head/root or node field.",
         "Graph kfuncs need the exact field named in the type's BTF.",
         "bpf_list_push_back(&v->not_a_head, &e->node);",
         "Pass &value->head (or &obj->node).", "",
         (("var_off_root", "R{reg} doesn't have constant offset. {field} has to be at the constant offset"),
          ("var_off_node", "variable ptr_ access var_off=(0x0; 0xffffffff) disallowed"))),
    Code("tracing-graph", "error",
         "tracing progs cannot use bpf_{{list_head,rb_root}} yet",
         "{prog_type} programs cannot use maps holding a bpf_list_head or bpf_rb_root",
         "A kprobe/tracepoint/perf/raw_tp program uses a map with a list or rbtree.",
         "The kernel forbids graph collections in tracing programs (check_map_prog_compatibility).",
         "SEC(\"raw_tp/...\") ... bpf_spin_lock(&glock);",
         "Use tp_btf, fentry or a non-tracing program type."),
    Code("lock-offset", "error",
         "off {off} doesn't point to 'struct bpf_spin_lock' that is at {lock_off}",
         "the argument is not the bpf_spin_lock field of its map value (that is at offset {lock_off})",
         "bpf_spin_lock/unlock on an address that is not the lock field.",
         "The lock must be the struct bpf_spin_lock field itself.",
         "bpf_spin_lock((void *)v);",
         "Pass &v->lock."),
    Code("preempt-at-exit", "error",
         "BPF_EXIT instruction in main prog cannot be used inside bpf_preempt_disable-ed region",
         "the program returns with preemption disabled (bpf_preempt_disable() on line {lock_line})",
         "A path returns without bpf_preempt_enable().",
         "Preemption must be re-enabled on every path.",
         "bpf_preempt_disable();\nif (x)\n\treturn 0;",
         "Call bpf_preempt_enable() before returning."),
    Code("throw-leak", "error",
         "bpf_throw would lead to reference leak",
         "bpf_throw() while {what} acquired on line {acquire_line} is still held",
         "An exception is thrown while a reference is held.",
         "Exceptions unwind without releasing references.",
         "e = bpf_obj_new(T);\nbpf_throw(0);",
         "Release references before bpf_throw().", "release"),
    Code("throw-restricted", "error",
         "bpf_throw kfunc (insn {throw_insn}) cannot be called from callback subprog {subprog}",
         "bpf_throw() cannot be called here: {where}",
         "bpf_throw inside a callback (bpf_loop, bpf_for_each_map_elem, rbtree `less`, timers) or inside an "
         "RCU read-side section, a spin-locked region or a preemption-disabled region.",
         "An exception unwinds the program's frames without running the code that would leave these regions "
         "or return from the helper that called the callback.",
         "static int cb(u32 i, void *ctx)\n{\n\tbpf_throw(0);\n\treturn 0;\n}",
         "Return an error code from the callback and throw in the caller, after the region is closed.", "",
         (("rcu", "bpf_throw cannot be used inside bpf_rcu_read_lock-ed region"),
          ("lock", "bpf_throw cannot be used inside bpf_spin_lock-ed region"),
          ("preempt", "bpf_throw cannot be used inside bpf_preempt_disable-ed region"))),
    Code("rbtree-cb-remove", "error",
         "bpf_rbtree_remove not allowed in rbtree cb",
         "the rbtree `less` callback cannot remove nodes",
         "bpf_rbtree_remove inside the callback of bpf_rbtree_add.",
         "The callback runs while the tree is being modified.",
         "", "Only compare the two nodes in `less`."),
    Code("rbtree-cb-lock", "error",
         "can't spin_{{lock,unlock}} in rbtree cb",
         "the rbtree `less` callback cannot take or release locks",
         "bpf_spin_lock/unlock inside the callback of bpf_rbtree_add.",
         "The callback runs with the tree's lock held.",
         "", "Only compare the two nodes in `less`."),
    Code("rcu-nested", "error",
         "nested rcu read lock (kernel function bpf_rcu_read_lock)",
         "bpf_rcu_read_lock() inside an RCU read-side section opened on line {rcu_line}",
         "bpf_rcu_read_lock twice without unlocking.",
         "Linux 6.18 does not allow nesting RCU read-side sections in BPF programs.",
         "bpf_rcu_read_lock();\nbpf_rcu_read_lock();",
         "Remove the inner lock."),
    Code("dynptr-uninit", "error",
         "Expected an initialized dynptr as arg #{arg}",
         "the bpf_dynptr passed to {call} is not initialized here (never created on this path, or already "
         "submitted, discarded or overwritten)",
         "A bpf_dynptr is used before it is created or after it was released.",
         "A dynptr lives in two stack slots that only its constructors (bpf_dynptr_from_mem, "
         "bpf_ringbuf_reserve_dynptr, bpf_dynptr_from_skb, bpf_dynptr_clone, ...) initialise; submitting, "
         "discarding or overwriting it destroys it (`is_dynptr_reg_valid_init`).",
         "struct bpf_dynptr ptr;\nbpf_dynptr_read(buf, 8, &ptr, 0, 0);",
         "Create the dynptr first on every path, and do not use it after bpf_ringbuf_submit_dynptr/discard_dynptr."),
    Code("dynptr-overwrite", "error",
         "cannot overwrite referenced dynptr",
         "this overwrites the ring-buffer bpf_dynptr reserved on line {acquire_line} before it is submitted "
         "or discarded",
         "A store or a dynptr constructor overwrites a dynptr that holds a ring-buffer reservation.",
         "The reservation would be lost: a referenced dynptr must be submitted or discarded first "
         "(`destroy_if_dynptr_stack_slot`).",
         "bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &ptr);\nbpf_dynptr_from_mem(buf, 8, 0, &ptr);",
         "Submit or discard the dynptr (bpf_ringbuf_submit_dynptr / bpf_ringbuf_discard_dynptr) before reusing "
         "its stack slots."),
    Code("dynptr-release-unacquired", "error",
         "arg {regno} is an unacquired reference",
         "{call} releases a bpf_dynptr that holds no ring-buffer reservation here (never reserved on this "
         "path, or already submitted or discarded)",
         "bpf_ringbuf_submit_dynptr/discard_dynptr on a dynptr without a reservation.",
         "Only a dynptr from bpf_ringbuf_reserve_dynptr holds a reference, and it can be released once.",
         "bpf_ringbuf_discard_dynptr(&ptr, 0);\nbpf_ringbuf_discard_dynptr(&ptr, 0);",
         "Release each reserved dynptr exactly once.", "",
         (("const", "cannot release unowned const bpf_dynptr"),)),
    Code("dynptr-arg", "error",
         "arg#{arg} expected pointer to stack or const struct bpf_dynptr",
         "{call} needs a pointer to a struct bpf_dynptr on the stack, at a constant offset that is a multiple "
         "of 8",
         "A dynptr argument is not a dynptr on the stack.",
         "Dynptrs exist only on the program's stack (or as the const dynptr a callback receives); the "
         "verifier tracks them per 8-byte stack slot (`dynptr_get_spi`).",
         "bpf_dynptr_from_mem(buf, 8, 0, map_value);",
         "Declare the struct bpf_dynptr as a local variable and pass its address.", "",
         (("helper", "R{reg} type={type} expected=fp, dynptr_ptr"),
          ("negative", "negative offset dynptr_ptr ptr R{reg} off={off} disallowed"),
          ("modified", "dereference of modified dynptr_ptr ptr R{reg} off={off} disallowed"),
          ("const_init", "Dynptr has to be an uninitialized dynptr"),
          ("var_off", "dynptr has to be at a constant offset"),
          ("offset", "cannot pass in dynptr at an offset={off}"))),
    Code("stack-object-access", "error",
         "invalid read from stack off {off}+0 size {size}",
         "the bytes of {object} on the stack are read or written directly; only its own functions may do that",
         "A load or a helper's memory argument touches the stack slots of a dynptr or an iterator.",
         "The kernel keeps a dynptr's or an open-coded iterator's state in its stack slots and forbids "
         "reading or overwriting them as plain memory.",
         "struct bpf_dynptr ptr;\nbpf_dynptr_from_mem(buf, 8, 0, &ptr);\nval = *(int *)&ptr;",
         "Read the data with bpf_dynptr_read or a slice (bpf_dynptr_data), or the iterator's element with its "
         "`_next`; keep other data out of these slots.", "",
         (("helper_read", "invalid read from stack R{reg} off {off}+0 size {size}"),
          ("write", "potential write to dynptr at off={off} disallowed"))),
    Code("iter-uninit", "error",
         "expected an initialized {iter} as arg #0",
         "{call} needs an iterator created by its `_new` on this path (it was never created, or was already "
         "destroyed)",
         "An open-coded iterator's `_next` or `_destroy` is called on a stack slot that holds no live iterator.",
         "Iterator state lives in its stack slots from `_new` to `_destroy` (`is_iter_reg_valid_init`).",
         "struct bpf_iter_num it;\nbpf_iter_num_destroy(&it);",
         "Call the iterator's `_new` first, and `_destroy` it exactly once.", "",
         (("new", "expected uninitialized {iter} as arg #0"),)),
    Code("invalid-sock-access", "error",
         "R{reg} invalid sock access off={off} size={size}",
         "reading {size} bytes at offset {off} of struct {view} is not allowed",
         "A load from a `struct bpf_sock` at an offset or with a size the kernel does not translate.",
         "`struct bpf_sock` is a view: the kernel rewrites each field read into a read of the real socket, "
         "so only its fields at their own offsets (some also narrower) can be read; a socket that may not be a "
         "full one (`skb->sk`, `bpf_skc_lookup_tcp`) has only the `sock_common` fields (bpf_sock_is_valid_access).",
         "struct bpf_sock *sk = skb->sk;\nif (sk)\n\treturn sk->type;   /* needs bpf_sk_fullsock(sk) */",
         "Read the field at its own offset and size; call `bpf_sk_fullsock()` before reading fields of a full "
         "socket.", "",
         (("common", "R{reg} invalid sock_common access off={off} size={size}"),
          ("tcp", "R{reg} invalid tcp_sock access off={off} size={size}"))),
    Code("exception-callback", "error",
         "exception cb only supports single integer argument",
         "the exception callback {problem}",
         "The function a program names with `__exception_cb(fn)` breaks a rule of exception callbacks.",
         "After `bpf_throw()` the kernel unwinds the program and calls its exception callback with the cookie "
         "instead of returning; it verifies the callback alone, as a global `int fn(u64 cookie)` that nothing "
         "else calls (one per program).",
         "__noinline int on_throw(u64 cookie, int extra) { return 0; }\n\nSEC(\"tc\")\n__exception_cb(on_throw)\n"
         "int prog(struct __sk_buff *ctx) { bpf_throw(1); return 0; }",
         "Declare it as a global `int fn(u64 cookie)`, name one per program, and never call it yourself.", "",
         (("multiple", "multiple exception callback tags for main subprog"),
          ("missing", "exception callback '{func}' could not be found in BTF"),
          ("static", "exception callback '{func}' must have global linkage"),
          ("direct_call", "insn {insn_idx} cannot call exception cb directly"))),
    Code("global-func-return", "error",
         "Global function {func}() doesn't return scalar. Only those are supported.",
         "global function {call} must return an integer",
         "A global (non-static) BPF function returns a pointer, a struct or nothing.",
         "The kernel verifies each global function once, on its own, from its BTF prototype; the caller "
         "only learns the return value is a number, so nothing else can be returned.",
         "__noinline void *lookup(int k) { return 0; }",
         "Return an integer, or make the function `static` so it is verified inline with its caller.", ""),
    Code("ld-abs-restricted", "error",
         "BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region",
         "this packet load (a BPF_LD_ABS/IND instruction) {problem}",
         "A legacy packet load (`load_byte()`/`load_half()`/`load_word()`, BPF_LD_ABS or BPF_LD_IND) where "
         "the kernel forbids it.",
         "The instruction ends the program at run time when the offset is outside the packet, without "
         "releasing references or leaving locked, RCU or preemption-disabled regions, so none may be "
         "open; it also reads the packet through the context in R6 (check_ld_abs).",
         "struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t), -1, 0);\nx = load_byte(skb, 0);",
         "Release the reference or leave the region first, or read the packet with bpf_skb_load_bytes().", "",
         (("refs", "BPF_LD_[ABS|IND] cannot be mixed with socket references"),
          ("rcu", "BPF_LD_[ABS|IND] cannot be used inside bpf_rcu_read_lock-ed region"),
          ("preempt", "BPF_LD_[ABS|IND] cannot be used inside bpf_preempt_disable-ed region"),
          ("callback", "cannot use BPF_LD_[ABS|IND] within callback"),
          ("prog_type", "BPF_LD_[ABS|IND] instructions not allowed for this program type"),
          ("ctx", "at the time of BPF_LD_ABS|IND R6 != pointer to skb"))),
    Code("btf-mem-access", "error",
         "access beyond the end of member {member} (mend:{mend}) in struct {struct} with off {off} size {size}",
         "{call} {problem}",
         "A helper reads past the end of a kernel struct's field, or writes into a kernel object.",
         "A pointer to a kernel object may be passed where a helper reads memory, but only within the field "
         "it points into (btf_struct_walk); kernel objects are never written through helpers.",
         "bpf_strncmp(task->comm, 17, \"foo\");   /* comm is char[16] */",
         "Pass the field's own size (`sizeof(task->comm)`); copy into a buffer of your own to write.", "",
         (("write", "{func}() may write into memory pointed by R{reg} type={type}"),)),
    Code("rdonly-write", "error",
         "R{reg} cannot write into rdonly_mem",
         "{problem}",
         "A write into read-only memory: a `bpf_dynptr_slice()` of packet data, or a writable slice where "
         "the program type may not write packets.",
         "`bpf_dynptr_slice()` may return a pointer into the caller's buffer or straight into the packet, "
         "so it is read-only; `bpf_dynptr_slice_rdwr()` needs a program type that may change packet data.",
         "hdr = bpf_dynptr_slice(&ptr, 0, buf, sizeof(buf));\nif (hdr)\n\thdr->h_proto = 1;",
         "Use `bpf_dynptr_slice_rdwr()` (in tc or XDP programs) or `bpf_dynptr_write()` to change the data.", "",
         (("prog", "the prog does not allow writes to packet data"),)),
    Code("callback-return", "error",
         "At callback return the register R0 has smin={smin} smax={smax} should have been in [0, 1]",
         "this callback of {call} must return 0 or 1, but returns {smin}..{smax} here",
         "A bpf_loop, bpf_user_ringbuf_drain or rbtree `less` callback returns something other than 0 or 1.",
         "The helper reads the callback's return value as continue (0) or stop (1); `less` as a boolean, so the "
         "kernel checks the range at the callback's exit.",
         "static long cb(u32 i, void *ctx)\n{\n\treturn 2;\n}",
         "Return 0 to go on or 1 to stop.", ""),
    Code("size-not-constant", "error",
         "R{reg} must be a known constant",
         "the size passed to {call} must be a constant the verifier knows",
         "A kfunc size argument marked `__szk` (constant size) gets a value known only at run time.",
         "The returned slice's size becomes part of its type (`bpf_dynptr_slice`), so the verifier needs it "
         "as a constant (check_kfunc_args).",
         "hdr = bpf_dynptr_slice(&ptr, 0, buf, len);   /* len is a variable */",
         "Pass a constant such as `sizeof(*hdr)`.", ""),
    Code("map-func-mismatch", "error",
         "cannot pass map_type {map_type} into func {func}#{helper_id}",
         "map '{map}' cannot be used with {call}: its map type works only with its own helpers",
         "A map is passed to a helper its type does not support (e.g. bpf_map_lookup_elem on a task storage "
         "or ring-buffer map).",
         "Some map types are reached only through their own helpers (check_map_func_compatibility).",
         "bpf_map_lookup_elem(&task_storage_map, &key);",
         "Use the map type's helpers (bpf_task_storage_get, bpf_ringbuf_reserve, ...)."),
    Code("stack-out-of-bounds", "error",
         "invalid {direction} stack R{reg} off={off} size={size}",
         "{call} {verb} {size} bytes at fp{off}, past the stack frame (fp-512 up to fp)",
         "A helper is given stack memory and a size that together run past the program's stack frame.",
         "A helper reads or writes as many bytes as its size argument says, starting at the pointer; on the "
         "stack they must lie between fp-512 and fp (check_stack_access_within_bounds). A buffer at the top "
         "of the frame has only its own size above it.",
         "char buf[16];\nbpf_probe_read_kernel(buf, 64, src);   /* 64 bytes into 16 */",
         "Pass the buffer's size (`sizeof(buf)`), or make the buffer as large as the size."),
    Code("size-out-of-range", "error",
         "R{reg} unbounded memory access, use 'var &= const' or 'if (var < const)'",
         "the size passed to {call} {problem}",
         "A helper's size argument is a variable whose range the verifier refuses: it has no upper bound, "
         "it may be negative, or it may be 0 where the helper needs at least one byte.",
         "The kernel checks a size that is not a constant by its range (check_mem_size_reg): its smallest "
         "value must not be negative, nor 0 unless the helper takes an empty buffer; its largest must be "
         "below 512 MiB, and the memory must hold that many bytes. A comparison or a mask before the call "
         "gives it such a range; a value stored and read back keeps it.",
         "__u32 len = bpf_get_prandom_u32();\nbpf_probe_read_kernel(buf, len, src);   /* len has no bound */",
         "Bound it before the call (`if (len > sizeof(buf)) return 0;` or `len &= sizeof(buf) - 1;`); use an "
         "unsigned type, or check `len > 0` where 0 is refused.",
         variants=(("negative", "R{reg} min value is negative, either use unsigned or 'var &= const'"),
                   ("zero", "R{reg} invalid zero-sized read: u64=[{umin},{umax}]"))),
    Code("map-value-out-of-bounds", "error",
         "invalid access to map value, value_size={value_size} off={off} size={size}",
         "{problem}",
         "A load, a store or a helper's memory argument reaches outside a map value (an index past the end of "
         "an array in the value, a negative offset, a size larger than what is left).",
         "Every access through a map value pointer must lie inside the value, whose size the map's BTF "
         "gives (check_map_access); at a variable offset, for the offset's smallest and largest value "
         "(check_mem_region_access).",
         "__u64 *v = bpf_map_lookup_elem(&one_u64_map, &key);\nif (v)\n\tv[1] = 0;   /* value_size=8 off=8 */",
         "Index inside the value (check the index against its array size), or declare a larger value type.",
         variants=(("unbounded", "R{reg} unbounded memory access, make sure to bounds check any such access"),
                   ("negative", "R{reg} min value is negative, either use unsigned index or do a if (index >=0) check."),
                   ("math", "math between map_value pointer and register with unbounded min value is not allowed"))),
    Code("packet-out-of-bounds", "error",
         "invalid access to packet, off={off} size={size}, R{reg}(id=0,off={off},r={range})\nR{reg} offset is outside of the packet",
         "this accesses packet bytes {off} to {last}, but a comparison with data_end on this path proves only "
         "the first {range} there",
         "A load or store through a packet pointer reaches past the bytes a comparison with `data_end` has "
         "proven to be there.",
         "The verifier knows a packet's length only from comparisons of packet pointers with `data_end` "
         "(find_good_pkt_pointers); every access must lie inside what such a comparison covered on its path "
         "(check_packet_access).",
         "struct ethhdr *eth = data;\nif (data + 1 > data_end)\n\treturn XDP_DROP;\nreturn eth->h_proto;   /* 2 bytes at offset 12 */",
         "Compare the end of what you read with `data_end` first: `if ((void *)(eth + 1) > data_end) return XDP_DROP;`."),
    Code("mem-out-of-bounds", "error",
         "invalid access to memory, mem_size={mem_size} off={off} size={size}",
         "this accesses {size} bytes at offset {off} of memory that is {mem_size} bytes long",
         "An access beyond the size of a memory region whose size the verifier knows (a ring-buffer record, "
         "a dynptr slice).",
         "The kernel checks every access against the region's size (`check_mem_region_access`).",
         "char *p = bpf_dynptr_data(&ptr, 0, 4);\nif (p)\n\tp[5] = 0;",
         "Ask for a larger region, or stay inside it."),
]

CODES: dict[str, Code] = {c.name: c for c in _CODES}


# The names emitters and handlers use (one constant per code; a test checks they match the table).
REFERENCE_LEAK = "reference-leak"
USE_AFTER_RELEASE = "use-after-release"
NON_OWNING_AFTER_UNLOCK = "non-owning-after-unlock"
INVALID_DEREF = "invalid-deref"
NULL_DEREF = "null-deref"
NULL_ARG = "null-arg"
NULL_PTR_ARITH = "null-ptr-arith"
NOT_REFERENCED_OR_TRUSTED = "not-referenced-or-trusted"
RELEASE_UNACQUIRED = "release-unacquired"
EXPECTED_ALLOCATED_OBJECT = "expected-allocated-object"
ALLOCATED_NOT_REFERENCED = "allocated-not-referenced"
LOCK_REQUIRED = "lock-required"
WRONG_LOCK = "wrong-lock"
CALL_UNDER_LOCK = "call-under-lock"
LOCK_HELD_AT_EXIT = "lock-held-at-exit"
RCU_HELD_AT_EXIT = "rcu-held-at-exit"
UNLOCK_WITHOUT_LOCK = "unlock-without-lock"
UNLOCK_DIFFERENT_LOCK = "unlock-different-lock"
UNMATCHED_RCU_UNLOCK = "unmatched-rcu-unlock"
NO_VALID_SPIN_LOCK = "no-valid-spin-lock"
NO_VALID_KPTR = "no-valid-kptr"
NOT_KPTR_OFFSET = "not-kptr-offset"
STORE_REFERENCED_KPTR = "store-referenced-kptr"
NO_REFCOUNT_FIELD = "no-refcount-field"
GRAPH_NODE_MISMATCH = "graph-node-mismatch"
KFUNC_NOT_ALLOWED = "kfunc-not-allowed"
HELPER_NOT_ALLOWED = "helper-not-allowed"
SLEEPABLE_CALL = "sleepable-call"
GPL_ONLY = "gpl-only"
POINTER_ARITH = "pointer-arith"
HELPER_NULL_ARG = "helper-null-arg"
RELEASE_NON_REFERENCED = "release-non-referenced"
TAIL_CALL_LEAK = "tail-call-leak"
INVALID_RETURN = "invalid-return"
UNINITIALIZED_REGISTER = "uninitialized-register"
ANALYSIS_INCOMPLETE = "analysis-incomplete"
UNSUPPORTED = "unsupported"
MODEL_GAP = "model-gap"
FILE_TOO_LARGE = "file-too-large"
INTERNAL_ERROR = "internal-error"
INVALID_REGISTER = "invalid-register"
INVALID_CTX_ACCESS = "invalid-ctx-access"
CTX_POINTER_MOVED = "ctx-pointer-moved"
ALU_IMMEDIATE = "alu-immediate"
OBJECT_ERROR = "object-error"
NOT_RCU_POINTER = "not-rcu-pointer"
HELPER_ARG_TYPE = "helper-arg-type"
KFUNC_ARG_NOT_POINTER = "kfunc-arg-not-pointer"
REFCOUNT_ARG_INVALID = "refcount-arg-invalid"
MODIFIED_NULL_PTR = "modified-null-ptr"
NONZERO_OFFSET_RELEASE = "nonzero-offset-release"
WRONG_DROP_KFUNC = "wrong-drop-kfunc"
OBJ_NEW_NOT_STRUCT = "obj-new-not-struct"
KPTR_SIZE = "kptr-size"
KPTR_MISALIGNED = "kptr-misaligned"
KPTR_VAR_OFF = "kptr-var-off"
KPTR_INDIRECT = "kptr-indirect"
KPTR_UNREFERENCED = "kptr-unreferenced"
KPTR_TYPE_MISMATCH = "kptr-type-mismatch"
SPECIAL_FIELD_ACCESS = "special-field-access"
PROG_BTF_REJECTED = "prog-btf-rejected"
STRUCT_OPS_MEMBER = "struct-ops-member"
REF_ARG_TAIL_CALL = "ref-arg-tail-call"
CTX_REF_RELEASED = "ctx-ref-released"
STRUCT_OPS_RETURN = "struct-ops-return"
KFUNC_ARG_BTF_MISMATCH = "kfunc-arg-btf-mismatch"
KERNEL_STORE = "kernel-store"
GRAPH_FIELD_NOT_FOUND = "graph-field-not-found"
TRACING_GRAPH = "tracing-graph"
LOCK_OFFSET = "lock-offset"
PREEMPT_AT_EXIT = "preempt-at-exit"
THROW_LEAK = "throw-leak"
THROW_RESTRICTED = "throw-restricted"
RBTREE_CB_REMOVE = "rbtree-cb-remove"
RBTREE_CB_LOCK = "rbtree-cb-lock"
RCU_NESTED = "rcu-nested"
DYNPTR_UNINIT = "dynptr-uninit"
DYNPTR_OVERWRITE = "dynptr-overwrite"
DYNPTR_RELEASE_UNACQUIRED = "dynptr-release-unacquired"
DYNPTR_ARG = "dynptr-arg"
STACK_OBJECT_ACCESS = "stack-object-access"
ITER_UNINIT = "iter-uninit"
MEM_OUT_OF_BOUNDS = "mem-out-of-bounds"
STACK_OUT_OF_BOUNDS = "stack-out-of-bounds"
MAP_VALUE_OUT_OF_BOUNDS = "map-value-out-of-bounds"
SIZE_OUT_OF_RANGE = "size-out-of-range"
PACKET_OUT_OF_BOUNDS = "packet-out-of-bounds"
MAP_FUNC_MISMATCH = "map-func-mismatch"
INVALID_SOCK_ACCESS = "invalid-sock-access"
EXCEPTION_CALLBACK = "exception-callback"
GLOBAL_FUNC_RETURN = "global-func-return"

LD_ABS_RESTRICTED = "ld-abs-restricted"
BTF_MEM_ACCESS = "btf-mem-access"
RDONLY_WRITE = "rdonly-write"
CALLBACK_RETURN = "callback-return"
SIZE_NOT_CONSTANT = "size-not-constant"

# the `{problem}` of a code's message, per variant of the finding (formatted with its args)
PROBLEMS = {
    ALU_IMMEDIATE: {
        "": "this divides by the constant 0",
        "shift": "this shifts by {imm} bits, more than the register has",
    },
    POINTER_ARITH: {
        "": "a pointer is subtracted from a number; only a number may be subtracted from a pointer",
        "stack_sub": "a number is subtracted from a stack pointer; add its negative instead",
        "bitwise": "a pointer is combined bitwise (&, |, ^), which the kernel does not allow",
        "op": "a pointer is multiplied, divided or shifted; only numbers may be added to or subtracted from it",
        "alu32": "32-bit arithmetic on a pointer is not allowed; pointers move in 64 bits",
        "ptr_ptr": "two pointers may only be subtracted from each other",
        "type": "a {type} pointer cannot be moved by arithmetic",
    },
    GPL_ONLY: {
        "": "{call} is only for GPL-compatible programs",
        "kfunc": "{call} is a kernel function, which only GPL-compatible programs may call",
        "btf": "reading kernel 'struct {type}' through BTF is only for GPL-compatible programs",
    },
    SLEEPABLE_CALL: {
        "": "this program is not sleepable",
        "kfunc": "this program is not sleepable",
        "helper_rcu": "this is inside bpf_rcu_read_lock()",
        "kfunc_rcu": "this is inside bpf_rcu_read_lock()",
        "helper_preempt": "preemption is disabled here (bpf_preempt_disable())",
        "kfunc_preempt": "preemption is disabled here (bpf_preempt_disable())",
    },
    MAP_VALUE_OUT_OF_BOUNDS: {
        "": "this accesses {size} bytes at offset {off} of a value of map '{map}', which is {value_size} bytes long",
        "max": "at the largest index this path allows, this accesses {size} bytes at offset {off} of a value of "
               "map '{map}', which is {value_size} bytes long",
        "unbounded": "the index into a value of map '{map}' has no upper bound here; check it against the "
                     "array's size first",
        "negative": "the index into a value of map '{map}' may be negative here; use an unsigned index or "
                    "check that it is not negative",
        "math": "the number added to a pointer into a value of map '{map}' has no lower bound here (a signed "
                "index checked only from above)",
    },
    SIZE_OUT_OF_RANGE: {
        "": "has no upper bound here (it may be as large as {umax})",
        "negative": "may be negative here (as low as {smin})",
        "zero": "may be 0 here (it is between {umin} and {umax}), and {call} needs at least one byte",
    },
    EXCEPTION_CALLBACK: {
        "multiple": "is named more than once: a program has at most one __exception_cb",
        "missing": "'{func}' is not a function of this object",
        "static": "'{func}' must be a global function (not static)",
        "direct_call": "'{func}' is called directly here; only bpf_throw() may run it",
        "signature": "'{func}' must take exactly one integer argument (the bpf_throw() cookie)",
    },
    BTF_MEM_ACCESS: {
        "": "would read {size} bytes at offset {off} of struct {struct}, past the end of its field '{member}'",
        "write": "would write into a kernel object (struct {struct}); helpers may only read it",
    },
    RDONLY_WRITE: {
        "": "{var} points to read-only memory (a bpf_dynptr_slice(), an iterator's value, a kfunc's buffer); it cannot be written",
        "prog": "{call} gives writable packet data, which {prog_type} programs may not change",
    },
    LD_ABS_RESTRICTED: {
        "lock": "cannot run while a bpf_spin_lock is held",
        "refs": "cannot run while the program holds a reference (acquired on line {acquire_line})",
        "rcu": "cannot run inside an RCU read-side section",
        "preempt": "cannot run while preemption is disabled",
        "callback": "cannot run inside a callback",
        "prog_type": "is only allowed in socket filter and tc programs",
        "ctx": "needs the context pointer in R6",
    },
}


def kernel_message(code: str, args: dict) -> str:
    c = CODES[code]
    tmpl = dict(c.variants).get(args.get("variant", ""), c.kernel)
    try:
        return tmpl.format(**args)
    except (KeyError, IndexError, ValueError):
        return tmpl
