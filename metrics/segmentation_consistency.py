"""Segmentation consistency (SC): how well the face-parsing maps of source and edit agree."""

from typing import Any, Protocol

import torch
from torch import Tensor
from torchmetrics import Metric

from metrics.judged import hold_judge


class FaceParser(Protocol):
    num_classes: int

    def parse(self, images: Tensor) -> Tensor: ...  # (B,3,H,W) in [-1, 1] -> (B,H,W) long class ids


class SegmentationConsistency(Metric):
    """Pixel accuracy and mIoU of the edit's parsing map against the source's, accumulated over the dataset.

    Per class, intersections and unions are summed over all images before dividing; the mean runs over the
    classes that occur in either map somewhere in the dataset.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, parser: FaceParser, **kwargs: Any):
        super().__init__(**kwargs)
        hold_judge(self, "parser", parser)
        classes = parser.num_classes
        self.add_state("intersection", torch.zeros(classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("union", torch.zeros(classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, source: Tensor, edited: Tensor) -> None:
        before, after = self.parser.parse(source).flatten(), self.parser.parse(edited).flatten()
        same = before == after
        intersection = self._histogram(before[same])
        self.intersection += intersection
        self.union += self._histogram(before) + self._histogram(after) - intersection
        self.correct += same.sum()
        self.total += same.numel()

    def compute(self) -> dict[str, Tensor]:
        present = self.union > 0
        return {
            "miou": (self.intersection[present] / self.union[present]).mean(),
            "pixel_acc": self.correct / self.total,
        }

    def _histogram(self, labels: Tensor) -> Tensor:
        return torch.bincount(labels, minlength=self.parser.num_classes)
