"""`git`: a repository created by the test with `git init`, crawled through a shallow clone."""

from __future__ import annotations

import subprocess

import pytest

from harvester.errors import HarvestError
from harvester.sources import SourceSettings
from tests.fakes.crawling import crawl, failures, programs

MIT_TEXT = """MIT License

Copyright (c) 2024 Test Person

Permission is hereby granted, free of charge, to any person obtaining a copy of this software...
"""


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "Test Person", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "Test Person", "GIT_COMMITTER_EMAIL": "t@example.com",
                        "GIT_AUTHOR_DATE": "2023-05-01T12:00:00Z", "GIT_COMMITTER_DATE": "2023-05-01T12:00:00Z",
                        "HOME": str(repo), "PATH": "/usr/bin:/bin:/usr/local/bin"})


@pytest.fixture()
def repo(tmp_path):
    root = tmp_path / "shaders-repo"
    (root / "shaders").mkdir(parents=True)
    (root / "LICENSE").write_text(MIT_TEXT)
    (root / "shaders" / "a.frag").write_text("void mainImage(out vec4 c, in vec2 p){ c = vec4(p.x); }\n")
    (root / "shaders" / "b.glsl").write_text(
        "// SPDX-License-Identifier: CC0-1.0\n#version 330\nout vec4 color;\nvoid main(){ color = vec4(1.0); }\n")
    (root / "shaders" / "vert.glsl").write_text("in vec3 p;\nvoid main(){ gl_Position = vec4(p, 1.0); }\n")
    (root / "notes.txt").write_text("void main(){}")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "shaders")
    return root


def test_clone_crawl_licences_urls_and_failures(catalog, repo, tmp_path):
    summary = crawl(catalog, "git", SourceSettings(url=str(repo)))
    assert (summary.new, summary.failed) == (2, 1)
    rows = {p.source_id.rsplit("/", 1)[-1]: p for p in programs(catalog)}
    a, b = rows["a.frag"], rows["b.glsl"]
    assert (a.license, a.license_origin) == ("MIT", "declared")  # from the repository's LICENSE
    assert (b.license, b.license_origin) == ("CC0-1.0", "detected")  # the file's own comment wins
    assert a.url == (repo / "shaders" / "a.frag").as_uri() and a.title == "a"
    assert a.author == "Test Person" and a.published_at.year == 2023
    assert a.dialect == "shadertoy" and b.dialect == "raw"
    assert failures(catalog)[0].reason.startswith("not a fragment program")
    clones = list((tmp_path / ".harvest-cache" / "git").iterdir())
    assert len(clones) == 1 and (clones[0] / "shaders" / "a.frag").is_file()
    assert subprocess.run(["git", "-C", str(clones[0]), "rev-parse", "--is-shallow-repository"],
                          capture_output=True, text=True).stdout.strip() == "true"


def test_rerun_fetches_new_commits_and_skips_known(catalog, repo):
    crawl(catalog, "git", SourceSettings(url=str(repo)))
    (repo / "shaders" / "c.frag").write_text("void mainImage(out vec4 c, in vec2 p){ c = vec4(p.y); }\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "more")
    again = crawl(catalog, "git", SourceSettings(url=str(repo)))
    assert (again.new, again.skipped, again.failed) == (1, 2, 1)


def test_bad_repository_is_one_clear_error(catalog, tmp_path):
    with pytest.raises(HarvestError, match="no such repository"):
        crawl(catalog, "git", SourceSettings(url=str(tmp_path / "missing")))
    (tmp_path / "plain").mkdir()
    with pytest.raises(HarvestError, match="git clone failed"):
        crawl(catalog, "git", SourceSettings(url=str(tmp_path / "plain")))
    with pytest.raises(HarvestError, match="needs --url"):
        crawl(catalog, "git", SourceSettings())
