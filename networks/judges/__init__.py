"""Frozen networks that judge edits: CLIP (direction), ArcFace (identity) and a face parser (segmentation)."""

from networks.judges.arcface import IdentityJudge
from networks.judges.bisenet import FaceParser
from networks.judges.clip import ClipJudge
from networks.judges.errors import JudgeLoadError

__all__ = ["ClipJudge", "FaceParser", "IdentityJudge", "JudgeLoadError"]
