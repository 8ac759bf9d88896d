"""validate and the export image pass on a real two-node Ray cluster (`ray start --head`, then a second
`ray start --address` on this machine) give the local pool's verdicts, frame stats and shard bytes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.cli import harvest
from tests.ray_cluster import ClusterStartError, ClusterState, LocalRayCluster

pytest.importorskip("ray")

SAMPLES = Path(__file__).resolve().parent.parent / "harvester" / "samples"
# ok, blank, compile_error and needs_input programs; no slow one, the executor tests time those out.
PROGRAMS = ("st_plasma.frag", "st_truchet.frag", "gs_waves.frag", "bos_shapes.frag", "raw_rings.frag",
            "bad_undeclared.frag", "blank_solid.frag", "st_microphone.json")
RENDER = ("--workers", "2")  # two one-CPU actors on two one-CPU nodes: one actor on each node
VALIDATE = ("validate", "--size", "32", "--frames", "2", "--timeout", "60", *RENDER)
EXPORT = ("export", "--images-per-program", "1", "--size", "32", *RENDER)
CLI_TIMEOUT_S = 240

VALIDATION_COLUMNS = ("verdict", "reason", "error_line", "animated", "frame_means", "frame_stds", "thumbnail_png",
                      "size", "frames", "renderer_version")


@pytest.fixture(scope="module")
def cluster():
    try:
        with LocalRayCluster(nodes=2) as running:
            yield running
    except ClusterStartError as exc:
        pytest.skip(f"cannot start a Ray cluster here: {exc}")


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory) -> dict[str, Path]:
    """The same crawled catalog twice: one for the local pool, one for the cluster."""
    root = tmp_path_factory.mktemp("ray-cluster")
    programs = root / "programs"
    programs.mkdir()
    for name in PROGRAMS:
        shutil.copy(SAMPLES / name, programs / name)
    first = root / "local" / "harvest.db"
    first.parent.mkdir()
    crawled = harvest("crawl", "--source", "local", "--path", str(programs), "--db", str(first))
    assert crawled.returncode == 0, crawled.stderr
    second = root / "ray" / "harvest.db"
    second.parent.mkdir()
    with sqlite3.connect(first) as source, sqlite3.connect(second) as copy:
        source.backup(copy)
    return {"local": first, "ray": second}


def _on(cluster: LocalRayCluster) -> tuple[str, ...]:
    return ("--executor", "ray", "--ray-address", cluster.address)


def _run(*args: str, cluster: LocalRayCluster) -> None:
    done = harvest(*args, env=cluster.env, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def validated(cluster, catalogs) -> tuple[ClusterState, ClusterState]:
    """Both catalogs validated; the cluster's state before and after its run."""
    _run(*VALIDATE, "--db", str(catalogs["local"]), cluster=cluster)
    before = cluster.state()
    _run(*VALIDATE, "--db", str(catalogs["ray"]), *_on(cluster), cluster=cluster)
    return before, cluster.state()


def _rows(db: Path, query: str) -> dict[str, tuple]:
    with sqlite3.connect(db) as connection:
        return {row[0]: row[1:] for row in connection.execute(query)}


def _verdicts(db: Path) -> dict[str, tuple]:
    columns = ", ".join(f"v.{name}" for name in VALIDATION_COLUMNS)
    return _rows(db, f"SELECT p.source_id, {columns} FROM validations v JOIN programs p ON p.id = v.program_id")


def _scores_and_signatures(db: Path) -> tuple[dict[str, tuple], dict[str, tuple]]:
    scores = _rows(db, "SELECT p.source_id, s.diversity, s.colorfulness, s.fill, s.frames_used, s.method "
                       "FROM scores s JOIN programs p ON p.id = s.program_id")
    signatures = _rows(db, "SELECT p.source_id, i.method, i.hashes, i.mean_colours "
                           "FROM image_signatures i JOIN programs p ON p.id = i.program_id")
    return scores, signatures


def test_the_cluster_has_two_nodes_and_render_actors_ran_on_both(validated):
    before, after = validated
    assert len(before.alive_node_ids) == 2 and before.cpus == 2
    assert after.alive_node_ids == before.alive_node_ids
    assert after.actor_nodes.get("RenderActor") == before.alive_node_ids


def test_validate_on_the_cluster_gives_the_local_pools_verdicts_and_frame_stats(validated, catalogs):
    local, on_cluster = _verdicts(catalogs["local"]), _verdicts(catalogs["ray"])
    assert len(local) == len(PROGRAMS)
    assert {row[0] for row in local.values()} == {"ok", "blank", "compile_error", "needs_input"}
    assert on_cluster == local
    assert _scores_and_signatures(catalogs["ray"]) == _scores_and_signatures(catalogs["local"])
    assert all(rows for rows in _scores_and_signatures(catalogs["local"]))


def _files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_export_images_drawn_on_the_cluster_are_the_local_pools_shards_byte_for_byte(validated, catalogs, cluster):
    out = {kind: db.parent / "export" for kind, db in catalogs.items()}
    _run(*EXPORT, "--db", str(catalogs["local"]), "--out", str(out["local"]), cluster=cluster)
    _run(*EXPORT, "--db", str(catalogs["ray"]), "--out", str(out["ray"]), *_on(cluster), cluster=cluster)

    local, on_cluster = _files(out["local"]), _files(out["ray"])
    assert any(name.startswith("shards/") for name in local)
    assert sorted(on_cluster) == sorted(local)
    for name in local:  # export.json included: where the images were drawn is not recorded (nor the address)
        assert on_cluster[name] == local[name], name
    info = json.loads(local["export.json"])
    assert "executor" not in info["parameters"] and cluster.address not in on_cluster["export.json"].decode()
    assert info["images"] == info["exported"] > 0


@pytest.mark.parametrize("driver", ["no token", "token mode without a token", "another token"])
def test_a_driver_without_the_clusters_token_gets_one_line_saying_so(driver, cluster, catalogs, tmp_path, monkeypatch):
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    # An empty home has no ~/.ray/auth_token; Ray retries a refused connection 20 times (1 s each) by default.
    env = {"HOME": str(tmp_path), "RAY_gcs_server_port_wait_time_s": "2"}
    if driver != "no token":
        env["RAY_AUTH_MODE"] = "token"
    if driver == "another token":
        (tmp_path / "token").write_text("0" * 64)
        env["RAY_AUTH_TOKEN_PATH"] = str(tmp_path / "token")
    done = harvest(*VALIDATE, "--revalidate", "--db", str(catalogs["ray"]), *_on(cluster), env=env,
                   timeout=CLI_TIMEOUT_S)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: the Ray cluster at '{cluster.address}'"), done.stderr
    assert "RAY_AUTH_MODE=token" in lines[0] and "RAY_AUTH_TOKEN_PATH" in lines[0]
