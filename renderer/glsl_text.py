"""Comments in GLSL source, for the checks and rewrites that must not see them."""

from __future__ import annotations

import re

COMMENTS = re.compile(r"//[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)


def without_comments(code: str) -> str:
    """`code` with each comment replaced by a space."""
    return COMMENTS.sub(" ", code)


def blank_comments(code: str) -> str:
    """`code` with every comment character turned into a space (newlines kept), so offsets still match."""
    return COMMENTS.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)
