"""Sweeps: the search space, dead-worker recovery, pruning rules, and tiny end-to-end sweeps on real storages
(journal file, SQLite RDB) with MLflow runs, the Pareto plot and the model registry."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from mlflow import MlflowClient
from optuna.trial import TrialState

from chatface.cli import main
from chatface.config import ConfigError, load_config
from chatface.editor import MapperMissingError, find_mapper
from chatface.mlflow_ui import ui_command
from chatface.registry import ALIAS, model_name
from chatface.sweep import check_sweep_config, prepare_sweep, run_sweep
from chatface.sweep_results import TrialRow, best_table, pareto_front
from chatface.sweep_space import PAPER_SETTING, SearchSpaceError, load_space
from chatface.sweep_storage import Worker, fail_stale_trials, open_storage, study_name
from chatface.sweep_worker import load_study, median_rule
from networks.mapper_checkpoint import load_mapper

optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY_SPACE = """
mapper.lr:         {type: float, low: 0.02, high: 1.0, log: true}
mapper.lambda_dir: {type: float, low: 0.5, high: 4.0}
mapper.lambda_id:  {type: float, low: 0.1, high: 2.0}
mapper.lambda_pre: {type: float, low: 0.05, high: 1.0}
mapper.sms:        {type: categorical, choices: [linear, cosine, step, none]}
mapper.sms_param:  {type: float, low: 0.2, high: 0.8, when: {mapper.sms: [step]}}
"""
TINY_PAPER = {key: PAPER_SETTING[key] for key in ("mapper.lr", "mapper.lambda_dir", "mapper.lambda_id",
                                                  "mapper.lambda_pre", "mapper.sms")}  # the space above


def write_space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- the search space


def test_the_default_space_starts_from_the_papers_setting():
    space = load_space("sweeps/search_space.yaml")
    assert space.baseline() == PAPER_SETTING
    assert {p.key for p in space.params} == {*PAPER_SETTING, "mapper.sms_param", "mapper.direction_target"}
    assert space.choices("mapper.steps") == [4, 8]


def test_an_optional_number_of_the_config_is_searched_over_a_range(tmp_path):
    text = ("mapper.direction_loss: {type: categorical, choices: [cosine, projection]}\n"
            "mapper.direction_target: {type: float, low: 0.15, high: 0.6, when: {mapper.direction_loss: [projection]}}")
    space = load_space(write_space(tmp_path, text))
    study = optuna.create_study()
    study.enqueue_trial({"mapper.direction_loss": "projection"})
    assert 0.15 <= space.suggest(study.ask())["mapper.direction_target"] <= 0.6


def test_conditional_keys_are_sampled_only_when_their_condition_holds(tmp_path):
    space = load_space(write_space(tmp_path, TINY_SPACE))
    study = optuna.create_study(directions=["maximize"] * 3)
    study.enqueue_trial({"mapper.sms": "linear"})
    study.enqueue_trial({"mapper.sms": "step"})
    assert "mapper.sms_param" not in space.suggest(study.ask())
    assert 0.2 <= space.suggest(study.ask())["mapper.sms_param"] <= 0.8


@pytest.mark.parametrize("text, message", [
    ("mapper.lrr: {type: float, low: 0.1, high: 1.0}", "unknown config key 'mapper.lrr'"),
    ("data.batch_size: {type: int, low: 1, high: 8}", "unknown config key 'data.batch_size'"),
    ("mapper.max_steps: {type: int, low: 10, high: 90}", "sweep.trial_steps"),
    ("mapper.lr: {type: float, low: 1.0, high: 0.1}", "mapper.lr: bad range: low 1.0 is above high 0.1"),
    ("mapper.lr: {type: float, low: 0.0, high: 1.0, log: true}", "mapper.lr: bad range: a log scale needs low > 0"),
    ("mapper.lr: {type: float, low: 0.1, hi: 1.0}", "mapper.lr: unknown field(s) hi"),
    ("mapper.lr: {type: float, low: 0.1}", "mapper.lr: float needs a numeric high"),
    ("mapper.lr: {type: uniform, low: 0.1, high: 1.0}", "mapper.lr: needs a mapping with type"),
    ("mapper.width: {type: float, low: 64, high: 512}", "mapper.width: the config holds a int"),
    ("mapper.sms: {type: categorical, choices: [linear, zigzag]}", "mapper.sms: the config cannot hold 'zigzag'"),
    ("mapper.sms: {type: categorical, choices: []}", "mapper.sms: categorical needs a non-empty list"),
    ("mapper.sms_param: {type: float, low: 0.1, high: 0.9, when: {mapper.sms: [step]}}",
     "when refers to 'mapper.sms'"),
    ("mapper.lr: {type: float, low: 0.5, high: 1.0}", "leaves out the paper's value 0.2"),
    ("[1, 2]", "maps config keys to distributions"),
])
def test_space_mistakes_are_errors_naming_the_key(tmp_path, text, message):
    with pytest.raises(SearchSpaceError) as error:
        load_space(write_space(tmp_path, text))
    assert message in str(error.value)
    assert str(tmp_path / "space.yaml") in str(error.value)


def test_a_bad_space_or_setting_stops_the_cli_with_a_message(tmp_path, capsys):
    bad = write_space(tmp_path, "mapper.lr: {type: float, low: 1.0, high: 0.1}")
    assert main(["sweep", f"sweep.space={bad}", f"output_dir={tmp_path}"]) == 2
    assert "bad range" in capsys.readouterr().err
    assert main(["sweep", "sweep.pruner=hyperband"]) == 2
    assert "sweep.pruner=hyperband needs sweep.objective=weighted" in capsys.readouterr().err


def test_sweep_settings_are_checked():
    check_sweep_config(load_config(["sweep.objective=weighted", "sweep.pruner=hyperband"]).sweep)
    for override in ("sweep.trials=0", "sweep.population=1", "sweep.weight_sdir=0"):
        with pytest.raises(ConfigError):
            check_sweep_config(load_config([override, "sweep.weight_id=0", "sweep.weight_sc=0"]
                                           if "weight" in override else [override]).sweep)


# ---------------------------------------------------------------- dead workers, pruning, results


def _running_trial(study, **user_attrs):
    trial = study.ask()
    for key, value in user_attrs.items():
        trial.set_user_attr(key, value)
    return trial.number


def test_trials_of_dead_workers_are_failed_and_live_ones_kept(tmp_path):
    cfg = load_config([f"output_dir={tmp_path}"])
    study = optuna.create_study(storage=open_storage(cfg, "s"), study_name="s", directions=["maximize"] * 3)
    gone = subprocess.Popen(["true"])
    gone.wait()
    host, now = socket.gethostname(), time.time()
    dead = _running_trial(study, worker={"host": host, "pid": gone.pid, "start": "1"}, heartbeat=now)
    me = Worker.me()
    mine = _running_trial(study, worker={"host": host, "pid": me.pid, "start": me.start},
                          heartbeat=now - 3600)  # alive on this host: its heartbeat does not matter
    silent = _running_trial(study, worker={"host": "elsewhere", "pid": 1, "start": "1"}, heartbeat=now - 3600)
    beating = _running_trial(study, worker={"host": "elsewhere", "pid": 1, "start": "1"}, heartbeat=now)
    unclaimed = _running_trial(study)  # just asked: a worker is about to claim it
    failed = {trial.number: reason for trial, reason in fail_stale_trials(study, heartbeat_s=30)}
    assert set(failed) == {dead, silent}
    assert f"process {gone.pid}" in failed[dead] and "no heartbeat from elsewhere" in failed[silent]
    states = {t.number: t.state for t in study.get_trials()}
    assert states[mine] == states[beating] == states[unclaimed] == TrialState.RUNNING
    assert fail_stale_trials(study, heartbeat_s=30) == []  # nothing is failed twice


def test_median_rule_on_the_weighted_intermediate_scores():
    study = optuna.create_study(directions=["maximize"] * 3)
    for score in (0.4, 0.5, 0.6):
        trial = study.ask()
        trial.set_user_attr("intermediate", {"10": score})
        study.tell(trial, [score] * 3)
    assert median_rule(study, 10, 0.45, startup_trials=3)
    assert not median_rule(study, 10, 0.55, startup_trials=3)
    assert not median_rule(study, 10, 0.1, startup_trials=4)  # too few complete trials yet
    assert not median_rule(study, 20, 0.1, startup_trials=3)  # nobody validated at that step


def test_pareto_front_and_table():
    def row(number, sdir, id_, sc, state="COMPLETE"):
        metrics = {"sdir": sdir, "id": id_, "sc": sc}
        return TrialRow(number, state, sdir + 0.25 * (id_ + sc), metrics, {"mapper.lr": 0.2}, None, number == 0)

    rows = [row(0, 0.1, 0.9, 0.9), row(1, 0.2, 0.8, 0.8), row(2, 0.05, 0.85, 0.85), row(3, 0.3, 0.9, 0.9, "PRUNED")]
    assert [r.number for r in pareto_front(rows)] == [0, 1]
    table = best_table(rows, pareto_front(rows))
    assert table.splitlines()[1].split()[0] == "1"  # best weighted score first
    assert "(the paper's setting)" in table and "3 complete, 1 pruned" in table


def test_ui_serves_the_tracking_store_on_localhost_only():
    cfg = load_config(["tracking.tracking_uri=sqlite:///runs/x.db"])
    command = ui_command(cfg, 5123)
    assert command[1:4] == ["-m", "mlflow", "ui"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5123"
    assert command[command.index("--backend-store-uri") + 1] == "sqlite:///runs/x.db"


def test_a_missing_mapper_names_both_ways_to_make_one(tmp_path):
    cfg = load_config([f"output_dir={tmp_path}", f"tracking.tracking_uri=sqlite:///{tmp_path}/mlflow.db"])
    with pytest.raises(MapperMissingError) as error:
        find_mapper(cfg, "smile")
    assert "make train ATTR=smile" in str(error.value) and "make sweep ATTR=smile" in str(error.value)
    assert not (tmp_path / "mlflow.db").exists()  # looking did not create a tracking store


# ---------------------------------------------------------------- tiny sweeps end to end


@pytest.fixture(scope="module")
def sweep_world(tiny_world, tmp_path_factory) -> list[str]:
    """Overrides of the tiny world for sweeps: one output folder and MLflow store for this module's sweeps (one
    attribute each), a small search space, two steps per trial."""
    root = tmp_path_factory.mktemp("sweeps")
    (root / "space.yaml").write_text(TINY_SPACE)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("chatface", artifact_location=str(root / "mlruns"))  # not ./mlruns
    return [*tiny_world, f"output_dir={root / 'runs'}", f"tracking.tracking_uri={uri}",
            f"sweep.space={root / 'space.yaml'}", "sweep.trial_steps=2", "sweep.trial_val_every=1",
            "sweep.startup_trials=1", "sweep.heartbeat_s=5"]


@pytest.fixture(scope="module")
def swept(sweep_world):
    """A 3-trial sweep of smile on the default journal storage, with a crashing trial injected after the first."""
    overrides = [*sweep_world, "sweep.trials=3"]
    cfg = load_config(overrides)
    study = prepare_sweep(cfg, "smile").study
    study.enqueue_trial({"mapper.lambda_dir": float("nan")})  # a bad value: the trial crashes
    summary = run_sweep(cfg, "smile")
    return cfg, load_study(cfg, "smile"), summary, overrides


@pytest.mark.slow
def test_sweep_runs_the_papers_setting_first_and_survives_a_crash(swept):
    cfg, study, summary, _ = swept
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
                                         TrialState.COMPLETE]
    assert trials[0].params == TINY_PAPER and trials[0].user_attrs["paper_setting"]
    assert "nan" in trials[1].user_attrs["error"]
    assert set(trials[0].user_attrs["metrics"]) >= {"sdir", "id", "sc", "edit_success", "leakage"}
    assert trials[0].user_attrs["intermediate"].keys() == {"1", "2"}  # one value per validation
    assert summary["trials"] == {"COMPLETE": 3, "PRUNED": 0, "FAIL": 1, "RUNNING": 0}


@pytest.mark.slow
def test_sweep_is_a_parent_mlflow_run_with_a_nested_run_per_trial(swept):
    cfg, study, summary, _ = swept
    client = MlflowClient(cfg.tracking.tracking_uri)
    parent = client.get_run(summary["parent_run_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_trial = {int(run.data.tags["optuna.trial"]): run for run in children}
    assert sorted(by_trial) == [0, 1, 2, 3]
    assert by_trial[1].info.status == "FAILED" and "chatface.error" in by_trial[1].data.tags
    first = by_trial[0]
    assert first.info.status == "FINISHED" and float(first.data.params["lr"]) == 0.2
    assert len(client.get_metric_history(first.info.run_id, "val/sdir")) == 2  # per validation
    assert client.get_metric_history(first.info.run_id, "train/loss")  # per step
    artifacts = {a.path for a in client.list_artifacts(first.info.run_id)}
    assert {"grid.png", "mapper.safetensors", "metrics.json", "model"} <= artifacts
    assert {a.path for a in client.list_artifacts(first.info.run_id, "model")} == {
        "model/mapper.safetensors", "model/mapper.yaml"}
    pareto = {n for n, run in by_trial.items() if run.data.tags.get("pareto") == "true"}
    assert pareto == set(summary["pareto_trials"]) and pareto
    assert parent.info.status == "FINISHED"
    assert {"pareto.png", "trials.csv", "space.yaml"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert (Path(summary["folder"]) / "pareto.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_best_trial_is_registered_and_edit_uses_it(swept, tmp_path):
    cfg, study, summary, overrides = swept
    client = MlflowClient(cfg.tracking.tracking_uri)
    version = client.get_model_version_by_alias(model_name(cfg, "smile"), ALIAS)
    best = summary["best_trial"]["number"]
    assert version.run_id == study.trials[best].user_attrs["mlflow_run_id"]
    assert not (Path(cfg.output_dir) / "mappers").exists()  # nothing but the registry holds a smile mapper
    found = find_mapper(cfg, "smile")
    trained, info = load_mapper(Path(summary["folder"]) / f"trial-{best:03d}" / "mapper.safetensors")
    for ours, theirs in zip(found.mapper.state_dict().values(), trained.state_dict().values()):
        assert torch.equal(ours, theirs)
    assert (found.sms, found.sms_param) == (info["sms"], info["sms_param"]), "edits decode under the trial's SMS"
    from PIL import Image

    image = tmp_path / "face.png"
    Image.new("RGB", (64, 64), (180, 140, 120)).save(image)
    assert main(["edit", str(image), *overrides, "--edits", "smile:1.0"]) == 0  # `make edit`
    assert (tmp_path / "face_edited.png").exists()


@pytest.mark.slow
def test_running_the_sweep_again_resumes_without_new_trials_or_versions(swept):
    cfg, study, summary, _ = swept
    again = run_sweep(cfg, "smile")
    assert again["trials"] == summary["trials"] and again["registered"] == summary["registered"]
    assert len(load_study(cfg, "smile").trials) == 4


@pytest.mark.slow
def test_a_killed_worker_leaves_a_failed_trial_and_the_rerun_completes_the_study(sweep_world, tmp_path):
    overrides = [*sweep_world, "attr=sad", "sweep.trials=2"]
    cfg = load_config(overrides)
    worker = subprocess.Popen([sys.executable, "-m", "chatface.cli", "sweep", *overrides, "sweep.trial_steps=200"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    storage, name = open_storage(cfg, study_name(cfg, "sad")), study_name(cfg, "sad")
    deadline = time.time() + 600
    try:
        while time.time() < deadline and worker.poll() is None:  # wait until it trains the first trial
            try:
                running = optuna.load_study(study_name=name, storage=storage).get_trials(
                    states=(TrialState.RUNNING,))
            except KeyError:  # the study does not exist yet
                running = []
            if running and "mlflow_run_id" in running[0].user_attrs:
                break
            time.sleep(0.5)
        assert worker.poll() is None, "the worker ended before it could be killed"
        time.sleep(1.0)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    summary = run_sweep(cfg, "sad")
    trials = load_study(cfg, "sad").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].user_attrs["paper_setting"] and trials[1].user_attrs["paper_setting"]  # run again
    assert trials[1].params == TINY_PAPER
    killed = MlflowClient(cfg.tracking.tracking_uri).get_run(trials[0].user_attrs["mlflow_run_id"])
    assert killed.info.status == "KILLED" and "is gone" in killed.data.tags["chatface.error"]
    assert summary["trials"]["COMPLETE"] == 2


@pytest.mark.slow
def test_two_workers_share_one_study(sweep_world):
    cfg = load_config([*sweep_world, "sweep.trials=4", "sweep.workers=2", "sweep.trial_steps=6",
                       "sweep.trial_val_every=3"])
    run_sweep(cfg, "angry")
    trials = load_study(cfg, "angry").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert [t.number for t in trials] == [0, 1, 2, 3]
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(pids) == 2 and os.getpid() not in pids  # both worker processes contributed
    assert len({t.user_attrs["mlflow_run_id"] for t in trials}) == 4


@pytest.mark.slow
def test_an_rdb_storage_holds_a_sweep_too(sweep_world, tmp_path):
    cfg = load_config([*sweep_world, "sweep.trials=1", "sweep.objective=weighted",
                       f"sweep.storage=sqlite:///{tmp_path}/optuna.db"])
    summary = run_sweep(cfg, "surprised")
    study = optuna.load_study(study_name="chatface-synth-surprised-weighted", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert study.trials[0].state == TrialState.COMPLETE and study.trials[0].params == TINY_PAPER
    assert study.trials[0].value == pytest.approx(summary["best_trial"]["score"])
    assert study.trials[0].intermediate_values.keys() == {1, 2}  # reported to Optuna's pruner
