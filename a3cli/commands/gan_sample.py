"""`a3 gan-sample`: new samples, latent walks and nearest training images from a trained generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

from a3cli.app import INPUTS, SeedOption, app, check_output, configured, field_option, option, say, seeded_device
from a3cli.engine.catalogue import NEAREST_SAMPLES, WALK_STEPS
from a3cli.engine.gan.config import GanConfig
from a3cli.engine.options import Machine

DataRoot = field_option(GanConfig, "data_root")

Interpolate = Annotated[
    Optional[int],
    option(
        "--interpolate",
        metavar="ROWS",
        min=1,
        max=64,
        help=f"Instead: ROWS latent walks, each {WALK_STEPS} steps between two noise vectors.",
        panel=INPUTS,
        show_default=False,
    ),
]
NearestOption = Annotated[
    bool,
    option(
        "--nearest",
        help=f"Instead: {NEAREST_SAMPLES} samples, each beside its nearest training image (in feature space).",
        panel=INPUTS,
    ),
]


EPILOG = """Examples:

  a3 gan-sample --checkpoint runs/dcgan -n 64 --out dcgan.png

  a3 gan-sample --checkpoint runs/dcgan --interpolate 8 --out walk.png

  a3 gan-sample --checkpoint runs/dcgan --nearest --out nearest.png"""


@app.command("gan-sample", epilog=EPILOG)
@configured
def gan_sample(
    *,
    checkpoint: Annotated[
        Path, option("--checkpoint", "-c", help="A gan-train run folder (its best.pt), or a checkpoint.", panel=INPUTS)
    ],
    n: Annotated[
        int, option("-n", "--num", metavar="N", min=1, max=10000, help="How many samples.", panel=INPUTS)
    ] = 64,
    out: Annotated[Path, option("--out", "-o", help="The grid (PNG).", panel=INPUTS)] = Path("samples.png"),
    nrow: Annotated[
        Optional[int], option("--nrow", metavar="N", min=1, max=10000, help="Images per row", shown="√n", panel=INPUTS)
    ] = None,
    interpolate: Interpolate = None,
    nearest: NearestOption = False,
    data_root: DataRoot = None,
    machine: Machine,
    seed: SeedOption = 0,
) -> None:
    """Draw new samples from a trained generator, as one grid; or latent walks; or samples beside their
    nearest training images.

    A run folder gives its best.pt, else its checkpoint.pt; a checkpoint file
    gives the run's averaged generator when it has one. --nearest reads the run's
    training data again (MNIST from --data-root or the offline digits; a folder).
    """
    from a3cli.engine.device import seeded_generator
    from a3cli.engine.errors import A3Error
    from a3cli.engine.gan.inspection import latent_walk, nearest_training_images
    from a3cli.engine.gan.networks import generate_images, sample_noise
    from a3cli.engine.gan.outputs import load_generator, sample_grid
    from a3cli.engine.images import save_image

    torch_device = seeded_device(machine, seed)
    if interpolate is not None and nearest:
        raise A3Error("--interpolate and --nearest draw different sheets: give one of them")
    check_output(out, "image")
    G, run = load_generator(checkpoint, torch_device)
    which = "averaged generator" if run["source"] == "ema" else "generator"
    drawn = f"the {run['variant']} {which} at iteration {run['step']} (from {run['file']})"
    if interpolate is not None:
        walks = latent_walk(G, interpolate, run["noise_dim"], seeded_generator(seed))
        save_image(sample_grid(walks, WALK_STEPS), out)
        say(f"wrote {out}: {interpolate} latent walks of {WALK_STEPS} steps, {drawn}")
    elif nearest:
        found = nearest_training_images(G, run, torch_device, seeded_generator(seed), data_root)
        save_image(sample_grid(found.pictures, 8), out)
        say(f"wrote {out}: {NEAREST_SAMPLES} samples of {drawn}, each beside its nearest training image")
        say(
            f"feature distance to the nearest training image: median {found.median_distance:.3g}, smallest "
            f"{min(found.distances):.3g}; training images lie {found.training_spacing:.3g} from their nearest other "
            f"one (median); on {found.features}; training data: {found.source}"
        )
    else:
        save_image(sample_grid(generate_images(G, sample_noise(n, run["noise_dim"])), nrow), out)
        say(f"wrote {out}: {n} samples of {drawn}")
