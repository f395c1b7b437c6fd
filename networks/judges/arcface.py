"""ArcFace as an identity judge: unit-length face embeddings, differentiable in torch.

ffhq256 world: insightface's `buffalo_l` recognition model (`w600k_r50.onnx`, an IResNet-50) converted to torch
with onnx2torch, so that the identity loss can send gradients back to the edited image.
"""

from pathlib import Path
from typing import Self

import onnx
import torch
import torch.nn.functional as F
from onnx2torch import convert
from torch import nn

from networks.judges.errors import JudgeLoadError, short_reason
from networks.judges.frozen import FrozenJudge

# Rows 35:223 and columns 32:220 of a 256x256 FFHQ-aligned face: the crop DiffusionCLIP and Asyrp give ArcFace.
# It approximates insightface's 112x112 alignment; as fractions it scales to other image sizes.
FFHQ_CROP = (35 / 256, 223 / 256, 32 / 256, 220 / 256)


class IdentityJudge(FrozenJudge):
    """A frozen face recogniser R for images in [-1, 1]; 1 - cos(R(a), R(b)) is the identity loss.

    `net` receives the crop (top, bottom, left, right as fractions of the image; None: the whole image) pooled to
    `input_size`, as insightface feeds it: RGB pixels in [0, 255] mapped to (pixels - input_mean) / input_std.
    """

    def __init__(self, net: nn.Module, input_size: int = 112,
                 crop: tuple[float, float, float, float] | None = FFHQ_CROP,
                 input_mean: float = 127.5, input_std: float = 127.5) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.input_size = input_size
        self.crop = crop
        self.input_mean = input_mean
        self.input_std = input_std

    @classmethod
    def from_onnx(cls, path: str | Path) -> Self:
        """An insightface recognition model (e.g. buffalo_l's `w600k_r50.onnx`) as a differentiable torch module."""
        path = Path(path)
        if not path.is_file():
            raise JudgeLoadError(f"{path}: no such ArcFace model file. Put insightface's buffalo_l recognition "
                                 f"model (`w600k_r50.onnx` from buffalo_l.zip) there or set judges.identity to it.")
        try:
            graph = onnx.load(str(path))
            net = convert(graph)
        except Exception as error:  # protobuf and converter errors have no common base class
            reason = short_reason(error)
            raise JudgeLoadError(f"{path}: cannot load as an ONNX face recogniser ({type(error).__name__}: "
                                 f"{reason}); the file may be truncated. Download it again.") from error
        mean, std = (0.0, 1.0) if _normalises_inside(graph) else (127.5, 127.5)
        return cls(net, input_mean=mean, input_std=std)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB images in [-1, 1] -> (B, D) unit vectors, differentiable."""
        if self.crop is not None:
            height, width = images.shape[-2:]
            top, bottom, left, right = self.crop
            images = images[..., round(top * height):round(bottom * height), round(left * width):round(right * width)]
        images = F.adaptive_avg_pool2d(images, self.input_size)  # DiffusionCLIP and Asyrp pool the crop to 112
        pixels = (images + 1) * 127.5
        return F.normalize(self.net((pixels - self.input_mean) / self.input_std), dim=-1)


def _normalises_inside(graph: onnx.ModelProto) -> bool:
    """insightface's own rule (model_zoo.ArcFaceONNX): models converted from MXNet start with Sub and Mul nodes
    and take raw pixels; the others, buffalo_l's included, take (pixels - 127.5) / 127.5."""
    names = [node.name for node in graph.graph.node[:8]]
    return (any(name.startswith(("Sub", "_minus")) for name in names)
            and any(name.startswith(("Mul", "_mul")) for name in names))
