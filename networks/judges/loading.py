"""Load the judges a config names. The file decides the loader: our safetensors files are synth judges; OpenAI
CLIP weights, an insightface ONNX model and a BiSeNet `.pth` are the ffhq256 world's."""

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from torch import nn

from networks.judges.arcface import IdentityJudge
from networks.judges.bisenet import FaceParser
from networks.judges.clip import ClipJudge
from networks.judges.synth import (AttributeJudge, SynthParser, synth_attributes, synth_clip, synth_identity,
                                   synth_parser)


@dataclass
class Judges:
    clip: ClipJudge
    identity: IdentityJudge
    parser: FaceParser | SynthParser
    attributes: AttributeJudge | None  # synth only: real photos have no ground-truth attribute judge here

    def networks(self) -> list[nn.Module]:
        return [judge for judge in (self.clip, self.identity, self.parser, self.attributes) if judge is not None]


def _is_ours(path: str) -> bool:
    return Path(path).suffix == ".safetensors" and not Path(path).name.startswith("open_clip")


def load_clip(path: str) -> ClipJudge:
    return synth_clip(path) if _is_ours(path) else ClipJudge.from_openai_file(path)


def load_identity(path: str) -> IdentityJudge:
    return synth_identity(path) if _is_ours(path) else IdentityJudge.from_onnx(path)


def load_parser(path: str) -> FaceParser | SynthParser:
    return synth_parser(path) if _is_ours(path) else FaceParser.from_checkpoint(path)


def load_judges(judges: DictConfig) -> Judges:
    attributes = synth_attributes(judges.attributes) if judges.attributes else None
    clip = load_clip(judges.clip)
    if judges.clip_templates is not None:
        clip.templates = clip_templates(judges.clip_templates)
    return Judges(clip, load_identity(judges.identity), load_parser(judges.parser), attributes)


def clip_templates(templates: list[str]) -> tuple[str, ...]:
    if not templates or any(template.count("{}") != 1 for template in templates):
        raise ValueError(f"judges.clip_templates={list(templates)}: give one or more prompt templates, each with one "
                         "'{}' where the attribute text goes, e.g. ['{}'] or ['a photo of a {}.']")
    return tuple(templates)
