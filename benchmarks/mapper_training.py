"""How long does training one attribute's mapper take with the synth defaults? (Issue #5's goal: <= 10 minutes.)

Runs the real `train_mapper` (Lightning, judges, SMS decode, the validations at `mapper.val_every`, the export) in
a scratch folder, after the latents are cached (timed apart: they are computed once and shared by every attribute).
By default it trains the configured `mapper.max_steps`, so the figure is the wall time of `make train`; `--steps`
times fewer and projects (start-up and export then count per step: an overestimate).

    python benchmarks/mapper_training.py [--steps N] [--attr smile] [key=value ...]
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from chatface.backbone_eval import backbone_pipeline
from chatface.config import load_config
from chatface.train_mapper import mapper_latents, train_mapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, help="training steps to time (default: mapper.max_steps)")
    parser.add_argument("--attr", default="smile")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    cfg = load_config(args.overrides)
    default_steps = cfg.mapper.max_steps
    steps = args.steps or default_steps

    start = time.perf_counter()
    pipe = backbone_pipeline(cfg)
    for split in ("train", "val"):
        mapper_latents(cfg, pipe, split)
    cache_seconds = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as scratch:
        val_every = min(cfg.mapper.val_every, steps)  # validations at the configured pace, one at least
        timed = load_config([*args.overrides, f"mapper.max_steps={steps}", f"mapper.val_every={val_every}",
                             f"tracking.tracking_uri=sqlite:///{scratch}/mlflow.db"])
        start = time.perf_counter()
        train_mapper(timed, args.attr, run_dir=Path(scratch) / "run")
        seconds = time.perf_counter() - start

    print(f"threads: {torch.get_num_threads()}  batch: {cfg.mapper.batch_size}  T: {cfg.mapper.steps}  "
          f"width: {cfg.mapper.width}")
    print(f"latent cache (once, shared by all attributes): {cache_seconds:.1f} s")
    print(f"{steps} steps, validated every {val_every}: {seconds:.1f} s = {seconds / 60:.1f} min")
    if steps != default_steps:
        print(f"projected default training ({default_steps} steps): {seconds / steps * default_steps / 60:.1f} min")


if __name__ == "__main__":
    main()
