"""The preservation loss: change the image and the latent no more than the edit needs (ChatFace's L_pre).

The latent term is a length, not a squared length, so its pull back to z keeps its size however small the offset:
a mapper leaves z only where lambda_dir times the CLIP loss's slope beats lambda_pre. On the synth backbone the
paper's lambda_pre = 0.2 holds the mapper at z (lr 10, 50 steps: the offset stayed at 0.1 % of |z|), 0.01 lets it
go (issue #5, session-15 note).
"""

import torch


def preservation_loss(source: torch.Tensor, edited: torch.Tensor, z: torch.Tensor,
                      z_edit: torch.Tensor) -> torch.Tensor:
    """Mean absolute pixel change plus the mean L2 length of the latent offset."""
    return (edited - source).abs().mean() + (z_edit - z).norm(dim=1).mean()
