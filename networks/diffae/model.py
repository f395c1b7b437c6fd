"""The DiffAE network: a semantic encoder (image -> z_sem) and a UNet denoiser conditioned on t and z_sem.

Module names follow the official code (`time_embed`, `input_blocks`, `middle_block`, `output_blocks`, `out`,
`encoder.*`), so an official checkpoint's EMA weights load with strict=True.
"""

import torch
import torch.nn.functional as F
from torch import nn

from networks.conv_encoder import ConvEncoder
from networks.diffae.blocks import (AttentionBlock, ConditionedSequential, ResBlock, TimeEmbed, normalization,
                                    timestep_embedding, zero_module)
from networks.diffae.config import DiffAEArch


def _down_path(arch: DiffAEArch, mult: tuple[int, ...], conditioned: bool) -> tuple[nn.ModuleList, list[int], int]:
    """Input blocks of a UNet or encoder; returns the blocks, the channels of every skip, and the final width."""
    emb, cond = (arch.embed_channels, arch.z_dim) if conditioned else (None, None)
    ch = arch.model_channels * mult[0]
    blocks = nn.ModuleList([ConditionedSequential(nn.Conv2d(arch.in_channels * arch.patch_size**2, ch, 3, padding=1))])
    skips, side = [ch], arch.image_size // arch.patch_size
    for level, m in enumerate(mult):
        for _ in range(arch.num_res_blocks):
            layers = [ResBlock(ch, arch.model_channels * m, emb, cond, arch.dropout)]
            ch = arch.model_channels * m
            if side in arch.attention_resolutions:
                layers.append(AttentionBlock(ch, arch.num_heads))
            blocks.append(ConditionedSequential(*layers))
            skips.append(ch)
        if level != len(mult) - 1:
            blocks.append(ConditionedSequential(ResBlock(ch, ch, emb, cond, arch.dropout, resample="down")))
            skips.append(ch)
            side //= 2
    return blocks, skips, ch


def _middle(arch: DiffAEArch, ch: int, conditioned: bool) -> ConditionedSequential:
    emb, cond = (arch.embed_channels, arch.z_dim) if conditioned else (None, None)
    return ConditionedSequential(ResBlock(ch, ch, emb, cond, arch.dropout), AttentionBlock(ch, arch.num_heads),
                                 ResBlock(ch, ch, emb, cond, arch.dropout))


class SemanticEncoder(nn.Module):
    def __init__(self, arch: DiffAEArch):
        super().__init__()
        self.patch_size = arch.patch_size
        self.input_blocks, _, ch = _down_path(arch, arch.enc_channel_mult, conditioned=False)
        self.middle_block = _middle(arch, ch, conditioned=False)
        self.out = nn.Sequential(normalization(ch), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, arch.z_dim, 1),
                                 nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pixel_unshuffle(x, self.patch_size)
        for block in self.input_blocks:
            x = block(x)
        return self.out(self.middle_block(x))


class DiffAE(nn.Module):
    """`encode(x) -> z_sem` and `forward(x_t, t, z_sem) -> model output` (eps or v, as trained).

    `forward(..., h_shift=dh)` adds dh to the middle block's output, the bottleneck that Asyrp calls h-space.
    """

    def __init__(self, arch: DiffAEArch):
        super().__init__()
        self.arch = arch
        self.time_embed = TimeEmbed(arch.model_channels, arch.embed_channels)
        self.input_blocks, skips, ch = _down_path(arch, arch.channel_mult, conditioned=True)
        self.middle_block = _middle(arch, ch, conditioned=True)
        self.output_blocks = nn.ModuleList()
        side = arch.image_size // arch.patch_size // 2 ** (len(arch.channel_mult) - 1)
        for level, m in reversed(list(enumerate(arch.channel_mult))):
            for i in range(arch.num_res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), arch.model_channels * m, arch.embed_channels, arch.z_dim,
                                   arch.dropout)]
                ch = arch.model_channels * m
                if side in arch.attention_resolutions:
                    layers.append(AttentionBlock(ch, arch.num_heads))
                if level and i == arch.num_res_blocks:
                    layers.append(ResBlock(ch, ch, arch.embed_channels, arch.z_dim, arch.dropout, resample="up"))
                    side *= 2
                self.output_blocks.append(ConditionedSequential(*layers))
        self.out = nn.Sequential(normalization(ch), nn.SiLU(),
                                 zero_module(nn.Conv2d(ch, arch.in_channels * arch.patch_size**2, 3, padding=1)))
        self.encoder = SemanticEncoder(arch) if arch.encoder == "unet" else ConvEncoder(arch.z_dim,
                                                                                         arch.model_channels // 2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor, t: torch.Tensor, z_sem: torch.Tensor,
                h_shift: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.arch.model_channels).to(x.dtype))
        hs, h = [], F.pixel_unshuffle(x, self.arch.patch_size)
        for block in self.input_blocks:
            h = block(h, emb, z_sem)
            hs.append(h)
        h = self.middle_block(h, emb, z_sem)
        if h_shift is not None:
            h = h + h_shift.to(h.dtype)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb, z_sem)
        return F.pixel_shuffle(self.out(h), self.arch.patch_size)
