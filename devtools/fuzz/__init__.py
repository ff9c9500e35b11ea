"""Robustness harnesses: mutate inputs, run them through the whole pipeline, check nothing escapes.

Shared by the short runs in ``tests/fuzz`` and the long ones in `bench/robustness.py`.
Three harnesses:

* **source**: mutants of corpus/fixture sources (lines deleted, duplicated, swapped; a release
  or unlock dropped or moved; random tokens; truncation; unbalanced braces; random bytes incl.
  invalid UTF-8) through ``Analyzer.analyze`` (compile -> verify -> render), then hovers at
  random positions and every diagnostic's fixes.
* **object**: byte mutants of compiled corpus objects (truncation, flips, and targeted
  corruption of ELF/section headers, symbols, relocations, instructions, .BTF header and type
  records incl. reference loops, .BTF.ext record sizes, DWARF) through ``load_object``,
  ``verify_program`` on every program and ``Analyzer.verify_object`` (render, hovers).
* **chaos**: a raw framed JSON-RPC client against ``python -m bpf_lsp.server``: unknown methods
  and URIs, out-of-range positions, bad UTF-16 offsets, huge documents, bursts of didChange,
  requests for closed documents, random ``$/cancelRequest``, malformed JSON and params; then
  checks the server is alive and that its final diagnostics equal a fresh analysis.

Cases run in a worker *process* (``Worker``) with a watchdog: a case that takes longer than
``HANG_SECONDS`` counts as a hang; one that does not answer within ``KILL_SECONDS`` is killed
and the worker restarted, so a real infinite loop (even one inside C code holding the GIL)
cannot stall a campaign; the worker's address space is capped (``WORKER_MEMORY_LIMIT``) so a
runaway allocation ends in MemoryError, not in the OOM killer. Every source/object mutant is a
pure function of (harness, seed, index): reruns with the same seed try the same inputs. The
chaos session's message sequence is fixed by its seed too; what the server answers, and when,
is not.

Outcomes: a *crash* is an exception escaping where none may (anything but ``ObjectError`` from
``load_object``; anything at all from the analysis, hovers, fixes, ``verify_program``; in the
server, an exception its guards or pygls report); a *problem* is malformed output (a span with
line < 1, an end before its start, an unknown severity or code, a request never answered); a
*hang* is a case over the time bound. ``KNOWN_ISSUES`` maps failures already reproduced in
``tests/fuzz/repro`` to their test, so short runs fail only on new ones.
"""
from __future__ import annotations

# One namespace for the tests and the benchmark (`from devtools import fuzz as F`).
from .chaos import *      # noqa: F401,F403
from .common import *     # noqa: F401,F403
from .harness import *    # noqa: F401,F403
from .objects import *    # noqa: F401,F403
from .sources import *    # noqa: F401,F403
from .harness import _progress_printer          # noqa: F401 - used by the tests
from .sources import _body_start                # noqa: F401
from .chaos import _random_edit                 # noqa: F401
