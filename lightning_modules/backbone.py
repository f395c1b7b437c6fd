"""Pretraining the diffusion autoencoder: encoder and denoiser trained jointly on the denoising loss.

The checkpoint holds `model.*` and `ema_model.*` like the official DiffAE checkpoints; the EMA weights are the
ones to use. Validation measures semantic decoding (z_sem with a random x_T), the property editing relies on.
"""

import copy

import lightning as L
import torch
import torch.nn.functional as F

from diffusion import DDIMScheduler, DiffAEPipeline
from lightning_modules.ema import update_ema
from metrics.psnr import psnr
from networks.diffae import DiffAE, preset


class BackbonePretraining(L.LightningModule):
    def __init__(self, preset_name: str = "synth64", prediction: str = "v", lr: float = 3e-4,
                 warmup_steps: int = 200, ema_decay: float = 0.999, channels_last: bool = True,
                 semantic_steps: int = 20):
        super().__init__()
        self.save_hyperparameters()
        self.model = DiffAE(preset(preset_name))
        self.ema_model = copy.deepcopy(self.model).requires_grad_(False)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
            self.ema_model.to(memory_format=torch.channels_last)
        self.scheduler = DDIMScheduler(prediction=prediction)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.hparams.channels_last else x

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x0 = self._prepare(batch["image"])
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.scheduler.num_train_steps, (x0.shape[0],), device=x0.device)
        x_t = self.scheduler.add_noise(x0, noise, t)
        out = self.model(x_t, t, self.model.encode(x0))
        loss = F.mse_loss(out.float(), self.scheduler.target(x0, noise, t))
        self.log("train/loss", loss, prog_bar=True)
        return loss

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
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.hparams.lr, weight_decay=0.0)
        warmup = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / self.hparams.warmup_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}
