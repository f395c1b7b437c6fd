"""A supersampled drawing surface that paints colour and segmentation class together.

Shapes are given in unit coordinates (0..1 of the image side). The colour image is downsampled with a box filter
(anti-aliasing); the class map keeps the class at each output pixel's centre, so it is exact for the drawn shapes.
"""

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[int, int, int]


class Canvas:
    def __init__(self, size: int, supersample: int, background: np.ndarray):
        self.size, self.side = size, size * supersample
        self.rgb = Image.fromarray(background)
        self.seg = Image.new("L", (self.side, self.side), 0)
        self._rgb, self._seg = ImageDraw.Draw(self.rgb), ImageDraw.Draw(self.seg)

    def px(self, v: float) -> float:
        return v * self.side

    def _box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        return [self.px(cx - rx), self.px(cy - ry), self.px(cx + rx), self.px(cy + ry)]

    def _points(self, pts) -> list[tuple[float, float]]:
        return [(self.px(x), self.px(y)) for x, y in pts]

    def _width(self, width: float) -> int:
        return max(1, round(self.px(width)))

    def ellipse(self, cx, cy, rx, ry, fill: Colour | None, cls: int | None,
                outline: Colour | None = None, width: float = 0.0) -> None:
        """A filled ellipse; with fill None only the outline is painted, but the class still covers the inside."""
        box = self._box(cx, cy, rx, ry)
        self._rgb.ellipse(box, fill=fill, outline=outline, width=self._width(width))
        if cls is not None:
            self._seg.ellipse(box, fill=cls)

    def chord(self, cx, cy, rx, ry, start: float, end: float, fill: Colour, cls: int | None) -> None:
        box = self._box(cx, cy, rx, ry)
        self._rgb.chord(box, start, end, fill=fill)
        if cls is not None:
            self._seg.chord(box, start, end, fill=cls)

    def polygon(self, pts, fill: Colour, cls: int | None) -> None:
        pts = self._points(pts)
        self._rgb.polygon(pts, fill=fill)
        if cls is not None:
            self._seg.polygon(pts, fill=cls)

    def rectangle(self, x0, y0, x1, y1, fill: Colour | None, cls: int | None, radius: float = 0.0,
                  outline: Colour | None = None, width: float = 0.0) -> None:
        box = [self.px(x0), self.px(y0), self.px(x1), self.px(y1)]
        self._rgb.rounded_rectangle(box, radius=self.px(radius), fill=fill, outline=outline, width=self._width(width))
        if cls is not None:
            self._seg.rounded_rectangle(box, radius=self.px(radius), fill=cls)

    def line(self, pts, fill: Colour, cls: int | None, width: float) -> None:
        pts, w = self._points(pts), self._width(width)
        self._rgb.line(pts, fill=fill, width=w, joint="curve")
        if cls is not None:
            self._seg.line(pts, fill=cls, width=w, joint="curve")

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The supersampled colour (float) and class map, for per-class shading."""
        return np.asarray(self.rgb, dtype=np.float32), np.asarray(self.seg)

    def finish(self, rgb: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Box-downsample the colour (float) and point-sample the class map at pixel centres."""
        image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).resize((self.size, self.size), Image.BOX)
        step = self.side // self.size
        return np.asarray(image, dtype=np.float32), np.ascontiguousarray(seg[step // 2::step, step // 2::step])
