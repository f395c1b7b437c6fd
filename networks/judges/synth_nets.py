"""Small networks for the synth-world judges (64x64 faces): a U-Net parser and a tiny CLIP (the ResNet-style
encoder is `networks.conv_encoder`).

Each is built from a plain dict of sizes, stored in its safetensors file's metadata, so a file alone rebuilds it.
"""

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from networks.conv_encoder import ResidualBlock


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
              context_length: int = 32, tower: str = "vit", resnet_width: int = 16) -> open_clip.CLIP:
    """An open_clip CLIP from a custom config: a text transformer over CLIP's BPE, and as the image tower either a
    ViT with 8x8 patches (`tower="vit"`, as wide and deep as the text side) or CLIP's ResNet with attention pooling
    (`tower="resnet"`, one bottleneck block per stage, `resnet_width` stem channels). On 64x64 faces the ResNet
    tells a smile, a beard or make-up apart where the ViT did not, at two thirds of its training step time
    (weights/synth/judges.md)."""
    if tower == "vit":
        vision = dict(image_size=image_size, patch_size=8, width=width, layers=layers, head_width=64, mlp_ratio=4.0)
    elif tower == "resnet":
        vision = dict(image_size=image_size, layers=(1, 1, 1, 1), width=resnet_width, head_width=64)
    else:
        raise ValueError(f"unknown CLIP image tower {tower!r}; choose vit or resnet")
    text = dict(context_length=context_length, vocab_size=49408, width=width, heads=width // 64, layers=layers)
    return open_clip.CLIP(embed_dim, vision_cfg=vision, text_cfg=text)


def tiny_clip_tokenizer(context_length: int = 32) -> open_clip.tokenizer.SimpleTokenizer:
    return open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
