"""`a3 diffusion-sample`: new pictures from a trained diffusion model, its denoising as a strip, or samples
beside their nearest training images."""

from __future__ import annotations

from a3cli.app import app, check_output, configured, say, seeded_device
from a3cli.engine.catalogue import NEAREST_SAMPLES
from a3cli.engine.diffusion.config import DiffusionSampleConfig
from a3cli.engine.options import Machine

EPILOG = """Examples:

  a3 diffusion-sample -n 64 --out samples.png

  a3 diffusion-sample --class 7 --guidance 2 --out sevens.png

  a3 diffusion-sample --checkpoint runs/diffusion --sampler ddpm --out ancestral.png

  a3 diffusion-sample --checkpoint runs/diffusion --chain --out chain.png

  a3 diffusion-sample --checkpoint runs/diffusion -n 1000 --npy samples.npy --out samples.png"""

CHAIN_SAMPLES, CHAIN_FRAMES = 8, 10  # the strip: 8 samples, each at 10 moments of its denoising


@app.command("diffusion-sample", epilog=EPILOG)
@configured
def diffusion_sample(config: DiffusionSampleConfig, machine: Machine) -> None:
    """Draw new pictures from a trained diffusion model: DDIM in --steps steps (0: ancestral DDPM), one class
    with classifier-free guidance, the denoising as a strip and a GIF, or samples beside their nearest
    training images.

    A run folder gives its best.pt, else its checkpoint.pt; a checkpoint file
    gives the run's averaged model when it has one.
    """
    from a3cli.engine.device import seeded_generator
    from a3cli.engine.diffusion.model import load_diffusion
    from a3cli.engine.diffusion.sampling import (
        check_request,
        draw,
        save_chain,
        save_samples,
        sheet_title,
        show_nearest,
    )

    torch_device = seeded_device(machine, config.seed)
    check_output(config.out, "image")
    if config.npy is not None:
        check_output(config.npy, "file", flag="--npy")
    diffusion, run = load_diffusion(config.checkpoint, torch_device)
    request = check_request(config, run)
    diffusion.autoguidance = request.autoguidance
    which = "averaged model" if run["source"] == "ema" else "model"
    drawn = f"the diffusion {which} at iteration {run['step']} (from {run['file']}), {request.describe()}"
    generator = seeded_generator(config.seed)
    if config.chain:
        strip, animation = save_chain(diffusion, run, request, CHAIN_SAMPLES, CHAIN_FRAMES, config.out, generator)
        say(f"wrote {strip} and {animation}: the denoising of {CHAIN_SAMPLES} samples of {drawn}")
        return
    if config.nearest:
        found = show_nearest(diffusion, run, request, config, torch_device, generator)
        say(f"wrote {config.out}: {NEAREST_SAMPLES} samples of {drawn}, each beside its nearest training image")
        say(found.summary())
        return
    images = draw(diffusion, run, request, config.n, generator)
    for path in save_samples(images, config.out, config.nrow, config.npy, sheet_title(run, request)):
        say(f"wrote {path}: {config.n} samples of {drawn}")
