"""The Stable Manipulation Strategy (SMS): which latent conditions each generation step.

Step k of T gets `lerp(z_edit, z, v_k)`. v goes from 0 at the first (noisiest) step, where the edited code shapes
the coarse structure, towards 1 at the last step, where the original code keeps the fine texture. The schedule is
the shape of that curve; `none` keeps the edited code at every step (plain editing, no SMS).
"""

import math
from collections.abc import Callable

import torch

SCHEDULES: dict[str, Callable[[float, float], float]] = {
    "linear": lambda u, param: u,  # the paper's v = t / T
    "cosine": lambda u, param: (1 - math.cos(math.pi * u)) / 2,
    "step": lambda u, param: float(u >= param),  # edited code until the fraction `param` of the steps, then original
    "none": lambda u, param: 0.0,
}


def sms_weights(schedule: str, steps: int, param: float = 0.5) -> list[float]:
    """v_k for k = 0 .. steps-1 (0: edited code only, 1: original code only)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown SMS schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    return [SCHEDULES[schedule](k / max(steps - 1, 1), param) for k in range(steps)]


def sms_conditions(z: torch.Tensor, z_edit: torch.Tensor, schedule: str, steps: int,
                   param: float = 0.5) -> list[torch.Tensor]:
    """One condition per generation step, for `DiffAEPipeline.decode`."""
    return [torch.lerp(z_edit, z, v) for v in sms_weights(schedule, steps, param)]


def edit_conditions(z: torch.Tensor, edits: list[tuple[torch.Tensor, str, float]],
                    steps: int) -> list[torch.Tensor]:
    """Several edits `(offset, schedule, param)`, each under its own schedule: step k gets
    `z + Σ_i (1 − v_k^(i)) · offset_i`. With one edit this is `sms_conditions(z, z + offset, schedule, steps,
    param)`."""
    weighted = [(offset, sms_weights(schedule, steps, param)) for offset, schedule, param in edits]
    return [z + sum(((1 - v[k]) * offset for offset, v in weighted), torch.zeros_like(z)) for k in range(steps)]
