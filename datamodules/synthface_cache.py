"""SynthFace rendered once into tensors on disk, for the judges, which see every face many times.

A cache file holds uint8 images, class maps, attribute labels and identity ids of one split (and, for a
counterfactual dataset, each face with one attribute flipped); its name says what it holds, so a different split,
size or count renders a new file instead of reusing a wrong one.
"""

from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from tqdm import tqdm

from datamodules.synthface import SynthFaceDataset, to_unit_range
from synthface import to_labels
from synthface.attributes import ATTRIBUTES
from synthface.captions import caption


def _render(args: tuple[SynthFaceDataset, int]) -> dict[str, np.ndarray | int]:
    dataset, index = args
    face = dataset.face(index)
    image, mask = face.render(dataset.image_size)
    item = {"images": image, "masks": mask.astype(np.uint8), "labels": to_labels(face.attributes),
            "identities": face.identity_id}
    if dataset.counterfactual:
        flipped, attribute, on = dataset.flipped(face)
        item.update(flipped_images=flipped.render(dataset.image_size)[0], flipped_attributes=attribute, flipped_on=on)
    return item


def render_cache(dataset: SynthFaceDataset, cache_dir: Path, workers: int = 2) -> Path:
    """Render every face of `dataset` into one safetensors file (once) and return its path."""
    d = dataset
    path = Path(cache_dir) / f"synthface-{d.cache_key}.safetensors"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with Pool(workers) as pool:
        items = list(tqdm(pool.imap(_render, ((d, i) for i in range(d.length)), chunksize=64), total=d.length,
                          desc=f"rendering {path.name}", unit="face"))
    tensors = {key: torch.from_numpy(np.stack([item[key] for item in items])) for key in items[0]}
    for key in ("images", "flipped_images"):
        if key in tensors:
            tensors[key] = tensors[key].permute(0, 3, 1, 2).contiguous()
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
        self.flipped = {key: tensors[key] for key in ("flipped_images", "flipped_attributes", "flipped_on")
                        if key in tensors}
        self.negatives = negatives
        self.rng = np.random.default_rng()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        active = frozenset(name for name, on in zip(ATTRIBUTES, self.labels[index].tolist()) if on)
        item = {
            "image": to_unit_range(self.images[index]),
            "mask": self.masks[index].long(),
            "labels": self.labels[index],
            "identity": self.identities[index],
            "caption": caption(active, self.rng, self.negatives),
        }
        if self.flipped:
            item.update(flipped_image=to_unit_range(self.flipped["flipped_images"][index]),
                        flipped_attribute=self.flipped["flipped_attributes"][index].long(),
                        flipped_on=self.flipped["flipped_on"][index])
        return item
