"""Typed configuration: one structured config per concern, YAML presets per world, `key=value` overrides.

    cfg = load_config(["world=ffhq256", "mapper.lr=0.1"])

A misspelt key or a value of the wrong type fails at once with a `ConfigError` naming the key and the valid ones.
"""

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class Prediction(str, Enum):
    eps = "eps"
    v = "v"


@dataclass
class WorldConfig:
    name: str = "synth"
    image_size: int = 64


@dataclass
class DataConfig:
    train_identities: int = 10_000  # SynthFace identities 0..n-1 train; val and test identities are disjoint
    val_faces: int = 256
    test_faces: int = 256
    train_samples: int = 1_000_000  # length of one (virtual) training epoch
    batch_size: int = 32
    num_workers: int = 1
    image_folder: str | None = None  # real photos (ffhq256 world)


@dataclass
class PretrainConfig:
    lr: float = 3e-4
    warmup_steps: int = 200
    max_steps: int = 2000
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    preview_every: int = 250  # steps between semantic-decoding PSNR measurements


@dataclass
class BackboneConfig:
    preset: str = "synth64"
    prediction: Prediction = Prediction.v
    weights: str = "weights/synth/backbone.safetensors"  # safetensors of our own, or an official last.ckpt
    invert_refine: int = 4  # fixed-point iterations per DDIM inversion step (0: plain DDIM inversion)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)


@dataclass
class JudgesConfig:
    clip: str = "weights/synth/clip.safetensors"
    identity: str = "weights/synth/identity.safetensors"
    parser: str = "weights/synth/parser.safetensors"
    attributes: str = "weights/synth/attributes.safetensors"


@dataclass
class MapperConfig:
    width: int = 512
    depth: int = 4
    lr: float = 0.2
    lambda_dir: float = 2.0
    lambda_id: float = 0.5
    lambda_pre: float = 0.2
    sms: str = "linear"
    sms_param: float = 0.5
    steps: int = 8  # DDIM steps of the decode the losses see
    max_steps: int = 300


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    channels_last: bool = True
    log_every_n_steps: int = 10
    seed: int = 0


@dataclass
class TrackingConfig:
    tracking_uri: str = "sqlite:///runs/mlflow.db"
    experiment: str = "chatface"


@dataclass
class SweepConfig:
    trials: int = 12
    workers: int = 1
    storage: str | None = None  # default: a journal file under runs/optuna/


@dataclass
class Config:
    world: WorldConfig = field(default_factory=WorldConfig)
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    judges: JudgesConfig = field(default_factory=JudgesConfig)
    mapper: MapperConfig = field(default_factory=MapperConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    attr: str = "smile"
    output_dir: str = "runs"


class ConfigError(ValueError):
    pass


def load_config(overrides: list[str] = (), world: str | None = None) -> DictConfig:
    """Defaults, then the world preset (`world=NAME` among the overrides or the argument), then the overrides."""
    overrides = list(overrides)
    world = world or next((o.split("=", 1)[1] for o in overrides if o.startswith("world=")), "synth")
    overrides = [o for o in overrides if not o.startswith("world=")]
    _check_syntax(overrides)
    cfg = OmegaConf.structured(Config)
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.load(_world_file(world)), OmegaConf.from_dotlist(overrides))
    except OmegaConfBaseException as error:
        raise ConfigError(_explain(error, cfg)) from None
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _world_file(world: str) -> Path:
    path = CONFIG_DIR / "world" / f"{world}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in (CONFIG_DIR / "world").glob("*.yaml")))
        raise ConfigError(f"unknown world {world!r}; choose one of: {known}")
    return path


def _check_syntax(overrides: list[str]) -> None:
    for item in overrides:
        if "=" not in item or not item.split("=", 1)[0]:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. mapper.lr=0.1)")


def _explain(error: OmegaConfBaseException, cfg: DictConfig) -> str:
    key = getattr(error, "full_key", None) or "?"
    if isinstance(error, ConfigKeyError):
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        node = OmegaConf.select(cfg, parent) if parent else cfg
        valid = ", ".join(f"{parent + '.' if parent else ''}{k}" for k in node.keys()) if node is not None else ""
        return f"unknown config key {key!r}; valid keys here: {valid}"
    if isinstance(error, ValidationError):
        return f"bad value for config key {key!r}: {error.msg.splitlines()[0]}"
    return f"config key {key!r}: {error.msg.splitlines()[0]}"
