"""Latents of faces (SynthFace, or a folder of photos) computed once and kept on disk, so that mapper training
never re-inverts.

A cache file holds, per face: z_sem, x_T (DDIM inversion with T steps), the T-step reconstruction the losses
compare against, the image and its attribute labels (SynthFace's ground truth; none for photos). Its name carries a
digest of the backbone file, the faces' `cache_key` and every setting that changes the latents, so a new backbone,
other faces or another T get a new file, never a stale one.
"""

import functools
import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from diffusion import DiffAEPipeline


def file_digest(path: str | Path) -> str:
    """The first 12 hex digits of the file's SHA-256, computed once per path, size and modification time."""
    stat = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def cached_latents(pipe: DiffAEPipeline, backbone_file: str | Path, faces: Dataset, steps: int,
                   refine: int, cache_dir: str | Path, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """The latents of every face in `faces` (a dataset of {"image", maybe "labels"} with a `cache_key`),
    computed on first use."""
    name = f"latents-{file_digest(backbone_file)}-{faces.cache_key}-T{steps}-refine{refine}.safetensors"
    path = Path(cache_dir) / name
    if path.exists():
        return load_file(path)
    parts: dict[str, list[torch.Tensor]] = {"z": [], "x_T": [], "recon": [], "image": [], "labels": []}
    with torch.inference_mode():
        for batch in tqdm(DataLoader(faces, batch_size=batch_size), desc=f"inverting {faces.cache_key} (once)"):
            image = batch["image"].to(pipe.device)
            z = pipe.encode(image)
            x_T = pipe.invert(image, z, steps, refine)
            labels = batch.get("labels", torch.zeros(len(z), 0))
            for key, value in (("z", z), ("x_T", x_T), ("recon", pipe.decode(x_T, z, steps)),
                               ("image", batch["image"]), ("labels", labels)):
                parts[key].append(value.float().cpu())
    latents = {key: torch.cat(values).contiguous() for key, values in parts.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(latents, path.with_suffix(".partial"))
    path.with_suffix(".partial").rename(path)  # a killed run leaves no file that looks complete
    return latents


def latent_batches(latents: dict[str, torch.Tensor], size: int):
    """The cache's faces in order, `size` at a time, as dicts of the same keys."""
    for first in range(0, len(latents["z"]), size):
        yield {key: value[first:first + size] for key, value in latents.items()}


class LatentDataset(Dataset):
    """Items {z, x_T, recon, image, labels} of a latent cache."""

    def __init__(self, latents: dict[str, torch.Tensor]) -> None:
        self.latents = latents

    def __len__(self) -> int:
        return len(self.latents["z"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[index] for key, value in self.latents.items()}
