"""DiffAE's linear editing direction (Preechakul et al., CVPR 2022, §5.2): a logistic classifier on z_sem.

The classifier sees the code standardised by the training set's mean and deviation (a BatchNorm without affine
parameters keeps those statistics); its weight vector is the attribute's direction. An edit moves each face along
the unit normal, in standardised units, until the classifier's logit reaches `target_logit` (faces already past it
stay), then decodes the moved code from the face's own x_T at every step, as DiffAE does.
"""

import torch
import torch.nn.functional as F
from torch import nn

from diffusion import DiffAEPipeline
from lightning_modules.attached import WithFrozenParts
from networks.judges.loading import Judges
from synthface.attributes import ATTRIBUTE_INDEX, check_name


class LinearDirection(WithFrozenParts):
    def __init__(self, attribute: str, source_text: str, target_text: str, latent_dim: int, latent_steps: int,
                 lr: float = 0.05, target_logit: float = 3.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.label_index = ATTRIBUTE_INDEX[check_name(attribute)]
        self.standardise = nn.BatchNorm1d(latent_dim, affine=False, momentum=None)  # momentum None: exact mean
        self.classifier = nn.Linear(latent_dim, 1)

    def attach(self, pipe: DiffAEPipeline, judges: Judges) -> "LinearDirection":
        self.attach_frozen(pipe, None)
        return self

    def logit(self, z: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.standardise(z)).squeeze(1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        labels = batch["labels"][:, self.label_index]
        logits = self.logit(batch["z"])
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/accuracy", ((logits > 0).float() == labels).float().mean())
        return loss

    @torch.no_grad()
    def edited_codes(self, z: torch.Tensor) -> torch.Tensor:
        weight = self.classifier.weight[0]
        normal = weight / weight.norm()
        distance = ((self.hparams.target_logit - self.logit(z)) / weight.norm()).clamp_min(0)  # standardised units
        deviation = (self.standardise.running_var + self.standardise.eps).sqrt()
        return z + distance[:, None] * deviation * normal

    @torch.no_grad()
    def edit(self, batch: dict) -> torch.Tensor:
        return self.pipe.decode(batch["x_T"], self.edited_codes(batch["z"]), self.hparams.latent_steps)

    def configure_optimizers(self):
        return torch.optim.Adam(self.classifier.parameters(), lr=self.hparams.lr)
