"""Running one case in a watched worker process, campaigns, and minimising a failing input."""
from __future__ import annotations

import contextlib
import os
import random
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpf_lsp.text import split_lines
from .common import CORPUS_CASES, FUZZ_CACHE, HANG_SECONDS, KILL_SECONDS, REPO, WORKER_MEMORY_LIMIT, default_include_dirs
from .objects import mutate_object, object_layout
from .sources import Seed, exercise_analysis, load_seeds, mutate_source


# =============================================================================================
# running one case (in the worker process)

def make_analyzer(include_dirs: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None):
    from bpf_lsp.analysis import Analyzer
    from bpf_lsp.settings import Settings
    settings, problems = Settings().updated({"includeDirs": list(include_dirs or default_include_dirs())})
    assert not problems, problems
    analyzer = Analyzer(settings, cache_dir=cache_dir or FUZZ_CACHE, build_pch_synchronously=True)
    analyzer.pch.max_entries = max(analyzer.pch.max_entries, 64)
    return analyzer


def _where(exc: BaseException) -> str:
    """file:line of the innermost frame inside bpf_lsp (or the innermost frame), for deduplication."""
    tb = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in tb if "bpf_lsp" in f.filename and "devtools" not in f.filename]
    frame = (ours or tb or [None])[-1]
    if isinstance(exc, RecursionError) and ours:   # the frame that recursed, not where the stack ran out
        counts: dict[tuple[str, int], int] = {}
        for f in ours:
            counts[(f.filename, f.lineno)] = counts.get((f.filename, f.lineno), 0) + 1
        (name, line), _ = max(counts.items(), key=lambda kv: kv[1])
        return f"{os.path.relpath(name, REPO)}:{line} (recursion)"
    if frame is None:
        return "?"
    return f"{os.path.relpath(frame.filename, REPO)}:{frame.lineno}"


def _crash(stage: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, MemoryError):
        # the frames still hold whatever exhausted memory: drop their locals before formatting anything
        traceback.clear_frames(exc.__traceback__)
        import gc
        gc.collect()
    return {"stage": stage, "type": type(exc).__name__, "where": _where(exc),
            "message": str(exc)[:500], "traceback": "".join(traceback.format_exception(exc))[-6000:]}


def run_source_case(analyzer, text: str, path: str, rng_seed: int | str, hovers: int = 8) -> dict[str, Any]:
    rng = random.Random(rng_seed)
    out: dict[str, Any] = {"crash": None, "problems": [], "codes": []}
    t0 = time.monotonic()
    try:
        stage = "analyze"
        analysis = analyzer.analyze(text, path)
        out["analyze_seconds"] = time.monotonic() - t0
        out["codes"] = sorted({d.code for d in analysis.diagnostics})
        out["built"] = analysis.obj is not None
        stage = "hover/fixes"
        out["problems"] = exercise_analysis(analysis, os.path.abspath(path), text, rng, hovers)
    except BaseException as exc:  # noqa: BLE001 - the point is to see everything
        if isinstance(exc, KeyboardInterrupt):
            raise
        out["crash"] = _crash(stage, exc)
    out["seconds"] = time.monotonic() - t0
    return out


def run_object_case(analyzer, data: bytes, path: str, text: str | None, rng_seed: int | str,
                    hovers: int = 4) -> dict[str, Any]:
    """load_object (only ObjectError may escape), verify_program on every program, then the
    analysis path (``Analyzer.verify_object``: records, verification, rendering) and hovers.
    Each stage is checked on its own: a crash in one does not hide one in the next."""
    from bpf_lsp.analysis import Analysis
    from bpf_lsp.frontend.kernel_btf import kernel_facts
    from bpf_lsp.frontend.objfile import ObjectError, load_object
    from bpf_lsp.verifier import verify_program
    from bpf_lsp.verifier.records import RecordBuilder
    rng = random.Random(rng_seed)
    path = os.path.abspath(path)
    out: dict[str, Any] = {"crash": None, "crashes": [], "problems": [], "rejected": False, "programs": 0}
    t0 = time.monotonic()

    def crashed(stage: str, exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        out["crashes"].append(_crash(stage, exc))

    obj = None
    try:
        obj = load_object(data, path)
    except ObjectError:
        out["rejected"] = True
    except BaseException as exc:  # noqa: BLE001
        crashed("load_object", exc)
    if obj is not None:
        out["programs"] = len(obj.programs)
        facts = kernel_facts()
        try:
            records = RecordBuilder(obj.btf, facts.struct_names)
        except BaseException as exc:  # noqa: BLE001
            crashed("RecordBuilder", exc)
            records = None
        for prog in obj.programs if records is not None else ():
            try:
                verify_program(prog, analyzer.settings.verifierBudget, facts, records)
            except BaseException as exc:  # noqa: BLE001
                crashed(f"verify_program({prog.name})", exc)
    stage = "Analyzer.verify_object"
    try:
        analysis = analyzer.verify_object(data, path, Analysis(path), {path: text} if text is not None else {})
        out["codes"] = sorted({d.code for d in analysis.diagnostics})
        stage = "hover/fixes"
        out["problems"] = exercise_analysis(analysis, path, text, rng, hovers)
    except BaseException as exc:  # noqa: BLE001
        crashed(stage, exc)
    out["crash"] = out["crashes"][0] if out["crashes"] else None
    out["seconds"] = time.monotonic() - t0
    return out


def _handle(analyzer, msg: tuple) -> dict[str, Any]:
    kind = msg[0]
    if kind == "source":
        _, text, path, seed = msg
        return run_source_case(analyzer, text, path, seed)
    if kind == "object":
        _, data, path, text, seed = msg
        return run_object_case(analyzer, data, path, text, seed)
    if kind == "compile":
        _, text, path = msg
        stage = analyzer.compile(text, path)
        return {"object": stage.object_bytes,
                "diagnostics": [(d.code, d.severity, d.message) for d in stage.compiler_diagnostics]}
    return {"error": f"unknown request {kind!r}"}


def _read_exact(stream, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def worker_stdio() -> None:
    """The worker process: length-prefixed pickles on stdin/stdout (stdout is kept for the protocol;
    anything the analysis prints goes to stderr)."""
    import pickle
    import resource
    # A corrupt object can make the loader allocate without bound (see tests/fuzz/repro): fail with
    # MemoryError in this worker rather than wake the OOM killer on a shared machine.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
    # the protocol gets private copies of fds 0/1: anything in-process that reads stdin or writes
    # stdout (libclang does, for an #include "/dev/stdin") must not touch it
    proto_out = os.fdopen(os.dup(1), "wb")
    proto_in = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    config = pickle.loads(_read_exact(proto_in, struct.unpack("<Q", _read_exact(proto_in, 8))[0]))
    analyzer = make_analyzer(config["include_dirs"], config["cache_dir"])
    while True:
        head = _read_exact(proto_in, 8)
        if head is None:
            return
        body = _read_exact(proto_in, struct.unpack("<Q", head)[0])
        if body is None:
            return
        msg = pickle.loads(body)
        if msg[0] == "stop":
            return
        try:
            result = _handle(analyzer, msg)
        except BaseException as exc:  # noqa: BLE001 - the harness itself must survive
            result = {"crash": _crash("worker", exc), "problems": [], "seconds": 0.0}
        out = pickle.dumps(result)
        proto_out.write(struct.pack("<Q", len(out)) + out)
        proto_out.flush()


class Worker:
    """One analysis process with a watchdog (see the module docstring).

    A plain subprocess (``python -c 'from devtools.fuzz.harness import worker_stdio; ...'``) rather than
    multiprocessing, so callers need no ``if __name__ == "__main__"`` guard.
    """

    def __init__(self, include_dirs: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None,
                 kill_seconds: float = KILL_SECONDS):
        self.include_dirs = list(include_dirs or default_include_dirs())
        self.cache_dir = str(cache_dir or FUZZ_CACHE)
        self.kill_seconds = kill_seconds
        self._proc: subprocess.Popen | None = None
        self._log = None           # the workers' stderr (what the analysis prints, MemoryError noise)
        self.restarts = 0

    def _send(self, obj: Any) -> None:
        import pickle
        body = pickle.dumps(obj)
        self._proc.stdin.write(struct.pack("<Q", len(body)) + body)
        self._proc.stdin.flush()

    def _start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        if self._log is None:
            self._log = tempfile.NamedTemporaryFile(prefix="bpf-lsp-fuzz-worker-", suffix=".log", delete=False)
        self._proc = subprocess.Popen([sys.executable, "-c", "from devtools.fuzz.harness import worker_stdio; worker_stdio()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env,
                                      cwd=str(REPO))
        self._send({"include_dirs": self.include_dirs, "cache_dir": self.cache_dir})

    def request(self, msg: tuple, timeout: float | None = None) -> dict[str, Any]:
        """The worker's answer; ``{"dead": True, ...}`` when it died or did not answer within the
        timeout (it is then killed, and restarted by the next request)."""
        import pickle
        import select
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        started = time.monotonic()
        try:
            self._send(msg)
            ready, _, _ = select.select([self._proc.stdout], [], [], timeout or self.kill_seconds)
            if ready:
                head = _read_exact(self._proc.stdout, 8)
                if head is not None:
                    body = _read_exact(self._proc.stdout, struct.unpack("<Q", head)[0])
                    if body is not None:
                        return pickle.loads(body)
        except (BrokenPipeError, ConnectionResetError, OSError, EOFError):
            pass
        seconds = time.monotonic() - started
        exit_code = self._proc.poll()
        self.kill()
        self.restarts += 1
        return {"dead": True, "exitcode": exit_code, "seconds": seconds, "stderr": self.stderr_tail()}

    def kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            with contextlib.suppress(Exception):
                self._proc.wait(10)
            for stream in (self._proc.stdin, self._proc.stdout):
                with contextlib.suppress(Exception):
                    stream.close()
        self._proc = None

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(Exception):
                self._send(("stop",))
                self._proc.wait(10)
        self.kill()
        if self._log is not None:
            self._log.close()
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
            self._log = None

    def stderr_tail(self, n: int = 4000) -> str:
        if self._log is None:
            return ""
        try:
            with open(self._log.name, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# =============================================================================================
# campaigns

# Failures already reproduced in tests/fuzz/repro/test_repro.py (signature regex -> that test).
# The short fuzz runs in tests/fuzz fail only on failures *not* listed here; the bench marks them.
# Most of what the fuzzers found (invalid registers, negative ctx offsets, self-containing BTF,
# oversized symbols, lone surrogates, unanswered requests, the progress-create race, the
# unregistered file-too-large code) was fixed in 5a1f789; the open reproducers for form feeds
# and lone-CR preambles produce wrong lines, which no harness signature matches. Add an entry
# with each new reproducer.
KNOWN_ISSUES: tuple[tuple[str, str], ...] = (
    # recursive calls explored until the budget runs out (~60 s): object mutants only, rare
    (r"^worker:killed after no answer$|^over \d+s$", "test_recursive_calls_end_quickly"),
)


def known_issue(signature: str) -> str | None:
    for pattern, test in KNOWN_ISSUES:
        if re.search(pattern, signature):
            return test
    return None

@dataclass
class Failure:
    harness: str
    case: str                       # "<seed name>#<index>"
    mutators: list[str]
    kind: str                       # crash | hang | problem
    signature: str                  # for deduplication: stage, exception type, where
    detail: str                     # traceback, or the problems
    input_file: str = ""            # where the input was saved (when an output dir was given)
    seconds: float = 0.0


@dataclass
class Report:
    harness: str
    tried: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    rejected: int = 0               # objects: clean ObjectError; sources: mutants that did not compile
    wall: float = 0.0
    notes: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Failure]:
        return [f for f in self.failures if f.kind == kind]

    @property
    def crashes(self) -> list[Failure]:
        return self.of("crash")

    @property
    def hangs(self) -> list[Failure]:
        return self.of("hang")

    @property
    def problems(self) -> list[Failure]:
        return self.of("problem")

    def unique(self, kind: str) -> dict[str, list[Failure]]:
        out: dict[str, list[Failure]] = {}
        for f in self.of(kind):
            out.setdefault(f.signature, []).append(f)
        return out

    def new_failures(self) -> list[Failure]:
        """Failures no reproducer in tests/fuzz/repro covers yet."""
        return [f for f in self.failures if known_issue(f.signature) is None]

    def summary(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) if lat else 0.0
        worst = lat[-1] if lat else 0.0
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] if lat else 0.0
        lines = [f"{self.harness}: tried {self.tried}, crashes {len(self.crashes)} "
                 f"({len(self.unique('crash'))} unique), hangs {len(self.hangs)}, malformed output "
                 f"{len(self.problems)} ({len(self.unique('problem'))} unique), worst latency {worst:.3f}s, "
                 f"p50 {p50:.3f}s, p95 {p95:.3f}s, wall {self.wall:.0f}s"
                 + (f", rejected/failed-to-build {self.rejected}" if self.rejected else "")]
        for kind in ("crash", "hang", "problem"):
            for sig, fs in self.unique(kind).items():
                first = fs[0]
                where = f" -> {first.input_file}" if first.input_file else ""
                known = known_issue(sig)
                tag = f" [known: {known}]" if known else " [NEW]"
                lines.append(f"  {kind} x{len(fs)}: {sig}{tag}  (first: {first.case} "
                             f"{'+'.join(first.mutators)}{where})")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _save(out_dir: Path | None, name: str, data: bytes | str) -> str:
    if out_dir is None:
        return ""
    out_dir.mkdir(parents=True, exist_ok=True)
    p = out_dir / name
    if isinstance(data, str):
        p.write_bytes(data.encode("utf-8", errors="surrogatepass"))  # lone surrogates round-trip
    else:
        p.write_bytes(data)
    return str(p)


def _record(report: Report, result: dict[str, Any], case: str, mutators: list[str], save: Callable[[], str],
            hang_seconds: float) -> None:
    seconds = float(result.get("seconds", 0.0))
    report.latencies.append(seconds)
    if result.get("dead"):
        what = "killed after no answer" if result.get("exitcode") is None else f"worker died (exit {result['exitcode']})"
        kind = "hang" if result.get("exitcode") is None else "crash"
        report.failures.append(Failure(report.harness, case, mutators, kind, f"worker:{what}",
                                       f"{what} after {seconds:.1f}s\n{result.get('stderr', '')[-2000:]}",
                                       save(), seconds))
        return
    for crash in result.get("crashes") or ([result["crash"]] if result.get("crash") else []):
        sig = f"{crash['stage'].split('(')[0]}: {crash['type']} at {crash['where']}"
        report.failures.append(Failure(report.harness, case, mutators, "crash", sig, crash["traceback"],
                                       save(), seconds))
    if seconds > hang_seconds:
        report.failures.append(Failure(report.harness, case, mutators, "hang", f"over {hang_seconds:g}s",
                                       f"took {seconds:.1f}s", save(), seconds))
    for problem in result.get("problems") or ():
        sig = re.sub(r"\d+", "N", problem)
        report.failures.append(Failure(report.harness, case, mutators, "problem", sig, problem, save(), seconds))


def _progress_printer(label: str, every: int, stream=None) -> Callable[[int, int, Report], None]:
    stream = stream or sys.stdout
    start = time.monotonic()

    def show(i: int, total: int, report: Report) -> None:
        if i % every and i != total:
            return
        elapsed = time.monotonic() - start
        eta = elapsed / max(i, 1) * (total - i)
        print(f"[{label}] {i}/{total}  crashes {len(report.crashes)}  hangs {len(report.hangs)}  "
              f"problems {len(report.problems)}  {elapsed:.0f}s elapsed, ~{eta:.0f}s left", file=stream, flush=True)
    return show


def _campaign(report: Report, worker: Worker | None, count: int, case_at: Callable[[int], tuple],
              progress: Callable[[int, int, Report], None] | None, hang_seconds: float,
              prepare: Callable[[Worker], str | None] | None = None) -> Report:
    """Run `count` cases in `worker` (a new one unless given). `case_at(i)` gives (case name,
    mutators, request, rejected?(result), save()); `prepare(worker)` may end the campaign early
    with a note."""
    own = worker is None
    worker = worker or Worker()
    started = time.monotonic()
    try:
        note = prepare(worker) if prepare else None
        if note:
            report.notes.append(note)
            return report
        for i in range(count):
            case, mutators, request, rejected, save = case_at(i)
            result = worker.request(request)
            report.tried += 1
            if rejected(result):
                report.rejected += 1
            _record(report, result, case, mutators, save, hang_seconds)
            if progress:
                progress(i + 1, count, report)
    finally:
        report.wall = time.monotonic() - started
        if own:
            worker.close()
    return report


def source_campaign(count: int, seed: int = 0, seeds: Sequence[Seed] | None = None, worker: Worker | None = None,
                    out_dir: Path | None = None, progress: Callable[[int, int, Report], None] | None = None,
                    hang_seconds: float = HANG_SECONDS) -> Report:
    """``count`` source mutants, spread round-robin over the seeds (in a seed order fixed by ``seed``)."""
    seeds = list(seeds) if seeds is not None else load_seeds()
    order = list(range(len(seeds)))
    random.Random(f"source-order:{seed}").shuffle(order)

    def case_at(i: int) -> tuple:
        s = seeds[order[i % len(order)]]
        text, mutators = mutate_source(s.text, random.Random(f"source:{seed}:{i}"))
        return (f"{s.name}#{i}", mutators, ("source", text, s.path, f"hover:{seed}:{i}"),
                lambda result: result.get("built") is False,
                lambda: _save(out_dir, f"source-{s.name}-{seed}-{i}.bpf.c", text))
    return _campaign(Report("source"), worker, count, case_at, progress, hang_seconds)


def compile_seed_objects(seeds: Sequence[Seed], worker: Worker) -> list[tuple[Seed, bytes]]:
    out = []
    for s in seeds:
        result = worker.request(("compile", s.text, s.path), timeout=300)
        if result and result.get("object"):
            out.append((s, result["object"]))
    return out


def object_campaign(count: int, seed: int = 0, seeds: Sequence[Seed] | None = None, worker: Worker | None = None,
                    out_dir: Path | None = None, progress: Callable[[int, int, Report], None] | None = None,
                    hang_seconds: float = HANG_SECONDS, objects: Sequence[tuple[Seed, bytes]] | None = None) -> Report:
    """``count`` object mutants over the compiled seeds (compiled once, by the worker's Analyzer)."""
    compiled: list[tuple[Seed, bytes]] = list(objects) if objects is not None else []
    layouts: list = []
    order: list[int] = []

    def prepare(w: Worker) -> str | None:
        if objects is None:
            compiled.extend(compile_seed_objects(list(seeds) if seeds is not None else load_seeds([CORPUS_CASES]), w))
        if not compiled:
            return "no seed compiled: nothing to mutate"
        layouts.extend(object_layout(data) for _, data in compiled)
        order.extend(range(len(compiled)))
        random.Random(f"object-order:{seed}").shuffle(order)
        return None

    def case_at(i: int) -> tuple:
        k = order[i % len(order)]
        s, data = compiled[k]
        mutant, mutators = mutate_object(data, random.Random(f"object:{seed}:{i}"), layouts[k])
        return (f"{s.name}#{i}", mutators, ("object", mutant, s.path, s.text, f"hover:{seed}:{i}"),
                lambda result: bool(result.get("rejected")),
                lambda: _save(out_dir, f"object-{s.name}-{seed}-{i}.o", mutant))
    return _campaign(Report("object"), worker, count, case_at, progress, hang_seconds, prepare)


# =============================================================================================
# minimising a failing input (used by hand when writing tests/fuzz/repro/ cases)

def minimize_lines(text: str, still_fails: Callable[[str], bool], max_rounds: int = 200) -> str:
    """Delta debugging over lines: the smallest text (by whole lines) that still fails."""
    lines = split_lines(text, keepends=True)
    n = 2
    rounds = 0
    while len(lines) >= 2 and rounds < max_rounds:
        rounds += 1
        chunk = max(len(lines) // n, 1)
        reduced = False
        for start in range(0, len(lines), chunk):
            candidate = lines[:start] + lines[start + chunk:]
            if candidate and still_fails("".join(candidate)):
                lines = candidate
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(n * 2, len(lines))
    return "".join(lines)


def diff_bytes(a: bytes, b: bytes) -> list[tuple[int, int, int]]:
    """(offset, old, new) for every byte that differs in the common prefix (for reproducer notes)."""
    return [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]


def minimize_object(pristine: bytes, mutant: bytes, still_fails: Callable[[bytes], bool]) -> bytes:
    """Revert as many changed bytes (and as much of a truncation) as possible while it still fails."""
    cur = bytearray(mutant)
    if len(mutant) < len(pristine):   # try restoring the truncated tail in halves
        lo, hi = len(mutant), len(pristine)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            cand = bytes(cur) + pristine[len(cur):mid]
            if still_fails(cand):
                lo = mid
                cur = bytearray(cand)
                break
            hi = mid - 1
    changed = [i for i, _, _ in diff_bytes(pristine, bytes(cur))]
    chunk = max(len(changed) // 2, 1)
    while changed and chunk >= 1:
        kept = []
        for start in range(0, len(changed), chunk):
            group = changed[start:start + chunk]
            cand = bytearray(cur)
            for i in group:
                cand[i] = pristine[i]
            if still_fails(bytes(cand)):
                cur = cand
            else:
                kept += group
        changed = kept
        if chunk == 1:
            break
        chunk //= 2
    return bytes(cur)
