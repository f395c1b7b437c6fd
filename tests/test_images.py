"""Loading real photos: every bad file gives a clear error, every pixel mode comes out as RGB in [-1, 1]."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chatface.images import ImageLoadError, load_image, open_image, save_image, to_pil, to_rgb

RED, GREY, BLACK = (255, 0, 0), (128, 128, 128), (0, 0, 0)


def saved(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def level(value: int) -> float:
    """An 8-bit level in the [-1, 1] scale."""
    return value / 127.5 - 1


def test_an_rgb_photo_becomes_a_square_float_tensor_in_range(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    image = load_image(saved(Image.fromarray(pixels), tmp_path / "photo.png"), 16)
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1


def test_the_short_side_is_resized_and_the_centre_kept(tmp_path):
    stripes = Image.new("RGB", (90, 30), RED)
    stripes.paste((0, 255, 0), (30, 0, 60, 30))
    image = load_image(saved(stripes, tmp_path / "stripes.png"), 8)
    assert torch.allclose(image[:, 4, 4], torch.tensor([-1.0, 1.0, -1.0]), atol=0.05)


def saved_text(path: Path) -> Path:
    path.write_text("not a picture")
    return path


def truncated(path: Path, image_format: str) -> Path:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    saved(Image.fromarray(noise), path, format=image_format)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda tmp: tmp / "absent.png", "no such file"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: saved_text(tmp / "notes.png"), "not an image"),
        (lambda tmp: truncated(tmp / "cut.png", "PNG"), "truncated or corrupt"),
        (lambda tmp: truncated(tmp / "cut.jpg", "JPEG"), "truncated or corrupt"),
    ],
    ids=["missing", "folder", "text", "truncated-png", "truncated-jpeg"],
)
def test_a_bad_file_gives_an_error_naming_it_and_why(tmp_path, make, why):
    path = make(tmp_path)
    with pytest.raises(ImageLoadError, match=why) as error:
        load_image(path, 16)
    assert str(path) in str(error.value)


def test_the_error_survives_a_trip_to_a_dataloader_worker_and_back(tmp_path):
    with pytest.raises(ImageLoadError) as error:
        load_image(tmp_path / "absent.png", 16)
    copy = pickle.loads(pickle.dumps(error.value))
    assert type(copy) is ImageLoadError and str(copy) == str(error.value)


# PIL warns above MAX_IMAGE_PIXELS and refuses above twice that: both must be refused.
@pytest.mark.parametrize("side", [40, 100])
def test_a_decompression_bomb_is_refused(tmp_path, monkeypatch, side):
    path = saved(Image.new("RGB", (side, side)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="too many pixels") as error:
        load_image(path, 16)
    assert str(path) in str(error.value)


def test_exif_orientation_turns_the_photo_upright(tmp_path):
    # Stored landscape with a red top edge; tag 6 says "rotate 90 degrees clockwise to display": red ends up right.
    stored = Image.new("RGB", (40, 20), GREY)
    stored.paste(RED, (0, 0, 40, 5))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = saved(stored, tmp_path / "rotated.jpg", exif=exif, quality=95)

    assert open_image(path).size == (20, 40)
    image = load_image(path, 20)
    assert torch.allclose(image[:, 10, -1], torch.tensor([1.0, -1.0, -1.0]), atol=0.15)
    assert torch.allclose(image[:, 10, 0], torch.full((3,), level(128)), atol=0.15)


@pytest.mark.parametrize(("mode", "fill", "expected"), [("L", 200, level(200)), ("1", 1, 1.0)])
def test_grey_images_become_grey_rgb(tmp_path, mode, fill, expected):
    image = load_image(saved(Image.new(mode, (8, 8), fill), tmp_path / "grey.png"), 8)
    assert torch.allclose(image, torch.full((3, 8, 8), expected))


def half_clear_rgba() -> Image.Image:
    """Left half transparent red, right half opaque black."""
    image = Image.new("RGBA", (8, 8), (*BLACK, 255))
    image.paste((*RED, 0), (0, 0, 4, 8))
    return image


def half_clear_palette() -> Image.Image:
    """Left half palette entry 0 (red, transparent), right half entry 1 (black)."""
    image = Image.new("P", (8, 8), 1)
    image.putpalette([*RED, *BLACK])
    image.paste(0, (0, 0, 4, 8))
    image.info["transparency"] = 0
    return image


@pytest.mark.parametrize(
    "image", [half_clear_rgba(), half_clear_rgba().convert("LA"), half_clear_palette()], ids=["RGBA", "LA", "P"]
)
def test_transparent_pixels_become_white(tmp_path, image):
    tensor = load_image(saved(image, tmp_path / "clear.png"), 8)
    assert torch.allclose(tensor[:, :, 0], torch.ones(3, 8))
    assert torch.allclose(tensor[:, :, -1], -torch.ones(3, 8))


def test_a_palette_image_shows_its_colours(tmp_path):
    image = Image.new("P", (8, 8), 1)
    image.putpalette([*RED, 0, 0, 255])
    image.paste(0, (0, 0, 4, 8))
    tensor = load_image(saved(image, tmp_path / "palette.png"), 8)
    assert torch.allclose(tensor[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    assert torch.allclose(tensor[:, 0, -1], torch.tensor([-1.0, -1.0, 1.0]))


def test_cmyk_becomes_rgb(tmp_path):
    cyan = Image.new("CMYK", (8, 8), (255, 0, 0, 0))
    image = load_image(saved(cyan, tmp_path / "cyan.jpg", quality=95), 8)
    assert torch.allclose(image, torch.tensor([-1.0, 1.0, 1.0])[:, None, None].expand(3, 8, 8), atol=0.05)


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    levels = np.array([[0, 128 * 257, 65535, 65535]], dtype=np.uint16).repeat(4, axis=0)
    path = saved(Image.fromarray(levels), tmp_path / "deep.png")
    assert Image.open(path).mode == "I;16"
    row = load_image(path, 4)[0, 0]
    assert torch.allclose(row, torch.tensor([-1.0, level(128), 1.0, 1.0]), atol=0.02)
    assert row.max() == 1.0


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_every_16_bit_mode_is_scaled_to_8_bits(mode):
    image = Image.new(mode, (3, 1))
    image.putpixel((1, 0), 128 * 257)
    image.putpixel((2, 0), 65535)
    assert np.asarray(to_rgb(image, Path("in-memory")))[0, :, 0].tolist() == [0, 128, 255]


def test_a_floating_point_image_is_refused(tmp_path):
    path = saved(Image.new("F", (8, 8), 0.5), tmp_path / "float.tif")
    with pytest.raises(ImageLoadError, match="floating-point") as error:
        load_image(path, 8)
    assert str(path) in str(error.value)


def test_save_and_load_round_trip(tmp_path):
    tensor = torch.rand(3, 8, 8) * 2 - 1
    path = tmp_path / "out" / "deeper" / "edit.png"
    save_image(tensor, path)
    assert torch.allclose(load_image(path, 8), tensor, atol=1 / 127.5)


def test_save_refuses_a_lossy_suffix_and_a_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match="png"):
        save_image(torch.zeros(3, 8, 8), tmp_path / "edit.jpg")
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        to_pil(torch.zeros(1, 3, 8, 8))
