"""Diffusion: the noise schedule and DDIM scheduler, and the autoencoder pipeline (encode, invert, decode)."""

from diffusion.ddim import DDIMScheduler
from diffusion.pipeline import DiffAEPipeline

__all__ = ["DDIMScheduler", "DiffAEPipeline"]
