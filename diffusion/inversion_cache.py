"""A pipeline that inverts each face once: `invert` remembers its result per face and per walk.

DiffusionCLIP and Asyrp invert every face they see with the frozen model (DiffusionCLIP to t_0, Asyrp to T), and
both official repos precompute these latents once. The leaderboard edits the same test faces for every attribute,
so one of these pipelines, shared by all its cells, inverts each face once per walk instead of once per cell.
"""

import hashlib

import torch

from diffusion.pipeline import DiffAEPipeline


class InversionCachingPipeline(DiffAEPipeline):
    """The frozen pipeline's model and scheduler, with `invert` remembered (on the CPU) per face, z_sem and walk.
    The model must stay frozen: a remembered inversion is not recomputed when its weights change."""

    def __init__(self, pipe: DiffAEPipeline):
        super().__init__(pipe.model, pipe.scheduler, pipe.bf16)
        self._remembered: dict[bytes, torch.Tensor] = {}

    @classmethod
    def around(cls, pipe: DiffAEPipeline) -> "InversionCachingPipeline":
        """`pipe` itself when it already remembers (so that modules attached to it share what it remembers)."""
        return pipe if isinstance(pipe, cls) else cls(pipe)

    @torch.no_grad()
    def invert(self, x: torch.Tensor, z_sem: torch.Tensor, steps: int, refine: int = 0,
               t_max: int | None = None) -> torch.Tensor:
        walk = f"{steps} {refine} {t_max}".encode()
        keys = [_digest(face, z, walk) for face, z in zip(x, z_sem)]
        missing = [i for i, key in enumerate(keys) if key not in self._remembered]
        if missing:
            inverted = super().invert(x[missing], z_sem[missing], steps, refine, t_max)
            self._remembered.update((keys[i], x_T.cpu()) for i, x_T in zip(missing, inverted))
        return torch.stack([self._remembered[key] for key in keys]).to(x)


def _digest(face: torch.Tensor, z: torch.Tensor, walk: bytes) -> bytes:
    hashed = hashlib.sha1(walk)
    for tensor in (face, z):
        hashed.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return hashed.digest()
