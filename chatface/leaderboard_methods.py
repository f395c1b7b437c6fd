"""The leaderboard's contenders behind one interface: a LightningModule built from its config section, a training
budget, and `edit(batch)` on cached latents {z, x_T, recon, image, labels}.

Every method learns from the same cached training faces and edits the same test faces with the same frozen
backbone and judges; only what it learns, and how it decodes, differs.
"""

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from chatface.catalog import Attribute
from chatface.editor import mapper_file
from chatface.registry import registered_mapper_file
from chatface.train_mapper import mapping_module
from datamodules.latent_cache import file_digest
from lightning_modules.mapper import AttributeMapping
from networks.mapper_checkpoint import load_mapper

TRAINER_KEYS = ("steps", "batch_size")  # a section's budget; every other key is the module's keyword argument
CHATFACE_SETTINGS = ("width", "depth", "lr", "lr_schedule", "lambda_dir", "lambda_id", "lambda_pre", "sms",
                     "sms_param", "steps", "direction_loss", "direction_target", "whiten", "max_steps", "batch_size",
                     "val_every", "val_faces", "keep_best", "goals")


@dataclass(frozen=True)
class Method:
    name: str
    title: str  # as the table names it
    module: str  # "package.module:Class", imported when first built (the baselines pull in nothing else)
    latent_steps: bool = False  # the module decodes the cached x_T and must know its step count

    def section(self, cfg: DictConfig) -> DictConfig:
        """The method's settings: its budget and hyper-parameters."""
        if self.name == REFERENCE:
            return OmegaConf.create({"steps": 0, "batch_size": 0, "decode_steps": cfg.mapper.steps})
        if self.name == "chatface":
            mapper = OmegaConf.masked_copy(cfg.mapper, CHATFACE_SETTINGS)
            mapper["T"] = mapper.pop("steps")  # here "steps" means the training budget, as in the other sections
            mapper["steps"] = mapper.pop("max_steps")
            return mapper
        return cfg.leaderboard[self.name]

    def budget(self, cfg: DictConfig) -> tuple[int, int]:
        """(optimisation steps, batch size)."""
        section = self.section(cfg)
        return section.steps, section.batch_size

    def build(self, cfg: DictConfig, entry: Attribute, train_z: torch.Tensor) -> L.LightningModule:
        """The method's untrained module for `entry`, sized (and for a whitened mapper fitted) by the training z."""
        if self.name == "chatface":
            return mapping_module(cfg, entry.name, train_z)
        latent_dim = train_z.shape[1]
        module_name, class_name = self.module.split(":")
        kwargs = {key: value for key, value in self.section(cfg).items() if key not in TRAINER_KEYS}
        if self.latent_steps:
            kwargs["latent_steps"] = cfg.mapper.steps
        module = getattr(import_module(module_name), class_name)(entry.name, entry.source, entry.target, latent_dim,
                                                                 **kwargs)
        if kwargs.get("whiten"):
            module.mapper.fit_whitening(train_z)
        return module

    @torch.no_grad()  # without it ChatFace's edit keeps its decoding graph alive, gigabytes per cell
    def edit(self, module: L.LightningModule | None, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.name == REFERENCE:
            return batch["recon"]
        if isinstance(module, AttributeMapping):
            return module.edit(batch["z"], batch["x_T"])[0]
        return module.edit(batch)


REFERENCE = "reconstruction"  # the row of no edit at all: what inversion and decoding alone change

METHODS = {method.name: method for method in (
    Method(REFERENCE, "no edit (reconstruction)", ""),
    Method("chatface", "ChatFace", "lightning_modules.mapper:AttributeMapping"),
    Method("styleclip", "StyleCLIP mapper", "lightning_modules.styleclip_mapper:StyleCLIPMapping", latent_steps=True),
    Method("diffusionclip", "DiffusionCLIP", "lightning_modules.diffusionclip:DiffusionCLIP"),
    Method("asyrp", "Asyrp", "lightning_modules.asyrp:Asyrp"),
    Method("linear", "DiffAE linear direction", "lightning_modules.linear_direction:LinearDirection",
           latent_steps=True),
)}


class UnknownMethodError(ValueError):
    """leaderboard.methods names a method the leaderboard does not know."""


def check_methods(names: list[str]) -> list[Method]:
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        raise UnknownMethodError(f"unknown leaderboard method(s) {', '.join(unknown)}; "
                                 f"choose from {', '.join(METHODS)}")
    return [METHODS[name] for name in names]


def published_chatface(cfg: DictConfig, entry: Attribute) -> tuple[AttributeMapping, str] | None:
    """ChatFace's mapper of `entry` from the registry (a sweep's best) or from `make train`, with where it came
    from; None when there is none for this backbone and this T."""
    registered = registered_mapper_file(cfg, entry.name)
    path = registered or mapper_file(cfg, entry.name)
    if not path.exists():
        return None
    module = chatface_module(cfg, entry, path)
    return (module, "registry" if registered else "make train") if module is not None else None


def chatface_module(cfg: DictConfig, entry: Attribute, path: Path) -> AttributeMapping | None:
    """The mapper file `path` as a module that edits the way it was trained (its SMS and T); None when it was
    trained on another backbone or decodes with another T than the cached test latents."""
    mapper, info = load_mapper(path)
    if info.get("backbone") != file_digest(cfg.backbone.weights) or int(info.get("steps", -1)) != cfg.mapper.steps:
        return None
    sizes = {key: int(info[key]) for key in ("latent_dim", "width", "depth")}
    module = AttributeMapping(entry.name, entry.source, entry.target, **sizes, sms=info["sms"],
                              sms_param=float(info["sms_param"]), steps=int(info["steps"]),
                              whiten=mapper.whitening is not None)
    module.mapper.load_state_dict(mapper.state_dict())
    return module
