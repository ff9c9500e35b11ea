"""The kernel's verdicts on the built selftests (manifest.json from build.py) beside ours.

Shared by tests/test_selftests.py and report.py. A program counts as judged by the kernel when
the verifier itself answered: programs that fail earlier (EPERM for fentry/lsm here, a kfunc of
the test module that is not loaded, a map the loader cannot create) are not judged.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / ".build" / "selftests" / "manifest.json"
DISAGREEMENTS = Path(__file__).with_name("disagreements.txt")


@dataclass(frozen=True)
class KernelVerdict:
    file: str
    program: str
    accepted: bool
    message: str
    line: str

    @property
    def key(self) -> str:
        return f"{self.file}:{self.program}"


def load_manifest(path: Path = MANIFEST) -> dict:
    if not path.exists():
        return {"status": "skipped", "reason": f"{path} is missing: run `python3 tests/selftests/build.py`",
                "objects": {}}
    return json.loads(path.read_text())


def judged_programs(manifest: dict) -> list[KernelVerdict]:
    out = []
    for file, entry in sorted(manifest["objects"].items()):
        for name, rec in sorted(entry["programs"].items()):
            if rec.get("stage") != "verifier" or (not rec.get("accepted") and not rec.get("error")):
                continue
            out.append(KernelVerdict(file, name, bool(rec["accepted"]), rec.get("error") or "",
                                     rec.get("line") or ""))
    return out


def known_disagreements(path: Path = DISAGREEMENTS) -> dict[str, str]:
    """`file.c:program  reason` per line: where we are known to differ from the kernel, and why."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, reason = line.partition(" ")
            out[key] = reason.strip()
    return out


def our_verdict(program) -> str:
    """accept | reject, as `check` decides it: any error finding rejects; incomplete accepts."""
    return "reject" if any(d.severity == "error" for d in program.diagnostics) else "accept"


def _normalise(msg: str) -> str:
    return re.sub(r"\d+", "N", msg.split("\n")[0]).strip()


def same_reason(kernel_message: str, kernel_messages: list[str]) -> bool:
    """Whether one of our error findings carries the kernel's message (numbers aside)."""
    want = _normalise(kernel_message)
    return any(m and (_normalise(m) in want or want in _normalise(m)) for m in kernel_messages)
