"""The synth-world judges: the same interfaces as the ffhq256 ones, over our small networks trained on SynthFace."""

from pathlib import Path

import torch
from open_clip.utils import to_2tuple
from torch import nn

from networks.judges.arcface import IdentityJudge
from networks.judges.clip import ClipJudge
from networks.judges.frozen import FrozenJudge
from networks.judges.synth_files import load_judge_net
from networks.judges.synth_nets import tiny_clip_tokenizer
from synthface.attributes import ATTRIBUTES
from synthface.classes import CLASS_NAMES

HALF = (0.5, 0.5, 0.5)  # CLIP normalisation that maps [0, 1] pixels back to [-1, 1]


class SynthJudge(FrozenJudge):
    """A frozen network that scores images in [-1, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class SynthParser(SynthJudge):
    """Face parser over SynthFace's 16 classes: `parse(x) -> (B, H, W)` class ids."""

    class_names = CLASS_NAMES
    num_classes = len(CLASS_NAMES)

    @torch.no_grad()
    def parse(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).argmax(dim=1)


class AttributeJudge(SynthJudge):
    """Multi-label classifier: `predict(x) -> (B, 25)` probabilities in SynthFace's ATTRIBUTES order."""

    attribute_names = ATTRIBUTES

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(images))


def synth_clip(path: str | Path) -> ClipJudge:
    model = load_judge_net(path, "clip")
    side = to_2tuple(model.visual.image_size)[0]  # the ViT tower keeps (height, width), the ResNet tower one side
    return ClipJudge.from_model(model, tiny_clip_tokenizer(model.context_length), side, HALF, HALF)


def synth_identity(path: str | Path) -> IdentityJudge:
    """The whole 64x64 face goes in (SynthFace faces are already aligned), as pixels mapped to [-1, 1]."""
    return IdentityJudge(load_judge_net(path, "identity"), input_size=64, crop=None)


def synth_parser(path: str | Path) -> SynthParser:
    return SynthParser(load_judge_net(path, "parser"))


def synth_attributes(path: str | Path) -> AttributeJudge:
    return AttributeJudge(load_judge_net(path, "attributes"))
