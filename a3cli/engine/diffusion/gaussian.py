"""A Gaussian diffusion (Ho et al. 2020) around a denoising network, as today's assignment writes it.

The forward process noises an image x₀ in T steps: q(x_t | x₀) = N(√ᾱ_t x₀, (1 − ᾱ_t) I). The network
sees x_t and t (and, when it is conditional, a class) and predicts, by `objective`, the noise ε
("noise", the assignment's pred_noise), the image x₀ ("x0", its pred_x_start) or v = √ᾱ_t ε − √(1 − ᾱ_t) x₀
("v", Salimans & Ho 2022); each is turned into the others by the closed forms below. Sampling runs the
reverse process: ancestral DDPM steps through the posterior q(x_{t−1} | x_t, x₀), or DDIM (Song et al.
2021) in fewer steps, deterministic at η = 0.

Classifier-free guidance (Ho & Salimans 2021): a conditional model is trained with its class dropped
(the extra "no class" index) now and then, and sampled as (1 + w) · f(x, c) − w · f(x), where f is the
network's output: ε, x₀ and v are affine in each other with weights that sum to one, so guiding the output
is guiding ε. Autoguidance (Karras et al. 2024) guides by a weaker version of the same network instead, a
`guide` g trained for less long: (1 + a) · f(x) − a · g(x) moves the samples away from what the weaker model
gets wrong, so fewer come out malformed; it needs no labels.

Timesteps are 0-based, t = 0..T−1, as in the assignment. Schedules are computed in float64 and kept as
float32 buffers that are not saved: they follow from (schedule, T).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3cli.engine.diffusion.schedules import beta_schedule

OBJECTIVES = ("noise", "x0", "v")


def extract(values: Tensor, t: Tensor, shape: torch.Size) -> Tensor:
    """values[t] for each image of a batch, shaped to broadcast over (N, C, H, W)."""
    return values.gather(0, t).reshape(-1, *([1] * (len(shape) - 1)))


class GaussianDiffusion(nn.Module):
    # the schedule's buffers, registered in __init__
    betas: Tensor
    alphas_cumprod: Tensor
    alphas_cumprod_prev: Tensor
    sqrt_alphas_cumprod: Tensor
    sqrt_one_minus_alphas_cumprod: Tensor
    sqrt_recip_alphas_cumprod: Tensor
    sqrt_recipm1_alphas_cumprod: Tensor
    posterior_variance: Tensor
    posterior_log_variance_clipped: Tensor
    posterior_mean_coef1: Tensor
    posterior_mean_coef2: Tensor
    snr: Tensor

    def __init__(
        self,
        model: nn.Module,
        image_size: int,
        channels: int,
        timesteps: int = 1000,
        objective: str = "noise",
        schedule: str = "cosine",
        min_snr: float = 0.0,
        precision: str = "float32",
    ) -> None:
        """`min_snr` > 0 weights each timestep's loss by min(SNR, min_snr) (Hang et al. 2023: faster
        training), expressed for the objective; 0: the plain mean squared error of the assignment.
        `precision`: what its callers run the network in ("bfloat16": autocast, engine/device.py)."""
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
        self.model, self.image_size, self.channels = model, image_size, channels
        self.num_classes = int(getattr(model, "num_classes", 0))  # its "no class" index; 0: unconditional
        self.num_timesteps, self.objective, self.schedule, self.min_snr = timesteps, objective, schedule, min_snr
        self.precision = precision
        self.guide: Optional[nn.Module] = None  # autoguidance's weaker network, once a run has one
        self.autoguidance = 0.0  # its weight a
        betas = beta_schedule(schedule, timesteps)
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        alphas_cumprod_prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
        posterior_variance = betas * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod)
        snr = alphas_cumprod / (1 - alphas_cumprod)
        for name, value in {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1 - alphas_cumprod).sqrt(),
            "sqrt_recip_alphas_cumprod": (1 / alphas_cumprod).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1 / alphas_cumprod - 1).sqrt(),
            "posterior_variance": posterior_variance,
            # the variance is 0 at t = 0: its log is clipped there, as in the DDPM code
            "posterior_log_variance_clipped": posterior_variance.clamp(min=1e-20).log(),
            "posterior_mean_coef1": betas * alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod),
            "posterior_mean_coef2": (1 - alphas_cumprod_prev) * (1 - betas).sqrt() / (1 - alphas_cumprod),
            "snr": snr,
        }.items():
            self.register_buffer(name, value.float(), persistent=False)

    # ---- the closed forms ----

    def q_sample(self, x_start: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε: a draw of q(x_t | x₀)."""
        return (
            extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
            + extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise
        )

    def predict_start_from_noise(self, x_t: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        return (
            extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t
            - extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape) * noise
        )

    def predict_noise_from_start(self, x_t: Tensor, t: Tensor, x_start: Tensor) -> Tensor:
        return (extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t - x_start) / extract(
            self.sqrt_recipm1_alphas_cumprod, t, x_t.shape
        )

    def predict_v(self, x_start: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        return (
            extract(self.sqrt_alphas_cumprod, t, x_start.shape) * noise
            - extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * x_start
        )

    def predict_start_from_v(self, x_t: Tensor, t: Tensor, v: Tensor) -> Tensor:
        return (
            extract(self.sqrt_alphas_cumprod, t, x_t.shape) * x_t
            - extract(self.sqrt_one_minus_alphas_cumprod, t, x_t.shape) * v
        )

    def q_posterior(self, x_start: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The mean, variance and clipped log-variance of q(x_{t−1} | x_t, x₀)."""
        mean = (
            extract(self.posterior_mean_coef1, t, x_t.shape) * x_start
            + extract(self.posterior_mean_coef2, t, x_t.shape) * x_t
        )
        return (
            mean,
            extract(self.posterior_variance, t, x_t.shape),
            extract(self.posterior_log_variance_clipped, t, x_t.shape),
        )

    # ---- the network's predictions ----

    def model_output(self, x: Tensor, t: Tensor, classes: Optional[Tensor] = None, guidance: float = 0.0) -> Tensor:
        """The network's output, guided: by the class, (1 + w) · f(x, c) − w · f(x) when w ≠ 0 (one batch of
        both); else by the guide, (1 + a) · f(x, c) − a · g(x, c) when there is one and a ≠ 0."""
        if classes is None or guidance == 0:
            output = self.model(x, t, classes)
            if self.guide is None or self.autoguidance == 0:
                return output
            return (1 + self.autoguidance) * output - self.autoguidance * self.guide(x, t, classes)
        null = torch.full_like(classes, self.num_classes)
        conditional, unconditional = self.model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([classes, null])).chunk(
            2
        )
        return (1 + guidance) * conditional - guidance * unconditional

    def model_predictions(
        self, x: Tensor, t: Tensor, classes: Optional[Tensor] = None, guidance: float = 0.0
    ) -> tuple[Tensor, Tensor]:
        """(predicted ε, predicted x₀): x₀ clipped to the images' range [−1, 1] and ε derived again from it, so
        that the two agree."""
        output = self.model_output(x, t, classes, guidance)
        if self.objective == "noise":
            x_start = self.predict_start_from_noise(x, t, output)
        elif self.objective == "x0":
            x_start = output
        else:
            x_start = self.predict_start_from_v(x, t, output)
        x_start = x_start.clamp(-1.0, 1.0)
        return self.predict_noise_from_start(x, t, x_start), x_start

    # ---- training ----

    def p_losses(self, x_start: Tensor, t: Tensor, noise: Tensor, classes: Optional[Tensor] = None) -> Tensor:
        """The mean squared error between the network's output on x_t and its target, averaged over the batch
        (each image's error weighted by min-SNR when `min_snr` > 0)."""
        output = self.model(self.q_sample(x_start, t, noise), t, classes)
        if self.objective == "noise":
            target = noise
        elif self.objective == "x0":
            target = x_start
        else:
            target = self.predict_v(x_start, t, noise)
        loss = F.mse_loss(output, target, reduction="none").flatten(1).mean(1)
        if self.min_snr > 0:
            loss = loss * self.loss_weight(t)
        return loss.mean()

    def loss_weight(self, t: Tensor) -> Tensor:
        """min(SNR, γ) as a weight of the objective's error: ε's error is x₀'s divided by SNR, v's by SNR + 1."""
        snr = self.snr[t]
        clipped = snr.clamp(max=self.min_snr)
        return {"noise": clipped / snr, "x0": clipped, "v": clipped / (snr + 1)}[self.objective]

    def forward(self, x_start: Tensor, t: Tensor, noise: Tensor, classes: Optional[Tensor] = None) -> Tensor:
        """The training loss (`p_losses`): what DistributedDataParallel calls."""
        return self.p_losses(x_start, t, noise, classes)

    # ---- sampling ----

    @torch.no_grad()
    def p_sample(
        self,
        x: Tensor,
        t: int,
        classes: Optional[Tensor] = None,
        guidance: float = 0.0,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """One ancestral step: x_{t−1} drawn from q(x_{t−1} | x_t, x̂₀); at t = 0 the mean, x̂₀ itself."""
        times = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        _, x_start = self.model_predictions(x, times, classes, guidance)
        mean, _, log_variance = self.q_posterior(x_start, x, times)
        if t == 0:
            return mean
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return mean + (0.5 * log_variance).exp() * noise

    def ddim_times(self, steps: int) -> list[tuple[int, int]]:
        """The (t, t_next) pairs of `steps` evenly spaced DDIM steps from T−1 down to −1 (the image itself)."""
        times = torch.linspace(-1, self.num_timesteps - 1, steps + 1).int().tolist()
        times = list(reversed(times))
        return list(zip(times[:-1], times[1:]))

    @torch.no_grad()
    def ddim_step(
        self,
        x: Tensor,
        t: int,
        t_next: int,
        eta: float,
        classes: Optional[Tensor] = None,
        guidance: float = 0.0,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """One DDIM step from t to t_next < t: x̂₀ moved to t_next along the predicted ε, with fresh noise of
        standard deviation η · σ (η = 1 and every step: DDPM's posterior)."""
        times = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        noise_pred, x_start = self.model_predictions(x, times, classes, guidance)
        if t_next < 0:
            return x_start
        alpha, alpha_next = self.alphas_cumprod[t], self.alphas_cumprod[t_next]
        sigma = eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
        direction = (1 - alpha_next - sigma**2).clamp(min=0).sqrt()
        x = x_start * alpha_next.sqrt() + direction * noise_pred
        if eta > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x

    @torch.no_grad()
    def sample(
        self,
        noise: Tensor,
        steps: Optional[int] = None,
        eta: float = 0.0,
        classes: Optional[Tensor] = None,
        guidance: float = 0.0,
        generator: Optional[torch.Generator] = None,
        chain: Optional[list[Tensor]] = None,
    ) -> Tensor:
        """Images in [−1, 1] from x_T = `noise`: ancestral DDPM when `steps` is None, else DDIM in `steps`
        steps. `chain`, if given, receives x after every step (for pictures of the denoising)."""
        x = noise
        if steps is None:
            for t in reversed(range(self.num_timesteps)):
                x = self.p_sample(x, t, classes, guidance, generator)
                if chain is not None:
                    chain.append(x.cpu())
            return x
        for t, t_next in self.ddim_times(steps):
            x = self.ddim_step(x, t, t_next, eta, classes, guidance, generator)
            if chain is not None:
                chain.append(x.cpu())
        return x
