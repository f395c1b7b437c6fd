"""SynthFace rendered once into tensors on disk, for the judges, which see every face many times.

A cache file holds uint8 images, class maps, attribute labels and identity ids of one split; its name says what
it holds, so a different split, size or count renders a new file instead of reusing a wrong one.
"""

from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from tqdm import tqdm

from datamodules.synthface import SynthFaceDataset
from synthface import to_labels
from synthface.attributes import ATTRIBUTES
from synthface.captions import caption


def _render(args: tuple[SynthFaceDataset, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    dataset, index = args
    face = dataset.face(index)
    image, mask = face.render(dataset.image_size)
    return image, mask, to_labels(face.attributes), face.identity_id


def render_cache(dataset: SynthFaceDataset, cache_dir: Path, workers: int = 2) -> Path:
    """Render every face of `dataset` into one safetensors file (once) and return its path."""
    d = dataset
    path = Path(cache_dir) / f"synthface-{d.split}-{d.length}x{d.identities}-{d.image_size}px.safetensors"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with Pool(workers) as pool:
        items = list(tqdm(pool.imap(_render, ((d, i) for i in range(d.length)), chunksize=64), total=d.length,
                          desc=f"rendering {path.name}", unit="face"))
    images, masks, labels, identities = zip(*items)
    tensors = {
        "images": torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
        "masks": torch.from_numpy(np.stack(masks).astype(np.uint8)),
        "labels": torch.from_numpy(np.stack(labels)),
        "identities": torch.tensor(identities, dtype=torch.long),
    }
    partial = path.with_suffix(".partial")
    save_file(tensors, partial)
    partial.rename(path)  # a killed render leaves no file that looks complete
    return path


class CachedSynthFace(Dataset):
    """Items like SynthFaceDataset's; captions are drawn afresh each time (wording varies between epochs), and
    with `negatives` some absent attributes are named as absent ("... and no glasses")."""

    def __init__(self, path: Path, negatives: int = 0) -> None:
        tensors = load_file(path)
        self.images, self.masks = tensors["images"], tensors["masks"]
        self.labels, self.identities = tensors["labels"], tensors["identities"]
        self.negatives = negatives
        self.rng = np.random.default_rng()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        active = frozenset(name for name, on in zip(ATTRIBUTES, self.labels[index].tolist()) if on)
        return {
            "image": self.images[index].float().div(127.5).sub(1.0),
            "mask": self.masks[index].long(),
            "labels": self.labels[index],
            "identity": self.identities[index],
            "caption": caption(active, self.rng, self.negatives),
        }
