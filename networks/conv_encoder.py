"""A small BatchNorm ResNet that maps an image to a vector: the synth judges' backbone and the synth DiffAE's
semantic encoder.

BatchNorm matters here: trained as a classifier of the 25 SynthFace labels, this network tells a smile, glasses and
make-up apart (balanced accuracy >= 0.92 after 400 steps), while with GroupNorm in its place, or as the official
DiffAE encoder (single-convolution pre-activation blocks), it still answered the majority label after 200 steps.
"""

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
