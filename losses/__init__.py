"""The losses of ChatFace's mapper (and of the baselines): CLIP direction, identity, preservation."""

from losses.direction import CLIP_LOSSES, clip_direction_loss, clip_projection_loss
from losses.identity import identity_loss
from losses.preservation import preservation_loss

__all__ = ["CLIP_LOSSES", "clip_direction_loss", "clip_projection_loss", "identity_loss", "preservation_loss"]
