"""The mapper kept at the end of a run is the one of its best validation: nearest the goals, then best scored."""

import math
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf
from torch import nn

from chatface.best_validation import BestValidation

WEIGHTS = OmegaConf.create({"weight_sdir": 1.0, "weight_id": 0.25, "weight_sc": 0.25})
GOALS = OmegaConf.create({"edit_success": 0.8, "id": 0.8, "leakage": 0.05})


def mapper_module() -> SimpleNamespace:
    return SimpleNamespace(mapper=nn.Linear(2, 2, bias=False))


def validate(callback: BestValidation, module, step: int, **metrics: float) -> None:
    """One validation at `step`, the mapper's weights all equal to `step`; train/ entries are not validation's."""
    with torch.no_grad():
        module.mapper.weight.fill_(step)
    logged = {**{f"val/{key}": value for key, value in metrics.items()}, "train/loss": 3.0}
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, global_step=step,
                              callback_metrics={key: torch.tensor(value) for key, value in logged.items()})
    callback.on_validation_end(trainer, module)


def test_the_best_validation_is_kept_and_restored_with_its_metrics(tmp_path):
    module, callback = mapper_module(), BestValidation(tmp_path, WEIGHTS, GOALS)
    for step, sdir in ((25, 0.2), (50, 0.5), (75, 0.4), (100, math.nan)):
        validate(callback, module, step, sdir=sdir, id=1.0, sc=1.0)

    metrics = callback.restore(module)

    assert torch.equal(module.mapper.weight, torch.full((2, 2), 50.0))
    assert metrics == {"sdir": 0.5, "id": 1.0, "sc": 1.0} and callback.best_step == 50


def test_a_validation_whose_edits_could_not_be_judged_is_never_the_best(tmp_path):
    module, callback = mapper_module(), BestValidation(tmp_path, WEIGHTS, GOALS)
    validate(callback, module, 10, edit_success=0.1, id=0.9, leakage=0.01, sdir=0.5, sc=0.9)
    validate(callback, module, 20, edit_success=math.nan, id=0.9, leakage=0.01, sdir=0.5, sc=0.9)

    assert callback.best_step == 10


def test_a_resumed_run_compares_against_the_validation_it_had_kept(tmp_path):
    module, first = mapper_module(), BestValidation(tmp_path, WEIGHTS, GOALS)
    validate(first, module, 50, edit_success=0.9, id=0.9, leakage=0.01, sdir=0.5, sc=0.9)
    resumed = BestValidation(tmp_path, WEIGHTS, GOALS)
    resumed.load_state_dict(first.state_dict())

    validate(resumed, module, 75, edit_success=0.5, id=0.9, leakage=0.01, sdir=0.7, sc=0.9)

    assert resumed.restore(module)["edit_success"] == 0.8999999761581421 and resumed.best_step == 50
    assert torch.equal(module.mapper.weight, torch.full((2, 2), 50.0))


def test_the_validation_nearest_the_goals_beats_a_better_weighted_score(tmp_path):
    # Session 22's make-up: Sdir barely rose and SC fell when make-up appeared on 97 % of the faces.
    module, callback = mapper_module(), BestValidation(tmp_path, WEIGHTS, GOALS)
    validate(callback, module, 10, edit_success=0.03, id=0.998, leakage=0.004, sdir=0.631, sc=0.980)
    validate(callback, module, 20, edit_success=0.97, id=0.898, leakage=0.035, sdir=0.684, sc=0.815)
    validate(callback, module, 30, edit_success=1.00, id=0.732, leakage=0.067, sdir=0.657, sc=0.687)

    callback.restore(module)

    assert callback.best_step == 20 and torch.equal(module.mapper.weight, torch.full((2, 2), 20.0))


def test_validations_meeting_every_goal_are_told_apart_by_the_weighted_score(tmp_path):
    module, callback = mapper_module(), BestValidation(tmp_path, WEIGHTS, GOALS)
    validate(callback, module, 10, edit_success=0.9, id=0.9, leakage=0.01, sdir=0.5, sc=0.9)
    validate(callback, module, 20, edit_success=0.85, id=0.85, leakage=0.02, sdir=0.7, sc=0.9)

    assert callback.best_step == 20


def test_without_an_attribute_judge_the_weighted_score_decides(tmp_path):
    module, callback = mapper_module(), BestValidation(tmp_path, WEIGHTS, GOALS)
    validate(callback, module, 10, id=0.99, sdir=0.3, sc=0.95)
    validate(callback, module, 20, id=0.60, sdir=0.6, sc=0.90)

    assert callback.best_step == 20
