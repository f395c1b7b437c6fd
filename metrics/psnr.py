"""PSNR between images in [-1, 1], per image."""

import torch


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a.float().clamp(-1, 1) - b.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
