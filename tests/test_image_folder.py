"""Image folders: bad files are skipped once, loudly, at setup; splits and batches have the promised shapes."""

import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from datamodules.image_folder import ImageFolderDataModule


def make_images(root: Path, names: list[str]) -> list[Path]:
    paths = [root / name for name in names]
    for index, path in enumerate(paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 16), (index * 20, 100, 200)).save(path)
    return paths


def prepared(root: Path, **options) -> ImageFolderDataModule:
    module = ImageFolderDataModule(root, **{"image_size": 8, "batch_size": 4, **options})
    module.setup("fit")
    return module


def test_images_are_found_recursively_in_sorted_order(tmp_path):
    good = make_images(tmp_path, ["b.png", "a/c.jpg", "a/deeper/d.WEBP", "e.bmp", "f.jpeg"])
    (tmp_path / "notes.txt").write_text("not an image, not an image suffix")
    assert prepared(tmp_path).paths == sorted(good)


def test_unreadable_files_are_skipped_with_a_warning_naming_each(tmp_path):
    make_images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "text.png").write_text("not a picture")
    truncated = tmp_path / "cut.jpg"
    Image.effect_noise((64, 64), 50).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])

    with pytest.warns(UserWarning) as warned:
        module = prepared(tmp_path)
    messages = [str(warning.message) for warning in warned]
    assert any("text.png" in message and "not an image" in message for message in messages)
    assert any("cut.jpg" in message and "truncated" in message for message in messages)
    assert any("skipped 2 of 4 files" in message for message in messages)
    assert [path.name for path in module.paths] == ["a.png", "b.png"]


def test_a_folder_without_readable_images_is_an_error_naming_it(tmp_path):
    bad, empty = tmp_path / "bad", tmp_path / "empty"
    bad.mkdir()
    empty.mkdir()
    (bad / "text.png").write_text("not a picture")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=re.escape(str(bad))):
        prepared(bad)
    with pytest.raises(ValueError, match=re.escape(str(empty))):
        prepared(empty)


def test_a_missing_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent"))):
        prepared(tmp_path / "absent")


def test_the_validation_split_is_the_last_fraction_of_the_sorted_files(tmp_path):
    make_images(tmp_path, [f"{index:02d}.png" for index in range(10)])
    module = prepared(tmp_path, val_fraction=0.2)
    assert len(module.train_dataloader().dataset) == 8
    assert [Path(path).name for path in module.val_dataloader().dataset.paths] == ["08.png", "09.png"]
    assert len(module.predict_dataloader().dataset) == 10


def test_without_a_validation_split_the_validation_loader_is_empty(tmp_path):
    make_images(tmp_path, ["a.png", "b.png"])
    assert list(prepared(tmp_path).val_dataloader()) == []


def test_a_batch_holds_images_and_their_paths(tmp_path):
    make_images(tmp_path, [f"{index}.png" for index in range(6)])
    batch = next(iter(prepared(tmp_path).predict_dataloader()))
    assert batch["image"].shape == (4, 3, 8, 8) and batch["image"].dtype == torch.float32
    assert batch["path"] == [str(tmp_path / f"{index}.png") for index in range(4)]


def test_val_fraction_must_leave_training_images():
    with pytest.raises(ValueError, match="val_fraction"):
        ImageFolderDataModule("anywhere", image_size=8, batch_size=4, val_fraction=1.0)
