"""The DiffAE pipeline: encode an image to z_sem, invert it to x_T, decode (x_T, conditions) back to an image.

Decoding takes one condition per generation step, which is what the Stable Manipulation Strategy needs. Inversion
is DDIM run upwards; `refine` fixed-point iterations per step (as AIDI and ReNoise do) make it the exact inverse of
decoding up to convergence, which matters at few steps.
"""

from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch
from torch.utils.checkpoint import checkpoint

from diffusion.ddim import DDIMScheduler
from networks.diffae import DiffAE
from networks.diffae.checkpoint import load_backbone

Conditions = torch.Tensor | Sequence[torch.Tensor] | Callable[[int], torch.Tensor]


class DiffAEPipeline:
    def __init__(self, model: DiffAE, scheduler: DDIMScheduler, bf16: bool = False):
        self.model, self.scheduler, self.bf16 = model, scheduler, bf16

    @classmethod
    def from_weights(cls, path: str, preset_name: str | None = None, bf16: bool = False) -> "DiffAEPipeline":
        """Our safetensors backbone or an official DiffAE checkpoint (EMA weights), in eval mode, frozen."""
        model, prediction = load_backbone(path, preset_name)
        return cls(model.requires_grad_(False), DDIMScheduler(prediction=prediction), bf16)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def _predict(self, x: torch.Tensor, t: int, cond: torch.Tensor, use_checkpoint: bool = False) -> torch.Tensor:
        ts = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        with self._autocast(x.device):
            if use_checkpoint and torch.is_grad_enabled():
                out = checkpoint(self.model, x, ts, cond, use_reentrant=False)
            else:
                out = self.model(x, ts, cond)
        return out.float()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast(x.device):
            return self.model.encode(x).float()

    def invert(self, x: torch.Tensor, z_sem: torch.Tensor, steps: int, refine: int = 0,
               t_max: int | None = None) -> torch.Tensor:
        """x_T such that `decode(x_T, z_sem, steps)` gives back x (x at `t_max`, when given, for a partial walk)."""
        timesteps = self.scheduler.spaced(steps, t_max)
        alpha = self.scheduler.alpha
        x_prev, t_eval = x, timesteps[0]
        for i, t in enumerate(timesteps):
            x0, eps = self.scheduler.split(self._predict(x_prev, t_eval, z_sem), x_prev, t_eval)
            x_next = self.scheduler.move(x0, eps, alpha(t))
            a_prev = alpha(timesteps[i - 1]) if i else 1.0
            for _ in range(refine):
                _, eps = self.scheduler.split(self._predict(x_next, t, z_sem), x_next, t)
                x0 = (x_prev - (1 - a_prev) ** 0.5 * eps) / a_prev**0.5
                x_next = self.scheduler.move(x0, eps, alpha(t))
            x_prev, t_eval = x_next, t
        return x_prev

    def decode(self, x_T: torch.Tensor, conditions: Conditions, steps: int, return_x0: bool = False,
               use_checkpoint: bool = False, t_max: int | None = None
               ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Generate from x_T; `conditions` is one z_sem, a list with one per step, or a function of the step index.

        Step 0 is the first (noisiest) generation step. With `return_x0` the predicted clean image of every step
        comes back too (the last one is the output). With `t_max`, x_T is a partial inversion to that timestep.
        """
        condition_at = _condition_function(conditions, steps)
        timesteps = self.scheduler.spaced(steps, t_max)[::-1]
        x, x0s = x_T, []
        for k, t in enumerate(timesteps):
            t_prev = timesteps[k + 1] if k + 1 < steps else None
            out = self._predict(x, t, condition_at(k), use_checkpoint)
            x, x0 = self.scheduler.step(out, t, t_prev, x)
            x0s.append(x0)
        return (x, x0s) if return_x0 else x

    def reconstruct(self, x: torch.Tensor, steps: int, refine: int = 0) -> torch.Tensor:
        z_sem = self.encode(x)
        return self.decode(self.invert(x, z_sem, steps, refine), z_sem, steps)


def _condition_function(conditions: Conditions, steps: int) -> Callable[[int], torch.Tensor]:
    if isinstance(conditions, torch.Tensor):
        return lambda k: conditions
    if callable(conditions):
        return conditions
    if len(conditions) != steps:
        raise ValueError(f"got {len(conditions)} conditions for {steps} decoding steps; give one per step")
    return lambda k: conditions[k]
