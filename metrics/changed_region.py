"""The pixels an attribute edit changed, and squared errors over those pixels only.

An attribute owns a few pixels of a face (a mouth, the lips), so an error averaged over the whole image hides it.
"""

import torch


def changed_pixels(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) mask: 1 where any channel of `after` differs from `before`."""
    return (before != after).any(dim=1, keepdim=True).float()


def changed_region_mse(prediction: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the pixels (and channels) of `region`, a mask from `changed_pixels`."""
    return ((prediction - target) ** 2 * region).sum() / (prediction.shape[1] * region.sum()).clamp(min=1)
