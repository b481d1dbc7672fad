"""The averaged generator (its update, its warm-up, its BatchNorm statistics) and the mode coverage number."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from a3cli.engine.gan.ema import ema_decay, fit_batchnorm, update_ema
from a3cli.engine.gan.evaluation import digit_judge, mode_coverage
from a3cli.engine.gan.frechet import MnistClassifier, frechet_distance
from a3cli.engine.gan.networks import dc_generator, generator, initialize_weights, sample_noise
from a3cli.engine.gan.pictures import generate_images


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
        torch.testing.assert_close(a, 0.8 ** 5 * s + (1 - 0.8 ** 5) * m)


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


def test_mode_coverage_on_hand_made_histograms():
    uniform = mode_coverage(torch.full((10,), 50))
    assert uniform == {"kl_to_uniform": 0.0, "digits_covered": 10, "shares": [0.1] * 10}
    one = mode_coverage(torch.tensor([0, 0, 0, 700, 0, 0, 0, 0, 0, 0]))
    assert one["kl_to_uniform"] == pytest.approx(math.log(10), abs=1e-4) and one["digits_covered"] == 1
    assert one["shares"][3] == 1.0
    two = mode_coverage(torch.tensor([5, 0, 0, 0, 0, 0, 0, 0, 0, 5]))
    assert two["kl_to_uniform"] == pytest.approx(math.log(5), abs=1e-4) and two["digits_covered"] == 2
    # Against scipy's relative entropy on an uneven histogram; 4% of the samples is not "covered" (< 5%).
    from scipy.stats import entropy

    counts = torch.tensor([30, 10, 4, 12, 9, 11, 8, 6, 5, 5])
    got = mode_coverage(counts)
    assert got["kl_to_uniform"] == pytest.approx(entropy(counts.numpy(), [0.1] * 10), abs=1e-4)
    assert got["digits_covered"] == 9
    with pytest.raises(ValueError):
        mode_coverage(torch.zeros(10))


def test_judge_agrees_with_the_plain_frechet_distance_for_each_generator():
    """The Judge keeps the real features between calls; each distance equals one computed from scratch."""
    torch.manual_seed(0)
    classifier = MnistClassifier().eval()
    images = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    judge = digit_judge(classifier, images, 16, seed=0, real_samples=200)
    order = torch.randperm(300, generator=torch.Generator().manual_seed(1))[:200]
    real01 = images[order].reshape(200, 784).float().div(255)
    for seed in (1, 2):
        torch.manual_seed(seed)
        G = generator(16)
        got = judge(G, 150)
        fake01 = generate_images(G, judge.noise(150)).reshape(150, 784)
        assert got["frechet_distance"] == pytest.approx(frechet_distance(real01, fake01, classifier), abs=1e-3)
        with torch.no_grad():
            counts = torch.bincount(classifier(fake01).argmax(1), minlength=10)
        assert got == {"frechet_distance": got["frechet_distance"], **mode_coverage(counts)}
    assert torch.equal(judge.noise(20), judge.noise(150)[:20])  # the tracked samples are a prefix of the final
