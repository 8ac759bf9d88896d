import sqlite3

from sqlmodel import select

from corpus.db import head_revision, open_catalog, schema_revision, upgrade
from corpus.ingest import IngestOutcome, decompress_record, ingest_program
from corpus.models import Program, ProgramPass
from corpus.normalize import code_hash, normalize_code, sniff_dialect
from corpus.records import ChannelInput, FetchedPass, FetchedProgram


def _program(source_id: str, code: str, title: str = "t") -> FetchedProgram:
    return FetchedProgram(
        source="local",
        source_id=source_id,
        url=f"file:///{source_id}",
        title=title,
        author="me",
        passes=[FetchedPass("image", code, [ChannelInput(0, "texture", "/media/a/x.png")])],
        raw={"id": source_id},
    )


def test_migrations_from_empty_and_idempotent(tmp_path):
    path = tmp_path / "c.db"
    catalog = open_catalog(path)
    assert schema_revision(catalog.engine) == head_revision()
    assert upgrade(catalog.engine) == (head_revision(), head_revision())
    tables = {r[0] for r in sqlite3.connect(path).execute("select name from sqlite_master where type='table'")}
    assert {"programs", "program_passes", "crawl_runs", "crawl_cursors", "validations", "scores"} <= tables
    assert sqlite3.connect(path).execute("pragma journal_mode").fetchone()[0] == "wal"


def test_normalized_hash_ignores_comments_and_whitespace():
    a = "void mainImage(out vec4 c, in vec2 p){ c = vec4(1.0); } // hi"
    b = "/* header */\nvoid mainImage( out vec4 c,in vec2 p )\n{\n  c=vec4(1.0);\n}\n"
    assert normalize_code(a) == normalize_code(b)
    assert code_hash([("image", a)]) == code_hash([("image", b)])
    assert code_hash([("image", a)]) != code_hash([("image", a.replace("1.0", "0.5"))])


def test_sniff_dialect():
    assert sniff_dialect("void mainImage(out vec4 f, in vec2 c){}") == "shadertoy"
    assert sniff_dialect("uniform float time;\nuniform vec2 resolution;\nvoid main(){gl_FragColor=vec4(1);}") == "glslsandbox"
    assert sniff_dialect("uniform vec2 u_resolution; void main(){gl_FragColor=vec4(1);}") == "bookofshaders"
    assert sniff_dialect("out vec4 c; void main(){c=vec4(1);}") == "raw"


def test_ingest_new_unchanged_updated_duplicate(catalog):
    code = "void mainImage(out vec4 c, in vec2 p){ c = vec4(1.0); }"
    with catalog.session() as s:
        first = ingest_program(s, _program("a", code))
        again = ingest_program(s, _program("a", code))
        twin = ingest_program(s, _program("b", code + " // a fork with a comment"))
        changed = ingest_program(s, _program("a", code.replace("1.0", "0.5")))
    assert first.outcome == IngestOutcome.NEW
    assert again.outcome == IngestOutcome.UNCHANGED
    assert twin.outcome == IngestOutcome.DUPLICATE and twin.duplicate_of == first.program_id
    assert changed.outcome == IngestOutcome.UPDATED
    with catalog.session() as s:
        rows = s.exec(select(Program).order_by(Program.id)).all()
        assert [r.source_id for r in rows] == ["a", "b"]
        assert rows[0].dialect == "shadertoy"
        assert decompress_record(rows[0].raw_record) == {"id": "a"}
        passes = s.exec(select(ProgramPass).where(ProgramPass.program_id == rows[0].id)).all()
        assert len(passes) == 1 and "0.5" in passes[0].code
        assert passes[0].inputs == [{"channel": 0, "ctype": "texture", "src": "/media/a/x.png"}]


def test_sandbox_port_of_a_shadertoy_program_is_not_shadertoy():
    port = (
        "uniform float time; uniform vec2 resolution;\n"
        "void mainImage(out vec4 c, in vec2 p){ c = vec4(p / resolution, sin(time), 1.0); }\n"
        "void main(){ mainImage(gl_FragColor, gl_FragCoord.xy); }\n"
    )
    assert sniff_dialect(port) == "glslsandbox"
