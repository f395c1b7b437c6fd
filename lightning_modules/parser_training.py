"""The synth face parser: per-pixel cross-entropy against SynthFace's exact class maps."""

import torch.nn.functional as F
from torchmetrics.classification import MulticlassJaccardIndex

from lightning_modules.judge_training import JudgeTraining


class ParserTraining(JudgeTraining):
    kind = "parser"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.val_miou = MulticlassJaccardIndex(self.hparams.sizes["num_classes"], average="macro")

    def training_step(self, batch: dict, batch_idx: int):
        loss = F.cross_entropy(self.net(self.images(batch)), batch["mask"])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.val_miou(self.net(self.images(batch)).argmax(dim=1), batch["mask"])
        self.log("val/parser_miou", self.val_miou, prog_bar=True)
