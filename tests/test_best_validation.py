"""The mapper kept at the end of a run is the one of its best-scoring validation."""

import math
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf
from torch import nn

from chatface.best_validation import BestValidation

WEIGHTS = OmegaConf.create({"weight_sdir": 1.0, "weight_id": 0.25, "weight_sc": 0.25})


def validate(callback: BestValidation, module, step: int, sdir: float, fill: float) -> None:
    """One validation: the mapper's weights are all `fill`, the scores give weighted score sdir + 0.5."""
    with torch.no_grad():
        module.mapper.weight.fill_(fill)
    metrics = {"val/sdir": sdir, "val/id": 1.0, "val/sc": 1.0, "val/edit_success": 0.5, "train/loss": 3.0}
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, global_step=step,
                              callback_metrics={key: torch.tensor(value) for key, value in metrics.items()})
    callback.on_validation_end(trainer, module)


def test_the_best_validation_is_kept_and_restored_with_its_metrics(tmp_path):
    module = SimpleNamespace(mapper=nn.Linear(2, 2, bias=False))
    callback = BestValidation(tmp_path, WEIGHTS)
    for step, sdir, fill in ((25, 0.2, 1.0), (50, 0.6, 2.0), (75, 0.4, 3.0), (100, math.nan, 4.0)):
        validate(callback, module, step, sdir, fill)

    metrics = callback.restore(module)

    assert torch.equal(module.mapper.weight, torch.full((2, 2), 2.0))
    assert metrics == {"sdir": 0.6000000238418579, "id": 1.0, "sc": 1.0, "edit_success": 0.5}
    assert callback.best_step == 50


def test_a_resumed_run_compares_against_the_score_it_had_kept(tmp_path):
    module = SimpleNamespace(mapper=nn.Linear(2, 2, bias=False))
    first = BestValidation(tmp_path, WEIGHTS)
    validate(first, module, 50, 0.6, 2.0)
    resumed = BestValidation(tmp_path, WEIGHTS)
    resumed.load_state_dict(first.state_dict())

    validate(resumed, module, 75, 0.4, 3.0)

    assert resumed.restore(module)["sdir"] == 0.6000000238418579 and resumed.best_step == 50
    assert torch.equal(module.mapper.weight, torch.full((2, 2), 2.0))
