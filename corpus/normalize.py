"""Code normalisation for exact-duplicate detection, and dialect sniffing."""

from __future__ import annotations

import hashlib
import re

_COMMENT = re.compile(r"//[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)
_SPACE = re.compile(r"\s+")
# Whitespace next to punctuation carries no meaning, so `a+b` and `a + b` normalise alike.
_SPACE_AROUND_PUNCT = re.compile(r" ?([^\w\s#]) ?")


def strip_comments(code: str) -> str:
    return _COMMENT.sub(" ", code)


def normalize_code(code: str) -> str:
    """Comments removed and whitespace collapsed: two programs that differ only there are one."""
    text = _SPACE.sub(" ", strip_comments(code)).strip()
    # A function replacement avoids re-expanding a template for each of the millions of matches.
    return _SPACE_AROUND_PUNCT.sub(_first_group, text)


def _first_group(match: re.Match[str]) -> str:
    return match.group(1)


def code_hash(passes: list[tuple[str, str]]) -> str:
    """sha256 over the normalized code of every non-empty pass, in a fixed pass order."""
    digest = hashlib.sha256()
    for kind, code in sorted(passes):
        normalized = normalize_code(code)
        if normalized:
            digest.update(kind.encode())
            digest.update(b"\x00")
            digest.update(normalized.encode("utf-8", "surrogatepass"))
            digest.update(b"\x01")
    return digest.hexdigest()


_WORD = r"\b{}\b"


def sniff_dialect(code: str) -> str:
    """Guess which host a program was written for from the names it uses."""
    text = strip_comments(code)
    defines_main = re.search(r"\bvoid\s+main\s*\(", text) is not None
    # Shadertoy code never defines main(); ports to other hosts keep mainImage and add a main() that calls it.
    if re.search(r"\bvoid\s+mainImage\s*\(", text) and not defines_main:
        return "shadertoy"
    if re.search(_WORD.format("u_resolution"), text) or re.search(_WORD.format("u_time"), text):
        return "bookofshaders"
    if re.search(r"\buniform\s+\w+\s+(?:[\w\s,]*\b)?(?:time|resolution)\b", text) or re.search(
        _WORD.format("surfacePosition"), text
    ):
        return "glslsandbox"
    return "raw"


def looks_like_fragment_program(code: str) -> bool:
    """True for code that defines an entry point a fragment stage could run."""
    text = strip_comments(code)
    if re.search(r"\bvoid\s+mainImage\s*\(", text):
        return True
    if not re.search(r"\bvoid\s+main\s*\(", text):
        return False
    # Vertex shaders write gl_Position; fragment programs write a colour.
    if re.search(r"\bgl_Position\b", text):
        return False
    return bool(re.search(r"\bgl_FragColor\b|\bgl_FragData\b|\bout\s+(?:lowp\s+|mediump\s+|highp\s+)?vec4\b", text))
