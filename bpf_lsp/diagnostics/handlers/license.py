"""What only GPL-compatible programs may use.

| code | fix |
|---|---|
| gpl-only | the `SEC("license")` string made GPL-compatible: "Dual BSD/GPL" for a BSD license (likewise MIT, MPL), else "GPL" |
"""
from __future__ import annotations

import re

from ... import codes as C
from ..model import Fix, Span, TextEdit
from .base import Handler

# the license definition: `char LICENSE[] SEC("license") = "Dual BSD";` (its string's bytes)
LICENSE_DEF = re.compile(rb'SEC\(\s*"license"\s*\)\s*=\s*"([^"\n]*)"')
# GPL-compatible spellings that keep the other half of a dual license
DUAL = (("BSD", "Dual BSD/GPL"), ("MIT", "Dual MIT/GPL"), ("MPL", "Dual MPL/GPL"))


class GplOnly(Handler):
    codes = (C.GPL_ONLY,)

    def fix(self, ctx):
        first = ctx.diag.span.file
        files = ctx.src.files
        for path in dict.fromkeys([first, *files.main_files]):
            lines = files.lines(path)
            if not lines:
                continue
            for n, text in enumerate(lines, 1):
                m = LICENSE_DEF.search(text.encode("utf-8"))
                if m is None:
                    continue
                old = m.group(1).decode("utf-8", errors="replace")
                new = next((dual for word, dual in DUAL if word in old.upper()), "GPL")
                span = Span(path, n, m.start(1) + 1, n, m.end(1) + 1)
                return Fix(f'Make the license "{new}"', (TextEdit(span, new),), ctx.finding.code)
        return None


HANDLERS = (GplOnly(),)
