"""The ffhq256 world on a GPU, with the official architectures and random weights (speed does not depend on them).

(a) Latent caching: encode + invert (T = 8, one refinement, as `mapper.invert_refine`) + decode, per image, in fp32
    and under bf16 autocast.
(b) Mapper training: the real `AttributeMapping` in a Lightning Trainer (DiffAE ffhq256_autoenc, CLIP ViT-B-32,
    ArcFace IResNet-50), seconds per step and peak GPU memory with and without gradient checkpointing, in
    bf16-mixed and fp32, projected to the default `mapper.max_steps`; then one validation pass (the edit metrics,
    BiSeNet included) per face.
(c) Editing with the `Editor` of `chatface edit` and the chat: new faces (encode + invert + decode) and a re-render.
Each in channels_last and contiguous memory layouts where it matters.

No MLflow or latent files: it times the GPU work that `chatface train attr=X` with WORLD=ffhq256 does.

    python benchmarks/ffhq256_gpu.py [--steps 12] [--batch 8] [--faces 64]
"""

import argparse
import time

import lightning as L
import open_clip
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from chatface.config import BackboneConfig, MapperConfig
from chatface.editor import Editor, TrainedMapper
from datamodules.latent_cache import LatentDataset
from diffusion import DDIMScheduler, DiffAEPipeline
from lightning_modules.mapper import AttributeMapping
from networks.diffae import DiffAE, preset
from networks.judges import ClipJudge, FaceParser, IdentityJudge
from networks.judges.iresnet import IResNet
from networks.judges.loading import Judges
from networks.mapper import LatentMapper

STEPS = 8


def random_judges() -> Judges:
    clip = ClipJudge.from_open_clip(open_clip.create_model("ViT-B-32", force_quick_gelu=True), "ViT-B-32")
    return Judges(clip, IdentityJudge(IResNet()), FaceParser(), attributes=None)


def latents_per_second(pipe: DiffAEPipeline, faces: int, batch: int) -> tuple[dict[str, torch.Tensor], float]:
    """Cache-like latents of random images, and seconds per image (the first batch, a warm-up, not counted)."""
    parts: dict[str, list[torch.Tensor]] = {"z": [], "x_T": [], "recon": []}
    elapsed = 0.0
    with torch.inference_mode():
        for first in range(-batch, faces, batch):
            x = torch.rand(batch, 3, pipe.model.arch.image_size, pipe.model.arch.image_size, device="cuda") * 2 - 1
            torch.cuda.synchronize()
            start = time.perf_counter()
            z = pipe.encode(x)
            x_T = pipe.invert(x, z, STEPS, refine=1)
            recon = pipe.decode(x_T, z, STEPS)
            torch.cuda.synchronize()
            if first >= 0:
                elapsed += time.perf_counter() - start
                for key, value in (("z", z), ("x_T", x_T), ("recon", recon)):
                    parts[key].append(value.float().cpu())
    latents = {key: torch.cat(values) for key, values in parts.items()}
    latents["labels"] = torch.zeros(len(latents["z"]), 0)
    return latents, elapsed / faces


class StepTimer(Callback):
    """Wall seconds of each training step, after the device has finished it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        torch.cuda.synchronize()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self.start)


def train_steps(module: AttributeMapping, latents: dict, steps: int, batch: int, precision: str) -> tuple[float, float]:
    """(seconds per step, without the first two; peak GiB) of `steps` real training steps."""
    timer = StepTimer()
    trainer = L.Trainer(max_steps=steps, accelerator="gpu", devices=1, precision=precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, callbacks=[timer])
    torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, DataLoader(LatentDataset(latents), batch, shuffle=True, drop_last=True))
    warm = timer.seconds[2:]
    return sum(warm) / len(warm), torch.cuda.max_memory_allocated() / 2**30


def validation_seconds_per_face(module: AttributeMapping, latents: dict, precision: str) -> float:
    trainer = L.Trainer(accelerator="gpu", devices=1, precision=precision, logger=False,
                        enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(LatentDataset(latents), 32)
    trainer.validate(module, loader, verbose=False)  # warm-up: kernels, cuDNN plans
    torch.cuda.synchronize()
    start = time.perf_counter()
    scores = trainer.validate(module, loader, verbose=False)[0]
    torch.cuda.synchronize()
    print("  validation scores (random weights, meaningless):", {k: round(v, 3) for k, v in scores.items()})
    return (time.perf_counter() - start) / len(latents["z"])


def editing_ms_per_face(pipe: DiffAEPipeline, images: torch.Tensor) -> tuple[float, float]:
    """(first edit of new faces: encode + invert + decode; a re-render of the same faces), ms per face, with the
    Editor of `chatface edit` and the chat (backbone.invert_refine = 4) and a random mapper."""
    mapper, edits = TrainedMapper(LatentMapper(pipe.model.arch.z_dim)), [("smile", 1.0)]
    editor = Editor(pipe, lambda attr: mapper, refine=BackboneConfig.invert_refine)
    editor.edit(editor.latents(images), edits, STEPS)  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    faces = editor.latents(images)
    editor.edit(faces, edits, STEPS)
    torch.cuda.synchronize()
    middle = time.perf_counter()
    editor.edit(faces, edits, STEPS)
    torch.cuda.synchronize()
    return 1000 * (middle - start) / len(images), 1000 * (time.perf_counter() - middle) / len(images)


def main(steps: int, batch: int, faces: int) -> None:
    torch.set_float32_matmul_precision("high")  # TF32, as chatface.backbone_eval.backbone_pipeline sets it
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, lightning {L.__version__}")
    torch.manual_seed(0)
    model = DiffAE(preset("ffhq256_autoenc")).eval().requires_grad_(False).to("cuda")
    print(f"ffhq256_autoenc: {sum(p.numel() for p in model.parameters()):,} parameters (random)")
    formats = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}

    print(f"(a) latent caching, encode + invert (T={STEPS}, refine 1) + decode, batch 32, {faces} faces")
    latents = {}
    for layout, memory_format in formats.items():
        model.to(memory_format=memory_format)
        for bf16 in (False, True):
            pipe = DiffAEPipeline(model, DDIMScheduler(prediction="eps"), bf16)
            latents, seconds = latents_per_second(pipe, faces, 32)
            print(f"  {layout:13} {'bf16' if bf16 else 'fp32 (TF32)':11}: {1000 * seconds:.1f} ms/image")

    default_steps = MapperConfig.max_steps
    print(f"(b) mapper training, batch {batch}, T={STEPS}, SMS linear; {steps} steps timed (first 2 dropped)")
    pipe, judges = DiffAEPipeline(model, DDIMScheduler(prediction="eps")), random_judges()
    for layout, precision, checkpointing in (("channels_last", "bf16-mixed", True), ("contiguous", "bf16-mixed", True),
                                             ("contiguous", "bf16-mixed", False), ("contiguous", "32-true", True)):
        model.to(memory_format=formats[layout])
        module = AttributeMapping("smile", "face", "smiling face", model.arch.z_dim, steps=STEPS,
                                  grad_checkpoint=checkpointing).attach(pipe, judges)
        seconds, peak = train_steps(module, latents, steps, batch, precision)
        print(f"  {layout:13} {precision:10} grad_checkpoint={checkpointing!s:5}: {seconds:.3f} s/step, peak "
              f"{peak:.1f} GiB; {default_steps} steps (mapper.max_steps) ~ {seconds * default_steps / 60:.1f} min")
    print(f"  validation (edit metrics: CLIP, ArcFace, BiSeNet), bf16-mixed: "
          f"{1000 * validation_seconds_per_face(module, latents, 'bf16-mixed'):.1f} ms/face")

    model.to("cuda")  # Lightning hands the module, and with it the backbone, back on the CPU
    images = torch.rand(8, 3, model.arch.image_size, model.arch.image_size) * 2 - 1
    first, again = editing_ms_per_face(DiffAEPipeline(model, DDIMScheduler(prediction="eps")), images)
    print(f"(c) editing 8 faces (Editor, T={STEPS}, refine {BackboneConfig.invert_refine}, fp32): "
          f"{first:.1f} ms/face for new faces, {again:.1f} ms/face to re-render")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="training steps timed per setting")
    parser.add_argument("--batch", type=int, default=8, help="training batch size (mapper.batch_size)")
    parser.add_argument("--faces", type=int, default=64, help="faces whose latents are computed")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/ffhq256_gpu.py needs a CUDA GPU; on CPU, run benchmarks/backbone_speed.py")
    main(args.steps, args.batch, args.faces)
