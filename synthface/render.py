"""The SynthFace renderer: (identity, attributes, scene) -> image and pixel-exact segmentation map.

Faces are drawn back to front on a supersampled canvas; textures (hair strands or curls, beard stubble, wrinkles,
eyeshadow) are applied afterwards only inside their class, so an attribute never paints outside the regions it owns.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from synthface import palette
from synthface.canvas import Canvas
from synthface.classes import FaceClass as C
from synthface.identity import Identity
from synthface.scene import Scene


@dataclass(frozen=True)
class Layout:
    """Where the main features sit, in unit coordinates."""

    cx: float
    cy: float
    eye_y: float
    mouth_y: float
    hairline_y: float


def render(identity: Identity, active: frozenset[str], scene: Scene, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Return an (size, size, 3) uint8 image and its (size, size) uint8 class map."""
    supersample = max(2, -(-192 // size))
    canvas = Canvas(size, supersample, _background(scene, size * supersample))
    layout = _layout(identity, scene)
    skin = palette.skin(identity, active)
    hair = palette.hair(identity, active)

    _draw_clothes_and_back_hair(canvas, identity, active, layout, scene, hair)
    _draw_head(canvas, identity, active, layout, scene, skin)
    _draw_eyes_and_brows(canvas, identity, active, layout)
    _draw_beard(canvas, identity, active, layout, hair)
    _draw_nose(canvas, identity, layout, skin)
    _draw_mouth(canvas, identity, active, layout, scene)
    if "mustache" in active:
        _draw_mustache(canvas, identity, layout, hair)
    if active & {"glasses", "sunglasses"}:
        _draw_glasses(canvas, identity, "sunglasses" in active, layout, scene)
    _draw_front_hair(canvas, identity, active, layout, hair)

    pixels, seg = canvas.pixels()
    _texture(pixels, seg, identity, active, layout, scene)
    image, classes = canvas.finish(pixels, seg)
    return _light(image, scene), classes


def _layout(identity: Identity, scene: Scene) -> Layout:
    cx, cy = 0.5 + scene.offset_x, 0.5 + scene.offset_y
    hairline = cy - identity.face_height * (0.52 + 0.16 * identity.hairline)
    return Layout(cx, cy, cy + identity.eye_height, cy + identity.mouth_y, hairline)


@lru_cache(maxsize=8)
def _ramp(side: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, side, dtype=np.float32)[:, None]


def _background(scene: Scene, side: int) -> np.ndarray:
    """The colour of each canvas row, (side, 3) uint8: a vertical gradient."""
    t = _ramp(side)
    top, bottom = np.array(scene.background_top, np.float32), np.array(scene.background_bottom, np.float32)
    return (top * (1 - t) + bottom * t).astype(np.uint8)


@lru_cache(maxsize=8)
def _light_coords(size: int) -> np.ndarray:
    return np.linspace(-0.5, 0.5, size, dtype=np.float32)


def _light(image: np.ndarray, scene: Scene) -> np.ndarray:
    """Apply the scene's lighting gradient to a float image and quantise it."""
    coords = _light_coords(image.shape[0])
    gain = 1 + scene.light_strength * (np.cos(scene.light_direction) * coords[None, :]
                                       + np.sin(scene.light_direction) * coords[:, None])
    return np.clip(image * gain[..., None], 0, 255).astype(np.uint8)


def _head_hair_ellipse(identity: Identity, layout: Layout) -> tuple[float, float, float, float]:
    return layout.cx, layout.cy - identity.face_height * 0.18, identity.face_width * 1.13, identity.face_height * 0.98


def _draw_clothes_and_back_hair(canvas, identity, active, layout, scene, hair) -> None:
    canvas.ellipse(layout.cx, layout.cy + 0.56, 0.44, 0.22, scene.clothes, C.CLOTHES)
    hx, hy, hrx, hry = _head_hair_ellipse(identity, layout)
    if "long_hair" in active:
        bottom = layout.cy + identity.face_height * 1.45
        canvas.rectangle(hx - hrx * 1.08, hy, hx + hrx * 1.08, bottom, hair, C.HAIR, radius=0.05)
        if "curly_hair" in active:
            for y in np.linspace(hy, bottom - 0.03, 9).tolist():
                for side in (-1, 1):
                    canvas.ellipse(hx + side * hrx * 1.08, y, 0.03, 0.03, hair, C.HAIR)
    canvas.ellipse(hx, hy, hrx * (1.12 if "long_hair" in active else 1.0), hry, hair, C.HAIR)
    if "curly_hair" in active:
        for angle in np.linspace(np.pi * 0.9, np.pi * 2.1, 13):
            canvas.ellipse(hx + hrx * np.cos(angle), hy + hry * np.sin(angle), 0.032, 0.032, hair, C.HAIR)


def _draw_head(canvas, identity, active, layout, scene, skin) -> None:
    fw, fh, cx, cy = identity.face_width, identity.face_height, layout.cx, layout.cy
    canvas.rectangle(cx - identity.neck_width, cy + fh * 0.5, cx + identity.neck_width, 1.0,
                     palette.shade(skin, 0.9), C.NECK)
    ear_y = cy + identity.ear_y
    for side in (-1, 1):
        canvas.ellipse(cx + side * fw * 0.97, ear_y, identity.ear_size * 0.55, identity.ear_size,
                       palette.shade(skin, 0.95), C.EARS)
    canvas.ellipse(cx, cy - fh * 0.1, fw, fh * 0.9, skin, C.SKIN)
    canvas.ellipse(cx, cy + fh * 0.1, fw * identity.jaw, fh * 0.9, skin, C.SKIN)
    if "earrings" in active:
        for side in (-1, 1):
            x, y = cx + side * fw * 0.98, ear_y + identity.ear_size * 1.15
            canvas.ellipse(x, y, 0.014, 0.014, scene.earring, C.EARRINGS, outline=palette.shade(scene.earring, 0.6),
                           width=0.004)


def _brow_lift(active: frozenset[str]) -> tuple[float, float]:
    """(lift of the whole brow, extra lift of its inner end) for the expression."""
    if "surprised" in active:
        return 0.016, 0.0
    if "angry" in active:
        return -0.002, -0.013
    if "sad" in active:
        return 0.0, 0.013
    return 0.0, 0.0


def _draw_eyes_and_brows(canvas, identity, active, layout) -> None:
    rx, ry = identity.eye_size, identity.eye_size * identity.eye_aspect
    iris_r = min(rx * 0.52, ry * 0.98)
    iris = palette.iris(identity, active)
    lift, inner_lift = _brow_lift(active)
    for side in (-1, 1):
        ex = layout.cx + side * identity.eye_spacing
        canvas.ellipse(ex, layout.eye_y, rx, ry, (238, 236, 232), C.EYES, outline=(70, 50, 45), width=0.004)
        canvas.ellipse(ex, layout.eye_y, iris_r, iris_r, iris, C.IRISES)
        canvas.ellipse(ex, layout.eye_y, iris_r * 0.45, iris_r * 0.45, (12, 10, 12), C.IRISES)
        canvas.ellipse(ex - iris_r * 0.3, layout.eye_y - iris_r * 0.3, iris_r * 0.18, iris_r * 0.18,
                       (250, 250, 250), C.IRISES)
        brow_y = layout.eye_y - ry - identity.brow_gap - lift
        inner, outer = ex - side * rx * 1.05, ex + side * rx * 1.35
        points = [(inner, brow_y - identity.brow_tilt - inner_lift),
                  (ex, brow_y - identity.brow_arch),
                  (outer, brow_y + identity.brow_tilt + 0.006)]
        canvas.line(points, palette.brows(identity), C.BROWS, identity.brow_thickness)


def _draw_nose(canvas, identity, layout, skin) -> None:
    top, bottom, w = layout.eye_y + 0.012, layout.eye_y + identity.nose_length, identity.nose_width
    nose = palette.shade(skin, 0.92)
    canvas.polygon([(layout.cx - w * 0.3, top), (layout.cx + w * 0.3, top), (layout.cx + w, bottom),
                    (layout.cx - w, bottom)], nose, C.NOSE)
    canvas.ellipse(layout.cx, bottom, w, w * 0.45, nose, C.NOSE)
    for side in (-1, 1):
        canvas.ellipse(layout.cx + side * w * 0.45, bottom + w * 0.12, w * 0.22, w * 0.13,
                       palette.shade(skin, 0.55), C.NOSE)


def _band(cx, y, half_width, corner_dy, upper, lower, n=12) -> list[tuple[float, float]]:
    """A lip-shaped band: corners at y + corner_dy, centre from y - upper to y + lower."""
    u = np.linspace(-1, 1, n)
    xs = cx + u * half_width
    top = y + corner_dy * u**2 - upper * (1 - u**2)
    bottom = y + corner_dy * u**2 + lower * (1 - u**2)
    return list(zip(xs.tolist(), top.tolist())) + list(zip(xs[::-1].tolist(), bottom[::-1].tolist()))


def _draw_beard(canvas, identity, active, layout, hair) -> None:
    if "beard" not in active:
        return
    top, chin = layout.mouth_y - 0.03, layout.cy + identity.face_height * 1.02
    canvas.chord(layout.cx, top, identity.face_width * identity.jaw * 1.03, chin - top, 0, 180,
                 palette.shade(hair, 0.85), C.BEARD)


def _draw_mouth(canvas, identity, active, layout, scene) -> None:
    cx, y, w, t = layout.cx, layout.mouth_y, identity.mouth_width, identity.lip_thickness
    lips = scene.lipstick if "makeup" in active else palette.lips(identity)
    if "surprised" in active:
        canvas.ellipse(cx, y + 0.004, w * 0.5, t * 2.3, lips, C.LIPS)
        canvas.ellipse(cx, y + 0.004, w * 0.32, t * 1.45, (70, 22, 28), C.MOUTH)
    elif "smile" in active:
        canvas.polygon(_band(cx, y, w * 1.08, -0.014, t * 0.6, t * 2.4), lips, C.LIPS)
        canvas.polygon(_band(cx, y + t * 0.05, w * 0.9, -0.011, t * 0.05, t * 1.5), (244, 242, 236), C.TEETH)
    elif "sad" in active:
        canvas.polygon(_band(cx, y, w * 0.92, 0.012, t * 0.85, t * 0.9), lips, C.LIPS)
        canvas.line([(cx - w * 0.9, y + 0.012), (cx, y), (cx + w * 0.9, y + 0.012)], palette.shade(lips, 0.6), C.LIPS,
                    0.004)
    elif "angry" in active:
        canvas.polygon(_band(cx, y, w * 0.86, 0.005, t * 0.5, t * 0.55), lips, C.LIPS)
        canvas.line([(cx - w * 0.84, y + 0.005), (cx + w * 0.84, y + 0.005)], palette.shade(lips, 0.5), C.LIPS, 0.005)
    else:
        canvas.polygon(_band(cx, y, w, 0.0, t, t * 1.05), lips, C.LIPS)
        canvas.line([(cx - w * 0.98, y), (cx + w * 0.98, y)], palette.shade(lips, 0.6), C.LIPS, 0.004)


def _draw_mustache(canvas, identity, layout, hair) -> None:
    y = layout.mouth_y - identity.lip_thickness - 0.008
    canvas.polygon(_band(layout.cx, y, identity.mouth_width * 1.1, 0.012, 0.009, 0.007), palette.shade(hair, 0.8),
                   C.BEARD)


def _draw_glasses(canvas, identity, sunglasses, layout, scene) -> None:
    rx, ry = identity.eye_size * 1.75, identity.eye_size * 1.45
    lens = (28, 30, 36) if sunglasses else None
    y = layout.eye_y + 0.004
    for side in (-1, 1):
        ex = layout.cx + side * identity.eye_spacing
        if scene.round_frames:
            canvas.ellipse(ex, y, rx, ry, lens, C.GLASSES, outline=scene.frame, width=0.008)
        else:
            canvas.rectangle(ex - rx, y - ry * 0.85, ex + rx, y + ry * 0.85, lens, C.GLASSES, radius=0.012,
                             outline=scene.frame, width=0.008)
        arm_from, arm_to = ex + side * rx, layout.cx + side * identity.face_width * 0.97
        canvas.line([(arm_from, y - ry * 0.3), (arm_to, y - ry * 0.45)], scene.frame, C.GLASSES, 0.006)
        if sunglasses:
            canvas.ellipse(ex - rx * 0.35, y - ry * 0.35, rx * 0.18, ry * 0.12, (120, 125, 135), C.GLASSES)
    inner = identity.eye_spacing - rx
    canvas.line([(layout.cx - inner, y - ry * 0.3), (layout.cx, y - ry * 0.45), (layout.cx + inner, y - ry * 0.3)],
                scene.frame, C.GLASSES, 0.007)


def _draw_front_hair(canvas, identity, active, layout, hair) -> None:
    hx, hy, hrx, hry = _head_hair_ellipse(identity, layout)
    s = np.clip((layout.hairline_y - hy) / hry, -0.99, 0.99)
    edge = np.degrees(np.arcsin(s))
    canvas.chord(hx, hy, hrx, hry, 180 - edge, 360 + edge, hair, C.HAIR)
    curly = "curly_hair" in active
    if curly:
        half = hrx * np.sqrt(1 - s**2)
        for x in np.linspace(hx - half * 0.8, hx + half * 0.8, 7).tolist():
            canvas.ellipse(x, layout.hairline_y, 0.022, 0.02, hair, C.HAIR)
    if "bangs" in active:
        _draw_bangs(canvas, identity, layout, hair, curly)


def _draw_bangs(canvas, identity, layout, hair, curly) -> None:
    fw = identity.face_width
    bottom = layout.eye_y - identity.eye_size * identity.eye_aspect - identity.brow_gap - 0.012
    top = layout.hairline_y - 0.02
    xs = np.linspace(layout.cx - fw * 0.82, layout.cx + fw * 0.82, 9).tolist()
    if curly:
        canvas.rectangle(xs[0], top, xs[-1], bottom - 0.02, hair, C.HAIR)
        for x in xs:
            canvas.ellipse(x, bottom - 0.02, 0.026, 0.024, hair, C.HAIR)
        return
    fringe = [(xs[0], top)] + [(x, bottom - (0.018 if i % 2 else 0.0)) for i, x in enumerate(xs)] + [(xs[-1], top)]
    canvas.polygon(fringe, hair, C.HAIR)


def _texture(pixels, seg, identity, active, layout, scene) -> None:
    """Shade textures in place, inside their classes only: a gain per pixel, then the eyeshadow blend.

    Pixels of other classes have gain 1 and keep their colour, so only the textured classes' pixels are visited.
    """
    side = len(seg)
    # Plain ints (.value): numpy compares an array with an IntEnum member far more slowly.
    hair, beard = np.flatnonzero(seg == C.HAIR.value), np.flatnonzero(seg == C.BEARD.value)
    _set_colours(pixels, hair, _colours(pixels, hair) * _hair_gain(side, "curly_hair" in active).ravel()[hair, None])
    _set_colours(pixels, beard, _colours(pixels, beard) * _stubble(side).ravel()[beard, None])
    if active & {"wrinkles", "eyeshadow"}:
        skin = np.flatnonzero(seg == C.SKIN.value)
        y, x = (axis.ravel()[skin] for axis in _grid(side))
        rgb = _colours(pixels, skin)
        if "wrinkles" in active:
            rgb *= np.where(_wrinkle_mask(x, y, identity, layout), np.float32(0.78), np.float32(1))[:, None]
        if "eyeshadow" in active:
            shadow = _eyeshadow_mask(x, y, identity, layout)
            rgb[shadow] = rgb[shadow] * 0.4 + np.array((*scene.eyeshadow, 0), np.float32) * 0.6
        _set_colours(pixels, skin, rgb)


def _colours(pixels: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The canvas pixels at flat indices `at`, (n, 4) float32: R, G, B and a scratch fourth channel."""
    # Each pixel is moved as one uint32: far faster than indexing its three colour channels.
    return pixels.view(np.uint32).reshape(-1)[at].view(np.uint8).reshape(-1, 4).astype(np.float32)


def _set_colours(pixels: np.ndarray, at: np.ndarray, colours: np.ndarray) -> None:
    pixels.view(np.uint32).reshape(-1)[at] = np.clip(colours, 0, 255).astype(np.uint8).view(np.uint32).reshape(-1)


@lru_cache(maxsize=4)
def _grid(side: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    return y, x


@lru_cache(maxsize=8)
def _hair_gain(side: int, curly: bool) -> np.ndarray:
    y, x = _grid(side)
    pattern = np.sin(x * 150) * np.sin(y * 150) if curly else np.sin(x * 260 + 3 * np.sin(y * 20))
    return (1 + 0.16 * pattern).astype(np.float32)


@lru_cache(maxsize=4)
def _stubble(side: int) -> np.ndarray:
    return 0.85 + 0.3 * np.random.default_rng(7).random((side, side), dtype=np.float32)


def _wrinkle_mask(x, y, identity, layout) -> np.ndarray:
    forehead = np.zeros_like(x, dtype=bool)
    for k in range(3):
        line_y = layout.eye_y - 0.075 - 0.022 * k + 0.6 * (x - layout.cx) ** 2
        forehead |= (np.abs(y - line_y) < 0.0035) & (np.abs(x - layout.cx) < identity.face_width * 0.55)
    folds = np.zeros_like(forehead)
    for side in (-1, 1):
        fold_x = layout.cx + side * (identity.nose_width + 0.012 + 0.35 * (y - layout.eye_y - 0.05))
        in_span = (y > layout.eye_y + identity.nose_length - 0.01) & (y < layout.mouth_y + 0.01)
        folds |= in_span & (np.abs(x - fold_x) < 0.003)
        corner_x = layout.cx + side * (identity.eye_spacing + identity.eye_size * 1.25)
        feet = (np.abs(x - corner_x) < 0.018) & (np.abs((y - layout.eye_y) - 0.5 * np.abs(x - corner_x)) < 0.003)
        folds |= feet
    return forehead | folds


def _eyeshadow_mask(x, y, identity, layout) -> np.ndarray:
    rx, ry = identity.eye_size * 1.25, identity.eye_size * identity.eye_aspect * 1.9
    mask = np.zeros_like(x, dtype=bool)
    for side in (-1, 1):
        ex = layout.cx + side * identity.eye_spacing
        mask |= (((x - ex) / rx) ** 2 + ((y - layout.eye_y + ry * 0.35) / ry) ** 2 < 1) & (y < layout.eye_y)
    return mask
