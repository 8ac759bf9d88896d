"""SimCLR's NT-Xent and SupCon's loss on tiny hand-made embeddings, and the two objectives over a real backbone."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from pretrain.models import BackboneSpec, build_backbone  # noqa: E402
from pretrain.objectives import (  # noqa: E402
    ContrastConfig,
    SimclrObjective,
    SupconObjective,
    nt_xent_loss,
    supcon_loss,
)
from tests.test_probe import _one_torch_thread  # noqa: E402, F401 (autouse fixture: one intra-op thread)


def _unit(rows: int, dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(rows, dim, generator=generator), dim=1)


def _reference_nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> float:
    """NT-Xent written as in the SimCLR paper, one anchor at a time: -log(e^{s(i,j)/T} / sum_{k != i} e^{s(i,k)/T})."""
    views = torch.cat([first, second]).tolist()
    n = len(first)
    total = 0.0
    for i, anchor in enumerate(views):
        partner = (i + n) % (2 * n)
        scores = [sum(a * b for a, b in zip(anchor, other)) / temperature for other in views]
        denominator = sum(math.exp(score) for k, score in enumerate(scores) if k != i)
        total -= math.log(math.exp(scores[partner]) / denominator)
    return total / (2 * n)


def test_nt_xent_matches_the_papers_formula():
    first, second = _unit(5, 4, 0), _unit(5, 4, 1)
    assert nt_xent_loss(first, second, 0.5).item() == pytest.approx(_reference_nt_xent(first, second, 0.5), rel=1e-5)


def test_matching_views_score_lower_than_shuffled_ones():
    views = _unit(8, 16, 2)
    shuffled = views[torch.roll(torch.arange(8), 1)]
    assert nt_xent_loss(views, views, 0.2) < nt_xent_loss(views, shuffled, 0.2) - 1.0


def test_supcon_with_distinct_labels_is_nt_xent():
    first, second = _unit(6, 8, 3), _unit(6, 8, 4)
    distinct = torch.tensor([7, 1, 4, 0, 9, 2])
    supcon = supcon_loss(torch.cat([first, second]), torch.cat([distinct, distinct]), 0.2)
    assert supcon.item() == pytest.approx(nt_xent_loss(first, second, 0.2).item(), rel=1e-6)


def _reference_supcon(embeddings: torch.Tensor, labels: list[int], temperature: float) -> float:
    """Khosla et al.'s L_out, eq. 2, one anchor and one positive at a time."""
    rows = embeddings.tolist()
    total = 0.0
    for i, anchor in enumerate(rows):
        scores = [sum(a * b for a, b in zip(anchor, other)) / temperature for other in rows]
        denominator = sum(math.exp(score) for a, score in enumerate(scores) if a != i)
        positives = [p for p in range(len(rows)) if p != i and labels[p] == labels[i]]
        total -= sum(math.log(math.exp(scores[p]) / denominator) for p in positives) / len(positives)
    return total / len(rows)


def test_supcon_averages_the_log_likelihood_of_every_positive():
    embeddings, labels = _unit(7, 3, 5), [0, 0, 0, 1, 1, 2, 2]
    loss = supcon_loss(embeddings, torch.tensor(labels), 0.3).item()
    assert loss == pytest.approx(_reference_supcon(embeddings, labels, 0.3), rel=1e-5)


def test_each_loss_prefers_the_grouping_its_positives_define():
    """Two views each of four images, images 0-1 by one program and 2-3 by another: embedded by program (both
    programs' images on one point) or by image (each image on a point of its own)."""
    by_program = torch.eye(2)[[0, 0, 1, 1] * 2]
    by_image = torch.eye(4)[[0, 1, 2, 3] * 2]
    programs = torch.tensor([0, 0, 1, 1] * 2)
    assert supcon_loss(by_program, programs, 0.1) < supcon_loss(by_image, programs, 0.1) - 1.0
    first, second = by_program.chunk(2)
    assert nt_xent_loss(*by_image.chunk(2), 0.1) < nt_xent_loss(first, second, 0.1) - 1.0


def _views(batch: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 32, 32, generator=generator) for _ in range(2)]


@pytest.mark.parametrize("objective_type", [SimclrObjective, SupconObjective])
def test_gradients_reach_every_weight(objective_type):
    torch.manual_seed(0)
    objective = objective_type(build_backbone(BackboneSpec("resnet18", 8)), ContrastConfig(dim=16))
    label_index = torch.tensor([[0], [0], [1], [2]])
    loss, accuracy = objective(_views(4, 5), label_index, torch.ones(4, 1))
    loss.backward()
    assert math.isfinite(loss.item()) and 0.0 <= accuracy.item() <= 1.0
    for name, param in objective.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert all(p.grad.abs().sum() > 0 for p in objective.head.parameters())


def test_supcon_labels_an_image_by_its_dominant_program():
    objective = SupconObjective(build_backbone(BackboneSpec("resnet18", 8)), ContrastConfig())
    label_index = torch.tensor([[3, 5, 3], [1, 2, 4], [6, 6, 0]])
    label_weight = torch.tensor([[0.3, 0.4, 0.3], [0.2, 0.5, 0.3], [0.25, 0.25, 0.5]])
    # Program 3 is drawn twice in the first image (0.6 in all); the third image's program 6 also adds up to 0.5,
    # and a tie goes to the first slot.
    assert objective.image_labels(label_index, label_weight).tolist() == [3, 2, 6]


def test_simclr_ignores_the_program_labels():
    objective = SimclrObjective(build_backbone(BackboneSpec("resnet18", 8)), ContrastConfig())
    same_program = torch.zeros(4, 1, dtype=torch.long)
    assert objective.image_labels(same_program, torch.ones(4, 1)).tolist() == [0, 1, 2, 3]
