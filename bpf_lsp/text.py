"""Text conventions shared by every layer: what a line is, and what to do with unencodable text.

clang ends lines only at \\n, \\r\\n and \\r (so does LSP); Python's str.splitlines() also splits
at \\f, \\v, \\x1c-\\x1e, \\x85, U+2028 and U+2029, which would shift every later line number.
A document may arrive with lone UTF-16 surrogates (a JSON "\\ud800" escape): they cannot be
written as UTF-8, so they become U+FFFD, which has the same UTF-8 length as the surrogate's
"surrogatepass" encoding, keeping byte columns aligned with the client's text.
"""
from __future__ import annotations

import re

_LINE_END = re.compile(r"\r\n|\r|\n")
_SURROGATE = re.compile("[\ud800-\udfff]")


def split_lines(text: str, keepends: bool = False) -> list[str]:
    """Lines as clang and LSP number them: line ends removed, or kept (`keepends`: joining the
    result gives the text back; a final line end starts no empty line)."""
    if not keepends:
        return _LINE_END.split(text)
    parts = _LINE_END.split(text)
    ends = _LINE_END.findall(text)
    lines = [line + end for line, end in zip(parts, ends)]
    return lines + [parts[-1]] if parts[-1] else lines


def clean_text(text: str) -> str:
    """The text with lone surrogates replaced by U+FFFD (a no-op for ordinary text)."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def utf8(text: str) -> bytes:
    """UTF-8 bytes of text that may hold lone surrogates (3 bytes each, like U+FFFD)."""
    return text.encode("utf-8", "surrogatepass")
