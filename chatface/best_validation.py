"""Keep the mapper of the validation with the best weighted score, not the one training ended with.

The CLIP loss keeps strengthening an edit after the attribute shows, and identity falls with it: glasses on the
from-scratch backbone validated at edit success 0.62 / identity 0.80 after 50 steps and 0.66 / 0.52 after 125
(issue #5, session 16). The score is the sweep's (`sweep.weight_*`), so a plain run and a sweep trial keep by one
rule. The kept mapper waits in the run folder's best.safetensors; the callback's state (score and metrics) rides
in last.ckpt, so a resumed run keeps comparing against it.
"""

import math
from collections.abc import Mapping
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig
from safetensors.torch import load_file, save_file

from chatface.sweep_results import weighted_score


def validation_metrics(logged: Mapping) -> dict[str, float]:
    """The `val/` entries of Lightning's logged metrics, under their bare names."""
    return {key.removeprefix("val/"): float(value) for key, value in logged.items() if key.startswith("val/")}


class BestValidation(Callback):
    def __init__(self, run_dir: Path, weights: DictConfig) -> None:
        self.path, self.weights = Path(run_dir) / "best.safetensors", weights
        self.best_score, self.best_metrics, self.best_step = -math.inf, {}, -1

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = validation_metrics(trainer.callback_metrics)
        score = weighted_score(metrics, self.weights)
        if not score > self.best_score:  # a NaN score is never the best
            return
        self.best_score, self.best_metrics, self.best_step = score, metrics, trainer.global_step
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_file({name: t.detach().contiguous().cpu() for name, t in module.mapper.state_dict().items()},
                      self.path)

    def restore(self, module: L.LightningModule) -> dict[str, float]:
        """Loads the kept mapper into `module` and returns its validation metrics."""
        module.mapper.load_state_dict(load_file(self.path))
        return dict(self.best_metrics)

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_metrics": self.best_metrics, "best_step": self.best_step}

    def load_state_dict(self, state: dict) -> None:
        self.best_score, self.best_metrics, self.best_step = (state["best_score"], dict(state["best_metrics"]),
                                                              state["best_step"])
