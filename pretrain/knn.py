"""Weighted k-nearest-neighbour probe of frozen features (Wu et al. 2018, as DINO reports it).

Features are L2-normalised; each test image takes its k most cosine-similar train images, and each of them votes
for its class with weight exp(similarity / T). Nothing is fitted, so there is nothing to choose on held-out data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

KNN_K = 20
KNN_TEMPERATURE = 0.07


@dataclass(frozen=True)
class KnnResult:
    k: int  # neighbours that voted (fewer than asked when the train split is smaller)
    temperature: float
    test_accuracy: float


@torch.no_grad()
def knn_predict(
    train: torch.Tensor, y_train: torch.Tensor, query: torch.Tensor, classes: int, k: int = KNN_K,
    temperature: float = KNN_TEMPERATURE, chunk: int = 512,
) -> torch.Tensor:
    """The class each row of `query` gets from the weighted votes of its `k` nearest rows of `train`."""
    train = F.normalize(train.float(), dim=1)
    k = min(k, len(train))
    predictions = []
    for part in F.normalize(query.float(), dim=1).split(chunk):  # bounds the similarity matrix's memory
        similarity, neighbour = (part @ train.t()).topk(k, dim=1)
        votes = torch.zeros(len(part), classes)
        votes.scatter_add_(1, y_train[neighbour], (similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long)


def knn_probe(
    train: torch.Tensor, y_train: torch.Tensor, test: torch.Tensor, y_test: torch.Tensor, classes: int,
    k: int = KNN_K, temperature: float = KNN_TEMPERATURE,
) -> KnnResult:
    predicted = knn_predict(train, y_train, test, classes, k, temperature)
    accuracy = float((predicted == y_test).float().mean())
    return KnnResult(min(k, len(train)), temperature, accuracy)
