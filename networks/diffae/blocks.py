"""Building blocks of the DiffAE UNet, laid out so that parameter names match the official checkpoints.

A ResBlock with conditions normalises, then applies the time embedding as scale and shift and `z_sem` as a
scale: `h = norm(h) * (1 + s_t) + b_t`, then `h = h * (1 + s_z)`. Without conditions (the semantic encoder)
it is just norm -> SiLU -> conv plus the skip path, as in the official encoder.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32, so bf16 autocast does not lose the statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


def normalization(channels: int) -> nn.GroupNorm:
    return GroupNorm32(min(32, channels), channels)


def zero_module(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def timestep_embedding(t: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, [cos | sin] as in the official code."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimeEmbed(nn.Module):
    def __init__(self, in_channels: int, embed_channels: int):
        super().__init__()
        self.time_embed = nn.Sequential(nn.Linear(in_channels, embed_channels), nn.SiLU(),
                                        nn.Linear(embed_channels, embed_channels))

    def forward(self, t_emb: torch.Tensor) -> torch.Tensor:
        return self.time_embed(t_emb)


class Resample(nn.Module):
    """Parameter-free 2x down (average pool) or up (nearest) sampling, as the official resblock_updown uses."""

    def __init__(self, mode: str | None):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "down":
            return F.avg_pool2d(x, 2)
        if self.mode == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x


class ResBlock(nn.Module):
    def __init__(self, channels: int, out_channels: int, embed_channels: int | None, cond_channels: int | None,
                 dropout: float = 0.0, resample: str | None = None):
        super().__init__()
        self.in_layers = nn.Sequential(normalization(channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.resample = Resample(resample)
        self.conditioned = embed_channels is not None
        if self.conditioned:
            self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(embed_channels, 2 * out_channels))
            self.cond_emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(cond_channels, out_channels))
            self.out_layers = nn.Sequential(normalization(out_channels), nn.SiLU(), nn.Dropout(dropout),
                                            zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1)))
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None, cond: torch.Tensor | None = None):
        norm_act, conv = self.in_layers[:-1], self.in_layers[-1]
        h = conv(self.resample(norm_act(x)))
        x = self.resample(x)
        if self.conditioned:
            scale, shift = self.emb_layers(emb)[..., None, None].chunk(2, dim=1)
            cond_scale = self.cond_emb_layers(cond)[..., None, None]
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = h * (1 + cond_scale)
            h = self.out_layers[1:](h)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over spatial positions with the official (legacy) per-head [q, k, v] channel layout."""

    def __init__(self, channels: int, num_heads: int = 1):
        super().__init__()
        self.num_heads = num_heads
        self.norm = normalization(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor, emb=None, cond=None) -> torch.Tensor:
        b, c, height, width = x.shape
        qkv = self.qkv(self.norm(x).reshape(b, c, -1))
        q, k, v = qkv.reshape(b, self.num_heads, 3 * c // self.num_heads, -1).transpose(2, 3).chunk(3, dim=-1)
        h = F.scaled_dot_product_attention(q, k, v)
        h = h.transpose(2, 3).reshape(b, c, -1)
        return x + self.proj_out(h).reshape(b, c, height, width)


class ConditionedSequential(nn.Sequential):
    """A sequence of blocks that all receive the time embedding and the semantic condition."""

    def forward(self, x: torch.Tensor, emb=None, cond=None) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb, cond) if isinstance(layer, (ResBlock, AttentionBlock)) else layer(x)
        return x
