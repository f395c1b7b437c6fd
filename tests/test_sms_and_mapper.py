"""The Stable Manipulation Strategy, the mapping network, its files and the three losses of ChatFace."""

import json
import math

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from chatface.config import DirectionLoss, SmsSchedule, load_config
from diffusion.sms import SCHEDULES, edit_conditions, sms_conditions, sms_weights
from losses import CLIP_LOSSES, clip_direction_loss, clip_projection_loss, identity_loss, preservation_loss
from networks.conv_encoder import ConvEncoder
from networks.judges.arcface import IdentityJudge
from networks.judges.clip import ClipJudge
from networks.judges.synth import HALF
from networks.judges.synth_nets import tiny_clip, tiny_clip_tokenizer
from networks.mapper import EqualLinear, LatentMapper
from networks.mapper_checkpoint import MapperLoadError, load_mapper, save_mapper

DIM = 16


def latents(count: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, DIM, generator=torch.Generator().manual_seed(seed))


def trained_like(seed: int, width: int = 8, whiten: bool = False) -> LatentMapper:
    """A mapper whose last layer is no longer zero, as after training."""
    torch.manual_seed(seed)
    mapper = LatentMapper(DIM, width, whiten=whiten)
    nn.init.normal_(mapper.layers[-1].weight, std=100.0)  # EqualLinear scales weights by 0.01 / sqrt(in)
    nn.init.normal_(mapper.layers[-1].bias, std=10.0)
    return mapper


def sizes(mapper: LatentMapper) -> dict:
    return {"latent_dim": DIM, "width": mapper.layers[0].weight.shape[0], "depth": len(mapper.layers)}


# --- SMS ----------------------------------------------------------------------------------------------------------


def test_linear_schedule_goes_from_the_edited_code_to_the_original_in_equal_steps():
    assert sms_weights("linear", 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    weights = sms_weights("linear", 8)
    assert weights[0] == 0.0 and weights[-1] == 1.0
    assert all(math.isclose(b - a, 1 / 7) for a, b in zip(weights, weights[1:]))


def test_step_schedule_switches_from_edited_to_original_at_the_fraction():
    assert sms_weights("step", 9, 0.25) == [0.0, 0.0] + [1.0] * 7  # k / 8 >= 0.25 from k = 2 on
    assert sms_weights("step", 9, 0.75) == [0.0] * 6 + [1.0] * 3
    assert sms_weights("step", 4, 0.0) == [1.0] * 4  # switched from the start: the original code only


def test_none_schedule_keeps_the_edited_code_at_every_step():
    assert sms_weights("none", 8) == [0.0] * 8


def test_cosine_schedule_rises_monotonically_from_0_to_1():
    weights = sms_weights("cosine", 20)
    assert weights[0] == 0.0 and math.isclose(weights[-1], 1.0)
    assert all(b > a for a, b in zip(weights, weights[1:]))
    assert math.isclose(sms_weights("cosine", 3)[1], 0.5)  # symmetric about the middle step


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_gives_one_weight_per_step_in_the_unit_interval(schedule):
    for steps in (1, 2, 8, 50):
        weights = sms_weights(schedule, steps)
        assert len(weights) == steps and all(0.0 <= v <= 1.0 for v in weights)


def test_unknown_schedule_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError) as error:
        sms_weights("quadratic", 8)
    message = str(error.value)
    assert "quadratic" in message and all(name in message for name in ("linear", "cosine", "step", "none"))


def test_the_config_offers_exactly_the_schedules_sms_knows():
    assert {schedule.value for schedule in SmsSchedule} == set(SCHEDULES)
    assert load_config(["mapper.sms=cosine"]).mapper.sms.value == "cosine"


def test_sms_conditions_start_at_the_edited_code_and_end_at_the_original():
    z, z_edit = latents(seed=0), latents(seed=1)
    conditions = sms_conditions(z, z_edit, "linear", 5)
    assert len(conditions) == 5
    assert torch.equal(conditions[0], z_edit) and torch.equal(conditions[-1], z)
    assert torch.allclose(conditions[2], (z + z_edit) / 2)
    assert all(torch.equal(c, z_edit) for c in sms_conditions(z, z_edit, "none", 4))


def test_sms_conditions_carry_gradients_to_the_edited_code():
    z, z_edit = latents(seed=0), latents(seed=1).requires_grad_()
    torch.stack(sms_conditions(z, z_edit, "linear", 5)).sum().backward()
    assert torch.allclose(z_edit.grad, torch.full_like(z, 2.5))  # Σ (1 - v_k) = 1 + .75 + .5 + .25 + 0


# --- the mapper ---------------------------------------------------------------------------------------------------


def test_equal_linear_scales_weights_by_the_learning_rate_multiplier():
    layer = EqualLinear(4, 3, lr_mul=0.01)
    x = torch.randn(2, 4)
    expected = x @ (layer.weight * 0.01 / 2).T + layer.bias * 0.01
    assert torch.allclose(layer(x), expected)
    assert 50 < layer.weight.std() < 200  # N(0, 1 / lr_mul²): the effective weight is N(0, 1 / in)


def test_untrained_mapper_edits_nothing():
    mapper = LatentMapper(DIM, width=8)
    z = latents()
    assert torch.equal(mapper(z), torch.zeros_like(z))


def test_strength_zero_reproduces_z_even_for_a_trained_mapper():
    z = latents()
    for conditions in (edit_conditions(z, [(0.0 * trained_like(0)(z), "none", 0.5)], 4), edit_conditions(z, [], 4)):
        assert all(torch.equal(c, z) for c in conditions)


def test_one_edit_is_decoded_under_its_own_schedule_as_sms_conditions_says():
    z, offset = latents(), trained_like(0)(latents())
    for schedule in ("linear", "cosine", "step", "none"):
        expected = sms_conditions(z, z + offset, schedule, 6, 0.3)
        assert all(torch.allclose(a, b, atol=1e-6)
                   for a, b in zip(edit_conditions(z, [(offset, schedule, 0.3)], 6), expected))


def test_edits_under_different_schedules_add_up_step_by_step():
    z, smile, glasses = latents(), trained_like(0)(latents()), trained_like(1)(latents())
    conditions = edit_conditions(z, [(smile, "linear", 0.5), (glasses, "none", 0.5)], 5)
    assert torch.allclose(conditions[0], z + smile + glasses, atol=1e-6)  # first step: both edits whole
    assert torch.allclose(conditions[-1], z + glasses, atol=1e-6)  # last: SMS has handed smile back to z


def test_a_trained_mapper_moves_z():
    z = latents()
    assert trained_like(0)(z).abs().max() > 1e-3


def test_mapper_sees_z_normalised_so_its_edit_does_not_depend_on_the_scale_of_z():
    mapper, z = trained_like(0), latents()
    assert torch.allclose(mapper(z), mapper(3 * z + 1), atol=1e-4)


def low_rank_latents(count: int = 64, rank: int = 3) -> torch.Tensor:
    """Latents that vary in only `rank` directions around a mean far from the origin."""
    generator = torch.Generator().manual_seed(1)
    directions = torch.randn(rank, DIM, generator=generator)
    return 5.0 + torch.randn(count, rank, generator=generator) @ directions


def test_whitening_is_the_square_root_of_the_latents_covariance():
    mapper, z = trained_like(0, whiten=True), low_rank_latents()
    mapper.fit_whitening(z)
    assert torch.allclose(mapper.whitening @ mapper.whitening, torch.cov(z.T), atol=1e-4)


def test_whitened_offsets_stay_in_the_directions_the_latents_vary_in():
    mapper, z, faces = trained_like(0, whiten=True), low_rank_latents(rank=3), latents(32)
    assert torch.linalg.matrix_rank(mapper(faces), rtol=1e-3) > 3  # before fitting: the identity, any direction
    mapper.fit_whitening(z)
    offsets = mapper(faces)
    assert offsets.abs().max() > 1e-3
    assert torch.linalg.matrix_rank(offsets, rtol=1e-3) == 3
    centred = z - z.mean(0)
    in_span = torch.linalg.lstsq(centred.T, offsets.T).solution
    assert torch.allclose(centred.T @ in_span, offsets.T, atol=1e-3)


def test_an_untrained_whitened_mapper_still_edits_nothing():
    mapper = LatentMapper(DIM, 8, whiten=True)
    mapper.fit_whitening(low_rank_latents())
    assert torch.equal(mapper(latents()), torch.zeros(3, DIM))


def test_fitting_whitening_on_a_mapper_without_it_is_an_error():
    with pytest.raises(ValueError, match="whiten=True"):
        LatentMapper(DIM, 8).fit_whitening(low_rank_latents())


# --- mapper files -------------------------------------------------------------------------------------------------


def test_saved_mapper_loads_back_equal_with_its_info(tmp_path):
    mapper = trained_like(0)
    info = {**sizes(mapper), "attribute": "smile", "sms": "linear", "steps": 8, "backbone": "abc123"}
    save_mapper(mapper, tmp_path / "m" / "mapper.safetensors", info)
    loaded, loaded_info = load_mapper(tmp_path / "m" / "mapper.safetensors")
    assert loaded_info == {**info, "whiten": False}
    z = latents()
    assert torch.equal(loaded(z), mapper(z))
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_a_whitened_mapper_loads_back_with_its_whitening(tmp_path):
    mapper = trained_like(0, whiten=True)
    mapper.fit_whitening(low_rank_latents())
    save_mapper(mapper, tmp_path / "mapper.safetensors", sizes(mapper))
    loaded, info = load_mapper(tmp_path / "mapper.safetensors")
    assert info["whiten"] is True
    assert torch.equal(loaded.whitening, mapper.whitening)
    assert torch.equal(loaded(latents()), mapper(latents()))


def test_a_mapper_file_from_before_whitening_loads_as_unwhitened(tmp_path):
    mapper = trained_like(0)
    tensors = {name: tensor.contiguous() for name, tensor in mapper.state_dict().items()}
    save_file(tensors, tmp_path / "old.safetensors", metadata={"mapper": json.dumps(sizes(mapper))})
    loaded, _ = load_mapper(tmp_path / "old.safetensors")
    assert loaded.whitening is None and torch.equal(loaded(latents()), mapper(latents()))


def test_missing_mapper_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "smile" / "mapper.safetensors"
    with pytest.raises(MapperLoadError, match="no such mapper file") as error:
        load_mapper(path)
    assert str(path) in str(error.value)


def test_truncated_mapper_file_is_an_error_naming_it_and_the_fix(tmp_path):
    path = tmp_path / "mapper.safetensors"
    save_mapper(trained_like(0), path, sizes(trained_like(0)))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(MapperLoadError, match="make train ATTR=") as error:
        load_mapper(path)
    assert str(path) in str(error.value)


def test_a_safetensors_file_that_is_no_mapper_is_refused(tmp_path):
    path = tmp_path / "judge.safetensors"
    save_file({"weight": torch.zeros(2)}, path, metadata={"judge": "identity", "sizes": "{}"})
    with pytest.raises(MapperLoadError, match="not a chatface mapper") as error:
        load_mapper(path)
    assert str(path) in str(error.value)


def test_mapper_tensors_that_do_not_fit_the_recorded_sizes_are_refused(tmp_path):
    path = tmp_path / "mapper.safetensors"
    mapper = trained_like(0, width=8)
    save_mapper(mapper, path, {**sizes(mapper), "width": 12})
    with pytest.raises(MapperLoadError, match="do not fit") as error:
        load_mapper(path)
    assert str(path) in str(error.value)


def test_mapper_file_without_its_sizes_is_a_mapper_load_error(tmp_path):
    path = tmp_path / "mapper.safetensors"
    mapper = trained_like(0)
    save_file({name: t.contiguous() for name, t in mapper.state_dict().items()}, path,
              metadata={"mapper": json.dumps({"attribute": "smile"})})
    with pytest.raises(MapperLoadError):
        load_mapper(path)


# --- losses -------------------------------------------------------------------------------------------------------


def small_clip() -> ClipJudge:
    torch.manual_seed(0)
    model = tiny_clip(image_size=64, embed_dim=32, width=64, layers=1, context_length=16)
    return ClipJudge.from_model(model, tiny_clip_tokenizer(16), 64, HALF, HALF)


def small_identity() -> IdentityJudge:
    torch.manual_seed(0)
    net = ConvEncoder(32, width=8)
    nn.init.zeros_(net.head.bias)  # otherwise the random bias, the same for every face, dominates the embedding
    return IdentityJudge(net, input_size=64, crop=None)


def faces(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_preservation_loss_is_zero_for_no_change_and_counts_pixels_and_latents():
    x, z = faces(), latents(2)
    assert preservation_loss(x, x, z, z) == 0
    assert torch.isclose(preservation_loss(x, x + 0.5, z, z), torch.tensor(0.5))
    offset = torch.zeros_like(z)
    offset[:, 0] = 3.0
    assert torch.isclose(preservation_loss(x, x, z, z + offset), torch.tensor(3.0))


def test_preservation_loss_is_differentiable_in_the_edited_image_and_latent():
    x, z = faces(), latents(2)
    edited, z_edit = (x + 0.1 * faces(1)).requires_grad_(), (z + 1).requires_grad_()
    preservation_loss(x, edited, z, z_edit).backward()
    assert edited.grad.abs().sum() > 0 and z_edit.grad.abs().sum() > 0


def test_identity_loss_is_zero_for_the_same_face_and_positive_for_another():
    judge, x = small_identity(), faces()
    assert identity_loss(judge, x, x).abs() < 1e-5
    assert identity_loss(judge, x, faces(1)) > 1e-3


def test_identity_loss_is_differentiable_in_the_edited_image_only():
    judge, x = small_identity(), faces().requires_grad_()
    edited = (faces() + 0.2 * faces(1)).requires_grad_()
    identity_loss(judge, x, edited).backward()
    assert edited.grad is not None and edited.grad.abs().sum() > 0 and torch.isfinite(edited.grad).all()
    assert x.grad is None  # the source is a fixed target


def test_direction_loss_is_finite_without_an_edit_and_falls_as_the_image_follows_the_text():
    clip, x = small_clip(), faces()
    direction = clip.text_direction("face", "smiling face")
    unchanged = clip_direction_loss(clip, x, x, direction)
    assert torch.isclose(unchanged, torch.tensor(1.0))  # no image direction: cosine 0

    edited = (x + 0.01 * faces(1)).requires_grad_()
    optimizer = torch.optim.Adam([edited], lr=0.01)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = clip_direction_loss(clip, x, edited, direction)
        loss.backward()
        assert torch.isfinite(edited.grad).all()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] and losses[-1] < 0.9
    assert 0.0 <= min(losses) and max(losses) <= 2.0


def test_direction_loss_is_minimal_when_the_image_direction_is_the_text_direction():
    """With a text direction equal to the image direction itself, the loss reaches its minimum, 0."""
    clip, x, edited = small_clip(), faces(), faces(1)
    with torch.no_grad():
        image_direction = clip.encode_image(edited) - clip.encode_image(x)
    aligned = torch.nn.functional.normalize(image_direction[0], dim=0)
    loss = clip_direction_loss(clip, x[:1], edited[:1], aligned)
    assert loss.abs() < 1e-5
    assert clip_direction_loss(clip, x[:1], edited[:1], -aligned) > 1.99


def test_direction_loss_gradient_reaches_the_edited_image_even_with_no_edit_yet():
    """An untrained mapper decodes exactly the source; training must still get a gradient to start from."""
    clip, x = small_clip(), faces()
    edited = x.clone().requires_grad_()
    clip_direction_loss(clip, x, edited, clip.text_direction("face", "smiling face")).backward()
    assert torch.isfinite(edited.grad).all() and edited.grad.abs().sum() > 0


def embedding_direction(clip: ClipJudge, source: torch.Tensor, edited: torch.Tensor) -> torch.Tensor:
    """The change of the unit image embedding from `source` to `edited` (first face)."""
    with torch.no_grad():
        unit = [torch.nn.functional.normalize(clip.encode_image(x[:1]), dim=1)[0] for x in (source, edited)]
    return unit[1] - unit[0]


def test_projection_loss_is_one_without_an_edit_and_counts_how_far_the_image_moved_along_the_text():
    clip, x, edited = small_clip(), faces(), faces(1)
    direction = embedding_direction(clip, x, edited)
    assert torch.isclose(clip_projection_loss(clip, x, x, direction), torch.tensor(1.0))
    assert torch.isclose(clip_projection_loss(clip, x[:1], edited[:1], direction),
                         1 - direction.norm(), atol=1e-5)  # moved |direction| along the text
    assert torch.isclose(clip_projection_loss(clip, x[:1], edited[:1], -direction), 1 + direction.norm(), atol=1e-5)


def test_projection_loss_prefers_the_larger_of_two_steps_the_same_way():
    clip, x, far = small_clip(), faces()[:1], faces(1)[:1]
    near = x + 0.05 * (far - x)
    direction = embedding_direction(clip, x, far)
    assert clip_projection_loss(clip, x, far, direction) < clip_projection_loss(clip, x, near, direction) - 0.01
    assert clip_projection_loss(clip, x, near, direction) < 1.0


def test_projection_loss_gradient_reaches_the_edited_image_even_with_no_edit_yet():
    clip, x = small_clip(), faces()
    edited = x.clone().requires_grad_()
    clip_projection_loss(clip, x, edited, clip.text_direction("face", "smiling face")).backward()
    assert torch.isfinite(edited.grad).all() and edited.grad.abs().sum() > 0


def test_with_a_target_a_face_that_moved_that_far_no_longer_pulls():
    clip, x, edited = small_clip(), faces()[:1], faces(1)[:1].requires_grad_()
    direction = embedding_direction(clip, x, edited)
    moved = direction.norm()  # edited moved exactly this far along `direction`
    short = clip_projection_loss(clip, x, edited, direction, target=float(moved) + 0.1)
    assert torch.isclose(short, torch.tensor(0.1), atol=1e-5)
    reached = clip_projection_loss(clip, x, edited, direction, target=float(moved) - 0.1)
    reached.backward()
    assert reached == 0 and edited.grad.abs().sum() == 0


def test_the_config_offers_exactly_the_clip_losses_the_mapper_knows():
    assert {loss.value for loss in DirectionLoss} == set(CLIP_LOSSES)
