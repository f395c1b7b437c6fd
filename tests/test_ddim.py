"""DDIM over the DiffAE schedule: spaced timesteps, eps and v targets, inversion refined to a fixed point,
one condition per generation step, and gradients through decoding."""

import pytest
import torch

from diffusion import DDIMScheduler, DiffAEPipeline
from networks.diffae import DiffAE, preset

STEPS = 8
SIDE = 32  # the tiny model is fully convolutional: 32x32 images keep these tests quick
Z_DIM = preset("synth64_tiny").z_dim


def pipeline(prediction: str = "v", output_scale: float = 1.0) -> DiffAEPipeline:
    """synth64_tiny with random weights everywhere (the zero-initialised layers too), its output scaled."""
    torch.manual_seed(0)
    model = DiffAE(preset("synth64_tiny")).eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(std=0.05)
        for p in model.out[-1].parameters():
            p.mul_(output_scale)
    return DiffAEPipeline(model, DDIMScheduler(prediction=prediction))


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """In dB, for images in [-1, 1]."""
    return float(10 * torch.log10(4 / (a - b).square().mean()))


# -- the scheduler ----------------------------------------------------------------------------------------------

def test_spaced_timesteps_run_evenly_over_the_whole_schedule():
    scheduler = DDIMScheduler()
    timesteps = scheduler.spaced(STEPS)
    assert len(timesteps) == STEPS and all(type(t) is int for t in timesteps)
    assert timesteps[0] == 0 and timesteps[-1] == 999 and timesteps == sorted(set(timesteps))
    assert scheduler.spaced(1000) == list(range(1000))


@pytest.mark.parametrize("steps", [0, 1001])
def test_impossible_step_counts_are_refused(steps):
    with pytest.raises(ValueError, match="steps must be in 1..1000"):
        DDIMScheduler().spaced(steps)


def test_a_partial_walk_spreads_its_steps_up_to_t_max():
    assert DDIMScheduler().spaced(5, t_max=400) == [0, 100, 200, 300, 400]
    with pytest.raises(ValueError, match="t_max must be in 0..999"):
        DDIMScheduler().spaced(5, t_max=1000)


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("t", [0, 500, 999])
def test_split_recovers_clean_image_and_noise_from_the_training_target(prediction, t):
    scheduler = DDIMScheduler(prediction=prediction)
    x0, noise, ts = randn(2, 3, 8, 8, seed=1).clamp(-1, 1), randn(2, 3, 8, 8, seed=2), torch.full((2,), t)
    x_t = scheduler.add_noise(x0, noise, ts)
    x0_back, noise_back = scheduler.split(scheduler.target(x0, noise, ts), x_t, t)
    torch.testing.assert_close(x0_back, x0, rtol=0, atol=1e-4)
    torch.testing.assert_close(noise_back, noise, rtol=0, atol=1e-4)


# -- inversion ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prediction, output_scale", [("v", 0.05), ("eps", 1e-3)])
def test_refining_the_inversion_makes_decoding_give_the_image_back(prediction, output_scale):
    """Random weights make a wild denoiser. Decoding clips the predicted clean image to [-1, 1], which inversion
    cannot undo; and an eps model's noise guesses, divided by sqrt(ᾱ) ≈ 0.006 at t = 999, put that prediction far
    outside. Scaled-down outputs (std ≈ 0.025 for v, ≈ 5e-4 for eps) and images in [-0.5, 0.5] keep it inside
    (asserted), so the test measures the fixed-point refinement alone."""
    pipe = pipeline(prediction, output_scale)
    x = torch.rand(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(3)) - 0.5
    quality = {}
    with torch.no_grad():
        z = pipe.encode(x)
        for refine in (0, 4, 10):
            out, x0s = pipe.decode(pipe.invert(x, z, STEPS, refine), z, STEPS, return_x0=True)
            assert max(float(x0.abs().max()) for x0 in x0s) < 1, "decoding clipped: the test would not be fair"
            quality[refine] = psnr(out, x)
    assert quality[0] < quality[4] < quality[10], quality
    assert quality[10] > 40, quality


def test_a_partial_inversion_to_t_max_decodes_back_from_there():
    """DiffusionCLIP's walk: invert to t_0 = 400 only, decode from there; the image comes back, and x_t0 is
    still mostly image (not noise), unlike the full inversion."""
    pipe = pipeline("v", 0.05)
    x = torch.rand(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(3)) - 0.5
    with torch.no_grad():
        z = pipe.encode(x)
        x_t0 = pipe.invert(x, z, STEPS, refine=10, t_max=400)
        out = pipe.decode(x_t0, z, STEPS, t_max=400)
        x_T = pipe.invert(x, z, STEPS, refine=10)
    assert psnr(out, x) > 40
    assert psnr(x_t0, x) > psnr(x_T, x) + 3


# -- conditions, one per step --------------------------------------------------------------------------------------

def test_a_list_of_conditions_and_a_function_of_the_step_decode_alike():
    pipe, x_T = pipeline(), randn(1, 3, SIDE, SIDE, seed=4)
    zs = [randn(1, Z_DIM, seed=10 + k) for k in range(STEPS)]
    steps_asked: list[int] = []

    def condition_at(k: int) -> torch.Tensor:
        steps_asked.append(k)
        return zs[k]

    with torch.no_grad():
        assert torch.equal(pipe.decode(x_T, condition_at, STEPS), pipe.decode(x_T, zs, STEPS))
    assert steps_asked == list(range(STEPS))


def test_one_condition_stands_for_every_step():
    pipe, x_T, z = pipeline(), randn(1, 3, SIDE, SIDE, seed=4), randn(1, Z_DIM, seed=5)
    with torch.no_grad():
        assert torch.equal(pipe.decode(x_T, z, STEPS), pipe.decode(x_T, [z] * STEPS, STEPS))


@pytest.mark.parametrize("count", [STEPS - 1, STEPS + 1])
def test_a_list_of_the_wrong_length_is_refused(count):
    pipe = pipeline()
    with pytest.raises(ValueError, match="one per step"):
        pipe.decode(randn(1, 3, SIDE, SIDE, seed=4), [randn(1, Z_DIM, seed=5)] * count, STEPS)


def test_the_condition_steers_the_decoding():
    pipe, x_T = pipeline(), randn(1, 3, SIDE, SIDE, seed=4)
    with torch.no_grad():
        a, b = (pipe.decode(x_T, randn(1, Z_DIM, seed=seed), STEPS) for seed in (5, 6))
    assert psnr(a, b) < 40


def test_return_x0_gives_every_steps_prediction_and_the_last_is_the_output():
    pipe, x_T, z = pipeline(), randn(1, 3, SIDE, SIDE, seed=4), randn(1, Z_DIM, seed=5)
    with torch.no_grad():
        out, x0s = pipe.decode(x_T, z, STEPS, return_x0=True)
        assert torch.equal(pipe.decode(x_T, z, STEPS), out)
    assert len(x0s) == STEPS and torch.equal(x0s[-1], out)
    assert not torch.equal(x0s[0], out)


# -- gradients -------------------------------------------------------------------------------------------------

def test_gradients_reach_the_condition_alike_with_and_without_checkpointing():
    pipe, x_T, z0 = pipeline(), randn(1, 3, SIDE, SIDE, seed=4), randn(1, Z_DIM, seed=5)
    grads = []
    for use_checkpoint in (False, True):
        z = z0.clone().requires_grad_()
        pipe.decode(x_T, z, STEPS, use_checkpoint=use_checkpoint).square().mean().backward()
        grads.append(z.grad)
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-7)
