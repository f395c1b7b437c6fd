"""The synth face recogniser: an embedding trained with the additive angular margin (ArcFace) loss.

Every training identity appears with different attributes and scenes, so the embedding has to ignore both.
With many identities the margin can keep the loss from ever starting (every class is far off at first);
`margin_warmup_steps` then trains a plain softmax (margin 0) for that many steps and ramps the margin up linearly
over as many more.
Validation is verification on unseen identities: ROC AUC of the cosine between faces of the same / other people.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import BinaryAUROC

from lightning_modules.judge_training import JudgeTraining


class ArcFaceLoss(nn.Module):
    """Cross-entropy over s * cos(θ + m) for the true class and s * cos(θ) for the others (Deng et al., 2019)."""

    def __init__(self, embed_dim: int, num_classes: int, scale: float = 32.0, margin: float = 0.3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, embed_dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, embeddings: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        cosine = F.normalize(embeddings) @ F.normalize(self.weight).T
        theta = torch.acos(cosine.clamp(-1 + 1e-6, 1 - 1e-6))
        target = F.one_hot(classes, cosine.shape[1]).bool()
        # Past θ = π - m, cos(θ + m) would rise again; insightface then uses the linear fallback cos θ - m sin m.
        margin = torch.where(theta + self.margin < math.pi, torch.cos(theta + self.margin),
                             cosine - self.margin * math.sin(self.margin))
        logits = torch.where(target, margin, cosine)
        return F.cross_entropy(self.scale * logits, classes)


class IdentityTraining(JudgeTraining):
    kind = "identity"

    def __init__(self, sizes: dict, num_identities: int, margin_warmup_steps: int = 0, **kwargs) -> None:
        super().__init__(sizes, **kwargs)
        self.arcface = ArcFaceLoss(sizes["out_dim"], num_identities)
        self.full_margin, self.margin_warmup_steps = self.arcface.margin, margin_warmup_steps
        self.val_auc = BinaryAUROC()

    def margin_at(self, step: int) -> float:
        if self.margin_warmup_steps == 0:
            return self.full_margin
        ramp = (step - self.margin_warmup_steps) / self.margin_warmup_steps
        return self.full_margin * min(1.0, max(0.0, ramp))

    def training_step(self, batch: dict, batch_idx: int):
        self.arcface.margin = self.margin_at(self.global_step)
        self.log("train/margin", self.arcface.margin)
        loss = self.arcface(self.net(self.images(batch)), batch["identity"])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        embeddings = F.normalize(self.net(self.images(batch)))
        cosine = embeddings @ embeddings.T
        same = batch["identity"][:, None] == batch["identity"][None, :]
        upper = torch.triu(torch.ones_like(same), diagonal=1)
        self.val_auc(cosine[upper], same[upper].long())
        self.log("val/id_roc_auc", self.val_auc, prog_bar=True)
