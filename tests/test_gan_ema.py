"""The averaged generator: its update, its warm-up, its BatchNorm statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from a3cli.engine.gan.batchnorm import fit_batchnorm
from a3cli.engine.gan.networks import dc_generator, generate_images, generator, initialize_weights, sample_noise
from a3cli.engine.generative.ema import ema_decay, update_ema


def small_bn_net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 3))


def test_update_averages_parameters_and_copies_buffers():
    torch.manual_seed(0)
    model, average = small_bn_net(), small_bn_net()
    model.train()(torch.randn(16, 4))  # gives the live BatchNorm running statistics of its own
    before = [p.clone() for p in average.parameters()]
    update_ema(average, model, 0.9)
    for a, b, m in zip(average.parameters(), before, model.parameters()):
        torch.testing.assert_close(a, 0.9 * b + 0.1 * m)
    for a, m in zip(average.buffers(), model.buffers()):
        assert torch.equal(a, m)
    # k updates towards fixed weights: d^k of the start is left.
    start = [p.clone() for p in average.parameters()]
    for _ in range(5):
        update_ema(average, model, 0.8)
    for a, s, m in zip(average.parameters(), start, model.parameters()):
        torch.testing.assert_close(a, 0.8**5 * s + (1 - 0.8**5) * m)


def test_decay_warms_up():
    assert ema_decay(0.999, 1) == pytest.approx(2 / 11)  # the random start is forgotten at once
    assert ema_decay(0.999, 90) == pytest.approx(91 / 100)
    assert ema_decay(0.999, 100_000) == 0.999
    assert ema_decay(0.9, 1000) == 0.9


def test_fitted_batchnorm_statistics_are_those_of_the_averaged_weights():
    """After fit_batchnorm, each BatchNorm's running mean and variance are the per-batch mean and unbiased
    variance of its input over the fixed noise, averaged over the batches, computed here layer by layer."""
    torch.manual_seed(0)
    G = dc_generator(16)
    G.apply(initialize_weights)
    G.train()(sample_noise(32, 16))  # running statistics of other activations than those of the fitted weights
    fit_batchnorm(G, 16, seed=7, samples=256, batch_size=64)
    assert G.training  # the mode it was in
    noise = sample_noise(256, 16, generator=torch.Generator().manual_seed(7))
    batchnorms = [m for m in G if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    fitted = {bn: (bn.running_mean.clone(), bn.running_var.clone()) for bn in batchnorms}
    captured: dict[nn.Module, list[torch.Tensor]] = {bn: [] for bn in batchnorms}
    hooks = [bn.register_forward_hook(lambda m, i, o: captured[m].append(i[0].detach())) for bn in batchnorms]
    with torch.no_grad():
        for chunk in noise.split(64):  # the same layers, in train mode (batch statistics), batch by batch
            G(chunk)
    for hook in hooks:
        hook.remove()
    for bn in batchnorms:
        dims = [0] + list(range(2, captured[bn][0].ndim))
        means = torch.stack([x.mean(dims) for x in captured[bn]])
        variances = torch.stack([x.var(dims, unbiased=True) for x in captured[bn]])
        torch.testing.assert_close(fitted[bn][0], means.mean(0), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fitted[bn][1], variances.mean(0), rtol=1e-4, atol=1e-5)


def test_fit_batchnorm_gives_eval_outputs_that_match_the_weights_own_statistics():
    """In eval mode, the averaged generator with fitted statistics draws what it draws with batch statistics
    of a large batch; with the live generator's copied statistics it does not."""
    torch.manual_seed(0)
    live, average = dc_generator(16), dc_generator(16)
    live.apply(initialize_weights)
    average.apply(initialize_weights)
    live.train()(sample_noise(128, 16))
    update_ema(average, live, 0.5)  # averaged weights, live statistics
    noise = sample_noise(1024, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        own = average.train()(noise)  # normalised with its own batch statistics
    copied = generate_images(average, noise[:64])
    fitted = generate_images(fit_batchnorm(average, 16, seed=3, samples=1024, batch_size=1024), noise[:64])
    own = own[:64].reshape(-1, 1, 28, 28).add(1).div(2).clamp(0, 1)
    assert (fitted - own).abs().max() < 0.02
    assert (copied - own).abs().max() > 5 * (fitted - own).abs().max()


def test_fit_batchnorm_leaves_a_generator_without_batchnorm_alone():
    G = generator(16)
    before = [p.clone() for p in G.parameters()]
    assert fit_batchnorm(G, 16, seed=0) is G
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))
