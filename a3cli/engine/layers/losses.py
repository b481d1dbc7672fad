"""Losses of the assignment: captioning (with its hand-derived backward), style transfer, GANs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    "temporal_softmax_loss",
    "content_loss",
    "gram_matrix",
    "style_loss",
    "tv_loss",
    "discriminator_loss",
    "generator_loss",
    "ls_discriminator_loss",
    "ls_generator_loss",
    "gradient_penalty",
    "wgan_critic_loss",
    "wgan_generator_loss",
]


class TemporalSoftmaxLoss(torch.autograd.Function):
    """loss = -sum over (n, t) of mask·log softmax(x[n, t])[y[n, t]], divided by N."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
        N, T, V = x.shape
        logp = torch.log_softmax(x.reshape(N * T, V), dim=1)  # stable: subtracts the max
        y = y.reshape(N * T, 1).long()
        weight = mask.reshape(N * T).to(x.dtype) / N
        loss = -(logp.gather(1, y).squeeze(1) * weight).sum()
        ctx.save_for_backward(logp, y, weight)
        ctx.x_shape = x.shape
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, dloss: Tensor):
        logp, y, weight = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        # d/dx of -log softmax(x)[y] is softmax(x) - onehot(y).
        dx = logp.exp()
        dx.scatter_add_(1, y, dx.new_full(y.shape, -1.0))
        dx *= (weight * dloss).unsqueeze(1)
        return dx.view(ctx.x_shape), None, None


def temporal_softmax_loss(x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """Masked softmax loss over time: x (N, T, V) scores, y (N, T) targets, mask (N, T).

    Summed over time and averaged over the batch, as in the assignment; entries
    where mask is 0 (padding after <END>) do not count.
    """
    return TemporalSoftmaxLoss.apply(x, y, mask)


# ---- style transfer (Gatys et al.), the assignment's signatures ----


def content_loss(content_weight: float, content_current: Tensor, content_original: Tensor) -> Tensor:
    """w_c · Σ (F − P)²: how far the current features are from the content image's."""
    return content_weight * (content_current - content_original).pow(2).sum()


def gram_matrix(features: Tensor, normalize: bool = True) -> Tensor:
    """(N, C, H, W) → (N, C, C) = F·Fᵀ over positions; divided by H·W·C when normalize."""
    N, C, H, W = features.shape
    flat = features.reshape(N, C, H * W)
    gram = torch.bmm(flat, flat.transpose(1, 2))
    return gram / (H * W * C) if normalize else gram


def style_loss(
    feats: Sequence[Tensor],
    style_layers: Sequence[int],
    style_targets: Sequence[Tensor],
    style_weights: Sequence[float],
) -> Tensor:
    """Σ_l w_l · Σ (G_l − A_l)², G_l the Gram matrix of feats[style_layers[l]], A_l its target."""
    loss = feats[0].new_zeros(())
    for layer, target, weight in zip(style_layers, style_targets, style_weights):
        loss = loss + weight * (gram_matrix(feats[layer]) - target).pow(2).sum()
    return loss


def tv_loss(img: Tensor, tv_weight: float) -> Tensor:
    """w_t · (Σ squared horizontal neighbour differences + Σ squared vertical ones): smoothness."""
    horizontal = (img[..., :, 1:] - img[..., :, :-1]).pow(2).sum()
    vertical = (img[..., 1:, :] - img[..., :-1, :]).pow(2).sum()
    return tv_weight * (horizontal + vertical)


# ---- GANs ----


def bce_loss(logits: Tensor, target: float) -> Tensor:
    """Mean binary cross-entropy of logits against a constant label, computed stably."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Vanilla GAN: real images labelled 1, generated ones 0."""
    return bce_loss(logits_real, 1.0) + bce_loss(logits_fake, 0.0)


def generator_loss(logits_fake: Tensor) -> Tensor:
    """Vanilla GAN, non-saturating form: the generator wants its images labelled 1."""
    return bce_loss(logits_fake, 1.0)


def ls_discriminator_loss(scores_real: Tensor, scores_fake: Tensor) -> Tensor:
    """Least squares GAN: ½·mean((D(x) − 1)²) + ½·mean(D(G(z))²)."""
    return 0.5 * (scores_real - 1).pow(2).mean() + 0.5 * scores_fake.pow(2).mean()


def ls_generator_loss(scores_fake: Tensor) -> Tensor:
    """Least squares GAN: ½·mean((D(G(z)) − 1)²)."""
    return 0.5 * (scores_fake - 1).pow(2).mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor | None = None
) -> Tensor:
    """WGAN-GP: mean over samples of (‖∇ critic(x̂)‖₂ − 1)², x̂ uniform between real and fake.

    Each sample's gradient is flattened before its norm is taken. The result is
    differentiable (create_graph) so the penalty trains the critic. `eps`: the
    mixing weights (N, 1, ...), drawn here when not given.
    """
    if eps is None:
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return (grad.reshape(grad.shape[0], -1).norm(2, dim=1) - 1).pow(2).mean()


def wgan_critic_loss(scores_real: Tensor, scores_fake: Tensor, penalty: Tensor, gp_weight: float = 10.0) -> Tensor:
    """WGAN-GP critic: E[D(G(z))] − E[D(x)] + λ·penalty."""
    return scores_fake.mean() - scores_real.mean() + gp_weight * penalty


def wgan_generator_loss(scores_fake: Tensor) -> Tensor:
    """WGAN generator: −E[D(G(z))]."""
    return -scores_fake.mean()
