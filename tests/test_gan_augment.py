"""Differentiable augmentation: each operation's gradient, what the discriminator sees, the default policy,
bad policies, and runs without it unchanged."""

from __future__ import annotations

import pytest
import torch

from a3cli.engine.catalogue import GAN_VARIANTS
from a3cli.engine.device import seed_everything
from a3cli.engine.distributed import World
from a3cli.engine.errors import A3Error
from a3cli.engine.gan import training
from a3cli.engine.gan.augment import OPERATIONS, Draws, augment, parse_policy
from a3cli.engine.gan.training import GanConfig, prepare_gan
from tests.helpers import quick_batchnorm_fit

OPERATION_NAMES = [(name, op) for name, ops in OPERATIONS.items() for op in ops]


@pytest.mark.parametrize("name, operation", OPERATION_NAMES, ids=[op.__name__ for _, op in OPERATION_NAMES])
def test_each_operation_is_differentiable(name, operation):
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64, requires_grad=True) * 2 - 1

    def seeded(images):
        torch.manual_seed(0)  # the same random transform at every evaluation
        return operation(images, Draws(3, World()))

    assert torch.autograd.gradcheck(seeded, (x,))
    assert not torch.equal(seeded(x), x)  # it changes the images


def test_translation_moves_pixels_and_cutout_zeroes_a_square():
    torch.manual_seed(1)
    x = torch.rand(64, 1, 16, 16) + 1  # positive everywhere: a zero is padding or the cut
    moved = augment(x, ("translation",), 16, Draws(64, World()))
    assert torch.isclose(moved.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3))).float().mean() < 0.5  # most shift
    assert (moved == 0).flatten(1).sum(1).max() <= 16 * 16 - 14 * 14  # at most 2 of 16 rows and columns
    cut = augment(x, ("cutout",), 16, Draws(64, World()))
    zeros = (cut == 0).flatten(1).sum(1)
    assert zeros.max() == 8 * 8 and zeros.min() > 0  # a square of half the side, cut by the border at worst
    flat = augment(x.reshape(64, 256), ("cutout",), 16, Draws(64, World()))  # the assignment's flattened digits
    assert flat.shape == (64, 256)


def test_the_discriminator_sees_augmented_real_and_generated_images(tmp_path, monkeypatch):
    quick_batchnorm_fit(monkeypatch)
    seen = []

    def spy(images, policy, size, draws):
        seen.append((images.shape, policy))
        return augment(images, policy, size, draws)

    monkeypatch.setattr(training, "augment", spy)
    config = GanConfig(
        out=tmp_path / "run", variant="dcgan", iterations=1, batch_size=8, download=False, fid=False,
        data_root=tmp_path,
    )  # fmt: skip
    run = prepare_gan(config)
    assert run.settings.augment == "translation,cutout"  # dcgan on the 5,000 offline digits: on by default
    run.train()
    # The critic's step: the real batch and the generated one; the generator's step: its images again.
    assert seen == [(torch.Size([8, 784]), ("translation", "cutout"))] * 3


def test_default_policy_and_bad_policies():
    dcgan, wgan_gp, lsgan = (GAN_VARIANTS[name] for name in ("dcgan", "wgan-gp", "lsgan"))
    assert dcgan.default_augment(5000) == "translation,cutout" == wgan_gp.default_augment(19_999)
    assert dcgan.default_augment(60_000) == "none" == lsgan.default_augment(5000)
    assert parse_policy("none", 1) == () and parse_policy("cutout, translation", 1) == ("cutout", "translation")
    for bad, message in (("blur", "--augment 'blur'"), ("", "--augment ''"), ("color", "needs RGB")):
        with pytest.raises(A3Error, match=message):
            parse_policy(bad, 1)


def test_a_run_without_augmentation_is_the_run_the_assignment_trains(tmp_path, monkeypatch):
    """gan's default (none) and an explicit none train the same weights; a policy trains others."""
    quick_batchnorm_fit(monkeypatch)

    def weights(out: str, **changes) -> list[torch.Tensor]:
        seed_everything(0)
        config = GanConfig(
            out=tmp_path / out, iterations=3, batch_size=8, download=False, fid=False, data_root=tmp_path, **changes
        )
        run = prepare_gan(config)
        run.train()
        return [p.detach().clone() for p in run.nets.generator.parameters()]

    plain, none = weights("plain"), weights("none", augment="none")
    assert all(torch.equal(a, b) for a, b in zip(plain, none))
    augmented = weights("augmented", augment="translation")
    assert not all(torch.equal(a, b) for a, b in zip(plain, augmented))
