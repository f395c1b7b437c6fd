"""The Asyrp baseline on the tiny world: the h-space hook, the asymmetric step, training, editing, state round trip."""

import dataclasses
import inspect
import math

import lightning as L
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from chatface.backbone_eval import backbone_pipeline
from chatface.config import AsyrpConfig, load_config
from conftest import save_live_backbone
from datamodules.latent_cache import LatentDataset
from datamodules.synthface import SynthFaceDataset
from lightning_modules.asyrp import Asyrp
from networks.diffae.blocks import timestep_embedding
from networks.judges.loading import load_judges

# Four DDIM steps over 0..999 visit 999, 666, 333, 0: with t_edit 500 the editing interval is {999, 666}.
SETTINGS = dict(attribute="smile", source_text="face", target_text="smiling face", t_edit=500, inv_steps=4,
                train_steps=4, test_steps=4)
FACES = 2


@pytest.fixture(scope="module")
def world(tiny_world, tmp_path_factory):
    """The tiny world's judges with a live backbone (its zero-initialised layers random, so z_sem and h matter)."""
    backbone = save_live_backbone(tmp_path_factory.mktemp("asyrp") / "live_backbone.safetensors")
    cfg = load_config([*tiny_world, f"backbone.weights={backbone}"])
    pipe, judges = backbone_pipeline(cfg), load_judges(cfg.judges)
    faces = SynthFaceDataset("test", FACES, FACES, cfg.world.image_size)
    image = torch.stack([faces[i]["image"] for i in range(FACES)])
    labels = torch.stack([faces[i]["labels"] for i in range(FACES)])
    with torch.no_grad():
        z = pipe.encode(image)
    latents = {"z": z, "x_T": torch.zeros_like(image), "recon": image.clone(), "image": image, "labels": labels}
    return pipe, judges, latents


def make_module(world, **overrides) -> Asyrp:
    pipe, judges, latents = world
    torch.manual_seed(1)
    return Asyrp(**{**SETTINGS, **overrides}, latent_dim=latents["z"].shape[1]).attach(pipe, judges)


def train(module: Asyrp, latents: dict, max_steps: int) -> L.Trainer:
    """max_epochs too: a module that never steps its optimizer would otherwise never reach max_steps."""
    trainer = L.Trainer(max_steps=max_steps, max_epochs=4, logger=False, enable_checkpointing=False,
                        accelerator="cpu", enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, DataLoader(LatentDataset(latents), batch_size=2))
    return trainer


def clone_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


@pytest.fixture(scope="module")
def trained(world):
    """A module after three trainer steps (a batch walking the two timesteps of the interval, then one timestep of
    the next batch: the budget ends the walk), with the states of the backbone, the CLIP judge and the DeltaBlock
    before and after."""
    pipe, judges, latents = world
    module = make_module(world)
    before = {"backbone": clone_state(pipe.model), "clip": clone_state(judges.clip),
              "delta_h": clone_state(module.delta_h)}
    trainer = train(module, latents, max_steps=3)
    after = {"backbone": clone_state(pipe.model), "clip": clone_state(judges.clip),
             "delta_h": clone_state(module.delta_h)}
    return module, trainer, before, after


# --- the h-space hook in DiffAE -------------------------------------------------------------------------------


def test_h_shift_is_added_to_the_middle_blocks_output(world):
    model = world[0].model
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    t, z = torch.tensor([900, 300]), world[2]["z"][:2]
    with torch.no_grad():
        plain = model(x, t, z)
        h = {}
        hook = model.middle_block.register_forward_hook(lambda m, i, out: h.update(h=out))
        model(x, t, z)
        hook.remove()
        assert torch.equal(model(x, t, z, h_shift=torch.zeros_like(h["h"])), plain)
        shift = torch.randn(h["h"].shape, generator=torch.Generator().manual_seed(1))
        shifted = model(x, t, z, h_shift=shift)
        # the same sum done by a hook that replaces the middle block's output
        hook = model.middle_block.register_forward_hook(lambda m, i, out: out + shift)
        by_hook = model(x, t, z)
        hook.remove()
    assert not torch.allclose(shifted, plain, atol=1e-4)
    torch.testing.assert_close(shifted, by_hook)


# --- the contract -----------------------------------------------------------------------------------------------


def test_constructor_takes_exactly_the_config_fields_but_the_trainers():
    fields = {f.name for f in dataclasses.fields(AsyrpConfig)} - {"steps", "batch_size"}
    parameters = set(inspect.signature(Asyrp.__init__).parameters)
    assert parameters == {"self", "attribute", "source_text", "target_text", "latent_dim"} | fields
    defaults = {name: p.default for name, p in inspect.signature(Asyrp.__init__).parameters.items()}
    assert all(defaults[f.name] == f.default for f in dataclasses.fields(AsyrpConfig) if f.name in fields)


def test_state_dict_is_the_delta_block_only_and_sized_by_the_backbone(world):
    module = make_module(world)
    arch = world[0].model.arch
    channels = arch.model_channels * arch.channel_mult[-1]
    assert set(module.state_dict()) == {f"delta_h.{k}" for k in module.delta_h.state_dict()}
    assert module.delta_h.conv1.weight.shape == (channels, channels, 1, 1)
    assert module.delta_h.temb_proj.weight.shape == (channels, arch.embed_channels)
    assert not any(p.requires_grad for p in world[0].model.parameters())


# --- the asymmetric step ------------------------------------------------------------------------------------------


def test_asymmetric_step_takes_p_t_from_the_shifted_output_and_d_t_from_the_plain_one(world):
    pipe, _, latents = world
    module, scheduler, model = make_module(world), pipe.scheduler, pipe.model
    x = torch.randn(FACES, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    z, t, t_prev = latents["z"], 999, 666
    with torch.no_grad():
        x_prev, x0_edit = module.asymmetric_step(x, t, t_prev, z)
        ts = torch.full((FACES,), t)
        seen = {}
        hook = model.middle_block.register_forward_hook(lambda m, i, out: seen.update(h=out))
        plain = model(x, ts, z)
        hook.remove()
        emb = model.time_embed(timestep_embedding(ts, model.arch.model_channels))
        shifted = model(x, ts, z, h_shift=module.delta_h(seen["h"], emb))
    x0_shifted, _ = scheduler.split(shifted, x, t)
    x0_plain, _ = scheduler.split(plain, x, t)
    a = scheduler.alpha(t)
    eps_plain = (x - a**0.5 * x0_plain.clamp(-1, 1)) / (1 - a) ** 0.5
    expected = scheduler.move(x0_shifted.clamp(-1, 1), eps_plain, scheduler.alpha(t_prev))
    torch.testing.assert_close(x0_edit, x0_shifted)
    torch.testing.assert_close(x_prev, expected)
    symmetric, _ = scheduler.step(shifted, t, t_prev, x)  # P_t and D_t both from the shifted output
    unedited, _ = scheduler.step(plain, t, t_prev, x)
    assert (x_prev - symmetric).abs().max() > 1e-3
    assert (x_prev - unedited).abs().max() > 1e-3


def test_asymmetric_step_with_zero_shift_is_the_pipelines_ddim_step(world):
    module = make_module(world)
    module.delta_h.conv2.weight.data.zero_()
    module.delta_h.conv2.bias.data.zero_()
    x = torch.randn(FACES, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    z = world[2]["z"]
    with torch.no_grad():
        x_prev, _ = module.asymmetric_step(x, 666, 333, z)
        out = world[0].model(x, torch.full((FACES,), 666), z)
    torch.testing.assert_close(x_prev, world[0].scheduler.step(out, 666, 333, x)[0])


# --- editing --------------------------------------------------------------------------------------------------------


def reconstruction(world) -> torch.Tensor:
    pipe, _, latents = world
    with torch.no_grad():
        x_T = pipe.invert(latents["image"], latents["z"], SETTINGS["inv_steps"])
        return pipe.decode(x_T, latents["z"], SETTINGS["test_steps"])


def test_without_a_shift_edit_gives_back_the_plain_inversion_and_decoding(world):
    """Strength 0, or a DeltaBlock whose last layer is zero, is the plain reconstruction; the untrained
    (randomly initialised, as in the repo) DeltaBlock at strength 1 is not."""
    module, latents = make_module(world), world[2]
    expected = reconstruction(world)
    torch.testing.assert_close(module.edit(latents, strength=0.0), expected)
    edited = module.edit(latents)
    assert (edited - expected).abs().max() > 1e-3
    assert edited.shape == latents["image"].shape and edited.abs().max() <= 1.0
    torch.testing.assert_close(module.edit(latents), edited)  # deterministic
    module.delta_h.conv2.weight.data.zero_()
    module.delta_h.conv2.bias.data.zero_()
    torch.testing.assert_close(module.edit(latents), expected)


def test_edit_shifts_h_only_inside_the_editing_interval(world, monkeypatch):
    module, latents = make_module(world, t_edit=300, test_steps=7), world[2]
    visited, asymmetric = [], module.asymmetric_step
    monkeypatch.setattr(module, "asymmetric_step", lambda x, t, *args: visited.append(t) or asymmetric(x, t, *args))
    module.edit(latents)
    assert visited == [999, 832, 666, 500, 333]  # spaced(7) = 0, 166, 333, 500, 666, 832, 999


# --- training ---------------------------------------------------------------------------------------------------


def test_training_updates_the_delta_block_once_per_timestep_and_nothing_else(trained):
    module, trainer, before, after = trained
    assert trainer.global_step == 3  # one SGD update per timestep in [t_edit, T], cut at the budget
    for name in before["backbone"]:
        assert torch.equal(before["backbone"][name], after["backbone"][name]), name
    for name in before["clip"]:
        assert torch.equal(before["clip"][name], after["clip"][name]), name
    for name in before["delta_h"]:
        assert not torch.equal(before["delta_h"][name], after["delta_h"][name]), name
        assert torch.isfinite(after["delta_h"][name]).all(), name


def test_training_logs_a_finite_loss_and_its_terms(trained):
    module, trainer, _, _ = trained
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    assert {"train/loss", "train/clip", "train/l1"} <= set(metrics)
    assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["train/l1"] > 0  # the random DeltaBlock already moves P_t
    h = module.hparams
    expected = h.lambda_clip * metrics["train/clip"] + h.lambda_l1 * module.text_similarity * metrics["train/l1"]
    assert metrics["train/loss"] == pytest.approx(expected, rel=1e-5)


def test_training_steps_the_learning_rate_down_once_per_epoch(world):
    module, latents = make_module(world, train_steps=2, lr_step_epochs=1, lr_gamma=0.5), world[2]
    trainer = train(module, latents, max_steps=2)  # one batch per epoch, one timestep (999) per batch
    assert trainer.current_epoch == 2
    assert module.optimizers().param_groups[0]["lr"] == pytest.approx(0.5 * 0.25)


def test_state_round_trips_through_safetensors_into_a_fresh_module(trained, world, tmp_path):
    module = trained[0]
    save_file(module.state_dict(), tmp_path / "asyrp.safetensors")
    fresh = make_module(world)
    batch = world[2]
    assert (fresh.edit(batch) - module.edit(batch)).abs().max() > 1e-4  # the trained state is not the default
    fresh.load_state_dict(load_file(tmp_path / "asyrp.safetensors"))
    assert torch.equal(fresh.edit(batch), module.edit(batch))
