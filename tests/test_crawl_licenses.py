"""Licence detection in comments, declared-id normalisation and the commercial-use table."""

from __future__ import annotations

import pytest

from corpus.licenses import (
    KNOWN_LICENSES,
    PUBLIC_DOMAIN,
    detect_license,
    is_commercial_safe,
    license_of_file,
    normalize_license_id,
)


@pytest.mark.parametrize(
    "code, expected",
    [
        ("// License Creative Commons Attribution-NonCommercial-ShareAlike 3.0 Unported License.\nvoid main(){}", "CC-BY-NC-SA-3.0"),
        ("/* CC BY-NC-SA 4.0 */", "CC-BY-NC-SA-4.0"),
        ("// licensed CC-BY-4.0", "CC-BY-4.0"),
        ("// http://creativecommons.org/licenses/by-sa/4.0/", "CC-BY-SA-4.0"),
        ("// Attribution-ShareAlike: Creative Commons Attribution-ShareAlike 3.0", "CC-BY-SA-3.0"),
        ("// CC0: do what you want", "CC0-1.0"),
        ("// The MIT License\n// Copyright (c) 2020 someone", "MIT"),
        ("// Distributed under the MIT license. See LICENSE file.", "MIT"),
        ("// SPDX-License-Identifier: Apache-2.0", "Apache-2.0"),
        ("// Licensed under the Apache License, Version 2.0", "Apache-2.0"),
        ("// Released under BSD license.", "BSD-3-Clause"),
        ("// BSD 2-Clause License", "BSD-2-Clause"),
        ("/* This is free and unencumbered software released into the public domain. */", "Unlicense"),
        ("/* public domain */", PUBLIC_DOMAIN),
        ("// GPLv3", "GPL-3.0"),
        ("// WTFPL", "WTFPL"),
    ],
)
def test_detect_license_in_comments(code, expected):
    assert detect_license(code) == expected


def test_code_outside_comments_and_plain_code_do_not_count():
    assert detect_license("void main(){ float MIT_license = 1.0; }") is None
    assert detect_license("// a nice tunnel\nvoid mainImage(out vec4 c, in vec2 p){ c = vec4(0); }") is None


def test_first_declaration_wins():
    assert detect_license("// MIT License\n// based on a CC BY-NC-SA 3.0 shader by someone") == "MIT"


def test_license_file_text():
    assert license_of_file("MIT License\n\nPermission is hereby granted, free of charge, ...") == "MIT"
    assert license_of_file("                                 Apache License\n                           Version 2.0, January 2004") == "Apache-2.0"
    bsd3 = "Redistribution and use in source and binary forms ... Neither the name of the copyright holder ..."
    assert license_of_file(bsd3) == "BSD-3-Clause"


@pytest.mark.parametrize(
    "declared, expected",
    [
        ("cc-by-nc-sa-3.0", "CC-BY-NC-SA-3.0"),
        ("mit", "MIT"),
        ("bsd-new", "BSD-3-Clause"),
        ("public-domain", PUBLIC_DOMAIN),
        ("proprietary-license", "LicenseRef-proprietary"),
        ("unknown-license-reference", "unknown"),
        ("cc-by-4.0 OR cc-by-3.0", "CC-BY-4.0 OR CC-BY-3.0"),
        ("cc-by-sa-4.0 WITH generic-exception", "CC-BY-SA-4.0 WITH generic-exception"),
        ("some odd thing", "LicenseRef-some-odd-thing"),
        (None, "unknown"),
    ],
)
def test_normalize_declared_ids(declared, expected):
    assert normalize_license_id(declared) == expected


def test_commercial_safety():
    assert is_commercial_safe("MIT") and is_commercial_safe("CC0-1.0") and is_commercial_safe(PUBLIC_DOMAIN)
    assert is_commercial_safe("CC-BY-4.0") and is_commercial_safe("CC-BY-SA-3.0")
    assert not is_commercial_safe("CC-BY-NC-SA-3.0") and not is_commercial_safe("CC-BY-ND-4.0")
    assert not is_commercial_safe("unknown") and not is_commercial_safe("") and not is_commercial_safe(None)
    assert not is_commercial_safe("LicenseRef-proprietary") and not is_commercial_safe("LicenseRef-made-up")
    assert is_commercial_safe("CC-BY-NC-SA-3.0 OR MIT") and not is_commercial_safe("CC-BY-NC-SA-3.0 AND MIT")
    assert is_commercial_safe("CC-BY-SA-4.0 WITH generic-exception")
    assert KNOWN_LICENSES["CC-BY-NC-SA-3.0"].share_alike and not KNOWN_LICENSES["unknown"].commercial_ok
