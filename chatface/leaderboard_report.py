"""The leaderboard's files: a markdown table (printed too), a CSV, a grouped bar chart and an image grid per
attribute (rows: the source faces, then each method's edits)."""

import csv
import math
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from chatface.edit_grid import labelled_rows
from chatface.leaderboard_methods import METHODS

COLUMNS = {  # score name -> (heading, higher is better)
    "sdir": ("Sdir ↑", True), "sc": ("SC ↑", True), "id": ("ID ↑", True),
    "edit_success": ("edit acc ↑", True), "leakage": ("leakage ↓", False),
}
GRID_FACES = 8


def write_report(cfg: DictConfig, cells: list, edits: dict[tuple[str, str], torch.Tensor], sources: torch.Tensor,
                 folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    scored = [cell for cell in cells if cell.scores]
    names = [name for name in COLUMNS if scored and name in scored[0].scores]
    paths = {"markdown": folder / "leaderboard.md", "csv": folder / "leaderboard.csv",
             "chart": folder / "leaderboard.png"}
    paths["markdown"].write_text(markdown(cfg, cells, names, len(sources)))
    write_csv(cells, paths["csv"])
    bar_chart(cells, names, paths["chart"])
    for attr in dict.fromkeys(cell.attr for cell in cells):
        rows = [("source", sources[:GRID_FACES])]
        rows += [(cell.title, edits[attr, cell.method][:GRID_FACES]) for cell in cells
                 if cell.attr == attr and (attr, cell.method) in edits]
        paths[f"grid_{attr}"] = labelled_rows(rows, folder / f"grid_{attr}.png")
    return paths


def markdown(cfg: DictConfig, cells: list, names: list[str], faces: int) -> str:
    lines = [f"# Leaderboard: {cfg.world.name} world, {faces} held-out faces", "", caption(cfg, cells, faces), "",
             "| attribute | method | " + " | ".join(COLUMNS[n][0] for n in names) + " | train s | edit s/face |",
             "|---|---|" + "---|" * len(names) + "---|---|"]
    for attr in dict.fromkeys(cell.attr for cell in cells):
        group = [cell for cell in cells if cell.attr == attr]
        # the no-edit row is a yardstick, not a contender
        edits = [cell for cell in group if cell.origin not in ("reference", "failed")]
        best = {name: _best([cell.scores[name][0] for cell in edits], COLUMNS[name][1]) for name in names}
        for cell in group:
            if cell.error:
                error = " ".join(cell.error.split()).replace("|", "/")[:200]
                lines.append(f"| {attr} | {cell.title} | failed: {error} |" + " |" * (len(names) + 1))
                continue
            scores = [_interval(cell.scores[name], cell in edits and cell.scores[name][0] == best[name])
                      for name in names]
            train = "—" if cell.train_seconds is None else f"{cell.train_seconds:.0f}"
            lines.append(f"| {attr} | {cell.title} | " + " | ".join(scores) +
                         f" | {train} | {cell.edit_seconds_per_face:.2f} |")
    lines += ["", "## Mean over attributes", "", "| method | " + " | ".join(COLUMNS[n][0] for n in names) +
              " | train s (total) |", "|---|" + "---|" * len(names) + "---|"]
    for title in dict.fromkeys(cell.title for cell in cells):
        group = [cell for cell in cells if cell.title == title and cell.scores]
        means = [f"{_nanmean([cell.scores[name][0] for cell in group]):.3f}" for name in names]
        train = sum(cell.train_seconds or 0.0 for cell in group)
        lines.append(f"| {title} | " + " | ".join(means) + f" | {train:.0f} |")
    return "\n".join(lines) + "\n"


def caption(cfg: DictConfig, cells: list, faces: int) -> str:
    lines = [
        f"Every method edits the same {faces} held-out faces with the same backbone ({cfg.backbone.weights}) and "
        f"judges; each edit is scored against its input face. A cell is the score over all faces and, in brackets, "
        f"its 95% bootstrap interval ({cfg.leaderboard.bootstrap} resamples of the faces); the best edit per "
        f"attribute is bold. The no-edit row scores the reconstruction itself ({cfg.mapper.steps}-step DDIM "
        f"inversion with {cfg.backbone.invert_refine} fixed-point refinements, as the editor inverts a photo, and "
        f"decoding): what the backbone alone changes; ChatFace, the StyleCLIP mapper and the linear direction edit "
        f"from that inversion, DiffusionCLIP and Asyrp from their own.",
        "",
        "The baselines run on the shared DiffAE backbone instead of their own generators: StyleCLIP's mapper edits "
        "z_sem in place of StyleGAN's W+ (no SMS); DiffusionCLIP fine-tunes and Asyrp shifts the DiffAE UNet, "
        "conditioned on the face's own z_sem.",
        "",
        f"Training budgets ({cfg.leaderboard.train_faces} training faces; wall times with "
        f"{torch.get_num_threads()} CPU thread(s)):",
    ]
    for method in dict.fromkeys(cell.method for cell in cells if cell.origin != "reference"):
        group = [cell for cell in cells if cell.method == method]
        origins = sorted({cell.origin for cell in group if cell.train_seconds is None and not cell.error})
        section = OmegaConf.to_container(METHODS[method].section(cfg), enum_to_str=True)  # sms=none, not an enum
        settings = ", ".join(f"{key}={value}" for key, value in section.items() if key not in ("steps", "batch_size"))
        budget = f"{group[0].steps} steps × batch {group[0].batch_size}"
        lines.append(f"- {group[0].title}: {budget} ({settings})" + (f"; from {', '.join(origins)}" if origins else ""))
    return "\n".join(lines)


def write_csv(cells: list, path: Path) -> None:
    names = list(next((cell.scores for cell in cells if cell.scores), {}))
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["attr", "method", "origin", "steps", "batch_size", "train_seconds", "edit_seconds_per_face",
                         *(f"{name}{suffix}" for name in names for suffix in ("", "_low", "_high")), "error"])
        for cell in cells:
            writer.writerow([cell.attr, cell.method, cell.origin, cell.steps, cell.batch_size,
                             "" if cell.train_seconds is None else f"{cell.train_seconds:.3f}",
                             f"{cell.edit_seconds_per_face:.4f}",
                             *(f"{value:.4f}" for name in names for value in cell.scores.get(name, (math.nan,) * 3)),
                             cell.error or ""])


def bar_chart(cells: list, names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attrs, titles = list(dict.fromkeys(c.attr for c in cells)), list(dict.fromkeys(c.title for c in cells))
    by_key = {(c.attr, c.title): c for c in cells}
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    width = 0.8 / len(titles)
    for axis, name in zip(axes[0], names):
        for index, title in enumerate(titles):
            scores = [by_key[attr, title].scores.get(name, (math.nan,) * 3) for attr in attrs]
            values = [s[0] for s in scores]
            errors = [[max(s[0] - s[1], 0) for s in scores], [max(s[2] - s[0], 0) for s in scores]]
            axis.bar([i + index * width for i in range(len(attrs))], values, width, yerr=errors, capsize=2,
                     label=title)
        axis.set_title(COLUMNS[name][0])
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(attrs))], attrs, rotation=20, fontsize=8)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _interval(score: tuple[float, float, float], best: bool) -> str:
    value, low, high = score
    if math.isnan(value):
        return "—"
    text = f"{value:.3f}"
    return (f"**{text}**" if best else text) + f" [{low:.2f}, {high:.2f}]"


def _best(values: list[float], higher: bool) -> float:
    present = [v for v in values if not math.isnan(v)]
    return (max if higher else min)(present) if present else math.nan


def _nanmean(values: list[float]) -> float:
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / len(present) if present else math.nan
