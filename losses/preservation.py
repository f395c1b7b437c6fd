"""The preservation loss: change the image and the latent no more than the edit needs (ChatFace's L_pre)."""

import torch


def preservation_loss(source: torch.Tensor, edited: torch.Tensor, z: torch.Tensor,
                      z_edit: torch.Tensor) -> torch.Tensor:
    """Mean absolute pixel change plus the mean L2 length of the latent offset."""
    return (edited - source).abs().mean() + (z_edit - z).norm(dim=1).mean()
