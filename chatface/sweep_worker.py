"""One sweep worker: while the study holds fewer than sweep.trials started-or-finished trials it asks for one, trains
the mapper with the trial's params for sweep.trial_steps steps as a nested MLflow run, and tells the study.

A trial that raises (a bad value, a crash in training, NaN metrics) is FAILED, its MLflow run too, and the worker
goes on; failed trials do not count towards sweep.trials, and sweep.max_failures failures in a row stop the worker.

Pruning. Optuna's pruners judge single-objective studies only (`Trial.report` raises for multi-objective ones).
- `objective=weighted`: every validation reports the weighted score; Optuna's median or Hyperband pruner decides.
- `objective=multi`: every validation stores the weighted score in the trial's `intermediate` user attribute and
  chatface applies the median rule to it: stop when the trial's best score so far is below the median of the
  complete trials' scores at the same step (once sweep.startup_trials trials are complete). Hyperband needs
  `objective=weighted`.
A pruned trial stops at that validation, keeps its artifacts and counts as finished; the paper's-setting trial is
never pruned. Pruning sets `trainer.should_stop`, so Lightning ends the fit cleanly.
"""

import shutil
import statistics
import time
from typing import Any

import optuna
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, NopPruner
from optuna.samplers import NSGAIISampler, TPESampler
from optuna.trial import FrozenTrial, Trial, TrialState

from chatface.registry import MODEL_DIR
from chatface.sweep_results import OBJECTIVES, weighted_score
from chatface.sweep_space import SearchSpace, load_space
from chatface.sweep_storage import (
    Heartbeat, SweepError, ask_lock, claim, fail_stale_trials, open_storage, study_name, sweep_dir)
from chatface.train_mapper import train_mapper

STARTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def load_study(cfg: DictConfig, attr: str, index: int = 0) -> optuna.Study:
    """The study of `attr` (created on first use) with this worker's sampler and pruner."""
    s, name = cfg.sweep, study_name(cfg, attr)
    seed = None if s.seed is None else s.seed + index  # workers with one seed would sample the same params
    if s.objective == "multi":
        sampler, pruner, directions = NSGAIISampler(population_size=s.population, seed=seed), NopPruner(), 3
    else:
        sampler, pruner, directions = TPESampler(n_startup_trials=s.startup_trials, seed=seed), _pruner(s), 1
    study = optuna.create_study(storage=open_storage(cfg, name), study_name=name, sampler=sampler, pruner=pruner,
                                directions=["maximize"] * directions, load_if_exists=True)
    if len(study.directions) != directions:
        raise SweepError(f"study {name} has {len(study.directions)} objectives, not {directions}")
    return study


def _pruner(s: DictConfig) -> BasePruner:
    if s.pruner == "median":
        return MedianPruner(n_startup_trials=s.startup_trials)
    if s.pruner == "hyperband":
        return HyperbandPruner(min_resource=s.trial_val_every, max_resource=s.trial_steps)
    return NopPruner()


def trial_config(cfg: DictConfig, overrides: dict[str, Any]) -> DictConfig:
    """`cfg` with a trial's params and the sweep's per-trial budget."""
    values = {**overrides, "mapper.max_steps": cfg.sweep.trial_steps, "mapper.val_every": cfg.sweep.trial_val_every}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value
    merged = OmegaConf.merge(cfg, nested)
    OmegaConf.set_readonly(merged, True)
    return merged


def run_worker(cfg: DictConfig, attr: str, index: int = 0) -> None:
    study, space, s = load_study(cfg, attr, index), load_space(cfg.sweep.space), cfg.sweep
    parent, failures = study.user_attrs["mlflow_parent_run_id"], 0
    while True:
        with ask_lock(cfg, study.study_name):
            recover_dead_trials(cfg, study)
            if len(study.get_trials(deepcopy=False, states=STARTED)) >= s.trials:
                return
            trial = study.ask()
            claim(trial)
        frozen = run_trial(cfg, attr, study, trial, space, parent)
        _progress(study, frozen, s.trials, index)
        failures = failures + 1 if frozen.state == TrialState.FAIL else 0
        if failures >= s.max_failures:
            raise SweepError(f"{failures} trials of {study.study_name} failed in a row (the last: "
                             f"{frozen.user_attrs.get('error', '?')}); their MLflow runs hold the errors")


def run_trial(cfg: DictConfig, attr: str, study: optuna.Study, trial: Trial, space: SearchSpace,
              parent_run_id: str) -> FrozenTrial:
    s, started = cfg.sweep, time.time()
    run_dir = sweep_dir(cfg, attr) / f"trial-{trial.number:03d}"
    shutil.rmtree(run_dir, ignore_errors=True)  # numbers are never reused: a folder there is from a deleted study
    logger = MLFlowLogger(experiment_name=cfg.tracking.experiment, run_name=f"trial-{trial.number:03d}",
                          tracking_uri=cfg.tracking.tracking_uri,
                          tags={"mlflow.parentRunId": parent_run_id, "optuna.study": study.study_name,
                                "optuna.trial": str(trial.number)})
    client, run_id = logger.experiment, logger.run_id
    trial.set_user_attr("mlflow_run_id", run_id)
    paper = bool(trial.user_attrs.get("paper_setting"))
    try:
        with Heartbeat(trial, s.heartbeat_s):
            overrides = space.suggest(trial)
            logger.log_hyperparams({"max_steps": s.trial_steps, "val_every": s.trial_val_every,
                                    "paper_setting": paper})
            pruning = TrialPruning(trial, s, exempt=paper)
            metrics = train_mapper(trial_config(cfg, overrides), attr, run_dir, logger, [pruning])
            score = weighted_score(metrics, s)
            for name in ("mapper.safetensors", "mapper.yaml"):
                client.log_artifact(run_id, str(run_dir / name), MODEL_DIR)
    except (Exception, KeyboardInterrupt) as error:
        message = f"{type(error).__name__}: {error}"[:2000]
        client.set_tag(run_id, "chatface.error", message)
        client.set_terminated(run_id, "FAILED")
        trial.set_user_attr("error", message)
        trial.set_user_attr("seconds", round(time.time() - started, 1))
        frozen = study.tell(trial, state=TrialState.FAIL)
        client.set_tag(run_id, "optuna.state", "FAIL")
        if isinstance(error, KeyboardInterrupt):
            raise
        return frozen
    trial.set_user_attr("metrics", metrics)
    trial.set_user_attr("score", score)
    trial.set_user_attr("seconds", round(time.time() - started, 1))
    client.log_metric(run_id, "val/score_final", score)
    if pruning.pruned_at is not None:
        frozen = study.tell(trial, state=TrialState.PRUNED)
    else:
        frozen = study.tell(trial, [metrics[name] for name in OBJECTIVES] if s.objective == "multi" else score)
    client.set_tag(run_id, "optuna.state", frozen.state.name)  # NaN metrics make a COMPLETE into a FAIL
    return frozen


class TrialPruning(Callback):
    """After each validation: the weighted score becomes an intermediate value, and a pruning check."""

    def __init__(self, trial: Trial, sweep: DictConfig, exempt: bool = False) -> None:
        self.trial, self.sweep, self.exempt = trial, sweep, exempt
        self.scores: dict[int, float] = {}
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {name: float(trainer.callback_metrics[f"val/{name}"]) for name in OBJECTIVES}
        step, score = trainer.global_step, weighted_score(metrics, self.sweep)
        self.scores[step] = score
        self.trial.set_user_attr("intermediate", {str(k): v for k, v in self.scores.items()})
        if trainer.logger is not None:
            trainer.logger.log_metrics({"val/score": score}, step)
        if self.sweep.objective == "weighted":
            self.trial.report(score, step)
            prune = self.trial.should_prune()
        else:
            prune = self.sweep.pruner == "median" and median_rule(
                self.trial.study, step, max(self.scores.values()), self.sweep.startup_trials)
        if prune and not self.exempt and step < trainer.max_steps:
            self.pruned_at, trainer.should_stop = step, True


def median_rule(study: optuna.Study, step: int, best_score: float, startup_trials: int) -> bool:
    """True when `best_score` is below the median of the complete trials' intermediate scores at `step`."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < startup_trials:
        return False
    others = [t.user_attrs.get("intermediate", {}).get(str(step)) for t in done]
    others = [value for value in others if value is not None]
    return bool(others) and best_score < statistics.median(others)


def recover_dead_trials(cfg: DictConfig, study: optuna.Study) -> None:
    """Fails the RUNNING trials whose worker died (sweep_storage.py) and marks their MLflow runs KILLED."""
    for trial, reason in fail_stale_trials(study, cfg.sweep.heartbeat_s):
        print(f"[{study.study_name}] trial {trial.number} marked FAILED: {reason}", flush=True)
        if run_id := trial.user_attrs.get("mlflow_run_id"):
            from mlflow import MlflowClient

            client = MlflowClient(cfg.tracking.tracking_uri)
            client.set_tag(run_id, "chatface.error", f"worker died: {reason}")
            client.set_tag(run_id, "optuna.state", "FAIL")
            client.set_terminated(run_id, "KILLED")


def _progress(study: optuna.Study, frozen: FrozenTrial, trials: int, index: int) -> None:
    states = [t.state for t in study.get_trials(deepcopy=False)]
    finished = sum(state in (TrialState.COMPLETE, TrialState.PRUNED) for state in states)
    metrics = frozen.user_attrs.get("metrics", {})
    result = (f"score {frozen.user_attrs['score']:.3f} (" + ", ".join(f"{k} {metrics[k]:.3f}" for k in OBJECTIVES)
              + ")" if "score" in frozen.user_attrs else frozen.user_attrs.get("error", ""))
    print(f"[{study.study_name}] trial {frozen.number} {frozen.state.name} in "
          f"{frozen.user_attrs.get('seconds', 0):.0f} s: {result}  [{finished}/{trials} finished, "
          f"{states.count(TrialState.FAIL)} failed; worker {index}]", flush=True)
