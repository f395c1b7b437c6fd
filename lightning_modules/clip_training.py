"""The synth CLIP: a small open_clip model trained on SynthFace (image, caption) pairs.

Two losses, as in UniCL (Yang et al., 2022), which mixes image-text and image-label data in one contrastive space:
- the CLIP loss on (image, caption) pairs; captions name some absent attributes too ("..., without a beard");
- a prompt loss: per attribute, the image must be closer to "a face with X" than to "a face without X" exactly when
  it has X (binary cross-entropy on the difference of the two scaled cosines), which makes the text side learn
  what every attribute word means even where captions rarely contrast it. With `prompt_pos_weight` (the training
  faces' negatives / positives per attribute) a rare attribute's faces count as much as the faces without it.
With `direction_weight` > 0 and counterfactual batches (each face also with one attribute flipped), a third:
- a direction loss: the change of the image embedding between a face and its flip must point along the flipped
  attribute's text direction (the catalog's source -> target texts averaged over the judge's templates, as the
  mapper's direction loss uses them) more than along any other attribute's: cross-entropy over the attributes.
  Contrastive training alone rarely has to tell a face from the same face with a smile, so it learnt directions
  that picked the right attribute for only 39 % of such pairs.
"""

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from chatface.catalog import default_catalog
from lightning_modules.judge_training import JudgeTraining
from metrics.changed_region import changed_pixels
from networks.judges.clip import template_directions
from networks.judges.synth_nets import tiny_clip_tokenizer
from synthface.attributes import ATTRIBUTES
from synthface.captions import NOUN_PHRASES

PROMPTS = [f"a face {word} {NOUN_PHRASES[name]}" for name in ATTRIBUTES for word in ("with", "without")]


def negatives_per_positive(labels: torch.Tensor) -> list[float]:
    """Per attribute (column of the 0/1 `labels`), faces without it / faces with it: BCE's balancing pos_weight."""
    positives = labels.double().sum(dim=0)
    return ((len(labels) - positives) / positives.clamp(min=1)).tolist()


class ClipTraining(JudgeTraining):
    kind = "clip"

    def __init__(self, *args, prompt_weight: float = 1.0, direction_weight: float = 0.0,
                 prompt_pos_weight: list[float] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        pos_weight = torch.tensor(prompt_pos_weight) if prompt_pos_weight else None
        self.register_buffer("prompt_pos_weight", pos_weight, persistent=False)
        self.tokenizer = tiny_clip_tokenizer(self.net.context_length)
        self.loss = ClipLoss()
        catalog = default_catalog()
        self.direction_texts = [(catalog[name].source, catalog[name].target) for name in ATTRIBUTES]

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.net.encode_text(self.tokenizer(texts).to(self.device), normalize=True)

    def _losses(self, batch: dict) -> dict[str, torch.Tensor]:
        image, flipped = self._encode_images(batch)
        text = self._encode_text(batch["caption"])
        scale = self.net.logit_scale.exp().clamp(max=100)
        cosine = (image @ self._encode_text(PROMPTS).T).view(len(image), len(ATTRIBUTES), 2)
        presence = scale * (cosine[..., 0] - cosine[..., 1])
        losses = {"contrastive": self.loss(image, text, scale),
                  "prompt": F.binary_cross_entropy_with_logits(presence, batch["labels"],
                                                               pos_weight=self.prompt_pos_weight)}
        if flipped is not None:
            losses["direction"] = self._direction_loss(image, flipped, batch, scale)
        return losses

    def _encode_images(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The faces' embeddings and, where the batch has them, their flips', from one pass: a BatchNorm tower
        then normalises both with the same statistics, so their difference is the flip's alone."""
        images = self.images(batch)
        if "flipped_image" not in batch:
            return self.net.encode_image(images, normalize=True), None
        both = torch.cat([images, batch["flipped_image"].contiguous(memory_format=torch.channels_last)])
        return self.net.encode_image(both, normalize=True).chunk(2)

    def _direction_loss(self, image: torch.Tensor, flipped: torch.Tensor, batch: dict,
                        scale: torch.Tensor) -> torch.Tensor:
        sign = batch["flipped_on"].float().mul(2).sub(1)[:, None]  # switching off walks the direction backwards
        change = F.normalize(sign * (flipped - image), dim=-1)
        # Not every flip shows: eyes behind sunglasses.
        visible = changed_pixels(batch["image"], batch["flipped_image"]).flatten(1).any(dim=1)
        directions = template_directions(self._encode_text, self.direction_texts)
        logits = scale * change[visible] @ directions.T
        return F.cross_entropy(logits, batch["flipped_attribute"][visible])

    def training_step(self, batch: dict, batch_idx: int):
        losses = self._losses(batch)
        loss = losses["contrastive"] + self.hparams.prompt_weight * losses["prompt"]
        loss = loss + self.hparams.direction_weight * losses.get("direction", 0.0)
        self.log_dict({f"train/{name}": value for name, value in losses.items()})
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log_dict({f"val/clip_{name}": value for name, value in self._losses(batch).items()}, prog_bar=True)
