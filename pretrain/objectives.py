"""Training objectives over a backbone: supervised classification of programs, MoCo v2, SimCLR and SupCon.

All take already augmented views and the batch's MixUp labels (K program indices and their weights per image)
and return the loss and a top-1 accuracy for the progress display.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from pretrain.models import ResNet


@dataclass(frozen=True)
class MocoConfig:
    dim: int = 128
    queue_size: int = 4096
    momentum: float = 0.99  # 0.999 in MoCo v2's 800-epoch runs; short runs need the key encoder to keep up
    temperature: float = 0.2
    bn_splits: int = 8  # key-encoder batch-norm groups: stands in for MoCo's cross-GPU shuffle BN
    min_bn_group: int = 32  # smaller groups make batch statistics too noisy (2 images normalise to +-1)


def soft_targets(label_index: torch.Tensor, label_weight: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, K) indices and weights to a (B, num_classes) distribution; a program drawn twice adds up."""
    target = torch.zeros(label_index.shape[0], num_classes, device=label_weight.device, dtype=label_weight.dtype)
    return target.scatter_add_(1, label_index, label_weight)


class SupervisedObjective(nn.Module):
    """Cross-entropy over program ids, with soft targets under MixUp."""

    num_views = 1

    def __init__(self, backbone: ResNet, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.head = nn.Linear(backbone.feature_dim, num_classes)

    def forward(
        self, views: list[torch.Tensor], label_index: torch.Tensor, label_weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.head(self.backbone(views[0])).float()
        target = soft_targets(label_index, label_weight.float(), self.num_classes)
        loss = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        accuracy = (logits.argmax(dim=1) == target.argmax(dim=1)).float().mean()
        return loss, accuracy.detach()


def _mlp_head(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


def _gather_all(tensor: torch.Tensor) -> torch.Tensor:
    """Keys from every rank, so each rank's queue receives the same keys in the same order."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


class MocoObjective(nn.Module):
    """MoCo v2: query encoder with an MLP head, momentum key encoder, a queue of negatives, InfoNCE at T=0.2.

    Keys are computed on a shuffled batch in `bn_splits` groups, so a key's batch-norm statistics come from other
    images than its query's: without this (MoCo shuffles across GPUs) the two encoders can match views through the
    batch statistics instead of the content.
    """

    num_views = 2

    def __init__(self, backbone: ResNet, config: MocoConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.head = _mlp_head(backbone.feature_dim, config.dim)
        self.key_backbone = copy.deepcopy(backbone)
        self.key_head = copy.deepcopy(self.head)
        for param in list(self.key_backbone.parameters()) + list(self.key_head.parameters()):
            param.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(config.queue_size, config.dim), dim=1))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        m = self.config.momentum
        for online, key in (
            (self.backbone.parameters(), self.key_backbone.parameters()),
            (self.head.parameters(), self.key_head.parameters()),
        ):
            for p, k in zip(online, key):
                k.mul_(m).add_(p.detach(), alpha=1 - m)

    @torch.no_grad()
    def _keys(self, images: torch.Tensor) -> torch.Tensor:
        n = images.shape[0]
        # Interleaved groups (image i joins group i mod splits): no random draw, so resumed runs stay exact.
        splits = max(1, min(self.config.bn_splits, n // self.config.min_bn_group))
        order = torch.argsort(torch.arange(n, device=images.device) % splits, stable=True)
        shuffled = images[order]
        keys = torch.cat([self.key_head(self.key_backbone(chunk)) for chunk in shuffled.chunk(splits)], dim=0)
        unshuffled = torch.empty_like(keys)
        unshuffled[order] = keys
        return F.normalize(unshuffled.float(), dim=1)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        keys = _gather_all(keys)
        size = self.queue.shape[0]
        keys = keys[-size:]
        slots = (self.queue_pointer + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[slots] = keys.to(self.queue.dtype)
        self.queue_pointer.copy_((self.queue_pointer + keys.shape[0]) % size)

    def forward(
        self, views: list[torch.Tensor], label_index: torch.Tensor, label_weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        del label_index, label_weight  # instance discrimination needs no labels
        query = F.normalize(self.head(self.backbone(views[0])).float(), dim=1)
        with torch.no_grad():
            self._momentum_update()
            keys = self._keys(views[1])
        positive = (query * keys).sum(dim=1, keepdim=True)
        negative = query @ self.queue.clone().t()
        logits = torch.cat([positive, negative], dim=1) / self.config.temperature
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = F.cross_entropy(logits, target)
        accuracy = (logits.argmax(dim=1) == 0).float().mean()
        self._enqueue(keys)
        return loss, accuracy.detach()


@dataclass(frozen=True)
class ContrastConfig:
    dim: int = 128
    # 0.2 as for MoCo v2: the contrastive methods then differ only in where their negatives come from. SimCLR's and
    # SupCon's 0.1 was tuned for batches of 4,096+; a few dozen images give too few negatives for it to pay off.
    temperature: float = 0.2


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Khosla et al. 2020's L_out over L2-normalised (M, D) embeddings: each anchor's log-likelihood of every other
    embedding with its label, against all other embeddings, averaged over its positives, then over the anchors.
    Every anchor needs at least one positive (the other view of its image always is one)."""
    logits = embeddings @ embeddings.t() / temperature
    itself = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    logits = logits.masked_fill(itself, float("-inf"))
    log_likelihood = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~itself
    per_anchor = log_likelihood.masked_fill(~positives, 0.0).sum(dim=1) / positives.sum(dim=1)
    return -per_anchor.mean()


def nt_xent_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent over the 2N normalised views: SupCon where each image is its own class."""
    instance = torch.arange(first.shape[0], device=first.device)
    return supcon_loss(torch.cat([first, second]), torch.cat([instance, instance]), temperature)


def _nearest_is_positive(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of anchors whose most similar other embedding carries their label."""
    similarity = (embeddings @ embeddings.t()).fill_diagonal_(float("-inf"))
    return (labels[similarity.argmax(dim=1)] == labels).float().mean()


class _TwoViewContrast(nn.Module):
    """Both views through one backbone and a 2-layer MLP head, in one pass, so batch norm sees all 2N views (as
    SimCLR's global batch norm does). Each rank contrasts its own batch; negatives are not gathered across ranks."""

    num_views = 2

    def __init__(self, backbone: ResNet, config: ContrastConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.head = _mlp_head(backbone.feature_dim, config.dim)

    def image_labels(self, label_index: torch.Tensor, label_weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, views: list[torch.Tensor], label_index: torch.Tensor, label_weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = F.normalize(self.head(self.backbone(torch.cat(views))).float(), dim=1)
        labels = self.image_labels(label_index, label_weight).repeat(len(views))
        loss = supcon_loss(embeddings, labels, self.config.temperature)
        with torch.no_grad():
            accuracy = _nearest_is_positive(embeddings, labels)
        return loss, accuracy


class SimclrObjective(_TwoViewContrast):
    """SimCLR: the other view of the same image is the only positive."""

    def image_labels(self, label_index: torch.Tensor, label_weight: torch.Tensor) -> torch.Tensor:
        del label_weight  # instance discrimination needs no labels
        return torch.arange(label_index.shape[0], device=label_index.device)


class SupconObjective(_TwoViewContrast):
    """SupCon: every view drawn by the same program is a positive. Under MixUp an image counts as drawn by its
    dominant program (the largest weight): SupCon's positives are a yes/no relation, soft labels have no place."""

    def image_labels(self, label_index: torch.Tensor, label_weight: torch.Tensor) -> torch.Tensor:
        same_program = label_index[:, :, None] == label_index[:, None, :]
        program_weight = (same_program * label_weight[:, None, :]).sum(dim=2)  # a program drawn twice adds up
        return label_index.gather(1, program_weight.argmax(dim=1, keepdim=True)).squeeze(1)
