"""A folder of face photos (CelebA-HQ, FFHQ, your own) as a LightningDataModule.

Every file is decoded once at setup; unreadable ones are skipped with a warning naming each, so that training
never meets a bad file.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from chatface.images import ImageLoadError, load_image, open_image, to_rgb

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


class ImageFolderDataset(Dataset):
    """Images as dicts `{"image": tensor (3, size, size) in [-1, 1], "path": str}`."""

    def __init__(self, paths: Sequence[Path], image_size: int) -> None:
        self.paths = list(paths)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        path = self.paths[index]
        return {"image": load_image(path, self.image_size), "path": str(path)}

    @property
    def cache_key(self) -> str:
        """Names these exact files (paths, sizes, modification times) at this size, for the latent cache."""
        digest = hashlib.sha256()
        for path in self.paths:
            stat = path.stat()
            digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return f"folder{len(self.paths)}-{digest.hexdigest()[:10]}-{self.image_size}px"


class ImageFolderDataModule(L.LightningDataModule):
    """The readable images under `root` (searched recursively, sorted); the last `val_fraction` of them validate."""

    def __init__(
        self, root: str | Path, image_size: int, batch_size: int, num_workers: int = 0, val_fraction: float = 0.0
    ) -> None:
        super().__init__()
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.root = Path(root)
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.paths: list[Path] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.paths is None:
            self.paths = readable_images(self.root)

    @property
    def split(self) -> int:
        """Index of the first validation image."""
        return len(self.paths) - int(len(self.paths) * self.val_fraction)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.paths[: self.split], shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.paths[self.split :], shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.loader(self.paths, shuffle=False)

    def loader(self, paths: list[Path], shuffle: bool) -> DataLoader:
        return DataLoader(
            ImageFolderDataset(paths, self.image_size),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )


class NotEnoughImagesError(ValueError):
    """An image folder holds fewer images than the splits asked of it."""


def split_folder(root: Path, counts: dict[str, int]) -> dict[str, list[Path]]:
    """Disjoint train / val / test images of a folder (sorted names): test the last counts["test"], val the
    counts["val"] before them, train the first counts["train"]. Only the chosen files are decoded to check them
    (a big folder is not read whole); unreadable ones are left out with a warning."""
    files = image_files(root)
    need = counts["train"] + counts["val"] + counts["test"]
    if len(files) < need:
        raise NotEnoughImagesError(
            f"{root} holds {len(files)} images; train, val and test need {counts['train']} + {counts['val']} + "
            f"{counts['test']} = {need}. Add images or lower mapper.train_faces / val_faces / test_faces.")
    end_val = len(files) - counts["test"]
    chosen = {"train": files[:counts["train"]], "val": files[end_val - counts["val"]:end_val],
              "test": files[end_val:]}
    return {split: [path for path in paths if is_readable(path)] for split, paths in chosen.items()}


def image_files(root: Path) -> list[Path]:
    """The files under `root` (recursively) with an image suffix, sorted, not decoded."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder. Point root at a folder of face images.")
    return sorted(path for path in root.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())


def readable_images(root: Path) -> list[Path]:
    """The image files under `root` that decode, sorted; each unreadable one is skipped with a warning."""
    candidates = image_files(root)
    readable = [path for path in candidates if is_readable(path)]
    if not readable:
        raise ValueError(
            f"{root}: no readable image among {len(candidates)} files with suffixes {sorted(IMAGE_SUFFIXES)}. "
            "Point root at a folder of face images."
        )
    if len(readable) < len(candidates):
        warnings.warn(f"{root}: skipped {len(candidates) - len(readable)} of {len(candidates)} files")
    return readable


def is_readable(path: Path) -> bool:
    """Whether `path` fully decodes to RGB; if not, warn with the reason."""
    try:
        to_rgb(open_image(path), path)
    except ImageLoadError as error:
        warnings.warn(f"skipping {error}")
        return False
    return True
