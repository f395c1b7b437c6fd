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


def labelled_rows(rows: list[tuple[str, torch.Tensor]], path: str | Path, label_width: int = 170) -> Path:
    """One row of images per (label, images), the label written to the left of its row; images in [-1, 1]."""
    from PIL import Image, ImageDraw

    columns, padding = len(rows[0][1]), 2
    grid = to_pil(make_grid(torch.cat([images for _, images in rows]).clamp(-1, 1), nrow=columns, padding=padding,
                            pad_value=1.0))
    canvas = Image.new("RGB", (label_width + grid.width, grid.height), "white")
    canvas.paste(grid, (label_width, 0))
    row_height = (grid.height - padding) // len(rows)
    draw = ImageDraw.Draw(canvas)
    for index, (label, _) in enumerate(rows):
        draw.text((6, index * row_height + row_height // 2), label, fill="black", anchor="lm")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
