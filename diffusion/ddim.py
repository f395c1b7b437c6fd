"""Deterministic DDIM (eta = 0) over the official DiffAE schedule: 1000 training steps, linear betas.

A T-step sampler uses the timesteps `spaced(T)` (evenly spread over 0..999, both ends included, as the official
SpacedDiffusion does). Decoding walks them from the last to the first and finally to the clean image;
inversion (in the pipeline) walks the same levels upwards. The model predicts either the noise (`eps`) or `v`.
"""

import numpy as np
import torch


def linear_alphas_cumprod(num_train_steps: int = 1000) -> torch.Tensor:
    scale = 1000 / num_train_steps
    betas = np.linspace(scale * 1e-4, scale * 0.02, num_train_steps, dtype=np.float64)
    return torch.tensor(np.cumprod(1.0 - betas), dtype=torch.float32)


class DDIMScheduler:
    def __init__(self, num_train_steps: int = 1000, prediction: str = "eps"):
        if prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")
        self.num_train_steps, self.prediction = num_train_steps, prediction
        self.alphas_cumprod = linear_alphas_cumprod(num_train_steps)

    def spaced(self, steps: int, t_max: int | None = None) -> list[int]:
        """The T timesteps a T-step sampler visits, ascending; up to `t_max` for a partial (SDEdit-style) walk,
        as DiffusionCLIP inverts and decodes from t_0 instead of pure noise."""
        t_max = self.num_train_steps - 1 if t_max is None else t_max
        if not 0 <= t_max < self.num_train_steps:
            raise ValueError(f"t_max must be in 0..{self.num_train_steps - 1}, got {t_max}")
        if not 1 <= steps <= t_max + 1:
            raise ValueError(f"steps must be in 1..{t_max + 1}, got {steps}")
        if steps == 1:
            return [t_max]
        return [round(i * t_max / (steps - 1)) for i in range(steps)]

    def alpha(self, t: int | None) -> float:
        """ᾱ at timestep t; None is the clean image (ᾱ = 1)."""
        return 1.0 if t is None else float(self.alphas_cumprod[t])

    # -- training ------------------------------------------------------------------------------------------
    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the model learns to predict at (x_t, t)."""
        if self.prediction == "eps":
            return noise
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1)
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def predicted_x0(self, model_out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The clean image a training-time model output implies, per item of the batch."""
        a = self.alphas_cumprod.to(x_t.device)[t].view(-1, 1, 1, 1)
        if self.prediction == "eps":
            return (x_t - (1 - a).sqrt() * model_out) / a.sqrt()
        return a.sqrt() * x_t - (1 - a).sqrt() * model_out

    # -- sampling ------------------------------------------------------------------------------------------
    def split(self, model_out: torch.Tensor, x_t: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted x0, predicted noise) from the model output at timestep t."""
        a = self.alpha(t)
        if self.prediction == "eps":
            eps = model_out
            return (x_t - (1 - a) ** 0.5 * eps) / a**0.5, eps
        x0 = a**0.5 * x_t - (1 - a) ** 0.5 * model_out
        eps = (1 - a) ** 0.5 * x_t + a**0.5 * model_out
        return x0, eps

    @staticmethod
    def move(x0: torch.Tensor, eps: torch.Tensor, alpha_to: float) -> torch.Tensor:
        """The deterministic DDIM point at level ᾱ = alpha_to on the line through (x0, eps)."""
        return alpha_to**0.5 * x0 + (1 - alpha_to) ** 0.5 * eps

    def step(self, model_out: torch.Tensor, t: int, t_prev: int | None, x_t: torch.Tensor,
             clip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoding step from timestep t down to t_prev (None: the clean image). Returns (x_prev, x0)."""
        x0, eps = self.split(model_out, x_t, t)
        if clip:
            x0 = x0.clamp(-1, 1)
            a = self.alpha(t)
            eps = (x_t - a**0.5 * x0) / (1 - a) ** 0.5
        return self.move(x0, eps, self.alpha(t_prev)), x0
