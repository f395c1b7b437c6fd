"""The attribute judge: a multi-label classifier of SynthFace's 25 attributes (binary cross-entropy)."""

import torch.nn.functional as F

from lightning_modules.judge_training import JudgeTraining


class AttributeTraining(JudgeTraining):
    kind = "attributes"

    def training_step(self, batch: dict, batch_idx: int):
        loss = F.binary_cross_entropy_with_logits(self.net(self.images(batch)), batch["labels"])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        predicted = self.net(self.images(batch)) > 0
        self.log("val/attribute_acc", (predicted == batch["labels"].bool()).float().mean(), prog_bar=True)
