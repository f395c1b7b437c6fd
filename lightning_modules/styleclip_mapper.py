"""The StyleCLIP latent mapper (Patashnik et al., ICCV 2021), carried over from StyleGAN's W+ to DiffAE's z_sem.

StyleCLIP's recipe, with its generator replaced by the shared backbone: the same residual MLP as ChatFace's mapper
(`z_edit = z + M(z)`), trained with Ranger on

    λ_clip (1 - cos(E_I(edited), E_T(target))) + λ_L2 ||z_edit - z||² + λ_id (1 - cos(R(source), R(edited)))

and decoded with the edited code at every step (no SMS). Its CLIP loss pulls the image towards the target text,
where ChatFace's directional loss pulls the change along the text's change. `whiten` gives it ChatFace's step-size
treatment on worlds whose mapper recipe uses it (configs/world/synth.yaml).
"""

import timm.optim
import torch
import torch.nn.functional as F

from diffusion import DiffAEPipeline
from lightning_modules.attached import WithFrozenParts
from losses import identity_loss
from networks.judges.loading import Judges
from networks.mapper import LatentMapper


class StyleCLIPMapping(WithFrozenParts):
    def __init__(self, attribute: str, source_text: str, target_text: str, latent_dim: int, latent_steps: int,
                 lr: float = 0.5, lambda_clip: float = 1.0, lambda_l2: float = 0.8, lambda_id: float = 0.1,
                 width: int = 512, depth: int = 4, whiten: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.mapper = LatentMapper(latent_dim, width, depth, whiten)

    def attach(self, pipe: DiffAEPipeline, judges: Judges) -> "StyleCLIPMapping":
        self.attach_frozen(pipe, judges)
        self.target_embedding = F.normalize(judges.clip.encode_text([self.hparams.target_text])[0].float(), dim=0)
        return self

    def _decode(self, z: torch.Tensor, x_T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_edit = z + self.mapper(z)
        return self.pipe.decode(x_T, z_edit, self.hparams.latent_steps), z_edit

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        h = self.hparams
        edited, z_edit = self._decode(batch["z"], batch["x_T"])
        image_embedding = self.judges.clip.encode_image(edited)
        losses = {
            "clip": (1 - image_embedding @ self.target_embedding.to(image_embedding)).mean(),
            "l2": (z_edit - batch["z"]).square().sum(dim=1).mean(),
            "identity": identity_loss(self.judges.identity, batch["recon"], edited),
        }
        loss = h.lambda_clip * losses["clip"] + h.lambda_l2 * losses["l2"] + h.lambda_id * losses["identity"]
        self.log_dict({f"train/{name}": value for name, value in losses.items()})
        self.log("train/loss", loss, prog_bar=True)
        return loss

    @torch.no_grad()
    def edit(self, batch: dict) -> torch.Tensor:
        return self._decode(batch["z"], batch["x_T"])[0]

    def configure_optimizers(self):
        return timm.optim.create_optimizer_v2(self.mapper, "lookahead_radam", lr=self.hparams.lr)
