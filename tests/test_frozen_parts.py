"""The frozen backbone and judges attached to an editing method go where Lightning moves the method (the GPU of the
ffhq256 world), yet are never trained or checkpointed. CI has no GPU: a dtype move stands in for a device move."""

import lightning as L
import pytest
import torch

from chatface.backbone_eval import backbone_pipeline, compute_device
from chatface.config import load_config
from chatface.train_mapper import mapping_module
from lightning_modules.linear_direction import LinearDirection
from networks.judges.loading import load_judges


def dtypes(module: torch.nn.Module) -> set[torch.dtype]:
    return {p.dtype for p in module.parameters()}


def test_the_backbone_and_judges_follow_the_mapper_but_stay_out_of_its_state(tiny_cfg):
    pipe, judges = backbone_pipeline(tiny_cfg), load_judges(tiny_cfg.judges)
    module = mapping_module(tiny_cfg, "smile", torch.randn(4, pipe.model.arch.z_dim)).attach(pipe, judges)
    module.to(torch.float64)
    for network in (module, pipe.model, *judges.networks()):
        assert dtypes(network) == {torch.float64}
    assert all(key.startswith("mapper.") for key in module.state_dict())
    assert [p for group in module.configure_optimizers().param_groups for p in group["params"]] == list(
        module.mapper.parameters())
    module.float()
    assert dtypes(pipe.model) == {torch.float32}


def test_a_method_without_judges_moves_its_backbone(tiny_cfg):
    pipe = backbone_pipeline(tiny_cfg)
    module = LinearDirection("smile", "face", "smiling face", pipe.model.arch.z_dim, 8).attach(pipe, None)
    module.double()
    assert dtypes(pipe.model) == {torch.float64}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_asking_for_a_gpu_without_one_says_what_to_set():
    with pytest.raises(ValueError, match="trainer.accelerator=cpu"):
        compute_device("gpu")
    assert compute_device("auto") == torch.device("cpu")


def test_a_cosine_schedule_takes_the_mappers_lr_to_zero_at_its_last_step(tiny_world, tmp_path):
    cfg = load_config([*tiny_world, f"output_dir={tmp_path}", "mapper.lr_schedule=cosine", "mapper.lr=20",
                       "mapper.whiten=false"])
    module = mapping_module(cfg, "smile", torch.randn(4, 32))
    module.trainer = L.Trainer(max_steps=10, logger=False, enable_checkpointing=False)
    optimization = module.configure_optimizers()
    optimizer, schedule = optimization["optimizer"], optimization["lr_scheduler"]["scheduler"]
    assert optimization["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        schedule.step()
    assert rates[0] == 20 and all(a > b for a, b in zip(rates, rates[1:]))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0, abs=1e-9)
