"""The DiffAE network: the official checkpoints' exact layout, safe loading of weights, conditioning on z_sem."""

import json
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from networks.diffae import DiffAE, preset
from networks.diffae.checkpoint import CheckpointError, load_backbone, save_backbone

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def manifest(name: str) -> dict:
    path = REFERENCE / f"diffae_{name}_state_dict.json"
    if not path.is_file():
        pytest.skip(f"no manifest of the official {name} checkpoint at {path}")
    return json.loads(path.read_text())


def on_meta(name: str) -> DiffAE:
    """The architecture without memory or initialisation: enough for names, shapes and counts."""
    with torch.device("meta"):
        return DiffAE(preset(name))


def awake(model: DiffAE, std: float = 0.05) -> DiffAE:
    """Random values in the zero-initialised layers, so that every input (z_sem included) reaches the output."""
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(std=std)
    return model


def lightning_checkpoint(path: Path, ema: dict[str, torch.Tensor]) -> Path:
    """The official release's layout: raw weights under `model.`, EMA weights under `ema_model.`.

    The raw weights are zeros expanded from one element, so the file holds little more than the EMA weights.
    """
    raw = {f"model.{k}": torch.zeros(()).expand(v.shape) for k, v in ema.items()}
    state = raw | {f"ema_model.{k}": v for k, v in ema.items()}
    torch.save({"state_dict": state, "epoch": 0, "global_step": 1}, path)
    return path


def differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in a if not torch.equal(a[k], b[k])]


# -- the official architecture -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ffhq256_autoenc", "ffhq128_autoenc"])
def test_official_presets_match_the_released_state_dict_key_for_key(name):
    reference = manifest(name)
    model = on_meta(name)
    assert reference["config"] == name
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == list(reference["state_dict"].items())
    assert sum(p.numel() for p in model.parameters()) == reference["num_parameters"]


def test_the_ffhq256_model_has_the_published_parameter_count():
    assert sum(p.numel() for p in on_meta("ffhq256_autoenc").parameters()) == 168_492_291


# -- official Lightning checkpoints ----------------------------------------------------------------------------

@pytest.mark.slow
def test_an_official_checkpoint_gives_its_ema_weights_exactly(tmp_path):
    torch.manual_seed(0)
    ema = DiffAE(preset("ffhq128_autoenc")).state_dict()
    model, prediction = load_backbone(lightning_checkpoint(tmp_path / "last.ckpt", ema), "ffhq128_autoenc")
    assert prediction == "eps"
    assert differing(ema, model.state_dict()) == []


def test_a_truncated_checkpoint_is_refused_with_a_clear_message(tmp_path):
    path = lightning_checkpoint(tmp_path / "last.ckpt", DiffAE(preset("synth64_tiny")).state_dict())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="may be truncated"):
        load_backbone(path, "synth64_tiny")


@pytest.mark.parametrize("content", [b"these are not the weights you are looking for\n", b""])
def test_a_file_that_is_no_checkpoint_is_refused(tmp_path, content):
    path = tmp_path / "last.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read as a PyTorch checkpoint"):
        load_backbone(path, "synth64_tiny")


@pytest.mark.parametrize("saved, loaded_as, kind", [("synth64", "synth64_tiny", "unexpected"),
                                                    ("synth64_tiny", "synth64", "missing")])
def test_a_checkpoint_of_another_preset_names_the_keys_that_differ(tmp_path, saved, loaded_as, kind):
    state, expected = DiffAE(preset(saved)).state_dict(), on_meta(loaded_as).state_dict()
    odd = [k for k in state if k not in expected] if kind == "unexpected" else [k for k in expected if k not in state]
    path = lightning_checkpoint(tmp_path / "last.ckpt", state)
    with pytest.raises(CheckpointError, match=f"{len(odd)} {kind} keys") as error:
        load_backbone(path, loaded_as)
    assert repr(loaded_as) in str(error.value) and odd[0] in str(error.value)


class Trap:
    """Unpickling this runs code: it creates the file `path`."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    ran, path = tmp_path / "code-ran", tmp_path / "last.ckpt"
    torch.save({"state_dict": {"ema_model.out.2.weight": Trap(ran)}}, path)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_backbone(path, "synth64_tiny")
    assert not ran.exists()
    pickle.loads(pickle.dumps(Trap(ran)))  # the control: plain unpickling runs the trap
    assert ran.exists()


# -- our own weights --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_our_weights_round_trip_with_their_preset_and_prediction(tmp_path, prediction):
    model = awake(DiffAE(preset("synth64_tiny")))
    path = tmp_path / "backbone.safetensors"
    save_backbone(model, path, "synth64_tiny", prediction)
    loaded, loaded_prediction = load_backbone(path)  # the preset comes from the file's metadata
    assert loaded.arch == preset("synth64_tiny") and loaded_prediction == prediction
    assert differing(model.state_dict(), loaded.state_dict()) == []


def test_our_weights_are_built_as_the_preset_they_name_whatever_the_config_says(tmp_path):
    path = tmp_path / "backbone.safetensors"
    save_backbone(DiffAE(preset("synth64_tiny")), path, "synth64_tiny", "v")
    loaded, _ = load_backbone(path, "synth64")
    assert loaded.arch == preset("synth64_tiny")


def test_truncated_weights_are_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "backbone.safetensors"
    save_backbone(DiffAE(preset("synth64_tiny")), path, "synth64_tiny", "v")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="may be truncated"):
        load_backbone(path)


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(CheckpointError, match="make pretrain-backbone"):
        load_backbone(tmp_path / "backbone.safetensors")


# -- the forward pass -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["synth64", "synth64_resnet", "synth64_tiny"])
def test_the_encoder_gives_z_sem_and_the_denoiser_keeps_the_image_shape(name):
    arch = preset(name)
    model = DiffAE(arch).eval()
    x = torch.randn(2, 3, arch.image_size, arch.image_size)
    with torch.no_grad():
        z = model.encode(x)
        out = model(x, torch.tensor([0, 999]), z)
    assert z.shape == (2, arch.z_dim) and out.shape == x.shape


def test_the_output_follows_z_sem():
    torch.manual_seed(0)
    model = awake(DiffAE(preset("synth64_tiny"))).eval()
    x, t = torch.randn(1, 3, 64, 64).expand(3, -1, -1, -1), torch.full((3,), 500)
    z = torch.randn(2, 64)
    with torch.no_grad():
        a, a_again, b = model(x, t, torch.stack([z[0], z[0], z[1]]))
    torch.testing.assert_close(a, a_again)
    assert (a - b).abs().mean() > 1e-3 * a.abs().mean()


def test_synth_presets_share_one_denoiser_and_differ_in_the_encoder():
    resnet, unet = on_meta("synth64_resnet").state_dict(), on_meta("synth64").state_dict()
    denoiser = [k for k in resnet if not k.startswith("encoder.")]
    assert denoiser == [k for k in unet if not k.startswith("encoder.")]
    assert any(k.startswith("encoder.stages.") for k in resnet)
    assert any(k.startswith("encoder.input_blocks.") for k in unet)


def test_an_unknown_encoder_kind_is_refused():
    with pytest.raises(ValueError, match="unknown DiffAE encoder 'vit'"):
        replace(preset("synth64"), encoder="vit")
