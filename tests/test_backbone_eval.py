"""`chatface eval backbone` and `chatface backbone preview` run end to end; the shipped backbone reconstructs."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from chatface.backbone_eval import backbone_pipeline, backbone_preview, evaluate_backbone, held_out_faces
from chatface.config import load_config
from metrics.psnr import psnr
from networks.diffae import DiffAE, preset
from networks.diffae.checkpoint import save_backbone

SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "synth" / "backbone.safetensors"


@pytest.fixture
def tiny_backbone_config(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_backbone(DiffAE(preset("synth64_tiny")), weights, "synth64_tiny", "v")
    return load_config([f"backbone.weights={weights}", "backbone.preset=synth64_tiny", "backbone.invert_refine=1"])


def test_eval_reports_every_figure(tiny_backbone_config):
    result = evaluate_backbone(tiny_backbone_config, faces=4, batch_size=2)
    for key in ("psnr_T20", "psnr_T8", "psnr_semantic", "seconds_per_image"):
        assert torch.isfinite(torch.tensor(result[key]))
    assert result["faces"] == 4


def test_preview_writes_four_rows(tiny_backbone_config, tmp_path):
    out = backbone_preview(tiny_backbone_config, tmp_path / "preview.png", count=3)
    assert Image.open(out).size == (3 * 64, 4 * 64)


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped synth backbone is not in this checkout")
def test_shipped_backbone_inverts_and_decodes_back():
    cfg = load_config()
    pipe = backbone_pipeline(cfg)
    x = torch.stack([held_out_faces(cfg, 8)[i]["image"] for i in range(8)])
    with torch.inference_mode():
        z_sem = pipe.encode(x)
        reconstruction = pipe.decode(pipe.invert(x, z_sem, 20, cfg.backbone.invert_refine), z_sem, 20)
    assert psnr(reconstruction, x).mean() > 27
