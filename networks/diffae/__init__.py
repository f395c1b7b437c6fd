"""Diffusion autoencoder (DiffAE) network, compatible with the official checkpoints."""

from networks.diffae.config import PRESETS, DiffAEArch, preset
from networks.diffae.model import DiffAE, SemanticEncoder

__all__ = ["PRESETS", "DiffAE", "DiffAEArch", "SemanticEncoder", "preset"]
