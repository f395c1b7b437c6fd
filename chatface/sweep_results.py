"""What a sweep found: every trial's scores, the Pareto front of (sdir, id, sc), the table of the best trials, a CSV
and the Pareto-front plot.

The weighted score `weight_sdir * sdir + weight_id * id + weight_sc * sc` (sweep.weight_*) is the single objective
of `sweep.objective=weighted`, the value the pruners judge, and what picks the trial the registry gets.
"""

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig

OBJECTIVES = ("sdir", "id", "sc")  # all maximised


def weighted_score(metrics: Mapping[str, float], sweep: DictConfig) -> float:
    return sum(float(sweep[f"weight_{name}"]) * float(metrics[name]) for name in OBJECTIVES)


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    score: float | None
    metrics: dict[str, float]
    params: dict[str, Any]
    run_id: str | None
    paper: bool  # the paper's setting (the first trial)

    @property
    def objectives(self) -> tuple[float, ...]:
        return tuple(self.metrics[name] for name in OBJECTIVES)

    def describe_params(self) -> str:
        return " ".join(f"{key.removeprefix('mapper.')}={value:.3g}" if isinstance(value, float)
                        else f"{key.removeprefix('mapper.')}={value}" for key, value in self.params.items())


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    return [TrialRow(t.number, t.state.name, t.user_attrs.get("score"), dict(t.user_attrs.get("metrics", {})),
                     dict(t.params), t.user_attrs.get("mlflow_run_id"), bool(t.user_attrs.get("paper_setting")))
            for t in study.get_trials(deepcopy=False)]


def complete(rows: list[TrialRow]) -> list[TrialRow]:
    return [row for row in rows if row.state == "COMPLETE" and row.score is not None]


def pareto_front(rows: list[TrialRow]) -> list[TrialRow]:
    """The complete trials no other complete trial beats on every objective."""
    done = complete(rows)

    def dominates(a: TrialRow, b: TrialRow) -> bool:
        return all(x >= y for x, y in zip(a.objectives, b.objectives)) and a.objectives != b.objectives

    return [row for row in done if not any(dominates(other, row) for other in done)]


def best_trial(rows: list[TrialRow]) -> TrialRow | None:
    return max(complete(rows), key=lambda row: row.score, default=None)


def best_table(rows: list[TrialRow], front: list[TrialRow], limit: int = 10) -> str:
    """The `limit` best complete trials by the weighted score, with their objectives and params."""
    on_front = {row.number for row in front}
    lines = [f"{'trial':>5}  {'score':>6}  {'sdir':>6}  {'id':>6}  {'sc':>6}  {'pareto':<6}  params"]
    for row in sorted(complete(rows), key=lambda r: -r.score)[:limit]:
        mark = "yes" if row.number in on_front else ""
        lines.append(f"{row.number:>5}  {row.score:6.3f}  " + "  ".join(f"{v:6.3f}" for v in row.objectives)
                     + f"  {mark:<6}  {row.describe_params()}" + ("  (the paper's setting)" if row.paper else ""))
    counts = {state: sum(row.state == state for row in rows) for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    lines.append(", ".join(f"{count} {state.lower()}" for state, count in counts.items() if count))
    return "\n".join(lines)


def write_csv(rows: list[TrialRow], front: list[TrialRow], path: Path) -> Path:
    on_front = {row.number for row in front}
    params = sorted({key for row in rows for key in row.params})
    metrics = sorted({key for row in rows for key in row.metrics})
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["trial", "state", "score", *metrics, "pareto", "paper_setting", "mlflow_run_id", *params])
        for row in rows:
            writer.writerow([row.number, row.state, row.score, *(row.metrics.get(m) for m in metrics),
                             row.number in on_front, row.paper, row.run_id, *(row.params.get(p) for p in params)])
    return path


def plot_pareto(rows: list[TrialRow], front: list[TrialRow], path: Path, title: str) -> Path:
    """Two panels, sdir against id and against sc: every complete trial, the Pareto front, the paper's setting
    and the best trial by the weighted score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done, best = complete(rows), best_trial(rows)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for axis, other in zip(axes, ("id", "sc")):
        axis.scatter([r.metrics["sdir"] for r in done], [r.metrics[other] for r in done], c="0.6", s=25,
                     label="complete trials")
        # the front of three objectives seen in two: its points, not a curve
        axis.scatter([r.metrics["sdir"] for r in front], [r.metrics[other] for r in front], c="tab:red", s=40,
                     label="Pareto set (sdir, id, sc)")
        for row, marker, colour, label in ((next((r for r in done if r.paper), None), "*", "tab:blue",
                                            "paper's setting"), (best, "s", "none", "best weighted score")):
            if row is not None:
                axis.scatter([row.metrics["sdir"]], [row.metrics[other]], marker=marker, s=160, label=label,
                             facecolors=colour, edgecolors="black", zorder=3)
        for row in front:
            axis.annotate(str(row.number), (row.metrics["sdir"], row.metrics[other]), fontsize=7,
                          xytext=(3, 3), textcoords="offset points")
        axis.set_xlabel("Sdir (directional CLIP similarity) ↑")
        axis.set_ylabel({"id": "ID (identity similarity) ↑", "sc": "SC (segmentation consistency) ↑"}[other])
        axis.grid(alpha=0.3)
        axis.margins(0.08)
    axes[0].legend(fontsize=8, loc="best")
    figure.suptitle(title)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
