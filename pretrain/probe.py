"""Linear probe: frozen backbone features from each stage, a linear classifier on the train split, top-1 on test.

Features are the global average of each stage's map, standardised with the train split's statistics. The
classifier is a multinomial logistic regression fitted by L-BFGS; its L2 strength is chosen on a held-out fifth of
the train split, as is the "best" stage, so the test split is only ever used for the reported accuracy. Beside it,
each stage gets a weighted kNN probe (pretrain.knn) of the same features, which needs no fitting at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pretrain.augment import normalize
from pretrain.errors import PretrainError
from pretrain.knn import KnnResult, knn_probe
from pretrain.models import ResNet

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2)
VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class ProbeData:
    x_train: np.ndarray  # (N, H, W, 3) uint8
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class StageResult:
    stage: int  # 1..4
    dim: int
    l2: float
    val_accuracy: float
    test_accuracy: float
    knn: KnnResult | None = None  # the kNN probe of the same features


@dataclass
class ProbeReport:
    checkpoint: str
    arch: str
    width: int
    size: int
    data: str
    train_images: int
    test_images: int
    classes: int
    bn_recalibrated: bool
    stages: list[StageResult] = field(default_factory=list)

    @property
    def last(self) -> StageResult:
        return max(self.stages, key=lambda s: s.stage)

    @property
    def best(self) -> StageResult:
        """The stage with the best validation accuracy (ties: the later stage)."""
        return max(self.stages, key=lambda s: (s.val_accuracy, s.stage))

    def to_json(self) -> dict:
        payload = asdict(self)
        payload["last_stage"] = asdict(self.last)
        payload["best_stage"] = asdict(self.best)
        return payload


def _labels(values: np.ndarray, name: str, path: Path) -> np.ndarray:
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise PretrainError(f"{path}: {name} must be a 1-D array of integer class ids")
    if values.size and values.min() < 0:
        raise PretrainError(f"{path}: {name} has negative class ids")
    return values.astype(np.int64)


def _images(values: np.ndarray, name: str, path: Path) -> np.ndarray:
    if values.ndim != 4 or values.shape[-1] != 3:
        raise PretrainError(f"{path}: {name} must be images shaped (N, H, W, 3), got {tuple(values.shape)}")
    if values.dtype != np.uint8:
        raise PretrainError(f"{path}: {name} must be uint8 pixels, got {values.dtype}")
    return values


def _load_npz(path: Path) -> ProbeData:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PretrainError(f"{path} is not a readable .npz ({exc})") from None
    with archive:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in archive.files]
        if missing:
            raise PretrainError(f"{path} lacks {', '.join(missing)} (needs x_train, y_train, x_test, y_test)")
        x_train = _images(archive["x_train"], "x_train", path)
        x_test = _images(archive["x_test"], "x_test", path)
        y_train = _labels(archive["y_train"], "y_train", path)
        y_test = _labels(archive["y_test"], "y_test", path)
        names = tuple(str(n) for n in archive["class_names"]) if "class_names" in archive.files else ()
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise PretrainError(f"{path}: {len(x_train)}/{len(x_test)} images but {len(y_train)}/{len(y_test)} labels")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise PretrainError(f"{path}: train images are {x_train.shape[1:3]} but test images are {x_test.shape[1:3]}")
    count = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    if not names or len(names) < count:
        names = tuple(str(i) for i in range(count))
    return ProbeData(x_train, y_train, x_test, y_test, names)


def _read_split(folder: Path, classes: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    images, labels = [], []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES or not file.is_file():
                continue
            try:
                with Image.open(file) as image:
                    rgb = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
            except (UnidentifiedImageError, OSError) as exc:
                raise PretrainError(f"{file} is not a readable image ({exc})") from None
            images.append(np.asarray(rgb, dtype=np.uint8))
            labels.append(label)
    if not images:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _load_folder(path: Path, size: int) -> ProbeData:
    train_dir, test_dir = path / "train", path / "test"
    if not train_dir.is_dir() or not test_dir.is_dir():
        raise PretrainError(f"{path} needs train/CLASS/ and test/CLASS/ subfolders")
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir())
    unknown = sorted(d.name for d in test_dir.iterdir() if d.is_dir() and d.name not in classes)
    if unknown:
        raise PretrainError(f"{path}: test classes {', '.join(unknown[:5])} have no train folder")
    x_train, y_train = _read_split(train_dir, classes, size)
    x_test, y_test = _read_split(test_dir, classes, size)
    return ProbeData(x_train, y_train, x_test, y_test, tuple(classes))


def load_probe_data(path: Path, size: int) -> ProbeData:
    """An .npz with x_train/y_train/x_test/y_test (uint8 NHWC) or a folder with train/CLASS/ and test/CLASS/."""
    path = Path(path)
    if path.is_dir():
        data = _load_folder(path, size)
    elif path.is_file():
        data = _load_npz(path)
    else:
        raise PretrainError(f"probe data {path} does not exist")
    if len(data.x_train) == 0 or len(data.x_test) == 0:
        raise PretrainError(f"probe data {path} has an empty train or test split")
    if len(np.unique(data.y_train)) < 2:
        raise PretrainError(f"probe data {path} has fewer than two classes in its train split")
    return data


def prepare(images: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return normalize(x).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def stage_features(
    backbone: ResNet, images: np.ndarray, size: int, device: torch.device, batch_size: int = 250
) -> list[torch.Tensor]:
    """Globally pooled features of each stage, (N, C_s) float32 on the CPU."""
    backbone.eval()
    per_stage: list[list[torch.Tensor]] = [[] for _ in backbone.stages]
    for start in range(0, len(images), batch_size):
        maps = backbone.stage_maps(prepare(images[start:start + batch_size], size, device))
        for index, feature_map in enumerate(maps):
            per_stage[index].append(feature_map.float().mean(dim=(2, 3)).cpu())
    return [torch.cat(chunks) for chunks in per_stage]


@torch.no_grad()
def recalibrate_batch_norm(backbone: ResNet, images: np.ndarray, size: int, device: torch.device,
                           batch_size: int = 250) -> None:
    """Replace the batch-norm running statistics by those of `images` (a cumulative average over one pass)."""
    norms = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    backbone.train()
    for start in range(0, len(images), batch_size):
        backbone.stage_maps(prepare(images[start:start + batch_size], size, device))
    backbone.eval()


def _fit_logistic(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float, iterations: int = 200) -> nn.Linear:
    torch.manual_seed(0)
    linear = nn.Linear(x.shape[1], classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=iterations, history_size=20,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x), y) + 0.5 * l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear


def _accuracy(linear: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((linear(x).argmax(dim=1) == y).float().mean())


def _standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean, std = train.mean(dim=0), train.std(dim=0).clamp_min(1e-6)
    return [(t - mean) / std for t in (train, *others)]


def probe_stage(
    train: torch.Tensor, y_train: torch.Tensor, test: torch.Tensor, y_test: torch.Tensor, classes: int,
    stage: int, seed: int = 0,
) -> StageResult:
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(train)))
    held = max(1, int(len(train) * VALIDATION_SHARE))
    fit_idx, val_idx = order[held:], order[:held]
    fit_x, val_x = _standardize(train[fit_idx], train[val_idx])
    scores = {l2: _accuracy(_fit_logistic(fit_x, y_train[fit_idx], classes, l2), val_x, y_train[val_idx])
              for l2 in L2_GRID}
    l2 = max(L2_GRID, key=lambda value: (scores[value], value))  # ties: the stronger penalty
    all_x, test_x = _standardize(train, test)
    linear = _fit_logistic(all_x, y_train, classes, l2)
    return StageResult(stage, int(train.shape[1]), l2, scores[l2], _accuracy(linear, test_x, y_test))


def run_probe(
    backbone: ResNet, data: ProbeData, size: int, device: torch.device, *, checkpoint: str, data_name: str,
    recalibrate_bn: bool = False, stages: tuple[int, ...] = (1, 2, 3, 4),
) -> ProbeReport:
    backbone = backbone.to(device)
    if recalibrate_bn:
        recalibrate_batch_norm(backbone, data.x_train, size, device)
    train_features = stage_features(backbone, data.x_train, size, device)
    test_features = stage_features(backbone, data.x_test, size, device)
    y_train, y_test = torch.from_numpy(data.y_train), torch.from_numpy(data.y_test)
    report = ProbeReport(
        checkpoint=checkpoint, arch=backbone.spec.arch, width=backbone.spec.width, size=size, data=data_name,
        train_images=len(data.x_train), test_images=len(data.x_test), classes=data.num_classes,
        bn_recalibrated=recalibrate_bn,
    )
    for stage in stages:
        train_x, test_x = train_features[stage - 1], test_features[stage - 1]
        linear = probe_stage(train_x, y_train, test_x, y_test, data.num_classes, stage)
        knn = knn_probe(train_x, y_train, test_x, y_test, data.num_classes)
        report.stages.append(replace(linear, knn=knn))
    return report
