"""`bpf-lsp dump`: the developer's x-ray of a BPF object.

Per program, each linked instruction with its source position and text, the relocation's
meaning, and the DWARF variables living in registers and stack slots there.
"""
from __future__ import annotations

from .diagnostics.sources import ProgramSources, SourceFiles, object_variables
from .frontend.isa import format_insn
from .frontend.objfile import (DataRef, FuncAddrRef, HelperRef, KfuncRef, KsymRef, MapRef, ObjectError,
                               SubprogRef, load_object)


def describe(meaning) -> str:
    if isinstance(meaning, KfuncRef):
        return f"kfunc {meaning.name}"
    if isinstance(meaning, HelperRef):
        return f"helper {meaning.name} (#{meaning.id})"
    if isinstance(meaning, MapRef):
        return f"map {meaning.map.name}"
    if isinstance(meaning, DataRef):
        sym = f" ({meaning.symbol})" if meaning.symbol else ""
        return f"global data {meaning.map.name}+{meaning.offset}{sym}"
    if isinstance(meaning, SubprogRef):
        return f"call subprogram {meaning.name} at {meaning.target}"
    if isinstance(meaning, FuncAddrRef):
        return f"address of {meaning.name} at {meaning.target} (callback)"
    if isinstance(meaning, KsymRef):
        return f"ksym {meaning.name}"
    return ""


def dump(data: bytes, path: str, texts: dict[str, str], out) -> bool:
    try:
        obj = load_object(data, path)
    except ObjectError as e:
        print(f"{path}: error: {e}", file=out)
        return False
    files = SourceFiles(texts)
    variables = object_variables(obj)
    for problem in obj.problems:
        print(f"{path}: warning: {problem}", file=out)
    for prog in obj.programs:
        target = f" -> {prog.attach_target}" if prog.attach_target else ""
        print(f"program {prog.name}  section {prog.section}  type {prog.prog_type}{target}", file=out)
        for fn in prog.functions:
            kind = "global" if fn.is_global else ("main" if fn.start == 0 else "static")
            print(f"  function {fn.name} [{fn.start}, {fn.end}) {kind} from {fn.section}+{fn.section_start}", file=out)
        src = ProgramSources(prog, files, variables)
        last = None
        for insn in prog.insns:
            li = prog.exact_line_at(insn.idx)
            if li is not None and (li.file, li.line) != last:
                last = (li.file, li.line)
                text = files.line(li.file, li.line).strip() or li.text.strip()
                print(f"  ; {li.file}:{li.line}:{li.col}  {text}", file=out)
            fn = prog.function_at(insn.idx)
            if fn is not None and fn.start == insn.idx and insn.idx:
                print(f"  <{fn.name}>:", file=out)
            meaning = describe(prog.meanings.get(insn.idx))
            vars_here = ", ".join(f"{v.name}={'r%d' % v.reg if v.reg is not None else 'fp%d' % v.stack_off}"
                                  for v in src.variables_at(insn.idx))
            line = f"  {insn.idx:5}: {format_insn(insn):44}"
            if meaning:
                line += f" ; {meaning}"
            if vars_here:
                line += f"  [{vars_here}]"
            print(line.rstrip(), file=out)
        print(file=out)
    return True
