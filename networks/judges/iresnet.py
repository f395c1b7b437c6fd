"""insightface's IResNet (arcface_torch), the architecture inside the ArcFace ONNX files of the ffhq256 world.

The judge itself loads those files through onnx2torch; this native copy gives tests and benchmarks the same network
with random weights, since nothing may be downloaded.
"""

import torch
from torch import nn


class IBasicBlock(nn.Module):
    """insightface arcface_torch's pre-activation residual block (BN, conv, BN, PReLU, conv with stride, BN)."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """arcface_torch's IResNet; blocks (3, 4, 14, 3) is IResNet-50, the architecture of buffalo_l's w600k_r50."""

    def __init__(self, blocks: tuple[int, int, int, int] = (3, 4, 14, 3)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU(64)
        stages, in_channels = [], 64
        for channels, count in zip((64, 128, 256, 512), blocks):
            stages.append(nn.Sequential(IBasicBlock(in_channels, channels, 2),
                                        *(IBasicBlock(channels, channels, 1) for _ in range(count - 1))))
            in_channels = channels
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = nn.BatchNorm2d(512)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * 7 * 7, 512)
        self.features = nn.BatchNorm1d(512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(self.dropout(torch.flatten(self.bn2(x), 1))))
