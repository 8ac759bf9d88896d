"""`harvest export`: selection, licence filters, webdataset shards, attribution, atomic writes and bad input."""

from __future__ import annotations

import json
import tarfile

import pytest
import webdataset as wds
from typer.testing import CliRunner

from corpus.errors import CorpusError
from corpus.export import ExportOptions, export_catalog
from corpus.export_format import read_export
from corpus.models import Score, Validation
from harvester.cli import app
from renderer.executor_spec import ExecutorSpec, make_executor
from renderer.jobs import FrameSpec, RenderJob
from tests.test_export_programs import (
    ANIMATED,
    COLOURFUL_STATIC,
    GREY_STRIPES,
    STATIC_GRADIENT,
    add_program,
)

LICENSES = {"animated": "CC0-1.0", "colourful": "CC-BY-NC-SA-3.0", "stripes": "MIT", "gradient": "unknown"}


def _scores(catalog, values: dict[int, float]) -> None:
    with catalog.session() as session:
        for pid, diversity in values.items():
            session.add(Score(program_id=pid, diversity=diversity, colorfulness=10.0, fill=0.5, frames_used=8,
                              method=__import__("corpus.scoring", fromlist=["METHOD"]).METHOD))


@pytest.fixture()
def filled(catalog):
    """Four ok programs (scored), a broken one and an exact duplicate; titles that try to escape."""
    ids = {}
    for name, code in [("animated", ANIMATED), ("colourful", COLOURFUL_STATIC), ("stripes", GREY_STRIPES),
                       ("gradient", STATIC_GRADIENT)]:
        ids[name] = add_program(catalog, name, code, license=LICENSES[name], title=f"../{name} <i>*[x](y)*</i>",
                                source="shadertoy" if name != "stripes" else "local")
    ids["broken"] = add_program(catalog, "broken", "void mainImage(", verdict="compile_error")
    ids["copy"] = add_program(catalog, "copy", ANIMATED + "\n// same code")
    _scores(catalog, {ids["animated"]: 0.7, ids["colourful"]: 0.35, ids["stripes"]: 0.45, ids["gradient"]: 0.05})
    return catalog, ids


def test_export_writes_shards_the_webdataset_package_reads(filled, tmp_path):
    catalog, ids = filled
    out = tmp_path / "data"
    summary = export_catalog(catalog, ExportOptions(out=out, min_diversity=0.3, shard_size=2))
    assert summary.exported == 3 and summary.shards == 2
    removed = {s.name: s.removed for s in summary.steps}
    assert removed["verdict is not ok"] == 1 and removed["exact duplicate"] == 1
    assert removed["diversity below 0.3 (or unscored)"] == 1
    shards = sorted(str(p) for p in (out / "shards").glob("shard-*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [f"shadertoy-{ids['animated']:08d}", f"shadertoy-{ids['colourful']:08d}",
                                              f"local-{ids['stripes']:08d}"]
    first = json.loads(samples[0]["json"])
    assert samples[0]["frag"].decode() == ANIMATED
    assert first["license"] == "CC0-1.0" and first["diversity"] == 0.7 and first["verdict"] == "ok"
    assert first["cluster"] == [ids["animated"], ids["copy"]]
    assert all("." not in s["__key__"] and {k for k in s if not k.startswith("__")} == {"frag", "json"} for s in samples)
    # The reader gives back what the renderer draws.
    programs = read_export(out)
    assert [p.program_id for p in programs] == [ids["animated"], ids["colourful"], ids["stripes"]]
    assert programs[0].source.image == ANIMATED and programs[0].source.dialect == "shadertoy"
    info = json.loads((out / "export.json").read_text())
    assert info["exported"] == 3 and info["catalog"] == catalog.path.name and len(info["selected_ids_sha256"]) == 64
    assert info["parameters"]["min_diversity"] == 0.3 and info["parameters"]["out"] == "data"
    assert str(tmp_path) not in (out / "export.json").read_text()  # folders by name only
    assert not list(tmp_path.glob(".data*"))  # no staging folder left


def test_attribution_lists_every_program_grouped_by_licence(filled, tmp_path):
    catalog, ids = filled
    export_catalog(catalog, ExportOptions(out=tmp_path / "d"))
    text = (tmp_path / "d" / "ATTRIBUTION.md").read_text()
    manifest = [json.loads(line) for line in (tmp_path / "d" / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 4
    for entry in manifest:
        assert entry["key"] in text and entry["url"] in text
    assert text.index("## CC-BY-NC-SA-3.0") < text.index("## CC0-1.0") < text.index("## MIT") < text.index("## unknown")
    assert "<i>" not in text and "\\<i\\>" in text  # titles cannot inject markup


def test_licence_filters(filled, tmp_path):
    catalog, ids = filled
    safe = export_catalog(catalog, ExportOptions(out=tmp_path / "safe", commercial_safe=True))
    assert {p.license for p in read_export(tmp_path / "safe")} == {"CC0-1.0", "MIT"}
    assert {s.name: s.removed for s in safe.steps}["licence not commercial-safe"] == 2  # NC and unknown
    export_catalog(catalog, ExportOptions(out=tmp_path / "mit", licenses=("mit", "CC-BY-NC-SA-3.0")))
    assert {p.license for p in read_export(tmp_path / "mit")} == {"MIT", "CC-BY-NC-SA-3.0"}
    export_catalog(catalog, ExportOptions(out=tmp_path / "src", source="local"))
    assert [p.origin for p in read_export(tmp_path / "src")] == ["local"]
    with pytest.raises(CorpusError, match=r"unknown licence id 'NOPE-9'.*known ids: .*CC0-1\.0"):
        export_catalog(catalog, ExportOptions(out=tmp_path / "bad", licenses=("NOPE-9",)))
    assert not (tmp_path / "bad").exists()


def test_bad_input_and_empty_selection(filled, tmp_path):
    catalog, _ = filled
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(CorpusError, match="not empty; pass --overwrite"):
        export_catalog(catalog, ExportOptions(out=busy))
    export_catalog(catalog, ExportOptions(out=busy, overwrite=True, limit=2, seed=3))
    assert not (busy / "keep.txt").exists() and len(read_export(busy)) == 2
    with pytest.raises(CorpusError, match="no program matches"):
        export_catalog(catalog, ExportOptions(out=tmp_path / "none", min_diversity=0.99))
    assert not (tmp_path / "none").exists() and not list(tmp_path.glob(".none*"))
    with pytest.raises(CorpusError, match="format"):
        export_catalog(catalog, ExportOptions(out=tmp_path / "x", format="zip"))


def test_interrupted_export_leaves_nothing(filled, tmp_path, monkeypatch):
    catalog, _ = filled
    import corpus.export as export_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "attribution_markdown", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_catalog(catalog, ExportOptions(out=tmp_path / "half"))
    assert not any(p.name.startswith((".half", "half")) for p in tmp_path.iterdir())


def test_images_and_jsonl_format_render_like_the_catalog(filled, tmp_path):
    catalog, ids = filled
    export_catalog(catalog, ExportOptions(out=tmp_path / "img", images_per_program=2, image_size=32, executor=ExecutorSpec(workers=2),
                                          min_diversity=0.4))
    with tarfile.open(tmp_path / "img" / "shards" / "shard-000000.tar") as tar:
        names = tar.getnames()
    key = f"shadertoy-{ids['animated']:08d}"
    assert [n for n in names if n.startswith(key)] == [f"{key}.frag", f"{key}.json", f"{key}.f0.png", f"{key}.f1.png"]
    export_catalog(catalog, ExportOptions(out=tmp_path / "j", format="jsonl"))
    programs = read_export(tmp_path / "j")
    assert not (tmp_path / "j" / "shards").exists() and len(programs) == 4
    # What comes back renders exactly like the catalog's own program.
    spec = (FrameSpec(time=1.3),)
    with make_executor(kind="local", workers=1) as executor:
        results = list(executor.run([RenderJob(key=0, program=programs[0].source, frames=spec, width=32, height=32,
                                               keep_frames=True)]))
    from corpus.export_format import programs_from_catalog

    original = programs_from_catalog(catalog)[0].source
    with make_executor(kind="local", workers=1) as executor:
        reference = list(executor.run([RenderJob(key=0, program=original, frames=spec, width=32, height=32,
                                                 keep_frames=True)]))
    assert (results[0].frames[0] == reference[0].frames[0]).all()


def test_cli_export_defaults_next_to_the_catalog(filled, tmp_path, monkeypatch):
    catalog, _ = filled
    monkeypatch.chdir(tmp_path.parent)
    runner = CliRunner()
    result = runner.invoke(app, ["export", "--db", str(catalog.path), "--min-diversity", "0.3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "export" / "manifest.jsonl").is_file()
    assert "near duplicate" in result.output and "0.3" in result.output
    again = runner.invoke(app, ["export", "--db", str(catalog.path), "--license", "Bogus"])
    assert again.exit_code == 1
    empty = runner.invoke(app, ["export", "--db", str(catalog.path), "--out", str(tmp_path / "e"), "--min-diversity", "1"])
    assert empty.exit_code == 1 and not (tmp_path / "e").exists()


def test_export_searches_near_duplicates_again_only_when_the_catalog_changed(catalog, tmp_path):
    from corpus.dedup import dedup_catalog
    from tests.test_dedup import FORK, RAYMARCHER

    original = add_program(catalog, "original", RAYMARCHER, likes=5)
    fork = add_program(catalog, "fork", FORK)
    runs: list[int] = []

    def refresh() -> None:
        runs.append(1)
        dedup_catalog(catalog, executor=ExecutorSpec(workers=1), images=False)

    def export(name: str, **changes):
        options = ExportOptions(out=tmp_path / name, executor=ExecutorSpec(workers=1), **changes)
        return export_catalog(catalog, options, refresh_dedup=refresh)

    first = export("first")
    assert runs == [1] and first.deduplicated and first.exported == 1
    assert [json.loads(line)["id"] for line in (tmp_path / "first" / "manifest.jsonl").read_text().splitlines()] == [original]
    assert json.loads((tmp_path / "first" / "export.json").read_text())["near_duplicate_marks_current"] is True
    again = export("again")
    assert runs == [1] and not again.deduplicated  # nothing changed: the marks are reused
    kept = export("kept", keep_duplicates=True)
    assert runs == [1] and kept.exported == 2
    add_program(catalog, "new", STATIC_GRADIENT)
    assert export("after-new").deduplicated and runs == [1, 1]
    with catalog.session() as session:  # a verdict that changes counts too: the fork is no longer ok
        from corpus.models import Validation

        session.get(Validation, fork).verdict = "timeout"
    assert export("after-verdict").deduplicated and runs == [1, 1, 1]


def test_export_without_a_refresh_says_the_marks_are_stale(filled, tmp_path):
    catalog, _ = filled
    export_catalog(catalog, ExportOptions(out=tmp_path / "out", executor=ExecutorSpec(workers=1)))
    assert json.loads((tmp_path / "out" / "export.json").read_text())["near_duplicate_marks_current"] is False


def test_two_exports_of_the_same_catalog_give_byte_identical_shards(filled, tmp_path):
    catalog, _ = filled
    options = dict(images_per_program=2, image_size=16, shard_size=2, executor=ExecutorSpec(workers=2))
    export_catalog(catalog, ExportOptions(out=tmp_path / "first", **options))
    export_catalog(catalog, ExportOptions(out=tmp_path / "second", **options))
    first = sorted((tmp_path / "first" / "shards").iterdir())
    assert [p.name for p in first] == ["shard-000000.tar", "shard-000001.tar"]
    for shard in first:
        assert shard.read_bytes() == (tmp_path / "second" / "shards" / shard.name).read_bytes()
        with tarfile.open(shard) as tar:
            assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in tar} == {(0, 0, 0, "", "", 0o644)}
    assert (tmp_path / "first" / "manifest.jsonl").read_bytes() == (tmp_path / "second" / "manifest.jsonl").read_bytes()


def test_a_program_that_fails_to_render_is_replaced_in_its_shard(filled, tmp_path):
    catalog, ids = filled
    with catalog.session() as session:  # validated once, but no longer compiles: the export drops it
        session.get(Validation, ids["broken"]).verdict = "ok"
    summary = export_catalog(catalog, ExportOptions(out=tmp_path / "d", images_per_program=1, image_size=16,
                                                    shard_size=2, executor=ExecutorSpec(workers=2)))
    assert {s.name: s.removed for s in summary.steps}["render failed during export"] == 1
    assert summary.exported == 4 and summary.shards == 2 and summary.images == 4
    sizes = []
    for shard in sorted((tmp_path / "d" / "shards").iterdir()):
        with tarfile.open(shard) as tar:
            sizes.append(sum(1 for name in tar.getnames() if name.endswith(".frag")))
    assert sizes == [2, 2]
    assert f"{ids['broken']:08d}" not in (tmp_path / "d" / "manifest.jsonl").read_text()
    assert summary.describe().startswith("exported 4 programs (2 shards, 4 images)")


def test_counts_of_one_are_singular(filled, tmp_path):
    catalog, ids = filled
    summary = export_catalog(catalog, ExportOptions(out=tmp_path / "one", source="local"))
    assert summary.describe() == f"exported 1 program (1 shard, 0 images) to {tmp_path / 'one'}"
    text = (tmp_path / "one" / "ATTRIBUTION.md").read_text()
    assert "holds 1 program by" in text and "## MIT (MIT License): 1 program\n" in text
