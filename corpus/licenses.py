"""Licence ids: detecting a declaration in a program's comments, normalising declared ids, and which
licences allow commercial use.

Ids are SPDX identifiers where SPDX has one (`MIT`, `CC-BY-NC-SA-3.0`, `CC0-1.0`), `LicenseRef-...` for
declarations SPDX has no id for, and `unknown` when nothing is known. Expressions such as
`CC-BY-4.0 OR MIT` are kept as expressions.

Decision: a bare "public domain" dedication is stored as `LicenseRef-public-domain`, not `CC0-1.0`: CC0
is a specific legal text the author did not choose, and the export can still treat both as
commercial-safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNKNOWN = "unknown"
PUBLIC_DOMAIN = "LicenseRef-public-domain"
PROPRIETARY = "LicenseRef-proprietary"


@dataclass(frozen=True)
class LicenseInfo:
    """What the dataset export needs to know about one licence.

    commercial_ok: the licence lets a dataset built from the program be used commercially without
    conditions that forbid it (NonCommercial, NoDerivatives, all rights reserved). Copyleft licences
    (GPL, CC-BY-SA) allow commercial use and are marked so; `share_alike` flags their extra duty.
    """

    id: str
    name: str
    commercial_ok: bool
    attribution: bool = True
    share_alike: bool = False


def _cc(id_: str, name: str) -> LicenseInfo:
    nc = "-NC" in id_
    nd = "-ND" in id_
    return LicenseInfo(id_, name, commercial_ok=not nc and not nd, share_alike="-SA" in id_)


_TABLE: list[LicenseInfo] = [
    LicenseInfo("MIT", "MIT License", True),
    LicenseInfo("Apache-2.0", "Apache License 2.0", True),
    LicenseInfo("BSD-2-Clause", "BSD 2-Clause License", True),
    LicenseInfo("BSD-3-Clause", "BSD 3-Clause License", True),
    LicenseInfo("ISC", "ISC License", True),
    LicenseInfo("Zlib", "zlib License", True),
    LicenseInfo("Unlicense", "The Unlicense", True, attribution=False),
    LicenseInfo("WTFPL", "Do What The F*ck You Want To Public License", True, attribution=False),
    LicenseInfo("CC0-1.0", "Creative Commons Zero 1.0", True, attribution=False),
    LicenseInfo(PUBLIC_DOMAIN, "Public domain dedication", True, attribution=False),
    LicenseInfo("GPL-2.0", "GNU General Public License 2.0", True, share_alike=True),
    LicenseInfo("GPL-3.0", "GNU General Public License 3.0", True, share_alike=True),
    LicenseInfo("LGPL-3.0", "GNU Lesser General Public License 3.0", True, share_alike=True),
    LicenseInfo("AGPL-3.0", "GNU Affero General Public License 3.0", True, share_alike=True),
    LicenseInfo("MPL-2.0", "Mozilla Public License 2.0", True, share_alike=True),
    LicenseInfo(PROPRIETARY, "All rights reserved / proprietary", False),
    LicenseInfo(UNKNOWN, "No licence known", False, attribution=True),
]
for _version in ("2.0", "2.5", "3.0", "4.0"):
    for _kind, _words in (
        ("BY", "Attribution"),
        ("BY-SA", "Attribution-ShareAlike"),
        ("BY-ND", "Attribution-NoDerivatives"),
        ("BY-NC", "Attribution-NonCommercial"),
        ("BY-NC-SA", "Attribution-NonCommercial-ShareAlike"),
        ("BY-NC-ND", "Attribution-NonCommercial-NoDerivatives"),
    ):
        _TABLE.append(_cc(f"CC-{_kind}-{_version}", f"Creative Commons {_words} {_version}"))

KNOWN_LICENSES: dict[str, LicenseInfo] = {info.id: info for info in _TABLE}

# Declared ids seen in dumps (ScanCode keys, lower-case SPDX, common spellings) -> our id.
_ALIASES: dict[str, str] = {
    **{info.id.lower(): info.id for info in _TABLE},
    "mit-license": "MIT",
    "apache2": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "bsd-new": "BSD-3-Clause",
    "bsd-3": "BSD-3-Clause",
    "bsd-simplified": "BSD-2-Clause",
    "bsd-2": "BSD-2-Clause",
    "cc0": "CC0-1.0",
    "public-domain": PUBLIC_DOMAIN,
    "publicdomain": PUBLIC_DOMAIN,
    "public domain": PUBLIC_DOMAIN,
    "unlicense": "Unlicense",
    "wtfpl-2.0": "WTFPL",
    "gpl-2.0-only": "GPL-2.0",
    "gpl-2.0-plus": "GPL-2.0",
    "gpl-3.0-only": "GPL-3.0",
    "gpl-3.0-plus": "GPL-3.0",
    "agpl-3.0-only": "AGPL-3.0",
    "lgpl-3.0-only": "LGPL-3.0",
    "proprietary-license": PROPRIETARY,
    "proprietary": PROPRIETARY,
    "all-rights-reserved": PROPRIETARY,
    "unknown-license-reference": UNKNOWN,
    "": UNKNOWN,
}

_OPERATOR = re.compile(r"\s+(AND|OR|WITH)\s+", re.IGNORECASE)


def normalize_license_id(declared: str | None) -> str:
    """A declared licence string (`cc-by-nc-sa-3.0`, `mit`, `bsd-new`, `cc-by-4.0 OR cc-by-3.0`) as our id.

    Ids we do not know become `LicenseRef-<declared>`, so nothing declared is lost.
    """
    if declared is None:
        return UNKNOWN
    parts = _OPERATOR.split(declared.strip())
    out: list[str] = []
    for index, part in enumerate(parts):
        if index % 2:  # an operator
            out.append(part.upper())
            continue
        key = part.strip().lower()
        if key in _ALIASES:
            out.append(_ALIASES[key])
        elif index and parts[index - 1].upper() == "WITH":
            out.append(part.strip())  # an exception name, kept as declared
        else:
            out.append("LicenseRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-", part.strip()).strip("-"))
    return " ".join(out) if out else UNKNOWN


def is_commercial_safe(license_id: str | None) -> bool:
    """True only when the licence (or expression) is known to allow commercial use; `unknown` never does."""
    if not license_id:
        return False
    parts = _OPERATOR.split(license_id.strip())
    ids = parts[0::2]
    operators = [op.upper() for op in parts[1::2]]
    if "WITH" in operators:  # an exception only adds permissions to the licence before it
        return is_commercial_safe(ids[0])
    verdicts = [KNOWN_LICENSES[i].commercial_ok if i in KNOWN_LICENSES else False for i in ids]
    if "OR" in operators and "AND" not in operators:
        return any(verdicts)
    return all(verdicts)


# --- detection in comments ------------------------------------------------------------------------

_COMMENT = re.compile(r"//[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)
_CC_VERSION = r"(?:[\s_-]*v?(\d\.\d))?"
_CC_URL = re.compile(
    r"creativecommons\.org/licenses/(by(?:-nc)?(?:-nd|-sa)?)(?:/(\d\.\d))?", re.IGNORECASE
)
_CC_SHORT = re.compile(
    r"\bCC[\s_-]*BY(?:[\s_-]*(NC))?(?:[\s_-]*(ND|SA))?(?:[\s_-]*(NC))?" + _CC_VERSION + r"(?!\w)", re.IGNORECASE
)
_CC_LONG = re.compile(
    r"creative[\s-]*commons[\s-]+(?:license[\s:,-]+)?attribution((?:[\s,-]*(?:non[\s-]*commercial|share[\s-]*alike|"
    r"no[\s-]*deriv(?:ative)?s?|unported|international|license|licence|generic))*)" + r"(?:[\s,-]*v?(\d\.\d))?",
    re.IGNORECASE,
)
_SIMPLE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bCC0\b|creativecommons\.org/publicdomain/zero|creative\s+commons\s+zero", re.IGNORECASE), "CC0-1.0"),
    (re.compile(r"\bunlicense\b|free and unencumbered software released into the public domain", re.IGNORECASE), "Unlicense"),
    (re.compile(r"\bMIT[\s-]+licen[sc]e\b|\blicen[sc]ed?\s+under\s+(?:the\s+)?MIT\b|\bMIT\s+licensed\b|"
                r"\blicen[sc]e\s*[:=]?\s*MIT\b|permission is hereby granted,? free of charge", re.IGNORECASE), "MIT"),
    (re.compile(r"apache[\s-]+licen[sc]e,?\s*(?:version\s*)?2(?:\.0)?|\bapache[\s-]2\.0\b", re.IGNORECASE), "Apache-2.0"),
    (re.compile(r"\bBSD[\s-]*3[\s-]*clause\b|\b3[\s-]*clause[\s-]*BSD\b|\bnew\s+BSD\b", re.IGNORECASE), "BSD-3-Clause"),
    (re.compile(r"\bBSD[\s-]*2[\s-]*clause\b|\b2[\s-]*clause[\s-]*BSD\b|\bsimplified\s+BSD\b", re.IGNORECASE), "BSD-2-Clause"),
    (re.compile(r"\bWTFPL\b|do what the f\S* you want to public licen", re.IGNORECASE), "WTFPL"),
    (re.compile(r"\bAGPL[\s-]*v?3|GNU\s+Affero\s+General\s+Public\s+Licen[sc]e", re.IGNORECASE), "AGPL-3.0"),
    (re.compile(r"\bLGPL[\s-]*v?3|GNU\s+Lesser\s+General\s+Public\s+Licen[sc]e", re.IGNORECASE), "LGPL-3.0"),
    (re.compile(r"\bGPL[\s-]*v?3|GNU\s+General\s+Public\s+Licen[sc]e,?\s+version\s+3", re.IGNORECASE), "GPL-3.0"),
    (re.compile(r"\bGPL[\s-]*v?2|GNU\s+General\s+Public\s+Licen[sc]e,?\s+version\s+2", re.IGNORECASE), "GPL-2.0"),
    (re.compile(r"\bMozilla\s+Public\s+Licen[sc]e,?\s+v?(?:ersion\s+)?2\.0|\bMPL[\s-]*2\.0", re.IGNORECASE), "MPL-2.0"),
    (re.compile(r"\bISC\s+licen[sc]e\b", re.IGNORECASE), "ISC"),
    (re.compile(r"\b(?:BSD[\s-]+licen[sc]ed?\b|(?:under|released\s+under)\s+(?:the\s+|a\s+)?BSD\b)", re.IGNORECASE), "BSD-3-Clause"),
    (re.compile(r"\b(?:in(?:to)?\s+(?:the\s+)?public\s+domain|public[\s-]+domain\s+(?:code|dedication|licen[sc]e))\b"
                r"|\blicen[sc]e\s*[:=]?\s*public[\s-]+domain|^[\s/*]*public[\s-]+domain\b", re.IGNORECASE | re.MULTILINE), PUBLIC_DOMAIN),
]
_SPDX_TAG = re.compile(r"SPDX-License-Identifier:\s*([^\n*]+)", re.IGNORECASE)
_BSD_BODY = re.compile(r"redistribution and use in source and binary forms", re.IGNORECASE)
_BSD_THIRD = re.compile(r"neither the name", re.IGNORECASE)


def _cc_id(nc: bool, nd: bool, sa: bool, version: str | None) -> str:
    kind = "BY" + ("-NC" if nc else "") + ("-ND" if nd else "-SA" if sa else "")
    return f"CC-{kind}-{version or _DEFAULT_CC_VERSION[kind]}"


# An unversioned "CC BY-NC-SA" on Shadertoy almost always means the site's 3.0 default.
_DEFAULT_CC_VERSION = {"BY": "4.0", "BY-SA": "4.0", "BY-ND": "4.0", "BY-NC": "4.0", "BY-NC-SA": "3.0", "BY-NC-ND": "4.0"}


def _matches(text: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for m in _SPDX_TAG.finditer(text):
        found.append((m.start(), normalize_license_id(m.group(1).strip())))
    for m in _CC_URL.finditer(text):
        kind = m.group(1).lower()
        found.append((m.start(), _cc_id("-nc" in kind, "-nd" in kind, "-sa" in kind, m.group(2))))
    for m in _CC_SHORT.finditer(text):
        nc = bool(m.group(1) or m.group(3))
        mod = (m.group(2) or "").upper()
        found.append((m.start(), _cc_id(nc, mod == "ND", mod == "SA", m.group(4))))
    for m in _CC_LONG.finditer(text):
        words = re.sub(r"[\s-]", "", (m.group(1) or "").lower())
        found.append((m.start(), _cc_id("noncommercial" in words, "noderiv" in words, "sharealike" in words, m.group(2))))
    for pattern, license_id in _SIMPLE_PATTERNS:
        m = pattern.search(text)
        if m:
            found.append((m.start(), license_id))
    m = _BSD_BODY.search(text)
    if m:
        found.append((m.start(), "BSD-3-Clause" if _BSD_THIRD.search(text) else "BSD-2-Clause"))
    return found


def detect_license_in_text(text: str) -> str | None:
    """The first licence declared anywhere in `text` (a LICENSE file, or comments already extracted)."""
    found = _matches(text)
    if not found:
        return None
    # Earliest declaration wins; at the same position the longer (more specific) pattern was added first.
    return min(found, key=lambda item: item[0])[1]


def detect_license(code: str) -> str | None:
    """The licence a program's comments declare, or None. Code outside comments is ignored, so an
    identifier such as `MIT_license` in code never counts."""
    comments = "\n".join(m.group(0) for m in _COMMENT.finditer(code))
    if not comments:
        return None
    return detect_license_in_text(comments)


def license_of_file(text: str) -> str | None:
    """The licence of a repository LICENSE/COPYING file (its whole text counts)."""
    head = text[:20000]
    return detect_license_in_text(head)


__all__ = [
    "KNOWN_LICENSES",
    "LicenseInfo",
    "PROPRIETARY",
    "PUBLIC_DOMAIN",
    "UNKNOWN",
    "detect_license",
    "detect_license_in_text",
    "is_commercial_safe",
    "license_of_file",
    "normalize_license_id",
]
