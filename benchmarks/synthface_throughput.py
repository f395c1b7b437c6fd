"""How many SynthFace images one CPU core renders per second, at 64, 128 and 256 px (issue #2's goal: >= 500 at 64).

The process is pinned to one core and timed by two clocks: the CPU time it was given (images per CPU-second: what
one core renders, whatever else the host runs) and the wall clock (which other processes on that core slow down).

    python benchmarks/synthface_throughput.py [--faces 500] [--repeats 3]
"""

import os

# Thread pools size themselves when numpy is first imported, so one thread must be asked for before that.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

from synthface import Face, sample_face  # noqa: E402

SIZES = (64, 128, 256)
WARM_UP = 10


def images_per_second(faces: list[Face], size: int, repeats: int) -> tuple[float, float]:
    """(per CPU-second, per wall-second), each the best of `repeats` passes over `faces`, after a few warm-up
    renders (they fill the per-size caches)."""
    for face in faces[:WARM_UP]:
        face.render(size)
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        for face in faces:
            face.render(size)
        best_cpu, best_wall = min(best_cpu, time.process_time() - cpu), min(best_wall, time.perf_counter() - wall)
    return len(faces) / best_cpu, len(faces) / best_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=500, help="faces in the fixed list rendered each pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best counts")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    faces = [sample_face(i, i) for i in range(args.faces)]
    print(f"SynthFace rendering on one core: {args.faces} faces, best of {args.repeats}")
    print(f"{'size':>6} {'images/CPU-s':>13} {'ms CPU/image':>13} {'images/wall-s':>14}")
    for size in SIZES:
        cpu_rate, wall_rate = images_per_second(faces, size, args.repeats)
        print(f"{size:>6} {cpu_rate:>13.1f} {1000 / cpu_rate:>13.2f} {wall_rate:>14.1f}")


if __name__ == "__main__":
    main()
