"""The export format contract: keys, joined code round trip, reading catalogs and exports back."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from corpus.errors import CorpusError
from corpus.export_format import (
    SampleMetadata,
    joined_code,
    program_key,
    programs_from_catalog,
    read_export,
    source_from_frag,
)
from corpus.ingest import ingest_program
from corpus.models import Score, Validation
from corpus.records import ChannelInput, FetchedPass, FetchedProgram
from renderer.jobs import ProgramSource

IMAGE = "void mainImage(out vec4 c, in vec2 p){ c = vec4(p.x / iResolution.x, 0.5, K, 1.0); }"


def _fetched(source_id: str, code: str, common: str = "", title: str = "t") -> FetchedProgram:
    passes = [FetchedPass("image", code, [ChannelInput(1, "texture", "/media/x.png")])]
    if common:
        passes.append(FetchedPass("common", common))
    return FetchedProgram(source="shadertoy", source_id=source_id, url=f"https://example.org/{source_id}",
                          title=title, author="someone", passes=passes, license="CC0-1.0")


def test_program_key_has_no_dots_or_separators():
    assert program_key("shadertoy", 42) == "shadertoy-00000042"
    key = program_key("../My.Source/..", 7)
    assert "." not in key and "/" not in key and key.endswith("-00000007")


def test_joined_code_round_trip_keeps_common_first():
    source = ProgramSource("shadertoy", IMAGE, common="#define K 0.25", channels=(None, "texture", None, None))
    frag = joined_code(source)
    assert frag.index("#define K") < frag.index("mainImage")
    back = source_from_frag(frag, "shadertoy", ["texture" if i == 1 else None for i in range(4)])
    assert back.image == frag and back.common == "" and back.channels == source.channels


def test_programs_from_catalog_keeps_ok_non_duplicates(catalog):
    with catalog.session() as s:
        a = ingest_program(s, _fetched("a", IMAGE, common="#define K 0.25")).program_id
        b = ingest_program(s, _fetched("b", IMAGE.replace("K", "0.1"))).program_id
        twin = ingest_program(s, _fetched("c", IMAGE + "// fork", common="#define K 0.25")).program_id
        bad = ingest_program(s, _fetched("d", "void mainImage(")).program_id
        for pid in (a, b, twin):
            s.add(Validation(program_id=pid, verdict="ok"))
        s.add(Validation(program_id=bad, verdict="compile_error"))
        s.add(Score(program_id=a, diversity=0.5, colorfulness=0.2, fill=1.0))
        s.add(Score(program_id=b, diversity=0.1, colorfulness=0.2, fill=1.0))
    programs = programs_from_catalog(catalog)
    assert [p.program_id for p in programs] == [a, b]
    assert programs[0].source.common == "#define K 0.25" and programs[0].diversity == 0.5
    assert programs[0].key == f"shadertoy-{a:08d}" and programs[0].license == "CC0-1.0"
    assert [p.program_id for p in programs_from_catalog(catalog, min_diversity=0.3)] == [a]
    assert len(programs_from_catalog(catalog, limit=1)) == 1


def _metadata(key: str, pid: int) -> SampleMetadata:
    return SampleMetadata(key=key, id=pid, source="shadertoy", source_id="x", url="u", title="t", author="a",
                          license="MIT", license_origin="declared", dialect="shadertoy",
                          channels=[None, "texture", None, None], buffer_passes=0, verdict="ok", reason="",
                          diversity=0.4, colorfulness=0.1, fill=0.9, likes=None, published_at=None)


def test_read_export_from_shards_and_errors(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        read_export(tmp_path / "nothing")
    folder = tmp_path / "export"
    (folder / "shards").mkdir(parents=True)
    with pytest.raises(CorpusError, match="manifest.jsonl is missing"):
        read_export(folder)
    (folder / "manifest.jsonl").write_text("")
    with pytest.raises(CorpusError, match="empty"):
        read_export(folder)
    meta = _metadata("shadertoy-00000001", 1)
    with tarfile.open(folder / "shards" / "shard-000000.tar", "w") as tar:
        for name, data in ((f"{meta.key}.frag", IMAGE.encode()), (f"{meta.key}.json", json.dumps(meta.to_json()).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (folder / "manifest.jsonl").write_text(json.dumps({**meta.to_json(), "shard": "shard-000000.tar"}) + "\n")
    [program] = read_export(folder)
    assert program.source.image == IMAGE and program.source.channels[1] == "texture" and program.diversity == 0.4
    (folder / "manifest.jsonl").write_text(json.dumps({**meta.to_json(), "shard": "shard-000009.tar"}) + "\n")
    with pytest.raises(CorpusError, match="missing"):
        read_export(folder)
    (folder / "manifest.jsonl").write_text("{not json\n")
    with pytest.raises(CorpusError, match="not valid JSON"):
        read_export(folder)
    (folder / "shards" / "shard-000000.tar").write_bytes(b"garbage")
    (folder / "manifest.jsonl").write_text(json.dumps({**meta.to_json(), "shard": "shard-000000.tar"}) + "\n")
    with pytest.raises(CorpusError, match="unreadable"):
        read_export(folder)
