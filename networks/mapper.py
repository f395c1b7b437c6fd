"""The ChatFace mapping network: a residual MLP on z_sem, `z_edit = z + s * M(z)`.

As in StyleCLIP's mapper, the layers use StyleGAN's equalised learning rate with a learning-rate multiplier of
0.01, and the output is scaled by 0.1. The last layer starts at zero, so an untrained mapper edits nothing and
training starts from the reconstruction. Those two factors make a Ranger step move z by about a thousandth of the
learning rate, which suits StyleCLIP's 50,000 steps, not a budget of 150: on the synth backbone, even at lr 1.0
(5x the paper's) the offset is 1 % of |z| after 70 steps, while blond hair takes about |z| (session-15 note of
issue #5: lr 20 still too slow, lr 60 edits, lr 200 diverges; with whitening on the walk-trained backbone lr 20
edits within 40 steps, configs/world/synth.yaml). The sweep searches lr up to 100 for that reason.

With `whiten`, the MLP's output is an offset in whitened coordinates, mapped to z_sem by the square root of the
training latents' covariance (`fit_whitening`): a step of the mapper then moves z along the directions in which
faces actually differ. The loss gradient reaching the MLP is preconditioned by that covariance; on the synth
backbone this doubled to sextupled the cosine between the CLIP-guided offset and the true attribute direction
(measured in the session-8 note of issue #5), since CLIP alone is also satisfied by directions no face takes.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualLinear(nn.Module):
    """y = x (W * lr_mul / sqrt(in))^T + b * lr_mul, with W ~ N(0, 1/lr_mul²): every layer learns at one pace."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 0.01) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_scale, self.lr_mul = lr_mul / math.sqrt(in_features), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_scale, self.bias * self.lr_mul)


class LatentMapper(nn.Module):
    output_scale = 0.1  # StyleCLIP's w + 0.1 * mapper(w)

    def __init__(self, latent_dim: int = 512, width: int = 512, depth: int = 4, whiten: bool = False) -> None:
        super().__init__()
        dims = [latent_dim] + [width] * (depth - 1) + [latent_dim]
        self.layers = nn.ModuleList(EqualLinear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:]))
        nn.init.zeros_(self.layers[-1].weight)
        self.whitening = nn.Buffer(torch.eye(latent_dim)) if whiten else None

    @torch.no_grad()
    def fit_whitening(self, latents: torch.Tensor) -> None:
        """Set the whitening matrix to C^(1/2), C the covariance of `latents` (rows are z_sem of training faces)."""
        if self.whitening is None:
            raise ValueError("this mapper was built without whiten=True; it has no whitening to fit")
        eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(latents.double().T))
        root = eigenvectors @ torch.diag(eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
        self.whitening.copy_(root.to(self.whitening.dtype))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """M(z), the edit direction at z (scaled by the strength outside)."""
        h = F.layer_norm(z, z.shape[-1:])  # z_sem has no fixed scale; the MLP sees it normalised
        for layer in self.layers[:-1]:
            h = F.leaky_relu(layer(h), 0.2)
        offset = self.output_scale * self.layers[-1](h)
        return offset if self.whitening is None else offset @ self.whitening  # C^(1/2) is symmetric
