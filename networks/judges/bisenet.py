"""The BiSeNet face parser (19 CelebAMask-HQ classes) as a segmentation judge.

Module names and shapes follow face-parsing.PyTorch, so its widely used checkpoint `79999_iter.pth` loads
strictly: a ResNet-18 context path (`cp.*`), a feature fusion module (`ffm.*`) and three output heads.
"""

from pathlib import Path
from typing import Self

import torch
import torch.nn.functional as F
from torch import nn

from networks.judges.errors import JudgeLoadError, short_reason
from networks.judges.frozen import FrozenJudge

CLASS_NAMES: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)
NET_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvBNReLU(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if in_channels != out_channels or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels))


class ResNet18(nn.Module):
    """Returns the features at 1/8, 1/16 and 1/32 of the input resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.layer4 = _stage(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=3, stride=2, padding=1)
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinement(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels)
        self.conv_atten = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(feat, 1))))


class ContextPath(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ResNet features at 1/8, context features at 1/8)."""
        feat8, feat16, feat32 = self.resnet(x)
        global_context = self.conv_avg(F.adaptive_avg_pool2d(feat32, 1))
        up32 = self.conv_head32(_upsample_nearest(self.arm32(feat32) + global_context, feat16))
        up16 = self.conv_head16(_upsample_nearest(self.arm16(feat16) + up32, feat8))
        return feat8, up16


def _upsample_nearest(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, like.shape[-2:], mode="nearest")


class FeatureFusion(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_channels, out_channels, kernel_size=1)
        self.conv1 = nn.Conv2d(out_channels, out_channels // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels // 4, out_channels, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(feat, 1)))))
        return feat * (1 + attention)


class OutputHead(nn.Module):
    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, mid_channels)
        self.conv_out = nn.Conv2d(mid_channels, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class FaceParser(FrozenJudge):
    """A frozen BiSeNet face parser for images in [-1, 1]; it runs at 512x512 with ImageNet normalisation."""

    class_names = CLASS_NAMES
    num_classes = len(CLASS_NAMES)

    def __init__(self) -> None:
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = OutputHead(256, 256, self.num_classes)
        # Auxiliary heads used only in training; kept so that the released checkpoint loads strictly.
        self.conv_out16 = OutputHead(128, 64, self.num_classes)
        self.conv_out32 = OutputHead(128, 64, self.num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Self:
        """face-parsing.PyTorch's `79999_iter.pth` (a bare state_dict), read with weights_only=True."""
        path = Path(path)
        if not path.is_file():
            raise JudgeLoadError(f"{path}: no such face parser checkpoint. Put face-parsing.PyTorch's "
                                 f"`79999_iter.pth` there or set judges.parser to it.")
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as error:  # garbage bytes raise anything from the unpickler
            reason = short_reason(error)
            raise JudgeLoadError(f"{path}: cannot read as a PyTorch checkpoint ({type(error).__name__}: {reason}); "
                                 f"it may be truncated. Download it again.") from error
        if not isinstance(state, dict):
            raise JudgeLoadError(f"{path}: expected a state_dict, got {type(state).__name__}")
        parser = cls()
        try:
            parser.load_state_dict(state)
        except RuntimeError as error:
            reason = short_reason(error)
            raise JudgeLoadError(f"{path}: not a 19-class BiSeNet face parser state_dict ({reason})") from error
        return parser

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [-1, 1] -> (B, num_classes, H, W) class scores."""
        size = images.shape[-2:]
        pixels = (F.interpolate(images, NET_SIZE, mode="bilinear", antialias=True) + 1) / 2
        spatial, context = self.cp((pixels - self.mean) / self.std)
        scores = self.conv_out(self.ffm(spatial, context))
        scores = F.interpolate(scores, NET_SIZE, mode="bilinear", align_corners=True)  # as the original at 512
        return F.interpolate(scores, size, mode="bilinear", antialias=True)

    @torch.no_grad()
    def parse(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [-1, 1] -> (B, H, W) class ids (indices into `class_names`)."""
        return self.logits(images).argmax(dim=1)
