"""The Gaussian diffusion's closed forms, training loss, samplers and guidance, against formulas derived
independently (Bayes' rule for the posterior) or computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from a3cli.engine.diffusion.gaussian import GaussianDiffusion
from a3cli.engine.diffusion.schedules import SCHEDULES, beta_schedule
from a3cli.engine.diffusion.unet import UNet


class Affine(torch.nn.Module):
    """A stand-in network with a known output: a·x + b·t + (class + 1)·c, with a "no class" index of 10."""

    num_classes = 10

    def __init__(self, a: float = 0.5, b: float = 0.001, c: float = 0.01) -> None:
        super().__init__()
        self.a, self.b, self.c = a, b, c

    def forward(self, x, t, classes=None):
        shift = 0.0 if classes is None else (classes.float() + 1)[:, None, None, None] * self.c
        return self.a * x + self.b * t.float()[:, None, None, None] + shift


def diffusion(objective: str = "noise", schedule: str = "linear", timesteps: int = 100, **kw) -> GaussianDiffusion:
    return GaussianDiffusion(Affine(), 4, 1, timesteps, objective, schedule, **kw).double()


def test_schedules_are_betas_between_zero_and_one_whose_products_fall():
    for name in SCHEDULES:
        betas = beta_schedule(name, 1000)
        assert betas.shape == (1000,) and betas.dtype == torch.float64
        assert (betas > 0).all() and (betas < 1).all()
        alphas_cumprod = torch.cumprod(1 - betas, 0)
        assert alphas_cumprod[0] > 0.99 and alphas_cumprod[-1] < 1e-3
    linear = beta_schedule("linear", 1000)
    assert linear[0].item() == pytest.approx(1e-4) and linear[-1].item() == pytest.approx(0.02)
    assert beta_schedule("linear", 500)[-1].item() == pytest.approx(0.04)  # scaled to keep the path
    # cosine: ᾱ_t = f(t) / f(0) with f(t) = cos²((t/T + s)/(1 + s) · π/2)
    cosine = torch.cumprod(1 - beta_schedule("cosine", 1000), 0)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (1, 250, 500, 900):
        assert cosine[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-9)


def test_q_sample_has_the_closed_form_mean_and_variance():
    d = diffusion()
    torch.manual_seed(0)
    x0 = torch.full((200_000, 1, 1, 1), 0.7, dtype=torch.float64)
    for step in (0, 30, 99):
        t = torch.full((len(x0),), step)
        x_t = d.q_sample(x0, t, torch.randn_like(x0))
        alpha_bar = d.alphas_cumprod[step].item()
        assert x_t.mean().item() == pytest.approx(math.sqrt(alpha_bar) * 0.7, abs=0.01)
        assert x_t.var().item() == pytest.approx(1 - alpha_bar, rel=0.02, abs=1e-4)


def test_the_posterior_is_bayes_rule_applied_to_the_two_gaussians():
    """q(x_{t−1} | x₀) = N(√ᾱ_{t−1} x₀, 1 − ᾱ_{t−1}) times q(x_t | x_{t−1}) = N(√α_t x_{t−1}, β_t)."""
    d = diffusion(schedule="cosine")
    betas = beta_schedule("cosine", 100)
    alpha_bar = torch.cumprod(1 - betas, 0)
    x0, x_t = torch.randn(3, 1, 4, 4, dtype=torch.float64), torch.randn(3, 1, 4, 4, dtype=torch.float64)
    for step in (1, 50, 99):
        prior_mean, prior_var = alpha_bar[step - 1].sqrt() * x0, 1 - alpha_bar[step - 1]
        a, noise_var = (1 - betas[step]).sqrt(), betas[step]
        var = 1 / (1 / prior_var + a**2 / noise_var)
        mean = var * (prior_mean / prior_var + a * x_t / noise_var)
        got_mean, got_var, got_log_var = d.q_posterior(x0, x_t, torch.full((3,), step))
        torch.testing.assert_close(got_mean, mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got_var.flatten(), var.expand(3), rtol=1e-5, atol=0)
        torch.testing.assert_close(got_log_var.exp().flatten(), var.expand(3), rtol=1e-5, atol=0)
    mean0, var0, _ = d.q_posterior(x0, x_t, torch.zeros(3, dtype=torch.long))  # t = 0: x₀ itself
    torch.testing.assert_close(mean0, x0, rtol=1e-5, atol=1e-6)
    assert (var0 == 0).all()


def test_predictions_invert_q_sample():
    d = diffusion(schedule="sigmoid")
    x0, noise = torch.rand(4, 1, 4, 4, dtype=torch.float64) * 2 - 1, torch.randn(4, 1, 4, 4, dtype=torch.float64)
    t = torch.tensor([0, 10, 60, 99])
    x_t = d.q_sample(x0, t, noise)
    torch.testing.assert_close(d.predict_start_from_noise(x_t, t, noise), x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(d.predict_noise_from_start(x_t, t, x0), noise, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(d.predict_start_from_v(x_t, t, d.predict_v(x0, t, noise)), x0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("objective", ["noise", "x0", "v"])
def test_the_training_loss_by_hand(objective):
    d = diffusion(objective)
    x0 = torch.tensor([[[[0.5, -0.5]]], [[[1.0, 0.0]]]], dtype=torch.float64)
    noise = torch.tensor([[[[1.0, -1.0]]], [[[0.5, 2.0]]]], dtype=torch.float64)
    t = torch.tensor([3, 70])
    errors = []
    for i in range(2):
        ab = d.alphas_cumprod[t[i]].item()
        x_t = math.sqrt(ab) * x0[i] + math.sqrt(1 - ab) * noise[i]
        output = 0.5 * x_t + 0.001 * t[i].item()
        target = {"noise": noise[i], "x0": x0[i], "v": math.sqrt(ab) * noise[i] - math.sqrt(1 - ab) * x0[i]}
        errors.append(((output - target[objective]) ** 2).mean().item())
    assert d.p_losses(x0, t, noise).item() == pytest.approx(sum(errors) / 2, rel=1e-6)
    snr = [d.alphas_cumprod[s].item() / (1 - d.alphas_cumprod[s].item()) for s in t]
    weights = {
        "noise": [min(s, 5) / s for s in snr],
        "x0": [min(s, 5) for s in snr],
        "v": [min(s, 5) / (s + 1) for s in snr],
    }
    weighted = diffusion(objective, min_snr=5.0).p_losses(x0, t, noise).item()
    assert weighted == pytest.approx(sum(w * e for w, e in zip(weights[objective], errors)) / 2, rel=1e-6)


def test_guidance_is_one_plus_w_conditional_minus_w_unconditional():
    d = diffusion()
    x, t, c = torch.randn(2, 1, 4, 4, dtype=torch.float64), torch.tensor([5, 50]), torch.tensor([3, 7])
    model = d.model
    for w in (0.0, 1.0, 2.5):
        expected = (1 + w) * model(x, t, c) - w * model(x, t, torch.full_like(c, 10))
        torch.testing.assert_close(d.model_output(x, t, c, w), expected)
    torch.testing.assert_close(d.model_output(x, t, c, 0.0), model(x, t, c))  # w = 0: the conditional alone


def test_autoguidance_is_one_plus_a_model_minus_a_guide_and_gives_way_to_class_guidance():
    d = diffusion()
    x, t, c = torch.randn(2, 1, 4, 4, dtype=torch.float64), torch.tensor([5, 50]), torch.tensor([3, 7])
    f, g = d.model, Affine(a=0.2, b=0.003)
    d.guide = g
    for a in (0.0, 1.0, 2.5):
        d.autoguidance = a
        for classes in (None, c):  # unconditional, and a class without classifier-free guidance
            torch.testing.assert_close(d.model_output(x, t, classes), (1 + a) * f(x, t, classes) - a * g(x, t, classes))
    d.autoguidance = 1.0  # classifier-free guidance takes the model's own unconditional output, not the guide's
    torch.testing.assert_close(d.model_output(x, t, c, 2.0), 3 * f(x, t, c) - 2 * f(x, t, torch.full_like(c, 10)))
    d.guide = None
    torch.testing.assert_close(d.model_output(x, t), f(x, t))  # no guide: the model alone


def test_ddim_at_eta_zero_is_deterministic_and_ends_in_range():
    d = diffusion(schedule="cosine")
    noise = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    a = d.sample(noise, steps=10, eta=0.0, generator=torch.Generator().manual_seed(1))
    b = d.sample(noise, steps=10, eta=0.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert a.abs().max() <= 1.0
    assert len(d.ddim_times(10)) == 10 and d.ddim_times(10)[0][0] == 99 and d.ddim_times(10)[-1][1] == -1


def test_ddim_with_every_step_and_eta_one_is_ancestral_sampling():
    """The same noise draws give the same images: DDIM's update at η = 1 over all T steps is DDPM's posterior."""
    d = diffusion(schedule="linear", timesteps=50)
    noise = torch.randn(4, 1, 4, 4, dtype=torch.float64)
    classes = torch.tensor([0, 1, 2, 3])
    ancestral = d.sample(noise, classes=classes, guidance=1.0, generator=torch.Generator().manual_seed(7))
    ddim = d.sample(noise, steps=50, eta=1.0, classes=classes, guidance=1.0, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(ddim, ancestral, rtol=1e-4, atol=1e-4)


def test_the_unet_keeps_the_shape_and_starts_at_zero():
    torch.manual_seed(0)
    for size, multipliers in ((28, (1, 2, 2)), (64, (1, 2, 2, 2))):
        net = UNet(channels=3 if size == 64 else 1, width=16, multipliers=multipliers, blocks=1, num_classes=10)
        x = torch.randn(2, net.stem.in_channels, size, size)
        out = net(x, torch.tensor([0, 999]), torch.tensor([1, 10]))
        assert out.shape == x.shape and torch.equal(out, torch.zeros_like(out))
        net.head[-1].weight.data.normal_()
        assert not torch.equal(net(x, torch.tensor([0, 999])), net(x, torch.tensor([0, 999]), torch.tensor([1, 2])))
