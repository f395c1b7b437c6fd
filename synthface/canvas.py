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
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[int, int, int]
Ink = tuple[int, int, int, int]  # a colour and a class: the canvas holds both in one image
# Draws one shape with the given fill and outline values (inks or layer values; None: not painted).
Draw = Callable[[ImageDraw.ImageDraw, Any, Any], None]


class _Shape(NamedTuple):
    draw: Draw
    fill: Ink | None
    outline: Ink | None
    cls: int


class Canvas:
    def __init__(self, size: int, supersample: int, background: np.ndarray):
        """`background`: the (side, 3) uint8 colour of each canvas row."""
        self.size, self.step, self.side = size, supersample, size * supersample
        # Each pixel holds its colour and, in the fourth channel, its class, so one draw call paints both.
        self._background = np.concatenate([background, np.zeros((self.side, 1), np.uint8)], axis=1)  # per row
        self.image = Image.fromarray(np.repeat(self._background[:, None], self.side, axis=1))
        self._draw = ImageDraw.Draw(self.image)
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

    def _add(self, draw: Draw, fill: Colour | None, outline: Colour | None, cls: int) -> None:
        cls = int(cls)  # numpy handles a plain int much faster than an IntEnum member
        shape = _Shape(draw, fill and (*fill, cls), outline and (*outline, cls), cls)
        draw(self._draw, shape.fill, shape.outline)
        self._shapes.append(shape)

    def ellipse(self, cx, cy, rx, ry, fill: Colour | None, cls: int,
                outline: Colour | None = None, width: float = 0.0) -> None:
        """A filled ellipse; with fill None only the outline is painted, and only the outline gets the class."""
        box, w = self._box(cx, cy, rx, ry), self._width(width, fill is None)
        self._add(lambda d, f, o: d.ellipse(box, fill=f, outline=o, width=w), fill, outline, cls)

    def chord(self, cx, cy, rx, ry, start: float, end: float, fill: Colour, cls: int) -> None:
        box = self._box(cx, cy, rx, ry)
        self._add(lambda d, f, o: d.chord(box, start, end, fill=f), fill, None, cls)

    def polygon(self, pts, fill: Colour, cls: int) -> None:
        pts = self._points(pts)
        self._add(lambda d, f, o: d.polygon(pts, fill=f), fill, None, cls)

    def rectangle(self, x0, y0, x1, y1, fill: Colour | None, cls: int, radius: float = 0.0,
                  outline: Colour | None = None, width: float = 0.0) -> None:
        """Like `ellipse`: with fill None only the outline is painted and classed."""
        box, r = [self.px(x0), self.px(y0), self.px(x1), self.px(y1)], self.px(radius)
        w = self._width(width, fill is None)
        self._add(lambda d, f, o: d.rounded_rectangle(box, radius=r, fill=f, outline=o, width=w),
                  fill, outline, cls)

    def line(self, pts, fill: Colour, cls: int, width: float) -> None:
        pts, w = self._points(pts), self._width(width, True)
        self._add(lambda d, f, o: d.line(pts, fill=f, width=w, joint="curve"), fill, None, cls)

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """The supersampled colour, (side, side, 4) uint8 with R, G, B first, and class map, slivers painted over."""
        pixels = np.array(self.image)
        seg = pixels[..., 3].copy()
        centres = self._centres(seg)
        near = _classes_near(centres)
        at = self._slivers(seg, centres, near)
        if len(at[0]):
            self._repaint(pixels, seg, at, near[at[0] // self.step, at[1] // self.step])
        return pixels, seg

    def _slivers(self, seg: np.ndarray, centres: np.ndarray, near: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The canvas pixels whose class is not `near` their output pixel."""
        # Only a pixel of another class than its output pixel's centre can be one.
        row_blocks = seg.reshape(self.size, self.step, self.side)
        at = np.flatnonzero(row_blocks != np.repeat(centres, self.step, axis=1)[:, None, :])
        rows, columns = np.divmod(at, self.side)
        sliver = (near[rows // self.step, columns // self.step] >> seg.ravel()[at]) & 1 == 0
        return rows[sliver], columns[sliver]

    def _repaint(self, pixels: np.ndarray, seg: np.ndarray, at: tuple[np.ndarray, np.ndarray],
                 near_at: np.ndarray) -> None:
        """Paint the canvas pixels `at` with the topmost shape of a class in `near_at` (the background if none)."""
        top = np.zeros(len(at[0]), np.int32)  # 2 * (shape index + 1) + (1 where its outline, not its fill, is)
        near_any = int(np.bitwise_or.reduce(near_at))
        for cls in {shape.cls for shape in self._shapes if (near_any >> shape.cls) & 1}:
            layer = Image.new("I", (self.side, self.side))
            draw = ImageDraw.Draw(layer)
            for i, shape in enumerate(self._shapes):
                if shape.cls == cls:
                    shape.draw(draw, shape.fill and 2 * i + 2, shape.outline and 2 * i + 3)
            shown = (near_at >> cls) & 1 == 1
            top[shown] = np.maximum(top[shown], _values(layer, at[0][shown], at[1][shown]))
        painted = self._background[at[0]]
        for pixel, code in enumerate(top.tolist()):
            if code:
                shape = self._shapes[code // 2 - 1]
                painted[pixel] = shape.outline if code % 2 else shape.fill
        pixels[at] = painted
        seg[at] = painted[:, 3]

    def _centres(self, seg: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(seg[self.step // 2::self.step, self.step // 2::self.step])

    def finish(self, pixels: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Box-downsample the colour (float) and point-sample the class map at pixel centres."""
        # The fourth channel is resized too and dropped: RGBX, unlike RGBA, is resized without premultiplied alpha.
        supersampled = Image.frombuffer("RGBX", (self.side, self.side), pixels, "raw", "RGBX", 0, 1)
        image = supersampled.resize((self.size, self.size), Image.BOX)
        return np.asarray(image, dtype=np.float32)[..., :3], self._centres(seg)


def _values(image: Image.Image, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The values of a one-band image at a few pixels (reading them one by one beats converting the whole image)."""
    access = image.load()
    return np.array([access[x, y] for y, x in zip(rows.tolist(), columns.tolist())], np.int32)


def _classes_near(labels: np.ndarray) -> np.ndarray:
    """Per pixel, a bit mask of the classes at it and at its 8 neighbours."""
    bits = np.left_shift(1, labels.astype(np.int32))
    columns = bits.copy()  # the 3 x 3 neighbourhood is a vertical then a horizontal one
    columns[1:] |= bits[:-1]
    columns[:-1] |= bits[1:]
    near = columns.copy()
    near[:, 1:] |= columns[:, :-1]
    near[:, :-1] |= columns[:, 1:]
    return near
