"""SynthFace attribute metrics: did the edit switch the asked attribute on, and did it switch anything else?"""

from typing import Any, Protocol

import torch
from torch import Tensor
from torchmetrics import Metric

from metrics.judged import hold_judge

from synthface.attributes import ATTRIBUTE_INDEX, ATTRIBUTES, GROUP_OF, GROUPS, check_name

PRESENT = 0.5  # a probability (or 0/1 label) at or above this means the face has the attribute


class AttributeJudge(Protocol):
    def predict(self, images: Tensor) -> Tensor: ...  # (B,3,H,W) in [-1, 1] -> (B,A) probabilities, ATTRIBUTES order


class AttributeEditAccuracy(Metric):
    """Among faces whose source lacks the attribute, the share whose edit has it.

    "Lacks" is the judge's verdict on the source, or the ground truth when `update` gets `source_labels`.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, attribute_judge: AttributeJudge, attribute: str, **kwargs: Any):
        super().__init__(**kwargs)
        hold_judge(self, "judge", attribute_judge)
        self.index = ATTRIBUTE_INDEX[check_name(attribute)]
        self.add_state("gained", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("lacking", torch.tensor(0), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, source: Tensor, edited: Tensor, source_labels: Tensor | None = None) -> None:
        before = self.judge.predict(source) if source_labels is None else source_labels
        lacking = before[:, self.index] < PRESENT
        self.gained += (lacking & (self.judge.predict(edited)[:, self.index] >= PRESENT)).sum()
        self.lacking += lacking.sum()

    def compute(self) -> Tensor:
        return self.gained / self.lacking


class AttributeLeakage(Metric):
    """Share of the other attributes whose predicted presence flips, averaged over faces and attributes.

    "Other" leaves out the edited attribute and the rest of its exclusive group: switching blond_hair on must
    switch brown_hair off.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, attribute_judge: AttributeJudge, attribute: str, **kwargs: Any):
        super().__init__(**kwargs)
        hold_judge(self, "judge", attribute_judge)
        group = GROUP_OF.get(check_name(attribute))
        tied = set(GROUPS[group].members) if group else {attribute}
        self.others = [i for i, name in enumerate(ATTRIBUTES) if name not in tied]
        self.add_state("flips", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, source: Tensor, edited: Tensor) -> None:
        before = self.judge.predict(source)[:, self.others] >= PRESENT
        after = self.judge.predict(edited)[:, self.others] >= PRESENT
        self.flips += (before != after).sum()
        self.count += before.numel()

    def compute(self) -> Tensor:
        return self.flips / self.count
