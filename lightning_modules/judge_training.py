"""What every synth judge's training shares: AdamW with warmup and cosine decay, channels-last, and the export.

Each judge's LightningModule (clip_training.py, identity_training.py, parser_training.py, attribute_training.py)
builds `self.net` from a dict of sizes and adds its own loss and validation metric.
"""

import math

import lightning as L
import torch

from networks.judges.synth_files import build_judge_net, save_judge


class JudgeTraining(L.LightningModule):
    kind: str  # clip, identity, parser or attributes

    def __init__(self, sizes: dict, lr: float = 2e-3, warmup_steps: int = 50) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = build_judge_net(self.kind, sizes).to(memory_format=torch.channels_last)

    @staticmethod
    def images(batch: dict) -> torch.Tensor:
        return batch["image"].contiguous(memory_format=torch.channels_last)

    def configure_optimizers(self):
        h = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=h.lr, weight_decay=0.05)
        max_steps = self.trainer.max_steps  # the trainer's, so that a resumed run may be given more steps

        def factor(step: int) -> float:
            if step < h.warmup_steps:
                return (step + 1) / h.warmup_steps
            return 0.5 * (1 + math.cos(math.pi * min(1.0, step / max_steps)))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def export(self, path: str) -> None:
        save_judge(self.net, path, self.kind, dict(self.hparams.sizes))
