"""Reading real photos for editing and for datasets, and writing results back.

Every way a file can be unusable (missing, a folder, not an image, truncated, corrupt, absurdly large, an
unsupported pixel mode) becomes an `ImageLoadError` that names the file, says why and what to do.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

WHITE = (255, 255, 255, 255)
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


# A plain one-message exception, so that it pickles and DataLoader workers re-raise it as itself.
class ImageLoadError(ValueError):
    """An image file that cannot be used; the message names the file, the cause and the remedy."""


def unusable(path: Path, why: str, remedy: str) -> ImageLoadError:
    return ImageLoadError(f"{path}: {why}. {remedy}")


def load_image(path: str | Path, size: int) -> torch.Tensor:
    """Load an image as a float tensor (3, size, size) in [-1, 1].

    The image is turned upright by its EXIF orientation and converted to RGB: transparent areas are composited
    on white, 16-bit images are scaled to 8 bits. Its short side is then resized to `size` (bicubic, antialiased)
    and the centre cropped to a square.
    """
    path = Path(path)
    return to_tensor(resize_and_crop(to_rgb(open_image(path), path), size))


def open_image(path: Path) -> Image.Image:
    """Open `path`, decode every pixel (so that truncation shows now) and turn it upright by its EXIF tag."""
    if not path.exists():
        raise unusable(path, "no such file", "Check the path.")
    if path.is_dir():
        raise unusable(path, "is a folder, not an image file", "Pass the path of one image file.")
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; a file that large is refused all the same.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise unusable(
            path,
            f"too many pixels to decode safely ({error})",
            "Downscale it first, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file.",
        ) from error
    except UnidentifiedImageError as error:
        raise unusable(
            path, "not an image format PIL can read", "Convert it to PNG or JPEG, or remove it."
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise unusable(
            path, f"cannot be decoded, the file is truncated or corrupt ({error})", "Re-export or re-download it."
        ) from error


def to_rgb(image: Image.Image, path: Path) -> Image.Image:
    """Convert any pixel mode to 8-bit RGB; transparency is composited on white. `path` is for error messages."""
    if image.mode == "F":
        raise unusable(
            path,
            "holds floating-point pixels (mode F) whose range is unknown",
            "Save it as an 8- or 16-bit image.",
        )
    if image.mode in SIXTEEN_BIT_MODES:
        image = sixteen_to_eight_bit(image)
    if image.has_transparency_data:
        image = Image.alpha_composite(Image.new("RGBA", image.size, WHITE), image.convert("RGBA"))
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise unusable(
            path, f"has pixel mode {image.mode}, which PIL cannot convert to RGB", "Save it as RGB."
        ) from error


def sixteen_to_eight_bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit grey levels to 8 bits, 65535 -> 255 (PIL's own conversion clips instead). Mode I is read as
    16-bit, which is what PIL gives for 16-bit PNGs."""
    levels = np.asarray(image).astype(np.float64).clip(0, 65535)
    return Image.fromarray((levels / 257).round().astype(np.uint8))


def resize_and_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the short side to `size` and crop the centre to a square, in one bicubic, antialiased resampling."""
    return ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB image as a float tensor (3, H, W) in [-1, 1]."""
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    return pixels.float() / 127.5 - 1


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """A tensor (3, H, W) in [-1, 1] as an RGB image; values outside [-1, 1] are clipped."""
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ValueError(f"expected a tensor of shape (3, H, W), got {tuple(tensor.shape)}")
    pixels = ((tensor.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


def save_image(tensor: torch.Tensor, path: str | Path) -> None:
    """Write a tensor (3, H, W) in [-1, 1] to `path` as a PNG, creating its folder."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: images are saved losslessly as PNG; give a path ending in .png")
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(tensor).save(path, format="PNG")
