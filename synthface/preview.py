"""A PNG grid for eyeballing SynthFace: per face its image, its class map and its caption."""

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from synthface.captions import caption
from synthface.classes import CLASS_NAMES, NUM_CLASSES
from synthface.face import Face, sample_face

COLUMNS = 4
# One fixed colour per class, in FaceClass order (background, skin, nose, eyes, irises, brows, ears, earrings, lips,
# mouth, teeth, hair, beard, glasses, neck, clothes).
CLASS_COLOURS = ListedColormap(["black", "#4e79a7", "#f28e2b", "white", "#59a14f", "#8c564b", "#e15759", "magenta",
                                "#ff9da7", "#9c0d38", "#bab0ac", "#edc948", "#b07aa1", "#17becf", "#76b7b2", "#555555"])


def preview_grid(path: Path | str, count: int = 16, size: int = 128, seed: int = 0) -> Path:
    """Write a PNG of `count` faces (identity and seed `seed`, `seed + 1`, ...), four to a row; return its path."""
    path = Path(path)
    rows = -(-count // COLUMNS)
    figure = Figure(figsize=(COLUMNS * 3.4, rows * 2.2 + 0.5), layout="constrained")
    for i, panel in enumerate(figure.subfigures(rows, COLUMNS, squeeze=False).flat[:count]):
        _show(panel, sample_face(seed + i, seed + i), size)
    legend = [Patch(facecolor=CLASS_COLOURS(c), edgecolor="grey", label=name) for c, name in enumerate(CLASS_NAMES)]
    figure.legend(handles=legend, loc="outside lower center", ncols=NUM_CLASSES // 2, fontsize=8, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)  # a bare Figure saves a PNG through the Agg backend, leaving pyplot alone
    return path


def _show(panel, face: Face, size: int) -> None:
    image, classes = face.render(size)
    text = caption(face.attributes, np.random.default_rng(face.seed))
    panel.suptitle(textwrap.fill(text, 48), fontsize=7)
    left, right = panel.subplots(1, 2)
    left.imshow(image)
    right.imshow(classes, cmap=CLASS_COLOURS, vmin=0, vmax=NUM_CLASSES - 1, interpolation="nearest")
    for axes in (left, right):
        axes.set_axis_off()
