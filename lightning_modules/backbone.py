"""Pretraining the diffusion autoencoder: encoder and denoiser trained jointly on the denoising loss.

The checkpoint holds `model.*` and `ema_model.*` like the official DiffAE checkpoints; the EMA weights are the
ones to use. Validation measures semantic decoding (z_sem with a random x_T), the property editing relies on.

`attribute_weight` > 0 adds a linear probe from z_sem to the SynthFace attribute labels (binary cross-entropy).
Without it, a small backbone trained for two CPU hours learns colours and layout in z_sem but not a smile or
make-up (a mouth is a few pixels of denoising loss), so no z_sem edit could show them; the official DiffAE learns
them unsupervised from far more training. The probe lives here, not in the exported network.

`edit_weight` > 0 teaches the denoiser to follow z_sem where it disagrees with x_t. Each batch also holds every
face with one random attribute flipped (SynthFace renders the counterfactual); for half of the batch the denoiser
sees x_t noised from the face but the z_sem of the flipped face, and must predict the flipped face's x0 over the
pixels the flip changed. Editing needs exactly this: a mapper changes z_sem and keeps x_T. Denoising alone never
asks for it, since x_t and z_sem always agree, and the measured result was a decoder that ignored z_sem for a
smile even when decoding from random noise (see `chatface eval backbone`'s oracle edit). Each face's error is
averaged over its own changed pixels: pooled over the batch, a flip of hair colour (~550 pixels at 64 px)
outweighed a smile (~38) fifteen to one and make-up (~21) thirty to one. `edit_min_t` draws this loss's noise
levels from [edit_min_t, 1000) only: the early steps of a decode should draw what z_sem says, the late ones keep
what x_t already shows, as the SMS schedules assume.

`trajectory_weight` > 0 trains the denoiser on the walk an edit takes. One-step losses never see it, and the
oracle edit lost identity there (blond hair 0.52): x_t, inverted from the face, and z_sem disagree for many steps.
Each step inverts a few faces without gradient, decodes all `trajectory_steps` steps with the z_sem of their
flipped twins, gradients flowing through the walk, and takes the MSE against the flipped faces, plus each face's
error over the pixels its flip changed (averaged per face as above: over the whole image, a walk that leaves out a
smile costs a hundredth of one that leaves out blond hair). From stage 3 with a frozen encoder and no
edit-following loss the whole-image term alone raised the oracle's identity for blond hair from 0.52 to 0.67 and
psnr_T8 from 32 to 39 dB; with the edit-following loss on, the two pull against each other (weights/synth/backbone.md).

`encoder_warmup_steps` > 0 trains only the encoder and the probe for that many first steps (a new encoder under a
trained denoiser): trained jointly from the start, a fresh encoder still had not learnt a smile after 400 steps,
since the denoising loss pulls it towards what the denoiser already reads.
"""

import copy

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from diffusion import DDIMScheduler, DiffAEPipeline
from lightning_modules.ema import update_ema
from metrics.changed_region import changed_pixels, changed_region_mse
from metrics.psnr import psnr
from networks.diffae import DiffAE, preset
from synthface import ATTRIBUTES


class BackbonePretraining(L.LightningModule):
    def __init__(self, preset_name: str = "synth64", prediction: str = "v", lr: float = 3e-4,
                 warmup_steps: int = 200, ema_decay: float = 0.999, channels_last: bool = True,
                 semantic_steps: int = 20, attribute_weight: float = 0.0, edit_weight: float = 0.0,
                 encoder_lr_scale: float = 1.0, encoder_warmup_steps: int = 0, trajectory_weight: float = 0.0,
                 trajectory_faces: int = 4, trajectory_steps: int = 8, edit_min_t: int = 0):
        super().__init__()
        if encoder_warmup_steps and not attribute_weight:
            raise ValueError("encoder_warmup_steps trains the encoder on the attribute probe: set attribute_weight > 0")
        self.save_hyperparameters()
        self.scheduler = DDIMScheduler(prediction=prediction)
        if not 0 <= edit_min_t < self.scheduler.num_train_steps:
            raise ValueError(f"edit_min_t={edit_min_t}: the edit-following loss's lowest noise level must be in "
                             f"[0, {self.scheduler.num_train_steps})")
        self.model = DiffAE(preset(preset_name))
        self.ema_model = copy.deepcopy(self.model).requires_grad_(False)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
            self.ema_model.to(memory_format=torch.channels_last)
        self.attribute_probe = nn.Linear(self.model.arch.z_dim, len(ATTRIBUTES)) if attribute_weight > 0 else None

    def start_from(self, trained: DiffAE, with_encoder: bool = True) -> None:
        """Fine-tune: both the trained and the EMA weights begin as `trained`'s; without the encoder, only the
        denoiser's (a new encoder design learns from scratch under a trained denoiser)."""
        state = trained.state_dict()
        if not with_encoder:
            state = {k: v for k, v in state.items() if not k.startswith("encoder.")}
            state |= {k: v for k, v in self.model.state_dict().items() if k.startswith("encoder.")}
        self.model.load_state_dict(state)
        self.ema_model.load_state_dict(state)

    @property
    def uses_counterfactual_pairs(self) -> bool:
        """Whether the batches must hold each face with one attribute flipped (`flipped_image`)."""
        return self.hparams.edit_weight > 0 or self.hparams.trajectory_weight > 0

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.hparams.channels_last else x

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.global_step < self.hparams.encoder_warmup_steps:
            return self._encoder_warmup_step(batch)
        x0 = self._prepare(batch["image"])
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.scheduler.num_train_steps, (x0.shape[0],), device=x0.device)
        x_t = self.scheduler.add_noise(x0, noise, t)
        z_sem = self.model.encode(x0)
        out = self.model(x_t, t, z_sem)
        loss = F.mse_loss(out.float(), self.scheduler.target(x0, noise, t))
        self.log("train/denoising", loss)
        if self.attribute_probe is not None:
            loss = loss + self.hparams.attribute_weight * self._probe_loss(z_sem, batch["labels"])
        flipped = self._prepare(batch["flipped_image"]) if self.uses_counterfactual_pairs else None
        if self.hparams.edit_weight > 0:
            edit = self._edit_following_loss(x0, flipped)
            self.log("train/edit_following", edit)
            loss = loss + self.hparams.edit_weight * edit
        if self.hparams.trajectory_weight > 0:
            walk = self._trajectory_edit_loss(x0, flipped)
            self.log("train/trajectory_edit", walk)
            loss = loss + self.hparams.trajectory_weight * walk
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _encoder_warmup_step(self, batch: dict) -> torch.Tensor:
        """Only the encoder and the probe learn: z_sem first becomes a classifier of the labels."""
        probe = self._probe_loss(self.model.encode(self._prepare(batch["image"])), batch["labels"])
        self.log("train/loss", probe, prog_bar=True)
        return probe

    def _probe_loss(self, z_sem: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        probe = F.binary_cross_entropy_with_logits(self.attribute_probe(z_sem.float()), labels.float())
        self.log("train/attribute_probe", probe)
        return probe

    def _edit_following_loss(self, x0: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        """Mean squared x0 error, over the pixels the flip changed, when x_t shows the face and z_sem the flip."""
        half = max(1, x0.shape[0] // 2)
        x0, flipped = x0[:half], flipped[:half]
        t = torch.randint(self.hparams.edit_min_t, self.scheduler.num_train_steps, (half,), device=x0.device)
        x_t = self.scheduler.add_noise(x0, torch.randn_like(x0), t)
        out = self.model(x_t, t, self.model.encode(flipped))
        predicted = self.scheduler.predicted_x0(out.float(), x_t.float(), t)
        return _flip_error(predicted, x0, flipped)

    def _trajectory_edit_loss(self, x0: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        """Squared error against the flipped faces of the whole decode of the faces' inverted x_T under the flipped
        z_sem: over the image (keep the face) plus, per face, over the pixels the flip changed (draw the attribute)."""
        faces, steps = self.hparams.trajectory_faces, self.hparams.trajectory_steps
        x0, flipped = x0[:faces], flipped[:faces]
        pipe = DiffAEPipeline(self.model, self.scheduler)
        with torch.no_grad():
            x_T = pipe.invert(x0, self._editing_z_sem(x0), steps, refine=1)
            z_flipped = self._editing_z_sem(flipped)
        decoded, target = pipe.decode(x_T, z_flipped, steps).float(), flipped.float()
        return F.mse_loss(decoded, target) + _flip_error(decoded, x0, flipped)

    def _editing_z_sem(self, x: torch.Tensor) -> torch.Tensor:
        """z_sem as editing computes it: the encoder's BatchNorm on its running statistics, not on this batch's
        few faces (a walk trained on batch-statistics z_sem is not the walk an edit takes)."""
        encoder, training = self.model.encoder, self.model.encoder.training
        encoder.eval()
        try:
            return self.model.encode(x)
        finally:
            encoder.train(training)

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        if self.hparams.encoder_lr_scale == 0:  # a frozen encoder keeps its BatchNorm statistics too
            self.model.encoder.eval()

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        update_ema(self.ema_model, self.model, self.global_step, self.hparams.ema_decay)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        x0 = self._prepare(batch["image"])
        pipe = DiffAEPipeline(self.ema_model, self.scheduler)
        z_sem = pipe.encode(x0)
        generator = torch.Generator(device=x0.device).manual_seed(batch_idx)
        x_T = torch.randn(x0.shape, generator=generator, device=x0.device)
        semantic = pipe.decode(x_T, z_sem, self.hparams.semantic_steps)
        self.log("val/psnr_semantic", psnr(semantic, x0).mean(), prog_bar=True)

    def configure_optimizers(self):
        h = self.hparams
        denoiser = [p for name, p in self.model.named_parameters() if not name.startswith("encoder.")]
        probe = list(self.attribute_probe.parameters()) if self.attribute_probe else []
        semantic = [*self.model.encoder.parameters(), *probe]
        optimizer = torch.optim.AdamW([{"params": denoiser, "lr": h.lr},
                                       {"params": semantic, "lr": h.lr * h.encoder_lr_scale}], weight_decay=0.0)
        warmup = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / h.warmup_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}


def _flip_error(predicted: torch.Tensor, x0: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
    """Squared error against the flipped faces over the pixels the flip changed, averaged per face (see above)."""
    return changed_region_mse(predicted, flipped.float(), changed_pixels(x0, flipped), per_face=True)
