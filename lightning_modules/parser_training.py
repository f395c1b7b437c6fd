"""The synth face parser: per-pixel cross-entropy against SynthFace's exact class maps.

Most classes own a few pixels of a 64x64 face (a mouth or the teeth about one, an eye about ten) against a
background of more than half the image, so plain cross-entropy learns the large classes and never predicts the
small ones. `class_weights` (see `balanced_class_weights`) weigh each class's pixels up as it is rarer.
"""

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassJaccardIndex

from lightning_modules.judge_training import JudgeTraining


def balanced_class_weights(masks: torch.Tensor, num_classes: int, power: float) -> list[float]:
    """(frequency of the class)^-power over the pixels of `masks`, scaled to mean 1; power 0 gives all ones."""
    counts = torch.bincount(masks.flatten().long(), minlength=num_classes).double()
    weights = (counts.sum() / counts.clamp(min=1)) ** power
    return (weights / weights.mean()).tolist()


class ParserTraining(JudgeTraining):
    kind = "parser"

    def __init__(self, *args, class_weights: list[float] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.val_miou = MulticlassJaccardIndex(self.hparams.sizes["num_classes"], average="macro")
        weights = torch.tensor(class_weights) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)

    def training_step(self, batch: dict, batch_idx: int):
        loss = F.cross_entropy(self.net(self.images(batch)), batch["mask"], weight=self.class_weights)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.val_miou(self.net(self.images(batch)).argmax(dim=1), batch["mask"])
        self.log("val/parser_miou", self.val_miou, prog_bar=True)
