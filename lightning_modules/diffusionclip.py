"""The DiffusionCLIP baseline (Kim, Kwon and Ye, CVPR 2022) on DiffAE's denoiser.

The method: edit an image by fine-tuning the diffusion model itself, not a latent.
1. Partial inversion: deterministic DDIM (eta = 0) runs the image upwards from t = 0 to t_0 with the FROZEN model,
   `inv_steps` steps, giving x_t0. (The official repo precomputes these latents once per training image.)
2. Fine-tuning: a COPY of the denoiser generates from x_t0 back to an image in `train_steps` DDIM steps, and the
   copy is trained so that the result moves in CLIP space the way the text moves, "face" -> "smiling face":
       loss = lambda_clip * -log((2 - L_dir) / 2) + lambda_l1 * |x0 - x_gen|_1 + lambda_id * L_id(x0, x_gen)
   with L_dir = 1 - cos(E_I(x_gen) - E_I(x0), text direction), L_id = 1 - cos of ArcFace embeddings and x0 the
   input image (not its reconstruction: the repo compares with the real image). Gradients go through the whole
   generation chain (`clip_finetune`, the mode of the README's face commands); `use_checkpoint` recomputes each
   step in the backward pass when memory is short. The repo's `clip_finetune_eff` instead steps the optimizer
   after every generation step on that step's predicted x0 with the chain detached; it is not used here (and in
   the repo its identity loss is taken on the detached x_t, so it contributes no gradient).
3. Editing: invert to t_0 with the frozen model (`inv_steps`), generate with the fine-tuned copy (`test_steps`).

Here the denoiser is DiffAE's UNet, which is also conditioned on the face's semantic code z_sem: every model call
(inversion, training generation, editing) gets the face's own z_sem (batch["z"]), frozen. Only the UNet is copied;
DiffAE's semantic encoder is not (z_sem comes with the batch), so the checkpoint holds exactly the trained UNet.

Recipe taken from gwang-kim/DiffusionCLIP (diffusionclip.py `clip_finetune`, main.py, the README's CelebA-HQ
command): t_0 = 500, 40 inversion steps, 6 training steps, 40 test steps, Adam (weight decay 0) at lr 8e-6 with
StepLR(gamma = 1.3) stepped after every pass over the training images (the repo *raises* the lr each pass),
lambda_clip = 3, lambda_l1 = 1, lambda_id = 0 (main.py's defaults are l1 = id = 0, t_0 = 400, lr = 2e-6; the
README's face command sets l1 = 1, t_0 = 500, lr = 8e-6). Faithful details: plain DDIM inversion (no fixed-point
refinement), dropout active while fine-tuning (the repo calls model.train()), the -log form of the CLIP loss.

Scaled down for the CPU leaderboard: the number of fine-tuning images, not the recipe. The repo fine-tunes with
batch 1 on 50 images for n_iter = 5 passes (250 optimizer steps, 250 images); the leaderboard harness gives
`steps` x `batch_size` (30 x 4 = 120 images, about two passes over 64 cached faces). Differences that come from
our pipeline: DDIM predicts x0 clamped to [-1, 1] at every step (as DiffAE's sampler does; the repo does not
clamp), and the clean image counts as the level below t = 0, so a T-step walk makes T model calls.
"""

import copy

import torch

from diffusion import DiffAEPipeline
from diffusion.inversion_cache import InversionCachingPipeline
from lightning_modules.attached import WithFrozenParts
from losses import clip_direction_loss, identity_loss
from networks.judges.loading import Judges


class DiffusionCLIP(WithFrozenParts):
    def __init__(self, attribute: str, source_text: str, target_text: str, latent_dim: int, lr: float = 8e-6,
                 sch_gamma: float = 1.3, t_0: int = 500, inv_steps: int = 40, train_steps: int = 6,
                 test_steps: int = 40, lambda_clip: float = 3.0, lambda_l1: float = 1.0, lambda_id: float = 0.0,
                 grad_checkpoint: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()

    def attach(self, pipe: DiffAEPipeline, judges: Judges) -> "DiffusionCLIP":
        """Keep the frozen backbone and judges out of the module tree; make the trainable copy of the UNet. The frozen
        model inverts each face once (the repo precomputes the training latents)."""
        self.attach_frozen(InversionCachingPipeline.around(pipe), judges)
        denoiser = copy.deepcopy(pipe.model)
        denoiser.encoder = None  # z_sem comes with the batch: the copy only denoises, and only it is checkpointed
        self.denoiser = denoiser.requires_grad_(True).train()  # the repo fine-tunes in train mode (dropout on)
        self.denoiser.register_state_dict_post_hook(_contiguous)  # a channels_last copy still saves as safetensors
        self.tuned = DiffAEPipeline(self.denoiser, pipe.scheduler, pipe.bf16)
        h = self.hparams
        self.text_direction = judges.clip.text_direction(h.source_text, h.target_text)
        return self

    # -- the three walks -------------------------------------------------------------------------------------
    @torch.no_grad()
    def invert(self, image: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x_t0: deterministic DDIM inversion of the image to t_0 with the frozen model."""
        h = self.hparams
        return self.pipe.invert(image, z, h.inv_steps, t_max=h.t_0)

    def generate(self, x_t0: torch.Tensor, z: torch.Tensor, steps: int, use_checkpoint: bool = False) -> torch.Tensor:
        """DDIM generation from x_t0 down to the image with the fine-tuned copy."""
        return self.tuned.decode(x_t0, z, steps, use_checkpoint=use_checkpoint, t_max=self.hparams.t_0)

    @torch.no_grad()
    def edit(self, batch: dict) -> torch.Tensor:
        """The edited images, in [-1, 1]: invert with the frozen model, generate with the fine-tuned one."""
        was_training = self.denoiser.training
        self.denoiser.eval()  # no dropout: the same input gives the same edit
        try:
            z = batch["z"]
            return self.generate(self.invert(batch["image"], z), z, self.hparams.test_steps)
        finally:
            self.denoiser.train(was_training)

    # -- training ----------------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        h = self.hparams
        source, z = batch["image"], batch["z"]
        x_t0 = self.invert(source, z)
        edited = self.generate(x_t0, z, h.train_steps, use_checkpoint=h.grad_checkpoint)
        direction = clip_direction_loss(self.judges.clip, source, edited, self.text_direction)
        losses = {
            "clip": -torch.log((2 - direction) / 2),  # the repo's form of the directional loss
            "l1": (edited - source).abs().mean(),
            "id": identity_loss(self.judges.identity, source, edited),
        }
        loss = h.lambda_clip * losses["clip"] + h.lambda_l1 * losses["l1"] + h.lambda_id * losses["id"]
        self.log_dict({f"train/{name}": value for name, value in losses.items()}, batch_size=len(z))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(z))
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.denoiser.parameters(), lr=self.hparams.lr, weight_decay=0.0)
        # The repo multiplies the lr by sch_gamma after every pass over its training images.
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=self.hparams.sch_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def _contiguous(module: torch.nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """Make the state_dict's tensors contiguous (safetensors refuses channels_last ones); same values. Parameters
    themselves (state_dict(keep_vars=True)) are left as they are."""
    for key, value in state_dict.items():
        if key.startswith(prefix) and not isinstance(value, torch.nn.Parameter):
            state_dict[key] = value.contiguous()
