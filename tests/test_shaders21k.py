"""The Shaders21k release through `--source local`: unpacked or zipped, good and bad, rendered for real.

The fixture tree tests/data/shaders21k_mini/ mimics the release's layout with programs written for these
tests; the zips are built from it on the fly.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sqlmodel import select

from corpus.models import Program, Validation
from corpus.validation import ValidateOptions, validate
from harvester.crawl import CrawlOptions
from harvester.errors import HarvestError
from harvester.sources import SourceSettings
from harvester.sources.shaders21k import MAX_MEMBER_BYTES, Role, role_of
from renderer.executors import LocalExecutor
from tests.cli import harvest
from tests.fakes.crawling import crawl, failures, passes_of, programs

MINI = Path(__file__).parent / "data" / "shaders21k_mini"
RELEASE = MINI / "shader_codes"
TWIGL_MODES = {
    "classic_rings": "classic", "classic300_bands": "classic 300es", "classic_mrt_grid": "classic 300es mrt",
    "geek_swirl": "geek", "geek300_tiles": "geek 300es", "geeker_waves": "geeker", "geeker300_dots": "geeker 300es",
    "geeker_mrt_fade": "geeker 300es mrt", "geekest_noise": "geekest", "geekest300_spin": "geekest 300es",
    "geekest_mrt_space": "geekest 300es mrt", "geekest_ternary": "geekest 300es ternary-fix",
}
SHADERTOY_IDS = {"hv21kA", "Wt21kB"}


def _zip_of(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    """`folder` zipped as the release is (members under `shader_codes/`), plus `extra` members."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, (Path(folder.name) / path.relative_to(folder)).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return target


def _check_release_rows(catalog) -> None:
    rows = {(p.source, p.source_id): p for p in programs(catalog)}
    assert set(rows) == {("shadertoy", i) for i in SHADERTOY_IDS} | {("twigl", n) for n in TWIGL_MODES}
    stripes = rows[("shadertoy", "hv21kA")]
    assert (stripes.dialect, stripes.title, stripes.author) == ("shadertoy", "Fixture stripes", "harvest tests")
    assert stripes.url == "https://www.shadertoy.com/view/hv21kA" and stripes.license == "CC-BY-NC-SA-3.0"
    textured = passes_of(catalog, rows[("shadertoy", "Wt21kB")].id)
    assert textured[0].inputs == [{"channel": 0, "ctype": "texture", "src": "/media/a/fixture-noise.png",
                                   "filter": "mipmap", "wrap": "repeat", "vflip": True}]  # the record's sampler
    for name, mode in TWIGL_MODES.items():
        program = rows[("twigl", name)]
        assert (program.dialect, program.url, program.title) == ("twigl", "", name)
        assert [(p.kind, p.name) for p in passes_of(catalog, program.id)] == [("image", mode)]


def test_unpacked_release_imports_shadertoy_records_and_twigl_programs(catalog):
    summary = crawl(catalog, "local", SourceSettings(path=RELEASE))
    assert (summary.new, summary.failed) == (len(SHADERTOY_IDS) + len(TWIGL_MODES), 0)
    _check_release_rows(catalog)


def test_zipped_release_reads_the_same_without_unpacking(catalog, tmp_path):
    archive = _zip_of(RELEASE, tmp_path / "all_codes.zip")
    before = sorted(p.name for p in tmp_path.iterdir())
    summary = crawl(catalog, "local", SourceSettings(path=archive))
    assert (summary.new, summary.failed) == (len(SHADERTOY_IDS) + len(TWIGL_MODES), 0)
    _check_release_rows(catalog)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing unpacked beside it


def test_release_records_merge_with_dumps_of_the_same_id(catalog, tmp_path):
    dump = tmp_path / "dump.jsonl"
    dump.write_text(json.dumps({"id": "hv21kA", "name": "from a dump", "image_code": "void mainImage(out vec4 c, in vec2 p) { c = vec4(1.0); }"}) + "\n")
    assert crawl(catalog, "local", SourceSettings(path=dump)).new == 1
    summary = crawl(catalog, "local", SourceSettings(path=_zip_of(RELEASE, tmp_path / "all_codes.zip")))
    assert (summary.skipped, summary.new) == (1, len(SHADERTOY_IDS) + len(TWIGL_MODES) - 1)
    assert sum(1 for p in programs(catalog) if p.source_id == "hv21kA") == 1


def test_interrupted_zip_import_resumes_without_duplicates(catalog, tmp_path):
    archive = _zip_of(RELEASE, tmp_path / "all_codes.zip")
    first = crawl(catalog, "local", SourceSettings(path=archive), CrawlOptions(limit=5))
    assert first.new == 5
    rest = crawl(catalog, "local", SourceSettings(path=archive))
    assert rest.new == len(SHADERTOY_IDS) + len(TWIGL_MODES) - 5 and rest.skipped == 0
    assert len(programs(catalog)) == len(SHADERTOY_IDS) + len(TWIGL_MODES)


def test_every_fixture_renders_ok_through_validation(catalog):
    crawl(catalog, "local", SourceSettings(path=RELEASE))
    with LocalExecutor(workers=1) as pool:
        report = validate(catalog, pool, ValidateOptions(size=64, frames=2, timeout_s=30.0))
    assert report.done == len(SHADERTOY_IDS) + len(TWIGL_MODES)
    with catalog.session() as session:
        rows = session.exec(select(Program.source_id, Validation.verdict, Validation.reason)
                            .join(Validation, Validation.program_id == Program.id)).all()
    assert {source_id: (verdict, reason) for source_id, verdict, reason in rows if verdict != "ok"} == {}


# --- bad input ---------------------------------------------------------------------------------------------

GOOD_CODE = b"void main(){o=vec4(FC.xy/r,.5,1);}\n"
GOOD_MODE = b"geekest\nTrue\nFalse\nFalse\n"


def _corrupted(archive: Path, member: str) -> None:
    """Flip bytes in the middle of one member's compressed data (its header stays readable)."""
    with zipfile.ZipFile(archive) as reader:
        info = reader.getinfo(member)
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start + 2, start + min(info.compress_size, 12)):
        data[offset] ^= 0x5A
    archive.write_bytes(bytes(data))


def test_bad_members_are_recorded_failures_and_the_run_goes_on(catalog, tmp_path):
    prefix = "shader_codes/"
    big = b"o=vec4(1);" + b" " * MAX_MEMBER_BYTES  # compresses to almost nothing: a small zip bomb
    archive = _zip_of(RELEASE, tmp_path / "all_codes.zip", {
        prefix + "shadertoy/b/binary.fragment": bytes(range(256)) * 4,
        prefix + "shadertoy/p/plain.fragment": b"this is neither a record nor a program",
        prefix + "shadertoy/m/broken.fragment": b'{"info": {"id": "brok',
        prefix + "twigl/fragments/turbo.fragment": GOOD_CODE,
        prefix + "twigl/modes/turbo.fragment": b"turbo\nFalse\nFalse\nFalse\n",
        prefix + "twigl/fragments/orphan.fragment": GOOD_CODE,
        prefix + "twigl/fragments/bomb.fragment": big,
        prefix + "twigl/modes/bomb.fragment": GOOD_MODE,
        prefix + "twigl/fragments/crc.fragment": b"void main(){o=vec4(FC.xy/r, 0.25, 1);}\n" * 40,
        prefix + "twigl/modes/crc.fragment": GOOD_MODE,
        "../../escape/shadertoy/e/evil.fragment": b"not json",
    })
    _corrupted(archive, prefix + "twigl/fragments/crc.fragment")
    summary = crawl(catalog, "local", SourceSettings(path=archive))
    reasons = {f.item.split(":", 1)[1]: f.reason for f in failures(catalog)}
    assert summary.new == len(SHADERTOY_IDS) + len(TWIGL_MODES)
    assert reasons[prefix + "shadertoy/b/binary.fragment"] == "binary data: neither JSON nor code"
    assert reasons[prefix + "shadertoy/p/plain.fragment"] == "not a Shadertoy site-export JSON record"
    assert reasons[prefix + "shadertoy/m/broken.fragment"].startswith("malformed JSON")
    assert reasons[prefix + "twigl/fragments/turbo.fragment"].startswith("mode file: unknown TwiGL mode 'turbo'")
    assert reasons[prefix + "twigl/fragments/orphan.fragment"] == "no mode file twigl/modes/orphan.fragment beside it"
    assert reasons[prefix + "twigl/fragments/bomb.fragment"] == f"member larger than {MAX_MEMBER_BYTES:,} bytes"
    assert reasons[prefix + "twigl/fragments/crc.fragment"].startswith("corrupt zip member")
    assert reasons["../../escape/shadertoy/e/evil.fragment"] == "not a Shadertoy site-export JSON record"
    assert summary.failed == len(reasons) == 8
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "escape").exists()


def test_bad_files_of_an_unpacked_release_are_recorded(catalog, tmp_path):
    twigl = tmp_path / "shader_codes" / "twigl"
    (twigl / "fragments").mkdir(parents=True)
    (twigl / "modes").mkdir()
    (twigl / "fragments" / "ok.fragment").write_bytes(GOOD_CODE)
    (twigl / "modes" / "ok.fragment").write_bytes(GOOD_MODE)
    (twigl / "fragments" / "odd.fragment").write_bytes(GOOD_CODE)
    (twigl / "modes" / "odd.fragment").write_bytes(b"geeker\nmaybe\n")
    (twigl / "fragments" / "json.fragment").write_bytes(b'{"not": "code"}')
    (twigl / "modes" / "json.fragment").write_bytes(GOOD_MODE)
    summary = crawl(catalog, "local", SourceSettings(path=tmp_path / "shader_codes"))
    reasons = {f.item: f.reason for f in failures(catalog)}
    assert (summary.new, summary.failed) == (1, 2)
    assert reasons == {"twigl/fragments/odd.fragment": "mode file: mode file line 2 is 'maybe', not True or False",
                       "twigl/fragments/json.fragment": "not GLSL code (no statements)"}


def test_unusable_zip_path_is_one_clear_error(catalog, tmp_path):
    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("holiday/beach.txt", "sand")
    with pytest.raises(HarvestError, match=r"photos\.zip: not a Shaders21k release"):
        crawl(catalog, "local", SourceSettings(path=other))
    broken = tmp_path / "all_codes.zip"
    broken.write_bytes(b"PK\x03\x04 this was cut off")
    with pytest.raises(HarvestError, match=r"all_codes\.zip: not a readable zip file"):
        crawl(catalog, "local", SourceSettings(path=broken))
    assert programs(catalog) == []


def test_unusable_zip_from_the_command_line(tmp_path):
    broken = tmp_path / "all_codes.zip"
    broken.write_bytes(b"garbage")
    result = harvest("crawl", "--source", "local", "--path", str(broken), "--db", str(tmp_path / "h.db"))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not a readable zip file" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_a_foreign_zip_inside_a_folder_is_one_failure(catalog, tmp_path):
    with zipfile.ZipFile(tmp_path / "textures.zip", "w") as archive:
        archive.writestr("rock.png", b"\x89PNG")
    (tmp_path / "one.frag").write_text("void mainImage(out vec4 c, in vec2 p) { c = vec4(1.0); }\n")
    summary = crawl(catalog, "local", SourceSettings(path=tmp_path))
    assert (summary.new, summary.failed) == (1, 1)
    assert failures(catalog)[0].item == "textures.zip" and "not a Shaders21k release" in failures(catalog)[0].reason


@pytest.mark.parametrize("name, role", [
    ("shader_codes/shadertoy/a/abc.fragment", Role.SHADERTOY),
    ("shader_codes/twigl/fragments/x.fragment", Role.TWIGL),
    ("twigl/modes/x.fragment", Role.MODE),
    ("elsewhere/x.fragment", Role.OTHER),
    ("shader_codes/shaders_list", None),
])
def test_roles_come_from_the_layout(name, role):
    assert role_of(name) == role


def test_an_export_keeps_each_twigl_programs_mode(tmp_path):
    from sqlmodel import select

    from corpus.db import open_catalog
    from corpus.export_format import read_export
    from corpus.models import Program
    from corpus.render_source import load_program_sources
    from tests.cli import harvest

    db = str(tmp_path / "harvest.db")
    assert harvest("crawl", "--source", "local", "--path", str(RELEASE), "--db", db).returncode == 0
    assert harvest("validate", "--workers", "2", "--size", "32", "--db", db).returncode == 0
    done = harvest("export", "--out", str(tmp_path / "export"), "--source", "twigl", "--keep-duplicates", "--db", db)
    assert done.returncode == 0, done.stderr
    catalog = open_catalog(db)
    with catalog.session() as session:
        ids = list(session.exec(select(Program.id).where(Program.source == "twigl")))
        modes = {pid: source.mode for pid, source in load_program_sources(session, ids).items()}
    catalog.close()
    exported = {p.program_id: p.source.mode for p in read_export(tmp_path / "export")}
    assert exported and exported == {pid: modes[pid] for pid in exported}
    assert all(mode for mode in exported.values())
