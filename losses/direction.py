"""The directional CLIP loss: the image should move in CLIP space the way the text moves (DiffusionCLIP, ChatFace)."""

import torch
import torch.nn.functional as F

from metrics.directional_clip import ClipJudge


def clip_direction_loss(clip: ClipJudge, source: torch.Tensor, edited: torch.Tensor,
                        text_direction: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - cos(E_I(edited) - E_I(source), text direction)."""
    image_direction = clip.encode_image(edited) - clip.encode_image(source).detach()
    return (1 - F.cosine_similarity(image_direction, text_direction[None].to(image_direction), dim=1)).mean()
