"""Image folders: bad files are skipped once, loudly, at setup; splits and batches have the promised shapes."""

import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from chatface.backbone_eval import backbone_pipeline
from chatface.config import load_config
from chatface.train_mapper import mapper_latents
from datamodules.image_folder import ImageFolderDataModule, NotEnoughImagesError, split_folder


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


# -- the mapper's faces from a folder of photos (the ffhq256 world) -----------------------------------------------

def test_a_folder_splits_into_disjoint_train_val_and_test_images(tmp_path):
    files = make_images(tmp_path, [f"{i:02d}.png" for i in range(10)])
    splits = split_folder(tmp_path, {"train": 4, "val": 2, "test": 3})
    assert splits == {"train": files[:4], "val": files[5:7], "test": files[7:]}


def test_too_few_images_for_the_splits_is_an_error_that_says_what_to_lower(tmp_path):
    make_images(tmp_path, ["a.png", "b.png", "c.png"])
    expected = r"holds 3 images; .* 2 \+ 1 \+ 1 = 4.*mapper.train_faces / val_faces"
    with pytest.raises(NotEnoughImagesError, match=expected):
        split_folder(tmp_path, {"train": 2, "val": 1, "test": 1})


def test_an_unreadable_chosen_image_is_left_out_with_a_warning(tmp_path):
    files = make_images(tmp_path, ["a.png", "b.png", "c.png", "d.png"])
    files[1].write_text("not a picture")
    with pytest.warns(UserWarning, match="b.png"):
        splits = split_folder(tmp_path, {"train": 2, "val": 1, "test": 1})
    assert splits["train"] == files[:1]


def test_the_mapper_caches_latents_of_folder_photos_without_labels(tiny_world, tmp_path):
    make_images(tmp_path / "photos", [f"{i:02d}.png" for i in range(6)])
    cfg = load_config([*tiny_world, f"output_dir={tmp_path / 'runs'}", f"data.image_folder={tmp_path / 'photos'}",
                       "mapper.train_faces=3", "mapper.val_faces=1", "mapper.test_faces=2"])
    pipe = backbone_pipeline(cfg)
    train = mapper_latents(cfg, pipe, "train")
    assert train["z"].shape[0] == 3 and train["labels"].shape == (3, 0)
    assert train["image"].shape == (3, 3, 64, 64)
    assert mapper_latents(cfg, pipe, "test")["z"].shape[0] == 2
    touched = tmp_path / "photos" / "00.png"  # another file under the same name is other faces: a new cache
    Image.new("RGB", (30, 30), (1, 2, 3)).save(touched)
    assert len(list((tmp_path / "runs" / "latents").glob("*.safetensors"))) == 2
    mapper_latents(cfg, pipe, "train")
    assert len(list((tmp_path / "runs" / "latents").glob("*.safetensors"))) == 3
