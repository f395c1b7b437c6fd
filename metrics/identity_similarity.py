"""Identity similarity (ID): cosine of a face recogniser's embeddings of source and edit."""

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from metrics.judged import hold_judge


class IdentityJudge(Protocol):
    def embed(self, images: Tensor) -> Tensor: ...  # (B,3,H,W) in [-1, 1] -> (B,E) unit vectors


class IdentitySimilarity(Metric):
    """Mean over images of cos(R(source), R(edited))."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, identity: IdentityJudge, **kwargs: Any):
        super().__init__(**kwargs)
        hold_judge(self, "identity", identity)
        self.add_state("cosine_sum", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, source: Tensor, edited: Tensor) -> None:
        cosine = F.cosine_similarity(self.identity.embed(source).float(), self.identity.embed(edited).float(), dim=1)
        cosine = cosine.clamp(-1.0, 1.0)  # rounding can put the cosine of equal embeddings just above 1
        self.cosine_sum += cosine.sum()
        self.count += len(cosine)

    def compute(self) -> Tensor:
        return self.cosine_sum / self.count
