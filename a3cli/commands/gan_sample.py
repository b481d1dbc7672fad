"""`a3 gan-sample`: new samples, latent walks and nearest training images from a trained generator."""

from __future__ import annotations

from a3cli.app import app, check_output, configured, say, seeded_device
from a3cli.engine.catalogue import NEAREST_SAMPLES, WALK_STEPS
from a3cli.engine.gan.config import GanSampleConfig
from a3cli.engine.options import Machine

EPILOG = """Examples:

  a3 gan-sample --checkpoint runs/dcgan -n 64 --out dcgan.png

  a3 gan-sample --checkpoint runs/dcgan --interpolate 8 --out walk.png

  a3 gan-sample --checkpoint runs/dcgan --nearest --out nearest.png"""


@app.command("gan-sample", epilog=EPILOG)
@configured
def gan_sample(config: GanSampleConfig, machine: Machine) -> None:
    """Draw new samples from a trained generator, as one grid; or latent walks; or samples beside their
    nearest training images.

    A run folder gives its best.pt, else its checkpoint.pt; a checkpoint file
    gives the run's averaged generator when it has one. --nearest reads the run's
    training data again (MNIST from --data-root or the offline digits; a folder).
    """
    from a3cli.engine.device import seeded_generator
    from a3cli.engine.gan.inspection import latent_walk
    from a3cli.engine.gan.networks import generate_images, sample_noise
    from a3cli.engine.gan.outputs import load_generator
    from a3cli.engine.generative.inspection import nearest_training_images
    from a3cli.engine.generative.pictures import model_title, sample_grid, save_npy
    from a3cli.engine.images import save_image

    torch_device = seeded_device(machine, config.seed)
    out = config.out
    check_output(out, "image")
    if config.npy is not None:
        check_output(config.npy, "file", flag="--npy")
    G, run = load_generator(config.checkpoint, torch_device)
    which = "averaged generator" if run["source"] == "ema" else "generator"
    drawn = f"the {run['variant']} {which} at iteration {run['step']} (from {run['file']})"
    title = model_title(f"{run['variant']} {which}", run["step"], run["frechet_distance"])
    if config.interpolate is not None:
        walks = latent_walk(G, config.interpolate, run["noise_dim"], seeded_generator(config.seed))
        save_image(sample_grid(walks, WALK_STEPS, f"latent walks of the {title}"), out)
        say(f"wrote {out}: {config.interpolate} latent walks of {WALK_STEPS} steps, {drawn}")
    elif config.nearest:
        noise = sample_noise(NEAREST_SAMPLES, run["noise_dim"], generator=seeded_generator(config.seed))
        found = nearest_training_images(generate_images(G, noise), run, torch_device, config.data_root)
        save_image(sample_grid(found.pictures, 8, f"samples, each beside its nearest training image: {title}"), out)
        say(f"wrote {out}: {NEAREST_SAMPLES} samples of {drawn}, each beside its nearest training image")
        say(found.summary())
    else:
        images = generate_images(G, sample_noise(config.n, run["noise_dim"]))
        save_image(sample_grid(images, config.nrow, title), out)
        say(f"wrote {out}: {config.n} samples of {drawn}")
        if config.npy is not None:
            say(f"wrote {save_npy(images, config.npy)}: the {config.n} samples as a uint8 array")
