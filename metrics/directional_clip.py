"""Directional CLIP similarity (Sdir): does the image move in CLIP space the way the text moves?"""

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from metrics.judged import hold_judge


class ClipJudge(Protocol):
    def encode_image(self, images: Tensor) -> Tensor: ...  # (B,3,H,W) in [-1, 1] -> (B,D) unit vectors

    def text_direction(self, source: str, target: str) -> Tensor: ...  # (D,) unit vector


def text_shift(clip: ClipJudge, source: Tensor, edited: Tensor, text_direction: Tensor) -> Tensor:
    """(B,) how far each edit moves the unit image embedding along the unit text direction, in [-2, 2]: what the
    mapper's projection loss rewards. Unlike Sdir's cosine it grows with the size of the change CLIP sees."""
    change = F.normalize(clip.encode_image(edited), dim=1) - F.normalize(clip.encode_image(source), dim=1).detach()
    return change @ F.normalize(text_direction.to(change), dim=0)


class DirectionalCLIPSimilarity(Metric):
    """Mean over images of cos(E_I(edited) - E_I(source), text direction).

    An edit that leaves an image's embedding exactly where it was has no direction; it scores a cosine of 0
    (the edit did not move towards the target) and still counts in the mean.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, clip: ClipJudge, source_text: str, target_text: str, **kwargs: Any):
        super().__init__(**kwargs)
        hold_judge(self, "clip", clip)
        self.direction = F.normalize(clip.text_direction(source_text, target_text).float(), dim=0)
        self.add_state("cosine_sum", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, source: Tensor, edited: Tensor) -> None:
        delta = (self.clip.encode_image(edited) - self.clip.encode_image(source)).float()
        # A zero difference has a zero dot product, so the clamp turns 0/0 into 0 and changes nothing else.
        norm = delta.norm(dim=1).clamp_min(torch.finfo(delta.dtype).tiny)
        self.cosine_sum += (delta @ self.direction.to(delta) / norm).clamp(-1.0, 1.0).sum()
        self.count += len(delta)

    def compute(self) -> Tensor:
        return self.cosine_sum / self.count
