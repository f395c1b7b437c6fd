"""Does the default leaderboard fit its budget? (Issue #7's goal: <= 60 minutes on 2 CPU cores, fresh clone.)

Runs the real leaderboard on one attribute in a scratch folder with every trained method cut to `--steps` steps,
measures each method's seconds per training step and editing time side by side, and projects the default
leaderboard (every attribute, every method at its configured budget) from them, plus the latent caching.
ChatFace trains as `make train` does, with a validation every `mapper.val_every` steps: it is timed for one such
period, so its projection counts its validations too; its validation latents are cached with the rest, up front.
DiffusionCLIP and Asyrp invert each face once for all attributes; the projection counts those inversions for every
attribute, so it is an upper bound.

    python benchmarks/leaderboard_budget.py [--steps 3] [--attr smile] [key=value ...]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from chatface.backbone_eval import backbone_pipeline
from chatface.config import load_config
from chatface.leaderboard import leaderboard_config, run_leaderboard
from chatface.leaderboard_methods import check_methods
from chatface.train_mapper import mapper_latents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="training steps to time per baseline")
    parser.add_argument("--attr", default="smile")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    cfg = leaderboard_config(load_config(args.overrides))  # with ChatFace's leaderboard budget
    methods = check_methods(list(cfg.leaderboard.methods))
    with tempfile.TemporaryDirectory() as scratch:
        cut = [f"leaderboard.{m.name}.steps={args.steps}" for m in methods if m.name in cfg.leaderboard
               and m.name != "linear"]
        timed = load_config([*args.overrides, f"output_dir={scratch}",
                             f"tracking.tracking_uri=sqlite:///{scratch}/mlflow.db",
                             f"leaderboard.attrs=[{args.attr}]",
                             f"leaderboard.chatface_max_steps={cfg.mapper.val_every}", *cut])
        start = time.perf_counter()
        mapper_latents(timed, backbone_pipeline(timed), "val")
        run_leaderboard(timed)
        total = time.perf_counter() - start
        cells = {path.parent.parent.name: json.loads(path.read_text())
                 for path in Path(scratch).glob(f"leaderboard/*/{args.attr}/*/*/cell.json")}
    attrs, faces = len(cfg.leaderboard.attrs), cfg.leaderboard.faces
    fixed = total - sum((c["train_seconds"] or 0) + c["edit_seconds_per_face"] * faces for c in cells.values())
    print(f"threads: {torch.get_num_threads()}  timed on {args.attr} with {args.steps} steps per baseline, "
          f"{cfg.mapper.val_every} for ChatFace")
    print(f"{'method':<16}{'s/step':>8}{'steps':>7}{'batch':>7}{'edit s/face':>13}{'projected min/attr':>20}")
    projected = 0.0
    for method in methods:
        cell = cells[method.name]
        steps, batch = method.budget(cfg)
        timed_steps = {"linear": steps, "chatface": cfg.mapper.val_every}.get(method.name, args.steps)
        per_step = (cell["train_seconds"] or 0) / max(timed_steps, 1)
        minutes = (per_step * steps + cell["edit_seconds_per_face"] * faces) / 60
        projected += minutes * attrs
        print(f"{method.name:<16}{per_step:>8.2f}{steps:>7}{batch:>7}{cell['edit_seconds_per_face']:>13.2f}"
              f"{minutes:>20.1f}")
    print(f"latent caching, loading, bootstrap and report (once): {fixed / 60:.1f} min")
    print(f"projected default leaderboard ({attrs} attributes x {len(methods)} methods): "
          f"{projected + fixed / 60:.1f} min (goal: 60)")


if __name__ == "__main__":
    main()
