"""Style-transfer and GAN losses against independent, plainly written formulas."""

from __future__ import annotations

import pytest
import torch

from a3cli.engine import (
    content_loss,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    gram_matrix,
    ls_discriminator_loss,
    ls_generator_loss,
    style_loss,
    tv_loss,
    wgan_critic_loss,
    wgan_generator_loss,
)


def test_content_loss_is_weighted_sum_of_squares():
    a, b = torch.randn(1, 8, 5, 6, dtype=torch.float64), torch.randn(1, 8, 5, 6, dtype=torch.float64)
    expected = 0.3 * sum((x - y) ** 2 for x, y in zip(a.flatten().tolist(), b.flatten().tolist()))
    assert content_loss(0.3, a, b).item() == pytest.approx(expected, rel=1e-12)


def test_gram_matrix_matches_loops():
    f = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    g = gram_matrix(f, normalize=False)
    for n in range(2):
        for i in range(3):
            for j in range(3):
                assert g[n, i, j].item() == pytest.approx((f[n, i] * f[n, j]).sum().item(), rel=1e-12)
    torch.testing.assert_close(gram_matrix(f), g / (3 * 4 * 5))


def test_style_loss_sums_weighted_gram_differences():
    feats = [torch.randn(1, c, 6, 6, dtype=torch.float64) for c in (3, 4, 5)]
    targets = [gram_matrix(torch.randn(1, c, 6, 6, dtype=torch.float64)) for c in (3, 5)]
    expected = (
        2.0 * ((gram_matrix(feats[0]) - targets[0]) ** 2).sum()
        + 0.5 * ((gram_matrix(feats[2]) - targets[1]) ** 2).sum()
    )
    torch.testing.assert_close(style_loss(feats, [0, 2], targets, [2.0, 0.5]), expected)


def test_tv_loss_matches_loops():
    img = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    total = 0.0
    for c in range(3):
        for y in range(4):
            for x in range(5):
                if x + 1 < 5:
                    total += (img[0, c, y, x + 1] - img[0, c, y, x]).item() ** 2
                if y + 1 < 4:
                    total += (img[0, c, y + 1, x] - img[0, c, y, x]).item() ** 2
    assert tv_loss(img, 0.7).item() == pytest.approx(0.7 * total, rel=1e-12)


def naive_bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    p = torch.sigmoid(logits.double())
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()


def test_vanilla_gan_losses_match_cross_entropy():
    real, fake = torch.randn(16, 1), torch.randn(16, 1)
    torch.testing.assert_close(
        discriminator_loss(real, fake).double(), naive_bce(real, 1) + naive_bce(fake, 0), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(generator_loss(fake).double(), naive_bce(fake, 1), rtol=1e-5, atol=1e-6)


def test_vanilla_gan_losses_are_stable_for_large_logits():
    huge = torch.tensor([[200.0], [-200.0]])
    assert torch.isfinite(discriminator_loss(huge, huge)) and torch.isfinite(generator_loss(huge))
    assert generator_loss(torch.tensor([[-200.0]])).item() == pytest.approx(200.0)


def test_least_squares_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    assert ls_discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0 + 4) / 2 + 0.5 * (0 + 4) / 2)
    assert ls_generator_loss(fake).item() == pytest.approx(0.5 * (1 + 1) / 2)


def test_gradient_penalty_of_a_linear_critic_is_known():
    # critic(x) = x·w has gradient w everywhere, so the penalty is (‖w‖ − 1)² for every sample.
    w = torch.tensor([3.0, 4.0, 0.0, 0.0], requires_grad=True)
    critic = lambda x: x.reshape(x.shape[0], -1) @ w  # noqa: E731
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    penalty = gradient_penalty(critic, real, fake)
    assert penalty.item() == pytest.approx(16.0)
    penalty.backward()  # differentiable with respect to the critic's parameters: d/dw (‖w‖−1)² = 2(‖w‖−1)·w/‖w‖
    torch.testing.assert_close(w.grad, 2 * 4 * torch.tensor([0.6, 0.8, 0.0, 0.0]))


def test_wgan_losses():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    assert wgan_critic_loss(real, fake, torch.tensor(0.5)).item() == pytest.approx(0.0 - 3.0 + 5.0)
    assert wgan_generator_loss(fake).item() == pytest.approx(0.0)
