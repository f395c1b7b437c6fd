"""Bootstrap 95% intervals for the edit metrics, resampling the faces.

Every metric state is a sum over faces (metrics/README.md), so a resample's state is the per-face states weighted
by how often each face was drawn, and computing from it gives exactly the pooled metric of that resample: the
interval is around the same number `edit_scores` reports, not around a mean of per-face scores.
"""

import warnings

import torch
from torch import Tensor
from torchmetrics import MetricCollection

from metrics.edit_metrics import edit_scores

FaceStates = dict[str, dict[str, Tensor]]  # metric name -> state name -> (faces, ...) per-face states


def per_face_states(collection: MetricCollection, source: Tensor, edited: Tensor, **per_face: Tensor) -> FaceStates:
    """Each metric's state after seeing each face alone. `per_face` tensors (e.g. source_labels) are split too."""
    states: dict[str, dict[str, list[Tensor]]] = {}
    for i in range(len(source)):
        collection.reset()
        collection.update(source[i:i + 1], edited[i:i + 1], **{k: v[i:i + 1] for k, v in per_face.items()})
        for name, metric in collection.items():
            for state, value in metric.metric_state.items():
                states.setdefault(name, {}).setdefault(state, []).append(value.detach().clone())
    collection.reset()
    return {name: {state: torch.stack(values) for state, values in metric.items()} for name, metric in states.items()}


def weighted_scores(collection: MetricCollection, states: FaceStates, weights: Tensor) -> dict[str, float]:
    """`edit_scores` of the faces taken `weights[i]` times each."""
    collection.reset()
    for name, metric in collection.items():
        metric.merge_state({state: _weighted_sum(values, weights) for state, values in states[name].items()})
    with warnings.catch_warnings():  # merged states count as no `update`; torchmetrics would warn on every compute
        warnings.filterwarnings("ignore", message=".*compute.*before.*update.*")
        scores = edit_scores(collection)
    collection.reset()
    return scores


def bootstrap_scores(collection: MetricCollection, states: FaceStates, resamples: int = 1000,
                     seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """name -> (score on all faces, 2.5th percentile, 97.5th percentile over resamples of the faces)."""
    faces = len(next(iter(next(iter(states.values())).values())))
    point = weighted_scores(collection, states, torch.ones(faces, dtype=torch.long))
    generator = torch.Generator().manual_seed(seed)
    draws = [weighted_scores(collection, states,
                             torch.bincount(torch.randint(faces, (faces,), generator=generator), minlength=faces))
             for _ in range(resamples)]
    intervals = {}
    for name, value in point.items():
        low, high = torch.tensor([draw[name] for draw in draws]).nanquantile(torch.tensor([0.025, 0.975]))
        intervals[name] = (value, float(low), float(high))
    return intervals


def _weighted_sum(values: Tensor, weights: Tensor) -> Tensor:
    return (weights.view(-1, *[1] * (values.dim() - 1)).to(values.dtype) * values).sum(dim=0)
