"""Metrics that hold a judge network without making it part of their state."""

from typing import Any

from torchmetrics import Metric


def hold_judge(metric: Metric, name: str, judge: Any) -> None:
    """Keep `judge` out of the module tree: its weights are not metric state to move, save or sync."""
    metric.__dict__[name] = judge
