"""`chatface sweep attr=<name>` (`make sweep ATTR=<name>`): an Optuna study of one attribute's mapper.

    chatface sweep attr=curly_hair sweep.trials=20 sweep.workers=2 sweep.storage=postgresql://host/optuna

The study `chatface-<world>-<attr>` lives in sweep.storage (sweep_storage.py); running the command again resumes it,
and every machine that runs it with the same RDB storage adds workers. The sweep is a parent MLflow run, each trial
a nested child run (sweep_worker.py). Its first trial is the paper's setting, so the sweep never reports anything
worse. At the end it prints the best trials, writes trials.csv and pareto.png into runs/sweeps/<world>/<attr>/
(also artifacts of the parent run), tags the Pareto set's runs and registers the best trial by the weighted score
as the MLflow model `chatface-<world>-<attr>`, which `make edit` then uses.
"""

import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from chatface.catalog import default_catalog
from chatface.config import Config, ConfigError
from chatface.registry import model_name, register_mapper
from chatface.sweep_results import (
    best_table, best_trial, complete, pareto_front, plot_pareto, trial_rows, write_csv)
from chatface.sweep_space import SearchSpace, load_space
from chatface.sweep_storage import SweepError, ask_lock, sweep_dir
from chatface.sweep_worker import load_study, recover_dead_trials, run_worker, trial_config
from chatface.tracking import mlflow_logger


@dataclass
class Sweep:
    study: optuna.Study
    space: SearchSpace
    parent_run_id: str
    folder: Path


def check_sweep_config(s: DictConfig) -> None:
    for key in ("trials", "workers", "trial_steps", "trial_val_every", "max_failures", "heartbeat_s"):
        if s[key] <= 0:
            raise ConfigError(f"bad value for config key 'sweep.{key}': {s[key]} (must be positive)")
    if s.population < 2:
        raise ConfigError(f"bad value for config key 'sweep.population': {s.population} (NSGA-II needs 2 or more)")
    if s.objective == "multi" and s.pruner == "hyperband":
        raise ConfigError("sweep.pruner=hyperband needs sweep.objective=weighted: Optuna's pruners judge one value "
                          "per step; a multi-objective sweep prunes by the median rule on the weighted score "
                          "(sweep.pruner=median) or not at all (sweep.pruner=none)")
    if not any(s[f"weight_{name}"] for name in ("sdir", "id", "sc")):
        raise ConfigError("sweep.weight_sdir, sweep.weight_id and sweep.weight_sc are all 0: nothing to maximise")


def prepare_sweep(cfg: DictConfig, attr: str) -> Sweep:
    """Caches the latents of every training T in the space, creates or resumes the study and its parent MLflow
    run, fails the trials of dead workers, and enqueues the paper's setting unless a live trial holds it."""
    default_catalog()[attr]  # an unknown attribute fails here, with suggestions
    check_sweep_config(cfg.sweep)
    space = load_space(cfg.sweep.space)
    _cache_latents(cfg, space)  # also fails early, before any run exists, where the backbone is missing
    study = load_study(cfg, attr)
    folder = sweep_dir(cfg, attr)
    folder.mkdir(parents=True, exist_ok=True)
    sweep = Sweep(study, space, _parent_run(cfg, attr, study, space, folder), folder)
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    with ask_lock(cfg, study.study_name):  # another sweep of this study on this machine may be starting too
        recover_dead_trials(cfg, study)
        if not any(t.user_attrs.get("paper_setting") for t in study.get_trials(deepcopy=False, states=live)):
            study.enqueue_trial(space.baseline(), user_attrs={"paper_setting": True})
    return sweep


def run_sweep(cfg: DictConfig, attr: str) -> dict:
    sweep, s = prepare_sweep(cfg, attr), cfg.sweep
    print(f"[{sweep.study.study_name}] {s.trials} trials of {s.trial_steps} steps, objective {s.objective}, pruner "
          f"{s.pruner}, {s.workers} worker(s); storage {s.storage or 'journal file in ' + cfg.output_dir + '/optuna'};"
          f" MLflow parent run {sweep.parent_run_id}", flush=True)
    try:
        if s.workers == 1:
            run_worker(cfg, attr)
        else:
            _run_workers(cfg, attr, s.workers)
    except SweepError as error:
        print(f"[{sweep.study.study_name}] stopped: {error}", flush=True)
        finish_sweep(cfg, attr, sweep)
        raise
    except KeyboardInterrupt:
        from mlflow import MlflowClient

        MlflowClient(cfg.tracking.tracking_uri).set_terminated(sweep.parent_run_id, "KILLED")
        raise SystemExit(f"[{sweep.study.study_name}] interrupted; the same command resumes the study") from None
    return finish_sweep(cfg, attr, sweep)


def finish_sweep(cfg: DictConfig, attr: str, sweep: Sweep) -> dict:
    """Table, CSV, Pareto plot, Pareto and best tags, the registered best trial, the parent run closed."""
    from mlflow import MlflowClient

    client, name = MlflowClient(cfg.tracking.tracking_uri), sweep.study.study_name
    rows = trial_rows(sweep.study)
    front, best = pareto_front(rows), best_trial(rows)
    print(f"\n[{name}] best trials by the weighted score:\n{best_table(rows, front)}")
    artifacts = [write_csv(rows, front, sweep.folder / "trials.csv")]
    if complete(rows):
        artifacts.append(plot_pareto(rows, front, sweep.folder / "pareto.png", f"{name}: Pareto front"))
    for path in artifacts:
        client.log_artifact(sweep.parent_run_id, str(path))
    on_front = {row.number for row in front}
    for row in rows:
        if row.run_id and row.state == "COMPLETE":
            client.set_tag(row.run_id, "pareto", str(row.number in on_front).lower())
            client.set_tag(row.run_id, "best", str(row is best).lower())
    summary = {"study": name, "trials": {state: sum(r.state == state for r in rows) for state in
                                         ("COMPLETE", "PRUNED", "FAIL", "RUNNING")},
               "pareto_trials": sorted(on_front), "best_trial": None, "registered": None,
               "parent_run_id": sweep.parent_run_id, "folder": str(sweep.folder)}
    if best is not None:
        version = register_mapper(cfg, attr, best.run_id, {"study": name, "trial": str(best.number),
                                                           "score": f"{best.score:.4f}"})
        for key, value in {"score": best.score, **best.metrics}.items():
            client.log_metric(sweep.parent_run_id, f"best/{key}", value)
        client.set_tag(sweep.parent_run_id, "registered_model", f"{model_name(cfg, attr)} v{version}")
        summary.update(best_trial={"number": best.number, "score": best.score, **best.metrics,
                                   "params": best.params}, registered={"name": model_name(cfg, attr),
                                                                       "version": version})
        print(f"[{name}] registered trial {best.number} as {model_name(cfg, attr)} version {version} "
              f"(alias 'best'); `make edit` uses it")
    client.set_terminated(sweep.parent_run_id, "FINISHED")
    (sweep.folder / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[{name}] table, Pareto plot and trials in {sweep.folder}; `make ui` to browse the runs")
    return summary


def _parent_run(cfg: DictConfig, attr: str, study: optuna.Study, space: SearchSpace, folder: Path) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client, run_id = MlflowClient(cfg.tracking.tracking_uri), study.user_attrs.get("mlflow_parent_run_id")
    if run_id is not None:
        try:
            client.update_run(run_id, status="RUNNING")
            return run_id
        except MlflowException:  # the study outlived its tracking store: start a new parent run
            pass
    (folder / "mlflow_run_id").unlink(missing_ok=True)  # a folder of a deleted study must not lend its run
    logger = mlflow_logger(cfg, f"sweep-{study.study_name}", folder)
    logger.log_hyperparams({"attr": attr, "world": cfg.world.name, "study": study.study_name,
                            **{f"sweep.{key}": value for key, value in cfg.sweep.items()}})
    client.set_tag(logger.run_id, "chatface.sweep", study.study_name)
    client.log_artifact(logger.run_id, str(space.path))
    study.set_user_attr("mlflow_parent_run_id", logger.run_id)
    return logger.run_id


def _cache_latents(cfg: DictConfig, space: SearchSpace) -> None:
    """Workers would compute a missing latent cache concurrently; the coordinator fills it first, once per T."""
    from chatface.backbone_eval import backbone_pipeline
    from chatface.train_mapper import mapper_latents

    pipe = backbone_pipeline(cfg)
    for steps in space.choices("mapper.steps"):
        for split in ("train", "val"):
            mapper_latents(trial_config(cfg, {"mapper.steps": steps}), pipe, split)


def _run_workers(cfg: DictConfig, attr: str, workers: int) -> None:
    context = multiprocessing.get_context("spawn")  # fork after torch has run is unsafe
    container = OmegaConf.to_container(cfg)
    processes = [context.Process(target=_worker_process, args=(container, attr, index), name=f"sweep-worker-{index}")
                 for index in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    if failed := [f"{p.name} (exit code {p.exitcode})" for p in processes if p.exitcode != 0]:
        raise SweepError(f"worker(s) stopped with an error: {', '.join(failed)}; their output is above")


def _worker_process(container: dict, attr: str, index: int) -> None:
    import torch

    cfg = OmegaConf.merge(OmegaConf.structured(Config), container)
    OmegaConf.set_readonly(cfg, True)
    if "OMP_NUM_THREADS" not in os.environ:  # share the cores instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // cfg.sweep.workers))
    run_worker(cfg, attr, index)
