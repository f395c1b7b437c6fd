"""The Asyrp baseline: a learnt shift of the denoiser's bottleneck (h-space), applied asymmetrically.

Asyrp (Kwon, Jeong and Uh, ICLR 2023, "Diffusion models already have a semantic latent space";
kwonminki/Asyrp_official) edits a real image without touching the diffusion model:

1. Invert the image with deterministic DDIM to x_T (`n_inv_step` steps, here `inv_steps`).
2. Generate back from x_T. Inside the editing interval t >= t_edit a small network adds
   Δh_t = f(h_t, t) to the UNet's bottleneck h_t (the middle block's output, "h-space"); f is the official
   "DeltaBlock": 1x1 conv, plus a projection of the UNet's own time embedding, GroupNorm, SiLU, 1x1 conv.
3. The reverse step there is ASYMMETRIC: with ε̃ the noise predicted from the shifted h and ε the unshifted one,
   x_{t-1} = sqrt(ᾱ_{t-1}) P_t(ε̃) + sqrt(1 - ᾱ_{t-1}) D_t(ε): the predicted clean image P_t is edited, the
   direction D_t back to x_{t-1} is not (the paper shows that shifting both nearly cancels out). Below t_edit
   the steps are plain DDIM, so the fine detail comes back from the original x_T.
4. Training goes one timestep at a time (the gradient of one step, never through the chain), on the edited
   trajectory, with one optimizer update per timestep:
       L_t = λ_CLIP · -log((2 - L_dir)/2) + λ_recon · cos(E_T(source), E_T(target)) · |P_t^edit - P_t^source|_1
   where P_t^source is the predicted clean image of the plain DDIM trajectory from the same x_T, L_dir the
   directional CLIP loss (1 - cos of image and text directions). The -log((2 - L)/2) transform and the text-cosine
   factor on the L1 term are the official code's (`diffusion_latent.py`); ID loss is off, as in the paper.

Here the denoiser is DiffAE's UNet, conditioned on z_sem as well: every pass keeps the face's own z_sem
(batch["z"]), frozen. The backbone and the judges stay frozen and outside the module; only the DeltaBlock learns,
so `state_dict()` is exactly the trained state. The model may predict eps or v: `scheduler.split` handles both.

Faithful to the repo's training script (`script_train.sh`): SGD with lr 0.5 (no momentum, no weight decay),
StepLR x0.1 every 3 passes over the training images, t_edit 500, λ_CLIP 1.0, λ_recon 3.0, DDIM over t in 0..999
(t_0 = 999), DeltaBlock with the default (random) PyTorch initialisation. Not zero-initialised: then P_t^edit
would equal P_t^source exactly at the first update, the CLIP image direction would be the zero vector, and the
cosine's gradient there is ~1/eps (1e8): SGD would blow the DeltaBlock up. Lightning counts every optimizer update
as a trainer step, so one batch costs as many trainer steps as its walk has timesteps in [t_edit, 999]
(20 at `train_steps` = 40, t_edit = 500); the walk stops where the trainer's max_steps runs out.

Differences from the official code, and what was scaled down for CPU:
- step counts: inversion, training walk and test generation all use 40 steps (main.py's n_inv_step / n_test_step
  defaults and the released checkpoints' ninv40_ngen40; script_train.sh used 50 / 50 / 100). Far fewer training
  updates (the trainer's `steps`, e.g. 30 = one and a half batches) than the script's 100 images x 5 passes x 25
  timesteps; a batch holds several faces instead of one;
- the CLIP direction compares P_t^edit with P_t^source, as the paper's loss writes it; the official code compares
  P_t^edit with the real input image x_0;
- no "quality boosting" (stochastic DDPM noise below t_boost = 200): `edit` stays deterministic and with Δh = 0
  gives back exactly the plain inversion + decoding;
- no automatic choice of t_edit / t_boost from LPIPS tables: t_edit is a setting;
- predicted x_0 are clipped to [-1, 1] in the walk, as this repository's DDIM decoding does (the official walk
  does not clip); the losses see the unclipped P_t, as in the official code.
"""

import torch
import torch.nn.functional as F
from torch import nn

from diffusion import DiffAEPipeline
from diffusion.inversion_cache import InversionCachingPipeline
from lightning_modules.attached import WithFrozenParts
from losses import clip_direction_loss
from networks.judges.loading import Judges


class DeltaBlock(nn.Module):
    """Δh = f(h, t) on the bottleneck: 1x1 conv, + projected time embedding, GroupNorm, SiLU, 1x1 conv."""

    def __init__(self, channels: int, embed_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1)
        self.temb_proj = nn.Linear(embed_channels, channels)
        self.norm = nn.GroupNorm(min(32, channels), channels)
        self.conv2 = nn.Conv2d(channels, channels, 1)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(h) + self.temb_proj(F.silu(emb))[..., None, None]
        return self.conv2(F.silu(self.norm(h)))


class Asyrp(WithFrozenParts):
    def __init__(self, attribute: str, source_text: str, target_text: str, latent_dim: int, lr: float = 0.5,
                 lr_step_epochs: int = 3, lr_gamma: float = 0.1, t_edit: int = 500, inv_steps: int = 40,
                 train_steps: int = 40, test_steps: int = 40, lambda_clip: float = 1.0,
                 lambda_l1: float = 3.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False  # one optimizer update per timestep of the walk, as the repo does
        self.delta_h: DeltaBlock | None = None  # its size is the backbone's: made in `attach`

    # -- setup -----------------------------------------------------------------------------------------------
    def attach(self, pipe: DiffAEPipeline, judges: Judges) -> "Asyrp":
        self.attach_frozen(InversionCachingPipeline.around(pipe), judges)  # each face inverted once, as the repo does
        h, arch = self.hparams, pipe.model.arch
        if not 0 <= h.t_edit < pipe.scheduler.num_train_steps:
            raise ValueError(f"t_edit must be in 0..{pipe.scheduler.num_train_steps - 1}, got {h.t_edit}")
        if self.delta_h is None:
            channels = arch.model_channels * arch.channel_mult[-1]  # the middle block's width
            self.delta_h = DeltaBlock(channels, arch.embed_channels).to(pipe.device)
        clip = judges.clip
        self.text_direction = clip.text_direction(h.source_text, h.target_text)
        # the official code weighs the L1 term by the CLIP similarity of the two (template-free) texts
        self.text_similarity = (clip.encode_text([h.source_text]) * clip.encode_text([h.target_text])).sum().item()
        return self

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.delta_h.parameters(), lr=self.hparams.lr, weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, self.hparams.lr_step_epochs, self.hparams.lr_gamma)
        return [optimizer], [scheduler]

    # -- the asymmetric reverse process ----------------------------------------------------------------------
    def _timestep_pairs(self, steps: int) -> list[tuple[int, int | None]]:
        """(t, t_prev) of every generation step, noisiest first; t_prev None is the clean image."""
        timesteps = self.pipe.scheduler.spaced(steps)[::-1]
        return list(zip(timesteps, [*timesteps[1:], None]))

    def _denoise(self, x: torch.Tensor, t: int, z: torch.Tensor, h_shift: torch.Tensor | None = None):
        ts = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        with self.pipe._autocast(x.device):
            return self.pipe.model(x, ts, z, h_shift=h_shift).float()

    def _denoise_with_bottleneck(self, x: torch.Tensor, t: int, z: torch.Tensor):
        """The unshifted output, the bottleneck h and the time embedding the middle block saw."""
        seen = {}
        hook = self.pipe.model.middle_block.register_forward_hook(
            lambda module, inputs, output: seen.update(h=output, emb=inputs[1]))  # called as (h, emb, z_sem)
        try:
            out = self._denoise(x, t, z)
        finally:
            hook.remove()
        return out, seen["h"].float(), seen["emb"].float()

    def asymmetric_step(self, x: torch.Tensor, t: int, t_prev: int | None, z: torch.Tensor,
                        strength: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """One editing step from t to t_prev: (x at t_prev, the edited P_t unclipped).

        P_t comes from the output with h + strength·Δh, D_t from the unshifted output; the gradient reaches only
        the DeltaBlock. With Δh = 0 this is exactly the pipeline's DDIM step (clipped x0)."""
        scheduler = self.pipe.scheduler
        with torch.no_grad():
            out, h, emb = self._denoise_with_bottleneck(x, t, z)
        shift = strength * self.delta_h(h, emb)
        x0_edit, _ = scheduler.split(self._denoise(x, t, z, h_shift=shift), x, t)
        x0_plain, _ = scheduler.split(out, x, t)
        a = scheduler.alpha(t)
        eps_plain = (x - a**0.5 * x0_plain.clamp(-1, 1)) / (1 - a) ** 0.5  # D_t, as the clipped DDIM step has it
        return scheduler.move(x0_edit.clamp(-1, 1), eps_plain, scheduler.alpha(t_prev)), x0_edit

    def _plain_step(self, x: torch.Tensor, t: int, t_prev: int | None, z: torch.Tensor):
        """Plain DDIM from t to t_prev: (x at t_prev, P_t unclipped)."""
        out = self._denoise(x, t, z)
        x_prev, _ = self.pipe.scheduler.step(out, t, t_prev, x)
        return x_prev, self.pipe.scheduler.split(out, x, t)[0]

    def _invert(self, batch: dict) -> torch.Tensor:
        return self.pipe.invert(batch["image"], batch["z"], self.hparams.inv_steps)

    @torch.no_grad()
    def edit(self, batch: dict, strength: float = 1.0) -> torch.Tensor:
        """Edited images in [-1, 1]: invert, then generate with the asymmetric step in [t_edit, T] (deterministic).
        `strength` scales Δh (the repo's hs_coeff_delta_h); 0 gives back the plain reconstruction."""
        h, z = self.hparams, batch["z"]
        x = self._invert(batch)
        for t, t_prev in self._timestep_pairs(h.test_steps):
            if t >= h.t_edit:
                x, _ = self.asymmetric_step(x, t, t_prev, z, strength)
            else:
                x, _ = self._plain_step(x, t, t_prev, z)
        return x

    # -- training ----------------------------------------------------------------------------------------------
    def _losses(self, x0_source: torch.Tensor, x0_edit: torch.Tensor) -> dict[str, torch.Tensor]:
        direction = clip_direction_loss(self.judges.clip, x0_source, x0_edit, self.text_direction)
        return {"clip": -torch.log1p(-direction / 2),  # the official -log((2 - L_dir) / 2)
                "l1": F.l1_loss(x0_edit, x0_source)}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Walk the editing interval of one batch, one SGD update per timestep (the repo's training loop).

        The walk stops early when the trainer's max_steps is reached, so the budget is exactly max_steps updates."""
        h, z = self.hparams, batch["z"]
        optimizer = self.optimizers()
        with torch.no_grad():
            x_source = x_edit = self._invert(batch)
        history: dict[str, list[float]] = {}
        interval = [(t, t_prev) for t, t_prev in self._timestep_pairs(h.train_steps) if t >= h.t_edit]
        for t, t_prev in interval:
            with torch.no_grad():
                x_source, x0_source = self._plain_step(x_source, t, t_prev, z)
            x_next, x0_edit = self.asymmetric_step(x_edit, t, t_prev, z)
            terms = self._losses(x0_source, x0_edit)
            loss = h.lambda_clip * terms["clip"] + h.lambda_l1 * self.text_similarity * terms["l1"]
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            x_edit = x_next.detach()
            for name, value in {**terms, "loss": loss}.items():
                history.setdefault(name, []).append(value.item())
            if 0 < self.trainer.max_steps <= self.trainer.global_step:
                break
        means = {name: sum(values) / len(values) for name, values in history.items()}
        batch_size = len(z)
        self.log_dict({f"train/{name}": means[name] for name in terms}, batch_size=batch_size)
        self.log("train/loss", means["loss"], prog_bar=True, batch_size=batch_size)
        return torch.tensor(means["loss"])

    def on_train_epoch_end(self) -> None:
        self.lr_schedulers().step()  # the repo steps StepLR once per pass over the training images
