"""The pixels an attribute edit changed, and squared errors over those pixels only.

An attribute owns a few pixels of a face (a mouth, the lips), so an error averaged over the whole image hides it.
"""

import torch


def changed_pixels(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) mask: 1 where any channel of `after` differs from `before`."""
    return (before != after).any(dim=1, keepdim=True).float()


def changed_region_mse(prediction: torch.Tensor, target: torch.Tensor, region: torch.Tensor,
                       per_face: bool = False) -> torch.Tensor:
    """Mean squared error over the pixels (and channels) of `region`, a mask from `changed_pixels`.

    Pooled over the batch, a face weighs by the size of its region; `per_face` averages each face's own error
    instead (faces with an empty region left out), so that a smile counts as much as a change of hair colour."""
    squared = (prediction - target) ** 2 * region
    if not per_face:
        return squared.sum() / (prediction.shape[1] * region.sum()).clamp(min=1)
    pixels = region.flatten(1).sum(dim=1)
    errors = squared.flatten(1).sum(dim=1) / (prediction.shape[1] * pixels).clamp(min=1)  # 0 for an empty region
    return errors.sum() / (pixels > 0).sum().clamp(min=1)
