"""Exports never carry the curator's local paths, even from catalogs that stored absolute ones."""

from __future__ import annotations

import json
import tarfile
from pathlib import PurePosixPath

from corpus.export import ExportOptions, export_catalog
from corpus.export_format import read_export
from corpus.models import CrawlRun, Program
from corpus.public_identity import public_identity
from tests.test_export_programs import ANIMATED, COLOURFUL_STATIC, GREY_STRIPES, add_program

HASH = "0123456789abcdef" * 4
ROOTS = (PurePosixPath("/home/curator/shaders/loose"), PurePosixPath("/home/curator/one.frag"))


def test_absolute_paths_become_names_relative_to_the_import_root():
    inside = public_identity("/home/curator/shaders/loose/nature/sea.frag", "file:///home/curator/shaders/loose/nature/sea.frag",
                             HASH, ROOTS)
    assert inside.source_id == "nature/sea.frag@0123456789ab" and inside.url is None
    assert public_identity("/home/curator/one.frag", "", HASH, ROOTS).source_id == "one.frag@0123456789ab"
    assert public_identity("/elsewhere/x.glsl", "", HASH, ROOTS).source_id == "x.glsl@0123456789ab"
    assert public_identity("file:///home/curator/shaders/loose/a%20b.frag", "", HASH, ROOTS).source_id == "a b.frag@0123456789ab"
    assert public_identity("C:\\Users\\curator\\sea.frag", "", HASH, ()).source_id == "sea.frag@0123456789ab"


def test_public_ids_and_urls_are_kept():
    kept = public_identity("Xs2abc", "https://www.shadertoy.com/view/Xs2abc", HASH, ROOTS)
    assert kept.source_id == "Xs2abc" and kept.url == "https://www.shadertoy.com/view/Xs2abc"
    assert public_identity("nature/sea.frag", "", HASH, ROOTS).source_id == "nature/sea.frag"  # already relative
    assert public_identity("github.com/o/r/a.frag", "javascript:alert(1)", HASH, ROOTS).url is None


def test_an_old_catalogs_local_files_are_exported_without_their_paths(catalog, tmp_path):
    root = tmp_path / "curator" / "shaders"
    ids = []
    for name, code in [("sub/sea.frag", ANIMATED), ("sky.frag", COLOURFUL_STATIC)]:
        path = root / name
        ids.append(add_program(catalog, str(path), code, source="local", title=path.stem, license="MIT"))
    lone = tmp_path / "curator" / "elsewhere" / "stripes.frag"
    ids.append(add_program(catalog, str(lone), GREY_STRIPES, source="local", title=lone.stem, license="MIT"))
    with catalog.session() as session:
        session.add(CrawlRun(source="local", scope=root.as_posix(), status="finished"))
        for program_id in ids:  # as the old local source stored them
            program = session.get(Program, program_id)
            program.url = PurePosixPath(program.source_id).as_uri()
        hashes = [session.get(Program, pid).code_hash[:12] for pid in ids]
    out = tmp_path / "published"
    export_catalog(catalog, ExportOptions(out=out, images_per_program=1, image_size=16))

    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [entry["source_id"] for entry in manifest] == [f"sub/sea.frag@{hashes[0]}", f"sky.frag@{hashes[1]}",
                                                          f"stripes.frag@{hashes[2]}"]
    assert [entry["url"] for entry in manifest] == [None, None, None]
    assert [p.url for p in read_export(out)] == [None, None, None]
    texts = [path.read_bytes() for path in out.rglob("*") if path.is_file()]
    with tarfile.open(out / "shards" / "shard-000000.tar") as tar:
        texts += [tar.extractfile(member).read() for member in tar if member.name.endswith(".json")]
    for text in texts:
        assert str(tmp_path).encode() not in text and b"file:" not in text


def test_the_catalogs_exportable_programs_carry_the_same_public_identity(catalog, tmp_path):
    from corpus.export_format import programs_from_catalog

    path = tmp_path / "loose" / "sea.frag"
    program_id = add_program(catalog, str(path), ANIMATED, source="local")
    with catalog.session() as session:
        session.add(CrawlRun(source="local", scope=(tmp_path / "loose").as_posix(), status="finished"))
        program = session.get(Program, program_id)
        program.url = path.as_uri()
        expected = f"sea.frag@{program.code_hash[:12]}"
    [exported] = programs_from_catalog(catalog)
    assert exported.source_id == expected and exported.url is None
