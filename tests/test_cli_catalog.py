import json

from tests.cli import harvest


def test_db_upgrade_then_idempotent(tmp_path):
    db = tmp_path / "cat.db"
    first = harvest("db", "upgrade", "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert "upgraded from empty" in first.stdout
    second = harvest("db", "upgrade", "--db", str(db))
    assert second.returncode == 0 and "already at revision" in second.stdout


def test_stats_json_counts_pending(tmp_path):
    from corpus.db import open_catalog
    from corpus.ingest import ingest_program
    from corpus.records import FetchedPass, FetchedProgram

    db = tmp_path / "cat.db"
    catalog = open_catalog(db)
    with catalog.session() as s:
        for i, lic in enumerate(["MIT", "MIT", "unknown"]):
            ingest_program(
                s,
                FetchedProgram(
                    source="local", source_id=str(i), url="", title=f"p{i}", author="a", license=lic,
                    passes=[FetchedPass("image", f"void mainImage(out vec4 c, in vec2 p){{ c = vec4({i}.0); }}")],
                ),
            )
    catalog.close()
    result = harvest("stats", "--json", env={"HARVEST_DB": str(db)})
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["programs"] == 3
    assert stats["by_source"] == {"local": 3}
    assert stats["by_license"] == {"MIT": 2, "unknown": 1}
    assert stats["by_status"] == {"pending": 3}
    tables = harvest("stats", "--db", str(db))
    assert tables.returncode == 0 and "by licence" in tables.stdout


def test_not_a_catalog_is_one_line_error(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, this is not sqlite at all")
    result = harvest("stats", "--db", str(bogus))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "not a SQLite catalog" in result.stderr
    assert bogus.read_text() == "hello, this is not sqlite at all"
