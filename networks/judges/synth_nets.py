"""Small networks for the synth-world judges (64x64 faces): a ResNet-style encoder, a U-Net parser, a tiny CLIP.

Each is built from a plain dict of sizes, stored in its safetensors file's metadata, so a file alone rebuilds it.
"""

import open_clip
import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))
        return F.relu(self.shortcut(x) + residual)


class ConvEncoder(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, out_dim): four stride-2 residual stages, global average pooling, a linear head."""

    def __init__(self, out_dim: int, width: int = 32) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.stages = nn.Sequential(*(ResidualBlock(c_in, c_out, 2)
                                      for c_in, c_out in zip([width] + widths[:-1], widths)))
        self.head = nn.Linear(widths[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


class UNetParser(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, num_classes, H, W) class scores.

    Residual blocks at 1/2 and 1/4 resolution, with skip connections; the full-resolution levels are single
    convolutions, which keeps thin classes (irises, earrings) sharp at a fraction of the cost.
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.down1 = ResidualBlock(w, 2 * w, 2)
        self.down2 = ResidualBlock(2 * w, 4 * w, 2)
        self.up1 = ResidualBlock(6 * w, 2 * w, 1)
        self.up2 = nn.Sequential(nn.Conv2d(3 * w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.out = nn.Conv2d(w, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = self.stem(x)
        half = self.down1(full)
        quarter = self.down2(half)
        half = self.up1(torch.cat([_upsample(quarter, half), half], dim=1))
        return self.out(self.up2(torch.cat([_upsample(half, full), full], dim=1)))


def _upsample(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, like.shape[-2:], mode="bilinear", align_corners=False)


def tiny_clip(image_size: int = 64, embed_dim: int = 128, width: int = 192, layers: int = 4,
              context_length: int = 32) -> open_clip.CLIP:
    """An open_clip CLIP from a custom config: a ViT with 8x8 patches and a text transformer over CLIP's BPE."""
    vision = dict(image_size=image_size, patch_size=8, width=width, layers=layers, head_width=64, mlp_ratio=4.0)
    text = dict(context_length=context_length, vocab_size=49408, width=width, heads=width // 64, layers=layers)
    return open_clip.CLIP(embed_dim, vision_cfg=vision, text_cfg=text)


def tiny_clip_tokenizer(context_length: int = 32) -> open_clip.tokenizer.SimpleTokenizer:
    return open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
