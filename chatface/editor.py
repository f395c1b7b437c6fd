"""Editing faces with trained mappers: `z_edit = z + Σ s_i · M_i(z)`, decoded from the face's own x_T under SMS.

Each mapper's offset is decoded under the SMS schedule it was trained with (kept in its file), so an edit looks
as it did when the mapper was measured, whatever the config says now.

Strength 0 gives back the reconstruction; a larger strength a stronger edit; fewer steps T a stronger edit with
less detail. An image is inverted once per step count and its latents kept, so a chat that re-renders the same
face never re-inverts (and never re-encodes an edited image, which would drift).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig

from chatface.backbone_eval import backbone_pipeline
from chatface.catalog import default_catalog
from chatface.registry import model_name, registered_mapper_file
from datamodules.latent_cache import file_digest
from diffusion import DiffAEPipeline
from diffusion.sms import edit_conditions
from networks.mapper import LatentMapper
from networks.mapper_checkpoint import MapperLoadError, load_mapper

Edits = list[tuple[str, float]]


class MapperMissingError(FileNotFoundError):
    """No trained mapper for an attribute; the message says which command trains it."""


def mapper_dir(cfg: DictConfig, attr: str) -> Path:
    """Where an attribute's current mapper lives (`make train` publishes there)."""
    return Path(cfg.output_dir) / "mappers" / cfg.world.name / attr


def mapper_file(cfg: DictConfig, attr: str) -> Path:
    return mapper_dir(cfg, attr) / "mapper.safetensors"


@dataclass(frozen=True)
class TrainedMapper:
    """A mapper and the SMS schedule it was trained under."""

    mapper: LatentMapper
    sms: str = "linear"
    sms_param: float = 0.5


def read_trained_mapper(path: str | Path, cfg: DictConfig) -> TrainedMapper:
    """The mapper in `path` with its own schedule (the config's for a file that does not name one). A mapper
    trained on another backbone is an error: its offsets mean nothing in this backbone's z_sem."""
    mapper, info = load_mapper(path)
    if "backbone" in info and info["backbone"] != (digest := file_digest(cfg.backbone.weights)):
        attr = info.get("attribute", "<name>")
        raise MapperLoadError(f"{path} was trained on another backbone (digest {info['backbone']}) than "
                              f"backbone.weights={cfg.backbone.weights} (digest {digest}); train it again with "
                              f"`make train ATTR={attr}`, or set backbone.weights to the backbone it was trained on")
    schedule = info.get("sms", cfg.mapper.sms.value)
    return TrainedMapper(mapper, schedule, float(info.get("sms_param", cfg.mapper.sms_param)))


def find_mapper(cfg: DictConfig, attr: str) -> TrainedMapper:
    """The registered mapper `chatface-<world>-<attr>` (a sweep's best) when the registry has one, else the one
    `make train` wrote under runs/mappers/."""
    default_catalog()[attr]  # an unknown attribute fails with suggestions
    path = registered_mapper_file(cfg, attr) or mapper_file(cfg, attr)
    if not path.exists():
        world = cfg.world.name
        raise MapperMissingError(f"no trained mapper for {attr!r} in the {world} world (no registered model "
                                 f"{model_name(cfg, attr)!r} and {path} does not exist); train it with "
                                 f"`make train ATTR={attr} WORLD={world}` or sweep with "
                                 f"`make sweep ATTR={attr} WORLD={world}`")
    return read_trained_mapper(path, cfg)


@dataclass
class FaceLatents:
    """One batch of faces, inverted once per step count."""

    images: torch.Tensor
    z: torch.Tensor
    x_T: dict[int, torch.Tensor] = field(default_factory=dict)


class Editor:
    """`find(attr)` gives the mapper of an attribute; each is looked up once, when an edit first needs it."""

    def __init__(self, pipe: DiffAEPipeline, find: Callable[[str], TrainedMapper], refine: int = 4) -> None:
        self.pipe, self.find, self.mappers, self.refine = pipe, find, {}, refine

    @classmethod
    def from_config(cls, cfg: DictConfig, attributes: list[str] = (),
                    find: Callable[[str], TrainedMapper] | None = None) -> "Editor":
        """An editor over the config's backbone and (unless `find` says otherwise) its trained mappers;
        `attributes` are checked at once."""
        editor = cls(backbone_pipeline(cfg), find or (lambda attr: find_mapper(cfg, attr)), cfg.backbone.invert_refine)
        for attr in attributes:
            editor.mapper(attr)
        return editor

    def mapper(self, attr: str) -> TrainedMapper:
        if attr not in self.mappers:
            trained = self.find(attr)
            trained.mapper.to(self.pipe.device)
            self.mappers[attr] = trained
        return self.mappers[attr]

    @torch.no_grad()
    def latents(self, images: torch.Tensor) -> FaceLatents:
        return FaceLatents(images, self.pipe.encode(images.to(self.pipe.device)).cpu())

    @torch.no_grad()
    def x_T(self, faces: FaceLatents, steps: int) -> torch.Tensor:
        if steps not in faces.x_T:
            device = self.pipe.device
            x_T = self.pipe.invert(faces.images.to(device), faces.z.to(device), steps, self.refine)
            faces.x_T[steps] = x_T.cpu()
        return faces.x_T[steps]

    @torch.no_grad()
    def edit(self, faces: FaceLatents, edits: Edits, steps: int = 8) -> torch.Tensor:
        """Edited images in [-1, 1] for a list of (attribute, strength). The backbone and mappers run on the
        backbone's device (the GPU of the ffhq256 world); faces, latents and results stay on the CPU."""
        device = self.pipe.device
        z = faces.z.to(device)
        trained = [(self.mapper(attr), strength) for attr, strength in edits]
        offsets = [(strength * m.mapper(z), m.sms, m.sms_param) for m, strength in trained]
        conditions = edit_conditions(z, offsets, steps)
        return self.pipe.decode(self.x_T(faces, steps).to(device), conditions, steps).cpu()
