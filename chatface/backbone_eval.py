"""How good is a backbone? Reconstruction and semantic-decoding PSNR on held-out faces, and a preview PNG."""

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import DataLoader
from tqdm import tqdm

from chatface.images import to_pil
from datamodules.synthface import SynthFaceDataset
from diffusion import DiffAEPipeline
from metrics.psnr import psnr


def compute_device(accelerator: str) -> torch.device:
    """The torch device of a Lightning accelerator name: cpu, gpu (or cuda), auto."""
    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"trainer.accelerator={accelerator}, but torch sees no CUDA device on this machine; "
                             "run on a GPU machine or set trainer.accelerator=cpu")
        return torch.device("cuda")
    return torch.device(accelerator)


def backbone_pipeline(cfg: DictConfig, device: str | None = None) -> DiffAEPipeline:
    """The frozen backbone on `device`, by default the one `trainer.accelerator` names (latents are cached there)."""
    device = torch.device(device) if device else compute_device(cfg.trainer.accelerator)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matrix products, as Lightning advises on NVIDIA GPUs
    pipe = DiffAEPipeline.from_weights(cfg.backbone.weights, cfg.backbone.preset)
    memory_format = torch.channels_last if cfg.trainer.channels_last else torch.preserve_format
    pipe.model.to(device, memory_format=memory_format)
    return pipe


def held_out_faces(cfg: DictConfig, count: int) -> SynthFaceDataset:
    return SynthFaceDataset("test", count, count, cfg.world.image_size)


@torch.inference_mode()
def evaluate_backbone(cfg: DictConfig, faces: int = 256, batch_size: int = 32) -> dict[str, float]:
    """psnr_T20 / psnr_T8: invert then decode; psnr_semantic: decode z_sem from a random x_T (T = 20)."""
    pipe, refine = backbone_pipeline(cfg), cfg.backbone.invert_refine
    scores: dict[str, list[torch.Tensor]] = {"psnr_T20": [], "psnr_T8": [], "psnr_semantic": []}
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for batch in tqdm(DataLoader(held_out_faces(cfg, faces), batch_size=batch_size), desc="eval backbone"):
        x = batch["image"].to(pipe.device)
        z_sem = pipe.encode(x)
        for steps in (20, 8):
            x_T = pipe.invert(x, z_sem, steps, refine)
            scores[f"psnr_T{steps}"].append(psnr(pipe.decode(x_T, z_sem, steps), x))
        noise = torch.randn(x.shape, generator=generator).to(pipe.device)
        scores["psnr_semantic"].append(psnr(pipe.decode(noise, z_sem, 20), x))
    seconds = time.perf_counter() - start
    result = {name: round(torch.cat(values).mean().item(), 2) for name, values in scores.items()}
    result["seconds_per_image"] = round(seconds / faces, 3)
    result["faces"] = faces
    result["invert_refine"] = refine
    return result


@torch.inference_mode()
def backbone_preview(cfg: DictConfig, out: Path, count: int = 8) -> Path:
    """Rows: inputs, T=8 reconstructions, semantic decodings (random x_T), and a z_sem interpolation of two faces."""
    pipe = backbone_pipeline(cfg)
    x = torch.stack([held_out_faces(cfg, count)[i]["image"] for i in range(count)]).to(pipe.device)
    z_sem = pipe.encode(x)
    reconstruction = pipe.decode(pipe.invert(x, z_sem, 8, cfg.backbone.invert_refine), z_sem, 8)
    x_T = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).to(pipe.device)
    semantic = pipe.decode(x_T, z_sem, 20)
    weights = torch.linspace(0, 1, count)[:, None]
    path = torch.lerp(z_sem[0:1], z_sem[1:2], weights)
    interpolation = pipe.decode(x_T[:1].expand(count, -1, -1, -1), path, 20)
    rows = [row.cpu() for row in (x, reconstruction, semantic, interpolation)]
    grid = np.concatenate([np.concatenate([np.asarray(to_pil(img)) for img in row], axis=1) for row in rows], axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(out)
    return out
