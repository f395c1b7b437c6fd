"""The identity loss: the edited face should still be recognised as the same person."""

import torch
import torch.nn.functional as F

from metrics.identity_similarity import IdentityJudge


def identity_loss(identity: IdentityJudge, source: torch.Tensor, edited: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - cos(R(source), R(edited))."""
    return (1 - F.cosine_similarity(identity.embed(source).detach(), identity.embed(edited), dim=1)).mean()
