"""The synth CLIP: a small open_clip model trained on SynthFace (image, caption) pairs.

Two losses, as in UniCL (Yang et al., 2022), which mixes image-text and image-label data in one contrastive space:
- the CLIP loss on (image, caption) pairs; captions name some absent attributes too ("..., without a beard");
- a prompt loss: per attribute, the image must be closer to "a face with X" than to "a face without X" exactly when
  it has X (binary cross-entropy on the difference of the two scaled cosines), which makes the text side learn
  what every attribute word means even where captions rarely contrast it.
"""

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from lightning_modules.judge_training import JudgeTraining
from networks.judges.synth_nets import tiny_clip_tokenizer
from synthface.attributes import ATTRIBUTES
from synthface.captions import NOUN_PHRASES

PROMPTS = [f"a face {word} {NOUN_PHRASES[name]}" for name in ATTRIBUTES for word in ("with", "without")]


class ClipTraining(JudgeTraining):
    kind = "clip"

    def __init__(self, *args, prompt_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tokenizer = tiny_clip_tokenizer(self.net.context_length)
        self.loss = ClipLoss()

    def _losses(self, batch: dict) -> dict[str, torch.Tensor]:
        image = self.net.encode_image(self.images(batch), normalize=True)
        text = self.net.encode_text(self.tokenizer(batch["caption"]).to(self.device), normalize=True)
        scale = self.net.logit_scale.exp().clamp(max=100)
        prompts = self.net.encode_text(self.tokenizer(PROMPTS).to(self.device), normalize=True)
        cosine = (image @ prompts.T).view(len(image), len(ATTRIBUTES), 2)
        presence = scale * (cosine[..., 0] - cosine[..., 1])
        return {"contrastive": self.loss(image, text, scale),
                "prompt": F.binary_cross_entropy_with_logits(presence, batch["labels"])}

    def training_step(self, batch: dict, batch_idx: int):
        losses = self._losses(batch)
        loss = losses["contrastive"] + self.hparams.prompt_weight * losses["prompt"]
        self.log_dict({f"train/{name}": value for name, value in losses.items()})
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log_dict({f"val/clip_{name}": value for name, value in self._losses(batch).items()}, prog_bar=True)
