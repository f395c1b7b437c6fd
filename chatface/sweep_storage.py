"""Where a sweep's Optuna study lives, and how a trial whose worker died is found and failed.

Storage (`sweep.storage`): unset, one journal file per study under runs/optuna/ (Optuna's JournalFileBackend
appends under a file lock: safe for several processes on one machine); a URL with `://` is an RDB storage
(postgresql://, mysql://, sqlite:///) for workers on many machines; anything else is a journal file path.

Heartbeat: Optuna 5 implements heartbeats for RDBStorage only, not for journals, so chatface keeps one mechanism
for every storage. A worker records {host, pid, process start time} on each trial it runs (`claim`) and a thread
refreshes the trial's `heartbeat` user attribute every sweep.heartbeat_s. Before each trial a worker fails every
RUNNING trial whose process on this host is gone, or, run from another host, whose heartbeat is older than
STALE_HEARTBEATS periods; a trial nobody claimed (a worker died between ask and claim) fails after that time too.
"""

import fcntl
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from omegaconf import DictConfig
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

STALE_HEARTBEATS = 4


def study_name(cfg: DictConfig, attr: str) -> str:
    """`chatface-<world>-<attr>`; a weighted-objective study (one direction, not three) gets `-weighted`."""
    return f"chatface-{cfg.world.name}-{attr}" + ("-weighted" if cfg.sweep.objective == "weighted" else "")


class SweepError(RuntimeError):
    """A sweep that cannot go on (e.g. every trial fails); the message says why and where to look."""


def sweep_dir(cfg: DictConfig, attr: str) -> Path:
    """runs/sweeps/<world>/<attr>/ (a weighted-objective study: its `weighted/` subfolder): trial folders, the
    table of trials, the Pareto-front plot."""
    folder = Path(cfg.output_dir) / "sweeps" / cfg.world.name / attr
    return folder / "weighted" if cfg.sweep.objective == "weighted" else folder


def open_storage(cfg: DictConfig, name: str) -> BaseStorage:
    url = cfg.sweep.storage
    if url and "://" in url:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            # several local workers write to one file: wait for the lock instead of failing after 5 s
            return RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        return RDBStorage(url)
    path = Path(url) if url else optuna_dir(cfg) / f"{name}.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def optuna_dir(cfg: DictConfig) -> Path:
    return Path(cfg.output_dir) / "optuna"


@contextmanager
def ask_lock(cfg: DictConfig, name: str) -> Iterator[None]:
    """Serialises "count the trials, then ask for one" among the workers of this machine, so that they never
    start more trials than requested (workers on other machines may overshoot by one trial each)."""
    path = optuna_dir(cfg) / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    start: str | None  # the process's start time: a later process with a reused pid is not mistaken for it

    @classmethod
    def me(cls) -> "Worker":
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()))

    def alive(self) -> bool:
        """Only answerable on the same host."""
        start = process_start(self.pid)
        return start is not None and (start == self.start or start == "?" or self.start == "?")


def process_start(pid: int) -> str | None:
    """The start time of a live process (None when there is none, or only a zombie); "?" where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    except OSError:  # /proc hides other users' processes: cannot tell, so trust the heartbeat's owner
        return "?"
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3, starttime field 22
    return None if fields[0] in ("Z", "X") else fields[19]


def claim(trial: Trial) -> None:
    worker = Worker.me()
    trial.set_user_attr("worker", {"host": worker.host, "pid": worker.pid, "start": worker.start})
    trial.set_user_attr("heartbeat", time.time())


class Heartbeat:
    """While it is open, refreshes the trial's `heartbeat` user attribute every `interval` seconds."""

    def __init__(self, trial: Trial, interval: float) -> None:
        self.trial, self.interval, self.stop = trial, interval, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial.number}")

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.trial.set_user_attr("heartbeat", time.time())
            except Exception as error:  # a storage hiccup must not kill the trial; the next beat tries again
                optuna.logging.get_logger(__name__).warning(f"heartbeat of trial {self.trial.number}: {error}")


def stale_reason(trial: FrozenTrial, heartbeat_s: float, now: float, me: Worker) -> str | None:
    """Why a RUNNING trial has no live worker, or None while it may still have one."""
    grace = STALE_HEARTBEATS * heartbeat_s
    worker = trial.user_attrs.get("worker")
    if worker is None:
        age = now - trial.datetime_start.timestamp() if trial.datetime_start else grace + 1
        return f"no worker claimed it in {age:.0f} s" if age > grace else None
    other = Worker(worker["host"], int(worker["pid"]), worker.get("start"))
    if other.host == me.host:
        return None if other.alive() else f"its worker process {other.pid} on {other.host} is gone"
    silent = now - float(trial.user_attrs.get("heartbeat", 0.0))
    return f"no heartbeat from {other.host} (pid {other.pid}) for {silent:.0f} s" if silent > grace else None


def fail_stale_trials(study: optuna.Study, heartbeat_s: float) -> list[tuple[FrozenTrial, str]]:
    """Marks FAILED every RUNNING trial without a live worker; returns them with the reason."""
    failed, now, me = [], time.time(), Worker.me()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = stale_reason(trial, heartbeat_s, now, me)
        if reason is not None:
            frozen = study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            if frozen.state == TrialState.FAIL:
                failed.append((trial, reason))
    return failed
