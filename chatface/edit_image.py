"""`chatface edit`: one image, a list of edits, the edited image and a before/after PNG beside it."""

import math
from pathlib import Path

from omegaconf import DictConfig

from chatface.edit_grid import before_after_grid
from chatface.editor import Edits, Editor
from chatface.images import load_image, save_image


class EditsSyntaxError(ValueError):
    """An --edits string that is not `attr:strength,attr:strength`."""


def parse_edits(text: str) -> Edits:
    """"smile:1.0,glasses:0.8" -> [("smile", 1.0), ("glasses", 0.8)]; a bare name means strength 1."""
    edits = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, strength = item.partition(":")
        try:
            value = float(strength) if strength else 1.0
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise EditsSyntaxError(f"bad edit {item!r}: the strength after ':' must be a finite number, "
                                   f"as in 'smile:1.0,glasses:0.8'")
        edits.append((name.strip(), value))
    if not edits:
        raise EditsSyntaxError("no edits given; write them as 'smile:1.0,glasses:0.8'")
    return edits


def edit_image(cfg: DictConfig, image_path: str | Path, edits: Edits, steps: int, out: str | Path | None = None
               ) -> tuple[Path, Path]:
    """Write `<name>_edited.png` and `<name>_before_after.png` (next to the image unless `out` is given)."""
    image_path = Path(image_path)
    if out is not None and Path(out).suffix.lower() != ".png":
        raise EditsSyntaxError(f"--out {out}: edited images are written as PNG; give a path ending in .png")
    image = load_image(image_path, cfg.world.image_size)[None]
    editor = Editor.from_config(cfg, [attr for attr, _ in edits])
    edited = editor.edit(editor.latents(image), edits, steps)
    out = Path(out) if out else image_path.with_name(f"{image_path.stem}_edited.png")
    save_image(edited[0], out)
    return out, before_after_grid(image, edited, out.with_name(f"{image_path.stem}_before_after.png"))
