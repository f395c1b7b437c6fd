"""Backbone latency on this machine, to choose precision and memory layout.

(a) synth64: encode + invert + decode at T = 8 (unrefined inversion), per image, batch 1 and 16, on the CPU in fp32,
    contiguous vs channels_last; the shipped weights when present, else random ones (speed does not depend on them).
(b) ffhq256_autoenc, random weights: one denoiser forward, batch 1 and 8, fp32 vs bf16 autocast, contiguous vs
    channels_last, on the CPU and on CUDA when present.

First a probe: one 3x3 convolution in every setting, per device. Then the cells, every batch-1 cell before the
large batches, against one time budget: a cell is timed over repeated calls for about a second (the cold first call
dropped), a slow one by its single cold call (marked *), and a cell whose estimate would overrun the budget is
skipped. Estimates come from batch 1, and for bf16 from fp32 times the probe's bf16/fp32 ratio: on a CPU without
native bf16 kernels (AVX2 only) bf16 convolutions take a fallback path many times slower than fp32.

On a machine busy with other work (a training in the background), wall-clock times say more about the other work
than about the model: `--cpu-time` measures the CPU time of one thread instead (CPU only), which the load changes
little; the budget then counts CPU seconds too.

    python benchmarks/backbone_speed.py [--budget 170] [--cpu-time]
"""

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from diffusion import DDIMScheduler, DiffAEPipeline
from networks.diffae import DiffAE, preset
from networks.diffae.checkpoint import load_backbone

SYNTH_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "synth" / "backbone.safetensors"
STEPS = 8
SYNTH, FFHQ = f"synth64 encode+invert+decode T={STEPS}", "ffhq256 denoiser forward"

Call = Callable[[], object]


@dataclass(frozen=True)
class Setting:
    device: str
    bf16: bool = False
    channels_last: bool = False

    @property
    def name(self) -> str:
        return ("bf16" if self.bf16 else "fp32") + (" CL" if self.channels_last else "")

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def run(self, call: Call) -> Call:
        """`call` under this setting's autocast, waiting for the device to finish."""

        def wrapped() -> None:
            with torch.autocast(self.device, dtype=torch.bfloat16) if self.bf16 else nullcontext():
                call()
            if self.device == "cuda":
                torch.cuda.synchronize()

        return wrapped


def settings(device: str, bf16: bool = True) -> list[Setting]:
    return [Setting(device, b, cl) for b in ((False, True) if bf16 else (False,)) for cl in (False, True)]


COLUMNS = [s.name for s in settings("cpu")]


class Timer:
    """Times calls with one clock (wall or CPU) against one deadline on that clock."""

    def __init__(self, clock: Callable[[], float], budget_s: float):
        self.clock, self.deadline = clock, clock() + budget_s

    def left_s(self) -> float:
        return self.deadline - self.clock()

    def seconds_per_call(self, call: Call, min_seconds: float = 1.0) -> tuple[float, bool]:
        """Mean seconds of the warm calls within about min_seconds, or (seconds of the one call, True) if cold."""
        times: list[float] = []
        while sum(times) < min_seconds:
            start = self.clock()
            call()
            times.append(self.clock() - start)
        return (sum(times[1:]) / (len(times) - 1), False) if len(times) > 1 else (times[0], True)


def conv_probe(timer: Timer, device: str) -> dict[str, float]:
    """Seconds of one 3x3 convolution, 64 -> 64 channels at 32x32, batch 1, in every setting."""
    conv, x = nn.Conv2d(64, 64, 3, padding=1), torch.randn(1, 64, 32, 32)
    times = {}
    for s in settings(device):
        layer, h = conv.to(device, memory_format=s.memory_format), x.to(device, memory_format=s.memory_format)
        times[s.name] = timer.seconds_per_call(s.run(lambda: layer(h)), min_seconds=0.5)[0]
    return times


def moved(model: DiffAE, s: Setting, x: torch.Tensor) -> tuple[DiffAE, torch.Tensor]:
    return model.to(s.device, memory_format=s.memory_format), x.to(s.device, memory_format=s.memory_format)


def round_trip(model: DiffAE, prediction: str, s: Setting, batch: int) -> Call:
    model, x = moved(model, s, torch.rand(batch, 3, 64, 64) * 2 - 1)
    pipe = DiffAEPipeline(model, DDIMScheduler(prediction=prediction))
    return s.run(lambda: pipe.reconstruct(x, STEPS))


def denoiser_forward(model: DiffAE, s: Setting, batch: int) -> Call:
    model, x = moved(model, s, torch.randn(batch, 3, 256, 256))
    t, z = torch.full((batch,), 500, device=s.device), torch.randn(batch, model.arch.z_dim, device=s.device)
    return s.run(lambda: model(x, t, z))


def synth_model() -> tuple[DiffAE, str, str]:
    """(model, prediction, where the weights came from)."""
    if SYNTH_WEIGHTS.is_file():
        return *load_backbone(SYNTH_WEIGHTS, "synth64"), "shipped weights"
    return DiffAE(preset("synth64")).eval(), "v", "random weights"


def plan(devices: list[str]) -> Iterator[tuple[str, Setting, int]]:
    """Every batch-1 cell first, then the large batches while the budget lasts."""
    for synth_batch, ffhq_batch in ((1, 1), (16, 8)):
        yield from ((SYNTH, s, synth_batch) for s in settings("cpu", bf16=False))
        yield from ((FFHQ, s, ffhq_batch) for device in devices for s in settings(device))


class Table:
    """Milliseconds per image by (workload, device, batch) and setting."""

    def __init__(self, timer: Timer, probes: dict[str, dict[str, float]]):
        self.timer, self.probes = timer, probes
        self.ms: dict[tuple[str, str, int], dict[str, float]] = {}
        self.text: dict[tuple[str, str, int], dict[str, str]] = {}

    def estimate_s(self, workload: str, s: Setting, batch: int) -> float:
        """Seconds the cell should take, from its batch-1 time or from fp32 times the probe's bf16/fp32 ratio."""
        row = self.ms.get((workload, s.device, 1), {})
        if s.name in row:
            return row[s.name] * batch / 1000
        fp32 = replace(s, bf16=False)
        if s.bf16 and fp32.name in row:
            probe = self.probes[s.device]
            return row[fp32.name] * batch / 1000 * probe[s.name] / probe[fp32.name]
        return 0.0

    def time(self, workload: str, s: Setting, batch: int, make_call: Callable[[], Call]) -> None:
        key, estimate, left = (workload, s.device, batch), self.estimate_s(workload, s, batch), self.timer.left_s()
        if left <= 0 or estimate > left:
            self.text.setdefault(key, {})[s.name] = f"skip ~{estimate:.0f}s" if estimate else "no time"
            return
        seconds, cold = self.timer.seconds_per_call(make_call())
        self.ms.setdefault(key, {})[s.name] = 1000 * seconds / batch
        self.text.setdefault(key, {})[s.name] = f"{1000 * seconds / batch:.1f}" + ("*" if cold else "")

    def print(self) -> None:
        lines = [["workload", "device", "batch", *(f"{c} ms/img" for c in COLUMNS), "CL gain", "bf16 gain"]]
        for key, text in self.text.items():
            ms = self.ms.get(key, {})
            lines.append([*map(str, key), *(text.get(c, "-") for c in COLUMNS),
                          ratio(ms, "fp32", "fp32 CL"), ratio(ms, "fp32", "bf16")])
        widths = [max(map(len, column)) for column in zip(*lines)]
        for line in lines:
            print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
        print("*: one cold call.  skip: the estimate overruns the budget; no time: the budget is spent.  "
              "CL gain: fp32 time / fp32 channels_last time.  bf16 gain: fp32 time / bf16 time.")


def ratio(ms: dict[str, float], base: str, other: str) -> str:
    return f"{ms[base] / ms[other]:.2f}x" if base in ms and other in ms else "-"


def main(budget_s: float, cpu_time: bool) -> None:
    if cpu_time:
        torch.set_num_threads(1)
    timer = Timer(time.process_time if cpu_time else time.perf_counter, budget_s)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not cpu_time else [])
    gpu = f", {torch.cuda.get_device_name()}" if "cuda" in devices else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}{gpu}; times are "
          + ("CPU time of one thread" if cpu_time else "wall-clock"))
    synth, prediction, weights = synth_model()
    ffhq = DiffAE(preset("ffhq256_autoenc")).eval()
    print(f"synth64: {weights}, {prediction} prediction; ffhq256_autoenc: random weights")
    with torch.inference_mode():
        probes = {device: conv_probe(timer, device) for device in devices}
        for device, p in probes.items():
            print(f"probe, one 3x3 conv 64->64 ch at 32x32 on {device}: "
                  + ", ".join(f"{name} {1000 * s:.2f} ms" for name, s in p.items())
                  + f"; CL gain {p['fp32'] / p['fp32 CL']:.2f}x, bf16 gain {p['fp32'] / p['bf16']:.3f}x")
        table = Table(timer, probes)
        for workload, s, batch in plan(devices):
            if workload == SYNTH:
                table.time(workload, s, batch, lambda: round_trip(synth, prediction, s, batch))
            else:
                table.time(workload, s, batch, lambda: denoiser_forward(ffhq, s, batch))
    table.print()
    print(f"{budget_s - timer.left_s():.0f} s on the benchmark's clock")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=170.0, help="seconds for all timings (default 170)")
    parser.add_argument("--cpu-time", action="store_true", help="time one thread's CPU time (for a busy machine)")
    args = parser.parse_args()
    main(args.budget, args.cpu_time)
