"""Keep the mapper of the best validation, not the one training ended with.

The CLIP loss keeps strengthening an edit after the attribute shows, and identity falls with it: glasses on the
from-scratch backbone validated at edit success 0.62 / identity 0.80 after 50 steps and 0.66 / 0.52 after 125
(issue #5, session 16). The best validation is the one falling least short of the goals (`mapper.goals`: edit
success, identity, leakage), where the world has an attribute judge to count edit success and leakage; ties, and
every validation elsewhere, go by the sweep's weighted score (`sweep.weight_*`). The score alone is not enough:
Sdir hardly rises when make-up appears (0.63 -> 0.68) while the parser's SC falls (0.98 -> 0.82), so it preferred a
face without make-up to make-up on 97 % of the faces at identity 0.90 (session 22).

The kept mapper waits in the run folder's best.safetensors; the callback's state (rank and metrics) rides in
last.ckpt, so a resumed run keeps comparing against it.
"""

import math
from collections.abc import Mapping
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig
from safetensors.torch import load_file, save_file

from chatface.sweep_results import weighted_score

NO_RANK = (-math.inf, -math.inf)  # below every validation's (shortfall, score)


def goal_shortfall(metrics: Mapping[str, float], goals: DictConfig) -> float:
    """How far edit success and identity fall below their goals plus how far leakage exceeds its goal; 0 without
    an attribute judge (no edit_success to judge by)."""
    if "edit_success" not in metrics:
        return 0.0
    gaps = (goals.edit_success - metrics["edit_success"], goals.id - metrics["id"], metrics["leakage"] - goals.leakage)
    return sum(max(gap, 0.0) for gap in gaps)  # a NaN gap comes first, so max keeps it: NaN is never the best


def validation_metrics(logged: Mapping) -> dict[str, float]:
    """The `val/` entries of Lightning's logged metrics, under their bare names."""
    return {key.removeprefix("val/"): float(value) for key, value in logged.items() if key.startswith("val/")}


class BestValidation(Callback):
    def __init__(self, run_dir: Path, weights: DictConfig, goals: DictConfig) -> None:
        self.path, self.weights, self.goals = Path(run_dir) / "best.safetensors", weights, goals
        self.best_rank, self.best_metrics, self.best_step = NO_RANK, {}, -1

    def rank(self, metrics: Mapping[str, float]) -> tuple[float, float]:
        """Higher is better: the negated goal shortfall, then the weighted score."""
        return -goal_shortfall(metrics, self.goals), weighted_score(metrics, self.weights)

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = validation_metrics(trainer.callback_metrics)
        rank = self.rank(metrics)
        if any(math.isnan(value) for value in rank) or not rank > self.best_rank:
            return
        self.best_rank, self.best_metrics, self.best_step = rank, metrics, trainer.global_step
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_file({name: t.detach().contiguous().cpu() for name, t in module.mapper.state_dict().items()},
                      self.path)

    def restore(self, module: L.LightningModule) -> dict[str, float]:
        """Loads the kept mapper into `module` and returns its validation metrics."""
        module.mapper.load_state_dict(load_file(self.path))
        return dict(self.best_metrics)

    def state_dict(self) -> dict:
        return {"best_metrics": self.best_metrics, "best_step": self.best_step}

    def load_state_dict(self, state: dict) -> None:
        self.best_metrics, self.best_step = dict(state["best_metrics"]), state["best_step"]
        self.best_rank = self.rank(self.best_metrics) if self.best_metrics else NO_RANK
