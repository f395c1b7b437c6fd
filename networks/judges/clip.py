"""CLIP as a judge: differentiable image embeddings and prompt-averaged text directions.

Both worlds use the same wrapper: `from_openai_file` for OpenAI's ViT-B-32 weights (ffhq256 world),
`from_model` for our own small open_clip model trained on SynthFace captions (synth world).
"""

import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

import open_clip
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from networks.judges.errors import JudgeLoadError, short_reason
from networks.judges.frozen import FrozenJudge

Tokenizer = Callable[[list[str]], torch.Tensor]

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a portrait of a {}.",
    "a close-up photo of a {}.",
    "a cropped photo of a {}.",
    "a good photo of a {}.",
    "a bright photo of a {}.",
    "a dark photo of a {}.",
    "a low resolution photo of a {}.",
    "a high resolution photo of a {}.",
    "a rendering of a {}.",
)


class ClipJudge(FrozenJudge):
    """A frozen CLIP model that takes images in [-1, 1] and returns unit-length embeddings.

    Gradients flow from the image embeddings back to the images (the direction loss needs them); the text side
    runs without gradients and its directions are cached.
    """

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, image_size: int,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self._directions: dict[tuple[str, str, tuple[str, ...]], torch.Tensor] = {}
        self.templates: tuple[str, ...] = DEFAULT_TEMPLATES  # text_direction's default; judges.clip_templates

    @classmethod
    def from_model(cls, model: nn.Module, tokenizer: Tokenizer, image_size: int,
                   mean: Sequence[float], std: Sequence[float]) -> Self:
        """Wrap an open_clip-style model (`encode_image`, `encode_text`); the judge freezes it."""
        return cls(model, tokenizer, image_size, mean, std)

    @classmethod
    def from_openai_file(cls, path: str | Path, arch: str = "ViT-B-32") -> Self:
        """OpenAI CLIP weights from a local file: OpenAI's TorchScript release (`ViT-B-32.pt`) or an open_clip
        state_dict (`open_clip_model.safetensors`, `open_clip_pytorch_model.bin`)."""
        return cls.from_open_clip(_load_openai_clip(Path(path), arch), arch)

    @classmethod
    def from_open_clip(cls, model: nn.Module, arch: str) -> Self:
        """An open_clip model of `arch`, with the input size, normalisation and tokenizer that arch prescribes."""
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]  # CLIP inputs are square
        return cls(model, open_clip.get_tokenizer(arch), size, cfg["mean"], cfg["std"])

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [-1, 1] -> (B, D) unit vectors, differentiable."""
        images = TF.resize(images, [self.image_size], InterpolationMode.BICUBIC, antialias=True)
        images = TF.center_crop(images, [self.image_size])
        pixels = (images + 1) / 2
        return F.normalize(self.model.encode_image((pixels - self.mean) / self.std), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """(N, D) unit vectors for N texts."""
        tokens = self.tokenizer(texts).to(self.mean.device)
        return F.normalize(self.model.encode_text(tokens), dim=-1)

    def text_direction(self, source: str, target: str, templates: Sequence[str] | None = None) -> torch.Tensor:
        """(D,) unit vector from `source` to `target` text, e.g. "face" -> "smiling face", averaged over
        `templates` (by default the judge's `templates`); see template_directions."""
        templates = self.templates if templates is None else templates
        key = (source, target, tuple(templates))
        if key not in self._directions:
            self._directions[key] = template_directions(self.encode_text, [(source, target)], templates)[0]
        return self._directions[key].to(self.mean.device)


def template_directions(encode_text: Callable[[list[str]], torch.Tensor], pairs: Sequence[tuple[str, str]],
                        templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
    """(N, D) unit vectors, one per (source, target) text pair, with one text-encoder call.

    Following DiffusionCLIP's idea of averaging over prompt templates: the normalised mean over templates of
    E_T(template(target)) - E_T(template(source)), which is steadier than a single prompt.
    """
    texts = [template.format(text) for pair in pairs for text in pair for template in templates]
    embeddings = encode_text(texts).view(len(pairs), 2, len(templates), -1)
    return F.normalize((embeddings[:, 1] - embeddings[:, 0]).mean(dim=1), dim=-1)


def _load_openai_clip(path: Path, arch: str) -> nn.Module:
    if not path.is_file():
        raise JudgeLoadError(f"{path}: no such CLIP weights file. Put OpenAI's {arch} weights there (OpenAI's "
                             f"`{arch}.pt`, or open_clip's `open_clip_model.safetensors` for the 'openai' tag) "
                             f"or set judges.clip to the file you have.")
    try:
        if _is_torchscript_archive(path):
            # torch.load(weights_only=True), which open_clip's create_model uses, refuses TorchScript archives.
            return open_clip.load_openai_model(str(path), precision="fp32", device="cpu")
        # OpenAI's weights were trained with QuickGELU; the plain `ViT-B-32` config would silently use GELU.
        return open_clip.create_model(arch, pretrained=str(path), force_quick_gelu=True)
    except Exception as error:  # unreadable bytes raise anything from the unpickler or the zip reader
        reason = short_reason(error)
        raise JudgeLoadError(f"{path}: cannot load as CLIP {arch} weights ({type(error).__name__}: {reason}); "
                             f"the file may be truncated or hold another architecture. Download it again, or "
                             f"pass the matching arch.") from error


def _is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())
