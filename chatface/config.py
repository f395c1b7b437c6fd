"""Typed configuration: one structured config per concern, YAML presets per world, `key=value` overrides.

    cfg = load_config(["world=ffhq256", "mapper.lr=0.1"])

A misspelt key or a value of the wrong type fails at once with a `ConfigError` naming the key and the valid ones.
"""

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Literal

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class Prediction(str, Enum):
    eps = "eps"
    v = "v"


class SmsSchedule(str, Enum):
    linear = "linear"  # the paper
    cosine = "cosine"
    step = "step"  # switch from the edited to the original code at the fraction sms_param of the steps
    none = "none"  # the edited code at every step: no SMS


class DirectionLoss(str, Enum):
    cosine = "cosine"  # the paper: 1 - cos(image direction, text direction)
    projection = "projection"  # how far the image moved along the text direction; wants a small lambda_pre


class LrSchedule(str, Enum):
    constant = "constant"
    cosine = "cosine"  # from lr down to 0 at max_steps


class ClipTower(str, Enum):
    vit = "vit"  # 8x8 patches
    resnet = "resnet"  # CLIP's ResNet with attention pooling: sees more of the few-pixel features (judges.md)


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
    flip_attributes: list[str] = field(default_factory=list)  # the backbone's counterfactual pairs flip one; []: any


@dataclass
class PretrainConfig:
    lr: float = 3e-4
    warmup_steps: int = 200
    max_steps: int = 2000
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    preview_every: int = 250  # steps between semantic-decoding PSNR measurements
    run_name: str = "backbone"  # checkpoints in <output_dir>/<run_name>/<world>/, and the MLflow run's name
    init_weights: str = ""  # start a fresh run from these exported weights (a fine-tuning stage); "": random
    init_encoder: bool = True  # False: take only the denoiser from init_weights (any preset); the encoder is new
    attribute_weight: float = 0.0  # > 0: a linear probe teaches z_sem the SynthFace labels (see BackbonePretraining)
    edit_weight: float = 0.0  # > 0: the denoiser learns to follow z_sem over x_t on counterfactual pairs (same)
    edit_min_t: int = 0  # that loss's noise levels are drawn from [edit_min_t, 1000)
    encoder_lr_scale: float = 1.0  # the semantic encoder's (and probe's) learning rate is lr times this; 0 freezes it
    encoder_warmup_steps: int = 0  # the first steps train only the encoder and probe (needs attribute_weight > 0)
    trajectory_weight: float = 0.0  # > 0: the denoiser also learns whole T-step edit decodes (BackbonePretraining)
    trajectory_faces: int = 4  # counterfactual pairs per step for that loss
    trajectory_steps: int = 8  # its T


@dataclass
class BackboneConfig:
    preset: str = "synth64"  # the architecture to train; our weights files name their own preset
    prediction: Prediction = Prediction.v
    weights: str = "weights/synth/backbone.safetensors"  # safetensors of our own, or an official last.ckpt
    invert_refine: int = 4  # fixed-point iterations per DDIM inversion step (0: plain DDIM inversion)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)


@dataclass
class JudgeSteps:
    clip: int = 4000  # zero-shot 0.868 after 1,600 steps, 0.901 after 4,000 (weights/synth/judges.md)
    identity: int = 12000
    parser: int = 4000
    attributes: int = 1400


@dataclass
class JudgePretrainConfig:
    train_faces: int = 24_000
    train_identities: int = 2_400  # ten faces per identity, with attributes and scene varying
    val_faces: int = 1_024  # two faces per val identity: the identity judge's verification pairs
    batch_size: int = 64
    clip_batch_size: int = 128  # contrastive learning wants more negatives per batch
    clip_direction_weight: float = 1.0  # > 0: CLIP also learns text directions from counterfactual pairs
    clip_prompt_balance: bool = True  # the prompt loss weighs each attribute's rare side up to its common one
    clip_tower: ClipTower = ClipTower.resnet  # the synth CLIP's image tower
    clip_resnet_width: int = 16  # stem channels of the ResNet tower (4x more after its first stage, doubling)
    parser_class_balance: float = 0.5  # each class's pixels weigh (its frequency)^-this in the parser's loss
    parser_width: int = 32  # channels of the parser U-Net's first level (doubling per level)
    identity_width: int = 48  # stem channels of the recogniser (doubling per stage)
    identity_margin_warmup: int = 3000  # > 0: the recogniser starts as a plain softmax, its margin ramping up after
    lr: float = 2e-3
    steps: JudgeSteps = field(default_factory=JudgeSteps)
    val_every: int = 250


@dataclass
class JudgesConfig:
    clip: str = "weights/synth/clip.safetensors"
    identity: str = "weights/synth/identity.safetensors"
    parser: str = "weights/synth/parser.safetensors"
    attributes: str = "weights/synth/attributes.safetensors"  # synth only; "" where there is none
    # The prompt templates CLIP's text directions average over ("{}": the text alone); None: the ten of
    # networks/judges/clip.py. Every direction loss, Sdir and clip_sees_oracle use them.
    clip_templates: list[str] | None = None
    pretrain: JudgePretrainConfig = field(default_factory=JudgePretrainConfig)


@dataclass
class EditGoals:
    """What an edit should reach on held-out faces (issue #5): mapper.keep_best keeps the validation nearest them."""
    edit_success: float = 0.8
    id: float = 0.8
    leakage: float = 0.05


@dataclass
class MapperConfig:
    width: int = 512
    depth: int = 4
    lr: float = 0.2
    lr_schedule: LrSchedule = LrSchedule.constant
    lambda_dir: float = 2.0
    lambda_id: float = 0.5
    lambda_pre: float = 0.2
    sms: SmsSchedule = SmsSchedule.linear
    sms_param: float = 0.5
    direction_loss: DirectionLoss = DirectionLoss.cosine
    direction_target: float | None = None  # the text shift at which a face stops pulling (projection loss only)
    steps: int = 8  # DDIM steps of the decode the losses see
    # The offset in whitened coordinates, mapped by the square root of the training latents' covariance
    # (networks/mapper.py): steps follow the directions in which faces differ.
    whiten: bool = False
    grad_checkpoint: bool = False  # recompute the decoder in the backward pass: less memory (ffhq256), ~1/3 slower
    max_steps: int = 150  # ffhq256: about 4 minutes on an H200; the synth world trains 60 (configs/world/synth.yaml)
    batch_size: int = 8
    train_faces: int = 256  # SynthFace training faces whose latents are cached
    # Fixed-point refinements of the cached inversions. The losses and metrics compare an edit with the
    # reconstruction from the same x_T, so x_T need not reproduce the input exactly; 1 halves the caching time of 4.
    invert_refine: int = 1
    val_faces: int = 64  # held-out faces the run is validated (and a sweep is scored) on
    test_faces: int = 64  # other held-out faces `chatface eval mapper` reports on
    val_every: int = 50
    # Export the best validation, not the last: the one falling least short of the goals (judged where the world has
    # an attribute judge), ties by the weighted score sweep.weight_* (chatface/best_validation.py).
    keep_best: bool = True
    goals: EditGoals = field(default_factory=EditGoals)
    checkpoint_every: int = 25


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
    """`make sweep`: one Optuna study per world and attribute; sweeps/README.md explains every key."""

    trials: int = 6  # finished (complete or pruned) trials the study should hold; failed ones are made up for
    workers: int = 1  # worker processes on this machine, all on the same study
    storage: str | None = None  # None: a journal file under runs/optuna/; else an RDB URL or a journal file path
    space: str = "sweeps/search_space.yaml"  # the search space (relative paths: cwd, else the repository)
    objective: Literal["multi", "weighted"] = "multi"  # multi: NSGA-II on (sdir, id, sc); weighted: TPE on a score
    weight_sdir: float = 1.0  # the weighted score (weighted objective, pruning, the registered best trial)
    weight_id: float = 0.25
    weight_sc: float = 0.25
    pruner: Literal["median", "hyperband", "none"] = "median"  # hyperband needs objective=weighted
    trial_steps: int = 40  # mapper.max_steps of every trial (a full `make train` runs mapper.max_steps)
    trial_val_every: int = 20  # steps between validations: each gives an intermediate value and a pruning check
    startup_trials: int = 3  # complete trials before pruning starts
    population: int = 4  # NSGA-II population (generation) size
    heartbeat_s: float = 30.0  # a running trial whose heartbeat is 4x older than this is failed
    max_failures: int = 3  # a worker stops after this many failed trials in a row
    seed: int | None = None  # sampler seed (worker i uses seed + i)


@dataclass
class ChatConfig:
    parser: str = "auto"  # auto: the LLM when a model is set (here or in $CHATFACE_LLM_MODEL), else offline
    model: str | None = None  # e.g. gpt-4o-mini, or the name a local vLLM / llama.cpp / Ollama server serves
    base_url: str | None = None  # None: $OPENAI_BASE_URL, else OpenAI
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key; the key is never stored
    timeout_s: float = 30.0
    retries: int = 2


@dataclass
class StyleCLIPConfig:
    """StyleCLIP's latent mapper recipe on z_sem: Ranger, global CLIP loss, latent L2, identity; no SMS."""
    steps: int = 30
    batch_size: int = 8
    lr: float = 0.5
    lambda_clip: float = 1.0
    lambda_l2: float = 0.8
    lambda_id: float = 0.1
    whiten: bool = False  # offsets in whitened z_sem coordinates, as mapper.whiten


@dataclass
class DiffusionCLIPConfig:
    """DiffusionCLIP: fine-tune a copy of the denoiser from a partial inversion to t_0 (the official repo's
    CelebA-HQ command; only the number of fine-tuning images is smaller: the repo's is 5 passes over 50 images)."""
    steps: int = 30
    batch_size: int = 4
    lr: float = 8e-6
    sch_gamma: float = 1.3  # the lr is multiplied by this after every pass over the training faces
    t_0: int = 500
    inv_steps: int = 40
    train_steps: int = 6
    test_steps: int = 40
    lambda_clip: float = 3.0
    lambda_l1: float = 1.0
    lambda_id: float = 0.0
    grad_checkpoint: bool = False  # recompute each generation step in the backward pass: less memory (ffhq256)


@dataclass
class AsyrpConfig:
    """Asyrp: a learnt shift of the UNet bottleneck (h-space) in [t_edit, T], asymmetric reverse process.

    Defaults from kwonminki/Asyrp_official's script_train.sh; lightning_modules/asyrp.py says what is scaled down.
    """
    steps: int = 30  # trainer steps = SGD updates, one per timestep in [t_edit, T] of a batch's walk
    batch_size: int = 4
    lr: float = 0.5  # SGD, no momentum
    lr_step_epochs: int = 3  # StepLR: lr x lr_gamma every 3 passes over the training faces
    lr_gamma: float = 0.1
    t_edit: int = 500
    inv_steps: int = 40  # DDIM inversion steps
    train_steps: int = 40  # DDIM steps of the training walk (only those with t >= t_edit are walked)
    test_steps: int = 40  # DDIM steps of `edit`
    lambda_clip: float = 1.0
    lambda_l1: float = 3.0


@dataclass
class LinearDirectionConfig:
    """DiffAE's linear direction: a logistic classifier on z_sem from labels; edit along its normal."""
    steps: int = 300
    batch_size: int = 64
    lr: float = 0.05
    target_logit: float = 3.0  # an edit moves each face along the normal until the classifier says this


@dataclass
class LeaderboardConfig:
    """The baselines' budgets and settings; ChatFace trains as `make train` does (the mapper section: val_every,
    keep_best; max_steps unless chatface_max_steps is set) where neither the registry nor `make train` has a mapper."""
    attrs: list[str] = field(default_factory=lambda: ["smile", "curly_hair", "makeup", "glasses"])
    methods: list[str] = field(default_factory=lambda: ["reconstruction", "chatface", "styleclip", "diffusionclip",
                                                        "asyrp", "linear"])  # reconstruction: the no-edit row
    faces: int = 30  # held-out test faces every method edits (the paper's 30)
    train_faces: int = 64  # cached training faces the methods trained here learn from
    bootstrap: int = 1000  # resamples of the faces for each cell's 95% interval
    chatface_max_steps: int | None = None  # ChatFace's training budget here; None: mapper.max_steps
    styleclip: StyleCLIPConfig = field(default_factory=StyleCLIPConfig)
    diffusionclip: DiffusionCLIPConfig = field(default_factory=DiffusionCLIPConfig)
    asyrp: AsyrpConfig = field(default_factory=AsyrpConfig)
    linear: LinearDirectionConfig = field(default_factory=LinearDirectionConfig)


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
    chat: ChatConfig = field(default_factory=ChatConfig)
    leaderboard: LeaderboardConfig = field(default_factory=LeaderboardConfig)
    attr: str = "smile"
    output_dir: str = "runs"


class ConfigError(ValueError):
    pass


def load_config(overrides: list[str] = (), world: str | None = None) -> DictConfig:
    """Defaults, then the world preset (`world=NAME` among the overrides or the argument), then the overrides."""
    overrides = list(overrides)
    world = world or next((o.split("=", 1)[1] for o in overrides if o.startswith("world=")), "synth")
    overrides = [o for o in overrides if not o.startswith("world=")]
    parsed = [_parsed_override(item) for item in overrides]
    cfg = OmegaConf.structured(Config)
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.load(_world_file(world)), *parsed)
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


def _parsed_override(item: str) -> DictConfig:
    if "=" not in item or not item.split("=", 1)[0]:
        raise ConfigError(f"override {item!r} is not of the form key=value (e.g. mapper.lr=0.1)")
    try:
        return OmegaConf.from_dotlist([item])
    except yaml.YAMLError as error:
        raise ConfigError(f"override {item!r}: its value is not valid YAML ({getattr(error, 'problem', error)}); "
                          "a list is written like judges.clip_templates=['{}']") from None


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
