"""The DiffusionCLIP baseline on the tiny world: it fine-tunes a copy of the denoiser and nothing else, edits by
partial inversion (frozen model) + generation (the copy), and its state_dict is the whole trained state."""

import dataclasses
import inspect
import math

import lightning as L
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from chatface.backbone_eval import backbone_pipeline
from chatface.config import DiffusionCLIPConfig, load_config
from conftest import save_live_backbone
from datamodules.latent_cache import LatentDataset
from datamodules.synthface import SynthFaceDataset
from lightning_modules.diffusionclip import DiffusionCLIP
from networks.judges.loading import load_judges

# Small walks so that a training step takes a fraction of a second on the tiny backbone.
FIELDS = dict(lr=1e-3, sch_gamma=1.3, t_0=300, inv_steps=5, train_steps=2, test_steps=4, lambda_clip=3.0,
              lambda_l1=1.0, lambda_id=0.5, grad_checkpoint=False)


@pytest.fixture(scope="module")
def world(tiny_world, tmp_path_factory):
    """The tiny world's judges and a live random backbone (the tiny world's own has zero output layers, so every
    layer but the last would get zero gradient), plus the latent-cache items of four faces."""
    root = tmp_path_factory.mktemp("diffusionclip")
    cfg = load_config([*tiny_world, f"backbone.weights={save_live_backbone(root / 'live_backbone.safetensors')}"])
    pipe, judges = backbone_pipeline(cfg), load_judges(cfg.judges)
    faces = SynthFaceDataset("train", 4, 4, cfg.world.image_size)
    image = torch.stack([faces[i]["image"] for i in range(4)])
    with torch.no_grad():
        z = pipe.encode(image)
        x_T = pipe.invert(image, z, 4)
        recon = pipe.decode(x_T, z, 4)
    latents = {"z": z, "x_T": x_T, "recon": recon, "image": image,
               "labels": torch.stack([faces[i]["labels"] for i in range(4)])}
    return pipe, judges, latents


def new_module(world, **overrides) -> DiffusionCLIP:
    pipe, judges, latents = world
    return DiffusionCLIP("smile", "face", "smiling face", latents["z"].shape[1],
                         **{**FIELDS, **overrides}).attach(pipe, judges)


def batch_of(latents: dict, faces: int = 2) -> dict:
    return {key: value[:faces].clone() for key, value in latents.items()}


def fit(module: DiffusionCLIP, latents: dict, max_steps: int = 2, batch_size: int = 2, callbacks=()) -> L.Trainer:
    trainer = L.Trainer(max_steps=max_steps, logger=False, enable_checkpointing=False, accelerator="cpu",
                        enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks))
    trainer.fit(module, DataLoader(LatentDataset(latents), batch_size=batch_size, shuffle=True))
    return trainer


@pytest.fixture(scope="module")
def trained(world):
    """A module trained for two Lightning steps, with the backbone's and the copy's weights from before."""
    pipe, _, latents = world
    module = new_module(world)
    backbone_before = {k: v.clone() for k, v in pipe.model.state_dict().items()}
    copy_before = {k: v.clone() for k, v in module.state_dict().items()}
    torch.manual_seed(0)
    trainer = fit(module, latents)
    return module, trainer, backbone_before, copy_before


def test_the_keyword_arguments_are_the_config_fields():
    """The leaderboard harness passes every DiffusionCLIPConfig field but the trainer's steps and batch size."""
    expected = {f.name: f.default for f in dataclasses.fields(DiffusionCLIPConfig)
                if f.name not in ("steps", "batch_size")}
    parameters = inspect.signature(DiffusionCLIP.__init__).parameters
    taken = {name: p.default for name, p in parameters.items()
             if name not in ("self", "attribute", "source_text", "target_text", "latent_dim")}
    assert taken == expected
    assert set(FIELDS) == set(expected)


def test_training_changes_the_copy_and_never_the_backbone(world, trained):
    pipe, _, _ = world
    module, trainer, backbone_before, copy_before = trained
    assert trainer.global_step == 2
    for key, value in pipe.model.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key
    assert not any(p.requires_grad for p in pipe.model.parameters())
    changed = [key for key, value in module.state_dict().items() if not torch.equal(value, copy_before[key])]
    assert len(changed) > len(copy_before) // 2  # the whole UNet learns, not only its last layer
    metrics = trainer.callback_metrics
    for name in ("loss", "clip", "l1", "id"):
        assert math.isfinite(metrics[f"train/{name}"].item()), name
    expected = (FIELDS["lambda_clip"] * metrics["train/clip"] + FIELDS["lambda_l1"] * metrics["train/l1"]
                + FIELDS["lambda_id"] * metrics["train/id"])
    assert metrics["train/loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["train/loss"].item() > 0


def test_only_the_copied_unet_is_trainable_and_checkpointed(world, trained):
    pipe, _, _ = world
    module = trained[0]
    keys = set(module.state_dict())
    unet_keys = {f"denoiser.{k}" for k in pipe.model.state_dict() if not k.startswith("encoder.")}
    assert keys == unet_keys
    optimizer = trained[1].optimizers[0]
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in module.denoiser.parameters()}
    assert not optimised & {id(p) for p in pipe.model.parameters()}


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_gradients_go_through_the_whole_generation_chain(world):
    """As in the repo's `clip_finetune` (not `_eff`): the loss on the final image reaches the first step's output."""
    _, _, latents = world
    module = new_module(world, train_steps=3)
    outputs = []

    def keep(_module, _inputs, output):
        output.retain_grad()
        outputs.append(output)

    handle = module.denoiser.register_forward_hook(keep)
    try:
        module.training_step(batch_of(latents, 4), 0).backward()
    finally:
        handle.remove()
    assert len(outputs) == 3
    for step, output in enumerate(outputs):
        assert output.grad is not None and output.grad.abs().sum() > 0, f"no gradient at generation step {step}"


def test_edit_before_training_is_the_partial_inversion_reconstruction(world):
    pipe, _, latents = world
    module = new_module(world)
    batch = batch_of(latents)
    edited = module.edit(batch)
    assert edited.shape == batch["image"].shape
    assert edited.min() >= -1 and edited.max() <= 1
    with torch.no_grad():
        x_t0 = pipe.invert(batch["image"], batch["z"], FIELDS["inv_steps"], t_max=FIELDS["t_0"])
        reconstruction = pipe.decode(x_t0, batch["z"], FIELDS["test_steps"], t_max=FIELDS["t_0"])
    torch.testing.assert_close(edited, reconstruction, rtol=0, atol=1e-5)
    assert not torch.allclose(edited, batch["image"], atol=1e-2)  # the walk really went through the model


def test_edit_after_training_inverts_with_the_frozen_model_and_generates_with_the_copy(world, trained):
    pipe, _, latents = world
    module = trained[0]
    batch = batch_of(latents)
    module.train()  # as Lightning leaves it; edit must not depend on the mode
    edited = module.edit(batch)
    assert module.denoiser.training
    assert torch.equal(edited, module.edit(batch))  # deterministic
    with torch.no_grad():
        x_t0 = pipe.invert(batch["image"], batch["z"], FIELDS["inv_steps"], t_max=FIELDS["t_0"])
        reconstruction = pipe.decode(x_t0, batch["z"], FIELDS["test_steps"], t_max=FIELDS["t_0"])
        by_copy = module.tuned.decode(x_t0, batch["z"], FIELDS["test_steps"], t_max=FIELDS["t_0"])
    torch.testing.assert_close(edited, by_copy, rtol=0, atol=1e-5)
    assert (edited - reconstruction).abs().max() > 1e-3  # training changed the edit
    assert edited.min() >= -1 and edited.max() <= 1


def test_state_dict_round_trips_through_safetensors(world, trained, tmp_path):
    pipe, judges, latents = world
    module = trained[0]
    path = tmp_path / "diffusionclip.safetensors"
    save_file(module.state_dict(), str(path))
    fresh = new_module(world)
    batch = batch_of(latents)
    edited = module.edit(batch)
    assert not torch.allclose(fresh.edit(batch), edited, atol=1e-4)  # the state is what differs
    fresh.load_state_dict(load_file(str(path)))
    assert torch.equal(fresh.edit(batch), edited)


def test_each_training_face_is_inverted_once(world):
    """The repo precomputes the training latents: a face seen again is not inverted again."""
    _, _, latents = world
    module = new_module(world)
    calls = []
    model = module.pipe.model
    hook = model.register_forward_pre_hook(lambda net, args: calls.append(len(args[0])))
    try:
        module.training_step(batch_of(latents, 2), 0)
        inverting = list(calls)
        calls.clear()
        module.training_step(batch_of(latents, 2), 1)
    finally:
        hook.remove()
    assert inverting == [2] * FIELDS["inv_steps"]  # the frozen model inverts; the tuned copy generates
    assert calls == []


def test_the_lr_grows_by_sch_gamma_after_every_pass(world):
    _, _, latents = world
    module = new_module(world, train_steps=1)
    seen = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, *args):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    fit(module, {k: v[:2] for k, v in latents.items()}, max_steps=3, batch_size=2, callbacks=[Record()])
    assert seen == pytest.approx([FIELDS["lr"], FIELDS["lr"] * 1.3, FIELDS["lr"] * 1.3**2])
