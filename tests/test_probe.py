"""`harvest probe`: linear and kNN probes of frozen features on tiny synthetic datasets, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from harvester.cli import app  # noqa: E402
from pretrain.errors import PretrainError  # noqa: E402
from pretrain.knn import knn_predict, knn_probe  # noqa: E402
from pretrain.models import BackboneSpec, build_backbone  # noqa: E402
from pretrain.probe import load_probe_data, run_probe  # noqa: E402
from tests.cli import harvest  # noqa: E402


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors gain nothing from intra-op threads, and spinning threads crawl on a shared, busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


COLOURS = np.array([[230, 40, 40], [40, 200, 60], [50, 60, 220]], dtype=np.float32)


def synthetic(count: int, seed: int, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Three classes told apart by their dominant colour, under noise and random brightness."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = COLOURS[labels][:, None, None, :] * rng.uniform(0.6, 1.0, (count, 1, 1, 1))
    images = images + rng.normal(0, 25, (count, size, size, 3))
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture()
def tiny_npz(tmp_path) -> Path:
    x_train, y_train = synthetic(90, 0)
    x_test, y_test = synthetic(30, 1)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             class_names=np.array(["red", "green", "blue"]))
    return path


def test_random_features_separate_colours(tiny_npz):
    torch.manual_seed(0)
    data = load_probe_data(tiny_npz, 32)
    report = run_probe(build_backbone(BackboneSpec("resnet18", 8)), data, 32, torch.device("cpu"),
                       checkpoint="random", data_name="tiny")
    assert [s.stage for s in report.stages] == [1, 2, 3, 4]
    assert [s.dim for s in report.stages] == [8, 16, 32, 64]
    assert report.best.test_accuracy >= 0.9
    assert report.classes == 3 and report.train_images == 90
    assert all(s.knn is not None and (s.knn.k, s.knn.temperature) == (20, 0.07) for s in report.stages)
    assert max(s.knn.test_accuracy for s in report.stages) >= 0.9
    entries = [stage["knn"] for stage in report.to_json()["stages"]]
    assert [sorted(entry) for entry in entries] == [["k", "temperature", "test_accuracy"]] * 4


def _blobs(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs in 8 dimensions, around opposite corners, far apart next to their spread."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 2
    centres = torch.where(labels[:, None] == 0, 1.0, -1.0) * torch.ones(count, 8)
    return centres + 0.3 * torch.randn(count, 8, generator=generator), labels


def test_knn_probe_separates_two_blobs():
    train, y_train = _blobs(60, 0)
    test, y_test = _blobs(40, 1)
    result = knn_probe(train, y_train, test, y_test, classes=2)
    assert (result.k, result.temperature, result.test_accuracy) == (20, 0.07, 1.0)
    few = knn_probe(train[:5], y_train[:5], test, y_test, classes=2)
    assert few.k == 5 and few.test_accuracy == 1.0  # k is capped by the train split


def test_knn_votes_weigh_the_closer_neighbours_more():
    """One neighbour of class 0 almost on the query, two of class 1 further off: a plain majority of the three would
    say 1, the exp(similarity / 0.07) weights say 0. Scaling a feature does not move it (cosine similarity)."""
    query = torch.tensor([[1.0, 0.0]])
    train = torch.tensor([[5.0, 0.5], [1.0, 1.0], [1.0, -1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    assert knn_predict(train, labels, query, classes=2, k=3).tolist() == [0]
    assert knn_predict(train, labels, query, classes=2, k=3, temperature=100.0).tolist() == [1]


def test_cli_probe_random_and_image_folder(tiny_npz, tmp_path):
    from PIL import Image

    folder = tmp_path / "folder"
    x, y = synthetic(24, 2)
    for split, part in (("train", slice(0, 18)), ("test", slice(18, 24))):
        for i, (image, label) in enumerate(zip(x[part], y[part])):
            target = folder / split / ["red", "green", "blue"][label]
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target / f"{i}.png")
    runner = CliRunner()
    for data in (tiny_npz, folder):
        out = tmp_path / f"report-{data.name}.json"
        result = runner.invoke(app, ["probe", "--checkpoint", "random", "--data", str(data), "--width", "8",
                                     "--size", "32", "--stage", "best", "--out", str(out), "--device", "cpu"])
        assert result.exit_code == 0, result.output
        assert "kNN test top-1" in result.output
        report = json.loads(out.read_text())
        assert report["best_stage"]["stage"] in (1, 2, 3, 4) and len(report["stages"]) == 4
        assert all(0.0 <= stage["knn"]["test_accuracy"] <= 1.0 for stage in report["stages"])


def test_probe_refuses_bad_input(tmp_path, tiny_npz):
    x, y = synthetic(10, 0)
    mismatched = tmp_path / "mismatched.npz"
    np.savez(mismatched, x_train=x, y_train=y[:5], x_test=x, y_test=y)
    grey = tmp_path / "grey.npz"
    np.savez(grey, x_train=x[..., 0], y_train=y, x_test=x[..., 0], y_test=y)
    sizes = tmp_path / "sizes.npz"
    np.savez(sizes, x_train=x, y_train=y, x_test=x[:, :8, :8], y_test=y)
    for path, words in ((mismatched, "labels"), (grey, "(N, H, W, 3)"), (sizes, "test images"),
                        (tmp_path / "none.npz", "does not exist")):
        with pytest.raises(PretrainError, match=None) as caught:
            load_probe_data(path, 32)
        assert words in str(caught.value)
    result = CliRunner().invoke(app, ["probe", "--checkpoint", str(tiny_npz), "--data", str(tiny_npz)])
    assert isinstance(result.exception, PretrainError) and "not a readable checkpoint" in str(result.exception)


def test_probe_refuses_a_checkpoint_of_another_arch(tmp_path, tiny_npz):
    from pretrain.checkpoints import CHECKPOINT_FORMAT, save_atomic
    from pretrain.objectives import SupervisedObjective

    objective = SupervisedObjective(build_backbone(BackboneSpec("resnet18", 8)), 3)
    path = tmp_path / "checkpoint.pt"
    save_atomic({"format": CHECKPOINT_FORMAT, "backbone_spec": BackboneSpec("resnet18", 8).to_json(),
                 "objective": objective.state_dict()}, path)
    # The real command line, as a user runs it: one line on stderr, exit status 1.
    result = harvest("probe", "--checkpoint", str(path), "--data", str(tiny_npz), "--arch", "resnet50")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: checkpoint {path} holds a resnet18 backbone, not resnet50"]
    ok = CliRunner().invoke(app, ["probe", "--checkpoint", str(tmp_path), "--data", str(tiny_npz), "--size", "32",
                             "--stage", "last", "--device", "cpu"])
    assert ok.exit_code == 0, ok.output


def test_without_torch_the_commands_say_how_to_install_it(tmp_path):
    import subprocess
    import sys

    script = ("import sys; sys.modules['torch'] = None\n"
              "from harvester.cli import main\n"
              "sys.argv = ['harvest', 'probe', '--checkpoint', 'random', '--data', 'x.npz']\n"
              "main()\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: pretraining needs torch: pip install 'harvest[train]'"
