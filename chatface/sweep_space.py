"""The search space of a sweep: mapper config keys mapped to Optuna distributions, read from YAML, checked on load.

    mapper.lr:        {type: float, low: 0.02, high: 1.0, log: true}
    mapper.sms:       {type: categorical, choices: [linear, cosine, step, none]}
    mapper.sms_param: {type: float, low: 0.2, high: 0.8, when: {mapper.sms: [step]}}

Every mistake (an unknown key or field, a bad range, a value the config cannot hold, a space that leaves out the
paper's setting) is a `SearchSpaceError` naming the file and the key. sweeps/README.md describes the format.
"""

import dataclasses
import functools
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import BaseTrial

from chatface.config import ConfigError, MapperConfig

REPO = Path(__file__).resolve().parents[1]

# The paper's setting (ChatFace, Sec. 4), the first trial of every sweep; other keys start at the config default.
PAPER_SETTING: dict[str, Any] = {"mapper.lr": 0.2, "mapper.lambda_dir": 2.0, "mapper.lambda_id": 0.5,
                                 "mapper.lambda_pre": 0.2, "mapper.sms": "linear", "mapper.steps": 8,
                                 "mapper.width": 512, "mapper.direction_loss": "cosine", "mapper.whiten": False,
                                 "mapper.lr_schedule": "constant"}
SET_BY_SWEEP = {"mapper.max_steps": "sweep.trial_steps", "mapper.val_every": "sweep.trial_val_every"}
FIELDS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"}, "categorical": {"choices"}}
MAPPER_TYPES = {f"mapper.{f.name}": f.type for f in dataclasses.fields(MapperConfig)}


class SearchSpaceError(ConfigError):
    """A search-space file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Param:
    key: str
    distribution: BaseDistribution
    when: tuple[tuple[str, tuple], ...] = ()  # sampled only where each earlier key took one of these values

    def active(self, values: dict[str, Any]) -> bool:
        return all(values.get(key) in allowed for key, allowed in self.when)

    def contains(self, value: Any) -> bool:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return value in d.choices
        return isinstance(value, int | float) and d.low <= value <= d.high

    def suggest(self, trial: BaseTrial) -> Any:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return trial.suggest_categorical(self.key, d.choices)
        if isinstance(d, IntDistribution):
            return trial.suggest_int(self.key, d.low, d.high, step=d.step, log=d.log)
        return trial.suggest_float(self.key, d.low, d.high, step=d.step, log=d.log)


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    path: Path

    def suggest(self, trial: BaseTrial) -> dict[str, Any]:
        """The trial's config overrides {key: value}, sampled in file order (conditions see earlier keys)."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.active(values):
                values[param.key] = param.suggest(trial)
        return values

    def baseline(self) -> dict[str, Any]:
        """The paper's setting restricted to this space: the params of a sweep's first trial."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.active(values):
                values[param.key] = PAPER_SETTING.get(param.key, _config_default(param.key))
        return values

    def choices(self, key: str) -> list[Any]:
        """Every value `key` can take (its config default when the space leaves it out); for caches per value."""
        param = next((p for p in self.params if p.key == key), None)
        if param is None:
            return [_config_default(key)]
        d = param.distribution
        if isinstance(d, CategoricalDistribution):
            return list(d.choices)
        if isinstance(d, IntDistribution) and not d.log:
            return list(range(d.low, d.high + 1, d.step))
        raise SearchSpaceError(f"{self.path}: {key}: give it as categorical choices")


def load_space(path: str | Path) -> SearchSpace:
    path = resolve_path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SearchSpaceError(f"cannot read the search space {path}: {error}") from None
    if not isinstance(raw, dict) or not raw:
        raise SearchSpaceError(f"{path}: a search space maps config keys to distributions, e.g. "
                               "`mapper.lr: {type: float, low: 0.02, high: 1.0, log: true}`")
    params: list[Param] = []
    for key, spec in raw.items():
        params.append(_param(path, str(key), spec, params))
    space = SearchSpace(tuple(params), path)
    for key, value in space.baseline().items():
        param = next(p for p in params if p.key == key)
        if not param.contains(value):
            raise SearchSpaceError(f"{path}: {key}: the space leaves out the paper's value {value!r}; the first "
                                   "trial of every sweep is the paper's setting, so the space must contain it")
    return space


def resolve_path(path: str | Path) -> Path:
    """A relative path is looked up in the working directory, then in the repository."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO / path


def _param(path: Path, key: str, spec: Any, earlier: list[Param]) -> Param:
    def fail(problem: str) -> SearchSpaceError:
        return SearchSpaceError(f"{path}: {key}: {problem}")

    if key in SET_BY_SWEEP:
        raise fail(f"set by the sweep itself; change {SET_BY_SWEEP[key]} instead")
    if key not in MAPPER_TYPES:
        valid = ", ".join(k for k in MAPPER_TYPES if k not in SET_BY_SWEEP)
        raise SearchSpaceError(f"{path}: unknown config key {key!r}; a sweep searches the mapper's keys: {valid}")
    if any(p.key == key for p in earlier):
        raise fail("given twice")
    if not isinstance(spec, dict) or spec.get("type") not in FIELDS:
        raise fail(f"needs a mapping with type: {' | '.join(FIELDS)}, got {spec!r}")
    kind, extra = spec["type"], set(spec) - {"type", "when"}
    if unknown := extra - FIELDS[kind]:
        raise fail(f"unknown field(s) {', '.join(sorted(unknown))} for type {kind}; "
                   f"valid: {', '.join(sorted(FIELDS[kind] | {'when'}))}")
    if kind == "categorical":
        distribution = _categorical(spec, fail)
    else:
        distribution = _numeric(key, kind, spec, fail)
    values = distribution.choices if kind == "categorical" else (distribution.low, distribution.high)
    for value in values:
        try:
            OmegaConf.merge(_mapper_config(), {key.removeprefix("mapper."): value})
        except OmegaConfBaseException as error:
            raise fail(f"the config cannot hold {value!r}: {error.msg.splitlines()[0]}") from None
    return Param(key, distribution, _when(spec.get("when", {}), earlier, fail))


def _categorical(spec: dict, fail) -> CategoricalDistribution:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise fail("categorical needs a non-empty list of choices")
    if len(set(map(repr, choices))) != len(choices):
        raise fail(f"repeated choices in {choices}")
    if not all(choice is None or isinstance(choice, bool | int | float | str) for choice in choices):
        raise fail(f"choices must be numbers, strings or booleans, got {choices}")
    return CategoricalDistribution(choices)


def _numeric(key: str, kind: str, spec: dict, fail) -> FloatDistribution | IntDistribution:
    field_type = MAPPER_TYPES[key]
    optional = set(typing.get_args(field_type)) - {type(None)}
    if len(optional) == 1:  # e.g. float | None: searched as a range of floats
        field_type = optional.pop()
    if field_type not in (int, float) or (kind == "float" and field_type is int):
        raise fail(f"the config holds a {getattr(field_type, '__name__', field_type)}: use type "
                   f"{'int or ' if field_type is int else ''}categorical")
    number = int if kind == "int" else (int, float)
    low, high, log, step = spec.get("low"), spec.get("high"), spec.get("log", False), spec.get("step")
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, number):
            raise fail(f"{kind} needs a numeric {name}" + (" (a whole number)" if kind == "int" else "")
                       + f", got {value!r}")
    if low > high:
        raise fail(f"bad range: low {low} is above high {high}")
    if not isinstance(log, bool):
        raise fail(f"log must be true or false, got {log!r}")
    if log and low <= 0:
        raise fail(f"bad range: a log scale needs low > 0, got {low}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, number) or step <= 0 or log):
        raise fail(f"step must be a positive {kind} and cannot go with log: true, got {step!r}")
    if kind == "int":
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log, step=step)


def _when(when: Any, earlier: list[Param], fail) -> tuple[tuple[str, tuple], ...]:
    if not isinstance(when, dict):
        raise fail(f"when needs a mapping {{earlier.key: [values]}}, got {when!r}")
    conditions = []
    for other, allowed in when.items():
        param = next((p for p in earlier if p.key == other), None)
        if param is None or not isinstance(param.distribution, CategoricalDistribution):
            raise fail(f"when refers to {other!r}, which is not a categorical key given above it")
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if missing := [value for value in allowed if value not in param.distribution.choices]:
            raise fail(f"when: {other} never takes {missing}; its choices are {list(param.distribution.choices)}")
        conditions.append((other, tuple(allowed)))
    return tuple(conditions)


@functools.cache
def _mapper_config() -> DictConfig:
    return OmegaConf.structured(MapperConfig)


def _config_default(key: str) -> Any:
    value = OmegaConf.select(_mapper_config(), key.removeprefix("mapper."))
    return getattr(value, "value", value)  # an enum as its name, like a categorical choice
