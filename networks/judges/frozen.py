"""The base of every judge: frozen weights, and eval mode even inside a module that is being trained."""

from typing import Self

from torch import nn


class FrozenJudge(nn.Module):
    """Gradients still flow to a judge's inputs (the losses need them), never into its weights or BN statistics."""

    def train(self, mode: bool = True) -> Self:
        return super().train(False)
