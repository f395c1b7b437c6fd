"""Training one attribute's ChatFace mapper: z_edit = z + M(z), decoded under SMS, judged by CLIP and ArcFace.

The frozen backbone and judges are attached with `attach` and are not part of the module (or its checkpoint):
only the mapper learns. Training and validation read cached latents {z, x_T, recon, labels}; the losses compare
the edit with the reconstruction from the same x_T, so they measure the edit, not the inversion error.
"""

import timm.optim
import torch
from torchmetrics import MetricCollection

from diffusion import DiffAEPipeline
from diffusion.sms import sms_conditions
from lightning_modules.attached import WithFrozenParts
from losses import CLIP_LOSSES, identity_loss, preservation_loss
from metrics.edit_metrics import edit_metrics, edit_scores
from networks.judges.loading import Judges
from networks.mapper import LatentMapper


class AttributeMapping(WithFrozenParts):
    def __init__(self, attribute: str, source_text: str, target_text: str, latent_dim: int, width: int = 512,
                 depth: int = 4, lr: float = 0.2, lambda_dir: float = 2.0, lambda_id: float = 0.5,
                 lambda_pre: float = 0.2, sms: str = "linear", sms_param: float = 0.5, steps: int = 8,
                 grad_checkpoint: bool = False, whiten: bool = False, direction_loss: str = "cosine",
                 direction_target: float | None = None, lr_schedule: str = "constant") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.mapper = LatentMapper(latent_dim, width, depth, whiten)

    def attach(self, pipe: DiffAEPipeline, judges: Judges) -> "AttributeMapping":
        self.attach_frozen(pipe, judges)
        h = self.hparams
        self.text_direction = judges.clip.text_direction(h.source_text, h.target_text)
        self.val_metrics = MetricCollection(edit_metrics(judges, h.attribute, h.source_text, h.target_text))
        return self

    def edit(self, z: torch.Tensor, x_T: torch.Tensor, strength: float = 1.0,
             use_checkpoint: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(edited image, z_edit) at `strength`, decoded with the training T under SMS."""
        h = self.hparams
        z_edit = z + strength * self.mapper(z)
        conditions = sms_conditions(z, z_edit, h.sms, h.steps, h.sms_param)
        return self.pipe.decode(x_T, conditions, h.steps, use_checkpoint=use_checkpoint), z_edit

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        h = self.hparams
        source, z = batch["recon"], batch["z"]
        edited, z_edit = self.edit(z, batch["x_T"], use_checkpoint=h.grad_checkpoint)
        # A cosine has no distance to reach: direction_target is the projection's alone, as sms_param is step SMS's.
        target = {"target": h.direction_target} if h.direction_loss == "projection" else {}
        losses = {
            "direction": CLIP_LOSSES[h.direction_loss](self.judges.clip, source, edited, self.text_direction, **target),
            "identity": identity_loss(self.judges.identity, source, edited),
            "preservation": preservation_loss(source, edited, z, z_edit),
        }
        loss = h.lambda_dir * losses["direction"] + h.lambda_id * losses["identity"] + h.lambda_pre * losses[
            "preservation"]
        self.log_dict({f"train/{name}": value for name, value in losses.items()})
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        edited, _ = self.edit(batch["z"], batch["x_T"])
        self.val_metrics.update(batch["recon"], edited, source_labels=batch["labels"])

    def on_validation_epoch_end(self) -> None:
        self.log_dict({f"val/{name}": value for name, value in edit_scores(self.val_metrics).items()}, prog_bar=True)
        self.val_metrics.reset()

    def configure_optimizers(self):
        # Ranger = RAdam + Lookahead, the optimizer of StyleCLIP's and ChatFace's mappers.
        optimizer = timm.optim.create_optimizer_v2(self.mapper, "lookahead_radam", lr=self.hparams.lr)
        if self.hparams.lr_schedule == "constant":
            return optimizer
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.trainer.max_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
