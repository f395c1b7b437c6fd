"""A folder of face photos (CelebA-HQ, FFHQ, your own) as a LightningDataModule.

Every file is decoded once at setup; unreadable ones are skipped with a warning naming each, so that training
never meets a bad file.
"""

from __future__ import annotations

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


def readable_images(root: Path) -> list[Path]:
    """The image files under `root` that decode, sorted; each unreadable one is skipped with a warning."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder. Point root at a folder of face images.")
    candidates = sorted(path for path in root.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
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
