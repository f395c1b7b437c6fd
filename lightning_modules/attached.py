"""The base of every editing method: a LightningModule with the frozen backbone pipeline and judges attached.

They stay outside the module tree, so they are neither trained nor checkpointed, yet they go wherever the module
goes: when Lightning moves it to the GPU (and back to the CPU at the end), the backbone and judges move with it.
"""

from collections.abc import Callable
from typing import Self

import lightning as L
import torch
from torch import nn

from diffusion import DiffAEPipeline
from networks.judges.loading import Judges


class WithFrozenParts(L.LightningModule):
    pipe: DiffAEPipeline
    judges: Judges | None

    def attach_frozen(self, pipe: DiffAEPipeline, judges: Judges | None) -> None:
        self.__dict__.update(pipe=pipe, judges=judges)  # plain attributes: nn.Module does not register them

    def frozen_networks(self) -> list[nn.Module]:
        pipe, judges = self.__dict__.get("pipe"), self.__dict__.get("judges")
        return ([pipe.model] if pipe is not None else []) + (judges.networks() if judges is not None else [])

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Self:
        # .to(), .cuda(), .cpu() and .half() all end here: the frozen parts follow the module's device and dtype
        for network in self.frozen_networks():
            network._apply(fn, recurse)
        return super()._apply(fn, recurse)
