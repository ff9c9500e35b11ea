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
    fix_kind: str = ""     # quick fix offered: release | unlock | null_check | refcount | ""

    @property
    def doc_url(self) -> str:
        return f"{DOCS_URL}#{self.name}"


_CODES = [
    Code("reference-leak", "error",
         "Unreleased reference id={ref} alloc_insn={alloc_insn}",
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
         "{var} is used after {release_call} on line {release_line} released it",
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
         "{var} may be NULL here: check it after {acquire_call} on line {acquire_line}",
         "A pointer that may be NULL is dereferenced without a check.",
         "Functions marked KF_RET_NULL / RET_PTR_TO_*_OR_NULL may return NULL; the verifier requires a "
         "comparison with 0 before any access (all copies share an id, so one check refines them all).",
         "struct elem *e = bpf_obj_new(typeof(*e));\ne->data = 1;",
         "Add `if (!e) return 0;` right after the call.", "null_check"),
    Code("null-arg", "error",
         "Possibly NULL pointer passed to trusted arg{arg}",
         "{var} may be NULL when passed to {call}: check it after {acquire_call} on line {acquire_line}",
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
         "it from a function that takes `T *`."),
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
    Code("helper-null-arg", "error",
         "Possibly NULL pointer passed to helper arg{arg}",
         "{var} may be NULL when passed to {call}",
         "A pointer that may be NULL is passed to a helper argument that must not be NULL.",
         "Helper arguments of pointer type must be non-NULL unless declared otherwise.",
         "bpf_ringbuf_submit(maybe_null, 0);",
         "Check the pointer for NULL before the call.", "null_check"),
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
         "the ownership analysis stopped after {budget} instructions; results for this program are incomplete",
         "The verifier budget was exhausted before every path was explored.",
         "The kernel stops at 1,000,000 processed instructions; bpf-lsp has a configurable budget.",
         "", "Raise `verifierBudget`, or simplify loops."),
    Code("unsupported", "information",
         "",
         "bpf-lsp does not model {what}; the rest of this program was not analysed",
         "An instruction or construct outside the modelled subset.",
         "bpf-lsp reports it instead of guessing.",
         "", "Run `bpf-lsp check --kernel` for the kernel's verdict."),
    Code("object-error", "error",
         "",
         "the compiled object could not be analysed: {detail}",
         "The BPF object is malformed or uses a format bpf-lsp cannot read.",
         "", "", "Check the compiler and flags."),
]

CODES: dict[str, Code] = {c.name: c for c in _CODES}


def kernel_message(code: str, args: dict) -> str:
    tmpl = CODES[code].kernel
    try:
        return tmpl.format(**args)
    except (KeyError, IndexError, ValueError):
        return tmpl
