"""Do more sweep workers finish more trials per hour? (Issue #6: WORKERS=2 against WORKERS=1 on the same cores.)

Runs the real sweep (Optuna journal storage, worker processes, MLflow, the registry) twice in a scratch folder,
side by side: `--trials` trials with one worker, then with `--workers`. So that both runs do the same work, every
trial trains the same setting (a search space of one point: the world's mapper recipe, the paper's T) for
`--steps` steps with one validation, and nothing is pruned. The latents are cached before either run is timed.

    python benchmarks/sweep_workers.py [--trials 4] [--workers 2] [--steps 20] [--attr curly_hair] [key=value ...]
"""

import argparse
import tempfile
import time
from pathlib import Path

from chatface.backbone_eval import backbone_pipeline
from chatface.config import load_config
from chatface.sweep import run_sweep
from chatface.train_mapper import mapper_latents

ONE_POINT_SPACE = "mapper.steps: {type: categorical, choices: [8]}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=4, help="trials each run finishes")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the second run")
    parser.add_argument("--steps", type=int, default=20, help="training steps of every trial")
    parser.add_argument("--attr", default="curly_hair")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        space = Path(scratch) / "one_point.yaml"
        space.write_text(ONE_POINT_SPACE)
        common = [*args.overrides, f"output_dir={scratch}", f"tracking.tracking_uri=sqlite:///{scratch}/mlflow.db",
                  f"sweep.space={space}", "sweep.pruner=none", f"sweep.trials={args.trials}",
                  f"sweep.trial_steps={args.steps}", f"sweep.trial_val_every={args.steps}"]
        cfg = load_config(common)
        pipe = backbone_pipeline(cfg)
        for split in ("train", "val"):
            mapper_latents(cfg, pipe, split)
        rates = {}
        for workers in (1, args.workers):
            timed = load_config([*common, f"sweep.workers={workers}",
                                 f"sweep.storage={scratch}/journal-{workers}.log"])  # a study of its own
            start = time.perf_counter()
            summary = run_sweep(timed, args.attr)
            seconds = time.perf_counter() - start
            rates[workers] = summary["trials"]["COMPLETE"] / seconds * 3600
            print(f"[bench] {workers} worker(s): {summary['trials']['COMPLETE']} trials in {seconds:.0f} s",
                  flush=True)
    print(f"\ntrials of {args.steps} steps on {args.attr}, the same setting in every trial:")
    for workers, rate in rates.items():
        print(f"  WORKERS={workers}: {rate:6.1f} trials/hour")
    print(f"  WORKERS={args.workers} / WORKERS=1: {rates[args.workers] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
