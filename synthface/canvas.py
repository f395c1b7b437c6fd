"""A supersampled drawing surface that paints colour and segmentation class together.

Shapes are given in unit coordinates (0..1 of the image side). The colour image is downsampled with a box filter
(anti-aliasing); the class map keeps the class at each output pixel's centre, so it is exact for the drawn shapes.

Anti-aliasing would let sub-pixel slivers (the tip of a lip, a wedge of skin between two hair shapes) colour an
output pixel with no pixel of their class nearby in the map. So a shape only paints where the map shows its class
within one output pixel; elsewhere what lies under it shows through. Every colour in the image then comes from a
class the map shows at most one pixel away, and a change to one class's shapes can only change pixels at most one
pixel from that class. Strokes that alone carry their class (lines, outlines of unfilled shapes) are at least one
output pixel wide, so the map sees them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[int, int, int]
# Draws one shape with the given fill and outline values (colours, classes or layer values; None: not painted).
Draw = Callable[[ImageDraw.ImageDraw, Any, Any], None]


@dataclass(frozen=True)
class _Shape:
    draw: Draw
    fill: Colour | None
    outline: Colour | None
    cls: int


class Canvas:
    def __init__(self, size: int, supersample: int, background: np.ndarray):
        self.size, self.step, self.side = size, supersample, size * supersample
        self.background = background
        self.rgb = Image.fromarray(background)
        self.seg = Image.new("L", (self.side, self.side), 0)
        self._rgb, self._seg = ImageDraw.Draw(self.rgb), ImageDraw.Draw(self.seg)
        self._shapes: list[_Shape] = []

    def px(self, v: float) -> float:
        return v * self.side

    def _box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        return [self.px(cx - rx), self.px(cy - ry), self.px(cx + rx), self.px(cy + ry)]

    def _points(self, pts) -> list[tuple[float, float]]:
        return [(self.px(x), self.px(y)) for x, y in pts]

    def _width(self, width: float, alone: bool) -> int:
        """Stroke width in canvas pixels; a stroke that alone carries its class is at least one output pixel."""
        w = max(1, round(self.px(width)))
        return max(w, self.step) if alone else w

    def _add(self, shape: _Shape) -> None:
        shape.draw(self._rgb, shape.fill, shape.outline)
        shape.draw(self._seg, shape.fill and shape.cls, shape.outline and shape.cls)
        self._shapes.append(shape)

    def ellipse(self, cx, cy, rx, ry, fill: Colour | None, cls: int,
                outline: Colour | None = None, width: float = 0.0) -> None:
        """A filled ellipse; with fill None only the outline is painted, and only the outline gets the class."""
        box, w = self._box(cx, cy, rx, ry), self._width(width, fill is None)
        self._add(_Shape(lambda d, f, o: d.ellipse(box, fill=f, outline=o, width=w), fill, outline, cls))

    def chord(self, cx, cy, rx, ry, start: float, end: float, fill: Colour, cls: int) -> None:
        box = self._box(cx, cy, rx, ry)
        self._add(_Shape(lambda d, f, o: d.chord(box, start, end, fill=f), fill, None, cls))

    def polygon(self, pts, fill: Colour, cls: int) -> None:
        pts = self._points(pts)
        self._add(_Shape(lambda d, f, o: d.polygon(pts, fill=f), fill, None, cls))

    def rectangle(self, x0, y0, x1, y1, fill: Colour | None, cls: int, radius: float = 0.0,
                  outline: Colour | None = None, width: float = 0.0) -> None:
        """Like `ellipse`: with fill None only the outline is painted and classed."""
        box, r = [self.px(x0), self.px(y0), self.px(x1), self.px(y1)], self.px(radius)
        w = self._width(width, fill is None)
        self._add(_Shape(lambda d, f, o: d.rounded_rectangle(box, radius=r, fill=f, outline=o, width=w),
                         fill, outline, cls))

    def line(self, pts, fill: Colour, cls: int, width: float) -> None:
        pts, w = self._points(pts), self._width(width, True)
        self._add(_Shape(lambda d, f, o: d.line(pts, fill=f, width=w, joint="curve"), fill, None, cls))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The supersampled colour (float) and class map, for per-class shading, with slivers painted over."""
        rgb, seg = np.array(self.rgb, dtype=np.float32), np.array(self.seg)
        near = _classes_near(self._centres(seg))
        blocks = seg.reshape(self.size, self.step, self.size, self.step)
        sliver = ((near[:, None, :, None] >> blocks) & 1 == 0).reshape(seg.shape)
        if sliver.any():
            self._repaint(rgb, seg, np.nonzero(sliver), near)
        return rgb, seg

    def _repaint(self, rgb: np.ndarray, seg: np.ndarray, at: tuple[np.ndarray, np.ndarray], near: np.ndarray) -> None:
        """Paint the canvas pixels `at` with the topmost shape whose class is near them (the background if none)."""
        near_at = near[at[0] // self.step, at[1] // self.step]
        top = np.zeros(len(at[0]), np.int32)  # 2 * (shape index + 1) + (1 where its outline, not its fill, is)
        for cls in {shape.cls for shape in self._shapes}:
            if not (shown := (near_at >> cls) & 1 == 1).any():
                continue
            layer = Image.new("I", (self.side, self.side))
            draw = ImageDraw.Draw(layer)
            for i, shape in enumerate(self._shapes):
                if shape.cls == cls:
                    shape.draw(draw, shape.fill and 2 * i + 2, shape.outline and 2 * i + 3)
            top = np.where(shown, np.maximum(top, np.asarray(layer)[at]), top)
        paints = [(0, 0, 0)] * 2 + [c or (0, 0, 0) for shape in self._shapes for c in (shape.fill, shape.outline)]
        classes = [0, 0] + [shape.cls for shape in self._shapes for _ in range(2)]
        rgb[at] = np.where((top > 0)[:, None], np.array(paints, np.float32)[top], self.background[at])
        seg[at] = np.array(classes, np.uint8)[top]

    def _centres(self, seg: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(seg[self.step // 2::self.step, self.step // 2::self.step])

    def finish(self, rgb: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Box-downsample the colour (float) and point-sample the class map at pixel centres."""
        image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).resize((self.size, self.size), Image.BOX)
        return np.asarray(image, dtype=np.float32), self._centres(seg)


def _classes_near(labels: np.ndarray) -> np.ndarray:
    """Per pixel, a bit mask of the classes at it and at its 8 neighbours."""
    bits = np.pad(np.left_shift(1, labels.astype(np.int32)), 1)
    h, w = labels.shape
    near = np.zeros((h, w), np.int32)
    for dy in range(3):
        for dx in range(3):
            near |= bits[dy:dy + h, dx:dx + w]
    return near
