"""The synth face recogniser: an embedding trained with the additive angular margin (ArcFace) loss.

Every training identity appears with different attributes and scenes, so the embedding has to ignore both.
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

    def __init__(self, sizes: dict, num_identities: int, **kwargs) -> None:
        super().__init__(sizes, **kwargs)
        self.arcface = ArcFaceLoss(sizes["out_dim"], num_identities)
        self.val_auc = BinaryAUROC()

    def training_step(self, batch: dict, batch_idx: int):
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
