"""Image grids people look at: before/after rows, and grids of edits over strengths and step counts."""

from pathlib import Path

import torch
from torchvision.utils import make_grid

from chatface.images import to_pil


def before_after_grid(before: torch.Tensor, after: torch.Tensor, path: str | Path) -> Path:
    """Two rows, sources above their edits; images in [-1, 1]."""
    return image_grid(torch.cat([before, after]), len(before), path)


def image_grid(images: torch.Tensor, columns: int, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(make_grid(images.clamp(-1, 1), nrow=columns, padding=2, pad_value=1.0)).save(path)
    return path
