"""Guesses, from a program's source, why harvest's and wgpu-shadertoy's pictures of it may differ.

Pattern heuristics over comment-stripped code (no parser): good enough to sort a few hundred
mismatches into the known causes for bench/faithful.py, not to judge a single program. Each cause
below was confirmed on a minimal program written for it (see the README, "Faithfulness").
"""

from __future__ import annotations

import re

# Causes in the order a mismatch is attributed to one of them, with who deviates from WebGL.
CAUSES: dict[str, str] = {
    "global-init-uniform": "wgpu: a global initialised from a uniform (iTime...) reads 0 in naga",
    "global-init-call": "wgpu: a global initialised by a function call or from another global is 0 in naga",
    "comma-operator": "wgpu: naga keeps only the last side effect of `a = x, b = y;`",
    "gl_FragCoord": "wgpu: gl_FragCoord is Vulkan's, y from the top (only fragCoord is flipped)",
    "derivatives": "wgpu: dFdy has the opposite sign (its y-flip)",
    "chained-assignment": "wgpu: naga loads the left side of `a *= a *= b` before the right",
    "uninitialised-out": "an out parameter read before written (both sides start it at 0 since renderer 2)",
    "uninitialised-local": "a local read before written (both sides start it at 0 since renderer 2)",
    "sin-hash": "either: fract(sin(x) * big) hashes amplify last-bit differences in sin",
}
WGPU_SIDE = frozenset(name for name, text in CAUSES.items() if text.startswith("wgpu"))

_TYPE = r"(?:float|int|uint|bool|[biu]?vec[234]|mat[234](?:x[234])?)"
_CONSTRUCTORS = frozenset([
    "float", "int", "uint", "bool", "vec2", "vec3", "vec4", "ivec2", "ivec3", "ivec4",
    "uvec2", "uvec3", "uvec4", "bvec2", "bvec3", "bvec4", "mat2", "mat3", "mat4",
])
_GLOBAL_WITH_INITIALISER = re.compile(
    r"^(?:(?:highp|mediump|lowp)\s+)?(?:" + _TYPE + r"|[A-Z]\w*)(?:\[\d*\])?\s+\w+(?:\[\d*\])?\s*=(.*)$", re.DOTALL
)
_FOR_HEADER = re.compile(r"for\s*\([^;]*;[^;]*;[^)]*\)")
_DECLARATION_START = re.compile(r"^(?:const\s+)?(?:(?:highp|mediump|lowp)\s+)?" + _TYPE + r"\b")
_COMPOUND_NEXT = re.compile(r"\s*(?:\.\w+|\[[^\]]*\])?\s*[-+*/]=")


def strip_comments(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", " ", code, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", code)


def strip_comments_and_directives(code: str) -> str:
    return "\n".join(line for line in strip_comments(code).split("\n") if not line.strip().startswith("#"))


def _top_level_statements(code: str) -> list[str]:
    depth, current, statements = 0, [], []
    for char in code:
        if char in "{}":
            depth += 1 if char == "{" else -1
            current = []
        elif depth == 0:
            if char == ";":
                statements.append("".join(current).strip())
                current = []
            else:
                current.append(char)
    return statements


def _has_comma_operator(code: str) -> bool:
    """A statement (not a declaration) whose top-level comma is followed by an assignment."""
    for statement in re.split(r"[;{}]", _FOR_HEADER.sub(" ", code)):
        statement = statement.strip()
        if _DECLARATION_START.match(statement) or statement.startswith("return"):
            continue
        depth, after_comma = 0, False
        for index, char in enumerate(statement):
            if char in "([":
                depth += 1
            elif char in ")]":
                depth -= 1
            elif char == "," and depth == 0:
                after_comma = True
            elif (after_comma and char == "=" and depth == 0 and statement[index + 1:index + 2] != "="
                  and statement[index - 1:index] not in ("=", "!", "<", ">")):
                return True
    return False


def _reads_out_colour_first(code: str) -> bool:
    match = re.search(r"mainImage\s*\(\s*out\s+(?:\w+\s+)?vec4\s+(\w+)", code)
    if not match:
        return False
    body = code[match.end():]
    body = body[body.find("{"):]
    first = re.search(r"\b" + re.escape(match.group(1)) + r"\b", body)
    return bool(first and _COMPOUND_NEXT.match(body[first.end():]))


def _reads_local_first(code: str) -> bool:
    for declaration in re.finditer(r"\b" + _TYPE + r"\s+(\w+)\s*;", code):
        following = code[declaration.end():]
        first = re.search(r"\b" + re.escape(declaration.group(1)) + r"\b", following)
        if first and _COMPOUND_NEXT.match(following[first.end():]):
            return True
    return False


def likely_causes(code: str) -> list[str]:
    """The CAUSES whose pattern appears in `code`, in CAUSES order."""
    code = strip_comments_and_directives(code)
    found: set[str] = set()
    variable_globals: set[str] = set()
    for statement in _top_level_statements(code):
        match = _GLOBAL_WITH_INITIALISER.match(statement)
        if match and not statement.startswith("const"):
            expression = match.group(1)
            if re.search(r"\bi[A-Z]\w*", expression):
                found.add("global-init-uniform")
            if any(name not in _CONSTRUCTORS for name in re.findall(r"\b(\w+)\s*\(", expression)):
                found.add("global-init-call")
            if set(re.findall(r"\b([A-Za-z_]\w*)\b", expression)) & variable_globals:
                found.add("global-init-call")
        declared = _DECLARATION_START.match(statement)
        if declared and not statement.startswith("const"):
            # Names declared here, read by later initialisers (a same-statement reference is rare).
            variable_globals.update(re.findall(r"(?:^|,)\s*(\w+)\s*(?:=|,|$|\[)", statement[declared.end():]))
    if _has_comma_operator(code):
        found.add("comma-operator")
    if "gl_FragCoord" in code:
        found.add("gl_FragCoord")
    if re.search(r"\bdFdy\b", code):
        found.add("derivatives")
    if re.search(r"[-+*/]=[^=;]*[-+*/]=", code):
        found.add("chained-assignment")
    if _reads_out_colour_first(code):
        found.add("uninitialised-out")
    if _reads_local_first(code):
        found.add("uninitialised-local")
    if re.search(r"fract\s*\([^;]*\bsin\s*\(", code):
        found.add("sin-hash")
    return [name for name in CAUSES if name in found]


# Causes only a multi-pass program can have, read from its record as well as its code.
MULTIPASS_CAUSES: dict[str, str] = {
    "buffer-mipmap": "wgpu: a buffer read through a mipmap filter is sampled linearly, without mipmaps",
    "keyboard": "wgpu: the keyboard is an 8x8 black texture with alpha 0 (Shadertoy: 256x3, alpha 1)",
    "fract-hash": "either: a hash without sine, fract(p * .1031)..., amplifies last-bit differences too",
    "feedback": "either: a buffer reads its own or a later buffer's last frame, so differences can grow",
}
_FRACT_HASH = re.compile(r"fract\s*\([^;]*\*\s*(?:vec[234]\s*\()?\s*0?\.1031")
MULTIPASS_WGPU_SIDE = WGPU_SIDE | frozenset(
    name for name, text in MULTIPASS_CAUSES.items() if text.startswith("wgpu"))
# wgpu-shadertoy flips fragCoord in the Image pass only: in a buffer, gl_FragCoord and dFdy agree with
# fragCoord (both from the top, stored and sampled the same way), so these stay image-pass patterns.
_IMAGE_PASS_ONLY = frozenset({"gl_FragCoord", "derivatives"})
_BUFFER_ORDER = "ABCD"


_OBJECT_MACRO = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)(?![\w(])[ \t]*(.*)$", re.MULTILINE)


def expand_object_macros(code: str, depth: int = 3) -> str:
    """Expand `#define NAME body` macros (no parameters), so a macro that opens `mainImage` (`#define Main
    void mainImage(...){`, common in multi-pass programs) does not make its body look like globals."""
    code = strip_comments(code)
    macros = dict(_OBJECT_MACRO.findall(code))
    if not macros:
        return code
    use = re.compile(r"\b(" + "|".join(map(re.escape, macros)) + r")\b")
    expanded = "\n".join(line for line in code.split("\n") if not line.lstrip().startswith("#"))
    for _ in range(depth):
        expanded = use.sub(lambda match: " " + macros[match.group(1)] + " ", expanded)
    return expanded


def _buffer_letter(name: str) -> str:
    return name.strip()[-1:].upper()


def _reads(renderpass: dict) -> list[dict]:
    return [i for i in renderpass.get("inputs") or [] if isinstance(i, dict)]


def _feeds_back(renderpass: dict, buffer_of_input: dict[int, str]) -> bool:
    """A buffer pass reading itself or a later buffer: it sees that buffer's previous frame."""
    own = _buffer_letter(str(renderpass.get("name", "")))
    for read in _reads(renderpass):
        letter = buffer_of_input.get(read.get("id"), "")
        if read.get("ctype") == "buffer" and letter and _BUFFER_ORDER.find(letter) >= _BUFFER_ORDER.find(own):
            return True
    return False


def multipass_causes(shader: dict) -> list[str]:
    """The CAUSES and MULTIPASS_CAUSES a Shadertoy API `Shader` with Buffer A-D passes shows, in that order."""
    passes = [p for p in shader.get("renderpass") or [] if isinstance(p, dict)]
    common = "\n".join(str(p.get("code", "")) for p in passes if p.get("type") == "common")
    found: set[str] = set()
    for renderpass in passes:
        kind = renderpass.get("type")
        if kind in ("image", "buffer"):
            patterns = set(likely_causes(expand_object_macros(common + "\n" + str(renderpass.get("code", "")))))
            found |= patterns if kind == "image" else patterns - _IMAGE_PASS_ONLY
    # Which buffer an input reads: the pass whose output has that input's id (as on Shadertoy).
    buffer_of_input = {output.get("id"): _buffer_letter(str(p.get("name", "")))
                       for p in passes if p.get("type") == "buffer" for output in p.get("outputs") or []
                       if isinstance(output, dict)}
    if any(_FRACT_HASH.search(strip_comments(str(p.get("code", "")))) for p in passes):
        found.add("fract-hash")
    reads = [read for p in passes for read in _reads(p)]
    if any(r.get("ctype") == "buffer" and (r.get("sampler") or {}).get("filter") == "mipmap" for r in reads):
        found.add("buffer-mipmap")
    if any(r.get("ctype") == "keyboard" for r in reads):
        found.add("keyboard")
    if any(p.get("type") == "buffer" and _feeds_back(p, buffer_of_input) for p in passes):
        found.add("feedback")
    return [name for name in list(CAUSES) + list(MULTIPASS_CAUSES) if name in found]
